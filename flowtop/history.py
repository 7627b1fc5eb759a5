"""Rate history: the last minutes of each active flow's rate and of the
table's total, in bounded rings; iftop's 2 s / 10 s / 40 s averages and the
peak; sparklines in plain characters where there is no Unicode.

Samples are (time, rate, interval): the rate over the ``interval`` seconds
before ``time``.  An average over a window is the bytes the samples put in
it divided by the window, so a flow that went quiet (no samples: idle rows
are not fed) averages down to 0 as iftop's do.  Pure but for ``clock``.
"""

from array import array
from itertools import chain

SECONDS = 120               # history kept per ring
MAX_FLOWS = 4096            # rings kept for flows (the busiest recent ones); ~1.3 kB each
WINDOWS = (2.0, 10.0, 40.0)
SPARK_UNICODE = "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"
SPARK_PLAIN = "_.-~=+*#"


class Ring:
    """The samples of one rate, oldest first, at most ``size`` of them, as
    doubles in place: a deque of (t, rate, dt) tuples allocated during a
    flood held 23 of Python's 1 MiB arenas a minute after it (floodmem.py)."""

    __slots__ = ("size", "_t", "_r", "_d", "_head")

    def __init__(self, size):
        self.size = size
        self._t, self._r, self._d = array("d"), array("d"), array("d")
        self._head = 0              # the oldest sample's index, once full

    def __len__(self):
        return len(self._t)

    def add(self, t, rate, dt):
        if len(self._t) < self.size:
            self._t.append(t)
            self._r.append(rate)
            self._d.append(dt)
        else:
            h = self._head
            self._t[h], self._r[h], self._d[h] = t, rate, dt
            self._head = (h + 1) % self.size

    def _order(self):
        """Indices oldest first."""
        return chain(range(self._head, len(self._t)), range(self._head))

    @property
    def samples(self):
        """(t, rate, dt) oldest first."""
        t, r, d = self._t, self._r, self._d
        return [(t[i], r[i], d[i]) for i in self._order()]

    def average(self, window, now):
        """Mean rate over [now - window, now]: 0.0 with no sample in it."""
        start = now - window
        total = 0.0
        ts, rs, ds = self._t, self._r, self._d
        h = self._head
        for i in chain(range(h - 1, -1, -1), range(len(ts) - 1, h - 1, -1)):
            t = ts[i]
            if t <= start:
                break
            overlap = min(t, now) - max(t - ds[i], start)
            if overlap > 0:
                total += rs[i] * overlap
        return total / window

    def peak(self):
        return max(self._r, default=None)

    def series(self, n, step, now):
        """``n`` mean rates over consecutive ``step``-second bins ending at
        ``now`` (oldest first): what a sparkline draws."""
        out = [0.0] * n
        start = now - n * step
        for t, rate, dt in self.samples:
            lo, hi = max(t - dt, start), min(t, now)
            if not lo < hi:
                continue
            # the bin index advances every turn: rounding at a bin's edge
            # cannot stall the walk (it did: an endless loop)
            i = max(0, int((lo - start) // step))
            while lo < hi and i < n:
                edge = min(hi, start + (i + 1) * step)
                if edge > lo:
                    out[i] += rate * (edge - lo) / step
                    lo = edge
                i += 1
        return out


def sparkline(values, unicode=True):
    """One character per value, scaled to the largest; zero is the lowest
    mark (a flat line still reads as a line)."""
    marks = SPARK_UNICODE if unicode else SPARK_PLAIN
    top = max(values, default=0.0)
    if not top > 0:
        return marks[0] * len(values)
    last = len(marks) - 1
    return "".join(marks[min(last, int(v / top * last + 0.5))] if v > 0 else marks[0]
                   for v in values)


class History:
    """Rings per flow key and for the table's total, fed once per refresh.

    ``feed(rows, idle_type)``: rows of ``idle_type`` (the table's bare idle
    flows) carry no rate and are skipped without a lookup.  Rings of flows
    not fed for ``seconds`` are dropped; beyond ``max_flows`` new flows get
    none (the table's order: the oldest flows keep theirs)."""

    def __init__(self, seconds=SECONDS, max_flows=MAX_FLOWS, clock=None):
        import time
        self.seconds = seconds
        self.max_flows = max_flows
        self.clock = clock or time.monotonic
        self.flows = {}             # key -> [Ring, last fed]
        self.total = Ring(int(seconds) + 1)
        self._last = None
        self._feeds = 0
        self.groups = {}            # (view, group key) -> [Ring, last fed]
        self._group_t = {}          # view -> time of the snapshot last fed

    def _size(self):
        return int(self.seconds) + 1          # a sample a second at the shortest interval

    def feed(self, rows, idle_type=None):
        now = self.clock()
        dt = 1.0 if self._last is None else max(0.001, min(now - self._last, 10.0))
        self._last = now
        flows = self.flows
        size = self._size()
        tx = rx = 0.0
        for r in rows:
            if type(r) is idle_type or r.closed:
                continue
            ro, rr = r.rate_orig, r.rate_reply
            if ro is None and rr is None:
                continue
            rate = (ro or 0.0) + (rr or 0.0)
            tx += ro or 0.0
            rx += rr or 0.0
            if rate <= 0:
                continue
            k = r.key
            slot = flows.get(k)
            if slot is None:
                if len(flows) >= self.max_flows:
                    continue
                slot = flows[k] = [Ring(size), now]
            slot[0].add(now, rate, dt)
            slot[1] = now
        self.total.add(now, tx + rx, dt)
        self._feeds += 1
        if self._feeds % 16 == 0:               # forget flows quiet for the whole history
            old = now - self.seconds
            for k in [k for k, s in flows.items() if s[1] < old]:
                del flows[k]
        return now

    def feed_groups(self, view, groups, t):
        """Once per snapshot (``t``: its time; a rebuild for a key press at
        the same ``t`` adds nothing): each aggregate row's rate, sent plus
        received, into a ring per (view, key).  Rings start when a view is
        first shown and share the ``max_flows`` bound."""
        last = self._group_t.get(view)
        if last == t:
            return
        self._group_t[view] = t
        dt = 1.0 if last is None else max(0.001, min(t - last, 10.0))
        rings = self.groups
        size = self._size()
        for g in groups:
            if not g.rated:
                continue
            k = (view, g.key)
            slot = rings.get(k)
            if slot is None:
                if len(rings) >= self.max_flows:
                    continue
                slot = rings[k] = [Ring(size), t]
            slot[0].add(t, g.rate_tx + g.rate_rx, dt)
            slot[1] = t
        if len(rings) > self.max_flows // 2:
            old = t - self.seconds
            for k in [k for k, s in rings.items() if s[1] < old]:
                del rings[k]

    def group_averages(self, view, key):
        """(2 s, 10 s, 40 s averages, peak) of an aggregate row, or Nones."""
        slot = self.groups.get((view, key))
        if slot is None:
            return (None, None, None, None)
        now = self._group_t[view]
        return tuple(slot[0].average(w, now) for w in WINDOWS) + (slot[0].peak(),)

    def of(self, key):
        slot = self.flows.get(key)
        return None if slot is None else slot[0]

    def now(self):
        return self._last if self._last is not None else self.clock()

    def averages(self, key):
        """(2 s, 10 s, 40 s averages, peak) of a flow; Nones without history."""
        ring = self.of(key)
        if ring is None:
            return (None, None, None, None)
        now = self.now()
        return tuple(ring.average(w, now) for w in WINDOWS) + (ring.peak(),)
