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

_START = FIELDS.index("start")
_PROTO = FIELDS.index("l4proto")


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
