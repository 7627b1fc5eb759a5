#!/usr/bin/env python3
"""The router's Python without the router's MMU: per-flow cost under qemu's user mode.

    python3 bench/router_user.py [--arch mipsel] [--flows 16000] [--remotes 250]
                                 [--base REF] [--rounds 2]                   (as root)

bench/router.py boots a whole VM, whose emulated MMU makes a big working set far
dearer than on the emulated CPU's own terms: in one mipsel boot a 200k-key dict
built and read took 29.6 s against 0.26 s for the same python3 under
``qemu-mipsel-static`` (0.05 s here), and ``--once --json -n -G --replay`` of a
16k-flow dump 84.5 s against 1.6 s.  Here the VM image's own python3 runs under
``qemu-ARCH-static -L <its root>``: a recorded dump of N flows (router_guest's
table, made in a throw-away namespace and recorded by this tree's flowtop) is
decoded with ``--replay`` by each .pyz, beside ``python3 -c pass`` and
router_guest's loops, in turn for ``--rounds``.  No kernel is asked (qemu's user
mode has no netfilter netlink): what it measures is the interpreter's share.
Little-endian guests only (the recording holds this machine's byte order).
"""

import argparse
import os
import secrets
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [HERE, os.path.join(REPO, "scripts", "vm")]

import router  # noqa: E402
import router_guest  # noqa: E402
import vm  # noqa: E402

QEMU = {"mipsel": "qemu-mipsel-static", "armhf": "qemu-arm-static"}
MODES = {"json": ["--once", "--json", "-n", "-G"], "text": ["--once", "-n", "-G"]}


def record(path, flows, remotes):
    """``path``: the dump of router_guest's table of ``flows`` flows, from a fresh namespace."""
    ns = "ftbench-user-%s" % secrets.token_hex(3)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        inside = ["ip", "netns", "exec", ns]
        subprocess.run(inside + [sys.executable, "-c", "import sys; sys.path.insert(0, %r); "
                                 "import router_guest; router_guest.fill(%d, %d)"
                                 % (HERE, flows, remotes)], check=True)
        subprocess.run(inside + [sys.executable, "-m", "flowtop", "--once", "--json", "-n", "-G",
                                 "--no-iface", "--no-process", "--no-sysctl", "--record", path],
                       cwd=REPO, stdout=subprocess.DEVNULL, check=True)
    finally:
        subprocess.run(["ip", "netns", "del", ns])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="mipsel", choices=sorted(QEMU))
    ap.add_argument("--flows", type=int, default=16000)
    ap.add_argument("--remotes", type=int, default=250)
    ap.add_argument("--base", metavar="REF", help="also a .pyz of this revision (with bytecode)")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    a = vm.ARCHES[args.arch]
    vm.build(a)
    work = tempfile.mkdtemp(prefix="ftbench-user-")
    root = os.path.join(work, "root")
    os.mkdir(root)
    subprocess.run(["mount", "-o", "loop,ro", os.path.join(vm.BUILD, a.name, "root.img"), root],
                   check=True)
    try:
        pyzs = router.build_pyzs(work, router.GUEST_PYTHON[args.arch], args.base, ("pyc",),
                                 base_pyc=True)
        dump = os.path.join(work, "dump.rec")
        record(dump, args.flows, args.remotes)
        py = [QEMU[args.arch], "-L", root, os.path.join(root, "usr", "bin", "python3")]
        rows = [("python -c pass", py + ["-c", "pass"])]
        for r in range(args.rounds):
            for name, pyz in (pyzs[::-1] if r % 2 else pyzs):
                rows += [("%s %s" % (name, m), py + [pyz] + argv + ["--replay", dump])
                         for m, argv in MODES.items()]
        fastest = {}
        for label, argv in rows:
            res = router_guest.measure(argv)      # GNU_TIME unset here: its own rusage
            print("%-22s %s" % (label, res), flush=True)
            if res["status"] == 0:
                fastest[label] = min(fastest.get(label, res["wall"]), res["wall"])
        print("python loops, CPU s:", router_guest.loops(py))
        base = fastest.get("python -c pass")
        print("fastest of %d round(s), %d flows (%s): %s" % (args.rounds, args.flows, args.arch,
              "; ".join("%s %.2f s (%.1fx pass)" % (k, w, w / base) for k, w in fastest.items())))
    finally:
        subprocess.run(["umount", root])
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
