"""Table health (flowtop.health): fill level, trouble rates, offloaded
flows, the header text, the statistics pane and the --stats record."""

import os

from flowtop import cli, conntrack, health
from flowtop.model import Flow
from flowtop.netlink import uapi as u
from flowtop.netlink.ctnetlink import FIELDS
from flowtop.table import FlowTable
from flowtop.views.cells import Formatter
from flowtop.views.state import ViewState

MIXED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "ctnetlink-mixed.rec")
STATUS = FIELDS.index("status")


def recorded():
    with open(MIXED, "rb") as f:
        return next(conntrack.replay(f))


def with_status(flow, bits):
    fields = list(flow)
    fields[STATUS] = (flow.status or 0) | bits
    return tuple.__new__(Flow, fields)


def cpus(**moved):
    base = {n: 0 for n in health.NAMES}
    one = dict(base, insert=10, found=3)
    two = dict(base, **moved)
    return {0: one, 1: two}


def second_reading(size, **moved):
    """The Health of a second reading a second after the first, ``moved``
    the counters of CPU 1 that rose meanwhile."""
    readings = iter([cpus(), cpus(**moved)])
    probe = health.Probe(lambda: size, lambda: next(readings))
    probe.read(1.0)
    return probe.read(2.0)


def test_rates_are_the_summed_trouble_counters_moved_per_second():
    readings = iter([cpus(), cpus(drop=6, early_drop=2, insert=99)])
    probe = health.Probe(lambda: (100, 1000), lambda: next(readings))
    first = probe.read(10.0)
    assert first.rates is None and not first.trouble and first.share == 0.1
    second = probe.read(12.0)
    assert second.rates == {"drop": 3.0, "early_drop": 1.0, "insert_failed": 0.0,
                            "error": 0.0, "search_restart": 0.0}
    assert second.trouble and not second.full
    text = health.header_text(second)
    assert text.startswith("table 100/1000 10%") and "drop 3/s" in text
    assert "early_drop 1/s" in text and "insert_failed" not in text   # only what moved


def test_a_table_nine_tenths_full_is_trouble_without_any_counter():
    h = health.Probe(lambda: (950, 1000), lambda: cpus()).read(1.0)
    assert h.full and h.trouble and "NEARLY FULL" in health.header_text(h)
    h = health.Probe(lambda: (1000, 1000), lambda: cpus()).read(1.0)
    assert "FULL" in health.header_text(h).split()


def test_the_max_comes_from_the_sysctl_when_the_kernel_does_not_send_it():
    h = health.Probe(lambda: (5, None), lambda: {}, lambda: 4096).read(1.0)
    assert h.max == 4096 and h.count == 5


def test_offloaded_flows_are_counted_marked_and_closed_rows_are_not():
    when, flows = recorded()
    soft = [with_status(f, 1 << u.IPS_OFFLOAD_BIT) for f in flows[:3]]
    hard = [with_status(f, (1 << u.IPS_OFFLOAD_BIT) | (1 << u.IPS_HW_OFFLOAD_BIT))
            for f in flows[3:5]]
    t = FlowTable()
    t.apply(soft + hard + flows[5:], 100.0, when)
    t.apply(soft + hard + flows[5:], 101.0, when + 1)        # idle: bare records too
    assert health.offloaded(list(t)) == (5, 2)
    h = health.Probe(lambda: (len(flows), 1000), lambda: {}).read(1.0, list(t))
    assert "offload 5 (hw 2)" in health.header_text(h)
    t.apply(flows[5:], 102.0, when + 2)                       # they ended: lingering rows
    assert health.offloaded(list(t)) == (0, 0)
    fmt = Formatter(ViewState(cli.parse([])), _enrich())
    offloaded = {f.key for f in soft + hard}
    t = FlowTable()
    t.apply(soft + hard + flows[5:], 100.0, when)
    for r in t:
        cells = fmt.cells(r, when)
        assert cells["bytes_tx"].endswith("!") == (r.key in offloaded), cells["bytes_tx"]
        assert cells["bytes_rx"].endswith("!") == (r.key in offloaded), cells["bytes_rx"]


def _enrich():
    from flowtop.enrich.bundle import Enrichment

    class Services:
        def of_flow(self, sport, dport, proto, numeric=False):
            return str(dport)
    return Enrichment(Services())


def test_the_pane_lists_every_cpu_and_the_totals_and_the_record_matches():
    h = second_reading((7, 70), error=4)
    lines = health.cpu_lines(h)
    head = next(l for l in lines if l.startswith("cpu "))
    names = head.split()[1:]
    rows = {l.split()[0]: l.split()[1:] for l in lines if l[:1].isdigit() or l.startswith("all")}
    assert set(rows) == {"0", "1", "all"}
    assert rows["all"][names.index("insert")] == "10"
    assert rows["1"][names.index("error")] == "4"
    rec = health.record(h, 2.0)
    assert rec["record"] == "stats" and rec["percent"] == 10.0 and rec["trouble"]
    assert rec["rates"]["error"] == 4.0 and rec["totals"]["error"] == 4
    assert [c["cpu"] for c in rec["cpus"]] == [0, 1]


def test_a_narrow_header_gets_the_short_form_and_trouble_stays_in_it():
    h = second_reading((95, 100), drop=4)
    full = health.header_text(h)
    assert full == "table 95/100 95%  NEARLY FULL  drop 4/s"
    assert health.fitting(h, len(full)) == full
    short = health.fitting(h, len(full) - 1)
    assert short == "ct 95%  NEARLY FULL  drop 4/s"
    assert health.fitting(h, len(short) - 1) is None
    assert health.fitting(None, 0) == ""
