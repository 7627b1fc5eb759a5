"""The live view with a sampler and stage timers, for a slow guest (the router bench's
``--profile``):

    python3 live_profile.py OUT.json FLOWTOP.pyz [flowtop options...]

Runs the .pyz's flowtop in this process and, beside it, a thread that every
PERIOD s reads each thread's CPU ticks (/proc/self/task/TID/stat) and, for every
thread whose ticks moved since the last sample (it ran), counts its Python stack.
It also wraps the tick's stages (Collector._full_tick, _partial, _publish,
Screen.rebuild, draw) with thread CPU and wall timers, and times every gc pass.
Writes OUT.json every 10 s and at exit.  Stdlib only; nothing here is imported by
flowtop itself.
"""

import collections
import gc
import json
import os
import sys
import threading
import time

PERIOD = 0.05
DEPTH = 14


def thread_ticks():
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open("/proc/self/task/%s/stat" % tid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[int(tid)] = int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return out


class Profile:
    def __init__(self, out):
        self.out = out
        self.t0 = time.monotonic()
        self.stacks = collections.Counter()      # (thread, stack) -> busy samples
        self.busy = collections.Counter()        # thread -> busy samples
        self.samples = 0
        self.stages = []                         # (name, t, cpu, wall, extra)
        self.gc = []                             # (generation, t, wall, collected)
        self.cpu = {}                            # thread name -> ticks, last read
        self._gc_at = None
        self.lock = threading.Lock()
        self.profiles = {}
        self.started = None                      # s this process had run at t0

    def stage(self, name, fn, extra=None, profiled=False):
        """``fn`` timed; with ``profiled`` under a cProfile of this stage (its thread only)."""
        prof = self
        if profiled:
            import cProfile
            self.profiles[name] = cProfile.Profile()

        def timed(*a, **kw):
            c, w = time.thread_time(), time.monotonic()
            p = prof.profiles.get(name)
            if p is not None:
                p.enable()
            try:
                return fn(*a, **kw)
            finally:
                if p is not None:
                    p.disable()
                row = (name, round(w - prof.t0, 3), round(time.thread_time() - c, 4),
                       round(time.monotonic() - w, 4), extra(a[0]) if extra else None)
                with prof.lock:
                    prof.stages.append(row)
        return timed

    def on_gc(self, phase, info):
        if phase == "start":
            self._gc_at = time.monotonic()
        elif self._gc_at is not None:
            self.gc.append((info["generation"], round(self._gc_at - self.t0, 3),
                            round(time.monotonic() - self._gc_at, 4), info["collected"]))
            self._gc_at = None

    def sample_forever(self):
        try:
            self._sample_forever()
        except BaseException as exc:      # noqa: B036 - said in the output, not lost
            self.died = repr(exc)
            self.save()

    died = None

    def _sample_forever(self):
        me = threading.get_ident()
        last = thread_ticks()
        next_save = time.monotonic() + 10
        while True:
            time.sleep(PERIOD)
            ticks = thread_ticks()
            names = {t.ident: (t.name, t.native_id) for t in threading.enumerate()}
            frames = sys._current_frames()
            self.samples += 1
            for ident, frame in frames.items():
                if ident == me or ident not in names:
                    continue
                name, tid = names[ident]
                if ticks.get(tid, 0) == last.get(tid, 0):
                    continue                     # it did not run since the last sample
                stack = []
                f = frame
                while f is not None and len(stack) < DEPTH:
                    c = f.f_code
                    stack.append("%s:%s:%d" % (os.path.basename(c.co_filename), c.co_name,
                                               f.f_lineno or 0))    # None in some 3.11 frames
                    f = f.f_back
                self.stacks[(name, tuple(reversed(stack)))] += 1
                self.busy[name] += 1
            del frames
            self.cpu = {names[i][0]: ticks.get(names[i][1], 0) for i in names}
            self.cpu["sampler"] = ticks.get(threading.get_native_id(), 0)
            last = ticks
            if time.monotonic() >= next_save:
                next_save += 10
                self.save()

    @staticmethod
    def _top(p, n=45):
        """The ``n`` functions of most cumulative time: [name, calls, tottime, cumtime]."""
        import pstats
        try:
            st = pstats.Stats(p).stats
        except (TypeError, ValueError):        # nothing recorded yet
            return []
        rows = [["%s:%d:%s" % (os.path.basename(f), line, fn), nc, round(tt, 4), round(ct, 4)]
                for (f, line, fn), (_cc, nc, tt, ct, _callers) in st.items()]
        rows.sort(key=lambda r: -r[3])
        return rows[:n] + sorted(rows, key=lambda r: -r[2])[:n]

    def save(self):
        with self.lock:
            stages = list(self.stages)
        data = {"seconds": round(time.monotonic() - self.t0, 1), "samples": self.samples,
                "period": PERIOD, "started": self.started, "clk_tck": os.sysconf("SC_CLK_TCK"),
                "cpu_ticks": self.cpu, "busy": dict(self.busy),
                "stacks": [[n, list(s), c] for (n, s), c in self.stacks.most_common(400)],
                "stages": stages, "gc": self.gc[-3000:], "died": self.died,
                "cprofile": {k: self._top(p) for k, p in list(self.profiles.items())}}
        tmp = self.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, self.out)


