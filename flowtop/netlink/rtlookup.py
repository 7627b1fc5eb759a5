"""rtnetlink route lookups (``ip -j route get``): the RTM_GETROUTE request,
the pure decoder of its answer, and ``route_get`` / the batched
``route_get_many`` over a NETLINK_ROUTE socket (``route.py`` holds what
the rtnetlink modules share).
"""

import errno
import struct

from ..tuples import named
from . import nlmsg, session
from .attrs import iter_attrs, pack_attr
from .errors import DecodeError, NetlinkError
from .route import TIMEOUT, _addr, _Borrowed, _U32, _u32, pack_address
from .session import next_seq
from .uapi import (
    NLM_F_REQUEST, NLMSG_ERROR, RTA_DST, RTA_GATEWAY, RTA_IIF, RTA_MARK, RTA_OIF, RTA_PREFSRC,
    RTA_SRC, RTA_TABLE, RTM_F_LOOKUP_TABLE, RTM_GETROUTE, RTM_NEWROUTE, RTMSG_LEN,
    RTN_BLACKHOLE, RTN_PROHIBIT, RTN_THROW, RTN_UNREACHABLE,
)

# struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
RTMSG = struct.Struct("=BBBBBBBBI")

RouteInfo = named("RouteInfo", "oif iif prefsrc gateway table type dst")
RouteInfo.__doc__ = """The kernel's answer to one RTM_GETROUTE: ``oif``/``iif`` ifindexes
(None when absent), ``prefsrc``/``gateway``/``dst`` address text or None,
``table`` (RTA_TABLE, else rtm_table) and ``type`` (RTN_*)."""

# errnos that mean "no route for this lookup", not "the request was wrong":
# unreachable/prohibit/blackhole/throw routes and non-local sources.
LOOKUP_ERRORS = frozenset((errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EINVAL,
                           errno.EACCES, errno.EAGAIN))
# route types that are a "no route" answer (IPv6 may answer with one of these)
NO_ROUTE_TYPES = frozenset((RTN_UNREACHABLE, RTN_PROHIBIT, RTN_BLACKHOLE, RTN_THROW))

# Each RTM_GETROUTE reply costs ~830 bytes of receive buffer (skb truesize):
# 256 fit in the default 208 KiB, the rest of a bigger send would be dropped
# (ENOBUFS).  Batches are cut to this size, so even a socket that could not
# grow its buffer keeps every reply.
BATCH = 128


def route_request(seq, dst, src=None, mark=None, iif=None, flags=RTM_F_LOOKUP_TABLE):
    """RTM_GETROUTE for one lookup, like ``ip route get DST [from SRC]
    [mark MARK] [iif IIF]``.  ``dst``/``src`` are address text of the same
    family; ``mark`` the fwmark (u32); ``iif`` an ifindex (an input-route
    lookup: what the kernel would do with a packet arriving there, which
    needs ``src``).  ``flags`` are rtm_flags: RTM_F_LOOKUP_TABLE (the
    default, as ``ip route get``: the reply names the table the lookup
    used), RTM_F_FIB_MATCH (the matching FIB entry instead).  Raises ValueError for a bad address or mix of
    families."""
    family, raw_dst = pack_address(dst)
    body = [b"", pack_attr(RTA_DST, raw_dst)]
    src_len = 0
    if src is not None:
        sfamily, raw_src = pack_address(src)
        if sfamily != family:
            raise ValueError("source %r and destination %r differ in family" % (src, dst))
        body.append(pack_attr(RTA_SRC, raw_src))
        src_len = len(raw_src) * 8
    if mark is not None:
        body.append(pack_attr(RTA_MARK, _U32.pack(mark & 0xFFFFFFFF)))
    if iif is not None:
        body.append(pack_attr(RTA_IIF, _U32.pack(iif & 0xFFFFFFFF)))
    body[0] = RTMSG.pack(family, len(raw_dst) * 8, src_len, 0, 0, 0, 0, 0, flags)
    return nlmsg.pack(RTM_GETROUTE, NLM_F_REQUEST, seq, b"".join(body))


def decode_route(buf, off, end):
    """An RTM_NEWROUTE body -> RouteInfo."""
    if end - off < RTMSG_LEN:
        raise DecodeError("rtmsg cut short: %d bytes" % (end - off))
    family, _dl, _sl, _tos, table, _proto, _scope, rtype, _flags = RTMSG.unpack_from(buf, off)
    oif = iif = prefsrc = gateway = dst = None
    for atype, vs, ve in iter_attrs(buf, off + RTMSG_LEN, end):
        if atype == RTA_OIF:
            oif = _u32(buf, vs, ve)
        elif atype == RTA_IIF:
            iif = _u32(buf, vs, ve)
        elif atype == RTA_PREFSRC:
            prefsrc = _addr(buf, vs, ve, family)
        elif atype == RTA_GATEWAY:
            gateway = _addr(buf, vs, ve, family)
        elif atype == RTA_DST:
            dst = _addr(buf, vs, ve, family)
        elif atype == RTA_TABLE:
            table = _u32(buf, vs, ve)
    return RouteInfo(oif, iif, prefsrc, gateway, table, rtype, dst)


