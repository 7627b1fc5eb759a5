"""The .pyz's bytecode: one stored member read by ``flowtop/pyzimport.py``.

zipimport (pure Python since 3.8) cost ~0.8 M instructions a module here, ~17 ms
on a mipsel router (~55 modules for a small ``--once``): a local header parsed
and a member inflated each.  ``scripts/build_pyz.py --python X.Y`` stores every
module's code in one member, served by a meta-path finder the archive's
``__main__`` installs, and their sources in one more (zipimport parses every
member's directory entry at start); that finder compiles from the sources what
the code cannot serve (another Python's magic number, a module missing from
it); zipimport serves an archive without code.  Run under the python3-light
blocker; scripts/ci-pythons.sh runs this file under 3.9, 3.10, 3.12 and 3.13.
"""

import glob
import json
import os
import shutil
import subprocess
import sys
import zipimport

import pytest

from tests.routerpy import lightenv as L

# Runs the archive as ``python3 flowtop.pyz --version`` does (its __main__), then
# imports more of the package and prints each flowtop module's loader and file,
# a traceback line's source and a shipped data file's size.
ORIGINS = r"""
import json, linecache, runpy, sys
pyz, drop = sys.argv[1], sys.argv[2:]
sys.argv = ["flowtop", "--version"]
if drop:                                # the member without these modules
    sys.path.insert(0, pyz)
    import zipimport, flowtop.pyzimport
    importer = flowtop.pyzimport.install(zipimport.zipimporter(pyz))
    for name in drop:
        del importer.index[name]
else:
    runpy.run_path(pyz, run_name="__main__")
import flowtop.cli, flowtop.main, flowtop.views.select, flowtop.netlink.ctnetlink
from flowtop import resources
code = flowtop.cli.run.__code__
print(json.dumps({
    "modules": {n: [type(m.__spec__.loader).__name__, m.__file__]
                for n, m in sys.modules.items() if n.startswith("flowtop")},
    "co_filename": code.co_filename,
    "line": linecache.getline(code.co_filename, code.co_firstlineno, flowtop.cli.__dict__),
    "conf": len(resources.get_data("conf/tcp.conf")),
    "path": flowtop.netlink.__path__}))
"""
BOOT = ("flowtop", "flowtop.pyzimport")         # loaded before the importer, by zipimport


def _python(version):
    """An interpreter of X.Y (pyenv or on PATH), or None; this one for "here"."""
    if version == "here":
        return sys.executable
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = sorted(glob.glob(os.path.join(root, "versions", version + ".*", "bin", "python")))
    return found[-1] if found else shutil.which("python" + version)


def _file(pyz, name):
    """Where ``name``'s source sits in the archive."""
    rel = name.replace(".", "/")
    package = os.path.isdir(os.path.join(L.REPO, rel))
    return "%s/%s" % (pyz, rel + ("/__init__.py" if package else ".py"))


