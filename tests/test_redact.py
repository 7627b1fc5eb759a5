"""Redaction holds in every output: text, JSON, CSV, each view, the details
pane and the '/' filter (views/redact.py).  Over a recorded table, with a
fake reverse DNS and GeoIP that give every address its own name, city, AS
and organisation, so a leak of any of them can be seen."""

import csv
import io
import json
import os

import pytest

from flowtop import cli, main
from flowtop.enrich.bundle import Enrichment
from flowtop.enrich.geoip import GeoRecord
from flowtop.services import Services
from flowtop.table import FlowTable
from flowtop.views.cells import Formatter
from flowtop.views.select import build
from flowtop.views.state import ViewState

MIXED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "ctnetlink-mixed.rec")
LOCAL = {"10.9.0.1", "10.9.0.4", "fd00::1", "2001:db8::1"}
REMOTE = {"10.9.0.2", "10.9.0.3", "10.9.0.5", "fd00::2", "2001:db8::2"}
LOOPBACK = {"127.0.0.1", "::1"}
ADDRS = sorted(LOCAL | REMOTE | LOOPBACK)


def _slug(addr):
    return addr.replace(".", "-").replace(":", "-")


def name_of(addr):
    return "h-%s.example" % _slug(addr)


def geo_of(addr):
    i = ADDRS.index(addr)
    return GeoRecord("GB", "United Kingdom", "Town%s" % _slug(addr), 4200000000 + i,
                     "Org%s" % _slug(addr), None)


def secrets_of(addr):
    """What identifies ``addr`` besides itself in any output."""
    g = geo_of(addr)
    return (addr, name_of(addr), g.city, str(g.asn), g.org)


class FakeDns:
    def lookup(self, addr):
        return name_of(addr)

    def wait(self, addrs, timeout):
        return {a: name_of(a) for a in addrs}


class FakeGeo:
    def lookup(self, addr):
        return geo_of(addr)


def enrichment():
    e = Enrichment(Services(), dns=FakeDns(), geo=FakeGeo(), local=lambda: LOCAL)
    e.tick(FlowTable())
    return e


def once(*argv):
    opts = cli.parse(["--replay", MIXED, "--once"] + list(argv))
    source = main.ReplaySource(opts)
    source.open()
    out = io.StringIO()
    try:
        main.once(source, opts, out, enrichment(), [])
    finally:
        source.close()
    return out.getvalue()


def recorded_table():
    opts = cli.parse(["--replay", MIXED])
    source = main.ReplaySource(opts)
    source.open()
    when, flows = source.snapshot()
    source.close()
    table = FlowTable()
    table.apply(flows, 100.0, when)
    return table, when


def streamed(*argv):
    """The refreshing JSON and CSV writers (rates and all) over the table."""
    table, when = recorded_table()
    texts = []
    for output in ("--json", "--csv"):
        o = cli.parse(["--replay", MIXED, output] + list(argv))
        out = io.StringIO()
        main.make_writer(o, out, enrichment()).write_rows(table, when)
        texts.append(out.getvalue())
    return "\n".join(texts)


def live_texts(*argv):
    """What the live view can show: every flow's cells in every view, its
    details pane, and the Hosts view's labels."""
    opts = cli.parse(["--replay", MIXED, "--loopback", "--wide"] + list(argv))
    st = ViewState(opts)
    fmt = Formatter(st, enrichment())
    table, when = recorded_table()
    rows = list(table)
    out = []
    for r in rows:
        out.append(json.dumps(fmt.cells(r, when)))
        out.extend("%s %s" % kv for kv in fmt.details(r, when))
    for view in ("process", "host", "country", "iface"):
        st.view = view
        out.extend(g.label for g in build(rows, st, fmt))
    return "\n".join(out), st, fmt, rows


MODES = {
    "--redact-local": (LOCAL | LOOPBACK, REMOTE),
    "--redact-remote": (REMOTE, LOCAL | LOOPBACK),
}


def outputs(flag):
    """Every output format and view under ``flag``, as one text each."""
    texts = {"text %s" % v: once(flag, "--view", v) for v in vm_views()}
    texts.update({"json %s" % v: once(flag, "--json", "--view", v) for v in vm_views()})
    texts.update({"csv %s" % v: once(flag, "--csv", "--view", v) for v in vm_views()})
    texts["text wide"] = once(flag, "--wide", "-s")
    texts["streamed json+csv"] = streamed(flag)
    texts["live view"] = live_texts(flag)[0]
    return texts


def vm_views():
    return ("flows", "process", "host", "country", "iface")


