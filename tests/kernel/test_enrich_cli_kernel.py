"""Who and where, end to end through flowtop's own outputs.

Every test makes and removes its own ``ftest-en*`` namespaces and, for the
curses view, its own tmux server (``tmux -L <unique>``, 160x40), and runs
``python3 -m flowtop`` from this checkout inside them: ``--once`` text,
``--once --json``, ``--once --csv``, the aggregate views, and the live view
read back with ``capture-pane``.  Nothing here calls flowtop's modules.

- processes: TCP and UDP servers and clients as separate processes over
  IPv4 and IPv6 name both ends (pid = the opener, peer_pid = the server);
  a program whose file name holds ESC [2J, a newline and U+202E is shown
  sanitized everywhere;
- reverse DNS from tests/dnsutil.py's server on the namespace's 127.0.0.1:53
  (its own resolv.conf through /etc/netns/NAME/): a good name is shown, a
  hostile one never is, and a 5 s answer neither freezes the screen nor
  holds up ``--once``;
- GeoIP with the fixture databases, in every output, the hostile city
  sanitized; ``flowtop -u`` as a command, fed a test geoip.conf and a
  destination inside a private mount namespace (the CLI has no option for
  either);
- interfaces of forwarded flows on a router between two namespaces
  (tests/kernel/test_iface_kernel.py's topology), ``--view iface`` totals
  and the ``--in-iface``/``--out-iface`` filters;
- per-process and per-country totals equal the sums of their flows.

The host namespace, its /etc and /var/lib are never changed.
"""

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests import dnsutil  # noqa: E402
from tests import enrichutil as eu  # noqa: E402
from tests.enrichutil import AF_INET, AF_INET6, HOSTILE_FILE, HOSTILE_SHOWN  # noqa: E402
from tests.nsutil import Netns, kernel_ready  # noqa: E402

_READY, _WHY = kernel_ready("tmux")
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]

PROCESS_W = 14           # the PROCESS column's width (views/rows.py)
GEO_W = 14               # the GEO column's width


def _dest(family, host, port):
    return "[%s]:%d" % (host, port) if family == AF_INET6 else "%s:%d" % (host, port)


def _one(records, **want):
    hits = [r for r in records if all(r.get(k) == v for k, v in want.items())]
    assert len(hits) == 1, (want, records)
    return hits[0]


def _need_maxminddb():
    pytest.importorskip("maxminddb", reason="GeoIP needs the maxminddb module")


