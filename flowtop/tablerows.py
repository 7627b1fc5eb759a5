"""The rows a FlowTable holds: a Row per flow that moved, or the bare
record itself for a flow that did not.

Memory: most flows of a big table are idle.  A full snapshot stores an
idle flow (counters unchanged, timestamps on) as its bare record, a
TableFlow, which reads as a Row with zero rates, and a flow it sees for
the first time as a FreshFlow (reads as new, rates unknown); flows that
moved or closed, or lack timestamps, get a Row.  That saves a Row and its
start time (~160 B) per idle flow, and on the first snapshot of a big
table, per flow.  (Copying records to change their class measured a
higher peak than a Row: a published snapshot keeps the old copies alive
for a tick.  Hence the class reassignment.)  Only the table's own
TableFlow entries (the KernelSource decodes into that class) are stored
bare, and only those have their class changed.
"""

from .model import Flow
from .netlink.ctnetlink import FIELDS

# the record's fields by index (table.py's loop reads these too)
_KEY, _ID, _START = FIELDS.index("key"), FIELDS.index("id"), FIELDS.index("start")
_PROTO, _STATE, _STATUS, _MARK = (FIELDS.index(n) for n in ("l4proto", "state", "status", "mark"))
_BYTES = _BO = FIELDS.index("bytes_orig")
_BR, _PO, _PR = FIELDS.index("bytes_reply"), FIELDS.index("packets_orig"), \
    FIELDS.index("packets_reply")

MIN_INTERVAL = 0.001      # seconds; below this a delta is noise (or a repeated sample)
MAX_DELTA = 1 << 62       # a larger counter step is a reset or garbage, not traffic


class Row:
    """One flow of the table: the latest entry plus what only history knows.

    Rates are bytes/packets per second over the last interval, None when
    unknown (first sight, accounting off, counter reset, closed).  ``closed``
    is 0 while the kernel lists the flow, then 1, 2... on the ticks after it
    vanished (shown dimmed) until the table's linger runs out.  ``seen`` is
    the (monotonic) time of the sample the row holds.
    """

    __slots__ = ("entry", "key", "seen", "start_wall", "age_approx",
                 "rate_orig", "rate_reply", "pps_orig", "pps_reply", "is_new", "closed",
                 "gen")          # the full apply that last stored it (0: none)

    def age(self, wall):
        """Seconds since the flow started, at wall time ``wall`` (>= 0)."""
        return max(0.0, wall - self.start_wall)

    def __repr__(self):
        return "Row(%s)" % ", ".join("%s=%r" % (n, getattr(self, n, None))
                                     for n in self.__slots__ if n not in ("key", "gen"))


class TableFlow(Flow):
    """A Flow that reads as an idle Row (rates 0.0, not new, open): the
    table stores idle flows this way, without a Row.  Only flows with a
    kernel start timestamp are stored bare (their age needs no history);
    their ``seen`` is the time of the table's last full snapshot."""

    __slots__ = ()
    rate_orig = rate_reply = pps_orig = pps_reply = 0.0
    is_new = False
    closed = 0
    age_approx = False

    @property
    def entry(self):
        return self

    @property
    def start_wall(self):
        start = self[_START]
        return None if start is None else start / 1e9

    def age(self, wall):
        """Seconds since the flow started, at wall time ``wall`` (>= 0);
        None without a start timestamp (such a flow is never stored bare)."""
        start = self[_START]
        return None if start is None else max(0.0, wall - start / 1e9)


class FreshFlow(TableFlow):
    """A TableFlow seen for the first time by a full snapshot: it reads as
    a new row with unknown rates, and is stored without a Row too.  The
    next full snapshot that finds it idle makes it a TableFlow in place
    (its class is reassigned: the two differ only in class attributes), so
    first sight costs no Row and idleness no copy."""

    __slots__ = ()
    rate_orig = rate_reply = pps_orig = pps_reply = None
    is_new = True


class StaleFlow(TableFlow):
    """A TableFlow during a full apply, until the snapshot lists it again:
    what is still stale at the end has vanished.  Reads like TableFlow."""

    __slots__ = ()


class StaleFresh(FreshFlow):
    """The same for a FreshFlow."""

    __slots__ = ()


def open_counts(rows, field=_PROTO):
    """Protocol number (or the value of another ``field`` index) -> number
    of open rows among ``rows`` (values of a FlowTable).  Runs over every
    row: no property call for bare ones."""
    counts = {}
    get = counts.get
    bare = TableFlow
    for r in rows:
        if type(r) is bare:
            p = r[field]
        elif not r.closed:
            p = r.entry[field]
        else:
            continue
        counts[p] = get(p, 0) + 1
    return counts


