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
  ``record()`` of the plain decoder's flows.

The oracle: only DecodeError / NetlinkError escape, every decoder gives the
same flows, the same DumpState and the same exception.  Anything else is a
crash.  With FLOWTOP_FUZZ_KEEP_GOING=DIR set, a crash is saved once per
(exception type, file, line) in DIR and fuzzing goes on, so one long run
reports every distinct bug instead of stopping at the first.
"""

import copy
import glob
import hashlib
import json
import os
import sys
import traceback

import atheris

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

with atheris.instrument_imports(include=["flowtop"]):
    from flowtop.model import Flow
    from flowtop.netlink import ctnetlink
    from flowtop.netlink.conntrack import DumpState, feed
    from flowtop.netlink.errors import DecodeError, NetlinkError
    from flowtop.netlink.uapi import NFGENMSG_LEN
    from flowtop.recording import iter_dumps, read_header
    from flowtop.views.records import JsonTarget, record

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


def plain(buf, off, end):
    return ctnetlink.decode_entry(buf, off, end, Flow)


def clone(decoder):
    """A copy of a trained Decoder that learns on its own from here."""
    c = copy.copy(decoder)
    c.fast = dict(decoder.fast)
    c._by_length = {k: list(v) for k, v in decoder._by_length.items()}
    return c


def _fixture_dumps():
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "fixtures", "*.rec"))):
        with open(path, "rb") as f:
            read_header(f)
            for _when, data in iter_dumps(f):
                yield data


def _trained(target=None):
    decoder = ctnetlink.Decoder(Flow, target)
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
    fresh = ctnetlink.Decoder(Flow)
    for label, decoder in (("fresh", fresh), ("fresh, compiled", fresh),
                           ("trained", clone(TRAINED))):
        got = run(data, decoder)
        if got != want:
            raise Mismatch("%s Decoder disagrees with decode_entry:\n%r\n%r" % (label, got, want))
    lines, state, exc = run(data, clone(TRAINED_JSON))
    flows = want[0]
    if (state, exc) != want[1:]:
        raise Mismatch("JsonTarget decoder: %r != %r" % ((state, exc), want[1:]))
    expect = [record(f, NOW) for f in flows]
    got = [json.loads(line) for line in lines]
    if got != expect:
        raise Mismatch("JsonTarget lines differ from record():\n%r\n%r" % (got, expect))
    # the stats decoder reads the same kind of body
    if len(data) >= 16 + NFGENMSG_LEN:
        try:
            ctnetlink.decode_stats(data, 16, len(data))
        except DecodeError:
            pass


KEEP_GOING = os.environ.get("FLOWTOP_FUZZ_KEEP_GOING")
_seen = set()


def _signature(exc):
    tb = traceback.extract_tb(exc.__traceback__)
    frames = [f for f in tb if "flowtop" in f.filename] or tb
    last = frames[-1]
    return "%s-%s-%d" % (type(exc).__name__, os.path.basename(last.filename), last.lineno)


def TestOneInput(data):
    try:
        check(data)
    except Exception as exc:           # the harness reports every kind
        if not KEEP_GOING:
            raise
        sig = _signature(exc)
        if sig not in _seen:
            _seen.add(sig)
            os.makedirs(KEEP_GOING, exist_ok=True)
            name = "crash-%s-%s" % (sig, hashlib.sha1(data).hexdigest()[:12])
            with open(os.path.join(KEEP_GOING, name), "wb") as f:
                f.write(data)
            sys.stderr.write("\n=== NEW CRASH %s (%d bytes) -> %s\n%s\n" % (
                sig, len(data), name, "".join(traceback.format_exception(
                    type(exc), exc, exc.__traceback__))))
            sys.stderr.flush()


def main():
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
