"""ctnetlink bytes -> CtEntry, and the request messages flowtop sends.

Pure functions over bytes.  The rules: attribute headers in host order,
type masked with NLA_TYPE_MASK, ctnetlink integers big-endian whatever
NLA_F_NET_BYTEORDER says (the kernel does not set it), unknown and
zero-length (padding) attributes skipped, any length that lies ->
DecodeError.  ``SCHEMA`` says which attribute holds which field;
``decode_entry`` walks it; ``ctdecoder.Decoder`` - the hot path, 100k
flows per tick on a router - compiles each layout it meets into a mask
check and one struct call.
"""

import operator
import _socket as socket  # not socket.py (see netlink/socket.py)
import struct

from . import attrs, nlmsg
from . import uapi as _u
from .errors import DecodeError
from ..memo import Memo
from ..tuples import named
from .uapi import (
    CTA_COUNTERS32_BYTES, CTA_COUNTERS32_PACKETS, CTA_COUNTERS_BYTES, CTA_COUNTERS_ORIG,
    CTA_COUNTERS_PACKETS, CTA_COUNTERS_REPLY, CTA_ID, CTA_IP_V4_DST, CTA_IP_V4_SRC,
    CTA_IP_V6_DST, CTA_IP_V6_SRC, CTA_MARK, CTA_PROTO_DST_PORT, CTA_PROTO_ICMP_CODE,
    CTA_PROTO_ICMP_ID, CTA_PROTO_ICMP_TYPE, CTA_PROTO_ICMPV6_CODE, CTA_PROTO_ICMPV6_ID,
    CTA_PROTO_ICMPV6_TYPE, CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTOINFO,
    CTA_PROTOINFO_DCCP, CTA_PROTOINFO_DCCP_STATE, CTA_PROTOINFO_SCTP,
    CTA_PROTOINFO_SCTP_STATE, CTA_PROTOINFO_TCP, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL,
    CTA_PROTOINFO_TCP_FLAGS_REPLY, CTA_PROTOINFO_TCP_STATE, CTA_STATUS, CTA_TIMEOUT,
    CTA_TIMESTAMP, CTA_TIMESTAMP_START, CTA_TIMESTAMP_STOP, CTA_TUPLE_IP, CTA_TUPLE_ORIG,
    CTA_TUPLE_PROTO, CTA_TUPLE_REPLY, CTA_TUPLE_ZONE, CTA_USE, CTA_ZONE, IPCTNL_MSG_CT_GET,
    IPCTNL_MSG_CT_DELETE, IPCTNL_MSG_CT_GET_STATS, IPCTNL_MSG_CT_NEW, IPPROTO_GRE,
    NFGENMSG_LEN, NFNETLINK_V0, NFNL_SUBSYS_CTNETLINK, NLM_F_DUMP, NLM_F_REQUEST, CTA_STATS_GLOBAL_ENTRIES, AF_UNSPEC,
)

MSG_CT_NEW = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW
MSG_CT_GET = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET
MSG_CT_DELETE = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE
MSG_CT_GET_STATS = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET_STATS

_NFGEN = struct.Struct("=BBH")

FIELDS = (
    "family", "l4proto", "src", "dst", "sport", "dport",
    "reply_src", "reply_dst", "reply_sport", "reply_dport",
    "icmp_type", "icmp_code", "icmp_id",
    "state",
    "status", "timeout", "mark", "zone", "id", "use",
    "packets_orig", "bytes_orig", "packets_reply", "bytes_reply",
    "start", "stop", "key", "related",
)
_INDEX = {name: i for i, name in enumerate(FIELDS)}


