"""rtnetlink dumps of the routing tables and of the policy rules (what ``ip -j
route show table all`` and ``ip -j rule`` list), read by ``enrich/fib.py``
to answer route lookups without a round trip to the kernel per address.

Pure decoders (bytes in, values out, DecodeError on a length that lies) and
two thin functions over a NETLINK_ROUTE socket, as in ``route.py``.  The
decoders report what a lookup in user space cannot reproduce (multipath,
nexthop objects, source-specific routes, selectors of a rule) rather than
judge it: ``enrich/fib.py`` decides.
"""

import struct

from ..tuples import named
from . import nlmsg, session
from .attrs import iter_attrs
from .errors import DecodeError, DumpInterrupted
from .route import _addr, _Borrowed, _dump, _u32
from .session import MAX_DUMP_RETRIES
from .uapi import (
    AF_UNSPEC, FIB_RULE_HDR_LEN, FRA_PAD, FRA_PRIORITY, FRA_PROTOCOL, FRA_SUPPRESS_PREFIXLEN,
    FRA_TABLE,
    NLM_F_DUMP, NLM_F_REQUEST, RTA_DST, RTA_MULTIPATH, RTA_NH_ID, RTA_OIF, RTA_PRIORITY,
    RTA_TABLE, RTM_GETROUTE, RTM_GETRULE, RTM_NEWROUTE, RTM_NEWRULE, RTMSG_LEN,
)

# struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
RTMSG = struct.Struct("=BBBBBBBBI")
# struct fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action, flags
FIB_RULE_HDR = struct.Struct("=BBBBBBBBI")

RouteEntry = named("RouteEntry", "family dst_len dst table type oif priority "
                                 "src_len tos flags multipath")
RouteEntry.__doc__ = """One route of a table (RTM_NEWROUTE of a dump): ``dst`` text (None for
a default route), ``table`` (RTA_TABLE, else rtm_table), ``type`` RTN_*, ``oif``
(None when absent), ``priority`` the metric (RTA_PRIORITY, 0 when absent);
``src_len``, ``tos`` and ``flags`` as rtmsg carries them; ``multipath`` true
when the route has several nexthops or a nexthop object (RTA_MULTIPATH,
RTA_NH_ID)."""

RuleEntry = named("RuleEntry", "family priority table action plain")
RuleEntry.__doc__ = """One policy rule (RTM_NEWRULE): ``priority`` (0 when absent),
``table``, ``action`` FR_ACT_*; ``plain`` true when it selects every packet (no
prefix, tos, flags, suppress_prefixlength, or any attribute but priority, table and
protocol)."""

_RULE_PLAIN_ATTRS = frozenset((FRA_PRIORITY, FRA_TABLE, FRA_PROTOCOL, FRA_PAD))


def route_dump_request(seq, family=AF_UNSPEC):
    """RTM_GETROUTE dump of every table (``family`` AF_UNSPEC: both)."""
    return nlmsg.pack(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq,
                      RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0))


def rule_dump_request(seq, family=AF_UNSPEC):
    """RTM_GETRULE dump of every policy rule."""
    return nlmsg.pack(RTM_GETRULE, NLM_F_REQUEST | NLM_F_DUMP, seq,
                      FIB_RULE_HDR.pack(family, 0, 0, 0, 0, 0, 0, 0, 0))


def decode_route_entry(buf, off, end):
    """An RTM_NEWROUTE body of a dump -> RouteEntry."""
    if end - off < RTMSG_LEN:
        raise DecodeError("rtmsg cut short: %d bytes" % (end - off))
    (family, dst_len, src_len, tos, table, _proto, _scope, rtype,
     flags) = RTMSG.unpack_from(buf, off)
    dst = oif = None
    priority = 0
    multipath = False
    for atype, vs, ve in iter_attrs(buf, off + RTMSG_LEN, end):
        if atype == RTA_DST:
            dst = _addr(buf, vs, ve, family)
        elif atype == RTA_OIF:
            oif = _u32(buf, vs, ve)
        elif atype == RTA_TABLE:
            table = _u32(buf, vs, ve)
        elif atype == RTA_PRIORITY:
            priority = _u32(buf, vs, ve)
        elif atype == RTA_MULTIPATH or atype == RTA_NH_ID:
            multipath = True
    return RouteEntry(family, dst_len, dst, table, rtype, oif, priority, src_len, tos, flags,
                      multipath)


def decode_rule(buf, off, end):
    """An RTM_NEWRULE body -> RuleEntry."""
    if end - off < FIB_RULE_HDR_LEN:
        raise DecodeError("fib_rule_hdr cut short: %d bytes" % (end - off))
    family, dst_len, src_len, tos, table, _r1, _r2, action, flags = FIB_RULE_HDR.unpack_from(
        buf, off)
    priority = 0
    plain = not (dst_len or src_len or tos or flags)
    for atype, vs, ve in iter_attrs(buf, off + FIB_RULE_HDR_LEN, end):
        if atype == FRA_PRIORITY:
            priority = _u32(buf, vs, ve)
        elif atype == FRA_TABLE:
            table = _u32(buf, vs, ve)
        elif atype == FRA_SUPPRESS_PREFIXLEN:
            # always dumped; 0xffffffff (-1) is "unset" (wg-quick sets 0)
            plain = plain and _u32(buf, vs, ve) == 0xFFFFFFFF
        elif atype not in _RULE_PLAIN_ATTRS:
            plain = False
    return RuleEntry(family, priority, table, action, plain)


def routes(limit=None, family=AF_UNSPEC):
    """Every route of every table, as RouteEntry; None when there are more
    than ``limit`` (a full BGP table: the dump is read on a socket of its
    own, closed then with the rest unread)."""
    for attempt in range(MAX_DUMP_RETRIES + 1):
        with _Borrowed(None) as s:
            out = []
            try:
                for values in session.iter_dump(s, lambda seq: route_dump_request(seq, family),
                                                RTM_NEWROUTE, decode_route_entry):
                    out.extend(values)
                    if limit is not None and len(out) > limit:
                        return None
                return out
            except DumpInterrupted:
                if attempt == MAX_DUMP_RETRIES:
                    raise
    return None   # pragma: no cover


def rules(sock=None, family=AF_UNSPEC):
    """Every policy rule, as RuleEntry."""
    with _Borrowed(sock) as s:
        return _dump(s, lambda seq: rule_dump_request(seq, family), RTM_NEWRULE, decode_rule)
