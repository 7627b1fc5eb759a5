"""Recorded netlink dumps in the other byte order: what a big-endian kernel
would have sent for the same table (and back again).

Netlink is host-order: the nlmsghdr fields (len u32, type u16, flags u16,
seq u32, pid u32), every nlattr header (len u16, type u16) and the integers
of the fixed family headers and of many attribute values are written in
the CPU's byte order.  Converting a dump means reversing exactly those
fields and nothing else - which needs the schema of every attribute, since
only it tells a nest from a value and a host-order integer from a
network-order one or raw bytes:

* ctnetlink: nfgenmsg (family u8, version u8, res_id be16) is untouched and
  every attribute value is big-endian or raw bytes already, so only headers
  move; ``flowtop.netlink.ctnetlink.SCHEMA`` (plus the nests flowtop skips,
  and NLA_F_NESTED, which the kernel sets on every ctnetlink nest) says
  where the nests are.
* rtnetlink (RTM_NEWADDR / NEWLINK / NEWROUTE): ifaddrmsg's ifa_index,
  ifinfomsg's type/index/flags/change and rtmsg's rtm_flags are host-order,
  and so are the u16/u32/u64 attributes (RTA_OIF, RTA_TABLE, IFLA_MTU ...)
  and structs of them (IFLA_STATS64, RTA_CACHEINFO ...): swapped by type.
* sock_diag (SOCK_DIAG_BY_FAMILY): inet_diag_msg's interface, cookie and
  the five u32 counters are host-order, its ports big-endian.
* NLMSG_DONE / NLMSG_ERROR: the int32 errno, and for an error the echoed
  request (its header, and its body unless NLM_F_CAPPED) and extended-ACK
  attributes.

The conversion is an involution: converting from ``"little"`` and then the
result from ``"big"`` gives back the original bytes.  ``strict`` (the
default) raises SwapError for an attribute whose layout is not known, so a
fixture that grows a new attribute is noticed instead of half converted.
Pure stdlib: runs under the big-endian chroot's bare python3.
"""

import json
import struct

from flowtop.netlink import ctnetlink

__all__ = ["SwapError", "recording_to_big", "recording_to_little", "swap_dump",
           "swap_procnet_text", "swap_recording", "swap_sockdiag_fixture", "to_big",
           "to_little", "unknown_attributes"]

NLA_F_NESTED = 1 << 15
NLA_F_NET_BYTEORDER = 1 << 14
NLA_TYPE_MASK = 0x3FFF
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_CAPPED = 0x100       # flag of an NLMSG_ERROR: the echoed request is only its header
NLM_F_ACK_TLVS = 0x200     # flag of an NLMSG_ERROR: extended-ACK attributes follow

RAW = "raw"                # bytes in network order, strings, u8: untouched


class SwapError(ValueError):
    """A dump that cannot be converted: a length that lies, or (strict) an
    attribute whose layout is not in the tables here."""


def _fmt(order):
    if order not in ("little", "big"):
        raise ValueError("byte order must be 'little' or 'big', not %r" % (order,))
    return "<" if order == "little" else ">"