@pytest.mark.parametrize("flag", sorted(MODES))
def test_no_hidden_address_name_city_or_as_reaches_any_output(flag):
    hidden, shown = MODES[flag]
    for what, text in outputs(flag).items():
        for addr in hidden:
            for secret in secrets_of(addr):
                assert secret not in text, (flag, what, addr, secret)
        assert ("local#" if "local" in flag else "remote#") in text or "country" in what or \
            "process" in what or "iface" in what, (flag, what)


def test_the_outputs_show_every_name_when_nothing_is_redacted():
    """The control: without redaction the same outputs do carry the secrets."""
    texts = outputs("--loopback")
    for what in ("text wide", "json flows", "csv flows", "streamed json+csv", "live view"):
        for addr in LOCAL | REMOTE:
            assert addr in texts[what] or name_of(addr) in texts[what], (what, addr)
        assert name_of("10.9.0.2") in texts[what], what
    assert geo_of("10.9.0.3").city in texts["live view"]
    assert name_of("10.9.0.2") in texts["text host"] and name_of("10.9.0.2") in texts["json host"]


@pytest.mark.parametrize("flag", sorted(MODES))
def test_json_and_csv_records_hide_every_field_of_a_hidden_end(flag):
    hidden, _shown = MODES[flag]
    recs = [json.loads(ln) for ln in once(flag, "--json").splitlines()]
    rows = list(csv.DictReader(io.StringIO(once(flag, "--csv"))))
    assert len(recs) == len(rows) == 14
    for rec, row in zip(recs, rows):
        for end in ("src", "dst"):
            tagged = rec[end].startswith(("local#", "remote#"))
            assert row[end] == rec[end]                       # the same tags in both
            if tagged:
                assert rec[end + "_host"] is None and rec[end + "_city"] is None
                assert rec[end + "_asn"] is None
                assert rec[end + "_country"] == "GB"          # the country stays
            else:
                assert rec[end] not in hidden
                assert rec[end + "_host"] == name_of(rec[end])
        for k in ("src", "dst", "reply_src", "reply_dst"):
            assert rec[k] not in hidden, (k, rec)


def test_tags_are_stable_within_a_run_and_the_same_in_every_output():
    recs = [json.loads(ln) for ln in once("--redact-remote", "--json").splitlines()]
    tags = {r["dst"] for r in recs if r["dst"].startswith("remote#")}
    assert len(tags) == len(REMOTE)                       # one tag per address
    text = once("--redact-remote", "--loopback")
    hosts = once("--redact-remote", "--view", "host")
    for t in tags:
        assert t in text and t in hosts


def test_the_filter_cannot_find_a_flow_by_its_hidden_address():
    _text, st, fmt, rows = live_texts("--redact-remote")
    st.view = "flows"
    st.filter = "10.9.0.3"
    assert build(rows, st, fmt) == []
    st.filter = "h-10-9-0-3"
    assert build(rows, st, fmt) == []
    st.filter = "town10-9-0-3"
    assert build(rows, st, fmt) == []
    tag = fmt.redact.tag("10.9.0.3")
    st.filter = tag
    assert [r.entry.dst for r in build(rows, st, fmt)] == ["10.9.0.3"]
    st.redact_remote = False                   # X again: the address finds it
    st.filter = "10.9.0.3"
    assert [r.entry.dst for r in build(rows, st, fmt)] == ["10.9.0.3"]


def test_a_host_group_entered_before_x_loses_its_name_in_the_header():
    _text, st, fmt, rows = live_texts()
    st.view = "host"
    g = next(g for g in build(rows, st, fmt) if g.key == ("10.9.0.3",))
    st.group, st.view = (st.view, g.key, g.label), "flows"
    assert name_of("10.9.0.3") in st.filters_text()
    st.redact_remote = True
    build(rows, st, fmt)
    assert name_of("10.9.0.3") not in st.filters_text()
    assert fmt.redact.tag("10.9.0.3") in st.filters_text()


def test_record_with_redaction_is_refused_in_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.parse(["--record", "x.rec", "--redact-local"])
    assert exc.value.code == 2
    assert "cannot be redacted" in capsys.readouterr().err



def test_tags_differ_between_runs_even_with_a_fixed_hash_seed():
    import subprocess
    import sys
    env = dict(os.environ, PYTHONHASHSEED="1")
    runs = [subprocess.run([sys.executable, "-m", "flowtop", "--replay", MIXED, "--once",
                            "--json", "--redact-remote", "-n", "-G"], env=env,
                           capture_output=True, text=True, check=True).stdout
            for _ in range(2)]
    tags = [{json.loads(ln)["dst"] for ln in out.splitlines()} for out in runs]
    assert all(any(t.startswith("remote#") for t in ts) for ts in tags)
    assert not (tags[0] & tags[1]) - LOCAL - LOOPBACK
