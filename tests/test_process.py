"""The process enricher on a fake /proc (no root): socket tables in the
kernel's text format, /proc/PID/fd links, comm/status/cmdline; and the
sock_diag decoder on recorded dumps."""

import base64
import errno
import json
import os
import random
import shutil
import socket
import struct
import sys

import pytest

from flowtop.enrich import process as proc
from flowtop.enrich.process import FORWARDED, ProcessMap, ProcInfo, parse_proc_net
from flowtop.netlink import nlmsg, sockdiag
from flowtop.netlink.ctnetlink import CtEntry
from flowtop.netlink.errors import DecodeError, NetlinkError
from flowtop.netlink.uapi import (
    AF_INET, AF_INET6, IPPROTO_ICMP, IPPROTO_RAW, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE,
    NLMSG_DONE, NLMSG_ERROR, SOCK_DIAG_BY_FAMILY, TCP_CLOSE, TCP_ESTABLISHED, TCP_LISTEN,
)
from tests.clock import Clock
from tests.viewutil import UNSAFE

TCP, UDP = IPPROTO_TCP, IPPROTO_UDP
EST, CLOSE, LISTEN = TCP_ESTABLISHED, TCP_CLOSE, TCP_LISTEN
FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "sockdiag-dump.json")
LOCAL = {"10.0.0.1", "2001:db8::1"}


# --- /proc/net text, written the way the kernel writes it ---------------------------

def hexaddr(addr):
    """The kernel's %08X per 32-bit word of the address, in host order."""
    if ":" in addr:
        words = struct.unpack("=4I", socket.inet_pton(socket.AF_INET6, addr))
        return "".join("%08X" % w for w in words)
    return "%08X" % struct.unpack("=I", socket.inet_pton(socket.AF_INET, addr))[0]


_V4_HEAD = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
            "   uid  timeout inode")
_V6_HEAD = ("  sl  local_address                         remote_address                        "
            "st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode")


def proc_net_text(name, rows):
    """A /proc/net/NAME table: tcp_ipv4.c get_tcp4_sock, tcp_ipv6.c
    get_tcp6_sock, udp.c udp4_format_sock, ipv6/datagram.c
    __ip6_dgram_sock_seq_show (udp6, raw6, icmp6), raw.c, ping.c."""
    v6 = name.endswith("6")
    tcp = name.startswith("tcp")
    head = (_V6_HEAD if v6 else _V4_HEAD) + ("" if tcp else " ref pointer drops")
    if name == "udp" or name == "udplite":
        head = " " + head
    out = [head if v6 else "%-*s" % (149 if tcp else 127, head)]
    for i, (la, lp, ra, rp, state, uid, inode) in enumerate(rows):
        common = "%s:%04X %s:%04X %02X %08X:%08X %02X:%08X %08X %5u %8d %u" % (
            hexaddr(la), lp, hexaddr(ra), rp, state, 0, 0, 0, 0, 0, uid, 0, inode)
        if tcp:
            line = ("%4d: " % i) + common + " %d %016x %u %u %u %u %d" % (
                2, 0xffff888000000000 + i, 20, 4, 30, 10, -1)
            out.append(line if v6 else "%-149s" % line)
        else:
            line = ("%5d: " if name in ("udp", "udplite", "udp6", "udplite6") else "%4d: ") % i
            line += common + " %d %016x %u" % (2, 0xffff888000000000 + i, 0)
            out.append(line if v6 else "%-127s" % line)
    return "\n".join(out) + "\n"


class FakeProc:
    """A /proc in a temp dir: net/* tables and /proc/PID/{fd,comm,status,cmdline}."""

    NAMES = [n for n, _p, _f in proc.PROC_NET]

    def __init__(self, root):
        self.root = root
        self.net = {n: [] for n in self.NAMES}
        self.fds = {}
        os.makedirs(os.path.join(root, "net"))
        self.write_net()

    @property
    def path(self):
        return str(self.root)

    def sock(self, name, la, lp, ra, rp, state, inode, uid=0):
        self.net[name].append((la, lp, ra, rp, state, uid, inode))
        self.write_net()
        return inode

    def unsock(self, inode):
        for rows in self.net.values():
            rows[:] = [r for r in rows if r[-1] != inode]
        self.write_net()

    def write_net(self):
        for name, rows in self.net.items():
            with open(os.path.join(self.root, "net", name), "w") as f:
                f.write(proc_net_text(name, rows))

    def process(self, pid, comm, inodes=(), uid=1000, cmdline=None, others=2):
        d = os.path.join(self.root, str(pid))
        os.makedirs(os.path.join(d, "fd"))
        with open(os.path.join(d, "comm"), "wb") as f:
            f.write((comm.encode() if isinstance(comm, str) else comm) + b"\n")
        with open(os.path.join(d, "status"), "w") as f:
            f.write("Name:\t%s\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t%d\nPid:\t%d\n"
                    "PPid:\t1\nUid:\t%d\t%d\t%d\t%d\nGid:\t0\t0\t0\t0\n" % (
                        "x", pid, pid, uid, uid, uid, uid))
        with open(os.path.join(d, "cmdline"), "wb") as f:
            f.write(cmdline if cmdline is not None else b"")
        self.fds[pid] = 0
        for _ in range(others):
            self._link(pid, "/dev/null")
        self._link(pid, "pipe:[77]")
        self._link(pid, "socket:[999999]")        # a unix socket: not in any table
        for ino in inodes:
            self.add_fd(pid, ino)

    def _link(self, pid, target):
        fd = self.fds[pid]
        self.fds[pid] += 1
        os.symlink(target, os.path.join(self.root, str(pid), "fd", str(fd)))
        return fd

    def add_fd(self, pid, inode):
        return self._link(pid, "socket:[%d]" % inode)

    def close_fd(self, pid, inode):
        d = os.path.join(self.root, str(pid), "fd")
        for name in os.listdir(d):
            if os.readlink(os.path.join(d, name)) == "socket:[%d]" % inode:
                os.unlink(os.path.join(d, name))

    def kill(self, pid):
        shutil.rmtree(os.path.join(self.root, str(pid)))


