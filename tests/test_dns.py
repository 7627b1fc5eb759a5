"""Reverse DNS (flowtop.enrich.dns) with an injected resolve function and a
fake clock, and the test DNS server (tests/dnsutil.py) over loopback UDP.
No root needed."""

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from flowtop.enrich import dns
from flowtop.enrich.dns import Resolver, plain_hostname, resolve_ptr
from tests import dnsutil
from tests.clock import Clock

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = 0.25           # "never waits": far below the 2 s resolve, with room for a loaded CI machine


class Table:
    """A resolve function over a dict; a missing address raises like
    getnameinfo; counts calls; can be held on ``gate``."""

    def __init__(self, names, gate=None, hold=5.0):
        self.names = dict(names)
        self.calls = []
        self.gate = gate
        self.hold = hold
        self.started = threading.Event()

    def __call__(self, addr):
        self.calls.append(addr)
        self.started.set()
        if self.gate is not None:
            self.gate.wait(self.hold)
        if addr not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        value = self.names[addr]
        if isinstance(value, BaseException):
            raise value
        return value


@pytest.fixture
def make():
    """Resolvers closed, and held resolve functions released, at teardown."""
    made, gates = [], []

    def factory(names=(), gate=None, **kw):
        table = Table(names, gate)
        if gate is not None:
            gates.append(gate)
        kw.setdefault("clock", Clock())
        r = Resolver(resolve=table, **kw)
        made.append(r)
        return r, table

    yield factory
    for g in gates:
        g.set()
    for r in made:
        r.close()


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


# -- the name filter ----------------------------------------------------------------------

HOSTILE = [
    "\x1b[2J",
    "evil\x1b[2J.example.test",
    "line\nbreak.example.test",
    "\u202emoc.example",
    "has space.example.test",
    "tab\there.example",
    "nul\x00.example",
    "del\x7f.example",
    "csi\x9b2J.example",
    "caf\u00e9.example",
    "slash/.example",
    "back\\slash.example",
    "a" * 254,
    ("a" * 64) + ".example",
    "a..b.example",
    ".leading.example",
    "",
    ".",
    b"bytes.example",
    42,
]


@pytest.mark.parametrize("name", HOSTILE, ids=repr)
def test_hostile_names_are_not_plain(name):
    assert not plain_hostname(name)


@pytest.mark.parametrize("name", [
    "good.example.test", "good.example.test.", "under_score.example", "x-1.example",
    "localhost", "A.B.C", ".".join(["a" * 63] * 3) + "." + "b" * 61,     # 253 characters
])
def test_plain_names_pass(name):
    assert plain_hostname(name)


@pytest.mark.parametrize("name", HOSTILE, ids=repr)
def test_hostile_names_are_rejected_and_the_address_shown(make, name):
    r, table = make({"10.0.0.9": name})
    assert r.lookup("10.0.0.9") is None
    assert r.wait(["10.0.0.9"], 2) == {"10.0.0.9": None}
    assert r.lookup("10.0.0.9") is None             # cached as a failure: not asked again
    assert table.calls == ["10.0.0.9"]
    s = r.stats
    assert (s["rejected"], s["failures"]) == (1, 0)


POSERS = {
    "10.0.0.1": "8.8.8.8", "10.0.0.2": "8.8.8.8.", "10.0.0.3": "134744072",
    "10.0.0.4": "0x8.8.8.8", "10.0.0.5": "127.1", "10.0.0.6": "localhost",
    "10.0.0.7": "LOCALHOST.localdomain", "10.0.0.8": "ip6-localhost",
    "10.0.0.9": "printer.localhost", "2001:db8::7": "localhost6",
}


def test_names_posing_as_an_address_or_localhost_are_rejected(make):
    r, _ = make(dict(POSERS, **{"10.0.0.10": "8.8.8.8.nip.io", "10.0.0.11": "1e100.net",
                                "127.0.0.2": "localhost", "::1": "ip6-localhost"}))
    out = r.wait(list(POSERS) + ["10.0.0.10", "10.0.0.11", "127.0.0.2", "::1"], 2)
    assert out == dict({a: None for a in POSERS}, **{
        "10.0.0.10": "8.8.8.8.nip.io", "10.0.0.11": "1e100.net",     # names that hold digits
        "127.0.0.2": "localhost", "::1": "ip6-localhost"})           # loopback may say so
    assert r.stats["rejected"] == len(POSERS)


