"""flowtop's library API: read the conntrack table from Python.

    from flowtop import api
    for flow in api.dump(protocols={"tcp", "udp"}):
        print(flow.proto_name, flow.src, flow.dport, flow.bytes_orig)

``dump`` needs CAP_NET_ADMIN.  Flows are ``flowtop.model.Flow`` objects
(typed fields, see its docstring).  ``replay`` reads a ``--record`` file.
The CLI is built on these two functions.  ``flowtop.conntrack`` is an
older name of this module.
"""

import time

from .model import Flow, PROTO_NUMBERS, FAMILY_NAMES
from .netlink import conntrack as _ct
from .netlink.errors import DecodeError, DumpInterrupted, NetlinkError, RecordingError
from .netlink.socket import NetlinkSocket
from .netlink.nlmsg import iter_messages
from .netlink.uapi import AF_UNSPEC, NLMSG_DONE, NLMSG_ERROR

__all__ = ["Flow", "dump", "stream", "stamped", "replay", "refresh", "open_events", "events",
           "events_waiting", "make_filter", "open_socket", "count", "DecodeError", "NetlinkError",
           "DumpInterrupted", "RecordingError"]

_FAMILY_NUMBERS = {v: k for k, v in FAMILY_NAMES.items()}
MAX_DUMP_RETRIES = _ct.MAX_DUMP_RETRIES


def _decoder(cls=Flow, keeps=True):
    """A layout-learning decoder of Flow records (see ctdecoder.Decoder);
    ``keeps`` False: records written once and dropped (no shared ints)."""
    from .netlink.ctdecoder import Decoder, TupleTarget
    return Decoder(cls, TupleTarget(cls, keeps))


def make_filter(families=None, protocols=None):
    """A predicate over flows, or None when everything passes.

    ``families``: iterable of "ipv4"/"ipv6" or AF_* numbers; ``protocols``:
    names ("tcp", "udp", ...) or IPPROTO numbers.  None or empty: all.
    """
    fams = {(_FAMILY_NUMBERS[f] if isinstance(f, str) else int(f)) for f in (families or ())}
    protos = {(PROTO_NUMBERS[p] if isinstance(p, str) else int(p)) for p in (protocols or ())}
    if fams and protos:
        return lambda f: f.family in fams and f.l4proto in protos
    if fams:
        return lambda f: f.family in fams
    if protos:
        return lambda f: f.l4proto in protos
    return None


def _family_for(families):
    fams = set(families or ())
    if len(fams) == 1:
        f = fams.pop()
        return _FAMILY_NUMBERS[f] if isinstance(f, str) else int(f)
    return AF_UNSPEC


def open_socket(cls=Flow):
    """A ctnetlink socket to pass to ``dump`` when dumping repeatedly: it
    also keeps the decoder's learnt layouts from one dump to the next.
    Its flows are of class ``cls``, a subclass of Flow."""
    sock = NetlinkSocket()
    sock.decoder = _decoder(cls)
    return sock


def _decoder_for(sock):
    decoder = getattr(sock, "decoder", None)
    return decoder if decoder is not None else _decoder()


def passing_decoder(sock):
    """A decoder of ``sock``'s record class whose records are written once and
    dropped (one-shot output): equal ports and status words are not made one
    shared int (250k flows, ``--once`` text: 8 % less CPU)."""
    return _decoder(getattr(getattr(sock, "decoder", None), "cls", Flow), keeps=False)


def dump(families=None, protocols=None, sock=None, recorder=None):
    """The current table as a list of Flow, filtered by family and protocol.

    One AF_UNSPEC dump covers IPv4 and IPv6; a dump the kernel flags as
    interrupted is redone.  Raises NetlinkError (errno EPERM without
    CAP_NET_ADMIN), OSError from socket() (EPROTONOSUPPORT without
    nfnetlink), DumpInterrupted after repeated interruptions.
    """
    flows = _dump_raw(_family_for(families), sock, recorder)
    keep = make_filter(families, protocols)
    return flows if keep is None else [f for f in flows if keep(f)]


def _dump_raw(family, sock, recorder):
    if sock is not None:
        return _ct.dump(sock, family, recorder, _decoder_for(sock))
    with NetlinkSocket() as own:
        return _ct.dump(own, family, recorder, _decoder())


def stream(families=None, protocols=None, sock=None, recorder=None, read_ahead=False):
    """Yield the current table's flows one by one as the kernel sends them.

    Like ``dump`` but holding one datagram of flows at a time, for writers
    that print as they go (``--json``, ``--csv``).  No retry: an interrupted
    dump raises DumpInterrupted at the end.  ``recorder.begin()`` is called
    first; the caller commits.  ``read_ahead``: a thread receives the next
    datagrams (up to 64) while these are used, so the kernel's share of the
    dump runs on another core: for one-shot output, where wall time counts.
    """
    keep = make_filter(families, protocols)
    for batch in batches(families, sock, recorder, None, read_ahead):
        if keep is None:
            yield from batch
        else:
            for flow in batch:
                if keep(flow):
                    yield flow


