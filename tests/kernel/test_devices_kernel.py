"""The device view on a router: a router namespace with NAT, two LAN client
namespaces (one leased its address from a real dnsmasq, one static) and a
server behind the WAN.  Totals per device must equal what ``conntrack -L``
counted for the device's flows, and keep the bytes of a flow deleted from
the table; names come from dnsmasq's lease file, MACs from the neighbour
table."""

import json
import os
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests import ctparse  # noqa: E402
from tests.nsutil import Netns, have, kernel_ready  # noqa: E402
from tests.tmuxutil import Tmux, pane_command  # noqa: E402

_READY, _WHY = kernel_ready("dnsmasq", "udhcpc", "tmux")
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]

MAC1, MAC2 = "02:15:b0:00:00:01", "02:15:b0:00:00:02"
STATIC = "10.77.0.3"
SERVER = "203.0.113.2"
NAT = """\
table ip i15b_nat {
    chain post {
        type nat hook postrouting priority 100; policy accept;
        oifname "wan0" masquerade
    }
    chain forward_chain {
        type filter hook forward priority 0; policy accept;
        ct state new,established accept
    }
}
"""
UDHCPC_SCRIPT = """#!/bin/sh
[ "$1" = bound ] || exit 0
ip addr add "$ip/${mask:-24}" dev "$interface"
ip route add default via "$router"
"""
SERVE = r"""
import socket, sys, threading
tcp = socket.socket(); tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(("0.0.0.0", 5001)); tcp.listen(4)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind(("0.0.0.0", 5002))
def echo_udp():
    while True:
        data, addr = udp.recvfrom(65536); udp.sendto(data[:100], addr)
threading.Thread(target=echo_udp, daemon=True).start()
print("ready", flush=True)
while True:
    c, _ = tcp.accept(); got = 0
    while True:
        b = c.recv(65536)
        if not b: break
        got += len(b)
    c.sendall(b"k" * 3000); c.close()
"""
SEND_TCP = r"""
import socket
s = socket.create_connection(("%s", 5001)); s.sendall(b"x" * 200000); s.shutdown(socket.SHUT_WR)
while s.recv(65536): pass
s.close()
""" % SERVER
SEND_UDP = r"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect(("%s", 5002))
for _ in range(5):
    s.send(b"u" * 700); s.recv(65536)
