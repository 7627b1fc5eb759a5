"""The live view's keys: a table of small handlers, each changing the view
state or the cursor and returning what the screen must do next (htop's
``Action.c``).  No curses here: keys are the characters typed, or curses'
names for the others ("KEY_UP"); the help screen is made from the table.
"""

import operator
from itertools import repeat

from ..values import VIEWS
from ..values import AGE_FORMATS, SORTS, UNITS
from .state import FAMILIES, GROUPS

# Reactions, cheapest first.  REDRAW: the same rows drawn again (the cursor,
# the looks); RESELECT: filters or order changed, the rows are chosen again;
# RECOLLECT: the collector's interval changed too; QUIT.
REDRAW, RESELECT, RECOLLECT, QUIT = "redraw", "reselect", "recollect", "quit"

INTERVALS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)
THRESHOLDS = (0.0, 1e3, 1e4, 1e5, 1e6)
ENTER = ("\n", "\r", "KEY_ENTER")
_KEY_OF = operator.attrgetter("key")


class Ui:
    """What keys change besides the ViewState: the pane shown, the cursor
    (kept on its row's key across refreshes) and the scroll offsets."""

    def __init__(self, state):
        self.state = state
        self.view = []             # the rows (or groups) on screen, in order
        self.mode = "table"        # table | details | help | filter | stats | confirm
        self.screen = None         # the Screen, for the keys that act on the kernel
        self.selected = 0
        self.selected_key = None
        self.top = 0
        self.hscroll = 0
        self.hscroll_max = 0       # how far the widest row lets Right scroll
        self.help_top = 0
        self.page = 20             # rows in a page: the screen sets it
        self.flash = ""            # a key's answer ("settings saved to ..."), until the next key

    def show(self, view):
        """A new view-model: the cursor stays on the row it was on."""
        old, self.view = self.view, view
        n, key = self.selected, self.selected_key
        if key is not None and not (n < len(view) and view[n].key == key):
            # moved: near where it was first (a flood's rows shift a little a tick;
            # a scan of 160k rows was ~4 % of the screen's time), then anywhere, in C
            for i in range(max(0, n - 64), min(len(view), n + 64)):
                if view[i].key == key:
                    self.selected = i
                    break
            else:
                self.selected = _place(view, old[n] if n < len(old) else None, key, n)
        self.selected = max(0, min(self.selected, len(view) - 1))
        self.selected_key = view[self.selected].key if view else None

    def move(self, delta):
        if not self.view:
            return
        self.selected = max(0, min(len(self.view) - 1, self.selected + delta))
        self.selected_key = self.view[self.selected].key

    def first(self):
        self.selected, self.selected_key, self.top = 0, None, 0


def _place(view, row, key, n):
    """Where ``row`` (the cursor's, of key ``key``) is in ``view``: the same
    object (a sort of the same rows) found by identity, which reads no row
    (250k rows, an 'o' press: 20-30 ms of CPU for the key scan); else by its
    key; else ``n``."""
    try:
        if row is not None and row.key == key:
            return operator.indexOf(map(operator.is_, view, repeat(row)), True)
    except ValueError:
        pass
    try:
        return operator.indexOf(map(_KEY_OF, view), key)
    except ValueError:
        return n


# -- handlers: (ui, key) -> reaction ---------------------------------------------------
_STEPS = {"KEY_UP": -1, "k": -1, "u": -1, "KEY_DOWN": 1, "j": 1, "d": 1}


def quit_(ui, key):
    return QUIT


def step(ui, key):
    ui.move(_STEPS[key])
    return REDRAW


def page(ui, key):
    ui.move(-ui.page if key == "KEY_PPAGE" else ui.page)
    return REDRAW


def ends(ui, key):
    ui.move(-len(ui.view) if key in ("KEY_HOME", "g") else len(ui.view))
    return REDRAW


def sideways(ui, key):
    ui.hscroll = max(0, ui.hscroll - 8) if key == "KEY_LEFT" else \
        min(ui.hscroll + 8, ui.hscroll_max)
    return REDRAW


def next_view(ui, key):
    st = ui.state
    n = VIEWS.index(st.view) + (1 if key == "\t" else -1)
    st.view = VIEWS[n % len(VIEWS)]
    st.group = None
    ui.first()
    return RESELECT


def enter(ui, key):
    st = ui.state
    if not ui.view:
        return None
    if st.view != "flows":
        g = ui.view[ui.selected]
        st.group = (st.view, g.key, g.label)   # its flows, Esc goes back
        st.view = "flows"
        ui.first()
        return RESELECT
    ui.mode = "details"
    return REDRAW


def back(ui, key):
    """Esc: no text filter, and out of a group back to its aggregate view."""
    st = ui.state
    st.filter = ""
    if st.group is not None:
        st.view, ui.selected_key = st.group[0], st.group[1]
        st.group = None
    ui.mode = "table"
    return RESELECT


