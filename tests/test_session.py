"""The netlink conversation rules (flowtop/netlink/session.py) on constructed
byte streams: sequence and port id, DONE, ERROR, OVERRUN, DUMP_INTR retries,
batched requests and ENOBUFS.  No kernel: a scripted socket answers each
request with datagrams built for the sequence number it was sent."""

import errno
import struct

import pytest

from flowtop.netlink import nlmsg, session
from flowtop.netlink.errors import DecodeError, DumpInterrupted, NetlinkError
from flowtop.netlink.uapi import (NLM_F_DUMP_INTR, NLM_F_MULTI, NLMSG_DONE, NLMSG_ERROR,
                                  NLMSG_OVERRUN)

PORT = 4242
DATA = 0x0100                        # the message type our "dump" sends
OTHER = 0x0101                       # a type it does not send


def item(value, seq, port=PORT, flags=NLM_F_MULTI, mtype=DATA):
    return nlmsg.pack(mtype, flags, seq, struct.pack("=I", value), port)


def done(seq, port=PORT, err=0):
    return nlmsg.pack(NLMSG_DONE, NLM_F_MULTI, seq, struct.pack("=i", err), port)


def error(seq, err, port=PORT):
    return nlmsg.pack(NLMSG_ERROR, 0, seq, struct.pack("=i", -err) + bytes(16), port)


def decode(buf, off, end):
    if end - off != 4:
        raise DecodeError("body of %d bytes" % (end - off))
    return struct.unpack_from("=I", buf, off)[0]


def request(seq):
    return nlmsg.pack(0x0102, 0, seq)


class Script:
    """A socket whose kernel answers the n-th send with ``attempts[n](seq)``,
    a list of datagrams (bytes, or an exception to raise from recv)."""

    def __init__(self, *attempts):
        self.port = PORT
        self.attempts = list(attempts)
        self.sent = []
        self.queue = []
        self.timeout = None

    def send(self, data):
        seqs = [m[2] for m in nlmsg.iter_messages(data)]
        self.sent.append(seqs)
        self.queue.extend(self.attempts.pop(0)(*seqs))

    def settimeout(self, t):
        self.timeout = t

    def gettimeout(self):
        return self.timeout

    def recv(self):
        if not self.queue:
            if self.timeout == 0:
                raise BlockingIOError(errno.EAGAIN, "again")
            raise AssertionError("recv() past the end of the script: the loop did not stop")
        chunk = self.queue.pop(0)
        if isinstance(chunk, BaseException):
            raise chunk
        return chunk


def run_dump(sock, retries=session.MAX_DUMP_RETRIES):
    return session.dump(sock, request, DATA, decode, retries)


# --- one datagram -----------------------------------------------------------------------

def test_a_done_of_another_sequence_is_stale_and_does_not_end_the_dump():
    out, state = [], session.DumpState()
    session.feed(done(6) + item(1, 7) + item(2, 7), DATA, decode, out, state, seq=7, port=PORT)
    assert out == [1, 2] and not state.done and state.foreign == 1


def test_a_reply_from_another_port_is_foreign():
    out, state = [], session.DumpState()
    session.feed(item(1, 7, port=99) + item(2, 7) + done(7, port=99), DATA, decode, out, state,
                 seq=7, port=PORT)
    assert out == [2] and state.foreign == 2 and not state.done


def test_an_error_with_our_sequence_raises_its_errno():
    with pytest.raises(NetlinkError) as exc:
        session.feed(item(1, 7) + error(7, errno.EPERM), DATA, decode, [], session.DumpState(),
                     seq=7, port=PORT)
    assert exc.value.errno == errno.EPERM


def test_an_error_with_another_sequence_is_stale():
    state = session.DumpState()
    session.feed(error(6, errno.EPERM), DATA, decode, [], state, seq=7, port=PORT)
    assert state.foreign == 1 and not state.done


