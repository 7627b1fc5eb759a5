"""Flows as flat records: the JSON Lines and CSV outputs.

One schema for both (README documents it).  Every value is a number, a
plain string, a list of status names or null; strings that come from the
kernel are addresses and names from fixed tables, so they need no escaping
beyond what ``json`` does.  With redaction on (``redact``, a
views.redact.Redactor) every record is built as a dict and redacted there;
the fast paths are for records with nothing to hide.  CSV cells that a
spreadsheet would run as a formula are quoted (``csv_cell``).
"""

import csv
import json

from ..model import family_name, proto_name, state_name, status_names
from ..netlink.uapi import IPPROTO_GRE

COLUMNS = (
    "time", "id", "family", "proto", "l4proto", "state",
    "src", "dst", "sport", "dport",
    "reply_src", "reply_dst", "reply_sport", "reply_dport",
    "icmp_type", "icmp_code", "icmp_id",
    "packets_orig", "bytes_orig", "packets_reply", "bytes_reply",
    "start", "age", "timeout", "mark", "zone", "status",
    "gre_key", "gre_reply_key",
)


def record(f, now):
    """One flow as a dict in COLUMNS order; ``now`` is the snapshot's wall time."""
    proto = f.l4proto
    gre = proto == IPPROTO_GRE
    start = f.start
    return {
        "time": round(now, 3),
        "id": f.id,
        "family": family_name(f.family),
        "proto": proto_name(proto),
        "l4proto": proto,
        "state": state_name(proto, f.state),
        "src": f.src,
        "dst": f.dst,
        "sport": None if gre else f.sport,
        "dport": None if gre else f.dport,
        "reply_src": f.reply_src,
        "reply_dst": f.reply_dst,
        "reply_sport": None if gre else f.reply_sport,
        "reply_dport": None if gre else f.reply_dport,
        "icmp_type": f.icmp_type,
        "icmp_code": f.icmp_code,
        "icmp_id": f.icmp_id,
        "packets_orig": f.packets_orig,
        "bytes_orig": f.bytes_orig,
        "packets_reply": f.packets_reply,
        "bytes_reply": f.bytes_reply,
        "start": None if start is None else round(start / 1e9, 3),
        "age": None if start is None else round(max(0.0, now - start / 1e9), 3),
        "timeout": f.timeout,
        "mark": f.mark,
        "zone": f.zone,
        "status": list(status_names(f.status)),
        "gre_key": f.dport if gre else None,
        "gre_reply_key": f.reply_dport if gre else None,
    }


_HEAD = ("family", "proto", "l4proto", "state")
_ADDRS = ("src", "dst", "reply_src", "reply_dst")
_TEMPLATE = "{" + ",".join(
    '"%s":"%%s"' % c if c in _ADDRS else "%s" if c == "family" else '"%s":%%s' % c
    for c in COLUMNS if c not in _HEAD[1:]) + "}\n"
_HEADS = {}
_STATUS_JSON = {}


def _head(family, proto, state):
    """The JSON of family, proto, l4proto and state: few distinct values, memoised."""
    key = (family, proto, state)
    text = _HEADS.get(key)
    if text is None:
        text = ",".join('"%s":%s' % (k, json.dumps(v)) for k, v in (
            ("family", family_name(family)), ("proto", proto_name(proto)),
            ("l4proto", proto), ("state", state_name(proto, state))))
        if len(_HEADS) < 4096:
            _HEADS[key] = text
    return text


def _status_json(status):
    text = _STATUS_JSON.get(status)
    if text is None:
        text = json.dumps(list(status_names(status)), separators=(",", ":"))
        if len(_STATUS_JSON) < 4096:
            _STATUS_JSON[status] = text
    return text


