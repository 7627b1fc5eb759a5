"""sock_diag (NETLINK_SOCK_DIAG): this namespace's TCP/UDP/UDP-lite/raw
sockets, as ``ss`` reads them.

Two layers, as for ctnetlink: ``dump_request`` and ``feed``/``decode_dump``
are pure (bytes in, socket records out, ``DecodeError`` for a message header
whose length lies, a short or foreign-family body counted and dropped);
``dump`` talks to the kernel over a ``NetlinkSocket(NETLINK_SOCK_DIAG)``
through ``session.py``, where the protocol rules live.

A socket record is a plain tuple, ``SOCK_FIELDS`` order (one tuple per
socket, built in one step: the reader runs every tick over every socket)::

    (proto, state, laddr, lport, raddr, rport, uid, inode)

``proto`` is the IPPROTO_* the dump was asked for (IPPROTO_RAW for raw
sockets, whose ``lport`` is their protocol number), ``state`` the kernel's
TCP_* state (UDP: TCP_ESTABLISHED when connected, else TCP_CLOSE),
addresses are text with IPv4-mapped IPv6 addresses (``::ffff:a.b.c.d``)
written as plain IPv4, ports ints, ``inode`` 0 for a socket without a file
(TIME_WAIT, not yet accepted, orphaned).
"""

import _socket as socket  # not socket.py (see netlink/socket.py)
import struct

from ..memo import Memo
from . import nlmsg, session
from .errors import DecodeError
from .session import DumpState, MAX_DUMP_RETRIES
from .uapi import (
    AF_INET, AF_INET6, INET_DIAG_MSG_LEN, INET_DIAG_NOCOOKIE, IPPROTO_RAW, IPPROTO_TCP,
    IPPROTO_UDP, IPPROTO_UDPLITE, NETLINK_SOCK_DIAG, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
    NLMSG_HDRLEN,
    SOCK_DIAG_BY_FAMILY, TCP_CLOSING, TCP_ESTABLISHED, TCP_TIME_WAIT,
)

SOCK_FIELDS = ("proto", "state", "laddr", "lport", "raddr", "rport", "uid", "inode")

# Every state but TIME_WAIT and NEW_SYN_RECV: those never have an inode.
STATES = sum(1 << s for s in range(TCP_ESTABLISHED, TCP_CLOSING + 1)) & ~(1 << TCP_TIME_WAIT)
PROTOCOLS = (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE, IPPROTO_RAW)
FAMILIES = (AF_INET, AF_INET6)
TIMEOUT = 2.0             # seconds a receive may wait for the kernel

# struct inet_diag_req_v2: family, protocol, ext, pad (raw protocol), states,
# then inet_diag_sockid: sport, dport (be16), src[16], dst[16], if, cookie[2]
REQ_V2 = struct.Struct("=BBBBIHH16s16sIII")
# struct inet_diag_msg up to its inode, in one read: family state (timer
# retrans) sport dport src dst (if cookie[2] expires rqueue wqueue) uid
# inode.  Ports are be16, read in host order and swapped with ntohs.
_MSG = struct.Struct("=BB2xHH16s16s24xII")
assert _MSG.size == INET_DIAG_MSG_LEN
# The same with the nlmsghdr before it (len type flags seq pid): ``feed``
# reads a plain socket message in one struct call.
_HDR_MSG = struct.Struct("=IHHII" + _MSG.format[1:])
MIN_LEN = NLMSG_HDRLEN + INET_DIAG_MSG_LEN

_MAPPED = b"\0" * 10 + b"\xff\xff"


def address_text(packed):
    """Text of a 4- or 16-byte address; IPv4-mapped IPv6 as plain IPv4."""
    if len(packed) == 16:
        if packed[:12] == _MAPPED:
            return socket.inet_ntop(socket.AF_INET, packed[12:])
        return socket.inet_ntop(socket.AF_INET6, packed)
    return socket.inet_ntop(socket.AF_INET, packed)


def _v4_text(raw):
    return address_text(raw[:4])


def AddressText(v4):
    """Raw 16-byte inet_diag address -> text, memoised (a host has few
    addresses and many sockets).  ``v4``: the address is the first 4 bytes.
    Bounded against a table of many distinct peers."""
    return Memo(65536, _v4_text if v4 else address_text)


def dump_request(seq, family, protocol, states=STATES):
    """SOCK_DIAG_BY_FAMILY dump of ``family``'s sockets of ``protocol``
    (IPPROTO_RAW: every raw socket, whatever its protocol) in ``states``."""
    body = REQ_V2.pack(family, protocol, 0, 0, states, 0, 0, b"", b"", 0,
                       INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE)
    return nlmsg.pack(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, body)


