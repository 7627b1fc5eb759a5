"""-c/--continuous: the live view as plain text frames."""

import io

from flowtop import cli
from flowtop.views.text import TextFrames

from tests.viewutil import FakeEnrich, table_of


def test_text_frames(monkeypatch):
    t, when = table_of()
    out = io.StringIO()
    frames = TextFrames(out, cli.parse(["-c", "--loopback"]), FakeEnrich())
    frames.write_rows(t, when)
    text = out.getvalue().splitlines()
    assert text[0].startswith("14 flows (tcp 4")
    assert text[1].split()[:2] == ["PROTO", "STATE"]
    assert len(text) == 2 + 14