def _left(names):
    """Which of these namespaces still exist."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [n for n in names if n in out.split()]


# -- 1. processes ---------------------------------------------------------------------------

# (name, proto, family, address, server port)
PAIRS = (
    ("tcp4", "tcp", AF_INET, "127.0.0.1", 5001),
    ("tcp6", "tcp", AF_INET6, "::1", 5002),
    ("udp4", "udp", AF_INET, "127.0.0.1", 5353),
    ("udp6", "udp", AF_INET6, "::1", 5354),
)


def test_processes_name_both_ends_in_every_output(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    evil = bindir / HOSTILE_FILE
    shutil.copy(sys.executable, str(evil))
    with Netns("enproc") as ns:
        started = {}
        for name, proto, family, host, port in PAIRS:
            srv = eu.server(ns, proto, family, host, port)
            cli = eu.client(ns, [(proto, family, host, port, 100)])
            started[name] = dict(proto=proto, family=family, host=host, port=port, srv=srv,
                                 cli=cli, cport=cli["ports"][0],
                                 ccomm=eu.proc_comm(cli["pid"]),
                                 scomm=eu.proc_comm(srv["pid"]))
        # a program whose file name is hostile, holding a connection to tcp4's server
        bad = eu.client(ns, [("tcp", AF_INET, "127.0.0.1", 5001, 10)], python=str(evil))
        bad_port = bad["ports"][0]
        tcp4_server = started["tcp4"]["srv"]["pid"]
        time.sleep(0.2)

        # --once --json: both ends, by pid and name
        recs = eu.json_records(ns, "-n", "-G")
        assert len(recs) == len(PAIRS) + 1, recs
        for name, s in started.items():
            r = _one(recs, proto=s["proto"], sport=s["cport"], dport=s["port"])
            assert r["family"] == ("ipv6" if s["family"] == AF_INET6 else "ipv4"), (name, r)
            assert (r["pid"], r["process"], r["user"]) == (s["cli"]["pid"], s["ccomm"], "root"), \
                (name, r)
            assert (r["peer_pid"], r["peer_process"]) == (s["srv"]["pid"], s["scomm"]), (name, r)
        r = _one(recs, proto="tcp", sport=bad_port, dport=5001)
        assert r["pid"] == bad["pid"] and r["peer_pid"] == tcp4_server, r
        assert r["process"] == HOSTILE_SHOWN, r
        for rec in recs:
            for text in eu.strings_of(rec):
                eu.assert_clean(text, "a JSON string")

        # --once --csv: the same columns
        rows = eu.csv_records(ns, "-n", "-G")
        assert len(rows) == len(recs), rows
        for row in rows:
            eu.assert_clean(list(row.values()), "a CSV cell")
        (row,) = [w for w in rows if w["sport"] == str(bad_port)]
        assert (row["pid"], row["process"], row["peer_pid"]) == (
            str(bad["pid"]), HOSTILE_SHOWN, str(tcp4_server)), row
        s = started["udp6"]
        (row,) = [w for w in rows if w["sport"] == str(s["cport"]) and w["proto"] == "udp"]
        assert (row["pid"], row["process"], row["peer_pid"], row["peer_process"]) == (
            str(s["cli"]["pid"]), s["ccomm"], str(s["srv"]["pid"]), s["scomm"]), row

        # --once text: the opener's name/pid in PROCESS, every row intact
        out, rows = eu.text_table(ns, "-n", "-G")
        assert len(rows) == len(recs), out
        for line in out.splitlines():
            eu.assert_clean(line, "a line of --once text")
        seen = {(r["DESTINATION"], r["PROCESS"]) for r in rows}
        want = {(_dest(s["family"], s["host"], s["port"]),
                 eu.fit("%s/%d" % (s["ccomm"], s["cli"]["pid"]), PROCESS_W))
                for s in started.values()}
        want_bad = ("127.0.0.1:5001", eu.fit("%s/%d" % (HOSTILE_SHOWN, bad["pid"]), PROCESS_W))
        assert want | {want_bad} == seen, out
        assert "?[2Je" in out                # the escape shown as text (the pid kept whole)

        # the live view, then the details pane of three flows
        with eu.LiveView(ns, tmp_path / "pane", "enproc", "--loopback", "-n", "-G") as lv:
            lines = lv.wait(lambda ls: {(r["DESTINATION"], r["PROCESS"])
                                        for r in lv.rows(ls)} == want | {want_bad}, 15,
                            "every flow with its process")
            assert "shown %d" % len(recs) in lines[1], lines[1]
            plain = eu.assert_screen_clean(lv, "the live view")
            assert "?[2Je" in "\n".join(plain)
            for name in ("tcp4", "udp6"):
                s = started[name]
                d = eu.detail_fields(lv.details_of(":%d" % s["cport"]))
                assert d.get("process") == "%s/%d user root" % (s["ccomm"], s["cli"]["pid"]), d
                assert d.get("peer") == "%s/%d user root" % (s["scomm"], s["srv"]["pid"]), d
            screen = lv.details_of(":%d" % bad_port)
            eu.assert_clean(screen, "the details pane")
            d = eu.detail_fields(screen)
            assert d.get("process") == "%s/%d user root" % (HOSTILE_SHOWN, bad["pid"]), d
            assert d.get("peer") == "%s/%d user root" % (started["tcp4"]["scomm"],
                                                       tcp4_server), d
            assert lv.quit() == 0, lv.stderr()
    assert not _left([ns.name])


# -- 2. reverse DNS -------------------------------------------------------------------------

GOOD, HOSTILE, BIDI, SLOW = "10.9.0.2", "10.9.0.3", "10.9.0.6", "10.9.0.4"
DNS_ANSWERS = {
    GOOD: "good.example.test",
    HOSTILE: [b"evil\x1b[2J", b"line\nbreak", b"example", b"test"],
    BIDI: ["\u202etset", "example"],
    SLOW: "slow.example.test",
}
SLOW_DELAY = 5.0
# /etc/hosts (nsswitch "files dns"): glibc hands these names over unchecked,
# so only flowtop's own hostname filter stands between them and the screen.
F_ESC, F_BIDI, F_PIPE, F_GOOD = "10.9.0.7", "10.9.0.8", "10.9.0.10", "10.9.0.9"
HOSTS = dnsutil.HOSTS + (
    "%s esc\x1b[2Jname.example\n%s \u202egnp.example\n%s with|pipe.example\n"
    "%s files.example.test\n" % (F_ESC, F_BIDI, F_PIPE, F_GOOD))
DNS_PORTS = {GOOD: 1002, HOSTILE: 1003, SLOW: 1004, BIDI: 1006,
             F_ESC: 1007, F_BIDI: 1008, F_GOOD: 1009, F_PIPE: 1010}
REFUSED = (HOSTILE, BIDI, F_ESC, F_BIDI, F_PIPE)        # shown as addresses
HOSTILE_WORDS = ("evil", "break", "tset", "2Jname", "gnp.ex", "pipe")
# the resolver waits long enough for the slow answer to arrive
SLOW_RESOLV = "nameserver 127.0.0.1\noptions timeout:10 attempts:1\n"


def _insert_tcp(ns, src, dst, sport, dport):
    ns.run("conntrack", "-I", "-p", "tcp", "-s", src, "-d", dst, "--sport", sport,
           "--dport", dport, "--state", "ESTABLISHED", "-t", "500")


def test_reverse_dns_names_never_hostile_never_waited_for(tmp_path):
    ns = Netns("endns", sysctls={"net.netfilter.nf_conntrack_acct": 1,
                                 "net.netfilter.nf_conntrack_timestamp": 1})
    with dnsutil.NetnsEtc(ns.name, resolv=SLOW_RESOLV, hosts=HOSTS) as etc, ns:
        dnsutil.start_in(ns, DNS_ANSWERS, {SLOW: SLOW_DELAY})
        for addr, port in DNS_PORTS.items():
            _insert_tcp(ns, "10.9.0.1", addr, 40000, port)

        # --once --json: names that come within the bounded wait, and no longer
        t0 = time.monotonic()
        recs = eu.json_records(ns, "-G")
        took = time.monotonic() - t0
        print("\n--once --json with a 5 s PTR pending took %.2f s" % took)
        assert took < 3.5, "--once --json took %.1fs" % took
        ours = {r["dst"]: r for r in recs if r["dport"] in DNS_PORTS.values()}
        assert set(ours) == set(DNS_PORTS), recs
        assert ours[GOOD]["dst_host"] == "good.example.test"
        assert ours[F_GOOD]["dst_host"] == "files.example.test"
        for addr in REFUSED:
            assert ours[addr]["dst_host"] is None, ours[addr]
        assert ours[SLOW]["dst_host"] is None               # 5 s: still on its way
        for rec in recs:
            for text in eu.strings_of(rec):
                eu.assert_clean(text, "a JSON string")

        # --once text likewise
        out, rows = eu.text_table(ns, "-G")
        dests = {r["DESTINATION"] for r in rows}
        assert {"good.example.test:1002", "files.example.test:1009"} | {
            "%s:%d" % (a, DNS_PORTS[a]) for a in REFUSED} <= dests, out
        for word in HOSTILE_WORDS:
            assert word not in out, (word, out)

        # totals per remote host: by name when there is a good one, else the address
        groups = eu.json_records(ns, "--view", "host", "-G")
        keys = {g["key"] for g in groups}
        assert {"good.example.test", "files.example.test", SLOW} | set(REFUSED) <= keys, keys
        for g in groups:
            eu.assert_clean(g["key"], "a host key")

        # the live view, refreshing every second while the slow answer is pending
        with eu.LiveView(ns, tmp_path / "pane", "endns", "-t", "1", "-G") as lv:
            def ours_shown(ls):
                return {r["DESTINATION"] for r in lv.rows(ls)}
            lines = lv.wait(lambda ls: {"good.example.test:1002", "files.example.test:1009"}
                            <= ours_shown(ls), 10, "the good names")
            started = time.monotonic()
            assert "10.9.0.4:1004" in ours_shown(lines), lines   # pending: the address
            changes, last, prev = [], None, None
            slow_seen = None
            while time.monotonic() - started < SLOW_DELAY + 4:
                now = time.monotonic()
                ls = lv.tm.capture()
                body = "\n".join(ls[:-1])
                for word in HOSTILE_WORDS:
                    assert word not in body, (word, body)
                shown = ours_shown(ls)
                assert {"%s:%d" % (a, DNS_PORTS[a]) for a in REFUSED} <= shown, body
                if body != prev:
                    if prev is not None:
                        changes.append(now - last)
                    last, prev = now, body
                if slow_seen is None and "slow.example.test:1004" in shown:
                    slow_seen = now - started
                    if len(changes) >= 4 and now - started > 2:
                        break
                time.sleep(0.05)
            print("\nscreen changes every %s s; slow name after %.1f s"
                  % (" ".join("%.2f" % c for c in changes), slow_seen or -1))
            assert changes, "the screen never changed"
            assert max(changes) <= 2.5, "the screen stood still for %.1fs: %r" % (
                max(changes), changes)
            assert len(changes) >= 3, changes
            # the slow name shows once it has come (at ~5 s after the first ask)
            assert slow_seen is not None, "slow.example.test never appeared"
            eu.assert_screen_clean(lv, "the live view")
            assert lv.quit() == 0, lv.stderr()
    assert not os.path.exists(etc.dir)
    assert not _left([ns.name])


# -- 3. GeoIP ---------------------------------------------------------------------------------

HOSTILE_CITY_SHOWN = "Evil?[2J?]0;pwned?Town?gnp.exe"
HOSTILE_ORG_SHOWN = "Bad?[31mNet? Ltd?"
# (src, dst, dport) -> (country, country name, city, asn, org)
GEO_FLOWS = {
    ("10.9.0.1", "81.2.69.5", 4431): ("GB", "United Kingdom", "London", 20712,
                                      "Andrews & Arnold Ltd"),
    ("10.9.0.1", "175.16.199.9", 4432): ("CN", "China", HOSTILE_CITY_SHOWN, 4837,
                                         HOSTILE_ORG_SHOWN),
    ("2001:db8::1", "2001:218::7", 4433): ("JP", "Japan", "Tokyo", 2516, "KDDI CORPORATION"),
}


def test_geoip_country_city_and_as_in_every_output(tmp_path):
    _need_maxminddb()
    with Netns("engeo") as ns:
        for (src, dst, dport) in GEO_FLOWS:
            _insert_tcp(ns, src, dst, 40000, dport)

        recs = eu.json_records(ns, "-n", *eu.GEO_ARGS)
        for (src, dst, dport), (cc, _cn, city, asn, _org) in GEO_FLOWS.items():
            r = _one(recs, dst=dst, dport=dport)
            assert (r["dst_country"], r["dst_city"], r["dst_asn"]) == (cc, city, asn), r
            assert r["src_country"] == "--" and r["src_city"] is None, r    # private/doc range
        for rec in recs:
            for text in eu.strings_of(rec):
                eu.assert_clean(text, "a JSON string")

        rows = eu.csv_records(ns, "-n", *eu.GEO_ARGS)
        for (src, dst, dport), (cc, _cn, city, asn, _org) in GEO_FLOWS.items():
            (r,) = [r for r in rows if r["dst"] == dst and r["dport"] == str(dport)]
            assert (r["dst_country"], r["dst_city"], r["dst_asn"]) == (cc, city, str(asn)), r
            for v in r.values():
                eu.assert_clean(v or "", "a CSV cell")

        out, rows = eu.text_table(ns, "-n", *eu.GEO_ARGS)
        for line in out.splitlines():
            eu.assert_clean(line, "a line of --once text")
        geo = {r["DESTINATION"]: r["GEO"] for r in rows}
        want = {_dest(AF_INET6 if ":" in dst else AF_INET, dst, dport): eu.fit(
            "%s %s" % (cc, city), GEO_W) for (_s, dst, dport), (cc, _n, city, _a, _o)
            in GEO_FLOWS.items()}
        assert {k: geo.get(k) for k in want} == want, out

        with eu.LiveView(ns, tmp_path / "pane", "engeo", "-n", *eu.GEO_ARGS) as lv:
            lv.wait(lambda ls: want.items() <= {r["DESTINATION"]: r["GEO"]
                                                for r in lv.rows(ls)}.items(), 15,
                    "the GEO column")
            eu.assert_screen_clean(lv, "the live view")
            for (src, dst, dport), (cc, cn, city, asn, org) in GEO_FLOWS.items():
                screen = lv.details_of(":%d" % dport)
                eu.assert_clean(screen, "the details pane")
                d = eu.detail_fields(screen)
                assert d.get("destination") == "%s  %s %s %s AS%d %s" % (
                    dst, cc, cn, city, asn, org), d
            assert lv.quit() == 0, lv.stderr()
    assert not _left([ns.name])


def test_update_command_installs_what_flowtop_then_uses(tmp_path):
    """``flowtop -u`` reads only /etc/flowtop/geoip.conf and installs only into
    /var/lib/GeoIP (or /usr/share/GeoIP): no option or variable points it
    elsewhere.  So both are redirected inside the private mount namespace
    that ``ip netns exec`` makes (an overlay on /etc, a bind mount on
    /var/lib); the host's are never written."""
    _need_maxminddb()
    with open("/proc/filesystems") as f:
        if "overlay" not in f.read().split():
            pytest.skip("needs overlayfs: flowtop -u has no option for its conf or destination")
    www, varlib, scratch = tmp_path / "www", tmp_path / "varlib", tmp_path / "scratch"
    for d in (www, varlib, scratch):
        d.mkdir()
    city = open(eu.CITY_DB, "rb").read()
    (www / "test.mmdb.gz").write_bytes(gzip.compress(city))
    host_before = {p: os.path.exists(p) for p in ("/etc/flowtop", "/var/lib/GeoIP")}
    with Netns("engeoup") as ns:
        port = eu.start(ns, eu.HTTP_SERVER, str(www))
        _insert_tcp(ns, "10.9.0.1", "81.2.69.5", 40000, 443)
        conf = ("# test\n[GeoLite2-City]\nurl = http://127.0.0.1:%d/test.mmdb.gz\n"
                "file = GeoLite2-City.mmdb\n"
                "[missing]\nurl = http://127.0.0.1:%d/missing.mmdb.gz\n" % (port, port))
        script = eu.update_script(conf, varlib, scratch, then=[["--once", "--json", "-n"]])
        r = ns.run("sh", "-c", script, check=False, timeout=60)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr
    parts = re.split(r"^EXIT (\d+)$", r.stdout, flags=re.M)
    update_out, update_rc, once_out, once_rc = parts[0], parts[1], parts[2], parts[3]
    # one database installed, one missing (HTTP 404): exit 1, one line about it
    assert update_rc == "1", (r.stdout, r.stderr)
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("flowtop:")]
    assert len(errors) == 1 and errors[0].startswith("flowtop: missing: "), r.stderr
    assert "404" in errors[0], errors
    lines = update_out.strip().splitlines()
    assert lines[0] == "using /etc/flowtop/geoip.conf", lines
    assert "fetching http://127.0.0.1:%d/test.mmdb.gz" % port in lines, lines
    assert any(ln.startswith("GeoLite2-City: installed /var/lib/GeoIP/GeoLite2-City.mmdb")
               for ln in lines), lines
    installed = varlib / "GeoIP" / "GeoLite2-City.mmdb"
    assert installed.read_bytes() == city
    assert [n for n in os.listdir(str(varlib / "GeoIP")) if n.startswith(".")] == []
    # flowtop finds the database it installed (default directories) and uses it
    assert once_rc == "0", r.stderr
    recs = [json.loads(ln) for ln in once_out.splitlines() if ln.strip()]
    rec = _one(recs, dst="81.2.69.5")
    assert (rec["dst_country"], rec["dst_city"]) == ("GB", "London"), rec
    # the host is as it was; the scratch tmpfs went with the mount namespace
    assert {p: os.path.exists(p) for p in host_before} == host_before
    assert os.listdir(str(scratch)) == []