def decoder(protocol, text4=None, text6=None):
    """``decode(buf, off, end)`` of one SOCK_DIAG_BY_FAMILY body -> a socket
    record of ``protocol`` (inet_diag_msg does not say it); DecodeError for
    a body shorter than inet_diag_msg or of another family.  ``text4`` and
    ``text6`` are AddressText caches to reuse across calls.  Attributes are
    not read."""
    if text4 is None:
        text4 = AddressText(True)
    if text6 is None:
        text6 = AddressText(False)
    unpack = _MSG.unpack_from
    ntohs = socket.ntohs

    def decode(buf, off, end):
        if end - off < INET_DIAG_MSG_LEN:
            raise DecodeError("inet_diag_msg cut short: %d bytes" % (end - off))
        family, st, sport, dport, src, dst, uid, inode = unpack(buf, off)
        if family == AF_INET:
            return (protocol, st, text4[src], ntohs(sport), text4[dst], ntohs(dport), uid, inode)
        if family == AF_INET6:
            return (protocol, st, text6[src], ntohs(sport), text6[dst], ntohs(dport), uid, inode)
        raise DecodeError("inet_diag_msg of family %d" % family)
    return decode


def feed(chunk, protocol, out, state, seq=None, port=None, text4=None, text6=None):
    """Append the socket records of one received datagram to ``out``:
    ``session.feed`` with ``decoder``, which gives the same records.  Pure.
    ``seq``/``port`` None skip the reply checks.  Returns True at NLMSG_DONE.

    A plain socket message of ours (IPv4/IPv6, not flagged) is read here in
    one struct call and no Python call: 0.6 against 0.9-1.3 us a socket.
    From the first other message on, the session's walk takes the rest.
    """
    if text4 is None:
        text4 = AddressText(True)
    if text6 is None:
        text6 = AddressText(False)
    unpack = _HDR_MSG.unpack_from
    ntohs = socket.ntohs
    append = out.append
    off = 0
    end = len(chunk)
    while end - off >= MIN_LEN:
        (length, mtype, flags, mseq, mpid, family, st, sport, dport, src, dst,
         uid, inode) = unpack(chunk, off)
        if (mtype != SOCK_DIAG_BY_FAMILY or flags & NLM_F_DUMP_INTR
                or not MIN_LEN <= length <= end - off
                or (seq is not None and mseq != seq) or (port is not None and mpid != port)):
            break
        if family == AF_INET:
            append((protocol, st, text4[src], ntohs(sport), text4[dst], ntohs(dport), uid, inode))
        elif family == AF_INET6:
            append((protocol, st, text6[src], ntohs(sport), text6[dst], ntohs(dport), uid, inode))
        else:
            break
        off += (length + 3) & ~3
    if off < end:
        rest = memoryview(chunk)[off:] if off else chunk
        session.feed(rest, SOCK_DIAG_BY_FAMILY, decoder(protocol, text4, text6), out, state,
                     seq, port)
    return state.done


def decode_dump(data, protocol, seq=None, port=None):
    """The records of a whole recorded dump (its datagrams, concatenated).
    Returns (records, DumpState).  DecodeError when it does not end with
    NLMSG_DONE."""
    out = []
    state = DumpState()
    feed(data, protocol, out, state, seq, port)
    if not state.done:
        raise DecodeError("sock_diag dump cut short: no NLMSG_DONE in %d bytes" % len(data))
    return out, state


def open_socket():
    """A NETLINK_SOCK_DIAG socket (OSError where the kernel has none)."""
    from .socket import NetlinkSocket
    sock = NetlinkSocket(protocol=NETLINK_SOCK_DIAG)
    sock.settimeout(TIMEOUT)
    return sock


def dump(sock, family, protocol, states=STATES, text4=None, text6=None, recorder=None,
         retries=MAX_DUMP_RETRIES):
    """Every socket of ``family``/``protocol`` in this network namespace, as
    records.  NetlinkError when the kernel refuses (ENOENT: no diag module
    for that protocol); a dump flagged interrupted is redone.
    ``recorder(chunk)`` sees every datagram received, of every attempt."""
    return session.dump(sock, lambda seq: dump_request(seq, family, protocol, states),
                        SOCK_DIAG_BY_FAMILY, decoder(protocol, text4, text6), retries, recorder)
