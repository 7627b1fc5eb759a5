"""The live collector pauses its event reader in a flood and resumes it
after.  Measured before (bench/floodmem.py --stages, 20,000 new flows a
second for 20 s, 8 s UDP timeout): the reader took 25-30 % of a core (its
40,000 events a second at 6-8 us each) on top of the full dumps that list
the same flows (15 %), and the table held the expired flows the kernel had
not reaped (250k rows for 160k live flows).  Time is simulated, as in
test_collector_flood: the reader costs SHARE of a core while it reads."""

from flowtop.cadence import EventsWatch
from tests.test_collector_flood import PER_FLOW, RATE, SIZE, Flood, Flooded


class Reader(Flood):
    """A flood's event reader: 2 x RATE events a second (NEW and DESTROY)
    at ``share`` of a core while it reads; none while paused."""

    def __init__(self, clock, share, flooding):
        super().__init__()
        self.clock, self.share, self.flooding = clock, share, flooding
        self.paused, self.read, self.cpu, self.log = False, 0, 0.0, []
        self._since = clock.now

    def account(self):
        now = self.clock.now
        if not self.paused and self.flooding(now):
            self.cpu += self.share * (now - self._since)
            self.read += int(2 * RATE * (now - self._since))
        self._since = now

    def drain(self, limit=None):
        self.account()
        return ([] if self.paused or not self.flooding(self.clock.now) else self.batch), False

    def pause(self):
        self.account()
        self.paused = True
        self.log.append(("pause", self.clock.now))

    def resume(self):
        self.account()
        self.paused = False
        self.log.append(("resume", self.clock.now))


class Paused(Flooded):
    """Flooded, with a reader of ``share`` and a flood that ends at ``end``;
    a full dump lists the flows born since the last one (up to SIZE) as new."""

    def __init__(self, seconds, share, end=None):
        super().__init__(seconds)
        self.share, self.flood_end = share, end if end is not None else seconds
        self.reconcile = True
        self._born = 0.0

    def flooding(self, t):
        return t < self.flood_end

    def flows(self):
        return min(SIZE, int(RATE * min(self.clock.now, self.flood_end))) if self.flooding(
            self.clock.now) else 0

    def _start_events(self):
        self.events = Reader(self.clock, self.share, self.flooding)

    def _reader_cpu(self):
        self.events.account()
        return self.events.cpu

    def _kernel_count(self):        # the flows whose events went unread count too
        self.kernel_count = self.flows() + (30000 if self.flooding(self.clock.now) else 0)
        return self.kernel_count

    def _full(self):
        born = min(self.clock.now, self.flood_end)
        self.table.added += min(SIZE, int(RATE * (born - self._born)))
        self._born = born
        return Flooded._full(self)

    def _partial(self, events):
        n = self.table.n
        wall = Flooded._partial(self, events)
        if self.events.paused:
            self.table.n = n                # no events applied: the table stays
        return wall


def test_in_a_flood_the_event_reader_is_paused_and_full_dumps_take_its_share():
    c = Paused(40.0, share=0.3).run_all()
    assert [k for k, _t in c.events.log] == ["pause"], c.events.log
    assert c.events.log[0][1] <= 3.0 and c.events.cpu <= 0.3 * 3.0, c.events.log
    big = [s for s, cost in c.dumps if cost >= PER_FLOW * SIZE * 0.99]
    spent = sum(cost for s, cost in c.dumps if s >= big[0]) / (c.clock.now - big[0])
    # the reader's share goes to full dumps: 1.28 s each, 4.3 s apart from one's end
    # to the next's start (not 8.5): the table ~6 s old at most, not ~10
    assert spent <= c.BUDGET + c.PAUSE_SHARE + 0.05, c.dumps
    assert max(b - a for a, b in zip(big, big[1:] + [c.clock.now])) <= 7.0, c.dumps
    # the table behind the kernel's count (events unread) is not drift: no dump a tick
    assert min(b - a for a, b in zip(big, big[1:])) >= 3.5, c.dumps


def test_a_reader_that_keeps_up_cheaply_is_never_paused():
    """5,000 new flows a second cost it ~7 % of a core: the table follows the events."""
    c = Paused(40.0, share=0.07).run_all()
    assert c.events.log == [] and c.events.read > 0


def test_after_the_flood_the_reader_resumes_and_a_full_dump_follows():
    c = Paused(60.0, share=0.3, end=20.0).run_all()
    assert [k for k, _t in c.events.log] == ["pause", "resume"], c.events.log
    resumed = c.events.log[1][1]
    assert resumed - 20.0 <= 12.0, c.events.log        # a dump or two after the flood
    after = [s for s, _cost in c.dumps if s > resumed]
    assert after and after[0] - resumed <= 2.0, (resumed, c.dumps)   # for events missed


def test_the_watch_pauses_on_a_share_over_many_events_and_resumes_on_few_new_flows():
    w = EventsWatch(0.15, 1000)
    assert not w.reading(10.0, 1.0, 0)              # the first tick: nothing to compare
    assert not w.reading(11.0, 1.1, 20000)          # 10 % of a core
    assert not w.reading(12.0, 1.5, 20500)          # 40 %, but 500 events: not a flood
    assert w.reading(13.0, 1.8, 60500)              # 30 %, 40,000 events: paused
    assert abs(w.cost - 0.3 / 40000) < 1e-12 and w.since == 13.0
    assert not w.dumped(18.0, 100000)               # 20k new flows/s still: stays paused
    assert w.dumped(23.0, 1000)                     # 200 a second: events again


def test_while_the_reader_is_paused_the_ticks_keep_the_interval_for_the_kernels_count():
    """Paused, the header's count is the kernel's, read each tick: ticks
    spaced by the screen's cost (2 s choosing 160k rows after each dump)
    showed a count 10 s old (238k shown, 133k in the kernel, at a flood's end)."""
    class Costly(Paused):
        def __init__(self, seconds, share):
            super().__init__(seconds, share)
            self.costs["rebuild"] = 2.0
    c = Costly(40.0, share=0.3).run_all()
    paused = c.events.log[0][1]
    starts = [t[1] for t in c.log if t[1] > paused + 1.0]
    most = c.costs["rebuild"] + c.costs["full_wall"] + c.interval     # a dump, then drawn
    assert max(b - a for a, b in zip(starts, starts[1:])) <= most + 1e-6, starts
