"""``--record`` / ``--replay``: raw dumps in a file, so a real table can
travel in a bug report or a test.

Format (version 1)::

    b"FLOWTOP-RECORDING\\n"
    one JSON line: {"format": 1, "byteorder": "little"|"big",
                    "kernel": uname release, "time": epoch seconds, ...}
    per dump: b"DUMP", struct ">dI" (epoch seconds, length), then the
              datagrams of that dump exactly as recv() returned them.

Netlink headers are in the recording machine's byte order, which the
header names; replay refuses a recording of the other byte order.
"""

import errno
import os
import stat
import struct
import sys
import time

from .netlink.errors import RecordingError  # noqa: F401 (raised here, importable here)

MAGIC = b"FLOWTOP-RECORDING\n"
FORMAT = 1
_DUMP = b"DUMP"
_DUMP_HDR = struct.Struct(">dI")
MAX_HEADER = 4096


def open_regular(path, pipes=False):
    """``open(path, "rb")`` that never blocks at the start: a directory, device or
    socket is refused with OSError (EINVAL, its kind named), and so is a FIFO unless
    ``pipes`` (``--replay /dev/stdin`` from ``zcat x.rec.gz |``): then one with no
    writer reads as empty at once instead of waiting for one forever."""
    # O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if pipes and stat.S_ISFIFO(mode):
            os.set_blocking(fd, True)     # reads wait for a writer that is there, or end
        elif not stat.S_ISREG(mode):
            kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a directory" if stat.S_ISDIR(mode)
                    else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                    else "a socket" if stat.S_ISSOCK(mode) else "not a file")
            raise OSError(errno.EINVAL, "%s, not a regular file" % kind, path)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _named(exc, stream):
    """An OSError from writing the recording names the file (ENOSPC alone does not say where)."""
    if exc.filename is None:
        exc.filename = getattr(stream, "name", None)
    return exc


class Recorder:
    """Collects the datagrams of each dump attempt and appends finished dumps."""

    def __init__(self, stream, clock=time.time, extra=None):
        self.stream = stream
        self._chunks = []
        header = {"format": FORMAT, "byteorder": sys.byteorder,
                  "kernel": os.uname().release, "time": round(clock(), 6)}
        header.update(extra or {})
        import json         # (here: a dump from the kernel writes no recording)
        self._write(MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n")

    def _write(self, data):
        try:
            self.stream.write(data)
            self.stream.flush()
        except OSError as exc:
            raise _named(exc, self.stream)

    def begin(self):
        """A dump (re)starts: forget the datagrams of an interrupted attempt."""
        self._chunks = []

    def chunk(self, data):
        self._chunks.append(bytes(data))

    def commit(self, when):
        data = b"".join(self._chunks)
        self._chunks = []
        self._write(_DUMP + _DUMP_HDR.pack(when, len(data)) + data)


def read_header(stream):
    magic = stream.read(len(MAGIC))
    if not magic:
        raise RecordingError("the file is empty (or a FIFO nobody writes to)")
    if magic != MAGIC:
        raise RecordingError("not a flowtop recording (bad magic)")
    line = stream.readline(MAX_HEADER)
    if not line.endswith(b"\n"):
        raise RecordingError("recording header is cut short or too long")
    import json
    try:
        header = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise RecordingError("recording header is not valid JSON") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise RecordingError("unsupported recording format %r" % (
            header.get("format") if isinstance(header, dict) else header))
    if header.get("byteorder") != sys.byteorder:
        raise RecordingError("recording was made on a %s-endian machine; this one is %s-endian"
                             % (header.get("byteorder"), sys.byteorder))
    return header


MAX_TIME = 253402300800.0     # year 10000: what clocks can show
_CHUNK = 1 << 20


def _read_exactly(stream, length):
    """Up to ``length`` bytes, read in pieces: a lying length (4 GiB) must
    end as "cut short", not as one huge allocation."""
    parts = []
    left = length
    while left > 0:
        part = stream.read(min(left, _CHUNK))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def iter_dumps(stream):
    """Yield ``(time, bytes)`` per recorded dump; RecordingError when cut short."""
    n = 0
    while True:
        tag = stream.read(len(_DUMP))
        if not tag:
            return
        hdr = stream.read(_DUMP_HDR.size)
        if tag != _DUMP or len(hdr) != _DUMP_HDR.size:
            raise RecordingError("recording is damaged after %d dump(s)" % n)
        when, length = _DUMP_HDR.unpack(hdr)
        if not 0 <= when < MAX_TIME:          # NaN fails this too
            raise RecordingError("dump %d has an impossible time (%r)" % (n + 1, when))
        data = _read_exactly(stream, length)
        if len(data) != length:
            raise RecordingError("recording is cut short in dump %d (%d of %d bytes)"
                                 % (n + 1, len(data), length))
        n += 1
        yield when, data