def stamped(families=None, protocols=None, sock=None, recorder=None, clock=time.monotonic):
    """Like ``stream``, one datagram at a time, as ``(clock(), [Flow])``:
    when the kernel read each datagram's counters (see netlink.session.
    iter_dump), for rates (a dump of 100k flows
    takes a second or more, read at the pace it is decoded)."""
    keep = make_filter(families, protocols)
    for stamp, batch in batches(families, sock, recorder, None, False, clock):
        yield stamp, (batch if keep is None else [f for f in batch if keep(f)])


def batches(families, sock, recorder, decoder, read_ahead, clock=None):
    """The datagrams of one dump as lists, on ``sock`` or a socket of our own."""
    own = sock is None
    if own:
        sock = open_socket()
    try:
        if recorder is not None:
            recorder.begin()
        yield from _ct.iter_dump(sock, _family_for(families),
                                 recorder.chunk if recorder is not None else None,
                                 decoder or _decoder_for(sock), read_ahead=read_ahead,
                                 clock=clock)
    finally:
        if own:
            sock.close()


def refresh(flows, sock):
    """Fresh copies of some flows by batched per-flow GET requests:
    (list of Flow, keys of the flows the kernel no longer has)."""
    return _ct.get_many(sock, flows, _decoder_for(sock))


def open_events():
    """A socket subscribed to NEW and DESTROY events (see ``events``)."""
    sock = _ct.open_events()
    sock.decoder = _decoder()
    return sock


def events(sock):
    """The next batch of events from an ``open_events`` socket (blocks):
    [("new"|"destroy", Flow)], or [("overflow", None)] when the kernel
    dropped events and a fresh dump is needed."""
    return _ct.read_events(sock, _decoder_for(sock))


def events_waiting(sock, most=256, wait=0.5, destroy_keys=False):
    """``events`` for a non-blocking ``open_events`` socket
    (``sock.settimeout(0.0)``): the events of up to ``most`` datagrams
    waiting, after up to ``wait`` s for the first; [] when none came.
    ``destroy_keys``: a DESTROY event carries its flow's key (bytes) only."""
    return _ct.read_events_waiting(sock, _decoder_for(sock), most, wait, destroy_keys)


def pause_events(sock, paused=True):
    """Stop (``paused``) or restart the events of an ``open_events`` socket:
    stopped, the kernel sends it none (nor makes them, without another
    listener); restarted, they come from then on (a dump covers the rest).
    Events already waiting stay: ``drop_waiting`` drops them unread."""
    _ct.subscribe_events(sock, not paused)


def drop_waiting(sock):
    """Drop the datagrams waiting on a non-blocking socket, unread: how many."""
    return sock.discard()


def count(sock=None):
    """Number of entries in the table, all families (``conntrack -C``)."""
    own = sock is None
    if own:
        sock = NetlinkSocket()
    try:
        return _ct.count(sock)
    finally:
        if own:
            sock.close()


def _ends_at_its_end(data):
    """Whether the dump's first end (NLMSG_DONE/ERROR) is its last message: a
    damaged type can end it early, and the flows after would vanish unsaid."""
    ended = False
    for mtype, _flags, _seq, _pid, _body, _end in iter_messages(data):
        if ended:
            return False
        ended = mtype in (NLMSG_DONE, NLMSG_ERROR)
    return True


def replay(stream, families=None, protocols=None):
    """Yield ``(time, [Flow])`` for each dump in a recording (a binary stream).

    Raises RecordingError for a file that is not a recording, is cut short
    or was made on a machine of the other byte order; DecodeError when a
    recorded message is malformed.
    """
    from .recording import iter_dumps, read_header
    read_header(stream)
    keep = make_filter(families, protocols)
    decode = _decoder()
    for n, (when, data) in enumerate(iter_dumps(stream), 1):
        flows = []
        state = _ct.DumpState()
        _ct.feed(data, flows, state, decode=decode)
        if not state.done:
            raise RecordingError("dump %d in the recording has no end (NLMSG_DONE)" % n)
        if not _ends_at_its_end(data):
            raise RecordingError("dump %d in the recording is damaged (messages after its end)"
                                 % n)
        if state.dropped or state.unknown:
            # A recording holds what the kernel sent: a message that does not decode was
            # damaged since, and its dump would be short of flows without a word.
            raise RecordingError("dump %d in the recording is damaged (%d malformed message(s), "
                                 "%d of an unknown type)" % (n, state.dropped, state.unknown))
        yield when, (flows if keep is None else [f for f in flows if keep(f)])