def fd_count(path):
    """What Linux 6.2+ reports as st_size of /proc/PID/fd."""
    return len(os.listdir(path))


def make_map(fake, clock=None, **kw):
    kw.setdefault("local_addresses", LOCAL)
    kw.setdefault("user_name", {1000: "alice", 0: "root"}.get)
    kw.setdefault("fd_count", fd_count)
    return ProcessMap(proc_root=fake.path, clock=clock or Clock(), **kw)


def flow(proto, src, sport, dst, dport, reply=None, icmp_id=None):
    rs, rsp, rd, rdp = reply or (dst, dport, src, sport)
    return CtEntry(family=AF_INET6 if ":" in src else AF_INET, l4proto=proto,
                   src=src, dst=dst, sport=sport, dport=dport,
                   reply_src=rs, reply_dst=rd, reply_sport=rsp, reply_dport=rdp,
                   icmp_id=icmp_id, key=("%s %s %s %s %s %s" % (
                       proto, src, sport, dst, dport, icmp_id)).encode())


@pytest.fixture
def fake(tmp_path):
    return FakeProc(str(tmp_path / "proc"))


# --- matching ------------------------------------------------------------------------

def test_outgoing_tcp_is_the_client(fake):
    fake.sock("tcp", "10.0.0.1", 40000, "93.184.216.34", 443, EST, 1001)
    fake.process(100, "curl", [1001])
    m = make_map(fake)
    m.refresh()
    e = flow(TCP, "10.0.0.1", 40000, "93.184.216.34", 443)
    assert m.lookup(e) == ProcInfo(100, "curl", "alice")
    assert m.lookup_both(e) == (ProcInfo(100, "curl", "alice"), None)
    assert m.stats.sockets == 1 and m.stats.unresolved == 0


def test_incoming_tcp_accepted_listening_and_unknown(fake):
    fake.sock("tcp", "0.0.0.0", 22, "0.0.0.0", 0, LISTEN, 2001)
    fake.sock("tcp", "10.0.0.1", 22, "198.51.100.7", 50000, EST, 2002)
    fake.process(200, "sshd", [2001], uid=0)
    fake.process(201, "sshd-session", [2002], uid=0)
    m = make_map(fake)
    m.refresh()
    accepted = flow(TCP, "198.51.100.7", 50000, "10.0.0.1", 22)
    assert m.lookup_both(accepted) == (None, ProcInfo(201, "sshd-session", "root"))
    assert m.lookup(accepted).pid == 201
    queued = flow(TCP, "198.51.100.7", 50001, "10.0.0.1", 22)   # not accepted yet
    assert m.lookup(queued).pid == 200
    assert m.lookup(flow(TCP, "198.51.100.7", 50002, "10.0.0.1", 23)) is None
    # a listener never originates: an outgoing flow from port 22 is not sshd's
    assert m.lookup(flow(TCP, "10.0.0.1", 22, "198.51.100.7", 443)) is None


def test_loopback_flow_names_both_ends(fake):
    fake.sock("tcp", "127.0.0.1", 5001, "0.0.0.0", 0, LISTEN, 3001)
    fake.sock("tcp", "127.0.0.1", 41000, "127.0.0.1", 5001, EST, 3002)
    fake.sock("tcp", "127.0.0.1", 5001, "127.0.0.1", 41000, EST, 3003)
    fake.process(300, "client", [3002])
    fake.process(301, "server", [3001, 3003])
    m = make_map(fake, local_addresses=set())      # 127/8 is always local
    m.refresh()
    orig, reply = m.lookup_both(flow(TCP, "127.0.0.1", 41000, "127.0.0.1", 5001))
    assert (orig.pid, orig.name, reply.pid, reply.name) == (300, "client", 301, "server")


def test_udp_connected_unconnected_and_wildcard(fake):
    fake.sock("udp", "10.0.0.1", 53000, "9.9.9.9", 53, EST, 4001)     # connected client
    fake.sock("udp", "0.0.0.0", 41000, "0.0.0.0", 0, CLOSE, 4002)     # sendto() client
    fake.sock("udp", "0.0.0.0", 5353, "0.0.0.0", 0, CLOSE, 4003)      # wildcard server
    fake.sock("udp", "10.0.0.1", 123, "0.0.0.0", 0, CLOSE, 4004)      # bound to one address
    fake.process(400, "resolver", [4001])
    fake.process(401, "ntpclient", [4002])
    fake.process(402, "mdns", [4003])
    fake.process(403, "ntpd", [4004])
    m = make_map(fake)
    m.refresh()
    assert m.lookup(flow(UDP, "10.0.0.1", 53000, "9.9.9.9", 53)).name == "resolver"
    assert m.lookup(flow(UDP, "10.0.0.1", 41000, "1.1.1.1", 123)).name == "ntpclient"
    assert m.lookup_both(flow(UDP, "192.0.2.9", 5353, "10.0.0.1", 5353))[1].name == "mdns"
    assert m.lookup(flow(UDP, "192.0.2.9", 123, "10.0.0.1", 123)).name == "ntpd"
    # the wildcard socket is no match for an address that is not ours
    assert m.lookup(flow(UDP, "192.0.2.9", 5353, "192.0.2.10", 5353)) is FORWARDED


