"""A private tmux server for driving full-screen programs in tests.

Each ``Tmux`` runs its own server on its own socket (``tmux -L NAME``, no
config file), so nothing collides with anyone else's tmux and killing it
kills only what the test started.  No pytest here.

    with Tmux("screen") as tm:
        tm.start("some command", 120, 40)
        tm.send("o")
        lines = tm.wait_for(lambda ls: "sort" in ls[1], 5, "the sort to change")

Also the table parser the screen tests read flowtop's curses view with (and
how its rows match conntrack entries), and ``pane_command``: the shell line that runs flowtop in the pane and records
the terminal settings before and after it, and its exit status.
"""

import contextlib
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter

SESSION = "t"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class TmuxError(AssertionError):
    pass


class Tmux:
    def __init__(self, tag):
        self.socket = "ftest-%s-%d-%s" % (tag, os.getpid(), secrets.token_hex(3))
        self.started = False
        self.path = None         # the server's socket file (tmux leaves it behind)
        self.workdir = None
        self.last = []           # the last capture, for failure messages

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()

    # -- plumbing -----------------------------------------------------------------------
    def tmux(self, *args, check=True):
        env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
        r = subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null"] + [str(a) for a in args],
                           capture_output=True, text=True, timeout=10, env=env, check=False)
        if check and r.returncode != 0:
            raise TmuxError("tmux %s: %s%s" % (" ".join(map(str, args)), r.stderr.strip(),
                                               self.ended()))
        return r

    def ended(self):
        """How the pane's program ended, if it has (for failure messages)."""
        if not self.workdir:
            return ""
        out = []
        for name in ("stty.after", "stderr"):
            try:
                with open(os.path.join(self.workdir, name)) as f:
                    text = f.read()
            except OSError:
                continue
            if name == "stty.after":
                text = text[text.rfind("EXITED"):].strip()
            if text:
                out.append("%s: %s" % (name, text[-3000:]))
        return "".join("\n" + o for o in out)

    def start(self, command, width, height, workdir=None):
        """A detached session of ``width`` x ``height`` running ``command`` (a
        shell line; from ``pane_command``, pass its ``workdir`` so a failure
        can tell how the program ended)."""
        self.workdir = workdir
        self.started = True
        self.tmux("new-session", "-d", "-s", SESSION, "-x", width, "-y", height, command)
        self.path = self.tmux("display-message", "-p", "#{socket_path}").stdout.strip()

    def alive(self):
        return self.tmux("has-session", "-t", SESSION, check=False).returncode == 0

    def kill(self):
        if self.started:
            self.tmux("kill-server", check=False)
            self.started = False
        if self.path and os.path.basename(self.path) == self.socket:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self.path = None

    # -- keys and size ------------------------------------------------------------------
    def send(self, *keys):
        """tmux key names: "o", "Enter", "Escape", "Down", "NPage", "C-c"..."""
        self.tmux("send-keys", "-t", SESSION, *keys)

    def type(self, text):
        """Literal text, character by character."""
        self.tmux("send-keys", "-t", SESSION, "-l", text)

    def send_bytes(self, data):
        """Exactly these bytes, as if typed (``send-keys -H``): for keys whose
        sequence must match the program's TERM rather than tmux's own."""
        self.tmux("send-keys", "-t", SESSION, "-H", *("%02x" % b for b in data))

    def resize(self, width, height):
        self.tmux("resize-window", "-t", SESSION, "-x", width, "-y", height)

    def size(self):
        out = self.tmux("display-message", "-p", "-t", SESSION,
                        "#{pane_width} #{pane_height}").stdout.split()
        return int(out[0]), int(out[1])

    # -- reading the screen -------------------------------------------------------------
    def capture(self, escapes=False):
        """The visible pane as a list of lines (trailing blanks trimmed by tmux);
        with ``escapes`` the SGR sequences of the attributes are kept."""
        args = ["capture-pane", "-p", "-t", SESSION] + (["-e"] if escapes else [])
        lines = self.tmux(*args).stdout.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if not escapes:
            self.last = lines
        return lines

    def wait_for(self, predicate, timeout, what="the screen", escapes=False, interval=0.02,
                 settle=True):
        """Capture until ``predicate(lines)`` is truthy; returns the lines.
        With ``settle``, only once two captures running agree: a capture can
        land while the terminal is mid-draw (CI caught a details box with its
        first rows only), and its bottom rows are then the last frame's.
        Without it (a key-to-screen time), the first capture that passes.
        On timeout an AssertionError shows the last screen."""
        deadline = time.monotonic() + timeout
        before = None
        while True:
            lines = self.capture(escapes)
            try:
                ok = predicate(lines)
            except (IndexError, ValueError, KeyError, StopIteration):
                ok = False
            if ok and (not settle or lines == before):
                return lines
            before = lines if ok else None
            if time.monotonic() > deadline:
                if ok:
                    return lines         # it passes, though never still
                raise TmuxError("timed out after %gs waiting for %s; screen:\n%s%s"
                                % (timeout, what, screen_text(lines), self.ended()))
            time.sleep(interval)


