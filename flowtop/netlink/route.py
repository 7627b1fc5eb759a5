"""rtnetlink (NETLINK_ROUTE): this host's addresses, its interface names, and
route lookups (the neighbour tables are in ``neigh.py``) (what ``ip -j addr``, ``ip -j link`` and ``ip -j route get``
show).

Two layers, as for ctnetlink:

* pure builders and decoders - bytes in, values out, ``DecodeError`` on a
  length that lies: ``*_request`` build messages, ``decode_addr`` /
  ``decode_link`` / ``decode_route`` read one message body, ``feed``,
  ``decode_dump`` and ``route_replies`` walk received datagrams;
* thin functions that talk to the kernel over a
  ``NetlinkSocket(NETLINK_ROUTE)``: ``local_addresses``, ``interfaces``,
  ``route_get`` and the batched ``route_get_many``.

Unlike ctnetlink, rtnetlink integers (RTA_OIF, RTA_TABLE, RTA_MARK, the
ifindex in ifaddrmsg/ifinfomsg) are in host byte order; addresses are raw
network-order bytes, turned into ``inet_ntop`` text here.

The protocol rules (sequence and port id, DONE, ERROR, DUMP_INTR and its
retries, ENOBUFS, the NOOP+ACK end of a batch) live in ``session.py``.
"""

import errno
import socket
import struct
from collections import namedtuple

from . import nlmsg, session
from .attrs import iter_attrs, pack_attr
from .errors import DecodeError, NetlinkError
from .session import DumpState, MAX_DUMP_RETRIES, next_seq
from .uapi import (
    AF_INET, AF_INET6, AF_UNSPEC, IFA_ADDRESS, IFA_LABEL, IFA_LOCAL, IFADDRMSG_LEN,
    IFINFOMSG_LEN, IFLA_EXT_MASK, IFLA_IFNAME, NETLINK_ROUTE, NLM_F_DUMP,
    NLM_F_REQUEST, NLMSG_ERROR,
    RTA_DST, RTA_GATEWAY, RTA_IIF, RTA_MARK, RTA_OIF, RTA_PREFSRC, RTA_SRC, RTA_TABLE,
    RTEXT_FILTER_SKIP_STATS, RTM_F_LOOKUP_TABLE, RTM_GETADDR, RTM_GETLINK, RTM_GETROUTE,
    RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE, RTMSG_LEN, RTN_BLACKHOLE, RTN_PROHIBIT,
    RTN_THROW, RTN_UNREACHABLE,
)

# struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
RTMSG = struct.Struct("=BBBBBBBBI")
# struct ifaddrmsg: family, prefixlen, flags, scope, index
IFADDRMSG = struct.Struct("=BBBBI")
# struct ifinfomsg: family, pad, type, index, flags, change
IFINFOMSG = struct.Struct("=BBHiII")
_U32 = struct.Struct("=I")

AddrInfo = namedtuple("AddrInfo", "family prefixlen index address label")
AddrInfo.__doc__ = """One configured address (RTM_NEWADDR): ``address`` is IFA_LOCAL when
present (the local end of a point-to-point link) else IFA_ADDRESS, as text;
``index`` the owning interface; ``label`` IFA_LABEL (IPv4 only) or None."""

LinkInfo = namedtuple("LinkInfo", "index name flags")
LinkInfo.__doc__ = """One interface (RTM_NEWLINK): ifindex, raw IFLA_IFNAME (not yet
sanitized) and the IFF_* flags."""

RouteInfo = namedtuple("RouteInfo", "oif iif prefsrc gateway table type dst")
RouteInfo.__doc__ = """The kernel's answer to one RTM_GETROUTE: ``oif``/``iif`` ifindexes
(None when absent), ``prefsrc``/``gateway``/``dst`` address text or None,
``table`` (RTA_TABLE, else rtm_table) and ``type`` (RTN_*)."""

