"""Where snapshots come from: the kernel (over one ctnetlink socket) or a
``--record`` file, one per tick; and the kernel's JSON Lines fast path."""

import errno
import time

from . import api
from .model import FAMILY_NAMES, PROTO_NUMBERS, Flow
from .netlink.errors import DecodeError, NetlinkError, RecordingError

FAMILY_NUMBERS = {v: k for k, v in FAMILY_NAMES.items()}


class FlowtopError(Exception):
    """An error with a one-line explanation for the user; exit status 1."""


MODULE_HINT = ("the kernel has no conntrack netlink interface: load it with "
               "'modprobe nf_conntrack_netlink' (OpenWrt: install kmod-nf-conntrack-netlink)")


class KernelSource:
    """Snapshots from the kernel over one ctnetlink socket."""

    live = True

    def __init__(self, opts, clock=time.time):
        self.opts = opts
        self.clock = clock
        self.sock = None
        self.recorder = None
        self._record_file = None

    def open(self):
        """Open the socket and prove we may read the table, before any sysctl
        is touched: without permission we say so and change nothing."""
        from .tablerows import TableFlow     # flows the live table can store bare
        self.sock = api.open_socket(TableFlow)
        if self.opts.filter:                # what the kernel can filter, it does
            from .views.filterpush import for_options
            self.sock.dump_filter = for_options(self.opts)
        try:
            api.count(self.sock)
        except NetlinkError as exc:
            if exc.errno == errno.EINVAL:
                # nfnetlink is there but no ctnetlink subsystem registered:
                # the kernel says EINVAL for an unknown subsystem.
                raise FlowtopError(MODULE_HINT) from None
            raise
        if self.opts.record:
            self._record_file = open(self.opts.record, "wb")
            from .recording import Recorder
            self.recorder = Recorder(self._record_file, self.clock)

    def snapshot(self, wants="list", enrich=None, prepare=None):
        """(time, items): for ``wants`` "list" a list of flows; "stream" an
        iterator of flows holding one datagram at a time; "stamped" one of
        (monotonic time its counters were read, [flows]) per datagram; "batches"
        one [flows] per datagram, read ahead (one-shot output); "json" an
        iterator of JSON Lines text, a datagram's lines per str (with the
        keys of ``enrich``, an Enrichment, on each line; ``prepare(flows)``
        first, per datagram, when given)."""
        now = self.clock()
        o = self.opts
        if wants == "list":
            flows = api.dump(o.families, o.protocols, self.sock, self.recorder)
            if self.recorder is not None:
                self.recorder.commit(now)
            return now, flows
        if wants == "json":
            from .views.tail import JsonTail
            tail = JsonTail(enrich) if enrich is not None else None
            if tail is not None and tail.services_only:
                items = json_lines(o.families, o.protocols, self.sock, self.recorder,
                                   now, services=tail, chunks=True)
            else:
                items = json_lines(o.families, o.protocols, self.sock, self.recorder,
                                   now, tail.line if tail is not None else None, chunks=True,
                                   prepare=prepare, tails=tail.lines if tail is not None else None,
                                   service_of=tail.service_json if tail is not None else None)
        elif wants == "batches":
            keep = api.make_filter(o.families, o.protocols)
            items = api.batches(o.families, self.sock, self.recorder,
                                api.passing_decoder(self.sock), True)
            if keep is not None:
                items = ([f for f in batch if keep(f)] for batch in items)
        elif wants == "stamped":        # (monotonic time read, [flows]) per datagram
            items = api.stamped(o.families, o.protocols, self.sock, self.recorder)
        else:
            items = api.stream(o.families, o.protocols, self.sock, self.recorder)
        return now, self._committing(items, now)

    def _committing(self, items, now):
        yield from items
        if self.recorder is not None:
            self.recorder.commit(now)

    def close(self):
        if self.sock is not None:
            self.sock.close()
        if self._record_file is not None:
            record, self._record_file = self._record_file, None
            try:
                record.close()               # flushes what a failed write left behind
            except OSError as exc:
                exc.filename = exc.filename or self.opts.record
                raise


