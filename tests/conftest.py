"""Suite-wide guard: tests in the host namespace send no DNS queries.

flowtop resolves addresses in the background by default; recorded fixtures
hold addresses (10.9.0.x, 2001:db8::...) whose PTR queries would go to the
host's resolver.  In-process, name lookups are refused here; subprocesses
in the host namespace pass -n.  Tests that exercise DNS run their own
server inside a namespace (tests/dnsutil.py) or inject a resolve function.
"""

import socket

import pytest


@pytest.fixture(autouse=True)
def _no_dns_from_the_host(monkeypatch, request):
    if request.node.get_closest_marker("real_dns"):
        return

    def refuse(*_args, **_kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "no DNS from the test host")

    monkeypatch.setattr(socket, "getnameinfo", refuse)
    monkeypatch.setattr(socket, "gethostbyaddr", refuse)


# CI as root: a skipped kernel test fails (tests/skipguard.py, its allow-list).
from tests.skipguard import pytest_make_collect_report, pytest_runtest_makereport  # noqa: E402,F401
