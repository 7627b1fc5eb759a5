"""rtnetlink (NETLINK_ROUTE): this host's addresses and its interface names
(what ``ip -j addr`` and ``ip -j link`` show), and what the other
rtnetlink modules share: address text <-> bytes, the socket, the dump.
Route lookups are in ``rtlookup.py``, the neighbour tables in ``neigh.py``.

Two layers, as for ctnetlink:

* pure builders and decoders - bytes in, values out, ``DecodeError`` on a
  length that lies: ``*_request`` build messages, ``decode_addr`` /
  ``decode_link`` read one message body, ``feed`` and ``decode_dump`` walk
  received datagrams;
* thin functions that talk to the kernel over a
  ``NetlinkSocket(NETLINK_ROUTE)``: ``local_addresses``, ``interfaces``.

Unlike ctnetlink, rtnetlink integers (RTA_OIF, RTA_TABLE, RTA_MARK, the
ifindex in ifaddrmsg/ifinfomsg) are in host byte order; addresses are raw
network-order bytes, turned into ``inet_ntop`` text here.

The protocol rules (sequence and port id, DONE, ERROR, DUMP_INTR and its
retries, ENOBUFS, the NOOP+ACK end of a batch) live in ``session.py``.
"""

import _socket as socket  # not socket.py (see netlink/socket.py)
import struct

from ..tuples import named
from . import nlmsg, session
from .attrs import iter_attrs, pack_attr
from .errors import DecodeError
from .session import DumpState, MAX_DUMP_RETRIES
from .uapi import (
    AF_INET, AF_INET6, AF_UNSPEC, IFA_ADDRESS, IFA_LABEL, IFA_LOCAL, IFADDRMSG_LEN,
    IFINFOMSG_LEN, IFLA_EXT_MASK, IFLA_IFNAME, NETLINK_ROUTE, NLM_F_DUMP, NLM_F_REQUEST,
    RTEXT_FILTER_SKIP_STATS, RTM_GETADDR, RTM_GETLINK, RTM_NEWADDR, RTM_NEWLINK,
)

# struct ifaddrmsg: family, prefixlen, flags, scope, index
IFADDRMSG = struct.Struct("=BBBBI")
# struct ifinfomsg: family, pad, type, index, flags, change
IFINFOMSG = struct.Struct("=BBHiII")
_U32 = struct.Struct("=I")

AddrInfo = named("AddrInfo", "family prefixlen index address label")
AddrInfo.__doc__ = """One configured address (RTM_NEWADDR): ``address`` is IFA_LOCAL when
present (the local end of a point-to-point link) else IFA_ADDRESS, as text;
``index`` the owning interface; ``label`` IFA_LABEL (IPv4 only) or None."""

LinkInfo = named("LinkInfo", "index name flags")
LinkInfo.__doc__ = """One interface (RTM_NEWLINK): ifindex, raw IFLA_IFNAME (not yet
sanitized) and the IFF_* flags."""

RCVBUF = 1 << 21          # asked for (SO_RCVBUFFORCE as root); replies queue here
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