def open_help(ui, key):
    ui.mode, ui.help_top = "help", 0
    return REDRAW


def open_filter(ui, key):
    ui.mode = "filter"
    return REDRAW


def next_sort(ui, key):
    st = ui.state
    st.sort = SORTS[(SORTS.index(st.sort) + 1) % len(SORTS)] if st.sort in SORTS else SORTS[0]
    st.reverse = False
    return RESELECT


def by_name(ui, key):
    if ui.state.view != "process":
        return None
    ui.state.by_name = not ui.state.by_name
    ui.first()
    return RESELECT


def toggle(field, reaction):
    """A handler that flips ``state.<field>``."""
    def handler(ui, key):
        setattr(ui.state, field, not getattr(ui.state, field))
        return reaction
    handler.__name__ = "toggle_" + field
    return handler


def cycle(field, values, reaction):
    """A handler that moves ``state.<field>`` to the next of ``values``."""
    def handler(ui, key):
        setattr(ui.state, field, _next(values, getattr(ui.state, field)))
        return reaction
    handler.__name__ = "cycle_" + field
    return handler


def proto_group(ui, key):
    ui.state.toggle_group(key)
    return RESELECT


def family(ui, key):
    ui.state.toggle_family(key)
    return RESELECT


def stats_pane(ui, key):
    ui.mode = "stats"
    return REDRAW


def delete(ui, key):
    """K / Delete: ask y/n before deleting (flowtop.act, through the screen)."""
    from .. import act
    act.ask(ui.screen)
    return REDRAW


def delete_answer(ui, key):
    from .. import act
    act.answer(ui.screen, key)
    return REDRAW


def interval(ui, key):
    st = ui.state
    st.interval = _up(INTERVALS, st.interval) if key in ("+", "=") else \
        _prev(INTERVALS, st.interval)
    return RECOLLECT


def save_settings(ui, key):
    """W: the settings that stay (flowtop.settings), saved; the answer flashes."""
    from .. import settings
    ui.flash = settings.save(ui.state, settings.rc_path(ui.state.rc))
    return REDRAW


class Bind:
    """One line of the help: its keys and what each one runs."""

    __slots__ = ("label", "text", "handlers")

    def __init__(self, label, text, *pairs):
        self.label, self.text = label, text
        self.handlers = {k: h for keys, h in pairs for k in keys}


TABLE = (
    Bind("Navigation", ""),
    Bind("Tab, Shift-Tab", "views: flows, processes, hosts, countries, interfaces, devices",
         (("\t", "KEY_BTAB"), next_view)),
    Bind("Enter on a group", "its flows (Esc goes back)"),
    Bind("Up/k/u, Down/j/d", "move the selection", (tuple(_STEPS), step)),
    Bind("PgUp PgDn Home End", "page, first, last", (("KEY_PPAGE", "KEY_NPAGE"), page),
         (("KEY_HOME", "g", "KEY_END", "G"), ends)),
    Bind("Left Right", "scroll sideways when rows are wider than the screen",
         (("KEY_LEFT", "KEY_RIGHT"), sideways)),
    Bind("Enter", "details of the selected flow (Up/Down: the next flow; Esc/q closes)",
         (ENTER, enter)),
    Bind("q", "quit", ("q", quit_)),
    Bind("Display", ""),
    Bind("o / r", "cycle sort column / reverse order", ("o", next_sort),
         ("r", toggle("reverse", RESELECT))),
    Bind("/", "filter: words, or dport=443 and dst=10.0.0.0/8 (Esc clears)",
         ("/", open_filter), (("\x1b",), back)),
    Bind("W", "save sort, view, columns, units, filter to flowtoprc", ("W", save_settings)),
    Bind("H", "columns: 2 s, 10 s, 40 s average rates and the peak",
         ("H", toggle("show_history", REDRAW))),
    Bind("a", "active flows only (rate > 0)", ("a", toggle("active_only", RESELECT))),
    Bind("t", "cycle rate threshold", ("t", cycle("threshold", THRESHOLDS, RESELECT))),
    Bind("T U D I S", "toggle TCP, UDP, DCCP, ICMP, SCTP", (tuple(GROUPS), proto_group)),
    Bind("4 6", "toggle IPv4, IPv6", (tuple(FAMILIES), family)),
    Bind("L", "toggle loopback flows", ("L", toggle("loopback", RESELECT))),
    Bind("n", "Processes: per PID or per program name", ("n", by_name)),
    Bind("s", "show source", ("s", toggle("show_src", REDRAW))),
    Bind("w", "wide: every column", ("w", toggle("wide", REDRAW))),
    Bind("i", "show conntrack id", ("i", toggle("show_id", REDRAW))),
    # the service names are searched by '/': the rows are chosen again
    Bind("P", "port numbers instead of service names",
         ("P", toggle("numeric_port", RESELECT))),
    Bind("A", "age: human, seconds, hidden", ("A", cycle("age", AGE_FORMATS, REDRAW))),
    Bind("b / B", "bits or bytes / units SI, IEC, raw", ("b", toggle("bits", REDRAW)),
         ("B", cycle("units", UNITS, REDRAW))),
    Bind("x / X", "redact local / remote addresses",
         ("x", toggle("redact_local", RESELECT)), ("X", toggle("redact_remote", RESELECT))),
    Bind("C", "conntrack statistics: table size, per-CPU counters (conntrack -S)",
         ("C", stats_pane)),
    Bind("K or Delete", "delete the selected flow, or every flow of the selected group (y/n)",
         (("K", "KEY_DC"), delete)),
    Bind("p or space", "pause the screen (collection goes on)",
         (("p", " "), toggle("paused", REDRAW))),
    Bind("+ -", "refresh interval", (("+", "=", "-", "_"), interval)),
    Bind("?", "this help", ("?", open_help)),
)


