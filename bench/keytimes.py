#!/usr/bin/env python3
"""Per key, inside a live flowtop: its wall time and the screen thread's CPU time.

    sudo python3 bench/keytimes.py [--netns NS] [--key Tab] [--presses 21] [--gap 0.45]
                                   [--wait 10] [--tree DIR] [-- FLOWTOP OPTIONS]

Starts the flowtop of ``--tree`` (default: this checkout) in a tmux pane, inside
``--netns`` if given (e.g. one ``live.py N --keep`` left).  After ``--wait`` s it
presses ``--key`` ``--presses`` times, ``--gap`` s apart, then quits.  It prints,
per view, the wall median / max and the CPU median / max in ms, and how long the
keys waited for the GIL (wall less CPU: another thread ran meanwhile).

In the flowtop process, ``Screen._answer`` (one key and its draw) is wrapped with
``time.perf_counter`` and ``time.thread_time``; the times are written at exit.
``live.py`` measures key-to-screen from outside (tmux's capture); this tells a
key's own cost from a wait behind the collector.
"""

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child(out, tree, argv):
    """(in the pane) flowtop with ``Screen._answer`` timed; the times to ``out`` at exit."""
    sys.path.insert(0, tree)
    import runpy
    from flowtop.views import screen
    answer, times = screen.Screen._answer, []

    def timed(self, ch):
        t, c = time.perf_counter(), time.thread_time()
        try:
            return answer(self, ch)
        finally:
            times.append((self.state.view, (time.perf_counter() - t) * 1000,
                          (time.thread_time() - c) * 1000))
    screen.Screen._answer = timed
    sys.argv = ["flowtop"] + argv
    try:
        runpy.run_module("flowtop", run_name="__main__")
    finally:
        with open(out, "w") as f:
            f.writelines("%s %.2f %.2f\n" % t for t in times)


def report(path):
    rows = []
    with open(path) as f:
        for line in f:
            view, wall, cpu = line.split()
            rows.append((view, float(wall), float(cpu)))
    rows = rows[:-1]                    # the last key is q
    if not rows:
        print("no keys recorded")
        return
    print("%-10s %5s %14s %14s" % ("view", "keys", "wall med/max", "CPU med/max"))
    for view in dict.fromkeys(v for v, _, _ in rows):
        w = [x for v, x, _ in rows if v == view]
        c = [x for v, _, x in rows if v == view]
        print("%-10s %5d %7.0f / %-5.0f %7.0f / %-5.0f" % (
            view, len(w), statistics.median(w), max(w), statistics.median(c), max(c)))
    waits = [w - c for _, w, c in rows]
    print("waits for the GIL (wall - CPU): total %.0f ms, max %.0f ms, keys over 10 ms: %d of %d"
          % (sum(waits), max(waits), sum(x > 10 for x in waits), len(waits)))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(sys.argv[2], sys.argv[3], sys.argv[4:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--netns", help="run flowtop inside this network namespace")
    ap.add_argument("--key", default="Tab", help="tmux's name of the key (Tab, o, Down)")
    ap.add_argument("--presses", type=int, default=21)
    ap.add_argument("--gap", type=float, default=0.45, help="s between presses")
    ap.add_argument("--wait", type=float, default=10.0, help="s before the first press")
    ap.add_argument("--tree", default=ROOT, help="the checkout whose flowtop runs")
    ap.add_argument("flowtop", nargs="*", help="flowtop's options (after --)")
    args = ap.parse_args()
    out = tempfile.NamedTemporaryFile(prefix="keytimes-", suffix=".txt", delete=False).name
    cmd = [sys.executable, os.path.abspath(__file__), "--child", out,
           os.path.abspath(args.tree)] + args.flowtop
    if args.netns:
        cmd = ["ip", "netns", "exec", args.netns] + cmd
    from live import TERM, Tmux     # live.py's private tmux server (bench/ is on sys.path)
    tm = Tmux()
    try:
        tm.start("k", "env TERM=%s %s" % (TERM, shlex.join(cmd)))
        time.sleep(args.wait)
        for _ in range(args.presses):
            tm.send("k", args.key)
            time.sleep(args.gap)
        tm.send("k", "q")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not os.path.getsize(out):
            time.sleep(0.2)
    finally:
        tm.kill()
    report(out)
    os.unlink(out)


if __name__ == "__main__":
    main()
