"""IPFIX (RFC 7011) encoding: information elements, templates, records,
messages.  Pure functions over values -> bytes; no sockets, no clock.

Numbers are IANA's (https://www.iana.org/assignments/ipfix), under their
IANA names.  Process elements are ntop's (Private Enterprise Number 35632):
ntopng, nProbe and Wireshark's cflow dissector already decode them, and
pmacct's nfacctd reads them with an ``aggregate_primitives`` line; a PEN of
our own would be decoded by nobody (RFC 5610 type records teach a collector
a type, not a meaning, and nfcapd/GoFlow2 ignore them).
"""

import struct

VERSION = 10
MESSAGE_HEADER = struct.Struct(">HHIII")     # version, length, export time, sequence, domain
SET_HEADER = struct.Struct(">HH")            # set id, length
TEMPLATE_SET_ID = 2
OPTIONS_TEMPLATE_SET_ID = 3
FIRST_DATA_SET_ID = 256
VARLEN = 65535
ENTERPRISE_BIT = 0x8000

NTOP_PEN = 35632


class IE:
    """An information element: IANA name, id, encoded length (VARLEN for
    strings), struct format of a fixed-length value, enterprise number."""

    __slots__ = ("name", "id", "length", "fmt", "pen")

    def __init__(self, name, ident, length, fmt, pen=0):
        self.name, self.id, self.length, self.fmt, self.pen = name, ident, length, fmt, pen

    def __repr__(self):
        return "IE(%s)" % self.name


def _ie(name, ident, fmt, pen=0):
    if fmt == "s":
        return IE(name, ident, VARLEN, None, pen)
    return IE(name, ident, struct.calcsize(">" + fmt), fmt, pen)


octetDeltaCount = _ie("octetDeltaCount", 1, "Q")
packetDeltaCount = _ie("packetDeltaCount", 2, "Q")
protocolIdentifier = _ie("protocolIdentifier", 4, "B")
sourceTransportPort = _ie("sourceTransportPort", 7, "H")
sourceIPv4Address = _ie("sourceIPv4Address", 8, "4s")
ingressInterface = _ie("ingressInterface", 10, "I")
destinationTransportPort = _ie("destinationTransportPort", 11, "H")
destinationIPv4Address = _ie("destinationIPv4Address", 12, "4s")
egressInterface = _ie("egressInterface", 14, "I")
sourceIPv6Address = _ie("sourceIPv6Address", 27, "16s")
destinationIPv6Address = _ie("destinationIPv6Address", 28, "16s")
icmpTypeCodeIPv4 = _ie("icmpTypeCodeIPv4", 32, "H")
flowDirection = _ie("flowDirection", 61, "B")
interfaceName = _ie("interfaceName", 82, "s")
icmpTypeCodeIPv6 = _ie("icmpTypeCodeIPv6", 139, "H")
flowEndReason = _ie("flowEndReason", 136, "B")
flowId = _ie("flowId", 148, "Q")
flowStartMilliseconds = _ie("flowStartMilliseconds", 152, "Q")
flowEndMilliseconds = _ie("flowEndMilliseconds", 153, "Q")
postNATSourceIPv4Address = _ie("postNATSourceIPv4Address", 225, "4s")
postNATDestinationIPv4Address = _ie("postNATDestinationIPv4Address", 226, "4s")
postNAPTSourceTransportPort = _ie("postNAPTSourceTransportPort", 227, "H")
postNAPTDestinationTransportPort = _ie("postNAPTDestinationTransportPort", 228, "H")
biflowDirection = _ie("biflowDirection", 239, "B")
postNATSourceIPv6Address = _ie("postNATSourceIPv6Address", 281, "16s")
postNATDestinationIPv6Address = _ie("postNATDestinationIPv6Address", 282, "16s")
userName = _ie("userName", 371, "s")
# ntop's process elements (nProbe's SRC_PROC_PID 57640 = NTOP_BASE_ID 57472 + 168, ...)
srcProcPid = _ie("ntop.SRC_PROC_PID", 168, "I", NTOP_PEN)
srcProcName = _ie("ntop.SRC_PROC_NAME", 169, "s", NTOP_PEN)
dstProcPid = _ie("ntop.DST_PROC_PID", 375, "I", NTOP_PEN)
dstProcName = _ie("ntop.DST_PROC_NAME", 376, "s", NTOP_PEN)

