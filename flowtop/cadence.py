"""When the live view's full dumps come: spaced by what they cost; owed
ones (lost events, a table that drifted from the kernel's count) kept to a
share of a core too.

In a flood of 20,000 new flows a second (8 s UDP timeout), a table of
160k flows was dumped every ~3 s (1.3-2.4 s each, 38 % of a core), though
spaced by its cost to one in 9 s: the count "drifted" on every other tick
(the table lags the kernel by the events in flight, and the kernel counts
the expired flows its garbage collector has not reaped yet: 30k of 190k;
now only a table ahead of the kernel counts in a flood),
and events were lost while a long dump held the reader; each forced the
next dump at once.
"""


def spacing(cost, interval, budget, max_age, ceiling):
    """Seconds between full dumps that cost ``cost`` CPU seconds each:
    ``budget`` of a core, but ``max_age`` apart at most while that costs
    under ``ceiling``.  A router CPU took 30 s a dump at 16k flows: MAX_AGE
    apart they ran back to back (60 % of its core, keys 10 s late)."""
    want = max(interval, cost / budget)
    capped = min(max_age, want)
    return capped if cost <= ceiling * capped else want


class Cadence:
    """Whether a full dump is owed before its time: ``forced`` is set by
    lost events or drift (``drifted``) and cleared by the next full dump
    (``dumped(cost)``: its CPU seconds, kept in ``cost``)."""

    def __init__(self):
        self.cost = 0.0
        self.forced = False
        self._drift = 0

    def dumped(self, cost):
        self.cost = cost
        self.forced = False
        self._drift = 0

    def drifted(self, mine, kernel, flooding):
        """Whether the table's open flows (``mine``) have differed from the
        kernel's count by more than 2 % (and 32) on two ticks running.  On a
        tick of a flood (``flooding``) only a table ahead of the kernel
        counts: it lags the kernel by the NEW events in flight, and the
        kernel still counts the expired flows it has not reaped (a full dump
        does not list them); rows the kernel no longer has are DESTROY
        events lost or late (a 20k/s flood on a loaded machine: 249k
        shown, 146k in the kernel)."""
        off = mine - kernel if flooding else abs(mine - kernel)
        self._drift = self._drift + 1 if off > max(32, kernel // 50) else 0
        return self._drift >= 2


class EventsWatch:
    """Whether the event reader pauses in a flood (``reading``) and resumes
    after it (``dumped``).  Paused, the table follows the full dumps (and
    the GETs of the rows on screen): at 20,000 new flows a second its
    40,000 events took 25-30 % of a core to read (6-8 us each), the same
    flows a full dump lists every ~10 s for 15 %; the kernel's own count
    still comes every tick.  Pure: times, CPU seconds and counts in."""

    def __init__(self, share, flood):
        self.share, self.flood = share, flood   # a core's share; events a tick
        self.cost = 0.0          # CPU s an event, measured as the reader paused
        self.since = None        # monotonic from which events went unread (paused)
        self._mark = None        # (monotonic, reader's CPU, events read) at the last tick

    def reading(self, now, cpu, read):
        """After a tick (``cpu``: the reader's CPU s so far; ``read``: its
        events so far): whether it must pause - more than ``share`` of a core
        since the last tick, over ``flood`` events."""
        last, self._mark = self._mark, (now, cpu, read)
        if last is None or now <= last[0]:
            return False
        spent, n = cpu - last[1], read - last[2]
        if n < self.flood or spent <= self.share * (now - last[0]):
            return False
        self.cost, self.since, self._mark = spent / n, now, None
        return True

    def dumped(self, start, added):
        """After a full dump while paused (``start``: when it began;
        ``added``: the flows it listed that the table lacked, new since the
        last): whether to resume - their NEW and DESTROY events would cost
        under half ``share``."""
        span, self.since = start - self.since, start
        return 2 * added * self.cost < 0.5 * self.share * max(span, 1e-3)
