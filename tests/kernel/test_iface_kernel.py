"""In/out interfaces of forwarded flows, on a real router in namespaces.

Three namespaces made and removed here - a client ``ftest-ifc-*``, a router
``ftest-ifr-*`` and a server ``ftest-ifs-*`` - joined by two veth pairs:

    client c0 ── rc0 router rs0 ── s0 server
    10.200.1.0/24, fd00:200:1::/64    10.200.2.0/24, fd00:200:2::/64

Forwarding is on in the router only, whose forward chain has
``ct state new,established accept`` so conntrack tracks what it forwards.
Real TCP (v4 and v6, a payload each way, kept open) and pings go from the
client to the server; a child in the router dumps conntrack, its local
addresses and each flow's interfaces.  The host namespace is never touched.
"""

import json
import secrets
import subprocess
import sys
import time

import pytest

from tests import ctparse
from tests.nsutil import REPO, SYSCTLS, Netns, NetnsGroup, kernel_ready

_READY, _WHY = kernel_ready()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]

ROUTER_RULESET = """\
table inet ftest_fwd {
    chain forward {
        type filter hook forward priority 0; policy accept;
        ct state new,established accept
    }
}
"""

CLIENT4, ROUTER_C4, ROUTER_S4, SERVER4 = "10.200.1.2", "10.200.1.1", "10.200.2.1", "10.200.2.2"
CLIENT6, ROUTER_C6, ROUTER_S6, SERVER6 = ("fd00:200:1::2", "fd00:200:1::1",
                                          "fd00:200:2::1", "fd00:200:2::2")
PORT = 5201
OUT, BACK = 3000, 50000          # TCP payload bytes client -> server, server -> client

# Server: accept, read OUT bytes, answer BACK bytes, keep the sockets open.
SERVER = r"""
import socket, sys, threading
OUT, BACK = %d, %d
def serve(family, host, port):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port)); s.listen(4)
    held.append(s)
    ready.release()
    while True:
        c, _ = s.accept(); held.append(c); got = 0
        while got < OUT:
            d = c.recv(65536)
            if not d: break
            got += len(d)
        c.sendall(b"y" * BACK)
held, ready = [], threading.Semaphore(0)
for fam, host in ((socket.AF_INET, sys.argv[1]), (socket.AF_INET6, sys.argv[2])):
    threading.Thread(target=serve, args=(fam, host, %d), daemon=True).start()
ready.acquire(); ready.acquire()
print("ready", flush=True)
sys.stdin.read()
""" % (OUT, BACK, PORT)

# Client: connect to both, send OUT, read BACK, report ports, stay open.
CLIENT = r"""
import json, socket, sys
OUT, BACK = %d, %d
socks, ports = [], {}
for name, host in (("tcp4", sys.argv[1]), ("tcp6", sys.argv[2])):
    c = socket.create_connection((host, %d), timeout=10)
    c.sendall(b"x" * OUT); got = 0
    while got < BACK:
        d = c.recv(65536)
        if not d: break
        got += len(d)
    socks.append(c); ports[name] = c.getsockname()[1]
print(json.dumps(ports), flush=True)
sys.stdin.read()
""" % (OUT, BACK, PORT)

# Router: what flowtop sees there.
ROUTER = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from flowtop import conntrack
from flowtop.enrich.iface import Interfaces, iface_totals
from flowtop.netlink import route, rtlookup
flows = conntrack.dump()
local = route.local_addresses()
with Interfaces() as ifs:
    sent = ifs.prefetch(flows)
    rows = []
    for f in flows:
        fi = ifs.flow_ifaces(f)
        rows.append({"proto": f.proto_name, "family": f.family_name, "src": f.src, "dst": f.dst,
                     "sport": f.sport, "dport": f.dport,
                     "bytes_orig": f.bytes_orig, "packets_orig": f.packets_orig,
                     "bytes_reply": f.bytes_reply, "packets_reply": f.packets_reply,
                     "of_flow": list(ifs.of_flow(f)), "flow_ifaces": list(fi),
                     "src_local": f.src in local, "dst_local": f.dst in local})
    ends = set(sys.argv[3:])
    forwarded = [f for f in flows if f.src in ends and f.dst in ends]
    totals = iface_totals(forwarded, ifs)
    mine = ends | {sys.argv[2]}
    totals_all = iface_totals([f for f in flows if f.src in mine and f.dst in mine], ifs)
    lookups_after = ifs.lookups
    ifs.prefetch(flows)
    again = ifs.lookups - lookups_after