def test_flows_on_ports_no_socket_has_cost_no_socket_lookup(fake, monkeypatch):
    fake.sock("udp", "0.0.0.0", 5353, "0.0.0.0", 0, CLOSE, 4003)
    fake.sock("tcp", "10.0.0.1", 40000, "93.184.216.34", 443, EST, 1001)
    fake.process(402, "mdns", [4003, 1001])
    m = make_map(fake)
    m.refresh()
    sides = []
    real = m._side
    monkeypatch.setattr(m, "_side", lambda *a: sides.append(a) or real(*a))
    # a big table's flows mostly match no socket: no dict walk for them
    assert m.lookup_both(flow(UDP, "10.0.0.1", 41000, "1.1.1.1", 123)) == (None, None)
    assert m.lookup(flow(UDP, "192.0.2.9", 41000, "192.0.2.10", 123)) is FORWARDED
    assert m.lookup(flow(TCP, "10.0.0.1", 40001, "93.184.216.34", 444)) is None
    assert sides == []
    # and a flow on a socket's port is still looked up, on that side only
    assert m.lookup_both(flow(UDP, "192.0.2.9", 5353, "10.0.0.1", 5353))[1].name == "mdns"
    assert m.lookup(flow(TCP, "10.0.0.1", 40000, "93.184.216.34", 443)).name == "mdns"
    assert len(sides) == 3


def test_router_forwarded_flows_are_not_the_local_dns_server(fake):
    fake.sock("udp", "0.0.0.0", 53, "0.0.0.0", 0, CLOSE, 5001)
    fake.sock("tcp", "0.0.0.0", 80, "0.0.0.0", 0, LISTEN, 5002)
    fake.process(500, "dnsmasq", [5001, 5002], uid=0)
    m = make_map(fake, local_addresses={"192.168.1.1", "203.0.113.5"})
    m.refresh()
    lan_dns = flow(UDP, "192.168.1.50", 40000, "9.9.9.9", 53,
                   reply=("9.9.9.9", 53, "203.0.113.5", 40000))          # masqueraded
    assert m.lookup(lan_dns) is FORWARDED
    assert m.lookup_both(lan_dns) == (FORWARDED, FORWARDED)
    assert m.lookup(flow(UDP, "192.168.1.50", 40001, "192.168.1.1", 53)).name == "dnsmasq"
    # DNAT to a LAN server: orig dst is ours, the real destination is not
    dnat = flow(TCP, "198.51.100.7", 5555, "203.0.113.5", 80,
                reply=("192.168.1.10", 80, "198.51.100.7", 5555))
    assert m.lookup(dnat) is FORWARDED


def test_dnat_to_a_local_port_matches_the_reply_tuple(fake):
    fake.sock("tcp", "10.0.0.1", 8080, "198.51.100.7", 5555, EST, 5101)
    fake.process(510, "webapp", [5101])
    m = make_map(fake)
    m.refresh()
    e = flow(TCP, "198.51.100.7", 5555, "10.0.0.1", 80,
             reply=("10.0.0.1", 8080, "198.51.100.7", 5555))
    assert m.lookup(e).name == "webapp"


def test_ipv6_and_ipv4_mapped(fake):
    fake.sock("tcp6", "2001:db8::1", 50000, "2001:db8::2", 443, EST, 6001)
    fake.sock("tcp6", "::", 8080, "::", 0, LISTEN, 6002)
    fake.sock("tcp6", "::ffff:10.0.0.1", 8080, "::ffff:198.51.100.9", 40001, EST, 6003)
    fake.sock("udp6", "::", 5354, "::", 0, CLOSE, 6004)             # dual-stack, wildcard
    fake.sock("udp6", "2001:db8::1", 41000, "2001:db8::53", 53, EST, 6005)
    fake.process(600, "client6", [6001, 6005])
    fake.process(601, "dualstack", [6002, 6003, 6004])
    m = make_map(fake)
    m.refresh()
    assert m.lookup(flow(TCP, "2001:db8::1", 50000, "2001:db8::2", 443)).pid == 600
    assert m.lookup(flow(UDP, "2001:db8::1", 41000, "2001:db8::53", 53)).pid == 600
    assert m.lookup(flow(TCP, "198.51.100.9", 40001, "10.0.0.1", 8080)).pid == 601   # mapped
    assert m.lookup(flow(TCP, "198.51.100.9", 40002, "10.0.0.1", 8080)).pid == 601   # listener
    assert m.lookup(flow(TCP, "2001:db8::7", 40003, "2001:db8::1", 8080)).pid == 601
    assert m.lookup(flow(UDP, "2001:db8::7", 9, "2001:db8::1", 5354)).pid == 601
    assert m.lookup(flow(UDP, "192.0.2.7", 9, "10.0.0.1", 5354)).pid == 601          # v4 on ::
    assert m.lookup(flow(TCP, "2001:db8::7", 1, "2001:db8::8", 8080)) is FORWARDED


