"""Recordings cut and mutated from the recorded fixtures (tests/fixtures/*.rec)."""

import struct

from flowtop.recording import iter_dumps, read_header


def split(path):
    """(header bytes, [(time, dump bytes)]) of a recording."""
    with open(path, "rb") as f:
        raw = f.read()
        f.seek(0)
        read_header(f)
        return raw[:f.tell()], list(iter_dumps(f))


def build(head, dumps):
    """A recording of ``dumps`` ([(time, bytes)]) after ``head``."""
    return head + b"".join(b"DUMP" + struct.pack(">dI", when, len(data)) + data
                           for when, data in dumps)