def table_keys(table):
    """key -> handler of every Bind in ``table``; a key bound twice is a bug."""
    out = {}
    for b in table:
        for k, h in b.handlers.items():
            if k in out:
                raise ValueError("key %r bound twice" % k)
            out[k] = h
    return out


def help_lines():
    """The help screen's lines, from TABLE."""
    return [b.label if not b.text else "  %-20s %s" % (b.label, b.text) for b in TABLE]


def help_page(ui, room):
    """The help lines ``room`` rows show from ``ui.help_top`` (kept in
    range), with a last line that says what is below or that it ends."""
    lines = help_lines()
    if len(lines) > room:               # scrolls: Up/Down, with a mark for the rest
        ui.help_top = min(ui.help_top, len(lines) - room + 1)
        rest = len(lines) - ui.help_top - (room - 1)
        lines = lines[ui.help_top:ui.help_top + room - 1] + (
            ["  -- %d more: Down/PgDn --" % rest] if rest > 0 else ["  -- end: Up/PgUp --"])
    return lines


# -- the panes over the table: help, details, the filter prompt --------------------------
def close(ui, key):
    ui.mode = "table"
    return REDRAW


def help_scroll(ui, key):
    n = 1 if key in ("KEY_UP", "k", "KEY_DOWN", "j") else 10
    ui.help_top = max(0, ui.help_top + (-n if key in ("KEY_UP", "k", "KEY_PPAGE") else n))
    return REDRAW


def filter_enter(ui, key):
    from .filterfields import compiled
    if compiled(ui.state.filter)[1] is None:      # a mistake stays in the prompt
        ui.mode = "table"
    return REDRAW


def filter_erase(ui, key):
    ui.state.filter = ui.state.filter[:-1]
    return RESELECT


def filter_type(ui, key):
    """Any other key at the filter prompt: a printable character is typed."""
    st = ui.state
    if isinstance(key, str) and len(key) == 1 and key.isprintable() and len(st.filter) < 200:
        st.filter += key
        return RESELECT
    return None


_CLOSE = ("q", "\x1b", "?") + ENTER
MODES = {
    "table": (table_keys(TABLE), None),
    "help": (dict({k: help_scroll for k in ("KEY_DOWN", "j", "KEY_NPAGE", " ", "KEY_UP", "k",
                                            "KEY_PPAGE")}, **{k: close for k in _CLOSE}), None),
    "details": (dict({k: step for k in ("KEY_UP", "k", "KEY_DOWN", "j")},
                     **{k: close for k in _CLOSE}), None),
    "stats": ({k: close for k in _CLOSE + ("C",)}, None),
    "confirm": ({}, delete_answer),          # y deletes, any other key cancels
    "filter": ({"\n": filter_enter, "\r": filter_enter, "KEY_ENTER": filter_enter,
                "\x1b": back, "KEY_BACKSPACE": filter_erase, "\x7f": filter_erase,
                "\b": filter_erase}, filter_type),
}


def dispatch(ui, key):
    """Run ``key``'s handler in the current pane; its reaction (None: nothing to do)."""
    keys, other = MODES[ui.mode]
    handler = keys.get(key, other)
    return None if handler is None else handler(ui, key)


def _next(seq, value):
    """The item after ``value`` in ``seq``, wrapping round (cycling keys)."""
    i = seq.index(value) if value in seq else -1
    return seq[(i + 1) % len(seq)]


def _up(seq, value):
    """The next larger step, or the largest (the interval keys stop at the ends)."""
    larger = [v for v in seq if v > value]
    return larger[0] if larger else seq[-1]


def _prev(seq, value):
    smaller = [v for v in seq if v < value]
    return smaller[-1] if smaller else seq[0]
