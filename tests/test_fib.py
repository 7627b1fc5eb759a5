"""The routing tables copied to user space (flowtop/enrich/fib.py) and their
dumps (flowtop/netlink/rtdump.py), against recorded kernel bytes (no root).

The fixtures come from tests/record_route.py: the route and rule dumps of a
namespace, with ``ip -j route show table all`` / ``ip -j rule`` and the
kernel's answers to RTM_GETROUTE lookups (route-get.bin) beside them.  The
copy must give the kernel's answer for every address it answers.
"""

import pytest

from flowtop.enrich import fib
from flowtop.netlink import rtdump, rtlookup
from flowtop.netlink.errors import DecodeError, NetlinkError
from flowtop.netlink.route import decode_dump
from flowtop.netlink.uapi import (
    AF_INET, AF_INET6, RTM_NEWROUTE, RTM_NEWRULE, RTN_BLACKHOLE, RTN_BROADCAST, RTN_LOCAL,
    RTN_MULTICAST, RTN_PROHIBIT, RTN_UNICAST, RTN_UNREACHABLE,
)
from tests.test_route import ifindex_by_name, load

TYPES = {"unicast": RTN_UNICAST, "local": RTN_LOCAL, "broadcast": RTN_BROADCAST,
         "multicast": RTN_MULTICAST, "unreachable": RTN_UNREACHABLE,
         "prohibit": RTN_PROHIBIT, "blackhole": RTN_BLACKHOLE}
TABLES = {"main": 254, "local": 255, "default": 253}


def recorded():
    routes = decode_dump(load("route-routes.bin")[0], RTM_NEWROUTE, rtdump.decode_route_entry)[0]
    rules = decode_dump(load("route-rules.bin")[0], RTM_NEWRULE, rtdump.decode_rule)[0]
    return routes, rules


def _ip_route(x, six):
    """(dst with its length, table, type, dev) of one ``ip -j route`` entry."""
    dst = x["dst"]
    if dst == "default":
        dst = "::/0" if six else "0.0.0.0/0"
    elif "/" not in dst:
        dst += "/128" if six else "/32"
    table = x.get("table", "main")
    return dst, TABLES.get(table) or int(table), TYPES[x.get("type", "unicast")], x.get("dev")


def test_the_route_dump_decodes_to_what_ip_route_show_table_all_lists():
    routes, _rules = recorded()
    names = {v: k for k, v in ifindex_by_name().items()}
    _, expected = load("route-routes.bin")
    got = sorted(("%s/%d" % (r.dst or ("::" if r.family == AF_INET6 else "0.0.0.0"), r.dst_len),
                  r.table, r.type, names.get(r.oif)) for r in routes)
    want = sorted([_ip_route(x, False) for x in expected["ip"]["4"]]
                  + [_ip_route(x, True) for x in expected["ip"]["6"]])
    assert got == want
    assert all(not r.multipath and not r.src_len and not r.tos for r in routes)


def test_the_rule_dump_decodes_to_what_ip_rule_lists_and_only_the_fwmark_rule_selects():
    _routes, rules = recorded()
    _, expected = load("route-rules.bin")
    for family, key in ((AF_INET, "4"), (AF_INET6, "6")):
        mine = sorted((r.priority, r.table, r.plain) for r in rules if r.family == family)
        want = sorted((x["priority"], TABLES.get(x["table"]) or int(x["table"]),
                       set(x) <= {"priority", "src", "table"}) for x in expected["ip"][key])
        assert mine == want
    assert [r.priority for r in rules if not r.plain] == [32765]


def _kernel_answers():
    """{destination: (oif, type) or None} of the recorded unmarked lookups."""
    data, expected = load("route-get.bin")
    out = {}
    for case in expected["lookups"]:
        if case["mark"] is None:
            info = rtlookup.decode_route_reply(data, case["seq"])
            out[case["dst"]] = None if info is None else (info.oif, info.type)
    return out


def _answer(x):
    return x if x is None or x is fib.ASK else (x.oif, x.type)


def test_with_a_fwmark_rule_the_copy_asks_the_kernel_for_ipv4_and_answers_ipv6_as_it_did():
    copy = fib.build(*recorded())
    kernel = _kernel_answers()
    v6 = {a: k for a, k in kernel.items() if ":" in a}
    assert len(v6) >= 4 and any(k is None for k in v6.values())
    for addr, want in kernel.items():
        got = _answer(copy.lookup(addr))
        assert got == (fib.ASK if ":" not in addr else want), addr


def test_without_the_selecting_rule_the_copy_answers_ipv4_as_the_kernel_did():
    routes, rules = recorded()
    copy = fib.build(routes, [r for r in rules if r.plain])
    kernel = _kernel_answers()
    v4 = {a: k for a, k in kernel.items() if ":" not in a}
    assert len(v4) >= 8
    assert {_answer(copy.lookup(a)) for a in v4} - {fib.ASK} >= {None, (1, RTN_LOCAL)}
    for addr, want in v4.items():
        assert _answer(copy.lookup(addr)) == want, addr


