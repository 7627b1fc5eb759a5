"""Property-based fuzzing of the decoders, the flow table and the recording
reader (hypothesis), with a fixed, derandomized example budget per property
so a CI run is bounded in time and reproducible.

Oracles:

* decoders raise nothing but DecodeError (NetlinkError where the input
  forges a kernel error message), and never hang (each example runs under
  a wall-clock alarm);
* ``ctnetlink.Decoder`` - plain on a layout's first message, compiled after -
  agrees with ``decode_entry`` on every message: same entry or both
  DecodeError; its ``JsonTarget`` text parses to ``record()`` of that entry;
* ``FlowTable.apply`` over random event streams keeps rates finite and
  non-negative and drops vanished flows exactly ``linger`` ticks later;
* the recording reader raises nothing but RecordingError and yields only
  times a clock can show (replay adds DecodeError / NetlinkError).

The long-running coverage-guided counterpart is in fuzz/ (atheris).
Regressions found by fuzzing are in tests/fixtures/*-regress-*.
"""

import base64
import contextlib
import io
import json
import math
import os
import signal
import socket
import struct
import sys
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowtop import conntrack as ft_conntrack
from flowtop.model import Flow
from flowtop.enrich import fib
from flowtop.netlink import ctnetlink, neigh, nlmsg, route, rtdump, rtlookup, sockdiag
from flowtop.netlink.conntrack import DumpState, feed
from flowtop.netlink.errors import DecodeError, NetlinkError
from flowtop.netlink.uapi import (
    CTA_TUPLE_ORIG, NLA_F_NESTED, NLA_F_NET_BYTEORDER, NLMSG_DONE, RTM_NEWNEIGH, RTM_NEWROUTE,
    RTM_NEWRULE,
)
from flowtop.recording import MAGIC, RecordingError, iter_dumps, read_header
from flowtop.table import FlowTable, TableFlow
from flowtop.views.record import JsonTarget, record
from tests.test_fib import recorded as recorded_tables

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
RECORDINGS = ("ctnetlink-acct-off.rec", "ctnetlink-mixed.rec", "ctnetlink-multipart.rec",
              "ctnetlink-helper.rec")
NOW = 1795494300.25                 # the JSON target's snapshot time
HANG = 5.0                          # seconds one example may take before it is a hang
DONE = nlmsg.pack(NLMSG_DONE, 2, 0, struct.pack("=i", 0))
MSG_CT_NEW = ctnetlink.MSG_CT_NEW
if sys.byteorder != "little":
    # netlink is host-order and the fixtures were recorded little-endian
    # (tests/bigendian/ covers the decoders on a big-endian CPU)
    pytest.skip("the recorded fixtures are little-endian netlink", allow_module_level=True)


def budget(n):
    """Fixed, reproducible example budget: CI time is bounded and a failure
    replays the same way everywhere.  Marked ``slow`` (``-m "not slow"``
    leaves them out; CI runs them): together they are most of the unit suite."""
    limit = settings(max_examples=n, deadline=None, derandomize=True, database=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                            HealthCheck.filter_too_much])

    def mark(test):
        return pytest.mark.slow(limit(test))
    return mark


class Hang(Exception):
    """An example ran past HANG seconds."""


@contextlib.contextmanager
def no_hang(seconds=HANG):
    """Interrupt a hang with SIGALRM (main thread) and check the elapsed time
    in any case: a decoder that loops forever fails instead of stalling CI."""
    use_alarm = threading.current_thread() is threading.main_thread()
    if use_alarm:
        def alarm(_sig, _frame):
            raise Hang("example ran for more than %.1f s" % seconds)
        old = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    start = time.monotonic()
    try:
        yield
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    elapsed = time.monotonic() - start
    if elapsed > seconds:
        raise Hang("example took %.2f s" % elapsed)


# --- the recorded fixtures --------------------------------------------------------------

