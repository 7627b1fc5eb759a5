"""The Processes view on a process map that tells which ports have a
socket (views.procgroups): equal to the view spelt out flow by flow with
keys_of, with only the flows a socket may match asked one by one and no
answer kept for the others, whether summed a column at a time or in a
pass a flow."""

import pytest

from flowtop.enrich.bundle import Enrichment
from flowtop.netlink.ctnetlink import FIELDS
from flowtop.services import Services
from flowtop.table import FlowTable, TableFlow
from flowtop.views import aggregate as agg
from tests.test_procbatch import _flows, _world

_KEY, _START = FIELDS.index("key"), FIELDS.index("start")
_COUNTERS = [FIELDS.index(n) for n in ("bytes_orig", "bytes_reply", "packets_orig",
                                       "packets_reply")]


class Resolving:
    """A reverse DNS whose workers are always resolving: this host's flows
    to port 53 are flowtop's own queries."""

    def lookup(self, addr):
        return None

    def resolving_at(self, t):
        return True


def _table(n):
    """``n`` flows of every kind, seen twice (most stored bare, idle), a
    ninth moved, a few without counters."""
    entries = []
    for i, e in enumerate(_flows(n)):
        fields = list(e)
        fields[_KEY] = b"f%d" % i
        fields[_START] = None if i % 5 == 0 else 10 ** 9 * (1000 + i)
        for j, at in enumerate(_COUNTERS):
            fields[at] = None if i % 13 == 0 else 100 * i + 7 * j + 1
        entries.append(tuple.__new__(TableFlow, fields))
    t = FlowTable()
    t.apply(list(entries), 100.0, 5000.0)
    t.apply(list(entries), 101.0, 5001.0)
    moved = []
    for e in entries[::9]:
        fields = list(e)
        if fields[_COUNTERS[0]] is not None:
            fields[_COUNTERS[0]] += 5000
        moved.append(tuple.__new__(TableFlow, fields))
    t.update(moved, 102.0, 5002.0)
    return t


def _plain(rows, enrich, by_name):
    out = {}
    for r in rows:
        if r.closed:
            continue
        for key, label, outbound in agg.keys_of("process", r, enrich, None, by_name):
            g = out.get(key)
            if g is None:
                g = out[key] = agg.Group(key, label)
            g.add(r, outbound)
    return {k: (g.label, g.flows, g.uncounted, g.rated, g.totals()) for k, g in out.items()}


@pytest.mark.parametrize("by_name", [False, True])
@pytest.mark.parametrize("dns", [None, "resolving"])
@pytest.mark.parametrize("columns", [True, False])
def test_the_processes_view_equals_its_keys_flow_by_flow(tmp_path, monkeypatch, by_name, dns,
                                                         columns):
    """Summed a column at a time (remote ends mostly distinct: procgroups.by_process)
    or in a pass a flow (they repeat: by_flow), a first look and the next."""
    monkeypatch.setattr(agg, "_many_remotes", lambda rows, enrich: columns)
    m = _world(tmp_path)
    m.keep = True                       # the live view's map: answers kept across ticks
    local = {"10.0.0.1", "192.168.1.1", "2001:db8::1"}
    enrich = Enrichment(Services(), process=m, dns=Resolving() if dns else None,
                        local=lambda: local)
    rows = list(_table(3000))
    assert sum(type(r) is TableFlow for r in rows) > 1000
    assert any(type(r) is not TableFlow and r.rate_orig for r in rows)
    asked = []
    real = m.lookup_both
    m.lookup_both = lambda e: asked.append(e.key) or real(e)
    first = agg.aggregate(rows, "process", enrich, None, by_name)
    n_asked = len(asked)
    again = agg.aggregate(rows, "process", enrich, None, by_name)   # the answers kept since
    m.lookup_both = real
    kept = len(m.answers)
    got = {g.key: (g.label, g.flows, g.uncounted, g.rated, g.totals()) for g in first}
    want = _plain(rows, enrich, by_name)
    assert got == want
    assert {g.key: (g.label, g.flows, g.totals()) for g in again} == \
        {k: (v[0], v[1], v[4]) for k, v in want.items()}
    assert len(want) > 4 and ("forwarded",) in want and ("?",) in want
    # flows on ports where no socket is are answered without a call, and no answer is kept
    assert len(rows) - n_asked > 500 and n_asked > 0
    assert kept <= n_asked


def test_a_process_map_that_does_not_tell_its_ports_is_asked_flow_by_flow(tmp_path):
    m = _world(tmp_path)
    m.keep = True

    class Plain:
        def lookup(self, e):
            return m.lookup(e)
    enrich = Enrichment(Services(), process=Plain(), local=lambda: {"10.0.0.1"})
    rows = list(_table(600))
    got = {g.key: (g.label, g.flows, g.totals())
           for g in agg.aggregate(rows, "process", enrich)}
    assert got == {k: (v[0], v[1], v[4]) for k, v in _plain(rows, enrich, False).items()}
