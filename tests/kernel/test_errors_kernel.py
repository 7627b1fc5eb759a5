"""Errors a user can meet, through the real CLI: one line on stderr, the right exit
status, never a traceback, and nothing changed on the way out.

Only the tests that need root and a kernel carry the ``kernel`` marker; the replay and
argument cases run anywhere (they still live here, next to their kernel siblings).
"""

import json
import os
import re
import struct
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.nsutil import SYSCTLS, Netns, have, kernel_ready, populate  # noqa: E402

_READY, _WHY = kernel_ready()
kernel = pytest.mark.kernel
needs_kernel = pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")

ACCT = "net.netfilter.nf_conntrack_acct"
TIMESTAMP = "net.netfilter.nf_conntrack_timestamp"
SYSTEM_PYTHON = "/usr/bin/python3"
MIXED_FIXTURE = os.path.join(REPO, "tests", "fixtures", "ctnetlink-mixed.rec")
MAGIC = b"FLOWTOP-RECORDING\n"


def flowtop(*args, timeout=20):
    """``python3 -m flowtop ARGS`` from the checkout, as this (any) user, no namespace."""
    # -n: no DNS queries from the host namespace for the recorded addresses
    return subprocess.run([sys.executable, "-m", "flowtop", "-n"] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=REPO))


def assert_one_line_error(r, status=1):
    assert r.returncode == status, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("flowtop: "), r.stderr
    return lines[0]


# -- no permission ---------------------------------------------------------------------

def _as_nobody(ns, *cmd):
    """``ip netns exec NS setpriv ... CMD``: enter the namespace first, then drop root."""
    argv = ns.argv("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *cmd)
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd="/",
                          env=dict(os.environ, PYTHONPATH=REPO, PYTHONDONTWRITEBYTECODE="1"))


@kernel
@needs_kernel
def test_unprivileged_one_line_and_sysctls_untouched():
    if not have("setpriv") or not os.path.exists(SYSTEM_PYTHON):
        pytest.skip("needs setpriv and %s" % SYSTEM_PYTHON)
    off = dict(SYSCTLS, **{ACCT: 0, TIMESTAMP: 0})
    with Netns("errnobody", sysctls=off) as ns:
        populate(ns)
        probe = _as_nobody(ns, SYSTEM_PYTHON, "-c", "import flowtop.cli, flowtop.main")
        if probe.returncode != 0:
            pytest.skip("the checkout %s is not readable by nobody: %s"
                        % (REPO, probe.stderr.strip().splitlines()[-1:]))
        for args in (["--once"], ["--once", "--json"], ["--json", "-t", "0.2"]):
            r = _as_nobody(ns, SYSTEM_PYTHON, "-m", "flowtop", *args)
            line = assert_one_line_error(r)
            assert "CAP_NET_ADMIN" in line or "root" in line, line
            assert r.stdout == "", (args, r.stdout)
            assert (ns.sysctl(ACCT), ns.sysctl(TIMESTAMP)) == ("0", "0"), args
        # The same checkout and interpreter do work for root, so the error is permission.
        ok = ns.run(SYSTEM_PYTHON, "-m", "flowtop", "--once", "--no-sysctl", check=False,
                    env=dict(os.environ, PYTHONPATH=REPO, PYTHONDONTWRITEBYTECODE="1"))
        assert ok.returncode == 0, ok.stderr


# -- bad recordings ----------------------------------------------------------------------

def _split_recording(data):
    """(prefix up to and including the header line, [(offset, length) of each dump's data])."""
    assert data.startswith(MAGIC)
    off = data.index(b"\n", len(MAGIC)) + 1
    head, dumps = data[:off], []
    while off < len(data):
        assert data[off:off + 4] == b"DUMP"
        length = int.from_bytes(data[off + 12:off + 16], "big")
        dumps.append((off + 16, length))
        off += 16 + length
    assert off == len(data)
    return head, dumps


@kernel
@needs_kernel
def test_replay_of_truncated_recording(tmp_path):
    rec = tmp_path / "real.rec"
    with Netns("errtrunc") as ns:
        populate(ns)
        r = ns.flowtop("--once", "--json", "--no-sysctl", "--record", rec)
        assert r.returncode == 0, r.stderr
        lines = len(r.stdout.splitlines())
    data = rec.read_bytes()
    head, dumps = _split_recording(data)
    assert len(dumps) == 1 and dumps[0][1] > 1000, dumps
    # The untouched recording replays; that is what makes the cut copies meaningful.
    good = flowtop("--no-sysctl", "--replay", rec, "--json")
    assert good.returncode == 0 and len(good.stdout.splitlines()) == lines, good.stderr
    start, length = dumps[0]
    cuts = {
        "mid-dump": start + length // 2,
        "one-byte-short": start + length - 1,
        "in-dump-header": start - 8,
        "in-file-header": len(head) - 5,
    }
    for name, cut in cuts.items():
        bad = tmp_path / ("cut-%s.rec" % name)
        bad.write_bytes(data[:cut])
        r = flowtop("--no-sysctl", "--replay", bad, "--json")
        line = assert_one_line_error(r)
        assert str(bad) in line, (name, line)
        assert r.stdout == "", (name, r.stdout[:300])


def _other_byteorder_header(data):
    head_end = data.index(b"\n", len(MAGIC)) + 1
    header = json.loads(data[len(MAGIC):head_end])
    other = "big" if sys.byteorder == "little" else "little"
    assert header["byteorder"] == sys.byteorder
    header["byteorder"] = other
    return MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + data[head_end:], other


