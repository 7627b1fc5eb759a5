"""``--once`` as a stream: the dump is written a datagram at a time.

Each datagram's flows become rows of their own FlowTable where the writer
reads rows (one snapshot: no rates, the ages a full table gives them; the
text writer makes a dated flow its own row instead), get their enrichment ready
(the route lookups of their addresses in one batch, their reverse-DNS names
within what is left of DNS_WAIT), and go to the writer, so memory follows
a datagram (~130 flows), not the table: at 100k flows the whole-table path
peaked at 280 MB for text and 100 MB for JSON with processes.  Text needs
its column widths and the header's counts before its first row; it keeps
only each row's cell texts until the dump ends (views.oncetext.OnceText).
"""

import time
from itertools import chain

from .netlink.ctnetlink import FIELDS
from .netlink.errors import DumpInterrupted
from .netlink.session import MAX_DUMP_RETRIES

_SRC, _DST, _RSRC, _RDST = (FIELDS.index(n) for n in ("src", "dst", "reply_src", "reply_dst"))
DNS_WAIT = 1.0     # seconds to wait for reverse DNS names, in total
SILENT_AFTER = 512  # addresses asked, after which --once stops asking if under
SILENT_SHARE = 64   # one in this many has a name


def streams(opts, stats=False):
    """Whether ``opts``' --once output streams (flows, not groups; --stats
    reads the whole table for its health record first)."""
    return opts.view == "flows" and not stats


def run(source, enrich, keep, writer, retries=MAX_DUMP_RETRIES):
    """Write one snapshot of ``source`` with ``writer`` (``write_batch(rows,
    flows, wall)`` per datagram, rows of a table only if it ``wants_rows``,
    then ``finish(wall)``); ``keep``: the
    --filter/--in-iface predicate over rows, or None.  A writer that
    ``spools`` (text, CSV: nothing written before ``finish``) has an
    interrupted dump redone, as a whole-table dump would be; one that
    streams (JSON) ends with the error instead, as the JSON fast path does."""
    prepare = Preparer(enrich, translated=getattr(writer, "shows_translated", False))
    if keep is not None or writer.wants_rows:
        from .table import FlowTable        # (JSON's fast path: no table, not loaded)
    for attempt in range(retries + 1):
        snap = source.snapshot("batches")
        if snap is None:
            return
        wall, batches = snap
        try:
            for flows in batches:
                fields = prepare(flows)
                rows = None
                if keep is not None or writer.wants_rows:   # (the JSON and CSV records need none)
                    table = FlowTable()
                    table.apply(flows, wall, wall)
                    rows = list(table)
                if keep is not None:
                    rows = [r for r in rows if keep(r)]
                    flows, fields = [r.entry for r in rows], None
                writer.write_batch(rows, flows, wall, fields)
        except DumpInterrupted:
            if not writer.spools or attempt == retries:
                raise
            writer.reset()
            continue
        writer.finish(wall)
        return


class Preparer:
    """What a batch of rows needs before it is written: their route
    lookups sent in one go, their names resolved within the one DNS_WAIT
    of the whole run (then names stop: nothing after it would print them)."""

    def __init__(self, enrich, clock=time.monotonic, wait=None, translated=False):
        self.enrich = enrich
        self.clock = clock
        # translated: the reply ends' names are written too (text's XLATE column)
        self.ends = (_SRC, _DST, _RSRC, _RDST) if translated else (_SRC, _DST)
        self._columns = list        # with interfaces: columns that keep their ends for the writer
        if enrich.ifaces is not None:
            from .enrich.ifacetotals import Columns, ends_of
            self._columns, self._ends_of = Columns, ends_of
        if enrich.process is not None:
            try:
                enrich.process.refresh()
            except OSError:
                pass
            one_shot = getattr(enrich.process, "one_shot", None)
            if one_shot is not None:
                one_shot()          # each flow asked once: no answer kept across batches
        self.names = None
        if enrich.dns is not None and hasattr(enrich.dns, "wait"):
            self.names = Names(enrich.dns, clock() + (DNS_WAIT if wait is None else wait), clock)
            enrich.dns = self.names

    def __call__(self, flows):
        """Make ``flows`` ready; returns their columns (``zip(*flows)``) or None."""
        enrich = self.enrich
        if enrich.process is not None and hasattr(enrich.process, "forget_answers"):
            enrich.process.forget_answers()     # the last batch's: asked once, written
        if not flows:
            return None
        fields = self._columns(zip(*flows))     # a column per field: no attribute read a flow
        ifaces = enrich.ifaces
        if ifaces is not None:
            if getattr(ifaces, "max_entries", None) and (
                    ifaces.cached() + 2 * len(flows) > ifaces.max_entries):
                # the last batches' answers served their lines: dropped at once, not
                # evicted (a copy of 4,096 entries every other datagram: 4 % of 100k flows)
                ifaces.forget()
            if getattr(ifaces, "by_ends", False):   # one flow per distinct ends is asked
                flows = list(self._ends_of(fields, flows)[1].values())
            try:
                ifaces.prefetch(flows)
            except OSError:
                pass
        if self.names is not None:
            self.names.ready(chain.from_iterable(zip(*(fields[i] for i in self.ends))))
        return fields


class Names:
    """The resolver as --once reads it: the names of each batch's addresses
    waited for until the run's one deadline, and afterwards only names
    already found (a lookup past the deadline would queue work no output
    waits for: 87k distinct addresses kept the workers busy for seconds)."""

    def __init__(self, resolver, deadline, clock):
        self.resolver = resolver
        self.deadline = deadline
        self.clock = clock
        self.known = {}         # address -> name, the names found (few: no misses kept)
        self.tried = set()      # addresses waited for (until the deadline)
        self.final = None       # past the deadline (queue dropped): all lookup will answer

    def ready(self, addrs):
        left = self.deadline - self.clock()
        if left <= 0:
            self._stop()
            return
        known = self.known
        todo = [a for a in dict.fromkeys(addrs) if a and a not in known]
        if todo:
            self.tried.update(todo)     # one without an answer yet is asked again next batch
            for addr, name in self.resolver.wait(todo, left).items():
                if name:
                    known[addr] = name
        if getattr(self.resolver, "silent", False) or (
                len(self.tried) >= SILENT_AFTER and len(known) * SILENT_SHARE < len(self.tried)):
            # no server answers (the resolver's errors say so), or hardly a name (localhost,
            # /etc/hosts) among the first SILENT_AFTER addresses: a namespace or router
            # without DNS (87k failing lookups took the whole DNS_WAIT, 1 s)
            self.deadline = self.clock()
            self._stop()

    def _stop(self):
        """Past the wait: the names still queued would be resolved for
        nobody, on a router's one core beside the dump (armhf, no DNS,
        250 addresses: names on still cost 1.3 s, bench/README)."""
        if self.final is None:
            self.final = self.known
            drop = getattr(self.resolver, "drop_queued", None)
            if drop is not None:
                drop()

    def lookup(self, addr):
        return self.known.get(addr)

    def __getattr__(self, name):        # resolving_at, stats, close: the resolver's
        return getattr(self.resolver, name)
