#!/usr/bin/env python3
"""atheris harness: rtnetlink and sock_diag replies.

    python3 fuzz/make_corpus.py
    python3 fuzz/fuzz_route.py fuzz/corpus/route -max_len=4096 -timeout=10 \
        -max_total_time=300 -artifact_prefix=fuzz/artifacts/

The first byte of an input picks the decoder (make_corpus.py writes seeds
that way): 0 an RTM_GETADDR dump, 1 an RTM_GETLINK dump, 2 RTM_GETROUTE
replies, 3 a sock_diag dump (the second byte is the protocol asked for).
The oracle: only DecodeError / NetlinkError escape, and every sock_diag
record is well-formed (text addresses, 16-bit ports).  FLOWTOP_FUZZ_KEEP_GOING
as in harness.py.
"""

import os
import sys

import atheris

import harness  # fuzz/harness.py: the entry point both harnesses share

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

with atheris.instrument_imports(include=["flowtop"]):
    from flowtop.netlink import route, rtlookup, sockdiag
    from flowtop.netlink.session import DumpState
    from flowtop.netlink.errors import DecodeError, NetlinkError

ACCEPTED = (DecodeError, NetlinkError)


def _quiet(fn, *args):
    try:
        return fn(*args)
    except ACCEPTED:
        return None


def check(data):
    if not data:
        return
    sel, data = data[0] % 4, data[1:]
    if sel == 0:
        _quiet(route.decode_addresses, data)
        _quiet(route.feed, data, route.RTM_NEWADDR, route.decode_addr, [], DumpState())
    elif sel == 1:
        _quiet(route.decode_links, data)
        _quiet(route.feed, data, route.RTM_NEWLINK, route.decode_link, [], DumpState())
    elif sel == 2:
        _quiet(rtlookup.route_replies, data)
        _quiet(rtlookup.decode_route_reply, data)
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
