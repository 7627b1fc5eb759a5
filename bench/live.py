#!/usr/bin/env python3
"""bench/live.py N [--seconds S] [--keep] [--json-out FILE]: the live view, side by side.

Run as root.  Fills a throw-away namespace with N real flows (dump.py's
fill), then runs, in turn and in that namespace, flowtop's full-screen view
(``python3 -m flowtop -n -G --loopback -t 1``) and netsniff-ng's flowtop
(``/usr/sbin/flowtop -n -G -46TUI``), each in a 200x50 tmux pane, and
measures: steady CPU (% of one core, /proc/PID/stat), peak RSS (VmHWM), the
time until the pane shows >= 99 % of the flows, and key-to-screen latency.
Then, in the same namespace: one-shot ``flowtop --once --json`` against
``conntrack -L`` and the decoder's throughput (dump.py's in-namespace
measurement).  ``--mem`` adds where flowtop's memory goes (RSS by stage, and
tracemalloc by file and line), measured in separate in-namespace processes.
``--tools flowtop32`` also runs flowtop under a 32-bit (i386) python3 in a
chroot (``userland32.py``): a small router's CPU is 32-bit.  Each flowtop
column also gets the RSS of its interpreter alone and with flowtop's modules
imported, the floor its table sits on.
See bench/README.md.
"""

import argparse
import contextlib
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path[:0] = [BENCH, ROOT]

import netns  # noqa: E402
import userland32  # noqa: E402
from dump import fill  # noqa: E402

NSNG = "/usr/sbin/flowtop"            # netsniff-ng's flowtop (Debian package netsniff-ng)
WIDTH, HEIGHT = 200, 50
CLK_TCK = os.sysconf("SC_CLK_TCK")
TERM = "xterm-256color"               # both programs get the same terminal type

FLOWTOP_COUNT = re.compile(r"^flowtop \S+\s+(\d+) flows")
NSNG_COUNT = re.compile(r"Kernel netfilter flows\((\d+)\)")
FLOWTOP_SORT = re.compile(r"\bsort (\S+ \S+)")
FLOWTOP_VIEW = re.compile(r"\[(Flows|Processes|Hosts|Countries|Interfaces|Devices)\]")
ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
REVERSE = re.compile(r"\x1b\[(?:[0-9;]*;)?7[;m]")   # SGR reverse video (the selected row)
NSNG_WHAT = re.compile(r"Kernel netfilter flows\(\d+\) for (\S*)")


# --- processes -----------------------------------------------------------------

def cpu_seconds(pid):
    """utime + stime of the whole process (all threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def system_busy():
    """(busy, total) jiffies of all CPUs, from /proc/stat: others' load during a window."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    return kids


def find_process(root, match, timeout=10.0):
    """``root`` or a descendant for which ``match(pid)`` holds (the pane runs
    a shell, ``ip netns exec`` and ``env`` before the program: most exec)."""
    deadline = time.monotonic() + timeout
    while True:
        kids = children_map()
        todo = [root]
        while todo:
            pid = todo.pop(0)
            try:
                if match(pid):
                    return pid
            except OSError:
                pass
            todo.extend(kids.get(pid, ()))
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)


def is_python_flowtop(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        argv = f.read().split(b"\0")
    exe = os.path.basename(os.readlink("/proc/%d/exe" % pid))
    return exe.startswith("python") and b"flowtop" in argv[:4]


def is_nsng(pid):
    return os.readlink("/proc/%d/exe" % pid) == NSNG


# --- tmux ----------------------------------------------------------------------

class Tmux:
    """One private tmux server, ``tmux -L ftbench-<pid>``, killed by ``kill()``."""

    def __init__(self):
        self.socket = "ftbench-%d" % os.getpid()
        self.started = False
        self.path = None         # the server's socket file: tmux leaves it behind
        self.env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}

    def __call__(self, *args, check=True):
        r = subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null"] + [str(a) for a in args],
                           capture_output=True, text=True, timeout=10, env=self.env)
        if check and r.returncode:
            raise RuntimeError("tmux %s: %s" % (args[0], r.stderr.strip()))
        return r.stdout

    def start(self, name, command, cwd=ROOT):
        """Session ``name`` running the shell line ``command``; the pane stays
        after the program exits, so its status and last screen can be read."""
        self.started = True
        self("new-session", "-d", "-s", name, "-x", WIDTH, "-y", HEIGHT, "-c", cwd, command,
             ";", "set-option", "-w", "-t", name, "remain-on-exit", "on")
        self.path = self("display-message", "-p", "#{socket_path}").strip() or self.path
        return int(self("display-message", "-p", "-t", name, "#{pane_pid}").strip())

    def capture(self, name, history=False, escapes=False):
        args = (["capture-pane", "-p", "-t", name] + (["-S", "-"] if history else [])
                + (["-e"] if escapes else []))
        return self(*args).split("\n")

    def send(self, name, *keys):
        self("send-keys", "-t", name, *keys)

    def dead(self, name):
        """Whether the pane's program has ended (its pty closed)."""
        out = self("display-message", "-p", "-t", name, "#{pane_dead}", check=False).strip()
        return out == "1"

    def kill_session(self, name):
        self("kill-session", "-t", name, check=False)

    def kill(self):
        if self.started:
            self("kill-server", check=False)
            self.started = False
        if self.path and os.path.basename(self.path) == self.socket:
            try:
                os.unlink(self.path)
            except OSError:
                pass
            self.path = None


def first_match(regex, lines, group=1):
    for line in lines[:4]:
        m = regex.search(line)
        if m:
            return m.group(group)
    return None


# --- one program in a pane -------------------------------------------------------