def test_trailing_dot_dropped_and_echoed_address_is_no_name(make):
    r, _ = make({"10.0.0.1": "one.example.", "10.0.0.2": "10.0.0.2"})
    assert r.wait(["10.0.0.1", "10.0.0.2"], 2) == {"10.0.0.1": "one.example", "10.0.0.2": None}
    assert r.stats["failures"] == 1


# -- cache ----------------------------------------------------------------------------------

def test_cache_hit_after_one_resolve(make):
    r, table = make({"192.0.2.1": "a.example"})
    assert r.lookup("192.0.2.1") is None
    assert r.wait(["192.0.2.1"], 2) == {"192.0.2.1": "a.example"}
    for _ in range(5):
        assert r.lookup("192.0.2.1") == "a.example"
    assert table.calls == ["192.0.2.1"]
    s = r.stats
    assert (s["hits"], s["misses"], s["queued"], s["cached"], s["pending"]) == (5, 1, 1, 1, 0)


def test_pending_address_is_queued_once(make):
    gate = threading.Event()
    r, table = make({"192.0.2.1": "a.example"}, gate=gate)
    for _ in range(20):
        assert r.lookup("192.0.2.1") is None
    gate.set()
    assert r.wait(["192.0.2.1"], 2)["192.0.2.1"] == "a.example"
    assert table.calls == ["192.0.2.1"]
    assert r.stats["queued"] == 1


def test_ttl_expiry_refreshes_and_keeps_the_old_name_meanwhile(make):
    clock = Clock()
    r, table = make({"192.0.2.1": "old.example"}, ttl=10.0, clock=clock)
    r.wait(["192.0.2.1"], 2)
    clock.t += 9.9
    assert r.lookup("192.0.2.1") == "old.example"
    assert len(table.calls) == 1
    table.names["192.0.2.1"] = "new.example"
    clock.t += 0.2                                  # past the TTL
    assert r.lookup("192.0.2.1") == "old.example"   # shown while the refresh runs
    assert r.wait(["192.0.2.1"], 2) == {"192.0.2.1": "new.example"}
    assert r.lookup("192.0.2.1") == "new.example"
    assert len(table.calls) == 2


def test_negative_caching_uses_the_shorter_ttl(make):
    clock = Clock()
    r, table = make({}, ttl=600.0, negative_ttl=30.0, clock=clock)
    assert r.wait(["198.51.100.7"], 2) == {"198.51.100.7": None}
    clock.t += 29
    assert r.lookup("198.51.100.7") is None
    assert len(table.calls) == 1                    # remembered, not asked again
    assert r.stats["failures"] == 1
    table.names["198.51.100.7"] = "late.example"
    clock.t += 2
    assert r.lookup("198.51.100.7") is None         # expired failure: asked again
    assert r.wait(["198.51.100.7"], 2) == {"198.51.100.7": "late.example"}
    assert len(table.calls) == 2


def test_cache_is_bounded_least_recently_used_first(make):
    names = {"10.1.0.%d" % i: "h%d.example" % i for i in range(6)}
    r, _ = make(names, cache_size=3)
    r.wait(list(names)[:3], 2)
    assert r.lookup("10.1.0.0") == "h0.example"     # now the most recent
    r.wait(list(names)[3:5], 2)
    s = r.stats
    assert s["cached"] == 3
    assert r.lookup("10.1.0.0") == "h0.example"
    assert r.lookup("10.1.0.1") is None             # evicted


def test_worker_survives_a_broken_resolve_function(make):
    r, _ = make({"10.0.0.1": RuntimeError("boom"), "10.0.0.2": "two.example",
                 "10.0.0.3": "\xff\xfe".encode("latin-1")})
    out = r.wait(["10.0.0.1", "10.0.0.3", "10.0.0.2"], 2)
    assert out == {"10.0.0.1": None, "10.0.0.3": None, "10.0.0.2": "two.example"}
    assert r.stats["failures"] == 1 and r.stats["rejected"] == 1


# -- never blocking ---------------------------------------------------------------------------