# errnos that mean "no route for this lookup", not "the request was wrong":
# unreachable/prohibit/blackhole/throw routes and non-local sources.
LOOKUP_ERRORS = frozenset((errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EINVAL,
                           errno.EACCES, errno.EAGAIN))
# route types that are a "no route" answer (IPv6 may answer with one of these)
NO_ROUTE_TYPES = frozenset((RTN_UNREACHABLE, RTN_PROHIBIT, RTN_BLACKHOLE, RTN_THROW))

RCVBUF = 1 << 21          # asked for (SO_RCVBUFFORCE as root); replies queue here
# Each RTM_GETROUTE reply costs ~830 bytes of receive buffer (skb truesize):
# 256 fit in the default 208 KiB, the rest of a bigger send would be dropped
# (ENOBUFS).  Batches are cut to this size, so even a socket that could not
# grow its buffer keeps every reply.
BATCH = 128
TIMEOUT = 1.0             # seconds a receive may wait for the kernel


# --- addresses as text <-> bytes -----------------------------------------------------
def family_of(addr):
    """AF_INET6 for text with a ':' in it, else AF_INET."""
    return AF_INET6 if ":" in addr else AF_INET


def pack_address(addr):
    """(family, raw bytes) of an address in text form; ValueError if it is
    not one."""
    if not isinstance(addr, str):
        raise ValueError("not an IP address: %r" % (addr,))
    family = family_of(addr)
    try:
        return family, socket.inet_pton(family, addr)
    except (OSError, TypeError) as exc:
        raise ValueError("not an IP address: %r" % (addr,)) from exc


def _addr(buf, start, end, family):
    size = end - start
    if size == 4:
        return socket.inet_ntop(socket.AF_INET, bytes(buf[start:end]))
    if size == 16:
        return socket.inet_ntop(socket.AF_INET6, bytes(buf[start:end]))
    raise DecodeError("address attribute of %d bytes (family %d)" % (size, family))


def _u32(buf, start, end):
    if end - start != 4:
        raise DecodeError("u32 attribute of %d bytes" % (end - start))
    return _U32.unpack_from(buf, start)[0]


def _string(buf, start, end):
    raw = bytes(buf[start:end])
    nul = raw.find(b"\0")
    if nul >= 0:
        raw = raw[:nul]
    return raw.decode("utf-8", "replace")


# --- requests ----------------------------------------------------------------------
def addr_dump_request(seq, family=AF_UNSPEC):
    """RTM_GETADDR dump of every address (``family`` AF_UNSPEC: both)."""
    return nlmsg.pack(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq,
                      IFADDRMSG.pack(family, 0, 0, 0, 0))


def link_dump_request(seq, family=AF_UNSPEC):
    """RTM_GETLINK dump of every interface, without the per-interface
    statistics (IFLA_EXT_MASK RTEXT_FILTER_SKIP_STATS; older kernels ignore
    the bit)."""
    return nlmsg.pack(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq,
                      IFINFOMSG.pack(family, 0, 0, 0, 0, 0)
                      + pack_attr(IFLA_EXT_MASK, _U32.pack(RTEXT_FILTER_SKIP_STATS)))


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


# --- one message body -----------------------------------------------------------------
def decode_addr(buf, off, end):
    """An RTM_NEWADDR body -> AddrInfo, or None when it carries no address."""
    if end - off < IFADDRMSG_LEN:
        raise DecodeError("ifaddrmsg cut short: %d bytes" % (end - off))
    family, prefixlen, _flags, _scope, index = IFADDRMSG.unpack_from(buf, off)
    local = address = label = None
    for atype, vs, ve in iter_attrs(buf, off + IFADDRMSG_LEN, end):
        if atype == IFA_LOCAL:
            local = _addr(buf, vs, ve, family)
        elif atype == IFA_ADDRESS:
            address = _addr(buf, vs, ve, family)
        elif atype == IFA_LABEL:
            label = _string(buf, vs, ve)
    text = local if local is not None else address
    if text is None:
        return None
    return AddrInfo(family, prefixlen, index, text, label)


