"""The netlink conversation, once for every family (ctnetlink, rtnetlink,
sock_diag): libmnl's ``mnl_cb_run`` with flowtop's count-and-drop rule.

* A reply must carry our sequence number and port id; others are stale
  (an earlier request's) and counted as foreign.
* NLMSG_DONE ends a dump; NLMSG_ERROR becomes ``NetlinkError`` with its
  errno (an error 0 is an ACK and ends too); NLMSG_OVERRUN is fatal.
* A message flagged NLM_F_DUMP_INTR means the table changed mid-dump: the
  dump is redone, at most ``MAX_DUMP_RETRIES`` times.
* A message whose body does not decode is counted and dropped and the
  datagram goes on; a message *header* that lies raises DecodeError, since
  nothing after it can be trusted.
* ENOBUFS (the kernel dropped replies or events) is reported, for the
  caller to ask again or resynchronise with a dump.

The protocol modules keep only request builders and per-message decoders.
"""

import errno
import itertools
import os
import _socket as socket  # not socket.py (see netlink/socket.py)

from ..runtime import cpus
from . import nlmsg
from .errors import DecodeError, DumpInterrupted, NetlinkError
from .uapi import (NLM_F_ACK, NLM_F_DUMP_INTR, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR,
                   NLMSG_HDRLEN, NLMSG_NOOP, NLMSG_OVERRUN)

MAX_DUMP_RETRIES = 5
_seq = itertools.count(int.from_bytes(os.urandom(2), "big") + 1)
_NO_FAST = {}


def next_seq():
    """A fresh sequence number (one counter for every socket: replies to an
    earlier request on the same socket never match a later one)."""
    return next(_seq) & 0xFFFFFFFF


class DumpState:
    """Running result of one dump: what was decoded and what was dropped."""

    __slots__ = ("done", "interrupted", "dropped", "foreign", "unknown")

    def __init__(self):
        self.done = False
        self.interrupted = False
        self.dropped = 0      # malformed messages skipped
        self.foreign = 0      # replies to another request (stale seq/port)
        self.unknown = 0      # messages of a type this dump does not send


def feed(chunk, msg_type, decode, out, state, seq=None, port=None):
    """Apply one received datagram of a dump to ``out`` (a list).

    Messages of ``msg_type`` are decoded by ``decode(buf, off, end)`` and
    appended unless it returns None.  A decoder may offer, per body length,
    a function ``fast[length](buf, off)`` that decodes a body of a layout it
    knows (else returns None): one Python call per message.  ``seq``/``port``
    None skip the checks (a recording).  Returns the offset just past the
    dump's end (``state.done`` set), else ``len(chunk)``.  The message walk
    is ``nlmsg.iter_messages`` inlined: this loop runs once per flow.
    """
    unpack = nlmsg.NLMSGHDR.unpack_from
    append = out.append
    fast_get = getattr(decode, "fast", _NO_FAST).get
    off = 0
    end = len(chunk)
    while off < end:
        if end - off < NLMSG_HDRLEN:
            raise DecodeError("netlink header cut short: %d bytes at offset %d" % (end - off, off))
        length, mtype, flags, mseq, mpid = unpack(chunk, off)
        if length < NLMSG_HDRLEN or length > end - off:
            raise DecodeError("netlink message length %d invalid at offset %d (%d bytes left)"
                              % (length, off, end - off))
        body = off + NLMSG_HDRLEN
        mend = off + length
        off += (length + 3) & ~3
        if (seq is not None and mseq != seq) or (port is not None and mpid != port):
            state.foreign += 1
            continue
        if flags & NLM_F_DUMP_INTR:
            state.interrupted = True
        if mtype == msg_type:
            fast = fast_get(mend - body)
            value = fast(chunk, body) if fast is not None else None
            if value is None:
                try:
                    value = decode(chunk, body, mend)
                except DecodeError:
                    state.dropped += 1
                    continue
                if value is None:
                    continue
            append(value)
        elif mtype == NLMSG_DONE or mtype == NLMSG_ERROR:
            state.done = True     # DONE, or a bare ACK
            err = nlmsg.error_code(chunk, body, mend)
            if err < 0:
                raise NetlinkError(-err)
            return min(off, end)
        elif mtype == NLMSG_OVERRUN:
            raise DecodeError("netlink overrun")
        else:
            state.unknown += 1
    return end