def test_done_ends_the_dump_and_tells_where():
    out, state = [], session.DumpState()
    data = item(1, 7) + done(7)
    assert session.feed(data + item(9, 7), DATA, decode, out, state, 7, PORT) == len(data)
    assert out == [1] and state.done


def test_a_done_carrying_an_error_raises_it():
    with pytest.raises(NetlinkError) as exc:
        session.feed(done(7, err=-errno.EBUSY), DATA, decode, [], session.DumpState(), 7, PORT)
    assert exc.value.errno == errno.EBUSY


def test_a_malformed_body_is_counted_and_dropped_and_the_walk_goes_on():
    out, state = [], session.DumpState()
    bad = nlmsg.pack(DATA, NLM_F_MULTI, 7, bytes(8), PORT)     # 8 bytes where 4 belong
    session.feed(item(1, 7) + bad + item(OTHER, 7, mtype=OTHER) + item(3, 7) + done(7),
                 DATA, decode, out, state, 7, PORT)
    assert out == [1, 3] and state.dropped == 1 and state.unknown == 1 and state.done


def test_a_header_that_lies_raises_decode_error():
    data = item(1, 7) + item(2, 7)
    with pytest.raises(DecodeError):
        session.feed(data[:-1], DATA, decode, [], session.DumpState(), 7, PORT)


def test_an_overrun_message_raises():
    with pytest.raises(DecodeError):
        session.feed(nlmsg.pack(NLMSG_OVERRUN, 0, 7, b"", PORT), DATA, decode, [],
                     session.DumpState(), 7, PORT)


def test_a_decoder_fast_function_is_used_for_its_length_and_falls_back_on_none():
    class Fast:
        fast = {4: lambda buf, off: None if buf[off] == 2 else "fast"}

        def __call__(self, buf, off, end):
            return "plain"

    out = []
    session.feed(item(1, 7) + item(2, 7), DATA, Fast(), out, session.DumpState(), 7, PORT)
    assert out == ["fast", "plain"]


# --- a dump and its retries -------------------------------------------------------------

def test_a_dump_reads_datagrams_until_done():
    sock = Script(lambda s: [item(1, s) + item(2, s), done(s - 1) + item(3, s), done(s)])
    assert run_dump(sock) == [1, 2, 3]


def test_an_interrupted_dump_is_redone_and_the_clean_attempt_returned():
    intr = NLM_F_MULTI | NLM_F_DUMP_INTR
    sock = Script(lambda s: [item(1, s) + item(2, s, flags=intr) + done(s)],
                  lambda s: [item(5, s) + done(s)])
    assert run_dump(sock) == [5]
    assert len(sock.sent) == 2 and sock.sent[0] != sock.sent[1]   # a fresh sequence


def test_an_interrupted_dump_gives_up_after_the_retries():
    intr = NLM_F_MULTI | NLM_F_DUMP_INTR
    sock = Script(*[lambda s: [item(1, s, flags=intr) + done(s)]] * 3)
    with pytest.raises(DumpInterrupted):
        run_dump(sock, retries=2)
    assert len(sock.sent) == 3


def test_a_stamped_dump_dates_each_datagram_by_the_call_before_its_recv():
    ticks = iter(range(100))
    sock = Script(lambda s: [item(1, s), item(2, s) + done(s)])
    got = list(session.iter_dump(sock, request, DATA, decode, clock=lambda: next(ticks)))
    assert got == [(0, [1]), (1, [2])]


# --- batched requests -------------------------------------------------------------------

def answers(values):
    got = {}

    def answer(key, mtype, buf, off, end):
        if mtype == NLMSG_ERROR:
            got[key] = -nlmsg.error_code(buf, off, end)
        else:
            got[key] = decode(buf, off, end)
    return got, answer


