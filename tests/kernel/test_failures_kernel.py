"""Failure modes against a real kernel: what flowtop does when the world
misbehaves while it runs.

* no permission, in the live view: one line, exit 1, curses never entered;
* the table emptied (``conntrack -F``) under the JSON stream, the text
  frames and the curses view: "0 flows", no error, still running, and new
  flows show up again;
* flows destroyed while a 20k-flow dump is read: exit 0, valid JSON, only
  the duplicates a resumed kernel dump can produce;
* a 10x3 terminal, then a normal one; a storm of 50 SIGWINCHes while flows
  come and go;
* stdout closed early while streaming (``| head``);
* SIGTERM in the middle of a 100k-flow dump: exit 143, sysctls back at 0;
* what the kernel really answers when the ctnetlink subsystem is missing
  (the unit tests in tests/test_failures.py simulate that case).

Each test makes and removes its own ``ftest-*`` namespace and, for the
screen, its own tmux server (``tmux -L <unique>``); the host's namespace,
firewall and sysctls are never touched.  ``pytest -s`` prints what was
observed (duplicates, timings).
"""

import json
import os
import random
import re
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests import ctparse  # noqa: E402
from tests.nsutil import SYSCTLS, Netns, have, kernel_ready, populate  # noqa: E402
from tests.tmuxutil import (SESSION, Tmux, flow_ids, pane_command, read_exit,  # noqa: E402
                            row_ids, rows_of, screen_text, wait_file)

_READY, _WHY = kernel_ready()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]
needs_tmux = pytest.mark.skipif(not have("tmux"), reason="missing tools: tmux")

ACCT = "net.netfilter.nf_conntrack_acct"
TIMESTAMP = "net.netfilter.nf_conntrack_timestamp"
OFF = dict(SYSCTLS, **{ACCT: 0, TIMESTAMP: 0})
SYSTEM_PYTHON = "/usr/bin/python3"
WAIT = 5
ICMP, TCP, UDP, ICMPV6, SCTP, UDPLITE = 1, 6, 17, 58, 132, 136
ONE_LINE = re.compile(r"flowtop: [^\n\x1b]+")


def env():
    return dict(os.environ, PYTHONPATH=REPO, PYTHONDONTWRITEBYTECODE="1")


def default_signals():
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)


def ns_sysctls(ns):
    return ns.sysctl(ACCT), ns.sysctl(TIMESTAMP)


def flowtop_argv(ns, *args, term="xterm-256color"):
    return ns.argv("env", "TERM=" + term, "PYTHONPATH=" + REPO, sys.executable,
                   "-m", "flowtop", *args)


def start_stream(ns, out_path, *args):
    """flowtop ARGS inside ``ns``, stdout into ``out_path``, stderr piped."""
    out = open(out_path, "w")
    try:
        return ns.popen(sys.executable, "-m", "flowtop", *args, stdout=out,
                        stderr=subprocess.PIPE, text=True, env=env(),
                        preexec_fn=default_signals)
    finally:
        out.close()


def stop(p, sig=signal.SIGINT, timeout=WAIT):
    """Send ``sig``; (status, stderr)."""
    if p.poll() is None:
        p.send_signal(sig)
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        raise AssertionError("flowtop ignored %s: %s" % (signal.Signals(sig).name, err))
    return p.returncode, err


def stty_settings(text):
    """``stty -a`` without the window size, which a resize changes on purpose."""
    return re.sub(r"rows \d+; columns \d+; ", "", text)


def header(lines):
    return lines[1] if len(lines) > 1 else ""


def entries(ns):
    return ctparse.parse(ns.conntrack_list())


def json_records(text):
    """Every line a JSON object; a last line cut short by a kill is not a line."""
    return [json.loads(line) for line in text.splitlines()]


def snapshots(recs):
    snaps = {}
    for r in recs:
        snaps.setdefault(r["time"], []).append(r)
    return snaps


# -- the missing ctnetlink subsystem: what a kernel really says ---------------------------