def _route(dst, length, oif, table=254, rtype=RTN_UNICAST, metric=0, family=AF_INET, **kw):
    fields = dict(family=family, dst_len=length, dst=dst, table=table, type=rtype, oif=oif,
                  priority=metric, src_len=0, tos=0, flags=0, multipath=False)
    fields.update(kw)
    return rtdump.RouteEntry(**fields)


PLAIN = [rtdump.RuleEntry(AF_INET, 0, 255, 1, True), rtdump.RuleEntry(AF_INET, 32766, 254, 1, True)]


def test_the_longest_prefix_then_the_lowest_metric_wins_and_ties_or_multipath_ask():
    routes = [_route(None, 0, 2), _route("10.0.0.0", 8, 3), _route("10.1.0.0", 16, 4, metric=9),
              _route("10.1.0.0", 16, 5, metric=3), _route("10.2.0.0", 16, 4),
              _route("10.2.0.0", 16, 5), _route("10.3.0.0", 16, 4, multipath=True),
              _route("10.4.0.0", 16, None, rtype=RTN_UNREACHABLE),
              _route("10.0.0.1", 32, 3, table=255, rtype=RTN_LOCAL)]
    copy = fib.build(routes, PLAIN)
    assert _answer(copy.lookup("8.8.8.8")) == (2, RTN_UNICAST)
    assert _answer(copy.lookup("10.9.9.9")) == (3, RTN_UNICAST)
    assert _answer(copy.lookup("10.1.2.3")) == (5, RTN_UNICAST)
    assert copy.lookup("10.2.2.3") is fib.ASK
    assert copy.lookup("10.3.2.3") is fib.ASK
    assert copy.lookup("10.4.2.3") is None
    assert _answer(copy.lookup("10.0.0.1")) == (1, RTN_LOCAL)     # out through lo, as the kernel
    assert copy.lookup("not an address") is fib.ASK
    assert copy.lookup("fd00::1") is fib.ASK                       # no IPv6 rules: ask


@pytest.mark.parametrize("name,mtype,decode", [
    ("route-routes.bin", RTM_NEWROUTE, rtdump.decode_route_entry),
    ("route-rules.bin", RTM_NEWRULE, rtdump.decode_rule),
])
def test_mutated_route_and_rule_dumps_raise_only_decode_errors_and_build_a_copy(name, mtype,
                                                                                 decode):
    data, _ = load(name)
    routes, rules = recorded()
    for i in range(len(data)):
        for value in (0, 0xFF, data[i] ^ 0x80):
            mutated = data[:i] + bytes((value,)) + data[i + 1:]
            try:
                values = decode_dump(mutated, mtype, decode)[0]
            except (DecodeError, NetlinkError):
                continue
            copy = fib.build(values, rules) if mtype == RTM_NEWROUTE else fib.build(routes,
                                                                                    values)
            for addr in ("10.77.1.9", "8.8.8.8", "fd00:77:1::9", "::1"):
                copy.lookup(addr)


def test_a_route_whose_address_is_of_the_other_family_leaves_that_family_to_the_kernel():
    # RTA_DST of 16 bytes in an AF_INET route decodes to IPv6 text (and 4 bytes in an
    # AF_INET6 one to IPv4): the copy cannot place it, so that family is asked
    six = [rtdump.RuleEntry(AF_INET6, 0, 254, 1, True)]
    for bad in (_route("::1", 32, 2), _route("10.0.0.0", 8, 2, family=AF_INET6)):
        copy = fib.build([_route(None, 0, 2), bad], PLAIN + six)
        asked = "10.1.1.1" if bad.family == AF_INET else "fd00::1"
        assert copy.lookup(asked) is fib.ASK, bad
    assert _answer(fib.build([_route(None, 0, 2)], PLAIN).lookup("10.1.1.1")) == (2, RTN_UNICAST)


def test_cut_headers_raise_decode_error():
    with pytest.raises(DecodeError):
        rtdump.decode_route_entry(b"\0" * 11, 0, 11)
    with pytest.raises(DecodeError):
        rtdump.decode_rule(b"\0" * 11, 0, 11)


def test_lookups_ask_the_kernel_while_no_copy_can_be_made_and_copy_again_after_the_ttl():
    from tests.clock import Clock
    routes, rules = recorded()
    clock = Clock()
    asked, dumps = [], []

    def ask(keys):
        asked.extend(keys)
        return ["kernel"] * len(keys)

    def dump():
        dumps.append(clock.now)
        if len(dumps) == 1:
            raise OSError("the first dump fails")
        return None if len(dumps) == 2 else routes      # then too many routes, then a copy
    lookups = fib.Lookups(ask, clock, 5.0, routes=dump, rules=lambda: rules)
    keys = [("fd00:77:1::9", 0), ("10.77.1.9", 0)]
    assert lookups(keys) == ["kernel", "kernel"] and len(asked) == 2
    clock.now += 5
    assert lookups(keys) == ["kernel", "kernel"] and len(asked) == 4
    clock.now += 4.9
    lookups(keys)
    assert len(dumps) == 2 and len(asked) == 6            # the failed copy serves its ttl
    clock.now += 0.1
    got = lookups(keys)
    assert len(dumps) == 3 and got[1] == "kernel" and got[0].oif == ifindex_by_name()["va"]
    assert asked[6:] == [("10.77.1.9", 0)]                 # the fwmark rule: IPv4 asks


