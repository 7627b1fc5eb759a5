"""The live screen without a terminal: a Screen over a fake window
(curses is imported, never initialised): escape sequences, the status line."""

import curses
import time

import pytest

from flowtop import cli
from flowtop.enrich.bundle import Enrichment
from flowtop.collector import Snapshot
from flowtop.views import screen as ui
from flowtop.views.cells import Formatter
from flowtop.views.state import ViewState


class Services:
    def of_flow(self, sport, dport, proto, numeric=False):
        return str(dport)


class Window:
    """What Screen asks of a curses window: its size and queued keys."""

    def __init__(self, keys=(), size=(24, 80)):
        self.keys = list(keys)
        self.size = size

    def getmaxyx(self):
        return self.size

    def get_wch(self):
        if not self.keys:
            raise curses.error("no input")
        return self.keys.pop(0)

    def nodelay(self, flag):
        pass

    def timeout(self, ms):
        pass

    def erase(self):
        self.lines = {}

    def addnstr(self, y, x, text, n, attr=0):
        self.lines[y] = (text, attr)

    def noutrefresh(self):
        pass


class Collector:
    def __init__(self, snap):
        self.snap, self.visible, self.interval = snap, (), None

    def latest(self):
        return self.snap

    def set_visible(self, keys):
        self.visible = keys

    def set_interval(self, seconds):
        self.interval = seconds


def screen(*argv, keys=(), size=(24, 80)):
    st = ViewState(cli.parse(list(argv)))
    scr = ui.Screen(Window(keys, size), st, Formatter(st, Enrichment(Services())),
                    None, {"acct": True, "timestamp": True})
    return scr


def test_esc_then_a_key_read_together_are_both_keys():
    assert screen(keys=["p"])._after_escape() == ["\x1b", "p"]
    assert screen(keys=[])._after_escape() == ["\x1b"]
    assert screen(keys=["[", "9", "9", "~", "p"])._after_escape() == []   # unknown sequence
    # a cursor key's sequence curses returned in pieces (a slow link) is that key
    assert screen(keys=["[", "A"])._after_escape() == ["KEY_UP"]
    assert screen(keys=["O", "H"])._after_escape() == ["KEY_HOME"]
    assert screen(keys=["[", "6", "~"])._after_escape() == ["KEY_NPAGE"]
    assert screen(keys=["\x1b", "q"])._after_escape() == ["\x1b", "\x1b", "q"]


def test_n_toggles_per_name_grouping_in_the_processes_view_only():
    scr = screen("--view", "process")
    scr.key("n")
    assert scr.state.by_name
    scr.key("n")
    assert not scr.state.by_name
    flows = screen()
    flows.key("n")
    assert not flows.state.by_name


def test_at_80_columns_errors_pause_and_filters_outrank_the_rest():
    scr = screen("-T", "--in-iface", "eth0")
    scr.state.paused = True
    snap = Snapshot([], 0.0, (0.0, 0.0, False), "recv: No buffer space available", 1)
    line = scr._status(80, snap)
    assert len(line) <= 79, line
    for what in ("PAUSED", "only tcp", "in eth0"):
        assert what in line, (what, line)
    # no room left for the error: it takes the key hints' line
    assert scr.note == "error: recv: No buffer space available", scr.note
    scr.state.paused = False
    line = scr._status(80, snap)
    assert "only tcp" in line and "error" not in line and scr.note.startswith("error: recv")
    short = scr._status(80, Snapshot([], 0.0, (0.0, 0.0, False), "EPERM", 2))
    assert "error: EPERM" in short and scr.note == "", short
    wide = scr._status(200, snap)
    assert "sort rate desc" in wide and wide.startswith("[Flows] Processes"), wide
    assert "error: recv" in wide and scr.note == ""


def test_a_cursor_move_draws_again_without_choosing_the_rows_again(monkeypatch):
    from tests.viewutil import table_of
    monkeypatch.setattr(curses, "doupdate", lambda: None)
    t, when = table_of()
    scr = screen("--loopback", size=(30, 100))
    scr.collector = Collector(Snapshot(list(t), when, t.totals(), None, 1))
    scr.snap = scr.collector.latest()
    scr.refresh()
    assert scr.scr.lines[3][1] == curses.A_REVERSE          # the first row is selected
    first = scr.collector.visible

    def fail(*a):
        raise AssertionError("rows chosen again for a cursor move")
    monkeypatch.setattr(scr.selection, "build", fail)
    for key in (curses.KEY_DOWN, "j", curses.KEY_NPAGE, curses.KEY_HOME, "s", "b", "w"):
        scr.key(key)
        scr.refresh()
    scr.key(curses.KEY_DOWN)
    scr.refresh()
    assert scr.ui.selected == 1 and scr.scr.lines[4][1] == curses.A_REVERSE
    assert scr.collector.visible == first and "SOURCE" in scr.scr.lines[2][0]
    scr.key("+")                                           # the collector is told
    assert scr.collector.interval == 2.0
    scr.key("L")                                           # a filter: the rows are chosen again
    with pytest.raises(AssertionError):
        scr.refresh()


