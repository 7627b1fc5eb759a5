"""flowtop's rates against a sender paced at a known rate.

Inside a throwaway namespace a TCP sender writes 2,000 bytes every 10 ms
(200 kB/s, on a monotonic schedule) over loopback to a receiver that reads
everything, and logs (wall time, bytes sent so far) every 50 ms.  The truth
for a refresh is the bytes the sender actually sent over that refresh's
window, from the log; flowtop counts IP bytes (headers too, about 3 % here),
so it must agree within 20 %.  Checked in the streaming JSON output and in
the curses view (in a private tmux server).  ``pytest -s`` prints the error.
"""

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.nsutil import RULESET, SYSCTLS, Netns, kernel_ready  # noqa: E402
from tests.tmuxutil import Tmux, parse_table, pane_command, read_exit, screen_text  # noqa: E402

_READY, _WHY = kernel_ready("tmux")
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]

PORT = 6001
CHUNK, PERIOD = 2000, 0.010          # 200,000 bytes/s of payload
NOMINAL = CHUNK / PERIOD
TOLERANCE = 0.20

# Runs inside the namespace: argv = port, log file.  Prints the client's port,
# then sends until stdin closes.
SENDER = r"""
import os, socket, sys, threading, time
port, log = int(sys.argv[1]), sys.argv[2]
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port)); srv.listen(1)
cli = socket.create_connection(("127.0.0.1", port))
cli.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
conn, _ = srv.accept()
def drain():
    while conn.recv(1 << 16):
        pass
threading.Thread(target=drain, daemon=True).start()
def stop():
    sys.stdin.read()
    os._exit(0)
threading.Thread(target=stop, daemon=True).start()
print(cli.getsockname()[1], flush=True)
chunk = b"r" * %(chunk)d
period = %(period)r
out = open(log, "w", buffering=1)
sent = 0
start = next_send = next_log = time.monotonic()
while True:
    now = time.monotonic()
    while next_send <= now:                 # catch up if we slept too long
        cli.sendall(chunk)
        sent += len(chunk)
        next_send += period
    if now >= next_log:
        out.write("%%.6f %%d\n" %% (time.time(), sent))
        next_log += 0.05
    time.sleep(max(0.0, min(next_send, next_log) - time.monotonic()))
""" % {"chunk": CHUNK, "period": PERIOD}


