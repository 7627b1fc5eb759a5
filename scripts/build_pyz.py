#!/usr/bin/env python3
"""Build flowtop.pyz, the single file to copy to a router:

    python3 scripts/build_pyz.py [-o flowtop.pyz]

It is ``zipapp.create_archive`` over the ``flowtop`` package alone (no
tests, no caches), with ``flowtop.cli:run`` as the entry point, so
``python3 flowtop.pyz --once`` runs with only the standard library.
"""

import argparse
import os
import shutil
import sys
import tempfile
import zipapp

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def include(path):
    parts = path.parts
    return (bool(parts) and parts[0] == "flowtop" and "__pycache__" not in parts
            and path.suffix not in (".pyc", ".pyo"))


def main():
    ap = argparse.ArgumentParser(description="Build flowtop.pyz")
    ap.add_argument("-o", "--output", default=os.path.join(REPO, "flowtop.pyz"))
    args = ap.parse_args()
    # From a staged copy of the package alone: zipapp walks its whole source
    # before filtering, and a checkout may hold build trees (even mounts).
    with tempfile.TemporaryDirectory() as stage:
        shutil.copytree(os.path.join(REPO, "flowtop"), os.path.join(stage, "flowtop"),
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"))
        zipapp.create_archive(stage, args.output, interpreter="/usr/bin/env python3",
                              main="flowtop.cli:run", filter=include, compressed=True)
    import zipfile
    with zipfile.ZipFile(args.output) as z:
        if "flowtop/__init__.py" not in z.namelist():
            sys.exit("build_pyz: the archive lacks the flowtop package")
    print(args.output)


if __name__ == "__main__":
    main()
