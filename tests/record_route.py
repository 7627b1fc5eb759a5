#!/usr/bin/env python3
"""Record the rtnetlink replies in tests/fixtures/route-*.bin from a namespace
set up here, with what iproute2 says about the same namespace beside them.

Run as root from the repo root:  python3 tests/record_route.py

* route-addr.bin: the RTM_GETADDR dump (every datagram as received, one
  after the other); route-addr.json: ``ip -j addr``.
* route-link.bin: the RTM_GETLINK dump; route-link.json: ``ip -j link``.
* route-routes.bin: the RTM_GETROUTE dump of every table; route-routes.json:
  ``ip -4 -j route show table all`` and ``ip -6 -j route show table all``.
* route-rules.bin: the RTM_GETRULE dump; route-rules.json: ``ip -4 -j rule`` and
  ``ip -6 -j rule``.
* route-get.bin: the replies to one send of several RTM_GETROUTE requests
  (plus the NOOP whose ACK ends the batch); route-get.json: per request its
  sequence number, arguments and ``ip -d -j route get`` (or its error).

The namespace has a veth pair - one end named with an escape character,
so the sanitizer has work - IPv4 and IPv6 addresses (a secondary with a
label), default routes, a fwmark rule to table 100, and unreachable,
prohibit and blackhole routes.
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.nsutil import REPO, Netns, have  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
ODD = "ft\x1bx"     # an interface name with ESC in it

SETUP = [
    ("ip", "link", "add", "va", "type", "veth", "peer", "name", ODD),
    ("ip", "link", "set", "va", "up"),
    ("ip", "link", "set", ODD, "up"),
    ("ip", "addr", "add", "10.77.1.1/24", "dev", "va"),
    ("ip", "addr", "add", "10.77.2.1/24", "dev", "va", "label", "va:sec"),
    ("ip", "addr", "add", "10.77.3.1", "peer", "10.77.3.2", "dev", ODD),
    ("ip", "-6", "addr", "add", "fd00:77:1::1/64", "dev", "va", "nodad"),
    ("ip", "route", "add", "default", "via", "10.77.1.254"),
    ("ip", "-6", "route", "add", "default", "via", "fd00:77:1::fe"),
    ("ip", "rule", "add", "fwmark", "7", "table", "100"),
    ("ip", "route", "add", "default", "via", "10.77.1.253", "table", "100"),
    ("ip", "route", "add", "unreachable", "10.98.0.0/16"),
    ("ip", "route", "add", "prohibit", "10.97.0.0/16"),
    ("ip", "route", "add", "blackhole", "10.96.0.0/16"),
    ("ip", "route", "add", "10.77.64.0/18", "via", "10.77.1.250", "metric", "20"),
    ("ip", "-6", "route", "add", "unreachable", "2001:db8:dead::/48"),
]

# (name, dst, mark)
LOOKUPS = [
    ("internet", "8.8.8.8", None),
    ("marked", "8.8.8.8", 7),
    ("onlink", "10.77.1.9", None),
    ("local", "10.77.1.1", None),
    ("secondary", "10.77.2.1", None),
    ("peer", "10.77.3.2", None),
    ("loopback", "127.0.0.1", None),
    ("local-net", "127.0.0.2", None),
    ("unreachable", "10.98.0.1", None),
    ("prohibit", "10.97.0.1", None),
    ("blackhole", "10.96.0.1", None),
    ("internet6", "2001:db8::1", None),
    ("onlink6", "fd00:77:1::9", None),
    ("local6", "fd00:77:1::1", None),
    ("loopback6", "::1", None),
    ("unreachable6", "2001:db8:dead::1", None),
]

# Runs inside the namespace: the three conversations, datagrams as received.
CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from flowtop.netlink import nlmsg, route, rtdump, rtlookup, session
from flowtop.netlink.session import DumpState
from flowtop.netlink.uapi import (NLM_F_ACK, NLM_F_REQUEST, NLMSG_NOOP, RTM_NEWADDR,
                                  RTM_NEWLINK, RTM_NEWROUTE, RTM_NEWRULE)
out_dir = sys.argv[2]
lookups = json.loads(sys.argv[3])
sock = route.open_socket()

def dump(name, request, mtype):
    seq = session.next_seq()
    sock.send(request(seq))
    chunks, state = [], DumpState()
    while not state.done:
        c = sock.recv()
        assert len(c) % 4 == 0, "unaligned datagram"
        chunks.append(c)
        route.feed(c, mtype, lambda *a: None, [], state, seq, sock.port)
    with open("%s/route-%s.bin" % (out_dir, name), "wb") as f:
        f.write(b"".join(chunks))
    return seq, len(chunks)

info = {"port": sock.port}
info["addr"] = dump("addr", route.addr_dump_request, RTM_NEWADDR)
info["link"] = dump("link", route.link_dump_request, RTM_NEWLINK)
info["routes"] = dump("routes", rtdump.route_dump_request, RTM_NEWROUTE)
info["rules"] = dump("rules", rtdump.rule_dump_request, RTM_NEWRULE)
seqs, parts = [], []
for dst, mark in lookups:
    seq = session.next_seq()
    seqs.append(seq)
    parts.append(rtlookup.route_request(seq, dst, mark=mark))
end = session.next_seq()
parts.append(nlmsg.pack(NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, end))
sock.send(b"".join(parts))
chunks, done = [], False
while not done:
    c = sock.recv()
    chunks.append(c)
    done = any(s == end for s, _i, _e in rtlookup.route_replies(c))
with open("%s/route-get.bin" % out_dir, "wb") as f:
    f.write(b"".join(chunks))
info["get"] = {"seqs": seqs, "end": end, "datagrams": len(chunks)}
print(json.dumps(info))
"""


