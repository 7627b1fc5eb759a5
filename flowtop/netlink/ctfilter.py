"""Dump requests that ask the kernel to filter (ctnetlink's dump filter):
by mark/mask (CTA_MARK, kernel >= 4.?), status bits (CTA_STATUS with
CTA_STATUS_MASK, >= 5.19), zone and the original tuple's addresses,
protocol and ports (CTA_FILTER, >= 5.8).  A kernel without one of them
ignores the attribute and sends more: callers filter again, always.
Pure: bytes out."""

import sys

from . import attrs, nlmsg
from .ctnetlink import MSG_CT_GET, nfgenmsg
from . import uapi as u
from ..tuples import named

DumpFilter = named("DumpFilter", (
    "family",        # AF_INET/AF_INET6 the tuple's addresses are in, or AF_UNSPEC
    "mark", "mark_mask",          # ints or None
    "status", "status_mask",      # ints or None
    "zone",          # int (not 0: zone 0 is "no zone filter" to the kernel) or None
    "proto",         # IPPROTO number or None
    "src", "dst",    # packed address bytes (4 or 16) or None
    "sport", "dport",  # ints or None (only with proto)
), defaults=(u.AF_UNSPEC,) + (None,) * 10)


_TUPLE = ("proto", "src", "dst", "sport", "dport")


def needs_family(flt):
    """The kernel takes CTA_FILTER's tuple only in a dump of one family."""
    return flt.family == u.AF_UNSPEC and any(getattr(flt, k) is not None for k in _TUPLE)


def untupled(flt):
    """``flt`` without its tuple parts (mark, status, zone stay), or None."""
    out = flt._replace(**{k: None for k in _TUPLE})
    return out if any(v is not None for v in out[1:]) else None


def _tuple(flt):
    """(CTA_FILTER_ORIG_FLAGS, CTA_TUPLE_ORIG payload) of the tuple parts."""
    flags = 0
    ip = b""
    v6 = flt.family == u.AF_INET6
    if flt.src is not None:
        flags |= u.CTA_FILTER_F_CTA_IP_SRC
        ip += attrs.pack_attr(u.CTA_IP_V6_SRC if v6 else u.CTA_IP_V4_SRC, flt.src)
    if flt.dst is not None:
        flags |= u.CTA_FILTER_F_CTA_IP_DST
        ip += attrs.pack_attr(u.CTA_IP_V6_DST if v6 else u.CTA_IP_V4_DST, flt.dst)
    proto = b""
    if flt.proto is not None:
        flags |= u.CTA_FILTER_F_CTA_PROTO_NUM
        proto += attrs.pack_attr(u.CTA_PROTO_NUM, bytes((flt.proto,)))
        if flt.sport is not None:
            flags |= u.CTA_FILTER_F_CTA_PROTO_SRC_PORT
            proto += attrs.pack_attr(u.CTA_PROTO_SRC_PORT, flt.sport.to_bytes(2, "big"))
        if flt.dport is not None:
            flags |= u.CTA_FILTER_F_CTA_PROTO_DST_PORT
            proto += attrs.pack_attr(u.CTA_PROTO_DST_PORT, flt.dport.to_bytes(2, "big"))
    body = b""
    if ip:
        body += attrs.pack_attr(u.CTA_TUPLE_IP, ip, nested=True)
    if proto:
        body += attrs.pack_attr(u.CTA_TUPLE_PROTO, proto, nested=True)
    return flags, body


def dump_request(seq, family, flt=None):
    """IPCTNL_MSG_CT_GET with NLM_F_DUMP, asking the kernel to send only
    what ``flt`` (a DumpFilter, or None: everything) selects.  ``family``
    AF_UNSPEC takes the filter's family (its addresses need one)."""
    if flt is not None and family == u.AF_UNSPEC:
        family = flt.family
    body = nfgenmsg(family)
    if flt is not None:
        if flt.mark is not None:
            body += attrs.pack_be32(u.CTA_MARK, flt.mark)
            body += attrs.pack_be32(u.CTA_MARK_MASK, 0xFFFFFFFF if flt.mark_mask is None
                                    else flt.mark_mask)
        if flt.status is not None:
            body += attrs.pack_be32(u.CTA_STATUS, flt.status)
            body += attrs.pack_be32(u.CTA_STATUS_MASK, flt.status if flt.status_mask is None
                                    else flt.status_mask)
        flags, tuple_body = _tuple(flt)
        if flt.zone or flags:
            # the kernel reads CTA_ZONE and the tuple only beside CTA_FILTER;
            # NLA_U32 flags in host byte order (nla_get_u32), the rest big-endian
            if flt.zone:
                body += attrs.pack_attr(u.CTA_ZONE, flt.zone.to_bytes(2, "big"))
            body += attrs.pack_attr(u.CTA_FILTER, attrs.pack_attr(
                u.CTA_FILTER_ORIG_FLAGS, flags.to_bytes(4, sys.byteorder)) if flags else b"",
                nested=True)
            if flags:
                body += attrs.pack_attr(u.CTA_TUPLE_ORIG, tuple_body, nested=True)
    return nlmsg.pack(MSG_CT_GET, u.NLM_F_REQUEST | u.NLM_F_DUMP, seq, body)
