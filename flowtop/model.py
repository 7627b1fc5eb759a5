"""Friendly names for kernel numbers: protocols, states, status bits.

This is where kernel spellings (``TCP_CONNTRACK_TIME_WAIT``) become what
people read (``TIME_WAIT``), in the form conntrack-tools prints.
"""

from itertools import repeat
from operator import or_

from .memo import Memo
from .netlink import uapi as u
from .netlink.ctnetlink import CtEntry

FAMILY_NAMES = {u.AF_INET: "ipv4", u.AF_INET6: "ipv6"}

PROTO_NAMES = {
    u.IPPROTO_TCP: "tcp", u.IPPROTO_UDP: "udp", u.IPPROTO_UDPLITE: "udplite",
    u.IPPROTO_SCTP: "sctp", u.IPPROTO_DCCP: "dccp", u.IPPROTO_ICMP: "icmp",
    u.IPPROTO_ICMPV6: "icmpv6", u.IPPROTO_GRE: "gre",
}
PROTO_NUMBERS = {v: k for k, v in PROTO_NAMES.items()}

TCP_STATES = {
    u.TCP_CONNTRACK_NONE: "NONE", u.TCP_CONNTRACK_SYN_SENT: "SYN_SENT",
    u.TCP_CONNTRACK_SYN_RECV: "SYN_RECV", u.TCP_CONNTRACK_ESTABLISHED: "ESTABLISHED",
    u.TCP_CONNTRACK_FIN_WAIT: "FIN_WAIT", u.TCP_CONNTRACK_CLOSE_WAIT: "CLOSE_WAIT",
    u.TCP_CONNTRACK_LAST_ACK: "LAST_ACK", u.TCP_CONNTRACK_TIME_WAIT: "TIME_WAIT",
    u.TCP_CONNTRACK_CLOSE: "CLOSE", u.TCP_CONNTRACK_SYN_SENT2: "SYN_SENT2",
}
SCTP_STATES = {
    u.SCTP_CONNTRACK_NONE: "NONE", u.SCTP_CONNTRACK_CLOSED: "CLOSED",
    u.SCTP_CONNTRACK_COOKIE_WAIT: "COOKIE_WAIT", u.SCTP_CONNTRACK_COOKIE_ECHOED: "COOKIE_ECHOED",
    u.SCTP_CONNTRACK_ESTABLISHED: "ESTABLISHED", u.SCTP_CONNTRACK_SHUTDOWN_SENT: "SHUTDOWN_SENT",
    u.SCTP_CONNTRACK_SHUTDOWN_RECD: "SHUTDOWN_RECD",
    u.SCTP_CONNTRACK_SHUTDOWN_ACK_SENT: "SHUTDOWN_ACK_SENT",
    u.SCTP_CONNTRACK_HEARTBEAT_SENT: "HEARTBEAT_SENT",
    u.SCTP_CONNTRACK_HEARTBEAT_ACKED: "HEARTBEAT_ACKED",
}
DCCP_STATES = {
    u.CT_DCCP_NONE: "NONE", u.CT_DCCP_REQUEST: "REQUEST", u.CT_DCCP_RESPOND: "RESPOND",
    u.CT_DCCP_PARTOPEN: "PARTOPEN", u.CT_DCCP_OPEN: "OPEN", u.CT_DCCP_CLOSEREQ: "CLOSEREQ",
    u.CT_DCCP_CLOSING: "CLOSING", u.CT_DCCP_TIMEWAIT: "TIMEWAIT", u.CT_DCCP_IGNORE: "IGNORE",
    u.CT_DCCP_INVALID: "INVALID",
}
_STATE_TABLES = {u.IPPROTO_TCP: TCP_STATES, u.IPPROTO_SCTP: SCTP_STATES, u.IPPROTO_DCCP: DCCP_STATES}

