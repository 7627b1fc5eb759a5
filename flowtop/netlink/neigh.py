"""rtnetlink's neighbour tables (``ip neigh``: ARP and NDP): the request,
the pure decoder of one RTM_NEWNEIGH, and the dump over the session; the
helpers they share with addresses and links are in ``route.py``.
"""

import struct

from ..tuples import named
from . import nlmsg
from .errors import DecodeError
from .attrs import iter_attrs
from .route import _addr, _Borrowed, _dump, decode_dump
from .uapi import (
    AF_INET, AF_INET6, AF_UNSPEC, NDA_DST, NDA_LLADDR, NDMSG_LEN, NLM_F_DUMP, NLM_F_REQUEST,
    NUD_FAILED, NUD_INCOMPLETE, NUD_NOARP, RTM_GETNEIGH, RTM_NEWNEIGH,
)

# struct ndmsg: family, pad1, pad2, ifindex, state, flags, type
NDMSG = struct.Struct("=BBHiHBB")

NeighInfo = named("NeighInfo", "family index address lladdr state")
NeighInfo.__doc__ = """One neighbour table entry (RTM_NEWNEIGH): NDA_DST as address text,
NDA_LLADDR as "aa:bb:cc:dd:ee:ff" (None when absent: incomplete, or a
device without link-layer addresses), ``index`` the interface, ``state``
the NUD_* bits."""


def neigh_dump_request(seq, family=AF_UNSPEC):
    """RTM_GETNEIGH dump of the neighbour tables (``ip neigh``: ARP and NDP)."""
    return nlmsg.pack(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, seq,
                      NDMSG.pack(family, 0, 0, 0, 0, 0, 0))


def decode_neigh(buf, off, end):
    """An RTM_NEWNEIGH body -> NeighInfo, or None without an IPv4/IPv6 NDA_DST
    (bridge FDB entries and the like)."""
    if end - off < NDMSG_LEN:
        raise DecodeError("ndmsg cut short: %d bytes" % (end - off))
    family, _p1, _p2, index, state, _flags, _type = NDMSG.unpack_from(buf, off)
    if family not in (AF_INET, AF_INET6):
        return None
    dst = lladdr = None
    for atype, vs, ve in iter_attrs(buf, off + NDMSG_LEN, end):
        if atype == NDA_DST:
            dst = _addr(buf, vs, ve, family)
        elif atype == NDA_LLADDR and 0 < ve - vs <= 32:
            lladdr = ":".join("%02x" % b for b in bytes(buf[vs:ve]))
    if dst is None:
        return None
    return NeighInfo(family, index, dst, lladdr, state)


def decode_neighbours(data, seq=None, port=None):
    """A recorded RTM_GETNEIGH dump -> list of NeighInfo."""
    return decode_dump(data, RTM_NEWNEIGH, decode_neigh, seq, port)[0]


def neighbours(sock=None, family=AF_UNSPEC):
    """Every neighbour table entry (IPv4 ARP, IPv6 NDP) as NeighInfo."""
    with _Borrowed(sock) as s:
        return _dump(s, lambda seq: neigh_dump_request(seq, family), RTM_NEWNEIGH, decode_neigh)


def lladdr_of(neighs):
    """``{address: lladdr}`` of the entries that resolved to a device (not
    INCOMPLETE, FAILED, or NOARP: multicast and loopback mappings)."""
    bad = NUD_INCOMPLETE | NUD_FAILED | NUD_NOARP
    return {n.address: n.lladdr for n in neighs if n.lladdr and not n.state & bad}
