"""The filter language in the live view's '/' prompt, in a private tmux
server fed by a recorded dump (no kernel): what the table keeps, and a
mistake shown at its column in the prompt line."""

import os
import shutil
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIXED = os.path.join(REPO, "tests", "fixtures", "ctnetlink-mixed.rec")

from tests.tmuxutil import Tmux, flowtop_screen, pane_command, rows_of  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="no tmux")

WAIT = 5


@pytest.fixture
def screen():
    with flowtop_screen("i15b-flt", ["--replay", MIXED, "--loopback", "-n"], 160, 30,
                        WAIT) as start:
        yield start


def table(ls):
    try:
        return rows_of(ls)
    except ValueError:
        return None


def test_an_expression_typed_at_the_prompt_keeps_only_matching_flows(screen):
    tm = screen([])
    everything = tm.wait_for(lambda ls: len(rows_of(ls)) == 14, WAIT, "all 14 flows")
    assert any(not r["DESTINATION"].startswith("10.9.0.") for r in rows_of(everything))
    tm.send("/")
    tm.type("dst=10.9.0.0/24 and not proto=tcp")
    tm.send("Enter")
    lines = tm.wait_for(lambda ls: "dst=10.9.0.0/24 and not proto=tcp" in ls[1]
                        and "filter:" not in ls[-1], WAIT, "the whole filter applied")
    rows = rows_of(lines)
    assert rows and all(r["DESTINATION"].startswith("10.9.0.") and r["PROTO"] != "tcp"
                        for r in rows), rows


def test_a_mistake_points_at_its_column_and_enter_keeps_the_prompt(screen):
    tm = screen([])
    tm.send("/")
    tm.type("dport=443 and dst=1.2.3")
    lines = tm.wait_for(lambda ls: "1.2.3_" in ls[-1], WAIT, "the typed text")
    assert "<- column 19: not an address or network: '1.2.3'" in lines[-1]
    assert len(rows_of(lines)) == 14          # a mistake filters nothing
    tm.send("Enter")                          # stays: the mistake must be fixed or cleared
    tm.send("BSpace")
    tm.send("BSpace")
    tm.send("BSpace")
    tm.send("BSpace")
    tm.send("BSpace")
    tm.type("10.9.0.3")
    tm.send("Enter")
    lines = tm.wait_for(lambda ls: "dst=10.9.0.3" in ls[1] and "filter:" not in ls[-1]
                        and table(ls) is not None and len(table(ls)) == 1, WAIT,
                        "the fixed filter applied")
    assert rows_of(lines)[0]["DESTINATION"] == "10.9.0.3:443", lines


def test_filter_option_applies_from_the_start(screen):
    tm = screen(["--filter", "proto=icmpv6"])
    lines = tm.wait_for(lambda ls: table(ls) is not None and len(table(ls)) == 2, WAIT,
                        "the two ICMPv6 flows")
    assert all(r["PROTO"] == "icmpv6" for r in rows_of(lines))
    assert "proto=icmpv6" in lines[1]


def test_plain_words_still_search_the_shown_text(screen):
    tm = screen([])
    tm.send("/")
    tm.type("mdns")
    tm.send("Enter")
    lines = tm.wait_for(lambda ls: "/mdns" in ls[1], WAIT, "the filter in the status line")
    rows = rows_of(lines)
    assert rows and all("mdns" == r["SERVICE"] for r in rows), rows


def test_w_saves_the_view_and_the_next_start_reads_it_options_winning(tmp_path):
    cfg = tmp_path / "cfg"
    rc = cfg / "flowtop" / "flowtoprc"

    def start(tm, extra):
        argv = ["env", "TERM=xterm-256color", "LANG=C.UTF-8", "LC_ALL=C.UTF-8",
                "XDG_CONFIG_HOME=" + str(cfg), "PYTHONPATH=" + REPO, sys.executable, "-m",
                "flowtop", "--no-sysctl", "--replay", MIXED, "-n"] + extra
        tm.start(pane_command(argv, str(tmp_path)), 160, 30, str(tmp_path))
        return tm.wait_for(lambda ls: " flows" in ls[0] and "[" in ls[1], WAIT, "the recording")

    tm = Tmux("i15b-rc")
    try:
        start(tm, [])
        tm.send("L")                     # loopback flows shown
        tm.send("o")                     # sort: bytes
        tm.send("/")
        tm.type("proto=udp or proto=tcp")
        tm.send("Enter")
        tm.send("Tab")                   # Processes
        tm.send("Tab")                   # Hosts
        tm.send("W")
        lines = tm.wait_for(lambda ls: "settings saved to" in ls[-1], WAIT, "the answer to W")
        assert str(rc) in lines[-1]
        text = rc.read_text()
        for line in ("view = host", "sort = bytes", "loopback = yes",
                     "filter = proto=udp or proto=tcp"):
            assert line in text.splitlines(), text
        tm.send("q")
        tm.kill()
        tm = Tmux("i15b-rc2")
        lines = start(tm, [])
        assert "[Hosts]" in lines[1] and "proto=udp or proto=tcp" in lines[1], lines[1]
        assert "sort bytes" in lines[1]
        tm.kill()
        tm = Tmux("i15b-rc3")
        lines = start(tm, ["--view", "flows", "--sort", "age"])     # the command line wins
        assert "[Flows]" in lines[1] and "sort age" in lines[1], lines[1]
        assert "proto=udp or proto=tcp" in lines[1]                  # what it did not say stays
    finally:
        tm.kill()
