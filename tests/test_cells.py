"""The text of a flow's cells: units, absent values, redaction."""

from flowtop.views.cells import Formatter

from tests.viewutil import FakeEnrich, state_of, table_of


def test_cells_show_absent_as_dash_and_redact():
    t, when = table_of()
    st = state_of("--loopback", "--redact-local")
    fmt = Formatter(st, FakeEnrich())
    row = next(r for r in t if r.entry.dport == 5001)
    cells = fmt.cells(row, when)
    assert cells["rate_tx"] == "-"               # first sight: rate unknown, not 0
    assert cells["dst"].startswith("local#")
    assert cells["bytes_rx"] == "70.3kB"