def start_sender(ns, log):
    p = ns.popen(sys.executable, "-c", SENDER, str(PORT), str(log), stdin=subprocess.PIPE,
                 stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line.strip().isdigit(), "sender failed"
    return int(line)


def read_log(log):
    points = []
    with open(log) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                points.append((float(parts[0]), int(parts[1])))
    return points


def sent_at(points, t):
    """Bytes sent by wall time ``t``, interpolated in the sender's log."""
    for (t0, b0), (t1, b1) in zip(points, points[1:]):
        if t0 <= t <= t1:
            return b0 + (b1 - b0) * (t - t0) / (t1 - t0) if t1 > t0 else b1
    raise AssertionError("time %.3f outside the sender's log %.3f..%.3f"
                         % (t, points[0][0], points[-1][0]))


def truth(log, t0, t1):
    """Bytes per second the sender sent between wall times t0 and t1."""
    deadline = time.monotonic() + 2
    points = read_log(log)
    while points[-1][0] < t1 and time.monotonic() < deadline:     # the log lags a little
        time.sleep(0.05)
        points = read_log(log)
    return (sent_at(points, t1) - sent_at(points, t0)) / (t1 - t0)


def report(what, measured, true):
    err = (measured - true) / true
    print("\n%s: flowtop %.0f B/s, sender %.0f B/s, error %+.1f %%"
          % (what, measured, true, 100 * err))
    return err


def new_ns(tag):
    return Netns(tag, sysctls=SYSCTLS, ruleset=RULESET)


def test_json_stream_rate(tmp_path):
    log = tmp_path / "sent.log"
    with new_ns("ratejs") as ns:
        cport = start_sender(ns, log)
        time.sleep(0.3)                           # the pace settles
        p = ns.popen(sys.executable, "-m", "flowtop", "--json", "-n", "-t", "1", "-T",
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                     env=dict(os.environ, PYTHONPATH=REPO),
                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in p.stdout], daemon=True).start()
        snaps = []                                # (time, record of our flow)
        deadline = time.monotonic() + 10
        while len(snaps) < 3:
            try:
                rec = json.loads(lines.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                break
            if (rec["proto"], rec["src"], rec["sport"], rec["dport"]) == (
                    "tcp", "127.0.0.1", cport, PORT):
                snaps.append((rec["time"], rec))
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=5)
        assert len(snaps) == 3, (snaps, err)
        assert err == "", err
        (t1, r1), (t2, r2), (t3, r3) = snaps
        assert r1["rate_orig"] is None and r1["rate_reply"] is None, r1   # first sight
        assert 0.9 < t3 - t2 < 1.1 and 0.9 < t2 - t1 < 1.1, (t1, t2, t3)
        true = truth(log, t2, t3)
        assert abs(true - NOMINAL) / NOMINAL < 0.1, "the sender missed its pace: %r" % true
        err3 = report("--json, third snapshot", r3["rate_orig"], true)
        if r2["rate_orig"] is not None:     # (None where the first dump's span was over
            # 5 % of the interval: its base time unsure, tablerows.rated_row; a loaded CI)
            report("--json, second snapshot", r2["rate_orig"], truth(log, t1, t2))
        assert abs(err3) < TOLERANCE, (r3["rate_orig"], true)
        assert r3["rate_reply"] is not None and 0 <= r3["rate_reply"] < 0.1 * true, r3
        assert r3["bytes_orig"] >= r2["bytes_orig"] + 0.8 * true * (t3 - t2)


RAW_RATE = re.compile(r"(\d+)B/s")


def test_curses_rate(tmp_path):
    log = tmp_path / "sent.log"
    work = tmp_path / "pane"
    work.mkdir()
    with new_ns("ratecu") as ns, Tmux("ratecu") as tm:
        start_sender(ns, log)
        time.sleep(0.3)
        argv = ns.argv("env", "TERM=xterm-256color", "PYTHONPATH=" + REPO, sys.executable,
                       "-m", "flowtop", "--loopback", "-n", "-t", "1", "--units", "raw")
        tm.start(pane_command(argv, str(work)), 120, 30, str(work))
        dest = "127.0.0.1:%d" % PORT

        def row(ls):
            return next(r for r in parse_table(ls)[2] if r["DESTINATION"] == dest)

        # A refresh shows as a new TX byte count; the third one carries the
        # rate over the second interval.
        seen = []                                 # (wall time first seen, row)
        deadline = time.monotonic() + 10
        while len(seen) < 3:
            assert time.monotonic() < deadline, screen_text(tm.last)
            lines = tm.capture()
            try:
                r = row(lines)
            except (StopIteration, ValueError):
                time.sleep(0.02)
                continue
            if not seen or r["TX"] != seen[-1][1]["TX"]:
                seen.append((time.time(), r))
            time.sleep(0.02)
        (_w1, r1), (w2, _r2), (w3, r3) = seen
        assert r1["RATE_TX"] == "-", r1
        m = RAW_RATE.fullmatch(r3["RATE_TX"])
        assert m, r3
        true = truth(log, w2, w3)
        err = report("curses, third refresh", int(m.group(1)), true)
        assert abs(err) < TOLERANCE, (r3, true)
        m = RAW_RATE.fullmatch(r3["RATE_RX"])
        assert m and int(m.group(1)) < 0.1 * true, r3
        tm.send("q")
        status, _ = read_exit(str(work), 5)
        assert status == 0