def test_a_batch_matches_replies_by_sequence_and_skips_stale_and_foreign_ones():
    sock = Script(lambda a, b: [item(9, a - 5) + item(20, b) + item(8, a, port=1),
                                error(a, errno.ENOENT)])
    got, answer = answers({})
    left, err = session.batch(sock, {11: (request(11), "a"), 12: (request(12), "b")}, answer)
    assert got == {"a": errno.ENOENT, "b": 20} and left == [] and err == 0


def test_a_batch_with_an_ack_end_stops_at_the_ack_and_names_the_unanswered():
    def kernel(a, b, end):
        ack = nlmsg.pack(NLMSG_ERROR, 0, end, struct.pack("=i", 0) + bytes(16), PORT)
        return [item(1, a) + ack]
    sock = Script(kernel)
    got, answer = answers({})
    left, err = session.batch(sock, {1: (request(1), "a"), 2: (request(2), "b")}, answer,
                              ack_end=True)
    assert got == {"a": 1} and left == ["b"] and err == errno.ETIMEDOUT
    assert len(sock.sent[0]) == 3                      # the requests and the NOOP+ACK


def test_a_batch_drains_without_waiting_after_enobufs_and_restores_the_timeout():
    sock = Script(lambda a, b, end: [item(1, a), OSError(errno.ENOBUFS, "full")])
    sock.timeout = 3.0
    got, answer = answers({})
    left, err = session.batch(sock, {1: (request(1), "a"), 2: (request(2), "b")}, answer,
                              ack_end=True)
    assert got == {"a": 1} and left == ["b"] and err == errno.ENOBUFS and sock.timeout == 3.0


def test_a_request_refused_by_the_kernel_raises_its_errno():
    sock = Script(lambda s: [error(s, errno.EOPNOTSUPP)])
    with pytest.raises(NetlinkError) as exc:
        session.request(sock, request, lambda *a: "reply")
    assert exc.value.errno == errno.EOPNOTSUPP


def test_events_report_an_overflow_as_none():
    sock = Script()
    sock.queue = [b"bytes", OSError(errno.ENOBUFS, "full")]
    assert session.events(sock) == b"bytes" and session.events(sock) is None


class Waiting(Script):
    """A non-blocking socket with ``queue`` waiting: BlockingIOError once it
    is empty; ``readable`` (the wait) answers from ``later`` and is counted."""

    def __init__(self, queue, later=()):
        super().__init__()
        self.queue = list(queue)
        self.later = list(later)
        self.waits = []

    def recv(self):
        if not self.queue:
            raise BlockingIOError(errno.EAGAIN, "empty")
        return Script.recv(self)

    def readable(self, seconds):
        self.waits.append(seconds)
        if self.later:
            self.queue.append(self.later.pop(0))
            return True
        return False


def test_events_waiting_takes_every_datagram_waiting_without_a_wait_between():
    sock = Waiting([b"a", b"b", b"c"])
    assert session.events_waiting(sock, 10, 0.5) == [b"a", b"b", b"c"]
    assert sock.waits == []                  # three recv, no poll: the flood's path


def test_events_waiting_takes_at_most_most():
    sock = Waiting([b"a", b"b", b"c"])
    assert session.events_waiting(sock, 2, 0.5) == [b"a", b"b"] and sock.queue == [b"c"]


def test_events_waiting_waits_for_the_first_datagram_only():
    sock = Waiting([], later=[b"a", b"b"])
    assert session.events_waiting(sock, 10, 0.5) == [b"a"] and sock.waits == [0.5]
    assert session.events_waiting(Waiting([]), 10, 0.5) == []       # none came: []


def test_events_waiting_reports_an_overflow_as_none_and_goes_on():
    sock = Waiting([b"a", OSError(errno.ENOBUFS, "full"), b"b"])
    assert session.events_waiting(sock, 10, 0.5) == [b"a", None, b"b"]
    with pytest.raises(OSError):
        session.events_waiting(Waiting([OSError(errno.EBADF, "closed")]), 10, 0.5)
