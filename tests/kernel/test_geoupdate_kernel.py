"""``flowtop -u`` over real HTTP, inside a throwaway network namespace.

A stdlib http.server child in the namespace serves a gzipped test database
on 127.0.0.1; a Python child in the same namespace runs
``geoupdate.update`` with a conf whose ``url =`` points there, into a temp
destination.  Checked with urllib and with each download tool installed
(curl, wget), also as OpenWrt's python3-light would (no urllib): the database is installed atomically (opens, no temp files
left), a corrupt download leaves the old file and exits 1 with one error
line, a 404 for this month falls back to the previous one, and a closed
port is one line too.  Nothing leaves the namespace's loopback.
"""

import gzip
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.enrichutil import HTTP_SERVER
from tests.nsutil import Netns, have  # noqa: E402

maxminddb = pytest.importorskip("maxminddb")

_READY = os.geteuid() == 0 and have("ip")
pytestmark = [pytest.mark.kernel,
              pytest.mark.skipif(not _READY, reason="needs root and ip (network namespaces)")]

FIX = os.path.join(REPO, "tests", "fixtures")
CITY = os.path.join(FIX, "geoip-city.mmdb")
COUNTRY = os.path.join(FIX, "geoip-country.mmdb")
ATTRIBUTION = "IP Geolocation by DB-IP (https://db-ip.com)"

# argv: directory to serve.  Prints the port; serves until stdin closes.
SERVER = HTTP_SERVER

# argv: conf file, dest dir, fetcher (urllib, light or a tool name), YYYY, MM.
# "light" is OpenWrt's python3-light: no urllib, email, logging, unicodedata,
# concurrent.futures; the fetcher must find a download tool by itself.
UPDATE = r"""
import shutil, sys
conf, dest, how, y, m = sys.argv[1:6]
if how == "light":
    for mod in ("urllib", "urllib.request", "urllib.error", "email", "http.client",
                "logging", "unicodedata", "concurrent", "concurrent.futures"):
        sys.modules[mod] = None
from flowtop.geoupdate.command import update
from flowtop.geoupdate.fetch import make_fetcher
if how in ("urllib", "light"):
    fetch = make_fetcher()
else:
    fetch = make_fetcher(use_urllib=False, which=lambda n: shutil.which(n) if n == how else None)
sys.exit(update(conf_text=open(conf).read(), dest_dirs=[dest], fetch=fetch,
                today=(int(y), int(m))))
"""

TOOLS = [t for t in ("curl", "wget") if shutil.which(t)]
FETCHERS = ["urllib"] + TOOLS + (["light"] if TOOLS else [])


class Site:
    """A namespace with an HTTP server over ``root`` on its loopback."""

    def __init__(self, tmp_path):
        self.root = tmp_path / "www"
        self.root.mkdir()
        self.dest = tmp_path / "GeoIP"
        self.dest.mkdir()
        self.conf = tmp_path / "geoip.conf"
        self.ns = Netns("geoup", sysctls={}, ruleset=None)

    def __enter__(self):
        self.ns.__enter__()
        try:
            self.server = self.ns.popen(sys.executable, "-c", SERVER, str(self.root),
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)
            line = self.server.stdout.readline()
            if not line.strip():
                raise RuntimeError("HTTP server did not start")
            self.port = int(line)
        except BaseException:
            self.ns.close()
            raise
        return self

    def __exit__(self, *exc):
        self.ns.close()
        assert self.server.poll() is not None

    def serve(self, name, body):
        (self.root / name).write_bytes(body)

    def update(self, conf, how="urllib", month=(2024, 5)):
        self.conf.write_text(conf.replace("PORT", str(self.port)))
        env = dict(os.environ, PYTHONPATH=REPO)
        p = self.ns.run(sys.executable, "-c", UPDATE, str(self.conf), str(self.dest), how,
                        month[0], month[1], check=False, timeout=120, env=env)
        assert "Traceback" not in p.stderr and "Traceback" not in p.stdout, p.stderr
        return p.returncode, p.stdout.splitlines(), p.stderr

    def leftovers(self):
        return [n for n in os.listdir(str(self.dest)) if n.startswith(".")]


