"""GeoIP lookups on the test databases, discovery, the null provider, and
``flowtop -u`` with an injected fetch (no network, no root).

The .mmdb fixtures come from scripts/make_test_mmdb.py.
"""

import gzip
import io
import os
import shutil
import sys
import tarfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from flowtop.enrich import geoip  # noqa: E402
from flowtop.geoupdate import command, conf as gconf, fetch as gfetch, install  # noqa: E402
from flowtop.enrich.geoip import GeoIP, GeoRecord, NullGeoIP, label  # noqa: E402
from flowtop.text import sanitize  # noqa: E402

maxminddb = pytest.importorskip("maxminddb")

FIX = os.path.join(REPO, "tests", "fixtures")
CITY = os.path.join(FIX, "geoip-city.mmdb")
CITY4 = os.path.join(FIX, "geoip-city-v4.mmdb")
COUNTRY = os.path.join(FIX, "geoip-country.mmdb")
ASN = os.path.join(FIX, "geoip-asn.mmdb")
ATTRIBUTION = "IP Geolocation by DB-IP (https://db-ip.com)"


def no_control(s):
    return s == sanitize(s, 10 ** 6)


@pytest.fixture(params=["auto", "pure"])
def geo(request):
    g = GeoIP.open([CITY, ASN], dirs=(), mode=request.param)
    yield g
    g.close()


# -- the fixtures themselves ---------------------------------------------------------

@pytest.mark.parametrize("path,dbtype", [(CITY, "GeoLite2-City"), (CITY4, "GeoLite2-City"),
                                         (COUNTRY, "GeoLite2-Country"), (ASN, "GeoLite2-ASN")])
def test_fixtures_open_in_pure_python_mode(path, dbtype):
    # maxminddb has no MODE_PURE: its pure-Python reader is MODE_MMAP (or MODE_FILE)
    for mode in (maxminddb.MODE_MMAP, maxminddb.MODE_FILE):
        r = maxminddb.open_database(path, mode)
        try:
            assert type(r).__module__ == "maxminddb.reader"
            assert r.metadata().database_type == dbtype
            assert r.get("81.2.69.160") is not None
        finally:
            r.close()


def test_pure_mode_maps_to_pure_reader():
    assert geoip._open_mode(maxminddb, "pure") in (maxminddb.MODE_MMAP, maxminddb.MODE_FILE)
    assert geoip._open_mode(maxminddb, "auto") == maxminddb.MODE_AUTO
    g = GeoIP.open([CITY], dirs=(), mode="pure")
    assert g.available and g.pure and "pure Python" in g.summary()
    g.close()


# -- lookups ---------------------------------------------------------------------------

def test_lookup_v4_city_and_asn(geo):
    assert geo.available and geo.reason == ""
    assert geo.databases == (CITY, ASN)
    r = geo.lookup("81.2.69.160")
    assert r == GeoRecord("GB", "United Kingdom", "London", 20712, "Andrews & Arnold Ltd", None)
    assert geo.lookup("89.160.20.1").city == "Link\u00f6ping"


def test_lookup_v6_and_mapped(geo):
    assert geo.lookup("2001:218::5") == GeoRecord("JP", "Japan", "Tokyo", 2516,
                                                   "KDDI CORPORATION", None)
    assert geo.lookup("2a02:cf40::1").country == "NO"
    # IPv4-mapped and NAT64 (64:ff9b::/96) addresses are their IPv4 address
    assert geo.lookup("::ffff:81.2.69.160").city == "London"
    assert geo.lookup("64:ff9b::5102:45a0").city == "London"


def test_lookup_missing_and_invalid(geo):
    assert geo.lookup("8.8.8.8") is None
    assert geo.lookup("2606:4700::1111") is None
    assert geo.lookup("not an address") is None
    assert geo.lookup("") is None
    assert geo.lookup(None) is None


def test_registered_country_when_no_located_country(geo):
    r = geo.lookup("67.43.156.7")
    assert (r.country, r.country_name, r.city, r.asn) == ("BT", "Bhutan", None, None)