def iter_dump(sock, request, msg_type, decode, state=None, recorder=None, read_ahead=False,
              clock=None):
    """Send ``request(seq)``; yield the values of each datagram as a list,
    or with ``clock`` as ``(time, list)``: when the kernel read them.  The
    kernel fills a dump's first datagram inside send() and each next one as
    the previous recv() ends, so a datagram is dated by ``clock()`` read
    right after the call before the recv() that returns it (after it: 60 ms
    late under CPU load, which puts 6 % on a rate).

    Memory stays at one datagram's worth (or ``DumpReader.DEPTH`` of them
    with ``read_ahead``: a thread receives while the caller decodes).
    Raises DumpInterrupted at the end when the kernel flagged
    NLM_F_DUMP_INTR (what was yielded may then miss or repeat values).
    ``recorder(chunk)`` sees every datagram as received.
    """
    if clock is not None and read_ahead:
        raise ValueError("a read-ahead dump cannot stamp its datagrams")
    seq = next_seq()
    sock.send(request(seq))
    if clock is not None:
        stamp = clock()
    if state is None:
        state = DumpState()
    if read_ahead and cpus() < 2:
        # one CPU: the thread's recv cannot run beside the decoding; it would add GIL handoffs
        # and a 64-datagram queue (mipsel VM, 16k flows: peak RSS 15.0 -> 12.6 MiB without)
        read_ahead = False
    if read_ahead:
        from .reader import DumpReader      # a thread: only for one-shot output
        source = DumpReader(sock, seq)
    else:
        source = sock
    port = sock.port
    try:
        while not state.done:
            chunk = source.recv()
            if clock is not None:
                filled, stamp = stamp, clock()
            if recorder is not None:
                recorder(chunk)
            batch = []
            feed(chunk, msg_type, decode, batch, state, seq, port)
            if batch:
                yield batch if clock is None else (filled, batch)
    finally:
        if read_ahead:
            source.close()
    if state.interrupted:
        raise DumpInterrupted()


def dump(sock, request, msg_type, decode, retries=MAX_DUMP_RETRIES, recorder=None, begin=None):
    """A consistent dump as one list: redone while the kernel says it was
    interrupted, DumpInterrupted after ``retries`` redos.  ``begin()`` is
    called as each attempt starts, ``recorder(chunk)`` sees its datagrams."""
    for attempt in range(retries + 1):
        if begin is not None:
            begin()
        out = []
        try:
            for batch in iter_dump(sock, request, msg_type, decode, None, recorder):
                out.extend(batch)
            return out
        except DumpInterrupted:
            if attempt == retries:
                raise
    return out   # pragma: no cover


