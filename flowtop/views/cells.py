"""The text of each cell: a flow's (or a group's) values in the user's
units, names and redaction, and the details pane of one flow.  Only the
rows that are shown get formatted.
"""

from ..health import offload_mark
from ..model import ICMP_PROTOS, proto_name, state_name, status_names
from ..netlink.uapi import AF_INET6, IPPROTO_GRE
from ..text import duration, human
from .columns import place, widths_of
from .redact import Redactor


class Formatter:
    """Cell text of a row, with the user's units and choices."""

    def __init__(self, state, enrich):
        self.state = state
        self.enrich = enrich
        self.services = enrich.services
        # (a provider planned for after the live view's first rows has its column from the first)
        planned = getattr(enrich, "planned", ())
        state.has_process = enrich.process is not None or "process" in planned
        state.has_geo = enrich.geo is not None
        state.has_iface = enrich.ifaces is not None or "ifaces" in planned
        state.has_history = getattr(enrich, "history", None) is not None or "history" in planned
        self.redact = Redactor(enrich.is_local, state)

    def rate(self, value):
        if value is None:
            return "-"
        if self.state.bits:
            return human(value * 8, self.state.units, "b/s")
        return human(value, self.state.units, "B/s")

    def amount(self, value):
        return human(value, self.state.units, "B")

    def address(self, addr):
        """An address, redacted when the user asked for it."""
        if addr is None:
            return "-"
        return self.redact.address(addr)

    def endpoint(self, family, addr, port, names=True):
        """addr:port, with the reverse-DNS name in place of the address when
        one is known (and not redacted)."""
        return self._endpoint(family, addr, self.address(addr), port, names)

    def _endpoint(self, family, addr, text, port, names=True):
        """``endpoint`` given ``address(addr)``."""
        if names and text == addr:
            name = self.enrich.host(addr)
            if name:
                family, text = None, name
        if port is None:
            return text
        if family == AF_INET6 and "#" not in text:
            return "[%s]:%d" % (text, port)
        return "%s:%d" % (text, port)

    def cells(self, row, wall):
        """Every column's text for one table row, keyed by column name."""
        e = row.entry
        st = self.state
        age = row.age(wall)
        if row.age_approx and not st.show_rates:
            age_s = "-"        # one snapshot: no start time, and none seen before it
        elif st.age == "seconds":
            age_s = "%d%s" % (age, "~" if row.age_approx else "")
        else:
            age_s = duration(age) + ("~" if row.age_approx else "")
        snat, dnat = nat_of(e)
        stale = offload_mark(e.status)      # offloaded: the counters stopped
        out = self.names(e)
        out.update({
            "nat": ("S" if snat else "") + ("D" if dnat else ""),
            "xlate": self._xlate(e, snat, dnat, e.l4proto == IPPROTO_GRE)
            if snat or dnat else "",
            "id": "-" if e.id is None else str(e.id),
            "bytes_tx": self.amount(e.bytes_orig) + stale,
            "bytes_rx": self.amount(e.bytes_reply) + stale,
            "pkts_tx": "-" if e.packets_orig is None else str(e.packets_orig),
            "pkts_rx": "-" if e.packets_reply is None else str(e.packets_reply),
            "rate_tx": self.rate(row.rate_orig),
            "rate_rx": self.rate(row.rate_reply),
            "age": age_s,
        })
        hist = self._history(row) if st.has_history else ("",) * 4
        out.update(avg2=hist[0], avg10=hist[1], avg40=hist[2], peak=hist[3])
        return out

    def history_text(self, row):
        """The details pane's history line: 60 s as a sparkline, then the
        averages and the peak."""
        from ..history import sparkline
        h = self.enrich.history
        ring = None if h is None else h.of(row.key)      # (None: planned, not attached yet)
        if ring is None:
            return "none yet (idle since it was first seen)"
        a2, a10, a40, peak = h.averages(row.key)
        return "%s  2s %s  10s %s  40s %s  peak %s" % (
            sparkline(ring.series(30, 2.0, h.now()), self.state.unicode),
            self.rate(a2), self.rate(a10), self.rate(a40), self.rate(peak))

    def _history(self, row):
        """The 2 s / 10 s / 40 s averages and peak of a flow, as text."""
        h = self.enrich.history
        if not (self.state.show_history or self.state.wide):
            return ("",) * 4
        if h is None:               # planned, not attached yet: as a flow without history
            return (self.rate(None),) * 4
        return tuple(self.rate(v) for v in h.averages(row.key))

    def names(self, e):
        """The cells of a flow (CtEntry) that name things, what '/' searches:
        process, protocol, state, service, the ends, country, interfaces."""
        gre = e.l4proto == IPPROTO_GRE
        sport = None if gre else e.sport
        dport = None if gre else e.dport
        enrich = self.enrich
        if enrich.ifaces is not None:
            iin, iout = enrich.ifaces_of(e)
        else:
            iin = iout = None
        return {
            "process": enrich.process_label(e) if enrich.process is not None else "",
            "proto": proto_name(e.l4proto),
            "state": state_name(e.l4proto, e.state) or "",
            "service": self.services.of_flow(sport, dport, e.l4proto, self.state.numeric_port)
            if dport is not None else _icmp_label(e),
            "src": self.endpoint(e.family, e.src, sport),
            "dst": self.endpoint(e.family, e.dst, dport),
            "country": self._country(e),
            "in_iface": iin or "",
            "out_iface": iout or "",
        }

    def _country(self, e):
        """The COUNTRY cell: the remote end's country and city ("" without GeoIP)."""
        enrich = self.enrich
        if enrich.geo is None:
            return ""
        remote = enrich.remote_of(e)
        geo = self.redact.geo(remote, enrich.geo_of(remote))
        return " ".join(x for x in (getattr(geo, "country", None), getattr(geo, "city", None))
                        if x)

    def _xlate(self, e, snat, dnat, gre):
        """The translated ends: the source the remote side sees, the
        destination the flow really reaches."""
        parts = []
        if snat:
            parts.append("src " + self.endpoint(e.family, e.reply_dst,
                                                None if gre else e.reply_dport))
        if dnat:
            parts.append("dst " + self.endpoint(e.family, e.reply_src,
                                                None if gre else e.reply_sport))
        return " ".join(parts)

    def line(self, row, cols, wall):
        """One screen line of ``row`` for the layout ``cols``."""
        return place(self.cells(row, wall), cols)

    def group_cells(self, g):
        """Cell texts of an aggregate row: "-" for a total no flow of the
        group had (no counters, or no rate yet), not 0."""
        (bt, br), (pt, pr), (rt, rr) = g.totals()
        st = self.state
        hist = ("",) * 4
        if st.has_history and (st.show_history or st.wide):
            h = self.enrich.history         # (None: planned, not attached yet)
            hist = tuple(self.rate(v) for v in (h.group_averages(st.view, g.key)
                                                 if h is not None else (None,) * 4))
        return {"avg2": hist[0], "avg10": hist[1], "avg40": hist[2], "peak": hist[3],
                "label": g.label, "flows": str(g.flows), "uncounted": str(g.uncounted),
                "bytes_tx": self.amount(bt), "bytes_rx": self.amount(br),
                "pkts_tx": _n(pt), "pkts_rx": _n(pr),
                "rate_tx": self.rate(rt), "rate_rx": self.rate(rr)}

    def group_line(self, g, cols):
        return place(self.group_cells(g), cols)

    def search_text(self, row):
        """What '/' matches: the text of the columns a user can show (the
        cells of ``names``, then both addresses), lower case.  Spelt out
        rather than joined from ``names``: ~5 us a flow, the first '/'
        character at 100k flows (tests/test_searchtext.py holds the two alike)."""
        e = row.entry
        enrich = self.enrich
        l4 = e.l4proto
        gre = l4 == IPPROTO_GRE
        sport = None if gre else e.sport
        dport = None if gre else e.dport
        if dport is None:
            service = _icmp_label(e)
        else:
            service = self.services.of_flow(sport, dport, l4, self.state.numeric_port)
        iin, iout = enrich.ifaces_of(e) if enrich.ifaces is not None else (None, None)
        src, dst, family = e.src, e.dst, e.family
        a = "-" if src is None else self.redact.address(src)
        b = "-" if dst is None else self.redact.address(dst)
        return " ".join((enrich.process_label(e) if enrich.process is not None else "",
                         proto_name(l4), state_name(l4, e.state) or "", service,
                         self._endpoint(family, src, a, sport),
                         self._endpoint(family, dst, b, dport), self._country(e),
                         iin or "", iout or "", a, b)).lower()

    def details(self, row, wall):
        """Every field of one flow, as (label, value) lines for the details pane."""
        e = row.entry
        f = self
        lines = [
            ("protocol", "%s (%d), %s" % (proto_name(e.l4proto), e.l4proto,
                                          "ipv6" if e.family == AF_INET6 else "ipv4")),
            ("state", state_name(e.l4proto, e.state) or "-"),
            ("original", "%s -> %s" % (f.endpoint(e.family, e.src, e.sport),
                                       f.endpoint(e.family, e.dst, e.dport))),
            ("reply", "%s -> %s" % (f.endpoint(e.family, e.reply_src, e.reply_sport),
                                    f.endpoint(e.family, e.reply_dst, e.reply_dport))),
        ]
        enrich = self.enrich
        lines += self._process_lines(e) + self._end_lines(e)
        if enrich.ifaces is not None:
            iin, iout = enrich.ifaces_of(e)
            lines.append(("interfaces", "in %s, out %s" % (iin or "?", iout or "?")))
        if getattr(enrich, "history", None) is not None:
            lines.append(("history", self.history_text(row)))
        if e.l4proto in ICMP_PROTOS:
            lines.append(("icmp", "type %s code %s id %s" % (e.icmp_type, e.icmp_code, e.icmp_id)))
        if e.l4proto == IPPROTO_GRE:
            lines.append(("gre keys", "%s / %s" % (e.gre_key, e.gre_reply_key)))
        lines += [
            ("sent", "%s in %s packets" % (f.amount(e.bytes_orig), _n(e.packets_orig))),
            ("received", "%s in %s packets" % (f.amount(e.bytes_reply), _n(e.packets_reply))),
            ("rate out", "%s, %s packets/s" % (f.rate(row.rate_orig), _r(row.pps_orig))),
            ("rate in", "%s, %s packets/s" % (f.rate(row.rate_reply), _r(row.pps_reply))),
            ("age", duration(row.age(wall)) + (" (approximate: no kernel timestamp)"
                                               if row.age_approx else "")),
            ("timeout", "%ss" % _n(e.timeout)),
            ("status", " ".join(status_names(e.status)) or "-"),
            ("mark", _n(e.mark)),
            ("zone", _n(e.zone)),
            ("id", _n(e.id)),
        ]
        from .related import detail_lines
        lines += detail_lines(self, e)
        if row.closed:
            lines.append(("closed", "no longer in the kernel's table"))
        return lines

    def _process_lines(self, e):
        """The details of the flow's process and its peer (a local other end)."""
        if self.enrich.process is None:
            return []
        lines = []
        p, peer = self.enrich.procs(e)
        for label, who in (("process", p), ("peer", peer)):
            if who is None and label == "peer":
                continue
            lines.append((label, "-" if who is None else "%s%s%s" % (
                who.name or "?", "" if who.pid is None else "/%d" % who.pid,
                "" if who.user is None else " user %s" % who.user)))
        return lines

    def _end_lines(self, e):
        """The source's and destination's names and places, where known."""
        enrich, hide = self.enrich, self.redact
        lines = []
        for label, addr in (("source", e.src), ("destination", e.dst)):
            extra = []
            name = hide.name(addr, enrich.host(addr))
            if name:
                extra.append(name)
            g = hide.geo(addr, enrich.geo_of(addr))
            if g is not None:
                extra.append(" ".join(str(x) for x in (
                    getattr(g, "country", None), getattr(g, "country_name", None),
                    getattr(g, "city", None),
                    "AS%s" % g.asn if getattr(g, "asn", None) else None,
                    getattr(g, "org", None)) if x))
            if extra:
                lines.append((label, "%s  %s" % (self.address(addr), "  ".join(extra))))
        return lines


