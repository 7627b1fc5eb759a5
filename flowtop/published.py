"""What the collector thread shares with the screen: the Snapshot each tick
publishes, and the Gate that gives the screen its turn while it answers a key."""

import threading


class Snapshot:
    """What one tick produced, immutable once published.  ``totals``:
    FlowTable.totals() (tx, rx, whether any rate is known); ``rates_every``:
    seconds between full refreshes (rates of rows off screen are up to that
    old); ``resyncs``: event overflows that forced a fresh dump; ``kernel``:
    the kernel's count of flows (``conntrack -C``) at the tick, or None;
    ``tally``: the table's Tally of ``rows`` (None: count them); ``version``
    the table's (the same, the same ``rows`` list); ``delta``: (the previous
    snapshot's version,) + FlowTable.take_changes() since, or None."""

    __slots__ = ("rows", "wall", "totals", "error", "seq", "full", "rates_every", "resyncs",
                 "kernel", "tally", "version", "delta", "taken")

    def __init__(self, rows, wall, totals, error, seq, full=True, rates_every=None, resyncs=0,
                 kernel=None, tally=None, version=None, delta=None):
        self.rows, self.wall, self.totals, self.error, self.seq = rows, wall, totals, error, seq
        self.full, self.rates_every, self.resyncs = full, rates_every, resyncs
        self.kernel, self.tally, self.version, self.delta = kernel, tally, version, delta
        self.taken = False       # set by the screen once it chose rows from it


def since_taken(previous, delta):
    """``delta`` (changes since ``previous``) made against the version the screen last
    took while it has not taken ``previous``: a mipsel router's screen spent 2-10 s
    choosing 16k rows, the collector published on, and the next delta was against a
    version it never built - every row chosen a second time."""
    if previous is None or previous.taken or delta is None or previous.delta is None:
        return delta
    base, dropped, changed = previous.delta
    gone = set(delta[1])
    kept = {k: r for k, r in changed.items() if k not in gone}
    kept.update(delta[2])
    return (base, set(dropped) | gone, kept)


class Gate:
    """The screen's turn.  While a key's rows are chosen and drawn, the
    collector's dump and the event reader wait between datagrams (at most
    WAIT s), so the key has the GIL to itself: in a 20k/s flood two threads
    decoding left it a third, and a 0.3 s sort showed after 1-3 s.  A first
    dump's first rows are drawn before it goes on (``published``, ``shown``)."""

    WAIT = 0.5
    # s a first dump waits for the screen to draw its first rows (mipsel: 0.4-1.5 s of CPU,
    # drawn beside the decoding dump in 1-3.5 s of wall)
    DRAW_WAIT = 2.0

    def __init__(self):
        self._open = threading.Event()
        self._open.set()
        self._rows = None        # (a screen's) set when a first dump's first rows are ready
        self._drawn = threading.Event()
        self._first = self._shown = None     # those rows' Snapshot; the one on screen

    def hold(self):
        self._open.clear()

    def release(self):
        self._open.set()

    def wait(self):
        if not self._open.is_set():
            self._open.wait(self.WAIT)

    def watch(self):
        """A screen draws what is published, and a first dump's first rows wait for it:
        ``shown`` is its call after each look."""
        self._rows = threading.Event()
        return self.shown

    def published(self, snap):
        """(the collector) ``snap`` holds a first dump's first rows: with a screen
        watching, the dump waits until they are drawn (DRAW_WAIT at most)."""
        if self._rows is not None:
            self._drawn.clear()
            self._first = snap
            self._rows.set()
            if self._shown is not snap:
                self._drawn.wait(self.DRAW_WAIT)

    def shown(self, snap, seconds=0):
        """(the screen) ``snap`` is on screen, and a dump waiting for it goes on; then
        up to ``seconds`` for the first rows (True after: no key waited for)."""
        self._shown = snap
        if snap is not None and snap is self._first:
            self._drawn.set()
        if seconds and self._rows is not None:
            self._rows.wait(seconds)
            return True
        return False