def test_lookup_never_waits_for_a_slow_resolve(make):
    gate = threading.Event()                        # resolution takes 2 s (or until teardown)
    r, table = make({}, gate=gate, workers=2)
    table.hold = 2.0
    addrs = ["203.0.113.%d" % i for i in range(1, 40)]
    worst = 0.0
    for _ in range(3):
        for a in addrs:
            out, took = timed(r.lookup, a)
            assert out is None
            worst = max(worst, took)
    assert table.started.wait(2)                    # a worker is inside the slow resolve
    for a in addrs:
        _, took = timed(r.lookup, a)
        worst = max(worst, took)
    assert worst < FAST, worst
    assert r.stats["pending"] == len(addrs)


def test_full_queue_drops_without_blocking_and_retries_later(make):
    gate = threading.Event()
    r, table = make({"10.2.0.%d" % i: "q%d.example" % i for i in range(1, 6)}, gate=gate,
                    workers=1, queue_size=2)
    assert r.lookup("10.2.0.1") is None
    assert table.started.wait(2)                    # the worker holds 10.2.0.1
    assert r.lookup("10.2.0.2") is None
    assert r.lookup("10.2.0.3") is None             # the queue is now full
    _, took = timed(r.lookup, "10.2.0.4")
    assert took < FAST
    r.lookup("10.2.0.4")
    s = r.stats
    assert (s["queued"], s["dropped"], s["pending"]) == (3, 2, 3)
    gate.set()
    out = r.wait(["10.2.0.%d" % i for i in range(1, 5)], 3)     # re-queues the dropped one
    assert out == {"10.2.0.%d" % i: "q%d.example" % i for i in range(1, 5)}


def test_a_full_queue_is_not_tried_again_per_lookup(make):
    """At 87k new addresses (a --once over a router's table) every lookup
    past a full queue tried put_nowait and caught Full: the length tells."""
    gate = threading.Event()
    r, table = make({}, gate=gate, workers=1, queue_size=2)
    r.lookup("10.9.0.1")
    assert table.started.wait(2)                    # the worker holds it
    r.lookup("10.9.0.2")
    r.lookup("10.9.0.3")                            # the queue is now full
    tries = []
    put = r._queue.put_nowait
    r._queue.put_nowait = lambda item: (tries.append(item), put(item))
    for i in range(4, 50):
        assert r.lookup("10.9.0.%d" % i) is None
    assert tries == [] and r.stats["dropped"] == 46
    gate.set()


def test_wait_looks_again_only_at_what_was_missing(make):
    """Each pass of wait looked up every address again (87k a pass): the
    answered ones are kept."""
    gate = threading.Event()
    r, _ = make({"10.8.0.%d" % i: "n%d.example" % i for i in range(1, 4)}, gate=gate)
    gate.set()
    assert r.wait(["10.8.0.1", "10.8.0.2"], 2) == {"10.8.0.1": "n1.example",
                                                   "10.8.0.2": "n2.example"}
    looked = []

    class Looked:                                   # the cache, its reads counted
        def __init__(self, memo):
            self.memo = memo

        def get(self, a):
            looked.append(a)
            return self.memo.get(a)

        def __getattr__(self, name):
            return getattr(self.memo, name)

        def __delitem__(self, a):
            del self.memo[a]

        def __len__(self):
            return len(self.memo)

    r._cache = Looked(r._cache)
    gate.clear()                                    # 10.8.0.3 stays pending a while
    out = r.wait(["10.8.0.1", "10.8.0.2", "10.8.0.3"], 0.3)
    assert out == {"10.8.0.1": "n1.example", "10.8.0.2": "n2.example", "10.8.0.3": None}
    assert looked.count("10.8.0.1") == 1 and looked.count("10.8.0.3") > 1
    gate.set()


def test_wait_is_bounded_by_its_timeout(make):
    gate = threading.Event()
    r, _ = make({"10.3.0.1": "slow.example"}, gate=gate)
    out, took = timed(r.wait, ["10.3.0.1", "10.3.0.2"], 0.3)
    assert out == {"10.3.0.1": None, "10.3.0.2": None}
    assert 0.29 <= took < 1.0, took
    out, took = timed(r.wait, ["10.3.0.1"], 0)
    assert out == {"10.3.0.1": None} and took < 0.25


