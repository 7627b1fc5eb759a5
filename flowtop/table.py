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
from collections import deque

from .tablerows import (   # noqa: F401 (Row, TableFlow, open_counts, MAX_DELTA: importable here)
    MAX_DELTA, MIN_INTERVAL, FreshFlow, Row, StaleFlow, StaleFresh, TableFlow, closed_copy,
    open_counts, reads_idle, tally,
)
from .tablerows import idle_kept as _idle_kept, rated_row as _row, unmoved as _unmoved
from .tablerows import uncounted_kept as _uncounted_kept
from .tablerows import _BO, _BR, _ID, _KEY, _MARK, _PO, _PR, _START, _STATE, _STATUS

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
        self.added = 0            # rows full applies found new, so far (a flood's size)
        self._held = 0            # rows held as the last full apply began
        # Kept as rows change, so that no tick walks every row for them: the
        # open rows' Tally (None: recounted when asked), the keys of closed rows.
        self._tally = None
        self._closed = set()
        # Counts the changes a reader can see (a row added, gone, or reading
        # otherwise): equal versions, equal rows (a static table's ticks).
        self.version = 0
        # Since take_changes(): the keys of rows changed (in order) and deleted,
        # or everything (a full apply that changed over a quarter of the rows).
        self._log, self._dropped, self._log_all = {}, set(), True

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
        self._held = len(self.rows)     # before: the rows it adds are new (``added``)
        try:
            end = self._apply_full(batches, start, wall)
        except BaseException:
            # Rows listed before the failure were updated in place; a bare
            # one stored then reads as sampled at the last full apply (its
            # next rate is a little low), or now if there was none.
            self._tally = None
            self._closed = {k for k, r in self.rows.items() if r.closed}
            self.version += 1
            self._log_all = True
            if self._bare_seen is None:
                self._bare_seen = start
            raise
        self._bare_seen = start
        self._bare_span = end - start

    def _apply_full(self, batches, now, wall):
        """``apply_stamped``'s loop, in place (see the top): Rows carry their apply's ``gen``, bare
        records are stale (a class) until listed; a raise leaves the rows listed so far."""
        rows, gen = self.rows, _mark_stale(self.rows)
        rows_get, touched = rows.get, deque(maxlen=len(rows) // 4 + 65)   # (see _sweep)
        stale_idle, stale_fresh, fresh_cls = StaleFlow, StaleFresh, FreshFlow
        row_cls, bare_cls, bare_seen = Row, TableFlow, self._bare_seen
        min_dt, row, span, touch = MIN_INTERVAL, _row, self._bare_span, touched.append
        # Inlined: a call per flow costs as much as the rest; new and moving flows make one.
        for now, entries in batches:
            for e in entries:
                key = e[_KEY]
                prev = rows_get(key)
                if prev is None:
                    touch(key)
                    if type(e) is bare_cls and e[_START]:
                        e.__class__ = fresh_cls         # first sight, in a full snapshot
                        rows[key] = e
                    else:
                        rows[key] = row(e, key, None, None, now, now, gen, wall, span)
                    continue
                t = type(prev)
                if t is row_cls:
                    pe = prev.entry     # listed twice in one dump: dt 0, rates kept
                    pseen = now if prev.gen == gen else prev.seen
                else:
                    pe = prev               # stale: sampled at the last full apply,
                    pseen = bare_seen if t is stale_idle or t is stale_fresh else now
                if e[_ID] != pe[_ID] or e[_START] != pe[_START]:
                    touch(key)
                    rows[key] = row(e, key, None, None, now, now, gen, wall, span)   # re-created
                    continue
                if (e[_BO] == pe[_BO] and e[_BR] == pe[_BR] and e[_PO] == pe[_PO]
                        and e[_PR] == pe[_PR] and e[_BO] is not None and e[_STATE] == pe[_STATE]
                        and e[_STATUS] == pe[_STATUS] and e[_MARK] == pe[_MARK]):
                    # Nothing moved: the old record is the idle row (no Row; ~100 B a flow)
                    if now - pseen >= min_dt and pe[_START]:
                        t = type(pe)
                        if t is stale_idle:
                            pe.__class__ = bare_cls     # listed again: idle, as it was
                            rows[key] = pe
                            continue
                        if t is bare_cls or t is stale_fresh or t is fresh_cls:
                            if t is not bare_cls or (prev is not pe and not reads_idle(prev)):
                                touch(key)    # no longer new; a Row that moved, idle now
                            pe.__class__ = bare_cls
                            rows[key] = pe
                            continue
                        if type(e) is bare_cls:
                            touch(key)
                            rows[key] = e
                            continue
                    if type(prev) is row_cls and now - pseen >= min_dt and reads_idle(prev):
                        prev.seen, prev.gen = now, gen   # the idle Row, in place (_idle_kept)
                        continue
                    e, key = pe, pe[_KEY]
                touch(key)
                rows[key] = row(e, key, prev, pe, pseen, now, gen, wall, span)
        self._sweep(rows, gen, touched)
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
            elif _uncounted_kept(prev, e, pe, now):     # the same, without counters
                rows[prev.key] = prev
                continue
            rows[key] = _row(e, key, prev, pe, pseen, now, 0, wall, span)
        self.rows = rows

    def _sweep(self, rows, gen, touched):
        """After a full apply (``touched``: the keys of the rows it changed): the
        rows it did not list (still stale, or a Row of an older apply) have
        vanished and start to linger.  The rest are the open rows, counted
        afresh (a sum kept by adding and taking away drifts)."""
        self.added += len(rows) - self._held
        vanished = {k: r for k, r in rows.items()
                    if (r.gen != gen if type(r) is Row
                        else type(r) is StaleFlow or type(r) is StaleFresh)}
        # The changes a reader follows (views.select.Selection: the rows past the
        # filters by key, not a pass over 250k, ~60 ms, each full dump); past a
        # quarter of the table, "anything" (a pass costs less than following),
        # and none kept (--once and the exports never take them).  ``touched``
        # holds that many at most: a list of all 250k keys of a first-seen table
        # turning idle raised the live view's peak RSS by ~20 MiB.
        if vanished:
            self._linger(vanished, rows)
        closing = [k for k in vanished if k in rows]    # (in the table's order)
        self._closed = set(closing)
        log = self._log
        if self._log_all or len(touched) == touched.maxlen \
                or len(touched) + len(vanished) + len(log) > len(rows) // 4 + 64:
            self._log_all = True
            self._log, self._dropped = {}, set()
        else:                           # (the vanished ones left: dropped by _linger)
            log.update(dict.fromkeys(touched))
            log.update(dict.fromkeys(closing))
        self._tally = tally(rows.values())
        if touched or vanished:
            self.version += 1
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
        closing = list(self._closed)
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
        # the rows whose count changes (the closing ones count neither before nor after)
        touched = dict.fromkeys(sub.rows)
        touched.update(dict.fromkeys(gone))
        self._recount(touched, -1)
        changed = bool(closing)
        self._age(closing)
        closed, log = self._closed, self._log
        for key, r in sub.rows.items():
            prev = rows.get(key)
            if prev is not r and not (prev is not None and r.entry is prev.entry
                                      and reads_idle(r) and reads_idle(prev)):
                changed = True
                log[key] = None
            rows[key] = r
            closed.discard(key)
        room = self.linger_max
        for key in gone:
            r = rows.get(key)
            if r is not None and not r.closed and key not in sub.rows:
                changed = True
                if room is None or room > 0:
                    rows[key] = closed_copy(r, 1, self.seen(r))
                    closed.add(key)
                    log[key] = None
                    room = None if room is None else room - 1
                else:
                    self._drop(key)
        self.rows = rows
        self._recount(touched, 1)
        if changed:
            self.version += 1
        self._compact()

    def _age(self, closing):
        """The closed rows of ``closing`` one tick older, or gone after ``linger``."""
        rows, closed = self.rows, self._closed
        for key in closing:
            r = rows.get(key)
            if r is None or not r.closed:
                closed.discard(key)
            elif r.closed >= self.linger:
                self._drop(key)
                closed.discard(key)
            else:
                rows[key] = closed_copy(r, r.closed + 1, r.seen)
                self._log[key] = None

    def _drop(self, key):
        """Delete ``key``'s row on a partial sample (logged: take_changes)."""
        del self.rows[key]
        self._deleted += 1
        self._log.pop(key, None)      # back later: logged again, where the dict puts it
        self._dropped.add(key)

    def take_changes(self):
        """What changed since the last call: (keys deleted, {key: its row,
        None if gone} in the order the rows were changed or added), or None
        when anything may have (a full apply that changed over a quarter of
        the rows, or failed)."""
        out = None if self._log_all else (self._dropped, {k: self.rows.get(k) for k in self._log})
        self._log, self._dropped, self._log_all = {}, set(), False
        return out

    def _recount(self, keys, sign):
        """Count the rows of ``keys`` in the Tally (``sign`` -1: out)."""
        if self._tally is not None:
            get = self.rows.get
            self._tally.merge(tally([r for r in map(get, keys) if r is not None]), sign)

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
                self._dropped.add(key)
                self._log.pop(key, None)

    def open_keys(self):
        return [k for k, r in self.rows.items() if not r.closed]

    def tally(self):
        """The open rows' Tally (tablerows), kept as rows change: read it,
        do not change it (``copy`` it to keep it past the next tick)."""
        if self._tally is None:
            self._tally = tally(self.rows.values())
        return self._tally

    def counts(self):
        """Protocol number -> number of open rows."""
        return dict(self.tally().protos)

    def totals(self):
        """(bytes/s orig, bytes/s reply, any rate known) over open rows;
        an unknown rate counts as 0."""
        return self.tally().totals()
