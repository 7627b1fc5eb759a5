"""Issue 15's operator features as on OpenWrt's python3-light (the import
blocker of tests/routerpy) on the real kernel: helper/labels/master in
JSON, --stats, --events, --delete; ``conntrack`` is the truth."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests import ctparse  # noqa: E402
from tests.expect import entry_key  # noqa: E402
from tests.helperns import RULES, ftp_session, wait_logging  # noqa: E402
from tests.nsutil import SYSCTLS, Netns, kernel_ready, populate  # noqa: E402
from tests.routerpy import lightenv as L  # noqa: E402

_READY, _WHY = kernel_ready()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]


def light(ns, *args, **kw):
    """flowtop under the blocker inside ``ns``."""
    return ns.run(sys.executable, "-m", "flowtop", "--no-sysctl", *args, env=L.env(),
                  check=False, **kw)


@pytest.mark.skipif(not os.path.isdir("/sys/module/nf_conntrack_ftp"), reason="no ftp helper")
def test_helper_labels_and_master_under_python3_light():
    with Netns("i15a-lh", ruleset=RULES) as ns:
        data_port, _ = ftp_session(ns)
        r = light(ns, "--once", "--json", "-n")
        truth = ctparse.parse(ns.conntrack_list())
    assert r.returncode == 0, r.stderr
    recs = {x["dport"]: x for x in map(json.loads, r.stdout.splitlines())}
    assert recs[21]["helper"] == "ftp" == [e for e in truth if e["orig"]["dport"] == 21][0][
        "helper"]
    assert recs[21]["labels"] == [5, 70]
    assert recs[data_port]["master_dport"] == 21
    assert recs[data_port]["master_sport"] == recs[21]["sport"]


def test_stats_events_and_delete_under_python3_light():
    # every flow reports its end: with the default 2, flows made while no
    # listener existed (anywhere on the host) carry no event cache
    with Netns("i15a-lo", sysctls=dict(SYSCTLS, **{"net.netfilter.nf_conntrack_events": 1})) as ns:
        populate(ns)
        r = light(ns, "--once", "--json", "--stats", "-n")
        count = int(ns.run("conntrack", "-C").stdout.split()[0])
        assert r.returncode == 0, r.stderr
        head = json.loads(r.stdout.splitlines()[0])
        assert head["record"] == "stats" and head["count"] == count
        # text frames (no curses on python3-light) with the health line
        p = ns.popen(sys.executable, "-m", "flowtop", "--no-sysctl", "--events", "--json",
                     "-n", env=L.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     text=True)
        early = wait_logging(ns, p)
        before = {entry_key(e) for e in ctparse.parse(ns.conntrack_list())}
        r = light(ns, "--delete", "10.9.0.2", "-n")
        assert r.returncode == 0, r.stderr
        after = {entry_key(e) for e in ctparse.parse(ns.conntrack_list())}
        gone = before - after
        assert len(gone) >= 3 and after <= before
        assert all(k[3] == "10.9.0.2" for k in gone)          # the original destination
        time.sleep(1.0)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
    ends = [x for x in map(json.loads, early + out.splitlines()) if x["event"] == "end"]
    assert {x["dst"] for x in ends} == {"10.9.0.2"} and len(ends) == len(gone), (out, err)


def test_text_frames_carry_the_health_line_under_python3_light():
    with Netns("i15a-lt") as ns:
        populate(ns)
        p = ns.popen(sys.executable, "-m", "flowtop", "--no-sysctl", "-c", "--stats", "-n",
                     "-t", "0.5", env=L.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     text=True)
        time.sleep(2.0)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
        table_max = int(ns.sysctl("net.netfilter.nf_conntrack_max"))
    heads = [l for l in out.splitlines() if l.startswith("table ")]
    assert len(heads) >= 2, (out, err)
    assert heads[0].split()[1].endswith("/%d" % table_max)