class Tally:
    """What the header and the collector read of a table's open rows: open
    rows per protocol and per status word, those without byte counters, and
    the rate totals.  The table keeps it as rows change (``merge``), so no
    reader walks every row a tick: at 250k rows the header's pass and the
    collector's were ~50 ms each, every tick."""

    __slots__ = ("protos", "statuses", "lacking", "tx", "rx", "known")

    def __init__(self):
        self.protos, self.statuses = {}, {}
        self.lacking = 0
        self.tx = self.rx = 0.0
        self.known = 0            # open rows with a known rate (0.0 is one)

    def merge(self, part, sign=1):
        """Count the rows of the Tally ``part`` in (``sign`` -1: out).  One
        ``tally`` pass over a flood's 40k changed rows a tick, then this: a
        call per row was 120 ms a tick, more than the passes it replaced."""
        for mine, theirs in ((self.protos, part.protos), (self.statuses, part.statuses)):
            for k, n in theirs.items():
                _bump(mine, k, sign * n)
        self.lacking += sign * part.lacking
        self.known += sign * part.known
        # a sum kept by adding and taking away: recounted at each full apply
        self.tx = max(0.0, self.tx + sign * part.tx) if self.known else 0.0
        self.rx = max(0.0, self.rx + sign * part.rx) if self.known else 0.0

    def totals(self):
        """FlowTable.totals()."""
        return (self.tx, self.rx, self.known > 0)

    def copy(self):
        t = Tally()
        t.protos, t.statuses = dict(self.protos), dict(self.statuses)
        t.lacking, t.tx, t.rx, t.known = self.lacking, self.tx, self.rx, self.known
        return t


def _bump(counts, key, sign):
    n = counts.get(key, 0) + sign
    if n:
        counts[key] = n
    else:
        del counts[key]


def tally(rows):
    """A Tally of ``rows`` (values of a FlowTable), in one pass over every
    row: no property call for bare ones."""
    t = Tally()
    protos, statuses = t.protos, t.statuses
    pget, sget = protos.get, statuses.get
    lacking = known = 0
    tx = rx = 0.0
    bare = TableFlow
    for r in rows:
        if type(r) is bare:             # idle: rates 0.0, known
            e = r
            known += 1
        elif r.closed:
            continue
        else:
            e = r.entry
            a, b = r.rate_orig, r.rate_reply
            if a is not None or b is not None:
                known += 1
                if a:
                    tx += a
                if b:
                    rx += b
        p = e[_PROTO]
        protos[p] = pget(p, 0) + 1
        p = e[_STATUS]
        statuses[p] = sget(p, 0) + 1
        if e[_BYTES] is None:
            lacking += 1
    t.lacking, t.known, t.tx, t.rx = lacking, known, tx, rx
    return t


def reads_idle(r):
    """Whether ``r`` reads as an idle open row (rates 0.0, not new): a
    bare TableFlow, or a Row with those values."""
    t = type(r)
    if t is TableFlow or t is StaleFlow:
        return True
    return (t is Row and r.rate_orig == 0.0 and r.rate_reply == 0.0 and r.pps_orig == 0.0
            and r.pps_reply == 0.0 and not r.is_new and not r.closed)


new_row = object.__new__


def closed_copy(prev, closed, seen):
    """``prev`` (seen at ``seen``) as a closed row (rates unknown: nothing
    was measured)."""
    r = new_row(Row)
    r.entry, r.key, r.seen = prev.entry, prev.key, seen
    r.start_wall, r.age_approx = prev.start_wall, prev.age_approx
    r.rate_orig = r.rate_reply = r.pps_orig = r.pps_reply = None
    r.is_new = False
    r.closed = closed
    r.gen = 0
    return r


def unmoved(e, pe):
    """Nothing but the timeout moved from ``pe`` to ``e`` (same flow)."""
    return (e[_BO] == pe[_BO] and e[_BR] == pe[_BR] and e[_PO] == pe[_PO]
            and e[_PR] == pe[_PR] and e[_BO] is not None and e[_STATE] == pe[_STATE]
            and e[_STATUS] == pe[_STATUS] and e[_MARK] == pe[_MARK])


def uncounted_kept(prev, e, pe, now):
    """A Row without counters (accounting off: rates unknown) listed again
    with nothing but its timeout moved is kept as it is, dated ``now``: True.
    (A new Row for it made every partial tick a change, and on a mipsel
    router each change a 1-4 s pass of the screen over 16k rows.)"""
    if (type(prev) is Row and e[_BO] is None and pe[_BO] is None and e[_BR] == pe[_BR]
            and e[_PO] == pe[_PO] and e[_PR] == pe[_PR] and e[_STATE] == pe[_STATE]
            and e[_STATUS] == pe[_STATUS] and e[_MARK] == pe[_MARK]
            and prev.rate_orig is None and prev.rate_reply is None and not prev.is_new
            and not prev.closed):
        prev.seen = now
        return True
    return False


def idle_kept(prev, now, pseen, gen):
    """An idle Row (rates 0, open, not new) listed again is kept and dated
    ``now`` in place (readers of a snapshot never use ``seen``): True."""
    if (type(prev) is Row and prev.rate_orig == 0.0 and prev.rate_reply == 0.0
            and not prev.closed and prev.pps_orig == 0.0 and prev.pps_reply == 0.0
            and not prev.is_new and now - pseen >= MIN_INTERVAL):
        prev.seen = now
        prev.gen = gen
        return True
    return False


def rated_row(e, key, prev, pe, pseen, now, gen, wall, fresh_span):
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
