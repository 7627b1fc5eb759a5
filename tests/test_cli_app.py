"""The CLI and the tick loop driven from recordings: no root, no kernel."""

import csv
import io
import json
import os

import pytest

from flowtop import app, cli
from flowtop.text import duration, human, sanitize
from flowtop.enrich.bundle import FIELDS
from flowtop.views.record import COLUMNS

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
MIXED = os.path.join(FIXTURES, "mixed.rec")


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    status = app.main(cli.parse(list(argv)), stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


def test_defaults_show_everything():
    o = cli.parse([])
    assert o.families == frozenset() and o.protocols == frozenset()
    assert o.interval == 1.0 and o.output == "text" and o.sysctl and o.dns and o.geoip


def test_protocol_letters():
    o = cli.parse(["-4", "-U", "-I", "-n", "-G", "-t", "2.5"])
    assert o.families == {"ipv4"}
    assert o.protocols == {"udp", "udplite", "icmp", "icmpv6"}
    assert (o.dns, o.geoip, o.interval) == (False, False, 2.5)


@pytest.mark.parametrize("argv", [["--bogus"], ["-t", "0"], ["-t", "abc"], ["--json", "--csv"],
                                  ["--record", "a", "--replay", "b"]])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.parse(argv)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_replay_json_schema():
    status, out, err = run("--replay", MIXED, "--json", "--once")
    assert status == 0 and err == ""
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 14
    assert all(list(r) == list(COLUMNS) + list(FIELDS) for r in lines)
    assert len({r["time"] for r in lines}) == 1


def test_replay_csv_matches_json():
    _, js, _ = run("--replay", MIXED, "--json", "--once")
    _, cs, _ = run("--replay", MIXED, "--csv", "--once")
    rows = list(csv.reader(io.StringIO(cs)))
    assert rows[0] == list(COLUMNS) + list(FIELDS)
    assert len(rows) - 1 == len(js.splitlines())
    by_id = {json.loads(line)["id"]: json.loads(line) for line in js.splitlines()}
    for row in rows[1:]:
        rec = by_id[int(row[1])]
        assert row[COLUMNS.index("status")] == "|".join(rec["status"])
        assert row[COLUMNS.index("bytes_reply")] == str(rec["bytes_reply"])


def test_replay_text_table():
    status, out, _ = run("--replay", MIXED, "--once")
    lines = out.splitlines()
    assert status == 0
    assert lines[0].startswith("14 flows (tcp 4")
    header = next(i for i, line in enumerate(lines) if line.startswith("PROTO"))
    assert len(lines) - header - 1 == 14


def test_replay_filters():
    _, out, _ = run("--replay", MIXED, "--json", "-6", "-T")
    recs = [json.loads(line) for line in out.splitlines()]
    assert recs and all(r["family"] == "ipv6" and r["proto"] == "tcp" for r in recs)


@pytest.mark.parametrize("content,words", [
    (b"", "bad magic"), (b"garbage" * 10, "bad magic"),
    (b"FLOWTOP-RECORDING\n{\"format\": 1, \"byteorder\": \"other\"}\n", "endian"),
])
def test_replay_bad_files_one_line(tmp_path, content, words):
    p = tmp_path / "x.rec"
    p.write_bytes(content)
    status, out, err = run("--replay", str(p))
    assert status == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("flowtop: cannot replay") and words in err


def test_replay_truncated_recording(tmp_path):
    with open(MIXED, "rb") as f:
        raw = f.read()
    p = tmp_path / "cut.rec"
    p.write_bytes(raw[:len(raw) - 100])
    status, _, err = run("--replay", str(p), "--json")
    assert status == 1 and "cut short" in err and err.count("\n") == 1


def test_replay_missing_file(tmp_path):
    status, _, err = run("--replay", str(tmp_path / "nope.rec"))
    assert status == 1 and "No such file" in err and err.count("\n") == 1


def test_record_then_replay_roundtrip(tmp_path):
    """A Recorder fed the datagrams of a recording reproduces it."""
    from flowtop.recording import Recorder, iter_dumps, read_header
    with open(MIXED, "rb") as f:
        read_header(f)
        (when, data), = list(iter_dumps(f))
    out = io.BytesIO()
    rec = Recorder(out, clock=lambda: 1.0)
    rec.begin()
    rec.chunk(b"interrupted attempt")
    rec.begin()
    rec.chunk(data)
    rec.commit(when)
    p = tmp_path / "again.rec"
    p.write_bytes(out.getvalue())
    # -n: reverse DNS answers may come in either run's bounded wait, or not
    assert run("--replay", str(p), "--json", "--once", "-n")[1] == \
        run("--replay", MIXED, "--json", "--once", "-n")[1]


def test_sanitize_strips_control_and_bidi():
    assert sanitize("a\x1b[2Jb\nc\u202ed\x9b") == "a?[2Jb?c?d?"
    assert len(sanitize("x" * 500)) == 64
    assert sanitize(b"\xff\x07ok") == "\ufffd?ok"


def test_units():
    assert human(None) == "-"
    assert human(999) == "999B"
    assert human(1234567) == "1.2MB"
    assert human(1536, "iec") == "1.5KiB"
    assert human(1536, "raw") == "1536B"
    assert duration(59) == "59s" and duration(3723) == "1h2m" and duration(None) == "-"
