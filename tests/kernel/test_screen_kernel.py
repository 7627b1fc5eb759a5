"""The curses live view, driven through a private tmux server.

flowtop runs in a tmux pane inside a populated ``ftest-*`` namespace, as a
user would run it (``--loopback``: the test traffic is on the namespace's
loopback, hidden by default; ``-n``: numeric addresses, as conntrack prints
them), with the sysctl guard on.  Keys go in with
``send-keys`` and every step is checked on ``capture-pane`` text against
``conntrack -L`` in the same namespace.  The pane's shell records
``stty -a`` before flowtop starts and after it exits, and its exit status.

Each test makes and removes its own namespace and its own tmux server
(``tmux -L <unique name>``); the host's sysctls and firewall are never
touched.  ``pytest -s`` prints the measured key latency.
"""

import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests import ctparse  # noqa: E402
from tests.nsutil import Netns, flowtop_pid, kernel_ready, populate  # noqa: E402
from tests.tmuxutil import (PORTED, Tmux, box, destination, flow_ids, parse_table,  # noqa: E402
                            pane_command, read_exit, row_ids, rows_of, screen_text)

_READY, _WHY = kernel_ready("tmux")
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]

ACCT = "net.netfilter.nf_conntrack_acct"
TIMESTAMP = "net.netfilter.nf_conntrack_timestamp"
ICMP, TCP, UDP, DCCP, GRE, ICMPV6, SCTP, UDPLITE = 1, 6, 17, 33, 47, 58, 132, 136

WAIT = 5                                 # seconds any one screen change may take
KEY_LIMIT = 0.5                          # seconds from send-keys to the change on screen

# `o` from the default sort (rate), in order: (column, order shown).
SORT_CYCLE = [("bytes", "desc"), ("packets", "desc"), ("age", "desc"), ("proto", "asc"),
              ("dst", "asc"), ("port", "asc")]


# tmux types Home/End as its own terminal does (ESC [1~, ESC [4~); the program in
# the pane has TERM=xterm-256color, which knows them as ESC O H / ESC O F (keypad
# mode).  Those two are typed as xterm would; Up/Down/PgUp/PgDn agree already.
XTERM_KEYS = {"Home": b"\x1bOH", "End": b"\x1bOF"}


def press(tm, key):
    if key in XTERM_KEYS:
        tm.send_bytes(XTERM_KEYS[key])
    else:
        tm.send(key)


# -- helpers ---------------------------------------------------------------------------

def flowtop_argv(ns, *args, term="xterm-256color"):
    return ns.argv("env", "TERM=" + term, "PYTHONPATH=" + REPO, sys.executable,
                   "-m", "flowtop", *args)


def ns_set_sysctls(ns, value):
    for name in (ACCT, TIMESTAMP):
        ns.run("sysctl", "-q", "-w", "%s=%s" % (name, value))


def ns_sysctls(ns):
    return ns.sysctl(ACCT), ns.sysctl(TIMESTAMP)


def header(lines):
    return lines[1] if len(lines) > 1 else ""


def row_port(r):
    return int(r["DESTINATION"].rsplit(":", 1)[1])


SGR = re.compile(r"\x1b\[([0-9;]*)m")
OTHER_ESC = re.compile(r"\x1b(?:\[[0-9;?]*[A-Za-z]|[()][0-9A-Za-z]|.)")


def reverse_lines(esc_lines):
    """Indexes of the lines whose first cell is in reverse video, from a
    ``capture-pane -e`` (attributes carry over from line to line there)."""
    out = []
    reverse = False
    for i, line in enumerate(esc_lines):
        first = None
        pos = 0
        while pos < len(line):
            m = SGR.match(line, pos)
            if m:
                params = [p for p in m.group(1).split(";")] if m.group(1) else ["0"]
                for p in params:
                    if p in ("", "0"):
                        reverse = False
                    elif p == "7":
                        reverse = True
                    elif p == "27":
                        reverse = False
                pos = m.end()
                continue
            m = OTHER_ESC.match(line, pos)
            if m and line[pos] == "\x1b":
                pos = m.end()
                continue
            if first is None:
                first = reverse
            pos += 1
        if first:
            out.append(i)
    return out


def plain(esc_line):
    return OTHER_ESC.sub("", SGR.sub("", esc_line))


