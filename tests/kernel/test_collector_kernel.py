"""The live collector between full dumps: per-flow GETs and events, for real.

Full dumps are made rare (a tiny CPU budget), so what the table learns
between them must come from NEW/DESTROY events and from GETs of the rows
on screen.
"""

import json
import sys

import pytest

from tests.nsutil import REPO, Netns, kernel_ready

pytestmark = pytest.mark.kernel

CHILD = r"""
import json, socket, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from flowtop import cli
from flowtop.sources import KernelSource
from flowtop.collector import Collector

class Slow(Collector):
    BUDGET = 1e-6            # every full dump "too expensive": MAX_AGE apart
    MAX_AGE = 30.0

opts = cli.parse(["--no-sysctl", "-n", "-G"])
src = KernelSource(opts)
src.open()
c = Slow(src, 0.3)
c.start()

def wait(pred, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s = c.latest()
        if s is not None and pred(s):
            return s
        time.sleep(0.05)
    return None

out = {}
s = wait(lambda s: len(s.rows) >= 5)
out["first"] = len(s.rows) if s else None
first_full_seq = s.seq
# a busy TCP flow shown on screen: its rate must move every tick (GETs)
srv = socket.socket(); srv.bind(("127.0.0.1", 7100)); srv.listen(1)
cli_ = socket.create_connection(("127.0.0.1", 7100)); conn, _ = srv.accept()
# new flows while no full dump comes: events must bring them
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for p in range(40000, 40010):
    u.sendto(b"x", ("127.0.0.9", p))
s = wait(lambda s: sum(1 for r in s.rows if r.entry.dst == "127.0.0.9") == 10)
out["new_by_events"] = bool(s) and not s.full
busy = next(r for r in s.rows if r.entry.dport == 7100)
c.visible = [busy.key]
import threading
def pump():                       # ~300 kB/s, steadily
    while True:
        cli_.sendall(b"y" * 3000); conn.recv(65536)
        time.sleep(0.01)
threading.Thread(target=pump, daemon=True).start()
rates = []
for _ in range(6):
    time.sleep(0.35)
    s = c.latest()
    row = next(r for r in s.rows if r.key == busy.key)
    rates.append(row.rate_orig)
out["rates"] = rates
out["partial"] = not s.full
# destroyed flows: the DESTROY events close them
subprocess.run(["conntrack", "-D", "-d", "127.0.0.9"], capture_output=True)
s = wait(lambda s: all(r.closed for r in s.rows if r.entry.dst == "127.0.0.9")
         and any(r.entry.dst == "127.0.0.9" for r in s.rows))
out["closed_by_events"] = bool(s)
s = wait(lambda s: not any(r.entry.dst == "127.0.0.9" for r in s.rows))
out["gone_after_linger"] = bool(s)
out["full_every"] = c.full_every
c.stop()
print(json.dumps(out))
"""


def test_events_and_gets_between_full_dumps():
    ok, why = kernel_ready()
    if not ok:
        pytest.skip(why)
    with Netns("collector") as ns:
        ns.run("ping", "-c", "1", "-W", "1", "127.0.0.1")
        for p in range(5):
            ns.run("conntrack", "-I", "-p", "udp", "-s", "10.1.0.1", "-d", "10.1.0.2",
                   "--sport", str(1000 + p), "--dport", "53", "-t", "300")
        out = json.loads(ns.run(sys.executable, "-c", CHILD, REPO, timeout=60).stdout)
    assert out["first"] >= 5
    assert out["full_every"] == 30.0
    assert out["new_by_events"], out
    assert out["partial"], out
    # the visible row was refreshed by GET: real rates after the first sample
    assert all(r is not None and r > 10000 for r in out["rates"][1:]), out["rates"]
    assert out["closed_by_events"] and out["gone_after_linger"], out
