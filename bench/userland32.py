"""A 32-bit userland for the benchmarks: Debian's i386 python3 in a chroot.

Why: the routers flowtop is meant for (128 MB of RAM, 16k flows) run 32-bit
CPUs, where every pointer, int and tuple slot is half the size it is on
x86-64; what flowtop costs there is the figure that matters for them.  The
host kernel runs i386 programs natively (CONFIG_IA32_EMULATION), so this is
a real measurement of a real 32-bit CPython, not an emulation.

``build/i386-root`` is made once by debootstrap (minbase + python3, ~40 s)
and reused while its stamp matches; flowtop is copied to ``/opt/flowtop``
in it and byte-compiled by its own python3 before each run.  Stdlib only.
"""

import contextlib
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ROOT = os.path.join(REPO, "build", "i386-root")
sys.path.insert(0, os.path.join(REPO, "scripts", "vm"))
from aptmirror import apt_mirror  # noqa: E402  (the mirror apt already uses here)

SUITE, MIRROR = "bookworm", apt_mirror()
RECIPE = "flowtop i386 userland 1: debootstrap --arch=i386 --variant=minbase --include=python3 " + SUITE
PYTHONPATH = "/opt/flowtop"


def _valid(root):
    try:
        with open(os.path.join(root, ".flowtop-userland")) as f:
            if f.read().strip() != RECIPE:
                return False
    except OSError:
        return False
    r = subprocess.run(["chroot", root, "/usr/bin/python3", "-c",
                        "import struct, curses; assert struct.calcsize('P') == 4"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode == 0


def ensure(root=ROOT, log=print):
    """Build (or reuse) the chroot and put the current flowtop in it.
    Returns None, or why it cannot be had (a line for the report)."""
    if not _valid(root):
        if shutil.which("debootstrap") is None:
            return "debootstrap is missing: apt-get install debootstrap"
        if os.path.ismount(os.path.join(root, "proc")):
            return "%s/proc is mounted: not rebuilding it" % root
        log("building the i386 userland in %s (debootstrap, about a minute) ..." % root)
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(os.path.dirname(root), exist_ok=True)
        r = subprocess.run(["debootstrap", "--arch=i386", "--variant=minbase", "--include=python3",
                            SUITE, root, MIRROR], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        if r.returncode != 0:
            return "debootstrap failed: %s" % r.stdout.strip()[-300:]
        with open(os.path.join(root, ".flowtop-userland"), "w") as f:
            f.write(RECIPE + "\n")
        if not _valid(root):
            return "the i386 python3 in %s does not run (IA32 emulation off?)" % root
    dest = os.path.join(root, PYTHONPATH.lstrip("/"))
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(os.path.join(REPO, "flowtop"), os.path.join(dest, "flowtop"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run(["chroot", root, "/usr/bin/python3", "-m", "compileall", "-q",
                    PYTHONPATH + "/flowtop"], check=True, stdout=subprocess.DEVNULL)
    return None


@contextlib.contextmanager
def proc_mounted(root=ROOT):
    """/proc inside the chroot for the run (sysctls, /proc/net, process
    names), unmounted after, also on errors."""
    target = os.path.join(root, "proc")
    os.makedirs(target, exist_ok=True)
    mounted = not os.path.ismount(target)
    if mounted:
        subprocess.run(["mount", "-t", "proc", "proc", target], check=True)
    try:
        yield
    finally:
        if mounted:
            subprocess.run(["umount", target])


def python(*args, root=ROOT, env=()):
    """argv running the chroot's python3 with ``args``, flowtop on its path,
    in a clean environment (plus ``env``: "NAME=value" strings)."""
    return (["chroot", root, "env", "-i", "HOME=/", "LANG=C.UTF-8", "PATH=/usr/bin:/bin",
             "PYTHONPATH=" + PYTHONPATH] + list(env) + ["python3"] + list(args))


def version(root=ROOT):
    r = subprocess.run(python("-c", "import sys, platform; print(platform.python_version(),"
                              " platform.architecture()[0])", root=root),
                       stdout=subprocess.PIPE, text=True)
    return r.stdout.strip()
