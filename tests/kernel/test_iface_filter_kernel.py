"""--in-iface/--out-iface naming an interface the namespace does not have:
one warning line, the run goes on (exit 0); a name it has: no warning."""

import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.nsutil import Netns, kernel_ready  # noqa: E402

_READY, _WHY = kernel_ready()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]


def test_a_missing_interface_is_warned_about_once_and_an_existing_one_is_not():
    with Netns("i11cif") as ns:
        ns.run("ip", "link", "add", "i11cv0", "type", "veth", "peer", "name", "i11cv1")
        r = ns.flowtop("--once", "-n", "-G", "--in-iface", "eht0", "--out-iface", "i11cv+")
        assert r.returncode == 0, r.stderr
        lines = r.stderr.splitlines()
        assert lines == ["flowtop: no interface matches --in-iface eht0 "
                         "(this host has: i11cv0, i11cv1, lo)"], r.stderr
        r = ns.flowtop("-c", "-n", "-G", "--in-iface", "lo", "--out-iface", "i11cv0",
                       "--once")
        assert r.returncode == 0 and r.stderr == "", r.stderr
