"""``--events`` on the real kernel: flowtop logs a TCP flow as it starts
and as it ends, with its process and user, and on the end its duration
and the final counters ``conntrack -L -o extended`` listed just before the
flow was deleted (``conntrack -D``: the DESTROY event); text, JSON Lines
and CSV."""

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests import ctparse  # noqa: E402
from tests.helperns import wait_logging  # noqa: E402
from tests.nsutil import Netns, kernel_ready  # noqa: E402

_READY, _WHY = kernel_ready()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]

# A TCP exchange on the namespace's loopback, held a second, closed; says its pid and port.
TCP = r"""
import json, os, socket, time
l = socket.socket(); l.bind(("127.0.0.1", 5001)); l.listen(1)
c = socket.create_connection(("127.0.0.1", 5001)); a, _ = l.accept()
c.sendall(b"y" * 3000); got = 0
while got < 3000: got += len(a.recv(5000))
a.sendall(b"z" * 100); c.recv(100)
port = c.getsockname()[1]
time.sleep(1.0)          # the log drains events every 0.25 s: the process is still there
c.close(); a.close(); l.close()
print(json.dumps({"pid": os.getpid(), "sport": port}))
"""


def log_of(fmt_args):
    """Run ``flowtop --events`` around one TCP flow; (stdout, the flow's
    ports/pid, conntrack's listing of it before the delete)."""
    with Netns("i15a-ev") as ns:
        env = dict(os.environ, PYTHONPATH=REPO)
        p = ns.popen(sys.executable, "-m", "flowtop", "--events", "--no-sysctl", "-n",
                     *fmt_args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                     env=env)
        early = "".join(wait_logging(ns, p))      # it logs: its event socket is open
        flow = json.loads(ns.run(sys.executable, "-c", TCP).stdout)
        time.sleep(0.3)
        listed = [e for e in ctparse.parse(ns.conntrack_list())
                  if e["orig"].get("sport") == flow["sport"]]
        ns.run("conntrack", "-D", "-p", "tcp", "--orig-port-src", str(flow["sport"]))
        time.sleep(1.0)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
        out = early + out
    assert p.returncode == 130, err
    assert len(listed) == 1
    return out, flow, listed[0]


def test_json_lines_log_the_start_with_its_process_and_the_end_with_its_final_counters():
    out, flow, truth = log_of(["--json"])
    recs = [json.loads(line) for line in out.splitlines()]
    mine = [r for r in recs if r.get("sport") == flow["sport"] and r["dport"] == 5001]
    assert [r["event"] for r in mine] == ["start", "end"], recs
    start, end = mine
    assert (start["pid"], start["process"], start["user"]) == (flow["pid"], "python3", "root")
    assert (end["pid"], end["process"]) == (flow["pid"], "python3")   # kept from its start
    assert (end["packets_orig"], end["bytes_orig"]) == (truth["orig"]["packets"],
                                                        truth["orig"]["bytes"])
    assert (end["packets_reply"], end["bytes_reply"]) == (truth["reply"]["packets"],
                                                          truth["reply"]["bytes"])
    assert end["state"] == truth["state"] == "TIME_WAIT"
    # the kernel's start and stop timestamps: the flow lived from the exchange to the delete
    assert 1.0 <= end["duration"] < 10.0 and start["duration"] is None
    assert end["id"] == start["id"]


def test_text_and_csv_say_the_same():
    out, flow, truth = log_of([])
    lines = [l for l in out.splitlines() if ":%d " % flow["sport"] in l]
    assert [l.split()[1] for l in lines] == ["START", "END"], out
    assert "python3/%d user root" % flow["pid"] in lines[0]
    assert "sent 3.3kB/%d pkts" % truth["orig"]["packets"] in lines[1]
    assert lines[1].rstrip().endswith("TIME_WAIT")
    out, flow, truth = log_of(["--csv"])
    rows = list(csv.DictReader(io.StringIO(out)))
    mine = [r for r in rows if r["sport"] == str(flow["sport"])]
    assert [r["event"] for r in mine] == ["start", "end"]
    assert mine[1]["bytes_reply"] == str(truth["reply"]["bytes"])
    assert mine[0]["process"] == "python3" and mine[0]["pid"] == str(flow["pid"])