def test_hostile_strings_are_sanitized(geo):
    r = geo.lookup("175.16.199.20")
    assert r.country == "CN"
    for s in (r.city, r.org):
        assert no_control(s)
        assert "\x1b" not in s and "\u202e" not in s and "\x07" not in s and "\x9b" not in s
    assert r.city.startswith("Evil?[2J") and len(r.city) <= 32
    assert r.org.startswith("Bad?[31mNet")


SPECIAL = [
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("172.31.255.254", "private"),
    ("192.168.1.1", "private"), ("fd12:3456::1", "private"), ("fc00::1", "private"),
    ("127.0.0.1", "loopback"), ("127.9.9.9", "loopback"), ("::1", "loopback"),
    ("169.254.10.1", "link-local"), ("fe80::1", "link-local"), ("fe80::1%eth0", "link-local"),
    ("100.64.0.1", "cgnat"), ("100.127.255.254", "cgnat"),
    ("224.0.0.251", "multicast"), ("239.1.1.1", "multicast"), ("ff02::fb", "multicast"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("255.255.255.255", "broadcast"), ("240.0.0.1", "reserved"), ("0.1.2.3", "reserved"),
    ("192.0.2.1", "reserved"), ("198.51.100.7", "reserved"), ("203.0.113.9", "reserved"),
    ("198.18.0.1", "reserved"), ("2001:db8::1", "reserved"), ("::ffff:10.0.0.1", "private"),
    ("::ffff:127.0.0.1", "loopback"), ("100::1", "reserved"),
]


@pytest.mark.parametrize("addr,lbl", SPECIAL)
def test_special_ranges_are_labelled_without_lookup(addr, lbl):
    assert label(addr) == lbl
    g = GeoIP.open([CITY, ASN], dirs=())
    r = g.lookup(addr)
    assert r == GeoRecord("--", lbl, None, None, None, lbl)
    assert g.lookups == 0
    g.close()


@pytest.mark.parametrize("addr", ["81.2.69.160", "8.8.8.8", "100.128.0.1", "172.32.0.1",
                                  "2001:218::1", "2a00:1450::1"])
def test_public_addresses_have_no_label(addr):
    assert label(addr) is None


def test_label_of_garbage():
    assert label("999.1.1.1") == "invalid"


def test_ipv6_in_an_ipv4_database_is_unknown_not_an_error():
    g = GeoIP.open([CITY4], dirs=(), mode="pure")
    assert g.lookup("81.2.69.160").city == "London"
    assert g.lookup("2001:218::5") is None
    g.close()


def test_cache_is_bounded_and_answers_repeats():
    g = GeoIP.open([CITY, ASN], dirs=(), cache_size=16)
    for i in range(100):
        g.lookup("81.2.69.%d" % i)
    assert len(g._cache) <= 16
    assert g.lookups == 100
    r1 = g.lookup("81.2.69.99")
    r2 = g.lookup("81.2.69.99")
    assert r1 is r2 and g.lookups == 100          # cached, no new database lookup
    g.lookup("8.8.4.4")
    g.lookup("8.8.4.4")
    assert g.lookups == 101                       # a miss is cached too
    g.close()
    assert g.databases == ()


def test_record_fields_are_what_the_views_read(geo):
    r = geo.lookup("81.2.69.160")
    for field in ("country", "country_name", "city", "asn", "org", "special"):
        assert hasattr(r, field)


# -- discovery ---------------------------------------------------------------------------

def _put(src, d, name, mtime=None):
    os.makedirs(d, exist_ok=True)
    dst = os.path.join(d, name)
    shutil.copyfile(src, dst)
    if mtime is not None:
        os.utime(dst, (mtime, mtime))
    return dst


def test_discovery_city_and_asn_from_dirs(tmp_path):
    d = str(tmp_path / "GeoIP")
    city = _put(CITY, d, "GeoLite2-City.mmdb")
    _put(COUNTRY, d, "GeoLite2-Country.mmdb")
    asn = _put(ASN, d, "GeoLite2-ASN.mmdb")
    g = GeoIP.open(dirs=[str(tmp_path / "missing"), d])
    assert g.databases == (city, asn)
    assert g.lookup("81.2.69.1").asn == 20712
    g.close()


def test_discovery_country_when_no_city(tmp_path):
    d = str(tmp_path)
    country = _put(COUNTRY, d, "dbip-country-lite-2024-05.mmdb")
    g = GeoIP.open(dirs=[d])
    assert g.databases == (country,)
    r = g.lookup("81.2.69.1")
    assert (r.country, r.country_name, r.city, r.asn) == ("GB", "United Kingdom", None, None)
    g.close()


def test_discovery_newest_dbip_by_date_in_name(tmp_path):
    d = str(tmp_path)
    now = 1.8e9
    # the names' dates win over the files' modification times
    _put(CITY, d, "dbip-city-lite-2023-12.mmdb", mtime=now)
    newest = _put(CITY, d, "dbip-city-lite-2024-03.mmdb", mtime=now - 1e7)
    _put(CITY, d, "dbip-city-lite-2024-01.mmdb", mtime=now - 2e7)
    assert geoip.candidates([d])[0] == (newest, "city")
    g = GeoIP.open(dirs=[d])
    assert g.databases == (newest,)
    g.close()


def test_discovery_undated_names_by_mtime(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    older = _put(CITY, a, "GeoLite2-City.mmdb", mtime=1.6e9)
    newer = _put(CITY, a, "dbip-city-lite-2024-05.mmdb", mtime=1.6e9)
    _put(CITY, b, "GeoLite2-City.mmdb")
    # dirs in order; inside one dir the newest first
    assert [p for p, _ in geoip.candidates([a, b])][:2] == [newer, older]
    g = GeoIP.open(dirs=[a, b])
    assert g.databases == (newer,)
    g.close()


def test_explicit_paths_come_first(tmp_path):
    d = str(tmp_path)
    _put(CITY, d, "GeoLite2-City.mmdb")
    mine = _put(CITY4, str(tmp_path / "mine"), "whatever.mmdb")
    g = GeoIP.open(paths=[mine], dirs=[d])
    assert g.databases[0] == mine
    g.close()


def test_explicit_country_is_not_replaced_by_a_found_city(tmp_path):
    d = str(tmp_path)
    _put(CITY, d, "GeoLite2-City.mmdb")
    asn = _put(ASN, d, "GeoLite2-ASN.mmdb")
    g = GeoIP.open(paths=[COUNTRY], dirs=[d])
    assert g.databases == (COUNTRY, asn)
    assert g.lookup("81.2.69.160").city is None
    g.close()


def test_kind_comes_from_metadata_not_name(tmp_path):
    d = str(tmp_path)
    # an ASN database under a city name, a city database under an ASN name
    fake_city = _put(ASN, d, "GeoLite2-City.mmdb")
    fake_asn = _put(CITY, d, "GeoLite2-ASN.mmdb")
    g = GeoIP.open(dirs=[d])
    assert set(g.databases) == {fake_city, fake_asn}
    assert g._asn.path == fake_city and g._place.path == fake_asn
    r = g.lookup("81.2.69.160")
    assert (r.city, r.asn) == ("London", 20712)
    g.close()


@pytest.mark.parametrize("dbtype,kind", [
    ("GeoLite2-City", "city"), ("GeoIP2-City", "city"), ("DBIP-City-Lite", "city"),
    ("GeoIP2-Enterprise", "city"), ("DBIP-Location-ISP (compat=Enterprise)", "city"),
    ("GeoLite2-Country", "country"), ("DBIP-Country-Lite", "country"),
    ("GeoLite2-ASN", "asn"), ("DBIP-ASN-Lite (compat=GeoLite2-ASN)", "asn"), ("GeoIP2-ISP", "asn"),
    ("GeoIP2-Anonymous-IP", None), ("", None), (None, None),
])
def test_kind_of(dbtype, kind):
    assert geoip.kind_of(dbtype) == kind


def test_bad_explicit_path_is_noted_and_dirs_still_used(tmp_path):
    d = str(tmp_path)
    city = _put(CITY, d, "GeoLite2-City.mmdb")
    junk = tmp_path / "junk.mmdb"
    junk.write_bytes(b"not a database")
    g = GeoIP.open(paths=[str(junk), str(tmp_path / "nope.mmdb")], dirs=[d])
    assert g.available and g.databases == (city,)
    assert len(g.notes) == 2 and all(no_control(n) for n in g.notes)
    g.close()


def test_corrupt_file_in_dirs_is_skipped(tmp_path):
    d = str(tmp_path)
    (tmp_path / "dbip-city-lite-2024-06.mmdb").write_bytes(b"\0" * 100)
    good = _put(CITY, d, "dbip-city-lite-2024-05.mmdb")
    g = GeoIP.open(dirs=[d])
    assert g.databases == (good,)
    g.close()


def test_no_database_found(tmp_path):
    g = GeoIP.open(dirs=[str(tmp_path)])
    assert isinstance(g, NullGeoIP) and not g.available
    assert "no GeoIP database found" in g.reason and "flowtop -u" in g.reason
    assert g.lookup("81.2.69.160") is None and g.databases == ()
    g.close()


def test_without_maxminddb_a_null_provider_with_a_reason(monkeypatch, tmp_path):
    _put(CITY, str(tmp_path), "GeoLite2-City.mmdb")
    monkeypatch.setitem(sys.modules, "maxminddb", None)     # import raises ImportError
    g = GeoIP.open(paths=[CITY], dirs=[str(tmp_path)])
    assert not g.available
    assert "maxminddb" in g.reason and "pip install maxminddb" in g.reason
    assert "\n" not in g.reason
    assert g.lookup("81.2.69.160") is None
    g.close()


def test_maxminddb_that_cannot_load_says_why(monkeypatch):
    # maxminddb 3 imports importlib.metadata -> email, absent from python3-light
    def broken():
        raise ModuleNotFoundError("No module named 'email'", name="email")
    monkeypatch.setattr(geoip, "_import_maxminddb", broken)
    g = GeoIP.open(paths=[CITY], dirs=())
    assert not g.available
    assert g.reason == ("maxminddb cannot load: this Python has no email module "
                        "(opkg install python3-email, or pip install 'maxminddb<3')")


def test_no_import_of_maxminddb_at_import_time():
    import subprocess
    code = ("import sys; import flowtop.enrich.geoip, flowtop.geoupdate.command; "
            "print('maxminddb' in sys.modules, 'urllib.request' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["False", "False"]


# -- flowtop -u ----------------------------------------------------------------------------

def gz(path):
    with open(path, "rb") as f:
        return gzip.compress(f.read())


class Server:
    """An injected fetch: url -> bytes or an HTTP status."""

    def __init__(self, routes):
        self.routes = dict(routes)
        self.asked = []

    def __call__(self, url, path):
        self.asked.append(url)
        body = self.routes.get(url, 404)
        if isinstance(body, int):
            raise gconf.FetchError("HTTP %d Not Found" % body, body)
        with open(path, "wb") as f:
            f.write(body)


def run_update(conf, dest, fetch, today=(2024, 5), **kw):
    lines = []
    rc = command.update(conf_text=conf, dest_dirs=[str(dest)], fetch=fetch,
                          say=lines.append, today=today, **kw)
    for ln in lines:
        assert no_control(ln) and "\n" not in ln and "Traceback" not in ln
    return rc, lines


def leftovers(d):
    return [n for n in os.listdir(str(d)) if n.startswith(".")]


def errors(lines):
    return [ln for ln in lines if ln.startswith("error:")]


CONF = """
# a test mirror
[test-city]
url = http://mirror.test/geoip-city.mmdb.gz
file = geoip-city.mmdb
"""

DBIP = """
[dbip-city-lite]
url = http://mirror.test/free/dbip-city-lite-{YYYY-MM}.mmdb.gz
previous_month = yes
attribution = IP Geolocation by DB-IP (https://db-ip.com)
"""


def test_install_is_atomic_and_opens(tmp_path):
    fetch = Server({"http://mirror.test/geoip-city.mmdb.gz": gz(CITY)})
    rc, lines = run_update(CONF, tmp_path, fetch)
    assert rc == 0, lines
    final = tmp_path / "geoip-city.mmdb"
    assert final.read_bytes() == open(CITY, "rb").read()
    assert oct(final.stat().st_mode & 0o777) == "0o644"
    assert leftovers(tmp_path) == []
    assert any("installed %s" % final in ln and "GeoLite2-City" in ln for ln in lines)
    g = GeoIP.open([str(final)], dirs=())
    assert g.lookup("81.2.69.160").city == "London"
    g.close()


def test_plain_mmdb_download_is_installed_too(tmp_path):
    conf = "[x]\nurl = http://mirror.test/asn.mmdb\n"
    rc, lines = run_update(conf, tmp_path, Server({"http://mirror.test/asn.mmdb":
                                                   open(ASN, "rb").read()}))
    assert rc == 0, lines
    assert (tmp_path / "asn.mmdb").read_bytes() == open(ASN, "rb").read()


@pytest.mark.parametrize("body", [
    b"<html>rate limited</html>",                       # not gzip, not an MMDB
    gzip.compress(b"garbage" * 1000),                   # gzip of garbage
    gz(CITY)[:300],                                     # truncated gzip
    gzip.compress(open(CITY, "rb").read()[:1500]),      # truncated database
    gzip.compress(b""),                                 # empty
])
def test_corrupt_download_keeps_the_old_file(tmp_path, body):
    old = tmp_path / "geoip-city.mmdb"
    shutil.copyfile(COUNTRY, str(old))
    before = old.read_bytes()
    rc, lines = run_update(CONF, tmp_path, Server({"http://mirror.test/geoip-city.mmdb.gz": body}))
    assert rc == 1
    assert len(errors(lines)) == 1 and errors(lines)[0].startswith("error: test-city: ")
    assert old.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_corrupt_download_without_maxminddb_is_refused_by_the_marker(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "maxminddb", None)
    rc, lines = run_update(CONF, tmp_path, Server({"http://mirror.test/geoip-city.mmdb.gz":
                                                   gzip.compress(b"x" * 5000)}))
    assert rc == 1 and "no metadata marker" in errors(lines)[0]
    rc, lines = run_update(CONF, tmp_path, Server({"http://mirror.test/geoip-city.mmdb.gz":
                                                   gz(CITY)}))
    assert rc == 0, lines
    assert any("GeoLite2-City" in ln for ln in lines)


def test_404_for_this_month_falls_back_to_the_previous(tmp_path):
    prev = "http://mirror.test/free/dbip-city-lite-2024-04.mmdb.gz"
    fetch = Server({prev: gz(CITY)})
    rc, lines = run_update(DBIP, tmp_path, fetch)
    assert rc == 0, lines
    assert fetch.asked == ["http://mirror.test/free/dbip-city-lite-2024-05.mmdb.gz", prev]
    assert (tmp_path / "dbip-city-lite-2024-04.mmdb").is_file()
    assert not (tmp_path / "dbip-city-lite-2024-05.mmdb").exists()
    assert any("not published yet (HTTP 404)" in ln for ln in lines)
    assert lines[-1] == ATTRIBUTION
    # and discovery picks it up
    g = GeoIP.open(dirs=[str(tmp_path)])
    assert g.lookup("2001:218::1").city == "Tokyo"
    g.close()


def test_january_falls_back_to_december(tmp_path):
    fetch = Server({"http://mirror.test/free/dbip-city-lite-2023-12.mmdb.gz": gz(CITY)})
    rc, lines = run_update(DBIP, tmp_path, fetch, today=(2024, 1))
    assert rc == 0, lines
    assert (tmp_path / "dbip-city-lite-2023-12.mmdb").is_file()


def test_404_for_both_months_is_one_error(tmp_path):
    rc, lines = run_update(DBIP, tmp_path, Server({}))
    assert rc == 1
    assert errors(lines) == ["error: dbip-city-lite: HTTP 404 Not Found"]
    assert ATTRIBUTION not in lines
    assert leftovers(tmp_path) == []


def test_other_http_errors_do_not_fall_back(tmp_path):
    fetch = Server({"http://mirror.test/free/dbip-city-lite-2024-05.mmdb.gz": 500})
    rc, lines = run_update(DBIP, tmp_path, fetch)
    assert rc == 1 and len(fetch.asked) == 1
    assert errors(lines) == ["error: dbip-city-lite: HTTP 500 Not Found"]


def test_this_month_installed_and_older_months_removed(tmp_path):
    (tmp_path / "dbip-city-lite-2024-03.mmdb").write_bytes(open(CITY, "rb").read())
    (tmp_path / "dbip-country-lite-2024-03.mmdb").write_bytes(b"other database")
    fetch = Server({"http://mirror.test/free/dbip-city-lite-2024-05.mmdb.gz": gz(CITY)})
    rc, lines = run_update(DBIP, tmp_path, fetch)
    assert rc == 0, lines
    assert sorted(os.listdir(str(tmp_path))) == ["dbip-city-lite-2024-05.mmdb",
                                                 "dbip-country-lite-2024-03.mmdb"]
    # a second run finds it up to date and fetches nothing
    fetch.asked.clear()
    rc, lines = run_update(DBIP, tmp_path, fetch)
    assert rc == 0 and fetch.asked == []
    assert any("up to date" in ln for ln in lines) and lines[-1] == ATTRIBUTION
    rc, lines = run_update(DBIP, tmp_path, fetch, force=True)
    assert rc == 0 and len(fetch.asked) == 1


def test_attribution_printed_once(tmp_path):
    conf = DBIP + DBIP.replace("city", "country")
    fetch = Server({"http://mirror.test/free/dbip-city-lite-2024-05.mmdb.gz": gz(CITY),
                    "http://mirror.test/free/dbip-country-lite-2024-05.mmdb.gz": gz(COUNTRY)})
    rc, lines = run_update(conf, tmp_path, fetch)
    assert rc == 0, lines
    assert lines.count(ATTRIBUTION) == 1 and lines[-1] == ATTRIBUTION


def test_one_failure_does_not_stop_the_others(tmp_path):
    conf = DBIP + DBIP.replace("city", "country")
    fetch = Server({"http://mirror.test/free/dbip-country-lite-2024-05.mmdb.gz": gz(COUNTRY)})
    rc, lines = run_update(conf, tmp_path, fetch)
    assert rc == 1 and len(errors(lines)) == 1
    assert (tmp_path / "dbip-country-lite-2024-05.mmdb").is_file()


def _maxmind_tar(edition, src):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in (("%s_20240507/COPYRIGHT.txt" % edition, b"(c) test"),
                           ("%s_20240507/%s.mmdb" % (edition, edition), open(src, "rb").read())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


MAXMIND = """
license_key = s3cr3tKEY
[GeoLite2-City]
edition = GeoLite2-City
"""


def test_maxmind_edition_with_licence_key(tmp_path):
    url = gconf.MAXMIND_URL.replace("{edition}", "GeoLite2-City").replace(
        "{license_key}", "s3cr3tKEY")
    assert url.startswith("https://download.maxmind.com/") and "edition_id=GeoLite2-City" in url
    fetch = Server({url: _maxmind_tar("GeoLite2-City", CITY)})
    rc, lines = run_update(MAXMIND, tmp_path, fetch)
    assert rc == 0, lines
    assert (tmp_path / "GeoLite2-City.mmdb").read_bytes() == open(CITY, "rb").read()
    assert not any("s3cr3tKEY" in ln for ln in lines)          # the key is never printed
    assert leftovers(tmp_path) == []


def test_maxmind_error_does_not_print_the_key(tmp_path):
    def fetch(url, path):
        raise gconf.FetchError("cannot reach %s" % url)
    rc, lines = run_update(MAXMIND, tmp_path, fetch)
    assert rc == 1 and not any("s3cr3tKEY" in ln for ln in lines)


def test_tar_without_tarfile_module_is_one_line(tmp_path, monkeypatch):
    url = gconf.MAXMIND_URL.replace("{edition}", "GeoLite2-City").replace(
        "{license_key}", "s3cr3tKEY")
    old = tmp_path / "GeoLite2-City.mmdb"
    shutil.copyfile(COUNTRY, str(old))
    monkeypatch.setitem(sys.modules, "tarfile", None)
    rc, lines = run_update(MAXMIND, tmp_path, Server({url: _maxmind_tar("GeoLite2-City", CITY)}))
    assert rc == 1 and "no tarfile module" in errors(lines)[0]
    assert old.read_bytes() == open(COUNTRY, "rb").read()
    assert leftovers(tmp_path) == []


def test_edition_without_key_and_without_geoipupdate(tmp_path):
    conf = "[GeoLite2-ASN]\nedition = GeoLite2-ASN\n"
    rc, lines = run_update(conf, tmp_path, Server({}), which=lambda n: None)
    assert rc == 1
    assert "license_key" in errors(lines)[0] and "geoipupdate" in errors(lines)[0]


def test_run_command(tmp_path):
    marker = tmp_path / "ran"
    conf = "[mine]\nrun = %s -c \"open('{dest}/ran', 'w').write('ok')\"\n" % sys.executable
    rc, lines = run_update(conf, tmp_path, Server({}))
    assert rc == 0, lines
    assert marker.read_text() == "ok"
    conf = "[mine]\nrun = %s -c \"import sys; print('boom'); sys.exit(3)\"\n" % sys.executable
    rc, lines = run_update(conf, tmp_path, Server({}))
    assert rc == 1 and errors(lines)[0].endswith("failed (exit 3): boom")


def test_no_urllib_and_no_tool_is_one_clear_line(tmp_path, monkeypatch):
    fetch = gfetch.make_fetcher(use_urllib=False, which=lambda n: None)
    rc, lines = run_update(DBIP + DBIP.replace("city", "country"), tmp_path, fetch)
    assert rc == 1
    assert len(lines) == 2 and lines[0].startswith("fetching ")
    assert lines[1].startswith("error: cannot download: this Python has no urllib")
    assert "uclient-fetch, wget, curl" in lines[1]
    assert leftovers(tmp_path) == []
    # the same when urllib cannot be imported (OpenWrt's python3-light)
    monkeypatch.setitem(sys.modules, "urllib.request", None)
    assert not gfetch._import_urllib("http://x/")
    rc, lines = run_update(CONF, tmp_path, gfetch.make_fetcher(which=lambda n: None))
    assert rc == 1 and "no urllib" in lines[-1]


def test_https_without_ssl_falls_back_to_a_tool(monkeypatch):
    monkeypatch.setitem(sys.modules, "ssl", None)
    assert not gfetch._import_urllib("https://x/")
    used = []
    monkeypatch.setattr(gfetch, "tool_fetch", lambda tool, url, path: used.append(tool))
    fetch = gfetch.make_fetcher(which=lambda n: "/usr/bin/" + n if n != "uclient-fetch"
                                   else None)
    fetch("https://x/y.mmdb.gz", "/nonexistent")
    assert used == ["wget"]


@pytest.mark.parametrize("stderr,status", [
    ("HTTP error 404\n", 404),                                             # uclient-fetch
    ("--2024-05-01--  http://x/\nHTTP request sent...\n2024-05-01 ERROR 404: Not Found.\n", 404),
    ("wget: server returned error: HTTP/1.1 404 Not Found\n", 404),         # BusyBox
    ("curl: (22) The requested URL returned error: 404\n", 404),
    ("curl: (22) The requested URL returned error: 503 Service Unavailable\n", 503),
    ("curl: (7) Failed to connect to 127.0.0.1 port 9: Connection refused\n", None),
])
def test_http_status_from_tool_messages(stderr, status):
    m = gfetch._STATUS.search(stderr)
    assert (int(m.group(1)) if m else None) == status


def test_messages_from_servers_are_sanitized(tmp_path):
    def fetch(url, path):
        raise gconf.FetchError("HTTP 500 \x1b[2J\u202eevil")
    rc, lines = run_update(CONF, tmp_path, fetch)
    assert rc == 1 and "\x1b" not in errors(lines)[0] and "\u202e" not in errors(lines)[0]


def test_no_writable_destination(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    lines = []
    rc = command.update(conf_text=CONF, dest_dirs=[str(blocker / "GeoIP"), str(blocker)],
                          fetch=Server({}), say=lines.append)
    assert rc == 1 and lines == ["error: cannot write to %s or %s (run as root)"
                                 % (blocker / "GeoIP", blocker)]


def test_destination_is_created_and_first_writable_wins(tmp_path):
    first = tmp_path / "var" / "lib" / "GeoIP"
    second = tmp_path / "usr"
    second.mkdir()
    assert install.pick_dest([str(first), str(second)]) == str(first)
    assert first.is_dir()


def test_malformed_conf_is_one_line(tmp_path):
    rc, lines = run_update("[a]\nurl http://x\n", tmp_path, Server({}))
    assert rc == 1 and lines == ["error: geoip.conf line 2: expected key = value"]
    rc, lines = run_update("# nothing\n", tmp_path, Server({}))
    assert rc == 1 and lines == ["error: no database to update in geoip.conf"]
    rc, lines = run_update("[a]\nfile = ../../etc/passwd\nurl = http://x/y\n", tmp_path,
                           Server({}))
    assert rc == 1 and "not a plain file name" in errors(lines)[0]


def test_conf_parsing_defaults_and_disabled():
    srcs = gconf.parse_conf("k = 1\nlicense_key = K\n[a]\nurl = http://x/?a=b\n"
                                "[b]\nenabled = no\nlicense_key = L\n")
    assert [s.name for s in srcs] == ["a", "b"]
    assert srcs[0].get("url") == "http://x/?a=b" and srcs[0].get("license_key") == "K"
    assert srcs[1].get("license_key") == "L" and not srcs[1].flag("enabled", True)


def test_shipped_conf_and_etc_override(tmp_path):
    text, where = gconf.read_conf(conf_paths=[str(tmp_path / "none.conf")])
    srcs = {s.name: s for s in gconf.parse_conf(text)}
    assert set(srcs) == {"dbip-city-lite", "dbip-country-lite"}
    for name in srcs:
        s = srcs[name]
        assert s.get("url") == ("https://download.db-ip.com/free/%s-{YYYY-MM}.mmdb.gz" % name)
        assert s.flag("previous_month") and s.get("attribution") == ATTRIBUTION
    mine = tmp_path / "geoip.conf"
    mine.write_text(CONF)
    assert gconf.read_conf(conf_paths=[str(mine)]) == (CONF, str(mine))
    lines = []
    rc = command.update(conf_paths=[str(mine)], dest_dirs=[str(tmp_path)], say=lines.append,
                          fetch=Server({"http://mirror.test/geoip-city.mmdb.gz": gz(CITY)}))
    assert rc == 0 and lines[0] == "using %s" % mine


def test_default_update_asks_for_the_current_month(tmp_path):
    import time
    t = time.gmtime()
    fetch = Server({})
    rc = command.update(dest_dirs=[str(tmp_path)], fetch=fetch, say=lambda s: None,
                          conf_paths=())
    assert rc == 1
    month = "%04d-%02d" % (t.tm_year, t.tm_mon)
    assert fetch.asked[0] == "https://download.db-ip.com/free/dbip-city-lite-%s.mmdb.gz" % month


def test_check_mmdb_without_maxminddb(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "maxminddb", None)
    assert install.check_mmdb(ASN) == "GeoLite2-ASN"
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"\0" * 1000)
    with pytest.raises(gconf.UpdateError):
        install.check_mmdb(str(bad))


def test_no_path_and_no_database_found_spares_the_maxminddb_import(monkeypatch, tmp_path):
    def refused():
        raise AssertionError("maxminddb imported with nothing to open")
    monkeypatch.setattr(geoip, "_import_maxminddb", refused)
    g = GeoIP.open(dirs=[str(tmp_path)])
    assert isinstance(g, NullGeoIP) and "no GeoIP database found" in g.reason
