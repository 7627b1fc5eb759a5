"""The decoders on a big-endian CPU, over the recorded fixtures converted
to what a big-endian kernel would have sent (tests/beswap.py).

On a big-endian Python (scripts/ci-bigendian.sh runs this module with
Debian's s390x python3 under qemu-user, through tests/bigendian/run.py)
every recording decodes - replay, the plain and the layout decoder, the
JSON target - to exactly what ``conntrack -L`` listed for it, and the
rtnetlink, sock_diag and /proc/net fixtures to what ``ip -j`` and the
sockets said.
On a little-endian one the decoding tests skip with a reason, and what
can be checked here still runs: the conversion round-trips to the original
bytes, an independent big-endian walk of the converted dump sees the same
headers, trees and values as a little-endian walk of the original, and
the decoders given the foreign-order bytes (whole or cut anywhere) raise
nothing but DecodeError / RecordingError.

Stdlib only (the chroot has no pytest): a skip is pytest.skip where pytest
is importable, else unittest.SkipTest.  Per-fixture tests are generated at
the end of the module.
"""

import base64
import glob
import io
import json
import os
import struct
import sys
import unittest

from flowtop import conntrack
from flowtop.model import Flow
from flowtop.netlink import ctnetlink, route, rtlookup, sockdiag
from flowtop.netlink.conntrack import DumpState, feed
from flowtop.netlink.errors import DecodeError, NetlinkError
from flowtop.recording import RecordingError
from flowtop.views.record import JsonTarget, record
from tests import beswap, ctparse
from tests.expect import mismatches

BIG = sys.byteorder == "big"
FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")
RECORDINGS = sorted(glob.glob(os.path.join(FIXTURES, "*.rec")))
ROUTE_BINS = ["route-addr.bin", "route-link.bin", "route-get.bin"]


try:                        # pytest shows where its own skip was called
    from pytest import skip as _skip
except ImportError:         # the chroot's bare python3: tests/bigendian/run.py
    def _skip(reason):
        raise unittest.SkipTest(reason)


def need_big():
    if not BIG:
        _skip(
            "decoding big-endian dumps needs a big-endian CPU and this one is %s-endian "
            "(scripts/ci-bigendian.sh runs these tests on s390x under qemu)" % sys.byteorder)


