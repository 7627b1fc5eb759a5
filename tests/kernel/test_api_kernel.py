"""The library API (flowtop.api) against the real kernel, in a namespace."""

import json
import os
import sys

import pytest

from tests import ctparse
from tests.expect import mismatches
from tests.nsutil import REPO, Netns, kernel_ready, populate

pytestmark = pytest.mark.kernel

# Runs inside the namespace: the README's library example, as JSON records.
CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from flowtop import api, sources
from flowtop.views.record import record
sock = api.open_socket()
now = time.time()
flows = api.dump(sock=sock)
tcp6 = api.dump(families=["ipv6"], protocols=["tcp"], sock=sock)
streamed = list(api.stream(protocols=["udp", "udplite"], sock=sock))
lines = [json.loads(l) for l in sources.json_lines(sock=sock, now=now) if l]
print(json.dumps({
    "records": [record(f, now) for f in flows],
    "count": api.count(sock),
    "tcp6": [(f.family_name, f.proto_name) for f in tcp6],
    "streamed": sorted(f.proto_name for f in streamed),
    "json_lines": len(lines),
    "typed": [type(f.sport).__name__ for f in flows if f.proto_name == "tcp"][:1],
}))
"""


@pytest.fixture(scope="module")
def ready():
    ok, why = kernel_ready()
    if not ok:
        pytest.skip(why)


def test_dump_stream_count_and_json_lines(ready):
    with Netns("api") as ns:
        populate(ns)
        before = ctparse.parse(ns.conntrack_list())
        out = ns.run(sys.executable, "-c", CHILD, REPO).stdout
        after = ctparse.parse(ns.conntrack_list())
    got = json.loads(out)
    assert len(before) == len(after) == len(got["records"]) == got["count"] >= 14
    assert mismatches(got["records"], after) == []
    want_tcp6 = [e for e in after if e["family"] == "ipv6" and e["proto"] == "tcp"]
    assert got["tcp6"] == [["ipv6", "tcp"]] * len(want_tcp6) and want_tcp6
    assert got["streamed"] == sorted(e["proto"] for e in after if e["proto"] in ("udp", "udplite"))
    assert got["json_lines"] == len(after)
    assert got["typed"] == ["int"]


def test_dump_without_permission_raises_eperm(ready):
    """NetlinkError with errno EPERM, the one the CLI turns into its hint."""
    if not os.access(REPO, os.R_OK | os.X_OK) or not os.path.exists("/usr/bin/python3"):
        pytest.skip("needs /usr/bin/python3 and a checkout readable by nobody")
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from flowtop import conntrack\n"
            "try:\n    conntrack.dump()\nexcept conntrack.NetlinkError as e:\n"
            "    print('errno', e.errno)\n" % REPO)
    with Netns("apiperm") as ns:
        r = ns.run("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                   "/usr/bin/python3", "-c", code, check=False)
    if "Permission denied" in r.stderr and "errno" not in r.stdout:
        pytest.skip("checkout not readable by nobody: %s" % r.stderr.strip()[-120:])
    assert r.stdout.strip() == "errno 1", (r.stdout, r.stderr)


# Runs inside the namespace: events of flows made before, during and after a pause.
PAUSED = r"""
import json, socket, sys, time
sys.path.insert(0, sys.argv[1])
from flowtop import api
ev = api.open_events()
ev.settimeout(0.0)

def flows(first, n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(first, first + n):
        s.sendto(b"x", ("127.0.0.1", 20000 + i))
    s.close()
    time.sleep(0.2)

def news():
    got = []
    while True:
        batch = api.events_waiting(ev, wait=0.2)
        if not batch:
            return sorted(e.dport for kind, e in got if kind == "new")
        got += batch
flows(0, 3)
before = news()
flows(10, 3)                       # waiting as the pause comes: dropped unread
api.pause_events(ev)
dropped = api.drop_waiting(ev)
flows(20, 3)                       # while paused: the kernel sends none
during = news()
api.pause_events(ev, False)
flows(30, 3)
print(json.dumps({"before": before, "dropped": dropped, "during": during, "after": news()}))
"""


def test_paused_events_are_not_sent_and_those_waiting_are_dropped(ready):
    with Netns("i16tpause") as ns:
        got = json.loads(ns.run(sys.executable, "-c", PAUSED, REPO).stdout)
    assert got["before"] == [20000, 20001, 20002]
    assert got["dropped"] == 3 and got["during"] == []
    assert got["after"] == [20030, 20031, 20032]
