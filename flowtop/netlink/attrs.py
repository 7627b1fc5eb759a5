"""struct nlattr: walking attribute lists and reading their values.

Pure and bounds-checked.  The attribute header is in host byte order; the
type has NLA_F_NESTED and NLA_F_NET_BYTEORDER masked off.  ctnetlink puts
integers in network byte order without setting NLA_F_NET_BYTEORDER, so the
caller, who knows the attribute, picks the getter (``be16`` ...).
This generic walker is for requests, tests and cold paths; the hot dump
decoder in ``ctnetlink`` inlines the same rules.
"""

import _socket as socket  # not socket.py (see netlink/socket.py)
import struct

from .errors import DecodeError
from .uapi import NLA_F_NESTED, NLA_HDRLEN, NLA_TYPE_MASK

NLATTR = struct.Struct("=HH")
_BE16 = struct.Struct(">H")
_BE32 = struct.Struct(">I")
_BE64 = struct.Struct(">Q")


def iter_attrs(buf, start, end):
    """Yield ``(type, value_offset, value_end)`` for each attribute.

    Zero-length (padding) attributes are yielded like any other: callers skip
    types they do not know.  Raises DecodeError when a length lies.
    """
    off = start
    unpack = NLATTR.unpack_from
    while off < end:
        if end - off < NLA_HDRLEN:
            raise DecodeError("attribute header cut short at offset %d" % off)
        length, atype = unpack(buf, off)
        if length < NLA_HDRLEN or length > end - off:
            raise DecodeError("attribute length %d invalid at offset %d" % (length, off))
        yield atype & NLA_TYPE_MASK, off + NLA_HDRLEN, off + length
        off += (length + 3) & ~3


def parse(buf, start, end):
    """Attributes of one level as ``{type: (value_offset, value_end)}``."""
    return {t: (s, e) for t, s, e in iter_attrs(buf, start, end)}


def _fixed(getter, size):
    def get(buf, start, end):
        if end - start < size:
            raise DecodeError("attribute too short: %d bytes, need %d" % (end - start, size))
        return getter(buf, start)[0]
    return get


u8 = _fixed(struct.Struct("B").unpack_from, 1)
be16 = _fixed(_BE16.unpack_from, 2)
be32 = _fixed(_BE32.unpack_from, 4)
be64 = _fixed(_BE64.unpack_from, 8)


def ipv4(buf, start, end):
    if end - start != 4:
        raise DecodeError("IPv4 address of %d bytes" % (end - start))
    return socket.inet_ntop(socket.AF_INET, bytes(buf[start:end]))


def ipv6(buf, start, end):
    if end - start != 16:
        raise DecodeError("IPv6 address of %d bytes" % (end - start))
    return socket.inet_ntop(socket.AF_INET6, bytes(buf[start:end]))


def pack_attr(atype, payload, nested=False):
    """One attribute, padded to 4 bytes."""
    if nested:
        atype |= NLA_F_NESTED
    length = NLA_HDRLEN + len(payload)
    return NLATTR.pack(length, atype) + payload + b"\0" * (((length + 3) & ~3) - length)


def pack_be32(atype, value):
    return pack_attr(atype, _BE32.pack(value))

