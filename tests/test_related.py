"""Helped and RELATED flows: views.related over the recorded FTP exchange
(ctnetlink-helper.rec), and the details pane in tmux (``--replay``: no root)."""

import os
import shutil
import sys
import tempfile

import pytest

from flowtop import conntrack
from flowtop.views import related

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELPER = os.path.join(REPO, "tests", "fixtures", "ctnetlink-helper.rec")
WAIT = 5


def flows():
    with open(HELPER, "rb") as f:
        return next(conntrack.replay(f))[1]


class Row:
    def __init__(self, entry):
        self.entry = entry


def test_the_control_flow_lists_the_data_flow_it_expected_and_no_other():
    fs = flows()
    control, = [f for f in fs if f.dport == 21]
    data, = [f for f in fs if f.dport != 21]
    rows = [Row(f) for f in fs]
    assert [r.entry for r in related.children(control, rows)] == [data]
    assert related.children(data, rows) == []          # not helped: no master of anything
    assert related.master_of(data.related) == related.master_tuple(control)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="no tmux")
def test_the_details_pane_shows_helper_labels_master_and_the_related_flow_under_its_master():
    from tests.tmuxutil import Tmux, box, pane_command
    fs = flows()
    control, = [f for f in fs if f.dport == 21]
    data, = [f for f in fs if f.dport != 21]
    workdir = tempfile.mkdtemp(prefix="i15a-rel-")
    tm = Tmux("i15a-rel")
    try:
        argv = ["env", "TERM=xterm-256color", "LANG=C.UTF-8", "LC_ALL=C.UTF-8",
                "PYTHONPATH=" + REPO, sys.executable, "-m", "flowtop", "--no-sysctl",
                "--replay", HELPER, "--loopback", "-n", "-P", "--sort", "+port"]
        tm.start(pane_command(argv, workdir), 120, 40, workdir)
        tm.wait_for(lambda ls: " flows" in ls[0] and "[" in ls[1], WAIT, "the recording")
        tm.send("Enter")
        panes = [box(tm.wait_for(box, WAIT, "details"))]
        tm.send("Down")                     # the other flow's details
        panes.append(box(tm.wait_for(lambda ls: box(ls) and _words(box(ls), "original")
                                     != _words(panes[0], "original"), WAIT, "the other flow")))
        by_port = {int(_words(p, "original")[2].rsplit(":", 1)[1]): p for p in panes}
        ctl, dat = by_port[21], by_port[data.dport]
        assert _words(ctl, "helper") == ["ftp"] and _words(ctl, "labels") == ["5", "70"], ctl
        assert _words(ctl, "related")[:4] == ["tcp", "127.0.0.1:%d" % data.sport, "->",
                                              "127.0.0.1:%d" % data.dport], ctl
        assert _words(dat, "master") == ["tcp", "127.0.0.1:%d" % control.sport, "->",
                                         "127.0.0.1:21"], dat
        assert _words(dat, "helper") is None and _words(dat, "related") is None, dat
    finally:
        tm.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def _words(lines, label):
    """The words after ``label`` on its line of the details box, or None."""
    for line in lines:
        words = line.replace("\u2502", " ").replace("x ", " ").split()
        if label in words:
            return [w for w in words[words.index(label) + 1:] if w not in ("x", "\u2502")]
    return None
