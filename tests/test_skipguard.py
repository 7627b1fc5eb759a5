"""tests/skipguard.py: in CI as root, a skipped kernel test is a failure."""

import os
import subprocess
import sys

import pytest

from tests.nsutil import REPO
from tests.skipguard import strict, unallowed

KERNEL_TESTS = '''
import pytest

pytestmark = pytest.mark.kernel

def test_skipped_without_a_reason():
    pytest.skip("no tool here")

def test_skipped_for_an_allowed_reason():
    pytest.skip("maxminddb<3 is not installed in build/routerpy/site-3.11")

def test_that_runs():
    pass
'''


def test_only_root_under_ci_is_strict():
    assert strict({"CI": "1"}, 0)
    assert not strict({}, 0)
    assert not strict({"CI": "1"}, 1000)


def test_an_allowed_reason_is_not_a_failure_and_another_is():
    assert unallowed("maxminddb<3 is not installed in build/routerpy/site-3.9 (...)") is None
    assert unallowed("GeoIP needs the maxminddb module") is not None
    assert unallowed("missing tools: nft") == "missing tools: nft"


def run_pytest(tmp_path, ci):
    """pytest with the guard on a kernel test file in ``tmp_path``."""
    kernel = tmp_path / "tests" / "kernel"
    kernel.mkdir(parents=True)
    (kernel / "test_k.py").write_text(KERNEL_TESTS)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = REPO
    if ci:
        env["CI"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "tests.skipguard", "-p",
         "no:cacheprovider", "-c", os.devnull, "--rootdir", str(tmp_path), str(kernel)],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(os.geteuid() != 0, reason="the guard acts only as root")
def test_a_kernel_skip_fails_under_ci_as_root_unless_allowed(tmp_path):
    r = run_pytest(tmp_path, ci=True)
    assert r.returncode == 1, r.stdout
    assert "1 failed, 1 passed, 1 skipped" in r.stdout, r.stdout
    assert "no tool here" in r.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="the guard acts only as root")
def test_kernel_skips_stay_skips_outside_ci(tmp_path):
    r = run_pytest(tmp_path, ci=False)
    assert r.returncode == 0 and "1 passed, 2 skipped" in r.stdout, r.stdout