class Screen:
    """flowtop in a tmux pane in ``ns``: the pieces every test needs."""

    def __init__(self, ns, tm, workdir):
        self.ns, self.tm, self.workdir = ns, tm, workdir

    def start(self, args, width, height, term="xterm-256color"):
        self.tm.start(pane_command(flowtop_argv(self.ns, *args, term=term), self.workdir),
                      width, height, self.workdir)

    def stderr(self):
        with open(os.path.join(self.workdir, "stderr")) as f:
            return f.read()

    def stty_before(self):
        with open(os.path.join(self.workdir, "stty.before")) as f:
            return f.read()

    def selected(self):
        """(index among the rows, row) of the highlighted table row."""
        esc = self.tm.capture(escapes=True)
        lines = [plain(l) for l in esc]
        _head, _titles, rows = parse_table(lines)
        ti = len(_head)
        marked = [i - ti - 1 for i in reverse_lines(esc) if i > ti and i - ti - 1 < len(rows)]
        assert len(marked) == 1, "highlighted rows %r on:\n%s" % (marked, screen_text(lines))
        return marked[0], rows[marked[0]]


# -- the walkthrough, step by step -----------------------------------------------------

def step_header_and_rows(scr, entries):
    tm = scr.tm
    n = len(entries)
    lines = tm.wait_for(lambda ls: "shown %d" % n in header(ls) and len(rows_of(ls)) == n,
                        10, "the first snapshot with %d flows" % n)
    m = re.search(r"\b(\d+) flows \(([^)]*)\)", lines[0])
    assert m, lines[0]
    assert int(m.group(1)) == n, lines[0]
    shown = {name: int(k) for name, k in (p.rsplit(" ", 1) for p in m.group(2).split(", "))}
    assert shown == dict(Counter(e["proto"] for e in entries)), (lines[0], entries)
    rows = rows_of(lines)
    assert len(rows) == n
    assert row_ids(rows) == flow_ids(entries), screen_text(lines)
    text = "\n".join(lines)
    for e in entries:
        assert destination(e) in text, destination(e)
    assert "acct on" in header(lines) and "tstamp on" in header(lines), header(lines)
    return rows


def step_sort(scr, entries, latencies):
    tm = scr.tm
    assert "sort rate desc" in header(tm.capture()), tm.last
    want_ports = sorted(e["orig"]["dport"] for e in entries if e["l4proto"] in PORTED)

    def ported(ls):
        return [row_port(r) for r in rows_of(ls)
                if r["PROTO"] in ("tcp", "udp", "udplite", "sctp")]

    for col, order in SORT_CYCLE:
        text = "sort %s %s" % (col, order)
        t0 = time.monotonic()
        tm.send("o")
        tm.wait_for(lambda ls, text=text: text in header(ls), KEY_LIMIT * 4, repr(text),
                    settle=False)
        latencies.append(time.monotonic() - t0)
        if col == "proto":
            tm.wait_for(lambda ls: [r["PROTO"] for r in rows_of(ls)]
                        == sorted(r["PROTO"] for r in rows_of(ls)), WAIT, "rows by protocol")
    lines = tm.wait_for(lambda ls: ported(ls) == want_ports, WAIT,
                        "ports ascending %r" % want_ports)
    assert ported(lines) != list(reversed(want_ports))   # not trivially both
    tm.send("r")
    tm.wait_for(lambda ls: "sort port desc" in header(ls)
                and ported(ls) == list(reversed(want_ports)), WAIT, "ports descending")
    # The cycle wraps round to its first column, and a new column starts in its
    # natural order again.
    tm.send("o")
    tm.wait_for(lambda ls: "sort state asc" in header(ls), WAIT, "'sort state asc'")


def step_filter(scr, entries):
    tm = scr.tm
    everything = flow_ids(entries)

    def matches(e):
        o = e["orig"]
        words = [str(o.get(k, "")) for k in ("sport", "dport", "srckey", "dstkey")]
        return any("5001" in w for w in words)

    want = flow_ids([e for e in entries if matches(e)])
    assert ("tcp", "127.0.0.1:5001") in want
    tm.send("/")
    tm.wait_for(lambda ls: ls[-1].startswith("filter: _"), WAIT, "the filter prompt")
    tm.type("5001")
    tm.wait_for(lambda ls: ls[-1].startswith("filter: 5001_") and row_ids(rows_of(ls)) == want,
                WAIT, "rows filtered while typing")
    tm.send("Enter")
    lines = tm.wait_for(lambda ls: "filter /5001" in header(ls)
                        and ls[-1].startswith("q quit") and row_ids(rows_of(ls)) == want,
                        WAIT, "the kept filter")
    assert "shown %d" % sum(want.values()) in header(lines)
    tm.send("Escape")
    tm.wait_for(lambda ls: "filter" not in header(ls) and row_ids(rows_of(ls)) == everything,
                WAIT, "every row back after Esc")


