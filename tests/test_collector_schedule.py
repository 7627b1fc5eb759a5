"""When the live collector makes full dumps: never back to back.

A full dump of 200k flows in a flood took 2-3 s; counting the next one
from the previous one's start, it began at once, and the screen got no
snapshot for seconds.  Counted from its end, the ticks between refresh
the screen."""

import time

from flowtop.collector import Collector, EventReader
from tests.test_collector_reconcile import Events, Source, entry, run_ticks


class SlowDumps(Source):
    def snapshot(self, wants="list", enrich=None):
        end = time.thread_time() + 0.1          # 0.1 s of this thread's CPU
        while time.thread_time() < end:
            pass
        return super().snapshot(wants, enrich)


class Budgeted(Collector):
    MAX_AGE = 0.1          # a full dump every 0.1 s at most: as long as one takes

    def _start_events(self):
        self.events = Events()

    def _kernel_count(self):
        return None


def test_ticks_between_full_dumps_come_even_when_a_dump_takes_as_long_as_the_spacing():
    src = SlowDumps([10])
    c = Budgeted(src, 0.02)
    run_ticks(c, 24)
    partial = c._seq - src.dumps
    assert partial >= src.dumps, (src.dumps, c._seq)


class Sock:
    def settimeout(self, t):
        pass

    def close(self):
        pass


def backlog(n):
    """The real EventReader's queue (its thread not started) holding n NEW events."""
    from tests.test_collector_reconcile import entry
    r = EventReader(open_events=Sock, read=lambda sock: [])
    r._events = [("new", entry(i)) for i in range(n)]
    return r


class Flooded(Budgeted):
    MAX_AGE = 1e6
    BUDGET = 1e-9
    EVENTS_MAX = 100
    INTERVAL = 30.0         # a tick would wait this long, but for a backlog

    def __init__(self, source, n):
        super().__init__(source, self.INTERVAL)
        self.n = n

    def _start_events(self):
        self.events = backlog(0)

    def _full(self):
        wall = super()._full()
        if self.n:                       # the backlog builds during the first dump
            self.events._events = backlog(self.n)._events
            self.n = 0
        return wall


def test_an_event_backlog_is_applied_a_share_a_tick_and_the_ticks_come_at_once():
    src = Source([1000])                 # a table of 1,000 flows
    c = Flooded(src, 500)                # more than EVENTS_MAX, under twice the table
    # until the backlog is gone too: not every snapshot takes a share (a loaded CI
    # run stopped at the sixth snapshot, its one dump done, with a share left)
    run_ticks(c, 6, timeout=5.0, until=lambda: c.events.pending() == 0)
    assert src.dumps == 1 and c._seq >= 6          # one dump; five shares without waiting
    assert len(c.table) == 1000                    # the events renewed flows it had
    assert c.events.pending() == 0


def test_a_backlog_past_twice_the_table_is_replaced_by_a_full_dump():
    src = Source([10])
    c = Flooded(src, 2000)
    run_ticks(c, 2, timeout=5.0)
    assert src.dumps == 2 and c.resyncs == 1 and c.events.pending() == 0


def test_the_event_reader_reads_nothing_while_held():
    calls = []

    def read(sock):
        calls.append(1)
        time.sleep(0.005)
        return []

    r = EventReader(open_events=Sock, read=read)
    r.start()
    try:
        time.sleep(0.05)
        r.hold()
        time.sleep(0.02)                 # one read may be under way
        held = len(calls)
        time.sleep(0.2)
        assert len(calls) == held
        r.release()
        time.sleep(0.05)
        assert len(calls) > held
    finally:
        r.stop()
        r.join(2)


class Watched(Events):
    """Events whose reader is held or not."""
    held = False

    def hold(self):
        self.held = True

    def release(self):
        self.held = False