PROBE_SUBSYS = r"""
import sys
from flowtop.netlink import ctnetlink, nlmsg
from flowtop.netlink.socket import NetlinkSocket
from flowtop.netlink.uapi import NLM_F_ACK, NLM_F_REQUEST
s = NetlinkSocket()
for subsys in map(int, sys.argv[1:]):
    seq = 1000 + subsys
    s.send(nlmsg.pack((subsys << 8) | 5, NLM_F_REQUEST | NLM_F_ACK, seq, ctnetlink.nfgenmsg()))
    while True:
        d = s.recv()
        err = [nlmsg.error_code(d, b, e) for t, _f, q, _p, b, e in nlmsg.iter_messages(d)
               if q == seq and t == 2]
        if err:
            print(subsys, -err[0])
            break
"""


def test_kernel_answers_einval_for_an_unregistered_nfnetlink_subsystem():
    """Evidence for tests/test_failures.py's EINVAL case: a message to a nfnetlink
    subsystem nobody registered (what ctnetlink's requests meet on a kernel with
    nfnetlink but without nf_conntrack_netlink) is answered with EINVAL, not
    EOPNOTSUPP/EPROTONOSUPPORT.  Subsystem 1 (ctnetlink, built in here) answers 0."""
    with Netns("failsubsys", ruleset=None, sysctls={}) as ns:
        r = ns.run(sys.executable, "-c", PROBE_SUBSYS, "1", "15", "200", env=env())
    got = dict(tuple(map(int, line.split())) for line in r.stdout.splitlines())
    assert got == {1: 0, 15: 22, 200: 22}, r.stdout


# -- 2. no permission, live view ----------------------------------------------------------

@needs_tmux
def test_unprivileged_live_view_prints_one_line_without_curses(tmp_path):
    if not have("setpriv") or not os.path.exists(SYSTEM_PYTHON):
        pytest.skip("needs setpriv and %s" % SYSTEM_PYTHON)
    with Netns("failnobody", sysctls=OFF) as ns, Tmux("failnobody") as tm:
        ns.run("conntrack", "-I", "-p", "udp", "-s", "127.0.0.1", "-d", "127.0.0.1",
               "--sport", "4000", "--dport", "5353", "-t", "300")
        probe = ns.run("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                       SYSTEM_PYTHON, "-c", "import flowtop.cli, flowtop.app, flowtop.live",
                       check=False, env=env())
        if probe.returncode != 0:
            pytest.skip("the checkout %s is not readable by nobody: %s"
                        % (REPO, probe.stderr.strip().splitlines()[-1:]))
        wd = str(tmp_path)
        go, raw = os.path.join(wd, "go"), os.path.join(wd, "tty.raw")
        argv = ns.argv("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                       "env", "TERM=xterm-256color", "PYTHONPATH=" + REPO,
                       "PYTHONDONTWRITEBYTECODE=1", SYSTEM_PYTHON, "-m", "flowtop")
        q = shlex.quote
        # Wait for the tap on the pane's output, then run flowtop with stderr on the
        # terminal; keep the pane open afterwards so it can be read.
        cmd = ("cd /; while [ ! -e {go} ]; do sleep 0.02; done; stty -a > {b}; {run}; "
               "echo EXITED $? > {st}.tmp; stty -a > {a}; mv {st}.tmp {st}; exec sleep 60"
               ).format(go=q(go), b=q(wd + "/stty.before"), a=q(wd + "/stty.after"),
                        st=q(wd + "/status"), run=" ".join(q(a) for a in argv))
        tm.start(cmd, 200, 30)                # wide enough for the line unwrapped
        tm.tmux("pipe-pane", "-t", SESSION, "-o", "cat > %s" % q(raw))
        time.sleep(0.1)                     # the tap's shell is up before output flows
        open(go, "w").close()
        status = wait_file(wd + "/status", lambda t: "EXITED" in t, 20, "flowtop to exit")
        assert status.split() == ["EXITED", "1"], (status, tm.capture())
        lines = tm.wait_for(lambda ls: any(l.strip() for l in ls), WAIT, "the error line")
        shown = [l for l in lines if l.strip()]
        assert len(shown) == 1 and ONE_LINE.fullmatch(shown[0].rstrip()), screen_text(lines)
        assert "CAP_NET_ADMIN" in shown[0] or "root" in shown[0], shown[0]
        time.sleep(0.2)
        data = open(raw, "rb").read()
        # Everything flowtop sent to the terminal: the line, and not one escape sequence
        # (no smcup/rmcup, no clear, no keypad mode: curses was never entered).
        assert b"\x1b" not in data, data
        assert data.decode().replace("\r\n", "\n").strip("\n") == shown[0].rstrip(), data
        with open(wd + "/stty.before") as f1, open(wd + "/stty.after") as f2:
            assert f1.read() == f2.read()
        assert ns_sysctls(ns) == ("0", "0")


