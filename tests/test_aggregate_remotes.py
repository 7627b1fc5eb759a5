"""The Hosts and Countries views summed a column at a time (views.remotes),
and the Processes view without a process map (every flow's unknown),
equal the views spelt out flow by flow with keys_of: a table where each
flow has a remote address of its own (a server's or a router's), flows
received and sent, first seen, idle, moving, closed, without counters."""

import pytest

from flowtop.enrich.bundle import Enrichment
from flowtop.netlink.ctnetlink import FIELDS
from flowtop.table import FlowTable, TableFlow
from flowtop.views import aggregate as agg
from flowtop.views.redact import Redactor
from tests.test_aggregate import CountingNames, Geo, Services, flows_of, moved, state_of

_KEY, _DST, _SRC = FIELDS.index("key"), FIELDS.index("dst"), FIELDS.index("src")
_PACKETS = FIELDS.index("packets_orig")


def _distinct(n, seen=2, geo_one=False):
    """A table of ``n`` flows of the recordings, each between two addresses
    of its own (``geo_one``: all ending in 7, one country), seen ``seen`` times
    (1: first sight, rates unknown); a seventh moved once more, and the
    flows of a recording without counters among them."""
    flows, when = [], 0.0
    for name in ("ctnetlink-mixed.rec", "ctnetlink-acct-off.rec"):
        when, fs = flows_of(name)
        fs = [f for f in fs if f.family == 2]
        for i in range(n // 2):
            fields = list(fs[i % len(fs)])
            fields[_KEY] = b"%s-%d" % (name.encode(), i)
            last = 7 if geo_one else len(flows) % 10
            fields[_DST] = "100.%d.%d.%d" % (len(flows) >> 8, len(flows) & 255, last)
            fields[_SRC] = "10.%d.%d.%d" % (len(flows) >> 8, len(flows) & 255, last)
            if fields[_PACKETS] is not None:          # sent and received packets differ
                fields[_PACKETS] += i
            flows.append(tuple.__new__(TableFlow, fields))
    t = FlowTable()
    for k in range(seen):
        t.apply(list(flows), 100.0 + k, when + k)
    if seen > 1:
        t.update(moved(flows), 110.0, when + 10, [f.key for f in flows[3::11]])
    return t


def _plain(rows, view, enrich, redact):
    out = {}
    for r in rows:
        if r.closed:
            continue
        for key, label, outbound in agg.keys_of(view, r, enrich, redact):
            g = out.get(key)
            if g is None:
                g = out[key] = agg.Group(key, label)
            g.add(r, outbound)
    return {k: (g.label, g.flows, g.uncounted, g.rated, g.totals()) for k, g in out.items()}


@pytest.mark.parametrize("view,geo", [("host", None), ("host", "names"),
                                      ("country", None), ("country", "many"),
                                      ("country", "one"), ("process", None)])
@pytest.mark.parametrize("seen", [1, 2])
@pytest.mark.parametrize("servers", [False, True])
@pytest.mark.parametrize("redacted", [False, True])
def test_a_remote_address_a_flow_sums_as_keys_of_says(view, geo, seen, servers, redacted):
    t = _distinct(240, seen, geo_one=geo == "one")
    rows = list(t)
    assert len({r.entry.dst for r in rows} | {r.entry.src for r in rows}) == 2 * len(rows)
    if seen > 1:
        assert any(type(r) is TableFlow for r in rows) and any(r.closed for r in rows)
        assert any(type(r) is not TableFlow and r.rate_orig for r in rows)
    # servers: a third of the flows come in to this host (their reply direction is sent)
    local = {r.entry.dst for r in rows[::3]} if servers else set()
    enrich = Enrichment(Services(), dns=CountingNames() if geo == "names" else None,
                        geo=Geo() if view == "country" and geo else None, local=lambda: local)
    redact = Redactor(enrich.is_local, state_of("--redact-remote")) if redacted else None
    assert agg._many_remotes(rows, enrich)          # summed a column at a time
    got = {g.key: (g.label, g.flows, g.uncounted, g.rated, g.totals())
           for g in agg.aggregate(rows, view, enrich, redact)}
    want = _plain(rows, view, enrich, redact)
    # hosts that share a name are told apart after (their label goes on with the address)
    assert all(got[k][0].startswith(want[k][0]) for k in want if k in got)
    assert {k: v[1:] for k, v in got.items()} == {k: v[1:] for k, v in want.items()}
    assert len(got) == (1 if view == "process" or view == "country" and geo != "many" else
                        10 if view == "country" else len([r for r in rows if not r.closed]))
    assert any(v[2] for v in got.values())          # some flows without counters


def test_hosts_that_share_a_name_are_told_apart_when_each_has_one_flow():
    t = _distinct(40)
    rows = list(t)

    class Same:
        def lookup(self, addr):
            return "same.example" if addr.endswith((".1", ".2")) else None
    enrich = Enrichment(Services(), dns=Same())
    labels = sorted(g.label for g in agg.aggregate(rows, "host", enrich))
    shared = [lab for lab in labels if lab.startswith("same.example")]
    assert len(shared) == 8 and len(set(shared)) == 8
    assert all(lab.startswith("same.example (ipv4) 100.") for lab in shared)


def test_a_label_with_control_characters_is_sanitized():
    rows = list(_distinct(20))

    class Evil:
        def lookup(self, addr):
            return "evil\x1b[2J" + "x" * 100 if addr.endswith(".3") else None
    enrich = Enrichment(Services(), dns=Evil())
    evil = [g.label for g in agg.aggregate(rows, "host", enrich) if g.label.startswith("evil")]
    assert evil and all(lab.isprintable() and len(lab) <= 64 for lab in evil)


def test_locals_of_answers_as_is_local_does_one_address_at_a_time():
    enrich = Enrichment(Services(), local=lambda: {"10.0.0.1", "fe80::1"})
    addrs = ["10.0.0.1", "10.0.0.2", "127.0.0.5", "::1", "::ffff:127.0.0.1", "fe80::1",
             "fe80::2", "::2", "", "128.0.0.1"]
    assert enrich.locals_of(addrs) == [enrich.is_local(a) for a in addrs]
    assert enrich.locals_of(addrs + [None]) == [enrich.is_local(a) for a in addrs + [None]]
    assert enrich.locals_of(["10.0.0.2"]) == [False]
    assert enrich.locals_of([]) == []


def _plain_sort(groups, sort, reverse):
    """sort_groups spelt out: by label, then by the sort's key function."""
    out = sorted(groups, key=lambda g: g.label)
    key = agg.SORT_KEYS.get(sort)
    if key is not None:
        out.sort(key=key, reverse=not reverse)
    elif reverse:
        out.reverse()
    return out


@pytest.mark.parametrize("view", ["host", "country"])
def test_groups_sort_as_their_key_functions_say_ties_by_label(view):
    from flowtop.values import SORTS
    rows = list(_distinct(300))
    enrich = Enrichment(Services(), geo=Geo(), local=lambda: {r.entry.dst for r in rows[::4]})
    groups = agg.aggregate(rows, view, enrich)
    assert len({g.rate_tx + g.rate_rx for g in groups}) < len(groups)     # ties
    for sort in SORTS:
        for reverse in (False, True):
            want = [g.key for g in _plain_sort(groups, sort, reverse)]
            assert [g.key for g in agg.sort_groups(list(groups), sort, reverse)] == want


def test_tables_whose_remote_ends_repeat_are_summed_a_flow_at_a_time():
    """Where remote addresses repeat, a pass a flow with each address asked
    once is the cheaper (250k flows to 250 addresses: ~0.14 s against ~0.26 s)."""
    from tests.test_aggregate import table
    t, _ = table("ctnetlink-mixed.rec", again=True)
    rows = list(t)
    enrich = Enrichment(Services())
    assert not agg._many_remotes(rows, enrich)
    assert agg._many_remotes(list(_distinct(100)), enrich)
    assert not agg._many_remotes([], enrich)


def test_first_seen_flows_are_summed_a_column_at_a_time_without_a_call_each():
    """A router's table reads as first seen (FreshFlow) until its next full dump,
    30-90 s at 16k flows on mipsel: their entries are taken without the entry
    property's call each."""
    from flowtop.table import FreshFlow
    from tests.test_aggregate import calls_of
    rows = list(_distinct(400, seen=1))
    fresh = sum(type(r) is FreshFlow for r in rows)     # (no timestamps: a Row each)
    assert fresh >= len(rows) // 3
    enrich = Enrichment(Services(), local=lambda: set())
    for view in ("host", "country", "process"):
        calls, groups = calls_of(agg.aggregate, rows, view, enrich)
        assert calls < fresh // 4, (view, calls, fresh)     # (a Row's entry: a slot)
        assert sum(g.flows for g in groups) == len(rows)
