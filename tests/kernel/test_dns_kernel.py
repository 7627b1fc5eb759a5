"""Reverse DNS through the real system resolver (glibc getnameinfo), in a namespace.

The namespace gets its own /etc/resolv.conf, hosts and nsswitch.conf (via
/etc/netns/<name>/, which ``ip netns exec`` bind-mounts over /etc), pointing at
tests/dnsutil.py's server on 127.0.0.1:53 inside.  A child there uses
``Resolver`` as flowtop does and reports what it saw.
"""

import json
import os
import subprocess
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


# Names that pose as something else, from the DNS server and from /etc/hosts.
POSING = {"10.9.0.20": "8.8.8.8", "10.9.0.21": "localhost", "10.9.0.22": "134744072",
          "10.9.0.23": "good.example.test"}
POSING_HOSTS = dnsutil.HOSTS + "10.9.0.30 1.1.1.1\n10.9.0.31 localhost.localdomain\n"
POSING_NAMES = {"10.9.0.20": "8.8.8.8", "10.9.0.21": "localhost", "10.9.0.22": "134744072",
                "10.9.0.30": "1.1.1.1", "10.9.0.31": "localhost.localdomain"}

DIRECT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from flowtop.enrich.dns import resolve_ptr
out = {}
for a in json.loads(sys.argv[2]):
    try:
        out[a] = resolve_ptr(a)
    except OSError as e:
        out[a] = repr(e)
print(json.dumps(out))
"""


def test_names_posing_as_an_address_or_localhost_never_reach_flowtops_output(ready):
    ns = Netns("i11adns", sysctls={"net.netfilter.nf_conntrack_acct": 1})
    with dnsutil.NetnsEtc(ns.name, hosts=POSING_HOSTS), ns:
        dnsutil.start_in(ns, POSING)
        addrs = sorted(POSING_NAMES) + ["10.9.0.23"]
        for i, a in enumerate(addrs):
            ns.run("conntrack", "-I", "-p", "tcp", "-s", "10.9.0.1", "-d", a, "--sport",
                   "40000", "--dport", str(2000 + i), "--state", "ESTABLISHED", "-t", "300")
        # the control: the system resolver does hand these names over
        r = ns.run(sys.executable, "-c", DIRECT, REPO, json.dumps(addrs), check=False)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == dict(POSING_NAMES, **{"10.9.0.23": "good.example.test"})
        out = ns.flowtop("--once", "--json", "-G", "--no-process")
        assert out.returncode == 0, out.stderr
        recs = {rec["dst"]: rec for rec in map(json.loads, out.stdout.splitlines())
                if rec["dst"] in addrs}
        text = ns.flowtop("--once", "-G", "--no-process").stdout
    assert set(recs) == set(addrs)
    assert recs["10.9.0.23"]["dst_host"] == "good.example.test"
    for a in POSING_NAMES:
        assert recs[a]["dst_host"] is None, recs[a]
        assert "%s:%d" % (a, 2000 + addrs.index(a)) in text, text
    assert "good.example.test:%d" % (2000 + addrs.index("10.9.0.23")) in text
    ours = [ln for ln in text.splitlines() if "10.9.0.1:40000" in ln]
    assert len(ours) == len(addrs), text
    for name in POSING_NAMES.values():
        assert not [ln for ln in ours if name in ln.replace("10.9.0.", "")], (name, text)


# flowtop's own reverse-DNS queries, to a server in another namespace (not
# loopback, so they are shown by default): attributed to flowtop.
OWN_ANSWERS = {"10.9.0.%d" % i: "n%d.example.test" % i for i in range(2, 8)}

OWN_CHILD = r"""
import json, os, select, subprocess, sys, time
argv, until = json.loads(sys.argv[1]), time.monotonic() + float(sys.argv[2])
p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
print(json.dumps({"pid": p.pid}), flush=True)
while time.monotonic() < until:
    if select.select([p.stdout], [], [], 0.2)[0]:
        line = p.stdout.readline()
        if not line:
            break
        sys.stdout.write(line)
p.terminate()
p.wait(10)
"""


def test_flowtops_own_dns_queries_are_attributed_to_flowtop():
    from tests import enrichutil as eu
    world = eu.GeoWorld("i11aown", ())
    with world:
        local, remote = world.local, world.remote
        with dnsutil.NetnsEtc(local.name, resolv="nameserver 10.77.0.2\n"
                                                 "options timeout:2 attempts:1\n"):
            dnsutil.start_in(remote, OWN_ANSWERS, host="10.77.0.2")
            for i, a in enumerate(sorted(OWN_ANSWERS)):
                local.run("conntrack", "-I", "-p", "tcp", "-s", "10.9.0.1", "-d", a, "--sport",
                          "40000", "--dport", str(2000 + i), "--state", "ESTABLISHED",
                          "-t", "300")
            argv = [sys.executable, "-m", "flowtop", "--json", "-t", "0.5", "-G", "--no-iface"]
            r = subprocess.run(local.argv("env", "PYTHONPATH=" + REPO, sys.executable, "-c",
                                          OWN_CHILD, json.dumps(argv), "5"),
                               capture_output=True, text=True, timeout=60)
            truth = local.run("conntrack", "-L", "-p", "udp", "--dport", "53").stdout
    lines = r.stdout.splitlines()
    pid = json.loads(lines[0])["pid"]
    recs = [json.loads(ln) for ln in lines[1:]]
    named = {x["dst"]: x["dst_host"] for x in recs if x["dst"] in OWN_ANSWERS}
    assert named and set(named.values()) == set(OWN_ANSWERS.values()), (named, r.stderr)
    assert truth.count("dport=53") >= len(OWN_ANSWERS), truth    # the kernel saw the queries
    ours = [x for x in recs if x["dport"] == 53 and x["dst"] == "10.77.0.2"]
    assert len({x["sport"] for x in ours}) >= len(OWN_ANSWERS), ours
    for x in ours:
        assert (x["pid"], x["process"]) == (pid, "flowtop"), x


SILENCE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from flowtop.enrich.dns import Resolver
addrs = ["10.20.%d.%d" % (i // 250, 1 + i % 250) for i in range(600)]
asked = []
def resolve(addr, real=__import__("flowtop.enrich.dns", fromlist=["x"]).resolve_ptr):
    asked.append(addr)
    return real(addr)
r = Resolver(workers=3, resolve=resolve)
t0 = time.monotonic()
r.wait(addrs, timeout=20)
took = time.monotonic() - t0
time.sleep(0.2)
print(json.dumps({"took": took, "asked": len(asked), "silent": getattr(r, "silent", None),
                  "stats": r.stats}))
r.close()
"""


@pytest.mark.parametrize("server", [False, True], ids=["no-server", "nxdomain-server"])
def test_a_resolver_no_server_answers_is_silent_after_a_few_lookups(ready, server):
    """glibc's own errors tell a namespace (a router) without a reachable DNS
    server, whose every lookup fails at once, from one whose server says "no
    such name": the first stops after a few lookups, the second asks all."""
    ns = Netns("dnssilent", sysctls={}, ruleset=None)
    with dnsutil.NetnsEtc(ns.name), ns:
        if server:
            dnsutil.start_in(ns, {})
        r = ns.run(sys.executable, "-c", SILENCE, REPO, timeout=60, check=False)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
    if server:
        assert not out["silent"] and out["asked"] == 600, out
        assert out["stats"]["unanswered"] == 0
    else:
        assert out["silent"] and out["asked"] < 100 and out["took"] < 5, out
        assert out["stats"]["unanswered"] >= 16