# -- 3. the table emptied under a running flowtop -----------------------------------------

ZERO_FRAME = re.compile(r"^0 flows \(\)  .*shown 0", re.M)
FRAME_HEAD = re.compile(r"^(\d+) flows \(.*\)  TX .*  shown \d+  (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)$",
                        re.M)


@needs_tmux
def test_table_flushed_while_running(tmp_path):
    with Netns("failflush") as ns, Tmux("failflush") as tm:
        populate(ns)
        before = entries(ns)
        n = len(before)
        assert n >= 12, before
        js, frames = tmp_path / "stream.jsonl", tmp_path / "frames.txt"
        common = ["-n", "-G", "--no-sysctl", "-t", "0.3"]
        pj = start_stream(ns, js, "--json", *common)
        pc = start_stream(ns, frames, "-c", "--loopback", *common)
        wd = str(tmp_path / "pane")
        os.mkdir(wd)
        tm.start(pane_command(flowtop_argv(ns, "--loopback", *common), wd), 120, 40, wd)
        tm.wait_for(lambda ls: re.search(r"  %d flows \(" % n, ls[0]) and len(rows_of(ls)) == n,
                    10, "%d flows on the screen" % n)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
                any(len(s) == n for s in snapshots(json_records(js.read_text())).values())
                and FRAME_HEAD.search(frames.read_text())):
            time.sleep(0.05)
        assert any(len(s) == n for s in snapshots(json_records(js.read_text())).values())

        ns.run("conntrack", "-F")
        flushed = time.time()
        assert entries(ns) == [], "conntrack -F left entries"

        # The screen: "0 flows" in the header, no error, then "no flows" once the
        # vanished rows have lingered their two refreshes.
        lines = tm.wait_for(lambda ls: "  0 flows  TX" in ls[0], WAIT, "'0 flows' on the screen")
        assert "error" not in header(lines), screen_text(lines)
        lines = tm.wait_for(lambda ls: any(l.strip() == "no flows" for l in ls), WAIT,
                            "'no flows'")
        assert "error" not in header(lines) and "  0 flows  TX" in lines[0], screen_text(lines)
        time.sleep(0.7)                                  # two more empty ticks
        assert pj.poll() is None and pc.poll() is None and tm.alive()

        # New flows appear again, everywhere.
        inserted = time.time()
        ns.run("conntrack", "-I", "-p", "udp", "-s", "10.7.0.1", "-d", "10.7.0.2",
               "--sport", "1234", "--dport", "4321", "-t", "300")
        ns.run("ping", "-c", "1", "-W", "1", "127.0.0.9")
        now = entries(ns)
        assert len(now) == 2, now
        lines = tm.wait_for(lambda ls: "  2 flows (" in ls[0] and len(rows_of(ls)) == 2, WAIT,
                            "the two new flows on the screen")
        assert row_ids(rows_of(lines)) == flow_ids(now), screen_text(lines)
        assert "error" not in header(lines)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            snaps = snapshots(json_records(js.read_text()))
            heads = [int(m.group(1)) for m in FRAME_HEAD.finditer(frames.read_text())]
            if any(t > inserted and len(s) == 2 for t, s in snaps.items()) and heads[-1:] == [2]:
                break
            time.sleep(0.05)
        status_j, err_j = stop(pj)
        status_c, err_c = stop(pc)
        tm.send("q")
        status, stty_after = read_exit(wd, WAIT)

    assert (status_j, err_j) == (130, ""), err_j
    assert (status_c, err_c) == (130, ""), err_c
    assert status == 0, tm.ended()
    with open(os.path.join(wd, "stty.before")) as f:
        assert stty_after == f.read()
    with open(os.path.join(wd, "stderr")) as f:
        assert f.read() == ""

    snaps = snapshots(json_records(js.read_text()))
    times = sorted(snaps)
    # Before the flush every snapshot is the whole table; after it nothing (an empty
    # snapshot prints no line) until the new flows, which then come alone.
    full = [t for t in times if len(snaps[t]) == n]
    assert full and max(full) < flushed, (len(full), flushed)
    after = [t for t in times if t > flushed]
    assert after and min(after) > inserted, [(t, len(snaps[t])) for t in after]
    new = {("udp", "10.7.0.2"), ("icmp", "127.0.0.9")}
    for t in after:                          # the first may fall between the two inserts
        assert {(r["proto"], r["dst"]) for r in snaps[t]} <= new, snaps[t]
    assert {(r["proto"], r["dst"]) for r in snaps[after[-1]]} == new

    text = frames.read_text()
    heads = [(int(m.group(1)), m.group(2)) for m in FRAME_HEAD.finditer(text)]
    counts = [c for c, _ in heads]
    # n, n, ..., then several 0, then (one frame between the two inserts may say 1) 2, 2...
    assert n in counts and 0 in counts, counts
    first_zero = counts.index(0)
    assert all(c == n for c in counts[:first_zero]), counts
    back = next((i for i in range(first_zero, len(counts)) if counts[i] != 0), len(counts))
    assert back - first_zero >= 2, counts                    # several empty frames
    rest = counts[back:]
    assert set(rest) <= {1, 2} and rest == sorted(rest) and rest[-1:] == [2], counts
    assert "Traceback" not in text


