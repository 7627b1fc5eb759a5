"""A real table read by flowtop as on OpenWrt's python3-light (the import blocker
of tests/routerpy), compared with ``conntrack -L`` in a populated namespace.

The interpreter is the one running pytest (``scripts/ci-pythons.sh`` runs this under
Python 3.9 and 3.13 as well).  With maxminddb 2.x in build/routerpy/site-X.Y (the
script installs it) GeoIP runs too, in pure-Python mode, on flows to the test
databases' networks.
"""

import json
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests import ctparse  # noqa: E402
from tests.expect import mismatches  # noqa: E402
from tests.nsutil import Netns, kernel_ready, populate  # noqa: E402
from tests.routerpy import lightenv as L  # noqa: E402

_READY, _WHY = kernel_ready()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]

# Flows to networks of tests/fixtures/test-{city,asn}.mmdb, and what GeoIP says of them.
GEO_FLOWS = {
    "-p tcp -s 10.9.0.1 -d 81.2.69.3 --sport 4000 --dport 443 --state ESTABLISHED -t 500":
        ("81.2.69.3", "GB", "London", 20712),
    "-p udp -s fd00::1 -d 2001:218::2 --sport 4001 --dport 53 -t 500":
        ("2001:218::2", "JP", "Tokyo", 2516),
}

PROBE = ("import json, sys\nout = {}\n"
         "for n in ('curses', 'logging', 'ctypes', 'email', 'unicodedata'):\n"
         "    try:\n        __import__(n); out[n] = 'imported'\n"
         "    except ImportError:\n        out[n] = 'blocked'\n"
         "print(json.dumps(out))\n")


@pytest.fixture(scope="module")
def light_run():
    """One populated namespace, one ``--once --json`` run under the blocker."""
    site, why = L.maxminddb_site()
    argv = ["-m", "flowtop", "--once", "--json", "-n", "--no-sysctl"]
    if site:
        argv += ["--geoip-db", L.CITY, "--geoip-db", L.ASN]
    env = L.env(geo_site=site)
    with Netns("light") as ns:
        populate(ns)
        for spec in GEO_FLOWS:
            ns.run("conntrack", "-I", *spec.split())
        probe = ns.run(sys.executable, "-c", PROBE, env=env, check=False)
        r = ns.run(sys.executable, *argv, env=env, check=False, timeout=60)
        after = ctparse.parse(ns.conntrack_list())
    # the blocker was on in the namespace too
    assert probe.returncode == 0, probe.stderr
    assert set(json.loads(probe.stdout).values()) == {"blocked"}, probe.stdout
    assert r.returncode == 0 and r.stderr == "", (r.returncode, r.stderr)
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    return recs, after, why if site is None else None


def test_json_once_under_python3_light_matches_conntrack(light_run):
    recs, after, _ = light_run
    assert len(recs) == len(after) >= 16
    assert mismatches(recs, after) == []
    # who: the namespace's own sockets (sock_diag over netlink) have their process
    assert any(rec["process"] for rec in recs if rec["proto"] == "tcp"
               and rec["src"] in ("127.0.0.1", "::1")), [rec["process"] for rec in recs]


def test_geoip_under_python3_light_with_maxminddb2(light_run):
    """Where: GeoIP with maxminddb 2.x in pure-Python mode (the blocker hides its
    C extension)."""
    recs, _, no_site = light_run
    if no_site:
        pytest.skip(no_site)
    by_dst = {rec["dst"]: rec for rec in recs}
    for dst, country, city, asn in GEO_FLOWS.values():
        rec = by_dst[dst]
        assert (rec["dst_country"], rec["dst_city"], rec["dst_asn"]) == (country, city, asn), rec
