"""A conntrack entry -> IPFIX uniflow data records (one per direction).

Pure: the caller passes the times, the counter deltas, the end reason and
what enrichment knows (interface indexes, which ends are local, the
processes).  A template is chosen per record from what the record has -
address family, counters or none, NAT or not, ports or ICMP or neither,
a process on either end - so an unknown value is left out, never sent as
an invented 0 (except an unknown interface index: 0 is "unknown" there by
SNMP convention, and collectors key on the field's presence).
"""

import socket

from . import ipfix as ie
from ..model import ICMP_PROTOS, PORT_PROTOS
from ..netlink import uapi as u

ORIG, REPLY = 0, 1

# conntrack's invmap: the reply direction of a request carries its answer
_ICMP_REPLY = {
    u.IPPROTO_ICMP: {u.ICMP_ECHO: u.ICMP_ECHOREPLY, u.ICMP_TIMESTAMP: u.ICMP_TIMESTAMPREPLY,
                     u.ICMP_INFO_REQUEST: u.ICMP_INFO_REPLY,
                     u.ICMP_ADDRESS: u.ICMP_ADDRESSREPLY},
    u.IPPROTO_ICMPV6: {u.ICMPV6_ECHO_REQUEST: u.ICMPV6_ECHO_REPLY,
                       u.ICMPV6_NI_QUERY: u.ICMPV6_NI_REPLY},
}

L4_NONE, L4_PORTS, L4_ICMP = 0, 1, 2


class Info:
    """What enrichment knows of a flow: ``ifaces`` (in, out) indexes (0:
    unknown), ``local`` (orig source local, reply source local), ``procs``
    (process at the orig source, at the reply source): objects with
    ``pid``, ``name``, ``user``, or None."""

    __slots__ = ("ifaces", "local", "procs")

    def __init__(self, ifaces=(0, 0), local=(False, False), procs=(None, None)):
        self.ifaces, self.local, self.procs = ifaces, local, procs


NO_INFO = Info()


def template_fields(v6, counters, nat, l4, src_proc, dst_proc):
    """The fields of the template for records with these features."""
    f = [ie.flowStartMilliseconds, ie.flowEndMilliseconds]
    if counters:
        f += [ie.octetDeltaCount, ie.packetDeltaCount]
    f += [ie.protocolIdentifier]
    f += ([ie.sourceIPv6Address, ie.destinationIPv6Address] if v6
          else [ie.sourceIPv4Address, ie.destinationIPv4Address])
    if l4 == L4_PORTS:
        f += [ie.sourceTransportPort, ie.destinationTransportPort]
    elif l4 == L4_ICMP:
        f += [ie.icmpTypeCodeIPv6 if v6 else ie.icmpTypeCodeIPv4]
    f += [ie.ingressInterface, ie.egressInterface, ie.flowDirection, ie.biflowDirection,
          ie.flowEndReason, ie.flowId]
    if nat:
        f += ([ie.postNATSourceIPv6Address, ie.postNATDestinationIPv6Address] if v6
              else [ie.postNATSourceIPv4Address, ie.postNATDestinationIPv4Address])
        if l4 == L4_PORTS:
            f += [ie.postNAPTSourceTransportPort, ie.postNAPTDestinationTransportPort]
    if src_proc:
        f += [ie.srcProcPid]
    if dst_proc:
        f += [ie.dstProcPid]
    if src_proc or dst_proc:
        f += [ie.userName]
    if src_proc:
        f += [ie.srcProcName]
    if dst_proc:
        f += [ie.dstProcName]
    return f


class Templates:
    """Templates by feature key, numbered from 256 in order of first use."""

    def __init__(self):
        self.by_key = {}

    def get(self, key):
        t = self.by_key.get(key)
        if t is None:
            t = self.by_key[key] = ie.Template(ie.FIRST_DATA_SET_ID + len(self.by_key),
                                               template_fields(*key))
        return t


