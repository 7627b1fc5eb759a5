#!/usr/bin/env python3
"""Record the RTM_GETNEIGH dump in tests/fixtures/route-neigh.bin from a
namespace set up here, with ``ip -j neigh show nud all`` beside it
(route-neigh.json), as tests/record_route.py does for addresses and links.

Run as root from the repo root:  python3 tests/record_neigh.py

The namespace has a veth pair (the peer in a second namespace, so ARP and
NDP resolve for real), permanent IPv4/IPv6 entries, a stale one, and an
address that never answers (INCOMPLETE, then FAILED: no link-layer address).
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.nsutil import REPO, Netns, have  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")

CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from flowtop.netlink import neigh, route, session
from flowtop.netlink.conntrack import DumpState
from flowtop.netlink.uapi import RTM_NEWNEIGH
sock = route.open_socket()
seq = session.next_seq()
sock.send(neigh.neigh_dump_request(seq))
chunks, state = [], DumpState()
while not state.done:
    c = sock.recv()
    chunks.append(c)
    route.feed(c, RTM_NEWNEIGH, lambda *a: None, [], state, seq, sock.port)
with open("%s/route-neigh.bin" % sys.argv[2], "wb") as f:
    f.write(b"".join(chunks))
print(json.dumps({"seq": seq, "port": sock.port, "datagrams": len(chunks)}))
"""


def main():
    if os.geteuid() != 0 or not have("ip"):
        raise SystemExit("record_neigh: needs root and ip")
    with Netns("rnb", sysctls={}, ruleset=None) as r, Netns("rnc", sysctls={}, ruleset=None) as c:
        subprocess.run(["ip", "link", "add", "lan0", "netns", r.name, "type", "veth",
                        "peer", "name", "eth0", "netns", c.name], check=True)
        for ns, dev, a4, a6 in ((r, "lan0", "10.66.0.1/24", "fd66::1/64"),
                                (c, "eth0", "10.66.0.2/24", "fd66::2/64")):
            ns.run("ip", "link", "set", dev, "up")
            ns.run("ip", "addr", "add", a4, "dev", dev)
            ns.run("ip", "-6", "addr", "add", a6, "dev", dev, "nodad")
        r.run("ping", "-c", "1", "-W", "2", "10.66.0.2")
        r.run("ping", "-6", "-c", "1", "-W", "2", "fd66::2")
        r.run("ip", "neigh", "add", "10.66.0.50", "lladdr", "02:00:00:00:00:50", "dev", "lan0",
              "nud", "permanent")
        r.run("ip", "neigh", "add", "fd66::50", "lladdr", "02:00:00:00:00:50", "dev", "lan0",
              "nud", "permanent")
        r.run("ip", "neigh", "add", "10.66.0.51", "lladdr", "02:00:00:00:00:51", "dev", "lan0",
              "nud", "stale")
        r.run("ping", "-c", "1", "-W", "1", "10.66.0.99", check=False)   # nobody: INCOMPLETE/FAILED
        time.sleep(0.5)
        info = json.loads(r.run(sys.executable, "-c", CHILD, REPO, FIXTURES).stdout)
        ip = json.loads(r.run("ip", "-j", "neigh", "show", "nud", "all").stdout)
    info.update(ip=ip, kernel=os.uname().release, ip_version=subprocess.run(
        ["ip", "-V"], capture_output=True, text=True).stdout.strip())
    with open(os.path.join(FIXTURES, "route-neigh.json"), "w") as f:
        json.dump(info, f, indent=1, sort_keys=True)
        f.write("\n")
    subprocess.run("ls -l %s/route-neigh*" % FIXTURES, shell=True)


if __name__ == "__main__":
    main()
