#!/usr/bin/env python3
"""atheris harness: ctnetlink dump datagrams through conntrack.feed.

    python3 fuzz/make_corpus.py
    python3 fuzz/fuzz_ctnetlink.py fuzz/corpus/ctnetlink -max_len=4096 -timeout=10 \
        -max_total_time=660 -artifact_prefix=fuzz/artifacts/

One input is one received datagram.  It goes through ``feed`` with

* the plain schema decoder (``decode_entry``) - the reference;
* a fresh ``Decoder`` twice (first pass learns layouts, second pass takes
  the compiled path);
* a ``Decoder`` trained on every recorded fixture (mutations that keep a
  known message length hit a compiled layout's checks at once);
* a trained ``Decoder`` with a ``JsonTarget``, compared with
  ``record()`` of the plain decoder's flows;
* each message's ``Decoder.key`` (a DESTROY event's), fresh and trained.

The oracle: only DecodeError / NetlinkError escape, every decoder gives the
same flows, the same DumpState and the same exception, and each key is the
key of the record decoded whole (or both fail).  Anything else is a
crash.  With FLOWTOP_FUZZ_KEEP_GOING=DIR set, a crash is saved once per
(exception type, file, line) in DIR and fuzzing goes on, so one long run
reports every distinct bug instead of stopping at the first.
"""

import glob
import json
import os
import sys

import atheris

import harness  # fuzz/harness.py: the entry point both harnesses share

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

with atheris.instrument_imports(include=["flowtop"]):
    from flowtop.model import Flow
    from flowtop.netlink import ctdecoder, ctnetlink, nlmsg   # ctdecoder: instrumented too
    from flowtop.netlink.conntrack import DumpState, feed
    from flowtop.netlink.errors import DecodeError, NetlinkError
    from flowtop.netlink.uapi import NFGENMSG_LEN
    from flowtop.recording import iter_dumps, read_header
    from flowtop.views.record import JsonTarget, record

NOW = 1795494300.25
ACCEPTED = (DecodeError, NetlinkError)


class Mismatch(AssertionError):
    """Two decoders disagree."""


def run(data, decode):
    """feed() one datagram: (entries, state tuple, accepted exception or None)."""
    out, state = [], DumpState()
    exc = None
    try:
        feed(data, out, state, decode=decode)
    except ACCEPTED as e:
        exc = (type(e).__name__, e.args)
    return out, (state.done, state.interrupted, state.dropped, state.foreign), exc


def _messages(data):
    """(body, end) of each message before any header that lies."""
    out = []
    try:
        for _t, _f, _s, _p, body, end in nlmsg.iter_messages(data):
            out.append((body, end))
    except DecodeError:
        pass
    return out


def plain(buf, off, end):
    return ctnetlink.decode_entry(buf, off, end, Flow)


def _fixture_dumps():
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "fixtures", "*.rec"))):
        with open(path, "rb") as f:
            read_header(f)
            for _when, data in iter_dumps(f):
                yield data


def _trained(target=None):
    decoder = ctdecoder.Decoder(Flow, target)
    for data in _fixture_dumps():
        feed(data, [], DumpState(), decode=decoder)
    return decoder


TRAINED = _trained()
JSON_TARGET = JsonTarget()
JSON_TARGET.now = NOW
TRAINED_JSON = _trained(JSON_TARGET)


def check(data):
    """The oracle; raises Mismatch or lets an unexpected exception out."""
    want = run(data, plain)
    fresh = ctdecoder.Decoder(Flow)
    for label, decoder in (("fresh", fresh), ("fresh, compiled", fresh),
                           ("trained", TRAINED.clone())):
        got = run(data, decoder)
        if got != want:
            raise Mismatch("%s Decoder disagrees with decode_entry:\n%r\n%r" % (label, got, want))
    lines, state, exc = run(data, TRAINED_JSON.clone())
    flows = want[0]
    if (state, exc) != want[1:]:
        raise Mismatch("JsonTarget decoder: %r != %r" % ((state, exc), want[1:]))
    expect = [record(f, NOW) for f in flows]
    got = [json.loads(line) for line in lines]
    if got != expect:
        raise Mismatch("JsonTarget lines differ from record():\n%r\n%r" % (got, expect))
    # a DESTROY event's key (a learnt layout's mask check and one slice) is the
    # key of the record decoded whole, or both fail
    for decoder in (ctdecoder.Decoder(Flow), TRAINED.clone()):
        for body, end in _messages(data):
            try:
                want = plain(data, body, end).key
            except DecodeError:
                want = DecodeError
            try:
                got = decoder.key(data, body, end)
            except DecodeError:
                got = DecodeError
            if got != want:
                raise Mismatch("Decoder.key %r != the record's %r" % (got, want))
    # the stats decoder reads the same kind of body
    if len(data) >= 16 + NFGENMSG_LEN:
        try:
            ctnetlink.decode_stats(data, 16, len(data))
        except DecodeError:
            pass


if __name__ == "__main__":
    harness.main(check)