def test_ipv4_wildcard_is_preferred_to_the_dual_stack_one(fake):
    fake.sock("udp", "0.0.0.0", 53, "0.0.0.0", 0, CLOSE, 6101)
    fake.sock("udp6", "::", 53, "::", 0, CLOSE, 6102)
    fake.process(610, "dns4", [6101])
    fake.process(611, "dns6", [6102])
    m = make_map(fake)
    m.refresh()
    assert m.lookup(flow(UDP, "192.0.2.7", 9, "10.0.0.1", 53)).name == "dns4"
    assert m.lookup(flow(UDP, "2001:db8::7", 9, "2001:db8::1", 53)).name == "dns6"


def test_udplite_ping_and_raw(fake):
    fake.sock("udplite", "10.0.0.1", 6005, "0.0.0.0", 0, CLOSE, 7001)
    fake.sock("icmp", "10.0.0.1", 4242, "0.0.0.0", 0, CLOSE, 7002)       # ping socket, id 4242
    fake.sock("raw", "0.0.0.0", IPPROTO_ICMP, "0.0.0.0", 0, CLOSE, 7003)  # raw ICMP
    fake.sock("raw", "0.0.0.0", 47, "0.0.0.0", 0, CLOSE, 7004)            # raw GRE
    fake.process(700, "lite", [7001])
    fake.process(701, "ping", [7002])
    fake.process(702, "rawping", [7003])
    fake.process(703, "gred", [7004])
    m = make_map(fake)
    m.refresh()
    assert m.lookup(flow(IPPROTO_UDPLITE, "192.0.2.7", 9, "10.0.0.1", 6005)).name == "lite"
    ping = flow(IPPROTO_ICMP, "10.0.0.1", None, "192.0.2.7", None, icmp_id=4242)
    assert m.lookup_both(ping) == (ProcInfo(701, "ping", "alice"), None)
    other = flow(IPPROTO_ICMP, "10.0.0.1", None, "192.0.2.7", None, icmp_id=7)
    assert m.lookup(other).name == "rawping"
    incoming = flow(IPPROTO_ICMP, "192.0.2.7", None, "10.0.0.1", None, icmp_id=7)
    assert m.lookup(incoming) is None                    # the kernel answers it
    assert m.lookup(flow(47, "10.0.0.1", None, "192.0.2.7", None)).name == "gred"


# --- caching, exits, rescans -------------------------------------------------------------

def test_exited_process_keeps_its_name_until_the_flow_is_gone(fake):
    fake.sock("tcp", "10.0.0.1", 40000, "93.184.216.34", 443, EST, 8001)
    fake.process(800, "wget", [8001])
    m = make_map(fake)
    m.refresh()
    e = flow(TCP, "10.0.0.1", 40000, "93.184.216.34", 443)
    assert m.lookup(e) == ProcInfo(800, "wget", "alice")
    fake.unsock(8001)
    fake.kill(800)
    m.refresh()
    assert m.lookup(e) == ProcInfo(800, "wget", "alice")
    m.retain({e.key})
    m.refresh()
    assert m.lookup(e) == ProcInfo(800, "wget", "alice")
    m.retain(set())
    m.refresh()
    assert m.lookup(e) is None
    m.lookup(e)
    m.forget([e.key])


def test_forgetting_a_ticks_answers_keeps_the_names_found(fake):
    fake.sock("tcp", "10.0.0.1", 40000, "93.184.216.34", 443, EST, 8001)
    fake.process(800, "wget", [8001])
    m = make_map(fake)
    m.refresh()
    assert m.answers == {}              # a Processes view reads them: they are kept
    e = flow(TCP, "10.0.0.1", 40000, "93.184.216.34", 443)
    others = [flow(TCP, "10.0.0.1", 40000, "192.0.2.%d" % i, 443) for i in range(50)]
    assert m.lookup(e).name == "wget" and [m.lookup(f) for f in others] == [None] * 50
    assert len(m.answers) == 51
    m.forget_answers()
    assert m.answers == {} and m.lookup(e).name == "wget"


def test_short_lived_client_is_named_before_it_exits(fake):
    """The name is read when the PID is scanned, not when first looked up."""
    fake.sock("tcp", "10.0.0.1", 40001, "93.184.216.34", 80, EST, 8101)
    fake.process(810, "curl", [8101])
    m = make_map(fake)
    m.refresh()
    fake.kill(810)                                       # gone before anybody asks
    assert m.lookup(flow(TCP, "10.0.0.1", 40001, "93.184.216.34", 80)).name == "curl"


def _crowd(fake, n=40, per=3):
    ino = 20000
    for pid in range(1000, 1000 + n):
        inodes = []
        for _ in range(per):
            ino += 1
            fake.net["tcp"].append(("10.0.0.1", ino % 60000 + 1024, "192.0.2.1", 443, EST, 0, ino))
            inodes.append(ino)
        fake.process(pid, "worker%d" % pid, inodes)
    fake.write_net()


