#!/usr/bin/env python3
"""bench/instructions.py N [--distinct] [--baseline DIR] [--modes ...] [--no-site] [--pyz]: what one
``--once`` costs in user-space instructions, counted by valgrind.

This machine's speed moves 3x from day to day and with whatever else runs;
wall and CPU seconds of two trees compare only within one quiet run.  The
instructions a run executes barely move with load (valgrind's cachegrind
counts them, ``--cache-sim=no``: ~25x slower than a plain run), so two
trees, or two commits measured on two days, compare directly.  Kernel work
(recvmsg) is not counted: this is the Python side's cost, not a ratio to
``conntrack -L``, whose work is mostly in the kernel; ``conntrack -L -o
extended``'s own count is shown beside as a scale.

Fills a throw-away namespace with N real flows (dump.py's fill), then runs
each mode of this tree (and of ``--baseline``) once under valgrind, in it.
Needs root and valgrind (apt install valgrind).  See bench/README.md.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path[:0] = [BENCH, ROOT]

import netns  # noqa: E402
from dump import fill  # noqa: E402

MODES = {
    "json-bare": ["--json", "-n", "-G", "--no-iface", "--no-process"],
    "json-lean": ["--json", "-n", "-G"],
    "json": ["--json", "-G"],
    "text-lean": ["-n", "-G"],
    "text": ["-G"],
}
REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def count(ns, argv, env=None, cwd=None):
    """User-space instructions of ``argv`` run in ``ns`` (all its threads)."""
    cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no",
           "--cachegrind-out-file=/dev/null"] + argv
    if env:
        cmd = ["env"] + ["%s=%s" % kv for kv in env.items()] + cmd
    r = subprocess.run(["ip", "netns", "exec", ns.name] + cmd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, cwd=cwd)
    m = REFS.search(r.stderr)
    if m is None:
        raise RuntimeError("valgrind gave no count for %s: %s" % (argv, r.stderr[-400:]))
    return int(m.group(1).replace(",", ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int)
    ap.add_argument("--distinct", action="store_true",
                    help="every IPv4 UDP flow to an address of its own (a router's table)")
    ap.add_argument("--baseline", metavar="DIR", help="another flowtop tree, measured beside")
    ap.add_argument("--modes", default=",".join(MODES), help="of: " + ", ".join(MODES))
    ap.add_argument("--no-site", action="store_true",
                    help="python3 -S: without this host's site (its imports hide a small "
                         "table's start-up: a router's site is a few modules)")
    ap.add_argument("--pyz", action="store_true",
                    help="each tree as the .pyz its scripts/build_pyz.py --python makes for "
                         "this python3 (what a router runs), with --version and the live "
                         "view's start to its first frame (-n -G) as rows too")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/instructions.py needs root (network namespaces)")
    if shutil.which("valgrind") is None:
        sys.exit("bench/instructions.py needs valgrind (apt install valgrind)")
    modes = [m for m in args.modes.split(",") if m]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        ap.error("unknown mode(s) %s" % ", ".join(unknown))
    python = os.path.realpath(sys.executable)      # not a pyenv shim: valgrind follows no exec
    trees = [("", ROOT)] + ([("base: ", os.path.abspath(args.baseline))] if args.baseline else [])
    for _, tree in trees:
        netns.compile_package(tree)
    netns.exit_on_signals()
    with netns.Namespace("ftbench-instr-%d" % os.getpid()) as ns:
        ns.sysctl({"nf_conntrack_max": args.n + args.n // 10 + 1000})
        _, flows, _ = fill(ns, args.n, args.distinct)
        ct = count(ns, ["conntrack", "-L", "-o", "extended"])
        print("%d flows%s; valgrind --tool=cachegrind, user-space instructions (G)"
              % (flows, ", distinct remote addresses" if args.distinct else ""))
        print("%-44s %8s" % ("conntrack -L -o extended", "%.3f" % (ct / 1e9)))
        site = ["-S"] if args.no_site else []
        print("%-44s %8s" % ("python3%s -c pass" % (" -S" if site else ""),
                             "%.3f" % (count(ns, [python] + site + ["-c", "pass"]) / 1e9)))
        if args.pyz:
            return pyz_rows(ns, python, site, trees, modes)
        for mode in modes:
            for label, tree in trees:
                # (in the tree: -m puts the working directory first on sys.path)
                n = count(ns, [python] + site + ["-m", "flowtop", "--once", "--no-sysctl"]
                          + MODES[mode], cwd=tree)
                print("%-44s %8s" % ("%sflowtop --once %s" % (label, " ".join(MODES[mode])),
                                     "%.3f" % (n / 1e9)), flush=True)
    return 0


# Runs a .pyz as ``python3 X.pyz ARGS`` does (Modules/main.c: the archive first on
# sys.path, its __main__ through runpy) and exits at the first curses.doupdate.
FIRST_FRAME = r"""
import curses, os, sys
real = curses.doupdate
def first():
    real()
    os._exit(0)