def test_wait_returns_early_when_all_are_answered(make):
    r, _ = make({"10.4.0.1": "a.example", "10.4.0.2": "b.example"})
    out, took = timed(r.wait, ["10.4.0.1", "10.4.0.2", "10.4.0.3", "10.4.0.1"], 5)
    assert out == {"10.4.0.1": "a.example", "10.4.0.2": "b.example", "10.4.0.3": None}
    assert took < 1.0


def test_wait_does_not_hang_on_a_frozen_fake_clock(make):
    gate = threading.Event()
    r, _ = make({}, gate=gate, clock=lambda: 5.0)
    _, took = timed(r.wait, ["10.5.0.1"], 0.2)
    assert took < 0.5


# -- lifecycle ----------------------------------------------------------------------------------

def dns_threads():
    return [t for t in threading.enumerate() if t.name.startswith("flowtop-dns-")]


def test_no_threads_until_first_lookup_and_close_joins(make):
    before = len(dns_threads())
    r, _ = make({"10.6.0.1": "x.example"}, workers=3)
    assert len(dns_threads()) == before
    r.wait(["10.6.0.1"], 2)
    assert len(dns_threads()) == before + 3
    threads = list(r._threads)
    r.close()
    assert not any(t.is_alive() for t in threads)
    queued = r.stats["queued"]
    assert r.lookup("10.6.0.1") == "x.example"      # the cache still answers
    assert r.lookup("10.6.0.2") is None
    assert r.stats["queued"] == queued              # nothing queued, no thread restarted
    assert not any(t.is_alive() for t in r._threads)
    r.close()                                       # twice is fine


def test_close_with_a_stuck_worker_returns_within_its_timeout(make):
    gate = threading.Event()
    r, table = make({}, gate=gate, workers=2, queue_size=1)
    for i in range(5):
        r.lookup("10.7.0.%d" % i)
    assert table.started.wait(2)
    threads = list(r._threads)
    _, took = timed(r.close, 0.2)
    assert took < 0.5
    gate.set()                                      # the stuck resolve ends; its thread stops
    for t in threads:
        t.join(3)
    assert not any(t.is_alive() for t in threads)