# flowEndReason values (RFC 7011 / IANA)
END_IDLE = 0x01
END_ACTIVE = 0x02
END_OF_FLOW = 0x03
END_FORCED = 0x04
# flowDirection / biflowDirection values
DIRECTION_INGRESS = 0
DIRECTION_EGRESS = 1
BIFLOW_INITIATOR = 1
BIFLOW_REVERSE_INITIATOR = 2


class Template:
    """A (data or options) template: its id and fields, fixed-length ones
    first (one struct call packs them), then the variable-length strings."""

    __slots__ = ("id", "fields", "scope", "names", "_fixed", "_nfixed")

    def __init__(self, ident, fields, scope=0):
        if not FIRST_DATA_SET_ID <= ident <= 0xFFFF:
            raise ValueError("template id %d out of range" % ident)
        fixed = [f for f in fields if f.length != VARLEN]
        if list(fields) != fixed + [f for f in fields if f.length == VARLEN]:
            raise ValueError("variable-length fields must come last")
        self.id = ident
        self.fields = tuple(fields)
        self.scope = scope
        self.names = tuple(f.name for f in fields)
        self._fixed = struct.Struct(">" + "".join(f.fmt for f in fixed))
        self._nfixed = len(fixed)

    def record(self, values):
        """One data record: ``values`` in field order (addresses as packed
        bytes, strings as str or bytes)."""
        n = self._nfixed
        out = self._fixed.pack(*values[:n])
        if n == len(values):
            return out
        return out + b"".join(varlen(v) for v in values[n:])

    def definition(self):
        """The template record (or options template record) that announces it."""
        if self.scope:
            head = struct.pack(">HHH", self.id, len(self.fields), self.scope)
        else:
            head = struct.pack(">HH", self.id, len(self.fields))
        parts = [head]
        for f in self.fields:
            if f.pen:
                parts.append(struct.pack(">HHI", f.id | ENTERPRISE_BIT, f.length, f.pen))
            else:
                parts.append(struct.pack(">HH", f.id, f.length))
        return b"".join(parts)

    @property
    def set_id(self):
        return OPTIONS_TEMPLATE_SET_ID if self.scope else TEMPLATE_SET_ID


def varlen(value, cap=VARLEN - 1):
    """A variable-length field (RFC 7011 section 7): one length byte below
    255, else 255 and a two-byte length.  Text is UTF-8, cut to ``cap``
    bytes at a character boundary."""
    if isinstance(value, str):
        value = value.encode("utf-8", "replace")
    if len(value) > cap:
        value = value[:cap].decode("utf-8", "ignore").encode("utf-8")
    n = len(value)
    if n < 255:
        return bytes((n,)) + value
    return b"\xff" + n.to_bytes(2, "big") + value


def pack_messages(items, mtu, domain, sequence, export_time):
    """Messages carrying ``items`` in order, each at most ``mtu`` bytes.

    ``items``: (set id, record bytes, counts) - set id 2/3 for template
    records, the template id for data records; ``counts`` says whether the
    record is a data record (they number the messages).  Consecutive items
    of one set id share a set.  Each message's sequence number is the
    number of data records sent before it (RFC 7011 section 3.1), modulo
    2**32.  Returns (messages, the sequence number after them)."""
    room = mtu - MESSAGE_HEADER.size
    messages = []
    sets = []             # (set id, [records]) of the message being built
    size = 0
    first_seq = sequence
    for set_id, data, counts in items:
        need = len(data) + (0 if sets and sets[-1][0] == set_id else SET_HEADER.size)
        if len(data) + SET_HEADER.size > room:
            raise ValueError("a record of %d bytes does not fit a %d-byte message"
                             % (len(data), mtu))
        if size + need > room:
            messages.append(_message(sets, size, domain, first_seq, export_time))
            sets, size, first_seq = [], 0, sequence
            need = len(data) + SET_HEADER.size
        if sets and sets[-1][0] == set_id:
            sets[-1][1].append(data)
        else:
            sets.append((set_id, [data]))
        size += need
        if counts:
            sequence = (sequence + 1) & 0xFFFFFFFF
    if sets:
        messages.append(_message(sets, size, domain, first_seq, export_time))
    return messages, sequence


