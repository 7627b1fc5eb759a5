#!/usr/bin/env python3
"""bench/apply_ab.py N ROUNDS [REV]: FlowTable's apply at N flows, in-process, no root:
flowtop/table.py of git revision REV (A, default HEAD) against this tree's (B),
interleaved (A/B, then B/A) for ROUNDS rounds; CPU time (process_time) per phase.
Phases: a first full apply (all new, stored bare), all idle, all moving (a Row each),
a partial update of 50 rows, and the same without kernel start timestamps (Rows only).
"""
import gc
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import flowtop.table as new  # noqa: E402

REV = sys.argv[3] if len(sys.argv) > 3 else "HEAD"
with tempfile.NamedTemporaryFile("wb", suffix=".py", delete=False) as f:
    f.write(subprocess.run(["git", "-C", ROOT, "show", REV + ":flowtop/table.py"],
                           check=True, capture_output=True).stdout)
spec = importlib.util.spec_from_file_location("flowtop._table_before", f.name)
old = importlib.util.module_from_spec(spec)
spec.loader.exec_module(old)
os.unlink(f.name)
from flowtop.netlink.ctnetlink import FIELDS  # noqa: E402
from flowtop.tablerows import TableFlow  # noqa: E402

N = int(sys.argv[1])
ROUNDS = int(sys.argv[2])


def entries(start, bump):
    """N distinct flows (with kernel start timestamps or without); ``bump`` moves counters."""
    out = []
    for i in range(N):
        v = dict.fromkeys(FIELDS)
        v.update(key=b"key%08d" % i, id=i, start=(10**18 + i) if start else 0,
                 bytes_orig=1000 + bump * (i % 7 + 1), bytes_reply=2000,
                 packets_orig=10 + bump, packets_reply=20, state=3, status=8, mark=0, l4proto=6)
        out.append(tuple.__new__(TableFlow, [v[f] for f in FIELDS]))
    return out


def phases(mod):
    """seconds per phase over fresh entry lists (built outside the timing)."""
    e0, e1, e2 = entries(True, 0), entries(True, 0), entries(True, 1)
    z0, z1, z2, z3 = entries(False, 0), entries(False, 1), entries(False, 1), entries(False, 1)
    visible = entries(True, 2)[:50]
    out = {}
    t = mod.FlowTable()
    gc.collect()

    def timed(name, fn):
        t0 = time.process_time()
        fn()
        out[name] = time.process_time() - t0
    timed("full: 100k new (bare)", lambda: t.apply(e0, 1.0, 1000.0))
    timed("full: all idle (bare)", lambda: t.apply(e1, 2.0, 1001.0))
    timed("full: all moved (Rows)", lambda: t.apply(e2, 3.0, 1002.0))
    timed("update: 50 visible", lambda: t.update(visible, 3.5, 1002.5))
    u = mod.FlowTable()
    timed("full, no start: new (Rows)", lambda: u.apply(z0, 1.0, 1000.0))
    u.apply(z1, 2.0, 1001.0)
    u.apply(z2, 3.0, 1002.0)                # rates 0: idle Rows from here on
    timed("full, no start: idle Rows", lambda: u.apply(z3, 4.0, 1003.0))
    return out


res = {"A": [], "B": []}
for r in range(ROUNDS):
    for name, mod in (("A", old), ("B", new)) if r % 2 == 0 else (("B", new), ("A", old)):
        res[name].append(phases(mod))
print("N=%d, %d rounds, CPU ms median (min)  A=%s  B=this tree" % (N, ROUNDS, REV))
for ph in res["A"][0]:
    a = [x[ph] * 1e3 for x in res["A"]]
    b = [x[ph] * 1e3 for x in res["B"]]
    ratios = sorted(bb / aa for aa, bb in zip(a, b))
    print("%-28s A %7.1f (%6.1f)  B %7.1f (%6.1f)  B/A median %.3f  range %.2f-%.2f" % (
        ph, statistics.median(a), min(a), statistics.median(b), min(b),
        statistics.median(ratios), ratios[0], ratios[-1]))
