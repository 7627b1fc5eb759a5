#!/usr/bin/env python3
"""atheris harness: rtnetlink and sock_diag replies.

    python3 fuzz/make_corpus.py
    python3 fuzz/fuzz_route.py fuzz/corpus/route -max_len=4096 -timeout=10 \
        -max_total_time=300 -artifact_prefix=fuzz/artifacts/

The first byte of an input picks the decoder (make_corpus.py writes seeds
that way): 0 an RTM_GETADDR dump, 1 an RTM_GETLINK dump, 2 RTM_GETROUTE
replies, 3 a sock_diag dump (the second byte is the protocol asked for),
4 a dump of the routing tables, 5 of the policy rules (each then copied by
``enrich.fib.build`` beside the recorded other half, and looked up), 6 of the
neighbour tables (then ``neigh.lladdr_of``).  The oracle: only DecodeError /
NetlinkError escape the decoders, nothing escapes the copy and its lookups,
and every sock_diag record is well-formed (text addresses, 16-bit ports).
FLOWTOP_FUZZ_KEEP_GOING as in harness.py.
"""

import os
import sys

import atheris

import harness  # fuzz/harness.py: the entry point both harnesses share

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

with atheris.instrument_imports(include=["flowtop"]):
    from flowtop.enrich import fib
    from flowtop.netlink import neigh, route, rtdump, rtlookup, sockdiag
    from flowtop.netlink.session import DumpState
    from flowtop.netlink.errors import DecodeError, NetlinkError
    from flowtop.netlink.uapi import RTM_NEWNEIGH, RTM_NEWROUTE, RTM_NEWRULE

ACCEPTED = (DecodeError, NetlinkError)
FIXTURES = os.path.join(os.path.dirname(HERE), "tests", "fixtures")
LOOKED_UP = ("10.77.1.9", "8.8.8.8", "127.0.0.1", "fd00:77:1::9", "::1", "fe80::1")


def _recorded(name, msg_type, decode):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return route.decode_dump(f.read(), msg_type, decode)[0]


ROUTES = _recorded("route-routes.bin", RTM_NEWROUTE, rtdump.decode_route_entry)
RULES = _recorded("route-rules.bin", RTM_NEWRULE, rtdump.decode_rule)


def _quiet(fn, *args):
    try:
        return fn(*args)
    except ACCEPTED:
        return None


def check(data):
    if not data:
        return
    sel, data = data[0] % 7, data[1:]
    if sel == 0:
        _quiet(route.decode_addresses, data)
        _quiet(route.feed, data, route.RTM_NEWADDR, route.decode_addr, [], DumpState())
    elif sel == 1:
        _quiet(route.decode_links, data)
        _quiet(route.feed, data, route.RTM_NEWLINK, route.decode_link, [], DumpState())
    elif sel == 2:
        _quiet(rtlookup.route_replies, data)
        _quiet(rtlookup.decode_route_reply, data)
    elif sel in (4, 5):
        routes = _quiet(route.decode_dump, data, *(
            (RTM_NEWROUTE, rtdump.decode_route_entry) if sel == 4 else
            (RTM_NEWRULE, rtdump.decode_rule)))
        if routes is not None:
            copy = fib.build(routes[0], RULES) if sel == 4 else fib.build(ROUTES, routes[0])
            for addr in LOOKED_UP:
                copy.lookup(addr)
    elif sel == 6:
        got = _quiet(route.decode_dump, data, RTM_NEWNEIGH, neigh.decode_neigh)
        if got is not None:
            neigh.lladdr_of(got[0])
    else:
        if not data:
            return
        proto, data = data[0], data[1:]
        got = _quiet(sockdiag.decode_dump, data, proto)
        for r in (got[0] if got else ()):
            assert len(r) == len(sockdiag.SOCK_FIELDS), r
            assert isinstance(r[2], str) and isinstance(r[4], str), r
            assert 0 <= r[3] <= 0xFFFF and 0 <= r[5] <= 0xFFFF, r
        seq = int.from_bytes(data[12:16], sys.byteorder) if len(data) >= 16 else None
        _quiet(sockdiag.feed, data, proto, [], DumpState(), seq, seq)


if __name__ == "__main__":
    harness.main(check)