def test_rescan_only_for_unknown_inodes(fake):
    _crowd(fake)
    clock = Clock()
    m = make_map(fake, clock)
    m.refresh()
    first = m.stats
    per_pid = 3 + 2 + 2                                  # sockets, /dev/null x2, pipe, unix
    assert first.pids_scanned == 40 and first.fds == 40 * per_pid
    assert first.sockets == 120 and first.unresolved == 0 and first.info_reads == 40

    clock.t += 1
    m.refresh()                                          # nothing new: no /proc access at all
    assert (m.stats.pids_stat, m.stats.pids_scanned, m.stats.fds) == (0, 0, 0)

    fake.process(2000, "newcomer", [fake.sock("tcp", "10.0.0.1", 7000, "192.0.2.1", 443, EST,
                                              30001)])
    clock.t += 1
    m.refresh()                                          # a new PID: only it is read
    assert m.stats.pids_scanned == 1 and m.stats.fds == 5 and not m.stats.full_scan
    assert m.stats.pids_stat == 1                        # the highest PID comes first
    assert m.lookup(flow(TCP, "10.0.0.1", 7000, "192.0.2.1", 443)).name == "newcomer"

    fake.add_fd(1005, fake.sock("tcp", "10.0.0.1", 7001, "192.0.2.1", 443, EST, 30002))
    clock.t += 1
    m.refresh()                                          # one process's count changed
    assert m.stats.pids_scanned == 1 and m.stats.fds == per_pid + 1 and not m.stats.full_scan
    assert m.lookup(flow(TCP, "10.0.0.1", 7001, "192.0.2.1", 443)).pid == 1005


def test_same_count_swap_gets_a_full_pass_and_kernel_sockets_stop_costing(fake):
    _crowd(fake, n=10)
    clock = Clock()
    m = make_map(fake, clock, retry_interval=5.0)
    m.refresh()
    # pid 1003 closes a socket and opens another: its fd count is unchanged
    fake.close_fd(1003, 20010)
    fake.unsock(20010)
    fake.add_fd(1003, fake.sock("tcp", "10.0.0.1", 7100, "192.0.2.1", 443, EST, 31000))
    clock.t += 10
    m.refresh()
    assert m.stats.full_scan and m.stats.unresolved == 0
    assert m.lookup(flow(TCP, "10.0.0.1", 7100, "192.0.2.1", 443)).pid == 1003

    fake.sock("udp", "0.0.0.0", 51820, "0.0.0.0", 0, CLOSE, 32000)   # a kernel socket
    clock.t += 10
    m.refresh()
    assert m.stats.full_scan and m.stats.unresolved == 1
    scanned = m.stats.fds
    clock.t += 1
    m.refresh()                                          # missed: no pass within the interval
    assert (m.stats.pids_stat, m.stats.fds, m.stats.full_scan) == (0, 0, False)
    clock.t += 10
    m.refresh()                                          # retried cheaply: counts only
    assert m.stats.pids_stat == 10 and m.stats.fds == 0 and not m.stats.full_scan
    assert scanned > 0
    assert m.lookup(flow(UDP, "10.0.0.1", 51820, "192.0.2.1", 51820)) is None


def test_without_fd_counts_new_sockets_of_old_processes_are_found_by_full_passes(fake):
    """Before Linux 6.2 st_size is 0: every known PID looks unchanged."""
    _crowd(fake, n=5)
    clock = Clock()
    m = make_map(fake, clock, retry_interval=2.0, fd_count=lambda path: 0)
    m.refresh()
    fake.add_fd(1002, fake.sock("tcp", "10.0.0.1", 7200, "192.0.2.1", 443, EST, 33000))
    clock.t += 1
    m.refresh()
    assert m.stats.full_scan and m.stats.unresolved == 0
    fake.add_fd(1003, fake.sock("tcp", "10.0.0.1", 7201, "192.0.2.1", 443, EST, 33001))
    clock.t += 0.5
    m.refresh()                                          # the last full pass is too recent
    assert m.stats.unresolved == 1 and not m.stats.full_scan
    assert m.lookup(flow(TCP, "10.0.0.1", 7201, "192.0.2.1", 443)) is None
    clock.t += 2
    m.refresh()
    assert m.stats.full_scan and m.stats.unresolved == 0
    assert m.lookup(flow(TCP, "10.0.0.1", 7200, "192.0.2.1", 443)).pid == 1002
    assert m.lookup(flow(TCP, "10.0.0.1", 7201, "192.0.2.1", 443)).pid == 1003


def test_shared_socket_moves_to_the_surviving_process(fake):
    fake.sock("tcp", "0.0.0.0", 80, "0.0.0.0", 0, LISTEN, 9001)
    fake.process(900, "nginx", [9001])
    m = make_map(fake)
    m.refresh()
    fake.process(901, "nginx-worker", [9001])            # forked: shares the listener
    fake.sock("tcp", "10.0.0.1", 80, "192.0.2.4", 1234, EST, 9002)
    fake.add_fd(901, 9002)
    m.refresh()
    fake.kill(900)
    fake.sock("tcp", "10.0.0.1", 80, "192.0.2.4", 1235, EST, 9003)
    fake.add_fd(901, 9003)
    m.refresh()
    assert m.lookup(flow(TCP, "192.0.2.4", 1300, "10.0.0.1", 80)).pid == 901


# --- untrusted /proc ---------------------------------------------------------------------

HOSTILE = "\x1b[2Jevil\n\u202ename"