def _read(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def _dump_of(name):
    """(time, datagrams) of the one dump in a recorded fixture."""
    stream = io.BytesIO(_read(name))
    read_header(stream)
    ((when, data),) = list(iter_dumps(stream))
    return when, data


def _messages(data):
    """Raw messages (header included, padded) of a datagram."""
    return [data[b - 16:nlmsg.align(e)] for _t, _f, _s, _p, b, e in nlmsg.iter_messages(data)]


DUMPS = {name: _dump_of(name)[1] for name in RECORDINGS}
MESSAGES = {name: _messages(data) for name, data in DUMPS.items()}


def _plain_flows(data):
    out = []
    feed(data, out, DumpState(), decode=lambda b, o, e: ctnetlink.decode_entry(b, o, e, Flow))
    return out


FLOWS = _plain_flows(DUMPS["ctnetlink-mixed.rec"]) + _plain_flows(DUMPS["ctnetlink-acct-off.rec"])


# --- the decoder oracle (shared by the ctnetlink properties) ----------------------------

def outcome(fn, *args):
    """('ok', result) or ('error', DecodeError text); anything else escapes."""
    try:
        return "ok", fn(*args)
    except DecodeError as e:
        return "error", str(e)


def same_outcome(a, b):
    """Both decoded to the same thing, or both raised DecodeError (the
    message may differ: the plain decoder says where, a layout need not)."""
    return a[0] == b[0] and (a[0] == "error" or a[1] == b[1])


def plain(buf, off, end):
    return ctnetlink.decode_entry(buf, off, end, Flow)


def _trained(target=None):
    decoder = ctnetlink.Decoder(Flow, target)
    for data in DUMPS.values():
        feed(data, [], DumpState(), decode=decoder)
    return decoder


def _json_target():
    target = JsonTarget()
    target.now = NOW
    return target


TAIL_SEEN = []          # the entries a JsonTarget's tail was called with


def _tail(entry):
    TAIL_SEEN.append(entry)
    return ',"tail":%d' % len(TAIL_SEEN)


def _filtered_target():
    """IPv6 TCP and UDP only, with an enrichment tail (which gets the entry)."""
    target = JsonTarget((10,), (6, 17), tail=_tail, cls=Flow)
    target.now = NOW
    return target


TRAINED = _trained()
TRAINED_JSON = _trained(_json_target())
TRAINED_JSON_FILTERED = _trained(_filtered_target())


def run_feed(data, decode):
    """feed() one datagram: (entries, DumpState fields, exception or None)."""
    out, state = [], DumpState()
    exc = None
    try:
        feed(data, out, state, decode=decode)
    except (DecodeError, NetlinkError) as e:
        exc = (type(e).__name__, e.args)
    return out, (state.done, state.interrupted, state.dropped, state.foreign), exc


def check_feed(data):
    """Every decoder through feed(): only DecodeError/NetlinkError, and the
    same flows, DumpState and exception as the plain decoder."""
    want = run_feed(data, plain)
    fresh = ctnetlink.Decoder(Flow)
    for label, decoder in (("fresh Decoder", fresh), ("compiled Decoder", fresh),
                           ("trained Decoder", TRAINED.clone())):
        assert run_feed(data, decoder) == want, label
    lines, state, exc = run_feed(data, TRAINED_JSON.clone())
    assert (state, exc) == want[1:]
    assert [json.loads(line) for line in lines] == [record(f, NOW) for f in want[0]]
    # filtered, with a tail: "" for the flows filtered out, the tail sees the entry
    del TAIL_SEEN[:]
    lines, state, exc = run_feed(data, TRAINED_JSON_FILTERED.clone())
    assert (state, exc) == want[1:]
    assert len(lines) == len(want[0])
    kept = [f for f in want[0] if f.family == 10 and f.l4proto in (6, 17)]
    assert TAIL_SEEN == kept
    got = [json.loads(line) for line in lines if line]
    assert [g.pop("tail") for g in got] == list(range(1, len(kept) + 1))
    assert got == [record(f, NOW) for f in kept]
    check_keys(data)
    return want


def check_keys(data):
    """A Decoder's ``key`` of each message (all a DESTROY event is read for:
    its learnt layout's mask check and one slice) is the key of the record
    decoded whole, or both raise DecodeError."""
    messages = []
    try:
        for _t, _f, _s, _p, body, end in nlmsg.iter_messages(data):
            messages.append((body, end))
    except DecodeError:
        pass                        # the messages before a header that lies
    for label, decoder in (("fresh Decoder", ctnetlink.Decoder(Flow)),
                           ("trained Decoder", TRAINED.clone())):
        for body, end in messages:
            want = outcome(plain, data, body, end)
            got = outcome(decoder.key, data, body, end)
            assert got[0] == want[0], (label, got, want)
            assert got[0] == "error" or got[1] == want[1].key, (label, got[1], want[1].key)


# --- 1. random attribute trees in ctnetlink messages -------------------------------------

FLAGS = st.sampled_from([0, 0, 0, NLA_F_NESTED, NLA_F_NET_BYTEORDER,
                         NLA_F_NESTED | NLA_F_NET_BYTEORDER])
# What a header claims its length is: None the truth, an int that value, or
# ("delta", d) the truth plus d.
LIES = st.one_of(st.integers(0, 0xFFFF), st.integers(-6, 6).map(lambda d: ("delta", d)))


PERCENT = st.integers(0, 99)
BOOL = st.booleans()
_BINARY = {}


def binary(size):
    """Cached strategies: building one per draw costs more than drawing."""
    if size not in _BINARY:
        _BINARY[size] = st.binary(min_size=size, max_size=size)
    return _BINARY[size]


def chance(draw, percent):
    """True ``percent`` times in 100 (a middle range: hypothesis favours the
    ends of an integer range)."""
    return 40 <= draw(PERCENT) < 40 + percent


def encode(node):
    """Bytes of an attribute node (kind, type, flags, content, pad, claim)."""
    kind, atype, flags, content, pad, claim = node
    payload = b"".join(encode(c) for c in content) if kind == "nest" else content
    length = 4 + len(payload)
    if claim is None:
        claimed = length
    elif isinstance(claim, tuple):
        claimed = max(0, length + claim[1])
    else:
        claimed = claim
    raw = struct.pack("=HH", claimed & 0xFFFF, (atype | flags) & 0xFFFF) + payload
    if pad:
        raw += b"\0" * (nlmsg.align(length) - length)
    return raw


def claim(draw, percent):
    return draw(LIES) if chance(draw, percent) else None


LEAF_TYPES = st.integers(0, 40)
ODD_TYPES = st.sampled_from([0, 5, 17, 29, 40, 0x3FFF])
PAYLOAD = st.binary(max_size=24)


def random_leaf(draw, types=LEAF_TYPES, lies=15):
    return ("leaf", draw(types), draw(FLAGS), draw(PAYLOAD), not chance(draw, 10),
            claim(draw, lies))


@st.composite
def _random_leaf(draw):
    return random_leaf(draw)


@st.composite
def _random_nest(draw, children):
    return ("nest", draw(LEAF_TYPES), draw(FLAGS), draw(children), draw(BOOL), claim(draw, 15))


def random_tree():
    """Fully random nested attributes: random types, sizes, flags, lies."""
    return st.recursive(_random_leaf(), lambda c: _random_nest(st.lists(c, max_size=4)),
                        max_leaves=12)


RANDOM_TREES = st.lists(random_tree(), max_size=5)
WRONG_SIZE = {size: st.sampled_from(sorted({0, 1, 2, 3, size + 1, size + 4, max(0, size - 1)}))
              for size in set(ctnetlink._SIZES.values())}


CONTROL = st.integers(0, (1 << 64) - 1)
_FLAG_CHOICES = (0, 0, 0, 0, 0, NLA_F_NESTED, NLA_F_NET_BYTEORDER,
                 NLA_F_NESTED | NLA_F_NET_BYTEORDER)


def _odd(word, shift, percent):
    """True ``percent`` times in 100 over the bits of ``word`` at ``shift``
    (a control word of 0 - hypothesis' favourite - is the plain case)."""
    return (word >> shift) % 128 * 100 // 128 >= 100 - percent


def schema_tree(draw, schema=None, bad=2, skip=25):
    """Attributes shaped like ctnetlink's SCHEMA (so that many decode), with
    wrong sizes, duplicates, unknown types, odd flags, missing padding and
    lying lengths mixed in (each ``bad`` times in 100 per attribute).  One
    control word per attribute decides the odd things: far fewer draws
    than one per decision, which is what an example costs."""
    schema = ctnetlink.SCHEMA if schema is None else schema
    nodes = []
    for atype in sorted(schema):
        word = draw(CONTROL)
        required = schema is ctnetlink.SCHEMA and atype == CTA_TUPLE_ORIG
        if not required and _odd(word, 0, skip):
            continue
        spec = schema[atype]
        flags = _FLAG_CHOICES[(word >> 7) & 7]
        pad = not _odd(word, 10, bad)
        lie = draw(LIES) if _odd(word, 17, bad) else None
        if isinstance(spec, dict):
            if (word >> 24) & 1:
                flags |= NLA_F_NESTED
            # the original tuple's parts are rarely left out: a layout is
            # learnt only when the protocol number is there
            inner = 5 if schema is ctnetlink.SCHEMA and atype == CTA_TUPLE_ORIG else skip
            node = ("nest", atype, flags, schema_tree(draw, spec, bad, inner), pad, lie)
        else:
            size = ctnetlink._SIZES[spec[1]]
            if _odd(word, 25, bad):
                size = draw(WRONG_SIZE[size])
            node = ("leaf", atype, flags, draw(binary(size)), pad, lie)
        nodes.append(node)
        if _odd(word, 32, bad):                       # a duplicate
            nodes.append(node)
    if _odd(word, 39, 40):                            # unknown or padding attributes
        for _ in range(1 + ((word >> 46) & 1)):
            nodes.insert((word >> 47) % (len(nodes) + 1), random_leaf(draw, ODD_TYPES, bad))
    return nodes


FAMILIES = st.sampled_from([2, 2, 10, 10, 0, 7, 255])
VERSIONS = st.sampled_from([0, 0, 1])


@st.composite
def ct_body(draw):
    """The body of an IPCTNL_MSG_CT_NEW message: nfgenmsg + attributes."""
    nfgen = struct.pack("=BBH", draw(FAMILIES), draw(VERSIONS), 0)
    mode = draw(st.integers(0, 9))
    if mode < 2:
        nodes = draw(RANDOM_TREES)
    else:
        nodes = schema_tree(draw, bad=(0, 0, 1, 1, 1, 1, 6, 6)[mode - 2])
    body = nfgen + b"".join(encode(n) for n in nodes)
    if chance(draw, 10):                         # cut short
        body = body[:draw(st.integers(0, len(body)))]
    return body


def in_message(body, prefix=b"", suffix=b""):
    """(buffer, body offset, body end) of body in a CT_NEW message, with
    other bytes before and after it (a decoder must stay within its end)."""
    msg = nlmsg.pack(MSG_CT_NEW, 2, 0, body)
    buf = prefix + msg + suffix
    off = len(prefix) + 16
    return buf, off, off + len(body)


def check_body(body, prefix, suffix):
    """Returns the plain decoder's outcome."""
    buf, off, end = in_message(body, prefix, suffix)
    want = outcome(plain, body, 0, len(body))
    # bounds: bytes around the message change nothing
    assert same_outcome(outcome(plain, buf, off, end), want)
    assert same_outcome(outcome(ctnetlink.decode_entry, buf, off, end), want)
    # the layout decoder: plain on first sight, compiled from then on
    decoder = ctnetlink.Decoder(Flow)
    for _ in range(2):
        assert same_outcome(outcome(decoder, buf, off, end), want)
    assert same_outcome(outcome(decoder, body, 0, len(body)), want)   # another offset
    # a decoder that learnt the recorded layouts
    assert same_outcome(outcome(TRAINED.clone(), buf, off, end), want)
    # JsonTarget: the record of the entry
    json_decoder = ctnetlink.Decoder(Flow, _json_target())
    for _ in range(2):
        got = outcome(json_decoder, buf, off, end)
        assert got[0] == want[0]
        if got[0] == "ok":
            assert json.loads(got[1]) == record(want[1], NOW)
    # and the whole message through feed(), with and without NLMSG_DONE
    check_feed(nlmsg.pack(MSG_CT_NEW, 2, 0, body) + DONE)
    check_feed(nlmsg.pack(MSG_CT_NEW, 2, 0, body))
    return want


@budget(600)
@given(body=ct_body(), prefix=st.binary(max_size=8), suffix=st.binary(max_size=8))
def test_attribute_trees_decode_or_raise_decode_error_and_decoders_agree(body, prefix, suffix):
    with no_hang():
        check_body(body, prefix, suffix)


FLIPS = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 255)), min_size=1, max_size=3)


