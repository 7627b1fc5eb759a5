"""The process enricher against the real kernel: servers and clients as
separate processes in a namespace, matched to their conntrack flows."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.enrichutil import SERVER as ENRICH_SERVER
from tests.nsutil import REPO, Netns, have
from tests.viewutil import UNSAFE

pytestmark = pytest.mark.kernel

SERVER = ENRICH_SERVER      # argv: proto family host port; prints {"pid", "port"}

CLIENT = r"""
import json, os, socket, sys
proto, family, host, port, mode = (sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]),
                                   sys.argv[5])
if proto == "tcp":
    c = socket.create_connection((host, port))
    c.sendall(b"ping")
else:
    c = socket.socket(family, socket.SOCK_DGRAM)
    if mode == "connect":
        c.connect((host, port))
        c.send(b"ping")
    else:
        c.sendto(b"ping", (host, port))
c.recv(64)
print(json.dumps({"pid": os.getpid(), "port": c.getsockname()[1]}), flush=True)
sys.stdin.read()
"""

# Runs inside the namespace: /proc/net and sock_diag are its own there.
PROBE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from flowtop import conntrack
from flowtop.enrich.process import FORWARDED, ProcessMap

def info(p):
    if p is None:
        return None
    if p is FORWARDED:
        return "forwarded"
    return {"pid": p.pid, "name": p.name, "user": p.user}

m = ProcessMap()
m.refresh()
first = m.stats.as_dict()
flows = []
for f in conntrack.dump():
    orig, reply = m.lookup_both(f)
    flows.append({"proto": f.l4proto, "family": f.family, "src": f.src, "sport": f.sport,
                  "dst": f.dst, "dport": f.dport, "orig": info(orig), "reply": info(reply),
                  "lookup": info(m.lookup(f))})
m.refresh()
print(json.dumps({"flows": flows, "first": first, "second": m.stats.as_dict()}))
m.close()
"""

HOSTILE = "\x1b[2Jevil\n\u202ename"
AF_INET, AF_INET6 = 2, 10

# (name, proto, family, listen host, port, connect host, client mode)
PAIRS = (
    ("tcp4", "tcp", AF_INET, "127.0.0.1", 5001, "127.0.0.1", "connect"),
    ("tcp6", "tcp", AF_INET6, "::1", 5002, "::1", "connect"),
    ("mapped", "tcp", AF_INET6, "::", 5003, "127.0.0.1", "connect"),   # dual-stack server
    ("udp4", "udp", AF_INET, "0.0.0.0", 5353, "127.0.0.1", "connect"),  # wildcard server
    ("udp6", "udp", AF_INET6, "::1", 5354, "::1", "sendto"),            # unconnected client
)


@pytest.fixture(scope="module")
def ready():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if not have("ip", "nft"):
        pytest.skip("needs ip and nft")


def _start(ns, program, *args):
    p = ns.popen(*(args[:1] + ("-c", program) + args[1:]), stdin=subprocess.PIPE,
                 stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line:
        raise RuntimeError("%s did not start" % (args,))
    return json.loads(line)


def _flow(flows, proto, sport, dport):
    hits = [f for f in flows if f["proto"] == proto and f["sport"] == sport
            and f["dport"] == dport]
    assert len(hits) == 1, (proto, sport, dport, flows)
    return hits[0]


def test_each_flow_names_both_local_ends(ready, tmp_path):
    evil = str(tmp_path / HOSTILE)
    shutil.copy(sys.executable, evil)
    with Netns("proc") as ns:
        started = {}
        for name, proto, family, host, port, target, mode in PAIRS:
            server = _start(ns, SERVER, sys.executable, proto, family, host, port)
            client = _start(ns, CLIENT, sys.executable, proto, family, target, port, mode)
            started[name] = (proto, server, client, port)
        # a program whose file name is hostile, connecting to the IPv4 TCP server
        evil_client = _start(ns, CLIENT, evil, "tcp", AF_INET, "127.0.0.1", 5001, "connect")
        out = ns.run(sys.executable, "-c", PROBE, REPO).stdout
    got = json.loads(out)
    flows = got["flows"]
    for name, (proto, server, client, port) in started.items():
        f = _flow(flows, 6 if proto == "tcp" else 17, client["port"], port)
        assert f["family"] == (AF_INET6 if name in ("tcp6", "udp6") else AF_INET), name
        assert f["orig"]["pid"] == client["pid"], (name, f)
        assert f["reply"]["pid"] == server["pid"], (name, f)
        assert f["lookup"]["pid"] == client["pid"], (name, f)
        assert f["orig"]["user"] == f["reply"]["user"] == "root"
        assert f["orig"]["name"].startswith("python"), f
    f = _flow(flows, 6, evil_client["port"], 5001)
    assert f["orig"]["pid"] == evil_client["pid"]
    assert f["reply"]["pid"] == started["tcp4"][1]["pid"]
    name = f["orig"]["name"]
    assert not UNSAFE.search(name) and name == "?[2Jevil??name", name
    first, second = got["first"], got["second"]
    assert first["unresolved"] == 0 and first["sockets"] >= 3 * len(PAIRS)
    assert (second["pids_stat"], second["pids_scanned"], second["fds"]) == (0, 0, 0), second


# Runs inside the namespace: a UDP flow whose sockets come and go between ticks
TICKS = r"""
import json, os, socket, sys
sys.path.insert(0, sys.argv[1])
from flowtop import conntrack
from flowtop.enrich.process import ProcessMap

def flow():
    hits = [f for f in conntrack.dump() if f.l4proto == 17 and f.dport == 5355]
    assert len(hits) == 1, hits
    return hits[0]

def pids(f):
    return [getattr(p, "pid", None) for p in m.lookup_both(f)]

client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
client.bind(("127.0.0.1", 0))
sport = client.getsockname()[1]
client.sendto(b"ping", ("127.0.0.1", 5355))     # nobody listens there yet
client.close()
m = ProcessMap()
m.refresh()
m.answers                                       # a Processes view reads them: kept
f = flow()
seen = [pids(f)]                                # no socket on either port
m.refresh()
seen.append(pids(f))                            # kept across a tick
server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind(("0.0.0.0", 5355))                  # a server takes the destination port
m.refresh()
seen.append(pids(f))
again = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
again.bind(("127.0.0.1", sport))                # and a socket the source port
m.refresh()
seen.append(pids(f))
server.close()
again.close()
m.refresh()
seen.append(pids(f))                            # gone: the names found stay the flow's
print(json.dumps({"seen": seen, "pid": os.getpid(), "kept": f.key in m.answers}))
"""


def test_a_flows_answer_follows_the_sockets_that_come_and_go_on_its_ports(ready):
    """The answers kept across ticks: a socket that takes one of a flow's
    ports after it was answered names that side at the next tick."""
    with Netns("proc-i16h") as ns:
        got = json.loads(ns.run(sys.executable, "-c", TICKS, REPO).stdout)
    me = got["pid"]
    assert got["seen"] == [[None, None], [None, None], [None, me], [me, me], [me, me]], got
    assert got["kept"]
