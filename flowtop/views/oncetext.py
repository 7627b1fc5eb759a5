"""``--once`` text as the dump arrives (``OnceText``), and the cell texts
of many flows at once (``RowTexts``): what ``views.text.TextFrames`` writes
for a whole table, byte for byte, at a fraction of its cost a row."""

import time
from itertools import compress, repeat
from operator import is_

from ..health import offload_mark
from ..memo import Memo
from ..model import ICMP_PROTOS, proto_name, state_name
from ..netlink.ctnetlink import FIELDS
from ..netlink.uapi import AF_INET6, IPPROTO_GRE
from ..table import FlowTable, FreshFlow, TableFlow
from ..text import duration, human
from .cells import Formatter, nat_of
from .columns import COLUMNS, _TAILED, _enabled, cut, layout, place
from .counts import WHY, named
from .select import SORT_KEYS, _rate_sum, base, chosen, flows_text, header_counts
from .state import ViewState
from .writer import Writer


def _texts(make):
    """value -> its text, made on first use and read by ``map`` in C; emptied when full."""
    return Memo(65536, make, chunk=1)


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


class RowTexts:
    """``Formatter.cells`` of many flows as lists (in ``names`` order), for
    the outputs that format every row: values that repeat (names of
    protocols, states, services, sizes, ages, processes, interfaces) are
    memoised, no dict is built per row.  ~4x faster than ``cells`` at 100k
    rows; ``of`` gives None where it would not be the same text (GeoIP,
    redaction: those rows go through ``cells``); tests/test_once.py holds
    the two together."""

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
        self.services = _texts(fmt.services.names)      # l4proto -> {port: name}
        self.kinds = _texts(lambda k: (proto_name(k[0]), state_name(k[0], k[1]) or ""))
        units, seconds = fmt.state.units, fmt.state.age == "seconds"
        self.sizes = _texts(lambda v: human(v, units, "B"))        # bytes -> text
        self.ages = _texts(lambda a: "%d" % max(0, a) if seconds else duration(max(0, a)))
        self.numbers = _texts(lambda v: "-" if v is None else str(v))       # packets
        self.marks = _texts(offload_mark)                                  # status -> "!"

    def columns(self, entries, wall, fields=None):
        """The cell texts of ``entries`` (the rows' flows), a list per
        column, a column at a time: memos read by ``map`` in C where the
        text follows one value, a comprehension where it takes more.
        ``fields``: their columns (``zip(*entries)``) when made."""
        if fields is None:
            fields = list(zip(*entries))        # a column per field
        cols = self._kinds(fields)
        want = set(self.names)
        if "process" in want:
            from .procbatch import labels
            cols["process"] = labels(self, self.fmt.enrich, entries, fields)
        if "id" in want:
            ids = fields[_ID]
            cols["id"] = list(map(str, ids)) if None not in ids else \
                ["-" if i is None else str(i) for i in ids]
        self._ends(fields, cols)
        if "xlate" in want:
            self._nat(entries, fields, cols)
        if "in_iface" in want:
            self._ifaces(entries, fields, cols)
        return [cols[n] for n in self.names if n in cols] + self._numbers(fields, wall)

    def _kinds(self, fields):
        """{column: texts} of PROTO, STATE and SERVICE (``Formatter.names``)."""
        protos, sports, dports = fields[_PROTO], fields[_SPORT], fields[_DPORT]
        kinds = list(map(self.kinds.__getitem__, zip(protos, fields[_STATE])))
        if IPPROTO_GRE in protos:           # GRE keys are not ports
            sports = [None if p == IPPROTO_GRE else s for p, s in zip(protos, sports)]
            dports = [None if p == IPPROTO_GRE else d for p, d in zip(protos, dports)]
        tables = self.services          # (a memo of port texts: 58k misses at 100k flows)
        if self.fmt.state.numeric_port:
            service = [str(d if s is None or d <= s else s) if d is not None else None
                       for s, d in zip(sports, dports)]
        else:
            service = [(tables[p].get(d) or (s is not None and tables[p].get(s))
                        or str(d if s is None or d <= s else s)) if d is not None else None
                       for p, s, d in zip(protos, sports, dports)]
        for i in _nones(service):           # no ports: ICMP's type (``cells._icmp_label``)
            p, t = protos[i], fields[_ITYPE][i]
            service[i] = "type %d" % t if p in ICMP_PROTOS and t is not None else ""
        proto, state = zip(*kinds)
        return {"proto": proto, "state": state, "service": service,
                "_sports": sports, "_dports": dports}

    def _ends(self, fields, cols):
        """The SOURCE and DESTINATION columns: an address (or its name,
        ``Formatter.endpoint``) with the port, each distinct address's texts
        once a batch by a comprehension (names may come per batch; a memo's
        maker cost ~1.5 us an address, 87k distinct at 100k flows)."""
        enrich, fams, ends, odd = self.fmt.enrich, fields[_FAMILY], [], ()
        for name, at, ports in (("src", _SRC, cols.pop("_sports")),
                                ("dst", _DST, cols.pop("_dports"))):
            addrs = fields[at]      # no address: its family (an int) is its key, text "-"
            if None in addrs:
                addrs = [a or f for a, f in zip(addrs, fams)]
                odd = set(fams)
            ends.append((name, addrs, ports))
        keys = set(ends[0][1]).union(ends[1][1])
        odd = keys.intersection(odd)
        keys.difference_update(odd)
        addrs = list(keys)
        texts = dict(zip(addrs, addrs))
        forms = dict(zip(addrs, [("[%s]:%%d" if ":" in a and "#" not in a else "%s:%%d")
                                 % a.replace("%", "%%") for a in addrs]))
        if enrich.dns is not None and getattr(enrich.dns, "known", True):   # (--once: a name)
            for a, known in zip(addrs, map(enrich.host, addrs)):
                if known:
                    texts[a], forms[a] = known, "%s:%%d" % known.replace("%", "%%")
        for k in odd:
            texts[k] = "-"
            forms[k] = "[-]:%d" if k == AF_INET6 else "-:%d"
        for name, keys, ports in ends:
            made = list(map(forms.__getitem__, keys))
            if None not in ports:       # (a comprehension's % is ~20 % less than map's)
                cols[name] = [f % p for f, p in zip(made, ports)]
            else:
                cols[name] = [texts[k] if p is None else f % p
                              for k, f, p in zip(keys, made, ports)]

    def _nat(self, entries, fields, cols):
        """The NAT and XLATE columns: worked out (``cells.nat_of``) only
        for the flows whose reply tuple is not their original one reversed."""
        n = len(entries)
        nat, xlate = [""] * n, [""] * n
        moved = map(tuple.__ne__, zip(*(fields[i] for i in (_SRC, _SPORT, _DST, _DPORT))),
                    zip(*(fields[i] for i in (_RDST, _RDPORT, _RSRC, _RSPORT))))
        for i in compress(range(n), moved):
            e = entries[i]
            snat, dnat = nat_of(e)
            if snat or dnat:
                nat[i] = ("S" if snat else "") + ("D" if dnat else "")
                xlate[i] = self.fmt._xlate(e, snat, dnat, e[_PROTO] == IPPROTO_GRE)
        cols["nat"], cols["xlate"] = nat, xlate

    def _ifaces(self, entries, fields, cols):
        """The IN and OUT columns: asked once a batch per distinct (src,
        reply end, mark) when the provider's answer follows those
        (``Interfaces.by_ends``), else of every flow."""
        ifaces = self.fmt.enrich.ifaces
        if getattr(ifaces, "by_ends", False):
            from ..enrich.ifacetotals import answers_by_ends
            keys, pairs = answers_by_ends(ifaces, fields, entries)
            pairs = {k: (a or "", b or "") for k, (a, b) in pairs.items()}
            one = set(pairs.values())
            if len(one) == 1:       # (a host's "lo", a router's few links: per batch)
                (a, b), n = one.pop(), len(keys)
                cols["in_iface"], cols["out_iface"] = (a,) * n, (b,) * n
                return
            cells = map(pairs.__getitem__, keys)
        else:
            cells = ((a or "", b or "") for a, b in map(ifaces.of_flow, entries))
        cols["in_iface"], cols["out_iface"] = zip(*cells)

    def _numbers(self, fields, wall):
        """The columns TX to AGE of the flows whose fields are ``fields``
        (a column per field): memos read in C, no call a row (a flow without
        a start time: "-", one snapshot saw no start)."""
        sizes, numbers, ages, stale = self.sizes, self.numbers, self.ages, self.marks
        stale = list(map(stale.__getitem__, fields[_STATUS]))
        marked = any(stale)         # (an offloaded flow's "!": mostly none, no str + a row)
        cols = [[a + b for a, b in zip(map(sizes.__getitem__, fields[i]), stale)] if marked
                else list(map(sizes.__getitem__, fields[i])) for i in (_BO, _BR)]
        cols += [list(map(numbers.__getitem__, fields[_PO])),
                list(map(numbers.__getitem__, fields[_PR]))]
        if "age" in self.names:
            cols.append([ages[int(wall - s / 1e9)] if s else "-" for s in fields[_START]])
        return cols


(_FAMILY, _PROTO, _SRC, _DST, _SPORT, _DPORT, _RSRC, _RDST, _RSPORT, _RDPORT, _ITYPE, _STATE,
 _ID, _STATUS, _MARK, _PO, _BO, _PR, _BR, _START) = (
    FIELDS.index(n) for n in ("family", "l4proto", "src", "dst", "sport", "dport", "reply_src",
                              "reply_dst", "reply_sport", "reply_dport", "icmp_type", "state",
                              "id", "status", "mark", "packets_orig", "bytes_orig",
                              "packets_reply", "bytes_reply", "start"))


def _counts(fields):
    """``header_counts`` of open rows given as columns: a pass a protocol."""
    protos = fields[_PROTO]
    return named({p: protos.count(p) for p in set(protos)}), fields[_BO].count(None)


def _nones(column):
    """The indices of None in ``column`` (a C pass; [] at once when none)."""
    return list(compress(range(len(column)), map(is_, column, repeat(None)))) \
        if None in column else []


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