def flip(data, flips):
    data = bytearray(data)
    for pos, x in flips:
        if data:
            data[pos % len(data)] ^= x
    return bytes(data)


@budget(300)
@given(a=ct_body(), b=ct_body(), flips=FLIPS)
def test_a_learnt_layout_never_decodes_another_layout_of_the_same_length(a, b, flips):
    """Train a Decoder on ``a``, then decode a message of the same length:
    ``b`` padded (with an unknown attribute) to it, and ``a`` with some bytes
    changed.  The compiled layout must give what the plain walk gives:
    the same values in the same layout, and no entry from another layout."""
    if len(b) < len(a):
        a, b = b, a
    gap = len(b) - len(a)
    if gap >= 4:
        a = a + struct.pack("=HH", gap, 31) + b"\xAA" * (gap - 4)
    else:
        a = a + b"\0" * gap
    assert len(a) == len(b)
    with no_hang():
        for first, second in ((a, b), (b, a), (a, flip(a, flips)), (b, flip(b, flips))):
            decoder = ctnetlink.Decoder(Flow)
            outcome(decoder, first, 0, len(first))
            assert same_outcome(outcome(decoder, second, 0, len(second)),
                                outcome(plain, second, 0, len(second)))


@budget(200)
@given(a=ct_body(), b=ct_body(), flips=FLIPS)
def test_a_learnt_layout_s_key_is_the_plain_decoder_s_key(a, b, flips):
    """``Decoder.key`` (a DESTROY event's key: the mask check and a slice)
    gives the plain decoder's record key, or raises DecodeError as it does,
    for messages of a learnt layout's length and of others."""
    if len(b) < len(a):
        a, b = b, a
    b2 = a + b"\0" * (len(b) - len(a))
    with no_hang():
        for first, second in ((a, b2), (b2, a), (a, flip(a, flips)), (b, b)):
            decoder = ctnetlink.Decoder(Flow)
            outcome(decoder, first, 0, len(first))
            got = outcome(decoder.key, second, 0, len(second))
            want = outcome(plain, second, 0, len(second))
            assert got[0] == want[0] and (got[0] == "error" or got[1] == want[1].key)


