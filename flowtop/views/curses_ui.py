"""The full-screen live view: the only module that imports curses.

It draws what ``views.rows`` builds and turns keys into changes of the
ViewState.  Data arrives from a collector thread as snapshots; the screen
loop never waits for a dump, so keys work while one is being collected.
"""

import curses
import locale
import sys
import time

from .. import __version__
from ..text import cut, sanitize, skip, width as text_width
from . import aggregate as agg
from . import rows as vm
from .filterfields import compiled

MIN_W, MIN_H = 40, 10
TICK = 0.05                       # key poll: a key's effect shows within ~50 ms
# After an Esc curses returned: how long the rest of a sequence may take to
# arrive (a slow SSH link splits "ESC [ A"), and then each of its bytes.
ESC_WAIT_MS, SEQ_WAIT_MS = 30, 100
# The cursor keys' sequences (after ESC [ or ESC O) in xterm's two modes.
_SEQUENCES = {"A": "KEY_UP", "B": "KEY_DOWN", "C": "KEY_RIGHT", "D": "KEY_LEFT",
              "H": "KEY_HOME", "F": "KEY_END", "1~": "KEY_HOME", "4~": "KEY_END",
              "5~": "KEY_PPAGE", "6~": "KEY_NPAGE", "Z": "KEY_BTAB"}
INTERVALS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)
THRESHOLDS = (0.0, 1e3, 1e4, 1e5, 1e6)

HELP = (
    ("Navigation", ""),
    ("Tab, Shift-Tab", "views: flows, processes, hosts, countries, interfaces, devices"),
    ("Enter on a group", "its flows (Esc goes back)"),
    ("Up/k/u, Down/j/d", "move the selection"),
    ("PgUp PgDn Home End", "page, first, last"),
    ("Left Right", "scroll sideways when rows are wider than the screen"),
    ("Enter", "details of the selected flow (Up/Down: the next flow; Esc/q closes)"),
    ("q", "quit"),
    ("Display", ""),
    ("o / r", "cycle sort column / reverse order"),
    ("/", "filter: words, or dport=443 and dst=10.0.0.0/8 (Esc clears)"),
    ("W", "save sort, view, columns, units, filter to flowtoprc"),
    ("H", "columns: 2 s, 10 s, 40 s average rates and the peak"),
    ("a", "active flows only (rate > 0)"),
    ("t", "cycle rate threshold"),
    ("T U D I S", "toggle TCP, UDP, DCCP, ICMP, SCTP"),
    ("4 6", "toggle IPv4, IPv6"),
    ("L", "toggle loopback flows"),
    ("n", "Processes: per PID or per program name"),
    ("s", "show source"),
    ("w", "wide: every column"),
    ("i", "show conntrack id"),
    ("P", "port numbers instead of service names"),
    ("A", "age: human, seconds, hidden"),
    ("b / B", "bits or bytes / units SI, IEC, raw"),
    ("x / X", "redact local / remote addresses"),
    ("p or space", "pause the screen (collection goes on)"),
    ("+ -", "refresh interval"),
    ("?", "this help"),
)