# -- 4. interfaces ------------------------------------------------------------------------------

def test_forwarded_flows_show_their_interfaces_and_totals(tmp_path):
    from tests.kernel.test_iface_kernel import CLIENT4, CLIENT6, SERVER4, SERVER6
    with eu.router_topology("enif") as t:
        names = [t.client.name, t.router.name, t.server.name]
        for proto, family, host, port in (("tcp", AF_INET, SERVER4, 5201),
                                          ("tcp", AF_INET6, SERVER6, 5201),
                                          ("udp", AF_INET, SERVER4, 5202)):
            eu.server(t.server, proto, family, host, port)
        eu.client(t.client, [("tcp", AF_INET, SERVER4, 5201, 3000),
                             ("tcp", AF_INET6, SERVER6, 5201, 5000),
                             ("udp", AF_INET, SERVER4, 5202, 700)])
        # one flow the other way: the server side opens it
        eu.server(t.client, "tcp", AF_INET, CLIENT4, 5301)
        eu.client(t.server, [("tcp", AF_INET, CLIENT4, 5301, 2000)])
        time.sleep(0.3)                     # the last ACKs cross the router
        r = t.router
        ends = {CLIENT4, CLIENT6, SERVER4, SERVER6}

        recs = eu.json_records(r, "-n", "-G")
        fwd = [x for x in recs if x["src"] in ends and x["dst"] in ends]
        assert len(fwd) == 4 and len(recs) == 4, recs
        for x in fwd:
            out_ward = x["src"] in (CLIENT4, CLIENT6)
            assert (x["process"], x["pid"], x["peer_pid"]) == ("forwarded", None, None), x
            assert (x["in_iface"], x["out_iface"]) == (("rc0", "rs0") if out_ward
                                                       else ("rs0", "rc0")), x
            assert x["bytes_orig"] > 0 and x["bytes_reply"] > 0, x

        out, rows = eu.text_table(r, "-n", "-G")
        assert len(rows) == 4, out
        for row in rows:
            assert row["PROCESS"] == "forwarded", out
            assert (row["IN"], row["OUT"]) in (("rc0", "rs0"), ("rs0", "rc0")), out
        assert sorted((row["IN"], row["OUT"]) for row in rows) == sorted(
            (x["in_iface"], x["out_iface"]) for x in fwd)

        with eu.LiveView(r, tmp_path / "pane", "enif", "--loopback", "-n", "-G") as lv:
            lv.wait(lambda ls: sorted((w["PROCESS"], w["IN"], w["OUT"]) for w in lv.rows(ls))
                    == sorted(("forwarded", x["in_iface"], x["out_iface"]) for x in fwd), 15,
                    "forwarded flows with IN/OUT")
            for needle, ifaces in ((":5202", "in rc0, out rs0"), (":5301", "in rs0, out rc0")):
                d = eu.detail_fields(lv.details_of(needle))
                assert d.get("process") == "forwarded" and "peer" not in d, d
                assert d.get("interfaces") == ifaces, d
            assert lv.quit() == 0, lv.stderr()

        # per interface: what arrives on the input one is received there,
        # what leaves through the output one is sent
        want = {}
        for side, outbound in (("in_iface", False), ("out_iface", True)):
            for k, v in eu.totals(fwd, lambda x: x[side], lambda x: outbound).items():
                old = want.get(k, (0, 0, 0, 0, 0))
                want[k] = tuple(a + b for a, b in zip(old, v))
        assert set(want) == {"rc0", "rs0"}
        text = eu.run(r, "--view", "iface", "--once", "--units", "raw", "-n", "-G").stdout
        assert eu.group_table(text) == want, text
        groups = eu.json_records(r, "--view", "iface", "-n", "-G")
        assert eu.group_records(groups) == want, groups
        # per process: everything here is "forwarded", sent toward the far end
        groups = eu.json_records(r, "--view", "process", "-n", "-G")
        assert eu.group_records(groups) == eu.totals(fwd, lambda x: "forwarded"), groups

        # filters, nftop-style
        def kept(*args):
            return sorted((w["IN"], w["OUT"]) for w in eu.text_table(r, "-n", "-G", *args)[1])
        assert kept("--in-iface", "rc+") == [("rc0", "rs0")] * 3
        assert kept("--in-iface", "rs0") == [("rs0", "rc0")]
        assert kept("--out-iface", "rc+") == [("rs0", "rc0")]
        assert kept("--in-iface", "rc0", "--out-iface", "rs+") == [("rc0", "rs0")] * 3
        assert kept("--in-iface", "eth+") == []
        text = eu.run(r, "--view", "iface", "--once", "--units", "raw", "-n", "-G",
                      "--in-iface", "rs+").stdout
        back = [x for x in fwd if x["in_iface"] == "rs0"]
        assert eu.group_table(text) == {
            "rs0": (1, back[0]["bytes_reply"], back[0]["bytes_orig"],
                    back[0]["packets_reply"], back[0]["packets_orig"]),
            "rc0": (1, back[0]["bytes_orig"], back[0]["bytes_reply"],
                    back[0]["packets_orig"], back[0]["packets_reply"])}, text
    assert not _left(names)