# --- 2. mutated recorded dumps through feed() ------------------------------------------

INTERESTING16 = [0, 1, 3, 4, 5, 8, 15, 16, 17, 20, 0x7FFF, 0x8000, 0xFFFF]
INTERESTING32 = [0, 4, 16, 17, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFF9B]

MUTATION = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 20), st.integers(0, 7)),
    st.tuples(st.just("byte"), st.integers(0, 1 << 20), st.integers(0, 255)),
    st.tuples(st.just("u16"), st.integers(0, 1 << 20), st.sampled_from(INTERESTING16)),
    st.tuples(st.just("u32"), st.integers(0, 1 << 20), st.sampled_from(INTERESTING32)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 20), st.binary(min_size=1, max_size=12)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 20), st.integers(1, 12)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 20), st.just(0)),
)


def mutate(data, mutations):
    data = bytearray(data)
    for kind, pos, arg in mutations:
        if not data:
            break
        pos %= len(data) + (1 if kind == "insert" else 0)
        if kind == "flip":
            data[pos] ^= 1 << arg
        elif kind == "byte":
            data[pos] = arg
        elif kind == "u16":
            data[pos:pos + 2] = struct.pack("=H", arg)
        elif kind == "u32":
            data[pos:pos + 4] = struct.pack("=I", arg)
        elif kind == "insert":
            data[pos:pos] = arg
        elif kind == "delete":
            del data[pos:pos + arg]
        else:
            del data[pos:]
    return bytes(data)