def batch(sock, requests, answer, ack_end=False, timeout=None):
    """Send ``requests`` ({seq: (message bytes, item)}) in one send; each
    draws replies with its sequence number, passed to ``answer(item, mtype,
    buf, body_off, body_end)``; the first one it does not refuse (by
    returning False) ends the request.

    Without ``ack_end``, the loop ends when every request has its answer
    (a kernel that answers each one, as ctnetlink's GET).  With it, an
    NLMSG_NOOP asking for an ACK goes last: the kernel handles a send's
    messages in order, so its ACK means every reply has arrived (rtnetlink
    answers some lookups with nothing).  Replies of another port or an
    unknown seq (an earlier batch's) are skipped.

    Returns ``(unanswered items, errno or 0)``: ENOBUFS when the receive
    buffer overflowed (what was queued is read without waiting: ask the
    rest again), ETIMEDOUT when the kernel stayed silent past the socket's
    timeout, EBADMSG when a datagram lied about its length (with
    ``ack_end``; else DecodeError is raised).  ``timeout``: the one to
    restore after draining, for a socket that cannot tell its own.
    """
    pending, end_seq = _send_batch(sock, requests, ack_end)
    if not pending:
        return [], 0
    lost = errno.ETIMEDOUT
    bad = False
    port = sock.port
    try:
        while pending or ack_end:
            try:
                chunk = sock.recv()
            except BlockingIOError:
                break               # drained after an overrun
            except OSError as exc:
                if exc.errno == errno.ENOBUFS and lost != errno.ENOBUFS:
                    # replies were dropped: take what is queued, do not wait
                    lost = errno.ENOBUFS
                    gettimeout = getattr(sock, "gettimeout", None)
                    restore = gettimeout() if gettimeout is not None else timeout
                    sock.settimeout(0)
                    continue
                if isinstance(exc, socket.timeout):
                    break
                raise
            try:
                messages = list(nlmsg.iter_messages(chunk))
            except DecodeError:
                if not ack_end:
                    raise
                bad = True          # a datagram that lies: its answers are lost
                continue
            if _answer_batch(messages, chunk, port, end_seq, pending, answer):
                break
    finally:
        if lost == errno.ENOBUFS:
            sock.settimeout(restore)
    if not pending:
        return [], 0
    if bad and lost != errno.ENOBUFS:
        lost = errno.EBADMSG
    return list(pending.values()), lost


def _send_batch(sock, requests, ack_end):
    """Send a batch's messages in one send (the NOOP+ACK last with
    ``ack_end``): ({seq: item} pending, the NOOP's seq or None).  Nothing
    is sent for no requests."""
    pending = {}
    parts = []
    for seq, (message, item) in requests.items():
        pending[seq] = item
        parts.append(message)
    if not parts:
        return pending, None
    end_seq = None
    if ack_end:
        end_seq = next_seq()
        parts.append(nlmsg.pack(NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, end_seq))
    sock.send(b"".join(parts))
    return pending, end_seq


def _answer_batch(messages, chunk, port, end_seq, pending, answer):
    """Hand one datagram's replies to ``answer``, removing the requests
    answered from ``pending``; True when the batch's ACK came with it."""
    ended = False
    for mtype, _flags, mseq, mpid, body, mend in messages:
        if mpid != port:
            continue
        if mseq == end_seq:
            ended = True
            continue
        item = pending.get(mseq, _NO_FAST)
        if item is not _NO_FAST and answer(item, mtype, chunk, body, mend) is not False:
            del pending[mseq]
    return ended


def request(sock, message, answer):
    """Send one request ``message(seq)`` and return ``answer(mtype, buf,
    body_off, body_end)`` of its first reply (NetlinkError for an error)."""
    got = []

    def take(_item, mtype, buf, off, end):
        if mtype == NLMSG_ERROR:
            err = nlmsg.error_code(buf, off, end)
            if err < 0:
                raise NetlinkError(-err)
        got.append(answer(mtype, buf, off, end))

    seq = next_seq()
    batch(sock, {seq: (message(seq), None)}, take)
    return got[0]


def events_waiting(sock, most, wait):
    """The datagrams of notifications waiting on a non-blocking socket, up
    to ``most``, after waiting up to ``wait`` s for the first: [bytes], with
    None where the kernel dropped some (ENOBUFS); [] when none came.  One
    recv a datagram (a blocking socket with a timeout polls before each: in
    a flood of 40k events a second, a syscall and a GIL round trip more each)."""
    out = []
    recv = sock.recv
    while len(out) < most:
        try:
            out.append(recv())
        except BlockingIOError:
            if out or not sock.readable(wait):
                break
        except OSError as exc:
            if exc.errno != errno.ENOBUFS:
                raise
            out.append(None)
    return out


def events(sock):
    """Block for the next datagram of notifications (multicast): bytes, or
    None when the kernel dropped some (ENOBUFS): resynchronise with a dump."""
    try:
        return sock.recv()
    except OSError as exc:
        if exc.errno == errno.ENOBUFS:
            return None
        raise
