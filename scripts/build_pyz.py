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
The bytecode is one stored member, ``flowtop.code``, the archive's first
(``flowtop/pyzimport.py``: one read and one unmarshalling a module, where
zipimport parsed and inflated a member in pure Python); the archive's
``__main__`` installs its importer.  Only that ``__main__``, ``flowtop/__init__``
and ``flowtop/pyzimport`` are .pyc beside their .py (zipimport's layout,
hash-based and unchecked); the other modules' sources are one member,
``flowtop.src`` (zipimport parses every member's directory entry at each start:
~44 k instructions each, 4.2 M for 118 .py members).  Another Python version
sees a foreign magic number and compiles from that member (as does a module
missing from the code).
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


# Run by the target interpreter over the staged package: every module's code in
# one file (pyzimport's layout: magic, index size, marshalled index {module:
# (offset, size, is package)}, the codes), every source but BOOT's in another
# (pyzimport's SOURCES: marshalled {module: (source bytes, is package)}), and
# legacy-layout .pyc (module.pyc beside module.py, what zipimport reads) for the
# modules that load before the importer.
# optimize=2: no docstrings (nothing reads one; SOURCES keeps them for tracebacks):
# 14 flows, --once --json -n -G: peak RSS 12.66 -> 12.52 MiB, the archive 190 KB
# smaller (a router's flash), 0.4 M fewer instructions.
COMPILE = r"""
import marshal, os, py_compile, sys
from importlib.util import MAGIC_NUMBER
stage, out, sources_out, boot = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
index, codes, at, sources = {}, [], 0, {}
for top, dirs, files in sorted(os.walk(os.path.join(stage, "flowtop"))):
    for name in sorted(f for f in files if f.endswith(".py")):
        rel = os.path.relpath(os.path.join(top, name), stage)
        with open(os.path.join(stage, rel), "rb") as f:
            source = f.read()
        data = marshal.dumps(compile(source, rel, "exec", dont_inherit=True, optimize=2))
        module = rel[:-3].replace(os.sep, ".")
        package = module.endswith(".__init__")
        module = module[:-9] if package else module
        index[module] = (at, len(data), package)
        if rel not in boot:
            sources[module] = (source, package)
        codes.append(data)
        at += len(data)
head = marshal.dumps(index)
with open(out, "wb") as f:
    f.write(MAGIC_NUMBER + len(head).to_bytes(4, "little") + head + b"".join(codes))
with open(sources_out, "wb") as f:
    f.write(marshal.dumps(sources))
for rel in boot:
    src = os.path.join(stage, rel)
    py_compile.compile(src, cfile=src + "c", dfile=rel, doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
print("%d.%d" % sys.version_info[:2])
"""
CODE = "flowtop.code"           # flowtop.pyzimport.CODE
SOURCES = "flowtop.src"         # flowtop.pyzimport.SOURCES
MAIN = """\
# -*- coding: utf-8 -*-
# flowtop's modules from this archive's code member (scripts/build_pyz.py)
import flowtop.pyzimport
flowtop.pyzimport.install(__loader__)
import flowtop.entry
flowtop.entry.run()
"""
BOOT = ["__main__.py", os.path.join("flowtop", "__init__.py"),
        os.path.join("flowtop", "pyzimport.py")]


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
    """Byte-compile the staged package with ``python`` into ``stage/CODE`` (and
    BOOT's .pyc), its sources into ``stage/SOURCES``; returns its X.Y."""
    r = subprocess.run([python, "-I", "-c", COMPILE, stage, os.path.join(stage, CODE),
                        os.path.join(stage, SOURCES)] + BOOT,
                       stdout=subprocess.PIPE, universal_newlines=True)
    if r.returncode != 0:
        sys.exit("build_pyz: %s could not compile the package" % python)
    got = r.stdout.strip()
    if want and os.sep not in want and got != want:
        sys.exit("build_pyz: %s is Python %s, not %s" % (python, got, want))
    return got


def write_code_archive(stage, output):
    """zipapp's archive (shebang, deflated members, executable), with CODE first
    and stored: pyzimport reads it in place, after the shebang; the sources but
    BOOT's in SOURCES."""
    import zipfile
    with open(output, "wb") as f:
        f.write(b"#!/usr/bin/env python3\n")
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.write(os.path.join(stage, CODE), CODE, compress_type=zipfile.ZIP_STORED)
            z.write(os.path.join(stage, SOURCES), SOURCES)
            for top, dirs, files in sorted(os.walk(stage)):
                for name in sorted(files):
                    rel = os.path.relpath(os.path.join(top, name), stage)
                    if rel in (CODE, SOURCES) or (rel.endswith(".py") and rel not in BOOT):
                        continue
                    # what loads before the importer, and the port names a live view's
                    # first rows read (conf/*.conf, 8 KB), stored: no zlib to import for
                    # them (its import and the inflating: 0.9 M instructions)
                    stored = rel.endswith((".pyc", ".conf")) or rel == "__main__.py"
                    z.write(os.path.join(stage, rel), rel.replace(os.sep, "/"),
                            compress_type=zipfile.ZIP_STORED if stored else None)
    os.chmod(output, os.stat(output).st_mode | 0o100)     # as zipapp


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
            with open(os.path.join(stage, "__main__.py"), "w") as f:
                f.write(MAIN)
            version = compile_for(find_python(args.python), stage, args.python)
            print("build_pyz: bytecode for Python %s" % version, file=sys.stderr)
            write_code_archive(stage, args.output)
        else:
            zipapp.create_archive(stage, args.output, interpreter="/usr/bin/env python3",
                                  main="flowtop.entry:run", filter=include, compressed=True)
    import zipfile
    with zipfile.ZipFile(args.output) as z:
        if "flowtop/__init__.py" not in z.namelist():       # (BOOT's, in both layouts)
            sys.exit("build_pyz: the archive lacks the flowtop package")
    print(args.output)


if __name__ == "__main__":
    main()
