"""The read-ahead thread of streamed dumps (flowtop.netlink.reader).

The fake kernel (test_failures.FakeNetlink) answers a dump request with
the recorded datagrams re-addressed to the request; a datagram queued
after them stands for whatever the socket receives next, which the
reader must leave alone.
"""

import errno
import sys
import threading
import time

import pytest

from flowtop.netlink import conntrack as ct
from flowtop.netlink import nlmsg
from flowtop.netlink.reader import DumpReader, ends_dump
from flowtop.netlink.uapi import NLMSG_DONE
from tests.test_failures import N_FLOWS, PORT, DumpScript, FakeNetlink

NEXT = nlmsg.pack(NLMSG_DONE, 0, 1, b"\0\0\0\0", pid=PORT)   # another conversation's


@pytest.fixture(autouse=True)
def two_cpus(monkeypatch):
    """A read-ahead thread runs only beside a second CPU (session.cpus)."""
    from flowtop.netlink import session
    monkeypatch.setattr(session, "cpus", lambda: 2)


class Kernel(FakeNetlink):
    """The recorded dump, a stale NLMSG_DONE of another sequence number
    before it, and NEXT after it."""

    def __init__(self, fail_at=None):
        super().__init__(DumpScript(interrupted=0))
        self.fail_at = fail_at
        self.reads = 0

    def send(self, data):
        super().send(data)
        _len, _type, _flags, seq, _pid = nlmsg.NLMSGHDR.unpack_from(data)
        stale = nlmsg.pack(NLMSG_DONE, 0, (seq - 7) & 0xFFFFFFFF, b"\0\0\0\0", pid=PORT)
        self.queue = [stale] + self.queue + [NEXT]

    def recv(self):
        self.reads += 1
        if self.reads == self.fail_at:
            raise OSError(errno.ENOBUFS, "No buffer space available")
        return super().recv()


def within(seconds, fn):
    """fn() run in a thread; fails (instead of hanging the suite) if it
    has not returned within ``seconds``."""
    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as exc:     # noqa: B036 - re-raised below
            out["error"] = exc
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "still blocked after %s s" % seconds
    if "error" in out:
        raise out["error"]
    return out["value"]


def flows(read_ahead, sock):
    return [f for batch in ct.iter_dump(sock, read_ahead=read_ahead) for f in batch]


def test_read_ahead_gives_the_same_flows_and_stops_at_the_dump_end():
    plain = flows(False, Kernel())
    sock = Kernel()
    ahead = within(10, lambda: flows(True, sock))
    assert ahead == plain and len(ahead) == N_FLOWS
    assert sock.queue == [NEXT]          # the stale DONE did not end it, nothing read past it


def test_leaving_early_reads_the_rest_of_the_dump_and_restores_the_switch_interval():
    before = sys.getswitchinterval()
    sock = Kernel()

    def first_batch_only():
        it = ct.iter_dump(sock, read_ahead=True)
        batch = next(it)
        assert sys.getswitchinterval() <= DumpReader.SWITCH
        it.close()
        return batch

    assert within(10, first_batch_only)
    assert sock.queue == [NEXT]
    assert not [t for t in threading.enumerate() if t.name == "flowtop-dump"]
    assert sys.getswitchinterval() == before


def test_on_one_cpu_a_read_ahead_dump_is_read_inline(monkeypatch):
    """One CPU cannot receive beside the decoding: no thread, no shorter switch
    interval, no queue of datagrams (a mipsel router's --once peaked 2.4 MiB lower)."""
    from flowtop.netlink import session
    monkeypatch.setattr(session, "cpus", lambda: 1)
    before = sys.getswitchinterval()
    sock = Kernel()
    it = ct.iter_dump(sock, read_ahead=True)
    first = next(it)
    assert not [t for t in threading.enumerate() if t.name == "flowtop-dump"]
    assert sys.getswitchinterval() == before
    rest = [f for batch in it for f in batch]
    assert first + rest == flows(False, Kernel())
    assert sock.queue == [NEXT]


def test_cpus_counts_the_affinity_mask():
    from flowtop.runtime import cpus
    import os
    assert cpus() == len(os.sched_getaffinity(0)) >= 1


def test_a_receive_error_reaches_the_caller():
    sock = Kernel(fail_at=3)
    with pytest.raises(OSError) as info:
        within(10, lambda: flows(True, sock))
    assert info.value.errno == errno.ENOBUFS


def reads_settle(sock, at_least):
    """sock.reads once the thread has stopped reading (0.2 s without a read)."""
    deadline = time.monotonic() + 5
    while sock.reads < at_least and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    return sock.reads


def test_reads_at_most_depth_datagrams_ahead_and_refills_once_half_is_taken():
    """A wake-up of the thread per half of the read-ahead, not one per datagram
    taken (100k flows, in-process: a bare --json 0.63 -> 0.58 s)."""
    sock = Kernel()
    sock.send(ct.ctnetlink.dump_request(99))
    assert len(sock.queue) == 6                     # stale DONE, 4 of the dump, NEXT
    reader = DumpReader(sock, 99, depth=4)
    try:
        assert reads_settle(sock, 4) == 4           # the stale DONE and three datagrams
        reader.recv()
        assert reads_settle(sock, 4) == 4           # three left: more than half
        reader.recv()
        assert reads_settle(sock, 5) == 5           # two left: the last one read
    finally:
        reader.close()
    assert sock.queue == [NEXT]


@pytest.mark.parametrize("chunk,ends", [
    (nlmsg.pack(NLMSG_DONE, 2, 5, b"\0\0\0\0"), True),
    (nlmsg.pack(NLMSG_DONE, 2, 6, b"\0\0\0\0"), False),         # another dump's
    (nlmsg.pack(0x100, 2, 5, b"\0" * 8) + nlmsg.pack(NLMSG_DONE, 2, 5, b"\0" * 4), True),
    (nlmsg.pack(0x100, 2, 5, b"\0" * 8), False),
    (b"\x08\x00\x00\x00" + b"\0" * 12, True),                    # no walk passes it
    (b"\x20\x00\x00", True),                                    # cut short
])
def test_ends_dump(chunk, ends):
    assert ends_dump(chunk, 5) is ends
