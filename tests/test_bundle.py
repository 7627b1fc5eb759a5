"""Enrichment (enrich/bundle.py): per-flow answers from the providers."""

import os

import pytest

from flowtop.enrich.bundle import Enrichment
from flowtop.model import Flow
from flowtop.netlink.ctnetlink import FIELDS
from flowtop.services import Services
from flowtop.views.tail import JsonTail


class FakeProcesses:
    """A process map whose ``lookup_both(e)`` is ``answer(e)``."""

    def __init__(self, answer):
        self.answer = answer

    def lookup_both(self, e):
        return self.answer(e)

    def lookup(self, e):
        orig, reply = self.answer(e)
        return orig if orig is not None else reply

    def refresh(self):
        pass

    def retain(self, table):
        pass


class Spans:
    """A resolver that was resolving from t=100 to t=101 (wall clock)."""

    def lookup(self, addr):
        return None

    def resolving_at(self, when):
        return 100.0 <= when <= 101.0


def flow(dport=53, proto=17, src="10.0.0.1", start=100.5):
    values = dict.fromkeys(FIELDS)
    values.update(family=2, l4proto=proto, src=src, dst="10.0.0.53", sport=40000, dport=dport,
                  reply_src="10.0.0.53", reply_dst=src, reply_sport=dport, reply_dport=40000,
                  start=None if start is None else int(start * 1e9), key=b"k")
    return tuple.__new__(Flow, [values[f] for f in FIELDS])


def enrichment():
    e = Enrichment(Services(), process=FakeProcesses(lambda e: (None, None)), dns=Spans(), local=lambda: {"10.0.0.1"})
    e.tick([])
    return e


def test_a_dns_query_begun_while_resolving_is_flowtops_own():
    e = enrichment()
    for f in (flow(), flow(proto=6)):
        p = e.proc(f)
        assert (p.pid, p.name) == (os.getpid(), "flowtop")
        assert e.procs(f)[0] is p
        assert e.fields(f)["pid"] == os.getpid() and '"process":"flowtop"' in JsonTail(e).line(f)
        assert e.process_label(f) == "flowtop/%d" % os.getpid()


def test_other_flows_stay_unattributed():
    e = enrichment()
    for f in (flow(start=99.0), flow(start=101.5), flow(start=None), flow(dport=443),
              flow(proto=1, dport=None), flow(src="10.0.0.9")):
        assert e.proc(f) is None and e.procs(f) == (None, None), f


class Names:
    """A resolver that knows every address (``lookup`` never waits)."""

    def lookup(self, addr):
        return "name-of-" + addr


@pytest.mark.parametrize("is_local,nl,nr,want", [
    (True, False, False, True), (False, False, False, True),
    (True, True, False, False), (False, True, False, True),
    (True, False, True, True), (False, False, True, False),
])
def test_numeric_local_and_remote_leave_only_that_side_unnamed(is_local, nl, nr, want):
    """nftop's --numeric-local/--numeric-remote."""
    enr = Enrichment(Services(), dns=Names(), numeric_local=nl, numeric_remote=nr)
    enr.local = frozenset({"10.0.0.1"})
    addr = "10.0.0.1" if is_local else "192.0.2.7"
    assert (enr.host(addr) is not None) is want


def test_names_on_both_sides_ask_no_local_address():
    asked = []
    enr = Enrichment(Services(), dns=Names(), local=lambda: asked.append(1) or {"10.0.0.1"})
    enr.tick([])
    assert enr.host("10.0.0.1") == "name-of-10.0.0.1" and enr.host("8.8.8.8")
    assert asked == []          # a --json line asks two names: no local test for them


def _live_view_enrichment(later, *args):
    from flowtop import cli
    from flowtop.enrich.bundle import from_options
    return from_options(cli.parse(["-n", "-G"] + list(args)), live=True, later=later)


def test_a_live_views_providers_left_for_later_are_planned_then_made_by_attach():
    """The live view's first rows come before the process map, the interfaces, the
    devices and the rate history (their imports: ~12 M of ~141 M instructions to the
    first rows); ``planned`` keeps their names, ``attach`` makes them."""
    e = _live_view_enrichment(True)
    assert (e.process, e.ifaces, e.devices, e.history) == (None,) * 4
    assert e.planned == {"process", "ifaces", "devices", "history"}
    e.defer_routes()              # the live view's: only the collector asks for routes
    e.attach()
    try:
        assert None not in (e.process, e.ifaces, e.devices, e.history)
        assert e.ifaces.deferred and e.planned == {"process", "ifaces", "devices", "history"}
        made = e.process
        e.attach()                # once
        assert e.process is made
    finally:
        e.close()


def test_without_later_every_provider_is_made_at_once_as_before():
    e = _live_view_enrichment(False, "--no-iface")
    try:
        assert e.process is not None and e.devices is not None and e.history is not None
        assert e.ifaces is None and e.planned == frozenset()
    finally:
        e.close()


def test_the_first_tick_attaches_what_is_left_for_later():
    """Where no first rows were drawn (an empty table; text frames when curses could not
    start), the first full tick makes them before it refreshes them."""
    from flowtop.table import FlowTable
    e = _live_view_enrichment(True, "--no-iface")
    try:
        e.tick(FlowTable())
        assert e.process is not None and e.history is not None and e.ifaces is None
    finally:
        e.close()


def test_the_live_views_columns_are_placed_for_planned_providers_and_fill_in_once_made():
    """The first frame has the PROCESS, IN and OUT columns (and H's history ones) where
    the table will have them: blank cells until the providers come, the same layout."""
    from flowtop.views.cells import Formatter
    from flowtop.views.columns import layout
    from tests.viewutil import state_of, table_of

    e = _live_view_enrichment(True, "--wide")
    state = state_of("-n", "-G", "--wide", "--loopback")
    fmt = Formatter(state, e)
    assert state.has_process and state.has_iface and state.has_history
    table, when = table_of()
    r = next(iter(table))
    before = fmt.cells(r, when)
    assert before["process"] == "" and (before["in_iface"], before["out_iface"]) == ("", "")
    assert (before["avg2"], before["peak"]) == ("-", "-")
    assert fmt.history_text(r).startswith("none yet")
    from flowtop.views.columns import widths_of
    cols = layout(200, state, widths=widths_of([before]))
    assert {"process", "in_iface", "out_iface", "avg2"} <= {c.name for c, _ in cols}
    e._later = (("process", lambda enrich: FakeProcesses(lambda f: (P, None))),)
    e.attach()
    after = fmt.cells(r, when)
    assert after["process"] == "nginx/7" and layout(200, state, widths=widths_of([after])) == cols


class P:
    pid, name, user = 7, "nginx", "www"
