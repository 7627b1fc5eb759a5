"""Rates of steady flows around full dumps of a big table, for real.

In a throwaway ``ftest-i17rate-*`` namespace: FILL one-datagram UDP flows
(so a full dump takes ~0.3-0.6 s to read and decode here), and three UDP
senders paced at exactly 100 kB/s of IP bytes each (100 datagrams of 1,000
bytes a second, on a monotonic schedule).  flowtop's own collector runs as
the live view runs it at 100k+ flows - full dumps every 3 s, NEW/DESTROY
events and per-flow GETs of the rows on screen between them - with the
three paced flows on screen, and a busy process beside it for CPU load.
Every rate sample of them, across full dumps
and GET refreshes alike, must be within 10 % of 100 kB/s.

Before the fix each full dump's flows were dated at the request: a flow
read 0.4 s into the dump gained 40 % at that sample and lost it at the
next.  Three flows sit at random places in the dump's order, so at least
one is well into it.  ``pytest -s`` prints the samples.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.nsutil import REPO, Netns, kernel_ready

_READY, _WHY = kernel_ready()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]

# 50k keeps CI short; FLOWTOP_RATE_FILL=100000 runs issue 17's 100k case by hand
FILL = int(os.environ.get("FLOWTOP_RATE_FILL", "50000"))
PORTS = (7301, 7302, 7303)
RATE = 100_000.0                 # IP bytes a second, per paced flow
# The bug this guards was 40 % off; one sample of a paced sender on a loaded
# machine (load 3.6) came 7.7 % off with the fix in place.
TOLERANCE = 0.10
SECONDS = 16.0

FILLER = r"""
import socket, sys
n = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(n):
    s.sendto(b"f", ("127.%d.%d.%d" % (1 + i // 62500, i // 250 % 250, i % 250 + 1), 9))
"""

# 972 bytes of payload + 8 UDP + 20 IP = 1,000 bytes per datagram, 100 a second.
PACER = r"""
import os, socket, sys, threading, time
ports = [int(p) for p in sys.argv[1:]]
rx = []
for p in ports:
    r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    r.bind(("127.0.0.1", p)); rx.append(r)
def drain(r):
    while True:
        r.recv(65536)
for r in rx:
    threading.Thread(target=drain, args=(r,), daemon=True).start()
tx = []
for p in ports:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", p)); tx.append(s)
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
print("ready", flush=True)
payload = b"p" * 972
t = time.monotonic()
while True:
    for s in tx:
        s.send(payload)
    t += 0.01
    d = t - time.monotonic()
    if d > 0:
        time.sleep(d)
"""

BURNER = r"""
import os, sys, threading
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
while True:
    pass
"""

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
ports = set(int(p) for p in sys.argv[3:])
seconds = float(sys.argv[2])
from flowtop import cli
from flowtop.sources import KernelSource
from flowtop.collector import Collector
class Big(Collector):
    BUDGET = 0.02      # full dumps as rare as at 100k+ flows (MAX_AGE apart): GETs between
opts = cli.parse(["--no-sysctl", "-n", "-G", "--loopback"])
src = KernelSource(opts)
src.open()
c = Big(src, 1.0)
c.start()
samples = {p: [] for p in ports}
last = None
end = None
fulls = partials = 0
while end is None or time.monotonic() < end:
    s = c.latest()
    if s is None or s is last:
        time.sleep(0.02)
        continue
    last = s
    paced = [r for r in s.rows if r.entry.dport in ports and r.entry.l4proto == 17
             and not r.closed]
    if end is None:
        if len(paced) == len(ports):
            c.visible = [r.key for r in paced]       # on screen: GET every tick
            end = time.monotonic() + seconds
        continue
    fulls += s.full
    partials += not s.full
    for r in paced:
        samples[r.entry.dport].append((s.seq, s.full, r.rate_orig))
c.stop()
print(json.dumps({"samples": samples, "fulls": fulls, "partials": partials, "full_every": c.full_every,
                  "flows": len(s.rows)}))
"""


def test_every_rate_sample_of_paced_flows_is_within_5_percent_across_full_dumps():
    with Netns("i17rate") as ns:
        ns.run(sys.executable, "-c", FILLER, str(FILL), timeout=60)
        pacer = ns.popen(sys.executable, "-c", PACER, *map(str, PORTS),
                         stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
        assert pacer.stdout.readline().strip() == "ready"
        # CPU load beside it: a busy process (the collector then reads each dump slower)
        ns.popen(sys.executable, "-c", BURNER, stdin=subprocess.PIPE)
        out = json.loads(ns.run(sys.executable, "-c", CHILD, REPO, str(SECONDS),
                                *map(str, PORTS), timeout=120).stdout)
    print(json.dumps(out, indent=None))
    assert out["flows"] >= FILL
    assert out["fulls"] >= 3, out                    # several full dumps were crossed
    assert out["partials"] >= 6, out                 # and GET refreshes between them
    bad = []
    for port, samples in out["samples"].items():
        rates = [r for _seq, _full, r in samples]
        known = rates[next((i for i, r in enumerate(rates) if r is not None), len(rates)):]
        assert len(known) >= SECONDS * 0.6, (port, samples)
        bad += [(port, seq, full, r) for seq, full, r in samples[-len(known):]
                if r is None or abs(r - RATE) > TOLERANCE * RATE]
    assert not bad, bad