# -- 4. flows destroyed while they are dumped ---------------------------------------------

# Inside the namespace: N one-datagram UDP flows 127.0.0.1:SPORT -> 127.0.0.2:1..N, then,
# on a line on stdin, delete DEL of them in random order over SECONDS via ctnetlink
# (IPCTNL_MSG_CT_DELETE by original tuple, no ack), and print what it did.
CHURN = r"""
import json, random, socket, struct, sys, time
n, sport, dele, seconds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", sport))
for p in range(1, n + 1):
    u.sendto(b"x", ("127.0.0.2", p))
u.close()
nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)
nl.bind((0, 0))
def attr(t, payload, nested=False):
    l = 4 + len(payload)
    return struct.pack("=HH", l, t | (0x8000 if nested else 0)) + payload + bytes(-l % 4)
def delete(seq, dport):
    ip = attr(1, attr(1, socket.inet_aton("127.0.0.1"))
              + attr(2, socket.inet_aton("127.0.0.2")), True)
    pr = attr(2, attr(1, bytes([17])) + attr(2, struct.pack(">H", sport))
              + attr(3, struct.pack(">H", dport)), True)
    body = struct.pack("=BBH", socket.AF_INET, 0, 0) + attr(1, ip + pr, True)
    nl.send(struct.pack("=IHHII", 16 + len(body), (1 << 8) | 2, 1, seq, 0) + body)
ports = list(range(1, n + 1))
random.Random(sport).shuffle(ports)
ports = ports[:dele]
print("ready", flush=True)
sys.stdin.readline()
t0 = time.monotonic()
batch = 50
for i in range(0, len(ports), batch):
    for k, p in enumerate(ports[i:i + batch]):
        delete(i + k + 1, p)
    wait = t0 + seconds * (i + batch) / len(ports) - time.monotonic()
    if wait > 0:
        time.sleep(wait)
print(json.dumps({"deleted": len(ports), "s": round(time.monotonic() - t0, 3)}), flush=True)
"""

CHURN_FLOWS = 20000
CHURN_DELETE = 16000
KEY_FIELDS = ("family", "proto", "src", "dst", "sport", "dport", "zone")