class CtEntry(tuple):
    """One conntrack entry as the kernel reported it (an immutable record).

    Addresses are strings, counters and timestamps ints; a field the kernel
    did not send is None (accounting off -> counters None, never 0).
    ``key`` is the raw CTA_TUPLE_ORIG payload plus the raw zone: the identity
    of a flow (``id`` is a 32-bit hash that repeats; use it only as a check).
    ``related`` is a Related (helper, labels, master tuple) or, for almost
    every flow, None: one field instead of seven keeps a record at 272 bytes.
    A tuple, so that the decoder builds one in a single C call.
    """

    __slots__ = ()
    _fields = FIELDS

    def __new__(cls, **fields):
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise TypeError("unknown CtEntry fields: %s" % ", ".join(sorted(unknown)))
        return tuple.__new__(cls, [fields.get(name) for name in FIELDS])

    def as_dict(self):
        return dict(zip(FIELDS, self))

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join(
            "%s=%r" % (n, v) for n, v in zip(FIELDS, self) if n != "key"))

    @property
    def gre_key(self):
        """GRE key carried in the originator's packets (the orig dst key)."""
        return self[5] if self[1] == IPPROTO_GRE else None

    @property
    def gre_reply_key(self):
        """GRE key carried in the reply packets (the reply dst key)."""
        return self[9] if self[1] == IPPROTO_GRE else None


for _i, _name in enumerate(FIELDS):
    setattr(CtEntry, _name, property(operator.itemgetter(_i), doc=_name))
del _i, _name


# --- the schema: which attribute holds which field, as what -------------------
# A leaf is (field, kind); a nest is a dict.  Field None: checked, not kept.
# Kinds and their exact payload sizes ("u8" takes the first byte of >= 1).
# "str" (a helper's name) is 1 to NF_CT_HELPER_NAME_LEN bytes; "b16" the label bits.
_SIZES = {"u8": 1, "be16": 2, "be32": 4, "be64": 8, "v4": 4, "v6": 16,
          "str": _u.NF_CT_HELPER_NAME_LEN, "b16": _u.NF_CT_LABELS_MAX_SIZE}


def _tuple_schema(p, orig, proto=None):
    # The reply tuple's ICMP type/code/id are checked, not kept: nothing
    # shows them, and at 100k flows each field costs 800 KB (a 27-field
    # record is one 256-byte allocation, 32 fields took 304).
    icmp = (lambda name: p + name) if orig else (lambda name: None)
    proto = proto or ("l4proto" if orig else None)
    return {
        CTA_TUPLE_IP: {
            CTA_IP_V4_SRC: (p + "src", "v4"), CTA_IP_V4_DST: (p + "dst", "v4"),
            CTA_IP_V6_SRC: (p + "src", "v6"), CTA_IP_V6_DST: (p + "dst", "v6"),
        },
        CTA_TUPLE_PROTO: {
            CTA_PROTO_NUM: (proto, "u8"),
            CTA_PROTO_SRC_PORT: (p + "sport", "be16"),
            CTA_PROTO_DST_PORT: (p + "dport", "be16"),
            CTA_PROTO_ICMP_ID: (icmp("icmp_id"), "be16"),
            CTA_PROTO_ICMP_TYPE: (icmp("icmp_type"), "u8"),
            CTA_PROTO_ICMP_CODE: (icmp("icmp_code"), "u8"),
            CTA_PROTO_ICMPV6_ID: (icmp("icmp_id"), "be16"),
            CTA_PROTO_ICMPV6_TYPE: (icmp("icmp_type"), "u8"),
            CTA_PROTO_ICMPV6_CODE: (icmp("icmp_code"), "u8"),
        },
        CTA_TUPLE_ZONE: ("tuple_zone" if orig else None, "be16"),
    }


def _counter_schema(d):
    return {
        CTA_COUNTERS_PACKETS: ("packets_" + d, "be64"),
        CTA_COUNTERS_BYTES: ("bytes_" + d, "be64"),
        CTA_COUNTERS32_PACKETS: ("packets_" + d, "be32"),
        CTA_COUNTERS32_BYTES: ("bytes_" + d, "be32"),
    }