class ReplaySource:
    """Snapshots from a ``--record`` file, one per tick, then the end."""

    live = False

    def __init__(self, opts):
        self.opts = opts
        self._file = None
        self._dumps = None
        self._next = None
        self._error = None       # what reading ahead met: raised after the dumps before it

    def open(self):
        from .recording import open_regular
        self._file = open_regular(self.opts.replay, pipes=True)
        self._dumps = api.replay(self._file, self.opts.families, self.opts.protocols)
        self._advance()
        if self._error is not None:      # not one intact dump: say so before any output
            exc, self._error = self._error, None
            raise exc

    def _advance(self):
        # One dump is read ahead (``finished``); a damaged one must not take the
        # intact dump before it down with it.
        try:
            self._next = next(self._dumps, None)
        except (RecordingError, DecodeError, NetlinkError) as exc:
            self._next, self._error = None, exc

    @property
    def finished(self):
        return self._next is None and self._error is None

    def snapshot(self, wants="list", enrich=None):
        """Next recorded dump, or None at the end of the recording; the error
        of a damaged dump once every intact dump before it was returned."""
        if self._next is None and self._error is not None:
            exc, self._error = self._error, None
            raise exc
        snap = self._next
        if snap is not None:
            self._advance()
            if wants == "batches":
                snap = (snap[0], [snap[1]])
        return snap

    def close(self):
        if self._file is not None:
            self._file.close()


def json_lines(families=None, protocols=None, sock=None, recorder=None, now=None, tail=None,
               services=None, chunks=False, prepare=None, tails=None, service_of=None):
    """Yield the current table as JSON Lines text (one str per flow, or ""
    for a flow filtered out), decoded straight from the kernel's bytes;
    with ``chunks``, one str per received datagram (its lines joined),
    which spares a Python step per flow when the text goes to a file.

    The same objects as ``json.dumps(views.record.record(flow, now))``,
    at a fraction of the cost: what ``flowtop --json`` prints.  ``tail``
    (flow -> text such as ',"pid":1') adds keys to every line; or
    ``services``, a views.tail.JsonTail of an Enrichment with only service
    names to add, whose keys are then baked into the per-layout formatters.
    ``prepare(flows)`` runs per datagram before its tails; ``tails(flows)``, when
    given, makes them a datagram at a time (``tail`` then gives none), with
    each flow's service as JSON made by the formatter from ``service_of(l4proto)``
    ({port: name as JSON}) when given.
    Reads ahead (see ``api.stream``): one-shot output.
    """
    from .netlink.ctdecoder import Decoder
    from .views.record import JsonTarget
    fams = {(FAMILY_NUMBERS[f] if isinstance(f, str) else int(f)) for f in (families or ())}
    protos = {(PROTO_NUMBERS[p] if isinstance(p, str) else int(p)) for p in (protocols or ())}
    defer = prepare is not None and tail is not None
    target = JsonTarget(fams, protos, tail, Flow, services, defer,
                        service_of if tails is not None else None)
    target.now = time.time() if now is None else now
    batches = api.batches(families, sock, recorder, Decoder(Flow, target), True)
    if defer:
        batches = _tailed(batches, prepare, tail, tails, bool(fams or protos))
    if chunks:
        for batch in batches:
            yield "".join(batch)
    else:
        for batch in batches:
            yield from batch


def _tailed(batches, prepare, tail, tails=None, filtered=True):
    """Deferred JSON lines, a batch at a time: ``prepare`` its flows (it
    may give back their columns, ``zip(*flows)``), then add each one's
    ``tail``, or make the batch's lines by ``tails(flows, heads,
    columns)``.  ``filtered``: a flow may be "" (a family or protocol
    not asked for)."""
    for batch in batches:
        pairs = [p for p in batch if p] if filtered and "" in batch else batch
        heads, entries, *services = zip(*pairs) if pairs else ((), ())
        fields = prepare(entries)
        if tails is None:
            yield [head + tail(e) + "}\n" for head, e in zip(heads, entries)]
        else:
            yield tails(entries, heads, fields, services[0] if services else None)


def one_table(source, enrich):
    """One snapshot of ``source`` in a fresh FlowTable, the enrichment ticked
    over it (``--once``, ``--delete``): (time, flows, table), or None when a
    replay has ended."""
    from .table import FlowTable
    snap = source.snapshot("list")
    if snap is None:
        return None
    now, flows = snap
    table = FlowTable()
    table.apply(flows, now, now)
    enrich.tick(table)
    return now, flows, table
