"""``-c/--continuous``: the live view as plain text frames, one per
interval, for terminals without curses, logs and routers."""

import time

from .cells import Formatter
from .columns import group_layout, layout, place, widths_of
from .counts import WHY
from .select import build, flows_text, header_counts
from .state import ViewState
from .writer import Writer


class TextFrames(Writer):
    """Writes a frame per tick: a header line, column titles, every row
    the view's filters keep (all columns, as with --wide)."""

    def __init__(self, stream, opts, enrich, notes=(), width=None):
        self.stream = stream
        self.state = ViewState(opts)
        if opts.once:
            self.state.loopback = True      # a snapshot lists every flow
        self.fmt = Formatter(self.state, enrich)
        self.state.has_history = False      # frames draw no history columns (the screen does)
        self.notes = notes if callable(notes) else list(notes)   # callable: per frame
        self.width = width
        self._frames = 0

    def write_rows(self, table, wall):
        st, fmt = self.state, self.fmt
        everything = list(table)
        st.wall = wall
        items = build(everything, st, fmt)
        width = self.width or 10000
        if st.view == "flows":
            cells = [fmt.cells(r, wall) for r in items]
            flex = max([len(c["dst"]) for c in cells] or [21])
            wide, st.wide = st.wide, self.width is None
            cols = layout(width, st, flex, widths_of(cells))
            st.wide = wide
        else:
            cells = [fmt.group_cells(g) for g in items]
            cols = group_layout(width, st, cells)
        lines = [place(c, cols) for c in cells]
        tx, rx, known = table.totals()
        out = ["\n"] if self._frames else []
        out.append("%s  TX %s  RX %s  shown %d  %s\n" % (
            flows_text(*header_counts(everything), WHY),
            fmt.rate(tx if known and st.show_rates else None),
            fmt.rate(rx if known and st.show_rates else None), len(items),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(wall))))
        out.extend(n + "\n" for n in (self.notes() if callable(self.notes) else self.notes))
        out.append(" ".join(c.title.rjust(w) if c.right else c.title.ljust(w)
                            for c, w in cols).rstrip() + "\n")
        out.extend(line.rstrip() + "\n" for line in lines)
        self.stream.write("".join(out))
        self.stream.flush()
        self._frames += 1
