#!/usr/bin/env python3
"""What the screen pays for a full dump's snapshot, in-process, no root:

    python3 bench/follow.py [N] [--moved PERCENT] [--tree DIR] [--rounds 6]

N synthetic flows (``keys.py``'s) in a FlowTable, seen twice (idle). Each round
applies a full snapshot in which ``--moved`` % of the flows moved, takes the
table's changes as the collector does, and times ``Selection.build`` over the
new snapshot (CPU ms): the first filters, then the default sort by rate. Before
f5cec73 a full apply that changed any row gave no changes list, and the filters
passed over every row again. ``--tree``: another checkout's flowtop (the
same synthetic flows, from this checkout's ``keys.py``).
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int, nargs="?", default=250000)
    ap.add_argument("--moved", type=float, default=0.5, help="%% of the flows moved a round")
    ap.add_argument("--tree", default=os.path.dirname(HERE))
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args()
    sys.path.insert(0, os.path.abspath(args.tree))
    sys.path.insert(1, HERE)
    import gc
    from flowtop import cli
    from flowtop.enrich.bundle import Enrichment
    from flowtop.published import Snapshot
    from flowtop.services import Services
    from flowtop.table import FlowTable
    from flowtop.views.cells import Formatter
    from flowtop.views.select import Selection
    from flowtop.views.state import ViewState
    import keys                 # (after flowtop: it puts this checkout first on sys.path)

    when, entries = keys.synthetic(args.n, True)
    table = FlowTable()
    table.apply(entries, 100.0, when)
    table.apply(entries, 101.0, when + 1)
    table.take_changes()
    state = ViewState(cli.parse([]))
    fmt = Formatter(state, Enrichment(Services()))
    sel = Selection()
    snap = Snapshot(list(table), when + 1, table.totals(), None, 0, version=table.version)
    sel.build(snap.rows, state, fmt, snap.version, None)
    gc.freeze()
    every = max(1, int(100 / args.moved)) if args.moved > 0 else 0
    cpu, followed = [], 0
    for i in range(args.rounds):
        now = 102.0 + i
        moved = [tuple.__new__(type(e), e[:21] + ((e[21] or 0) + 9000 * (i + 1),) + e[22:])
                 if every and j % every == 0 else e for j, e in enumerate(entries)]
        table.apply(moved, now, when + now)
        changes = table.take_changes()
        delta = None if changes is None else (snap.version,) + changes
        followed += delta is not None
        snap = Snapshot(list(table), when + now, table.totals(), None, i, version=table.version,
                        delta=delta)
        c = time.process_time()
        sel.build(snap.rows, state, fmt, snap.version, snap.delta)
        cpu.append((time.process_time() - c) * 1000)
    print("%s: %d flows, %.2g %% moved a full apply: Selection.build CPU ms %s "
          "(%d of %d snapshots followed their changes)"
          % (args.tree, args.n, args.moved, " ".join("%.0f" % x for x in cpu), followed,
             args.rounds))


if __name__ == "__main__":
    main()
