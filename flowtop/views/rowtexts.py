"""The cell texts of many flows at once (``RowTexts``): what
``Formatter.cells`` gives each row, a column at a time, for the outputs
that format every row (``views.oncetext``'s ``--once`` text)."""

from itertools import compress, repeat
from operator import is_

from ..health import offload_mark
from ..memo import Memo
from ..model import ICMP_PROTOS, proto_name, state_name
from ..netlink.ctnetlink import FIELDS
from ..netlink.uapi import AF_INET6, IPPROTO_GRE
from ..text import duration, human


def _texts(make):
    """value -> its text, made on first use and read by ``map`` in C; emptied when full."""
    return Memo(65536, make, chunk=1)

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
        fams, ends, odd = fields[_FAMILY], [], ()
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
        texts, forms = self._forms(keys)
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

    def _forms(self, addrs):
        """({address: its text}, {address: its "text:%d" form}) of the
        distinct ``addrs``, a name in place of the address where one is
        known (``Formatter.endpoint``), by one comprehension."""
        enrich, addrs = self.fmt.enrich, list(addrs)
        texts = dict(zip(addrs, addrs))
        forms = dict(zip(addrs, [("[%s]:%%d" if ":" in a and "#" not in a else "%s:%%d")
                                 % a.replace("%", "%%") for a in addrs]))
        if enrich.dns is not None and getattr(enrich.dns, "known", True):   # (--once: a name)
            for a, known in zip(addrs, map(enrich.host, addrs)):
                if known:
                    texts[a], forms[a] = known, "%s:%%d" % known.replace("%", "%%")
        return texts, forms

    def _nat(self, entries, fields, cols):
        """The NAT and XLATE columns (``cells.nat_of``, ``Formatter._xlate``)
        of the flows whose reply tuple is not their original one reversed,
        from the columns (a NAT router's every flow: ~2 us a flow less)."""
        n = len(entries)
        nat, xlate = cols["nat"], cols["xlate"] = [""] * n, [""] * n
        src, sport, dst, dport, rsrc, rsport, rdst, rdport, protos = (
            fields[i] for i in (_SRC, _SPORT, _DST, _DPORT, _RSRC, _RSPORT, _RDST, _RDPORT, _PROTO))
        moved = list(compress(range(n), map(tuple.__ne__, zip(src, sport, dst, dport),
                                            zip(rdst, rdport, rsrc, rsport))))
        texts, forms = self._forms({a for i in moved for a in (rdst[i], rsrc[i])} - {None})
        for i in moved:
            gre = protos[i] == IPPROTO_GRE          # (GRE keys are no ports)
            a, b = rdst[i], rsrc[i]
            snat = a is not None and (a != src[i] or (not gre and rdport[i] != sport[i]))
            dnat = b is not None and (b != dst[i] or (not gre and rsport[i] != dport[i]))
            if snat:        # "src A:P" (a masquerading router's every flow), then "dst B:Q"
                p = None if gre else rdport[i]
                x = "src " + (texts[a] if p is None else forms[a] % p)
                if dnat:
                    p = None if gre else rsport[i]
                    x += " dst " + (texts[b] if p is None else forms[b] % p)
                nat[i], xlate[i] = "SD" if dnat else "S", x
            elif dnat:
                p = None if gre else rsport[i]
                nat[i], xlate[i] = "D", "dst " + (texts[b] if p is None else forms[b] % p)

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

def _nones(column):
    """The indices of None in ``column`` (a C pass; [] at once when none)."""
    return list(compress(range(len(column)), map(is_, column, repeat(None)))) \
        if None in column else []