def test_the_collector_holds_the_event_reader_during_a_full_dump():
    seen = []

    class Src(Source):
        def snapshot(self, wants="list", enrich=None):
            seen.append(c.events.held)
            return super().snapshot(wants, enrich)

    class C(Budgeted):
        def _start_events(self):
            self.events = Watched()

    src = Src([10])
    c = C(src, 0.01)
    run_ticks(c, 3)
    assert seen and all(seen) and not c.events.held


def test_full_dumps_are_max_age_apart_while_cheap_and_keep_to_the_budget_on_a_slow_cpu():
    c = Collector(Source([1]), 1.0)
    assert c.spacing(0.01) == 1.0                 # the interval
    assert c.spacing(0.85) == c.MAX_AGE           # 100k flows here: 28 % of a core for fresh rates
    assert c.spacing(30.0) == 30.0 / c.BUDGET     # 16k flows on a router CPU: not back to back
    assert all(c.spacing(cost) >= cost / max(c.CEILING, c.BUDGET)
               for cost in (0.1, 1.0, 1.6, 2.0, 5.0, 60.0))


def test_full_dumps_never_take_more_than_a_third_of_a_core():
    """A flood's table (160k flows: 1.3 s a dump here) is dumped BUDGET
    apart, not MAX_AGE apart at 43 % of a core (the live view's whole
    budget is 35 %)."""
    c = Collector(Source([1]), 1.0)
    assert c.spacing(1.3) == 1.3 / c.BUDGET
    assert all(cost / c.spacing(cost) <= 0.34 for cost in (0.1, 0.5, 0.9, 1.0, 1.3, 1.6, 3.0))


def flow(i, bo=0):
    """An idle UDP flow ``k<i>`` as the table stores it, ``bo`` bytes sent."""
    from flowtop.netlink.ctnetlink import CtEntry
    from flowtop.table import TableFlow
    return tuple.__new__(TableFlow, CtEntry(
        family=2, l4proto=17, src="10.0.0.1", dst="10.0.0.%d" % i, sport=1, dport=2, id=i,
        bytes_orig=bo, bytes_reply=0, packets_orig=0, packets_reply=0,
        start=(1_700_000_000 + i) * 10**9, key=b"k%d" % i))


def test_a_snapshot_of_an_unchanged_table_hands_the_same_rows_on_and_a_changed_one_its_delta():
    """While nothing a reader sees changed (a static table: its shown rows
    refreshed, idle), the collector publishes the same rows list, so the
    screen chooses nothing again; after a partial sample that moved a row,
    a new list with what changed since the last snapshot."""
    c = Collector(Source([1]), 1.0, reconcile=False)
    t = c.table
    for now in (10.0, 11.0):                   # seen twice: idle, not new
        t.apply([flow(i) for i in range(5)], now, 1000.0 + now)
    c._publish(1011.0, None, True)
    first = c.latest()
    t.update([flow(2)], 11.5, 1011.5)          # the row on screen, refreshed: idle still
    c._publish(1011.5, None, False)
    second = c.latest()
    assert second.rows is first.rows and second.wall == 1011.5
    t.update([flow(2, bo=500)], 12.0, 1012.0)
    c._publish(1012.0, None, False)
    third = c.latest()
    assert third.rows is not first.rows and third.totals == (1000.0, 0.0, True)
    assert third.delta == (first.version, set(), {b"k2": t.get(b"k2")})


def test_between_full_dumps_a_flood_s_new_flows_get_their_routes_when_shown():
    """A partial tick hands the enricher its new flows to look up (their
    routes and sockets) - up to PREFETCH_MAX of them; past that (20k a
    tick in a flood: 7 % of a core in route lookups) none, and the routes
    come when the screen shows the rows (wanted) or with the next full dump."""
    from tests.test_collector_reconcile import entry

    class Enrich:
        def __init__(self):
            self.asked = []

        def tick_new(self, entries):
            self.asked.append(len(entries))

    c = Collector(Source([1]), 1.0, reconcile=False)
    c.enrich = Enrich()
    c._partial([("new", entry(i)) for i in range(10)])
    c._partial([("new", entry(i)) for i in range(100, 100 + c.PREFETCH_MAX + 1)])
    assert c.enrich.asked == [10, 0]