def test_hostile_and_truncated_names_are_sanitized(fake):
    full = HOSTILE.encode()
    fake.sock("tcp", "10.0.0.1", 1, "192.0.2.1", 443, EST, 10001)
    fake.sock("tcp", "10.0.0.1", 2, "192.0.2.1", 443, EST, 10002)
    fake.sock("tcp", "10.0.0.1", 3, "192.0.2.1", 443, EST, 10003)
    fake.sock("tcp", "10.0.0.1", 4, "192.0.2.1", 443, EST, 10004)
    # comm is the first 15 bytes of the file name; argv[0]'s basename extends it
    fake.process(1100, full[:15], [10001], cmdline=b"/tmp/x/" + full + b"\0-c\0code\0")
    fake.process(1101, b"\xff\xfebad\xe2\x80", [10002], uid=4242)       # broken UTF-8
    fake.process(1102, "abcdefghijklmno", [10003], cmdline=b"/usr/bin/other\0")
    fake.process(1103, "\u202egnp.exe", [10004], cmdline=b"x" * 100000)
    m = make_map(fake)
    m.refresh()
    names = {}
    for port in (1, 2, 3, 4):
        p = m.lookup(flow(TCP, "10.0.0.1", port, "192.0.2.1", 443))
        names[p.pid] = p
        assert not UNSAFE.search(p.name) and not UNSAFE.search(p.user)
    assert names[1100].name == "?[2Jevil??name"
    assert names[1101].name.endswith("bad\ufffd") and names[1101].user == "4242"
    assert names[1102].name == "abcdefghijklmno"        # argv[0] is something else
    assert names[1103].name == "?gnp.exe"


def test_odd_proc_contents_and_races_do_not_crash(fake, monkeypatch):
    for i in range(6):
        fake.sock("tcp", "10.0.0.1", 100 + i, "192.0.2.1", 443, EST, 11000 + i)
    fake.process(1200, "nocomm", [11000])
    os.unlink(os.path.join(fake.path, "1200", "comm"))              # vanished mid-read
    fake.process(1201, "nostatus", [11001])
    with open(os.path.join(fake.path, "1201", "status"), "wb") as f:
        f.write(b"\0" * 50000 + b"\nUid:\tnope\n")
    fake.process(1202, "linkjunk", [11002])
    os.symlink("socket:[not-a-number]", os.path.join(fake.path, "1202", "fd", "50"))
    os.symlink("socket:[11003", os.path.join(fake.path, "1202", "fd", "51"))
    os.makedirs(os.path.join(fake.path, "1203"))                    # no fd dir at all
    os.makedirs(os.path.join(fake.path, "1204"))
    with open(os.path.join(fake.path, "1204", "fd"), "w") as f:     # fd is a file
        f.write("x")
    fake.process(1205, "flaky", [11004, 11005])
    real = os.readlink

    def flaky(path, *a, **kw):
        if "/1205/fd/" in str(path) and real(path) == "socket:[11005]":
            raise OSError(errno.ENOENT, "gone")
        return real(path, *a, **kw)

    monkeypatch.setattr(os, "readlink", flaky)
    with open(os.path.join(fake.path, "net", "tcp"), "a") as f:
        f.write("garbage line\n  9: ZZZZ:0001 0100007F:0002 01 0 0 0 0 0 12 13\n\n")
    m = make_map(fake)
    m.refresh()
    assert m.lookup(flow(TCP, "10.0.0.1", 100, "192.0.2.1", 443)) is None   # no comm
    p = m.lookup(flow(TCP, "10.0.0.1", 101, "192.0.2.1", 443))
    assert (p.name, p.user) == ("nostatus", None)
    assert m.lookup(flow(TCP, "10.0.0.1", 102, "192.0.2.1", 443)).name == "linkjunk"
    assert m.lookup(flow(TCP, "10.0.0.1", 104, "192.0.2.1", 443)).name == "flaky"
    assert m.lookup(flow(TCP, "10.0.0.1", 105, "192.0.2.1", 443)) is None
    assert m.stats.sockets == 6


def test_missing_proc_net_and_proc_root(tmp_path):
    m = ProcessMap(proc_root=str(tmp_path / "nothing"), local_addresses=set())
    m.refresh()
    assert m.stats.sockets == 0 and m.stats.source == "proc"
    assert m.lookup(flow(TCP, "10.0.0.1", 1, "192.0.2.1", 2)) is FORWARDED
    assert m.lookup(CtEntry(family=7, l4proto=6, key=b"k")) is None


def test_users_via_pwd_by_default(fake):
    fake.sock("tcp", "10.0.0.1", 1, "192.0.2.1", 443, EST, 12001)
    fake.sock("tcp", "10.0.0.1", 2, "192.0.2.1", 443, EST, 12002)
    fake.process(1300, "rooty", [12001], uid=0)
    fake.process(1301, "nobodyknows", [12002], uid=3999999)
    m = ProcessMap(proc_root=fake.path, local_addresses=LOCAL)
    m.refresh()
    pwd = pytest.importorskip("pwd")
    assert m.lookup(flow(TCP, "10.0.0.1", 1, "192.0.2.1", 443)).user == pwd.getpwuid(0).pw_name
    assert m.lookup(flow(TCP, "10.0.0.1", 2, "192.0.2.1", 443)).user == "3999999"


# --- local addresses -------------------------------------------------------------------

def test_fallback_local_addresses_from_proc(fake):
    with open(os.path.join(fake.path, "net", "if_inet6"), "w") as f:
        for addr, dev in (("2001:db8::1", "eth0"), ("::1", "lo"), ("fe80::1", "eth0")):
            f.write("%s 02 40 00 80 %8s\n" % (socket.inet_pton(socket.AF_INET6, addr).hex(), dev))
        f.write("junk\n")
    with open(os.path.join(fake.path, "net", "fib_trie"), "w") as f:
        f.write("Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n"
                "     +-- 192.168.1.0/24 2 0 2\n        |-- 192.168.1.0\n"
                "           /24 link UNICAST\n        |-- 192.168.1.1\n"
                "           /32 host LOCAL\n        |-- 192.168.1.255\n"
                "           /32 link BROADCAST\nLocal:\n     |-- 300.1.1.1\n"
                "        /32 host LOCAL\n")
    assert proc.fallback_local_addresses(fake.path) == {
        "2001:db8::1", "::1", "fe80::1", "192.168.1.1"}
    # the default: the fallback plus the local address of every socket seen
    fake.sock("tcp", "203.0.113.5", 22, "198.51.100.1", 4000, EST, 13001)
    m = ProcessMap(proc_root=fake.path)
    m.refresh()
    for addr in ("192.168.1.1", "2001:db8::1", "203.0.113.5", "127.9.9.9", "::1"):
        assert m.is_local(addr), addr
    assert not m.is_local("192.168.1.255") and not m.is_local(None)


