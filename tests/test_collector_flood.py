"""The live collector's full dumps in a flood: 20,000 new flows a second,
an 8 s UDP timeout, so a table that grows to 160k flows within 8 s and
stays there.  A dump costs ~8 us of CPU a flow here (1.3 s at 160k).

Measured before (bench/floodmem.py --stages): a full dump every ~3 s, 38 %
of a core - each spaced by the cost of the one before while the table grew
(0.55 s at 63k: MAX_AGE apart), and forced by "drift" on the ticks between
(the kernel counts the expired flows it has not reaped, 30k of 190k, and
the table lags it by the events in flight) or by events lost while a long
dump held the reader.  Time is simulated, as in test_collector_pace."""

from flowtop.table import FlowTable
from flowtop.tablerows import Tally
from tests.test_collector_pace import Simulated

PER_FLOW = 8e-6          # CPU s a flow of a full dump
RATE = 20000             # new flows a second
SIZE = 160000            # the table once the first flows time out
UNREAPED = 30000         # expired flows the kernel still counts


class Sized(FlowTable):
    """A table of ``n`` open UDP flows, without rows (only its size is read)."""

    n = 0

    def __len__(self):
        return self.n

    def tally(self):
        t = Tally()
        t.protos = {17: self.n}
        return t


class Flood:
    """An event reader in the flood: RATE NEW events a tick; ``lost`` on every tick."""

    paused, read = False, 0

    def __init__(self, lost=False):
        from tests.test_collector_reconcile import entry
        self.batch = [("new", entry(1))] * RATE
        self.lost = lost

    def drain(self, limit=None):
        return self.batch, self.lost

    def pending(self):
        return 0

    def stop(self):
        pass


class Flooded(Simulated):
    """The collector's own loop over a simulated flood: the table grows by
    RATE a tick to SIZE; a full dump costs PER_FLOW a flow; the kernel's
    count is the table's plus UNREAPED."""

    def __init__(self, seconds, lost=False):
        costs = {"full": 0.0, "full_wall": 0.0, "partial": 0.05, "draw": 0.0, "rebuild": 0.0}
        super().__init__(costs, seconds)
        self.table = Sized()
        self.reconcile = True
        self.lost = lost
        self.dumps = []             # (start, CPU s)

    def _start_events(self):
        self.events = Flood(self.lost)

    def flows(self):
        """The kernel's live flows now: RATE a second since the start, SIZE at most."""
        return min(SIZE, int(RATE * self.clock.now))

    def _kernel_count(self):
        self.kernel_count = self.flows() + UNREAPED
        return self.kernel_count

    def _full(self):
        self.table.n = self.flows()
        cost = PER_FLOW * max(self.table.n, 1)
        self.dumps.append((self.clock.now, cost))
        self.costs["full"] = self.costs["full_wall"] = cost
        return Simulated._full(self)

    def _partial(self, events):
        self.table.n = self.flows()         # the events applied
        return Simulated._partial(self, events)


def dump_share(c, since):
    spent = sum(cost for start, cost in c.dumps if start >= since)
    return spent / (c.clock.now - since)


def test_in_a_flood_full_dumps_keep_to_their_budget_while_the_table_grows():
    c = Flooded(40.0).run_all()
    start = c.dumps[0][0]
    assert dump_share(c, start) <= c.BUDGET + 0.05, c.dumps
    # rates off screen still come: a dump of the full table at least every ~10 s
    full = [s for s, cost in c.dumps if cost >= PER_FLOW * SIZE * 0.99]
    assert full and max(b - a for a, b in zip(full, full[1:] + [c.clock.now])) <= 12.0, c.dumps


def test_a_count_gap_during_a_flood_is_not_drift():
    """The kernel's count stays UNREAPED above the table's on every tick:
    no full dump of the big table is forced by it (only the cadence brings
    them, 1.3 s / BUDGET apart)."""
    c = Flooded(40.0).run_all()
    big = [s for s, cost in c.dumps if cost >= 0.5]
    assert len(big) >= 2 and min(b - a for a, b in zip(big, big[1:])) >= 5.0, c.dumps


