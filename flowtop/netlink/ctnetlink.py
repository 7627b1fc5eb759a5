"""ctnetlink bytes -> CtEntry, and the request messages flowtop sends.

Pure functions over bytes.  The rules: attribute headers in host order,
type masked with NLA_TYPE_MASK, ctnetlink integers big-endian whatever
NLA_F_NET_BYTEORDER says (the kernel does not set it), unknown and
zero-length (padding) attributes skipped, any length that lies ->
DecodeError.  ``SCHEMA`` says which attribute holds which field;
``decode_entry`` walks it, and ``Decoder`` - the hot path, 100k flows per
tick on a router - compiles each layout it meets into a mask check and one struct call.
"""

import copy
import operator
import socket
import struct
from collections import namedtuple

from ..memo import Memo
from . import attrs, nlmsg
from . import uapi as _u
from .errors import DecodeError
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
Related = namedtuple("Related", ("helper", "labels", "master_l4proto", "master_src",
                                 "master_dst", "master_sport", "master_dport"))
RELATED_PARTS = ("helper", "labels") + Related._fields[2:]
_RELATED = {}
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
        if len(_RELATED) >= 4096:
            _RELATED.clear()
        _RELATED[key] = r
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


class TupleTarget:
    """What a Decoder builds by default: ``cls`` records (CtEntry tuples).

    A target turns a layout into code: ``compile(exprs, consts)`` gets, per
    field of FIELDS, a Python expression over the unpacked values (or
    "None"), and returns (statements, return expression, names they use).
    ``convert`` makes the same thing from a record the plain decoder built.
    Another target (``flowtop.views.record.JsonTarget``) writes JSON text
    straight from the bytes.  ``keeps``: what it builds holds the values
    for long, so equal ports, timeouts and status words should be one shared
    int object.
    """

    keeps = True

    def __init__(self, cls=CtEntry):
        self.cls = cls

    def compile(self, exprs, consts):
        return "", "new(cls, (%s,))" % ",".join(exprs[n] for n in FIELDS), {
            "new": tuple.__new__, "cls": self.cls}

    def convert(self, entry):
        return entry


