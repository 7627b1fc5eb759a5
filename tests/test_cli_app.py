"""The CLI and the tick loop driven from recordings: no root, no kernel."""

import csv
import io
import json
import os

import pytest

from flowtop import cli, main
from flowtop.text import duration, human, sanitize
from flowtop.enrich.bundle import FIELDS
from flowtop.views.record import COLUMNS
from tests.recutil import build, split

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
MIXED = os.path.join(FIXTURES, "ctnetlink-mixed.rec")


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    status = main.main(cli.parse(list(argv)), stdout=out, stderr=err)
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
    (b"", "is empty"), (b"garbage" * 10, "bad magic"),
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


# -- damaged recordings: every intact dump is replayed, then one error line --------------

def _times(out):
    return sorted({json.loads(line)["time"] for line in out.splitlines()})


@pytest.mark.parametrize("cut_in", [1, 2, 3])
def test_replay_cut_inside_a_dump_replays_every_dump_before_it(tmp_path, cut_in):
    head, ((when, data),) = split(MIXED)
    whole = build(head, [(when + i, data) for i in range(3)])
    dump_size = 4 + 12 + len(data)
    cut = len(head) + dump_size * (cut_in - 1) + 16 + len(data) // 2
    p = tmp_path / "cut.rec"
    p.write_bytes(whole[:cut])
    status, out, err = run("--replay", str(p), "--json", "-n", "-G", "-t", "0.01")
    assert status == 1
    assert err.count("\n") == 1 and "cut short in dump %d" % cut_in in err, err
    assert len(_times(out)) == cut_in - 1
    assert len(out.splitlines()) == 14 * (cut_in - 1)


def test_replay_of_an_intact_three_dump_recording_replays_all_three(tmp_path):
    head, ((when, data),) = split(MIXED)
    p = tmp_path / "three.rec"
    p.write_bytes(build(head, [(when + i, data) for i in range(3)]))
    status, out, err = run("--replay", str(p), "--json", "-n", "-G", "-t", "0.01")
    assert (status, err) == (0, "")
    assert len(_times(out)) == 3 and len(out.splitlines()) == 42


@pytest.mark.parametrize("bit", [0, 1, 4, 8, 9, 15])
def test_replay_of_a_flipped_message_type_says_so_after_the_intact_dumps(tmp_path, bit):
    import struct
    head, ((when, data),) = split(MIXED)
    bad = bytearray(data)
    mtype = struct.unpack_from("=H", bad, 236 + 4)[0]    # the second flow's message type
    struct.pack_into("=H", bad, 236 + 4, mtype ^ (1 << bit))
    p = tmp_path / "flipped.rec"
    p.write_bytes(build(head, [(when, data), (when + 1, bytes(bad)), (when + 2, data)]))
    status, out, err = run("--replay", str(p), "--json", "-n", "-G", "-t", "0.01")
    assert status == 1 and err.count("\n") == 1, err
    assert err.startswith("flowtop: cannot replay") and "dump 2" in err, err
    assert len(_times(out)) == 1 and len(out.splitlines()) == 14


def test_replay_once_of_a_damaged_first_dump_is_one_error_line(tmp_path):
    import struct
    head, ((when, data),) = split(MIXED)
    bad = bytearray(data)
    struct.pack_into("=H", bad, 4, 0x101)
    p = tmp_path / "flipped.rec"
    p.write_bytes(build(head, [(when, bytes(bad))]))
    status, out, err = run("--replay", str(p), "--once", "--json")
    assert status == 1 and out == "" and err.count("\n") == 1 and "damaged" in err


# -- small ones ----------------------------------------------------------------------------

def test_interval_zero_says_what_range_is_allowed(capsys):
    with pytest.raises(SystemExit):
        cli.parse(["-t", "0"])
    err = capsys.readouterr().err
    assert "more than 0 and at most 86400" in err and "between 0" not in err


def _fifo(tmp_path, name):
    path = tmp_path / name
    os.mkfifo(str(path))
    return str(path)


def _run_bounded(argv, seconds=20):
    """``run`` in a thread: a blocked open must fail the test, not hang it."""
    import threading
    box = []
    t = threading.Thread(target=lambda: box.append(run(*argv)), daemon=True)
    t.start()
    t.join(seconds)
    assert box, "flowtop blocked on %r" % (argv,)
    return box[0]


def test_replay_of_a_fifo_nobody_writes_to_says_so_in_one_line(tmp_path):
    fifo = _fifo(tmp_path, "rec.fifo")
    status, out, err = _run_bounded(["--replay", fifo, "--once"])
    assert status == 1 and out == ""
    assert err == ("flowtop: cannot replay %s: the file is empty (or a FIFO nobody writes "
                   "to)\n" % fifo)


def test_replay_from_a_pipe_reads_the_recording():
    import shlex
    import subprocess
    import sys
    repo = os.path.dirname(os.path.dirname(FIXTURES))
    r = subprocess.run("cat %s | %s -m flowtop --replay /dev/stdin --once --json -n -G"
                       % (shlex.quote(MIXED), shlex.quote(sys.executable)), shell=True,
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=repo))
    assert (r.returncode, r.stderr) == (0, "")
    assert len(r.stdout.splitlines()) == 14


def test_replay_of_a_directory_is_refused_in_one_line(tmp_path):
    status, _, err = _run_bounded(["--replay", str(tmp_path), "--once"])
    assert status == 1 and err.count("\n") == 1 and "not a regular file" in err


def test_geoip_db_fifo_is_refused_in_one_line(tmp_path):
    pytest.importorskip("maxminddb")
    fifo = _fifo(tmp_path, "city.mmdb")
    status, out, err = _run_bounded(["--replay", MIXED, "--once", "-n", "--geoip-db", fifo])
    assert status == 1 and out == ""
    assert err == "flowtop: --geoip-db %s: a FIFO, not a regular file\n" % fifo


def test_recorder_write_errors_name_the_file(tmp_path):
    from flowtop.recording import Recorder
    with open("/dev/full", "wb", buffering=0) as f:
        with pytest.raises(OSError) as info:
            Recorder(f, clock=lambda: 1.0)
    assert info.value.filename == "/dev/full"
    assert main.explain(info.value, cli.parse(["--record", "/dev/full"])) == \
        "cannot record to /dev/full: No space left on device"


def test_update_gets_one_keyboard_interrupt_then_the_handler_from_before():
    """-u removes its temp files on the way out of a Ctrl-C; a second Ctrl-C gets
    what was there before (under ``cli.run``: exit 130 at once)."""
    import signal
    import time
    seen = []
    saved = signal.signal(signal.SIGINT, lambda s, f: seen.append("before"))
    try:
        with pytest.raises(KeyboardInterrupt):
            with main._interrupt_once():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(1)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert seen == ["before"]
    finally:
        signal.signal(signal.SIGINT, saved)


def test_replay_of_a_dump_ended_early_by_a_damaged_type_says_so(tmp_path):
    import struct
    head, ((when, data),) = split(MIXED)
    bad = bytearray(data)
    struct.pack_into("=H", bad, 1964 + 4, 3)       # the 8th of 14 flows now reads NLMSG_DONE
    p = tmp_path / "ended.rec"
    p.write_bytes(build(head, [(when, data), (when + 1, bytes(bad))]))
    status, out, err = run("--replay", str(p), "--json", "-n", "-G", "-t", "0.01")
    assert status == 1 and err.count("\n") == 1 and "dump 2" in err, err
    assert len(_times(out)) == 1 and len(out.splitlines()) == 14