def churn_run(ns, tmp_path, tag, args, sport, seconds):
    """Fill, start the deleter and flowtop together; (records, stderr, status, info)."""
    ns.run("conntrack", "-F")
    ch = ns.popen(sys.executable, "-c", CHURN, CHURN_FLOWS, sport, CHURN_DELETE, seconds,
                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert ch.stdout.readline().strip() == "ready"
    total = int(ns.run("conntrack", "-C").stdout.split()[0])
    assert total >= CHURN_FLOWS * 0.95, total
    out_path = tmp_path / ("%s.jsonl" % tag)
    t0 = time.monotonic()
    ch.stdin.write("go\n")
    ch.stdin.flush()
    p = start_stream(ns, out_path, *args)
    try:
        if "--once" in args:
            _, err = p.communicate(timeout=30)
        else:
            time.sleep(seconds)
            err = stop(p, signal.SIGINT)[1]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    took = time.monotonic() - t0
    info = json.loads(ch.stdout.readline())
    ch.stdin.close()
    ch.wait(5)
    left = int(ns.run("conntrack", "-C").stdout.split()[0])
    info.update(total=total, left=left, flowtop_s=round(took, 2))
    return json_records(out_path.read_text()), err, p.returncode, info


def duplicates(recs):
    by_key = Counter(tuple(r[k] for k in KEY_FIELDS) for r in recs)
    dup_keys = {k: c for k, c in by_key.items() if c > 1}
    same_id = all(len({r["id"] for r in recs if tuple(r[k] for k in KEY_FIELDS) == k}) == 1
                  for k in dup_keys)
    return sum(c - 1 for c in dup_keys.values()), same_id


def test_flows_destroyed_mid_dump(tmp_path):
    report = []
    with Netns("failchurn") as ns:
        runs = [("once-json-fast", ["--once", "--json", "-n", "-G", "--no-sysctl"], 1.5),
                # With reverse DNS on, --once --json takes the whole table first
                # (netlink.conntrack.dump) instead of streaming it.
                ("once-json-dns", ["--once", "--json", "-G", "--no-sysctl"], 1.5),
                ("stream-json", ["--json", "-t", "0.1", "-n", "-G", "--no-sysctl"], 2.5)]
        for i, (tag, args, seconds) in enumerate(runs):
            recs, err, status, info = churn_run(ns, tmp_path, tag, args, 40000 + i, seconds)
            if tag.startswith("stream"):
                assert status == 130, (status, err)
            else:
                assert status == 0, (status, err)
            assert err == "", err
            snaps = snapshots(recs)
            assert snaps, "no output"
            sizes = [len(snaps[t]) for t in sorted(snaps)]
            dups = [duplicates(snaps[t]) for t in sorted(snaps)]
            for t in snaps:
                # Only flows of this run (the fill), each one a flow that existed.
                assert all(r["proto"] == "udp" and r["dst"] == "127.0.0.2"
                           and 1 <= r["dport"] <= CHURN_FLOWS for r in snaps[t]), t
                assert len(snaps[t]) <= info["total"] + 10
            assert all(same for _d, same in dups), "a key listed twice with two ids"
            assert all(d <= max(5, s // 100) for (d, _), s in zip(dups, sizes)), (dups, sizes)
            report.append("%s: %s; snapshot sizes %s; duplicates %s"
                          % (tag, info, sizes[:12], [d for d, _ in dups][:12]))
            if tag.startswith("once"):
                assert len(snaps) == 1
                # The deletions overlapped the dump unless it got everything or only
                # the survivors; either way the count is within the table's range.
                assert info["left"] - 10 <= sizes[0] <= info["total"] + 10, (sizes, info)
    print("\n" + "\n".join(report))


# -- 6. a 10x3 terminal ------------------------------------------------------------------

@needs_tmux
def test_tiny_terminal_then_normal(tmp_path):
    with Netns("failtiny") as ns, Tmux("failtiny") as tm:
        ns.run("conntrack", "-I", "-p", "udp", "-s", "127.0.0.1", "-d", "127.0.0.1",
               "--sport", "4000", "--dport", "5353", "-t", "300")
        want = flow_ids(entries(ns))
        wd = str(tmp_path)
        tm.start(pane_command(flowtop_argv(ns, "--loopback", "-n", "-G", "-t", "0.3"), wd),
                 10, 3, wd)
        assert tm.size() == (10, 3)
        lines = tm.wait_for(lambda ls: ls and ls[0].startswith("too small"), WAIT, "'too small'")
        time.sleep(0.7)                       # a few refreshes at this size
        lines = tm.capture()
        assert lines[0] == "too small:", screen_text(lines)   # cut to the 10 columns
        assert not any(l.strip() for l in lines[1:]), screen_text(lines)
        assert tm.alive()
        tm.resize(120, 40)
        lines = tm.wait_for(lambda ls: len(ls) == 40 and len(rows_of(ls)) == 1, WAIT,
                            "the table at 120x40")
        assert row_ids(rows_of(lines)) == want, screen_text(lines)
        assert lines[0].startswith("flowtop ") and lines[-1].startswith("q quit")
        tm.resize(10, 3)
        tm.wait_for(lambda ls: ls and ls[0] == "too small:", WAIT, "'too small' again")
        tm.resize(120, 40)
        tm.wait_for(lambda ls: len(rows_of(ls)) == 1, WAIT, "the table again")
        tm.send("q")
        status, stty_after = read_exit(wd, WAIT)
        assert status == 0, tm.ended()
        with open(os.path.join(wd, "stty.before")) as f:
            assert stty_settings(stty_after) == stty_settings(f.read())
        with open(os.path.join(wd, "stderr")) as f:
            assert f.read() == ""


# -- 7. SIGWINCH storms ------------------------------------------------------------------

# Inside the namespace until stdin closes: a UDP flow with a short timeout inserted every
# ~20 ms to 10.66.0.0/16, so rows keep appearing and expiring during the storm.
CHURN_INSERT = r"""
import subprocess, sys, threading
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
i = 0
while not stop.wait(0.02):
    i += 1
    subprocess.run(["conntrack", "-I", "-p", "udp", "-s", "10.66.0.1", "-d",
                    "10.66.%d.%d" % (i // 250 % 250, i % 250 + 1), "--sport", "999",
                    "--dport", str(1000 + i % 60000), "-t", "1"], capture_output=True)
print(i, flush=True)
"""


@needs_tmux
def test_sigwinch_storm(tmp_path):
    sizes = [(60, 15), (120, 40), (30, 8), (41, 10), (200, 50), (39, 9)]
    with Netns("failwinch") as ns, Tmux("failwinch") as tm:
        populate(ns)
        stable = entries(ns)
        wd = str(tmp_path)
        tm.start(pane_command(flowtop_argv(ns, "--loopback", "-n", "-G", "-t", "0.25"), wd),
                 120, 40, wd)
        tm.wait_for(lambda ls: len(rows_of(ls)) == len(stable), 10, "the first table")
        churn = ns.popen(sys.executable, "-c", CHURN_INSERT, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)
        rnd = random.Random(7)
        t0 = time.monotonic()
        # 25 resizes one tmux call each, with short random pauses; then 25 in one
        # tmux call (chained with ";"), as fast as the server can apply them.
        for i in range(25):
            tm.resize(*sizes[i % 3] if i < 15 else rnd.choice(sizes))
            time.sleep(rnd.choice((0, 0, 0.003, 0.01, 0.03)))
        chained = []
        for i in range(25):
            w, h = sizes[i % 3] if i < 12 else rnd.choice(sizes)
            chained += [";"] * bool(chained) + ["resize-window", "-t", SESSION, "-x", w, "-y", h]
        tm.tmux(*chained)
        storm = time.monotonic() - t0
        assert tm.alive(), tm.ended()
        assert tm.size() == (w, h)
        # The screen follows the last size of the storm, not one before it.
        if w < 40 or h < 10:
            tm.wait_for(lambda ls: ls[0] == ("too small: %dx%d, need 40x10" % (w, h))[:w]
                        and not any(l.strip() for l in ls[1:]), WAIT,
                        "'too small' at %dx%d" % (w, h))
        else:
            tm.wait_for(lambda ls: len(ls) == h and ls[0].startswith("flowtop ")
                        and ls[-1].startswith("q quit") and all(len(l) <= w for l in ls),
                        WAIT, "the table at %dx%d" % (w, h))
        time.sleep(0.3)
        churn.stdin.close()
        inserted = int(churn.stdout.readline())
        churn.wait(5)
        deadline = time.monotonic() + 3              # the churn's flows time out in 1 s
        while flow_ids(entries(ns)) != flow_ids(stable) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert flow_ids(entries(ns)) == flow_ids(stable)
        tm.resize(120, 40)
        lines = tm.wait_for(lambda ls: len(ls) == 40 and all(len(l) <= 120 for l in ls)
                            and row_ids(rows_of(ls)) == flow_ids(stable), WAIT,
                            "the stable table after the storm")
        assert lines[0].startswith("flowtop ") and "  %d flows (" % len(stable) in lines[0]
        assert "error" not in header(lines), screen_text(lines)
        assert lines[-1].startswith("q quit")
        tm.send("q")
        status, stty_after = read_exit(wd, WAIT)
        assert status == 0, tm.ended()
        with open(os.path.join(wd, "stty.before")) as f:
            assert stty_settings(stty_after) == stty_settings(f.read())
        with open(os.path.join(wd, "stderr")) as f:
            err = f.read()
        assert err == "", err
    print("\n50 resizes in %.2fs while %d flows were inserted (1 s timeouts)"
          % (storm, inserted))


# -- 8. stdout closed early while streaming -----------------------------------------------

@pytest.mark.parametrize("args, keep", [(["--json", "-t", "0.2"], 1), (["-c", "-t", "0.2"], 3),
                                        (["--csv", "-t", "0.2"], 1)],
                         ids=["json-head-1", "frames-head-3", "csv-head-1"])
def test_streaming_into_head(tmp_path, args, keep):
    with Netns("failhead", sysctls=OFF) as ns:
        ns.run("conntrack", "-I", "-p", "udp", "-s", "10.5.0.1", "-d", "10.5.0.2",
               "--sport", "1", "--dport", "2", "-t", "300")
        status = tmp_path / "status"
        cmd = "{ %s -m flowtop -n -G %s; echo $? > %s; } | head -%d" % (
            sys.executable, " ".join(args), status, keep)
        t0 = time.monotonic()
        r = ns.run("sh", "-c", cmd, check=False, env=env(), timeout=20)
        took = time.monotonic() - t0
        sysctls = ns_sysctls(ns)
    assert r.returncode == 0, r.stderr
    assert took < 5, took
    assert len(r.stdout.splitlines()) == keep, r.stdout
    if args[0] == "--json":
        assert json.loads(r.stdout)["dst"] == "10.5.0.2"
    if args[0] == "-c":
        assert re.match(r"1 flows \(udp 1\)", r.stdout), r.stdout
    assert "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr, r.stderr
    assert r.stderr == ""
    assert status.read_text().strip() == "0"
    assert sysctls == ("0", "0")


# -- 9. SIGTERM during a dump --------------------------------------------------------------

def _bench_netns():
    bench = os.path.join(REPO, "bench")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    import netns  # noqa: E402  (bench/netns.py: the fast fillers)
    return netns


BIG = 100000


def test_sigterm_during_a_big_dump(tmp_path):
    bn = _bench_netns()
    report = []
    with Netns("failterm", sysctls=OFF) as ns:
        filled = bn.fill_udp(ns, BIG, workers=2)
        count = int(ns.run("conntrack", "-C").stdout.split()[0])
        if count < BIG * 0.9:
            pytest.skip("only %d of %d flows fit (nf_conntrack_max is shared): %r"
                        % (count, BIG, filled))
        # (how, seconds, args): "start" counts from the process start; "guard" from the
        # moment the sysctls read 1 (the guard is in, the dump is next).
        plan = [("start", 0.1, []), ("start", 0.2, ["-n"]), ("start", 0.3, []),
                ("guard", 0.0, ["-n"]), ("guard", 0.4, []), ("guard", 1.0, ["-n"])]
        for how, delay, extra in plan:
            assert ns_sysctls(ns) == ("0", "0")
            out = tmp_path / ("out-%s-%s.jsonl" % (how, delay))
            t0 = time.monotonic()
            p = start_stream(ns, out, "--once", "--json", "-G", *extra)
            guard_at = None
            if how == "guard":
                deadline = time.monotonic() + 10
                while ns_sysctls(ns) != ("1", "1") and time.monotonic() < deadline \
                        and p.poll() is None:
                    time.sleep(0.005)
                guard_at = time.monotonic() - t0
                assert ns_sysctls(ns) == ("1", "1"), "the guard never switched them on"
            time.sleep(max(0.0, delay - (time.monotonic() - t0)) if how == "start" else delay)
            on = ns.sysctl(ACCT)
            sent = time.monotonic() - t0
            assert p.poll() is None, "flowtop ended before the signal (%.2fs)" % sent
            status, err = stop(p, signal.SIGTERM, timeout=10)
            lines = out.read_text().count("\n")
            report.append("%s+%.1fs %s: SIGTERM at %.2fs (guard on at %s, acct=%s), status %s, "
                          "%d lines written" % (how, delay, " ".join(extra) or "(dns)", sent,
                                                "%.2fs" % guard_at if guard_at else "-", on,
                                                status, lines))
            assert "Traceback" not in err, err
            assert err == "", err
            # Python killed by the signal before the guard was in (its default action)
            # reads -15 here and 143 in a shell; once the guard is in, flowtop exits 143.
            if how == "guard" or on == "1":
                assert status == 143, report[-1]
            else:
                assert status in (143, -signal.SIGTERM), report[-1]
            assert ns_sysctls(ns) == ("0", "0"), report[-1]
            assert lines < count, report[-1]              # it was stopped, not finished
    print("\n%d flows\n%s" % (count, "\n".join(report)))
