"""Table health on the real kernel: the live view's header says count/max as
``conntrack -C`` and the namespace's nf_conntrack_max do, turns to the
warning colour with the rate of a trouble counter that moves (the per-CPU
``error`` statistic, moved by ICMP errors conntrack cannot parse), its
``C`` pane lists ``conntrack -S``, and ``--json --stats`` writes the same
as a header record."""

import json
import os
import re
import shutil
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.nsutil import Netns, kernel_ready, populate  # noqa: E402
from tests.tmuxutil import Tmux, box, pane_command  # noqa: E402

_READY, _WHY = kernel_ready("tmux")
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]

WAIT = 8
ICMPERR = os.path.join(REPO, "tests", "icmperr.py")
TABLE = re.compile(r"table (\d+)/(\d+) ([\d.]+)%")


def conntrack_stats(ns):
    """``conntrack -S``: {cpu: {name: value}} (chaintoolong spelt as ours)."""
    out = {}
    for line in ns.run("conntrack", "-S").stdout.splitlines():
        kv = dict(w.split("=", 1) for w in line.split() if "=" in w)
        cpu = int(kv.pop("cpu"))
        out[cpu] = {k.replace("chaintoolong", "chain_toolong"): int(v) for k, v in kv.items()}
    return out


def warn_colored(esc_line, text):
    """Whether ``text`` sits in yellow (SGR 33) on a ``capture-pane -e`` line."""
    i = esc_line.find(text)
    if i < 0:
        return False
    before = esc_line[:i]
    sgr = re.findall(r"\x1b\[([0-9;]*)m", before)
    return bool(sgr) and "33" in sgr[-1].split(";")


def test_the_header_shows_count_max_and_a_moving_trouble_counter_in_the_warning_colour():
    workdir = tempfile.mkdtemp(prefix="i15a-health-")
    tm = Tmux("i15a-health")
    try:
        with Netns("i15a-health") as ns:
            populate(ns)
            table_max = int(ns.sysctl("net.netfilter.nf_conntrack_max"))
            argv = ns.argv("env", "TERM=xterm-256color", "PYTHONPATH=" + REPO, sys.executable,
                           "-m", "flowtop", "--loopback", "-n", "--no-sysctl", "-t", "0.5")
            tm.start(pane_command(argv, workdir), 160, 40, workdir)
            count = int(ns.run("conntrack", "-C").stdout.split()[0])
            ls = tm.wait_for(lambda ls: TABLE.search(ls[0]) and
                             int(TABLE.search(ls[0]).group(1)) == count, WAIT, "table count/max")
            m = TABLE.search(ls[0])
            assert int(m.group(2)) == table_max
            assert abs(float(m.group(3)) - 100.0 * count / table_max) < 0.1
            assert "error" not in ls[0]
            esc = tm.capture(escapes=True)
            assert not warn_colored(esc[0], "table "), esc[0]
            # ICMP errors conntrack cannot parse, for a few seconds
            p = ns.popen(sys.executable, ICMPERR, "400", "4")
            tm.wait_for(lambda ls: re.search(r"error [\d.]+/s", ls[0]), WAIT,
                        "the error rate in the header")
            esc = tm.wait_for(lambda ls: warn_colored(ls[0], "table "), WAIT,
                              "the warning colour", escapes=True)
            p.wait(30)
            # the rate falls back to nothing once the errors stop
            tm.wait_for(lambda ls: "error" not in ls[0], WAIT, "the error rate gone")
            tm.send("C")
            ls = tm.wait_for(lambda ls: box(ls, "Conntrack statistics"), WAIT,
                             "the statistics pane")
            truth = conntrack_stats(ns)
            text = [l.strip(" x\u2502") for l in ls]
            head = next(l for l in text if l.startswith("cpu "))
            names = head.split()[1:]
            assert names[:2] == ["found", "invalid"] and "ins_fail" in names
            for cpu, values in truth.items():
                row = next(l for l in text if l.split()[:1] == [str(cpu)])
                got = row.split()[1:]
                assert int(got[names.index("error")]) == values["error"], (row, values)
                assert int(got[names.index("insert")]) == values["insert"], (row, values)
            total = next(l for l in text if l.startswith("all "))
            assert int(total.split()[1:][names.index("error")]) == sum(
                v["error"] for v in truth.values()) >= 400
    finally:
        tm.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def test_json_stats_writes_a_header_record_per_snapshot_like_conntrack_s():
    with Netns("i15a-stats") as ns:
        populate(ns)
        ns.run(sys.executable, ICMPERR, "30")
        r = ns.flowtop("--once", "--json", "--stats", "-n", "--no-sysctl", check=True)
        truth = conntrack_stats(ns)
        count = int(ns.run("conntrack", "-C").stdout.split()[0])
        table_max = int(ns.sysctl("net.netfilter.nf_conntrack_max"))
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    head, flows = lines[0], lines[1:]
    assert head["record"] == "stats" and all("record" not in f for f in flows)
    assert head["count"] == count == len(flows) and head["max"] == table_max
    assert head["rates"] is None                # one snapshot: no rates
    assert {c["cpu"]: {k: v for k, v in c.items() if k != "cpu"} for c in head["cpus"]} == truth
    assert head["totals"]["error"] == sum(v["error"] for v in truth.values()) >= 60