class Decoder:
    """A fast decoder that specialises itself per message layout.

    The kernel writes every entry of the same kind (family, protocol, which
    optional attributes) with the same attribute headers at the same
    offsets.  The first message of a layout is decoded by ``decode_entry``;
    its layout then becomes a mask over the bytes of every attribute header
    plus the family and protocol bytes, a precompiled struct reading every
    value, and a function generated by the target.  A later message of the
    same length whose masked bytes are identical (one big-int AND and
    compare: a third of the cost of unpacking ~30 headers) is decoded by
    one struct call.  Header identity means the plain decoder
    would walk it exactly the same way, so both always agree (tests check).
    """

    MAX_LAYOUTS = 512      # bound the cache against hostile input

    def __init__(self, cls=CtEntry, target=None):
        self.cls = cls
        self.target = target or TupleTarget(cls)
        self.fast = {}          # body length -> fast(buf, off): result or None
        self._by_length = {}    # body length -> [fast functions of that length]
        self._count = 0
        self._addresses = AddressCache()
        self._shared = Interner()     # timeouts and status words

    def forget(self):
        """Empty the value caches in place (they refill as records are
        decoded).  When the table shrinks they keep its memory: address
        texts and ints cached among the freed records pinned 200 MB of
        Python's arenas after a flood of 200k flows."""
        self._addresses.clear()
        self._shared.clear()

    def cached(self):
        """How many values the caches hold."""
        return len(self._addresses) + len(self._shared)

    def clone(self):
        """A copy that knows the layouts learnt so far and learns on its own
        from here (the value caches are shared: they only memoise)."""
        c = copy.copy(self)
        c.fast = dict(self.fast)
        c._by_length = {k: list(v) for k, v in self._by_length.items()}
        return c

    def __call__(self, buf, off, end):
        fast = self.fast.get(end - off)
        if fast is not None:
            result = fast(buf, off)
            if result is not None:
                return result
        found, headers = _layout(buf, off, end)
        entry = _assemble(buf, off, found, self.cls)
        if self._count < self.MAX_LAYOUTS and "l4proto" in found:
            self._learn(buf, off, end, found, headers)
        return self.target.convert(entry)

    def _learn(self, buf, off, end, found, headers):
        proto_rel = found["l4proto"][1]
        size = end - off
        mask = bytearray(size)
        for rel, width in [(h, 4) for h in headers] + [(0, 1), (proto_rel, 1)]:
            mask[rel:rel + width] = b"\xff" * width
        mask = int.from_bytes(mask, "little")
        expect = int.from_bytes(buf[off:end], "little") & mask
        consts = {"family": buf[off], "l4proto": buf[off + proto_rel]}
        items = sorted((spec[1], field, spec[0]) for field, spec in found.items()
                       if spec[0] != "raw" and field not in consts)
        codes = {"u8": "B", "be16": "H", "be32": "I", "be64": "Q", "v4": "4s", "v6": "16s",
                 "b16": "16s"}
        values = struct.Struct(">" + _format([
            (rel, "%ds" % found[field][2] if kind == "str" else codes[kind])
            for rel, field, kind in items]))
        index = {field: (i, kind) for i, (_rel, field, kind) in enumerate(items)}
        exprs = {}
        intern = getattr(self.target, "keeps", True)     # records kept for long
        for name in FIELDS:
            if name in consts:
                e = repr(consts[name])
            elif name == "key":
                _, ks, ke = found["@key"]
                e = "buf[off+%d:off+%d]" % (ks, ke)
                if "@zraw" in found:
                    _, zs, ze = found["@zraw"]
                    e += "+buf[off+%d:off+%d]" % (zs, ze)
            elif name == "related":
                parts = [("addr[v[%d]]" if index[p][1] in _AF else "v[%d]") % index[p][0]
                         if p in index else "None" for p in RELATED_PARTS]
                e = "None" if parts.count("None") == len(parts) else \
                    "related(%s)" % ",".join(parts)
            elif name == "zone" and name not in index:
                e = "v[%d]" % index["tuple_zone"][0] if "tuple_zone" in index else "0"
            elif name in index:
                i, kind = index[name]
                if kind in _AF:
                    e = "addr[v[%d]]" % i
                elif kind == "be16" and intern:
                    e = "(ports[v[%d]] or port(v[%d]))" % (i, i)  # one shared int per port number
                elif name in ("timeout", "status") and intern:
                    e = "shared[v[%d]]" % i    # flows of one dump share most of these
                else:
                    e = "v[%d]" % i
            else:
                e = "None"
            exprs[name] = e
        prelude, result, env = self.target.compile(exprs, consts)
        src = ("def fast(buf, off):\n"
               "    if number(buf[off:off+%d], 'little') & mask != expect:\n"
               "        return None\n" % size +
               "    v = unpack(buf, off)\n%s"
               "    return %s\n" % (prelude, result))
        env = dict(env, number=int.from_bytes, mask=mask, expect=expect, unpack=values.unpack_from,
                   related=related_of,
                   addr=self._addresses, ports=_ports(), port=_port, shared=self._shared)
        exec(compile(src, "<ctnetlink layout>", "exec"), env)   # ints and names only
        same = self._by_length.setdefault(end - off, [])
        same.append(env["fast"])
        self.fast[end - off] = same[0] if len(same) == 1 else _first_of(tuple(same))
        self._count += 1


_PORTS = []


def _ports():
    """Port number -> its one shared int object, or None until first seen:
    a table of 100k flows shares them instead of holding ~4 ints each.  The
    slots fill as ports are seen (an all-ports list of ints is 2.5 MB, more
    than a 16k-flow table saves by it)."""
    if not _PORTS:
        _PORTS.extend([None] * 65536)
    return _PORTS


def _port(number):
    _PORTS[number] = number
    return number


def _first_of(candidates):
    """One fast function over several layouts of the same length."""
    def fast(buf, off):
        for candidate in candidates:
            entry = candidate(buf, off)
            if entry is not None:
                return entry
        return None
    return fast


def _same(value):
    return value


def Interner():
    """value -> the same value, memoised: one object for a value many
    records hold (an int, a small tuple; a kept record holds its int for as
    long as it lives).  Bounded."""
    return Memo(65536, _same)


def _address_text(packed):
    return socket.inet_ntop(socket.AF_INET if len(packed) == 4 else socket.AF_INET6, packed)


def AddressCache():
    """Packed address -> text, memoised: a table repeats a few addresses
    many times, and a dict hit costs a third of inet_ntop.  Bounded."""
    return Memo(65536, _address_text)


def _format(fields):
    """struct format for (offset, code) pairs in offset order, padded between."""
    fmt, pos = [], 0
    for rel, code in sorted(fields):
        if rel > pos:
            fmt.append("%dx" % (rel - pos))
        fmt.append(code)
        pos = rel + struct.calcsize("=" + code)
    return "".join(fmt)


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