def step_scroll(scr, entries):
    tm = scr.tm
    full = [(r["PROTO"], r["DESTINATION"]) for r in rows_of(tm.capture())]
    n = len(full)
    assert n == len(entries)
    tm.resize(120, 15)
    room = 15 - 4
    assert n > room
    tm.wait_for(lambda ls: len(ls) == 15 and len(rows_of(ls)) == room, WAIT, "a 15-line table")
    state = {"sel": None, "top": 0}

    def move(key, sel):
        sel = max(0, min(n - 1, sel))
        top = state["top"]
        if sel < top:
            top = sel
        elif sel >= top + room:
            top = sel - room + 1
        state["sel"], state["top"] = sel, top
        press(tm, key)
        want = full[top:top + room]
        tm.wait_for(lambda ls: [(r["PROTO"], r["DESTINATION"]) for r in rows_of(ls)] == want
                    and scr.selected()[0] == sel - top,
                    WAIT, "%s: rows %d..%d, row %d selected" % (key, top, top + room - 1, sel))
        return want

    seen = []
    seen.append(move("Home", 0))
    move("j", 1)
    move("Down", 2)
    move("j", 3)
    for k in range(8):
        move("Down", 4 + k)          # the selection reaches the bottom and scrolls
    seen.append(move("NPage", state["sel"] + room))
    seen.append(move("Home", 0))
    seen.append(move("End", n - 1))
    seen.append(move("PPage", n - 1 - room))
    move("k", state["sel"] - 1)
    assert len(set(map(tuple, seen))) >= 3, "the visible rows never changed: %r" % seen
    tm.resize(120, 40)
    tm.wait_for(lambda ls: len(ls) == 40 and len(rows_of(ls)) == n, WAIT, "the 40-line table")


def step_details(scr, entries, ports):
    tm = scr.tm
    e = next(e for e in entries if e["l4proto"] == TCP and e["orig"]["dport"] == 5001)
    rows = rows_of(tm.capture())
    index = [r["DESTINATION"] for r in rows].index("127.0.0.1:5001")
    press(tm, "Home")
    tm.wait_for(lambda ls: scr.selected()[0] == 0, WAIT, "the first row selected")
    for _ in range(index):
        tm.send("j")
    tm.wait_for(lambda ls: scr.selected()[1]["DESTINATION"] == "127.0.0.1:5001", WAIT,
                "the port-5001 flow selected")
    tm.send("Enter")
    # the whole pane, not its first lines: a capture can land mid-draw
    lines = tm.wait_for(box, WAIT, "the details pane")
    text = "\n".join(lines)
    m = re.search(r"original\s+(\S+) -> (\S+)", text)
    assert m, text
    assert m.groups() == ("127.0.0.1:%d" % ports["tcp4"], "127.0.0.1:5001"), m.groups()
    m = re.search(r"reply\s+(\S+) -> (\S+)", text)
    assert m and m.groups() == ("127.0.0.1:5001", "127.0.0.1:%d" % ports["tcp4"]), text
    assert re.search(r"protocol\s+tcp \(6\), ipv4", text), text
    assert re.search(r"state\s+ESTABLISHED", text), text
    assert re.search(r"sent\s+\S+ in %d packets" % e["orig"]["packets"], text), text
    assert re.search(r"received\s+\S+ in %d packets" % e["reply"]["packets"], text), text
    assert re.search(r"mark\s+42\b", text), text
    assert re.search(r"\bid\s+%d\b" % e["ctid"], text), text
    tm.send("Escape")
    tm.wait_for(lambda ls: not any("Flow details" in l for l in ls)
                and len(rows_of(ls)) == len(entries), WAIT, "the details pane closed")


def step_pause(scr):
    tm = scr.tm
    tm.send("p")
    before = tm.wait_for(lambda ls: "PAUSED" in header(ls), WAIT, "PAUSED")
    ages = [r["AGE"] for r in rows_of(before)]
    time.sleep(2.2)                      # two refresh intervals
    after = tm.capture()
    assert "PAUSED" in header(after)
    assert after == before, "the table changed while paused:\n%s" % screen_text(after)
    tm.send("p")
    tm.wait_for(lambda ls: "PAUSED" not in header(ls)
                and [r["AGE"] for r in rows_of(ls)] != ages, 3, "ages moving after resume")