def route_answer(mtype, chunk, body, mend):
    """One reply to an RTM_GETROUTE as ``(RouteInfo or None, errno)``: a
    route (errno 0), the kernel's error (RouteInfo None), an ACK (None, 0),
    EBADMSG for a malformed body; None for a message of another type."""
    if mtype == RTM_NEWROUTE:
        try:
            return decode_route(chunk, body, mend), 0
        except DecodeError:
            return None, errno.EBADMSG
    if mtype == NLMSG_ERROR:
        try:
            err = nlmsg.error_code(chunk, body, mend)
        except DecodeError:
            return None, errno.EBADMSG
        return None, (-err if err < 0 else 0)
    return None


def route_replies(chunk, port=None):
    """The answers in one datagram of RTM_GETROUTE replies, as a list of
    ``(seq, RouteInfo or None, errno)`` (see ``route_answer``).  Raises
    DecodeError for a lying message header."""
    out = []
    for mtype, _flags, mseq, mpid, body, mend in nlmsg.iter_messages(chunk):
        if port is not None and mpid != port:
            continue
        answer = route_answer(mtype, chunk, body, mend)
        if answer is not None:
            out.append((mseq,) + answer)
    return out


def decode_route_reply(data, seq=None):
    """A recorded reply to one RTM_GETROUTE -> RouteInfo, None for a lookup
    error (LOOKUP_ERRORS, or a route of a NO_ROUTE_TYPES type); NetlinkError
    for another error; DecodeError when malformed or when no answer is in
    it."""
    answers = [a for a in route_replies(data)
               if (seq is None or a[0] == seq) and (a[1] is not None or a[2])]
    if not answers:
        raise DecodeError("no RTM_GETROUTE answer in %d bytes" % len(data))
    _s, info, err = answers[0]
    if err == errno.EBADMSG:
        raise DecodeError("malformed RTM_GETROUTE answer")
    return _result(info, err)


def _result(info, err):
    if info is None and not err:
        raise NetlinkError(errno.EBADMSG, "an ACK where a route was expected")
    if err:
        if err in LOOKUP_ERRORS:
            return None
        raise NetlinkError(err)
    if info.type in NO_ROUTE_TYPES:
        return None
    return info


def route_get(dst, src=None, mark=None, iif=None, sock=None, flags=RTM_F_LOOKUP_TABLE):
    """One route lookup (``ip route get``): RouteInfo, or None when there is
    no route (ENETUNREACH, EHOSTUNREACH, EINVAL, EACCES, EAGAIN, or an
    unreachable/prohibit/blackhole/throw answer).  Other kernel errors raise
    NetlinkError; socket.timeout (an OSError) if the kernel stays silent."""
    (result,) = route_get_many([(dst, src, mark, iif)], sock, flags)
    if isinstance(result, NetlinkError):
        raise result
    return result


def route_get_many(lookups, sock=None, flags=RTM_F_LOOKUP_TABLE, batch=BATCH):
    """Many route lookups with few syscalls.

    ``lookups``: iterable of ``(dst, src, mark, iif)`` tuples (None for what
    is not given).  The requests go out ``batch`` at a time in one send each;
    the replies are matched by sequence number.  Returns a list aligned with
    ``lookups``: RouteInfo, None (no route, as ``route_get``), or a
    NetlinkError instance for another kernel error (ENODEV for a vanished
    iif, ETIMEDOUT when the kernel stayed silent, EBADMSG when its reply
    was malformed).  A lookup with a bad
    address (ValueError) gets
    NetlinkError(EINVAL) without being sent.  Replies the kernel dropped
    for want of receive buffer are asked again in smaller batches.
    """
    lookups = list(lookups)
    results = [None] * len(lookups)
    todo = list(range(len(lookups)))
    with _Borrowed(sock) as s:
        for _attempt in range(4):
            lost = []
            for start in range(0, len(todo), batch):
                lost.extend(_batch(s, lookups, todo[start:start + batch], results, flags))
            if not lost:
                break
            todo = lost
            batch = max(1, batch // 4)
    return results


def _batch(sock, lookups, indexes, results, flags):
    """One send of the lookups at ``indexes``, ended by a NOOP+ACK (see
    ``session.batch``).  The indexes whose replies were dropped (ENOBUFS)
    are returned (their results say ENOBUFS).  ``BATCH`` keeps a batch's
    replies within even the default receive buffer, so that stays the
    exception."""
    requests = {}
    for i in indexes:
        dst, src, mark, iif = lookups[i]
        seq = next_seq()
        try:
            requests[seq] = (route_request(seq, dst, src, mark, iif, flags), i)
        except ValueError:
            results[i] = NetlinkError(errno.EINVAL)

    def answer(i, mtype, chunk, body, mend):
        reply = route_answer(mtype, chunk, body, mend)
        if reply is None:
            return False                # not an answer to a lookup
        try:
            results[i] = _result(*reply)
        except NetlinkError as exc:
            results[i] = exc

    left, lost = session.batch(sock, requests, answer, ack_end=True, timeout=TIMEOUT)
    for i in left:
        results[i] = NetlinkError(lost)
    return left if lost == errno.ENOBUFS else []
