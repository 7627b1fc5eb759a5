"""The aggregate views and the view-model's texts: absent totals, widths,
labels, filters (no curses; recorded flows from tests/fixtures)."""

import io
import json
import os

import pytest

from flowtop.netlink.ctnetlink import FIELDS as _FIELDS

KEY = _FIELDS.index("key")

from flowtop import cli, conntrack
from flowtop.enrich.bundle import Enrichment
from flowtop.table import FlowTable, FreshFlow, TableFlow
from flowtop.views import aggregate as agg
from flowtop.views.cells import Formatter
from flowtop.views.columns import Column, place
from flowtop.views.select import build
from flowtop.views.state import ViewState
from flowtop.views.text import TextFrames
from flowtop.views.export import GroupWriter

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
BYTES_ORIG = TableFlow._fields.index("bytes_orig")


class Services:
    def of_flow(self, sport, dport, proto, numeric=False):
        return str(dport)


class Proc:
    def __init__(self, pid, name):
        self.pid, self.name, self.user = pid, name, None


class Procs:
    """A process provider: flows to port 5001 belong to 'curl' (two PIDs),
    the others to 'sshd'; one object per process, as ProcessMap's."""

    def __init__(self):
        self.procs = {pid: Proc(pid, name) for pid, name in ((100, "curl"), (101, "curl"),
                                                             (7, "sshd"))}

    def lookup(self, e):
        if e.dport == 5001:
            return self.procs[100 + (e.sport or 0) % 2]
        return self.procs[7]

    def lookup_both(self, e):
        return self.lookup(e), None


class Names:
    """Reverse DNS that names both loopback addresses alike (A and AAAA)."""

    def lookup(self, addr):
        return "same.example" if addr in ("127.0.0.1", "::1") else None