def si(n):
    return "%dB" % n if n < 1000 else "%.1fkB" % (n / 1000.0)


def iec(n):
    return "%dB" % n if n < 1024 else "%.1fKiB" % (n / 1024.0)


def step_units(scr, entries):
    tm = scr.tm
    e = next(e for e in entries if e["l4proto"] == TCP and e["orig"]["dport"] == 5001)
    reply = e["reply"]["bytes"]
    assert si(reply) == "70.3kB" and iec(reply) == "68.6KiB", reply   # the brief's example

    def cell(ls, name="RX"):
        return next(r[name] for r in rows_of(ls) if r["DESTINATION"] == "127.0.0.1:5001")

    def amounts(ls):
        return [r[c] for r in rows_of(ls) for c in ("TX", "RX")]

    def rates(ls):
        return [r[c] for r in rows_of(ls) for c in ("RATE_TX", "RATE_RX")]

    tm.wait_for(lambda ls: cell(ls) == si(reply) and all(v != "-" for v in rates(ls)), WAIT,
                "SI bytes and known rates")
    tm.send("B")
    tm.wait_for(lambda ls: cell(ls) == iec(reply) and cell(ls, "TX") == iec(e["orig"]["bytes"])
                and all(re.fullmatch(r"\d+B|\d+\.\dKiB", v) for v in amounts(ls))
                and any(v.endswith("KiB") for v in amounts(ls)), WAIT, "IEC units")
    tm.send("B")
    tm.wait_for(lambda ls: cell(ls) == "%dB" % reply
                and all(re.fullmatch(r"\d+B", v) for v in amounts(ls))
                and all(re.fullmatch(r"\d+B/s", v) for v in rates(ls)), WAIT, "raw units")
    tm.send("B")
    tm.wait_for(lambda ls: cell(ls) == si(reply) and any(v.endswith("kB") for v in amounts(ls)),
                WAIT, "SI units again")
    tm.send("b")
    lines = tm.wait_for(lambda ls: all(re.fullmatch(r"[\d.]+[kMG]?b/s", v) for v in rates(ls)),
                        WAIT, "rates in bits")
    assert re.search(r"TX \S+b/s  RX \S+b/s", lines[0]), lines[0]
    tm.send("b")
    tm.wait_for(lambda ls: all(re.fullmatch(r"[\d.]+[kMG]?B/s", v) for v in rates(ls)),
                WAIT, "rates in bytes again")


TOGGLES = [
    ("T", lambda e: e["proto"] == "tcp"),
    ("U", lambda e: e["proto"] in ("udp", "udplite")),
    ("D", lambda e: e["proto"] == "dccp"),
    ("I", lambda e: e["proto"] in ("icmp", "icmpv6")),
    ("S", lambda e: e["proto"] == "sctp"),
    ("4", lambda e: e["family"] == "ipv4"),
    ("6", lambda e: e["family"] == "ipv6"),
]


def step_toggles(scr, entries):
    tm = scr.tm
    everything = flow_ids(entries)
    for key, hides in TOGGLES:
        want = flow_ids([e for e in entries if not hides(e)])
        assert want != everything and sum(want.values()) > 0, key
        tm.send(key)
        lines = tm.wait_for(lambda ls, want=want: row_ids(rows_of(ls)) == want
                            and "filter" in header(ls),
                            WAIT, "%s hiding its flows" % key)
        if key == "T":
            assert not any(l.startswith("tcp") for l in lines), screen_text(lines)
        tm.send(key)
        tm.wait_for(lambda ls: row_ids(rows_of(ls)) == everything and "filter" not in header(ls),
                    WAIT, "%s again showing every flow" % key)


HELP_KEYS = ("PgUp PgDn Home End", "o / r", "T U D I S", "toggle TCP, UDP, DCCP, ICMP, SCTP",
             "4 6", "p or space", "refresh interval", "this help")


def step_help(scr, entries):
    tm = scr.tm
    for closer in ("Escape", "q", "?"):
        tm.send("?")
        # the whole help, not a capture taken while tmux still receives the box
        lines = tm.wait_for(lambda ls: any("Help (any of Esc q ? closes)" in l for l in ls)
                            and all(k in "\n".join(ls) for k in HELP_KEYS), WAIT, "the help")
        text = "\n".join(lines)
        for k in HELP_KEYS:
            assert k in text, (k, text)
        tm.send(closer)
        tm.wait_for(lambda ls: not any("Help" in l for l in ls)
                    and len(rows_of(ls)) == len(entries), WAIT, "%s closing the help" % closer)
    assert tm.alive()


