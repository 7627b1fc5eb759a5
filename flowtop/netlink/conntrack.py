"""The ctnetlink conversation: dump requests and their replies.

Protocol rules live here, in one place: each reply must carry our sequence
number and port id (others are stale and dropped), NLMSG_DONE ends a dump,
NLMSG_ERROR becomes NetlinkError with its errno, a message flagged
NLM_F_DUMP_INTR means the table changed mid-dump and the dump is redone.
"""

import errno
import gc
import itertools

from . import ctfilter, ctnetlink, nlmsg
from .errors import DecodeError, DumpInterrupted, NetlinkError
from .reader import DumpReader
from .socket import NetlinkSocket
from .uapi import (IPCTNL_MSG_CT_DELETE, IPCTNL_MSG_CT_NEW, NFNL_SUBSYS_CTNETLINK,
                   NFNLGRP_CONNTRACK_DESTROY, NFNLGRP_CONNTRACK_NEW,
                   NLM_F_DUMP_INTR, NLMSG_DONE, NLMSG_ERROR, NLMSG_OVERRUN,
                   NLMSG_HDRLEN, AF_INET, AF_INET6, AF_UNSPEC)

_CT_NEW = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW
_CT_DELETE = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE

MAX_DUMP_RETRIES = 5
_seq = itertools.count(int.from_bytes(__import__("os").urandom(2), "big") + 1)


class DumpState:
    """Running result of one dump: what was decoded and what was dropped."""

    __slots__ = ("done", "interrupted", "dropped", "foreign", "unknown")

    def __init__(self):
        self.done = False
        self.interrupted = False
        self.dropped = 0      # malformed messages skipped
        self.foreign = 0      # replies to another request (stale seq/port)
        self.unknown = 0      # messages of a type a conntrack dump does not send


def feed(chunk, out, state, seq=None, port=None, decode=ctnetlink.decode_entry):
    """Apply one received datagram of a dump to ``out`` (a list of entries).

    Pure: ``chunk`` is bytes.  ``seq``/``port`` None skip the checks (replay
    of a recording).  A malformed entry is counted in ``state.dropped`` and
    the rest of the datagram goes on; a malformed message header raises
    DecodeError, since nothing after it can be trusted.  The message walk is
    ``nlmsg.iter_messages`` inlined: this loop runs once per flow.
    """
    unpack = nlmsg.NLMSGHDR.unpack_from
    append = out.append
    # A Decoder offers, per body length, a function that decodes a body of
    # a layout it knows (else returns None): one Python call per flow.
    fast_get = getattr(decode, "fast", {}).get
    off = 0
    end = len(chunk)
    while off < end:
        if end - off < NLMSG_HDRLEN:
            raise DecodeError("netlink header cut short: %d bytes at offset %d" % (end - off, off))
        length, mtype, flags, mseq, mpid = unpack(chunk, off)
        if length < NLMSG_HDRLEN or length > end - off:
            raise DecodeError("netlink message length %d invalid at offset %d" % (length, off))
        body = off + NLMSG_HDRLEN
        mend = off + length
        off += (length + 3) & ~3
        if (seq is not None and mseq != seq) or (port is not None and mpid != port):
            state.foreign += 1
            continue
        if flags & NLM_F_DUMP_INTR:
            state.interrupted = True
        if mtype == _CT_NEW:
            fast = fast_get(mend - body)
            entry = fast(chunk, body) if fast is not None else None
            if entry is None:
                try:
                    entry = decode(chunk, body, mend)
                except DecodeError:
                    state.dropped += 1
                    continue
            append(entry)
        elif mtype == NLMSG_DONE:
            state.done = True
            err = nlmsg.error_code(chunk, body, mend)
            if err < 0:
                raise NetlinkError(-err)
            return
        elif mtype == NLMSG_ERROR:
            err = nlmsg.error_code(chunk, body, mend)
            if err < 0:
                raise NetlinkError(-err)
            state.done = True     # a bare ACK
            return
        elif mtype == NLMSG_OVERRUN:
            raise DecodeError("netlink overrun")
        else:
            state.unknown += 1