def test_a_key_that_keeps_the_rows_draws_them_again_without_formatting_them_again(
        monkeypatch):
    """A mipsel router spent 0.25-0.45 s of a key's 0.3-0.6 s draw formatting the
    36 rows on screen again.  A cursor move or a pane reuses them; a look (A), a
    new snapshot or a row not formatted yet is formatted."""
    from tests.viewutil import table_of
    monkeypatch.setattr(curses, "doupdate", lambda: None)
    t, when = table_of()
    scr = screen("--loopback", size=(30, 100))
    scr.collector = Collector(Snapshot(list(t), when, t.totals(), None, 1))
    scr.snap = scr.collector.latest()
    formatted, placed = [], []
    cells = scr.fmt.cells
    monkeypatch.setattr(scr.fmt, "cells", lambda r, wall: formatted.append(r) or cells(r, wall))
    from flowtop.views import cells as cells_module, columns
    for module in (cells_module, ui):      # the screen's own, before CellCache.line
        monkeypatch.setattr(module, "place", lambda c, cols: placed.append(c) or
                            columns.place(c, cols), raising=False)
    scr.refresh()
    shown = len(formatted)
    assert shown >= 5 and len(placed) == shown, (shown, len(placed))
    before = dict(scr.scr.lines)
    for key in (curses.KEY_DOWN, "j", "?", "\x1b", curses.KEY_UP):
        scr.key(key)
        scr.refresh()
    assert len(formatted) == shown, "rows formatted again for a key that kept them"
    assert len(placed) == shown, "rows laid out again for a key that kept them"
    assert scr.scr.lines[4][0] == before[4][0] and scr.scr.lines[4][1] == curses.A_REVERSE
    scr.key("A")                                     # ages in seconds: every row differs
    scr.refresh()
    assert len(formatted) == 2 * shown and scr.scr.lines[3][0] != before[3][0]
    scr.snap = Snapshot(list(t), when + 1, t.totals(), None, 2)     # the next tick's
    scr.stale = True
    scr.refresh()
    assert len(formatted) == 3 * shown


FIRST_FRAME = r"""
import curses, sys
curses.doupdate = lambda: None
from tests.test_screen_window import Collector, Snapshot, screen
from tests.viewutil import table_of
t, when = table_of()
scr = screen("--loopback", size=(30, 100))
scr.collector = Collector(Snapshot(list(t), when, t.totals(), None, 1))
scr.snap = scr.collector.latest()
scr.refresh()
for key in ("j", "o", "r"):
    scr.key(key)
    scr.refresh()
print(" ".join(m for m in ("flowtop.views.filterexpr", "flowtop.act") if m in sys.modules))
"""