def _bad_recordings(tmp_path):
    garbage = tmp_path / "garbage.rec"
    garbage.write_bytes(bytes(range(256)) * 16)
    empty = tmp_path / "empty.rec"
    empty.write_bytes(b"")
    text = tmp_path / "text.rec"
    text.write_text("ipv4 2 tcp 6 431999 ESTABLISHED src=127.0.0.1 dst=127.0.0.1\n")
    out = {"garbage": garbage, "empty": empty, "text": text,
           "nonexistent": tmp_path / "no" / "such.rec"}
    if os.path.exists(MIXED_FIXTURE):
        with open(MIXED_FIXTURE, "rb") as f:
            data = f.read()
        swapped, _ = _other_byteorder_header(data)
        other = tmp_path / "other-byteorder.rec"
        other.write_bytes(swapped)
        out["other-byteorder"] = other
        # A sound header, then a dump whose bytes are noise.
        noise = tmp_path / "noise-dump.rec"
        head_end = data.index(b"\n", len(MAGIC)) + 1
        junk = bytes((i * 37 + 11) % 256 for i in range(300))
        noise.write_bytes(data[:head_end] + b"DUMP" + struct.pack(">dI", 1.0, len(junk)) + junk)
        out["noise-dump"] = noise
    return out


BAD = ["garbage", "empty", "text", "nonexistent", "other-byteorder", "noise-dump"]


@pytest.mark.parametrize("name", BAD)
def test_replay_of_bad_file(name, tmp_path):
    files = _bad_recordings(tmp_path)
    if name not in files:
        pytest.skip("no fixture %s to derive it from" % MIXED_FIXTURE)
    path = files[name]
    r = flowtop("--no-sysctl", "--replay", path, "--json")
    line = assert_one_line_error(r)
    assert str(path) in line, line
    if name == "other-byteorder":
        assert "endian" in line or "byte order" in line, line
    if name == "nonexistent":
        assert "No such file" in line, line
    assert r.stdout == "", r.stdout[:300]


def test_other_byteorder_is_the_only_defect(tmp_path):
    """The byte-order copy differs from a recording that replays fine only in its header."""
    if not os.path.exists(MIXED_FIXTURE):
        pytest.skip("no fixture %s" % MIXED_FIXTURE)
    good = flowtop("--no-sysctl", "--replay", MIXED_FIXTURE, "--json")
    assert good.returncode == 0 and good.stdout, good.stderr
    swapped, other = _other_byteorder_header(open(MIXED_FIXTURE, "rb").read())
    assert swapped.replace(b'"%s"' % other.encode(), b'"%s"' % sys.byteorder.encode()) == \
        open(MIXED_FIXTURE, "rb").read()


def _with_done_errno(data, errno_value):
    """The recording with the errno field of its NLMSG_DONE messages replaced."""
    head_end = data.index(b"\n", len(MAGIC)) + 1
    out = bytearray(data)
    start = head_end + 16
    off, end, patched = start, start + int.from_bytes(data[head_end + 12:start], "big"), 0
    while off < end:
        length, mtype = struct.unpack_from("=IH", out, off)
        if mtype == 3:   # NLMSG_DONE: the body is an int errno
            struct.pack_into("=i", out, off + 16, errno_value)
            patched += 1
        off += (length + 3) & ~3
    assert patched == 1
    return bytes(out)


@pytest.mark.parametrize("errno_", [-2 ** 31, -1, -5])
def test_replay_of_dump_ending_in_a_kernel_error(tmp_path, errno_):
    """A recording whose NLMSG_DONE carries an errno (INT_MIN included): one
    line naming the file, not a permission hint, no traceback."""
    if not os.path.exists(MIXED_FIXTURE):
        pytest.skip("no fixture %s" % MIXED_FIXTURE)
    bad = tmp_path / "errno.rec"
    with open(MIXED_FIXTURE, "rb") as f:
        bad.write_bytes(_with_done_errno(f.read(), errno_))
    r = flowtop("--no-sysctl", "--replay", bad, "--json")
    assert_one_line_error(r)
    assert "cannot replay" in r.stderr and str(bad) in r.stderr
    assert "CAP_NET_ADMIN" not in r.stderr


# -- arguments ---------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["--no-such-option"], ["-Z"], ["-t", "0"], ["-t", "abc"], ["-t", "-1"], ["-t", "nan"],
    ["-t", "86401"], ["--once", "extra-positional"], ["--json", "--csv"],
    ["--record", "/nonexistent/a", "--replay", "/nonexistent/b"], ["--units", "furlongs"],
], ids=lambda a: " ".join(a))
def test_bad_arguments_exit_2_with_usage(args, tmp_path):
    # Should parsing ever accept one of these, flowtop still must not read the host's
    # table or touch its sysctls: it gets a replay file that does not exist (exit 1).
    if "--replay" not in args:
        args = args + ["--no-sysctl", "--replay", str(tmp_path / "absent.rec")]
    r = flowtop(*args, timeout=20)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.startswith("usage: flowtop"), r.stderr
    assert "Traceback" not in r.stderr
    assert r.stdout == ""


def test_version():
    from flowtop import __version__
    r = flowtop("--version")
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"flowtop \d+\.\d+\.\d+\n", r.stdout), r.stdout
    assert r.stdout == "flowtop %s\n" % __version__
    assert r.stderr == ""


@kernel
@needs_kernel
@pytest.mark.parametrize("args", [["--once"], ["--once", "--json"], ["--json", "-t", "0.2"]],
                         ids=["once", "once-json", "stream-json"])
def test_record_write_error_names_the_file(args):
    with Netns("i11brec") as ns:
        populate(ns)
        r = ns.flowtop("--record", "/dev/full", "-n", "-G", "--no-sysctl", *args, timeout=30)
    line = assert_one_line_error(r)
    assert line == "flowtop: cannot record to /dev/full: No space left on device", line
