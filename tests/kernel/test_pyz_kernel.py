"""The single-file zipapp says what the checkout says, about a real table.

``scripts/build_pyz.py`` builds ``flowtop.pyz``; run in a populated namespace it must
print the same flows as ``python3 -m flowtop`` from the checkout, also in isolated mode
(``python3 -I``) from a directory outside the checkout, where nothing of the checkout
can leak in.
"""

import json
import os
import subprocess
import sys
import zipfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.nsutil import Netns, kernel_ready, populate  # noqa: E402

_READY, _WHY = kernel_ready()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]

# Fields that legitimately differ between two runs a moment apart.
VOLATILE = ("time", "age", "timeout")


@pytest.fixture
def pyz(tmp_path):
    out = tmp_path / "build" / "flowtop.pyz"
    out.parent.mkdir()
    r = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "build_pyz.py"),
                        "-o", str(out)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert out.is_file()
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
    assert "__main__.py" in names and "flowtop/cli.py" in names, names
    stray = [n for n in names if not (n == "__main__.py" or n.startswith("flowtop/"))
             or "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
    assert not stray, stray
    return out


def stable(stdout):
    lines = stdout.splitlines()
    recs = [json.loads(l) for l in lines]
    for rec in recs:
        for k in VOLATILE:
            rec.pop(k)
    return lines, recs


def run_in(ns, *cmd, env=None, cwd):
    return subprocess.run(ns.argv(*cmd), capture_output=True, text=True, timeout=60,
                          env=env, cwd=cwd)


def test_pyz_equals_checkout(pyz, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # No PYTHONPATH for the pyz: it must carry everything itself.
    bare = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    args = ("--once", "--json", "--no-sysctl")
    with Netns("pyz") as ns:
        populate(ns)
        mod = ns.flowtop(*args)
        zipped = run_in(ns, sys.executable, pyz, *args, env=bare, cwd=elsewhere)
        isolated = run_in(ns, sys.executable, "-I", pyz, *args,
                          env=dict(os.environ, PYTHONPATH=REPO), cwd=elsewhere)
        mod_after = ns.flowtop(*args)
    for r in (mod, zipped, isolated, mod_after):
        assert r.returncode == 0, r.stderr
        assert r.stderr == ""
    mod_lines, mod_recs = stable(mod.stdout)
    assert len(mod_lines) > 10
    assert stable(mod_after.stdout)[1] == mod_recs, "the table moved during the test"
    for name, r in (("pyz", zipped), ("pyz -I", isolated)):
        lines, recs = stable(r.stdout)
        assert len(lines) == len(mod_lines), name
        assert recs == mod_recs, name


def test_pyz_isolated_loads_only_from_the_archive(pyz, tmp_path):
    """Under -I the flowtop modules come from inside the pyz, none from the checkout."""
    code = ("import sys\n"
            "sys.path.insert(0, %r)\n"
            "import flowtop.cli, flowtop.main, flowtop.views.export\n"
            "print('\\n'.join(sorted(m.__file__ for n, m in sys.modules.items()\n"
            "      if n.split('.')[0] == 'flowtop')))\n" % str(pyz))
    r = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                       timeout=60, cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO))
    assert r.returncode == 0, r.stderr
    files = r.stdout.split()
    assert files and all(f.startswith(str(pyz) + os.sep) for f in files), files
    v = subprocess.run([sys.executable, "-I", str(pyz), "--version"], capture_output=True,
                       text=True, timeout=60, cwd=tmp_path)
    from flowtop import __version__
    assert v.returncode == 0 and v.stdout == "flowtop %s\n" % __version__, v
