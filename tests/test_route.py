"""rtnetlink decoding against recorded kernel replies, request layout, the
batched lookup protocol, and the interface enricher (no root needed).

The fixtures come from tests/record_route.py: the bytes a real kernel sent,
with what ``ip -j`` said about the same namespace beside them.
"""

import errno
import json
import os
import struct

import pytest

from flowtop.enrich.iface import FlowIfaces, Interfaces, iface_match, iface_totals
from flowtop.netlink import attrs, nlmsg, route, rtlookup
from flowtop.netlink.session import DumpState
from flowtop.netlink.ctnetlink import CtEntry
from flowtop.netlink.errors import DecodeError, NetlinkError
from flowtop.netlink.uapi import (
    AF_INET, AF_INET6, IFA_ADDRESS, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE,
    NLMSG_ERROR, NLMSG_NOOP, RTA_DST, RTA_IIF, RTA_MARK, RTA_OIF, RTA_SRC,
    RTM_F_LOOKUP_TABLE, RTM_GETADDR, RTM_GETLINK, RTM_GETROUTE, RTM_NEWADDR, RTM_NEWLINK,
    RTM_NEWROUTE, RTN_LOCAL, RTN_UNICAST, RTN_UNREACHABLE,
)
from flowtop.text import sanitize
from tests.clock import Clock

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
BINS = ["route-addr.bin", "route-link.bin", "route-get.bin"]


