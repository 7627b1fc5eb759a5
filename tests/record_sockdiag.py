#!/usr/bin/env python3
"""Record tests/fixtures/sockdiag-dump.json: real sock_diag dumps and /proc/net
tables of a namespace holding known sockets.

Run as root from the repo root:  python3 tests/record_sockdiag.py
A child inside a fresh namespace opens one socket of each kind flowtop
matches (TCP listening/connected/accepted over IPv4, IPv6 and IPv4-mapped,
UDP bound/wildcard/connected, UDP-lite, raw ICMP, ping), writes what Python
itself says about each one (getsockname, getpeername, the inode from
fstat) as the expected records, then dumps every (family, protocol) with
``flowtop.netlink.sockdiag.dump`` keeping the raw datagrams - a kernel
without a diag module answers NLMSG_ERROR, recorded too - and copies the
/proc/net tables.  The bytes are host-order netlink: the tests skip them on
a machine of the other byte order.
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.nsutil import REPO, Netns, kernel_ready  # noqa: E402

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "sockdiag-dump.json")

CHILD = r"""
import base64, json, os, socket, sys
sys.path.insert(0, sys.argv[1])
from flowtop.netlink import sockdiag
from flowtop.netlink.errors import NetlinkError
from flowtop.netlink.uapi import (IPPROTO_RAW, IPPROTO_UDPLITE, TCP_CLOSE, TCP_ESTABLISHED,
                                  TCP_LISTEN)

keep, expected = [], []

def text(addr):
    return addr[7:] if addr.startswith("::ffff:") and "." in addr else addr

def note(s, proto, state, raw_port=None):
    keep.append(s)
    local = s.getsockname()
    try:
        remote = s.getpeername()
    except OSError:
        remote = ("::" if s.family == socket.AF_INET6 else "0.0.0.0", 0)
    lport = raw_port if raw_port is not None else local[1]
    expected.append({"family": int(s.family), "record": [
        proto, state, text(local[0]), lport, text(remote[0]), remote[1] if raw_port is None else 0,
        os.getuid(), os.fstat(s.fileno()).st_ino]})

def tcp(family, listen_host, connect_host, port):
    ls = socket.socket(family, socket.SOCK_STREAM)
    ls.bind((listen_host, port)); ls.listen(8)
    note(ls, socket.IPPROTO_TCP, TCP_LISTEN)
    c = socket.create_connection((connect_host, port))
    a, _ = ls.accept()
    note(c, socket.IPPROTO_TCP, TCP_ESTABLISHED)
    note(a, socket.IPPROTO_TCP, TCP_ESTABLISHED)

def udp(family, host, port, proto=socket.IPPROTO_UDP, connect=None):
    s = socket.socket(family, socket.SOCK_DGRAM, proto)
    s.bind((host, port))
    if connect:
        s.connect(connect)
    note(s, proto, TCP_ESTABLISHED if connect else TCP_CLOSE)

tcp(socket.AF_INET, "127.0.0.1", "127.0.0.1", 6001)
tcp(socket.AF_INET6, "::1", "::1", 6002)
tcp(socket.AF_INET6, "::", "127.0.0.1", 6003)              # dual stack: IPv4-mapped
udp(socket.AF_INET, "0.0.0.0", 5353)
udp(socket.AF_INET, "127.0.0.1", 6004)
udp(socket.AF_INET, "127.0.0.1", 0, connect=("127.0.0.1", 5353))
udp(socket.AF_INET6, "::", 5354)
udp(socket.AF_INET6, "::1", 0, connect=("::1", 5354))
udp(socket.AF_INET6, "::", 0, connect=("::ffff:127.0.0.1", 5353))  # IPv4-mapped, connected
udp(socket.AF_INET, "127.0.0.1", 6005, proto=IPPROTO_UDPLITE)
udp(socket.AF_INET6, "::1", 6006, proto=IPPROTO_UDPLITE)
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
note(raw, IPPROTO_RAW, TCP_CLOSE, raw_port=socket.IPPROTO_ICMP)
ping = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
ping.bind(("127.0.0.1", 4242))
note(ping, socket.IPPROTO_ICMP, TCP_CLOSE)

dumps = []
sock = sockdiag.open_socket()
for family in sockdiag.FAMILIES:
    for proto in sockdiag.PROTOCOLS:
        chunks = []
        try:
            sockdiag.dump(sock, family, proto, recorder=chunks.append)
            error = 0
        except NetlinkError as e:
            error = e.errno
        dumps.append({"family": family, "proto": proto, "error": error,
                      "data": base64.b64encode(b"".join(chunks)).decode()})
procnet = {}
for name in ("tcp", "tcp6", "udp", "udp6", "udplite", "udplite6", "raw", "raw6", "icmp", "icmp6"):
    with open("/proc/net/" + name) as f:
        procnet[name] = f.read()
print(json.dumps({"byteorder": sys.byteorder, "kernel": os.uname().release,
                  "expected": expected, "dumps": dumps, "procnet": procnet}, indent=1))
"""


def main():
    ok, why = kernel_ready()
    if not ok:
        raise SystemExit("record_sockdiag: %s" % why)
    with Netns("sdrec", sysctls={}, ruleset=None) as ns:
        ns.run("sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 0")
        out = ns.run(sys.executable, "-c", CHILD, REPO).stdout
    data = json.loads(out)
    os.makedirs(os.path.dirname(FIXTURE), exist_ok=True)
    with open(FIXTURE, "w") as f:
        f.write(out)
    print("recorded %s: %d sockets, %d dumps (%d refused)" % (
        FIXTURE, len(data["expected"]), len(data["dumps"]),
        sum(1 for d in data["dumps"] if d["error"])))
    subprocess.run(["ls", "-l", FIXTURE])


if __name__ == "__main__":
    main()
