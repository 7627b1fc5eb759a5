#!/usr/bin/env python3
"""Build flowtop.pyz, the single file to copy to a router:

    python3 scripts/build_pyz.py [-o flowtop.pyz] [--python X.Y|PATH]

It is ``zipapp.create_archive`` over the ``flowtop`` package alone (no
tests, no caches), with ``flowtop.entry:run`` as the entry point, so
``python3 flowtop.pyz --once`` runs with only the standard library.

``--python X.Y`` adds bytecode for the router's Python (OpenWrt 21.02-25.12:
3.9-3.13), compiled by that interpreter (a pyenv build or pythonX.Y on PATH,
or a path): zipimport never writes a cache, so without it every start compiles
every module it imports (20-48 s for ``--version`` on a mipsel router CPU).
The .pyc sit beside their .py (zipimport's layout), hash-based and unchecked;
another Python version sees a foreign magic number and falls back to the .py.
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import zipapp

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def include(path):
    parts = path.parts
    return (bool(parts) and parts[0] == "flowtop" and "__pycache__" not in parts
            and path.suffix != ".pyo")


# Run by the target interpreter over the staged package: legacy-layout .pyc
# (module.pyc beside module.py, what zipimport reads), named as in the archive.
COMPILE = r"""
import os, py_compile, sys
stage = sys.argv[1]
for top, dirs, files in os.walk(os.path.join(stage, "flowtop")):
    for name in files:
        if name.endswith(".py"):
            src = os.path.join(top, name)
            py_compile.compile(src, cfile=src + "c", dfile=os.path.relpath(src, stage),
                               doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
print("%d.%d" % sys.version_info[:2])
"""


def find_python(spec):
    """An interpreter for ``spec``: a path, or X.Y (newest pyenv X.Y.Z, else pythonX.Y)."""
    if os.sep in spec:
        return spec
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    builds = [d for d in glob.glob(os.path.join(root, "versions", spec + ".*"))
              if os.path.basename(d)[len(spec) + 1:].isdigit()]
    builds.sort(key=lambda d: int(os.path.basename(d)[len(spec) + 1:]), reverse=True)
    for d in builds:
        if os.access(os.path.join(d, "bin", "python"), os.X_OK):
            return os.path.join(d, "bin", "python")
    found = shutil.which("python" + spec)
    if found is None:
        sys.exit("build_pyz: no Python %s (pyenv or python%s on PATH)" % (spec, spec))
    return found


def compile_for(python, stage, want=None):
    """Byte-compile the staged package with ``python``; returns its X.Y."""
    r = subprocess.run([python, "-I", "-c", COMPILE, stage], stdout=subprocess.PIPE,
                       universal_newlines=True)
    if r.returncode != 0:
        sys.exit("build_pyz: %s could not compile the package" % python)
    got = r.stdout.strip()
    if want and os.sep not in want and got != want:
        sys.exit("build_pyz: %s is Python %s, not %s" % (python, got, want))
    return got


def main():
    ap = argparse.ArgumentParser(description="Build flowtop.pyz")
    ap.add_argument("-o", "--output", default=os.path.join(REPO, "flowtop.pyz"))
    ap.add_argument("--python", metavar="X.Y|PATH",
                    help="add bytecode compiled by this Python (the router's version)")
    args = ap.parse_args()
    # From a staged copy of the package alone: zipapp walks its whole source
    # before filtering, and a checkout may hold build trees (even mounts).
    with tempfile.TemporaryDirectory() as stage:
        shutil.copytree(os.path.join(REPO, "flowtop"), os.path.join(stage, "flowtop"),
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"))
        if args.python:
            version = compile_for(find_python(args.python), stage, args.python)
            print("build_pyz: bytecode for Python %s" % version, file=sys.stderr)
        zipapp.create_archive(stage, args.output, interpreter="/usr/bin/env python3",
                              main="flowtop.entry:run", filter=include, compressed=True)
    import zipfile
    with zipfile.ZipFile(args.output) as z:
        if "flowtop/__init__.py" not in z.namelist():
            sys.exit("build_pyz: the archive lacks the flowtop package")
    print(args.output)


if __name__ == "__main__":
    main()