def test_interface_filters_apply_to_json_and_csv():
    from tests.kernel.test_iface_kernel import SERVER4
    with eu.router_topology("enjf") as t:
        names = [t.client.name, t.router.name, t.server.name]
        eu.server(t.server, "tcp", AF_INET, SERVER4, 5201)
        eu.client(t.client, [("tcp", AF_INET, SERVER4, 5201, 100)])
        time.sleep(0.2)
        try:
            (rec,) = eu.json_records(t.router, "-n", "-G")
            assert (rec["in_iface"], rec["out_iface"]) == ("rc0", "rs0"), rec
            # the text view drops it: the filter works there
            assert eu.text_table(t.router, "-n", "-G", "--in-iface", "rs+")[1] == []
            for args in (("-n",), ()):          # the streaming path and the table path
                recs = eu.json_records(t.router, "-G", "--in-iface", "rs+", *args)
                assert recs == [], ("--once --json --in-iface rs+ %s" % " ".join(args), recs)
            rows = eu.csv_records(t.router, "-n", "-G", "--out-iface", "rc0")
            assert rows == [], rows
            groups = eu.json_records(t.router, "--view", "iface", "-n", "-G",
                                     "--in-iface", "rs+")
            assert groups == [], groups
        finally:
            t.close()
            assert not _left(names)


