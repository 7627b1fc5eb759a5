"""The live view's collector thread and the curses view's start (``run_screen``);
the full refresh and the streaming loop are ``refresh``'s (importable here).

Each tick reads the clocks once, takes a snapshot, and applies it to the
FlowTable, which yields rates.  For the curses view a collector thread does
this, so the screen keeps answering keys while a dump is being read.
"""

import threading
import time

from .cadence import Cadence, EventsWatch, spacing
from .netlink.errors import DecodeError, DumpInterrupted
from .netlink.errors import RecordingError
from .eventreader import CollectorFailed, EventReader
from .pace import Pace, thread_cpu
from .published import Gate, Snapshot, since_taken  # noqa: F401 (Gate, Snapshot: as before)
from .runtime import gc_paused
from .refresh import stream, tick  # noqa: F401 (stream: main's; tick: the exports')
from .table import FlowTable


class Collector(threading.Thread):
    """Refreshes the table in the background and publishes Snapshots;
    errors are published too, and retried.

    A full dump costs ~7 us a flow.  At a few thousand flows that is
    nothing and every tick is a full refresh.  At 100k it is most of a core
    at 1 Hz, so full dumps come only as often as BUDGET of one core allows
    (every 3 s at most: MAX_AGE), and the ticks between refresh the rows on
    screen by per-flow GETs while NEW and DESTROY events add and close
    flows as they happen.  An event overflow forces a full dump.
    """

    BUDGET = 0.15        # share of one core the full dumps may take (when over CEILING)
    # no rate is older than MAX_AGE while that stays within CEILING of a core (0.5: a flood's
    MAX_AGE, CEILING = 3.0, 0.3     # dumps, 1.3 s at 160k, took 43 %)
    # The whole live view (every thread: ticks, the screen, keys) keeps to LIVE_BUDGET of a
    # core less the full dumps' share, TICK_SHARE at least (pace.Pace): 0.15 for full dumps
    # + 0.1 for the ticks leave keys their 5 %; ticks MAX_PACE apart at most.
    LIVE_BUDGET, TICK_SHARE, MAX_PACE = 0.3, 0.1, 10.0
    FLOOD_EVENTS = 1000  # events a tick from which the ticks keep the interval (a flood)
    FIRST_ROWS = 0.0     # s into the first dump, its rows so far shown (0.25: 20-50 M instr. more)
    # s of a dump the event reader is held at most: its socket's 64 MiB keep ~100k events
    # (1.3 KB each), and at 40k a second a 2.5 s dump of a flood's table overflowed it
    HOLD_MAX = 1.0
    LINGER_MAX = 1000    # closed flows that start lingering per tick; the rest leave at once
    PREFETCH_MAX = 2000  # new flows a tick whose routes are asked at once (20k/s: 7 % of a core)
    # Events applied a tick, at most: at 20,000 new flows/s, 2-3 s dumps queued 100k events,
    # applied in one 0.75 s burst.  The rest wait for the next tick, which comes at once.
    EVENTS_MAX = 20000
    # of a core the event reader may take a tick before it is paused (a flood; full dumps
    # then, cadence.EventsWatch): at 20k new flows/s it took 25-30 %, the dumps 15 %
    PAUSE_SHARE = 0.15

    def __init__(self, source, interval, enrich=None, table=None, monotonic=time.monotonic,
                 events=True, reconcile=True, cpu=time.process_time, thread_cpu=time.thread_time):
        super().__init__(name="flowtop-collector", daemon=True)
        self.source = source
        self.enrich = enrich
        self.interval = interval
        self.table = table or FlowTable(linger_max=self.LINGER_MAX)
        # Between full dumps the table follows events; the kernel's own count
        # (one GET_STATS a tick) says when it has drifted: lost events, events
        # off (nf_conntrack_events=0).  Only for an unfiltered table.
        self.reconcile = reconcile and source.live
        self.kernel_count = None
        self._ebb = None             # an ebb.Ebb from the first full dump's end on
        self.monotonic = monotonic
        self.cpu, self.thread_cpu = cpu, thread_cpu     # the process's, this thread's
        self.visible = ()            # keys the screen shows: refreshed every tick
        self.full_every = interval
        self.pace = interval         # seconds from a tick's start to the next
        self._pace = Pace(self.LIVE_BUDGET, self.TICK_SHARE, self.MAX_PACE, self.FLOOD_EVENTS)
        self._full_spent = 0.0       # CPU seconds of every full dump so far (their own thread's)
        self._full_share = 0.0       # the last full dump's cost / full_every
        self._cadence = Cadence()    # the next full dump's cost; whether one is owed
        self._owed_after = 0.0       # s after the last full dump that an owed one may come
        self._dumped_ns = 0          # wall ns before the last full dump began
        self._churn = 0              # events the last tick applied
        self._watch = EventsWatch(self.PAUSE_SHARE, self.FLOOD_EVENTS)
        self.resyncs = 0
        self._want_events = events and source.live
        self.events = None
        self._latest = None
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._seq = 0
        self.failure = None          # CollectorFailed once run() died
        # (monotonic start, flows read so far) while a full dump runs, else
        # None: a dump of 160k flows in a flood takes 1-2.5 s, and the
        # screen shows its progress meanwhile rather than stand still.
        self.reading = None
        self.gate = Gate()           # held by the screen while it answers a key

    def latest(self):
        """The newest Snapshot (None before the first).  Raises
        CollectorFailed once the thread has died: a frozen screen would hide it."""
        if self.failure is not None:
            raise self.failure
        return self._latest

    def set_visible(self, keys):
        """The keys of the rows on screen: refreshed every tick."""
        self.visible = keys

    def set_interval(self, seconds):
        self.interval = seconds
        self._wake.set()

    def stop(self):
        self._halt.set()
        self._wake.set()
        if self.events is not None:
            self.events.stop()

    def _start_events(self):
        if self._want_events and self.events is None:
            try:
                self.events = EventReader(gate=self.gate, destroy_keys=True)
                self.events.start()
            except OSError:
                self.events = None
                self._want_events = False     # full dumps every tick, then

    def run(self):
        try:
            self._run()
        except BaseException as exc:     # noqa: B036 - handed to the screen by latest()
            self.failure = exc if isinstance(exc, CollectorFailed) else CollectorFailed(exc)
            if self.events is not None:
                self.events.stop()

    def _run(self):
        ended = False
        last_full = None
        self._start_events()
        while not self._halt.is_set():
            started = self.monotonic()
            self.pace = self._paced(started)
            error = None
            wall = None
            full = False
            if not ended:
                try:
                    events, lost, kernel = self._take_events()
                    self._churn = len(events)
                    full = self._due(started, last_full, lost)
                    if full:
                        if self.events is not None:
                            self.events.drain()     # read before the dump: it covers them
                        added = self.table.added
                        wall = self._full_tick()
                        self._resume(started, self.table.added - added)
                        ended = wall is None
                        self._dumped_ns = int(wall * 1e9) if wall is not None else 0
                        # from its end: a dump of 200k flows in a flood took 2-3 s,
                        # and the next began at once; the screen froze between them
                        last_full = self.monotonic()
                    else:
                        wall = self._partial(events)
                        if kernel is not None and self._drifted(kernel):
                            self._cadence.forced = True     # a full dump sets it right
                    self._pause(self.monotonic())     # (its CPU is read now)
                except DumpInterrupted:
                    last_full = None          # the table changed mid-dump: again, now
                    error = "dump interrupted; retrying"
                except (OSError, DecodeError, RecordingError) as exc:
                    error = str(exc)[:120]      # a damaged replay: shown after its intact dumps
            if wall is not None or error is not None:
                self._publish(wall, error, full)
            delay = self.pace - (self.monotonic() - started)
            if self.events is not None and self.events.pending() >= self.EVENTS_MAX:
                delay = 0.0             # a backlog: the next share now
            if self._cadence.forced and last_full is not None:    # owed: as soon as allowed
                delay = min(delay, last_full + self._owed_after - self.monotonic())
            self._wake.wait(max(0.0, delay) if not ended else None)
            self._wake.clear()

    def _take_events(self):
        """This tick's (events, whether some were lost, the kernel's count
        or None); nothing without an event reader."""
        if self.events is None:
            return (), False, None
        # counted before the drain: the events drained cover it
        kernel = self._kernel_count() if self.reconcile else None
        if self.events.pending() > 2 * len(self.table) + self.EVENTS_MAX:
            # a backlog past twice the table: a full dump is cheaper
            self.events.drain()
            events, lost = (), True
        else:
            events, lost = self.events.drain(self.EVENTS_MAX)
        self.resyncs += bool(lost)
        return events, lost, kernel

    def _full_tick(self):
        """A full dump; the next one comes as often as its cost allows."""
        cpu = self.thread_cpu()         # this thread's: not the screen's
        try:
            wall = self._full()
        finally:
            cost = self.thread_cpu() - cpu
            self._full_spent += cost
        self.full_every = self.spacing(cost)
        self._full_share = cost / self.full_every
        self._cadence.dumped(cost)
        self._trim()
        return wall

    def _pause(self, now):
        """Pauses the event reader when reading its events cost more than PAUSE_SHARE."""
        ev = self.events
        if ev is not None and not ev.paused and self._watch.reading(now, self._reader_cpu(),
                                                                    ev.read):
            ev.pause()

    def _resume(self, start, added):
        """After a full dump (``start``; ``added``: its new flows) while the reader is paused:
        events again when the flood has passed, and a full dump owed for those missed."""
        ev = self.events
        if ev is not None and ev.paused and self._watch.dumped(start, added):
            ev.resume()
            self._cadence.forced = True

    def _paused(self):
        return self.events is not None and self.events.paused

    def _reader_cpu(self):
        return thread_cpu(getattr(self.events, "ident", None))

    def spacing(self, cost):
        """cadence.spacing with this collector's interval, BUDGET, MAX_AGE and CEILING;
        with the event reader's PAUSE_SHARE too while it is paused (dumps ~5 s apart, not 11)."""
        budget = self.BUDGET + (self.PAUSE_SHARE if self._paused() else 0.0)
        return spacing(cost, self.interval, budget, self.MAX_AGE, self.CEILING)

    def _due(self, now, last_full, lost):
        """Whether this tick is a full dump: the first, one without events,
        one retried, one ``full_every`` after the last; sooner when owed
        (lost events, drift), but not more than CEILING of a core of them."""
        if last_full is None or self.events is None:
            return True
        cadence = self._cadence
        cadence.forced = cadence.forced or lost
        # (less an interval: an owed dump each tick that costs under CEILING of it is within it)
        self._owed_after = cadence.cost / self.CEILING - self.interval
        since = now - last_full
        return since >= self.full_every - 0.01 or (cadence.forced and since >= self._owed_after)

    def _paced(self, now):
        """pace.Pace over the process's CPU, less the full dumps' and the event reader's."""
        cpu = self.cpu() - self._full_spent - self._reader_cpu()
        # paused in a flood, a tick is its count (the kernel's): 10 s apart, it was 80 % off
        churn = self.FLOOD_EVENTS if self._paused() else self._churn
        return self._pace(now, cpu, self.interval, self._full_share, churn)

    def _publish(self, wall, error, full):
        """A new Snapshot; without a wall time (a failed tick) it keeps the
        rows we had and says what failed."""
        self._seq, previous = self._seq + 1, self._latest
        if wall is None:
            wall = previous.wall if previous else time.time()
        if self.reconcile and self.events is not None and error is None:
            # read again, now: the count read before a 2 s dump in a flood was
            # 80k behind the kernel's by the time the header showed it
            self._kernel_count()
        table, delta = self.table, None
        changes = table.take_changes()
        if previous is not None and previous.version == table.version:
            # nothing a reader sees changed: the same rows (the screen chooses
            # none again; a list of 250k rows and a pass over them a tick, else)
            rows, tally = previous.rows, previous.tally
            delta = None if previous.taken else previous.delta     # since what the screen took
        else:
            rows, tally = list(table), table.tally().copy()
            delta = since_taken(previous, None if changes is None or previous is None
                                else (previous.version,) + changes)
        self._latest = Snapshot(rows, wall, tally.totals(), error, self._seq, full,
                                self.full_every, self.resyncs, self.kernel_count, tally,
                                table.version, delta)

    def _trim(self):
        """The caches past what the table needs, after a flood (``ebb``)."""
        if self._ebb is None:       # (its import: not on the way to the first rows)
            from .ebb import Ebb
            self._ebb = Ebb()
        self._ebb.trim(self.table, (self.source.sock if self.source.live else None,
                                    getattr(self.events, "sock", None)), self.enrich)

    def _kernel_count(self):
        """The kernel's count, or None (then no more reconciling: a kernel
        without GET_STATS must not cost every tick an error)."""
        from . import api as conntrack
        try:
            self.kernel_count = conntrack.count(self.source.sock)
        except (OSError, DecodeError):
            self.reconcile = False
            self.kernel_count = None
        return self.kernel_count

    def _drifted(self, kernel):
        """Cadence.drifted for the table's open flows (kept by the table: no pass)."""
        mine = sum(self.table.tally().protos.values())
        flooding = self._churn >= self.FLOOD_EVENTS or self._paused()   # (behind: events off)
        return self._cadence.drifted(mine, kernel, flooding)

    def _full(self):
        hold = getattr(self.events, "hold", None)
        if hold is not None:
            hold()
        start = self.monotonic()
        self.reading = (start, 0)

        gate = self.gate
        first = self._latest is None

        def counted(n):
            nonlocal first, hold
            self.reading = (start, self.reading[1] + n)
            gate.wait()
            if (first or hold is not None) and self.monotonic() - start >= self.FIRST_ROWS:
                if hold is not None and self.monotonic() - start >= self.HOLD_MAX:
                    self.events.release()
                    hold = None
                if first and self.table.rows:
                    first = False
                    self._publish_early()
        try:
            # A dump allocates a record per flow, all acyclic: keep the cyclic
            # collector from rescanning 100k of them, and freeze what survives.
            with gc_paused(freeze=True):
                return tick(self.source, self.table, self.enrich, self.monotonic, counted)
        finally:
            self.reading = None
            if hold is not None:
                self.events.release()

    def _publish_early(self):
        """The rows the first dump has brought so far, as a Snapshot, while it goes on
        (a router CPU's first dump of 16k flows took 53 s), drawn before it goes on
        (Gate.published).  Called between datagrams; the dump's own Snapshot follows."""
        from .tablerows import tally
        rows = list(self.table)
        counts = tally(rows)
        self._seq += 1
        self._latest = Snapshot(rows, time.time(), counts.totals(), None, self._seq, False,
                                None, self.resyncs, None, counts, None, None)
        self.gate.published(self._latest)
        attach = getattr(self.enrich, "attach", None)
        if attach is not None:      # the providers left for after the first rows (main)
            attach()

    def _partial(self, events):
        """Between full dumps: the rows on screen by GET, flows from events."""
        from . import api as conntrack
        now, wall = self.monotonic(), time.time()
        table = self.table
        # A NEW event of a flow that began before the last full dump and that
        # the dump did not list is stale (the flow had died): a reader behind
        # in a loaded flood re-added 100k dead flows after each dump.
        since = self._dumped_ns
        news = [e for kind, e in events if kind == "new"
                and (not e.start or e.start >= since or e.key in table)]
        # (the reader's DESTROY events are keys: destroy_keys)
        gone = [e if e.__class__ is bytes else e.key for kind, e in events if kind == "destroy"]
        wanted = []
        for key in self.visible:
            r = table.get(key)
            if r is not None and not r.closed:
                wanted.append(r.entry)
        found, vanished = conntrack.refresh(wanted, self.source.sock) if wanted else ((), ())
        table.update(news + list(found), now, wall, gone + list(vanished))
        if self.enrich is not None and news:   # a flood's get their routes when shown (wanted)
            self.enrich.tick_new(news if len(news) <= self.PREFETCH_MAX else ())
        ifaces = getattr(self.enrich, "ifaces", None)
        if ifaces is not None and not news and ifaces.wanted():
            ifaces.prefetch(())     # what the screen asked for and the cache lacked
        return wall


def run_screen(source, opts, enrich, info):
    """The curses view; or, when curses cannot run here, the one line that
    says why (the caller then falls back to text frames)."""
    from .views.cells import Formatter
    from .views.state import ViewState
    try:
        from .views import screen
    except ImportError:
        return ("the live view needs Python's curses module (OpenWrt: opkg install "
                "python3-ncurses); printing text frames instead")
    try:
        stdscr = screen.enter()         # before the collector takes a snapshot
    except screen.SetupError as exc:
        return str(exc)
    try:
        state = ViewState(opts)
        if enrich is not None:      # the screen thread reads routes; the collector looks up
            enrich.defer_routes()
        collector = Collector(source, opts.interval, enrich,     # the kernel counts every flow:
                              reconcile=not (opts.families or opts.protocols))  # none filtered
        collector.start()
    except BaseException:
        screen.leave(stdscr)
        raise
    try:
        screen.run(state, Formatter(state, enrich), collector, info, stdscr)
    except CollectorFailed as exc:      # curses is restored by now: one line, status 1
        from .sources import FlowtopError
        raise FlowtopError(str(exc)) from None
    finally:
        collector.stop()
    return None