CONF = """
[test-city]
url = http://127.0.0.1:PORT/geoip-city.mmdb.gz
file = geoip-city.mmdb
"""


def _errors(lines):
    return [ln for ln in lines if ln.startswith("error:")]


def _opens(path, expect_city):
    r = maxminddb.open_database(str(path))
    try:
        return r.get("81.2.69.160")["city"]["names"]["en"] == expect_city
    finally:
        r.close()


@pytest.mark.parametrize("how", FETCHERS)
def test_install_then_corrupt_download_keeps_the_old_file(tmp_path, how):
    with Site(tmp_path) as site:
        site.serve("geoip-city.mmdb.gz", gzip.compress(open(CITY, "rb").read()))
        rc, lines, err = site.update(CONF, how)
        assert rc == 0, (lines, err)
        final = site.dest / "geoip-city.mmdb"
        assert final.read_bytes() == open(CITY, "rb").read()
        assert _opens(final, "London")
        assert site.leftovers() == []
        assert any(ln.startswith("test-city: installed %s" % final) for ln in lines)
        before = final.read_bytes()
        inode = final.stat().st_ino

        for body in (b"\x1f\x8b\x08garbage" * 100,                  # broken gzip
                     gzip.compress(b"<html>not a database</html>" * 50),
                     gzip.compress(open(CITY, "rb").read()[:1200])):  # truncated database
            site.serve("geoip-city.mmdb.gz", body)
            rc, lines, err = site.update(CONF, how)
            assert rc == 1
            assert len(_errors(lines)) == 1, lines
            assert _errors(lines)[0].startswith("error: test-city: ")
            assert final.read_bytes() == before and final.stat().st_ino == inode
            assert site.leftovers() == []

        # a good database again replaces the file by rename (a new inode)
        site.serve("geoip-city.mmdb.gz", gzip.compress(open(COUNTRY, "rb").read()))
        rc, lines, err = site.update(CONF, how)
        assert rc == 0, (lines, err)
        assert final.read_bytes() == open(COUNTRY, "rb").read()
        assert final.stat().st_ino != inode
        assert site.leftovers() == []


@pytest.mark.parametrize("how", FETCHERS)
def test_404_for_this_month_falls_back_to_the_previous(tmp_path, how):
    conf = """
[dbip-city-lite]
url = http://127.0.0.1:PORT/free/dbip-city-lite-{YYYY-MM}.mmdb.gz
previous_month = yes
attribution = IP Geolocation by DB-IP (https://db-ip.com)
"""
    with Site(tmp_path) as site:
        (site.root / "free").mkdir()
        site.serve("free/dbip-city-lite-2024-04.mmdb.gz", gzip.compress(open(CITY, "rb").read()))
        rc, lines, err = site.update(conf, how, month=(2024, 5))
        assert rc == 0, (lines, err)
        assert any("2024-05 is not published yet (HTTP 404)" in ln for ln in lines), lines
        assert _opens(site.dest / "dbip-city-lite-2024-04.mmdb", "London")
        assert lines[-1] == ATTRIBUTION
        assert site.leftovers() == []
        # neither month there: one error line
        rc, lines, err = site.update(conf, how, month=(2024, 8))
        assert rc == 1 and len(_errors(lines)) == 1 and "404" in _errors(lines)[0]
        assert ATTRIBUTION not in lines


@pytest.mark.parametrize("how", FETCHERS)
def test_no_server_is_one_line(tmp_path, how):
    with Site(tmp_path) as site:
        site.server.stdin.close()
        site.server.wait(10)
        rc, lines, err = site.update(CONF, how)
        assert rc == 1
        assert len(_errors(lines)) == 1, lines
        assert site.leftovers() == []
        assert os.listdir(str(site.dest)) == []