class Spec:
    """One program to measure.  ``floor``: (python argv, cwd) for a Python
    program, whose interpreter's own RSS is measured too (interpreter_floor)."""

    def __init__(self, label, argv, match, count_re, key, marker_re, stderr_file, floor=None,
                 keys=(), cwd=ROOT):
        self.label, self.argv, self.match = label, argv, match
        self.cwd = cwd          # where ``python3 -m flowtop`` runs: which tree
        self.count_re, self.key, self.marker_re = count_re, key, marker_re
        self.stderr_file, self.floor = stderr_file, floor
        self.keys = keys        # (what, tmux key, marker(tm, pane)): the key-latency rows


def selected_row(tm, name):
    """The cursor: (screen line, the flow's naming columns) of the row drawn in reverse
    video below the titles.  A page that scrolls keeps the line: the row tells."""
    lines = tm.capture(name, escapes=True)
    plain = [ESCAPE.sub("", line) for line in lines]
    cut = plain[2].find(" TX ") if len(plain) > 2 else -1     # before the counters, which tick
    for i, line in enumerate(lines[3:], 3):
        if REVERSE.search(line):
            return i, plain[i][:cut if cut > 0 else 60]
    return None


def header_marker(regex):
    return lambda tm, name: first_match(regex, tm.capture(name))


# flowtop's key-latency rows: a cursor move, a sort key, a view switch (Tab)
FLOWTOP_KEYS = (("cursor (Down)", "Down", selected_row),
                ("sort (o)", "o", header_marker(FLOWTOP_SORT)),
                ("view (Tab)", "Tab", header_marker(FLOWTOP_VIEW)))


def press(tm, name, key, marker, presses, timeout, gap=1.0):
    """Latencies (s) of ``presses`` presses of ``key``, each until ``marker`` changes, and
    how many never changed it within ``timeout``."""
    lat, misses = [], 0
    for _ in range(presses):
        before = marker(tm, name)
        k0 = time.monotonic()
        tm.send(name, key)
        changed = None
        while time.monotonic() - k0 < timeout:
            now = marker(tm, name)
            if now is not None and now != before:
                changed = time.monotonic() - k0
                break
            time.sleep(0.005)
        if changed is None:
            misses += 1
        else:
            lat.append(changed)
        time.sleep(max(0.0, k0 + gap - time.monotonic()))
    return lat, misses


def measure_program(tm, ns, spec, n, args):
    """Start ``spec`` in a pane, then: time to the full count, steady CPU, key
    latency, peak RSS; then quit it.  Returns a dict of the numbers."""
    res = {"label": spec.label, "argv": spec.argv, "error": None}
    name = spec.label.split()[0].replace(".", "_")
    line = pane_line(ns.argv(*spec.argv), spec.stderr_file)
    t0 = time.monotonic()
    pane_pid = tm.start(name, line, cwd=spec.cwd)
    pid = find_process(pane_pid, spec.match)
    if pid is None:
        res["error"] = "the program did not start: %s" % tail(spec.stderr_file)
        tm.kill_session(name)
        return res
    res["pid"] = pid
    try:
        _measure(tm, name, pid, t0, spec, n, args, res)
    finally:
        res["exit"] = quit_pane(tm, name, pid, res, spec.stderr_file + ".status")
        screen = "\n".join(tm.capture(name, history=True))
        err = tail(spec.stderr_file, 4000)
        res["traceback"] = "Traceback" in screen or "Traceback" in err
        res["stderr"] = err
        tm.kill_session(name)
    return res


def _measure(tm, name, pid, t0, spec, n, args, res):
    # 1. until the pane shows >= 99 % of the flows
    first = full = None
    count = None
    deadline = t0 + args.count_timeout
    while time.monotonic() < deadline:
        lines = tm.capture(name)
        c = first_match(spec.count_re, lines)
        now = time.monotonic()
        if c is not None:
            count = int(c)
            if first is None:
                first = now - t0
            if count >= 0.99 * n:
                full = now - t0
                break
        if tm.dead(name):
            res["error"] = "exited early: %s" % tail(spec.stderr_file)
            return
        time.sleep(0.1)
    res.update(first_frame_s=first, full_count_s=full, count_at_full=count)

    # 2. steady CPU: a quiet window (no screen polling) after warm-up and the full count
    start = max(t0 + args.warmup, time.monotonic())
    time.sleep(max(0.0, start - time.monotonic()))
    c0, b0, w0 = cpu_seconds(pid), system_busy(), time.monotonic()
    time.sleep(args.seconds)
    c1, b1, w1 = cpu_seconds(pid), system_busy(), time.monotonic()
    cpu = c1 - c0
    res["cpu_pct"] = 100.0 * cpu / (w1 - w0)
    total_cpus = (b1[1] - b0[1]) / CLK_TCK
    res["others_cpu_pct"] = 100.0 * ((b1[0] - b0[0]) / CLK_TCK - cpu) / (w1 - w0)
    res["cpus"] = round(total_cpus / (w1 - w0))
    res["rss_steady_kib"] = status_kib(pid, "VmRSS")
    c = first_match(spec.count_re, tm.capture(name))
    res["count_after_cpu"] = int(c) if c is not None else None

    # 3. key-to-screen latency: a key that changes the header, ~1 s apart
    lat, misses = press(tm, name, spec.key, header_marker(spec.marker_re), args.presses,
                        args.key_timeout)
    res["key"] = spec.key
    res["key_latencies_s"] = lat
    res["key_misses"] = misses
    res["key_median_s"] = statistics.median(lat) if lat else None
    # 4. the key-latency rows: cursor, sort, view switch (Tab goes round the views)
    res["keys"] = {}
    for what, key, marker in spec.keys:
        lat, misses = press(tm, name, key, marker, args.presses, args.key_timeout)
        res["keys"][what] = {"latencies_s": lat, "misses": misses}

    lines = tm.capture(name)
    c = first_match(spec.count_re, lines)
    res["count_at_end"] = int(c) if c is not None else None
    res["screen_head"] = lines[:3]
    res["vmhwm_kib"] = status_kib(pid, "VmHWM")
    res["rss_end_kib"] = status_kib(pid, "VmRSS")