def report(path, since=0.0, top=25):
    """A summary of OUT.json: CPU per thread, stage costs after ``since`` s, gc, and the
    functions most often on a busy thread's stack (inclusive, and innermost)."""
    with open(path) as f:
        d = json.load(f)
    tck = d["clk_tck"]
    print("%.0f s (t0 %s s into the process), %d samples; CPU s by thread: %s" % (
        d["seconds"], d.get("started"), d["samples"], ", ".join(
        "%s %.1f" % (k, v / tck) for k, v in sorted(d["cpu_ticks"].items()))))
    per = collections.defaultdict(lambda: [0, 0.0, 0.0, None, None])
    for name, t, cpu, wall, extra in d["stages"]:
        if t >= since:
            p = per[name]
            p[0] += 1
            p[1] += cpu
            p[2] += wall
            p[3] = t if p[3] is None else p[3]
            p[4] = extra
    for name, (n, cpu, wall, first, extra) in sorted(per.items()):
        print("stage %-8s n=%4d cpu %7.2f s (%.3f each) wall %7.2f s  first at %s, last extra %s"
              % (name, n, cpu, cpu / max(n, 1), wall, first, extra))
    gcs = [g for g in d["gc"] if g[1] >= since]
    by = collections.Counter()
    for g in gcs:
        by[g[0]] += g[2]
    print("gc after %.0f s: %d passes, wall s by generation %s" % (
        since, len(gcs), {k: round(v, 2) for k, v in by.items()}))
    for thread in sorted({n for n, _s, _c in d["stacks"]}):
        incl, inner = collections.Counter(), collections.Counter()
        total = 0
        for n, stack, c in d["stacks"]:
            if n != thread:
                continue
            total += c
            inner[stack[-1]] += c
            for fn in {x.rsplit(":", 1)[0] for x in stack}:
                incl[fn] += c
        print("== %s: %d busy samples" % (thread, total))
        for fn, c in incl.most_common(top):
            print("  incl %5.1f%%  %s" % (100.0 * c / total, fn))
        for fn, c in inner.most_common(12):
            print("  self %5.1f%%  %s" % (100.0 * c / total, fn))
    for stage, rows in d.get("cprofile", {}).items():
        print("== cProfile of %s (name, calls, tottime, cumtime)" % stage)
        for r in rows:
            print("  %-60s %7d %8.3f %8.3f" % tuple(r))
    if d.get("died"):
        print("sampler died:", d["died"])


def startup(prof):
    """Stage timers of the live view's start: the enrichment, the socket, curses, the
    first dump's early rows; and how long this process had run at ``t0``."""
    from flowtop import main as fmain, sources
    from flowtop.views import screen
    fmain.from_options = prof.stage("from_options", fmain.from_options)
    sources.KernelSource.open = prof.stage("open", sources.KernelSource.open)
    screen.enter = prof.stage("enter", screen.enter)
    collector.Collector._publish_early = prof.stage("early", collector.Collector._publish_early,
                                                    lambda c: len(c.table))
    try:
        with open("/proc/self/stat") as f:
            start = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            up = float(f.read().split()[0])
        prof.started = round(up - (time.monotonic() - prof.t0) - start / os.sysconf("SC_CLK_TCK"),
                             2)
    except (OSError, ValueError, IndexError):
        pass


def main():
    if sys.argv[1] == "--report":
        return report(sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
    out, pyz = sys.argv[1], sys.argv[2]
    sys.argv = [pyz] + sys.argv[3:]
    sys.path.insert(0, pyz)
    try:                # what the archive's __main__ does: its code member (build_pyz --python)
        import zipimport
        from flowtop import pyzimport
        pyzimport.install(zipimport.zipimporter(pyz))
    except ImportError:                     # a .pyz from before flowtop/pyzimport.py
        pass
    prof = Profile(out)
    global collector
    from flowtop import collector
    from flowtop.views import screen
    C, S = collector.Collector, screen.Screen
    C._full_tick = prof.stage("full", C._full_tick, lambda c: round(c.full_every, 2))
    deep = os.environ.get("LIVE_PROFILE_CPROFILE") == "1"
    C._partial = prof.stage("partial", C._partial,
                            lambda c: (len(c.visible), round(getattr(c, "pace", 0.0), 2)), deep)
    S._answer = prof.stage("key", S._answer)
    C._publish = prof.stage("publish", C._publish, lambda c: len(c.table))
    S.rebuild = prof.stage("rebuild", S.rebuild, None, deep)
    S.draw = prof.stage("draw", S.draw, None, deep)
    startup(prof)
    gc.callbacks.append(prof.on_gc)
    if os.environ.get("LIVE_PROFILE_SAMPLER", "1") == "1":     # ~60 ms a sample on mipsel
        threading.Thread(target=prof.sample_forever, name="sampler", daemon=True).start()
    import atexit
    atexit.register(prof.save)
    from flowtop.entry import run
    run()


if __name__ == "__main__":
    main()