def is_nat(e):
    """Did conntrack translate the flow (its reply tuple is not the
    original one reversed)?"""
    if e.reply_src is None:
        return False
    if e.reply_src != e.dst or e.reply_dst != e.src:
        return True
    return e.l4proto in PORT_PROTOS and (e.reply_sport != e.dport or e.reply_dport != e.sport)


def _pid_of(p):
    return p is not None and getattr(p, "pid", None) is not None


def record(templates, e, direction, start_ms, end_ms, counts, reason, info=NO_INFO, nat=None):
    """(Template, record bytes) of one direction of entry ``e``.

    ``counts``: (octets, packets) deltas, or None when the kernel has no
    counters for the flow; ``reason``: a flowEndReason value."""
    v6 = e.family == u.AF_INET6
    proto = e.l4proto
    l4 = _l4(e)
    if nat is None:
        nat = is_nat(e)
    orig = direction == ORIG
    if orig:
        src, dst, sport, dport = e.src, e.dst, e.sport, e.dport
        nsrc, ndst, nsport, ndport = e.reply_dst, e.reply_src, e.reply_dport, e.reply_sport
        iin, iout = info.ifaces
        local = info.local[0]
        sp, dp = info.procs
    else:
        src, dst = e.reply_src or e.dst, e.reply_dst or e.src
        sport, dport = e.reply_sport, e.reply_dport
        nsrc, ndst, nsport, ndport = e.dst, e.src, e.dport, e.sport
        iout, iin = info.ifaces
        local = info.local[1]
        dp, sp = info.procs
    sp = sp if _pid_of(sp) else None
    dp = dp if _pid_of(dp) else None
    t = templates.get((v6, counts is not None, nat, l4, sp is not None, dp is not None))
    af = socket.AF_INET6 if v6 else socket.AF_INET
    pton = socket.inet_pton
    values = [start_ms, end_ms]
    if counts is not None:
        values += counts
    values += [proto, pton(af, src), pton(af, dst)]
    if l4 == L4_PORTS:
        values += [sport or 0, dport or 0]
    elif l4 == L4_ICMP:
        itype = e.icmp_type or 0
        if not orig:
            itype = _ICMP_REPLY.get(proto, {}).get(itype, itype)
        values += [(itype << 8) | (e.icmp_code or 0)]
    values += [iin or 0, iout or 0, ie.DIRECTION_EGRESS if local else ie.DIRECTION_INGRESS,
               ie.BIFLOW_INITIATOR if orig else ie.BIFLOW_REVERSE_INITIATOR, reason, e.id or 0]
    if nat:
        values += [pton(af, nsrc), pton(af, ndst)]
        if l4 == L4_PORTS:
            values += [nsport or 0, ndport or 0]
    if sp is not None or dp is not None:
        values += _process_values(sp, dp)
    return t, t.record(values)


def _l4(e):
    """What of layer 4 a record of ``e`` carries: L4_PORTS, L4_ICMP or L4_NONE."""
    if e.l4proto in PORT_PROTOS:
        return L4_PORTS if e.sport is not None and e.dport is not None else L4_NONE
    return L4_ICMP if e.l4proto in ICMP_PROTOS else L4_NONE


def _process_values(sp, dp):
    """The process fields' values, in template_fields' order, for the
    source's and the destination's process (None: not known)."""
    values = []
    if sp is not None:
        values += [sp.pid]
    if dp is not None:
        values += [dp.pid]
    user = sp.user if sp is not None and sp.user else dp.user if dp is not None else None
    values += [user or ""]
    if sp is not None:
        values += [sp.name or ""]
    if dp is not None:
        values += [dp.name or ""]
    return values


# Interface table: options records (scope ingressInterface) naming each index.
INTERFACE_TEMPLATE_ID = 0xFFF0


def interface_template():
    return ie.Template(INTERFACE_TEMPLATE_ID, [ie.ingressInterface, ie.interfaceName], scope=1)
