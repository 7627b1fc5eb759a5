"""``--once`` text as the dump arrives (``OnceText``, over the cell texts
``views.rowtexts.RowTexts`` makes a column at a time): what
``views.text.TextFrames`` writes for a whole table, byte for byte, at a
fraction of its cost a row."""

import time

from ..table import FlowTable, FreshFlow, TableFlow
from .cells import Formatter
from .columns import COLUMNS, _TAILED, _enabled, cut, layout, place
from .counts import WHY, named
from .rowtexts import _BO, _FAMILY, _PROTO, _START, RowTexts
from .select import SORT_KEYS, _rate_sum, base, chosen, flows_text, header_counts
from .state import ViewState
from .writer import Writer


class OnceText(Writer):
    """``--once`` text as the dump arrives: ``TextFrames``' frame of the whole table, byte
    for byte, holding per row only its cell texts (~100 B, against ~2.8 KB a row for a table
    and its cell dicts: 280 MB at 100k flows).  The widths and the header's counts need every
    row: rows are written when the dump has ended, in the table's order when the sort has
    nothing to sort (by rate: a snapshot has no rates), else by the sort keys kept a row."""

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
        self.shows_translated = "xlate" in self.names
        self.fast = RowTexts.of(self.fmt, self.names)
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
        self.plain = True   # every cell printable ASCII so far

    def write_batch(self, rows, flows, wall, fields=None):
        st, fmt = self.state, self.fmt
        st.wall = wall
        # the rarer filters (select._rare_filter's) only when one is set: the
        # expression module (~1 ms to import here, ~50 ms on a router) stays unloaded
        rare = (st.filter or st.in_iface or st.out_iface or st.active_only or st.threshold
                or st.group is not None)
        if rows is None:        # (each flow its row: as the table would store it)
            rows = _rows(flows, wall, rare or self.fast is None)
        if rows is not flows or not flows:
            fields = None           # (dated, open rows: their own columns)
        elif fields is None:
            fields = list(zip(*flows))
        counts, lacking = header_counts(rows) if fields is None else _counts(fields)
        for name, n in counts.items():
            self.counts[name] = self.counts.get(name, 0) + n
        self.lacking += lacking
        # base keeps a row by its (protocol, family) unless it hides loopback: one of each
        kinds = fields and st.loopback and dict(zip(zip(fields[_PROTO], fields[_FAMILY]), rows))
        items = chosen(rows, st, fmt) if rare else rows if kinds and len(
            base(list(kinds.values()), st)) == len(kinds) else base(rows, st)
        if not items:
            return
        self.shown += len(items)
        names = self.names
        if self.fast is not None:
            columns = self.fast.columns(items if rows is flows else [r.entry for r in items],
                                        wall, fields if items is flows else None)
        else:
            cells = fmt.cells
            columns = list(zip(*[[c[n] for n in names] for c in (cells(r, wall) for r in items)]))
        widths = self.widths
        for name, column in zip(names, columns):
            w = max(map(len, column))
            if w > widths[name]:
                widths[name] = w
        lines = list(map("\0".join, zip(*columns)))
        text = "\n".join(lines)
        if text.count("\0") + text.count("\n") != len(lines) * len(names) - 1:
            lines = ["\0".join(_clean(c) for c in t) for t in zip(*columns)]   # a cell held one
            text = "\n".join(lines)
        if self.plain and not (text.isascii()
                               and text.replace("\0", " ").replace("\n", " ").isprintable()):
            self.plain = False          # a name to sanitize or measure: ``place`` every row
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
        if self.keys is None:           # a batch's text per chunk
            chunks = self.spool
        else:
            rows = self._ordered()
            chunks = ("\n".join(rows[i:i + 256]) for i in range(0, len(rows), 256))
        write = self.stream.write
        template, over = self._template(cols)
        if template is not None:
            n = len(self.names)
            for chunk in chunks:
                write(_formatted(template, chunk.replace("\n", "\0").split("\0"), n, over))
        else:
            index = {n: i for i, n in enumerate(self.names)}
            picks = [(index[c.name], c, w) for c, w in cols]
            for chunk in chunks:
                write("".join(_placed(line.split("\0"), picks) + "\n"
                              for line in chunk.split("\n")))
        self.stream.flush()

    def _template(self, cols):
        """(a %-format of every spooled cell that places a row as ``place`` would, its
        line's end included, the columns whose longer texts are cut first: [(index, width,
        keeps a pid)]) when every cell is printable ASCII (numbers always fit: their columns
        are as wide as the widest); else (None, None).  ~1 us a row against ~10 for ``place``."""
        if not self.plain:
            return None, None
        shown = {c.name: (c, w) for c, w in cols}
        parts, over, first = [], [], True
        for i, name in enumerate(self.names):
            if name not in shown:
                parts.append("%.0s")
                continue
            c, w = shown[name]
            if not c.right and self.widths[name] > w:
                if w < 1:
                    return None, None
                over.append((i, w, name in _TAILED))
            parts.append(("" if first else " ") + ("%%%ds" if c.right else "%%-%ds") % w)
            first = False
        return "".join(parts) + "\n", over

    def _ordered(self):
        """The spooled rows in the sort's order (as ``select.sort_rows``)."""
        order = list(range(len(self.spool)))
        descending = not self.state.ascending()
        for values in self.sort_values:
            order.sort(key=values.__getitem__, reverse=descending)
        spool = self.spool
        return [spool[i] for i in order]


_ANY_NAT = {"nat": 1, "xlate": 1}


def _rows(flows, wall, rated):
    """A datagram's flows as the rows of a fresh table: each one its own
    row when the kernel dated it (``FlowTable.apply``'s first sight, ~2 us a
    flow less), else the table's rows (no start: ages unknown).  Unless
    ``rated`` (rates or "new" are read: a filter, ``Formatter.cells``), a
    dated flow stays a bare TableFlow, read faster by the passes over it."""
    bare = TableFlow
    for e in flows:
        if type(e) is not bare or not e[_START]:
            break
    else:
        if rated:
            fresh = FreshFlow
            for e in flows:
                e.__class__ = fresh
        return flows
    table = FlowTable()
    table.apply(flows, wall, wall)
    return list(table)


def _counts(fields):
    """``header_counts`` of open rows given as columns: a pass a protocol."""
    protos = fields[_PROTO]
    return named({p: protos.count(p) for p in set(protos)}), fields[_BO].count(None)

def _clean(text):
    """Cell text without the spool's separators: ``place`` shows a control
    character as "?" all the same (``text.sanitize``)."""
    return text.replace("\0", "?").replace("\n", "?")


def _formatted(template, cells, n, over):
    """Rows of ``n`` spooled ASCII cells (``cells``, row after row) placed
    by ``template`` with one %-format of them all (~0.3 us a row against ~2
    for a format a row), the texts too long for their column cut as
    ``place`` cuts them (an ellipsis; a process keeps its pid); each line
    right stripped."""
    for i, w, tailed in over:
        column = cells[i::n]
        if max(map(len, column)) > w:
            cells[i::n] = [c if len(c) <= w else cut(c, w, tailed) for c in column]
    text = (template * (len(cells) // n)) % tuple(cells)
    if " \n" in text:              # a blank or left-aligned last cell
        text = "\n".join(line.rstrip() for line in text.split("\n"))
    return text


def _placed(cells, picks):
    """``columns.place`` over the spooled cells of a row, right stripped."""
    return place({c.name: cells[i] for i, c, _w in picks}, [(c, w) for _i, c, w in picks]).rstrip()
