"""Reverse DNS through the real system resolver (glibc getnameinfo), in a namespace.

The namespace gets its own /etc/resolv.conf, hosts and nsswitch.conf (via
/etc/netns/<name>/, which ``ip netns exec`` bind-mounts over /etc), pointing at
tests/dnsutil.py's server on 127.0.0.1:53 inside.  A child there uses
``Resolver`` as flowtop does and reports what it saw.
"""

import json
import os
import sys

import pytest

from flowtop.enrich.dns import plain_hostname
from tests import dnsutil
from tests.nsutil import REPO, Netns, have

pytestmark = pytest.mark.kernel

GOOD, HOSTILE, BIDI, SLOW, STUCK, SIX, NONE = (
    "10.9.0.2", "10.9.0.3", "10.9.0.6", "10.9.0.4", "10.9.0.5", "2001:db8::2", "10.9.0.7")
ANSWERS = {
    GOOD: "good.example.test",
    HOSTILE: [b"evil\x1b[2J", b"line\nbreak", b"example", b"test"],
    BIDI: ["\u202etset", "example"],
    SLOW: "slow.example.test",
    STUCK: "stuck.example.test",
    SIX: "six.example.test",
}
# resolv.conf says timeout:2 attempts:1: SLOW answers in time, STUCK never does.
DELAYS = {SLOW: 1.5, STUCK: 30}

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from flowtop.enrich.dns import Resolver, resolve_ptr
addrs = json.loads(sys.argv[2])
slow, stuck, good, hostile = sys.argv[3:7]
out = {"resolv_conf": open("/etc/resolv.conf").read()}
try:
    out["direct_good"] = resolve_ptr(good)
except Exception as e:
    out["direct_good"] = repr(e)
try:
    out["direct_hostile"] = repr(resolve_ptr(hostile))
except Exception as e:
    out["direct_hostile"] = type(e).__name__

r = Resolver(workers=3)
worst = 0.0
first = {}
for a in addrs:
    t0 = time.monotonic()
    first[a] = r.lookup(a)
    worst = max(worst, time.monotonic() - t0)
out["first"] = first
t0 = time.monotonic()
out["wait"] = r.wait(addrs, timeout=1)
out["wait_s"] = time.monotonic() - t0
t0 = time.monotonic()
out["slow_again"] = r.lookup(slow)          # still being resolved
worst = max(worst, time.monotonic() - t0)
out["worst_lookup_s"] = worst
# A tick loop while SLOW and STUCK are inside the system resolver: no lookup
# may wait, and no resolve may stall this thread (the GIL, CPython gh-104308).
deadline = time.monotonic() + 10
gap, last = 0.0, time.monotonic()
while time.monotonic() < deadline and r.stats["pending"]:
    for a in addrs:
        t0 = time.monotonic()
        r.lookup(a)
        out["worst_lookup_s"] = max(out["worst_lookup_s"], time.monotonic() - t0)
    time.sleep(0.01)
    now = time.monotonic()
    gap, last = max(gap, now - last), now
out["tick_gap_s"] = gap
out["later"] = {a: r.lookup(a) for a in addrs}
out["stats"] = r.stats
r.close()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def ready():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if not have("ip"):
        pytest.skip("needs ip(8)")


def test_reverse_dns_through_getnameinfo(ready):
    ns = Netns("dns", sysctls={}, ruleset=None)
    with dnsutil.NetnsEtc(ns.name) as etc, ns:
        dnsutil.start_in(ns, ANSWERS, DELAYS)
        addrs = [GOOD, HOSTILE, BIDI, SLOW, STUCK, SIX, NONE]
        r = ns.run(sys.executable, "-c", CHILD, REPO, json.dumps(addrs), SLOW, STUCK, GOOD,
                   HOSTILE, timeout=60, check=False)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
    assert not os.path.exists(etc.dir)

    assert "nameserver 127.0.0.1" in out["resolv_conf"]
    assert out["direct_good"] == "good.example.test"        # plain getnameinfo works
    # glibc refuses such a PTR itself; flowtop's filter is the second line.
    assert "\x1b" not in out["direct_hostile"] and "\n" not in out["direct_hostile"]

    assert out["first"] == {a: None for a in addrs}          # nothing known yet, nothing waited
    assert out["worst_lookup_s"] < 0.25, out["worst_lookup_s"]     # never the 1.5 s answer
    assert 0.9 <= out["wait_s"] < 1.2, out["wait_s"]
    w = out["wait"]
    assert w[GOOD] == "good.example.test"
    assert w[SIX] == "six.example.test"
    assert w[HOSTILE] is None and w[BIDI] is None and w[NONE] is None
    assert w[SLOW] is None and w[STUCK] is None              # still in flight at 1 s
    assert out["slow_again"] is None
    assert out["tick_gap_s"] < 0.2, out["tick_gap_s"]       # the loop never froze

    later = out["later"]
    assert later[SLOW] == "slow.example.test"                # answered at 1.5 s
    assert later[STUCK] is None                              # timed out: a cached failure
    assert later[GOOD] == "good.example.test" and later[HOSTILE] is None
    s = out["stats"]
    assert s["pending"] == 0
    assert s["failures"] + s["rejected"] >= 4                # hostile, bidi, none, stuck
    for v in list(w.values()) + list(later.values()):
        assert v is None or plain_hostname(v)