print(json.dumps({"flows": rows, "local": sorted(local), "totals": totals,
                  "totals_all": totals_all,
                  "interfaces": route.interfaces(), "prefetched": sent, "again": again,
                  "route_client": rtlookup.route_get(sys.argv[3]),
                  "route_nowhere": rtlookup.route_get("192.0.2.1")}))
"""


class Topology(NetnsGroup):
    """The three namespaces and their wiring; ``close()`` removes them all."""

    def __init__(self):
        tag = secrets.token_hex(3)
        self.client = Netns("ifc", sysctls={}, ruleset=None)
        self.router = Netns("ifr", sysctls=SYSCTLS, ruleset=ROUTER_RULESET)
        self.server = Netns("ifs", sysctls={}, ruleset=None)
        for ns, role in ((self.client, "ifc"), (self.router, "ifr"), (self.server, "ifs")):
            ns.name = "ftest-%s-%s" % (role, tag)
        self.members = (self.client, self.router, self.server)

    def _wire(self):
        c, r, s = self.client, self.router, self.server
        c.run("ip", "link", "add", "c0", "type", "veth", "peer", "name", "rc0", "netns", r.name)
        s.run("ip", "link", "add", "s0", "type", "veth", "peer", "name", "rs0", "netns", r.name)
        r.run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        r.run("sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1")
        for ns, dev, v4, v6 in ((c, "c0", CLIENT4, CLIENT6), (r, "rc0", ROUTER_C4, ROUTER_C6),
                                (r, "rs0", ROUTER_S4, ROUTER_S6), (s, "s0", SERVER4, SERVER6)):
            ns.run("ip", "addr", "add", v4 + "/24", "dev", dev)
            ns.run("ip", "-6", "addr", "add", v6 + "/64", "dev", dev, "nodad")
            ns.run("ip", "link", "set", dev, "up")
        c.run("ip", "route", "add", "default", "via", ROUTER_C4)
        c.run("ip", "-6", "route", "add", "default", "via", ROUTER_C6)
        s.run("ip", "route", "add", "default", "via", ROUTER_S4)
        s.run("ip", "-6", "route", "add", "default", "via", ROUTER_S6)



def _ip_json(ns, *args):
    return json.loads(ns.run("ip", "-j", *args).stdout, strict=False)


@pytest.fixture(scope="module")
def routed():
    """The topology with traffic through it, and the router child's report."""
    with Topology() as t:
        srv = t.server.popen(sys.executable, "-c", SERVER, SERVER4, SERVER6,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert srv.stdout.readline().strip() == "ready"
        t.client.run("ping", "-c", "2", "-i", "0.2", "-W", "2", SERVER4)
        t.client.run("ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", SERVER6)
        # two flows with an end on the router: to its far address, and from it
        t.client.run("ping", "-c", "1", "-W", "2", ROUTER_S4)
        t.router.run("ping", "-c", "1", "-W", "2", SERVER4)
        cli = t.client.popen(sys.executable, "-c", CLIENT, SERVER4, SERVER6,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = cli.stdout.readline()
        assert line, "client failed"
        ports = json.loads(line)
        time.sleep(0.2)            # let the last ACKs cross the router
        report = json.loads(t.router.run(sys.executable, "-c", ROUTER, REPO, ROUTER_S4,
                                         CLIENT4, SERVER4, CLIENT6, SERVER6).stdout)
        listed = ctparse.parse(t.router.conntrack_list())
        router_addr = _ip_json(t.router, "addr")
        router_link = _ip_json(t.router, "-s", "link")
        names = [t.client.name, t.router.name, t.server.name]
        yield {"report": report, "ports": ports, "listed": listed, "addr": router_addr,
               "link": router_link, "names": names}
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(n in left for n in names), "a test namespace was left behind"


def _forwarded(report):
    ends = {CLIENT4, SERVER4, CLIENT6, SERVER6}
    return [f for f in report["flows"] if f["src"] in ends and f["dst"] in ends]


def test_local_addresses_are_the_routers(routed):
    want = {a["local"] for iface in routed["addr"] for a in iface["addr_info"]}
    assert set(routed["report"]["local"]) == want
    assert {ROUTER_C4, ROUTER_S4, ROUTER_C6, ROUTER_S6, "127.0.0.1", "::1"} <= want
    names = {str(x["ifindex"]): x["ifname"] for x in routed["addr"]}
    assert routed["report"]["interfaces"] == names


def test_forwarded_flows_go_in_on_the_client_side_and_out_on_the_server_side(routed):
    flows = _forwarded(routed["report"])
    kinds = {(f["family"], f["proto"]) for f in flows}
    assert kinds == {("ipv4", "tcp"), ("ipv6", "tcp"), ("ipv4", "icmp"), ("ipv6", "icmpv6")}
    tcp_ports = {f["sport"] for f in flows if f["proto"] == "tcp"}
    assert tcp_ports == set(routed["ports"].values())
    for f in flows:
        assert f["src"] in (CLIENT4, CLIENT6) and f["dst"] in (SERVER4, SERVER6)
        assert not f["src_local"] and not f["dst_local"], f        # forwarded
        assert f["of_flow"] == ["rc0", "rs0"], f
        assert f["flow_ifaces"] == ["rc0", "rs0", False, False], f
        assert f["bytes_orig"] > 0 and f["bytes_reply"] > 0


def test_flows_with_a_local_end_name_the_owning_interface_not_lo(routed):
    flows = routed["report"]["flows"]
    (to_router,) = [f for f in flows if f["dst"] == ROUTER_S4]
    (from_router,) = [f for f in flows if f["src"] == ROUTER_S4]
    # client -> the router's server-side address: arrives on rc0; the local
    # end is the address rs0 owns
    assert to_router["flow_ifaces"] == ["rc0", "rs0", False, True]
    assert to_router["dst_local"] and not to_router["src_local"]
    # the router -> the server, from its rs0 address
    assert from_router["flow_ifaces"] == ["rs0", "rs0", True, False]
    # totals count the wire side only: nothing on rs0 for the flow that
    # arrived on rc0 and was delivered here
    fwd = routed["report"]["totals"]
    every = routed["report"]["totals_all"]     # forwarded + these two
    assert every["rc0"]["rx_bytes"] == fwd["rc0"]["rx_bytes"] + to_router["bytes_orig"]
    assert every["rc0"]["tx_bytes"] == fwd["rc0"]["tx_bytes"] + to_router["bytes_reply"]
    assert every["rs0"]["tx_bytes"] == fwd["rs0"]["tx_bytes"] + from_router["bytes_orig"]
    assert every["rs0"]["rx_bytes"] == fwd["rs0"]["rx_bytes"] + from_router["bytes_reply"]
    assert "lo" not in every


def test_route_lookups_are_cached_and_batched(routed):
    r = routed["report"]
    assert r["prefetched"] >= 4             # both ends of the v4 and v6 flows
    assert r["again"] == 0                  # a second tick within the TTL: all cached
    links = {x["ifname"]: x["ifindex"] for x in routed["link"]}
    assert r["route_client"][0] == links["rc0"]       # RouteInfo.oif
    assert r["route_nowhere"] is None                 # the router has no default route


def test_iface_totals_add_up_from_the_flow_counters(routed):
    flows = _forwarded(routed["report"])
    totals = routed["report"]["totals"]
    orig_b = sum(f["bytes_orig"] for f in flows)
    orig_p = sum(f["packets_orig"] for f in flows)
    reply_b = sum(f["bytes_reply"] for f in flows)
    reply_p = sum(f["packets_reply"] for f in flows)
    assert totals == {
        "rc0": {"rx_bytes": orig_b, "rx_packets": orig_p, "tx_bytes": reply_b,
                "tx_packets": reply_p},
        "rs0": {"rx_bytes": reply_b, "rx_packets": reply_p, "tx_bytes": orig_b,
                "tx_packets": orig_p},
    }
    # the payloads crossed: at least OUT one way and BACK the other, per TCP flow
    assert orig_b > 2 * OUT and reply_b > 2 * BACK
    # the same counters as conntrack-tools lists for these flows
    ends = {CLIENT4, SERVER4, CLIENT6, SERVER6}
    listed = [e for e in routed["listed"]
              if e["orig"]["src"] in ends and e["orig"]["dst"] in ends]
    assert len(listed) == len(flows)
    assert sum(e["orig"]["bytes"] for e in listed) == orig_b
    assert sum(e["reply"]["bytes"] for e in listed) == reply_b
    assert sum(e["orig"]["packets"] for e in listed) == orig_p
    # conntrack counts layer-3 bytes of these flows only: never more than the
    # interfaces' own layer-2 counters of everything
    stats = {x["ifname"]: x["stats64"] for x in routed["link"]}
    for name, t in totals.items():
        assert t["rx_bytes"] <= stats[name]["rx"]["bytes"]
        assert t["tx_bytes"] <= stats[name]["tx"]["bytes"]
        assert t["rx_packets"] <= stats[name]["rx"]["packets"]
        assert t["tx_packets"] <= stats[name]["tx"]["packets"]