def step_resize(scr, entries, titles):
    tm = scr.tm
    n = len(entries)
    tm.resize(70, 20)
    lines = tm.wait_for(lambda ls: len(ls) == 20 and len(rows_of(ls)) == n
                        and all(len(l) <= 70 for l in ls), WAIT, "a 70x20 table")
    assert lines[0].startswith("flowtop ") and header(lines).strip(), screen_text(lines)
    _head, small_titles, rows = parse_table(lines)
    assert {"PROTO", "DESTINATION"} <= set(small_titles), small_titles
    assert set(small_titles) < set(titles), small_titles
    assert row_ids(rows) == flow_ids(entries)
    assert lines[-1].startswith("q quit")
    tm.resize(30, 8)
    lines = tm.wait_for(lambda ls: next(l for l in ls if l.strip()).rstrip()
                        == "too small: 30x8, need 40x10", WAIT, "'too small'")
    assert len([l for l in lines if l.strip()]) == 1, screen_text(lines)
    tm.resize(120, 40)
    lines = tm.wait_for(lambda ls: len(ls) == 40 and len(rows_of(ls)) == n, WAIT,
                        "the full table again")
    assert parse_table(lines)[1] == titles
    assert row_ids(rows_of(lines)) == flow_ids(entries)


# -- tests -----------------------------------------------------------------------------

def test_live_screen_walkthrough(tmp_path):
    with Netns("scr") as ns, Tmux("scr") as tm:
        ports = populate(ns)
        ns_set_sysctls(ns, 0)       # the guard has something to switch on and back off
        assert ns_sysctls(ns) == ("0", "0")
        entries = ctparse.parse(ns.conntrack_list())
        assert len(entries) >= 12, entries
        scr = Screen(ns, tm, str(tmp_path))
        scr.start(["--loopback", "-n"], 120, 40)

        rows = step_header_and_rows(scr, entries)
        assert ns_sysctls(ns) == ("1", "1")
        titles = parse_table(tm.capture())[1]
        assert len(rows) == len(entries)
        latencies = []
        step_sort(scr, entries, latencies)
        step_filter(scr, entries)
        step_scroll(scr, entries)
        step_details(scr, entries, ports)
        step_pause(scr)
        step_units(scr, entries)
        step_toggles(scr, entries)
        step_help(scr, entries)
        step_resize(scr, entries, titles)

        # No flow came or went behind our back: the comparisons above were fair.
        assert flow_ids(ctparse.parse(ns.conntrack_list())) == flow_ids(entries)
        print("\nkey latency (send-keys 'o' -> header changed, %d presses): "
              "min %.0f ms, median %.0f ms, max %.0f ms"
              % (len(latencies), 1e3 * min(latencies), 1e3 * statistics.median(latencies),
                 1e3 * max(latencies)))
        assert max(latencies) < KEY_LIMIT, latencies

        tm.send("q")
        status, stty_after = read_exit(scr.workdir, WAIT)
        assert status == 0, scr.stderr()
        assert stty_after == scr.stty_before()
        assert scr.stderr() == ""
        assert ns_sysctls(ns) == ("0", "0")


def test_sigterm_restores_everything(tmp_path):
    with Netns("scrterm", sysctls={ACCT: 0, TIMESTAMP: 0}) as ns, Tmux("scrterm") as tm:
        ns.run("conntrack", "-I", "-p", "tcp", "-s", "127.0.0.1", "-d", "127.0.0.1",
               "--sport", "4000", "--dport", "5001", "--state", "ESTABLISHED", "-t", "300")
        scr = Screen(ns, tm, str(tmp_path))
        scr.start(["--loopback", "-n"], 100, 30)
        tm.wait_for(lambda ls: "127.0.0.1:5001" in "\n".join(ls) and "acct on" in header(ls),
                    10, "the screen")
        assert ns_sysctls(ns) == ("1", "1")
        os.kill(flowtop_pid(ns), signal.SIGTERM)
        status, stty_after = read_exit(scr.workdir, WAIT)
        assert status == 143, scr.stderr()
        assert stty_after == scr.stty_before()
        assert "Traceback" not in scr.stderr(), scr.stderr()
        assert ns_sysctls(ns) == ("0", "0")