""" % SERVER


class Lan:
    """Router R (bridge br0 10.77.0.1/24 to two clients, wan0 to server S)."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.r = Netns("i15bdr", ruleset=NAT)
        self.c1 = Netns("i15bd1", sysctls={}, ruleset=None)
        self.c2 = Netns("i15bd2", sysctls={}, ruleset=None)
        self.s = Netns("i15bds", sysctls={}, ruleset=None)
        self.all = [self.r, self.c1, self.c2, self.s]

    def __enter__(self):
        opened = []
        try:
            for ns in self.all:
                ns.__enter__()
                opened.append(ns)
            self._wire()
        except BaseException:
            for ns in reversed(opened):
                ns.close()
            raise
        return self

    def __exit__(self, *exc):
        for ns in reversed(self.all):
            ns.close()

    def _wire(self):
        r = self.r
        r.run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        r.run("ip", "link", "add", "br0", "type", "bridge")
        r.run("ip", "addr", "add", "10.77.0.1/24", "dev", "br0")
        r.run("ip", "link", "set", "br0", "up")
        for i, (ns, mac) in enumerate(((self.c1, MAC1), (self.c2, MAC2)), 1):
            subprocess.run(["ip", "link", "add", "lan%d" % i, "netns", r.name, "type", "veth",
                            "peer", "name", "eth0", "netns", ns.name], check=True)
            r.run("ip", "link", "set", "lan%d" % i, "master", "br0", "up")
            ns.run("ip", "link", "set", "eth0", "address", mac)
            ns.run("ip", "link", "set", "eth0", "up")
        subprocess.run(["ip", "link", "add", "wan0", "netns", r.name, "type", "veth",
                        "peer", "name", "eth0", "netns", self.s.name], check=True)
        r.run("ip", "addr", "add", "203.0.113.1/24", "dev", "wan0")
        r.run("ip", "link", "set", "wan0", "up")
        self.s.run("ip", "addr", "add", SERVER + "/24", "dev", "eth0")
        self.s.run("ip", "link", "set", "eth0", "up")
        # client 2: static, no lease
        self.c2.run("ip", "addr", "add", STATIC + "/24", "dev", "eth0")
        self.c2.run("ip", "route", "add", "default", "via", "10.77.0.1")
        # client 1: a lease from a real dnsmasq, written to its lease file
        self.leases = os.path.join(self.tmp, "dhcp.leases")
        r.popen("dnsmasq", "--no-daemon", "--interface=br0", "--bind-interfaces",
                "--except-interface=lo", "--port=0", "--no-resolv", "--no-hosts",
                "--dhcp-range=10.77.0.100,10.77.0.150,12h", "--dhcp-leasefile=" + self.leases,
                "--pid-file=" + os.path.join(self.tmp, "dnsmasq.pid"),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        script = os.path.join(self.tmp, "udhcpc.sh")
        with open(script, "w") as f:
            f.write(UDHCPC_SCRIPT)
        os.chmod(script, 0o755)
        deadline = time.monotonic() + 10
        while True:
            res = self.c1.run("udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "3", "-T", "1",
                              "-x", "hostname:phone-one", "-s", script, check=False)
            if res.returncode == 0 or time.monotonic() > deadline:
                break
        assert res.returncode == 0, res.stderr
        addr = self.c1.run("ip", "-4", "-j", "addr", "show", "eth0").stdout
        self.addr1 = json.loads(addr)[0]["addr_info"][0]["local"]
        for _ in range(50):
            if os.path.exists(self.leases) and self.addr1 in open(self.leases).read():
                break
            time.sleep(0.1)
        self.server = self.s.popen(sys.executable, "-c", SERVE, stdout=subprocess.PIPE,
                                   text=True)
        assert self.server.stdout.readline().strip() == "ready"


def device_entries(ns, addr):
    """conntrack -L entries of the device at ``addr``: it sent the original
    direction, or (port forward) answered it."""
    out = ns.run("conntrack", "-L", "-o", "extended,id").stdout
    return [e for e in ctparse.parse(out)
            if e["orig"]["src"] == addr or e["reply"]["src"] == addr]


def sent_received(entries, addr):
    tx = rx = 0
    for e in entries:
        o, r = e["orig"].get("bytes", 0), e["reply"].get("bytes", 0)
        if e["orig"]["src"] == addr:
            tx, rx = tx + o, rx + r
        else:
            tx, rx = tx + r, rx + o
    return tx, rx


def last_batch(lines):
    """The last whole batch: the one before the last, which SIGTERM may have cut."""
    recs = [json.loads(x) for x in lines if x.strip()]
    times = sorted({r["time"] for r in recs})
    if not times:
        return {}
    t = times[-2] if len(times) > 1 else times[-1]
    return {r["key"]: r for r in recs if r["time"] == t}


def test_device_totals_keep_closed_flows_and_names_come_from_dnsmasq(tmp_path):
    with Lan(str(tmp_path)) as lan:
        r = lan.r
        out = tmp_path / "devices.jsonl"
        with open(out, "w") as f:
            p = r.popen("env", "PYTHONPATH=" + REPO, sys.executable, "-m", "flowtop",
                        "--view", "device", "--json", "-n", "-t", "0.3", "--no-sysctl",
                        "--leases", lan.leases, stdout=f, stderr=subprocess.PIPE)
            lan.c1.run(sys.executable, "-c", SEND_TCP)
            lan.c2.run(sys.executable, "-c", SEND_UDP)
            time.sleep(1.5)                  # several ticks see the final counters
            before1 = device_entries(r, lan.addr1)
            before2 = device_entries(r, STATIC)
            assert any(e["proto"] == "tcp" for e in before1), before1
            # the TCP flow leaves the table: its bytes must still count
            r.run("conntrack", "-D", "-p", "tcp", "-s", lan.addr1)
            time.sleep(1.5)
            p.terminate()
            p.wait(10)
        assert p.returncode in (0, 143, -15), p.stderr.read()
        batch = last_batch(open(out).read().splitlines())
        assert "phone-one" in batch, batch
        phone = batch["phone-one"]
        assert phone["mac"] == MAC1
        tx, rx = sent_received(before1, lan.addr1)
        assert tx > 200000 and rx > 3000
        assert (phone["bytes_sent"], phone["bytes_received"]) == (tx, rx)
        assert not any(e["proto"] == "tcp" for e in device_entries(r, lan.addr1))
        assert STATIC in batch, sorted(batch)
        static = batch[STATIC]                  # no lease, no DNS: its address
        assert static["mac"] == MAC2
        assert (static["bytes_sent"], static["bytes_received"]) == sent_received(before2, STATIC)
        assert static["bytes_sent"] >= 5 * 700
        assert SERVER not in batch and "203.0.113.1" not in batch   # not LAN devices


def test_the_live_view_lists_the_devices(tmp_path):
    with Lan(str(tmp_path)) as lan:
        lan.c1.run(sys.executable, "-c", SEND_TCP)
        tm = Tmux("i15b-dev")
        try:
            argv = lan.r.argv("env", "TERM=xterm-256color", "PYTHONPATH=" + REPO,
                              sys.executable, "-m", "flowtop", "--no-sysctl", "-n",
                              "--view", "device", "--leases", lan.leases)
            tm.start(pane_command(argv, str(tmp_path)), 160, 30, str(tmp_path))
            lines = tm.wait_for(lambda ls: any("phone-one" in x for x in ls), 10,
                                "the leased device by name")
            titles = [x for x in lines if x.startswith("DEVICE")][0].split()
            assert titles[:4] == ["DEVICE", "FLOWS", "SENT", "RECEIVED"], titles
            assert "[Devices]" in lines[1]
            phone = [x.split() for x in lines if x.startswith("phone-one")][0]
            assert phone[2].endswith("kB") and float(phone[2][:-2]) > 200, phone
        finally:
            tm.kill()
