"""The exceptions the netlink layer raises."""

import os


class DecodeError(ValueError):
    """Bytes that do not form valid netlink/ctnetlink data (a length lies, a
    header is cut short).  The one exception a decoder may raise."""


class NetlinkError(OSError):
    """The kernel answered a request with NLMSG_ERROR; ``errno`` is set."""

    def __init__(self, errno_, msg=None):
        if msg is None:
            try:
                msg = os.strerror(errno_)
            except (ValueError, OverflowError):    # any int can come off the wire
                msg = "unknown error %d" % errno_
        super().__init__(errno_, msg)


class RecordingError(Exception):
    """A recording (``flowtop.recording``: netlink dumps in a file) that cannot
    be read (not one, cut short, other byte order).  Here, not there: the
    outputs that record or replay nothing do not load that module."""


class DumpInterrupted(Exception):
    """The table changed while it was dumped (NLM_F_DUMP_INTR): dump again."""