class _Swapper:
    """One conversion: reads lengths in ``order`` (the source byte order)
    from ``src`` and reverses fields in place in ``out`` (a copy)."""

    def __init__(self, src, order, strict):
        self.src = src
        self.out = bytearray(src)
        self.u16 = struct.Struct(_fmt(order) + "H").unpack_from
        self.u32 = struct.Struct(_fmt(order) + "I").unpack_from
        self.strict = strict
        self.unknown = []

    def rev(self, off, size):
        """Reverse one host-order integer of ``size`` bytes at ``off``."""
        if off + size > len(self.out):
            raise SwapError("field of %d bytes at offset %d runs past the end" % (size, off))
        self.out[off:off + size] = self.out[off:off + size][::-1]

    def revs(self, start, end, size, what):
        """An array of host-order integers of ``size`` bytes each."""
        if (end - start) % size:
            raise SwapError("%s: %d bytes is no array of %d-byte integers"
                            % (what, end - start, size))
        for off in range(start, end, size):
            self.rev(off, size)

    # --- messages ----------------------------------------------------------------
    def messages(self, start, end, bodies, requests):
        off = start
        while off < end:
            if end - off < 16:
                raise SwapError("netlink header cut short at offset %d" % off)
            length = self.u32(self.src, off)[0]
            mtype, flags = self.u16(self.src, off + 4)[0], self.u16(self.src, off + 6)[0]
            if length < 16 or length > end - off:
                raise SwapError("netlink message length %d invalid at offset %d" % (length, off))
            for field, size in ((0, 4), (4, 2), (6, 2), (8, 4), (12, 4)):
                self.rev(off + field, size)
            self.body(mtype, flags, off + 16, off + length, bodies, requests)
            off += (length + 3) & ~3

    def body(self, mtype, flags, start, end, bodies, requests):
        if mtype in (NLMSG_DONE, NLMSG_ERROR):
            if end - start >= 4:
                self.rev(start, 4)                      # int32 errno
            if mtype == NLMSG_ERROR and end - start >= 20:
                self.echo(flags, start + 4, end, requests)
            return
        handler = bodies.get(mtype)
        if handler is not None:
            handler(self, start, end)
        elif start < end and self.strict:
            raise SwapError("message type %#x: body layout unknown" % mtype)

    def echo(self, flags, start, end, bodies):
        """The request an NLMSG_ERROR echoes, then its extended-ACK TLVs."""
        length = self.u32(self.src, start)[0]
        mtype = self.u16(self.src, start + 4)[0]
        for field, size in ((0, 4), (4, 2), (6, 2), (8, 4), (12, 4)):
            self.rev(start + field, size)
        body_end = start + 16
        if not flags & NLM_F_CAPPED:
            body_end = start + length
            if length < 16 or body_end > end:
                raise SwapError("echoed request of %d bytes in an error of %d"
                                % (length, end - start + 4))
            handler = bodies.get(mtype)
            if handler is not None:
                handler(self, start + 16, body_end)
            elif body_end > start + 16 and self.strict:
                raise SwapError("echoed message type %#x: body layout unknown" % mtype)
        if flags & NLM_F_ACK_TLVS:
            self.attrs((body_end + 3) & ~3, end, EXTACK, "extack")
        elif (body_end + 3) & ~3 < end and self.strict:
            raise SwapError("%d bytes after the echoed request" % (end - body_end))

    # --- attributes --------------------------------------------------------------
    def attrs(self, start, end, schema, where):
        """One level of attributes against ``schema``: {type: kind}, where a
        kind is RAW, "u16"/"u32"/"u64", "u32[]"/"u64[]", "uint" (4 or 8
        bytes), a dict (a nest: its schema) or a function(swapper, start,
        end).  ``schema.get("*")`` is the kind of types not listed."""
        off = start
        while off < end:
            if end - off < 4:
                raise SwapError("%s: attribute header cut short at offset %d" % (where, off))
            length, rawtype = self.u16(self.src, off)[0], self.u16(self.src, off + 2)[0]
            if length < 4 or length > end - off:
                raise SwapError("%s: attribute length %d invalid at offset %d"
                                % (where, length, off))
            self.rev(off, 2)
            self.rev(off + 2, 2)
            atype = rawtype & NLA_TYPE_MASK
            here = "%s/%d" % (where, atype)
            kind = schema.get(atype, schema.get("*"))
            if kind is None:
                if rawtype & NLA_F_NESTED:
                    kind = {}                             # headers only: values unknown
                self.unknown.append(here)
                if self.strict:
                    raise SwapError("%s: attribute layout unknown (%d bytes%s)"
                                    % (here, length - 4,
                                       ", nested" if rawtype & NLA_F_NESTED else ""))
            elif rawtype & NLA_F_NESTED and not isinstance(kind, dict) and length > 4:
                raise SwapError("%s: flagged nested, but the schema has a value" % here)
            self.value(kind, off + 4, off + length, here)
            off += (length + 3) & ~3

    def value(self, kind, start, end, here):
        size = end - start
        if kind is None or kind == RAW:
            return
        if isinstance(kind, dict):
            self.attrs(start, end, kind, here)
        elif callable(kind):
            kind(self, start, end)
        elif kind in ("u16", "u32", "u64"):
            want = int(kind[1:]) // 8
            if size != want:
                raise SwapError("%s: %s of %d bytes" % (here, kind, size))
            self.rev(start, want)
        elif kind == "uint":                              # NLA_UINT: u32 or u64
            if size not in (4, 8):
                raise SwapError("%s: uint of %d bytes" % (here, size))
            self.rev(start, size)
        elif kind in ("u32[]", "u64[]"):
            self.revs(start, end, int(kind[1:3]) // 8, here)
        else:
            raise AssertionError("unknown kind %r" % (kind,))


# --- ctnetlink -----------------------------------------------------------------------
def _ct_schema(schema):
    """flowtop's decoding SCHEMA as a swap schema: its nests stay nests,
    every value (network order or raw) is left alone, like the values
    flowtop does not read."""
    out = {"*": RAW}
    for atype, spec in schema.items():
        out[atype] = _ct_schema(spec) if isinstance(spec, dict) else RAW
    return out


# The nests of a conntrack entry that flowtop does not decode (all their
# values are network-order or raw too).
_CT_TUPLE = _ct_schema(ctnetlink.SCHEMA[1])       # CTA_TUPLE_ORIG's layout
CT_SCHEMA = _ct_schema(ctnetlink.SCHEMA)
CT_SCHEMA.update({
    5: {"*": RAW},                                  # CTA_HELP {CTA_HELP_NAME}
    6: {"*": RAW, 1: RAW, 2: RAW, 3: {"*": RAW}},   # CTA_NAT_SRC (old kernels)
    13: {"*": RAW, 1: RAW, 2: RAW, 3: {"*": RAW}},  # CTA_NAT_DST
    14: _CT_TUPLE,                                  # CTA_TUPLE_MASTER
    22: "u64[]",            # CTA_LABELS: the kernel's unsigned longs (s390x: 8 bytes, native)
    15: {"*": RAW},                                 # CTA_SEQ_ADJ_ORIG (be32s)
    16: {"*": RAW},                                 # CTA_SEQ_ADJ_REPLY
    19: {"*": RAW},                                 # CTA_SECCTX {CTA_SECCTX_NAME}
    24: {"*": RAW},                                 # CTA_SYNPROXY (be32s)
    25: {"*": RAW},                                 # CTA_FILTER (be32s)
})


def _ct_body(sw, start, end):
    """nfgenmsg (untouched: u8, u8, be16), then attributes."""
    if end - start < 4:
        if end > start:
            raise SwapError("ctnetlink body shorter than nfgenmsg")
        return
    sw.attrs(start + 4, end, CT_SCHEMA, "ct")


def _ct_stats_body(sw, start, end):
    if end - start >= 4:
        sw.attrs(start + 4, end, {"*": RAW}, "ctstats")


# IPCTNL_MSG_CT_NEW/GET/DELETE/GET_CTRZERO/GET_DYING/GET_UNCONFIRMED, and stats
CT_BODIES = {(1 << 8) | t: _ct_body for t in (0, 1, 2, 3, 6, 7)}
CT_BODIES.update({(1 << 8) | t: _ct_stats_body for t in (4, 5)})


# --- rtnetlink -----------------------------------------------------------------------
def _ifmap(sw, start, end):
    """struct rtnl_link_ifmap: u64 mem_start, mem_end, base_addr; u16 irq;
    u8 dma, port (and tail padding)."""
    if end - start < 28:
        raise SwapError("IFLA_MAP of %d bytes" % (end - start))
    sw.revs(start, start + 24, 8, "IFLA_MAP")
    sw.rev(start + 24, 2)


def _rtvia(sw, start, end):
    """struct rtvia: __kernel_sa_family_t (u16) then the address bytes."""
    if end - start < 2:
        raise SwapError("RTA_VIA of %d bytes" % (end - start))
    sw.rev(start, 2)


_INET6 = {                         # IFLA_AF_SPEC / AF_INET6 (net/ipv6/addrconf.c)
    1: "u32",                      # IFLA_INET6_FLAGS
    2: "u32[]",                    # IFLA_INET6_CACHEINFO (struct ifla_cacheinfo)
    3: "u32[]",                    # IFLA_INET6_CONF (s32 array)
    4: "u64[]",                    # IFLA_INET6_STATS
    5: RAW,                        # IFLA_INET6_MCAST (unused)
    6: "u64[]",                    # IFLA_INET6_ICMP6STATS
    7: RAW,                        # IFLA_INET6_TOKEN (in6_addr)
    8: RAW,                        # IFLA_INET6_ADDR_GEN_MODE (u8)
    9: "u32",                      # IFLA_INET6_RA_MTU
}
_AF_SPEC = {
    2: {1: "u32[]"},               # AF_INET: IFLA_INET_CONF (u32 array)
    10: _INET6,
    7: {"*": None},                # AF_BRIDGE: not in the fixtures (strict: unknown)
    45: {1: "u32", 2: "u32"},      # AF_MCTP: IFLA_MCTP_NET, IFLA_MCTP_PHYS_BINDING
}
IFLA = {
    1: RAW, 2: RAW, 3: RAW,        # ADDRESS, BROADCAST, IFNAME
    4: "u32", 5: "u32",            # MTU, LINK
    6: RAW,                        # QDISC
    7: "u32[]",                    # STATS (struct rtnl_link_stats)
    8: "u32", 9: "u32", 10: "u32",  # COST, PRIORITY, MASTER
    13: "u32",                     # TXQLEN
    14: _ifmap,                    # MAP
    15: "u32",                     # WEIGHT
    16: RAW, 17: RAW,              # OPERSTATE, LINKMODE (u8)
    18: {1: RAW, 4: RAW},          # LINKINFO: INFO_KIND, INFO_SLAVE_KIND (strings);
                                   # INFO_DATA is per kind: strict says unknown
    19: "u32", 20: RAW, 21: "u32",  # NET_NS_PID, IFALIAS, NUM_VF
    23: "u64[]",                   # STATS64 (struct rtnl_link_stats64)
    26: _AF_SPEC,
    27: "u32", 29: "u32", 30: "u32", 31: "u32", 32: "u32",  # GROUP EXT_MASK PROMISCUITY TX/RX
    33: RAW, 34: RAW,              # CARRIER (u8), PHYS_PORT_ID
    35: "u32", 36: RAW,            # CARRIER_CHANGES, PHYS_SWITCH_ID
    37: "u32", 38: RAW, 39: RAW,   # LINK_NETNSID (s32), PHYS_PORT_NAME, PROTO_DOWN (u8)
    40: "u32", 41: "u32", 42: RAW,  # GSO_MAX_SEGS, GSO_MAX_SIZE, PAD
    43: {1: "u32", 2: RAW, 3: "u32", 4: "u32", 5: "u32", 6: "u32", 7: "u32",
         8: "u32"},                # XDP: FD (s32), ATTACHED (u8), FLAGS, *PROG_ID, EXPECTED_FD
    44: "u32", 45: "u32", 46: "u32",  # EVENT, NEW_NETNSID, IF_NETNSID
    47: "u32", 48: "u32", 49: "u32",  # CARRIER_UP/DOWN_COUNT, NEW_IFINDEX
    50: "u32", 51: "u32",          # MIN_MTU, MAX_MTU
    52: {53: RAW},                 # PROP_LIST {ALT_IFNAME}
    53: RAW, 54: RAW,              # ALT_IFNAME, PERM_ADDRESS
    55: {1: "u32", 2: "u32"},      # PROTO_DOWN_REASON {MASK, VALUE}
    56: RAW, 57: RAW,              # PARENT_DEV_NAME, PARENT_DEV_BUS_NAME
    58: "u32", 59: "u32", 60: "u32", 61: "u32",  # GRO_MAX_SIZE TSO_MAX_SIZE/SEGS ALLMULTI
    62: {"*": None},                # DEVLINK_PORT (devlink attributes: unknown if any)
    63: "u32", 64: "u32",          # GSO_IPV4_MAX_SIZE, GRO_IPV4_MAX_SIZE
    65: {"*": None},                # DPLL_PIN
    66: "uint",                    # MAX_PACING_OFFLOAD_HORIZON
    67: RAW,                       # NETNS_IMMUTABLE (u8)
    68: "u16", 69: "u16",          # HEADROOM, TAILROOM
}
IFA = {
    1: RAW, 2: RAW, 3: RAW, 4: RAW, 5: RAW,  # ADDRESS LOCAL LABEL BROADCAST ANYCAST
    6: "u32[]",                    # CACHEINFO (struct ifa_cacheinfo)
    7: RAW,                        # MULTICAST
    8: "u32", 9: "u32", 10: "u32",  # FLAGS, RT_PRIORITY, TARGET_NETNSID
    11: RAW,                       # PROTO (u8)
}
_RTAX = {"*": "u32", 16: RAW}      # RTA_METRICS: RTAX_* u32, RTAX_CC_ALGO a string


def _multipath(sw, start, end):
    """RTA_MULTIPATH: struct rtnexthop {u16 len; u8 flags, hops; s32
    ifindex} each followed by its attributes."""
    off = start
    while off < end:
        if end - off < 8:
            raise SwapError("rtnexthop cut short")
        length = sw.u16(sw.src, off)[0]
        if length < 8 or length > end - off:
            raise SwapError("rtnexthop length %d invalid" % length)
        sw.rev(off, 2)
        sw.rev(off + 4, 4)
        sw.attrs(off + 8, off + length, RTA, "rtnh")
        off += (length + 3) & ~3


RTA = {
    1: RAW, 2: RAW,                # DST, SRC
    3: "u32", 4: "u32",            # IIF, OIF
    5: RAW, 6: "u32", 7: RAW,      # GATEWAY, PRIORITY, PREFSRC
    8: _RTAX,                      # METRICS
    9: _multipath,                 # MULTIPATH
    11: "u32",                     # FLOW
    12: "u32[]",                   # CACHEINFO (struct rta_cacheinfo)
    15: "u32", 16: "u32",          # TABLE, MARK
    17: "u64[]",                   # MFC_STATS
    18: _rtvia, 19: RAW, 20: RAW,  # VIA, NEWDST, PREF (u8)
    21: "u16",                     # ENCAP_TYPE
    23: "u64", 24: RAW,            # EXPIRES, PAD
    25: "u32", 26: RAW, 27: RAW,   # UID, TTL_PROPAGATE (u8), IP_PROTO (u8)
    28: RAW, 29: RAW,              # SPORT, DPORT (be16)
    30: "u32",                     # NH_ID
}
EXTACK = {1: RAW, 2: "u32", 3: RAW, 5: "u32", 6: "u32"}   # MSG OFFS COOKIE MISS_TYPE/NEST


def _fixed(size, fields, schema, what):
    """A body: a fixed header of ``size`` bytes whose host-order integers
    are ``fields`` ((offset, size), ...), then attributes of ``schema``."""
    def body(sw, start, end):
        if end - start < size:
            raise SwapError("%s cut short: %d bytes" % (what, end - start))
        for off, n in fields:
            sw.rev(start + off, n)
        sw.attrs(start + size, end, schema, what)
    return body


# ifaddrmsg: family prefixlen flags scope (u8) index (u32)
_ADDR = _fixed(8, ((4, 4),), IFA, "ifaddrmsg")
# ifinfomsg: family pad (u8) type (u16) index (s32) flags change (u32)
_LINK = _fixed(16, ((2, 2), (4, 4), (8, 4), (12, 4)), IFLA, "ifinfomsg")
# rtmsg: family dst_len src_len tos table protocol scope type (u8) flags (u32)
_ROUTE = _fixed(12, ((8, 4),), RTA, "rtmsg")

ROUTE_BODIES = {}
for _t, _b in ((16, _LINK), (20, _ADDR), (24, _ROUTE)):   # RTM_NEW*, DEL*, GET*
    for _i in range(3):
        ROUTE_BODIES[_t + _i] = _b
del _t, _b, _i


# --- sock_diag -----------------------------------------------------------------------
_BITREV = bytes(int("{:08b}".format(b)[::-1], 2) for b in range(256))


def _bitfields(sw, start, end):
    """Bytes of single-bit bitfields: GCC allocates them from the least
    significant bit on a little-endian CPU and from the most significant
    one on a big-endian CPU, so each byte's bits are reversed."""
    sw.out[start:end] = bytes(sw.out[start:end]).translate(_BITREV)


# INET_DIAG_* attributes of an inet_diag_msg (none is decoded by flowtop)
INET_DIAG = {
    1: "u32[]",                    # MEMINFO (struct inet_diag_meminfo)
    2: None,                       # INFO (struct tcp_info: mixed sizes) - unknown
    4: RAW, 5: RAW, 6: RAW,        # CONG (string), TOS, TCLASS (u8)
    7: "u32[]",                    # SKMEMINFO
    8: RAW,                        # SHUTDOWN (u8)
    10: RAW, 11: RAW,              # PROTOCOL, SKV6ONLY (u8)
    14: RAW, 15: "u32",            # PAD, MARK
    17: "u32",                     # CLASS_ID
    21: "u64",                     # CGROUP_ID
    22: _bitfields,                # SOCKOPT (struct inet_diag_sockopt: 2 bytes of bits)
}


def _diag(sw, start, end):
    """struct inet_diag_msg: family state timer retrans (u8); sockid:
    sport dport (be16) src dst (16 bytes) if (u32) cookie (u32[2]); then
    expires rqueue wqueue uid inode (u32)."""
    if end - start < 72:
        raise SwapError("inet_diag_msg cut short: %d bytes" % (end - start))
    sw.revs(start + 40, start + 72, 4, "inet_diag_msg")
    sw.attrs(start + 72, end, {k: v for k, v in INET_DIAG.items() if v is not None},
             "inet_diag")


SOCKDIAG_BODIES = {20: _diag}      # SOCK_DIAG_BY_FAMILY



def _diag_request(sw, start, end):
    """struct inet_diag_req_v2 (an echoed request): family protocol ext pad
    (u8) states (u32) sockid (as in inet_diag_msg)."""
    if end - start < 56:
        raise SwapError("inet_diag_req_v2 cut short: %d bytes" % (end - start))
    sw.rev(start + 4, 4)
    sw.revs(start + 44, start + 56, 4, "inet_diag_req_v2")


# protocol -> (bodies of the kernel's messages, bodies of requests an error echoes)
PROTOCOLS = {
    "ctnetlink": (CT_BODIES, CT_BODIES),
    "route": (ROUTE_BODIES, ROUTE_BODIES),
    "sockdiag": (SOCKDIAG_BODIES, {20: _diag_request}),
}


# --- the API -------------------------------------------------------------------------
def _run(data, order, proto, strict):
    try:
        bodies, requests = PROTOCOLS[proto]
    except KeyError:
        raise ValueError("protocol must be one of %s, not %r"
                         % (", ".join(sorted(PROTOCOLS)), proto)) from None
    sw = _Swapper(bytes(data), order, strict)
    sw.messages(0, len(sw.src), bodies, requests)
    return sw


def swap_dump(data, order, proto="ctnetlink", strict=True):
    """The datagrams ``data`` (whole messages, as recv() returned them, one
    after the other) with every host-order field reversed.  ``order``: the
    byte order ``data`` is in ("little" or "big"); ``proto``: "ctnetlink",
    "route" or "sockdiag" (message types overlap between families).
    Raises SwapError for data that does not parse."""
    return bytes(_run(data, order, proto, strict).out)


def to_big(data, proto="ctnetlink", strict=True):
    """A little-endian dump as a big-endian kernel would have sent it."""
    return swap_dump(data, "little", proto, strict)


def to_little(data, proto="ctnetlink", strict=True):
    """A big-endian dump as a little-endian kernel would have sent it."""
    return swap_dump(data, "big", proto, strict)


def unknown_attributes(data, order, proto="ctnetlink"):
    """Paths ("ct/24/1", "ifinfomsg/18/2" ...) of the attributes whose
    layout the tables here do not know: left as they were."""
    return _run(data, order, proto, strict=False).unknown


_MAGIC = b"FLOWTOP-RECORDING\n"
_DUMP = b"DUMP"
_DUMP_HDR = struct.Struct(">dI")


def swap_recording(raw, strict=True):
    """A whole ``--record`` file (bytes) in the other byte order: its header
    says the other "byteorder" (the other keys unchanged) and every dump is
    converted.  The dump framing (b"DUMP" + big-endian time and length) is
    the same on every machine."""
    if not raw.startswith(_MAGIC):
        raise SwapError("not a flowtop recording")
    nl = raw.index(b"\n", len(_MAGIC))
    header = json.loads(raw[len(_MAGIC):nl].decode("utf-8"))
    order = header["byteorder"]
    header["byteorder"] = "big" if order == "little" else "little"
    _fmt(order)
    out = [_MAGIC, json.dumps(header, sort_keys=True).encode(), b"\n"]
    off = nl + 1
    while off < len(raw):
        if raw[off:off + 4] != _DUMP or off + 4 + _DUMP_HDR.size > len(raw):
            raise SwapError("recording damaged at offset %d" % off)
        _when, length = _DUMP_HDR.unpack_from(raw, off + 4)
        start = off + 4 + _DUMP_HDR.size
        if start + length > len(raw):
            raise SwapError("recording cut short at offset %d" % off)
        out += [raw[off:start], swap_dump(raw[start:start + length], order, "ctnetlink", strict)]
        off = start + length
    return b"".join(out)


def recording_header(raw):
    nl = raw.index(b"\n", len(_MAGIC))
    return json.loads(raw[len(_MAGIC):nl].decode("utf-8"))


def recording_to_big(raw, strict=True):
    """A little-endian recording as a big-endian machine would have made it
    (a big-endian one is returned as it is)."""
    return raw if recording_header(raw)["byteorder"] == "big" else swap_recording(raw, strict)


def recording_to_little(raw, strict=True):
    return raw if recording_header(raw)["byteorder"] == "little" else swap_recording(raw, strict)


def swap_procnet_text(text):
    """A /proc/net/{tcp,udp,raw,...}{,6} table as the other byte order's
    kernel prints it: the addresses are the raw 32-bit words printed with
    %08X in host order, so each word's bytes are reversed; the ports
    (ntohs'd) and every other column read the same."""
    lines = text.split("\n")
    out = lines[:1]
    for line in lines[1:]:
        cols = line.split(" ")
        words = [i for i, c in enumerate(cols) if c]
        for i in words[1:3]:                  # local_address, rem_address
            addr, port = cols[i].split(":")
            if len(addr) % 8:
                raise SwapError("address %r is no whole 32-bit words" % addr)
            cols[i] = "".join(
                "".join(reversed([addr[j + k:j + k + 2] for k in range(0, 8, 2)]))
                for j in range(0, len(addr), 8)) + ":" + port
        out.append(" ".join(cols))
    return "\n".join(out)


def swap_sockdiag_fixture(fixture, strict=True):
    """tests/fixtures/sockdiag-dump.json (loaded) in the other byte order: each
    dump's base64 "data" converted, the /proc/net tables' addresses too,
    "byteorder" flipped."""
    import base64
    order = fixture["byteorder"]
    out = dict(fixture, byteorder="big" if order == "little" else "little")
    out["dumps"] = [dict(d, data=base64.b64encode(
        swap_dump(base64.b64decode(d["data"]), order, "sockdiag", strict)).decode("ascii"))
        for d in fixture["dumps"]]
    out["procnet"] = {name: swap_procnet_text(text) for name, text in fixture["procnet"].items()}
    return out