class SlowFirstDump:
    """A live source whose dump brings 100 flows a datagram, 0.33 s apart on
    the test's clock (16k flows in 53 s: a mipsel router's first dump); at
    each datagram it notes what the collector has published."""
    live = True

    def __init__(self, clock, datagrams=160):
        self.clock, self.datagrams, self.seen, self.collector = clock, datagrams, [], None
        self.sock = None

    def snapshot(self, wants="list", enrich=None):
        from tests.test_collector_reconcile import entry

        def batches():
            for d in range(self.datagrams):
                self.clock.advance(0.33)
                latest = self.collector.latest()
                self.seen.append((self.clock.now, latest and len(latest.rows)))
                yield self.clock.now, [entry(d * 100 + i) for i in range(100)]
        return self.clock.wall, batches()


def test_on_a_slow_cpu_the_first_dump_shows_the_rows_it_has_read_within_seconds():
    from tests.clock import Clock
    clock = Clock(0.0)
    src = SlowFirstDump(clock)
    c = Collector(src, 1.0, monotonic=clock, reconcile=False)
    src.collector = c
    c._full_tick()
    early = [(t, n) for t, n in src.seen if n]
    # the rows of the first datagram, shown while the second is read (not ~1 s, nor 53, in)
    assert early and early[0][0] <= 1.0 and early[0][1] >= 100
    assert c.latest().full is False and c.latest().version is None
    c._publish(clock.wall, None, True)                             # the dump's own Snapshot
    last = c.latest()
    assert len(last.rows) == 16000 and last.full and last.delta is None
    assert last.tally.protos == {17: 16000}


def _first_rows_in_a_thread(datagrams=10):
    import threading
    from tests.clock import Clock
    clock = Clock(0.0)
    src = SlowFirstDump(clock, datagrams)
    c = Collector(src, 1.0, monotonic=clock, reconcile=False)
    src.collector = c
    shown = c.gate.watch()                     # what the screen does at its start
    dump = threading.Thread(target=c._full_tick, daemon=True)
    dump.start()
    deadline = time.monotonic() + 10
    while c.latest() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    return c, src, dump, shown


def test_with_a_screen_the_first_dump_waits_until_its_first_rows_are_drawn():
    """On a mipsel router the first rows (0.4-1.5 s of CPU to choose and draw) were
    drawn beside the first dump going on, in 1-3.5 s of wall: the dump now waits
    between two datagrams until the screen has drawn them - those of the first
    datagram, before the second is decoded (it was: 5.7 M instructions more before
    the first rows of 16,000 flows, with its layouts' code)."""
    c, src, dump, shown = _first_rows_in_a_thread()
    early = c.latest()
    time.sleep(0.3)
    waited = len(src.seen)                     # the first datagram's rows, then it waits
    shown(early)                               # the screen drew them
    dump.join(10)
    assert early is not None and early.full is False and len(early.rows) == 100
    assert waited == 1 and not dump.is_alive() and len(src.seen) == 10, src.seen
    assert c.latest() is early                 # (the dump's own Snapshot: _publish's)


def test_a_screen_that_does_not_draw_the_first_rows_holds_the_dump_a_while_only(monkeypatch):
    from flowtop.published import Gate
    monkeypatch.setattr(Gate, "DRAW_WAIT", 0.1)
    c, src, dump, shown = _first_rows_in_a_thread()
    dump.join(10)                              # paused, the screen takes no snapshot
    assert not dump.is_alive() and len(src.seen) == 10