def test_each_prefix_answers_from_its_first_to_its_last_address_and_not_one_past():
    routes = [_route(None, 0, 2), _route("10.0.0.0", 8, 3), _route("10.1.0.0", 16, 4),
              _route("10.1.2.0", 24, None, rtype=RTN_UNREACHABLE),
              _route("10.1.2.3", 32, 3, table=255, rtype=RTN_LOCAL),
              _route("2001:db8::", 32, 5, family=AF_INET6), _route(None, 0, 6, family=AF_INET6)]
    rules = PLAIN + [rtdump.RuleEntry(AF_INET6, 32766, 254, 1, True)]
    copy = fib.build(routes, rules)
    want = {"9.255.255.255": (2, RTN_UNICAST), "10.0.0.0": (3, RTN_UNICAST),
            "10.0.255.255": (3, RTN_UNICAST), "10.1.0.0": (4, RTN_UNICAST),
            "10.1.1.255": (4, RTN_UNICAST), "10.1.2.0": None, "10.1.2.2": None,
            "10.1.2.3": (1, RTN_LOCAL), "10.1.2.4": None, "10.1.2.255": None,
            "10.1.3.0": (4, RTN_UNICAST), "10.1.255.255": (4, RTN_UNICAST),
            "10.2.0.0": (3, RTN_UNICAST), "10.255.255.255": (3, RTN_UNICAST),
            "11.0.0.0": (2, RTN_UNICAST), "255.255.255.254": (2, RTN_UNICAST),
            "0.255.255.255": fib.ASK, "1.0.0.0": (2, RTN_UNICAST), "224.0.0.1": fib.ASK,
            "255.255.255.255": fib.ASK,
            "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff": (6, RTN_UNICAST),
            "2001:db8::": (5, RTN_UNICAST),
            "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff": (5, RTN_UNICAST),
            "2001:db9::": (6, RTN_UNICAST), "::ffff:10.0.0.1": fib.ASK, "fe80::1": fib.ASK,
            "ff02::1": fib.ASK, "::": fib.ASK, "::1": (6, RTN_UNICAST),
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff": fib.ASK}
    assert {a: _answer(copy.lookup(a)) for a in want} == want


def test_an_unchanged_dump_keeps_its_copy_and_a_changed_one_makes_another():
    from tests.clock import Clock
    clock = Clock()
    table = [[_route(None, 0, 2)]]
    lookups = fib.Lookups(lambda keys: ["kernel"] * len(keys), clock, 5.0,
                          routes=lambda: list(table[0]), rules=lambda: list(PLAIN))
    first = lookups.fib()
    assert _answer(first.lookup("10.1.1.1")) == (2, RTN_UNICAST)
    clock.now += 5
    assert lookups.fib() is first                       # dumped again, equal: cut once
    table[0] = [_route(None, 0, 2), _route("10.0.0.0", 8, 3)]
    clock.now += 5
    assert lookups.fib() is not first
    assert [_answer(a) for a in lookups([("10.1.1.1", 0), ("11.1.1.1", 0)])] == [
        (3, RTN_UNICAST), (2, RTN_UNICAST)]


def test_a_hosts_few_addresses_are_asked_of_the_kernel_before_the_tables_are_copied(monkeypatch):
    """The copy costs an import and two dumps (14 flows, --once: ~2 M instructions of
    ~92 M): the first FIB_AFTER addresses go to the kernel, the rest to one copy."""
    from flowtop.enrich import iface
    made = []

    class Copy:
        def __init__(self, ask, clock, ttl):
            made.append(ask)

        def __call__(self, keys):
            return ["copy"] * len(keys)
    monkeypatch.setattr(fib, "Lookups", Copy)
    ifs = iface.Interfaces(route_sock_factory=None, links=dict, owners=dict)
    asked = []
    ifs._kernel_lookup = lambda keys: asked.extend(keys) or ["kernel"] * len(keys)
    first = [("10.0.0.%d" % i, 0) for i in range(iface.FIB_AFTER)]
    assert ifs._lookup_fn(first) == ["kernel"] * len(first) and made == []
    assert ifs._lookup_fn([("10.0.1.1", 0), ("10.0.1.2", 7)]) == ["copy", "copy"]
    assert ifs._lookup_fn([("10.0.1.3", 0)]) == ["copy"]
    assert made == [ifs._kernel_lookup] and asked == first    # one copy; it asks the kernel