def box(lines, title="Flow details"):
    """The lines of the curses box titled ``title`` (top border to bottom
    border), or None until all of it is on screen: a capture can land while
    the terminal is still drawing it, with only its first rows there."""
    for i, line in enumerate(lines):
        at = line.find(" %s" % title)
        if at < 2 or line[at - 2] not in "\u250cl":
            continue
        x = at - 2
        for j in range(i + 1, len(lines)):
            bottom = lines[j]
            if len(bottom) > x + 1 and bottom[x] in "\u2514m" and bottom[x + 1] in "\u2500q":
                return lines[i:j + 1]
        return None
    return None


def screen_text(lines):
    return "\n".join("|%s" % l for l in lines)


def wait_file(path, predicate, timeout, what="a file"):
    """Poll ``path`` until ``predicate(text)``; returns the text."""
    deadline = time.monotonic() + timeout
    text = None
    while True:
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            text = None
        if text is not None and predicate(text):
            return text
        if time.monotonic() > deadline:
            raise TmuxError("timed out after %gs waiting for %s (%s): %r"
                            % (timeout, what, path, text))
        time.sleep(0.05)


def pane_command(argv, workdir, env=()):
    """The pane's shell line: ``stty -a`` into workdir/stty.before, run
    ``argv`` (stderr into workdir/stderr), then ``stty -a`` into
    workdir/stty.after followed by ``EXITED <status>``."""
    def j(name):
        return shlex.quote(os.path.join(workdir, name))

    run = " ".join(shlex.quote(a) for a in argv)
    return ("stty -a > {b}; {run} 2> {err}; rc=$?; stty -a > {a}.tmp; "
            "echo EXITED $rc >> {a}.tmp; mv {a}.tmp {a}").format(
        b=j("stty.before"), a=j("stty.after"), err=j("stderr"), run=run)


@contextlib.contextmanager
def flowtop_screen(tag, fixed=(), width=80, height=24, wait=5):
    """``start(args, width, height, lang)`` -> a Tmux running ``python3 -m
    flowtop --no-sysctl`` with ``fixed`` and then ``args``, once a recording
    (``--replay`` in either) is on screen; the server and its workdir go after."""
    workdir = tempfile.mkdtemp(prefix="%s-screen-" % tag)
    tm = Tmux(tag)

    def start(args, width=width, height=height, lang="C.UTF-8"):
        argv = ["env", "TERM=xterm-256color", "LANG=" + lang, "LC_ALL=" + lang,
                "PYTHONPATH=" + REPO, sys.executable, "-m", "flowtop", "--no-sysctl"]
        tm.start(pane_command(argv + list(fixed) + list(args), workdir), width, height, workdir)
        tm.wait_for(lambda ls: " flows" in ls[0] and "[" in ls[1], wait,
                    "the recording on screen")
        return tm

    try:
        yield start
    finally:
        tm.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def read_exit(workdir, timeout):
    """(status, stty -a after) once the pane's command has finished."""
    text = wait_file(os.path.join(workdir, "stty.after"), lambda t: "EXITED" in t, timeout,
                     "the program to exit")
    body, _, tail = text.rpartition("EXITED ")
    return int(tail.split()[0]), body


