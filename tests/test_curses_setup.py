"""The full-screen view driven by a replay in a tmux pane (no root, no kernel): its
set-up on terminals curses cannot drive (a TERM with no terminfo entry here), and a
damaged recording."""

import os
import shutil
import sys

import pytest

from tests.recutil import build, split
from tests.tmuxutil import Tmux, pane_command, read_exit, screen_text

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIXED = os.path.join(REPO, "tests", "fixtures", "ctnetlink-mixed.rec")

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


@pytest.mark.parametrize("term", ["xterm-kitty", "i11b-made-up-terminal", "x\x1b[31mred"],
                         ids=["kitty", "made-up", "escape-in-term"])
def test_unknown_term_falls_back_to_text_frames_with_one_line_and_no_traceback(tmp_path, term):
    wd = str(tmp_path)
    argv = ["env", "TERM=" + term, "PYTHONPATH=" + REPO, sys.executable, "-m", "flowtop",
            "-n", "-G", "--replay", MIXED]
    with Tmux("i11bterm") as tm:
        # the pane stays after flowtop ends, so its text frame can be read
        tm.start(pane_command(argv, wd) + "; sleep 60", 160, 30, wd)
        status, stty_after = read_exit(wd, 30)
        lines = tm.wait_for(lambda ls: any("PROTO" in l for l in ls), 10, "a text frame")
    with open(os.path.join(wd, "stderr")) as f:
        err = f.read()
    assert status == 0, err
    assert "Traceback" not in err and "\x1b" not in err, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("flowtop: no full-screen view (curses cannot set up TERM="), err
    assert "printing text frames; run with TERM=xterm-256color" in err, err
    assert any(l.startswith("14 flows (") for l in lines), screen_text(lines)
    with open(os.path.join(wd, "stty.before")) as f:
        assert stty_after == f.read()


def test_full_screen_replay_of_a_cut_recording_shows_its_intact_dumps_then_the_error(tmp_path):
    head, ((when, data),) = split(MIXED)
    cut = tmp_path / "cut.rec"
    cut.write_bytes(build(head, [(when + i, data) for i in range(3)])[:-100])
    wd = str(tmp_path)
    argv = ["env", "TERM=xterm-256color", "PYTHONPATH=" + REPO, sys.executable, "-m", "flowtop",
            "-n", "-G", "--loopback", "-t", "0.2", "--replay", str(cut)]
    with Tmux("i11bcut") as tm:
        tm.start(pane_command(argv, wd), 160, 30, wd)
        lines = tm.wait_for(lambda ls: "error: recording is cut short in dump 3" in ls[1], 10,
                            "the error in the header")
        assert "shown 14" in lines[1], screen_text(lines)
        tm.send("q")
        status, _ = read_exit(wd, 10)
    with open(os.path.join(wd, "stderr")) as f:
        err = f.read()
    assert status == 0 and "Traceback" not in err, err