def json_line(f, now, stamp=None):
    """``record(f, now)`` as one JSON line, without building the dict.

    The fast path of ``--json``: equal to ``json.dumps(record(f, now))`` once
    parsed (tests check it on every recorded flow).  Addresses come from
    inet_ntop (hex digits, dots, colons) and names from fixed tables, so
    they need no escaping.
    """
    (family, proto, src, dst, sport, dport, rsrc, rdst, rsport, rdport,
     itype, icode, iid, state, status, timeout, mark, zone,
     ct_id, _use, porig, borig, prep, brep, start, _stop, _key) = f
    if src is None or dst is None or rsrc is None or rdst is None:
        return json.dumps(record(f, now), separators=(",", ":")) + "\n"
    if proto == IPPROTO_GRE:
        gkey, grkey = dport, rdport
        sport = dport = rsport = rdport = None
    else:
        gkey = grkey = None
    if start is None:
        start_s = age_s = "null"
    else:
        start_f = start / 1e9
        start_s = "%.3f" % start_f
        age_s = "%.3f" % (now - start_f if now > start_f else 0.0)
    return _TEMPLATE % (
        stamp or "%.3f" % now,
        "null" if ct_id is None else ct_id,
        _HEADS.get((family, proto, state)) or _head(family, proto, state),
        src, dst,
        "null" if sport is None else sport, "null" if dport is None else dport,
        rsrc, rdst,
        "null" if rsport is None else rsport, "null" if rdport is None else rdport,
        "null" if itype is None else itype, "null" if icode is None else icode,
        "null" if iid is None else iid,
        "null" if porig is None else porig, "null" if borig is None else borig,
        "null" if prep is None else prep, "null" if brep is None else brep,
        start_s, age_s,
        "null" if timeout is None else timeout, "null" if mark is None else mark,
        "null" if zone is None else zone,
        _STATUS_JSON.get(status) or _status_json(status),
        "null" if gkey is None else gkey, "null" if grkey is None else grkey,
    )


class _Memo(dict):
    """key -> JSON text, computed on first use by ``make``; bounded."""

    __slots__ = ("make",)

    def __init__(self, make):
        super().__init__()
        self.make = make

    def __missing__(self, key):
        text = self.make(key)
        if len(self) < 4096:
            self[key] = text
        return text


class JsonTarget:
    """A ctnetlink.Decoder target that writes ``json_line`` text directly
    from the kernel's bytes, one generated formatter per message layout.

    A layout fixes the family, the protocol and which attributes exist, so
    the formatter has every null, name and key baked in and no branches;
    only values are filled in.  Flows outside ``families``/``protocols``
    (sets of numbers; empty: all) become "".  Set ``now`` (epoch seconds)
    before each dump: it is the snapshot's ``time`` and the base of ``age``.
    """

    keeps = False        # text only: no need to share the decoded ints

    def __init__(self, families=(), protocols=(), tail=None, cls=None, services=None):
        self.families = frozenset(families)
        self.protocols = frozenset(protocols)
        # services: an Enrichment with only service names to add; its
        # per-port tails are baked in (no call per flow), instead of ``tail``.
        self.services = services
        # tail(entry) -> text of extra keys (",\"pid\":1,..."): the enrichment;
        # the formatter then also builds the entry (class ``cls``) to pass it.
        self.tail = tail
        self.cls = cls
        self.now = 0.0
        self._status = _Memo(_status_json)

    @property
    def now(self):
        return self._now

    @now.setter
    def now(self, value):
        self._now = value
        self.stamp = "%.3f" % value      # read once per flow by the formatters

    def wanted(self, family, proto):
        return ((not self.families or family in self.families)
                and (not self.protocols or proto in self.protocols))

    def convert(self, entry):
        if not self.wanted(entry.family, entry.l4proto):
            return ""
        line = json_line(entry, self.now)
        tail = self.services.json_tail if self.services is not None else self.tail
        return line if tail is None else line[:-2] + tail(entry) + "}\n"

    def compile(self, exprs, consts):
        family, proto = consts["family"], consts["l4proto"]
        if not self.wanted(family, proto):
            return "", '""', {}
        gre = proto == IPPROTO_GRE
        parts, args = [], []
        prelude = ""
        env = {"T": self, "STATUS": self._status,
               "STATE": _Memo(lambda st: json.dumps(state_name(proto, st)))}

        def put(column, fmt, expr):
            parts.append('"%s":%s' % (column, fmt))
            args.append(expr)

        def const(column, value):
            parts.append('"%s":%s' % (column, json.dumps(value).replace("%", "%%")))

        for c in COLUMNS:
            e = exprs.get(c, "None")
            if c == "time":
                put(c, "%s", "T.stamp")
            elif c == "family":
                const(c, family_name(family))
            elif c == "proto":
                const(c, proto_name(proto))
            elif c == "l4proto":
                const(c, proto)
            elif c == "state":
                put(c, "%s", "STATE[%s]" % e) if e != "None" else const(c, None)
            elif c in ("src", "dst", "reply_src", "reply_dst"):
                put(c, '"%s"', e) if e != "None" else const(c, None)
            elif c in ("sport", "dport", "reply_sport", "reply_dport") and gre:
                const(c, None)
            elif c == "gre_key":
                put(c, "%d", exprs["dport"]) if gre and exprs["dport"] != "None" \
                    else const(c, None)
            elif c == "gre_reply_key":
                put(c, "%d", exprs["reply_dport"]) if gre and exprs["reply_dport"] != "None" \
                    else const(c, None)
            elif c == "start":
                if exprs["start"] == "None":
                    const(c, None)
                else:
                    prelude = "    s = %s / 1e9\n    n = T._now\n" % exprs["start"]
                    put(c, "%.3f", "s")
            elif c == "age":
                if exprs["start"] == "None":
                    const(c, None)
                else:
                    put(c, "%.3f", "n - s if n > s else 0.0")
            elif c == "status":
                put(c, "%s", "STATUS[%s]" % e) if e != "None" else const(c, [])
            else:
                put(c, "%d", e) if e != "None" else const(c, None)
        if self.services is not None:
            names, tail, none = self.services.service_tails(proto)
            sp, dp = exprs["sport"], exprs["dport"]
            if gre or sp == "None" or dp == "None":
                parts[-1] += none.replace("%", "%%")
            else:
                env.update(SN=names)
                head, _, rest = tail.partition('"%s"')
                parts[-1] += head.replace("%", "%%") + '"%s"' + rest.replace("%", "%%")
                prelude += "    d = %s\n    p = %s\n" % (dp, sp)
                args.append("(SN.get(d) or SN.get(p) or (d if d <= p else p))")
        elif self.tail is not None:
            from ..netlink.ctnetlink import FIELDS
            env.update(TAIL=self.tail, new=tuple.__new__, cls=self.cls)
            parts[-1] += "%s"
            args.append("TAIL(new(cls, (%s,)))" % ",".join(exprs[n] for n in FIELDS))
        template = "{" + ",".join(parts) + "}\n"
        return prelude, "%r %% (%s,)" % (template, ",".join(args)), env


