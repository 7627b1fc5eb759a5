"""Pushing a filter down to the kernel: which comparisons go (only the
top-level ``and``ed ``=`` ones the kernel can do), and the request bytes."""

import socket
import struct
import sys

import pytest

from flowtop.netlink import attrs, uapi as u
from flowtop.netlink.ctfilter import DumpFilter, dump_request, needs_family, untupled
from flowtop.views.filterexpr import compile
from flowtop.views.filterpush import pushdown


def push(text, family=u.AF_UNSPEC):
    return pushdown(compile(text), family)


def test_mark_zone_and_status_go_down():
    f = push("mark=42 and zone=3 and status=assured status=seen_reply")
    assert (f.mark, f.mark_mask, f.zone) == (42, None, 3)
    assert f.status == f.status_mask == (1 << u.IPS_ASSURED_BIT) | (1 << u.IPS_SEEN_REPLY_BIT)


def test_a_masked_mark_sends_the_value_under_its_mask():
    f = push("mark=0x1234/0xff00")
    assert (f.mark, f.mark_mask) == (0x1200, 0xFF00)


@pytest.mark.parametrize("text", [
    "mark=1 or zone=2", "not mark=1", "mark!=1", "proc=x", "zone=0", "dst=10.0.0.0/8",
    "dst=2001:db8::1", "dport=443", "status~assur", "rate>1M", "firefox",
])
def test_what_the_kernel_cannot_do_stays_in_python(text):
    assert push(text) is None


def test_ports_go_only_with_their_protocol():
    f = push("proto=tcp and dport=443 and sport=1000")
    assert (f.proto, f.sport, f.dport) == (6, 1000, 443)
    assert needs_family(f)
    assert untupled(f) is None
    assert untupled(push("proto=tcp mark=1")) == DumpFilter(mark=1)


def test_an_ipv4_address_sets_the_family_and_one_of_the_other_family_does_not_go():
    f = push("dst=10.1.2.3 and src=10.9.9.9")
    assert f.family == u.AF_INET and f.dst == socket.inet_aton("10.1.2.3")
    assert not needs_family(f)
    assert push("dst=10.1.2.3", u.AF_INET6) is None


def _attrs(body):
    return {t: body[s:e] for t, s, e in attrs.iter_attrs(body, 0, len(body))}


def test_the_request_carries_the_attributes_the_kernel_reads():
    msg = dump_request(7, u.AF_UNSPEC, push("dst=10.1.2.3 and proto=udp and dport=53 and "
                                             "mark=0x10/0xf0 and status=assured and zone=3"))
    length, mtype, flags, seq, _pid = struct.unpack_from("=IHHII", msg)
    assert length == len(msg) and seq == 7 and flags & u.NLM_F_DUMP == u.NLM_F_DUMP
    assert msg[16] == u.AF_INET                           # nfgenmsg family from the address
    a = _attrs(msg[20:])
    assert struct.unpack(">I", a[u.CTA_MARK])[0] == 0x10
    assert struct.unpack(">I", a[u.CTA_MARK_MASK])[0] == 0xF0
    assert struct.unpack(">I", a[u.CTA_STATUS])[0] == 1 << u.IPS_ASSURED_BIT
    assert struct.unpack(">H", a[u.CTA_ZONE])[0] == 3
    flt = _attrs(a[u.CTA_FILTER])
    want = (u.CTA_FILTER_F_CTA_IP_DST | u.CTA_FILTER_F_CTA_PROTO_NUM
            | u.CTA_FILTER_F_CTA_PROTO_DST_PORT)
    assert int.from_bytes(flt[u.CTA_FILTER_ORIG_FLAGS], sys.byteorder) == want
    tup = _attrs(a[u.CTA_TUPLE_ORIG])
    assert _attrs(tup[u.CTA_TUPLE_IP]) == {u.CTA_IP_V4_DST: socket.inet_aton("10.1.2.3")}
    proto = _attrs(tup[u.CTA_TUPLE_PROTO])
    assert proto[u.CTA_PROTO_NUM] == bytes((17,)) and proto[u.CTA_PROTO_DST_PORT] == b"\x00\x35"


def test_no_filter_is_the_plain_dump_request():
    from flowtop.netlink.ctnetlink import dump_request as plain
    assert dump_request(9, u.AF_INET6, None) == plain(9, u.AF_INET6)