@st.composite
def recorded_datagram(draw):
    """Some consecutive messages of a recorded dump (maybe all, maybe with
    NLMSG_DONE after them)."""
    name = draw(st.sampled_from(RECORDINGS))
    msgs = MESSAGES[name]
    if name != "ctnetlink-multipart.rec" and draw(st.integers(0, 3)) == 0:
        return DUMPS[name]
    i = draw(st.integers(0, len(msgs) - 1))
    n = draw(st.integers(1, min(10, len(msgs) - i)))
    data = b"".join(msgs[i:i + n])
    return data + DONE if draw(st.booleans()) else data


@budget(400)
@given(data=recorded_datagram(), mutations=st.lists(MUTATION, min_size=1, max_size=6))
def test_mutated_dumps_raise_only_decode_or_netlink_errors_and_decoders_agree(data, mutations):
    with no_hang():
        check_feed(mutate(data, mutations))


@budget(200)
@given(data=recorded_datagram(), flips=FLIPS)
def test_same_length_mutations_of_learnt_layouts(data, flips):
    """Bytes changed in place keep every message's length, so a trained
    Decoder meets each one through a compiled layout's checks first."""
    with no_hang():
        check_feed(flip(data, flips))


# --- 3. random event streams into FlowTable ---------------------------------------------

_I = {name: i for i, name in enumerate(ctnetlink.FIELDS)}
U64 = (1 << 64) - 1
COUNTERS = [_I[c] for c in ("packets_orig", "bytes_orig", "packets_reply", "bytes_reply")]
COUNTER_VALUE = st.one_of(st.none(), st.integers(0, 5000), st.integers(0, U64),
                          st.sampled_from([0, 1, U64, 1 << 62, (1 << 62) + 1]))
OP_ARGS = {
    "up": st.integers(0, 10 ** 6),
    "same": st.none(),
    "down": st.integers(1, 10 ** 6),                            # a counter reset
    "none": st.none(),                                          # accounting switched off
    "set": st.lists(COUNTER_VALUE, min_size=4, max_size=4),
    "id": st.one_of(st.none(), st.integers(0, 0xFFFFFFFF)),     # re-created flows
    "start": st.one_of(st.none(), st.integers(0, U64)),
}
OP_KINDS = st.sampled_from(["up"] * 10 + ["same"] * 2 + ["down", "none", "set", "id", "start"])


@st.composite
def op(draw):
    """What happens to one flow between two snapshots."""
    kind = draw(OP_KINDS)
    return kind, draw(OP_ARGS[kind])


OPS = op()
_STEPS = {
    "tick": st.floats(0.001, 10),
    "same time": st.just(0.0),
    "too close": st.floats(1e-9, 0.001, exclude_max=True),
    "backwards": st.floats(-5, 0, exclude_max=True),
    "long pause": st.floats(1e3, 1e12),
}
_STEP_KINDS = st.sampled_from(["tick"] * 6 + sorted(set(_STEPS) - {"tick"}))


@st.composite
def time_step(draw):
    """Monotonic time between two snapshots: mostly a tick, sometimes none,
    too little to measure, backwards or a very long pause."""
    return draw(_STEPS[draw(_STEP_KINDS)])


TIME_STEP = time_step()
TICK = st.tuples(st.lists(st.tuples(st.integers(0, 7), OPS), max_size=8), TIME_STEP,
                 st.floats(-1e3, 1e10))


def step_flow(f, op):
    """Apply one OPS change to a flow (a list of its fields), in place."""
    kind, arg = op
    if kind in ("up", "down"):
        for i in COUNTERS:
            if f[i] is not None:
                f[i] = max(0, f[i] + (arg if kind == "up" else -arg))
    elif kind == "none":
        for i in COUNTERS:
            f[i] = None
    elif kind == "set":
        for i, v in zip(COUNTERS, arg):
            f[i] = v
    elif kind in ("id", "start"):
        f[_I[kind]] = arg


@budget(300)
@given(linger=st.integers(0, 3), start=st.floats(-1e9, 1e12),
       pool=st.lists(st.integers(0, len(FLOWS) - 1), min_size=1, max_size=6),
       ticks=st.lists(TICK, min_size=1, max_size=12))
