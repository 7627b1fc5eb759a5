"""FlowTable.linger_max: how many closed flows may start lingering a tick.

A flood closes tens of thousands of flows a second; kept dimmed for two
ticks of 2-3 s each, they outnumbered the open ones (the header's "shown"
was 100k above its total).  Past the cap they leave at once."""

from flowtop.netlink.ctnetlink import CtEntry
from flowtop.table import FlowTable


def entry(i, bo=0):
    return CtEntry(family=2, l4proto=17, src="10.0.0.1", dst="10.0.%d.%d" % (i // 250, i % 250),
                   sport=1, dport=2, id=i, bytes_orig=bo, bytes_reply=0, packets_orig=0,
                   packets_reply=0, key=b"k%d" % i)


def closed(t):
    return sum(1 for r in t if r.closed)


def test_a_full_dump_lets_at_most_linger_max_vanished_flows_linger():
    t = FlowTable(linger=2, linger_max=10)
    t.apply([entry(i) for i in range(100)], 1.0, 1001.0)
    t.apply([entry(i) for i in range(40)], 2.0, 1002.0)          # 60 vanished
    assert closed(t) == 10 and len(t) == 50
    t.apply([entry(i) for i in range(40)], 3.0, 1003.0)          # they age; none new
    assert closed(t) == 10
    t.apply([entry(i) for i in range(40)], 4.0, 1004.0)          # linger over
    assert closed(t) == 0 and len(t) == 40


def test_destroy_events_let_at_most_linger_max_flows_linger():
    t = FlowTable(linger=2, linger_max=10)
    t.apply([entry(i) for i in range(100)], 1.0, 1001.0)
    t.update([], 2.0, 1002.0, gone=[b"k%d" % i for i in range(60)])
    assert closed(t) == 10 and len(t) == 50
    assert sum(1 for r in t if not r.closed) == 40


def test_without_a_cap_every_vanished_flow_lingers():
    t = FlowTable(linger=2)
    t.apply([entry(i) for i in range(100)], 1.0, 1001.0)
    t.apply([], 2.0, 1002.0)
    assert closed(t) == 100