def read(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def expected(path):
    with open(path[:-len(".rec")] + ".conntrack.txt") as f:
        return ctparse.parse(f.read())


def split_recording(raw):
    """(header dict, [(time, dump bytes)]) of a recording, whatever its order."""
    header = beswap.recording_header(raw)
    off = raw.index(b"\n", len(beswap._MAGIC)) + 1
    dumps = []
    while off < len(raw):
        assert raw[off:off + 4] == b"DUMP"
        when, length = struct.unpack_from(">dI", raw, off + 4)
        dumps.append((when, raw[off + 16:off + 16 + length]))
        off += 16 + length
    return header, dumps


def big_recording(path):
    """(original bytes, converted bytes, [(time, converted dump)])."""
    with open(path, "rb") as f:
        raw = f.read()
    assert beswap.recording_header(raw)["byteorder"] == "little", path
    big = beswap.recording_to_big(raw)
    return raw, big, split_recording(big)[1]


# --- an independent walk in an explicit byte order -----------------------------------
def walk(data, order):
    """Every message of a ctnetlink dump as a tree, reading headers in
    ``order`` ("<" or ">") whatever this CPU is: (len, type, flags, seq,
    pid, body) where body is (nfgenmsg bytes, [(attr type, value bytes or
    [nested ...])]) or the errno.  Nests are told by NLA_F_NESTED alone
    (the kernel sets it on every ctnetlink nest), not by any schema."""
    out, off = [], 0
    while off < len(data):
        length, mtype, flags, seq, pid = struct.unpack_from(order + "IHHII", data, off)
        body = data[off + 16:off + length]
        if mtype >> 8 == 1:
            node = (body[:4], walk_attrs(body, 4, order))
        else:
            node = struct.unpack_from(order + "i", body)[0] if len(body) >= 4 else None
        out.append((length, mtype, flags, seq, pid, node))
        off += (length + 3) & ~3
    return out


def walk_attrs(buf, off, order):
    out = []
    while off < len(buf):
        length, atype = struct.unpack_from(order + "HH", buf, off)
        assert length >= 4
        value = buf[off + 4:off + length]
        out.append((atype, walk_attrs(value, 0, order) if atype & 0x8000 else value))
        off += (length + 3) & ~3
    return out


def nlmsg_headers(data, order):
    """The nlmsghdr fields of every message, read in ``order``."""
    out, off = [], 0
    while off < len(data):
        fields = struct.unpack_from(order + "IHHII", data, off)
        out.append(fields)
        off += (fields[0] + 3) & ~3
    return out


# --- decoding a dump three ways ------------------------------------------------------
def plain_decoder():
    return lambda buf, off, end: ctnetlink.decode_entry(buf, off, end, Flow)


def plain_decode(data):
    flows = []
    state = DumpState()
    feed(data, flows, state, decode=plain_decoder())
    assert state.done and state.dropped == 0
    return flows


def check_layout_decoder(data, plain):
    decoder = ctnetlink.Decoder(Flow)
    for attempt in range(2):        # first pass learns the layouts, second uses them
        fast = []
        state = DumpState()
        feed(data, fast, state, decode=decoder)
        assert state.done and state.dropped == 0, (attempt, state.dropped)
        assert fast == plain, "layout Decoder differs from decode_entry (pass %d)" % attempt
    assert decoder.fast, "the layout Decoder learnt no layout"


def check_json_target(data, plain, when, entries):
    now = when + 3.5
    want = [record(f, now) for f in plain]
    target = JsonTarget()
    target.now = now
    decoder = ctnetlink.Decoder(Flow, target)
    for attempt in range(2):        # plain decoder + json_line, then compiled formatters
        lines = []
        feed(data, lines, DumpState(), decode=decoder)
        got = [json.loads(line) for line in lines if line]
        assert got == want, "JsonTarget differs from record() (pass %d)" % attempt
        assert mismatches(got, entries) == []


def check_recording_decodes(path):
    need_big()
    raw, big, dumps = big_recording(path)
    entries = expected(path)
    # the library's replay: the header's byte order is accepted, the layout decoder runs
    replayed = list(conntrack.replay(io.BytesIO(big)))
    assert len(replayed) == len(dumps) == 1
    when, flows = replayed[0]
    records = [record(f, when) for f in flows]
    assert len(records) == len(entries) > 0
    problems = mismatches(records, entries)
    assert problems == [], "\n".join(problems[:20])
    # the plain decoder, the layout Decoder and the JSON target on the same bytes
    data = dumps[0][1]
    plain = plain_decode(data)
    assert plain == flows
    check_layout_decoder(data, plain)
    check_json_target(data, plain, when, entries)
    # and the original little-endian recording is refused, not misread
    try:
        list(conntrack.replay(io.BytesIO(raw)))
    except RecordingError as exc:
        assert "little-endian" in str(exc)
    else:
        raise AssertionError("a little-endian recording was replayed on a big-endian CPU")


def _labels_swapped(messages, word=8):
    """``walk`` output with each CTA_LABELS (22) word of every conntrack
    entry byte-reversed: the value beswap converts ("u64[]")."""
    out = []
    for length, mtype, flags, seq, pid, node in messages:
        if isinstance(node, tuple):
            nfgen, attrs = node
            attrs = [(t, b"".join(v[i:i + word][::-1] for i in range(0, len(v), word))
                      if t & 0x3FFF == 22 and isinstance(v, bytes) else v) for t, v in attrs]
            node = (nfgen, attrs)
        out.append((length, mtype, flags, seq, pid, node))
    return out


# --- conversion checks that hold on any CPU ------------------------------------------
def check_recording_conversion(path):
    raw, big, dumps = big_recording(path)
    assert big != raw
    assert beswap.recording_header(big) == dict(beswap.recording_header(raw), byteorder="big")
    assert beswap.recording_to_little(big) == raw, "BE->LE does not give back the original"
    assert beswap.swap_recording(beswap.swap_recording(raw)) == raw
    orig = split_recording(raw)[1]
    assert [w for w, _ in orig] == [w for w, _ in dumps]
    for (_, le), (_, be) in zip(orig, dumps):
        assert len(le) == len(be)
        assert beswap.to_little(be) == le
        assert beswap.to_big(le) == be
        assert beswap.unknown_attributes(le, "little") == []
        # an independent walk: same headers, same tree, same value bytes (but the
        # labels: the kernel writes them as unsigned longs in the CPU's order)
        assert _labels_swapped(walk(be, ">")) == walk(le, "<")
        assert nlmsg_headers(be, ">") == nlmsg_headers(le, "<")
        nested = sum(1 for m in walk(le, "<") if isinstance(m[5], tuple)
                     for a in m[5][1] if isinstance(a[1], list))
        assert nested, "no nested attribute seen: the walk checked nothing"
    # the host refuses a recording of the other byte order
    foreign = big if not BIG else raw
    try:
        list(conntrack.replay(io.BytesIO(foreign)))
    except RecordingError:
        pass
    else:
        raise AssertionError("a recording of the other byte order was replayed")


def message_starts(data):
    """Offsets of the messages of a big-endian dump, and its length."""
    starts, off = [], 0
    while off < len(data):
        starts.append(off)
        off += (struct.unpack_from(">I", data, off)[0] + 3) & ~3
    return starts + [len(data)]


def sample(count, limit):
    """Indexes of at most about ``limit`` of ``count`` messages: all of a
    small dump; the first, the last and evenly spread ones of a big one."""
    if count <= limit:
        return list(range(count))
    step = max(1, count // (limit // 2))
    return sorted(set(range(limit // 4)) | set(range(count - limit // 8, count))
                  | set(range(0, count, step)))


def check_truncations(path):
    """Cut anywhere, the converted dump decodes to a prefix of the whole or
    raises DecodeError - nothing else - with either decoder.  (On a
    little-endian CPU the bytes are in the foreign order: then the decoders
    must still raise nothing but DecodeError.)  Every byte of every message
    of a small dump is a cut point, of a sample of a big one's; what comes
    before the message holding the cut only changes what decodes whole, so
    the cut data starts at that message, or one earlier for every fourth
    (the layout Decoder meets a whole, known layout first)."""
    _raw, big, dumps = big_recording(path)
    data = dumps[0][1]
    starts = message_starts(data)
    whole = plain_decode(data) if BIG else None
    index = [0]              # entries before each message
    for s, e in zip(starts, starts[1:]):
        is_ct = struct.unpack_from(">H", data, s + 4)[0] == ctnetlink.MSG_CT_NEW
        index.append(index[-1] + is_ct)
    decoder = ctnetlink.Decoder(Flow)
    plain = plain_decoder()
    for i in sample(len(starts) - 1, 48):
        first = i - 1 if i % 4 == 0 and i else i
        base = starts[first]
        for cut in range(starts[i], starts[i + 1] + 1):
            for decode in (plain, decoder):
                out = []
                try:
                    feed(data[base:cut], out, DumpState(), decode=decode)
                except DecodeError:
                    continue
                if BIG:
                    assert out == whole[index[first]:index[first] + len(out)], cut
    # a whole recording cut short: RecordingError or DecodeError only (every
    # byte of its header and of the first and last 4 KiB of its dump)
    n = len(big)
    for cut in sorted(set(range(min(n, 4096))) | set(range(max(0, n - 4096), n))
                      | set(range(0, n, 97))):
        try:
            list(conntrack.replay(io.BytesIO(big[:cut])))
        except (RecordingError, DecodeError):
            pass


def check_body_truncations(path):
    """Every message with its body cut and its (big-endian) length field
    agreeing: the entry decodes or is dropped and counted, never more."""
    _raw, _big, dumps = big_recording(path)
    data = dumps[0][1]
    hdr = struct.Struct(">IHHII")
    starts = message_starts(data)
    n = 0
    for i in sample(len(starts) - 1, 24):
        length, mtype, flags, seq, pid = hdr.unpack_from(data, starts[i])
        if mtype != ctnetlink.MSG_CT_NEW:
            continue
        msg = data[starts[i]:starts[i] + length]
        n += 1
        for cut in range(16, length):
            cut_msg = hdr.pack(cut, mtype, flags, seq, pid) + msg[16:cut]
            for decode in (plain_decoder(), ctnetlink.Decoder(Flow)):
                out, state = [], DumpState()
                try:
                    feed(cut_msg, out, state, decode=decode)
                except DecodeError:
                    assert not BIG, "a cut body raised instead of being dropped"
                    continue
                if BIG:
                    assert len(out) + state.dropped == 1, cut
    assert n


# --- rtnetlink and sock_diag ---------------------------------------------------------
def load_route(name):
    with open(os.path.join(FIXTURES, name[:-4] + ".json")) as f:
        return read(name), json.load(f)


def test_route_conversion_round_trips():
    for name in ROUTE_BINS:
        data, _ = load_route(name)
        big = beswap.to_big(data, "route")
        assert big != data and len(big) == len(data)
        assert beswap.to_little(big, "route") == data, name
        assert beswap.unknown_attributes(data, "little", "route") == [], name
        assert nlmsg_headers(big, ">") == nlmsg_headers(data, "<")


def test_route_decodes_big_endian():
    need_big()
    data, want = load_route("route-addr.bin")
    got = route.decode_addresses(beswap.to_big(data, "route"), want["seq"], want["port"])
    expect, labels = set(), {}
    for iface in want["ip"]:
        for a in iface["addr_info"]:
            fam = 2 if a["family"] == "inet" else 10
            expect.add((fam, iface["ifindex"], a["local"], a["prefixlen"]))
            labels[a["local"]] = a.get("label")
    assert {(a.family, a.index, a.address, a.prefixlen) for a in got} == expect
    assert {a.address: a.label for a in got} == labels and len(expect) >= 8

    data, want = load_route("route-link.bin")
    links = route.decode_links(beswap.to_big(data, "route"), want["seq"], want["port"])
    assert {li.index: li.name for li in links} == {x["ifindex"]: x["ifname"] for x in want["ip"]}
    flags = {"UP": 0x1, "LOOPBACK": 0x8, "BROADCAST": 0x2, "MULTICAST": 0x1000}
    for li in links:
        x = next(x for x in want["ip"] if x["ifindex"] == li.index)
        for name, bit in flags.items():
            assert bool(li.flags & bit) == (name in x["flags"]), (li, name)

    data, want = load_route("route-get.bin")
    names = {x["ifname"]: x["ifindex"] for x in load_route("route-link.bin")[1]["ip"]}
    answers = {s: (i, e) for s, i, e in rtlookup.route_replies(beswap.to_big(data, "route"),
                                                             want["port"])}
    assert answers.pop(want["end"]) == (None, 0)
    assert len(answers) == len(want["lookups"])
    tables = {"main": 254, "local": 255}
    errors = set()
    for case in want["lookups"]:
        info, err = answers[case["seq"]]
        if isinstance(case["ip"], dict):
            assert info is None and os.strerror(err) == case["ip"]["error"].split(": ", 1)[1]
            errors.add(err)
            continue
        (ip,) = case["ip"]
        assert err == 0 and info is not None, case["name"]
        assert info.oif == names[ip["dev"]], case["name"]
        assert info.table == (tables.get(ip["table"]) or int(ip["table"])), case["name"]
        assert (info.gateway, info.prefsrc, info.dst) == (
            ip.get("gateway"), ip.get("prefsrc"), ip["dst"]), case["name"]
    assert len(errors) >= 3


def test_route_truncations_raise_only_decode_error():
    for name, decode in (("route-addr.bin", route.decode_addresses),
                         ("route-link.bin", route.decode_links)):
        big = beswap.to_big(read(name), "route")
        if BIG:
            assert decode(big)
        for cut in range(len(big)):
            try:
                decode(big[:cut])
            except DecodeError:
                continue
            raise AssertionError("%s cut at %d decoded without its NLMSG_DONE" % (name, cut))
    big = beswap.to_big(read("route-get.bin"), "route")
    for cut in range(len(big)):
        try:
            rtlookup.route_replies(big[:cut])
        except DecodeError:
            pass


def load_sockdiag():
    with open(os.path.join(FIXTURES, "sockdiag-dump.json")) as f:
        return json.load(f)


def test_sockdiag_conversion_round_trips():
    fixture = load_sockdiag()
    big = beswap.swap_sockdiag_fixture(fixture)
    assert big["byteorder"] == "big" and big != fixture
    assert beswap.swap_sockdiag_fixture(big) == fixture
    for d in fixture["dumps"]:
        raw = base64.b64decode(d["data"])
        assert beswap.unknown_attributes(raw, "little", "sockdiag") == []


def test_sockdiag_decodes_big_endian():
    need_big()
    fixture = beswap.swap_sockdiag_fixture(load_sockdiag())
    decoded = set()
    for d in fixture["dumps"]:
        raw = base64.b64decode(d["data"])
        if d["error"]:
            try:
                sockdiag.decode_dump(raw, d["proto"])
            except NetlinkError as exc:
                assert exc.errno == d["error"]
            else:
                raise AssertionError("no NetlinkError for %r" % d)
            continue
        records, state = sockdiag.decode_dump(raw, d["proto"])
        assert state.dropped == 0
        want = sorted(tuple(e["record"]) for e in fixture["expected"]
                      if e["record"][0] == d["proto"] and e["family"] == d["family"])
        assert sorted(records) == want, d
        decoded.add(d["proto"])
    assert {6, 17, 136} <= decoded


def test_procnet_tables_parse_big_endian():
    """The /proc/net fallback's tables, as a big-endian kernel prints them."""
    need_big()
    from flowtop.enrich.process import PROC_NET, parse_proc_net
    fixture = beswap.swap_sockdiag_fixture(load_sockdiag())
    for name, proto, family in PROC_NET:
        out = []
        assert parse_proc_net(fixture["procnet"][name].encode(), proto, out) == 0
        want = sorted(tuple(e["record"]) for e in fixture["expected"]
                      if e["record"][0] == proto and e["family"] == family)
        assert sorted(out) == want, name


# --- the generated per-recording tests -----------------------------------------------
def test_fixtures_present():
    names = {os.path.basename(p) for p in RECORDINGS}
    assert {"ctnetlink-mixed.rec", "ctnetlink-multipart.rec", "ctnetlink-acct-off.rec"} <= names
    for name in ROUTE_BINS + ["sockdiag-dump.json"]:
        assert os.path.exists(os.path.join(FIXTURES, name)), name


def test_conversion_is_exact_on_a_handmade_message():
    """A message built by hand in both orders: only the header fields move."""
    def message(o):
        src = struct.pack(o + "HH", 8, 1) + b"\x0a\x00\x00\x01"     # CTA_IP_V4_SRC
        tuple_ip = struct.pack(o + "HH", 12, 0x8001) + src              # CTA_TUPLE_IP
        orig = struct.pack(o + "HH", 16, 0x8001) + tuple_ip             # CTA_TUPLE_ORIG
        status = struct.pack(o + "HH", 8, 3) + b"\x00\x00\x01\x8e"   # CTA_STATUS (be32)
        body = bytes((2, 0, 0x12, 0x34)) + orig + status                # nfgenmsg untouched
        return (struct.pack(o + "IHHII", 16 + len(body), 0x100, 2, 77, 1234) + body
                + struct.pack(o + "IHHIIi", 20, 3, 2, 77, 1234, -5))    # DONE with an errno
    le, be = message("<"), message(">")
    assert beswap.to_big(le) == be
    assert beswap.to_little(be) == le
    if BIG:
        flows = []
        try:
            feed(be, flows, DumpState(), decode=ctnetlink.Decoder(Flow))
        except NetlinkError as exc:        # the DONE's errno, read in host order
            assert exc.errno == 5
        else:
            raise AssertionError("the NLMSG_DONE errno was not seen")
        assert [(f.family, f.src, f.status) for f in flows] == [(2, "10.0.0.1", 0x18e)]
    for bad in (le[:-1], le[:10], le[:20] + b"\xff\xff" + le[22:]):
        try:
            beswap.to_big(bad)
        except beswap.SwapError:
            continue
        raise AssertionError("SwapError expected")


def _make(kind, check, path):
    name = os.path.basename(path)[:-len(".rec")]

    def test():
        check(path)
    test.__name__ = test.__qualname__ = "test_%s_%s" % (kind, name)
    test.__doc__ = "%s: %s" % (os.path.basename(path), check.__doc__ or check.__name__)
    return test


for _path in RECORDINGS:
    for _kind, _check in (("conversion", check_recording_conversion),
                          ("decode_big_endian", check_recording_decodes),
                          ("truncations", check_truncations),
                          ("body_truncations", check_body_truncations)):
        _test = _make(_kind, _check, _path)
        globals()[_test.__name__] = _test
del _path, _kind, _check, _test
