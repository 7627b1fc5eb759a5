"""``-c/--continuous``: the live view as plain text frames, one per
interval, for terminals without curses, logs and routers."""

import time

from .cells import Formatter
from .columns import COLUMNS, _enabled, group_layout, layout, place, widths_of
from .select import SORT_KEYS, _rate_sum, build, chosen, flows_text, header_counts
from .state import ViewState
from .writer import Writer


# The kernel adds counters only to flows created while accounting is on.
WHY = " (created before accounting was switched on, or with it off)"


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


class OnceText(Writer):
    """``--once`` text as the dump arrives: the frame ``TextFrames`` writes
    for the whole table, byte for byte, holding per row only its cell texts
    (~100 B, against ~2.8 KB a row for a table and its cell dicts: 280 MB
    at 100k flows).  The widths and the header's counts need every row, so
    the rows are written when the dump has ended; in the table's order when
    the sort has nothing to sort (by rate: a snapshot has no rates), else by
    the sort keys kept per row."""

    def __init__(self, stream, opts, enrich, notes=()):
        self.stream = stream
        st = self.state = ViewState(opts)
        st.loopback = True                  # a snapshot lists every flow
        self.fmt = Formatter(st, enrich)
        st.has_history = False
        st.wide = True                      # all columns, as TextFrames without a width
        self.notes = notes() if callable(notes) else list(notes)
        # every column a row could show (NAT ones if some row is translated)
        self.names = [c.name for c in COLUMNS if _enabled(c, st, _ANY_NAT)]
        keys = SORT_KEYS.get(st.sort, _rate_sum)
        # a single snapshot has no rates: the rate order is the table's
        self.keys = None if keys is _rate_sum else (keys if isinstance(keys, tuple) else (keys,))
        self.reset()

    spools = True

    def reset(self):
        """Forget the rows so far (the dump is redone)."""
        self.widths = dict.fromkeys(self.names, 0)
        self.counts, self.lacking, self.shown = {}, 0, 0
        self.sort_values = [[] for _ in self.keys or ()]
        self.spool = []     # per batch: its rows' cells, "\\0" between, "\\n" after each row

    def write_batch(self, rows, flows, wall):
        st, fmt = self.state, self.fmt
        st.wall = wall
        counts, lacking = header_counts(rows)
        for name, n in counts.items():
            self.counts[name] = self.counts.get(name, 0) + n
        self.lacking += lacking
        items = chosen(rows, st, fmt)
        if not items:
            return
        self.shown += len(items)
        names = self.names
        cells = fmt.cells
        table = [[c[n] for n in names] for c in (cells(r, wall) for r in items)]
        widths = self.widths
        for name, column in zip(names, zip(*table)):
            w = max(map(len, column))
            if w > widths[name]:
                widths[name] = w
        lines = ["\0".join(t) for t in table]
        text = "\n".join(lines)
        if text.count("\0") + text.count("\n") != len(lines) * len(names) - 1:
            lines = ["\0".join(_clean(c) for c in t) for t in table]   # a cell held one
            text = "\n".join(lines)
        if self.keys is None:
            self.spool.append(text)
        else:
            self.spool.extend(lines)
            for values, key in zip(self.sort_values, self.keys):
                values.extend(map(key, items))

    def finish(self, wall):
        st, fmt = self.state, self.fmt
        widths = {n: w for n, w in self.widths.items() if w}
        cols = layout(10000, st, widths.get("dst") or 21, widths)
        out = ["%s  TX %s  RX %s  shown %d  %s\n" % (
            flows_text(self.counts, self.lacking, WHY), fmt.rate(None), fmt.rate(None),
            self.shown, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(wall)))]
        out.extend(n + "\n" for n in self.notes)
        out.append(" ".join(c.title.rjust(w) if c.right else c.title.ljust(w)
                            for c, w in cols).rstrip() + "\n")
        self.stream.write("".join(out))
        if self.keys is None:
            chunks = (chunk.split("\n") for chunk in self.spool)
        else:
            rows = self._ordered()
            chunks = (rows[i:i + 256] for i in range(0, len(rows), 256))
        index = {n: i for i, n in enumerate(self.names)}
        picks = [(index[c.name], c, w) for c, w in cols]
        write = self.stream.write
        for lines in chunks:
            write("".join(_placed(line.split("\0"), picks) + "\n" for line in lines))
        self.stream.flush()

    def _ordered(self):
        """The spooled rows in the sort's order (as ``select.sort_rows``)."""
        order = list(range(len(self.spool)))
        descending = not self.state.ascending()
        for values in self.sort_values:
            order.sort(key=values.__getitem__, reverse=descending)
        spool = self.spool
        return [spool[i] for i in order]


_ANY_NAT = {"nat": 1, "xlate": 1}


def _clean(text):
    """Cell text without the spool's separators: ``place`` shows a control
    character as "?" all the same (``text.sanitize``)."""
    return text.replace("\0", "?").replace("\n", "?")


def _placed(cells, picks):
    """``columns.place`` over the spooled cells of a row, right stripped."""
    return place({c.name: cells[i] for i, c, _w in picks}, [(c, w) for _i, c, w in picks]).rstrip()
