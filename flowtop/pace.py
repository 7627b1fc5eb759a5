"""How far apart the live view's ticks come between full dumps: at the
interval while the whole process keeps to its share of a core, further
apart while it is in debt (``Pace``); and another thread's CPU time.

A mipsel router at 16k flows spent 0.4 s a tick on 36 GETs, 0.3-1.3 s
drawing them and 3-4 s choosing 16k rows: 94 % of its core at 1 s ticks,
while the full dumps alone kept to their budget.
"""

import time


class Pace:
    """The credit of CPU seconds the ticks may spend: it grows by their
    share of a core per second (``budget`` less the full dumps' share,
    ``least`` at least) and shrinks by what the process spent since the
    last tick, less what does not shrink with fewer ticks (the full dumps'
    own CPU, the event reader's).  A debt waits until the share has paid
    it, ``most`` s at most; a flood (``flood`` events a tick) never waits:
    its events must be applied and shown however far apart the ticks."""

    def __init__(self, budget, least, most, flood):
        self.budget, self.least, self.most, self.flood = budget, least, most, flood
        self.credit = 0.0
        self._last = None            # (monotonic, CPU counted) at the last tick

    def __call__(self, now, cpu, interval, full_share=0.0, events=0):
        """Seconds from this tick's start (``now``; ``cpu``: the CPU counted
        so far) to the next."""
        last, self._last = self._last, (now, cpu)
        if last is None:
            return interval
        if events >= self.flood:     # a 20k/s flood here left the screen still 9-10 s
            self.credit = 0.0
            return interval
        share = max(self.least, self.budget - full_share)
        # no more credit than an interval's: a quiet minute pays for no burst
        self.credit = min(share * interval, self.credit + share * (now - last[0]) - (cpu - last[1]))
        if self.credit >= 0:
            return interval
        return max(interval, min(self.most, -self.credit / share))


def thread_cpu(ident):
    """CPU seconds the thread ``ident`` has used (0.0 without one, off Linux)."""
    if ident is None:
        return 0.0
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(ident))
    except (AttributeError, OSError):      # not Linux; the thread has ended
        return 0.0
