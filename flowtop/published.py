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
    decoding left it a third, and a 0.3 s sort showed after 1-3 s."""

    WAIT = 0.5

    def __init__(self):
        self._open = threading.Event()
        self._open.set()

    def hold(self):
        self._open.clear()

    def release(self):
        self._open.set()

    def wait(self):
        if not self._open.is_set():
            self._open.wait(self.WAIT)