def pane_line(argv, stderr_file):
    """The pane's shell line: ``argv`` with stderr into ``stderr_file``, then its exit
    status into ``stderr_file``.status (tmux's own #{pane_dead_status} is not reliable:
    the pty can close first, and then tmux 3.3 sometimes never reports the status)."""
    return "%s 2>%s; echo $? >%s" % (" ".join(shlex.quote(a) for a in argv),
                                     shlex.quote(stderr_file), shlex.quote(stderr_file + ".status"))


def quit_pane(tm, name, pid, res, status_file):
    """Send q; the program's exit status (written by the pane's shell into
    ``status_file``), or how it had to be stopped.  ``res["quit_exit_s"]``: seconds from
    q until the process was gone."""
    t0 = time.monotonic()
    if os.path.exists("/proc/%d" % pid):
        tm.send(name, "q")
    gone = None
    while time.monotonic() - t0 < 30:
        if gone is None and not _running(pid):
            gone = time.monotonic() - t0
        # (the shell creates the file before it writes the status: wait for the text)
        if gone is not None and os.path.exists(status_file) and tail(status_file).strip():
            break
        time.sleep(0.02)
    res["quit_exit_s"] = gone
    status = tail(status_file)
    if gone is None:                 # did not quit on q: stop it by its pid
        for sig in (15, 9):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            time.sleep(1)
        return "did not exit within 30 s of q"
    return int(status) if status.lstrip("-").isdigit() else "exited, no status (%r)" % status


def _running(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def tail(path, limit=300):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-limit:].strip()
    except OSError:
        return ""


def code_state(root=ROOT):
    """The commit and a digest of flowtop/*.py as they are now (others may be editing the
    tree between runs): what a result was measured against."""
    import hashlib
    h = hashlib.sha1()
    for d, _dirs, files in sorted(os.walk(os.path.join(root, "flowtop"))):
        for f in sorted(files):
            if f.endswith(".py"):
                with open(os.path.join(d, f), "rb") as fh:
                    h.update(f.encode() + b"\0" + fh.read())
    try:
        commit = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        commit = ""
    return "%s, flowtop/*.py sha1 %s" % (commit or "no git", h.hexdigest()[:10])


