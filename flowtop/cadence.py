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