def test_the_providers_left_for_later_are_made_once_the_first_rows_are_drawn():
    """The live view's process map, interfaces, devices and history (main: their imports
    were ~12 M instructions before the first rows) are made in the collector's thread
    when the screen has drawn the first rows, before the first dump goes on."""
    import threading
    from tests.clock import Clock
    clock = Clock(0.0)
    src = SlowFirstDump(clock, 10)
    made = []

    class Later:
        def attach(self):
            made.append((len(src.seen), c.latest()))

        def tick(self, table):
            made.append("tick")

    c = Collector(src, 1.0, Later(), monotonic=clock, reconcile=False)
    src.collector = c
    shown = c.gate.watch()
    dump = threading.Thread(target=c._full_tick, daemon=True)
    dump.start()
    deadline = time.monotonic() + 10
    while c.latest() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.2)
    assert made == []                          # not while the screen has not drawn them
    early = c.latest()
    shown(early)
    dump.join(10)
    assert made == [(1, early), "tick"] and len(src.seen) == 10


def test_later_dumps_publish_only_when_they_end():
    from tests.clock import Clock
    clock = Clock(0.0)
    src = SlowFirstDump(clock, datagrams=30)
    c = Collector(src, 1.0, monotonic=clock, reconcile=False)
    src.collector = c
    c._full_tick()
    c._publish(clock.wall, None, True)
    before = c.latest()
    src.seen.clear()
    c._full_tick()
    assert all(n == len(before.rows) for _t, n in src.seen) and c.latest() is before


def test_a_delta_reaches_back_to_the_snapshot_the_screen_last_took():
    """A mipsel router's screen chose 16k rows for 2-10 s while the collector published
    twice; the next delta was against a version it never built, and it chose every row
    again (its CPU and a key's 11 s).  Until the screen takes a snapshot, the next one's
    delta carries its changes too; the rows it follows to equal a full choice."""
    from flowtop.views.select import Selection
    from tests.viewutil import FakeEnrich, state_of
    from flowtop.views.cells import Formatter

    c = Collector(Source([1]), 1.0, reconcile=False)
    t = c.table
    for now in (10.0, 11.0):
        t.apply([flow(i) for i in range(6)], now, 1000.0 + now)
    c._publish(1011.0, None, True)
    first = c.latest()
    st = state_of()
    fmt = Formatter(st, FakeEnrich())
    sel = Selection()
    sel.build(first.rows, st, fmt, first.version, first.delta)
    first.taken = True                               # the screen chose its rows
    t.update([flow(2, bo=500)], 12.0, 1012.0)
    c._publish(1012.0, None, False)
    skipped = c.latest()                             # published while the screen was busy
    t.update([flow(4, bo=900), flow(7, bo=10)], 13.0, 1013.0, [b"k1"])
    c._publish(1013.0, None, False)
    third = c.latest()
    assert third.delta[0] == first.version
    assert set(third.delta[2]) >= {b"k2", b"k4", b"k7"}
    calls = []
    import flowtop.views.select as select_module
    real = select_module.base
    select_module.base = lambda rows, *a: calls.append(len(rows)) or real(rows, *a)
    try:
        view = sel.build(third.rows, st, fmt, third.version, third.delta)
    finally:
        select_module.base = real
    assert calls and max(calls) < len(third.rows), calls      # followed: no pass over all
    full = Selection().build(third.rows, st, fmt, third.version, None)
    assert [r.key for r in view] == [r.key for r in full]
    assert skipped.version != third.version


def test_a_long_full_dump_holds_the_event_reader_for_hold_max_seconds_only():
    """Held for a whole 2.5 s dump of a flood's table, the events' socket
    (64 MiB: ~100k events) overflowed at 40k events a second, and the lost
    events owed another full dump."""
    from tests.clock import Clock
    clock = Clock(0.0)
    seen = []

    class Src(Source):
        def snapshot(self, wants="list", enrich=None):
            def batches():
                for i in range(6):              # a datagram each 0.5 s of the dump
                    seen.append(c.events.held)
                    clock.advance(0.5)
                    yield clock.now, [entry(i)]
            self.dumps += 1
            return clock.wall, batches()

    class C(Budgeted):
        def _start_events(self):
            self.events = Watched()

    global c
    c = C(Src([1]), 0.01, monotonic=clock)
    run_ticks(c, 1)
    assert seen[:6] == [True, True] + [False] * 4, seen     # released after HOLD_MAX (1 s)
    assert not c.events.held
