"""--filter EXPR in every script output, from a recording: the records kept
are exactly those an independent test over the unfiltered records keeps."""

import csv
import io
import ipaddress
import json
import os

import pytest

from flowtop import cli, main

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
MIXED = os.path.join(FIXTURES, "ctnetlink-mixed.rec")


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    status = main.main(cli.parse(list(argv)), stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


def records(*argv):
    status, out, err = run("--replay", MIXED, "-n", "--json", *argv)
    assert status == 0, err
    return [json.loads(line) for line in out.splitlines()]


def _in(net):
    n = ipaddress.ip_network(net)
    return lambda a: ipaddress.ip_address(a).version == n.version and ipaddress.ip_address(a) in n


CASES = [
    ("dport=443", lambda r: r["dport"] == 443),
    ("proto=udp or proto=udplite", lambda r: r["proto"] in ("udp", "udplite")),
    ("dst=10.9.0.0/24", lambda r: _in("10.9.0.0/24")(r["dst"])),
    ("not src=127.0.0.0/8", lambda r: ":" in r["src"] or not _in("127.0.0.0/8")(r["src"])),
    ("mark=7 and zone=3", lambda r: r["mark"] == 7 and r["zone"] == 3),
    ("status=seen_reply", lambda r: "SEEN_REPLY" in r["status"]),
    ("port<100", lambda r: r["sport"] is not None and (r["sport"] < 100 or r["dport"] < 100)),
    ("bytes>100", lambda r: (r["bytes_orig"] or 0) + (r["bytes_reply"] or 0) > 100),
    ("proto=6 and state~estab", lambda r: r["l4proto"] == 6 and r["state"] == "ESTABLISHED"),
]


@pytest.mark.parametrize("expr,oracle", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("once", [True, False], ids=["once", "stream"])
def test_json_keeps_exactly_the_matching_flows(expr, oracle, once):
    extra = ("--once",) if once else ()
    everything = records(*extra)
    kept = records("--filter", expr, *extra)
    want = [r["id"] for r in everything if oracle(r)]
    assert want, "the fixture has flows for %s" % expr
    assert len(want) < len(everything), "and flows it leaves out"
    assert [r["id"] for r in kept] == want


def test_csv_keeps_the_same_flows_as_json():
    _s, out, _e = run("--replay", MIXED, "-n", "--csv", "--once", "--filter", "dport=443")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [int(r["id"]) for r in rows] == \
        [r["id"] for r in records("--once", "--filter", "dport=443")]
    assert rows and all(r["dport"] == "443" for r in rows)


def test_text_output_shows_only_the_matching_flows():
    _s, out, _e = run("--replay", MIXED, "-n", "--once", "--loopback", "--filter",
                      "dst=10.9.0.0/24 and proto=tcp")
    body = [line for line in out.splitlines()[2:] if line.strip()]
    assert body and all(line.split()[0] == "tcp" and "10.9.0." in line for line in body), out
    n = len([r for r in records("--once") if r["proto"] == "tcp" and r["dst"].startswith("10.9.0.")])
    assert len(body) == n


def test_group_view_aggregates_only_the_matching_flows():
    groups = records("--once", "--view", "host", "--filter", "proto=tcp")
    tcp = [r for r in records("--once") if r["proto"] == "tcp"]
    assert sum(g["flows"] for g in groups) == len(tcp)


def test_plain_words_search_the_shown_text_in_scripts_too():
    kept = records("--once", "--filter", "https")
    assert kept and all(r["service"] == "https" or r["dport"] == 443 for r in kept)


@pytest.mark.parametrize("expr,column", [("dst=1.2.3", 5), ("prot=tcp", 1),
                                         ("(dport=1", 9)])
def test_a_mistake_is_one_line_with_its_column_and_exit_2(expr, column, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.parse(["--filter", expr])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "column %d:" % column in err and expr in err


@pytest.mark.parametrize("export", [["--metrics-file", "/tmp/x.prom"], ["--quiet"],
                                    ["--syslog", "udp://127.0.0.1:514"]])
def test_exports_refuse_a_filter_they_would_only_half_apply(export, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.parse(["--filter", "dport=443"] + export)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--filter" in err
