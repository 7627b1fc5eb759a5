#!/usr/bin/env python3
"""Key-to-screen in the live view at N flows, in-process, no root:

    python3 bench/keys.py 100000 [--repeat 20]

Builds a table of N synthetic flows (the flows of tests/fixtures/ctnetlink-mixed.rec,
copied with distinct addresses, ports and counters; seen twice so rates
exist), then times what the screen does for one key: the handler, the
view-model when the key needs it, and the drawing of one 50-row page
(curses imported, never initialised; its calls no-ops).
"""

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
MIXED = os.path.join(os.path.dirname(HERE), "tests", "fixtures", "ctnetlink-mixed.rec")


class Window:
    def __init__(self, size):
        self.size = size

    def getmaxyx(self):
        return self.size

    def __getattr__(self, name):          # erase, addnstr, noutrefresh, ...
        return lambda *a, **k: None


def synthetic(n, bare=False, distinct=False):
    """N distinct entries made from the recorded ones; ``bare``: as TableFlow,
    the class the kernel source decodes into (the table stores idle ones
    without a Row, as the live view's does); ``distinct``: each to a
    destination address of its own (else 250 shared)."""
    from flowtop import api as conntrack
    from flowtop.netlink.ctnetlink import FIELDS
    with open(MIXED, "rb") as f:
        when, flows = next(conntrack.replay(f))
    flows = [f for f in flows if f.family == 2 and f.sport is not None]
    i_src, i_sport, i_key = FIELDS.index("src"), FIELDS.index("sport"), FIELDS.index("key")
    i_bytes, i_dst = FIELDS.index("bytes_orig"), FIELDS.index("dst")
    out = []
    if bare:
        from flowtop.table import TableFlow as cls
    else:
        cls = type(flows[0])
    for i in range(n):
        base = list(flows[i % len(flows)])
        base[i_src] = "10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255)
        base[i_sport] = 1024 + i % 60000
        base[i_dst] = ("100.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255) if distinct
                       else "198.51.100.%d" % (i % 250))     # none on loopback
        base[i_key] = b"k%d" % i
        base[i_bytes] = (base[i_bytes] or 0) + i
        out.append(tuple.__new__(cls, base))
    return when, out


def dumped(bare=False):
    """(when, the entries) of one dump of this namespace's table (``bare``: as
    ``synthetic``'s)."""
    from flowtop import api as conntrack
    entries = list(conntrack.dump())
    if bare:
        from flowtop.table import TableFlow
        entries = [tuple.__new__(TableFlow, e) for e in entries]
    return time.time(), entries