def flows_of(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return next(conntrack.replay(f))


def table(*names, again=False):
    """A FlowTable of the recordings' flows (keys kept apart per recording)."""
    t = FlowTable()
    flows, when = [], 0.0
    for i, name in enumerate(names):
        when, fs = flows_of(name)
        for f in fs:
            fields = list(f)
            fields[KEY] = b"%d-" % i + f.key
            flows.append(tuple.__new__(TableFlow, fields))
    t.apply(flows, 100.0, when)
    if again:                       # a second snapshot: rates become known
        t.apply(list(flows), 101.0, when + 1)
    return t, when


def state_of(*argv):
    return ViewState(cli.parse(list(argv)))


def groups(t, view, enrich=None, by_name=False):
    enrich = enrich or Enrichment(Services())
    return {g.label: g for g in agg.aggregate(list(t), view, enrich, by_name=by_name)}


# -- absent is not zero ---------------------------------------------------------------

@pytest.mark.parametrize("view", ["process", "host", "country", "iface"])
def test_totals_over_flows_without_counters_are_absent_not_zero(view):
    t, when = table("ctnetlink-acct-off.rec", again=True)
    st = state_of("--loopback", "--view", view)
    fmt = Formatter(st, Enrichment(Services()))
    gs = groups(t, view)
    assert gs
    for g in gs.values():
        cells = fmt.group_cells(g)
        assert cells["bytes_tx"] == cells["bytes_rx"] == "-", cells
        assert cells["pkts_tx"] == cells["pkts_rx"] == "-", cells
        assert cells["rate_tx"] == cells["rate_rx"] == "-", cells     # no counters, no rate
        rec = agg.record(g, view, when)
        assert rec["bytes_sent"] is None and rec["packets_received"] is None, rec
        assert rec["flows_uncounted"] == g.flows == g.uncounted


def test_a_total_mixing_counted_and_uncounted_flows_says_how_many_it_could_not_count():
    t, _ = table("ctnetlink-mixed.rec", "ctnetlink-acct-off.rec")
    g = groups(t, "host")["127.0.0.1"]
    counted = [r for r in t if r.entry.dst == "127.0.0.1" and r.entry.bytes_orig is not None]
    assert g.flows > g.uncounted > 0
    assert g.bytes_tx == sum(r.entry.bytes_orig for r in counted)
    out = io.StringIO()
    TextFrames(out, cli.parse(["--once", "--view", "host", "--units", "raw"]),
               Enrichment(Services())).write_rows(t, 0.0)
    lines = out.getvalue().splitlines()
    titles = lines[1].split()
    assert "NOACCT" in titles, lines
    row = next(l for l in lines if l.startswith("127.0.0.1 ")).split()
    assert row[titles.index("NOACCT") - 1] == str(g.uncounted), lines   # "REMOTE HOST": 2 words


def test_once_group_rates_are_null_and_not_shown():
    t, when = table("ctnetlink-mixed.rec")
    out = io.StringIO()
    GroupWriter(out, "process", Enrichment(Services())).write_rows(t, when)
    recs = [json.loads(l) for l in out.getvalue().splitlines()]
    assert recs and all(r["rate_sent"] is None and r["rate_received"] is None for r in recs)
    text = io.StringIO()
    TextFrames(text, cli.parse(["--once", "--view", "country"]), Enrichment(Services())) \
        .write_rows(t, when)
    assert "RATE_SENT" not in text.getvalue() and "0B/s" not in text.getvalue(), text.getvalue()
    # with a second snapshot the rates are known: 0 for idle flows
    t, when = table("ctnetlink-mixed.rec", again=True)
    out = io.StringIO()
    GroupWriter(out, "process", Enrichment(Services())).write_rows(t, when)
    assert all(json.loads(l)["rate_sent"] == 0.0 for l in out.getvalue().splitlines())


def test_frames_header_counts_flows_without_counters_and_unknown_rates_as_dash():
    t, when = table("ctnetlink-mixed.rec", "ctnetlink-acct-off.rec")
    out = io.StringIO()
    TextFrames(out, cli.parse(["-c", "--loopback", "--view", "process"]),
               Enrichment(Services())).write_rows(t, when)
    head = out.getvalue().splitlines()[0]
    assert ", 14 without counters (created before accounting was switched on" in head, head
    assert "TX -  RX -" in head, head


def test_zero_flows_header_has_no_empty_parenthesis():
    out = io.StringIO()
    TextFrames(out, cli.parse(["-c"]), Enrichment(Services())).write_rows(FlowTable(), 0.0)
    assert out.getvalue().startswith("0 flows  TX"), out.getvalue()


# -- numbers are never cut ------------------------------------------------------------

@pytest.mark.parametrize("view", ["flows", "host"])
@pytest.mark.parametrize("width", [120, None])
def test_large_raw_counters_widen_their_column(view, width):
    _when, flows = flows_of("ctnetlink-mixed.rec")
    i = next(i for i, f in enumerate(flows) if f.dport == 5001)
    fields = list(flows[i])
    fields[BYTES_ORIG] = 148064812345
    flows[i] = tuple.__new__(TableFlow, fields)
    t = FlowTable()
    t.apply(flows, 100.0, 0.0)
    out = io.StringIO()
    opts = cli.parse(["-c", "--loopback", "--units", "raw", "--view", view])
    TextFrames(out, opts, Enrichment(Services()), width=width).write_rows(t, 0.0)
    lines = out.getvalue().splitlines()
    want = 148064812345 if view == "flows" else groups(t, "host")["127.0.0.1"].bytes_tx
    assert any((" %dB " % want) in l + " " for l in lines[2:]), lines
    assert not any("\u2026" in l for l in lines), lines
    if width:
        assert max(len(l) for l in lines[1:]) <= width, lines


def test_process_names_are_cut_before_their_pid():
    cols = [(Column("process", "PROCESS", 14), 14)]
    a = place({"process": "python3-server/41234"}, cols)
    b = place({"process": "python3-server/41235"}, cols)
    assert a != b and a == "python3\u2026/41234", (a, b)
    assert place({"process": "a-long-name.example"}, cols) == "a-long-name.e\u2026"


# -- labels and filters -----------------------------------------------------------------

def test_hosts_sharing_a_name_are_told_apart_by_family_then_address():
    t, _ = table("ctnetlink-mixed.rec")
    gs = groups(t, "host", Enrichment(Services(), dns=Names()))
    named = sorted(l for l in gs if l.startswith("same.example"))
    assert named == ["same.example (ipv4)", "same.example (ipv6)"], sorted(gs)
    assert "10.9.0.2" in gs                # unnamed hosts keep the bare address
    # two addresses of one family under one name: the address as the view shows it
    t2, _ = table("ctnetlink-mixed.rec")
    names = Names()
    names.lookup = lambda addr: "rr.example" if addr in ("10.9.0.2", "10.9.0.3") else None
    st = state_of("--loopback", "--view", "host")
    fmt = Formatter(st, Enrichment(Services(), dns=names))
    labels = sorted(g.label for g in build(list(t2), st, fmt))
    rr = [l for l in labels if l.startswith("rr.example")]
    assert rr == ["rr.example (ipv4) 10.9.0.2", "rr.example (ipv4) 10.9.0.3"], labels
    # redacted, the name goes with the address (it names the host as well)
    st = state_of("--loopback", "--view", "host", "--redact-remote")
    fmt = Formatter(st, Enrichment(Services(), dns=names))
    labels = [g.label for g in build(list(t2), st, fmt)]
    assert not any("rr.example" in l or "10.9.0.2" in l or "10.9.0.3" in l for l in labels), labels


def test_processes_group_per_pid_or_per_program_name():
    t, _ = table("ctnetlink-mixed.rec")
    enrich = Enrichment(Services(), process=Procs())
    per_pid = groups(t, "process", enrich)
    per_name = groups(t, "process", enrich, by_name=True)
    assert set(per_name) == {"curl", "sshd"}, per_name
    assert {l.split("/")[0] for l in per_pid} == {"curl", "sshd"}
    assert per_name["curl"].flows == sum(g.flows for l, g in per_pid.items()
                                         if l.startswith("curl/"))
    key = per_name["curl"].key
    assert [r.entry.dport for r in t if agg.in_group(r, "process", key, enrich)] == [5001]
    st = state_of("--loopback", "--view", "process")
    st.by_name = True
    assert {g.label for g in build(list(t), st, Formatter(st, enrich))} == {"curl", "sshd"}


def test_protocol_filter_names_what_is_shown():
    assert state_of("-T", "-U").filters_text().startswith("only tcp,udp ")
    st = state_of("--loopback")
    assert st.filters_text() == ""
    st.toggle_group("U")
    assert st.filters_text() == "only tcp,dccp,icmp,sctp,other"


def test_interface_filters_are_listed_with_the_others():
    text = state_of("--in-iface", "eth0", "--out-iface", "wan+").filters_text()
    assert "in eth0" in text and "out wan+" in text, text


def test_once_without_timestamps_shows_no_age():
    t, when = table("ctnetlink-acct-off.rec")
    row = next(iter(t))
    assert row.age_approx
    once = Formatter(state_of("--once"), Enrichment(Services()))
    live = Formatter(state_of(), Enrichment(Services()))
    assert once.cells(row, when)["age"] == "-"
    assert live.cells(row, when)["age"].endswith("~")


@pytest.mark.parametrize("flag", [["--active"], ["--threshold", "10k"]])
def test_once_refuses_rate_filters(flag, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.parse(["--once"] + flag)
    assert exc.value.code == 2
    assert "snapshot" in capsys.readouterr().err


# -- once per distinct key ----------------------------------------------------------------

class Geo:
    """GeoIP by the address's last digit; counts its lookups."""

    def __init__(self):
        self.asked = []

    def lookup(self, addr):
        self.asked.append(addr)
        if addr is None or addr[-1] not in "0123456789":
            return None
        return type("G", (), {"country": "C" + addr[-1], "country_name": "Land " + addr[-1]})()


class CountingNames(Names):
    def __init__(self):
        self.asked = []

    def lookup(self, addr):
        self.asked.append(addr)
        return "host-" + addr[-1] if addr and addr[-1] in "02468" else None


class MixedProcs(Procs):
    """Some flows forwarded, some unknown, the rest as Procs says."""

    def lookup(self, e):
        if (e.sport or 0) % 5 == 1:
            from flowtop.enrich.owners import FORWARDED
            return FORWARDED
        if (e.sport or 0) % 5 == 2:
            return None
        return Procs.lookup(self, e)


def _plain_aggregate(rows, view, enrich, redact, by_name):
    """The aggregate views spelt out with keys_of, one flow at a time."""
    out = {}
    for r in rows:
        if r.closed:
            continue
        for key, label, outbound in agg.keys_of(view, r, enrich, redact, by_name):
            g = out.get(key)
            if g is None:
                g = out[key] = agg.Group(key, label)
            g.add(r, outbound)
    return {g.key: (g.label, g.flows, g.totals()) for g in out.values()}


@pytest.mark.parametrize("view", ["process", "host", "country"])
@pytest.mark.parametrize("by_name", [False, True])
@pytest.mark.parametrize("redacted", [False, True])
def test_the_aggregate_views_equal_their_keys_flow_by_flow(view, by_name, redacted):
    """The per-distinct-key aggregate against keys_of, over recorded flows
    with local addresses, names, countries and processes of every kind."""
    from flowtop.views.redact import Redactor
    t, _ = table("ctnetlink-mixed.rec", again=True)
    rows = list(t)
    local = {r.entry.src for r in rows[::3]} | {r.entry.dst for r in rows[1::4]}
    enrich = Enrichment(Services(), process=MixedProcs(), dns=CountingNames(), geo=Geo(),
                        local=lambda: local)
    st = state_of(*(["--redact-remote"] if redacted else []))
    redact = Redactor(enrich.is_local, st) if redacted else None
    got = {g.key: (g.label, g.flows, g.totals())
           for g in agg.aggregate(rows, view, enrich, redact, by_name)}
    want = _plain_aggregate(rows, view, enrich, redact, by_name)
    if view == "host":      # _tell_apart relabels hosts that share a name: compare keys there
        got = {k: v[1:] for k, v in got.items()}
        want = {k: v[1:] for k, v in want.items()}
    assert got == want and len(got) > 2


def test_the_hosts_and_countries_views_ask_once_per_remote_address_not_per_flow():
    t, _ = table("ctnetlink-mixed.rec", again=True)
    rows = list(t)
    names, geo = CountingNames(), Geo()
    enrich = Enrichment(Services(), dns=names, geo=geo)
    remotes = {enrich.remote_of(r.entry) for r in rows if not r.closed}
    assert len(remotes) < len(rows)
    agg.aggregate(rows, "host", enrich)
    agg.aggregate(rows, "country", enrich)
    assert sorted(names.asked, key=str) == sorted(remotes, key=str)
    assert sorted(geo.asked, key=str) == sorted(remotes, key=str)


def _many(copies, names=("ctnetlink-mixed.rec", "ctnetlink-acct-off.rec"), sights=2):
    """A table of the mixed and acct-off recordings' flows, ``copies`` times
    each (keys kept apart), seen twice: idle flows stored bare (TableFlow),
    as the live view's table stores most of a big table; then a few moved.
    ``sights=1``: seen once, the rest first seen (FreshFlow: rates unknown)."""
    t = FlowTable()
    flows, when = [], 0.0
    for name in names:
        when, fs = flows_of(name)
        for c in range(copies):
            for f in fs:
                fields = list(f)
                fields[KEY] = b"%s-%d-" % (name.encode(), c) + f.key
                flows.append(tuple.__new__(TableFlow, fields))
    t.apply(flows, 100.0, when)
    if sights > 1:
        t.apply(list(flows), 101.0, when + 1)
    t.update(moved(flows), 102.0, when + 2)
    return t


def moved(flows):
    """Every seventh of ``flows`` (TableFlows) again, 1,000 bytes sent further."""
    out = []
    for f in flows[::7]:
        fields = list(f)
        if fields[BYTES_ORIG] is not None:
            fields[BYTES_ORIG] += 1000
        out.append(tuple.__new__(TableFlow, fields))
    return out


@pytest.mark.parametrize("view", ["process", "host", "country"])
@pytest.mark.parametrize("by_name", [False, True])
@pytest.mark.parametrize("copies", [12, 120])
@pytest.mark.parametrize("sights", [2, 1], ids=["idle", "first-seen"])
def test_idle_rows_stored_bare_sum_as_their_keys_say_flow_by_flow(view, by_name, copies,
                                                                  sights):
    """Groups of many idle bare rows (or first seen: rates unknown, not
    rated) and of many moving rows (each summed a column at a time), flows
    without counters, sent and received, equal keys_of's."""
    t = _many(copies, sights=sights)
    rows = list(t)
    bare = TableFlow if sights > 1 else FreshFlow
    assert sum(type(r) is bare for r in rows) > len(rows) // 3
    assert any(type(r) is not TableFlow for r in rows)
    local = {r.entry.src for r in rows[::3]} | {r.entry.dst for r in rows[1::4]}
    if copies > 100:        # servers: flows to them are received, many of them moving
        local = {r.entry.dst for r in rows} - {r.entry.src for r in rows}
    enrich = Enrichment(Services(), process=MixedProcs(), dns=CountingNames(), geo=Geo(),
                        local=lambda: local)
    got = {g.key: (g.flows, g.uncounted, g.rated, g.totals())
           for g in agg.aggregate(rows, view, enrich, None, by_name)}
    plain = {}
    for r in rows:
        for key, _label, outbound in agg.keys_of(view, r, enrich, None, by_name):
            g = plain.setdefault(key, agg.Group(key, ""))
            g.add(r, outbound)
    want = {k: (g.flows, g.uncounted, g.rated, g.totals()) for k, g in plain.items()}
    assert got == want and len(got) >= 2
    assert any(v[1] for v in got.values())          # some flows without counters


@pytest.mark.parametrize("sights", [2, 1], ids=["idle", "first-seen"])
def test_the_aggregate_views_make_no_call_per_idle_flow(sights):
    """Tab to Processes, Hosts or Countries at 100k flows was ~120 ms, a
    Group.add and two locality tests per flow: idle rows are summed per
    group, and each address's locality asked once.  So are a first
    snapshot's rows (FreshFlow), which a router keeps until its next full
    dump (30-90 s at 16k flows on mipsel)."""
    t = _many(300, ("ctnetlink-mixed.rec",), sights)   # flows with timestamps: stored bare
    rows = list(t)
    enrich = Enrichment(Services(), process=Procs(), local=lambda: {"127.0.0.1"})
    for view in ("process", "host", "country"):
        calls, _ = calls_of(agg.aggregate, rows, view, enrich)
        # the process view's lookup: Enrichment.proc, Procs.lookup
        per_flow = 2 if view == "process" else 0
        assert calls - per_flow * len(rows) < len(rows) // 4, (view, calls, len(rows))


def test_moving_rows_are_summed_by_columns_too():
    """Tab at 100k on a table of Rows (flows without a start timestamp, or moving):
    a Group.add or add_crossing each, ~65k a Tab, were most of the Interfaces view."""
    t = _many(300, ("ctnetlink-mixed.rec",))
    rows = list(t)
    moving = sum(type(r) is not TableFlow for r in rows)
    assert moving >= 500
    enrich = Enrichment(Services(), local=lambda: {"127.0.0.1"}, ifaces=Ifaces())
    for view in ("host", "country", "iface"):
        agg.aggregate(rows, view, enrich)          # (its imports once)
        enrich.ifaces.asked = 0
        calls, _ = calls_of(agg.aggregate, rows, view, enrich)
        asked = enrich.ifaces.asked if view == "iface" else 0     # a flow_ifaces a pair of ends
        assert calls - 8 * asked < moving // 4, (view, calls, asked, moving)


def calls_of(fn, *args):
    """(Python calls ``fn(*args)`` made, its result)."""
    import sys
    calls = [0]

    def count(frame, event, arg):
        if event == "call":
            calls[0] += 1
    sys.setprofile(count)
    try:
        out = fn(*args)
    finally:
        sys.setprofile(None)
    return calls[0], out


class Ifaces:
    """Interfaces by the ends' last digits (local: even); counts its answers."""

    def __init__(self):
        self.asked = 0

    def flow_ifaces(self, e):
        from flowtop.enrich.ifacetotals import FlowIfaces
        self.asked += 1
        a, b = e.src, e.reply_src if e.reply_src is not None else e.dst
        return FlowIfaces("if" + a[-1], "if" + b[-1], a[-1] in "02468", b[-1] in "02468")


def _plain_ifaces(rows, enrich):
    """The interfaces view spelt out flow by flow, as add_crossing counts."""
    from flowtop.enrich.iface import crossings
    out = {}
    for r in rows:
        if r.closed:
            continue
        seen = set()
        for name, what, which in crossings(enrich.ifaces.flow_ifaces(r.entry)):
            label = name or "?"
            g = out.setdefault((label,), agg.Group((label,), label))
            g.add_crossing(r, what, which, label not in seen)
            seen.add(label)
    return {k: (g.flows, g.uncounted, g.rated, g.totals()) for k, g in out.items()}


@pytest.mark.parametrize("sights", [2, 1], ids=["idle", "first-seen"])
@pytest.mark.parametrize("copies", [12, 120])
def test_the_interfaces_view_equals_its_crossings_flow_by_flow(sights, copies):
    rows = list(_many(copies, sights=sights))
    enrich = Enrichment(Services(), ifaces=Ifaces())
    got = {g.key: (g.flows, g.uncounted, g.rated, g.totals())
           for g in agg.aggregate(rows, "iface", enrich)}
    want = _plain_ifaces(rows, enrich)
    # the moving rows' rates are summed per answer, not in the table's order across
    # answers: equal up to the floats' rounding
    assert {k: v[:3] + v[3][:2] for k, v in got.items()} == \
        {k: v[:3] + v[3][:2] for k, v in want.items()} and len(got) > 2
    for k, v in got.items():
        for rate, wanted in zip(v[3][2], want[k][3][2]):    # None: no rated flow
            assert rate == wanted if wanted is None else rate == pytest.approx(wanted, rel=1e-12)
    assert any(v[1] for v in got.values())          # some flows without counters
    assert any(v[3][2][0] for v in got.values())    # some moving: rates summed


def test_the_interfaces_view_asks_each_pair_of_ends_once_not_each_flow():
    """Tab to Interfaces at 100k flows was 1.2-1.7 s in the live view: a
    route answer (flow_ifaces, ~7 calls) and an import per flow."""
    rows = list(_many(100))
    ifaces = Ifaces()
    agg.aggregate(rows, "iface", Enrichment(Services(), ifaces=ifaces))
    ends = {(r.entry.src, r.entry.reply_src or r.entry.dst, r.entry.mark) for r in rows}
    assert ifaces.asked == len(ends) < len(rows) // 10


def test_a_countrys_many_addresses_are_summed_in_one_pass_not_a_pass_each():
    """A router's table: every flow to an address of its own.  The Countries
    view summed each address's idle rows apart (250k addresses, one country:
    1.3 s), and the Hosts view told hosts apart with a list per label."""
    when, fs = flows_of("ctnetlink-mixed.rec")
    base = [f for f in fs if f.family == 2 and f.sport is not None][0]
    dst = _FIELDS.index("dst")
    flows = []
    for i in range(400):
        fields = list(base)
        fields[KEY], fields[dst] = b"k%d" % i, "198.51.%d.%d" % (i // 250, i % 250)
        flows.append(tuple.__new__(TableFlow, fields))
    t = FlowTable()
    t.apply(flows, 100.0, when)
    t.apply(list(flows), 101.0, when + 1)
    rows = list(t)
    assert all(type(r) is TableFlow for r in rows)
    enrich = Enrichment(Services())
    added = []
    real = agg.Group.add
    agg.Group.add = lambda self, *a: added.append(1) or real(self, *a)
    try:
        (country,) = agg.aggregate(rows, "country", enrich)
        hosts = agg.aggregate(rows, "host", enrich)
    finally:
        agg.Group.add = real
    assert country.flows == 400 and country.bytes_tx + country.bytes_rx == 400 * (
        (base.bytes_orig or 0) + (base.bytes_reply or 0))
    assert not added                # summed a column at a time: no Group.add a flow
    assert len(hosts) == 400 and all(g.flows == 1 for g in hosts)