def iter_dump(sock, family=AF_UNSPEC, recorder=None, decode=ctnetlink.decode_entry,
              state=None, read_ahead=False, clock=None):
    """Send one dump request; yield the entries of each datagram as a list,
    or with ``clock`` as ``(time, list)``: when the kernel read its counters.
    The kernel fills a dump's first datagram inside send() and each next one
    as the previous recv() ends, so a datagram is dated by ``clock()`` read
    right after the call before the recv() that returns it (after it: 60 ms
    late under CPU load, which puts 6 % on a rate).

    Memory stays at one datagram's worth (or ``DumpReader.DEPTH`` of them
    with ``read_ahead``: a thread receives while the caller decodes, see
    reader.py): for writers that stream.  Raises DumpInterrupted at the end
    when the kernel flagged NLM_F_DUMP_INTR (what was yielded may then miss
    or repeat flows).  ``recorder(chunk)`` sees every datagram as received.
    """
    flt = getattr(sock, "dump_filter", None)      # a ctfilter.DumpFilter: the kernel filters
    if state is None:
        state = DumpState()
    if clock is not None and read_ahead:
        raise ValueError("a read-ahead dump cannot stamp its datagrams")
    if flt is not None and family == AF_UNSPEC and ctfilter.needs_family(flt):
        if recorder is None:
            # CTA_FILTER's tuple needs a family (else EOPNOTSUPP): one dump each
            for fam in (AF_INET, AF_INET6):
                state.done = False
                yield from _iter_dump(sock, fam, None, decode, state, read_ahead, clock, flt)
            return
        flt = ctfilter.untupled(flt)       # a recording holds one dump (one DONE)
    yield from _iter_dump(sock, family, recorder, decode, state, read_ahead, clock, flt)


def _iter_dump(sock, family, recorder, decode, state, read_ahead, clock, flt):
    seq = next(_seq) & 0xFFFFFFFF
    sock.send(ctnetlink.dump_request(seq, family) if flt is None
              else ctfilter.dump_request(seq, family, flt))
    if clock is not None:
        stamp = clock()
    source = DumpReader(sock, seq) if read_ahead else sock
    again = False
    try:
        while not state.done:
            chunk = source.recv()
            if clock is not None:
                filled, stamp = stamp, clock()
            batch = []
            try:
                feed(chunk, batch, state, seq, sock.port, decode)
            except NetlinkError as exc:
                if flt is None or exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
                    if recorder is not None:
                        recorder(chunk)
                    raise
                # the kernel refuses this filter (it knows CTA_FILTER but not
                # these flags): ask again for everything; callers filter anyway
                sock.dump_filter = None
                state.done = again = True
                break
            if recorder is not None:
                recorder(chunk)
            if batch:
                yield batch if clock is None else (filled, batch)
    finally:
        if read_ahead:
            source.close()
    if again:
        state.done = False
        yield from _iter_dump(sock, family, recorder, decode, state, read_ahead, clock, None)
        return
    if state.interrupted:
        raise DumpInterrupted()


def dump_once(sock, family=AF_UNSPEC, recorder=None, decode=ctnetlink.decode_entry):
    """One dump over ``sock``.  Returns (entries, DumpState).

    Raises DumpInterrupted when the kernel flagged NLM_F_DUMP_INTR.
    """
    out = []
    state = DumpState()
    for batch in iter_dump(sock, family, recorder, decode, state):
        out.extend(batch)
    return out, state


def dump(sock, family=AF_UNSPEC, recorder=None, decode=ctnetlink.decode_entry,
         retries=MAX_DUMP_RETRIES):
    """A consistent dump: redone while the kernel says it was interrupted.

    ``recorder`` (or None) has ``begin()``, called as each attempt starts so
    only the final attempt is kept, and ``chunk(bytes)``.
    """
    # A dump allocates one acyclic record per flow: at 100k flows the cyclic
    # garbage collector would rescan them again and again for nothing.
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        for attempt in range(retries + 1):
            if recorder is not None:
                recorder.begin()
            try:
                return dump_once(sock, family, recorder.chunk if recorder is not None else None,
                                 decode)[0]
            except DumpInterrupted:
                if attempt == retries:
                    raise
    finally:
        if gc_was_on:
            gc.enable()


GET_BATCH = 256


def _answers(sock, flows, request):
    """Send ``request(seq, flow)`` for each of ``flows``, GET_BATCH to a
    send; yield (flow, mtype, chunk, body, end) for each one's answer (the
    kernel answers each request with exactly one message: the flow, or an
    error or ACK), matched by sequence number and our port id."""
    flows = list(flows)
    for start in range(0, len(flows), GET_BATCH):
        batch = flows[start:start + GET_BATCH]
        first = next(_seq) & 0xFFFFFFFF
        for _ in range(len(batch) - 1):
            next(_seq)
        seqs = {}
        out = []
        for i, f in enumerate(batch):
            seq = (first + i) & 0xFFFFFFFF
            seqs[seq] = f
            out.append(request(seq, f))
        sock.send(b"".join(out))
        while seqs:
            chunk = sock.recv()
            for mtype, _flags, mseq, mpid, body, end in nlmsg.iter_messages(chunk):
                f = seqs.pop(mseq, None)
                if f is None or mpid != sock.port:
                    continue
                yield f, mtype, chunk, body, end