class Screen:
    """One curses session.  ``collector`` publishes snapshots (``latest()``)
    and takes ``set_interval``; ``info`` is a dict of header facts."""

    def __init__(self, stdscr, state, formatter, collector, info, clock=time.monotonic):
        self.scr = stdscr
        self.state = state
        self.fmt = formatter
        self.collector = collector
        self.info = info
        self.clock = clock
        self.snap = None           # the snapshot on screen
        self.view = []             # its rows, filtered and sorted
        self.selected = 0
        self.selected_key = None
        self.top = 0
        self.hscroll = 0
        self._hscroll_max = 0      # how far the widest row lets Right scroll
        self.mode = "table"        # table | details | help | filter
        self.message = ""
        self.help_top = 0
        self._counts, self._counts_of = {}, None
        self.dirty = True
        self.colors = {}
        self._lacking = 0
        self._loop, self._loop_of = 0, None
        self.note = ""             # what the status line had no room for (an error)
        self.flash = ""            # a key's answer ("settings saved to ..."), until the next key
        utf8 = (locale.getpreferredencoding(False) or "").lower().replace("-", "") == "utf8"
        self._marks = ("\u25b2", "\u25bc") if utf8 else ("*", "*")   # ascending, descending
        self.state.unicode = utf8

    # -- setup ------------------------------------------------------------------------
    def setup(self):
        try:
            curses.curs_set(0)
        except curses.error:
            pass
        self.scr.keypad(True)
        self.scr.timeout(int(TICK * 1000))
        if curses.has_colors():
            try:
                curses.start_color()
                curses.use_default_colors()
                curses.init_pair(1, curses.COLOR_BLACK, curses.COLOR_CYAN)
                curses.init_pair(2, curses.COLOR_GREEN, -1)
                curses.init_pair(3, curses.COLOR_YELLOW, -1)
                self.colors = {"bar": curses.color_pair(1), "new": curses.color_pair(2),
                               "warn": curses.color_pair(3)}
            except curses.error:
                self.colors = {}

    # -- loop -------------------------------------------------------------------------
    def run(self):
        self.setup()
        while True:
            snap = self.collector.latest()
            if snap is not None and snap is not self.snap and not self.state.paused:
                self.snap = snap
                self.dirty = True
            if self.dirty:
                self.rebuild()
                self.draw()
                self.dirty = False
            try:
                ch = self.scr.get_wch()
            except curses.error:
                continue
            keys = [ch]
            if ch == "\x1b":
                keys = self._after_escape()
            self.flash = ""
            for key in keys:
                if self.handle(key) is False:
                    return
            self.dirty = True

    def rebuild(self):
        if self.snap is None:
            self.view = []
            return
        self.state.wall = self.snap.wall
        self.view = vm.build(self.snap.rows, self.state, self.fmt)
        if self.selected_key is not None:
            for i, r in enumerate(self.view):
                if r.key == self.selected_key:
                    self.selected = i
                    break
        self.selected = max(0, min(self.selected, len(self.view) - 1))
        self.selected_key = self.view[self.selected].key if self.view else None

    # -- keys -------------------------------------------------------------------------
    def _after_escape(self):
        """The keys an ESC read stands for.  Anything that follows at once
        (Alt-x, a paste, a slow link delivering Esc and the next key
        together) is the Esc key and then that key: both count.  A CSI/SS3
        sequence curses did not decode (split by a slow link, or a key this
        terminfo does not know) is read whole: a cursor key it names counts
        as that key, any other is swallowed."""
        try:
            self.scr.timeout(ESC_WAIT_MS)
            try:
                nxt = self.scr.get_wch()
            except curses.error:
                return ["\x1b"]         # nothing follows: the Esc key itself
            if nxt == "\x1b":            # Esc Esc: the second may start a sequence
                return ["\x1b"] + self._after_escape()
            if nxt not in ("[", "O"):
                return ["\x1b", nxt]
            seq = ""
            self.scr.timeout(SEQ_WAIT_MS)
            for _ in range(16):          # parameters, then a final byte @..~
                try:
                    c = self.scr.get_wch()
                except curses.error:
                    break
                if not isinstance(c, str):
                    return [c]           # curses decoded what came next itself
                seq += c
                if "@" <= c <= "~" and not (nxt == "[" and c == "["):
                    break
            key = _SEQUENCES.get(seq)
            return [] if key is None else [getattr(curses, key)]
        finally:
            self.scr.timeout(int(TICK * 1000))

    def handle(self, ch):
        """Apply one key; False means quit."""
        if ch == curses.KEY_RESIZE:
            curses.update_lines_cols()
            return True
        if self.mode == "filter":
            return self._filter_key(ch)
        if self.mode == "help" and ch in (curses.KEY_DOWN, "j", curses.KEY_NPAGE, " "):
            self.help_top += 1 if ch in (curses.KEY_DOWN, "j") else 10
            return True
        if self.mode == "help" and ch in (curses.KEY_UP, "k", curses.KEY_PPAGE):
            self.help_top = max(0, self.help_top - (1 if ch in (curses.KEY_UP, "k") else 10))
            return True
        if self.mode == "details" and ch in (curses.KEY_UP, "k", curses.KEY_DOWN, "j"):
            self._move(-1 if ch in (curses.KEY_UP, "k") else 1)    # the next flow's details
            return True
        if self.mode in ("details", "help"):
            if ch in ("q", "\x1b", "\n", "\r", curses.KEY_ENTER, "?"):
                self.mode = "table"
            return True
        st = self.state
        page = max(1, self._rows_room())
        moves = {curses.KEY_UP: -1, "k": -1, "u": -1, curses.KEY_DOWN: 1, "j": 1, "d": 1,
                 curses.KEY_PPAGE: -page, curses.KEY_NPAGE: page}
        if ch == "q":
            return False
        if ch in moves:
            self._move(moves[ch])
        elif ch in (curses.KEY_HOME, "g"):
            self._move(-len(self.view))
        elif ch in (curses.KEY_END, "G"):
            self._move(len(self.view))
        elif ch == curses.KEY_LEFT:
            self.hscroll = max(0, self.hscroll - 8)
        elif ch == curses.KEY_RIGHT:
            self.hscroll = min(self.hscroll + 8, self._hscroll_max)
        elif ch in ("\t", curses.KEY_BTAB):
            step = 1 if ch == "\t" else -1
            st.view = agg.VIEWS[(agg.VIEWS.index(st.view) + step) % len(agg.VIEWS)]
            st.group = None
            self.selected, self.selected_key, self.top = 0, None, 0
        elif ch in ("\n", "\r", curses.KEY_ENTER):
            if self.view and st.view != "flows":
                g = self.view[self.selected]
                st.group = (st.view, g.key, g.label)   # its flows, Esc goes back
                st.view = "flows"
                self.selected, self.selected_key, self.top = 0, None, 0
            elif self.view:
                self.mode = "details"
        elif ch == "?":
            self.mode = "help"
            self.help_top = 0
        elif ch == "/":
            self.mode = "filter"
            self._filter_before = st.filter
        elif ch == "\x1b":
            st.filter = ""
            if st.group is not None:                  # back to the aggregate view
                st.view, key = st.group[0], st.group[1]
                st.group = None
                self.selected_key = key
        elif ch == "o":
            st.sort = vm.SORTS[(vm.SORTS.index(st.sort) + 1) % len(vm.SORTS)] \
                if st.sort in vm.SORTS else vm.SORTS[0]
            st.reverse = False
        elif ch == "r":
            st.reverse = not st.reverse
        elif ch == "a":
            st.active_only = not st.active_only
        elif ch == "t":
            st.threshold = _next(THRESHOLDS, st.threshold)
        elif ch in vm.GROUPS:
            st.toggle_group(ch)
        elif ch in vm.FAMILIES:
            st.toggle_family(ch)
        elif ch == "L":
            st.loopback = not st.loopback
        elif ch == "n" and st.view == "process":
            st.by_name = not st.by_name
            self.selected, self.selected_key, self.top = 0, None, 0
        elif ch == "s":
            st.show_src = not st.show_src
        elif ch == "w":
            st.wide = not st.wide
        elif ch == "i":
            st.show_id = not st.show_id
        elif ch == "P":
            st.numeric_port = not st.numeric_port
        elif ch == "A":
            st.age = _next(vm.AGE_FORMATS, st.age)
        elif ch == "b":
            st.bits = not st.bits
        elif ch == "B":
            st.units = _next(vm.UNITS, st.units)
        elif ch == "x":
            st.redact_local = not st.redact_local
        elif ch == "X":
            st.redact_remote = not st.redact_remote
        elif ch == "H":
            st.show_history = not st.show_history
        elif ch == "W":                                # settings that stay (flowtop.settings)
            from .. import settings
            self.flash = settings.save(st, settings.rc_path(st.rc))
        elif ch in ("p", " "):
            st.paused = not st.paused
        elif ch in ("+", "="):
            st.interval = _up(INTERVALS, st.interval)
            self.collector.set_interval(st.interval)
        elif ch in ("-", "_"):
            st.interval = _prev(INTERVALS, st.interval)
            self.collector.set_interval(st.interval)
        return True

    def _filter_key(self, ch):
        st = self.state
        if ch in ("\n", "\r", curses.KEY_ENTER):
            if compiled(st.filter)[1] is None:          # a mistake stays in the prompt
                self.mode = "table"
        elif ch == "\x1b":
            st.filter = ""
            if st.group is not None:                  # back to the aggregate view
                st.view, key = st.group[0], st.group[1]
                st.group = None
                self.selected_key = key
            self.mode = "table"
        elif ch in (curses.KEY_BACKSPACE, "\x7f", "\b"):
            st.filter = st.filter[:-1]
        elif isinstance(ch, str) and ch.isprintable() and len(st.filter) < 200:
            st.filter += ch
        return True

    def _move(self, delta):
        if not self.view:
            return
        self.selected = max(0, min(len(self.view) - 1, self.selected + delta))
        self.selected_key = self.view[self.selected].key

    def _rows_room(self):
        h, _w = self.scr.getmaxyx()
        return h - 4

    # -- drawing ----------------------------------------------------------------------
    def draw(self):
        scr = self.scr
        h, w = scr.getmaxyx()
        scr.erase()
        if h < MIN_H or w < MIN_W:
            self._put(0, 0, "too small: %dx%d, need %dx%d" % (w, h, MIN_W, MIN_H), w)
            scr.refresh()
            return
        self._header(w)
        room = h - 4
        if self.selected < self.top:
            self.top = self.selected
        elif self.selected >= self.top + room:
            self.top = self.selected - room + 1
        self.top = max(0, min(self.top, max(0, len(self.view) - room)))
        shown = self.view[self.top:self.top + room]
        flows = self.state.view == "flows"
        wall = self.snap.wall if self.snap else time.time()
        if flows:
            cells = [self.fmt.cells(r, wall) for r in shown]
            flex = max([len(c["dst"]) for c in cells] or [21])
            # rows are drawn to w - 1
            cols = vm.layout(w - 1, self.state, flex, vm.widths_of(cells))
        else:
            cells = [self.fmt.group_cells(g) for g in shown]
            cols = vm.group_layout(w - 1, self.state, cells)
        # Right stops where the widest row ends; a resize that makes room
        # brings the offset back.
        self._hscroll_max = max(0, sum(cw for _c, cw in cols) + len(cols) - 1 - (w - 1))
        self.hscroll = min(self.hscroll, self._hscroll_max)
        head = " ".join(self._title(c).rjust(cw) if c.right else self._title(c).ljust(cw)
                        for c, cw in cols)
        self._put(2, 0, skip(head, self.hscroll), w, curses.A_REVERSE | curses.A_BOLD)
        # the collector refreshes these rows every tick, even between full dumps
        self.collector.visible = [r.key for r in shown] if flows else ()
        for i, r in enumerate(shown):
            line = skip(self.fmt._place(cells[i], cols), self.hscroll)
            attr = 0
            if r.closed:
                attr = curses.A_DIM
            elif r.is_new:
                attr = self.colors.get("new", curses.A_BOLD)
            if self.top + i == self.selected:
                attr = curses.A_REVERSE
            self._put(3 + i, 0, line, w, attr)
        if not self.view:
            self._put(4, 2, self._empty_text(), w)
        self._footer(h, w)
        scr.noutrefresh()          # the table first, overlays on top of it
        if self.mode == "details":
            self._details(h, w, wall)
        elif self.mode == "help":
            self._help(h, w)
        curses.doupdate()

    def _title(self, c):
        """A column title, marked when the rows are sorted by it (htop's habit)."""
        sorts = (vm.SORT_COLUMNS if self.state.view == "flows" else vm.GROUP_SORT_COLUMNS)
        if c.name not in sorts.get(self.state.sort, ()):
            return c.title
        st = self.state
        asc = (st.sort in vm.ASCENDING) != st.reverse
        return c.title + (self._marks[0] if asc else self._marks[1])

    def _empty_text(self):
        """Why the table is empty: a filter, or flows that are there but
        on loopback (hidden by default)."""
        st = self.state
        if st.filter:
            return "no flows match"
        if not st.loopback and self.snap is not None:
            if self._loop_of is not self.snap:      # 30 ms at 100k rows: once per snapshot
                self._loop, self._loop_of = vm.loopback_count(self.snap.rows), self.snap
            hidden = self._loop
            if hidden:
                return "%d loopback flow%s hidden \u2014 L shows them" % (
                    hidden, "" if hidden == 1 else "s")
        return "no flows"

    def _header(self, w):
        snap, st = self.snap, self.state
        if snap is None:
            self._put(0, 0, "flowtop %s  collecting..." % __version__, w, curses.A_BOLD)
            return
        if self._counts_of is not snap:      # a pass over every row: once per snapshot
            self._counts, self._counts_of = vm.summary(snap.rows), snap
            self._lacking = vm.uncounted(snap.rows)
        acct = self.info.get("acct")
        why = " (older than accounting: the kernel counts only flows created after it " \
              "was switched on)" if acct else ""
        tx, rx, known = snap.totals       # known: any flow's rate is (0 is a rate)
        rates = "  TX %s  RX %s" % (self.fmt.rate(tx if known else None),
                                    self.fmt.rate(rx if known else None))
        # the most detailed line that fits: then without the reason, the
        # per-protocol counts, the version
        counts, lacking = self._counts, self._lacking
        for version, per, because in ((1, 1, why), (1, 1, ""), (1, 0, ""), (0, 0, "")):
            line0 = ("flowtop %s  " % __version__ if version else "") + vm.flows_text(
                counts, lacking, because, per) + rates
            if len(line0) <= w - 1:
                break
        spark = self._total_spark(w - 1 - len(line0))
        self._put(0, 0, line0 + spark, w, curses.A_BOLD)
        self._put(1, 0, self._status(w, snap), w, self.colors.get("warn", 0) if snap.error else 0)

    def _total_spark(self, room):
        """The total rate's last minute as a sparkline, when it fits."""
        h = getattr(self.fmt.enrich, "history", None)
        if h is None or room < 14 or not h.total.samples:
            return ""
        from ..history import sparkline
        n = min(30, room - 2)
        return "  " + sparkline(h.total.series(n, 60.0 / n, h.now()), self.state.unicode)

    def _status(self, w, snap):
        """The status line.  What changes what the user sees (paused, errors,
        filters, hidden protocols, accounting off) comes first in priority:
        at 80 columns the rest gives way, first of all the other views' tabs."""
        st = self.state
        order = "asc" if (st.sort in vm.ASCENDING) != st.reverse else "desc"
        every = "every %gs" % st.interval
        if snap.rates_every and snap.rates_every > st.interval + 0.05:
            every += " (rates: shown rows every tick, others every %.1fs)" % snap.rates_every
        if snap.resyncs:
            every += " resynced %d" % snap.resyncs
        acct, tstamp = self.info.get("acct"), self.info.get("timestamp")
        filters = st.filters_text()
        error = "error: %s" % snap.error if snap.error else ""
        # (priority: 0 never dropped, larger dropped first; text)
        facts = [(0, "[%s]" % agg.TITLES[st.view]),
                 (0, "PAUSED" if st.paused else ""),
                 (0, error),
                 (0, "filter %s" % filters if filters else ""),
                 (1 if acct is False else 5, "acct %s" % _onoff(acct)),
                 (1 if tstamp is False else 6, "tstamp %s" % _onoff(tstamp)),
                 (2, "shown %d" % len(self.view)),
                 (3, "sort %s %s" % (st.sort, order)),
                 (4, every),
                 (2, "per name" if st.view == "process" and st.by_name else "")]
        facts = [f for f in facts if f[1]]
        self.note = ""
        if error and sum(len(t) + 2 for p, t in facts if p == 0) > w - 1:
            facts.remove((0, error))
            self.note = error                    # no room: the error takes the key hints' line
        while sum(len(t) + 2 for _p, t in facts) > w - 1:
            worst = max(range(len(facts)), key=lambda i: (facts[i][0], i))
            if facts[worst][0] == 0:
                break
            del facts[worst]
        line = "  ".join(t for _p, t in facts)
        tabs = " ".join(("[%s]" if v == st.view else "%s") % agg.TITLES[v] for v in agg.VIEWS)
        if len(line) + len(tabs) - len(facts[0][1]) <= w - 1:
            line = tabs + line[len(facts[0][1]):]        # every view's name when there is room
        return line

    def _footer(self, h, w):
        if self.mode == "filter":
            err = compiled(self.state.filter)[1]
            self._put(h - 1, 0, "filter: %s_  %s" % (self.state.filter, "(Enter keeps, Esc clears)"
                                                     if err is None else "<- " + str(err)), w,
                      curses.A_BOLD)
            return
        if self.note or self.flash:
            self._put(h - 1, 0, self.note or self.flash, w,
                      self.colors.get("warn", curses.A_BOLD))
            return
        hint = ("q quit  ? help  Tab view  Enter details  / filter  o sort  r reverse  "
                "p pause  s source  b bits  +/- interval")
        self._put(h - 1, 0, hint, w, self.colors.get("bar", curses.A_REVERSE))

    def _box(self, h, w, title, lines):
        bh = min(h - 2, len(lines) + 2)
        bw = min(w - 2, max(len(title) + 6, max(text_width(a) for a in lines) + 4))
        y, x = max(1, (h - bh) // 2), max(1, (w - bw) // 2)
        try:
            win = curses.newwin(bh, bw, y, x)
            win.erase()
            win.box()
            win.addnstr(0, 2, " %s " % title, bw - 4, curses.A_BOLD)
            for i, text in enumerate(lines[:bh - 2]):
                win.addstr(1 + i, 2, cut(sanitize(text, 400), bw - 4))
            win.noutrefresh()
        except curses.error:
            pass

    def _details(self, h, w, wall):
        if not self.view or self.state.view != "flows":
            self.mode = "table"
            return
        row = self.view[self.selected]
        pairs = self.fmt.details(row, wall)
        width = max(len(k) for k, _ in pairs)
        self._box(h, w, "Flow details (Esc closes)", ["%s  %s" % (k.ljust(width), v)
                                                      for k, v in pairs])

    def _help(self, h, w):
        lines = []
        for k, v in HELP:
            lines.append(k if not v else "  %-20s %s" % (k, v))
        room = max(1, h - 4)
        if len(lines) > room:               # scrolls: Up/Down, with a mark for the rest
            self.help_top = min(self.help_top, len(lines) - room + 1)
            rest = len(lines) - self.help_top - (room - 1)
            lines = lines[self.help_top:self.help_top + room - 1] + (
                ["  -- %d more: Down/PgDn --" % rest] if rest > 0 else ["  -- end: Up/PgUp --"])
        self._box(h, w, "Help (any of Esc q ? closes)", lines)

    def _put(self, y, x, text, w, attr=0):
        try:
            # cut by display width: addnstr counts characters, and a line of
            # wide ones would run on into the next row
            n = max(0, w - x - (1 if y else 0))
            self.scr.addnstr(y, x, cut(sanitize(text, 1000), n), n, attr)
        except curses.error:
            pass   # the bottom-right cell, or a resize under our feet


def _onoff(v):
    return {True: "on", False: "OFF", None: "?"}[v]


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


def run(state, formatter, collector, info):
    """Enter curses, run the screen, and always leave the terminal sane."""
    locale.setlocale(locale.LC_ALL, "")
    try:
        curses.set_escdelay(25)
    except AttributeError:          # Python < 3.9.? has no set_escdelay
        pass
    # The collector decodes in Python, in bursts of up to a second at 100k
    # flows: a shorter GIL switch interval lets a key through within ~1 ms
    # instead of waiting out 5 ms slices behind it.
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    stdscr = curses.initscr()
    try:
        curses.noecho()
        curses.cbreak()
        Screen(stdscr, state, formatter, collector, info).run()
    finally:
        sys.setswitchinterval(switch)
        try:
            stdscr.keypad(False)
            curses.nocbreak()
            curses.echo()
        finally:
            curses.endwin()
