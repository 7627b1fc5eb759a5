"""The flow list and its totals against ``conntrack -L`` in a namespace:
NAT flags and translated ends, flows older than accounting (no counters),
and interface filters naming no interface."""

import os
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests import ctparse  # noqa: E402
from tests import enrichutil as eu  # noqa: E402
from tests.nsutil import SYSCTLS, Netns, kernel_ready  # noqa: E402
from tests.tmuxutil import parse_table  # noqa: E402

_READY, _WHY = kernel_ready("tmux")
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]

AF_INET = 2
ACCT = "net.netfilter.nf_conntrack_acct"

# -- NAT in the list ----------------------------------------------------------------------

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


# -- flows without counters ------------------------------------------------------------



def test_flows_older_than_accounting_are_counted_in_the_header_with_the_reason(tmp_path):
    with Netns("i11cacct", sysctls=dict(SYSCTLS, **{ACCT: 0})) as ns:
        eu.server(ns, "tcp", AF_INET, "127.0.0.1", 5001)
        eu.client(ns, [("tcp", AF_INET, "127.0.0.1", 5001, 100)])       # before: no counters
        with eu.LiveView(ns, tmp_path / "pane", "i11cacct", "--loopback", "-n", "-G",
                         "--no-process", width=200, height=30) as lv:
            lv.wait(lambda ls: "acct on" in ls[1], 10, "accounting switched on")
            eu.client(ns, [("tcp", AF_INET, "127.0.0.1", 5001, 100)])   # after: counters
            time.sleep(0.3)
            entries = ctparse.parse(ns.conntrack_list())
            lacking = [e for e in entries if "bytes" not in e["orig"]]
            assert len(entries) == 2 and len(lacking) == 1, entries
            # a flow first known from its NEW event has its counters from the next dump on
            lines = lv.wait(lambda ls: len(lv.rows(ls)) == 2 and "without counters" in ls[0]
                            and ", 2 without" not in ls[0], 10, "both flows, one counted")
            assert ", 1 without counters (older than accounting" in lines[0], lines
            lv.tm.send("Tab")
            lv.tm.send("Tab")
            lines = lv.wait(lambda ls: "[Hosts]" in ls[1] and "NOACCT" in ls[2], 10,
                            "the Hosts totals")
            row = lines[3].split()
            titles = lines[2].replace("REMOTE HOST", "HOST").split()
            assert row[0] == "127.0.0.1", lines
            assert row[titles.index("FLOWS")] == "2" and row[titles.index("NOACCT")] == "1", lines
            assert lv.quit() == 0, lv.stderr()


# -- interface filters --------------------------------------------------------------------


def test_a_missing_interface_is_warned_about_once_and_an_existing_one_is_not():
    with Netns("i11cif") as ns:
        ns.run("ip", "link", "add", "i11cv0", "type", "veth", "peer", "name", "i11cv1")
        r = ns.flowtop("--once", "-n", "-G", "--in-iface", "eht0", "--out-iface", "i11cv+")
        assert r.returncode == 0, r.stderr
        lines = r.stderr.splitlines()
        assert lines == ["flowtop: no interface matches --in-iface eht0 "
                         "(this host has: i11cv0, i11cv1, lo)"], r.stderr
        r = ns.flowtop("-c", "-n", "-G", "--in-iface", "lo", "--out-iface", "i11cv0",
                       "--once")
        assert r.returncode == 0 and r.stderr == "", r.stderr


# -- numbers and processes on the live screen ----------------------------------------------

def test_a_large_raw_counter_is_shown_whole_on_the_screen(tmp_path):
    with Netns("i11cbig") as ns:
        eu.server(ns, "tcp", AF_INET, "127.0.0.1", 5003)
        eu.client(ns, [("tcp", AF_INET, "127.0.0.1", 5003, 150 * 1000 * 1000)])
        with eu.LiveView(ns, tmp_path / "pane", "i11cbig", "--loopback", "-n", "-G",
                         "--no-process", "--units", "raw", width=120, height=20) as lv:
            lines = lv.wait(lambda ls: any(r["DESTINATION"] == "127.0.0.1:5003"
                                           for r in lv.rows(ls)), 10, "the big flow")
            (row,) = [r for r in lv.rows(lines) if r["DESTINATION"] == "127.0.0.1:5003"]
            (e,) = [e for e in ctparse.parse(ns.conntrack_list())
                    if e["orig"].get("dport") == 5003]
            assert row["TX"].endswith("B") and int(row["TX"][:-1]) >= 150 * 1000 * 1000, row
            assert int(row["TX"][:-1]) <= e["orig"]["bytes"], (row, e)
            assert not any("\u2026" in l for l in lines), lines
            assert lv.quit() == 0, lv.stderr()


def test_n_groups_the_processes_view_per_program_name(tmp_path):
    with Netns("i11cname") as ns:
        eu.server(ns, "tcp", AF_INET, "127.0.0.1", 5004)
        a = eu.client(ns, [("tcp", AF_INET, "127.0.0.1", 5004, 10)])
        b = eu.client(ns, [("tcp", AF_INET, "127.0.0.1", 5004, 10)])
        comm = eu.proc_comm(a["pid"])
        with eu.LiveView(ns, tmp_path / "pane", "i11cname", "--loopback", "-n", "-G",
                         "--view", "process", width=120, height=20) as lv:
            per_pid = {"%s/%d" % (comm, p["pid"]) for p in (a, b)}
            lv.wait(lambda ls: per_pid <= set(eu.group_table("\n".join(ls))), 10,
                    "a row per client process")
            lv.tm.send("n")
            lines = lv.wait(lambda ls: "per name" in ls[1], 10, "per name")
            totals = eu.group_table("\n".join(lines))
            assert set(totals) == {comm}, totals
            assert totals[comm][0] == 2, totals
            lv.tm.send("n")
            lv.wait(lambda ls: per_pid <= set(eu.group_table("\n".join(ls))), 10, "per PID again")
            assert lv.quit() == 0, lv.stderr()
