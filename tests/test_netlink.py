"""Framing, attributes and the ctnetlink decoder on malformed input.

Malformed inputs are derived from recorded kernel messages (cut, lengths
changed, attributes added) or are plain byte strings: never hand-typed
conntrack entries.
"""

import io
import os
import struct

import pytest

from flowtop.netlink import attrs, ctnetlink, nlmsg
from flowtop.netlink.conntrack import DumpState, feed
from flowtop.netlink.errors import DecodeError, NetlinkError
from flowtop.recording import iter_dumps, read_header

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def dump_bytes(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        read_header(f)
        return [data for _when, data in iter_dumps(f)][0]


def messages(data):
    """[(type, flags, seq, pid, raw message bytes)] of a recorded dump."""
    out = []
    for mtype, flags, seq, pid, body, end in nlmsg.iter_messages(data):
        out.append((mtype, flags, seq, pid, data[body - 16:end]))
    return out


def first_entry_message(name="ctnetlink-mixed.rec"):
    return next(m[4] for m in messages(dump_bytes(name)) if m[0] == ctnetlink.MSG_CT_NEW)


def decode_msg(msg):
    return ctnetlink.decode_entry(msg, 16, len(msg))


def with_body(msg, body):
    """``msg`` with its body replaced and the header length fixed up."""
    length, mtype, flags, seq, pid = nlmsg.NLMSGHDR.unpack_from(msg)
    return nlmsg.NLMSGHDR.pack(16 + len(body), mtype, flags, seq, pid) + body


# --- framing -----------------------------------------------------------------

@pytest.mark.parametrize("data,ok", [
    (b"", True),                                   # empty: no message
    (b"\x10\x00\x00", False),                      # header cut short
    (struct.pack("=IHHII", 8, 3, 2, 1, 0), False),          # length < header
    (struct.pack("=IHHII", 64, 3, 2, 1, 0), False),         # length > buffer
    (struct.pack("=IHHII", 16, 3, 2, 1, 0) + b"\0", False),  # trailing junk
    (struct.pack("=IHHII", 20, 3, 2, 1, 0) + b"\0" * 4, True),
])
def test_iter_messages_bounds(data, ok):
    if ok:
        list(nlmsg.iter_messages(data))
    else:
        with pytest.raises(DecodeError):
            list(nlmsg.iter_messages(data))


def test_done_and_error_messages():
    done = nlmsg.pack(3, 2, 7, struct.pack("=i", 0))
    state = DumpState()
    feed(done, [], state, seq=7)
    assert state.done
    err = nlmsg.pack(2, 0, 7, struct.pack("=i", -1) + b"\0" * 16)
    with pytest.raises(NetlinkError) as info:
        feed(err, [], DumpState(), seq=7)
    assert info.value.errno == 1


def test_foreign_sequence_and_port_are_dropped():
    data = dump_bytes("ctnetlink-mixed.rec")
    (_t, _f, seq, pid, _m), = messages(data)[:1]
    out, state = [], DumpState()
    feed(data, out, state, seq=seq + 1, port=pid)
    assert out == [] and state.foreign > 0 and not state.done
    out, state = [], DumpState()
    feed(data, out, state, seq=seq, port=pid)
    assert len(out) == 14 and state.done and state.foreign == 0


def test_dump_intr_flag_is_reported():
    data = bytearray(dump_bytes("ctnetlink-mixed.rec"))
    flags = struct.unpack_from("=H", data, 6)[0]
    struct.pack_into("=H", data, 6, flags | 0x10)       # NLM_F_DUMP_INTR on the first
    state = DumpState()
    feed(bytes(data), [], state)
    assert state.interrupted


# --- attributes ---------------------------------------------------------------

def test_iter_attrs_rejects_lying_lengths():
    good = attrs.pack_be32(3, 8) + attrs.pack_attr(7, b"")
    assert [(t, e - s) for t, s, e in attrs.iter_attrs(good, 0, len(good))] == [(3, 4), (7, 0)]
    for bad in (b"\x03", struct.pack("=HH", 2, 3), struct.pack("=HH", 40, 3) + b"\0" * 4):
        with pytest.raises(DecodeError):
            list(attrs.iter_attrs(bad, 0, len(bad)))


def test_getters_check_size():
    with pytest.raises(DecodeError):
        attrs.be32(b"\0\0", 0, 2)
    assert attrs.be16(b"\x01\x02", 0, 2) == 0x102
    assert attrs.be64(b"\0" * 7 + b"\x05", 0, 8) == 5


def test_nested_flag_is_masked():
    msg = first_entry_message()
    e = decode_msg(msg)
    # The kernel sets NLA_F_NESTED on nests; clearing it must not matter.
    body = bytearray(msg[16:])
    off = 4
    while off < len(body):
        length, atype = struct.unpack_from("=HH", body, off)
        struct.pack_into("=HH", body, off, length, atype & 0x3FFF)
        off += (length + 3) & ~3
    assert decode_msg(with_body(msg, bytes(body))) == e


# --- the ctnetlink decoder ------------------------------------------------------

def test_unknown_and_padding_attributes_are_skipped():
    msg = first_entry_message()
    e = decode_msg(msg)
    extra = attrs.pack_attr(999 & 0x3FFF, b"\x01\x02\x03") + attrs.pack_attr(5, b"")
    body = msg[16:20] + extra + msg[20:] + attrs.pack_attr(200, b"\0" * 8)
    assert decode_msg(with_body(msg, body)) == e


def test_zero_length_pad_before_counters():
    """MIPS kernels put an empty CTA_COUNTERS_PAD before 64-bit counters."""
    data = dump_bytes("ctnetlink-mixed.rec")
    msg = next(m[4] for m in messages(data) if m[0] == ctnetlink.MSG_CT_NEW
               and decode_msg(m[4]).bytes_orig)
    e = decode_msg(msg)
    body = bytearray()
    for t, s, end in attrs.iter_attrs(msg, 20, len(msg)):
        payload = msg[s:end]
        if t in (9, 10):   # CTA_COUNTERS_ORIG/REPLY: pad first
            payload = attrs.pack_attr(5, b"") + payload
        body += attrs.pack_attr(t, payload, nested=t in (1, 2, 4, 9, 10, 20))
    assert decode_msg(with_body(msg, msg[16:20] + bytes(body))) == e


@pytest.mark.parametrize("mutate", [
    lambda b: b[:2],                                   # shorter than nfgenmsg
    lambda b: b[:4] + struct.pack("=HH", 3, 1),        # attribute length < header
    lambda b: b[:4] + struct.pack("=HH", 200, 1) + b[8:],   # attribute longer than message
    lambda b: b[:4] + attrs.pack_attr(3, b"\0\0"),     # CTA_STATUS of 2 bytes
    lambda b: b[:4] + attrs.pack_attr(1, attrs.pack_attr(1, attrs.pack_attr(1, b"\x7f\0")),
                                      nested=True),    # 2-byte IPv4 address
    lambda b: b[:4] + attrs.pack_attr(8, b""),         # no original tuple at all
])
def test_malformed_entries_raise_decode_error(mutate):
    msg = first_entry_message()
    with pytest.raises(DecodeError):
        decode_msg(with_body(msg, mutate(msg[16:])))


def _feed_all(data):
    out, state = [], DumpState()
    try:
        feed(data, out, state)
    except DecodeError:
        pass
    return out, state


@pytest.mark.parametrize("name", ["ctnetlink-mixed.rec", "ctnetlink-acct-off.rec"])
def test_every_truncation_decodes_or_raises_decode_error(name):
    data = dump_bytes(name)
    for cut in range(len(data) + 1):
        _feed_all(data[:cut])      # anything but DecodeError propagates and fails


def test_truncations_of_a_multipart_dump():
    data = dump_bytes("ctnetlink-multipart.rec")
    for cut in list(range(0, 2048)) + list(range(2048, len(data), 97)):
        _feed_all(data[:cut])


@pytest.mark.parametrize("name", ["ctnetlink-mixed.rec", "ctnetlink-acct-off.rec"])
def test_every_body_truncation_of_every_message(name):
    """A message whose length field agrees with its cut body: the entry is
    dropped (counted) or decodes, and the dump goes on."""
    for mtype, _f, _s, _p, msg in messages(dump_bytes(name)):
        if mtype != ctnetlink.MSG_CT_NEW:
            continue
        for cut in range(16, len(msg)):
            cut_msg = with_body(msg, msg[16:cut])
            out, state = [], DumpState()
            feed(cut_msg, out, state)
            assert len(out) + state.dropped == 1


def test_recording_truncations_raise_recording_or_decode_error():
    from flowtop import conntrack
    with open(os.path.join(FIXTURES, "ctnetlink-mixed.rec"), "rb") as f:
        raw = f.read()
    for cut in range(len(raw)):
        try:
            list(conntrack.replay(io.BytesIO(raw[:cut])))
        except (conntrack.RecordingError, DecodeError):
            pass


def test_requests_are_well_formed():
    req = ctnetlink.dump_request(5)
    ((mtype, flags, seq, pid, body, end),) = list(nlmsg.iter_messages(req))
    assert mtype == (1 << 8) | 1 and flags == 0x301 and seq == 5 and end - body == 4


def test_decoder_shares_status_words():
    """A NAT'd flow's status word is above 256 (no cached small int), and a
    kept record holds it for life: equal words must be one object."""
    from flowtop.netlink import uapi
    msg = first_entry_message()
    body = bytearray(msg[16:])
    spans = attrs.parse(body, 4, len(body))
    start, _end = spans[uapi.CTA_STATUS]
    word = sum(1 << b for b in (uapi.IPS_SEEN_REPLY_BIT, uapi.IPS_ASSURED_BIT,
                                uapi.IPS_CONFIRMED_BIT, uapi.IPS_SRC_NAT_DONE_BIT,
                                uapi.IPS_DST_NAT_DONE_BIT))
    struct.pack_into(">I", body, start, word)
    patched = with_body(msg, bytes(body))
    decoder = ctnetlink.Decoder()
    decoder(patched, 16, len(patched))     # learns the layout (the plain decoder)
    first, second = (decoder(patched, 16, len(patched)) for _ in range(2))
    assert decoder.fast
    assert first.status == second.status == word > 256
    assert first.status is second.status


def test_a_new_source_address_costs_the_fast_decoder_one_python_call_beyond_its_own():
    """On a router every flow's source is new: each Python call there costs
    ~50 us, so the address cache's miss is one call (not make + put)."""
    import socket
    import sys
    msg = first_entry_message()
    decoder = ctnetlink.Decoder()
    first = decoder(msg, 16, len(msg))                  # learns the layout
    family = socket.AF_INET6 if ":" in first.src else socket.AF_INET
    at = msg.index(socket.inet_pton(family, first.src), 16)
    width = 4 if family == socket.AF_INET else 16
    patched = [msg[:at] + (i + 1).to_bytes(width, "big") + msg[at + width:] for i in range(200)]
    calls = []

    def count(frame, event, arg):
        if event == "call" and frame.f_code.co_name != "<listcomp>":
            calls.append(frame.f_code.co_name)

    decoder(patched[0], 16, len(patched[0]))
    assert decoder.fast
    sys.setprofile(count)
    try:
        out = [decoder(m, 16, len(m)) for m in patched[1:]]
    finally:
        sys.setprofile(None)
    assert [e.src for e in out] == [socket.inet_ntop(family, (i + 1).to_bytes(width, "big"))
                                    for i in range(1, 200)]
    assert len(calls) <= 3 * 199, calls[:12]          # __call__, fast, one cache miss