def flood(args, table, scr, Snapshot, when):
    """The screen's share of a flood, as the collector publishes it: each
    tick ``--flood`` new flows (to loopback with ``--loop``: the default view
    hides them) and as many old ones gone, a snapshot with the table's
    changes; a full dump (every row anew, no changes list) every third
    tick.  Prints the screen's CPU ms a tick (choosing, sorting, drawing)."""
    _, base = synthetic(args.flood, args.bare)
    from flowtop.netlink.ctnetlink import FIELDS
    i_key, i_dst, i_src = FIELDS.index("key"), FIELDS.index("dst"), FIELDS.index("src")
    cls = type(base[0])
    live = {r.key: r.entry for r in table}
    version, cpus, full = table.version, {True: [], False: []}, True
    serial = 0
    settled = len(live) // args.flood + 1       # ticks until the first rows are all gone
    for tick in range(settled + args.ticks):
        now = 102.0 + tick
        news = []
        for e in base:
            serial += 1
            f = list(e)
            f[i_key] = b"n%d" % serial
            f[i_src] = "10.200.%d.%d" % (serial >> 8 & 255, serial & 255)
            f[i_dst] = "127.3.%d.%d" % (serial >> 8 & 255, serial & 255) if args.loop \
                else "10.3.%d.%d" % (serial >> 8 & 255, serial & 255)
            news.append(tuple.__new__(cls, f))
        gone = list(live)[:len(news)]
        for k in gone:
            del live[k]
        live.update((e.key, e) for e in news)
        full = tick % 3 == 2
        if full:
            table.apply(list(live.values()), now, when + now)
        else:
            table.update(news, now, when + now, gone)
        changes = table.take_changes()
        delta = None if changes is None else (version,) + changes
        version = table.version
        snap = Snapshot(list(table), when + now, table.totals(), None, tick,
                        tally=table.tally().copy(), version=version, delta=delta)
        c0 = time.process_time()
        scr.snap, scr.stale = snap, True
        scr.refresh()
        if tick >= settled:
            cpus[full].append((time.process_time() - c0) * 1000)
    print("%d flows, %d new a tick%s: screen CPU ms a tick, median: %.1f after a "
          "partial sample, %.1f after a full dump (%d shown)"
          % (len(table), args.flood, " to loopback" if args.loop else "",
             statistics.median(cpus[False]), statistics.median(cpus[True]), len(scr.ui.view)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--flood", type=int, default=0, metavar="NEW",
                    help="instead of keys: NEW new flows (and as many gone) a tick")
    ap.add_argument("--loop", action="store_true", help="the flood's flows on loopback")
    ap.add_argument("--ticks", type=int, default=9, help="ticks measured (--flood)")
    ap.add_argument("--process", action="store_true",
                    help="with this host's processes (enrich.process.ProcessMap)")
    ap.add_argument("--bare", action="store_true",
                    help="entries as the kernel source decodes them: idle rows stored bare")
    ap.add_argument("--fresh", action="store_true",
                    help="with --bare: the table after its first dump only (FreshFlow rows: "
                         "rates unknown), as a router's stays until its next full dump")
    ap.add_argument("--distinct", action="store_true",
                    help="each flow to a destination address of its own (a server's table)")
    ap.add_argument("--tabs", type=int, default=0, metavar="R",
                    help="only Tab round the views R times, the table frozen (gc.freeze(), as "
                         "the collector leaves it after a dump): CPU ms per view")
    ap.add_argument("--sorts", type=int, default=0, metavar="R",
                    help="only 'o' round the sorts R times, the table frozen: CPU ms per sort")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="with --tabs or --sorts: cProfile them, the N costliest functions")
    ap.add_argument("--flags", default="", help="flowtop's options, e.g. '-n -G'")
    ap.add_argument("--kernel", action="store_true",
                    help="the flows of this namespace's table (as root, in one: ip netns exec "
                         "NS) and the providers --flags ask for (processes, interfaces)")
    args = ap.parse_args()
    import curses
    for name in ("doupdate", "newwin"):
        setattr(curses, name, lambda *a, **k: Window((0, 0)))
    from flowtop import cli
    from flowtop.enrich.bundle import Enrichment
    from flowtop.collector import Snapshot
    from flowtop.services import Services
    from flowtop.table import FlowTable
    from flowtop.views import screen as ui
    from flowtop.views.cells import Formatter
    from flowtop.values import SORTS
    from flowtop.views.state import ViewState

    when, entries = (dumped(args.bare) if args.kernel
                     else synthetic(args.n, args.bare, args.distinct))
    table = FlowTable()
    table.apply(entries, 100.0, when)
    bumped = [tuple.__new__(type(e), e[:21] + ((e[21] or 0) + 5000,) + e[22:]) if i % 3 == 0
              else e for i, e in enumerate(entries)]
    if not args.fresh:
        table.apply(bumped, 101.0, when + 1)
    rows = list(table)

    class Collector:
        visible = ()

        def latest(self):
            return snap

        def set_interval(self, v):
            pass

        def set_visible(self, keys):
            self.visible = keys

    snap = Snapshot(rows, when + 1, table.totals(), None, 0, tally=table.tally().copy(),
                    version=table.version)
    st = ViewState(cli.parse(args.flags.split()))
    enrich = Enrichment(Services())
    if args.kernel:         # the live view's providers, attached at once
        from flowtop.enrich.bundle import from_options
        enrich = from_options(cli.parse(args.flags.split()))
    if args.process:        # this host's sockets: the Processes view asks each flow's
        from flowtop.enrich.process import ProcessMap
        enrich = Enrichment(Services(), process=ProcessMap())
        enrich.process.refresh()
    scr = ui.Screen(Window((60, 200)), st, Formatter(st, enrich),
                    Collector(), {"acct": True, "timestamp": True})
    scr.snap = snap
    scr.refresh()
    if args.flood:
        return flood(args, table, scr, Snapshot, when)
    if args.tabs or args.sorts:
        return rounds(args, scr, st)
    keys = (("Down", curses.KEY_DOWN), ("Up", curses.KEY_UP), ("PgDn", curses.KEY_NPAGE),
            ("s (source column)", "s"), ("b (bits)", "b"), ("o (sort)", "o"),
            ("r (reverse)", "r"), ("a (active)", "a"), ("L (loopback)", "L"))
    # a new snapshot: what the screen does once a tick, when rows changed (a
    # new list: filters, sort, header, one page), when 50 moved (the table's
    # changes since: the filters pass over those only) and when the table did
    # not (the collector hands the same rows on: the header and one page)
    table.take_changes()
    for what in ("a new snapshot", "a snapshot where 50 rows moved", "an unchanged table's"):
        walls, cpus = [], []
        for i in range(3):
            delta = None
            if what.startswith("a snapshot"):
                now = 102.0 + i
                table.update([tuple.__new__(type(e), e[:21] + ((e[21] or 0) + 9000 * (i + 1),)
                                            + e[22:]) for e in bumped[:50]], now, when + now)
                delta = (snap.version,) + table.take_changes()
            t0, c0 = time.perf_counter(), time.process_time()
            rows = snap.rows if what.startswith("an unchanged") else list(table)
            snap = Snapshot(rows, when + 2 + i, table.totals(), None, 0,
                            tally=table.tally().copy(), version=table.version, delta=delta)
            scr.snap, scr.stale = snap, True
            scr.refresh()
            walls.append((time.perf_counter() - t0) * 1000)
            cpus.append((time.process_time() - c0) * 1000)
        print("%d flows: %s %.0f ms (CPU %.0f ms), median of 3"
              % (len(rows), what, statistics.median(walls), statistics.median(cpus)))
    print("%d flows, ms per key (median of %d; min-max)" % (len(rows), args.repeat))
    for label, key in keys:
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            scr.key(key)
            scr.refresh()
            times.append((time.perf_counter() - t0) * 1000)
        print("  %-20s %7.1f  (%.1f-%.1f)" % (label, statistics.median(times), min(times),
                                             max(times)))
    # 'o' round the sorts, one press each: the CPU of each sort at this size
    cpus = []
    for _ in range(len(SORTS)):
        c0 = time.process_time()
        scr.key("o")
        scr.refresh()
        cpus.append("%s %.0f" % (st.sort, (time.process_time() - c0) * 1000))
    print("  o round the sorts, CPU ms: %s" % ", ".join(cpus))

    def tab(note=""):
        t0, c0 = time.perf_counter(), time.process_time()
        scr.key("\t")
        scr.refresh()
        print("  Tab -> %-12s %7.1f  (%d shown; CPU %.1f%s)" % (
            st.view, (time.perf_counter() - t0) * 1000, len(scr.ui.view),
            (time.process_time() - c0) * 1000, note))
    # Tab round the views: each press chooses and sorts the rows of the next view
    for _ in range(6):
        tab()
    if args.process:        # the live view asks again each tick: the answers kept since
        enrich.process.refresh()
        tab("; again, after a tick")
        for _ in range(5):
            scr.key("\t")
        scr.refresh()
    # '/' then a text typed a character at a time (each one filters), then Esc:
    # first with the '1' typed at once, then after the prompt's idle work
    for ch in ("/", "1", "\x1b", "/", "idle", "1", "0", ".", "2", "\x1b"):
        if ch == "idle":
            t0, slices = time.perf_counter(), 1
            while scr.selection.warm(st, scr.fmt, ui.WARM):
                slices += 1
            print("  the prompt's idle work   %7.1f  (%d slices)" % (
                (time.perf_counter() - t0) * 1000, slices))
            continue
        if ch == "\x1b" and st.filter == "10.2":
            snapshots(table, scr, Snapshot, when, bumped)
        t0 = time.perf_counter()
        scr.key(ch)
        scr.refresh()
        print("  filter %-13r %7.1f  (%d shown)" % (ch, (time.perf_counter() - t0) * 1000,
                                                    len(scr.ui.view)))


