"""``-c/--continuous``: the live view as plain text frames, one per
interval, for terminals without curses, logs and routers."""

import time

from ..health import offload_mark
from ..model import proto_name, state_name
from ..netlink.uapi import AF_INET6, IPPROTO_GRE
from ..text import duration, human
from .cells import Formatter, _icmp_label, nat_of
from .columns import COLUMNS, _TAILED, _enabled, cut, group_layout, layout, place, widths_of
from .select import SORT_KEYS, _rate_sum, base, build, chosen, flows_text, header_counts
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
        self.fast = RowTexts.of(self.fmt, self.names)
        keys = SORT_KEYS.get(st.sort, _rate_sum)
        # a single snapshot has no rates: the rate order is the table's
        self.keys = None if keys is _rate_sum else (keys if isinstance(keys, tuple) else (keys,))
        self.reset()

    spools = True
    wants_rows = True

    def reset(self):
        """Forget the rows so far (the dump is redone)."""
        self.widths = dict.fromkeys(self.names, 0)
        self.counts, self.lacking, self.shown = {}, 0, 0
        self.sort_values = [[] for _ in self.keys or ()]
        self.spool = []     # per batch: its rows' cells, "\\0" between, "\\n" after each row
        self.plain = True   # every cell printable ASCII so far

    def write_batch(self, rows, flows, wall):
        st, fmt = self.state, self.fmt
        st.wall = wall
        counts, lacking = header_counts(rows)
        for name, n in counts.items():
            self.counts[name] = self.counts.get(name, 0) + n
        self.lacking += lacking
        # the rarer filters (select._rare_filter's) only when one is set: the
        # expression module (~1 ms to import here, ~50 ms on a router) stays unloaded
        rare = (st.filter or st.in_iface or st.out_iface or st.active_only or st.threshold
                or st.group is not None)
        items = chosen(rows, st, fmt) if rare else base(rows, st)
        if not items:
            return
        self.shown += len(items)
        names = self.names
        if self.fast is not None:
            table = self.fast.cells(items, wall)
        else:
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
        if self.keys is None:
            chunks = (chunk.split("\n") for chunk in self.spool)
        else:
            rows = self._ordered()
            chunks = (rows[i:i + 256] for i in range(0, len(rows), 256))
        write = self.stream.write
        template, over = self._template(cols)
        if template is not None and not over:
            for lines in chunks:
                write("".join((template % tuple(line.split("\0"))).rstrip() + "\n"
                              for line in lines))
        elif template is not None:
            for lines in chunks:
                write("".join((template % _fitted(line.split("\0"), over)).rstrip() + "\n"
                              for line in lines))
        else:
            index = {n: i for i, n in enumerate(self.names)}
            picks = [(index[c.name], c, w) for c, w in cols]
            for lines in chunks:
                write("".join(_placed(line.split("\0"), picks) + "\n" for line in lines))
        self.stream.flush()

    def _template(self, cols):
        """(a %-format of every spooled cell that places a row as ``place``
        would, the columns whose longer texts are cut first: [(index,
        width, keeps a pid)]) when every cell is printable ASCII (numbers
        always fit: their columns are as wide as the widest); else (None,
        None).  ~1 us a row against ~10 for ``place``."""
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
        return "".join(parts), over

    def _ordered(self):
        """The spooled rows in the sort's order (as ``select.sort_rows``)."""
        order = list(range(len(self.spool)))
        descending = not self.state.ascending()
        for values in self.sort_values:
            order.sort(key=values.__getitem__, reverse=descending)
        spool = self.spool
        return [spool[i] for i in order]


_ANY_NAT = {"nat": 1, "xlate": 1}