# enum ip_conntrack_status, bit -> name (conntrack-tools spelling)
STATUS_BITS = (
    (u.IPS_EXPECTED_BIT, "EXPECTED"), (u.IPS_SEEN_REPLY_BIT, "SEEN_REPLY"),
    (u.IPS_ASSURED_BIT, "ASSURED"), (u.IPS_CONFIRMED_BIT, "CONFIRMED"),
    (u.IPS_SRC_NAT_BIT, "SRC_NAT"), (u.IPS_DST_NAT_BIT, "DST_NAT"),
    (u.IPS_SEQ_ADJUST_BIT, "SEQ_ADJUST"), (u.IPS_SRC_NAT_DONE_BIT, "SRC_NAT_DONE"),
    (u.IPS_DST_NAT_DONE_BIT, "DST_NAT_DONE"), (u.IPS_DYING_BIT, "DYING"),
    (u.IPS_FIXED_TIMEOUT_BIT, "FIXED_TIMEOUT"), (u.IPS_TEMPLATE_BIT, "TEMPLATE"),
    (u.IPS_NAT_CLASH_BIT, "NAT_CLASH"), (u.IPS_HELPER_BIT, "HELPER"),
    (u.IPS_OFFLOAD_BIT, "OFFLOAD"), (u.IPS_HW_OFFLOAD_BIT, "HW_OFFLOAD"),
)
_status_cache = Memo(4096)

ICMP_PROTOS = (u.IPPROTO_ICMP, u.IPPROTO_ICMPV6)
PORT_PROTOS = (u.IPPROTO_TCP, u.IPPROTO_UDP, u.IPPROTO_UDPLITE, u.IPPROTO_SCTP, u.IPPROTO_DCCP)


def family_name(family):
    return FAMILY_NAMES.get(family, str(family))


def proto_name(l4proto):
    """'tcp' ... or the protocol number as a string."""
    return PROTO_NAMES.get(l4proto) or str(l4proto)


def state_name(l4proto, state):
    """TCP/SCTP/DCCP state name, or None for stateless protocols."""
    if state is None:
        return None
    table = _STATE_TABLES.get(l4proto)
    if table is None:
        return None
    return table.get(state, str(state))


def status_names(status):
    """Status bits -> tuple of names, cached (few distinct values exist)."""
    if status is None:
        return ()
    names = _status_cache.get(status)
    if names is None:
        names = tuple(name for bit, name in STATUS_BITS if status & (1 << bit))
        _status_cache.put(status, names)
    return names


def is_loopback(addr):
    """A loopback address (127/8, ::1, or 127/8 mapped into IPv6)."""
    return addr is not None and (addr.startswith("127.") or addr == "::1"
                                 or addr.startswith("::ffff:127."))


def local_flags(addrs, local, loopback=("127.", "::ffff:127.")):
    """``[a in local or a loopback address for a in addrs]`` in C passes (None
    is not local); ``loopback``: the prefixes that count, with ::1.  A Tab to
    a totals view at 250k flows: no call per address."""
    try:
        loop = list(map(str.startswith, addrs, repeat(loopback)))
    except TypeError:                       # None (or a non-str) among them
        return [a is not None and (a in local or a.startswith(loopback) or a == "::1")
                for a in addrs]
    hit = map(local.union(("::1",)).__contains__, addrs)
    return list(map(or_, hit, loop)) if any(loop) else list(hit)


class Flow(CtEntry):
    """A CtEntry with the names people read: what the public API yields.

    Fields (None where the kernel sent nothing):
      family: int (AF_INET 2 / AF_INET6 10); l4proto: int
      src, dst, reply_src, reply_dst: str addresses
      sport, dport, reply_sport, reply_dport: int ports (TCP, UDP, UDP-lite, SCTP, DCCP)
      icmp_type, icmp_code, icmp_id (and reply_*): int, ICMP and ICMPv6
      state: int protocol state (TCP, SCTP, DCCP); status: int bit set
      timeout, mark, zone, id, use: int
      packets_orig, bytes_orig, packets_reply, bytes_reply: int, None without accounting
      start, stop: int nanoseconds since the epoch, None without timestamps
      key: bytes, the flow's identity (original tuple + zone)
    """

    __slots__ = ()

    @property
    def family_name(self):
        return family_name(self.family)

    @property
    def proto_name(self):
        return proto_name(self.l4proto)

    @property
    def state_name(self):
        return state_name(self.l4proto, self.state)

    @property
    def status_names(self):
        return status_names(self.status)

    @property
    def start_time(self):
        """Start as epoch seconds (float), or None."""
        return None if self.start is None else self.start / 1e9

    def age(self, now):
        """Seconds since the kernel's start timestamp at wall time ``now``."""
        start = self.start
        return None if start is None else max(0.0, now - start / 1e9)