# One-datagram UDP flows to closed ports, each its own (address, port): N of them.
FILL = r"""
import socket, sys
n = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(n):
    port = 1024 + i % 60000
    a = i // 60000
    try:
        s.sendto(b"f", ("127.%d.%d.1" % (1 + a // 250, a % 250), port))
    except OSError:
        pass
"""


def test_a_full_table_is_said_full_with_the_drops_conntrack_s_counts():
    """The classic outage, for real: this namespace's entries reach the
    (global, read-only here) nf_conntrack_max, and new flows push out
    unreplied ones (early_drop) or are dropped."""
    table_max = int(open("/proc/sys/net/netfilter/nf_conntrack_max").read())
    if table_max > 300000:
        pytest.skip("nf_conntrack_max %d: too many flows to fill in a test" % table_max)
    with Netns("i15a-full") as ns:
        ns.run(sys.executable, "-c", FILL, str(table_max + 3000), timeout=300)
        r = ns.flowtop("--once", "--json", "--stats", "-n", "-G", "--no-iface", "--no-sysctl",
                       check=True, timeout=300)
        truth = conntrack_stats(ns)
        count = int(ns.run("conntrack", "-C").stdout.split()[0])
        # and the live view says so, in the warning colour
        workdir = tempfile.mkdtemp(prefix="i15a-full-")
        tm = Tmux("i15a-full")
        try:
            argv = ns.argv("env", "TERM=xterm-256color", "PYTHONPATH=" + REPO, sys.executable,
                           "-m", "flowtop", "--loopback", "-n", "-G", "--no-sysctl")
            tm.start(pane_command(argv, workdir), 160, 30, workdir)
            # FULL, or NEARLY FULL once a few unreplied flows expired since the fill
            esc = tm.wait_for(lambda ls: "FULL" in re.sub(r"\x1b\[[0-9;]*m", " ", ls[0]).split()
                              and warn_colored(ls[0], "FULL"),
                              60, "FULL in the header", escapes=True)
        finally:
            tm.kill()
            shutil.rmtree(workdir, ignore_errors=True)
    m = TABLE.search(re.sub(r"\x1b\[[0-9;]*m", "", esc[0]))
    assert m and int(m.group(2)) == table_max and float(m.group(3)) >= 99, esc[0]
    head = json.loads(r.stdout[:r.stdout.index("\n")])
    assert head["max"] == table_max and count >= table_max - 100
    assert abs(head["count"] - count) <= 100 and head["percent"] >= 99
    assert head["full"] and head["trouble"]
    pushed = sum(v["early_drop"] + v["drop"] for v in truth.values())
    assert pushed >= 2000
    assert head["totals"]["early_drop"] + head["totals"]["drop"] == pushed
