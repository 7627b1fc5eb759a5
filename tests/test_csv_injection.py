"""CSV cells a spreadsheet would run as formulas are quoted (OWASP: a
leading single quote) in every CSV output, whatever the column; JSON keeps
the value as it came."""

import csv
import io
import json

from flowtop import cli, main
from flowtop.enrich.bundle import Enrichment
from flowtop.enrich.geoip import GeoRecord
from flowtop.enrich.process import ProcInfo
from tests.test_bundle import FakeProcesses
from tests.test_redact import MIXED, recorded_table

# (a CR never reaches a writer: every provider's strings pass text.sanitize)
HOSTILE = ("=cmd|' /C calc'!A0", "+SUM(1+1)", "-2+3", "@SUM(A1)", "\tlead")
FORMULA = ("=", "+", "-", "@", "\t", "\r")


class Hostile:
    """Every provider answers with a formula: process, user, peer, service,
    host name, GeoIP country/city, interfaces."""

    def __init__(self):
        self.n = 0

    def _next(self):
        self.n += 1
        return HOSTILE[self.n % len(HOSTILE)]

    def procs(self, e):
        return ProcInfo(7, self._next(), self._next()), ProcInfo(8, self._next(), None)

    def of_flow(self, *a, **kw):
        return self._next()

    def names(self, l4proto):
        return {}

    def wait(self, addrs, timeout):
        return {}

    def geo(self, addr):
        return GeoRecord(self._next(), self._next(), self._next(), 1, self._next(), None)


class HostileIfaces(Hostile):
    def of_flow(self, e):
        return self._next(), self._next()

    def prefetch(self, entries):
        pass


def hostile_enrichment():
    h = Hostile()
    dns = type("Dns", (), {"lookup": lambda self, a: h._next(), "wait": h.wait})()
    geo = type("Geo", (), {"lookup": lambda self, a: h.geo(a)})()
    e = Enrichment(h, process=FakeProcesses(h.procs), dns=dns, geo=geo, ifaces=HostileIfaces())
    e.tick([])
    return e


def csv_of(*argv):
    table, when = recorded_table()
    opts = cli.parse(["--replay", MIXED] + list(argv))
    out = io.StringIO()
    main.make_writer(opts, out, hostile_enrichment()).write_rows(table, when)
    return list(csv.reader(io.StringIO(out.getvalue(), newline="")))


def test_every_csv_cell_from_outside_that_starts_a_formula_is_quoted():
    for argv in (("--csv",), ("--csv", "--view", "process")):
        rows = csv_of(*argv)
        assert len(rows) > 1
        quoted = 0
        for row in rows[1:]:
            for cell in row:
                assert not cell.startswith(FORMULA), (argv, cell, row)
                if cell.startswith("'") and cell[1:].startswith(FORMULA):
                    assert cell[1:].startswith(HOSTILE)
                    quoted += 1
        assert quoted >= (len(rows) - 1) // 2, argv     # the test bites


def test_each_kind_of_outside_field_is_quoted():
    head, *rows = csv_of("--csv")
    seen = set()
    for row in rows:
        rec = dict(zip(head, row))
        for col in ("process", "user", "peer_process", "service", "src_host", "dst_host",
                    "src_country", "src_city", "dst_city", "in_iface", "out_iface"):
            if rec[col] or col != "service":        # GRE has no service
                assert rec[col].startswith("'") and rec[col][1:] in HOSTILE, (col, rec[col])
                seen.add(col)
    assert len(seen) == 11


def test_json_keeps_the_values_as_they_came():
    table, when = recorded_table()
    opts = cli.parse(["--replay", MIXED, "--json"])
    out = io.StringIO()
    main.make_writer(opts, out, hostile_enrichment()).write_rows(table, when)
    recs = [json.loads(ln) for ln in out.getvalue().splitlines()]
    assert all(r["process"] in HOSTILE for r in recs)


def test_flowtops_own_labels_and_numbers_are_left_alone():
    from flowtop.views.export import csv_cell
    assert csv_cell("--") == "--"             # GeoIP's special-range country
    assert csv_cell(-1) == -1 and csv_cell(None) == ""
    assert csv_cell("10.9.0.1") == "10.9.0.1" and csv_cell("-x") == "'-x"
    assert csv_cell("\rx") == "'\rx" and csv_cell("\tx") == "'\tx"
