"""Offloaded flows on the real kernel: a router namespace with an nftables
``flowtable`` forwarding a client's TCP flow to a server past conntrack.
flowtop marks and counts what ``conntrack -L`` lists as [OFFLOAD].  Skipped
where the kernel has no flow table (nf_flow_table: this CI kernel lacks it)."""

import json
import os
import secrets
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.nsutil import SYSCTLS, Netns, NetnsGroup, kernel_ready  # noqa: E402

_READY, _WHY = kernel_ready()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]

ROUTER_RULES = """\
table inet flowtop_offload {
    flowtable ft { hook ingress priority 0; devices = { rc0, rs0 }; }
    chain forward {
        type filter hook forward priority 0; policy accept;
        meta l4proto tcp flow add @ft
        ct state new,established,related accept
    }
}
"""
ECHO = r"""
import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 8080)); s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
while True:
    d = c.recv(65536)
    if not d: break
    c.sendall(d)
"""
CLIENT = r"""
import socket, sys, time
c = socket.create_connection((sys.argv[1], 8080))
for _ in range(20):
    c.sendall(b"x" * 1000); c.recv(65536); time.sleep(0.02)
print("done", flush=True)
sys.stdin.read()
"""


class Routed(NetnsGroup):
    def __init__(self):
        tag = secrets.token_hex(3)
        self.client = Netns("i15a-oc", sysctls={}, ruleset=None)
        self.router = Netns("i15a-or", sysctls=SYSCTLS, ruleset=None)
        self.server = Netns("i15a-os", sysctls={}, ruleset=None)
        for ns, role in ((self.client, "c"), (self.router, "r"), (self.server, "s")):
            ns.name = "ftest-i15a-o%s-%s" % (role, tag)
        self.members = (self.client, self.router, self.server)

    def _wire(self):
        c, r, s = self.client, self.router, self.server
        c.run("ip", "link", "add", "c0", "type", "veth", "peer", "name", "rc0", "netns", r.name)
        s.run("ip", "link", "add", "s0", "type", "veth", "peer", "name", "rs0", "netns", r.name)
        r.run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        for ns, dev, addr in ((c, "c0", "10.77.1.2"), (r, "rc0", "10.77.1.1"),
                              (r, "rs0", "10.77.2.1"), (s, "s0", "10.77.2.2")):
            ns.run("ip", "addr", "add", addr + "/24", "dev", dev)
            ns.run("ip", "link", "set", dev, "up")
        c.run("ip", "route", "add", "default", "via", "10.77.1.1")
        s.run("ip", "route", "add", "default", "via", "10.77.2.1")


def test_offloaded_flows_are_marked_and_counted_as_conntrack_lists_them():
    with Routed() as t:
        made = t.router.run("nft", "-f", "-", input=ROUTER_RULES, check=False)
        if made.returncode != 0:
            pytest.skip("no nftables flowtable in this kernel: %s" % made.stderr.strip()[:80])
        srv = t.server.popen(sys.executable, "-c", ECHO, "10.77.2.2", stdout=subprocess.PIPE,
                             text=True)
        assert srv.stdout.readline().strip() == "ready"
        cli = t.client.popen(sys.executable, "-c", CLIENT, "10.77.2.2", stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        assert cli.stdout.readline().strip() == "done"
        listed = t.router.conntrack_list()
        r = t.router.flowtop("--once", "--json", "--stats", "-n", "--no-sysctl", check=True)
    want = sum("[OFFLOAD]" in line or "[HW_OFFLOAD]" in line for line in listed.splitlines())
    assert want >= 1, listed
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    head, flows = lines[0], lines[1:]
    assert sum("OFFLOAD" in f["status"] for f in flows) == want
    assert head["offload"] == want