def test_ctrl_c_exits_130(tmp_path):
    with Netns("scrintr", sysctls={ACCT: 0, TIMESTAMP: 0}) as ns, Tmux("scrintr") as tm:
        scr = Screen(ns, tm, str(tmp_path))
        scr.start(["--loopback", "-n"], 100, 30)
        tm.wait_for(lambda ls: "acct on" in header(ls), 10, "the screen")
        tm.send("C-c")
        status, stty_after = read_exit(scr.workdir, WAIT)
        assert stty_after == scr.stty_before()
        assert ns_sysctls(ns) == ("0", "0")
        assert scr.stderr() == ""
        assert status == 130


def frame_headers(lines):
    """The first line of each text frame: a time stamp and the flow count."""
    return [l for l in lines if re.search(r"\b\d+ flows\b", l)
            and re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", l)]


def test_term_dumb_falls_back_to_text_frames(tmp_path):
    with Netns("scrdumb") as ns, Tmux("scrdumb") as tm:
        ns.run("conntrack", "-I", "-p", "udp", "-s", "127.0.0.1", "-d", "127.0.0.1",
               "--sport", "4000", "--dport", "5353", "-t", "300")
        scr = Screen(ns, tm, str(tmp_path))
        scr.start(["--loopback", "-n", "-t", "0.5"], 120, 30, term="dumb")
        lines = tm.wait_for(lambda ls: len(frame_headers(ls)) >= 2, 10, "two text frames")
        assert any({"PROTO", "STATE"} <= set(l.split()) for l in lines), screen_text(lines)
        assert any("127.0.0.1:5353" in l for l in lines), screen_text(lines)
        esc = "\n".join(tm.capture(escapes=True))
        assert "\x1b" not in esc, repr(esc)        # no attributes, no curses drawing
        assert scr.stderr().splitlines() == [(
            "flowtop: no full-screen view (TERM is 'dumb'): printing text frames; "
            "-c asks for them")], scr.stderr()
        tm.send("C-c")
        status, stty_after = read_exit(scr.workdir, WAIT)
        assert status == 130
        assert stty_after == scr.stty_before()
        assert len(scr.stderr().splitlines()) == 1, scr.stderr()
        assert ns_sysctls(ns) == ("1", "1")


def test_stdout_not_a_tty_falls_back_to_text_frames(tmp_path):
    out = tmp_path / "out.txt"
    with Netns("scrpipe", sysctls={ACCT: 0, TIMESTAMP: 0}) as ns:
        ns.run("conntrack", "-I", "-p", "tcp", "-s", "127.0.0.1", "-d", "127.0.0.1",
               "--sport", "4000", "--dport", "5001", "--state", "ESTABLISHED", "-t", "300")
        with open(out, "w") as f:
            p = ns.popen(sys.executable, "-m", "flowtop", "--loopback", "-n", "-t", "0.5",
                         stdout=f, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, PYTHONPATH=REPO),
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and len(frame_headers(out.read_text().splitlines())) < 3:
                time.sleep(0.1)
            assert ns_sysctls(ns) == ("1", "1")
            p.send_signal(signal.SIGINT)
            _, err = p.communicate(timeout=WAIT)
        text = out.read_text()
        assert p.returncode == 130, (p.returncode, err)
        assert err.splitlines() == [(
            "flowtop: no full-screen view (stdout is not a terminal): printing text frames; "
            "-c asks for them")], err
        assert len(frame_headers(text.splitlines())) >= 3, text
        assert "\x1b" not in text
        assert "127.0.0.1:5001" in text, text
        assert ns_sysctls(ns) == ("0", "0")


def test_header_shows_the_accounting_the_kernel_has_now(tmp_path):
    with Netns("i11bacct") as ns, Tmux("i11bacct") as tm:
        ns_set_sysctls(ns, 1)
        scr = Screen(ns, tm, str(tmp_path))
        scr.start(["--loopback", "-n", "-G", "-t", "0.3"], 160, 30)
        tm.wait_for(lambda ls: "acct on" in header(ls) and "tstamp on" in header(ls), 10,
                    "acct on in the header")
        ns.run("sysctl", "-q", "-w", "%s=0" % ACCT)     # another program switches it off
        tm.wait_for(lambda ls: "acct OFF" in header(ls), WAIT, "acct OFF in the header")
        tm.send("q")
        status, _ = read_exit(scr.workdir, WAIT)
        assert status == 0, scr.stderr()
        assert ns_sysctls(ns) == ("0", "1")         # flowtop changed nothing: puts nothing back