def test_flow_table_event_streams(linger, start, pool, ticks):
    """A few recorded flows (``pool``; the same flow twice is a key listed
    twice) evolve over snapshots: counters up, down, unknown, ids and
    starts changing; each snapshot lists some of them; time moves on,
    stands still or steps back."""
    flows = [list(FLOWS[i]) for i in pool]
    table = FlowTable(linger=linger)
    now = start
    absent = {}                    # key -> ticks since last listed
    with no_hang():
        for changes, step, wall in ticks:
            now += step
            entries = []
            for slot, op in changes:
                f = flows[slot % len(flows)]
                step_flow(f, op)
                entries.append(tuple.__new__(Flow, f))
            table.apply(entries, now, wall)
            listed = {e.key: e for e in entries}            # the last entry of a key wins
            for key in list(absent):
                absent[key] += 1
            for key in listed:
                absent[key] = 0
            for key, n in list(absent.items()):
                if n > linger:
                    del absent[key]
            assert set(table.rows) == set(absent)          # lingering, then dropped
            for key, row in table.rows.items():
                assert row.closed == absent[key]
                assert row.key == key
                if not row.closed:
                    assert row.entry == listed[key]
                for rate in (row.rate_orig, row.rate_reply, row.pps_orig, row.pps_reply):
                    assert rate is None or (math.isfinite(rate) and rate >= 0), rate
                    if row.closed:
                        assert rate is None
                assert row.age(wall) >= 0
            tx, rx, _known = table.totals()
            assert math.isfinite(tx) and math.isfinite(rx) and tx >= 0 and rx >= 0
            assert sum(table.counts().values()) == len(listed)


def _reads(row, wall):
    """What a reader of a snapshot sees of a row (not when it was sampled)."""
    return (row.key, row.closed, row.is_new, row.rate_orig, row.rate_reply, row.pps_orig,
            row.pps_reply, tuple(row.entry), row.start_wall, row.age_approx, row.age(wall))


@budget(300)
@given(linger=st.integers(0, 3), start=st.floats(0, 1e6),
       pool=st.lists(st.integers(0, len(FLOWS) - 1), min_size=1, max_size=6),
       ticks=st.lists(st.tuples(TICK, st.booleans(), st.lists(st.integers(0, 7), max_size=3)),
                      min_size=1, max_size=12))
def test_the_kept_tally_equals_a_recount_and_an_unchanged_version_reads_the_same(
        linger, start, pool, ticks):
    """The counts and totals a table keeps as full and partial snapshots
    (with gone keys) change it equal a pass over its rows; and while its
    version stays, every row reads as it did (what lets a reader reuse the
    last snapshot's rows)."""
    from flowtop.tablerows import tally
    flows = [list(FLOWS[i]) for i in pool]
    table = FlowTable(linger=linger)
    now, largest = start, 1.0
    with no_hang():
        for (changes, step, wall), partial, gone in ticks:
            now += step
            before = {k: _reads(r, wall) for k, r in table.rows.items()}
            version = table.version
            entries = []
            for slot, op in changes:
                f = flows[slot % len(flows)]
                step_flow(f, op)
                entries.append(tuple.__new__(TableFlow, f))
            if partial:
                table.update(entries, now, wall, [flows[i % len(flows)][_I["key"]] for i in gone])
            else:
                table.apply(entries, now, wall)
            kept, recount = table.tally(), tally(table.rows.values())
            assert (kept.protos, kept.statuses, kept.lacking, kept.known) == (
                recount.protos, recount.statuses, recount.lacking, recount.known)
            largest = max([largest] + [abs(r) for row in table for r in (row.rate_orig,
                                                                        row.rate_reply) if r])
            assert abs(kept.tx - recount.tx) <= 1e-9 * largest * 16
            assert abs(kept.rx - recount.rx) <= 1e-9 * largest * 16
            assert table._closed == {k for k, r in table.rows.items() if r.closed}
            if table.version == version:
                assert {k: _reads(r, wall) for k, r in table.rows.items()} == before


def _view(table, row, wall):
    """Everything a reader of a table row sees."""
    return (row.key, row.closed, row.is_new, row.rate_orig, row.rate_reply, row.pps_orig,
            row.pps_reply, tuple(row.entry), table.seen(row), row.start_wall, row.age_approx,
            row.age(wall))


@budget(300)
@given(linger=st.integers(0, 3), start=st.floats(0, 1e6),
       pool=st.lists(st.integers(0, len(FLOWS) - 1), min_size=1, max_size=6),
       ticks=st.lists(st.tuples(TICK, st.booleans(), st.lists(st.integers(0, 7), max_size=3)),
                      min_size=1, max_size=12))
