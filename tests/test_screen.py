"""The curses view in a private tmux server, fed by a recorded dump
(``--replay``: no kernel, no root).  Each test reads the screen back with
``capture-pane`` and checks what a user would see.

The recordings hold one dump each: the screen keeps showing it after the
replay ends, and rates stay unknown ("-").
"""

import os
import shutil
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "fixtures")

from tests.tmuxutil import box, flowtop_screen, parse_table, read_exit, rows_of  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="no tmux")

WAIT = 5                 # seconds any one screen change may take


@pytest.fixture
def screen():
    """start(args, width, height, lang) -> the Tmux running flowtop on a recording."""
    with flowtop_screen("i11c-scr", wait=WAIT) as start:
        yield start


def rec(name):
    return ["--replay", os.path.join(FIXTURES, name)]


def status(ls):
    return ls[1]


def test_at_80_columns_the_status_line_keeps_pause_filters_and_hidden_protocols(screen):
    tm = screen(rec("ctnetlink-mixed.rec"), 80, 24)
    tm.send("p")
    tm.send("U")
    tm.send("/")
    tm.type("10.9")
    tm.send("Enter")
    lines = tm.wait_for(lambda ls: "/10.9" in status(ls), WAIT, "the text filter in the status")
    line = status(lines)
    assert len(line) <= 80
    for what in ("PAUSED", "only tcp,dccp,icmp,sctp,other", "no loopback", "/10.9"):
        assert what in line, (what, line)
    # every view's name comes back when there is room
    tm.resize(200, 24)
    tm.wait_for(lambda ls: status(ls).startswith("[Flows] Processes Hosts Countries Interfaces")
                and "PAUSED" in status(ls), WAIT, "the view tabs at 200 columns")


def test_esc_followed_at_once_by_a_key_counts_both(screen):
    tm = screen(rec("ctnetlink-mixed.rec") + ["--loopback"], 200, 24)
    tm.send("/")
    tm.type("zz")
    tm.send("Enter")
    tm.wait_for(lambda ls: "filter /zz" in status(ls), WAIT, "the filter kept")
    tm.send_bytes(b"\x1bp")              # Esc and p in one read, as a paste or slow link gives
    lines = tm.wait_for(lambda ls: "PAUSED" in status(ls), WAIT, "p after Esc")
    assert "/zz" not in status(lines), lines   # and the Esc itself cleared the filter
    # an escape sequence this terminfo does not know is still swallowed whole
    tm.send_bytes(b"\x1b[99~p")
    tm.wait_for(lambda ls: "PAUSED" not in status(ls), WAIT, "p after the unknown sequence")


def test_a_cursor_key_split_by_a_slow_link_is_still_that_key(screen):
    tm = screen(rec("ctnetlink-mixed.rec") + ["--loopback", "-n", "--sort", "+port"], 120, 30)
    rows = rows_of(tm.capture())
    tm.send("Enter")

    def original(ls):
        return next(l for l in ls if "original" in l).split("->")[1].split()[0]

    tm.wait_for(lambda ls: original(ls) == rows[0]["DESTINATION"], WAIT, "the details")
    tm.send_bytes(b"\x1b[")               # Down (ESC [ B) in two pieces, 60 ms apart
    time.sleep(0.06)
    tm.send_bytes(b"B")
    lines = tm.wait_for(lambda ls: original(ls) == rows[1]["DESTINATION"], WAIT,
                        "the next flow's details")
    tm.send("Escape")
    lines = tm.wait_for(lambda ls: not any("Flow details" in l for l in ls), WAIT, "closed")
    assert "B" not in [w for w in status(lines).split()], lines   # no stray B key (units)
    assert rows_of(lines)[0]["TX"] == rows[0]["TX"], (rows[0], rows_of(lines)[0])


