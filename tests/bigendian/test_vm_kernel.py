"""flowtop on a big-endian kernel: run inside the s390x VM (scripts/vm/, tests/bigendian/vm-run.sh).

The mixed table of tests/kernel/test_snapshot_kernel.py (real TCP/UDP over v4 and v6,
ICMP, ICMPv6, SCTP, UDP-lite, GRE, DCCP, a mark, a zone) plus a NATed flow made by
real traffic through an nftables DNAT rule, against ``conntrack -L -o extended,id``
with that file's own comparison.  Outside a big-endian VM these tests skip.
"""

import os
import socket
import sys

import pytest

from flowtop.netlink import uapi
from tests.kernel import test_snapshot_kernel as snap
from tests.nsutil import RULESET, Netns, kernel_ready, populate

_READY, _WHY = kernel_ready()
pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(sys.byteorder != "big" or not _READY,
                       reason="only in the big-endian VM (scripts/ci-bigendian.sh)"),
]

# Real traffic to 127.0.0.1:9999/udp is rewritten to port 5353 (the UDP server populate runs).
NAT_RULESET = RULESET + """\
table ip flowtop_nat {
    chain output {
        type nat hook output priority -100; policy accept;
        udp dport 9999 dnat to 127.0.0.1:5353
    }
}
"""


def _expected_with_dccp_ports(e):
    """test_snapshot_kernel.expected, for a kernel that tracks DCCP itself
    (CONFIG_NF_CT_PROTO_DCCP, as Debian's 6.1 has): conntrack prints its ports."""
    o, r = e["orig"], e["reply"]
    if e["l4proto"] != snap.DCCP or not (o.get("sport") or o.get("dport")):
        return _plain_expected(e)
    want = _plain_expected(dict(e, orig=dict(o, sport=0, dport=0), reply=dict(r, sport=0, dport=0)))
    want.update(sport=o["sport"], dport=o["dport"], reply_sport=r["sport"], reply_dport=r["dport"])
    return want


_plain_expected = snap.expected


def test_the_guest_is_big_endian_with_its_own_kernel():
    assert sys.byteorder == "big"
    assert os.uname().machine == "s390x"


def test_mixed_table_with_nat_matches_conntrack_field_by_field(monkeypatch):
    monkeypatch.setattr(snap, "expected", _expected_with_dccp_ports)
    with Netns("i12be", ruleset=NAT_RULESET) as ns:
        ports = populate(ns)
        ns.run(sys.executable, "-c", "import socket; s = socket.socket(socket.AF_INET, "
               "socket.SOCK_DGRAM); s.sendto(b'n', ('127.0.0.1', 9999))")
        before, after, out = snap.snapshot_vs_conntrack(ns, "--once", "--json", "--no-sysctl")
        recs = snap.parse_json(out)
        snap.compare(before, after, recs)
        nat = [r for r in recs if r["proto"] == "udp" and r["dport"] == 9999]
        assert [(r["reply_src"], r["reply_sport"]) for r in nat] == [("127.0.0.1", 5353)], nat
        assert "DST_NAT" in nat[0]["status"], nat[0]
        dccp = [r for r in recs if r["proto"] == "dccp"]
        assert len(dccp) == 1, dccp
        ct_dccp = [e for e in before.values() if e["l4proto"] == snap.DCCP]
        tracked = bool(ct_dccp[0]["orig"].get("sport"))      # Debian's 6.1: yes
        want = (7, 8) if tracked else (None, None)
        assert (dccp[0]["sport"], dccp[0]["dport"]) == want, dccp
        kinds = {(r["family"], r["proto"]) for r in recs}
        for k in [("ipv4", "tcp"), ("ipv6", "tcp"), ("ipv4", "udp"), ("ipv6", "udp"),
                  ("ipv4", "icmp"), ("ipv6", "icmpv6"), ("ipv4", "sctp"), ("ipv4", "udplite"),
                  ("ipv4", "gre"), ("ipv4", "dccp")]:
            assert k in kinds, (k, sorted(kinds))
        assert [r["mark"] for r in recs if r["dport"] == 5001] == [42]
        assert any(r["zone"] == 3 for r in recs)
        assert ports["tcp4"] in {r["sport"] for r in recs}


def test_netlink_netfilter_opens_here_unlike_under_qemu_user():
    # The reason for the VM: qemu-user refuses NETLINK_NETFILTER sockets.
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, uapi.NETLINK_NETFILTER)
    s.close()