def test_bare_idle_rows_read_like_rows(linger, start, pool, ticks):
    """Idle and first-sight flows stored bare (TableFlow and FreshFlow, no
    Row) are indistinguishable from the Row a table of plain records keeps
    for them (their class changes in place, as the table says): the same random
    full and partial snapshots (with gone keys) into both tables give the
    same rows, rates, sample times and ages."""
    flows = [list(FLOWS[i]) for i in pool]
    rows_only, bare = FlowTable(linger=linger), FlowTable(linger=linger)
    now = start
    with no_hang():
        for (changes, step, wall), partial, gone in ticks:
            now += step
            plain, table_flows = [], []
            for slot, op in changes:
                f = flows[slot % len(flows)]
                step_flow(f, op)
                plain.append(tuple.__new__(Flow, f))
                table_flows.append(tuple.__new__(TableFlow, f))
            if partial:
                keys = [flows[i % len(flows)][_I["key"]] for i in gone]
                rows_only.update(plain, now, wall, keys)
                bare.update(table_flows, now, wall, keys)
            else:
                rows_only.apply(plain, now, wall)
                bare.apply(table_flows, now, wall)
            assert list(bare.rows) == list(rows_only.rows)
            for key, row in rows_only.rows.items():
                assert _view(bare, bare.rows[key], wall) == _view(rows_only, row, wall)
            assert bare.totals() == rows_only.totals()
            assert bare.counts() == rows_only.counts()
        # the point of it: idle flows with timestamps hold no Row
        for later in (now + 1, now + 2):      # as decoded again from the kernel
            bare.apply([tuple.__new__(TableFlow, bare.rows[k].entry) for k in bare.open_keys()],
                       later, wall)
        for row in bare:
            if row.entry[_I["start"]] and row.entry[_I["bytes_orig"]] is not None \
                    and not row.closed:
                assert type(row) is TableFlow


# --- 4. rtnetlink and sock_diag decoders on mutated fixtures ---------------------------

ROUTE_BINS = {name: _read(name) for name in ("route-addr.bin", "route-link.bin", "route-get.bin")}


def _sockdiag_dumps():
    with open(os.path.join(FIXTURES, "sockdiag-dump.json")) as f:
        fixture = json.load(f)
    return [(d["proto"], base64.b64decode(d["data"])) for d in fixture["dumps"]]


SOCKDIAG = _sockdiag_dumps()


@budget(150)
@given(name=st.sampled_from(sorted(ROUTE_BINS)),
       mutations=st.lists(MUTATION, min_size=1, max_size=6))
def test_mutated_route_dumps_raise_only_decode_or_netlink_errors(name, mutations):
    data = mutate(ROUTE_BINS[name], mutations)
    with no_hang():
        for fn in (route.decode_addresses, route.decode_links, rtlookup.route_replies,
                   rtlookup.decode_route_reply):
            try:
                fn(data)
            except (DecodeError, NetlinkError):
                pass
        for decode, mtype in ((route.decode_addr, route.RTM_NEWADDR),
                              (route.decode_link, route.RTM_NEWLINK),
                              (rtlookup.decode_route, rtlookup.RTM_NEWROUTE)):
            try:
                route.feed(data, mtype, decode, [], DumpState(), seq=None, port=None)
            except (DecodeError, NetlinkError):
                pass


TABLE_DUMPS = {"route-routes.bin": (RTM_NEWROUTE, rtdump.decode_route_entry),
               "route-rules.bin": (RTM_NEWRULE, rtdump.decode_rule),
               "route-neigh.bin": (RTM_NEWNEIGH, neigh.decode_neigh)}
LOOKED_UP = ("10.77.1.9", "8.8.8.8", "127.0.0.1", "fd00:77:1::9", "::1", "fe80::1")
ROUTES, RULES = recorded_tables()


@budget(150)
@given(name=st.sampled_from(sorted(TABLE_DUMPS)),
       mutations=st.lists(MUTATION, min_size=1, max_size=6))
def test_mutated_table_rule_and_neighbour_dumps_decode_or_raise_and_their_copy_never_does(
        name, mutations):
    mtype, decode = TABLE_DUMPS[name]
    data = mutate(_read(name), mutations)
    with no_hang():
        try:
            values = route.decode_dump(data, mtype, decode)[0]
        except (DecodeError, NetlinkError):
            return
        if mtype == RTM_NEWNEIGH:
            neigh.lladdr_of(values)
            return
        copy = fib.build(values, RULES) if mtype == RTM_NEWROUTE else fib.build(ROUTES, values)
        for addr in LOOKED_UP:
            copy.lookup(addr)


@budget(100)
@given(dump=st.sampled_from(SOCKDIAG), mutations=st.lists(MUTATION, min_size=1, max_size=6),
       seq=st.one_of(st.none(), st.integers(0, 0xFFFFFFFF)))
def test_mutated_sockdiag_dumps_raise_only_decode_or_netlink_errors(dump, mutations, seq):
    proto, raw = dump
    data = mutate(raw, mutations)
    with no_hang():
        try:
            records, _state = sockdiag.decode_dump(data, proto)
        except (DecodeError, NetlinkError):
            records = None
        for r in records or ():
            assert len(r) == len(sockdiag.SOCK_FIELDS)
            assert isinstance(r[2], str) and isinstance(r[4], str)
            assert 0 <= r[3] <= 0xFFFF and 0 <= r[5] <= 0xFFFF
        try:
            sockdiag.feed(data, proto, [], DumpState(), seq=seq, port=seq)
        except (DecodeError, NetlinkError):
            pass


# --- 5. the recording reader on mutated recordings --------------------------------------

RECORDING_FILES = {name: _read(name) for name in ("ctnetlink-acct-off.rec", "ctnetlink-mixed.rec")}


def _header_end(data):
    return data.index(b"\n", len(MAGIC)) + 1