SCHEMA = {
    CTA_TUPLE_ORIG: _tuple_schema("", True),
    CTA_TUPLE_REPLY: _tuple_schema("reply_", False),
    # RELATED flows (an FTP data connection) name their master's original tuple
    _u.CTA_TUPLE_MASTER: _tuple_schema("master_", False, "master_l4proto"),
    _u.CTA_HELP: {_u.CTA_HELP_NAME: ("helper", "str")},
    _u.CTA_LABELS: ("labels", "b16"),
    CTA_STATUS: ("status", "be32"),
    CTA_TIMEOUT: ("timeout", "be32"),
    CTA_MARK: ("mark", "be32"),
    CTA_ID: ("id", "be32"),
    CTA_USE: ("use", "be32"),
    CTA_ZONE: ("zone", "be16"),
    CTA_COUNTERS_ORIG: _counter_schema("orig"),
    CTA_COUNTERS_REPLY: _counter_schema("reply"),
    CTA_TIMESTAMP: {CTA_TIMESTAMP_START: ("start", "be64"), CTA_TIMESTAMP_STOP: ("stop", "be64")},
    CTA_PROTOINFO: {
        CTA_PROTOINFO_TCP: {
            CTA_PROTOINFO_TCP_STATE: ("state", "u8"),
            # nf_ct_tcp_flags (window scaling, SACK...): checked, not kept
            CTA_PROTOINFO_TCP_FLAGS_ORIGINAL: (None, "u8"),
            CTA_PROTOINFO_TCP_FLAGS_REPLY: (None, "u8"),
        },
        CTA_PROTOINFO_SCTP: {CTA_PROTOINFO_SCTP_STATE: ("state", "u8")},
        CTA_PROTOINFO_DCCP: {CTA_PROTOINFO_DCCP_STATE: ("state", "u8")},
    },
}

_BE = {"u8": struct.Struct("B").unpack_from, "be16": struct.Struct(">H").unpack_from,
       "be32": struct.Struct(">I").unpack_from, "be64": struct.Struct(">Q").unpack_from}
_AF = {"v4": socket.AF_INET, "v6": socket.AF_INET6}


def _walk(buf, start, end, base, schema, found, headers):
    """Walk one attribute level against ``schema``; fill ``found`` with
    field -> (kind, offset) and ``headers`` with each header's offset (both
    relative to ``base``).  Raises DecodeError for a length that lies."""
    for atype, vs, ve in attrs.iter_attrs(buf, start, end):
        headers.append(vs - _u.NLA_HDRLEN - base)
        spec = schema.get(atype)
        if spec is None:
            continue                           # unknown or padding: skipped
        if isinstance(spec, dict):
            if schema is SCHEMA and atype == CTA_TUPLE_ORIG:
                found["@key"] = ("raw", vs - base, ve - base)
            _walk(buf, vs, ve, base, spec, found, headers)
            continue
        field, kind = spec
        size = _SIZES[kind]
        n = ve - vs
        if (n < 1) if kind == "u8" else (not 1 <= n <= size) if kind == "str" else (n != size):
            raise DecodeError("attribute %d: %d bytes where %d are expected"
                              % (atype, n, size))
        if field == "zone":
            found["@zraw"] = ("raw", vs - base, ve - base)
        if field is not None:
            found[field] = (kind, vs - base, n) if kind == "str" else (kind, vs - base)


def _layout(buf, off, end):
    """The layout of one message body: (found fields, header offsets)."""
    if end - off < NFGENMSG_LEN:
        raise DecodeError("ctnetlink message shorter than its nfgenmsg header")
    found = {"family": ("u8", 0)}
    headers = []
    _walk(buf, off + NFGENMSG_LEN, end, off, SCHEMA, found, headers)
    if "@key" not in found:
        raise DecodeError("conntrack entry without an original tuple")
    return found, headers


def _value(buf, off, kind, rel, size=None):
    if kind in _AF:
        size = _SIZES[kind]
        return socket.inet_ntop(_AF[kind], buf[off + rel:off + rel + size])
    if kind in ("str", "b16"):
        return bytes(buf[off + rel:off + rel + (size or _SIZES[kind])])
    return _BE[kind](buf, off + rel)[0]


# What a helped or RELATED flow carries beyond its tuples (rare: one shared
# None for all others).  labels: the set label bit numbers; master_*: the
# original tuple of the flow this one was expected by (CTA_TUPLE_MASTER).
Related = named("Related", ("helper", "labels", "master_l4proto", "master_src",
                            "master_dst", "master_sport", "master_dport"))
RELATED_PARTS = ("helper", "labels") + Related._fields[2:]
_RELATED = Memo(4096)
_LONG = struct.Struct("@L")


