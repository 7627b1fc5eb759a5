"""views/header.py: the live view's status line says when a long dump is
being read (a flood's 1-2.5 s dumps left the screen standing still)."""

from flowtop import cli
from flowtop.collector import Snapshot
from flowtop.views.header import reading_text, status_line
from flowtop.views.state import ViewState


def test_a_dump_says_nothing_for_its_first_half_second_then_how_far_it_has_read():
    assert reading_text(None, 10.0) == ""
    assert reading_text((10.0, 5000), 10.4) == ""
    assert reading_text((10.0, 85000), 10.6) == "reading the kernel's table: 85000 flows so far"


def test_at_80_columns_the_status_line_keeps_a_dumps_progress():
    st = ViewState(cli.parse([]))
    snap = Snapshot([], 0.0, (0, 0, False), None, 1, rates_every=3.0, resyncs=2)
    text = reading_text((0.0, 123456), 1.0)
    line, note = status_line(st, snap, {"acct": True, "timestamp": True}, 0, 80, text)
    assert len(line) <= 79 and text in line, line
    assert text not in status_line(st, snap, {"acct": True, "timestamp": True}, 0, 80)[0]


def test_an_empty_table_says_whether_a_filter_or_hidden_loopback_flows_empty_it():
    from flowtop.views.header import empty_text
    st = ViewState(cli.parse([]))
    assert empty_text(st, 0) == "no flows"
    assert empty_text(st, 1) == "1 loopback flow hidden \u2014 L shows them"
    assert empty_text(st, 3) == "3 loopback flows hidden \u2014 L shows them"
    st.filter = "10.1"
    assert empty_text(st, 3) == "no flows match"
    assert empty_text(ViewState(cli.parse(["--loopback"])), 3) == "no flows"