def rounds(args, scr, st):
    """Tab round the views (``--tabs``) or 'o' round the sorts (``--sorts``)
    R times, the rows frozen as the live view's collector leaves them: CPU
    ms per view or sort (min / median; the first look at each first);
    ``--profile N``: the N functions of most own time over them all."""
    import gc
    from flowtop.values import SORTS
    gc.freeze()
    key, what, steps = ("\t", "view", 6) if args.tabs else ("o", "sort", len(SORTS))
    prof = None
    if args.profile:
        import cProfile
        prof = cProfile.Profile()
    cpus = {}
    for _ in range(args.tabs or args.sorts):
        for _ in range(steps):
            c0 = time.process_time()
            if prof is not None:
                prof.enable()
            scr.key(key)
            scr.refresh()
            if prof is not None:
                prof.disable()
            cpus.setdefault(getattr(st, what), []).append((time.process_time() - c0) * 1000)
    for name, ms in cpus.items():
        print("  %s -> %-8s CPU ms min %5.0f median %5.0f  (%s)" % (
            "Tab" if args.tabs else "o", name, min(ms), statistics.median(ms),
            " ".join("%.0f" % t for t in ms)))
    if prof is not None:
        import pstats
        pstats.Stats(prof).sort_stats("tottime").print_stats(args.profile)


def snapshots(table, scr, Snapshot, when, bumped):
    """With a '/' text set: a snapshot where 50 rows moved, three times
    (each new snapshot filters its rows again)."""
    walls, cpus = [], []
    for i in range(3):
        now = 110.0 + i
        snap = scr.snap
        table.update([tuple.__new__(type(e), e[:21] + ((e[21] or 0) + 7000 * (i + 1),) + e[22:])
                      for e in bumped[:50]], now, when + now)
        delta = (snap.version,) + table.take_changes()
        t0, c0 = time.perf_counter(), time.process_time()
        scr.snap = Snapshot(list(table), when + now, table.totals(), None, 0,
                            tally=table.tally().copy(), version=table.version, delta=delta)
        scr.stale = True
        scr.refresh()
        walls.append((time.perf_counter() - t0) * 1000)
        cpus.append((time.process_time() - c0) * 1000)
    print("  a snapshot where 50 rows moved, '/' text set: %.0f ms (CPU %.0f ms), median of 3"
          % (statistics.median(walls), statistics.median(cpus)))


if __name__ == "__main__":
    main()