def test_injected_local_addresses_callable_and_normalized(fake):
    calls = []

    def local():
        calls.append(1)
        return ["10.0.0.1/24", "2001:DB8:0:0::1", "::ffff:192.0.2.5", "bogus"]

    clock = Clock()
    m = ProcessMap(proc_root=fake.path, local_addresses=local, clock=clock, local_interval=5)
    m.refresh()
    m.refresh()
    assert len(calls) == 1
    clock.t += 6
    m.refresh()
    assert len(calls) == 2
    assert all(m.is_local(a) for a in ("10.0.0.1", "2001:db8::1", "192.0.2.5"))


# --- /proc/net text --------------------------------------------------------------------

def test_parse_proc_net_generated_tables():
    rows = [("127.0.0.1", 5001, "0.0.0.0", 0, LISTEN, 0, 11),
            ("10.0.0.1", 40000, "93.184.216.34", 443, EST, 1000, 12)]
    out = []
    assert parse_proc_net(proc_net_text("tcp", rows).encode(), TCP, out) == 0
    assert out == [(TCP, LISTEN, "127.0.0.1", 5001, "0.0.0.0", 0, 0, 11),
                   (TCP, EST, "10.0.0.1", 40000, "93.184.216.34", 443, 1000, 12)]
    rows6 = [("::ffff:10.0.0.1", 53, "::", 0, CLOSE, 0, 13),
             ("2001:db8::1", 1, "2001:db8::2", 2, EST, 0, 14)]
    out = []
    assert parse_proc_net(proc_net_text("udp6", rows6).encode(), UDP, out) == 0
    assert out == [(UDP, CLOSE, "10.0.0.1", 53, "::", 0, 0, 13),
                   (UDP, EST, "2001:db8::1", 1, "2001:db8::2", 2, 0, 14)]
    text = proc_net_text("tcp", rows * 50).encode()
    want = {(TCP, LISTEN, "127.0.0.1", 5001, "0.0.0.0", 0, 0, 11),
            (TCP, EST, "10.0.0.1", 40000, "93.184.216.34", 443, 1000, 12)}
    for cut in range(0, len(text), 7):                   # a read cap cuts anywhere
        out = []
        parse_proc_net(text[:cut], TCP, out)
        assert set(out) <= want and len(out) == max(0, text[:cut].count(b"\n") - 1)


# --- recorded sock_diag dumps ----------------------------------------------------------

def _fixture():
    with open(FIXTURE) as f:
        data = json.load(f)
    if data["byteorder"] != sys.byteorder:
        pytest.skip("fixture recorded on a %s-endian machine" % data["byteorder"])
    return data


def _expected(data, proto, family):
    return sorted(tuple(e["record"]) for e in data["expected"]
                  if e["record"][0] == proto and e["family"] == family)


def test_recorded_dumps_decode_to_what_the_sockets_said():
    data = _fixture()
    for d in data["dumps"]:
        raw = base64.b64decode(d["data"])
        if d["error"]:
            with pytest.raises(NetlinkError) as info:
                sockdiag.decode_dump(raw, d["proto"])
            assert info.value.errno == d["error"]
            continue
        records, state = sockdiag.decode_dump(raw, d["proto"])
        assert state.dropped == 0
        assert sorted(records) == _expected(data, d["proto"], d["family"]), d
    decoded = {d["proto"] for d in data["dumps"] if not d["error"]}
    assert {TCP, UDP, IPPROTO_UDPLITE} <= decoded


def test_recorded_proc_net_tables_parse_to_the_same_records():
    data = _fixture()
    for name, proto, family in proc.PROC_NET:
        out = []
        assert parse_proc_net(data["procnet"][name].encode(), proto, out) == 0
        assert sorted(out) == _expected(data, proto, family), name


def test_the_fixture_sockets_resolve_through_a_fake_proc(fake):
    """The recorded tables as a /proc tree: every socket finds its process."""
    data = _fixture()
    for name in fake.NAMES:
        with open(os.path.join(fake.path, "net", name), "w") as f:
            f.write(data["procnet"][name])
    fake.process(4000, "recorder", [e["record"][-1] for e in data["expected"]], uid=0)
    m = make_map(fake, local_addresses=set())
    m.refresh()
    assert m.stats.sockets == len(data["expected"]) and m.stats.unresolved == 0
    e = next(e["record"] for e in data["expected"] if e["record"][:2] == [TCP, EST]
             and e["record"][3] != 6001)
    assert m.lookup(flow(TCP, e[2], e[3], e[4], e[5])).name == "recorder"


