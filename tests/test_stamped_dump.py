"""Rates around long full dumps: each datagram's flows carry the time it
was received (netlink.conntrack.iter_dump's ``clock``), and the table
rates each flow over its own sample times (FlowTable.apply_stamped).

A dump of 100k flows is read at the pace it is decoded, 1-1.5 s: a flow
near its start and one near its end were read that far apart.  Stamped
once, before the request, a steady flow read early in one dump and late in
the next showed 40 % too much (or too little)."""

from flowtop.netlink import conntrack as ct
from flowtop.netlink.ctnetlink import CtEntry
from flowtop.table import FlowTable, Row, TableFlow
from tests.test_failures import N_FLOWS, DumpScript, FakeNetlink

RATE = 100.0                      # bytes/s of the steady flow


def entry(key, bo, start=None):
    """A kernel record; with a start timestamp of the class the live
    source decodes into (TableFlow), which the table may store bare."""
    e = CtEntry(family=2, l4proto=17, src="10.0.0.1", dst="10.0.0.2", sport=1, dport=2,
                id=1, bytes_orig=bo, bytes_reply=0, packets_orig=bo // 10,
                packets_reply=0, start=start, key=key)
    return e if start is None else tuple.__new__(TableFlow, e)


def other(n):
    return [entry(b"o%d" % i, 0) for i in range(n)]


def test_a_steady_flow_read_early_then_late_in_long_dumps_keeps_its_rate():
    t = FlowTable()
    # dump 1 asked for at 0.0: the flow is in the second datagram, read at 1.2
    t.apply_stamped([(0.0, other(3)), (1.2, [entry(b"k", int(1.2 * RATE))])], 0.0, 1000.0)
    # dump 2 asked for at 3.0: the flow is in the first datagram, read at 3.0
    t.apply_stamped([(3.0, [entry(b"k", int(3.0 * RATE))]), (4.2, other(3))], 3.0, 1003.0)
    row = t.get(b"k")
    assert type(row) is Row and abs(row.rate_orig - RATE) < 1e-9, row
    assert row.seen == 3.0
    # dump 3 at 6.0, the flow late again (read at 7.5)
    t.apply_stamped([(6.0, other(3)), (7.5, [entry(b"k", int(7.5 * RATE))])], 6.0, 1006.0)
    assert abs(t.get(b"k").rate_orig - RATE) < 1e-9


def test_an_idle_flow_stored_bare_dates_from_the_dump_start():
    """Its counters were the same when the dump began: a later delta over
    that base is exact for what it spans."""
    start = 1_700_000_000 * 10**9
    t = FlowTable()
    t.apply_stamped([(0.0, other(2)), (1.0, [entry(b"k", 100, start)])], 0.0, 1000.0)
    t.apply_stamped([(3.0, other(2)), (4.0, [entry(b"k", 100, start)])], 3.0, 1003.0)
    assert type(t.get(b"k")) is not Row and t.seen(t.get(b"k")) == 3.0       # bare, idle
    t.apply_stamped([(6.0, other(2)), (7.0, [entry(b"k", 500, start)])], 6.0, 1006.0)
    assert t.get(b"k").rate_orig == 400 / (7.0 - 3.0)


def test_a_flow_first_seen_late_in_a_long_dump_has_no_rate_on_its_next_sample():
    """Stored bare at first sight, it is dated at that dump's start though
    it was read 1.2 s later: the next delta's base is that unsure, so the
    rate is unknown for one sample rather than 40 % off."""
    start = 1_700_000_000 * 10**9
    t = FlowTable()
    t.apply_stamped([(0.0, other(2)), (1.2, [entry(b"k", 120, start)])], 0.0, 1000.0)
    t.apply_stamped([(3.0, [entry(b"k", 300, start)]), (4.2, other(2))], 3.0, 1003.0)
    assert t.get(b"k").rate_orig is None
    t.apply_stamped([(6.0, other(2)), (7.5, [entry(b"k", 750, start)])], 6.0, 1006.0)
    assert abs(t.get(b"k").rate_orig - RATE) < 1e-9


def test_a_flow_first_seen_in_a_short_dump_has_its_rate_at_once():
    start = 1_700_000_000 * 10**9
    t = FlowTable()
    t.apply_stamped([(0.0, other(2)), (0.001, [entry(b"k", 0, start)])], 0.0, 1000.0)
    t.apply_stamped([(1.0, [entry(b"k", 100, start)])], 1.0, 1001.0)
    assert t.get(b"k").rate_orig == 100.0


def test_iter_dump_dates_each_datagram_by_the_call_that_had_the_kernel_fill_it():
    """The kernel fills the first datagram during send() and each next one
    as the previous recv() returns: the clock is read right after those
    calls (it counts the recv calls made so far)."""
    sock = FakeNetlink(DumpScript(interrupted=0))
    reads = []
    recv = sock.recv

    def counting_recv():
        reads.append(True)
        return recv()
    sock.recv = counting_recv
    stamps = []
    total = 0
    for stamp, batch in ct.iter_dump(sock, clock=lambda: len(reads)):
        stamps.append((stamp, len(reads)))
        total += len(batch)
    assert total == N_FLOWS and len(stamps) >= 2
    # datagram k (returned by recv number k) is dated after recv k - 1 (0: the send)
    assert all(stamp == k - 1 for stamp, k in stamps), stamps


def test_a_get_between_dumps_of_a_flow_first_seen_late_in_a_long_dump_has_no_rate():
    start = 1_700_000_000 * 10**9
    t = FlowTable()
    t.apply_stamped([(0.0, other(2)), (1.2, [entry(b"k", 120, start)])], 0.0, 1000.0)
    t.update([entry(b"k", 200, start)], 2.0, 1002.0)
    assert t.get(b"k").rate_orig is None
    t.update([entry(b"k", 300, start)], 3.0, 1003.0)
    assert t.get(b"k").rate_orig == 100.0
