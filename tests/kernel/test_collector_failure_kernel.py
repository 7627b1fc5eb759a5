"""A dying collector ends the live view: one line, status 1, terminal and
sysctls restored.

flowtop runs in a tmux pane in its own ``ftest-i17cf-*`` namespace with
accounting and timestamps off, so its sysctl guard switches them on.  Its
enrichment tick is made to raise a KeyError on the third tick (as the route
cache's race did): a program detail no user can reach on purpose, injected
by a wrapper that patches the method and then runs flowtop's own entry point.
"""

import os
import sys

import pytest

from tests.nsutil import REPO, Netns, kernel_ready
from tests.tmuxutil import Tmux, pane_command, read_exit, screen_text

_READY, _WHY = kernel_ready("tmux")
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]

ACCT = "net.netfilter.nf_conntrack_acct"
TIMESTAMP = "net.netfilter.nf_conntrack_timestamp"

WRAPPER = r"""
import sys
sys.path.insert(0, sys.argv[1])
sys.argv = ["flowtop"] + sys.argv[2:]
from flowtop.enrich import bundle
ticks = [0]
real = bundle.Enrichment.tick
def tick(self, table):
    ticks[0] += 1
    if ticks[0] >= 3:
        raise KeyError(("203.0.113.7", 0))
    return real(self, table)
bundle.Enrichment.tick = tick
from flowtop.cli import run
run()
"""


def test_a_collector_exception_ends_the_live_view_with_one_line_and_status_1(tmp_path):
    with Netns("i17cf") as ns, Tmux("i17cf") as tm:
        for name in (ACCT, TIMESTAMP):
            ns.run("sysctl", "-q", "-w", "%s=0" % name)
        ns.run("ping", "-c", "1", "-W", "1", "127.0.0.1")
        argv = ns.argv("env", "TERM=xterm-256color", sys.executable, "-c", WRAPPER, REPO,
                       "--loopback", "-n", "-G", "-t", "0.3")
        tm.start(pane_command(argv, str(tmp_path)), 100, 30, str(tmp_path))
        status, stty_after = read_exit(str(tmp_path), 20)
        with open(os.path.join(str(tmp_path), "stderr")) as f:
            err = f.read()
        with open(os.path.join(str(tmp_path), "stty.before")) as f:
            stty_before = f.read()
        assert status == 1, (status, err, screen_text(tm.capture()))
        assert err.count("\n") == 1 and err.startswith("flowtop: internal error"), err
        assert "KeyError" in err and "203.0.113.7" in err and "Traceback" not in err, err
        assert stty_after == stty_before            # curses left the terminal as it was
        assert (ns.sysctl(ACCT), ns.sysctl(TIMESTAMP)) == ("0", "0")