def test_import_starts_nothing():
    code = ("import sys; before = set(sys.modules); import flowtop.enrich.dns as d; "
            "new = {'threading', 'queue'} & (set(sys.modules) - before); "
            "import threading; n = threading.active_count(); d.Resolver(); "
            "print(sorted(new), threading.active_count() - n)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["[]", "0"]


# -- the default resolve function and the policy helper -------------------------------------

def test_resolve_ptr_uses_getnameinfo_without_scope(monkeypatch):
    seen = []

    def fake(sockaddr, flags):
        seen.append((sockaddr, flags))
        return ("host.example", "0")

    monkeypatch.setattr(dns, "_GETNAMEINFO_FREES_GIL", True)
    monkeypatch.setattr(dns.socket, "getnameinfo", fake)
    assert resolve_ptr("fe80::1%eth0") == "host.example"
    assert resolve_ptr("192.0.2.1") == "host.example"
    assert seen == [(("fe80::1", 0), socket.NI_NAMEREQD), (("192.0.2.1", 0), socket.NI_NAMEREQD)]


def test_resolve_ptr_before_3_11_4_uses_gethostbyaddr_on_bytes(monkeypatch):
    """getnameinfo holds the GIL there (CPython gh-104308); bytes need no idna."""
    seen = []

    def fake(addr):
        seen.append(addr)
        return ("host.example", [], [addr])

    monkeypatch.setattr(dns, "_GETNAMEINFO_FREES_GIL", False)
    monkeypatch.setattr(dns.socket, "gethostbyaddr", fake)
    assert resolve_ptr("fe80::1%eth0") == "host.example"
    assert resolve_ptr("192.0.2.1") == "host.example"
    assert seen == [b"fe80::1", b"192.0.2.1"]


def test_default_resolve_path_matches_this_python():
    assert dns._GETNAMEINFO_FREES_GIL == (sys.version_info >= (3, 11, 4))


def test_scoped_address_is_cached_under_its_own_key(make):
    r, _ = make({"fe80::1%eth0": "link.example"})
    assert r.wait(["fe80::1%eth0"], 2) == {"fe80::1%eth0": "link.example"}


# -- the test DNS server ------------------------------------------------------------------------

HOSTILE_LABELS = [b"evil\x1b[2J", b"line\nbreak", "\u202e".encode(), b"test"]


def test_dns_server_answers_ptr_hostile_bytes_and_nxdomain():
    answers = {"10.9.0.2": "good.example.test", "10.9.0.3": HOSTILE_LABELS,
               "2001:db8::2": "six.example.test"}
    with dnsutil.DnsServer(answers, {"10.9.0.4": 0.5}) as srv:
        assert dnsutil.ask_ptr("10.9.0.2", srv.address) == (0, [b"good", b"example", b"test"])
        assert dnsutil.ask_ptr("10.9.0.3", srv.address) == (0, HOSTILE_LABELS)
        assert dnsutil.ask_ptr("2001:db8::2", srv.address)[1] == [b"six", b"example", b"test"]
        assert dnsutil.ask_ptr("10.9.0.99", srv.address) == (3, None)
        assert ("2.0.9.10.in-addr.arpa", dnsutil.T_PTR) in srv.queries


def test_dns_server_delays_one_name_not_the_others():
    answers = {"10.9.0.2": "good.example.test", "10.9.0.4": "slow.example.test"}
    with dnsutil.DnsServer(answers, {"10.9.0.4": 0.6}) as srv:
        result = {}
        t = threading.Thread(target=lambda: result.update(
            slow=timed(dnsutil.ask_ptr, "10.9.0.4", srv.address)))
        t.start()
        time.sleep(0.05)
        (_, labels), took = timed(dnsutil.ask_ptr, "10.9.0.2", srv.address)
        assert labels == [b"good", b"example", b"test"] and took < 0.3
        t.join(3)
        (_, labels), took = result["slow"]
        assert labels[0] == b"slow" and took >= 0.55


def test_resolver_over_the_dns_server_rejects_what_the_wire_brings():
    """The injection seam end to end: bytes from a PTR answer, decoded the way
    a lenient resolver (musl) would pass them on, never become a name."""
    answers = {"10.9.0.2": "good.example.test", "10.9.0.3": HOSTILE_LABELS,
               "10.9.0.5": [b"caf\xc3\xa9", b"test"]}
    with dnsutil.DnsServer(answers) as srv:
        def resolve(addr):
            _rcode, labels = dnsutil.ask_ptr(addr, srv.address)
            if labels is None:
                raise socket.gaierror(socket.EAI_NONAME, "no name")
            return ".".join(l.decode("utf-8", "surrogateescape") for l in labels)

        r = Resolver(resolve=resolve)
        try:
            out = r.wait(["10.9.0.2", "10.9.0.3", "10.9.0.5", "10.9.0.6"], 3)
        finally:
            r.close()
    assert out == {"10.9.0.2": "good.example.test", "10.9.0.3": None, "10.9.0.5": None,
                   "10.9.0.6": None}
    assert (r.stats["rejected"], r.stats["failures"]) == (2, 1)


def test_dns_server_child_process_serves_until_stdin_closes():
    p = subprocess.Popen(dnsutil.serve_argv({"10.9.0.3": HOSTILE_LABELS}, port=0),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("ready ")
        port = int(line.split()[1])
        assert dnsutil.ask_ptr("10.9.0.3", ("127.0.0.1", port)) == (0, HOSTILE_LABELS)
        p.stdin.close()
        assert p.wait(5) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


# -- flowtop's own queries ------------------------------------------------------------------

def test_resolving_at_is_true_only_inside_a_resolve_span(make):
    """The wall clock is read as a resolve begins (t=100) and ends (t=105)."""
    gate = threading.Event()
    wall = Clock(100.0)
    r, table = make({"10.0.0.1": "one.example"}, gate=gate, wall=wall)
    assert not r.resolving_at(100.0)                  # nothing resolved yet
    r.lookup("10.0.0.1")
    assert table.started.wait(2)
    assert r.resolving_at(100.5) and not r.resolving_at(99.0)   # still inside: open-ended
    wall.t = 105.0
    gate.set()
    assert r.wait(["10.0.0.1"], 2) == {"10.0.0.1": "one.example"}
    assert r.resolving_at(100.0) and r.resolving_at(104.99) and r.resolving_at(105.0)
    assert not r.resolving_at(99.9) and not r.resolving_at(105.2)


def test_resolving_at_remembers_the_newest_spans_in_a_ring(make, monkeypatch):
    """SPANS spans are kept, the oldest overwritten first; spans are kept
    as doubles (a flood's span tuples pinned Python's arenas)."""
    from flowtop.enrich import dns
    monkeypatch.setattr(dns, "SPANS", 4)
    wall = Clock(100.0)
    names = {"10.0.0.%d" % i: "h%d.example" % i for i in range(7)}
    r, _table = make(names, wall=wall)
    for i in range(7):
        wall.t = 100.0 + 10 * i
        addr = "10.0.0.%d" % i
        assert r.wait([addr], 2) == {addr: "h%d.example" % i}
    kept = [r.resolving_at(100.0 + 10 * i) for i in range(7)]
    assert kept == [False, False, False, True, True, True, True]
    assert not r.resolving_at(135.0) and not r.resolving_at(170.0)
    assert len(r._spans) == 8 and r._spans.typecode == "d"


def test_drop_queued_forgets_what_no_worker_has_taken(make):
    """--once past its wait drops the queue: those names would print nowhere."""
    gate = threading.Event()
    r, table = make({}, gate=gate, workers=1)
    for i in range(20):
        r.lookup("10.12.0.%d" % i)
    assert table.started.wait(2)            # the one worker holds the first address
    assert r.drop_queued() == 19
    gate.set()
    deadline = time.monotonic() + 2
    while r.stats.get("pending", 0) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert table.calls == ["10.12.0.0"] and r.stats["pending"] == 0
    r.lookup("10.12.0.5")                   # dropped, not cached: asked again later
    r.wait(["10.12.0.5"], 1)
    assert table.calls == ["10.12.0.0", "10.12.0.5"]


NO_SERVER = [socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"),
             socket.herror(2, "Host name lookup failure")]      # getnameinfo's, gethostbyaddr's


@pytest.mark.parametrize("error", NO_SERVER, ids=["getnameinfo", "gethostbyaddr"])
def test_wait_stops_once_no_server_has_answered_sixteen_in_a_row(make, error):
    """A router without a resolver: every lookup fails at once with "try
    again".  wait() stops after SILENT_RUN of them, not at its timeout and
    not after asking every address."""
    addrs = ["10.13.%d.%d" % (i // 250, i % 250) for i in range(600)]
    calls = []

    def failing(addr):              # ~the 1-5 ms a failing lookup costs a router
        calls.append(addr)
        time.sleep(0.002)
        raise error

    r = Resolver(resolve=failing, workers=2)
    try:
        out, took = timed(r.wait, addrs, 5)
        time.sleep(0.1)
        assert r.silent and took < 1.0, took
        assert set(out.values()) == {None}
        assert dns.SILENT_RUN <= len(calls) < 100, len(calls)   # not the 600
    finally:
        r.close()
    assert r.stats["unanswered"] == r.stats["failures"] >= dns.SILENT_RUN


def test_no_such_name_or_a_name_breaks_the_silent_run(make):
    """A server's NXDOMAIN is an answer: DNS works, only that PTR is missing."""
    addrs = ["10.14.0.%d" % i for i in range(60)]
    names = {a: NO_SERVER[0] for a in addrs}
    for a in addrs[10::10]:
        del names[a]                        # NXDOMAIN every tenth
    names[addrs[5]] = "five.example"
    r, table = make(names, workers=1)
    out, took = timed(r.wait, addrs, 5)
    assert not r.silent and len(table.calls) == 60
    assert out[addrs[5]] == "five.example"
    assert r.stats["unanswered"] == 60 - 5 - 1


def test_retain_forgets_the_names_of_other_addresses_and_keeps_the_rest_in_order(make):
    r, table = make({"192.0.2.1": "a.example", "192.0.2.2": "b.example",
                     "192.0.2.3": "c.example"})
    addrs = ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    assert r.wait(addrs, 5.0) == {"192.0.2.1": "a.example", "192.0.2.2": "b.example",
                                  "192.0.2.3": "c.example"}
    r.retain({"192.0.2.3", "192.0.2.1", "198.51.100.9"})
    assert list(r._cache) == ["192.0.2.1", "192.0.2.3"]
    assert r.stats["cached"] == 2
    misses = r.stats["misses"]
    assert r.lookup("192.0.2.1") == "a.example" and r.stats["misses"] == misses
    assert r.lookup("192.0.2.2") is None and r.stats["misses"] == misses + 1
