"""netlink/sockdiag.py: its one-struct-call walk against its plain twin,
``session.feed`` with ``sockdiag.decoder``, on recorded dumps."""

import base64
import json
import os
import random

from flowtop.netlink import session, sockdiag
from flowtop.netlink.errors import DecodeError, NetlinkError
from flowtop.netlink.uapi import NLM_F_DUMP_INTR

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "sockdiag-dump.json")


def outcome(feed, data):
    out, state = [], session.DumpState()
    try:
        feed(data, out, state)
        exc = None
    except (DecodeError, NetlinkError) as e:
        exc = (type(e), getattr(e, "errno", None))
    return out, (state.done, state.interrupted, state.dropped, state.foreign, state.unknown), exc


def flagged(raw):
    """``raw`` with NLM_F_DUMP_INTR set on every socket message."""
    b = bytearray(raw)
    for mtype, _f, _s, _p, body, _e in sockdiag.nlmsg.iter_messages(raw):
        if mtype != sockdiag.SOCK_DIAG_BY_FAMILY:
            continue
        off = body - 16 + 6                                  # nlmsg_flags
        flags = int.from_bytes(b[off:off + 2], "little") | NLM_F_DUMP_INTR
        b[off:off + 2] = flags.to_bytes(2, "little")
    return bytes(b)


def test_the_fast_walk_gives_what_the_session_walk_gives_on_recorded_and_damaged_dumps():
    with open(FIXTURE) as f:
        dumps = [(base64.b64decode(d["data"]), d["proto"]) for d in json.load(f)["dumps"]]
    rnd = random.Random(13)
    checked = 0
    for raw, proto in dumps:
        seq = port = None
        if len(raw) >= 16:
            seq, port = sockdiag.nlmsg.NLMSGHDR.unpack_from(raw)[3:5]
        variants = [raw, flagged(raw)] + [raw[:cut] for cut in range(0, len(raw), 7)]
        for _ in range(30):
            b = bytearray(raw)
            for _ in range(3):
                if b:
                    b[rnd.randrange(len(b))] = rnd.randrange(256)
            variants.append(bytes(b))
        for data in variants:
            for s, p in ((None, None), (seq, port), (seq, 1)):
                fast = outcome(lambda d, o, st: sockdiag.feed(d, proto, o, st, s, p), data)
                plain = outcome(lambda d, o, st: session.feed(
                    d, sockdiag.SOCK_DIAG_BY_FAMILY, sockdiag.decoder(proto), o, st, s, p), data)
                assert fast == plain, (proto, len(data))
                checked += 1
    assert checked > 100