def _origins(python, pyz, drop=()):
    r = subprocess.run([python, "-c", ORIGINS, pyz] + list(drop), env=L.env(path=()),
                       cwd=os.path.dirname(pyz), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


def _run(python, pyz, *argv):
    return subprocess.run([python, pyz] + list(argv), env=L.env(path=()),
                          cwd=os.path.dirname(pyz), capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("version", ["here", "3.9", "3.13"])
def test_pyz_for_a_python_serves_every_module_from_its_code_member(tmp_path, version):
    python = _python(version)
    if python is None:
        pytest.skip("no Python %s installed" % version)
    pyz = L.build_pyz(str(tmp_path), bytecode_for=python)
    got = _origins(python, pyz)
    mods = got["modules"]
    assert len(mods) >= 10, mods
    wrong = {n: m for n, m in mods.items()
             if m != (["zipimporter", _file(pyz, n) + "c"] if n in BOOT
                      else ["CodeImporter", _file(pyz, n)])}
    assert not wrong, wrong
    # tracebacks name the archive's .py and show its lines; data files are read
    assert got["co_filename"] == pyz + "/flowtop/cli.py"
    assert got["line"].startswith("def run(")
    assert got["conf"] > 100 and got["path"] == [pyz + "/flowtop/netlink"]
    # and it prints what the checkout prints
    want = L.flowtop("--replay", L.MIXED, "-n", "--once", "--json")
    out = _run(python, pyz, "--replay", L.MIXED, "-n", "--once", "--json")
    assert out.returncode == 0 and out.stderr == "" and out.stdout == want.stdout, out.stderr
    version_line = _run(python, pyz, "--version")
    assert version_line.stdout == L.flowtop("--version").stdout


def test_the_archive_holds_a_member_for_the_code_and_one_for_the_sources(tmp_path):
    import zipfile
    from flowtop import pyzimport
    pyz = L.build_pyz(str(tmp_path), bytecode_for=sys.executable)
    with zipfile.ZipFile(pyz) as z:
        names = z.namelist()
    assert names[:2] == [pyzimport.CODE.decode(), pyzimport.SOURCES]
    # only what zipimport loads before the importer, and data files, are members
    assert sorted(n for n in names if n.endswith(".py")) == [
        "__main__.py", "flowtop/__init__.py", "flowtop/pyzimport.py"]
    assert len(names) < 16, names


def test_a_module_missing_from_the_code_member_comes_from_its_source(tmp_path):
    pyz = L.build_pyz(str(tmp_path), bytecode_for=sys.executable)
    got = _origins(sys.executable, pyz, drop=["flowtop.cli", "flowtop.views"])
    mods = got["modules"]
    assert mods["flowtop.cli"] == ["CodeImporter", pyz + "/flowtop/cli.py"]
    assert mods["flowtop.views"] == ["CodeImporter", pyz + "/flowtop/views/__init__.py"]
    assert got["co_filename"] == pyz + "/flowtop/cli.py"     # compiled, named alike
    assert got["line"].startswith("def run(")
    # a package's modules still come from the member
    assert mods["flowtop.views.select"][0] == "CodeImporter"
    assert mods["flowtop.main"][0] == "CodeImporter"


def _misplaced(mods, pyz, boot_pyc=True):
    """The modules not served as they should be: BOOT by zipimport (its .pyc,
    or its .py for another Python), the others by the CodeImporter."""
    def want(n):
        if n in BOOT:
            return ["zipimporter", _file(pyz, n) + ("c" if boot_pyc else "")]
        return ["CodeImporter", _file(pyz, n)]
    return {n: m for n, m in mods.items() if m != want(n)}


def test_a_foreign_magic_number_compiles_from_the_sources_member(tmp_path):
    from flowtop import pyzimport
    pyz = L.build_pyz(str(tmp_path), bytecode_for=sys.executable)
    with open(pyz, "r+b") as f:
        start = pyzimport.code_start(f.read(4096))
        f.seek(start)
        magic = f.read(4)
        f.seek(start)
        f.write(bytes([magic[0] ^ 0xFF]) + magic[1:])      # another bytecode version
    got = _origins(sys.executable, pyz)
    assert len(got["modules"]) >= 10 and not _misplaced(got["modules"], pyz)
    assert got["line"].startswith("def run(")
    out = _run(sys.executable, pyz, "--replay", L.MIXED, "-n", "--once", "--json")
    assert out.returncode == 0 and out.stdout == L.flowtop(
        "--replay", L.MIXED, "-n", "--once", "--json").stdout, out.stderr


def test_pyz_for_another_python_falls_back_to_its_sources(tmp_path):
    here = "%d.%d" % sys.version_info[:2]
    other = next((v for v in ("3.9", "3.13", "3.11", "3.12", "3.10")
                  if v != here and _python(v)), None)
    if other is None:
        pytest.skip("no second Python 3.9+ installed")
    pyz = L.build_pyz(str(tmp_path), bytecode_for=other)
    assert not _misplaced(_origins(sys.executable, pyz)["modules"], pyz, boot_pyc=False)
    r = _run(sys.executable, pyz, "--version")
    assert r.returncode == 0 and r.stdout.startswith("flowtop "), r.stderr


def test_install_changes_nothing_for_an_archive_without_code(tmp_path):
    from flowtop import pyzimport
    pyz = L.build_pyz(str(tmp_path))
    before = list(sys.meta_path)
    assert pyzimport.install(zipimport.zipimporter(pyz)) is False
    assert pyzimport.install(object()) is False
    assert sys.meta_path == before


def test_code_start_finds_only_a_stored_first_member_of_that_name():
    from flowtop import pyzimport
    def local(method):      # a zip local header: method at 8, name and extra sizes at 26
        return (b"PK\x03\x04" + b"\0" * 4 + method + b"\0" * 16
                + len(pyzimport.CODE).to_bytes(2, "little") + b"\x02\0")
    head = b"#!/usr/bin/env python3\n" + local(b"\0\0") + pyzimport.CODE + b"xx" + b"data"
    assert pyzimport.code_start(head) == len(head) - 4
    assert pyzimport.code_start(head[23:]) == len(head) - 4 - 23       # no shebang
    deflated = head.replace(local(b"\0\0"), local(b"\x08\0"))
    assert pyzimport.code_start(deflated) is None
    assert pyzimport.code_start(head.replace(pyzimport.CODE, b"flowtop.cod_")) is None
    assert pyzimport.code_start(head[:30]) is None