def load(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        data = f.read()
    with open(os.path.join(FIXTURES, name[:-4] + ".json")) as f:
        return data, json.load(f)


def messages(data):
    """[(type, flags, seq, pid, raw message bytes)]."""
    return [(t, fl, s, p, data[b - 16:e]) for t, fl, s, p, b, e in nlmsg.iter_messages(data)]


def with_body(msg, body):
    length, mtype, flags, seq, pid = nlmsg.NLMSGHDR.unpack_from(msg)
    return nlmsg.NLMSGHDR.pack(16 + len(body), mtype, flags, seq, pid) + body


def ifindex_by_name():
    _, link = load("route-link.bin")
    return {x["ifname"]: x["ifindex"] for x in link["ip"]}


# --- the fixtures against iproute2 ------------------------------------------------------

def test_fixtures_present():
    for name in BINS:
        data, expected = load(name)
        assert data and expected


def test_addresses_match_ip_addr():
    data, expected = load("route-addr.bin")
    got = route.decode_addresses(data, expected["seq"], expected["port"])
    want = set()
    labels = {}
    for iface in expected["ip"]:
        for a in iface["addr_info"]:
            fam = AF_INET if a["family"] == "inet" else AF_INET6
            want.add((fam, iface["ifindex"], a["local"], a["prefixlen"]))
            labels[a["local"]] = a.get("label")
    assert {(a.family, a.index, a.address, a.prefixlen) for a in got} == want
    assert {a.address: a.label for a in got} == labels
    # the point-to-point address: IFA_LOCAL is ours, IFA_ADDRESS the peer
    assert "10.77.3.1" in {a.address for a in got} and "10.77.3.2" not in {a.address for a in got}
    assert len(want) >= 8


def test_links_match_ip_link():
    data, expected = load("route-link.bin")
    got = route.decode_links(data, expected["seq"], expected["port"])
    assert {li.index: li.name for li in got} == {x["ifindex"]: x["ifname"] for x in expected["ip"]}
    odd = [li.name for li in got if "\x1b" in li.name]
    assert odd == ["ft\x1bx"]
    assert sanitize(odd[0]) == "ft?x"


def test_dump_checks_sequence_and_port():
    data, expected = load("route-addr.bin")
    with pytest.raises(DecodeError):          # every message foreign: no DONE of ours
        route.decode_addresses(data, expected["seq"] + 1, expected["port"])
    values, state = route.decode_dump(data, RTM_NEWADDR, route.decode_addr,
                                      expected["seq"], expected["port"])
    assert state.done and state.dropped == 0 and state.foreign == 0 and values


RTN = {"unicast": RTN_UNICAST, "local": RTN_LOCAL}
TABLES = {"main": 254, "local": 255}


def test_route_replies_match_ip_route_get():
    data, expected = load("route-get.bin")
    names = ifindex_by_name()
    answers = {s: (info, err) for s, info, err in rtlookup.route_replies(data, expected["port"])}
    assert answers.pop(expected["end"]) == (None, 0)      # the batch's closing ACK
    assert len(answers) == len(expected["lookups"])
    seen_errors = set()
    for case in expected["lookups"]:
        info, err = answers[case["seq"]]
        ip = case["ip"]
        if isinstance(ip, dict):
            message = ip["error"].split(": ", 1)[1]
            assert info is None and os.strerror(err) == message, case["name"]
            assert err in rtlookup.LOOKUP_ERRORS
            assert rtlookup.decode_route_reply(data, case["seq"]) is None
            seen_errors.add(err)
            continue
        (want,) = ip
        assert err == 0 and info is not None, case["name"]
        assert info.oif == names[want["dev"]], case["name"]
        assert info.type == RTN[want["type"]], case["name"]
        assert info.table == (TABLES.get(want["table"]) or int(want["table"])), case["name"]
        assert info.gateway == want.get("gateway"), case["name"]
        assert info.prefsrc == want.get("prefsrc"), case["name"]
        assert info.dst == want["dst"], case["name"]
        assert rtlookup.decode_route_reply(data, case["seq"]) == info
    assert {errno.EHOSTUNREACH, errno.EACCES, errno.EINVAL} <= seen_errors


def test_mark_picks_the_policy_table():
    data, expected = load("route-get.bin")
    by_name = {c["name"]: c["seq"] for c in expected["lookups"]}
    plain = rtlookup.decode_route_reply(data, by_name["internet"])
    marked = rtlookup.decode_route_reply(data, by_name["marked"])
    assert plain.oif == marked.oif
    assert (plain.table, marked.table) == (254, 100)
    assert plain.gateway != marked.gateway


def test_fixture_replies_arrived_in_one_batch():
    """One send carried every request; the replies came back in order,
    matched by sequence number, and the ACK of the closing NOOP last."""
    data, expected = load("route-get.bin")
    seqs = [s for _t, _f, s, _p, _m in messages(data)]
    assert seqs == [c["seq"] for c in expected["lookups"]] + [expected["end"]]


# --- truncated and malformed input ----------------------------------------------------

@pytest.mark.parametrize("name", ["route-addr.bin", "route-link.bin"])
def test_every_truncated_dump_raises_decode_error(name):
    data, expected = load(name)
    decode = route.decode_addresses if "addr" in name else route.decode_links
    assert decode(data)
    for n in range(len(data)):
        with pytest.raises(DecodeError):
            decode(data[:n])


def test_every_truncated_route_reply_decodes_or_raises_decode_error():
    data, expected = load("route-get.bin")
    last = expected["lookups"][-1]["seq"]
    whole = rtlookup.route_replies(data)
    for n in range(len(data)):
        cut = data[:n]
        try:
            got = rtlookup.route_replies(cut)
        except DecodeError:
            got = None
        if got is not None:
            assert got == whole[:len(got)]           # only whole messages decode
        try:
            rtlookup.decode_route_reply(cut, last)
        except DecodeError:
            pass


@pytest.mark.parametrize("name", BINS)
def test_byte_mutations_raise_only_decode_or_netlink_errors(name):
    """Every byte of a fixture set to 0x00, 0xFF or flipped: decoding either
    works or raises DecodeError (or NetlinkError when the mutation forged an
    error message) - never IndexError, struct.error, UnicodeError..."""
    data, _ = load(name)
    for i in range(len(data)):
        for value in (0, 0xFF, data[i] ^ 0x80):
            mutated = data[:i] + bytes((value,)) + data[i + 1:]
            try:
                if name == "route-addr.bin":
                    route.decode_addresses(mutated)
                elif name == "route-link.bin":
                    route.decode_links(mutated)
                else:
                    rtlookup.route_replies(mutated)
                    rtlookup.decode_route_reply(mutated)
            except (DecodeError, NetlinkError):
                pass


@pytest.mark.parametrize("data", [
    b"",
    b"\x10\x00\x00",
    struct.pack("=IHHII", 8, NLMSG_DONE, 2, 1, 0),           # length < header
    struct.pack("=IHHII", 64, NLMSG_DONE, 2, 1, 0),          # length > buffer
    struct.pack("=IHHII", 20, RTM_NEWADDR, 2, 1, 0) + b"\0" * 4,   # no DONE
    struct.pack("=IHHII", 20, NLMSG_DONE, 2, 1, 0) + b"\0" * 4 + b"\0" * 3,  # junk after
])
def test_malformed_dump_framing_raises_decode_error(data):
    with pytest.raises(DecodeError):
        route.decode_addresses(data)


def _body_of(name, mtype):
    data, _ = load(name)
    msg = next(m for t, _f, _s, _p, m in messages(data) if t == mtype)
    return msg, msg[16:]


@pytest.mark.parametrize("cut", [0, 1, 7, 11, 15])
def test_short_fixed_headers_raise(cut):
    for name, mtype, decode in (("route-addr.bin", RTM_NEWADDR, route.decode_addr),
                                ("route-link.bin", RTM_NEWLINK, route.decode_link),
                                ("route-get.bin", RTM_NEWROUTE, rtlookup.decode_route)):
        _, body = _body_of(name, mtype)
        fixed = {RTM_NEWADDR: 8, RTM_NEWLINK: 16, RTM_NEWROUTE: 12}[mtype]
        if cut < fixed:
            with pytest.raises(DecodeError):
                decode(body[:cut], 0, cut)


def test_lying_attribute_in_a_dump_is_dropped_not_fatal():
    data, _ = load("route-addr.bin")
    msgs = messages(data)
    i = next(k for k, m in enumerate(msgs) if m[0] == RTM_NEWADDR)
    msg = msgs[i][4]
    body = bytearray(msg[16:])
    struct.pack_into("=H", body, 8, 200)              # first attribute's length lies
    bad = with_body(msg, bytes(body))
    rebuilt = b"".join(m[4] + b"\0" * (nlmsg.align(len(m[4])) - len(m[4]))
                       for m in msgs[:i]) + bad + b"".join(
        m[4] + b"\0" * (nlmsg.align(len(m[4])) - len(m[4])) for m in msgs[i + 1:])
    values, state = route.decode_dump(rebuilt, RTM_NEWADDR, route.decode_addr)
    assert state.dropped == 1
    assert len(values) == len(route.decode_addresses(data)) - 1


def test_wrong_sized_values_raise():
    msg, body = _body_of("route-get.bin", RTM_NEWROUTE)
    # an RTA_OIF of 2 bytes, an address of 5 bytes
    for extra in (attrs.pack_attr(RTA_OIF, b"\x01\x00"), attrs.pack_attr(RTA_DST, b"\x01" * 5)):
        with pytest.raises(DecodeError):
            rtlookup.decode_route(body + extra, 0, len(body) + len(extra))
    _, abody = _body_of("route-addr.bin", RTM_NEWADDR)
    extra = attrs.pack_attr(IFA_ADDRESS, b"\x01" * 3)
    with pytest.raises(DecodeError):
        route.decode_addr(abody + extra, 0, len(abody) + len(extra))


def test_unknown_attributes_are_skipped():
    _, body = _body_of("route-get.bin", RTM_NEWROUTE)
    extra = attrs.pack_attr(0x3FF, b"whatever") + attrs.pack_attr(0, b"")
    assert rtlookup.decode_route(body + extra, 0, len(body) + len(extra)) == \
        rtlookup.decode_route(body, 0, len(body))


def test_error_answers():
    def err_msg(seq, code):
        return nlmsg.pack(NLMSG_ERROR, 0, seq, struct.pack("=i", -code) + b"\0" * 16)
    assert rtlookup.decode_route_reply(err_msg(5, errno.ENETUNREACH)) is None
    with pytest.raises(NetlinkError) as exc:
        rtlookup.decode_route_reply(err_msg(5, errno.ENODEV))
    assert exc.value.errno == errno.ENODEV
    with pytest.raises(DecodeError):
        rtlookup.decode_route_reply(nlmsg.pack(NLMSG_ERROR, 0, 5, b"\0\0"))
    with pytest.raises(DecodeError):              # an ACK is no answer
        rtlookup.decode_route_reply(err_msg(5, 0))
    # an IPv6-style "unreachable" route answer counts as no route
    _, body = _body_of("route-get.bin", RTM_NEWROUTE)
    body = bytearray(body)
    body[7] = RTN_UNREACHABLE
    assert rtlookup.decode_route_reply(nlmsg.pack(RTM_NEWROUTE, 0, 9, bytes(body))) is None
    with pytest.raises(NetlinkError):
        route.decode_addresses(err_msg(1, errno.EPERM))


# --- requests ---------------------------------------------------------------------------

def parse_request(data):
    ((mtype, flags, seq, _pid, body, end),) = list(nlmsg.iter_messages(data))
    head = rtlookup.RTMSG.unpack_from(data, body)
    at = {t: bytes(data[s:e]) for t, s, e in attrs.iter_attrs(data, body + 12, end)}
    return mtype, flags, seq, head, at


def test_route_request_is_what_ip_route_get_sends():
    """Byte for byte what iproute2 6.1 sends for ``ip route get 8.8.8.8 mark 7``
    (seen with strace), sequence number aside."""
    ip = (struct.pack("=IHHII", 44, RTM_GETROUTE, NLM_F_REQUEST, 1795496363, 0)
          + struct.pack("=BBBBBBBBI", AF_INET, 32, 0, 0, 0, 0, 0, 0, RTM_F_LOOKUP_TABLE)
          + struct.pack("=HH", 8, RTA_DST) + bytes((8, 8, 8, 8))
          + struct.pack("=HHI", 8, RTA_MARK, 7))
    assert rtlookup.route_request(1795496363, "8.8.8.8", mark=7) == ip


def test_route_request_fields():
    mtype, flags, seq, head, at = parse_request(
        rtlookup.route_request(77, "fd00::1", src="fd00::2", mark=0xdeadbeef, iif=4))
    assert (mtype, flags, seq) == (RTM_GETROUTE, NLM_F_REQUEST, 77)
    family, dst_len, src_len = head[:3]
    assert (family, dst_len, src_len) == (AF_INET6, 128, 128)
    assert at[RTA_DST] == bytes.fromhex("fd000000000000000000000000000001")
    assert at[RTA_SRC][-1] == 2
    assert struct.unpack("=I", at[RTA_MARK])[0] == 0xdeadbeef
    assert struct.unpack("=I", at[RTA_IIF])[0] == 4
    for bad in (("nonsense",), ("10.0.0.1", "fd00::1"), ("10.0.0.300",), (None,)):
        with pytest.raises(ValueError):
            rtlookup.route_request(1, *bad)


def test_dump_requests():
    for data, mtype in ((route.addr_dump_request(3), RTM_GETADDR),
                        (route.link_dump_request(3), RTM_GETLINK)):
        ((t, flags, seq, _p, body, end),) = list(nlmsg.iter_messages(data))
        assert (t, seq) == (mtype, 3) and flags == NLM_F_REQUEST | NLM_F_DUMP
        assert end - body >= 8


# --- the batch protocol, against a scripted kernel ----------------------------------------

class ScriptedKernel:
    """A socket whose "kernel" answers each RTM_GETROUTE from the fixture's
    first route reply (re-sequenced) or an error, honours NOOP+ACK, and can
    drop replies past a receive-buffer limit (ENOBUFS), like the real one."""

    def __init__(self, limit=None, errors=None, stale=False):
        _, self.body = _body_of("route-get.bin", RTM_NEWROUTE)
        self.port = 4242
        self.limit = limit
        self.errors = errors or {}
        self.stale = stale
        self.queue = []
        self.overrun = False
        self.sends = 0
        self.timeout = 1.0
        self.corrupt = False

    def send(self, data):
        self.sends += 1
        for mtype, flags, seq, _pid, body, end in nlmsg.iter_messages(data):
            if mtype == RTM_GETROUTE:
                dst = [bytes(data[s:e]) for t, s, e in attrs.iter_attrs(data, body + 12, end)
                       if t == RTA_DST][0]
                code = self.errors.get(dst)
                if code:
                    reply = nlmsg.pack(NLMSG_ERROR, 0, seq, struct.pack("=i", -code)
                                       + bytes(data[body - 16:body]), self.port)
                else:
                    reply = nlmsg.pack(RTM_NEWROUTE, 0, seq, self.body, self.port)
            elif mtype == NLMSG_NOOP and flags & NLM_F_ACK:
                reply = nlmsg.pack(NLMSG_ERROR, 0, seq, struct.pack("=i", 0) + b"\0" * 16,
                                   self.port)
            else:
                continue
            if self.limit is not None and len(self.queue) >= self.limit:
                self.overrun = True
                continue
            self.queue.append(reply)
        if self.stale:
            self.queue.insert(0, nlmsg.pack(RTM_NEWROUTE, 0, 1, self.body, self.port))

    def settimeout(self, t):
        self.timeout = t

    def recv(self):
        if self.corrupt and self.queue:
            self.corrupt = False
            out, self.queue = b"".join(self.queue[:3]), self.queue[3:]
            return out[:-1]                              # a datagram that lies
        if self.overrun:
            self.overrun = False
            raise OSError(errno.ENOBUFS, "No buffer space available")
        if not self.queue:
            if self.timeout == 0:
                raise BlockingIOError(errno.EAGAIN, "again")
            raise route.socket.timeout("timed out")
        # several replies per datagram, like the kernel packs them
        out, self.queue = b"".join(self.queue[:3]), self.queue[3:]
        return out


def test_batch_matches_by_sequence_and_ends_at_the_ack():
    k = ScriptedKernel(errors={bytes((10, 98, 0, 1)): errno.EHOSTUNREACH,
                               bytes((10, 0, 0, 9)): errno.ENODEV}, stale=True)
    lookups = [("8.8.8.8", None, None, None), ("10.98.0.1", None, None, None),
               ("10.0.0.9", None, None, None), ("bogus", None, None, None),
               ("1.1.1.1", None, 7, None)]
    res = rtlookup.route_get_many(lookups, sock=k, batch=2)
    assert isinstance(res[0], rtlookup.RouteInfo) and isinstance(res[4], rtlookup.RouteInfo)
    assert res[1] is None
    assert isinstance(res[2], NetlinkError) and res[2].errno == errno.ENODEV
    assert isinstance(res[3], NetlinkError) and res[3].errno == errno.EINVAL
    assert k.sends == 3 and not k.queue


def test_batch_recovers_replies_lost_to_a_full_buffer():
    k = ScriptedKernel(limit=5)
    lookups = [("10.0.%d.%d" % (i // 250, i % 250), None, None, None) for i in range(40)]
    res = rtlookup.route_get_many(lookups, sock=k, batch=20)
    assert all(isinstance(r, rtlookup.RouteInfo) for r in res)
    assert k.timeout == 1.0                      # the caller's timeout is back


def test_batch_survives_a_malformed_datagram():
    k = ScriptedKernel()
    k.corrupt = True
    lookups = [("10.0.0.%d" % i, None, None, None) for i in range(1, 8)]
    res = rtlookup.route_get_many(lookups, sock=k)
    assert [r.errno for r in res[:3]] == [errno.EBADMSG] * 3
    assert all(isinstance(r, rtlookup.RouteInfo) for r in res[3:])


def test_batch_silent_kernel_times_out_per_request():
    class Silent(ScriptedKernel):
        def send(self, data):
            self.sends += 1
    res = rtlookup.route_get_many([("8.8.8.8", None, None, None)], sock=Silent())
    assert isinstance(res[0], NetlinkError) and res[0].errno == errno.ETIMEDOUT
    with pytest.raises(NetlinkError):
        rtlookup.route_get("8.8.8.8", sock=Silent())


def test_route_get_errors():
    k = ScriptedKernel(errors={bytes((10, 0, 0, 9)): errno.ENETUNREACH,
                               bytes((10, 0, 0, 8)): errno.EPERM})
    assert rtlookup.route_get("10.0.0.9", sock=k) is None
    with pytest.raises(NetlinkError):
        rtlookup.route_get("10.0.0.8", sock=k)
    assert isinstance(rtlookup.route_get("10.0.0.7", sock=k), rtlookup.RouteInfo)


def test_feed_reports_interrupted_dumps_and_errors():
    data, expected = load("route-link.bin")
    msgs = messages(data)
    first = bytearray(msgs[0][4])
    struct.pack_into("=H", first, 6, msgs[0][1] | 0x10)     # NLM_F_DUMP_INTR
    state = DumpState()
    out = []
    route.feed(bytes(first), RTM_NEWLINK, route.decode_link, out, state)
    assert state.interrupted and len(out) == 1


# --- interface names ----------------------------------------------------------------------

@pytest.mark.parametrize("pattern,name,ok", [
    ("eth0", "eth0", True), ("eth0", "eth00", False), ("eth0", "eth", False),
    ("vlan+", "vlan0", True), ("vlan+", "vlan10", True), ("vlan+", "vlan", True),
    ("vlan+", "vla", False), ("vlan+", "xvlan0", False), ("+", "lo", True),
    ("+", "", True), ("eth+", None, False), (None, "eth0", False), ("", "", True),
    ("wg+", "wg-home", True), ("br-lan", "br-lan+", False),
])
def test_iface_match(pattern, name, ok):
    assert iface_match(pattern, name) is ok


# --- Interfaces with a fake route function and a fake clock -------------------------------

R = rtlookup.RouteInfo


def ri(oif, rtype=RTN_UNICAST, table=254):
    return R(oif, None, None, None, table, rtype, None)


class FakeRoutes:
    """(address, mark) -> RouteInfo; mark 0 is the fallback."""

    LOCAL = {"10.1.0.1": 2, "10.2.0.1": 3, "192.0.2.7": 4, "127.0.0.1": 1}

    def __init__(self):
        self.table = {}
        self.calls = []
        self.names = {1: "lo", 2: "lan0", 3: "wan0", 4: "dummy\x1b0"}
        self.link_calls = 0
        self.fail = False

    def route_for(self, addr, mark):
        if (addr, mark) in self.table:
            return self.table[(addr, mark)]
        if addr in self.LOCAL or addr.startswith("127."):
            return ri(1, RTN_LOCAL, 255)
        if addr.startswith("10.1."):
            return ri(2)
        if addr.startswith("10.99."):
            return None
        if addr.startswith("10.66."):
            return NetlinkError(errno.ETIMEDOUT)
        return ri(3)

    def lookup(self, keys):
        self.calls.append(list(keys))
        if self.fail:
            raise OSError(errno.EBADF, "closed")
        return [self.route_for(a, m) for a, m in keys]

    def links(self):
        self.link_calls += 1
        return dict(self.names)

    def owners(self):
        return dict(self.LOCAL)


def make(ttl=30.0, **kw):
    fake, clock = FakeRoutes(), Clock()
    ifs = Interfaces(route_sock_factory=None, clock=clock, ttl=ttl, lookup=fake.lookup,
                     links=fake.links, owners=fake.owners, **kw)
    return ifs, fake, clock


def flow(src, dst, reply_src=None, reply_dst=None, mark=0, bo=100, po=2, br=1000, pr=3):
    return CtEntry(family=AF_INET6 if ":" in src else AF_INET, l4proto=6, src=src, dst=dst,
                   reply_src=reply_src or dst, reply_dst=reply_dst or src, mark=mark,
                   bytes_orig=bo, packets_orig=po, bytes_reply=br, packets_reply=pr)


def test_forwarded_flow_in_is_toward_the_source_out_toward_the_destination():
    ifs, fake, _ = make()
    e = flow("10.1.5.5", "203.0.113.9")
    assert ifs.prefetch([e]) == 2
    assert ifs.of_flow(e) == ("lan0", "wan0")
    assert ifs.flow_ifaces(e) == FlowIfaces("lan0", "wan0", False, False)
    # DNAT: orig dst is this router's public address, the packets go to reply_src
    dnat = flow("203.0.113.9", "192.0.2.7", reply_src="10.1.7.7", reply_dst="203.0.113.9")
    assert ifs.of_flow(dnat) == ("wan0", "lan0")


def test_local_ends_take_the_owning_interface_not_lo():
    ifs, _, _ = make()
    out = flow("10.2.0.1", "198.51.100.1")           # this host, from its wan0 address
    assert ifs.flow_ifaces(out) == FlowIfaces("wan0", "wan0", True, False)
    inbound = flow("10.1.3.3", "192.0.2.7")          # to a service on a dummy address
    assert ifs.of_flow(inbound) == ("lan0", "dummy?0")     # name sanitized
    lo = flow("127.0.0.1", "127.0.0.1")
    assert ifs.flow_ifaces(lo) == FlowIfaces("lo", "lo", True, True)
    internal = flow("10.1.0.1", "10.2.0.1")          # local to local crosses lo
    assert ifs.of_flow(internal) == ("lo", "lo")
    unowned = flow("127.0.0.2", "10.1.9.9")          # 127/8 route, no owner
    assert ifs.of_flow(unowned) == ("lo", "lan0")


def test_no_route_and_failures_give_none():
    ifs, fake, clock = make()
    assert ifs.of_flow(flow("10.99.0.1", "10.1.0.9")) == (None, "lan0")
    assert ifs.of_flow(flow("10.66.0.1", "10.1.0.9")) == (None, "lan0")
    fake.fail = True
    assert ifs.of_flow(flow("10.1.1.1", "10.1.2.2")) == (None, None)


def test_cache_ttl_and_prefetch_batches():
    ifs, fake, clock = make(ttl=30.0)
    flows = [flow("10.1.0.%d" % i, "198.51.100.%d" % i) for i in range(2, 50)]
    assert ifs.prefetch(flows) == 96
    assert len(fake.calls) == 1                      # one batch for the tick
    calls = len(fake.calls)
    for f in flows:
        assert ifs.of_flow(f) == ("lan0", "wan0")
    assert len(fake.calls) == calls                  # no lookup on a hit
    assert ifs.prefetch(flows) == 0
    clock.now += 29.9
    assert ifs.prefetch(flows) == 0
    clock.now += 0.2
    assert ifs.prefetch(flows[:3]) == 6              # stale: refreshed lazily
    fake.table[("198.51.100.2", 0)] = ri(2)          # the route changed
    fake.table[("198.51.100.7", 0)] = ri(2)
    clock.now += 31
    assert ifs.of_flow(flows[5]) == ("lan0", "lan0")   # stale at the prefetch: one lookup each
    assert ifs.of_flow(flows[0]) == ("lan0", "wan0")   # fresh at the prefetch: serves till the next
    assert ifs.prefetch(flows[:1]) == 2
    assert ifs.of_flow(flows[0]) == ("lan0", "lan0")


def test_mark_is_part_of_the_key():
    ifs, fake, _ = make()
    fake.table[("198.51.100.1", 7)] = ri(2)
    plain = flow("10.1.0.5", "198.51.100.1")
    marked = flow("10.1.0.5", "198.51.100.1", mark=7)
    assert ifs.prefetch([plain, marked]) == 4
    assert ifs.of_flow(plain) == ("lan0", "wan0")
    assert ifs.of_flow(marked) == ("lan0", "lan0")
    keys = {k for call in fake.calls for k in call}
    assert ("198.51.100.1", 7) in keys and ("198.51.100.1", 0) in keys


def test_cache_is_bounded_by_the_table_and_shrinks_with_it():
    ifs, fake, clock = make(max_entries=10)
    flows = [flow("10.1.0.%d" % i, "198.51.100.%d" % i) for i in range(2, 30)]
    ifs.prefetch(flows)
    assert len(ifs._cache) == 56                     # every end of the table: no thrash
    assert ifs.of_flow(flows[-1]) == ("lan0", "wan0")
    clock.now += 31                                  # the table shrank; a TTL later
    ifs.prefetch(flows[:3])
    assert len(ifs._cache) == 6


def test_decode_errors_from_the_kernel_side_do_not_escape():
    def lying(keys):
        raise DecodeError("a length lies")
    ifs = Interfaces(route_sock_factory=None, clock=Clock(), lookup=lying,
                     links=lambda: {}, owners=lambda: {})
    e = flow("10.1.0.5", "198.51.100.1")
    assert ifs.prefetch([e]) == 2
    assert ifs.of_flow(e) == (None, None)


def test_failed_lookups_are_retried_soon_not_every_call():
    ifs, fake, clock = make()
    e = flow("10.66.0.1", "10.1.0.9")
    ifs.of_flow(e)
    n = len(fake.calls)
    ifs.of_flow(e)
    assert len(fake.calls) == n
    clock.now += 6
    ifs.of_flow(e)
    assert len(fake.calls) == n + 1


def test_names_refresh_on_unknown_ifindex_rate_limited_and_on_ttl():
    ifs, fake, clock = make()
    ifs.prefetch([flow("10.1.0.5", "198.51.100.1")])
    assert fake.link_calls == 1
    fake.table[("198.51.100.2", 0)] = ri(9)          # an interface not seen yet
    e = flow("10.1.0.5", "198.51.100.2")
    assert ifs.of_flow(e) == ("lan0", None)
    assert fake.link_calls == 1                      # the dump is a moment old
    clock.now += 2
    assert ifs.of_flow(e) == ("lan0", None)
    assert fake.link_calls == 2                      # asked once more...
    assert ifs.of_flow(e) == ("lan0", None)
    assert fake.link_calls == 2                      # ...but not again within a second
    fake.names[9] = "ppp0"
    clock.now += 1.5
    assert ifs.of_flow(e) == ("lan0", "ppp0")
    fake.names[2] = "lan-renamed"
    clock.now += 31
    ifs.prefetch([e])
    assert ifs.of_flow(e) == ("lan-renamed", "ppp0")


def test_close_drops_the_socket():
    closed = []

    class Sock:
        def close(self):
            closed.append(True)
    ifs = Interfaces(route_sock_factory=Sock)
    ifs._socket()
    ifs.close()
    ifs.close()
    assert closed == [True]


# --- per-interface totals ------------------------------------------------------------------

def test_iface_totals_forwarded_and_local():
    ifs, _, _ = make()
    fwd1 = flow("10.1.0.5", "198.51.100.1", bo=100, po=2, br=1000, pr=3)
    fwd2 = flow("198.51.100.7", "10.1.0.6", bo=50, po=1, br=70, pr=1)
    mine = flow("10.2.0.1", "198.51.100.1", bo=10, po=1, br=20, pr=1)   # this host -> out
    lo = flow("127.0.0.1", "127.0.0.1", bo=5, po=1, br=6, pr=1)
    off = CtEntry(src="10.1.0.5", dst="198.51.100.1", reply_src="198.51.100.1",
                  reply_dst="10.1.0.5", mark=0)                         # no accounting
    t = iface_totals([fwd1, fwd2, mine, lo, off], ifs)
    assert t["lan0"] == {"rx_bytes": 100 + 70, "rx_packets": 2 + 1,
                         "tx_bytes": 1000 + 50, "tx_packets": 3 + 1}
    assert t["wan0"] == {"rx_bytes": 1000 + 50 + 20, "rx_packets": 3 + 1 + 1,
                         "tx_bytes": 100 + 70 + 10, "tx_packets": 2 + 1 + 1}
    assert t["lo"] == {"rx_bytes": 11, "rx_packets": 2, "tx_bytes": 11, "tx_packets": 2}
    # forwarded traffic: what comes in somewhere goes out somewhere
    fwd = iface_totals([fwd1, fwd2], ifs)
    assert sum(v["rx_bytes"] for v in fwd.values()) == sum(v["tx_bytes"] for v in fwd.values()) \
        == sum(f.bytes_orig + f.bytes_reply for f in (fwd1, fwd2))


def test_iface_totals_with_a_plain_callable():
    t = iface_totals([flow("1.1.1.1", "2.2.2.2")], lambda f: ("a", None))
    assert t["a"] == {"rx_bytes": 100, "rx_packets": 2, "tx_bytes": 1000, "tx_packets": 3}
    assert t[None] == {"rx_bytes": 1000, "rx_packets": 3, "tx_bytes": 100, "tx_packets": 2}


def test_once_preparer_drops_served_route_answers_instead_of_evicting_them():
    """--once on a router: every datagram brings new remote addresses.  The
    preparer empties the route cache before a batch would overflow it (the
    last batches' lines are written), so no eviction copies the cache, and
    every flow still gets its interfaces from one batched lookup."""
    from flowtop.enrich.bundle import Enrichment
    from flowtop.once import Preparer
    from flowtop.services import Services
    ifs, fake, _ = make(max_entries=64)
    evictions = []
    evict = ifs._evict
    ifs._evict = lambda now: (evictions.append(len(ifs._cache)), evict(now))
    prepare = Preparer(Enrichment(Services(etc_dir="/nonexistent"), ifaces=ifs))
    for b in range(20):
        batch = [flow("10.1.%d.%d" % (b, i), "203.0.%d.%d" % (b, i)) for i in range(10)]
        prepare(batch)
        assert ifs.cached() <= 64
        assert [ifs.of_flow(e) for e in batch] == [("lan0", "wan0")] * 10
    assert evictions == [] and ifs.lookups == 400 and len(fake.calls) == 20
