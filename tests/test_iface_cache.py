"""The route cache of enrich.iface.Interfaces: sized to the table, one
writer, stale answers refreshed a share at a time.  A fake route function
and a fake clock stand in for the kernel (its answers are tested in
tests/kernel/test_iface_kernel.py)."""

import sys
import threading
import tracemalloc

from flowtop.enrich import iface
from flowtop.netlink.ctnetlink import FIELDS
from tests.test_route import flow, make, ri


def _distinct(n):
    return [flow("10.1.%d.%d" % (i // 250, i % 250 + 1), "198.51.%d.%d" % (i // 250, i % 250 + 1))
            for i in range(n)]


def test_a_table_with_more_addresses_than_the_cache_floor_is_looked_up_once_per_ttl():
    ifs, fake, _ = make(max_entries=100)
    flows = _distinct(1000)                          # 2,000 distinct addresses
    assert ifs.prefetch(flows) == 2000
    assert ifs.prefetch(flows) == 0                  # all still cached: no thrash
    assert ifs.lookups == 2000
    assert all(ifs.of_flow(f) == ("lan0", "wan0") for f in flows)
    assert ifs.lookups == 2000


def test_many_addresses_share_one_cached_answer():
    ifs, _, _ = make()
    ifs.prefetch(_distinct(1000))
    assert len(ifs._cache) == 2000
    assert len({id(v) for v in ifs._cache.values()}) == 3     # lan0, wan0, local 10.1.0.1


def test_an_unmarked_address_costs_the_cache_no_more_than_a_dict_slot():
    ifs, fake, _ = make()
    # 20,000 addresses, made before measuring: the ~2,000 tuples a size that
    # Python's free lists keep (counted as in use) are ~15 B an address here
    flows = _distinct(10000)
    ifs.prefetch(flows[:10])                          # the answers' pairs exist already
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        ifs.prefetch(flows[10:])
        fake.calls.clear()                            # what the fake kernel kept
        per_address = (tracemalloc.get_traced_memory()[0] - before) / 19980
    finally:
        tracemalloc.stop()
    # a dict slot is ~25-45 B here; an (address, mark) key tuple added ~56 B more
    assert per_address < 60, per_address
    assert all(ifs.of_flow(f) == ("lan0", "wan0") for f in flows)


def test_stale_routes_are_refreshed_a_share_per_call_and_answer_meanwhile(monkeypatch):
    monkeypatch.setattr(iface, "STALE_MIN", 100)
    ifs, fake, clock = make(ttl=30.0)
    flows = _distinct(1000)
    ifs.prefetch(flows)
    clock.now += 31
    assert ifs.prefetch(flows) == 2000 // iface.STALE_SHARE
    ifs.deferred = True                               # a reader: the stale answer, no lookup
    assert ifs.of_flow(flows[-1]) == ("lan0", "wan0")
    sent = [ifs.prefetch(flows) for _ in range(8)]
    assert sum(sent) == 2000 - 2000 // iface.STALE_SHARE
    assert ifs.prefetch(flows) == 0


def test_a_deferred_miss_waits_for_the_next_prefetch_and_does_no_io():
    ifs, fake, _ = make()
    ifs.deferred = True
    f = flow("10.1.0.5", "203.0.113.9")
    assert ifs.of_flow(f) == (None, None)
    assert fake.calls == [] and fake.link_calls == 0 and ifs.wanted()
    assert ifs.prefetch(()) == 2
    assert not ifs.wanted()
    assert ifs.of_flow(f) == ("lan0", "wan0")


def test_a_deferred_unknown_ifindex_refreshes_names_at_the_next_prefetch():
    ifs, fake, clock = make()
    f = flow("10.1.0.5", "203.0.113.9")
    ifs.prefetch([f])
    links = fake.link_calls
    fake.names[9] = "new0"
    ifs.deferred = True
    clock.now += 2
    assert ifs.name(9) is None and fake.link_calls == links
    ifs.prefetch(())
    assert fake.link_calls == links + 1 and ifs.name(9) == "new0"


def test_a_screen_thread_reading_while_the_collector_prefetches_never_raises():
    """The race that killed the collector: both threads evicted one dict."""
    ifs, fake, clock = make(max_entries=64)
    ifs.deferred = True
    errors = []
    stop = threading.Event()
    flows = _distinct(3000)

    def screen():
        try:
            while not stop.is_set():
                for f in flows[::7]:
                    ifs.of_flow(f)
        except Exception as exc:          # noqa: BLE001 - what the test looks for
            errors.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    t = threading.Thread(target=screen)
    t.start()
    try:
        for i in range(40):
            clock.now += 1
            ifs.prefetch(flows[(i * 500) % 3000:][:600])
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(old)
    assert errors == []


def test_answers_fresh_at_the_prefetch_serve_a_once_that_outlasts_the_ttl():
    ifs, fake, clock = make(ttl=30.0)
    flows = _distinct(500)
    ifs.prefetch(flows)
    asked = ifs.lookups
    clock.now += 31                                   # a router CPU still writing the rows
    assert all(ifs.of_flow(f) == ("lan0", "wan0") for f in flows)
    assert ifs.lookups == asked                       # not 1,000 single lookups
    assert ifs.prefetch(flows) == 1000                # the next tick refreshes them


def test_an_answer_already_stale_at_the_prefetch_is_looked_up_when_asked(monkeypatch):
    monkeypatch.setattr(iface, "STALE_MIN", 10)
    ifs, fake, clock = make(ttl=30.0)
    flows = _distinct(500)
    ifs.prefetch(flows)
    clock.now += 31
    assert ifs.prefetch(flows) == 1000 // iface.STALE_SHARE   # the rest stay stale
    asked = ifs.lookups
    ifs.of_flow(flows[-1])
    assert ifs.lookups == asked + 2


def _mixed():
    """Forwarded, local, both-local, no-route, failed, marked, DNAT'd and
    unknown-ifindex ends (FakeRoutes' address plan)."""
    return [flow("10.1.0.5", "198.51.100.1"), flow("10.1.0.5", "10.2.0.1"),
            flow("127.0.0.1", "127.0.0.1"), flow("10.99.0.1", "198.51.100.1"),
            flow("10.66.0.1", "198.51.100.1"), flow("10.1.0.5", "198.51.100.1", mark=7),
            flow("10.1.0.5", "192.0.2.7", reply_src="10.1.0.9"),
            flow("10.1.0.6", "203.0.113.50"), flow("fd00::5", "2001:db8::1")]


def _twins():
    """Two caches over the same fake kernel plan, and each one's clock."""
    (fast, fake_fast, clock_fast), (slow, fake_slow, clock_slow) = make(ttl=30.0), make(ttl=30.0)
    for fake in (fake_fast, fake_slow):
        fake.table[("203.0.113.50", 0)] = ri(9)          # an ifindex no link has
        fake.table[("198.51.100.1", 7)] = ri(2)
    return fast, slow, (clock_fast, clock_slow)


def test_of_flow_answers_as_flow_ifaces_whatever_the_cache_holds():
    fast, slow, clocks = _twins()
    flows = _mixed()
    for step in (0, 31, 0, 40):                          # fresh, stale since the prefetch, ...
        for clock in clocks:
            clock.now += step
        if step == 0:
            fast.prefetch(flows[:5])
            slow.prefetch(flows[:5])
        for f in flows:
            s = slow.flow_ifaces(f)
            assert fast.of_flow(f) == (s.in_iface, s.out_iface), f
        assert fast.lookups == slow.lookups


def test_a_cached_forwarded_local_or_host_internal_flow_costs_of_flow_no_further_python_call():
    ifs, _, _ = make()
    flows = _distinct(51)[1:]
    unrouted = [flow("10.99.0.%d" % i, "198.51.100.7") for i in range(1, 51)]
    inside = [flow("127.0.0.1", "127.0.0.%d" % i) for i in range(2, 52)]   # host-internal
    # this host's 10.2.0.1 (wan0's) to the Internet and back: a host's usual flows
    mine = [flow("10.2.0.1", "198.51.7.%d" % i) for i in range(1, 26)]
    mine += [flow("198.51.8.%d" % i, "10.1.0.1") for i in range(1, 26)]
    ifs.prefetch(flows + unrouted + inside + mine)
    calls = []

    def count(frame, event, arg):
        if event == "call" and frame.f_code.co_name != "<listcomp>":
            calls.append(frame.f_code.co_name)

    sys.setprofile(count)
    try:
        out = [ifs.of_flow(f) for f in flows + unrouted + inside + mine]
    finally:
        sys.setprofile(None)
    assert out == ([("lan0", "wan0")] * 50 + [(None, "wan0")] * 50 + [("lo", "lo")] * 50
                   + [("wan0", "wan0")] * 25 + [("wan0", "lan0")] * 25)
    assert out[150:] == [(ifs.flow_ifaces(f).in_iface, ifs.flow_ifaces(f).out_iface)
                         for f in mine]
    assert calls == ["of_flow"] * 200, calls[:10]


def test_an_answer_follows_only_the_flows_source_reply_source_and_mark_as_by_ends_says():
    ifs, fake, _ = make()
    assert ifs.by_ends
    ends = [("10.1.0.1", "203.0.113.9", "10.1.5.5", 0), ("10.1.5.5", "10.2.0.1", None, 0),
            ("10.1.5.5", "192.0.2.7", "203.0.113.9", 7), ("127.0.0.1", "127.0.0.1", None, 0)]
    for src, dst, rsrc, mark in ends:
        variants = [flow(src, dst, rsrc, mark=mark), flow(src, dst, rsrc, "198.51.100.1", mark),
                    flow(src, "192.0.2.200" if rsrc else dst, rsrc, mark=mark, bo=5, pr=9)]
        variants.append(type(variants[0])(**dict(zip(FIELDS, variants[0]), l4proto=17, sport=53,
                                                   dport=5353)))
        ifs.prefetch(variants)
        answers = {ifs.of_flow(f) for f in variants}
        assert len(answers) == 1, (src, dst, answers)


def test_of_ends_answers_each_flow_as_flow_ifaces_whatever_the_cache_holds():
    from flowtop.enrich.ifacetotals import answers_by_ends
    batch, slow, clocks = _twins()
    flows = _mixed() + [flow("10.2.0.1", "198.51.7.1"), flow("198.51.8.1", "10.1.0.1"),
                        flow("10.1.0.5", "198.51.100.1", mark=7)]
    for step in (0, 31, 0, 40):                          # fresh, stale since the prefetch, ...
        for clock in clocks:
            clock.now += step
        if step == 0:
            batch.prefetch(flows[:5] + flows[-3:])
            slow.prefetch(flows[:5] + flows[-3:])
        keys, got = answers_by_ends(batch, list(zip(*flows)), flows)
        want = [(s.in_iface, s.out_iface) for s in map(slow.flow_ifaces, flows)]
        assert [got[k] for k in keys] == want
        assert batch.lookups == slow.lookups
    assert ("wan0", "wan0") in want and ("wan0", "lan0") in want and ("lo", "lo") in want


def test_a_batch_of_cached_ends_costs_of_ends_no_call_per_flow():
    ifs, _, _ = make()
    flows = _distinct(51)[1:] + [flow("10.99.0.%d" % i, "198.51.100.7") for i in range(1, 51)]
    flows += [flow("127.0.0.1", "127.0.0.%d" % i) for i in range(2, 52)]
    flows += [flow("10.2.0.1", "198.51.7.%d" % i) for i in range(1, 26)]
    ends = [(f.src, f.reply_src or f.dst, f.mark) for f in flows]
    ifs.prefetch(flows)
    calls = []

    def count(frame, event, arg):
        if event == "call":
            calls.append(frame.f_code.co_name)

    sys.setprofile(count)
    try:
        out = ifs.of_ends(ends, flows)
    finally:
        sys.setprofile(None)
    assert out == [ifs.of_flow(f) for f in flows]
    assert out[-1] == ("wan0", "wan0") and out[100] == ("lo", "lo")
    assert calls == ["of_ends"], calls[:10]