BATCH = 1 << 16         # characters per write of JSON Lines text
RATE_COLUMNS = ("rate_orig", "rate_reply", "pps_orig", "pps_reply")


def _num(v):
    return "null" if v is None else "%.3f" % v


def rate_values(row):
    return (row.rate_orig, row.rate_reply, row.pps_orig, row.pps_reply)


def open_rows(table, keep=None):
    """Rows the kernel still lists (streaming outputs skip the lingering),
    and that ``keep(row)`` keeps (--in-iface/--out-iface, --filter)."""
    return [r for r in table if not r.closed and (keep is None or keep(r))]


def full_record(f, now, enrich=None, redact=None):
    """``record`` plus the enrichment keys (``enrich.fields``), redacted."""
    r = record(f, now)
    if enrich is not None:
        r.update(enrich.fields(f))
    return r if redact is None else redact.record(r)


# OWASP's CSV injection rule: a cell beginning with one of these is a formula
# to a spreadsheet; a leading single quote makes it text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(v):
    """One CSV value: None as empty, a formula-like string quoted.  Every
    string cell passes here (no column can be missed); only GeoIP's own
    ``--`` (a special range, no operand to compute) is left as it is."""
    if v is None:
        return ""
    if v.__class__ is str and v.startswith(_FORMULA_START) and v != "--":
        return "'" + v
    return v