def get_many(sock, flows, decode=ctnetlink.decode_entry):
    """Fresh copies of ``flows`` (entries: family and key are used) by
    batched IPCTNL_MSG_CT_GET requests: (found entries, keys gone).

    One send per batch; each request draws exactly one answer with its
    sequence number.  A flow the kernel no longer has answers ENOENT.
    """
    found, gone = [], []
    for f, mtype, chunk, body, end in _answers(
            sock, flows, lambda seq, f: ctnetlink.get_request(seq, f.family, f.key)):
        if mtype == _CT_NEW:
            try:
                found.append(decode(chunk, body, end))
            except DecodeError:
                gone.append(f.key)
        elif mtype == NLMSG_ERROR:
            err = nlmsg.error_code(chunk, body, end)
            if err == -errno.ENOENT:
                gone.append(f.key)
            elif err < 0:
                raise NetlinkError(-err)
    return found, gone


def delete_many(sock, flows):
    """Delete ``flows`` (entries: family, key and id are used) from the
    kernel's table by batched, acknowledged IPCTNL_MSG_CT_DELETE requests:
    (keys deleted, keys already gone (ENOENT)).  Any other refusal raises
    NetlinkError (EPERM without CAP_NET_ADMIN) once every answer is read."""
    deleted, gone = [], []
    failure = None
    for f, mtype, chunk, body, end in _answers(
            sock, flows, lambda seq, f: ctnetlink.delete_request(seq, f.family, f.key, f.id)):
        if mtype != NLMSG_ERROR:
            continue
        err = nlmsg.error_code(chunk, body, end)
        if err == 0:
            deleted.append(f.key)
        elif err == -errno.ENOENT:
            gone.append(f.key)
        elif failure is None:
            failure = -err
    if failure is not None:
        raise NetlinkError(failure)
    return deleted, gone


EVENT_NEW, EVENT_DESTROY, EVENT_OVERFLOW = "new", "destroy", "overflow"


def open_events(rcvbuf=64 << 20):
    """A socket subscribed to conntrack NEW and DESTROY events, with a
    large receive buffer: at thousands of new flows a second the default
    one overflows (ENOBUFS) within a second."""
    sock = NetlinkSocket(rcvbuf=rcvbuf)
    sock.subscribe(NFNLGRP_CONNTRACK_NEW)
    sock.subscribe(NFNLGRP_CONNTRACK_DESTROY)
    return sock


def read_events(sock, decode=ctnetlink.decode_entry):
    """Block for the next datagram of events: [(EVENT_NEW|EVENT_DESTROY,
    entry)], or [(EVENT_OVERFLOW, None)] when the kernel dropped events
    (ENOBUFS): the caller must resynchronise with a dump."""
    try:
        chunk = sock.recv()
    except OSError as exc:
        if exc.errno == errno.ENOBUFS:
            return [(EVENT_OVERFLOW, None)]
        raise
    events = []
    for mtype, _flags, _seq, _pid, body, end in nlmsg.iter_messages(chunk):
        if mtype == _CT_NEW:
            kind = EVENT_NEW
        elif mtype == _CT_DELETE:
            kind = EVENT_DESTROY
        else:
            continue
        try:
            events.append((kind, decode(chunk, body, end)))
        except DecodeError:
            continue
    return events


def count(sock):
    """Number of entries in the table (``conntrack -C``)."""
    return stats_global(sock, ctnetlink.decode_stats)


def stats_global(sock, decode=ctnetlink.decode_stats_global):
    """IPCTNL_MSG_CT_GET_STATS: (entries, max entries) by default."""
    seq = next(_seq) & 0xFFFFFFFF
    sock.send(ctnetlink.stats_request(seq))
    while True:
        chunk = sock.recv()
        for mtype, flags, mseq, mpid, body, end in nlmsg.iter_messages(chunk):
            if mseq != seq or mpid != sock.port:
                continue
            if mtype == NLMSG_ERROR:
                err = nlmsg.error_code(chunk, body, end)
                if err < 0:
                    raise NetlinkError(-err)
            elif mtype >> 8 == NFNL_SUBSYS_CTNETLINK:
                return decode(chunk, body, end)


def stats_cpu(sock):
    """Per-CPU conntrack statistics (``conntrack -S``): {cpu: {name: value}}."""
    seq = next(_seq) & 0xFFFFFFFF
    sock.send(ctnetlink.stats_cpu_request(seq))
    out = {}
    while True:
        chunk = sock.recv()
        for mtype, _flags, mseq, mpid, body, end in nlmsg.iter_messages(chunk):
            if mseq != seq or mpid != sock.port:
                continue
            if mtype == NLMSG_DONE:
                return out
            if mtype == NLMSG_ERROR:
                err = nlmsg.error_code(chunk, body, end)
                if err < 0:
                    raise NetlinkError(-err)
                return out
            if mtype >> 8 == NFNL_SUBSYS_CTNETLINK:
                cpu, values = ctnetlink.decode_stats_cpu(chunk, body, end)
                out[cpu] = values
