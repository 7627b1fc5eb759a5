"""The refresh engine: one conntrack snapshot per tick in, rows with rates out.

Pure: no I/O and no clock reads.  The caller reads the monotonic and the
wall clock once per tick and passes both in, so tests drive the engine with
a fake clock; a live full dump brings one monotonic time per datagram
(``apply_stamped``: a dump of 100k flows is read over a second or more).

Identity is ``entry.key`` (raw original tuple + zone).  The conntrack id is
a 32-bit hash that repeats across flows, so it is only a check: the same key
with another id or another kernel start timestamp is a flow the kernel
destroyed and re-created, and starts over as new.

Each tick builds fresh Row objects and updates the dict in place (a new
5 MB dict per full dump at 100k flows fragmented the C heap), so rows
taken from an earlier tick (collector.Snapshot, a list drawn by another
thread) do not change under their reader - with two exceptions that
change a bare record's class only: during a full apply bare records are
marked stale (a class that reads the same) until listed again, and a
FreshFlow (a bare row on first sight) becomes an idle TableFlow when the
next full snapshot finds it idle, so an older snapshot may show it idle
(0 B/s) a tick early instead of "rate unknown".  Treat rows as read-only.
Updating Rows in place measured ~0.4 us/flow cheaper at 100k (up to ~2 us
when the allocations trigger a full GC), at the price of that guarantee.
The rows themselves, and why idle flows are stored bare: ``tablerows``.
"""

import itertools

from .netlink.ctnetlink import FIELDS
from .tablerows import (   # Row, TableFlow, FreshFlow, open_counts: importable from here too
    FreshFlow, Row, StaleFlow, StaleFresh, TableFlow, closed_copy, new_row, open_counts,
)

_KEY = FIELDS.index("key")
_ID = FIELDS.index("id")
_START = FIELDS.index("start")
_PROTO = FIELDS.index("l4proto")
_PO = FIELDS.index("packets_orig")
_BO = FIELDS.index("bytes_orig")
_PR = FIELDS.index("packets_reply")
_STATE = FIELDS.index("state")
_STATUS = FIELDS.index("status")
_MARK = FIELDS.index("mark")
_BR = FIELDS.index("bytes_reply")

MIN_INTERVAL = 0.001      # seconds; below this a delta is noise (or a repeated sample)
MAX_DELTA = 1 << 62       # a larger counter step is a reset or garbage, not traffic


_GENERATION = itertools.count(1)


def _mark_stale(rows):
    """Before a full apply: every bare record becomes stale (its class)
    until the dump lists it again.  Returns the apply's number (``gen``)."""
    for r in rows.values():
        t = type(r)
        if t is TableFlow:
            r.__class__ = StaleFlow
        elif t is FreshFlow:
            r.__class__ = StaleFresh
    return next(_GENERATION)


def _unmoved(e, pe):
    """Nothing but the timeout moved from ``pe`` to ``e`` (same flow)."""
    return (e[_BO] == pe[_BO] and e[_BR] == pe[_BR] and e[_PO] == pe[_PO]
            and e[_PR] == pe[_PR] and e[_BO] is not None and e[_STATE] == pe[_STATE]
            and e[_STATUS] == pe[_STATUS] and e[_MARK] == pe[_MARK])


def _idle_kept(prev, now, pseen, gen):
    """An idle Row (rates 0, open, not new) listed again is kept and dated
    ``now`` in place (readers of a snapshot never use ``seen``): True."""
    if (type(prev) is Row and prev.rate_orig == 0.0 and prev.rate_reply == 0.0
            and not prev.closed and prev.pps_orig == 0.0 and prev.pps_reply == 0.0
            and not prev.is_new and now - pseen >= MIN_INTERVAL):
        prev.seen = now
        prev.gen = gen
        return True
    return False


