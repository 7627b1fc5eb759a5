"""CI fails when a kernel test is skipped where it could have run.

Kernel tests skip without root; in CI (``CI`` set in the environment) as
root, a skip means the test never ran, so it is turned into a failure.
Skips with a real reason even there are allowed below, each with why.
Loaded by tests/conftest.py (its hooks), or ``-p tests.skipguard``.
"""

import os

import pytest

# (text in the skip reason, why it is allowed in CI as root).  Today's only
# skip in tests/kernel as root (python3 -m pytest tests/kernel, 17:52 UTC):
ALLOWED = (
    ("maxminddb<3 is not installed in build/routerpy",
     "the routerpy builds get maxminddb<3 only where scripts/ci-pythons.sh could install it"),
    ("only in the big-endian VM",
     "tests/bigendian/test_vm_kernel.py runs in the s390x VM (scripts/ci-bigendian.sh, which "
     "fails CI if they fail there); on a little-endian host they have nothing to check"),
    ("no nftables flowtable in this kernel",
     "a kernel built without CONFIG_NF_FLOW_TABLE (this machine's 6.18) cannot offload a flow; "
     "the test runs wherever nftables can create a flowtable"),
)


def strict(env=None, euid=None):
    """Are kernel skips failures here: root, under CI?"""
    env = os.environ if env is None else env
    euid = os.geteuid() if euid is None else euid
    return euid == 0 and bool(env.get("CI"))


def is_kernel_test(path):
    return "/tests/kernel/" in str(path).replace(os.sep, "/")


def unallowed(reason):
    """The reason of a skip no entry of ALLOWED covers, else None."""
    if any(text in reason for text, _why in ALLOWED):
        return None
    return reason


def _reason(longrepr):
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _fail(report, what):
    reason = unallowed(_reason(report.longrepr))
    if reason is not None:
        report.outcome = "failed"
        report.longrepr = ("%s skipped as root in CI (tests/skipguard.py ALLOWED lists the "
                           "skips that may happen there): %s" % (what, reason))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if (report.skipped and not hasattr(report, "wasxfail") and strict()
            and (item.get_closest_marker("kernel") or is_kernel_test(item.path))):
        _fail(report, "kernel test")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and strict() and is_kernel_test(getattr(collector, "path", "")):
        _fail(report, "kernel test module")
