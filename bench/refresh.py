#!/usr/bin/env python3
"""What one refresh of the live view costs at N flows (run as root).

    sudo python3 bench/refresh.py 10000 [--ticks 10]

Fills a namespace like dump.py, then, inside it, runs the live view's tick
as the collector thread does - dump, FlowTable.apply, the enrichers'
per-tick refresh (processes, interfaces; no DNS or GeoIP) - plus what the screen
does with it (filter and sort every row, format one screen of rows), and
reports median CPU and wall per refresh, the share of one core at a 1 s
interval, and conntrack -L's CPU for one listing in the same run.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import netns  # noqa: E402
from dump import fill  # noqa: E402


def measure_inside(ticks):
    from flowtop import cli
    from flowtop.sources import KernelSource
    from flowtop.enrich.bundle import from_options
    from flowtop.collector import tick
    from flowtop.table import FlowTable
    from flowtop.views.cells import Formatter
    from flowtop.views.columns import layout
    from flowtop.views.select import build
    from flowtop.views.state import ViewState

    # As the live benchmark runs flowtop: no DNS, no GeoIP (network and
    # database costs, not flowtop's); processes and interfaces on.
    opts = cli.parse(["--loopback", "--no-sysctl", "-n", "-G"])
    source = KernelSource(opts)
    source.open()
    table = FlowTable()
    state = ViewState(opts)
    enrich = from_options(opts)
    fmt = Formatter(state, enrich)
    collect, screen, walls = [], [], []
    for _ in range(ticks + 1):
        c0, w0 = time.process_time(), time.perf_counter()
        wall = tick(source, table, enrich)
        c1 = time.process_time()
        shown = build(list(table), state, fmt)
        cols = layout(200, state)
        for r in shown[:47]:
            fmt.line(r, cols, wall)
        c2, w2 = time.process_time(), time.perf_counter()
        collect.append(c1 - c0)
        screen.append(c2 - c1)
        walls.append(w2 - w0)
        time.sleep(0.2)
    source.close()
    enrich.close()
    # the first tick learns layouts and sees every flow as new: report it apart
    return {"flows": len(table), "first_cpu": collect[0] + screen[0],
            "collect_cpu": statistics.median(collect[1:]),
            "screen_cpu": statistics.median(screen[1:]),
            "wall": statistics.median(walls[1:])}


def conntrack_cpu(ns, repeat=3):
    cpus = []
    for _ in range(repeat):
        before = os.times()
        subprocess.run(ns.argv("conntrack", "-L", "-o", "extended"), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        after = os.times()
        cpus.append((after.children_user - before.children_user)
                    + (after.children_system - before.children_system))
    return statistics.median(cpus)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int, nargs="?")
    ap.add_argument("--ticks", type=int, default=10)
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inside:
        print(json.dumps(measure_inside(args.ticks)))
        return 0
    if not args.n or args.n < 1:
        ap.error("N must be positive")
    if os.geteuid() != 0:
        sys.exit("bench/refresh.py needs root (network namespaces, nftables)")
    netns.exit_on_signals()
    netns.compile_package(os.path.dirname(HERE))     # .pyc as an install has them
    with netns.Namespace("ftbench-refresh-%d" % os.getpid()) as ns:
        _mix, count, _s = fill(ns, args.n)
        r = json.loads(ns.run(sys.executable, os.path.abspath(__file__), "--inside",
                              "--ticks", args.ticks, cwd=os.path.dirname(HERE)).stdout)
        ct = conntrack_cpu(ns)
    per = r["collect_cpu"] + r["screen_cpu"]
    print("N=%d (conntrack -C %d), %d refreshes, medians" % (args.n, count, args.ticks))
    print("  collect (dump + table.apply)   CPU %.3f s" % r["collect_cpu"])
    print("  screen (filter, sort, format)  CPU %.3f s" % r["screen_cpu"])
    print("  one refresh                    CPU %.3f s, wall %.3f s = %.0f %% of a core at 1 Hz"
          % (per, r["wall"], 100 * per))
    print("  first refresh (learns layouts) CPU %.3f s" % r["first_cpu"])
    print("  conntrack -L -o extended       CPU %.3f s (ratio %.2f)" % (ct, per / ct if ct else 0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