def _message(sets, size, domain, sequence, export_time):
    parts = [MESSAGE_HEADER.pack(VERSION, MESSAGE_HEADER.size + size, int(export_time) & 0xFFFFFFFF,
                                 sequence, domain)]
    for set_id, records in sets:
        body = b"".join(records)
        parts.append(SET_HEADER.pack(set_id, SET_HEADER.size + len(body)))
        parts.append(body)
    return b"".join(parts)


# --- reading back (tests, and a check that what we send parses) ---------------

def parse_message(data, templates):
    """One message -> (header dict, [(template id, {name: value})]).
    ``templates`` (id -> Template) is updated from template sets; fields of
    known IEs decode to ints/bytes/str.  Raises ValueError when malformed."""
    if len(data) < MESSAGE_HEADER.size:
        raise ValueError("message cut short")
    version, length, export_time, seq, domain = MESSAGE_HEADER.unpack_from(data)
    if version != VERSION or length != len(data):
        raise ValueError("bad version %d or length %d of %d" % (version, length, len(data)))
    header = {"export_time": export_time, "sequence": seq, "domain": domain}
    out = []
    off = MESSAGE_HEADER.size
    while off < length:
        if length - off < SET_HEADER.size:
            raise ValueError("set header cut short")
        set_id, set_len = SET_HEADER.unpack_from(data, off)
        if set_len < SET_HEADER.size or off + set_len > length:
            raise ValueError("set length %d invalid" % set_len)
        body, end = off + SET_HEADER.size, off + set_len
        if set_id in (TEMPLATE_SET_ID, OPTIONS_TEMPLATE_SET_ID):
            _parse_templates(data, body, end, set_id == OPTIONS_TEMPLATE_SET_ID, templates)
        elif set_id >= FIRST_DATA_SET_ID:
            tpl = templates.get(set_id)
            if tpl is None:
                raise ValueError("data set %d before its template" % set_id)
            pos = body
            while end - pos >= _min_len(tpl):
                rec, pos = _parse_record(data, pos, end, tpl)
                out.append((set_id, rec))
        off = end
    return header, out


_BY_KEY = {}


def _known(pen, ident):
    if not _BY_KEY:
        for v in globals().values():
            if isinstance(v, IE):
                _BY_KEY[(v.pen, v.id)] = v
    return _BY_KEY.get((pen, ident))


def _parse_templates(data, off, end, options, templates):
    while end - off >= 4:
        tid, count = struct.unpack_from(">HH", data, off)
        off += 4
        scope = 0
        if options:
            scope, = struct.unpack_from(">H", data, off)
            off += 2
        fields = []
        for _ in range(count):
            fid, flen = struct.unpack_from(">HH", data, off)
            off += 4
            pen = 0
            if fid & ENTERPRISE_BIT:
                pen, = struct.unpack_from(">I", data, off)
                off += 4
                fid &= ~ENTERPRISE_BIT
            ie = _known(pen, fid)
            if ie is None or ie.length != flen:
                fmt = None if flen == VARLEN else "%ds" % flen
                ie = IE("%d:%d" % (pen, fid), fid, flen, fmt, pen)
            fields.append(ie)
        templates[tid] = _ParsedTemplate(tid, fields, scope)


class _ParsedTemplate:
    def __init__(self, ident, fields, scope):
        self.id, self.fields, self.scope = ident, fields, scope


def _min_len(tpl):
    return sum(1 if f.length == VARLEN else f.length for f in tpl.fields) or 1


def _parse_record(data, off, end, tpl):
    rec = {}
    for f in tpl.fields:
        if f.length == VARLEN:
            if off >= end:
                raise ValueError("variable-length field cut short")
            n = data[off]
            off += 1
            if n == 255:
                n = int.from_bytes(data[off:off + 2], "big")
                off += 2
            value = bytes(data[off:off + n])
            if off + n > end:
                raise ValueError("variable-length field cut short")
            rec[f.name] = value.decode("utf-8", "replace")
            off += n
        else:
            if off + f.length > end:
                raise ValueError("field %s cut short" % f.name)
            value, = struct.unpack_from(">" + f.fmt, data, off)
            rec[f.name] = value
            off += f.length
    return rec, off
