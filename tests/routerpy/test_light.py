"""flowtop on OpenWrt's python3-light: run under the blocker, no root needed.

Each test starts flowtop in a subprocess of the Python running pytest with
``tests/routerpy/light`` first on PYTHONPATH (see lightenv), so the modules
python3-light lacks cannot be imported there.  ``scripts/ci-pythons.sh`` runs
this under Python 3.9, 3.10, 3.12 and 3.13 too; the plain suite runs it under python3.
"""

import errno
import fcntl
import json
import os
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from tests.routerpy import lightenv as L

BLOCKED_CHECK = r"""
import codecs, json, sys
names = json.loads(sys.argv[1])
out = {}
for n in names:
    try:
        __import__(n)
        out[n] = "imported"
    except ImportError as e:     # the blocker's own error, maybe from a dependency
        ours = isinstance(e, ModuleNotFoundError) and "python3-light" in str(e)
        own = e.name == n or n.startswith("%s." % e.name)
        out[n] = ("blocked" if own else "blocked by " + e.name) if ours else repr(e)
try:
    codecs.lookup("idna")
    out["codec:idna"] = "found"
except LookupError:
    out["codec:idna"] = "blocked"
import csv, json, socket, struct, select, threading, queue, ipaddress, mmap, zlib, pty  # noqa
print(json.dumps(out))
"""

IMPORT_ALL = r"""
import importlib, json, sys
out = {}
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
        out[name] = None
    except BaseException as e:
        out[name] = [type(e).__name__, isinstance(e, ImportError), getattr(e, "name", None),
                     str(e)]
mod = sys.modules.get("flowtop")
out["__origin__"] = getattr(mod, "__file__", None)
print(json.dumps(out))
"""

ALWAYS = ["curses", "_curses", "ctypes", "logging", "urllib", "urllib.request", "email",
          "email.message", "unittest", "unittest.mock", "unicodedata", "encodings.idna",
          "concurrent", "concurrent.futures", "decimal", "sqlite3", "asyncio",
          "multiprocessing", "ssl", "lzma", "http.client", "importlib.metadata",
          "xml.etree.ElementTree", "pydoc", "uuid", "_hashlib", "readline"]
ON_39 = ["pathlib", "importlib.resources", "zipfile"]