class JsonLinesWriter:
    """Writes JSON Lines text (from ``json_line`` or a JsonTarget) as it comes.

    ``tail(entry)`` adds the enrichment keys to the streaming records; with
    ``redact``, records come from ``full_record`` over ``enrich``."""

    wants = "json"

    def __init__(self, stream, tail=None, keep=None, enrich=None, redact=None):
        self.stream = stream
        self.tail = tail
        self.keep = keep
        self.enrich = enrich
        self.redact = redact

    def lines(self, flows, now):
        """JSON Lines text of ``flows`` at ``now`` (enriched, redacted)."""
        if self.redact is not None:
            return (json.dumps(full_record(f, now, self.enrich, self.redact),
                               separators=(",", ":")) + "\n" for f in flows)
        tail = self.tail or (lambda e: "")
        return (json_line(f, now)[:-2] + tail(f) + "}\n" for f in flows)

    def write_flows(self, flows, now):
        self.write(self.lines(flows, now), now)

    def write(self, lines, now):
        """Write ``lines`` (str, each one or more whole lines) in writes of
        about BATCH characters."""
        write = self.stream.write
        batch = []
        size = 0
        for line in lines:
            batch.append(line)
            size += len(line)
            if size >= BATCH:
                write("".join(batch))
                batch = []
                size = 0
        write("".join(batch))
        self.stream.flush()

    def write_rows(self, table, wall):
        """Streaming: each open flow of the table, with its rates (null until
        a flow has been seen twice)."""
        rates = '%s,"rate_orig":%s,"rate_reply":%s,"pps_orig":%s,"pps_reply":%s}\n'
        rows = open_rows(table, self.keep)
        if self.redact is None:
            stamp = "%.3f" % wall
            extra = self.tail or (lambda e: "")
            heads = (json_line(r.entry, wall, stamp)[:-2] + extra(r.entry) for r in rows)
        else:
            heads = (line[:-2] for line in self.lines([r.entry for r in rows], wall))
        self.write((rates % ((head,) + tuple(_num(v) for v in rate_values(r)))
                    for head, r in zip(heads, rows)), wall)


class CsvWriter:
    """CSV with a header row (once); status names joined with '|'.
    ``enrich`` (an Enrichment) adds its FIELDS columns."""

    wants = "stream"

    def __init__(self, stream, enrich=None, keep=None, redact=None):
        self.stream = stream
        self.enrich = enrich
        self.keep = keep
        self.redact = redact
        self._writer = csv.writer(stream, lineterminator="\n")
        self._header = False

    def _columns(self):
        from ..enrich.bundle import FIELDS
        return COLUMNS + (FIELDS if self.enrich is not None else ())

    def write(self, flows, now):
        self._head(self._columns())
        self._writer.writerows(self._rows(flows, now))
        self.stream.flush()

    def write_rows(self, table, wall):
        """Streaming: the same columns plus the rates."""
        self._head(self._columns() + RATE_COLUMNS)
        rows = open_rows(table, self.keep)
        self._writer.writerows(
            cells + [csv_cell(v if v is None else round(v, 3)) for v in rate_values(r)]
            for cells, r in zip(self._rows([r.entry for r in rows], wall), rows))
        self.stream.flush()

    def _head(self, columns):
        if not self._header:
            self._writer.writerow(columns)
            self._header = True

    def _rows(self, flows, now):
        enrich, redact = self.enrich, self.redact
        for f in flows:
            r = full_record(f, now, enrich, redact)
            r["status"] = "|".join(r["status"])
            yield [csv_cell(v) for v in r.values()]


class GroupWriter:
    """JSON Lines or CSV of an aggregate view (--view process|host|country|
    iface): one record per group per snapshot."""

    wants = "list"

    def __init__(self, stream, view, enrich, fmt="json", sort="rate", reverse=False, keep=None,
                 redact=None):
        from . import aggregate
        self.keep = keep
        self.redact = redact
        self.stream = stream
        self.view = view
        self.enrich = enrich
        self.fmt = fmt
        self.sort, self.reverse = sort, reverse
        self._agg = aggregate
        self._csv = csv.writer(stream, lineterminator="\n") if fmt == "csv" else None
        self._header = False

    def write_rows(self, table, wall):
        agg = self._agg
        groups = agg.sort_groups(agg.aggregate(open_rows(table, self.keep), self.view,
                                               self.enrich, self.redact),
                                 self.sort, self.reverse)
        recs = [agg.record(g, self.view, wall) for g in groups]
        if self._csv is not None:
            if not self._header:
                self._csv.writerow(agg.record_columns(self.view))
                self._header = True
            self._csv.writerows([[csv_cell(v) for v in r.values()] for r in recs])
        else:
            self.stream.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in recs))
        self.stream.flush()