@st.composite
def mutated_recording(draw):
    data = RECORDING_FILES[draw(st.sampled_from(sorted(RECORDING_FILES)))]
    mutations = draw(st.lists(MUTATION, min_size=1, max_size=5))
    if draw(st.booleans()):          # aim at the magic, the JSON header and the DUMP header
        limit = _header_end(data) + 4 + 12 + 16
        mutations = [(k, p % limit, a) for k, p, a in mutations]
    return mutate(data, mutations)


@st.composite
def recording_with_header(draw):
    """A recording whose JSON header line is something else."""
    json_value = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(
            st.sampled_from(["format", "byteorder", "time", "x"]), c, max_size=3),
        max_leaves=8)
    header = draw(st.one_of(
        json_value.map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries({"format": json_value, "byteorder": st.sampled_from(
            [sys.byteorder, "big", "little", None])}).map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=64)))
    rest = RECORDING_FILES["ctnetlink-acct-off.rec"]
    rest = rest[_header_end(rest):]
    return MAGIC + header.replace(b"\n", b" ") + b"\n" + rest[:draw(st.integers(0, len(rest)))]


def check_recording(data):
    # the reader alone: RecordingError only
    try:
        stream = io.BytesIO(data)
        read_header(stream)
        for when, dump in iter_dumps(stream):
            assert isinstance(when, float) and isinstance(dump, bytes)
            assert math.isfinite(when)
            time.gmtime(when)            # a time that a clock can show
    except RecordingError:
        pass
    # and replayed: the dumps are decoded too (a recorded NLMSG_ERROR ends
    # in NetlinkError, which ``flowtop --replay`` explains like the others)
    try:
        for _when, flows in ft_conntrack.replay(io.BytesIO(data)):
            assert all(isinstance(f, Flow) for f in flows)
    except (RecordingError, DecodeError, NetlinkError):
        pass


@budget(150)
@given(data=mutated_recording())
def test_mutated_recordings_raise_only_recording_or_decode_errors(data):
    with no_hang():
        check_recording(data)


@budget(100)
@given(data=recording_with_header())
def test_recording_headers_raise_only_recording_errors(data):
    with no_hang():
        check_recording(data)


# --- regressions found by fuzzing (tests/fixtures/*-regress-*) ---------------------------


def _regression(name):
    return _read("%s.bin" % name)


# Found by these properties on 2026-11-24 and fixed in d93b104 (recording.py);
# until the fix they were xfail(strict=True) here.

def test_regress_recording_deep_json_header():
    """A header line of 2000 '[' (fits MAX_HEADER): the C JSON scanner ran
    out of recursion depth (RecursionError, Python < 3.13) before finding
    the line is not JSON, and ``flowtop --replay`` printed a traceback."""
    data = _regression("recording-regress-deep-json-header")
    with pytest.raises(RecordingError):
        read_header(io.BytesIO(data))


@pytest.mark.parametrize("name", ["recording-regress-nan-time", "recording-regress-huge-time"])
def test_regress_recording_impossible_dump_time(name):
    """A dump header whose time is NaN or 1e300, before one NLMSG_DONE: the
    reader yielded it, then ``--replay --once`` died in time.localtime
    (ValueError / OverflowError) and ``--json`` printed "time":nan.  It must
    refuse it (RecordingError) or yield a time that a clock can show."""
    stream = io.BytesIO(_regression(name))
    read_header(stream)
    try:
        dumps = list(iter_dumps(stream))
    except RecordingError:
        return
    for when, _data in dumps:
        assert math.isfinite(when)
        time.gmtime(when)            # ValueError / OverflowError for what no clock shows


def test_regress_route_of_the_other_familys_address():
    """Found by fuzz/fuzz_route.py on 2026-12-07 (main 4edea8c): an AF_INET6
    route whose RTA_DST holds 4 bytes decodes to IPv4 text, and the copy of
    the tables (``fib.build``) raised OSError from inet_pton; the interfaces
    of every flow then failed.  That family is left to the kernel instead."""
    (bad,) = route.decode_dump(_regression("route-regress-route-family"), RTM_NEWROUTE,
                               rtdump.decode_route_entry)[0]
    assert bad.family == socket.AF_INET6 and ":" not in bad.dst
    copy = fib.build([bad], RULES)
    assert copy.lookup("fd00:77:1::9") is fib.ASK


def test_regress_recording_huge_dump_length():
    """A dump header claiming 0xFFFFFFFF bytes, then 20: iter_dumps called
    stream.read(length), which allocates the claimed length first.  In a
    process with 1 GiB of address space (a router has less memory than
    that) it must end in RecordingError ("cut short"), not MemoryError."""
    import subprocess
    path = os.path.join(FIXTURES, "recording-regress-huge-length.bin")
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "from flowtop.recording import RecordingError, iter_dumps, read_header\n"
        "with open(sys.argv[1], 'rb') as f:\n"
        "    read_header(f)\n"
        "    try:\n"
        "        list(iter_dumps(f))\n"
        "    except RecordingError:\n"
        "        sys.exit(0)\n"
        "sys.exit('no RecordingError')\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", code, path], cwd=root,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