def _ok(r):
    assert r.returncode == 0, "exit %d\nstdout: %s\nstderr: %s" % (
        r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r


@pytest.fixture(scope="module")
def pyz(tmp_path_factory):
    out = L.build_pyz(str(tmp_path_factory.mktemp("pyz")))
    import zipfile
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
    assert "__main__.py" in names and "flowtop/__init__.py" in names, names
    assert len([n for n in names if n.endswith(".py")]) == len(L.flowtop_modules()) + 1, names
    return out


@pytest.fixture(scope="module")
def geo_site():
    site, why = L.maxminddb_site()
    if site is None:
        pytest.skip(why)
    return site


@pytest.fixture(scope="module")
def geo_rec(tmp_path_factory):
    path = tmp_path_factory.mktemp("geo") / "geo.rec"
    path.write_bytes(L.geo_recording())
    return str(path)


# -- the blocker itself ----------------------------------------------------------------

def test_blocker_hides_what_python3_light_lacks():
    on39 = sys.version_info[:2] == (3, 9)
    names = ALWAYS + ON_39
    r = _ok(L.run(["-c", BLOCKED_CHECK, json.dumps(names)]))
    got = json.loads(r.stdout)
    for n in ALWAYS:
        assert got[n].startswith("blocked"), (n, got[n])
    for n in ON_39:
        # not named past 3.9, but 3.10's and 3.12's pathlib and importlib.resources
        # import urllib.parse, which python3-light lacks
        if on39:
            assert got[n] == "blocked", (n, got[n])
        else:
            assert got[n] in ("imported", "blocked by urllib"), (n, got[n])
    assert got["codec:idna"] == "blocked"
    # ... and without the blocker the same interpreter has them (the check is real)
    plain = json.loads(_ok(L.run(["-c", BLOCKED_CHECK, json.dumps(["logging", "zipfile"])],
                                 blocked=False)).stdout)
    assert plain == {"logging": "imported", "zipfile": "imported", "codec:idna": "found"}


def test_extra_block_names():
    r = _ok(L.run(["-c", BLOCKED_CHECK, '["zipfile", "json"]'], extra_block="zipfile"))
    assert json.loads(r.stdout)["zipfile"] == "blocked"


# -- importing flowtop -------------------------------------------------------------------

@pytest.mark.parametrize("where", ["checkout", "pyz"])
def test_every_module_imports_except_the_curses_ui(where, request):
    modules = L.flowtop_modules()
    assert "flowtop.views.screen" in modules and len(modules) > 30
    if where == "pyz":
        path, extra = (request.getfixturevalue("pyz"),), "zipfile"
    else:
        path, extra = (L.REPO,), ""
    r = _ok(L.run(["-c", IMPORT_ALL, json.dumps(modules)], path=path, extra_block=extra,
                  cwd=os.path.dirname(path[0]) if where == "pyz" else None))
    got = json.loads(r.stdout)
    origin = got.pop("__origin__")
    if where == "pyz":
        assert origin.startswith(path[0] + os.sep), origin
    failed = {k: v for k, v in got.items() if v is not None}
    assert list(failed) == ["flowtop.views.screen"], failed
    _, is_import_error, name, _ = failed["flowtop.views.screen"]
    assert is_import_error and name == "curses", failed


# -- outputs -----------------------------------------------------------------------------

OUTPUTS = {
    "text": ["--once"],
    "json": ["--once", "--json"],
    "csv": ["--once", "--csv"],
    "text-wide-src": ["--once", "--wide", "-s"],
    "json-country": ["--once", "--json", "--view", "country"],
    "csv-host": ["--once", "--csv", "--view", "host"],
    "continuous": ["-c"],
    "stream-json": ["--json", "-t", "0.05"],
    "json-filter": ["--once", "--json", "--filter", "proto~udp* or dst=10.9.0.0/24 and not port<10"],
    "text-filter": ["--once", "--loopback", "--filter", "age<1d and (mdns or status=assured)"],
    "text-rc": ["--once", "--rc", os.path.join(L.FIXTURES, "settings-sample.rc")],
    "json-device": ["--once", "--json", "--view", "device", "--leases",
                    os.path.join(L.FIXTURES, "leases-dnsmasq.leases")],
}


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_outputs_match_the_unblocked_ones(name):
    argv = ["--replay", L.MIXED, "-n"] + OUTPUTS[name]
    light = _ok(L.flowtop(*argv))
    full = _ok(L.flowtop(*argv, blocked=False))
    assert light.stderr == "" and full.stderr == ""
    assert light.stdout == full.stdout
    assert len(light.stdout.splitlines()) >= (1 if "--view" in argv else 3)
    if "json" in name:
        for line in light.stdout.splitlines():
            json.loads(line)


@pytest.mark.parametrize("argv", [["--help"], ["--version"]])
def test_help_and_version(argv):
    light, full = _ok(L.flowtop(*argv)), _ok(L.flowtop(*argv, blocked=False))
    assert light.stdout == full.stdout and light.stdout and light.stderr == ""


@pytest.mark.parametrize("fmt", ["text", "json", "csv"])
def test_pyz_runs_the_same_without_zipfile(fmt, pyz):
    """zipimport is built in and needs no zipfile module: block it everywhere."""
    argv = ["--replay", L.MIXED, "-n"] + OUTPUTS[fmt]
    want = _ok(L.flowtop(*argv))
    # only the .pyz on the path, run from a directory outside the checkout
    got = _ok(L.run([pyz] + argv, path=(), extra_block="zipfile", cwd=os.path.dirname(pyz)))
    assert got.stderr == ""
    assert got.stdout == want.stdout


# -- the live view -----------------------------------------------------------------------

def run_on_pty(argv, env, cols=132, rows=50, timeout=30):
    """Run ``argv`` with stdin/stdout on a new pty; (status, pty text, stderr)."""
    import pty
    master, slave = pty.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=subprocess.PIPE,
                             env=env, cwd=L.REPO, start_new_session=True)
    finally:
        os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no end after %ss: %r" % (timeout, b"".join(chunks)[-500:]))
            ready, _, _ = select.select([master], [], [], left)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError as exc:
                if exc.errno != errno.EIO:      # EIO: the child closed the pty
                    raise
                break
            if not data:
                break
            chunks.append(data)
        status = p.wait(timeout=max(1, deadline - time.monotonic()))
        err = p.stderr.read().decode("utf-8", "replace")
    finally:
        os.close(master)
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stderr.close()
    text = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    return status, text, err


