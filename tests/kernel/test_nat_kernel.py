"""NAT in the flow list: the NAT flag column (S, D) and, with --wide, the
translated ends, against ``conntrack -L`` in a namespace whose nftables
ruleset DNATs one port and SNATs one address (all on its own loopback)."""

import os
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests import ctparse  # noqa: E402
from tests import enrichutil as eu  # noqa: E402
from tests.nsutil import Netns, kernel_ready  # noqa: E402
from tests.tmuxutil import parse_table  # noqa: E402

_READY, _WHY = kernel_ready("tmux")
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]

AF_INET = 2
# 10.99.0.1: the client's address; .4 runs the servers; .5:6000 is DNATed
# to .4:5001; packets to .3 leave SNATed to .2 (then DNATed to .4 too).
ADDRS = ("10.99.0.1", "10.99.0.2", "10.99.0.3", "10.99.0.4", "10.99.0.5")
RULESET = """\
table ip i11c_nat {
    chain out {
        type nat hook output priority -100; policy accept;
        ip daddr 10.99.0.5 tcp dport 6000 dnat to 10.99.0.4:5001
        ip daddr 10.99.0.3 tcp dport 5002 dnat to 10.99.0.4:5002
    }
    chain post {
        type nat hook postrouting priority 100; policy accept;
        ip daddr 10.99.0.4 tcp dport 5002 snat to 10.99.0.2
    }
}
"""


def expected(e):
    """(NAT flag, NAT_TO text) of a conntrack -L entry, from its tuples."""
    o, r = e["orig"], e["reply"]
    snat = (r["dst"], r.get("dport")) != (o["src"], o.get("sport"))
    dnat = (r["src"], r.get("sport")) != (o["dst"], o.get("dport"))
    to = []
    if snat:
        to.append("src %s:%d" % (r["dst"], r["dport"]))
    if dnat:
        to.append("dst %s:%d" % (r["src"], r["sport"]))
    return ("S" if snat else "") + ("D" if dnat else ""), " ".join(to)


def test_nat_flows_are_flagged_in_the_list_and_wide_shows_the_translated_ends(tmp_path):
    with Netns("i11cnat", ruleset=RULESET) as ns:
        for a in ADDRS:
            ns.run("ip", "addr", "add", a + "/32", "dev", "lo")
        eu.server(ns, "tcp", AF_INET, "10.99.0.4", 5001)
        eu.server(ns, "tcp", AF_INET, "10.99.0.4", 5002)
        eu.server(ns, "tcp", AF_INET, "10.99.0.4", 5003)
        eu.client(ns, [("tcp", AF_INET, "10.99.0.5", 6000, 100),      # DNAT
                       ("tcp", AF_INET, "10.99.0.3", 5002, 100),      # SNAT + DNAT
                       ("tcp", AF_INET, "10.99.0.4", 5003, 100)])     # none
        time.sleep(0.3)
        entries = [e for e in ctparse.parse(ns.conntrack_list()) if e["proto"] == "tcp"]
        want = {"%s:%d" % (e["orig"]["dst"], e["orig"]["dport"]): expected(e) for e in entries}
        assert sorted(f for f, _t in want.values()) == ["", "D", "SD"], entries

        r = ns.flowtop("--once", "-n", "-G", "--no-process", "-T", "--wide", check=True)
        _head, titles, rows = parse_table(r.stdout.splitlines())
        assert "NAT" in titles and "NAT_TO" in titles, r.stdout
        got = {row["DESTINATION"]: (row["NAT"], row["NAT_TO"]) for row in rows}
        assert got == want, r.stdout

        # the live list at 80 columns keeps the flag (not the translated ends)
        with eu.LiveView(ns, tmp_path / "pane", "i11cnat", "-n", "-G", "--no-process", "-T",
                         width=80, height=24) as lv:
            lines = lv.wait(lambda ls: len(lv.rows(ls)) == len(want), 15, "the flows")
            got = {row["DESTINATION"]: row["NAT"] for row in lv.rows(lines)}
            assert got == {d: f for d, (f, _t) in want.items()}, lines
            assert "NAT_TO" not in lines[2]
            assert lv.quit() == 0, lv.stderr()