def ip_json(ns, *args):
    r = ns.run("ip", "-j", *args, check=False)
    if r.returncode != 0:
        return {"error": r.stderr.strip()}
    return json.loads(r.stdout, strict=False)   # iproute2 leaves control characters raw


def main():
    if os.geteuid() != 0 or not have("ip"):
        raise SystemExit("record_route: needs root and ip")
    os.makedirs(FIXTURES, exist_ok=True)
    with Netns("rrt", sysctls={}, ruleset=None) as ns:
        for cmd in SETUP:
            ns.run(*cmd)
        ns.run("ip", "link", "set", "lo", "up")
        args = json.dumps([[dst, mark] for _n, dst, mark in LOOKUPS])
        info = json.loads(ns.run(sys.executable, "-c", CHILD, REPO, FIXTURES, args).stdout)
        addr = ip_json(ns, "addr")
        link = ip_json(ns, "link")
        routes = {"4": ip_json(ns, "-4", "route", "show", "table", "all"),
                  "6": ip_json(ns, "-6", "route", "show", "table", "all")}
        rules = {"4": ip_json(ns, "-4", "rule"), "6": ip_json(ns, "-6", "rule")}
        gets = []
        for (name, dst, mark), seq in zip(LOOKUPS, info["get"]["seqs"]):
            cmd = ["-d", "route", "get", dst] + (["mark", str(mark)] if mark is not None else [])
            gets.append({"name": name, "seq": seq, "dst": dst, "mark": mark,
                         "ip": ip_json(ns, *cmd)})
    meta = {"port": info["port"], "ip_version": subprocess.run(
        ["ip", "-V"], capture_output=True, text=True).stdout.strip(),
        "kernel": os.uname().release}
    for name, body in (("addr", {"seq": info["addr"][0], "ip": addr}),
                       ("link", {"seq": info["link"][0], "ip": link}),
                       ("routes", {"seq": info["routes"][0], "ip": routes}),
                       ("rules", {"seq": info["rules"][0], "ip": rules}),
                       ("get", {"end": info["get"]["end"], "lookups": gets})):
        body.update(meta)
        with open(os.path.join(FIXTURES, "route-%s.json" % name), "w") as f:
            json.dump(body, f, indent=1, sort_keys=True)
            f.write("\n")
    subprocess.run("ls -l %s/route-*" % FIXTURES, shell=True)


if __name__ == "__main__":
    main()