curses.doupdate = first
sys.argv = sys.argv[1:]
sys.path[0] = sys.argv[0]
import runpy
runpy._run_module_as_main("__main__", alter_argv=False)
"""


# The same to the first frame that draws rows (a row's text on the table's first line, 3):
# on a big table the first dump's first rows (issue 12).  The collector's thread runs beside
# (valgrind serialises threads), so what it decodes until the screen draws counts too.
FIRST_ROWS = r"""
import curses, os, sys
real, init, scr = curses.doupdate, curses.initscr, []
def initscr():
    scr.append(init())
    return scr[0]
def first():
    real()
    if scr and scr[0].instr(3, 0).strip():
        os._exit(0)
curses.initscr, curses.doupdate = initscr, first
sys.argv = sys.argv[1:]
sys.path[0] = sys.argv[0]
import runpy
runpy._run_module_as_main("__main__", alter_argv=False)
"""


def pyz_rows(ns, python, site, trees, modes):
    """The --pyz rows: each tree's archive for this python3, then --version, the
    modes, and the live view's start to its first frame (in a pty: ``script``)."""
    import tempfile
    with tempfile.TemporaryDirectory(prefix="ftbench-pyz-") as tmp:
        harnesses = {}
        for name, text in (("first frame", FIRST_FRAME), ("first rows", FIRST_ROWS)):
            harnesses[name] = os.path.join(tmp, name.replace(" ", "_") + ".py")
            with open(harnesses[name], "w") as f:
                f.write(text)
        built = []
        for i, (label, tree) in enumerate(trees):
            out = os.path.join(tmp, "tree%d.pyz" % i)
            subprocess.run([python, os.path.join(tree, "scripts", "build_pyz.py"), "-o", out,
                            "--python", python], check=True, stdout=subprocess.DEVNULL)
            built.append((label, out))
        import router_guest             # any .pyz's floor: the interpreter's zip start
        n = count(ns, [python] + site + [router_guest.empty_zipapp(os.path.join(tmp, "e.pyz"))],
                  env={"PYTHONHASHSEED": "0"})
        print("%-44s %8s" % ("an empty .pyz (__main__: pass)", "%.3f" % (n / 1e9)), flush=True)
        rows = [("--version", ["--version"])] + [
            ("--once " + " ".join(MODES[m]), ["--once", "--no-sysctl"] + MODES[m])
            for m in modes]
        for what, argv in rows:
            for label, pyz in built:
                n = count(ns, [python] + site + [pyz] + argv, env={"PYTHONHASHSEED": "0"})
                print("%-44s %8s" % ("%s.pyz %s" % (label, what), "%.3f" % (n / 1e9)),
                      flush=True)
        for what, harness in harnesses.items():
            for label, pyz in built:
                n = live_count(ns, python, site, harness, pyz, os.path.join(tmp, "live.log"),
                               ["--loopback"] if what == "first rows" else [])
                print("%-44s %8s" % ("%s.pyz live: start to %s" % (label, what),
                                     "%.3f" % (n / 1e9) if n else "n/a"), flush=True)
    return 0


def live_count(ns, python, site, harness, pyz, log, more=()):
    """Instructions of the live view (-n -G and ``more``: --loopback shows the namespace's
    flows) run by ``harness`` in a pty (``script``), or None."""
    inner = " ".join(["valgrind", "--tool=cachegrind", "--cache-sim=no",
                      "--cachegrind-out-file=/dev/null", "--log-file=" + log, python]
                     + site + [harness, pyz, "-n", "-G", "--no-sysctl"] + list(more))
    subprocess.run(["ip", "netns", "exec", ns.name, "script", "-qc",
                    "env TERM=xterm LANG=C.UTF-8 PYTHONHASHSEED=0 " + inner, "/dev/null"],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=False,
                   timeout=600)
    with open(log) as f:
        m = REFS.search(f.read())
    return int(m.group(1).replace(",", "")) if m else None


if __name__ == "__main__":
    sys.exit(main())
