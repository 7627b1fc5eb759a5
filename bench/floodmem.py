#!/usr/bin/env python3
"""Where a flood's memory stays: the live view's collector and screen work
(no curses), in a namespace, flooded with new UDP flows, then quiet:

    sudo python3 bench/floodmem.py [--rate 20000] [--seconds 20] [--after 60]
                                   [--tree DIR ...] [--owners] [-- flowtop options]

Per tree (this one, or each ``--tree``, one after the other in the same
namespace): VmRSS before the flood, its peak, and ``--after`` seconds after
the flood (the flows gone by then: UDP timeout 8 s), with Python's arenas
(``sys._debugmallocstats``: 1 MiB each on 3.10+) in use at the end.  An
arena is given back only when every block in it is free: a few values kept
from the flood (a cache entry, a float in a ring) keep whole arenas.
``--owners`` then walks every object reachable from the modules, the
threads and the live view's objects, and names what holds the objects that
sit alone in an arena (a few hundred of them kept ~170 MiB).
"""

import argparse
import collections
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


def arenas():
    """Python's arenas in use (its allocator's own count, read from stderr)."""
    gc.collect()
    with tempfile.TemporaryFile("w+") as f:
        sys.stderr.flush()
        old = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(old, 2)
            os.close(old)
        f.seek(0)
        for line in f:
            if "arenas allocated current" in line:
                return int(line.split("=")[1])
    return None


def mappings(top=8):
    """The process's memory by where it lies (/proc/self/smaps): the brk heap,
    each anonymous mapping (Python's arenas, glibc's thread arenas, big
    blocks), the files; the largest anonymous ones by RSS."""
    kinds, anon, cur = collections.Counter(), [], None
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and not head[0].endswith(":"):
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                name = head[5] if len(head) > 5 else ""
                cur = [name or "anon", (hi - lo) >> 10, 0, head[1]]
                (anon if not name else []).append(cur)
            elif head[0] == "Rss:" and cur is not None:
                cur[2] = int(head[1])
                kinds["[heap]" if cur[0] == "[heap]" else "anon" if cur[0] == "anon"
                      else "files"] += cur[2]
    print("RSS by kind, MiB: " + ", ".join("%s %.1f" % (k, v / 1024)
                                           for k, v in kinds.most_common()))
    for name, size, rss, perms in sorted(anon, key=lambda m: -m[2])[:top]:
        print("  anon %s %8.1f MiB mapped %8.1f MiB resident" % (perms, size / 1024, rss / 1024))


def owners(roots, top=20):
    """What holds the small objects that are alone (< 300) in a 1 MiB region."""
    import types
    parent, seen = {}, {}
    todo = collections.deque((r, None) for r in roots)
    while todo:
        o, par = todo.popleft()
        if id(o) in seen:
            continue
        seen[id(o)] = o
        parent[id(o)] = par
        if not isinstance(o, (str, bytes, int, float, type(None))):
            todo.extend((r, o) for r in gc.get_referents(o) if id(r) not in seen)
    regions = collections.defaultdict(list)
    for i, o in seen.items():
        if sys.getsizeof(o) <= 512:
            regions[i >> 20].append(o)

    def label(o, child):
        if isinstance(o, types.ModuleType):
            return "module " + o.__name__
        if isinstance(o, dict):
            k = [k for k, v in o.items() if v is child][:1]
            return "dict[%r]" % k[0] if k and isinstance(k[0], str) else "dict"
        return type(o).__name__

    def path(o):
        out, cur = [], o
        for _ in range(7):
            p = parent.get(id(cur))
            if p is None:
                break
            out.append(label(p, cur))
            cur = p
        return " <- ".join([type(o).__name__] + out)
    held = collections.Counter(path(o) for objs in regions.values() if len(objs) < 300
                               for o in objs[:8])
    sparse = sum(1 for objs in regions.values() if len(objs) < 300)
    sizes = sorted(len(objs) for objs in regions.values())
    print("reachable small objects: %d in %d regions (%.1f MiB); per region: %s" % (
        sum(sizes), len(sizes), sum(sys.getsizeof(o) for objs in regions.values()
                                    for o in objs) / 2**20, sizes))
    dense = collections.Counter()
    for objs in regions.values():
        if len(objs) >= 300:
            dense.update(path(o) for o in objs)
    for k, n in dense.most_common(top):
        print("  dense %6d  %s" % (n, k))
    return sparse, held.most_common(top)