def decode_link(buf, off, end):
    """An RTM_NEWLINK body -> LinkInfo (name None when IFLA_IFNAME is absent)."""
    if end - off < IFINFOMSG_LEN:
        raise DecodeError("ifinfomsg cut short: %d bytes" % (end - off))
    _family, _pad, _type, index, flags, _change = IFINFOMSG.unpack_from(buf, off)
    name = None
    for atype, vs, ve in iter_attrs(buf, off + IFINFOMSG_LEN, end):
        if atype == IFLA_IFNAME:
            name = _string(buf, vs, ve)
    return LinkInfo(index, name, flags)


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


# --- datagrams ------------------------------------------------------------------------
def feed(chunk, msg_type, decode, out, state, seq=None, port=None):
    """Apply one received datagram of a dump to ``out`` (a list):
    ``session.feed``.  Messages of ``msg_type`` are decoded with
    ``decode(buf, off, end)`` and appended unless it returns None.  Returns
    the offset just past NLMSG_DONE (``state.done`` set), else ``len(chunk)``.
    """
    return session.feed(chunk, msg_type, decode, out, state, seq, port)


def decode_dump(data, msg_type, decode, seq=None, port=None):
    """Every value of a whole recorded dump (the datagrams as received, one
    after the other).  Returns (values, DumpState).  Raises DecodeError when
    it does not end with NLMSG_DONE (cut short) or has bytes after it."""
    out = []
    state = DumpState()
    stop = feed(data, msg_type, decode, out, state, seq, port)
    if not state.done:
        raise DecodeError("dump cut short: no NLMSG_DONE in %d bytes" % len(data))
    if stop < len(data):
        raise DecodeError("%d bytes after the end of the dump" % (len(data) - stop))
    return out, state


def decode_addresses(data, seq=None, port=None):
    """A recorded RTM_GETADDR dump -> list of AddrInfo."""
    return decode_dump(data, RTM_NEWADDR, decode_addr, seq, port)[0]


def decode_links(data, seq=None, port=None):
    """A recorded RTM_GETLINK dump -> list of LinkInfo."""
    return decode_dump(data, RTM_NEWLINK, decode_link, seq, port)[0]


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


# --- talking to the kernel --------------------------------------------------------------
def open_socket(rcvbuf=RCVBUF):
    """A NETLINK_ROUTE socket with room for a batch of route replies."""
    from .socket import NetlinkSocket
    sock = NetlinkSocket(protocol=NETLINK_ROUTE, rcvbuf=rcvbuf)
    sock.settimeout(TIMEOUT)
    return sock


class _Borrowed:
    """``with _Borrowed(sock) as s``: ``sock``, or a fresh socket closed after."""

    def __init__(self, sock):
        self.sock = sock
        self.own = sock is None

    def __enter__(self):
        if self.own:
            self.sock = open_socket()
        return self.sock

    def __exit__(self, *exc):
        if self.own:
            self.sock.close()


def _dump(sock, request, msg_type, decode, retries=MAX_DUMP_RETRIES):
    return session.dump(sock, request, msg_type, decode, retries)


def addresses(sock=None, family=AF_UNSPEC):
    """Every address configured in this network namespace, as AddrInfo."""
    with _Borrowed(sock) as s:
        return _dump(s, lambda seq: addr_dump_request(seq, family), RTM_NEWADDR, decode_addr)


def local_addresses(sock=None):
    """Every address of this host (namespace), IPv4 and IPv6, as text:
    IFA_LOCAL, else IFA_ADDRESS, of each RTM_GETADDR entry."""
    return frozenset(a.address for a in addresses(sock))


def links(sock=None):
    """Every interface as LinkInfo (raw names)."""
    with _Borrowed(sock) as s:
        return _dump(s, link_dump_request, RTM_NEWLINK, decode_link)


def interfaces(sock=None):
    """``{ifindex: name}`` of every interface; names pass text.sanitize."""
    from ..text import sanitize
    return {li.index: sanitize(li.name) for li in links(sock) if li.name is not None}


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
