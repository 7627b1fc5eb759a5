"""The live screen without a terminal: a Screen over a fake window
(curses is imported, never initialised): escape sequences, the status line."""

import curses

from flowtop import cli
from flowtop.enrich.bundle import Enrichment
from flowtop.live import Snapshot
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
