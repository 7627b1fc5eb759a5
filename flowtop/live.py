"""The refreshing outputs: curses, continuous text, streaming JSON/CSV.

Each tick reads the clocks once, takes a snapshot, and applies it to the
FlowTable, which yields rates.  For the curses view a collector thread does
this, so the screen keeps answering keys while a dump is being read.
"""

import threading
import time

from .netlink.errors import DecodeError
from .table import FlowTable


class Snapshot:
    """What one tick produced, immutable once published."""

    __slots__ = ("rows", "wall", "totals", "error", "seq")

    def __init__(self, rows, wall, totals, error, seq):
        self.rows, self.wall, self.totals, self.error, self.seq = rows, wall, totals, error, seq


def tick(source, table, enrich=None, monotonic=time.monotonic):
    """One refresh: snapshot the source, apply it, refresh the enrichers.
    Returns the wall time of the snapshot, or None when a replay has ended."""
    mono = monotonic()
    snap = source.snapshot("list")
    if snap is None:
        return None
    wall, flows = snap
    table.apply(flows, mono if source.live else wall, wall)
    if enrich is not None:
        enrich.tick(list(table))
    return wall


class Collector(threading.Thread):
    """Refreshes the table every ``interval`` seconds in the background and
    publishes a Snapshot; errors are published too, and retried."""

    def __init__(self, source, interval, enrich=None, table=None, monotonic=time.monotonic):
        super().__init__(name="flowtop-collector", daemon=True)
        self.source = source
        self.enrich = enrich
        self.interval = interval
        self.table = table or FlowTable()
        self.monotonic = monotonic
        self._latest = None
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._seq = 0

    def latest(self):
        return self._latest

    def set_interval(self, seconds):
        self.interval = seconds
        self._wake.set()

    def stop(self):
        self._halt.set()
        self._wake.set()

    def run(self):
        ended = False
        while not self._halt.is_set():
            started = self.monotonic()
            error = None
            wall = None
            if not ended:
                try:
                    wall = tick(self.source, self.table, self.enrich, self.monotonic)
                    ended = wall is None
                except (OSError, DecodeError) as exc:
                    error = str(exc)[:120]
            if wall is not None or error is not None:
                self._seq += 1
                previous = self._latest
                if wall is None:        # keep the rows we had, say what failed
                    wall = previous.wall if previous else time.time()
                self._latest = Snapshot(list(self.table), wall, self.table.totals()[:2],
                                        error, self._seq)
            delay = self.interval - (self.monotonic() - started)
            self._wake.wait(max(0.0, delay) if not ended else None)
            self._wake.clear()


def stream(source, writer, opts, enrich=None, sleep=time.sleep, monotonic=time.monotonic):
    """Streaming JSON/CSV and continuous text: every interval a snapshot,
    applied to the table, written with rates."""
    table = FlowTable()
    deadline = monotonic()
    while True:
        wall = tick(source, table, enrich, monotonic)
        if wall is None:
            return
        writer.write_rows(table, wall)
        if getattr(source, "finished", False):
            return
        deadline += opts.interval
        delay = deadline - monotonic()
        if delay > 0:
            sleep(delay)
        else:
            deadline = monotonic()


def run_screen(source, opts, enrich, info):
    """The curses view; or, when curses cannot run here, the one line that
    says why (the caller then falls back to text frames)."""
    from .views.rows import Formatter, ViewState
    try:
        from .views import curses_ui
    except ImportError:
        return ("the live view needs Python's curses module (OpenWrt: opkg install "
                "python3-ncurses); printing text frames instead")
    state = ViewState(opts)
    collector = Collector(source, opts.interval, enrich)
    collector.start()
    try:
        curses_ui.run(state, Formatter(state, enrich), collector, info)
    finally:
        collector.stop()
    return None
