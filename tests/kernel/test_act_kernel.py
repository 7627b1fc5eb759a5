"""Deleting flows on the real kernel: ``conntrack -L`` before and after.
``--delete EXPR`` (and ``--dry-run``) from scripts, the delete key in the
live view (one flow, and every flow of a host) after its y/n question, and
the one-line refusals without CAP_NET_ADMIN and on a replay."""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests import ctparse  # noqa: E402
from tests.expect import entry_key  # noqa: E402
from tests.nsutil import Netns, kernel_ready, populate  # noqa: E402
from tests.tmuxutil import Tmux, pane_command  # noqa: E402

_READY, _WHY = kernel_ready("tmux", "setpriv")
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]

WAIT = 6
MIXED = os.path.join(REPO, "tests", "fixtures", "ctnetlink-mixed.rec")


def listed(ns):
    return {entry_key(e): e for e in ctparse.parse(ns.conntrack_list())}


def test_delete_expr_removes_exactly_the_matching_flows_and_dry_run_none():
    with Netns("i15a-del") as ns:
        populate(ns)
        before = listed(ns)
        # the inserted TCP flow in zone 3 (mark 7): the zone must go with the tuple
        want = {k for k, e in before.items() if e["orig"].get("dst") == "10.9.0.3"}
        assert len(want) == 1 and before[next(iter(want))]["zone"] == 3
        r = ns.flowtop("--delete", "10.9.0.3", "--dry-run", "-n", "--no-sysctl")
        assert r.returncode == 0, r.stderr
        assert listed(ns).keys() == before.keys()                  # nothing deleted
        assert [l.split()[:3] for l in r.stdout.splitlines()] == [["would", "delete", "tcp"]]
        assert "10.9.0.1:1111 -> 10.9.0.3:443" in r.stdout
        r = ns.flowtop("--delete", "10.9.0.3", "-n", "--no-sysctl")
        assert r.returncode == 0 and "deleted 1 flow" in r.stderr, r.stderr
        after = listed(ns)
        assert set(before) - set(after) == want and set(after) <= set(before)
        # several at once: every UDP flow (udp and udplite, both families)
        udp = {k for k, e in after.items() if e["proto"] in ("udp", "udplite")}
        assert len(udp) >= 3
        r = ns.flowtop("--delete", "udp", "-n", "--no-sysctl")
        assert "deleted %d flows" % len(udp) in r.stderr, r.stderr
        assert set(after) - set(listed(ns)) == udp


def test_without_cap_net_admin_and_on_a_replay_a_delete_is_refused_in_one_line():
    with Netns("i15a-cap") as ns:
        populate(ns)
        before = listed(ns)
        r = ns.run("setpriv", "--bounding-set", "-net_admin", "--inh-caps", "-net_admin",
                   "env", "PYTHONPATH=" + REPO, sys.executable, "-m", "flowtop", "--delete",
                   "10.9", "--no-sysctl", check=False)
        assert r.returncode == 1
        # (reading the table needs it too: the first refusal says so)
        assert len(r.stderr.splitlines()) == 1 and "CAP_NET_ADMIN" in r.stderr, r.stderr
        assert listed(ns).keys() == before.keys()
    r = subprocess.run([sys.executable, "-m", "flowtop", "--replay", MIXED, "--delete", "10.9"],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 1 and "--replay" in r.stderr


def test_the_live_view_deletes_the_selected_flow_and_a_hosts_flows_after_yes():
    workdir = tempfile.mkdtemp(prefix="i15a-act-")
    tm = Tmux("i15a-act")
    try:
        with Netns("i15a-live") as ns:
            populate(ns)
            before = listed(ns)
            argv = ns.argv("env", "TERM=xterm-256color", "PYTHONPATH=" + REPO, sys.executable,
                           "-m", "flowtop", "--loopback", "-n", "--no-sysctl")
            tm.start(pane_command(argv, workdir), 160, 40, workdir)
            tm.wait_for(lambda ls: " flows" in ls[0] and "[" in ls[1], WAIT, "the view")
            tm.send("/")
            tm.type("10.9.0.4")
            tm.send("Enter")
            tm.wait_for(lambda ls: "/10.9.0.4" in ls[1], WAIT, "the filter")
            tm.send("K")
            ls = tm.wait_for(lambda ls: "? y/n" in ls[-1], WAIT, "the question")
            assert "delete udp 10.9.0.4:53 -> 10.9.0.5:5353" in ls[-1], ls[-1]
            tm.send("n")
            tm.wait_for(lambda ls: "not deleted" in ls[-1], WAIT, "no")
            assert listed(ns).keys() == before.keys()
            tm.send("K")
            tm.wait_for(lambda ls: "? y/n" in ls[-1], WAIT, "the question again")
            tm.send("y")
            tm.wait_for(lambda ls: "deleted 1 flow" in ls[-1], WAIT, "yes")
            after = listed(ns)
            gone = set(before) - set(after)
            assert [before[k]["orig"]["src"] for k in gone] == ["10.9.0.4"] and \
                set(after) <= set(before)
            # every flow of one remote host, from the Hosts view
            tm.send("Escape")
            tm.send("Tab")
            tm.send("Tab")
            tm.wait_for(lambda ls: "[Hosts]" in ls[1], WAIT, "the Hosts view")
            tm.send("/")
            tm.type("10.9.0.2")
            tm.send("Enter")
            tm.wait_for(lambda ls: "/10.9.0.2" in ls[1], WAIT, "one host")
            of_host = {k for k, e in after.items() if e["orig"]["dst"] == "10.9.0.2"}
            assert len(of_host) >= 3
            tm.send("Delete")
            ls = tm.wait_for(lambda ls: "? y/n" in ls[-1], WAIT, "the group question")
            assert "delete %d flows of host 10.9.0.2? y/n" % len(of_host) in ls[-1], ls[-1]
            tm.send("y")
            tm.wait_for(lambda ls: "deleted %d flows" % len(of_host) in ls[-1], WAIT, "deleted")
            assert set(after) - set(listed(ns)) == of_host
    finally:
        tm.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def test_the_live_view_refuses_a_delete_on_a_replay():
    workdir = tempfile.mkdtemp(prefix="i15a-actr-")
    tm = Tmux("i15a-actr")
    try:
        argv = ["env", "TERM=xterm-256color", "PYTHONPATH=" + REPO, sys.executable, "-m",
                "flowtop", "--replay", MIXED, "--loopback", "-n", "--no-sysctl"]
        tm.start(pane_command(argv, workdir), 120, 30, workdir)
        tm.wait_for(lambda ls: " flows" in ls[0] and "[" in ls[1], WAIT, "the recording")
        tm.send("K")
        tm.wait_for(lambda ls: "cannot delete flows of a recording" in ls[-1], WAIT, "refused")
    finally:
        tm.kill()
        shutil.rmtree(workdir, ignore_errors=True)