class RowTexts:
    """``Formatter.cells`` of many rows as tuples (in ``names`` order), for
    the outputs that format every row: values that repeat (names of
    protocols, states, services, sizes, ages) are memoised, no dict is
    built per row.  ~4x faster than ``cells`` at 100k rows; ``of`` gives
    None where it would not be the same text (GeoIP, redaction: those
    rows go through ``cells``); tests/test_once.py holds the two together."""

    @classmethod
    def of(cls, fmt, names):
        st = fmt.state
        if fmt.enrich.geo is not None or fmt.redact.active or st.show_rates \
                or (st.has_history and (st.show_history or st.wide)) \
                or not set(names) <= cls.KNOWN:
            return None
        return cls(fmt, names)

    KNOWN = frozenset(("process", "proto", "state", "service", "id", "src", "dst", "nat", "xlate",
                       "country", "in_iface", "out_iface", "bytes_tx", "bytes_rx", "pkts_tx",
                       "pkts_rx", "age"))

    def __init__(self, fmt, names):
        self.fmt = fmt
        self.names = names
        self.services = {}          # l4proto -> {port: name}
        self.sizes = {}             # bytes -> text
        self.ages = {}              # whole seconds -> text
        self.kinds = {}             # (l4proto, state) -> (PROTO, STATE) cells

    def cells(self, items, wall):
        """The cell texts of ``items`` (rows), a list per row."""
        st, enrich = self.fmt.state, self.fmt.enrich
        want = set(self.names)
        self.process, self.ifaces = "process" in want, "in_iface" in want
        self.show_id, self.age_on, self.nat_on = "id" in want, "age" in want, "xlate" in want
        self.numeric, self.seconds, self.units = st.numeric_port, st.age == "seconds", st.units
        self.host = enrich.host
        self.label, self.ifaces_of = enrich.process_label, enrich.ifaces_of
        self.ends = {}       # address -> (text, bracketed): names may come per batch
        names, numbers = self._names, self._numbers
        out = [names(r.entry) + numbers(r, r.entry, wall) for r in items]
        if len(self.sizes) > 65536:
            self.sizes.clear()
        if len(self.ages) > 65536:
            self.ages.clear()
        return out

    def _names(self, e):
        """The cells of ``e`` from PROCESS to OUT (``Formatter.names`` and the NAT ones)."""
        proto = e.l4proto
        gre = proto == IPPROTO_GRE
        sport = None if gre else e.sport
        dport = None if gre else e.dport
        family = e.family
        kinds = self.kinds.get((proto, e.state))
        if kinds is None:
            kinds = self.kinds[(proto, e.state)] = (proto_name(proto),
                                                     state_name(proto, e.state) or "")
        row = [self.label(e), kinds[0], kinds[1]] if self.process else list(kinds)
        if dport is None:
            row.append(_icmp_label(e))
        else:
            low = dport if sport is None or dport <= sport else sport
            if self.numeric:
                row.append(str(low))
            else:
                table = self.services.get(proto)
                if table is None:
                    table = self.services[proto] = self.fmt.services.names(proto)
                row.append(table.get(dport) or (sport is not None and table.get(sport))
                           or str(low))
        if self.show_id:
            row.append("-" if e.id is None else str(e.id))
        ends = self.ends
        for addr, port in ((e.src, sport), (e.dst, dport)):
            key = family if addr is None else addr      # (a text tells its family)
            end = ends.get(key)
            if end is None:
                text, fam = ("-" if addr is None else addr), family
                if addr is not None:
                    name = self.host(addr)
                    if name:
                        fam, text = None, name
                end = ends[key] = (text, fam == AF_INET6 and "#" not in text)
            if port is None:
                row.append(end[0])
            else:
                row.append(("[%s]:%d" if end[1] else "%s:%d") % (end[0], port))
        if self.nat_on:
            snat, dnat = nat_of(e)
            if snat or dnat:
                row.append(("S" if snat else "") + ("D" if dnat else ""))
                row.append(self.fmt._xlate(e, snat, dnat, gre))
            else:
                row += ("", "")
        if self.ifaces:
            iin, iout = self.ifaces_of(e)
            row += (iin or "", iout or "")
        return row

    def _numbers(self, r, e, wall):
        """The cells of row ``r`` (entry ``e``) from TX to AGE."""
        stale = offload_mark(e.status)
        sizes = self.sizes
        row = []
        for v in (e.bytes_orig, e.bytes_reply):
            text = sizes.get(v)
            if text is None:
                text = sizes[v] = human(v, self.units, "B")
            row.append(text + stale)
        v = e.packets_orig
        row.append("-" if v is None else str(v))
        v = e.packets_reply
        row.append("-" if v is None else str(v))
        if self.age_on:
            if r.age_approx:
                row.append("-")      # one snapshot: no start time, and none seen before it
            else:
                age = int(r.age(wall))
                text = self.ages.get(age)
                if text is None:
                    text = self.ages[age] = "%d" % age if self.seconds else duration(age)
                row.append(text)
        return row


def _clean(text):
    """Cell text without the spool's separators: ``place`` shows a control
    character as "?" all the same (``text.sanitize``)."""
    return text.replace("\0", "?").replace("\n", "?")


def _fitted(cells, over):
    """Spooled ASCII cells with the texts too long for their column cut
    as ``place`` cuts them (an ellipsis; a process keeps its pid)."""
    for i, w, tailed in over:
        if len(cells[i]) > w:
            cells[i] = cut(cells[i], w, tailed)
    return tuple(cells)


def _placed(cells, picks):
    """``columns.place`` over the spooled cells of a row, right stripped."""
    return place({c.name: cells[i] for i, c, _w in picks}, [(c, w) for _i, c, w in picks]).rstrip()
