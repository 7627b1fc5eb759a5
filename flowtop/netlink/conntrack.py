"""The ctnetlink conversation: dump requests and their replies.

The protocol rules (sequence and port id, DONE, ERROR, DUMP_INTR and its
retries, ENOBUFS) live in ``session.py``; this module names the ctnetlink
requests and the decoders of their replies.
"""

import errno

from ..runtime import gc_paused
from . import ctnetlink, nlmsg, session
from .errors import DecodeError, NetlinkError
from .session import DumpState, MAX_DUMP_RETRIES  # noqa: F401 - re-exported
from .socket import NetlinkSocket
from .uapi import (IPCTNL_MSG_CT_DELETE, IPCTNL_MSG_CT_GET_STATS_CPU, IPCTNL_MSG_CT_NEW,
                   NFNL_SUBSYS_CTNETLINK, NFNLGRP_CONNTRACK_DESTROY, NFNLGRP_CONNTRACK_NEW,
                   NLMSG_ERROR, NLMSG_HDRLEN, AF_INET, AF_INET6, AF_UNSPEC)

_CT_NEW = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW
_CT_DELETE = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE
_CT_STATS_CPU = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET_STATS_CPU


def feed(chunk, out, state, seq=None, port=None, decode=ctnetlink.decode_entry):
    """Apply one received datagram of a dump to ``out`` (a list of entries):
    ``session.feed`` over IPCTNL_MSG_CT_NEW messages.  ``seq``/``port`` None
    skip the checks (replay of a recording).  ``decode`` may be a Decoder,
    whose per-layout fast functions the walk uses."""
    return session.feed(chunk, _CT_NEW, decode, out, state, seq, port)


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

    With ``sock.dump_filter`` (a ctfilter.DumpFilter) the kernel filters:
    one dump per family when its tuple needs one; a kernel that refuses the
    filter (EINVAL, EOPNOTSUPP) is asked again for everything (callers
    filter anyway) and the socket forgets the filter.
    """
    flt = getattr(sock, "dump_filter", None)
    if state is None:
        state = DumpState()
    if flt is not None:
        from . import ctfilter      # (a filter's own: not loaded by a plain dump)
    if flt is not None and family == AF_UNSPEC and ctfilter.needs_family(flt):
        if recorder is None:
            # CTA_FILTER's tuple needs a family (else EOPNOTSUPP): one dump each
            for fam in (AF_INET, AF_INET6):
                state.done = False
                yield from _filtered_dump(sock, fam, None, decode, state, read_ahead, clock, flt)
            return
        flt = ctfilter.untupled(flt)       # a recording holds one dump (one DONE)
    if flt is None:
        yield from session.iter_dump(sock, _request(family, None), _CT_NEW, decode, state,
                                     recorder, read_ahead, clock)
    else:
        yield from _filtered_dump(sock, family, recorder, decode, state, read_ahead, clock, flt)


def _request(family, flt):
    """The dump request builder ``request(seq)``: all of ``family``'s flows,
    or those the kernel's filter ``flt`` keeps."""
    if flt is None:
        return lambda seq: ctnetlink.dump_request(seq, family)
    from . import ctfilter
    return lambda seq: ctfilter.dump_request(seq, family, flt)


def _refused(exc, flt):
    return flt is not None and exc.errno in (errno.EINVAL, errno.EOPNOTSUPP)


def _filtered_dump(sock, family, recorder, decode, state, read_ahead, clock, flt):
    # The first datagram goes to the recording only once the kernel has not
    # refused the filter with it: a recording must not hold the refusal.
    held = []

    def hold(chunk):
        if held:
            recorder(held.pop())
        held.append(chunk)

    try:
        yield from session.iter_dump(sock, _request(family, flt), _CT_NEW, decode, state,
                                     hold if recorder is not None else None, read_ahead, clock)
    except NetlinkError as exc:
        if not _refused(exc, flt):
            raise
        held.clear()
        sock.dump_filter = None
        state.done = False
        yield from session.iter_dump(sock, _request(family, None), _CT_NEW, decode, state,
                                     recorder, read_ahead, clock)
    finally:
        if held:
            recorder(held.pop())


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
    with gc_paused():
        return _dump(sock, family, recorder, decode, retries)


def _dump(sock, family, recorder, decode, retries):
    flt = getattr(sock, "dump_filter", None)     # see iter_dump
    if flt is not None:
        from . import ctfilter
    if flt is not None and family == AF_UNSPEC and ctfilter.needs_family(flt):
        if recorder is None:
            return (_dump(sock, AF_INET, None, decode, retries)
                    + _dump(sock, AF_INET6, None, decode, retries))
        flt = ctfilter.untupled(flt)
    chunk = recorder.chunk if recorder is not None else None
    begin = recorder.begin if recorder is not None else None
    try:
        return session.dump(sock, _request(family, flt), _CT_NEW, decode, retries, chunk, begin)
    except NetlinkError as exc:
        if not _refused(exc, flt):
            raise
    sock.dump_filter = None      # begin() drops the refusal from the recording
    return session.dump(sock, _request(family, None), _CT_NEW, decode, retries, chunk, begin)


GET_BATCH = 256


def get_many(sock, flows, decode=ctnetlink.decode_entry):
    """Fresh copies of ``flows`` (entries: family and key are used) by
    batched IPCTNL_MSG_CT_GET requests: (found entries, keys gone).

    One send per batch; each request draws exactly one answer with its
    sequence number.  A flow the kernel no longer has answers ENOENT.
    """
    found, gone = [], []

    def answer(f, mtype, chunk, body, end):
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

    _batches(sock, flows, lambda seq, f: ctnetlink.get_request(seq, f.family, f.key), answer)
    return found, gone


