"""The full-screen live view: the only module that imports curses.

It draws what ``views.select`` chooses, and hands each key to the key
table (``views.keys``), whose reaction says whether to draw again, choose
the rows again or tell the collector.  Data arrives from a collector
thread as snapshots; the screen loop never waits for a dump, so keys work
while one is being collected.
"""

import _locale as locale      # not locale.py: 4.4 M instructions more to import
import curses
import os
import sys
import time

from .. import __version__
from ..runtime import switch_interval
from ..text import cut, sanitize, skip, width as text_width
from . import keys as kt
from .. import health as _health
from .cells import CellCache
from .columns import group_layout, layout, marked, place
from .escapes import after_escape
from .header import empty_text, header_line, reading_text, status_line, total_spark
from .select import Selection, header_counts, named

MIN_W, MIN_H = 40, 10
# A dump's progress: s apart and share of a core at most (mipsel: 0.1 s draws 0.25 s apart
# took 40 %); TICK: the wait for a key before a look for a snapshot (0.05 s: a tenth of mipsel)
PROGRESS_EVERY, PROGRESS_SHARE, TICK = 0.25, 0.1, 0.2
WARM = 0.02    # s of '/' texts made between two looks for a key (no wait while some are left)


class Screen:
    """One curses session.  ``collector`` publishes snapshots (``latest()``) and takes
    ``set_interval`` and ``set_visible``; ``info`` is a dict of header facts."""

    def __init__(self, stdscr, state, formatter, collector, info):
        self.scr = stdscr
        self.state = state
        self.ui = kt.Ui(state)
        self.fmt, self._cells = formatter, CellCache(formatter)
        self.collector = collector
        self.info = info
        self.snap = None           # the snapshot on screen
        self.selection = Selection()
        self.stale = True          # the rows must be chosen again
        self.dirty = True          # the screen must be drawn again
        self._counts, self._counts_of = {}, None
        self.colors, self._lacking = {}, 0
        self._loop, self._loop_of = 0, None
        self.note = ""             # what the status line had no room for (an error)
        self.reading, self._reading_at = "", 0.0    # a long dump's progress (header.reading_text)
        self.clock, self.cpu, self._every = time.monotonic, time.thread_time, PROGRESS_EVERY
        self._health = None        # health.Health of the snapshot on screen
        self.confirm = None        # (what, flows) a delete asks about
        self.message = ""          # a delete's outcome, until the next key
        self.ui.screen = self      # the delete keys' handlers act through the screen
        utf8 = bool(sys.flags.utf8_mode) or (  # locale.getpreferredencoding(False), the same
            locale.nl_langinfo(locale.CODESET) or "").lower().replace("-", "") == "utf8"
        self._marks = ("\u25b2", "\u25bc") if utf8 else ("*", "*")   # ascending, descending
        self.state.unicode = utf8
        # curses' key numbers -> the names the key table uses
        names = {n for keys, _other in kt.MODES.values() for n in keys if n.startswith("KEY_")}
        names.add("KEY_RESIZE")
        self._names = {getattr(curses, n): n for n in names if hasattr(curses, n)}

    # -- setup ------------------------------------------------------------------------
    def setup(self):
        try:
            curses.curs_set(0)
        except curses.error:
            pass
        self.scr.keypad(True)
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
        gate = getattr(self.collector, "gate", None)
        shown = gate.watch() if gate is not None else (lambda snap, seconds: False)
        while True:
            snap = self.collector.latest()
            if snap is not None and snap is not self.snap and not self.state.paused:
                self.snap, self.stale, snap.taken = snap, True, True     # its delta: since this
            self._progress()
            self.refresh()
            warm = self.ui.mode == "filter" and self.selection.warm(self.state, self.fmt, WARM,
                                                                    self.clock)
            # a first dump's first rows: drawn once published (the dump waits), the keys after
            first = shown(self.snap, TICK if self.snap is None and not self.state.paused else 0)
            self.scr.timeout(0 if warm or first else int(TICK * 1000))
            try:
                ch = self.scr.get_wch()
            except curses.error:
                continue
            self.ui.flash = ""
            if self._answer(ch):
                return

    def _answer(self, ch):
        """Handle a key (and the rest of an Esc sequence) and show its effect
        with the collector held (collector.Gate); True to quit."""
        gate = getattr(self.collector, "gate", None)
        if gate is not None:
            gate.hold()
        try:
            for key in (self._after_escape() if ch == "\x1b" else [ch]):
                if self.key(key) == kt.QUIT:
                    return True
            self.refresh()
        finally:
            if gate is not None:
                gate.release()
        return False

    def _progress(self):
        """Redraw for a long dump's progress, at most every ``_every`` s (by the last draw)."""
        now = self.clock()
        text = reading_text(getattr(self.collector, "reading", None), now)
        if text != self.reading and (not text or now - self._reading_at >= self._every):
            self.reading, self._reading_at = text, now
            self.dirty = True

    def refresh(self):
        """Choose the rows again if a snapshot or a key made them stale; draw if anything changed."""
        if self.stale:
            self.rebuild()
            self.stale, self.dirty = False, True
        if self.dirty:
            cpu, self.dirty = self.cpu(), False
            self.draw()
            self._every = max(PROGRESS_EVERY, (self.cpu() - cpu) / PROGRESS_SHARE)

    def rebuild(self):
        snap = self.snap
        if snap is not None:
            self.state.wall = snap.wall          # what 'age<1h' counts to
        self.ui.show(self.selection.build([] if snap is None else snap.rows, self.state, self.fmt,
                                          snap and snap.version, snap and snap.delta))

    # -- keys -------------------------------------------------------------------------
    def _after_escape(self):
        """The keys an ESC read stands for (views.escapes; the loop sets its wait again)."""
        return after_escape(self._read)

    def _read(self, ms):
        """The next key within ``ms`` milliseconds, or None."""
        self.scr.timeout(ms)
        try:
            return self.scr.get_wch()
        except curses.error:
            return None

    def key(self, ch):
        """Run one key (a character or a curses key number); its reaction."""
        name = ch if isinstance(ch, str) else self._names.get(ch, ch)
        if name == "KEY_RESIZE":
            curses.update_lines_cols()
            self.dirty = True
            return kt.REDRAW
        self.ui.page = max(1, self.scr.getmaxyx()[0] - 4)
        self.message = ""
        reaction = kt.dispatch(self.ui, name)
        if reaction == kt.RECOLLECT:
            self.collector.set_interval(self.state.interval)
        if reaction == kt.RESELECT:
            self.stale = True
        elif reaction is not None:
            self.dirty = True
        return reaction

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
        wall = self.snap.wall if self.snap else time.time()
        self._rows(h - 4, w, wall)
        if not self.ui.view:
            self._put(4, 2, self._empty_text(), w)
        self._footer(h, w)
        scr.noutrefresh()          # the table first, overlays on top of it
        if self.ui.mode == "details":
            self._details(h, w, wall)
        elif self.ui.mode == "help":
            self._help(h, w)
        elif self.ui.mode == "stats":
            self._box(h, w, "Conntrack statistics (Esc closes)", _health.cpu_lines(self._health))
        curses.doupdate()

    def _rows(self, room, w, wall):
        """The column titles and the page of rows around the cursor."""
        ui = self.ui
        if ui.selected < ui.top:
            ui.top = ui.selected
        elif ui.selected >= ui.top + room:
            ui.top = ui.selected - room + 1
        ui.top = max(0, min(ui.top, max(0, len(ui.view) - room)))
        shown = ui.view[ui.top:ui.top + room]
        flows = self.state.view == "flows"
        if flows:
            cells = self._cells.cells(shown, wall, self.snap)
            flex = max([len(c["dst"]) for c in cells] or [21])
            # rows are drawn to w - 1
            cols = layout(w - 1, self.state, flex, self._cells.widths(cells))
        else:
            cells = [self.fmt.group_cells(g) for g in shown]
            cols = group_layout(w - 1, self.state, cells)
        # Right stops where the widest row ends; a resize that makes room brings it back.
        ui.hscroll_max = max(0, sum(cw for _c, cw in cols) + len(cols) - 1 - (w - 1))
        ui.hscroll = min(ui.hscroll, ui.hscroll_max)
        head = " ".join(self._title(c).rjust(cw) if c.right else self._title(c).ljust(cw)
                        for c, cw in cols)
        self._put(2, 0, skip(head, ui.hscroll), w, curses.A_REVERSE | curses.A_BOLD)
        # the collector refreshes these rows every tick, even between full dumps
        self.collector.set_visible([r.key for r in shown] if flows else ())
        for i, r in enumerate(shown):
            line = skip(self._cells.line(cells[i], cols) if flows else place(cells[i], cols),
                        ui.hscroll)
            attr = 0
            if r.closed:
                attr = curses.A_DIM
            elif r.is_new:
                attr = self.colors.get("new", curses.A_BOLD)
            if ui.top + i == ui.selected:
                attr = curses.A_REVERSE
            self._put(3 + i, 0, line, w, attr)

    def _title(self, c):
        """A column title, marked when the rows are sorted by it (htop's habit)."""
        if not marked(c, self.state):
            return c.title
        return c.title + self._marks[0 if self.state.ascending() else 1]

    def _empty_text(self):
        """Why the table is empty (views.header.empty_text)."""
        st, snap = self.state, self.snap
        if not st.filter and not st.loopback and snap is not None and self._loop_of is not snap:
            self._loop, self._loop_of = self.selection.loopback_count(snap.rows), snap
        return empty_text(st, self._loop if self._loop_of is snap else 0)

    def _header(self, w):
        snap = self.snap
        if snap is None:
            self._put(0, 0, "flowtop %s  %s" % (__version__, self.reading or "collecting..."), w,
                      curses.A_BOLD)
            return
        if self._counts_of is not snap:
            probe = self.info.get("health")
            if snap.tally is not None:       # the collector's table keeps them
                statuses = snap.tally.statuses
                self._counts, self._lacking = named(snap.tally.protos), snap.tally.lacking
            else:                            # a pass over every row: once per snapshot
                statuses = {} if probe is not None else None     # offloaded flows: the same pass
                self._counts, self._lacking = header_counts(snap.rows, statuses)
            self._counts_of = snap
            self._health = _health.read(probe, snap, statuses)
            if "now" in self.info:           # acct/tstamp as the kernel has them now
                self.info.update(self.info["now"]())
        line0, table = header_line(self.fmt, snap, self._counts, self._lacking, self._health,
                                   self.info.get("acct"), w)
        # the table's health first; the total's sparkline where room is left
        used = len(line0) + (len(table) + 2 if table else 0)
        spark = total_spark(self.fmt, self.state.unicode, w - 1 - used)
        self._put(0, 0, line0, w, curses.A_BOLD)
        self._draw_health(len(line0) + 2, w, table)
        if spark:
            self._put(0, used, spark, w, curses.A_BOLD)
        self._put(1, 0, self._status(w, snap), w, self.colors.get("warn", 0) if snap.error else 0)

    def _draw_health(self, x, w, text):
        """The header's table part (``health.fitting``; None: the short form,
        cut) at column ``x``, in the warning colour when the table is nearly
        full or a trouble counter moved."""
        h = self._health
        if h is None:
            return
        attr = curses.A_BOLD | (self.colors.get("warn", curses.A_REVERSE) if h.trouble else 0)
        self._put(0, x, _health.header_text(h, short=True) if text is None else text, w, attr)

    def _status(self, w, snap):
        """The status line (views.header); what it had no room for goes to ``note``."""
        line, self.note = status_line(self.state, snap, self.info, len(self.ui.view), w,
                                      self.reading)
        return line

    def _footer(self, h, w):
        if self.ui.mode == "confirm" or self.message:
            from .. import act        # with the delete keys only (copy: 0.4 s of a mipsel start)
            self._put(h - 1, 0, act.question(self) if self.ui.mode == "confirm"
                      else self.message, w, self.colors.get("warn", curses.A_BOLD) | curses.A_BOLD)
            return
        if self.ui.mode == "filter":
            from .filterfields import compiled      # with a filter typed only
            err = compiled(self.state.filter)[1]
            self._put(h - 1, 0, "filter: %s_  %s" % (self.state.filter, "(Enter keeps, Esc clears)"
                                                     if err is None else "<- " + str(err)), w,
                      curses.A_BOLD)
            return
        if self.note or self.ui.flash:
            self._put(h - 1, 0, self.note or self.ui.flash, w,
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
        ui = self.ui
        if not ui.view or self.state.view != "flows":
            ui.mode = "table"
            return
        row = ui.view[ui.selected]
        from .related import children_lines
        pairs = self.fmt.details(row, wall) + children_lines(self.fmt, row.entry, self.snap.rows)
        width = max(len(k) for k, _ in pairs)
        self._box(h, w, "Flow details (Esc closes)", ["%s  %s" % (k.ljust(width), v)
                                                      for k, v in pairs])

    def _help(self, h, w):
        self._box(h, w, "Help (any of Esc q ? closes)", kt.help_page(self.ui, max(1, h - 4)))

    def _put(self, y, x, text, w, attr=0):
        try:
            n = max(0, w - x - (1 if y else 0))     # cut by width: addnstr counts characters
            self.scr.addnstr(y, x, cut(sanitize(text, 1000), n), n, attr)
        except curses.error:
            pass   # the bottom-right cell, or a resize under our feet


class SetupError(Exception):
    """curses cannot drive this terminal: the one line that says why and what to do."""


def enter(term=None):
    """Set the terminal up for curses and return the screen; SetupError (the
    terminal left as it was) when it cannot be, e.g. a TERM with no terminfo
    entry here (kitty, foot, wezterm over SSH; OpenWrt's short terminfo list)."""
    try:
        locale.setlocale(locale.LC_ALL, "")
    except locale.Error:            # a LANG this system lacks: curses still draws ASCII
        pass
    try:
        curses.set_escdelay(25)
    except (AttributeError, curses.error):     # Python < 3.9.? has no set_escdelay
        pass
    stdscr = None
    try:
        stdscr = curses.initscr()
        curses.noecho()
        curses.cbreak()
        stdscr.keypad(True)
    except curses.error as exc:
        if stdscr is not None:
            leave(stdscr)
        term = os.environ.get("TERM", "") if term is None else term
        raise SetupError(
            "no full-screen view (curses cannot set up TERM=%s: %s): printing text frames; "
            "run with TERM=xterm-256color, or install this terminal's terminfo entry"
            % (sanitize(term, 60) or "''", sanitize(str(exc), 80))) from None
    return stdscr


def leave(stdscr):
    """Put the terminal back as ``enter`` found it; never raises curses.error."""
    try:
        stdscr.keypad(False)
        curses.nocbreak()
        curses.echo()
    except curses.error:
        pass
    finally:
        try:
            curses.endwin()
        except curses.error:
            pass


def run(state, formatter, collector, info, stdscr=None):
    """Run the screen on ``stdscr`` (``enter``'s; entered when None), leaving the terminal sane."""
    if stdscr is None:
        stdscr = enter()
    # The collector decodes in Python, in bursts of up to a second at 100k flows: a shorter
    # GIL switch interval lets a key through within ~1 ms, not after 5 ms slices behind it.
    try:
        with switch_interval(0.001):
            Screen(stdscr, state, formatter, collector, info).run()
    finally:
        leave(stdscr)