# -- 5. aggregates ------------------------------------------------------------------------------

def test_process_totals_are_the_sums_of_their_flows(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    evil = bindir / HOSTILE_FILE
    shutil.copy(sys.executable, str(evil))
    with Netns("enagp") as ns:
        for proto, family, host, port in (("tcp", AF_INET, "127.0.0.1", 5001),
                                          ("tcp", AF_INET6, "::1", 5002),
                                          ("udp", AF_INET, "127.0.0.1", 5353)):
            eu.server(ns, proto, family, host, port)
        a = eu.client(ns, [("tcp", AF_INET, "127.0.0.1", 5001, 3000),
                           ("tcp", AF_INET6, "::1", 5002, 5000),
                           ("udp", AF_INET, "127.0.0.1", 5353, 700)])
        b = eu.client(ns, [("tcp", AF_INET, "127.0.0.1", 5001, 1200)])
        e = eu.client(ns, [("tcp", AF_INET6, "::1", 5002, 40),
                           ("udp", AF_INET, "127.0.0.1", 5353, 60)], python=str(evil))
        time.sleep(0.3)
        recs = eu.json_records(ns, "-n", "-G")
        assert {r["pid"] for r in recs} == {a["pid"], b["pid"], e["pid"]}, recs
        # every flow was opened here: its original direction is what was sent
        want = eu.totals(recs, lambda r: "%s/%d" % (r["process"], r["pid"]))
        comm = eu.proc_comm(a["pid"])
        assert {k: v[0] for k, v in want.items()} == {"%s/%d" % (comm, a["pid"]): 3,
                                                      "%s/%d" % (comm, b["pid"]): 1,
                                                      "%s/%d" % (HOSTILE_SHOWN, e["pid"]): 2}
        text = eu.run(ns, "--view", "process", "--once", "--units", "raw", "-n", "-G").stdout
        eu.assert_clean(text.splitlines(), "--view process text")
        assert eu.group_table(text) == want, text
        groups = eu.json_records(ns, "--view", "process", "-n", "-G")
        assert all(g["view"] == "process" for g in groups), groups
        assert eu.group_records(groups) == want, groups

        # the live view's Processes tab (Tab) shows the same totals
        with eu.LiveView(ns, tmp_path / "pane", "enagp", "--loopback", "--units", "raw",
                         "-n", "-G") as lv:
            lv.wait(lambda ls: len(lv.rows(ls)) == len(recs), 15, "every flow")
            lv.tm.send("Tab")
            lv.wait(lambda ls: "[Processes]" in ls[1] and eu.group_table("\n".join(ls)) == want,
                    10, "the Processes tab with the totals %r" % want)
            eu.assert_screen_clean(lv, "the Processes tab")
            lv.tm.send("BTab")
            lv.wait(lambda ls: "[Flows]" in ls[1] and len(lv.rows(ls)) == len(recs), 10,
                    "the flows again")
            # a process that exited keeps its name for its flows
            os.kill(b["pid"], 9)
            label = eu.fit("%s/%d" % (comm, b["pid"]), PROCESS_W)
            lv.wait(lambda ls: any(r["PROCESS"] == label and r["STATE"] != "ESTABLISHED"
                                   for r in lv.rows(ls)), 10,
                    "%s's closed connection still named" % label)
            assert lv.quit() == 0, lv.stderr()
    assert not _left([ns.name])


COUNTRY_NAMES = {"GB": "United Kingdom", "CN": "China", "SE": "Sweden", "JP": "Japan"}
REMOTES = ("81.2.69.5", "81.2.69.6", "175.16.199.9", "89.160.20.5", "2001:218::7")


def test_country_totals_are_the_sums_of_their_flows():
    _need_maxminddb()
    with eu.GeoWorld("enagc", REMOTES) as w:
        names = [w.local.name, w.remote.name]
        eu.server(w.remote, "tcp", AF_INET6, "::", 5301)       # dual-stack
        # UDP answers from the address asked (a wildcard socket would answer
        # from the route's source address, which a connected client ignores)
        eu.server(w.remote, "udp", AF_INET, "175.16.199.9", 5302)
        eu.server(w.remote, "udp", AF_INET6, "2001:218::7", 5302)
        eu.client(w.local, [("tcp", AF_INET, "81.2.69.5", 5301, 3000),
                            ("tcp", AF_INET, "81.2.69.6", 5301, 1000),
                            ("udp", AF_INET, "175.16.199.9", 5302, 500),
                            ("tcp", AF_INET, "89.160.20.5", 5301, 2000),
                            ("tcp", AF_INET6, "2001:218::7", 5301, 4000),
                            ("udp", AF_INET6, "2001:218::7", 5302, 300)])
        time.sleep(0.3)
        recs = eu.json_records(w.local, "-n", *eu.GEO_ARGS)
        assert len(recs) == 6, recs
        for r in recs:
            assert r["src"] in ("10.77.0.1", "fd77::1") and r["src_country"] == "--", r
            assert r["bytes_orig"] > 0 and r["bytes_reply"] > 0, r
        # every flow goes out from here: sent is the original direction
        want = eu.totals(recs, lambda r: "%s %s" % (r["dst_country"],
                                                    COUNTRY_NAMES[r["dst_country"]]))
        assert {k: v[0] for k, v in want.items()} == {
            "GB United Kingdom": 2, "CN China": 1, "SE Sweden": 1, "JP Japan": 2}
        text = eu.run(w.local, "--view", "country", "--once", "--units", "raw", "-n",
                      *eu.GEO_ARGS).stdout
        assert eu.group_table(text) == want, text
        groups = eu.json_records(w.local, "--view", "country", "-n", *eu.GEO_ARGS)
        assert eu.group_records(groups) == want, groups
    assert not _left(names)