def _batches(sock, flows, request, answer):
    """Send ``request(seq, flow)`` for each of ``flows``, GET_BATCH to a
    send (session.batch); ``answer(flow, mtype, buf, body, end)`` sees each
    one's answer: the kernel answers each request with exactly one message."""
    flows = list(flows)
    for start in range(0, len(flows), GET_BATCH):
        requests = {}
        for f in flows[start:start + GET_BATCH]:
            seq = session.next_seq()
            requests[seq] = (request(seq, f), f)
        _left, err = session.batch(sock, requests, answer)
        if err:
            raise NetlinkError(err)


def delete_many(sock, flows):
    """Delete ``flows`` (entries: family, key and id are used) from the
    kernel's table by batched, acknowledged IPCTNL_MSG_CT_DELETE requests:
    (keys deleted, keys already gone (ENOENT)).  Any other refusal raises
    NetlinkError (EPERM without CAP_NET_ADMIN) once every answer is read."""
    deleted, gone = [], []
    failure = []

    def answer(f, mtype, chunk, body, end):
        if mtype != NLMSG_ERROR:
            return False            # not the ACK: wait for it
        err = nlmsg.error_code(chunk, body, end)
        if err == 0:
            deleted.append(f.key)
        elif err == -errno.ENOENT:
            gone.append(f.key)
        elif not failure:
            failure.append(-err)

    _batches(sock, flows, lambda seq, f: ctnetlink.delete_request(seq, f.family, f.key, f.id),
             answer)
    if failure:
        raise NetlinkError(failure[0])
    return deleted, gone


EVENT_NEW, EVENT_DESTROY, EVENT_OVERFLOW = "new", "destroy", "overflow"


def open_events(rcvbuf=64 << 20):
    """A socket subscribed to conntrack NEW and DESTROY events, with a
    large receive buffer: at thousands of new flows a second the default
    one overflows (ENOBUFS) within a second."""
    sock = NetlinkSocket(rcvbuf=rcvbuf)
    subscribe_events(sock)
    return sock


def subscribe_events(sock, on=True):
    """Join (``on``) or leave the NEW and DESTROY event groups: left, the
    kernel sends this socket none (nor builds them, without other listeners)."""
    for group in (NFNLGRP_CONNTRACK_NEW, NFNLGRP_CONNTRACK_DESTROY):
        (sock.subscribe if on else sock.unsubscribe)(group)


def read_events(sock, decode=ctnetlink.decode_entry):
    """Block for the next datagram of events: [(EVENT_NEW|EVENT_DESTROY,
    entry)], or [(EVENT_OVERFLOW, None)] when the kernel dropped events
    (ENOBUFS): the caller must resynchronise with a dump."""
    chunk = session.events(sock)
    if chunk is None:
        return [(EVENT_OVERFLOW, None)]
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


def read_events_waiting(sock, decode=ctnetlink.decode_entry, most=256, wait=0.5,
                        destroy_keys=False):
    """``read_events`` over the datagrams waiting on a non-blocking socket
    (``session.events_waiting``: up to ``most``, ``wait`` s for the first),
    in one list; [] when none came.  ``destroy_keys`` (``decode``: a
    ctdecoder.Decoder): a DESTROY event's flow key (bytes), not its record."""
    gone = decode.key if destroy_keys else decode
    events = []
    add = events.append
    unpack, hdrlen = nlmsg.NLMSGHDR.unpack_from, NLMSG_HDRLEN
    for chunk in session.events_waiting(sock, most, wait):
        if chunk is None:
            add((EVENT_OVERFLOW, None))
            continue
        # a datagram is one event: its header read here, not by a generator
        length, mtype = unpack(chunk)[:2] if len(chunk) >= hdrlen else (0, 0)
        found = ((mtype, 0, 0, 0, hdrlen, length),) if length == len(chunk) else \
            nlmsg.iter_messages(chunk)
        try:
            for mtype, _flags, _seq, _pid, body, end in found:
                if mtype == _CT_NEW:
                    kind, fn = EVENT_NEW, decode
                elif mtype == _CT_DELETE:
                    kind, fn = EVENT_DESTROY, gone
                else:
                    continue
                try:
                    add((kind, fn(chunk, body, end)))
                except DecodeError:
                    continue            # this message; the datagram's others go on
        except DecodeError:             # a header that lies: the rest of the datagram
            continue
    return events


def count(sock):
    """Number of entries in the table (``conntrack -C``)."""
    return stats_global(sock, ctnetlink.decode_stats)


def stats_global(sock, decode=ctnetlink.decode_stats_global):
    """IPCTNL_MSG_CT_GET_STATS: (entries, max entries) by default."""
    def answer(mtype, chunk, body, end):
        if mtype >> 8 == NFNL_SUBSYS_CTNETLINK:
            return decode(chunk, body, end)
        return None
    return session.request(sock, ctnetlink.stats_request, answer)


def stats_cpu(sock):
    """Per-CPU conntrack statistics (``conntrack -S``): {cpu: {name: value}}."""
    return dict(session.dump(sock, ctnetlink.stats_cpu_request, _CT_STATS_CPU,
                             ctnetlink.decode_stats_cpu))
