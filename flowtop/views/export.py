"""The JSON Lines and CSV writers of flows (and of aggregate views), over
the records of ``views.record``.

With redaction on (``redact``, a views.redact.Redactor) every record is
built as a dict and redacted there; the encoder is for records with
nothing to hide.  CSV cells that a spreadsheet would run as a formula are
quoted (``csv_cell``).
"""


from .record import COLUMNS, json_line, record
from .writer import Spool, Writer

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


def csv_row(r):
    """A record's values as CSV cells: its lists (status names, label bits)
    joined with '|'."""
    return [csv_cell("|".join(map(str, v)) if isinstance(v, list) else v) for v in r.values()]


class JsonLinesWriter(Writer):
    """Writes JSON Lines text (from ``json_line`` or a JsonTarget) as it comes.

    ``tail(entry)`` adds the enrichment keys to the streaming records; with
    ``redact``, records come from ``full_record`` over ``enrich``."""

    def __init__(self, stream, tail=None, keep=None, enrich=None, redact=None):
        self.stream = stream
        self.tail = tail
        self.keep = keep
        self.enrich = enrich
        self.redact = redact

    def lines(self, flows, now):
        """JSON Lines text of ``flows`` at ``now`` (enriched, redacted)."""
        if self.redact is not None:
            import json     # (here: the plain --json path writes by jsontext, without it)
            return (json.dumps(full_record(f, now, self.enrich, self.redact),
                               separators=(",", ":")) + "\n" for f in flows)
        tail = self.tail or (lambda e: "")
        return (json_line(f, now)[:-2] + tail(f) + "}\n" for f in flows)

    def write_flows(self, flows, now):
        self.write(self.lines(flows, now), now)

    def write_batch(self, rows, flows, wall, fields=None):
        self.stream.write("".join(self.lines(flows, wall)))

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
            extra = self.tail or (lambda e: "")
            heads = (json_line(r.entry, wall)[:-2] + extra(r.entry) for r in rows)
        else:
            heads = (line[:-2] for line in self.lines([r.entry for r in rows], wall))
        self.write((rates % ((head,) + tuple(_num(v) for v in rate_values(r)))
                    for head, r in zip(heads, rows)), wall)


class CsvWriter(Writer):
    """CSV with a header row (once); status names joined with '|'.
    ``enrich`` (an Enrichment) adds its FIELDS columns."""

    def __init__(self, stream, enrich=None, keep=None, redact=None):
        self.stream = stream
        self.enrich = enrich
        self.keep = keep
        self.redact = redact
        import csv          # (not at import: --json has no use for it)
        self._writer = csv.writer(stream, lineterminator="\n")
        self._header = False

    def _columns(self):
        from ..enrich.bundle import FIELDS
        return COLUMNS + (FIELDS if self.enrich is not None else ())

    def write_flows(self, flows, now):
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
            yield csv_row(full_record(f, now, enrich, redact))


class OnceCsv(CsvWriter):
    """``--once`` CSV a datagram at a time (no table: ~250 B a row kept
    instead of ~2.8 KB), written when the dump has ended, so that an
    interrupted dump is redone instead of leaving its rows written."""

    spools = True

    def __init__(self, stream, enrich=None, keep=None, redact=None):
        super().__init__(Spool(), enrich, keep, redact)
        self.out = stream

    def write_batch(self, rows, flows, wall, fields=None):
        self._head(self._columns())
        self._writer.writerows(self._rows(flows, wall))

    def reset(self):
        self.stream.parts.clear()
        self._header = False

    def finish(self, wall):
        self._head(self._columns())
        self.stream.into(self.out)
        self.out.flush()


class GroupWriter(Writer):
    """JSON Lines or CSV of an aggregate view (--view process|host|country|
    iface): one record per group per snapshot."""

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
        self._csv = None
        if fmt == "csv":
            import csv
            self._csv = csv.writer(stream, lineterminator="\n")
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
            import json
            self.stream.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in recs))
        self.stream.flush()