def test_right_stops_at_the_widest_row_and_a_resize_brings_the_offset_back(screen):
    tm = screen(rec("ctnetlink-mixed.rec") + ["--loopback", "--wide"], 80, 24)
    title = tm.capture()[2]
    assert title.startswith("PROTO")
    for _ in range(40):
        tm.send("Right")
    lines = tm.wait_for(lambda ls: ls[2].rstrip().endswith("AGE") and not ls[2].startswith("PROTO"),
                        WAIT, "the last column at the right edge")
    assert len(lines[2]) >= 70, lines[2]            # not scrolled into emptiness
    tm.send("Left")
    tm.wait_for(lambda ls: not ls[2].rstrip().endswith("AGE"), WAIT, "Left scrolls back")
    for _ in range(3):
        tm.send("Right")
    tm.resize(300, 24)
    tm.wait_for(lambda ls: ls[2].startswith("PROTO") and ls[2].rstrip().endswith("AGE"), WAIT,
                "the whole row once it fits")


def _has_utf8_locale():
    import locale
    saved = locale.setlocale(locale.LC_CTYPE)
    try:
        locale.setlocale(locale.LC_CTYPE, "C.UTF-8")
        return True
    except locale.Error:
        return False
    finally:
        locale.setlocale(locale.LC_CTYPE, saved)


@pytest.mark.skipif(not _has_utf8_locale(), reason="no C.UTF-8 locale (the marks are '*')")
def test_the_sort_column_is_marked_in_the_column_titles(screen):
    tm = screen(rec("ctnetlink-mixed.rec") + ["--loopback"], 120, 24)
    tm.wait_for(lambda ls: "RATE_TX\u25bc" in ls[2] and "RATE_RX\u25bc" in ls[2], WAIT,
                "the rate columns marked")
    tm.send("o")
    tm.wait_for(lambda ls: " TX\u25bc" in ls[2] and "RATE_TX\u25bc" not in ls[2], WAIT,
                "the bytes columns marked")
    tm.send("r")
    tm.wait_for(lambda ls: " TX\u25b2" in ls[2], WAIT, "ascending")
    for _ in range(3):                   # packets, age, proto
        tm.send("o")
    lines = tm.wait_for(lambda ls: "PROTO\u25b2" in ls[2], WAIT, "proto, ascending")
    assert parse_table(lines)[1][0] == "PROTO", lines[2]      # the table parser reads it


def test_a_view_whose_flows_are_all_on_loopback_says_so(screen):
    tm = screen(rec("ctnetlink-mixed.rec") + ["-4", "-I"], 80, 24)
    tm.wait_for(lambda ls: any("1 loopback flow hidden \u2014 L shows them" in l for l in ls),
                WAIT, "the hint")
    tm.send("L")
    tm.wait_for(lambda ls: len(rows_of(ls)) == 1, WAIT, "the loopback flow")


def test_up_and_down_in_the_details_move_to_the_next_flow(screen):
    tm = screen(rec("ctnetlink-mixed.rec") + ["--loopback", "-n", "--sort", "+port"], 100, 30)
    rows = rows_of(tm.capture())
    assert rows[0]["DESTINATION"] != rows[1]["DESTINATION"]
    tm.send("Enter")

    def original(ls):
        line = next(l for l in ls if "original" in l)
        return line.split("->")[1].split()[0]

    lines = tm.wait_for(box, WAIT, "the details")
    assert original(lines) == rows[0]["DESTINATION"]
    tm.send("Down")
    lines = tm.wait_for(lambda ls: box(ls) and original(ls) == rows[1]["DESTINATION"], WAIT,
                        "the second flow")
    tm.send("Up")
    tm.wait_for(lambda ls: original(ls) == rows[0]["DESTINATION"], WAIT, "the first again")
    tm.send("Escape")
    tm.wait_for(lambda ls: not any("Flow details" in l for l in ls), WAIT, "closed")


def test_the_header_counts_flows_without_counters(screen):
    tm = screen(rec("ctnetlink-acct-off.rec") + ["--loopback", "--view", "host"], 100, 24)
    lines = tm.wait_for(lambda ls: "14 without counters" in ls[0], WAIT, "the count")
    assert "TX -  RX -" in lines[0], lines[0]
    # the Hosts totals: absent, with the flows they could not count
    assert "NOACCT" in lines[2], lines[2]
    assert not any(" 0B" in l for l in lines[3:]), lines
    tm.send("q")
    assert read_exit(tm.workdir, WAIT)[0] == 0
