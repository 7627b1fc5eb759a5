"""A flow as a record: the one JSON encoder (generated per layout) against
its plain twin ``record``, on recorded flows and on every field absent."""

import json

from flowtop import conntrack
from flowtop.netlink.ctnetlink import FIELDS
from flowtop.views.record import COLUMNS, JsonTarget, json_line, record

from tests.viewutil import MIXED


def flows():
    with open(MIXED, "rb") as f:
        when, got = next(conntrack.replay(f))
    return when, list(got)


def test_the_encoder_text_parses_to_the_record_of_every_recorded_flow():
    when, fs = flows()
    assert {f.l4proto for f in fs} >= {1, 6, 17, 47, 58, 132}
    for now in (when, when + 0.0005, when - 10.0):      # a start after now: age 0
        for f in fs:
            assert json.loads(json_line(f, now)) == record(f, now), f


def test_a_flow_lacking_any_one_field_encodes_as_its_record():
    when, fs = flows()
    for f in fs:
        for i, name in enumerate(FIELDS):
            if name in ("family", "l4proto"):
                continue
            lacking = tuple.__new__(type(f), f[:i] + (None,) + f[i + 1:])
            got = json.loads(json_line(lacking, when))
            assert got == record(lacking, when), (name, f)
            assert list(got) == list(COLUMNS)


def test_a_target_keeps_its_families_and_adds_its_tail():
    when, fs = flows()
    target = JsonTarget(families=(10,), tail=lambda e: ',"x":%d' % e.l4proto)
    target.now = when
    for f in fs:
        text = target.convert(f)
        if f.family != 10:
            assert text == ""
        else:
            assert json.loads(text) == dict(record(f, when), x=f.l4proto)


def test_the_generated_decoders_and_encoders_are_made_without_compile(monkeypatch):
    """A process's first compile() builds the ast module's ~120 types: 10 M instructions,
    ~7 % of the live view's start to its first rows at 16k flows (on a mipsel router
    ~50x this machine's time).  exec of the generated text makes the same functions."""
    import builtins
    called, real = [], builtins.compile

    def counted(*args, **kwargs):
        called.append(args[1:2])
        return real(*args, **kwargs)
    monkeypatch.setattr(builtins, "compile", counted)
    target = JsonTarget()
    target.now = 100.0
    got = [(f, target.convert(f)) for f in flows()[1]]     # a new decoder, new encoders
    monkeypatch.undo()
    assert not called, called
    assert got == [(f, json_line(f, 100.0)) for f in flows()[1]] and len(got) > 10