def test_frames_without_a_filter_or_a_delete_import_neither_the_parser_nor_the_action():
    """A mipsel router imported the '/' parser (1.3 s) in the first frame, before the
    first rows, and the delete action (with copy: 0.4 s) with the screen."""
    import os
    import subprocess
    import sys
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run([sys.executable, "-c", FIRST_FRAME], cwd=repo, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == []


def test_the_screen_is_the_only_view_module_that_imports_curses():
    import ast
    import os
    from flowtop import views
    here = os.path.dirname(views.__file__)
    importers = set()
    for name in sorted(os.listdir(here)):
        if name.endswith(".py"):
            with open(os.path.join(here, name), encoding="utf-8") as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                if any(n.split(".")[0] == "curses" for n in names):
                    importers.add(name)
    assert importers == {"screen.py"}


def test_before_the_first_snapshot_the_header_says_how_many_flows_the_dump_has_read(
        monkeypatch):
    """A first dump of 250k flows takes seconds: a bare "collecting..." looked hung."""
    monkeypatch.setattr(curses, "doupdate", lambda: None)
    monkeypatch.setattr(curses, "has_colors", lambda: False)
    monkeypatch.setattr(curses, "curs_set", lambda n: None)
    monkeypatch.setattr(Window, "keypad", lambda self, flag: None, raising=False)

    scr = screen(size=(24, 120))
    scr.collector = col = Collector(None)
    scr.draw()
    assert scr.scr.lines[0][0].endswith("collecting...")
    col.reading = (time.monotonic() - 1.0, 120000)     # (dump start, flows read so far)
    scr.scr.keys = ["q"]
    assert scr.run() is None                      # the loop drew the moved count, then q
    assert "reading the kernel's table: 120000 flows so far" in scr.scr.lines[0][0]


def test_a_dump_s_progress_line_takes_a_tenth_of_a_core_at_most_when_a_draw_is_slow(
        monkeypatch):
    """On a mipsel router a draw took 0.1 s of CPU: redrawn every 0.25 s, the
    progress line took 40 % of the core from the 53 s dump it reported on.
    Simulated: a clock the test moves, a draw that costs 0.1 s of CPU."""
    monkeypatch.setattr(curses, "doupdate", lambda: None)
    from tests.clock import Clock
    scr = screen(size=(24, 120))
    scr.collector = col = Collector(None)
    clock, cpu = Clock(100.0), Clock(0.0)
    scr.clock, scr.cpu = clock, cpu
    draw, draws = scr.draw, []

    def slow_draw():
        draw()
        draws.append(clock.now)
        cpu.advance(0.1 if len(draws) > 1 else 0.0)    # the first draw (no dump yet) is cheap
    scr.draw = slow_draw
    scr.refresh()
    for i in range(400):                          # a 20 s dump, the loop's 50 ms key poll
        clock.advance(0.05)
        col.reading = (100.0, 1000 * i)
        scr._progress()
        scr.refresh()
    assert "flows so far" in scr.scr.lines[0][0]
    assert 0.1 * (len(draws) - 1) / 20.0 <= 0.1 + 0.01, len(draws)
    assert len(draws) >= 15                      # it still moves: about once a second


def test_the_header_shows_the_counts_the_snapshot_carries_without_a_pass_over_its_rows(
        monkeypatch):
    """The collector's table keeps its counts (Tally): the header reads
    them (at 250k rows its own pass was ~50 ms a snapshot)."""
    from tests.viewutil import table_of
    from flowtop.views import screen as screen_module
    monkeypatch.setattr(curses, "doupdate", lambda: None)
    t, when = table_of()
    tally = t.tally().copy()
    scr = screen("--loopback", size=(30, 160))
    scr.collector = Collector(Snapshot(list(t), when, tally.totals(), None, 1, tally=tally,
                                       version=t.version))
    scr.snap = scr.collector.latest()

    def fail(*a):
        raise AssertionError("a pass over every row for the header")
    monkeypatch.setattr(screen_module, "header_counts", fail)
    scr.refresh()
    n = sum(tally.protos.values())
    assert scr.scr.lines[0][0].split()[2:4] == [str(n), "flows"], scr.scr.lines[0]


def test_an_idle_screen_wakes_five_times_a_second_at_most(monkeypatch):
    """With nothing to draw, each turn of the loop (a key wait, a look for a
    snapshot) cost ~5 ms on a mipsel router: 20 a second were a tenth of its
    core.  A simulated 10 s: the window's key wait moves a clock by its timeout."""
    monkeypatch.setattr(curses, "doupdate", lambda: None)
    monkeypatch.setattr(curses, "has_colors", lambda: False)
    monkeypatch.setattr(curses, "curs_set", lambda n: None)
    monkeypatch.setattr(Window, "keypad", lambda self, flag: None, raising=False)
    from tests.clock import Clock
    clock = Clock(0.0)

    class Idle(Window):
        waits = 0

        def timeout(self, ms):
            self.ms = ms

        def get_wch(self):
            if clock.now >= 10.0:
                return "q"
            Idle.waits += 1
            clock.advance(self.ms / 1000.0)
            raise curses.error("no input")
    scr = screen(size=(24, 120))
    scr.scr = Idle()
    scr.collector = Collector(None)
    scr.clock = clock
    assert scr.run() is None
    assert Idle.waits * 0.005 / 10.0 <= 0.03, Idle.waits


def test_before_its_first_rows_the_screen_draws_them_when_published_not_after_a_key_s_wait(
        monkeypatch):
    """On a mipsel router the first rows came up to TICK (0.2 s) after the collector
    published them, while the screen waited for a key.  It waits for them instead
    (the collector's Gate), draws them, and the first dump, waiting, goes on."""
    import threading
    from flowtop.published import Gate
    from tests.viewutil import table_of
    monkeypatch.setattr(curses, "doupdate", lambda: None)
    monkeypatch.setattr(curses, "has_colors", lambda: False)
    monkeypatch.setattr(curses, "curs_set", lambda n: None)
    monkeypatch.setattr(Window, "keypad", lambda self, flag: None, raising=False)
    t, when = table_of()
    early = Snapshot(list(t), when, t.tally().totals(), None, 1, full=False)
    col = Collector(None)
    col.gate = Gate()
    waited = []

    def publish():                       # the collector's first dump, a datagram in
        time.sleep(0.05)
        col.snap = early
        t0 = time.monotonic()
        col.gate.published(early)        # back once the rows are drawn
        waited.append(time.monotonic() - t0)

    class Keys(Window):
        def timeout(self, ms):
            self.ms = ms

        def get_wch(self):
            if waited or time.monotonic() > give_up:
                return "q"
            if scr.snap is None:
                self.waits.append(self.ms)
            time.sleep(self.ms / 1000.0)
            raise curses.error("no input")
    scr = screen("--loopback", size=(30, 160))
    scr.scr, scr.collector, scr.scr.waits = Keys(), col, []
    give_up = time.monotonic() + 5
    threading.Thread(target=publish, daemon=True).start()
    assert scr.run() is None
    assert scr.snap is early and early.taken and " 0 flows" not in scr.scr.lines[0][0]
    # no key's 0.2 s wait before the rows: a look for them (Gate.shown), then one for keys
    assert scr.scr.waits == [0], scr.scr.waits
    assert waited and waited[0] < Gate.DRAW_WAIT / 2, waited