class CellCache:
    """The cells of the rows drawn, kept while the snapshot and the view state stay: a key
    that moves the cursor or opens a pane draws again without formatting (a mipsel router:
    36 rows took 0.25-0.45 s of a key's 0.3-0.6 s draw).  A new snapshot (or look) formats
    again: names and routes found since show then."""

    def __init__(self, formatter):
        self.fmt = formatter
        self._of, self._kept = None, {}
        self._widths = self._cols = None
        self._lines = {}

    def cells(self, rows, wall, snap):
        """``[fmt.cells(r, wall) for r in rows]``, from the cache when ``snap`` and the
        state are those of the last call."""
        of = (snap, wall, [(k, frozenset(v) if isinstance(v, set) else v)
                           for k, v in vars(self.fmt.state).items()])
        if self._of is None or of[0] is not self._of[0] or of != self._of:
            self._of, self._kept, self._lines = of, {}, {}
        kept, out = self._kept, []
        for r in rows:
            hit = kept.get(id(r))
            if hit is None or hit[0] is not r:      # the row itself is kept: its id stays its
                hit = kept[id(r)] = (r, self.fmt.cells(r, wall))
            out.append(hit[1])
        return out

    def widths(self, cells):
        """``columns.widths_of(cells)``, computed again for other cells only."""
        kept = self._widths
        if kept is None or len(kept[0]) != len(cells) or any(
                a is not b for a, b in zip(kept[0], cells)):
            self._widths = kept = (list(cells), widths_of(cells))
        return kept[1]

    def line(self, cells, cols):
        """``columns.place(cells, cols)`` of cells from ``cells()``, kept while the layout stays
        (place and widths_of were most of a cached draw: 36 rows of ~15 cells each)."""
        if cols != self._cols:
            self._cols, self._lines = cols, {}
        hit = self._lines.get(id(cells))
        if hit is None or hit[0] is not cells:
            hit = self._lines[id(cells)] = (cells, place(cells, cols))
        return hit[1]


def nat_of(e):
    """(source translated, destination translated) of a flow, read from its
    tuples: the reply goes to the translated source and comes from the
    real destination.  GRE keys differ both ways without NAT: not compared."""
    gre = e.l4proto == IPPROTO_GRE
    snat = e.reply_dst is not None and (
        e.reply_dst != e.src or (not gre and e.reply_dport != e.sport))
    dnat = e.reply_src is not None and (
        e.reply_src != e.dst or (not gre and e.reply_sport != e.dport))
    return snat, dnat


def _icmp_label(e):
    if e.l4proto in ICMP_PROTOS and e.icmp_type is not None:
        return "type %d" % e.icmp_type
    return ""


def _n(v):
    return "-" if v is None else str(v)


def _r(v):
    return "-" if v is None else "%.1f" % v