def ensure_netsniff_ng():
    if os.path.exists(NSNG):
        return None
    print("netsniff-ng's flowtop is missing: apt-get install netsniff-ng", flush=True)
    r = subprocess.run(["apt-get", "install", "-y", "netsniff-ng"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    if r.returncode or not os.path.exists(NSNG):
        return "apt-get install netsniff-ng failed: %s" % r.stderr.strip()[-200:]
    return None


def nsng_version():
    try:
        out = subprocess.run([NSNG, "-v"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"flowtop (\S+)", out)
    return m.group(1).rstrip(",") if m else None


# --- memory: in-namespace measurements of the collector and its table ---------------

def _rss():
    return {k: status_kib(os.getpid(), k) for k in ("VmRSS", "VmHWM")}


def _run_collector(seconds, on_tick=None):
    """The live view's collector thread and, once a second, what the screen
    does with a snapshot (filter, sort, one page of rows) -- without curses."""
    from flowtop import cli
    from flowtop.sources import KernelSource
    from flowtop.enrich.bundle import from_options
    from flowtop.collector import Collector
    from flowtop.views.cells import Formatter
    from flowtop.views.columns import layout
    from flowtop.views.select import build
    from flowtop.views.state import ViewState
    stages = {}
    opts = cli.parse(["-n", "-G", "--loopback", "--no-sysctl", "-t", "1"])
    source = KernelSource(opts)
    source.open()
    enrich = from_options(opts)
    state = ViewState(opts)
    fmt = Formatter(state, enrich)
    stages["opened"] = _rss()
    col = Collector(source, opts.interval, enrich)
    col.start()
    t0 = time.monotonic()
    snap = None
    while snap is None and time.monotonic() - t0 < 120:
        time.sleep(0.05)
        snap = col.latest()
    stages["first snapshot"] = _rss()
    first_s = time.monotonic() - t0
    shown = []
    while time.monotonic() - t0 < seconds:
        snap = col.latest()
        shown = build(snap.rows, state, fmt)
        col.set_visible([r.key for r in shown[:HEIGHT - 4]])
        cols = layout(WIDTH, state)
        for r in shown[:HEIGHT - 4]:
            fmt.line(r, cols, snap.wall)
        if on_tick:
            on_tick()
        time.sleep(1.0)
    stages["after %gs" % seconds] = _rss()
    return col, source, enrich, shown, stages, first_s


STATUS_OF_SELF = "print(open('/proc/self/status').read().split('%s:')[1].split()[0])"
RSS_OF_SELF = STATUS_OF_SELF % "VmRSS"
LIVE_MODULES = "import curses, flowtop.cli, flowtop.main, flowtop.collector, flowtop.views.screen\n"


def interpreter_floor(ns, python_argv, cwd):
    """VmHWM (KiB) of ``python_argv -c pass`` and of it importing what the
    live view imports: what a flowtop process holds before its first flow."""
    hwm = STATUS_OF_SELF % "VmHWM"
    out = {}
    for name, code in (("alone_kib", hwm), ("modules_kib", LIVE_MODULES + hwm)):
        r = ns.run(*(python_argv + ["-c", code]), cwd=cwd, check=False)
        out[name] = int(r.stdout) if r.returncode == 0 and r.stdout.strip().isdigit() else None
    return out


def inside_mem(seconds):
    """RSS by stage, no tracemalloc (its own bookkeeping would inflate RSS)."""
    stages = {}
    for label, flags in (("python3 -S -c ... (no site)", ["-S"]),
                         ("python3 -c ... (with site)", [])):
        kib = int(subprocess.run([sys.executable] + flags + ["-c", RSS_OF_SELF],
                                 stdout=subprocess.PIPE, text=True).stdout)
        stages[label] = {"VmRSS": kib, "VmHWM": kib}
    stages["this harness started"] = _rss()
    import curses  # noqa: F401  (the live view imports it)
    from flowtop import cli, collector, table  # noqa: F401
    from flowtop.views import screen, select  # noqa: F401
    stages["imports"] = _rss()
    col, source, enrich, shown, more, first_s = _run_collector(seconds)
    stages.update(more)
    flows = len(col.table)
    col.stop()
    source.close()
    enrich.close()
    return {"stages": stages, "flows": flows, "first_snapshot_s": first_s,
            "full_every": col.full_every}


def inside_tracemalloc(seconds, top):
    import tracemalloc
    tracemalloc.start(1)
    import curses  # noqa: F401
    from flowtop import cli, collector, table  # noqa: F401
    from flowtop.views import screen, select  # noqa: F401
    imports = tracemalloc.get_traced_memory()[0]
    col, source, enrich, shown, _stages, _f = _run_collector(seconds)
    flows = len(col.table)
    col.stop()
    time.sleep(0.6)
    snap = tracemalloc.take_snapshot()
    current, peak = tracemalloc.get_traced_memory()
    keep = (col, source, enrich, shown)     # alive until the snapshot was taken
    del keep

    def short(fn):
        for base in (ROOT + os.sep, os.path.dirname(os.__file__) + os.sep):
            if fn.startswith(base):
                return fn[len(base):]
        return fn
    by_file = [(short(s.traceback[0].filename), s.size, s.count)
               for s in snap.statistics("filename")[:top]]
    by_line = []
    for st in snap.statistics("lineno")[:top]:
        fr = st.traceback[0]
        try:
            with open(fr.filename) as f:
                code = f.read().splitlines()[fr.lineno - 1].strip()
        except (OSError, IndexError):
            code = ""
        by_line.append(("%s:%d" % (short(fr.filename), fr.lineno), st.size, st.count, code[:70]))
    table_objs = {}
    try:
        table_rows = list(col.table)
        if table_rows:
            r = table_rows[0]
            table_objs = {"row_type": type(r).__name__, "entry_type": type(r.entry).__name__,
                          "row_slots": hasattr(type(r), "__slots__"),
                          "entry_slots": hasattr(type(r.entry), "__slots__"),
                          "row_sizeof": sys.getsizeof(r), "entry_sizeof": sys.getsizeof(r.entry)}
    except Exception as exc:       # diagnostics only
        table_objs = {"error": str(exc)}
    return {"flows": flows, "traced_imports": imports, "traced_now": current, "traced_peak": peak,
            "by_file": by_file, "by_line": by_line, "objects": table_objs}


def mem_report(mem, tm_):
    out = []
    if mem:
        out.append("flowtop memory by stage (collector + screen work, no curses; "
                   "VmRSS / VmHWM MiB):")
        for stage, v in mem["stages"].items():
            out.append("  %-30s %7.1f  %7.1f" % (stage, v["VmRSS"] / 1024, v["VmHWM"] / 1024))
        out.append("  %d flows in the table, first snapshot after %.2f s, full dump every %.1f s"
                   % (mem["flows"], mem["first_snapshot_s"], mem["full_every"]))
    if tm_:
        f = max(tm_["flows"], 1)
        out.append("tracemalloc (Python heap only): imports %.1f MiB, now %.1f MiB, peak %.1f MiB; "
                   "%.0f B/flow above imports"
                   % (tm_["traced_imports"] / 2**20, tm_["traced_now"] / 2**20,
                      tm_["traced_peak"] / 2**20, (tm_["traced_now"] - tm_["traced_imports"]) / f))
        if tm_["objects"]:
            out.append("  objects: %s" % ", ".join("%s=%s" % kv for kv in tm_["objects"].items()))
        out.append("  by file:")
        for fn, size, count in tm_["by_file"]:
            out.append("    %8.2f MiB %9d blocks  %s" % (size / 2**20, count, fn))
        out.append("  by line:")
        for where, size, count, code in tm_["by_line"]:
            out.append("    %8.2f MiB %9d blocks  %-32s %s" % (size / 2**20, count, where, code))
    return "\n".join(out)


# --- the report --------------------------------------------------------------------

def fmt_num(v, spec="%.1f", none="n/a"):
    return none if v is None else spec % v


def floor_mib(r, key):
    kib = (r.get("floor") or {}).get(key)
    return fmt_num(kib and kib / 1024)


def lat_text(lat, misses=0):
    """"median / max" in ms of a key's latencies (and how many presses it missed)."""
    if not lat:
        return "n/a" if not misses else "missed %d" % misses
    return "%.0f / %.0f%s" % (1000 * statistics.median(lat), 1000 * max(lat),
                              " (%d missed)" % misses if misses else "")


def side_by_side(results, n):
    def mib(r):
        return fmt_num(r.get("vmhwm_kib") and r["vmhwm_kib"] / 1024)

    def full(r):
        return fmt_num(r.get("full_count_s"), "%.2f", "never (%s shown)" % r.get("count_at_full"))

    def key_median(r):
        if "key" not in r:
            return "n/a"
        lat = r.get("key_latencies_s", ())
        return "%s (key %s, %d/%d)" % (fmt_num(lat and 1000 * statistics.median(lat), "%.0f"),
                                       r["key"], len(lat), len(lat) + r.get("key_misses", 0))

    def key_row(what):
        return lambda r: lat_text((r.get("keys") or {}).get(what, {}).get("latencies_s"),
                                  (r.get("keys") or {}).get(what, {}).get("misses"))

    def key_range(r):
        lat = r.get("key_latencies_s")
        return "%.0f / %.0f" % (1000 * min(lat), 1000 * max(lat)) if lat else "n/a"

    rows = [
        ("steady CPU, % of one core", lambda r: fmt_num(r.get("cpu_pct"))),
        ("  (others' CPU meanwhile, %)", lambda r: fmt_num(r.get("others_cpu_pct"), "%.0f")),
        ("peak RSS (VmHWM), MiB", mib),
        ("  interpreter alone, MiB", lambda r: floor_mib(r, "alone_kib")),
        ("  + flowtop's modules, no flows", lambda r: floor_mib(r, "modules_kib")),
        ("first count on screen, s", lambda r: fmt_num(r.get("first_frame_s"), "%.2f")),
        ("time to >= 99 % of N, s", full),
        ("count shown after the CPU window", lambda r: fmt_num(r.get("count_after_cpu"), "%d")),
        ("key-to-screen median, ms", key_median),
        ("key-to-screen min / max, ms", key_range),
        ("  cursor (Down) median / max, ms", key_row("cursor (Down)")),
        ("  sort (o) median / max, ms", key_row("sort (o)")),
        ("  view (Tab) median / max, ms", key_row("view (Tab)")),
        ("exit status after q", lambda r: str(r.get("exit"))),
        ("q -> process gone, s", lambda r: fmt_num(r.get("quit_exit_s"), "%.2f")),
        ("traceback", lambda r: "yes" if r.get("traceback") else "no"),
    ]
    labels = [r["label"] for r in results]
    w = max(26, max(len(l) for l in labels) + 2)
    out = ["%-34s" % ("N=%d" % n) + "".join("%-*s" % (w, l) for l in labels)]
    for title, get in rows:
        cells = []
        for r in results:
            if r.get("error") and "cpu_pct" not in r:
                cells.append("n/a (%s)" % r["error"][:60] if title.startswith("steady") else "")
            else:
                cells.append(get(r))
        out.append("%-34s" % title + "".join("%-*s" % (w, c) for c in cells))
    return "\n".join(out)


def dump_report(d):
    rows = {r["name"]: r for r in d["rows"]}
    ct = rows["conntrack -L -o extended"]
    dec = rows["decode only (feed)"]
    out = ["one-shot (dump.py's rows), median of %d:" % len(ct.get("walls") or ()),
           "  %-34s %8s %8s %9s" % ("", "wall s", "× ct", "RSS MiB")]
    for r in d["rows"]:
        if r["name"].startswith(("bare", "decode")):
            continue
        if r["na"] or ct["na"]:
            out.append("  %-34s n/a (%s)" % (r["name"], r["na"] or ct["na"]))
            continue
        out.append("  %-34s %8.3f %8.2f %9s" % (
            r["name"], r["wall"], r["wall"] / ct["wall"],
            "%.1f" % (r["rss_kib"] / 1024) if r.get("rss_kib") else "n/a"))
    if not dec["na"]:
        out.append("decode only (dump.py's feed over a recorded dump): %s flows/s "
                   "(%.3f s for %d flows)" % ("{:,.0f}".format(d["dumped_flows"] / dec["wall"]),
                                              dec["wall"], d["dumped_flows"]))
    else:
        out.append("decode only: n/a (%s)" % dec["na"])
    return "\n".join(out)


# --- main ----------------------------------------------------------------------

FLOOD_AFTER_DEFAULT = 60.0

# The flood's sender (run inside the namespace): RATE one-datagram UDP flows a
# second for SECONDS, paced every 10 ms, each to a new (address, port).
SENDER = r"""
import os, socket, sys, time
rate, seconds = int(sys.argv[1]), float(sys.argv[2])
net = os.environ.get("FTBENCH_V4_NET", "127")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
t0 = t = time.monotonic()
i = 0
while t - t0 < seconds:
    for _ in range(rate // 100):
        try:
            s.sendto(b"f", ("%s.3.%d.%d" % (net, (i >> 8) & 255, i & 255), 1024 + (i >> 16)))
        except OSError:
            pass
        i += 1
    t += 0.01
    d = t - time.monotonic()
    if d > 0:
        time.sleep(d)
print(i, time.monotonic() - t0)
"""


def setup_routes(ns, remote):
    """netsniff-ng's flowtop drops every flow whose original source is 127.0.0.1 (a
    libnetfilter_conntrack filter it always installs): local traffic leaves from
    127.0.0.2, so both programs see the same flows.  ``remote``: 10/8 is local too
    (from 10.0.0.2), and the IPv4 UDP flows go there: flows the default view
    (loopback hidden) shows."""
    for prefix in ("127.0.0.0/8", "127.0.0.1"):
        ns.run("ip", "route", "replace", "local", prefix, "dev", "lo", "table", "local",
               "proto", "kernel", "scope", "host", "src", "127.0.0.2")
    if remote:
        ns.run("ip", "addr", "add", "10.0.0.2/32", "dev", "lo")
        ns.run("ip", "route", "replace", "local", "10.0.0.0/8", "dev", "lo", "table", "local",
               "proto", "kernel", "scope", "host", "src", "10.0.0.2")


def measure_flood(tm, ns, spec, args):
    """``spec`` in a pane of the flood namespace: RSS before, then --flood new flows a
    second for --flood-seconds (the sort key pressed every 2 s meanwhile: latency; CPU
    over the flood; peak RSS), then RSS --flood-after seconds after the flood."""
    res = {}
    name = "flood-" + spec.label.split()[0].replace(".", "_")
    err = spec.stderr_file + ".flood"
    t0 = time.monotonic()
    pane_pid = tm.start(name, pane_line(ns.argv(*spec.argv), err), cwd=spec.cwd)
    pid = find_process(pane_pid, spec.match)
    if pid is None:
        tm.kill_session(name)
        return {"error": "the program did not start: %s" % tail(err)}
    try:
        while (time.monotonic() - t0 < args.count_timeout
               and first_match(spec.count_re, tm.capture(name)) is None):
            time.sleep(0.1)
        time.sleep(args.warmup)
        res["rss_before_kib"] = peak = status_kib(pid, "VmRSS")
        sender = subprocess.Popen(ns.argv(sys.executable, "-c", SENDER, args.flood,
                                          args.flood_seconds), stdout=subprocess.PIPE, text=True)
        c0, b0, w0 = cpu_seconds(pid), system_busy(), time.monotonic()
        lat, misses = [], 0
        marker = header_marker(spec.marker_re)
        while sender.poll() is None:
            got, missed = press(tm, name, spec.key, marker, 1, args.key_timeout, gap=2.0)
            lat += got
            misses += missed
            peak = max(peak, status_kib(pid, "VmRSS") or 0)
        c1, b1, w1 = cpu_seconds(pid), system_busy(), time.monotonic()
        out = (sender.stdout.read() or "0 0").split()
        res["sent"], res["send_s"] = int(out[0]), float(out[1])
        res["cpu_pct"] = 100.0 * (c1 - c0) / (w1 - w0)
        res["others_cpu_pct"] = 100.0 * ((b1[0] - b0[0]) / CLK_TCK - (c1 - c0)) / (w1 - w0)
        res["key_latencies_s"], res["key_misses"] = lat, misses
        c = first_match(spec.count_re, tm.capture(name))
        res["count_at_end"] = int(c) if c is not None else None
        res["kernel_at_end"] = ns.count()
        end = time.monotonic()
        while time.monotonic() - end < args.flood_after:
            peak = max(peak, status_kib(pid, "VmRSS") or 0)
            time.sleep(1.0)
        res["rss_after_kib"] = status_kib(pid, "VmRSS")
        res["rss_peak_kib"] = max(peak, res["rss_after_kib"] or 0)
        res["vmhwm_kib"] = status_kib(pid, "VmHWM")
    finally:
        res["exit"] = quit_pane(tm, name, pid, res, err + ".status")
        tm.kill_session(name)
    return res


def program_specs(tools, tmpdir, result, nsng_problem, u32_problem, baseline=None):
    specs, problems = [], []
    flowtop = ["env", "TERM=" + TERM, sys.executable, "-m", "flowtop"]
    floor = ([sys.executable], ROOT)
    if "flowtop" in tools:
        specs.append(Spec("flowtop -n -G --loopback", flowtop + ["-n", "-G", "--loopback", "-t", "1"],
                          is_python_flowtop, FLOWTOP_COUNT, "o", FLOWTOP_SORT,
                          os.path.join(tmpdir, "flowtop.err"), floor=floor, keys=FLOWTOP_KEYS))
    if "flowtop-default" in tools:
        specs.append(Spec("flowtop (no flags)", flowtop + ["-t", "1"],
                          is_python_flowtop, FLOWTOP_COUNT, "o", FLOWTOP_SORT,
                          os.path.join(tmpdir, "flowtop-default.err"), floor=floor,
                          keys=FLOWTOP_KEYS))
    if "flowtop-ng" in tools:
        specs.append(Spec("flowtop -n -G", flowtop + ["-n", "-G", "-t", "1"],
                          is_python_flowtop, FLOWTOP_COUNT, "o", FLOWTOP_SORT,
                          os.path.join(tmpdir, "flowtop-ng.err"), floor=floor, keys=FLOWTOP_KEYS))
    if "flowtop-noiface" in tools:
        specs.append(Spec("flowtop --no-iface",
                          flowtop + ["-n", "-G", "--loopback", "-t", "1", "--no-iface"],
                          is_python_flowtop, FLOWTOP_COUNT, "o", FLOWTOP_SORT,
                          os.path.join(tmpdir, "flowtop-noiface.err"), floor=floor))
    if "flowtop32" in tools:
        if u32_problem:
            problems.append({"label": "flowtop (i386)", "error": u32_problem})
        else:
            specs.append(Spec("flowtop (i386 %s)" % userland32.version(),
                              userland32.python("-m", "flowtop", "-n", "-G",
                                                "--loopback", "-t", "1",
                                                env=["TERM=" + TERM]),
                              is_python_flowtop, FLOWTOP_COUNT, "o", FLOWTOP_SORT,
                              os.path.join(tmpdir, "flowtop32.err"),
                              floor=(userland32.python(), "/")))
    if "netsniff" in tools:
        if nsng_problem:
            problems.append({"label": "netsniff-ng flowtop", "error": nsng_problem})
        else:
            version = result.get("netsniff_ng_version") or ""
            specs.append(Spec("netsniff-ng flowtop %s" % version,
                              ["env", "TERM=" + TERM, NSNG, "-n", "-G", "-46TUI"],
                              is_nsng, NSNG_COUNT, "T", NSNG_WHAT,
                              os.path.join(tmpdir, "nsng.err")))
    if baseline:
        specs = with_baseline(specs, baseline)
    return specs, problems


def with_baseline(specs, baseline):
    """Each flowtop column (run from this tree) followed by the same command run
    from the tree ``baseline`` (labelled "base"): before and after in one run."""
    out = []
    for spec in specs:
        out.append(spec)
        if spec.cwd == ROOT and spec.floor is not None:
            out.append(Spec("base-" + spec.label, spec.argv, spec.match, spec.count_re,
                            spec.key, spec.marker_re, spec.stderr_file + ".base",
                            floor=(spec.floor[0], baseline), keys=spec.keys, cwd=baseline))
    return out


def run_n(args, n, tm, tmpdir, tools, result, nsng_problem, u32_problem):
    """Fill a namespace with ``n`` flows and measure every program in it."""
    res = {"n": n, "programs": []}
    name = "ftbench-live-%d" % os.getpid()
    with netns.Namespace(name, keep=args.keep) as ns:
        want = ns.sysctl({"nf_conntrack_max": n + n // 10 + 1000})["nf_conntrack_max"]
        res["nf_conntrack_max"] = want["after"]
        setup_routes(ns, args.remote)
        mix, count, fill_s = fill(ns, n, args.distinct)
        res.update(count=count, fill_s=fill_s, mix=mix)
        print("namespace %s: %d flows (conntrack -C) of N=%d in %.1f s  [%s]"
              % (name, count, n, fill_s, ", ".join("%s %d" % kv for kv in mix.items())),
              flush=True)
        if count < 0.95 * n:
            print("error: only %d flows, under 95%% of N; nf_conntrack_max %s" % (count, want),
                  file=sys.stderr)
            return None
        specs, problems = program_specs(tools, tmpdir, result, nsng_problem, u32_problem,
                                        args.baseline)
        res["programs"].extend(problems)
        with (userland32.proc_mounted() if "flowtop32" in tools and not u32_problem
              else contextlib.nullcontext()):
            for spec in specs:
                print("running %s ..." % spec.label, flush=True)
                r = measure_program(tm, ns, spec, count, args)
                if spec.floor:
                    r["floor"] = interpreter_floor(ns, *spec.floor)
                res["programs"].append(r)
                if r.get("error"):
                    print("  %s: %s" % (spec.label, r["error"]), flush=True)
        if not args.no_dump:
            print("one-shot dump and decode (dump.py --inside) ...", flush=True)
            inner = ns.run(sys.executable, os.path.join(BENCH, "dump.py"), "--inside",
                           "--repeat", 3, cwd=ROOT)
            res["dump"] = json.loads(inner.stdout)
        if args.mem:
            print("memory: RSS by stage, then tracemalloc (separate processes) ...", flush=True)
            me = os.path.abspath(__file__)
            res["mem"] = json.loads(ns.run(sys.executable, me, "--inside-mem",
                                           "--seconds", args.mem_seconds, cwd=ROOT).stdout)
            res["tracemalloc"] = json.loads(ns.run(
                sys.executable, me, "--inside-tracemalloc", "--seconds", args.mem_seconds,
                cwd=ROOT).stdout)
        if args.keep:
            print("kept namespace %s (remove with 'ip netns del %s')" % (name, name))
    return res


def run_flood(args, tm, tmpdir, tools, result, nsng_problem):
    """The flood row: a fresh namespace, each program in turn."""
    out = {"rate": args.flood, "seconds": args.flood_seconds, "udp_timeout": args.flood_timeout,
           "programs": []}
    name = "ftbench-flood-%d" % os.getpid()
    with netns.Namespace(name) as ns:
        peak = int(args.flood * args.flood_timeout * 1.5) + 10000
        t = args.flood_timeout
        out["sysctl"] = ns.sysctl({"nf_conntrack_max": peak})
        out["sysctl"].update(ns.sysctl({"nf_conntrack_udp_timeout": int(t),
                                        "nf_conntrack_udp_timeout_stream": int(t)}, exact=True))
        setup_routes(ns, args.remote)
        specs, _problems = program_specs(tools, tmpdir, result, nsng_problem, "not in floods",
                                         args.baseline)
        for spec in specs:
            print("flood: running %s ..." % spec.label, flush=True)
            r = measure_flood(tm, ns, spec, args)
            r["label"] = spec.label
            out["programs"].append(r)
            time.sleep(args.flood_timeout + 2)     # the flood's flows gone before the next
    return out


def run(args):
    result = {"ns": args.n, "kernel": platform.release(), "python": platform.python_version(),
              "code": code_state(), "remote": args.remote,
              "baseline": args.baseline and code_state(args.baseline),
              "loadavg_start": open("/proc/loadavg").read().split()[:3], "runs": []}
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    nsng_problem = ensure_netsniff_ng() if "netsniff" in tools else None
    u32_problem = userland32.ensure() if "flowtop32" in tools else None
    if "netsniff" in tools and not nsng_problem:
        result["netsniff_ng_version"] = nsng_version()
    if args.remote:
        os.environ["FTBENCH_V4_NET"] = "10"      # the fill's IPv4 UDP flows (netns._v4)
    tmpdir = tempfile.mkdtemp(prefix="ftbench-live-")
    tm = Tmux()
    try:
        for n in args.n:
            r = run_n(args, n, tm, tmpdir, tools, result, nsng_problem, u32_problem)
            if r is None:
                return 1
            result["runs"].append(r)
        if args.flood:
            result["flood"] = run_flood(args, tm, tmpdir, tools, result, nsng_problem)
    finally:
        tm.kill()
        shutil.rmtree(tmpdir, ignore_errors=True)
    result["loadavg_end"] = open("/proc/loadavg").read().split()[:3]

    print()
    print("kernel %s, Python %s, %s CPUs, loadavg at start %s, at end %s%s"
          % (result["kernel"], result["python"], os.cpu_count(), " ".join(result["loadavg_start"]),
             " ".join(result["loadavg_end"]),
             ", netsniff-ng flowtop %s" % result["netsniff_ng_version"]
             if result.get("netsniff_ng_version") else ""))
    print("CPU over %g s after the full count and >= %g s from start; pane %dx%d; code %s%s"
          % (args.seconds, args.warmup, WIDTH, HEIGHT, result["code"],
             "; IPv4 UDP flows to 10/8 (--remote)" if args.remote else ""))
    if result["baseline"]:
        print("base-* columns: %s (%s)" % (args.baseline, result["baseline"]))
    for r in result["runs"]:
        print()
        print("N=%d, conntrack -C %d" % (r["n"], r["count"]))
        if r["programs"]:
            print(side_by_side(r["programs"], r["n"]))
            for p in r["programs"]:
                if p.get("stderr"):
                    print("%s stderr: %s" % (p["label"], p["stderr"][-300:].replace("\n", " | ")))
        if "dump" in r:
            print(dump_report(r["dump"]))
        if args.mem:
            print(mem_report(r.get("mem"), r.get("tracemalloc")))
    if "flood" in result:
        f = result["flood"]
        print()
        print("flood: %d new UDP flows/s for %g s, UDP timeout %g s, in a fresh namespace"
              % (f["rate"], f["seconds"], f["udp_timeout"]))
        print(flood_report(f["programs"], args.flood_after))
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


def flood_report(results, after=FLOOD_AFTER_DEFAULT):
    def mib(kib):
        return fmt_num(kib and kib / 1024)
    rows = [
        ("flows sent / seconds", lambda f: "%s / %s" % (f.get("sent", "n/a"),
                                                        fmt_num(f.get("send_s"), "%.1f"))),
        ("CPU during the flood, % of one core", lambda f: fmt_num(f.get("cpu_pct"))),
        ("  (others' CPU meanwhile, %)", lambda f: fmt_num(f.get("others_cpu_pct"), "%.0f")),
        ("key (sort) median / max, ms", lambda f: lat_text(f.get("key_latencies_s"),
                                                           f.get("key_misses"))),
        ("count shown / conntrack -C at end", lambda f: "%s / %s" % (f.get("count_at_end"),
                                                                     f.get("kernel_at_end"))),
        ("RSS before, MiB", lambda f: mib(f.get("rss_before_kib"))),
        ("RSS peak (VmHWM), MiB", lambda f: "%s (%s)" % (mib(f.get("rss_peak_kib")),
                                                         mib(f.get("vmhwm_kib")))),
        ("RSS %gs after, MiB" % after, lambda f: mib(f.get("rss_after_kib"))),
        ("exit status after q", lambda f: str(f.get("exit"))),
    ]
    w = max(26, max(len(f["label"]) for f in results) + 2)
    out = ["%-38s" % "" + "".join("%-*s" % (w, f["label"]) for f in results)]
    for title, get in rows:
        out.append("%-38s" % title + "".join(
            "%-*s" % (w, f["error"][:w - 2] if f.get("error") else get(f)) for f in results))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int, nargs="*", help="numbers of flows to create, one run each")
    ap.add_argument("--seconds", type=float, default=20.0,
                    help="length of the steady-CPU window (default 20)")
    ap.add_argument("--warmup", type=float, default=5.0,
                    help="the CPU window starts no earlier than this after start (default 5)")
    ap.add_argument("--count-timeout", type=float, default=300.0,
                    help="give up waiting for 99%% of N on screen after this (default 300 s)")
    ap.add_argument("--presses", type=int, default=10,
                    help="key presses for the latency (default 10)")
    ap.add_argument("--key-timeout", type=float, default=5.0)
    ap.add_argument("--tools", default="flowtop,netsniff",
                    help="which programs: flowtop (-n -G --loopback), flowtop-default (no "
                         "flags), flowtop-ng (-n -G), flowtop-noiface (without route "
                         "lookups), flowtop32 (under an i386 python3, see "
                         "userland32.py), netsniff (default flowtop,netsniff)")
    ap.add_argument("--distinct", action="store_true",
                    help="every IPv4 UDP flow to an address of its own (many route lookups)")
    ap.add_argument("--remote", action="store_true",
                    help="IPv4 UDP flows to 10/8 (routed to lo) instead of 127/8: flows the "
                         "default view (loopback hidden) shows")
    ap.add_argument("--flood", type=int, default=0, metavar="RATE",
                    help="also the flood row: RATE new UDP flows a second (e.g. 20000)")
    ap.add_argument("--flood-seconds", type=float, default=20.0)
    ap.add_argument("--flood-timeout", type=float, default=8.0, help="UDP timeout in the flood")
    ap.add_argument("--flood-after", type=float, default=FLOOD_AFTER_DEFAULT,
                    help="RSS this long after the flood (default 60 s)")
    ap.add_argument("--no-dump", action="store_true", help="skip the one-shot dump/decode rows")
    ap.add_argument("--mem", action="store_true",
                    help="also: flowtop's memory by stage and by tracemalloc, in the namespace")
    ap.add_argument("--mem-seconds", type=float, default=8.0)
    ap.add_argument("--keep", action="store_true", help="leave the namespace in place")
    ap.add_argument("--baseline", metavar="DIR",
                    help="also run each flowtop column from the flowtop tree DIR (e.g. a "
                         "'git worktree' of main), right after this tree's: before/after")
    ap.add_argument("--json-out", metavar="FILE", help="also write the numbers as JSON")
    ap.add_argument("--inside-mem", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--inside-tracemalloc", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--top", type=int, default=15, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inside_mem:
        print(json.dumps(inside_mem(args.seconds)))
        return 0
    if args.inside_tracemalloc:
        print(json.dumps(inside_tracemalloc(args.seconds, args.top)))
        return 0
    if not args.n or min(args.n) < 1:
        ap.error("N must be positive")
    if os.geteuid() != 0:
        sys.exit("bench/live.py needs root (network namespaces, nftables)")
    netns.exit_on_signals()
    netns.compile_package(ROOT)       # .pyc as an install has them
    if args.baseline:
        args.baseline = os.path.abspath(args.baseline)
        if not os.path.isdir(os.path.join(args.baseline, "flowtop")):
            ap.error("--baseline: no flowtop package in %s" % args.baseline)
        netns.compile_package(args.baseline)
    return run(args)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:       # the namespace and tmux server are gone by now
        sys.exit(130)