def _row(e, key, prev, pe, pseen, now, gen, wall, fresh_span):
    """A new Row for ``e``: a flow first seen or re-created (``prev`` None:
    no rates yet), or listed before (``prev``, its record ``pe`` sampled at
    ``pseen``: rates over the time since).  ``fresh_span``: how long the last
    full dump took; a flow first seen in it is stored bare, dated at its
    start, though its counters were read up to that much later."""
    r = new_row(Row)
    r.entry = e
    r.key = key
    r.seen = now
    r.closed = 0
    r.gen = gen
    if prev is None:
        start = e[_START]
        if start:
            r.start_wall = start / 1e9
            r.age_approx = False
        else:
            r.start_wall = wall
            r.age_approx = True
        r.rate_orig = r.rate_reply = r.pps_orig = r.pps_reply = None
        r.is_new = True
        return r
    r.start_wall = prev.start_wall
    r.age_approx = prev.age_approx
    r.is_new = prev.is_new and pseen == now    # same tick only
    dt = now - pseen
    if dt < MIN_INTERVAL:
        # Too short to divide by (or the clock stepped back): keep the
        # last rates; the new sample is the base for the next delta.
        r.rate_orig, r.rate_reply = prev.rate_orig, prev.rate_reply
        r.pps_orig, r.pps_reply = prev.pps_orig, prev.pps_reply
    elif fresh_span * 20 > dt and (type(prev) is StaleFresh or type(prev) is FreshFlow):
        # its base time is unsure by more than 5 %: rate unknown
        r.rate_orig = r.rate_reply = r.pps_orig = r.pps_reply = None
    else:
        bo, br, po, pr = e[_BO], e[_BR], e[_PO], e[_PR]
        if bo == pe[_BO] and br == pe[_BR] and po == pe[_PO] and pr == pe[_PR] and bo is not None:
            # Idle: the common case in a big table, worth skipping the sums.
            r.rate_orig = r.rate_reply = r.pps_orig = r.pps_reply = 0.0
        else:
            # A counter None (accounting off), stepping back (reset) or
            # moving absurdly far: rate unknown, the new value is the base.
            max_d = MAX_DELTA
            p = pe[_BO]
            r.rate_orig = (bo - p) / dt if bo is not None and p is not None \
                and 0 <= bo - p <= max_d else None
            p = pe[_BR]
            r.rate_reply = (br - p) / dt if br is not None and p is not None \
                and 0 <= br - p <= max_d else None
            p = pe[_PO]
            r.pps_orig = (po - p) / dt if po is not None and p is not None \
                and 0 <= po - p <= max_d else None
            p = pe[_PR]
            r.pps_reply = (pr - p) / dt if pr is not None and p is not None \
                and 0 <= pr - p <= max_d else None
    return r