def test_sock_diag_source_falls_back_per_protocol(fake, monkeypatch):
    """ProcessMap over the recorded dumps: the pairs the kernel refused
    (raw here) come from /proc/net from then on; the rest from sock_diag."""
    data = _fixture()
    for name in fake.NAMES:
        with open(os.path.join(fake.path, "net", name), "w") as f:
            f.write(data["procnet"][name])
    fake.process(4000, "recorder", [e["record"][-1] for e in data["expected"]], uid=0)
    dumps = {(d["family"], d["proto"]): d for d in data["dumps"]}
    asked = []

    class Sock:
        def close(self):
            pass

    timeouts = [(AF_INET6, UDP)]

    def dump(sock, family, proto, **kw):
        asked.append((family, proto))
        d = dumps[(family, proto)]
        if (family, proto) in timeouts:
            timeouts.remove((family, proto))
            raise OSError(errno.ETIMEDOUT, "a receive timed out")
        if d["error"]:
            raise NetlinkError(d["error"])
        return sockdiag.decode_dump(base64.b64decode(d["data"]), proto)[0]

    monkeypatch.setattr(sockdiag, "open_socket", Sock)
    monkeypatch.setattr(sockdiag, "dump", dump)
    m = make_map(fake, local_addresses=set(), sockets="sock_diag")
    m.refresh()
    assert m.stats.sockets == len(data["expected"]) and m.stats.unresolved == 0
    assert m.stats.source == "sock_diag+proc(raw,udp6,udplite6,raw6)"
    assert asked[-1] == (AF_INET6, UDP)  # then the socket is closed: /proc/net for the rest
    for want in (7, 6, 6):             # raw6 is refused once, then never asked again
        del asked[:]
        m.refresh()
        assert len(asked) == want and m.stats.sockets == len(data["expected"])
        assert m.stats.source == "sock_diag+proc(raw,raw6)"

    def no_socket():
        raise OSError(errno.EPROTONOSUPPORT, "no sock_diag")

    m.close()
    monkeypatch.setattr(sockdiag, "open_socket", no_socket)
    m.refresh()
    assert m.stats.sockets == len(data["expected"]) and m.stats.source.startswith("sock_diag+")


def test_every_truncation_decodes_or_raises_decode_error():
    data = _fixture()
    for d in data["dumps"]:
        raw = base64.b64decode(d["data"])
        for cut in range(len(raw)):
            try:
                sockdiag.decode_dump(raw[:cut], d["proto"])
            except DecodeError:
                pass


def test_corrupted_dumps_raise_only_decode_or_netlink_errors():
    data = _fixture()
    rng = random.Random(7)
    raw = base64.b64decode(next(d["data"] for d in data["dumps"] if d["proto"] == TCP
                                and d["family"] == AF_INET6))
    for _ in range(3000):
        b = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        try:
            sockdiag.decode_dump(bytes(b), TCP)
        except (DecodeError, NetlinkError):
            pass


def _msg(mtype, body, seq=1, pid=0):
    return nlmsg.pack(mtype, 0, seq, body, pid)


DONE = _msg(NLMSG_DONE, struct.pack("=i", 0))


@pytest.mark.parametrize("data", [
    b"",                                                 # nothing: no DONE
    b"\x10\x00",                                         # header cut short
    struct.pack("=IHHII", 8, NLMSG_DONE, 0, 1, 0),       # length below a header
    struct.pack("=IHHII", 400, SOCK_DIAG_BY_FAMILY, 0, 1, 0) + b"\0" * 20,   # length lies
])
def test_malformed_dumps_raise_decode_error(data):
    with pytest.raises(DecodeError):
        sockdiag.decode_dump(data, TCP)


def test_short_or_foreign_family_bodies_are_dropped_and_errors_raise():
    body = bytearray(72)
    body[0] = AF_INET
    good = _msg(SOCK_DIAG_BY_FAMILY, bytes(body))
    body[0] = 7                                          # not inet
    weird = _msg(SOCK_DIAG_BY_FAMILY, bytes(body))
    short = _msg(SOCK_DIAG_BY_FAMILY, b"\0" * 40)
    foreign = _msg(SOCK_DIAG_BY_FAMILY, bytes(72), seq=99)
    records, state = sockdiag.decode_dump(good + weird + short + foreign + DONE, TCP, seq=1)
    assert records == [(TCP, 0, "0.0.0.0", 0, "0.0.0.0", 0, 0, 0)]
    assert (state.dropped, state.foreign) == (2, 1)
    with pytest.raises(NetlinkError) as info:
        sockdiag.decode_dump(_msg(NLMSG_ERROR, struct.pack("=i", -errno.ENOENT) + bytes(16)), TCP)
    assert info.value.errno == errno.ENOENT


def test_dump_request_layout():
    req = sockdiag.dump_request(5, AF_INET6, TCP)
    length, mtype, flags, seq, _pid = nlmsg.NLMSGHDR.unpack_from(req)
    assert (length, mtype, seq) == (16 + 56, SOCK_DIAG_BY_FAMILY, 5)
    family, proto, ext, pad, states = struct.unpack_from("=BBBBI", req, 16)
    assert (family, proto, ext, pad) == (AF_INET6, TCP, 0, 0)
    assert states & (1 << LISTEN) and not states & (1 << 6)      # no TIME_WAIT
    assert req[-8:] == b"\xff" * 8                               # INET_DIAG_NOCOOKIE


def test_address_text_maps_ipv4_mapped():
    assert sockdiag.address_text(socket.inet_pton(socket.AF_INET6, "::ffff:1.2.3.4")) == "1.2.3.4"
    assert sockdiag.address_text(socket.inet_pton(socket.AF_INET6, "::1")) == "::1"
    assert sockdiag.address_text(bytes(4)) == "0.0.0.0"
    assert IPPROTO_RAW == 255
