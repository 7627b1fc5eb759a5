"""struct nlmsghdr: packing requests and splitting a receive buffer.

Pure functions over bytes.  Header fields are in the host's byte order
(netlink is a host-local protocol).
"""

import struct

from .errors import DecodeError
from .uapi import NLMSG_ALIGNTO, NLMSG_HDRLEN

# len, type, flags, seq, pid
NLMSGHDR = struct.Struct("=IHHII")
NLMSGERR_ERRNO = struct.Struct("=i")


def align(n):
    """Round ``n`` up to the netlink alignment (4)."""
    return (n + NLMSG_ALIGNTO - 1) & ~(NLMSG_ALIGNTO - 1)


def pack(msg_type, flags, seq, body=b"", pid=0):
    """One netlink message: header plus ``body`` (already aligned)."""
    return NLMSGHDR.pack(NLMSG_HDRLEN + len(body), msg_type, flags, seq, pid) + body


def iter_messages(buf, start=0, end=None):
    """Yield ``(type, flags, seq, pid, body_offset, body_end)`` per message.

    ``buf`` is bytes/bytearray/memoryview holding whole messages, as one
    recv() returns them.  Raises DecodeError on a header that is cut short or
    whose length is smaller than a header or runs past ``end``.
    """
    if end is None:
        end = len(buf)
    off = start
    unpack = NLMSGHDR.unpack_from
    while off < end:
        if end - off < NLMSG_HDRLEN:
            raise DecodeError("netlink header cut short: %d bytes at offset %d" % (end - off, off))
        length, mtype, flags, seq, pid = unpack(buf, off)
        if length < NLMSG_HDRLEN or length > end - off:
            raise DecodeError("netlink message length %d invalid at offset %d (%d bytes left)"
                              % (length, off, end - off))
        yield mtype, flags, seq, pid, off + NLMSG_HDRLEN, off + length
        off += align(length)


def error_code(buf, body_off, body_end):
    """The (negative or zero) errno of an NLMSG_ERROR or NLMSG_DONE body."""
    if body_end - body_off < 4:
        if body_end == body_off:
            return 0   # NLMSG_DONE from old kernels carries no body
        raise DecodeError("netlink error message cut short")
    return NLMSGERR_ERRNO.unpack_from(buf, body_off)[0]