def thread_cpus():
    """CPU seconds of each of this process's threads, by name."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open("/proc/self/task/%s/stat" % tid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(tid), tid)
        tck = os.sysconf("SC_CLK_TCK")
        u, s = out.get(name, (0.0, 0.0))
        out[name] = (u + int(fields[11]) / tck, s + int(fields[12]) / tck)
    return out


STAGES = (("flowtop.collector", "Collector", ("_full_tick", "_partial", "_publish", "_trim",
                                              "_kernel_count")),
          ("flowtop.table", "FlowTable", ("apply_stamped", "update")),
          ("flowtop.enrich.bundle", "Enrichment", ("tick", "tick_new")),
          ("flowtop.enrich.iface", "Interfaces", ("prefetch",)),
          ("flowtop.enrich.devices", "Devices", ("account",)),
          ("flowtop.history", "History", ("feed",)))


def timed_stages():
    """Wrap the collector's stages with this thread's CPU timers: {stage: [CPU s, ...]}."""
    import importlib
    spent = collections.defaultdict(list)

    def wrap(name, fn):
        def timed(*a, **kw):
            c = time.thread_time()
            try:
                return fn(*a, **kw)
            finally:
                spent[name].append(time.thread_time() - c)
        return timed
    from flowtop.collector import Collector
    full_tick = Collector._full_tick

    def logged(self):
        c = time.thread_time()
        try:
            return full_tick(self)
        finally:
            spent["full-log"].append((time.monotonic(), len(self.table),
                                      time.thread_time() - c, self.full_every))
    Collector._full_tick = logged
    drifted, take = Collector._drifted, Collector._take_events

    def why_drift(self, kernel):
        out = drifted(self, kernel)
        spent["why-log"].append((time.monotonic(), "drift %s: mine %d kernel %d pending %d" % (
            out, sum(self.table.tally().protos.values()), kernel, self.events.pending())))
        return out

    def why_lost(self):
        out = take(self)
        if out[1]:
            spent["why-log"].append((time.monotonic(), "lost"))
        return out
    Collector._drifted, Collector._take_events = why_drift, why_lost
    try:
        from flowtop.eventreader import EventReader
    except ImportError:
        EventReader = None
    for name in ("pause", "resume"):            # the reader paused in a flood (i16t)
        if EventReader is not None and hasattr(EventReader, name):
            def said(self, _fn=getattr(EventReader, name), _name=name):
                spent["why-log"].append((time.monotonic(), "events " + _name))
                return _fn(self)
            setattr(EventReader, name, said)
    for mod, cls, names in STAGES:
        try:
            klass = getattr(importlib.import_module(mod), cls)
        except (ImportError, AttributeError):
            continue
        for n in names:
            if hasattr(klass, n):
                setattr(klass, n, wrap("%s.%s" % (cls, n), getattr(klass, n)))
    return spent


def inner(args):
    sys.path.insert(0, args.tree)
    sys.path.insert(1, HERE)
    from flowtop import cli
    from flowtop.collector import Collector
    from flowtop.enrich.bundle import from_options
    from flowtop.sources import KernelSource
    from flowtop.views.cells import Formatter
    from flowtop.views.columns import layout
    from flowtop.views.select import Selection
    from flowtop.views.state import ViewState
    import live
    opts = cli.parse(args.flowtop + ["--no-sysctl", "-t", "1"])
    source = KernelSource(opts)
    source.open()
    enrich = from_options(opts)
    state = ViewState(opts)
    fmt = Formatter(state, enrich)
    col = Collector(source, opts.interval, enrich)
    stages = timed_stages() if args.stages else None
    if args.profile:                    # every thread's stacks, sampled (live_profile.py)
        import live_profile
        prof = live_profile.Profile(args.profile)
        threading.Thread(target=prof.sample_forever, daemon=True).start()
    col.start()
    sel = Selection()
    t0, sender, ended, peak, out = time.monotonic(), None, None, 0, {}
    while True:
        if sender is None and time.monotonic() - t0 > 5:
            out["before"], out["arenas_before"] = rss_mib(), arenas()
            out["blocks_before"] = sys.getallocatedblocks()
            if args.trace:              # the blocks made from here on, by where
                import tracemalloc
                tracemalloc.start(args.trace)
            sender = subprocess.Popen([sys.executable, "-c", live.SENDER, str(args.rate),
                                       str(args.seconds)], stdout=subprocess.DEVNULL,
                                      env=dict(os.environ, FTBENCH_V4_NET="10"))
            cpu0, wall0, threads0 = time.process_time(), time.monotonic(), thread_cpus()
            if stages is not None:
                stages.clear()
        snap = col.latest()
        if snap is not None:            # what the screen does a tick: choose, one page
            state.wall = snap.wall
            shown = sel.build(snap.rows, state, fmt, snap.version, snap.delta)
            snap.taken = True           # as the screen does: the next delta starts here
            col.set_visible([r.key for r in shown[:46]])
            cols = layout(200, state)
            for r in shown[:46]:
                fmt.line(r, cols, snap.wall)
        peak = max(peak, rss_mib())
        if sender is not None and ended is None and sender.poll() is not None:
            ended = time.monotonic()
            out["cpu"] = round(100 * (time.process_time() - cpu0) / (ended - wall0), 1)
            if stages is not None:
                out["threads"] = {k: [round(u - threads0.get(k, (0, 0))[0], 2),
                                      round(s - threads0.get(k, (0, 0))[1], 2)]
                                  for k, (u, s) in thread_cpus().items()}
                out["fulls"] = [(round(t - wall0, 2), n, round(c, 3), round(e, 2))
                                for t, n, c, e in stages.pop("full-log", ()) if t > wall0]
                out["why"] = [(round(t - wall0, 2), w) for t, w in stages.pop("why-log", ())
                              if t > wall0]
                out["stages"] = {k: [len(v), round(sum(v), 2)] for k, v in stages.items()}
            if args.profile:
                prof.save()
        if ended is not None and time.monotonic() - ended > args.after:
            break
        time.sleep(1.0)
    if stages is not None and ended is not None:     # after the flood: dumps, pause, resume
        out["fulls"] = out.get("fulls", []) + [
            (round(t - wall0, 2), n, round(c, 3), round(e, 2)) for t, n, c, e in stages.pop(
                "full-log", ())]
        out["why"] = out.get("why", []) + [(round(t - wall0, 2), w) for t, w in stages.pop(
            "why-log", ()) if not w.startswith("drift False")]
    out.update(peak=peak, after=rss_mib(), blocks=sys.getallocatedblocks())
    out.update(arenas_after=arenas(), after_gc=rss_mib(), blocks_gc=sys.getallocatedblocks(),
               flows=len(col.table))
    print("RESULT " + json.dumps(out), flush=True)
    mappings()
    if args.trace:
        import tracemalloc
        snap = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)])
        stats = snap.statistics("traceback")
        print("blocks made since the flood began and alive at the end: %d (%.1f MiB)" % (
            sum(st.count for st in stats), sum(st.size for st in stats) / 2**20))
        for st in stats[:25]:
            print("  %6d blocks %8d B  %s" % (st.count, st.size, " <- ".join(
                "%s:%d" % (f.filename.split("/flowtop/")[-1].split("/lib/")[-1], f.lineno)
                for f in reversed(st.traceback))))
    if args.owners:
        sparse, held = owners(list(sys.modules.values()) + list(sys._current_frames().values())
                              + [col, source, enrich, sel, fmt, state])
        print("%d regions of 1 MiB hold fewer than 300 small objects; what holds them:" % sparse)
        for k, n in held:
            print("  %5d  %s" % (n, k))
    col.stop()
    source.close()
    enrich.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=int, default=20000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--after", type=float, default=60.0)
    ap.add_argument("--tree", action="append", default=[])
    ap.add_argument("--owners", action="store_true")
    ap.add_argument("--trace", type=int, default=0, metavar="FRAMES",
                    help="tracemalloc from the flood on: where the blocks left at the end"
                         " were made (FRAMES deep; slows the run ~2x)")
    ap.add_argument("--profile", metavar="OUT.json",
                    help="sample every thread's stacks (live_profile.py; --report reads it)")
    ap.add_argument("--stages", action="store_true",
                    help="each thread's CPU over the flood and the collector's stages'")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("flowtop", nargs="*", help="flowtop options (default: none, as a user)")
    args = ap.parse_args()
    if args.inner:
        args.tree = args.tree[0]
        return inner(args)
    sys.path.insert(0, HERE)
    import live
    import netns
    with netns.Namespace("ftbench-floodmem-%d" % os.getpid()) as ns:
        ns.sysctl({"nf_conntrack_max": int(args.rate * 8 * 1.5) + 10000})
        ns.sysctl({"nf_conntrack_udp_timeout": 8, "nf_conntrack_udp_timeout_stream": 8},
                  exact=True)
        live.setup_routes(ns, True)
        print("%-28s %8s %8s %8s %8s %8s %8s %8s" % ("tree", "before", "peak", "after",
                                                     "arenas0", "arenas", "flows", "flood%"))
        for tree in args.tree or [ROOT]:
            argv = [sys.executable, os.path.abspath(__file__), "--inner", "--tree", tree,
                    "--rate", str(args.rate), "--seconds", str(args.seconds),
                    "--after", str(args.after), "--trace", str(args.trace)] + (
                        ["--owners"] if args.owners else []) + (
                        ["--profile", os.path.abspath(args.profile)] if args.profile else []) + (
                        ["--stages"] if args.stages else [])
            r = ns.run(*(argv + ["--"] + args.flowtop), check=False)
            res = [line for line in r.stdout.splitlines() if line.startswith("RESULT ")]
            if not res:
                print("%-28s failed: %s" % (tree, (r.stderr or "")[-500:]))
                continue
            d = json.loads(res[0][7:])
            print("%-28s %8s %8s %8s %8s %8s %8s %8s" % (
                tree[-28:], d["before"], d["peak"], d["after"], d["arenas_before"],
                d["arenas_after"], d["flows"], d.get("cpu")), flush=True)
            print("  after a full gc.collect(): VmRSS %s MiB; allocated blocks before / after /"
                  " after gc: %s / %s / %s" % (d["after_gc"], d["blocks_before"], d["blocks"],
                                               d["blocks_gc"]))
            for k, (u, s) in sorted(d.get("threads", {}).items()):
                print("  thread %-22s %6.2f s user %6.2f s sys" % (k, u, s))
            for t, n, c, e in d.get("fulls", ()):
                print("  full dump at %6.2f s: %6d flows, %.3f s CPU, next %.2f s later"
                      % (t, n, c, e))
            for t, w in d.get("why", ()):
                print("  at %6.2f s: %s" % (t, w))
            for k, (n, v) in sorted(d.get("stages", {}).items()):
                print("  stage %-26s n=%5d %6.2f s" % (k, n, v))
            rest = [line for line in r.stdout.splitlines() if not line.startswith("RESULT ")]
            if rest:
                print("\n".join(rest))
            time.sleep(10)                # the flood's flows gone before the next tree


if __name__ == "__main__":
    main()