def test_live_view_needs_python3_ncurses_and_falls_back_to_text_frames():
    e = L.env(TERM="xterm")
    e.pop("COLUMNS", None)
    e.pop("LINES", None)
    base = [sys.executable, "-m", "flowtop", "--replay", L.MIXED, "-n"]
    status, frames, err = run_on_pty(base, e)
    assert status == 0, (frames[-1000:], err)
    lines = err.splitlines()
    assert len(lines) == 1 and L.NCURSES_HINT in lines[0], err
    # the frames are those -c prints on the same terminal
    status, want, err_c = run_on_pty(base + ["-c"], e)
    assert status == 0 and err_c == "", err_c
    assert frames == want
    assert "14 flows" in frames and "PROTO" in frames


# -- GeoIP with maxminddb 2.x, pure Python ----------------------------------------------

@pytest.mark.parametrize("where", ["checkout", "pyz"])
def test_geoip_with_maxminddb2_in_pure_python_mode(where, geo_site, geo_rec, request):
    path = (request.getfixturevalue("pyz"),) if where == "pyz" else (L.REPO,)
    r = _ok(L.flowtop("--replay", geo_rec, "--once", "--json", "-n", "--geoip-db", L.CITY,
                      "--geoip-db", L.ASN, path=path, geo_site=geo_site))
    assert r.stderr == ""
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(recs) == 14
    seen = {}
    for rec in recs:
        for side in ("src", "dst"):
            seen[rec[side]] = (rec[side + "_country"], rec[side + "_city"], rec[side + "_asn"])
    for addr, want in L.GEO_EXPECT.items():
        assert seen.get(addr) == want, (addr, seen.get(addr))
    cn = seen["175.16.199.4"]
    assert cn[0] == "CN" and cn[2] == 4837
    assert "pwned" in cn[1] and not any(ord(c) < 32 or c in "\x7f\u202e" for c in cn[1]), cn


def test_geoip_provider_is_maxminddb2_pure_under_the_blocker(geo_site):
    code = ("import json, maxminddb\n"
            "from flowtop.enrich.geoip import GeoIP\n"
            "g = GeoIP.open(paths=[%r, %r], dirs=())\n"
            "r = g.lookup('81.2.69.3')\n"
            "print(json.dumps([maxminddb.__file__, getattr(maxminddb, '__version__', ''),\n"
            "                  g.available, g.pure, r.country, r.asn]))\n" % (L.CITY, L.ASN))
    got = json.loads(_ok(L.run(["-c", code], geo_site=geo_site)).stdout)
    where, version, available, pure, country, asn = got
    assert where.startswith(geo_site), where
    assert version.startswith("2."), version
    assert (available, pure, country, asn) == (True, True, "GB", 20712)


def test_maxminddb3_cannot_load_and_says_to_use_maxminddb2():
    """This Python's own maxminddb, when it is 3.x: one line with the fix."""
    probe = L.run(["-c", "import maxminddb, sys; sys.stdout.write(maxminddb.__version__)"],
                  blocked=False)
    if probe.returncode != 0 or not probe.stdout.startswith(("3.", "4.")):
        pytest.skip("this Python has no maxminddb 3.x of its own (%s)"
                    % (probe.stdout.strip() or "none"))
    r = _ok(L.flowtop("--replay", L.MIXED, "--once", "--json", "-n", "--geoip-db", L.CITY))
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "maxminddb<3" in lines[0] and "email" in lines[0], r.stderr
    assert len(r.stdout.splitlines()) == 14


# -- reverse DNS without the idna codec ----------------------------------------------------

def test_reverse_dns_without_idna_codec():
    code = ("import json\nfrom flowtop.enrich.dns import Resolver\n"
            "with Resolver() as r:\n"
            "    print(json.dumps(r.wait(['127.0.0.1', '::1'], 5)))\n")
    light = json.loads(_ok(L.run(["-c", code])).stdout)
    full = json.loads(_ok(L.run(["-c", code], blocked=False)).stdout)
    assert light == full
    if not any(full.values()):
        pytest.skip("no name for 127.0.0.1 or ::1 here (nothing to compare)")