class FlowTable:
    """Flows by key, updated once per tick by ``apply``.

    Cost is linear in the number of flows: one dict pop, one Row and a few
    comparisons per entry (no arithmetic for idle flows), then one pass over
    the flows that vanished.
    """

    def __init__(self, linger=2, linger_max=None):
        self.linger = linger      # ticks a vanished flow stays (dimmed) before it is dropped
        # At most this many flows start lingering a tick (None: all); the rest
        # leave at once.  At 20,000 closing flows a second, 2-3 s ticks kept
        # 100k+ closed rows: more than the open ones, for no reader.
        self.linger_max = linger_max
        self.rows = {}            # key -> Row or a bare record, in order of first sight
        self._bare_seen = None    # when the TableFlow rows were sampled (last full apply)
        self._bare_span = 0.0     # how long that apply's dump took (first to last stamp)
        self._deleted = 0         # keys deleted from self.rows since it was last compacted
        self._totals = None
        self._counts = None

    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows.values())

    def __contains__(self, key):
        return key in self.rows

    def get(self, key):
        return self.rows.get(key)

    def seen(self, row):
        """When ``row`` (a value of this table) was sampled."""
        return row.seen if type(row) is Row else self._bare_seen

    def apply(self, entries, now, wall):
        """Apply one full snapshot (an iterable of CtEntry) taken at monotonic
        time ``now`` and wall time ``wall`` (epoch seconds)."""
        self.apply_stamped(((now, entries),), now, wall)

    def apply_stamped(self, batches, start, wall):
        """Apply one full snapshot given as ``(monotonic time, entries)``
        per datagram, each stamped when it was received; ``start``: the
        time read before the dump was asked for.  A dump at 100k flows
        takes 1-1.5 s: one stamp for all of it put rates 40-140 % off
        around every dump.  Idle flows stored bare are dated ``start``
        (their counters were the same then: exact for a later delta)."""
        try:
            end = self._apply_full(batches, start, wall)
        except BaseException:
            # Rows listed before the failure were updated in place; a bare
            # one stored then reads as sampled at the last full apply (its
            # next rate is a little low), or now if there was none.
            self._totals = self._counts = None
            if self._bare_seen is None:
                self._bare_seen = start
            raise
        self._bare_seen = start
        self._bare_span = end - start

    def _apply_full(self, batches, now, wall):
        """``apply_stamped``'s loop, in place (no second dict: see the top):
        Rows carry the number of the apply that stored them (``gen``), bare
        records are stale (their class) until listed.  If ``batches`` raises
        half way, the rows listed so far stay updated and nothing is closed."""
        rows, gen = self.rows, _mark_stale(self.rows)
        rows_get = rows.get
        stale_idle, stale_fresh, fresh_cls = StaleFlow, StaleFresh, FreshFlow
        row_cls, bare_cls, bare_seen = Row, TableFlow, self._bare_seen
        min_dt, row, span = MIN_INTERVAL, _row, self._bare_span
        # Inlined: a call per flow costs as much as the rest; new and moving flows make one.
        for now, entries in batches:
            for e in entries:
                key = e[_KEY]
                prev = rows_get(key)
                if prev is None:
                    if type(e) is bare_cls and e[_START]:
                        e.__class__ = fresh_cls         # first sight, in a full snapshot
                        rows[key] = e
                    else:
                        rows[key] = row(e, key, None, None, now, now, gen, wall, span)
                    continue
                t = type(prev)
                if t is row_cls:
                    pe = prev.entry
                    # listed twice in one dump: dt 0, rates kept
                    pseen = now if prev.gen == gen else prev.seen
                else:
                    pe = prev               # stale: sampled at the last full apply,
                    pseen = bare_seen if t is stale_idle or t is stale_fresh else now
                if e[_ID] != pe[_ID] or e[_START] != pe[_START]:
                    rows[key] = row(e, key, None, None, now, now, gen, wall, span)   # re-created
                    continue
                if (e[_BO] == pe[_BO] and e[_BR] == pe[_BR] and e[_PO] == pe[_PO]
                        and e[_PR] == pe[_PR] and e[_BO] is not None and e[_STATE] == pe[_STATE]
                        and e[_STATUS] == pe[_STATUS] and e[_MARK] == pe[_MARK]):
                    # Nothing moved (only the timeout counts down): the old record is the
                    # idle row (no Row), keeping the key object (~100 B a flow for two).
                    if now - pseen >= min_dt and pe[_START]:
                        t = type(pe)
                        if t is bare_cls:
                            rows[key] = pe
                            continue
                        if t is stale_idle or t is stale_fresh or t is fresh_cls:
                            pe.__class__ = bare_cls     # listed again, and not new: idle
                            rows[key] = pe
                            continue
                        if type(e) is bare_cls:
                            rows[key] = e
                            continue
                    if (type(prev) is row_cls and prev.rate_orig == 0.0 and not prev.closed
                            and prev.rate_reply == 0.0 and prev.pps_orig == 0.0 and not prev.is_new
                            and prev.pps_reply == 0.0 and now - pseen >= min_dt):
                        prev.seen, prev.gen = now, gen   # the idle Row, in place (_idle_kept)
                        continue
                    e = pe
                    key = pe[_KEY]
                rows[key] = row(e, key, prev, pe, pseen, now, gen, wall, span)
        self._sweep(rows, gen)
        return now

    def _apply_sample(self, entries, now, wall):
        """A partial sample between full snapshots (``update``): ``self.rows``
        holds the rows of its keys, and becomes a new dict of Rows."""
        old_get = self.rows.get
        rows = {}
        rows_get = rows.get
        bare_seen, span = self._bare_seen, self._bare_span
        for e in entries:
            key = e[_KEY]
            prev = rows_get(key)
            if prev is not None:    # listed twice in one sample: dt 0, rates kept
                pe, pseen = prev.entry, now
            else:
                prev = old_get(key)
                if prev is None:
                    rows[key] = _row(e, key, None, None, now, now, 0, wall, span)
                    continue
                if type(prev) is Row:
                    pe, pseen = prev.entry, prev.seen
                else:
                    pe, pseen = prev, bare_seen
            if e[_ID] != pe[_ID] or e[_START] != pe[_START]:
                rows[key] = _row(e, key, None, None, now, now, 0, wall, span)   # re-created
                continue
            if _unmoved(e, pe):
                # an idle Row is kept as it is: a big idle table costs no allocation a tick
                if _idle_kept(prev, now, pseen, 0):
                    rows[prev.key] = prev
                    continue
                e = pe
                key = pe[_KEY]
            rows[key] = _row(e, key, prev, pe, pseen, now, 0, wall, span)
        self.rows = rows

    def _sweep(self, rows, gen):
        """After a full apply: the rows it did not list (still stale, or a
        Row of an older apply) have vanished and start to linger."""
        vanished = {k: r for k, r in rows.items()
                    if (r.gen != gen if type(r) is Row
                        else type(r) is StaleFlow or type(r) is StaleFresh)}
        if vanished:
            self._linger(vanished, rows)
        self._totals = self._counts = None
        self._compact()

    def _compact(self):
        """A dict that rows keep leaving and joining fills with deleted
        slots; when they run out, Python resizes it for 3x its flows (a
        10 MB table at 100k).  A copy made before then is sized for 1.5x
        (5 MB): made after deletions of a quarter of the table."""
        if self._deleted > len(self.rows) // 4 + 64:
            self.rows = dict(self.rows)
            self._deleted = 0

    def update(self, entries, now, wall, gone=()):
        """Apply a partial sample between full snapshots: fresh ``entries``
        (answers to per-flow GETs, NEW events) and the keys in ``gone``
        (DESTROY events, flows a GET no longer finds).  Every other row
        stays as it is - its rate is as old as its last sample - except
        that closed rows age one tick and leave after ``linger``."""
        entries = list(entries)
        closing = self._closing()
        if not entries and not gone and not closing:
            return
        sub = FlowTable(self.linger)
        sub._bare_seen, sub._bare_span = self._bare_seen, self._bare_span
        old = self.rows
        sub.rows = {e[_KEY]: old[e[_KEY]] for e in entries if e[_KEY] in old}
        sub._apply_sample(entries, now, wall)
        # In place: nothing can fail from here on, and no reader holds the
        # dict (snapshots take a list of its rows); a copy per tick would
        # be 5 MB at 100k flows.
        rows = old
        for key in closing:
            r = rows.get(key)
            if r is None or not r.closed:
                continue
            if r.closed >= self.linger:
                del rows[key]
                self._deleted += 1
            else:
                rows[key] = closed_copy(r, r.closed + 1, r.seen)
        rows.update(sub.rows)
        room = self.linger_max
        for key in gone:
            r = rows.get(key)
            if r is not None and not r.closed and key not in sub.rows:
                if room is None or room > 0:
                    rows[key] = closed_copy(r, 1, self.seen(r))
                    room = None if room is None else room - 1
                else:
                    del rows[key]
                    self._deleted += 1
        self.rows = rows
        self._totals = self._counts = None
        self._compact()

    def _closing(self):
        """Keys of closed rows: the rows that age on a partial tick."""
        return [k for k, r in self.rows.items() if r.closed]

    def _linger(self, vanished, rows):
        """Keep vanished flows ``linger`` ticks with closed = 1, 2...; their
        rates become unknown (nothing was measured).  ``rows`` may hold
        them (a full apply, in place): they leave it after ``linger``."""
        linger = self.linger
        seen = self.seen
        room = self.linger_max
        for key, prev in vanished.items():
            if prev.closed < linger and (prev.closed or room is None or room > 0):
                if not prev.closed and room is not None:
                    room -= 1
                rows[key] = closed_copy(prev, prev.closed + 1, seen(prev))
            elif key in rows:
                del rows[key]
                self._deleted += 1

    def open_keys(self):
        return [k for k, r in self.rows.items() if not r.closed]

    def counts(self):
        """Protocol number -> number of open rows (cached per tick)."""
        if self._counts is None:
            self._counts = open_counts(self.rows.values())
        return dict(self._counts)

    def totals(self):
        """(bytes/s orig, bytes/s reply, any rate known) over open rows;
        an unknown rate counts as 0 (cached per tick)."""
        if self._totals is None:
            tx = rx = 0.0
            known = False
            bare = TableFlow          # idle: adds 0.0, and "known" once any row is
            for r in self.rows.values():
                if r.closed:
                    continue
                if type(r) is bare:
                    known = True
                    continue
                a, b = r.rate_orig, r.rate_reply
                if a is not None:
                    tx += a
                    known = True
                if b is not None:
                    rx += b
                    known = True
            self._totals = (tx, rx, known)
        return self._totals