def test_in_a_flood_a_table_ahead_of_the_kernel_count_gets_full_dumps_within_the_ceiling():
    """DESTROY events late or lost (the reader behind on a loaded machine):
    the table holds flows the kernel no longer counts (249k shown, 146k in
    the kernel): a full dump is owed, as often as CEILING allows."""
    class Behind(Flooded):
        def _kernel_count(self):
            self.kernel_count = int(self.flows() * 0.7)
            return self.kernel_count
    c = Behind(40.0).run_all()
    start = c.dumps[0][0]
    assert dump_share(c, start) <= c.CEILING + 0.05, c.dumps
    assert len(c.dumps) >= 8, c.dumps


def test_events_lost_every_tick_force_full_dumps_within_the_ceiling():
    """Lost events owe a full dump, but never more than CEILING of a core
    of them: at 160k flows (1.3 s a dump) not one a tick."""
    c = Flooded(40.0, lost=True).run_all()
    start = c.dumps[0][0]
    assert dump_share(c, start) <= c.CEILING + 0.05, c.dumps
    assert len(c.dumps) >= 8, c.dumps          # owed: more often than the cadence's


def test_a_quiet_table_that_drifted_from_the_kernel_count_gets_a_full_dump_soon():
    """Without a flood (a few events a tick), a table that stays apart from
    the kernel's count (events off) gets full dumps as before: within two
    ticks, whatever its cadence."""
    class Quiet(Flooded):
        BUDGET = 1e-6            # the cadence alone: one dump every MAX_AGE s (30)
        MAX_AGE = 30.0

        def _start_events(self):
            self.events = Flood()
            self.events.batch = self.events.batch[:10]

        def flows(self):
            return 5000

        def _kernel_count(self):
            self.kernel_count = 6000       # 1000 flows the events never brought
            return self.kernel_count
    c = Quiet(30.0).run_all()
    gaps = [b[0] - a[0] for a, b in zip(c.dumps, c.dumps[1:])]
    assert len(gaps) >= 8 and max(gaps) <= 3.5, c.dumps


def test_new_events_of_flows_a_full_dump_did_not_list_are_not_added_after_it():
    """A reader behind in a loaded flood hands over, after a full dump, NEW
    events read before it: flows that began before the dump and that it did
    not list had died (249k rows shown, 146k in the kernel).  A NEW event of a
    flow begun after the dump's start is added; so is one already listed."""
    import time
    from flowtop.collector import Collector
    from tests.test_collector_reconcile import Events, Source, run_ticks

    from flowtop.netlink.ctnetlink import CtEntry

    def flow(i, start):
        return CtEntry(family=2, l4proto=17, src="10.0.0.1", dst="10.0.0.%d" % i, sport=1,
                       dport=2, id=i, bytes_orig=0, bytes_reply=0, packets_orig=0,
                       packets_reply=0, start=int(start * 1e9), key=b"k%d" % i)

    class Late(Events):
        def __init__(self):
            self.calls = 0

        def drain(self, limit=None):
            self.calls += 1
            if self.calls != 3:         # the first dump's tick (and its drain), then these
                return [], False
            t = time.time()
            return [("new", flow(1, t - 60)), ("new", flow(7, t - 60)),
                    ("new", flow(8, t + 1))], False

    class C(Collector):
        BUDGET, MAX_AGE = 1e-9, 1e6          # one full dump, then partial ticks

        def _start_events(self):
            self.events = Late()

        def _kernel_count(self):
            return None
    c = C(Source([3]), 0.005)                # the dump lists flows 0, 1, 2
    run_ticks(c, 3)
    keys = set(c.table.rows)
    assert b"k8" in keys and b"k1" in keys, keys       # begun after the dump; listed by it
    assert b"k7" not in keys, keys                     # begun before, not listed: dead
