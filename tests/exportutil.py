"""A NAT router between a client and a server, in namespaces made and
removed here, with real traffic through it: what the export tests run
flowtop on.  Nothing touches the host namespace.

    client c0 ── rc0 router rs0 ── s0 server
    (addresses and wiring: tests/kernel/test_iface_kernel.py's Topology)

The router masquerades IPv4 out of rs0 (so IPv4 flows are NAT'ed, IPv6
ones not) and tracks what it forwards.
"""

import json
import secrets
import subprocess
import sys
import time

from tests.kernel.test_iface_kernel import (  # noqa: F401 (addresses re-exported)
    CLIENT4, CLIENT6, ROUTER_S4, SERVER4, SERVER6, Topology)

ROUTER_RULESET = """\
table inet i14_fwd {
    chain forward {
        type filter hook forward priority 0; policy accept;
        ct state new,established accept
    }
    chain input {
        type filter hook input priority 0; policy accept;
        ct state new,established accept
    }
}
table ip i14_nat {
    chain postrouting {
        type nat hook postrouting priority 100; policy accept;
        oifname "rs0" masquerade
    }
}
"""

TCP_PORT, UDP_PORT = 5211, 5300
OUT, BACK = 3000, 50000          # TCP payload bytes client -> server, server -> client

# Server: TCP (read OUT, answer BACK, hold) and UDP echo (twice the size), v4 and v6.
SERVER = r"""
import socket, sys, threading
OUT, BACK, TCP, UDP = %d, %d, %d, %d
held = []
def tcp(family, host):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, TCP)); s.listen(8); held.append(s)
    while True:
        c, _ = s.accept(); held.append(c); got = 0
        while got < OUT:
            d = c.recv(65536)
            if not d: break
            got += len(d)
        c.sendall(b"y" * BACK)
def udp(family, host):
    s = socket.socket(family, socket.SOCK_DGRAM); s.bind((host, UDP)); held.append(s)
    while True:
        d, a = s.recvfrom(65536); s.sendto(d * 2, a)
socks = []
for fam, host in ((socket.AF_INET, sys.argv[1]), (socket.AF_INET6, sys.argv[2])):
    for fn in (tcp, udp):
        threading.Thread(target=fn, args=(fam, host), daemon=True).start()
import time; time.sleep(0.3)
print("ready", flush=True)
sys.stdin.read()
""" % (OUT, BACK, TCP_PORT, UDP_PORT)

# Client: commands on stdin, one per line: "tcp4"/"tcp6" open a connection
# (send OUT, read BACK, keep it), "udp4 N"/"udp6 N" send N bytes on that
# family's UDP socket and read the echo.  Answers one JSON line each.
CLIENT = r"""
import json, socket, sys
OUT, BACK, TCP, UDP = %d, %d, %d, %d
hosts = {"4": sys.argv[1], "6": sys.argv[2]}
fams = {"4": socket.AF_INET, "6": socket.AF_INET6}
held, udp = [], {}
for line in sys.stdin:
    cmd = line.split()
    if not cmd: continue
    kind, fam = cmd[0][:3], cmd[0][3:]
    if kind == "tcp":
        c = socket.create_connection((hosts[fam], TCP), timeout=10)
        c.sendall(b"x" * OUT); got = 0
        while got < BACK:
            d = c.recv(65536)
            if not d: break
            got += len(d)
        held.append(c)
        print(json.dumps({"sport": c.getsockname()[1]}), flush=True)
    else:
        s = udp.get(fam)
        if s is None:
            s = udp[fam] = socket.socket(fams[fam], socket.SOCK_DGRAM)
            s.settimeout(5); s.connect((hosts[fam], UDP))
        s.send(b"u" * int(cmd[1])); s.recv(65536)
        print(json.dumps({"sport": s.getsockname()[1]}), flush=True)
""" % (OUT, BACK, TCP_PORT, UDP_PORT)


class NatTopology(Topology):
    """test_iface_kernel's client/router/server wiring, with NAT in the
    router and namespaces tagged for these tests; ``close()`` removes them."""

    def __init__(self, tag="i14"):
        super().__init__()
        rnd = secrets.token_hex(3)
        for ns, role in ((self.client, "c"), (self.router, "r"), (self.server, "s")):
            ns.name = "ftest-%s%s-%s" % (tag, role, rnd)
        self.router.ruleset = ROUTER_RULESET
        self._client = None

    def start_traffic(self):
        srv = self.server.popen(sys.executable, "-c", SERVER, SERVER4, SERVER6,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert srv.stdout.readline().strip() == "ready"
        self._client = self.client.popen(sys.executable, "-c", CLIENT, SERVER4, SERVER6,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         text=True)

    def send(self, cmd):
        """One client command ("tcp4", "udp6 300", ...) -> its source port."""
        self._client.stdin.write(cmd + "\n")
        self._client.stdin.flush()
        line = self._client.stdout.readline()
        assert line, "client failed on %r" % cmd
        return json.loads(line)["sport"]

    def ping(self, family, count=2):
        if family == 6:
            self.client.run("ping", "-6", "-c", count, "-i", "0.2", "-W", "2", SERVER6)
        else:
            self.client.run("ping", "-c", count, "-i", "0.2", "-W", "2", SERVER4)

    def ifindex(self, name):
        return json.loads(self.router.run("ip", "-j", "link", "show", name).stdout)[0]["ifindex"]


def wait_for(predicate, timeout=10.0, step=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