def related_of(helper, labels, *master):
    """Related from the raw helper name and label bytes and the decoded
    master tuple (the one function both decoders call), or None."""
    if helper is None and labels is None and master.count(None) == len(master):
        return None
    key = (helper, labels) + master
    r = _RELATED.get(key)
    if r is None:
        name = None
        if helper is not None:
            name = helper.split(b"\0", 1)[0].decode("ascii", "replace")
        bits = None
        if labels is not None:
            # the kernel's unsigned long words, in this host's order and width
            w = _LONG.size
            bits = tuple(i * 8 * w + b for i in range(len(labels) // w)
                         for b in range(8 * w)
                         if _LONG.unpack_from(labels, i * w)[0] >> b & 1)
        r = Related(name, bits, *master)
        _RELATED.put(key, r)
    return r


def _assemble(buf, off, found, cls):
    values = dict.fromkeys(FIELDS)
    for field, spec in found.items():
        if field[0] != "@" and field != "tuple_zone":
            values[field] = _value(buf, off, *spec)
    if values["zone"] is None:
        tz = found.get("tuple_zone")
        values["zone"] = _value(buf, off, *tz) if tz else 0
    _, ks, ke = found["@key"]
    key = buf[off + ks:off + ke]
    if "@zraw" in found:
        _, zs, ze = found["@zraw"]
        key += buf[off + zs:off + ze]
    values["key"] = key
    values["related"] = related_of(*[values.get(p) for p in RELATED_PARTS])
    return tuple.__new__(cls, [values[name] for name in FIELDS])


def decode_entry(buf, off, end, cls=CtEntry):
    """Decode the body of one IPCTNL_MSG_CT_NEW/DELETE message into ``cls``.

    ``buf[off:end]`` is the nfgenmsg header and the attributes; ``buf`` must
    be bytes.  The plain, schema-driven decoder: ``Decoder`` is the fast one
    and falls back to this for every layout it has not seen.
    """
    found, _headers = _layout(buf, off, end)
    return _assemble(buf, off, found, cls)


# The generated fast decoder lives in ctdecoder (it imports this module);
# its names stay importable from here, resolved on first use.
_FAST = ("Decoder", "TupleTarget", "Interner", "AddressCache")


def __getattr__(name):
    if name in _FAST:
        from . import ctdecoder
        return getattr(ctdecoder, name)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


def decode_stats(buf, off, end):
    """Body of an IPCTNL_MSG_CT_GET_STATS reply -> number of entries."""
    for t, s, e in attrs.iter_attrs(buf, off + NFGENMSG_LEN, end):
        if t == CTA_STATS_GLOBAL_ENTRIES:
            return attrs.be32(buf, s, e)
    return None


def decode_stats_global(buf, off, end):
    """Body of an IPCTNL_MSG_CT_GET_STATS reply -> (entries, max entries);
    None for what the kernel did not send (MAX_ENTRIES came with 4.15)."""
    found = {}
    for t, s, e in attrs.iter_attrs(buf, off + NFGENMSG_LEN, end):
        if t in (CTA_STATS_GLOBAL_ENTRIES, _u.CTA_STATS_GLOBAL_MAX_ENTRIES):
            found[t] = attrs.be32(buf, s, e)
    return found.get(CTA_STATS_GLOBAL_ENTRIES), found.get(_u.CTA_STATS_GLOBAL_MAX_ENTRIES)


# --- requests ----------------------------------------------------------------

def nfgenmsg(family=AF_UNSPEC, res_id=0):
    return _NFGEN.pack(family, NFNETLINK_V0, socket.htons(res_id))


def dump_request(seq, family=AF_UNSPEC, zero_counters=False):
    """IPCTNL_MSG_CT_GET with NLM_F_DUMP: the whole table of ``family``
    (AF_UNSPEC: IPv4 and IPv6 in one dump)."""
    mtype = MSG_CT_GET
    if zero_counters:
        mtype = (NFNL_SUBSYS_CTNETLINK << 8) | _u.IPCTNL_MSG_CT_GET_CTRZERO
    return nlmsg.pack(mtype, NLM_F_REQUEST | NLM_F_DUMP, seq, nfgenmsg(family))


def split_key(key):
    """A flow key (raw CTA_TUPLE_ORIG payload + raw zone) -> (tuple, zone):
    the tuple is whole attributes; what is left after them is the zone."""
    off = 0
    end = len(key)
    while end - off >= _u.NLA_HDRLEN:
        length = attrs.NLATTR.unpack_from(key, off)[0]
        if length < _u.NLA_HDRLEN or off + length > end:
            break
        off += (length + _u.NLA_ALIGNTO - 1) & ~(_u.NLA_ALIGNTO - 1)
    off = min(off, end)
    return key[:off], key[off:]


def get_request(seq, family, key):
    """IPCTNL_MSG_CT_GET of one flow by its key (see CtEntry.key).  No ACK
    is asked for: the kernel answers each request with exactly one
    message, the flow or an error (ENOENT once it is gone)."""
    orig, zone = split_key(key)
    body = nfgenmsg(family) + attrs.pack_attr(CTA_TUPLE_ORIG, orig, nested=True)
    if zone:
        body += attrs.pack_attr(CTA_ZONE, zone)
    return nlmsg.pack(MSG_CT_GET, NLM_F_REQUEST, seq, body)


def delete_request(seq, family, key, ct_id=None):
    """IPCTNL_MSG_CT_DELETE of one flow by its key (original tuple and
    zone), acknowledged.  With ``ct_id`` the kernel deletes only the entry
    of that id (ENOENT otherwise): a flow that ended and came back with the
    same tuple since it was shown is left alone."""
    orig, zone = split_key(key)
    body = nfgenmsg(family) + attrs.pack_attr(CTA_TUPLE_ORIG, orig, nested=True)
    if zone:
        body += attrs.pack_attr(CTA_ZONE, zone)
    if ct_id is not None:
        body += attrs.pack_attr(CTA_ID, struct.pack(">I", ct_id))
    return nlmsg.pack(MSG_CT_DELETE, NLM_F_REQUEST | _u.NLM_F_ACK, seq, body)


def stats_request(seq):
    """IPCTNL_MSG_CT_GET_STATS: global entry count (conntrack -C)."""
    return nlmsg.pack(MSG_CT_GET_STATS, NLM_F_REQUEST, seq, nfgenmsg())


# --- per-CPU statistics (conntrack -S) -------------------------------------------

def stats_cpu_request(seq):
    """IPCTNL_MSG_CT_GET_STATS_CPU: a dump, one message per CPU."""
    return nlmsg.pack((NFNL_SUBSYS_CTNETLINK << 8) | _u.IPCTNL_MSG_CT_GET_STATS_CPU,
                      NLM_F_REQUEST | NLM_F_DUMP, seq, nfgenmsg())


STATS_CPU_FIELDS = {
    _u.CTA_STATS_FOUND: "found", _u.CTA_STATS_INVALID: "invalid",
    _u.CTA_STATS_INSERT: "insert", _u.CTA_STATS_INSERT_FAILED: "insert_failed",
    _u.CTA_STATS_DROP: "drop", _u.CTA_STATS_EARLY_DROP: "early_drop",
    _u.CTA_STATS_ERROR: "error", _u.CTA_STATS_SEARCH_RESTART: "search_restart",
    _u.CTA_STATS_CLASH_RESOLVE: "clash_resolve", _u.CTA_STATS_CHAIN_TOOLONG: "chain_toolong",
}


def decode_stats_cpu(buf, off, end):
    """Body of one IPCTNL_MSG_CT_GET_STATS_CPU reply -> (cpu, {name: value});
    the CPU is the nfgenmsg's res_id (big-endian)."""
    if end - off < NFGENMSG_LEN:
        raise DecodeError("stats message cut short")
    cpu = int.from_bytes(buf[off + 2:off + 4], "big")
    values = {}
    for t, s, e in attrs.iter_attrs(buf, off + NFGENMSG_LEN, end):
        name = STATS_CPU_FIELDS.get(t)
        if name is not None:
            values[name] = attrs.be32(buf, s, e)
    return cpu, values