# -- flowtop's table, read back from the screen ---------------------------------------

# Right-aligned columns: numbers, never a space in them.  Every other column
# (PROTO, STATE, SERVICE, SOURCE, DESTINATION, PROCESS, ones added later) is
# left-aligned.
SORT_MARKS = "\u25b2\u25bc*"     # the sort column's title ends in one (ascending, descending, ASCII)
RIGHT = {"ID", "TX", "RX", "PKTS_TX", "PKTS_RX", "RATE_TX", "RATE_RX", "AGE"}


def title_index(lines):
    """The line of column titles: upper-case words, PROTO and DESTINATION among them."""
    for i, line in enumerate(lines):
        words = line.split()
        words = [w.rstrip(SORT_MARKS) for w in words]
        if ("PROTO" in words and "DESTINATION" in words
                and all(re.fullmatch(r"[A-Z][A-Z0-9_]*", w) for w in words)):
            return i
    return None


def column_spans(title):
    """[(name, start, end, left)] of the title line; start/end are where
    the title text is, which is the cell's start (left-aligned) or end
    (right-aligned)."""
    return [(m.group(0).rstrip(SORT_MARKS), m.start(), m.end(),
             m.group(0).rstrip(SORT_MARKS) not in RIGHT)
            for m in re.finditer(r"\S+", title)]


def split_row(line, spans):
    """One table line -> {column: text}."""
    cells = {}
    line = line.ljust(max(e for _n, _s, e, _l in spans))
    i = 0
    while i < len(spans):
        name, start, end, left = spans[i]
        if not left:
            prev_end = spans[i - 1][2] if i else 0
            cells[name] = line[prev_end:end].strip()
            i += 1
            continue
        nxt = spans[i + 1] if i + 1 < len(spans) else None
        if nxt is None:
            cells[name] = line[start:].strip()
            i += 1
        elif nxt[3]:                      # left, left: the next title starts its cell
            cells[name] = line[start:nxt[1]].strip()
            i += 1
        else:                             # left, right: the right cell is the last word
            region = line[start:nxt[2]].rstrip()
            head, _, last = region.rpartition(" ")
            cells[name] = head.strip()
            cells[nxt[0]] = last
            i += 2
    return cells


def parse_table(lines):
    """(header lines, titles, rows) of a flowtop screen; rows are dicts of
    cell text, from the line after the titles to the first blank line.
    Raises ValueError when there is no title line."""
    ti = title_index(lines)
    if ti is None:
        raise ValueError("no column titles on the screen")
    spans = column_spans(lines[ti])
    rows = []
    for line in lines[ti + 1:]:
        if not line.strip() or line.startswith("q quit"):
            break
        rows.append(split_row(line, spans))
    return lines[:ti], [s[0] for s in spans], rows


def rows_of(lines):
    return parse_table(lines)[2]


# TCP, UDP, UDP-lite, SCTP: DESTINATION shows a port (DCCP is tracked
# generically in the test namespaces: no ports)
PORTED = (6, 17, 136, 132)


def destination(e):
    """How the DESTINATION column shows a conntrack entry (tests.ctparse)."""
    o = e["orig"]
    if e["l4proto"] not in PORTED:
        return o["dst"]
    if e["family"] == "ipv6":
        return "[%s]:%d" % (o["dst"], o["dport"])
    return "%s:%d" % (o["dst"], o["dport"])


def flow_ids(entries):
    """(proto, destination) per entry: unique in the populated namespace."""
    return Counter((e["proto"], destination(e)) for e in entries)


def row_ids(rows):
    return Counter((r["PROTO"], r["DESTINATION"]) for r in rows)
