"""FlowTable: identity, rates and lingering, driven by a fake clock.

Records are built with the CtEntry keyword constructor (engine input, not
kernel bytes); the recorded fixtures feed real flows through the same path.
"""

import os

import pytest

from flowtop import conntrack
from flowtop.netlink.ctnetlink import CtEntry
from flowtop.table import MAX_DELTA, FlowTable, FreshFlow, Row, TableFlow
from tests import clock

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
WALL0 = 1_700_000_000.0
T0 = 1000.0


def ent(key=b"k1", id=1, start=None, bo=0, br=0, po=0, pr=0, proto=6, **more):
    """One entry; counters default to 0 (accounting on), pass None for off."""
    return CtEntry(key=key, id=id, start=start, l4proto=proto, bytes_orig=bo,
                   bytes_reply=br, packets_orig=po, packets_reply=pr, **more)


class Clock(clock.Clock):
    """Monotonic and wall time moving together, read once per tick."""

    def __init__(self):
        super().__init__(T0, WALL0)

    def apply(self, table, entries, dt=1.0):
        self.advance(dt)
        table.apply(entries, self.now, self.wall)
        return table


def fresh(entries, linger=2):
    table = FlowTable(linger=linger)
    table.apply(entries, T0, WALL0)
    return table, Clock()


def rates(row):
    return (row.rate_orig, row.rate_reply, row.pps_orig, row.pps_reply)


def replay(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return list(conntrack.replay(f))


# --- rates --------------------------------------------------------------------

def test_first_sight_is_new_with_unknown_rates():
    table, clock = fresh([ent(bo=500, br=900, po=5, pr=9)])
    row = table.get(b"k1")
    assert isinstance(row, Row)
    assert row.is_new and row.closed == 0
    assert rates(row) == (None, None, None, None)
    assert row.seen == T0
    clock.apply(table, [ent(bo=500, br=900, po=5, pr=9)])
    row = table.get(b"k1")
    assert not row.is_new
    assert rates(row) == (0.0, 0.0, 0.0, 0.0)
    assert row.seen == T0 + 1


def test_rates_exact_both_directions():
    table, clock = fresh([ent(bo=1000, br=2000, po=10, pr=20)])
    clock.apply(table, [ent(bo=3000, br=2500, po=30, pr=25)], dt=2.0)
    assert rates(table.get(b"k1")) == (1000.0, 250.0, 10.0, 2.5)
    clock.apply(table, [ent(bo=3400, br=2500, po=34, pr=25)], dt=0.5)
    assert rates(table.get(b"k1")) == (800.0, 0.0, 8.0, 0.0)


def test_accounting_off_gives_none():
    off = dict(bo=None, br=None, po=None, pr=None)
    table, clock = fresh([ent(**off)])
    clock.apply(table, [ent(**off)])
    assert rates(table.get(b"k1")) == (None, None, None, None)
    assert table.totals() == (0.0, 0.0, False)
    # accounting switched on mid-run: the first counted sample is only a base
    clock.apply(table, [ent(bo=100, br=100, po=1, pr=1)])
    assert rates(table.get(b"k1")) == (None, None, None, None)
    clock.apply(table, [ent(bo=300, br=100, po=3, pr=1)])
    assert rates(table.get(b"k1")) == (200.0, 0.0, 2.0, 0.0)


def test_counter_reset_is_none_then_rebased():
    table, clock = fresh([ent(bo=5000, br=7000, po=50, pr=70)])
    clock.apply(table, [ent(bo=100, br=40, po=1, pr=1)])      # conntrack -Z
    row = table.get(b"k1")
    assert rates(row) == (None, None, None, None)
    assert not row.is_new            # same flow, not a new one
    clock.apply(table, [ent(bo=600, br=140, po=6, pr=3)])
    assert rates(table.get(b"k1")) == (500.0, 100.0, 5.0, 2.0)


def test_one_counter_reset_leaves_the_others():
    table, clock = fresh([ent(bo=5000, br=7000, po=50, pr=70)])
    clock.apply(table, [ent(bo=10, br=7100, po=51, pr=71)])
    assert rates(table.get(b"k1")) == (None, 100.0, 1.0, 1.0)


@pytest.mark.parametrize("which", ["bo", "br", "po", "pr"])
def test_idle_shortcut_needs_every_counter_equal(which):
    counters = dict(bo=5000, br=70, po=5, pr=1)
    table, clock = fresh([ent(**counters)])
    clock.apply(table, [ent(**counters)])
    assert rates(table.get(b"k1")) == (0.0, 0.0, 0.0, 0.0)
    clock.apply(table, [ent(**dict(counters, **{which: 0}))])   # only this one was reset
    want = tuple(None if name == which else 0.0 for name in ("bo", "br", "po", "pr"))
    assert rates(table.get(b"k1")) == want


def test_absurd_delta_is_treated_as_reset():
    table, clock = fresh([ent(bo=0, br=0)])
    clock.apply(table, [ent(bo=MAX_DELTA + 1, br=MAX_DELTA)])
    row = table.get(b"k1")
    assert row.rate_orig is None
    assert row.rate_reply == float(MAX_DELTA)    # the limit itself still counts
    clock.apply(table, [ent(bo=MAX_DELTA + 11, br=MAX_DELTA)])
    assert table.get(b"k1").rate_orig == 10.0


def test_tiny_interval_keeps_previous_rates():
    table, clock = fresh([ent(bo=0, po=0)])
    clock.apply(table, [ent(bo=1000, po=10)])
    assert table.get(b"k1").rate_orig == 1000.0
    clock.apply(table, [ent(bo=1003, po=11)], dt=0.0005)       # no division by 0.5 ms
    row = table.get(b"k1")
    assert (row.rate_orig, row.pps_orig) == (1000.0, 10.0)
    assert row.entry.bytes_orig == 1003 and row.seen == clock.now
    clock.apply(table, [ent(bo=1503, po=16)])                  # based on that sample
    assert (table.get(b"k1").rate_orig, table.get(b"k1").pps_orig) == (500.0, 5.0)


def test_same_time_and_clock_step_back_never_divide():
    table, clock = fresh([ent(bo=0)])
    table.apply([ent(bo=100)], T0, WALL0)                      # same now: dt 0
    assert table.get(b"k1").rate_orig is None and table.get(b"k1").is_new
    table.apply([ent(bo=200)], T0 - 5, WALL0)                  # replay clock went back
    assert table.get(b"k1").rate_orig is None


# --- identity -------------------------------------------------------------------

def test_id_reuse_with_same_key_is_a_new_flow():
    table, clock = fresh([ent(id=7, bo=1000)])
    clock.apply(table, [ent(id=7, bo=2000)])
    assert table.get(b"k1").rate_orig == 1000.0
    clock.apply(table, [ent(id=8, bo=50)])
    row = table.get(b"k1")
    assert row.is_new and row.seen == clock.now
    assert rates(row) == (None, None, None, None)
    assert row.start_wall == clock.wall and row.age_approx
    assert len(table) == 1


def test_start_change_is_a_new_flow():
    s1, s2 = int((WALL0 - 30) * 1e9), int((WALL0 + 0.5) * 1e9)
    table, clock = fresh([ent(start=s1, bo=100)])
    clock.apply(table, [ent(start=s2, bo=200)])     # same key and id, re-created
    row = table.get(b"k1")
    assert row.is_new and rates(row) == (None, None, None, None)
    assert row.start_wall == s2 / 1e9 and not row.age_approx


def test_same_id_different_keys_are_two_rows():
    table, clock = fresh([ent(key=b"a", id=99, bo=0), ent(key=b"b", id=99, bo=0)])
    clock.apply(table, [ent(key=b"a", id=99, bo=10), ent(key=b"b", id=99, bo=20)])
    assert len(table) == 2
    assert (table.get(b"a").rate_orig, table.get(b"b").rate_orig) == (10.0, 20.0)
    assert not table.get(b"a").is_new and not table.get(b"b").is_new


def test_key_listed_twice_in_one_dump_is_one_row():
    table, clock = fresh([ent(bo=0)])
    clock.apply(table, [ent(bo=100), ent(key=b"x"), ent(bo=100)])
    assert len(table) == 2 and table.get(b"k1").rate_orig == 100.0
    t2 = FlowTable()
    t2.apply([ent(), ent()], T0, WALL0)
    assert len(t2) == 1 and t2.get(b"k1").is_new


# --- closing and lingering ------------------------------------------------------

def test_vanished_flow_lingers_then_is_dropped():
    table, clock = fresh([ent(key=b"a", bo=0), ent(key=b"b", bo=0, proto=17)])
    clock.apply(table, [ent(key=b"a", bo=10), ent(key=b"b", bo=10, proto=17)])
    last_seen = table.get(b"b").seen
    for closed in (1, 2):
        clock.apply(table, [ent(key=b"a", bo=10)])
        row = table.get(b"b")
        assert row.closed == closed and not row.is_new
        assert rates(row) == (None, None, None, None)
        assert row.seen == last_seen and row.entry.bytes_orig == 10
        assert len(table) == 2 and table.counts() == {6: 1}
    clock.apply(table, [ent(key=b"a", bo=10)])
    assert table.get(b"b") is None and len(table) == 1
    assert [r.key for r in table] == [b"a"]


@pytest.mark.parametrize("linger", [0, 1, 3])
def test_linger_is_configurable(linger):
    table, clock = fresh([ent()], linger=linger)
    seen = []
    for _ in range(linger + 2):
        clock.apply(table, [])
        seen.append(table.get(b"k1").closed if b"k1" in table else None)
    assert seen == list(range(1, linger + 1)) + [None, None]


def test_reappearing_flow_is_open_again():
    table, clock = fresh([ent(bo=0)])
    clock.apply(table, [])
    assert table.get(b"k1").closed == 1
    clock.apply(table, [ent(bo=400, po=4)])           # 2 s after its last sample
    row = table.get(b"k1")
    assert row.closed == 0 and not row.is_new
    assert (row.rate_orig, row.pps_orig) == (200.0, 2.0)


def test_reappearing_flow_with_other_id_is_new():
    table, clock = fresh([ent(id=1, bo=0)])
    clock.apply(table, [])
    clock.apply(table, [ent(id=2, bo=400)])
    row = table.get(b"k1")
    assert row.closed == 0 and row.is_new and row.rate_orig is None


# --- totals, counts, age ----------------------------------------------------------

def test_totals_and_counts_over_open_rows():
    table, clock = fresh([ent(key=b"a", bo=0, br=0), ent(key=b"b", bo=0, br=0, proto=17),
                          ent(key=b"c", bo=None, br=None, proto=17),
                          ent(key=b"d", bo=0, br=0, proto=1)])
    assert table.totals() == (0.0, 0.0, False)
    assert table.counts() == {6: 1, 17: 2, 1: 1}
    clock.apply(table, [ent(key=b"a", bo=100, br=1000), ent(key=b"b", bo=50, br=5, proto=17),
                        ent(key=b"c", bo=None, br=None, proto=17),
                        ent(key=b"new", bo=9999, br=9999, proto=1)])
    assert table.totals() == (150.0, 1005.0, True)     # c unknown, new unknown, d closed
    assert table.counts() == {6: 1, 17: 2, 1: 1}       # d (closed) is not counted
    assert len(table) == 5
    counts = table.counts()
    counts[6] = 100                                    # a copy: the cache stays right
    assert table.counts()[6] == 1


def test_age_from_kernel_start():
    start = int((WALL0 - 90.25) * 1e9)
    table, clock = fresh([ent(start=start)])
    row = table.get(b"k1")
    assert not row.age_approx and row.start_wall == start / 1e9
    assert row.age(WALL0) == pytest.approx(90.25)
    clock.apply(table, [ent(start=start)], dt=10)
    assert table.get(b"k1").age(clock.wall) == pytest.approx(100.25)


def test_age_approximate_from_first_sight():
    table, clock = fresh([ent(start=None)])
    row = table.get(b"k1")
    assert row.age_approx and row.start_wall == WALL0 and row.age(WALL0) == 0.0
    clock.apply(table, [ent(start=None)], dt=10)
    row = table.get(b"k1")
    assert row.start_wall == WALL0 and row.age(clock.wall) == 10.0
    assert row.age(WALL0 - 100) == 0.0                  # wall clock stepped back: never < 0


# --- robustness -----------------------------------------------------------------

def test_rows_of_an_earlier_tick_never_change():
    table, clock = fresh([ent(key=b"a", bo=0), ent(key=b"b", bo=0)])
    before = list(table)                 # what a published snapshot holds
    state = [(r.key, r.seen, rates(r), r.closed, r.is_new, r.entry) for r in before]
    clock.apply(table, [ent(key=b"a", bo=100)])
    assert [(r.key, r.seen, rates(r), r.closed, r.is_new, r.entry) for r in before] == state


def test_failing_iterable_closes_nothing_and_the_next_dump_is_exact():
    """A full apply works in place: a dump that fails half way leaves the
    rows it listed updated and closes nothing; the next one is exact."""
    table, clock = fresh([ent(key=b"a"), ent(key=b"b")])

    def broken():
        yield ent(key=b"a", bo=5)
        raise OSError("dump interrupted")

    with pytest.raises(OSError):
        table.apply(broken(), T0 + 1, WALL0 + 1)
    assert sorted(table.rows) == [b"a", b"b"] and all(not r.closed for r in table)
    assert table.get(b"a").rate_orig == 5.0 and table.get(b"b").is_new
    clock.now, clock.wall = T0 + 1, WALL0 + 1
    clock.apply(table, [ent(key=b"a", bo=15)])
    assert table.get(b"a").rate_orig == 10.0 and table.get(b"b").closed == 1


def test_failing_dump_of_bare_flows_then_partial_then_full():
    """Bare records a failed dump did not reach stay usable, and the next
    full dump closes exactly the ones it does not list."""
    t = FlowTable()
    t.apply([_table_flow(k, bo=100) for k in (b"a", b"b", b"c")], 10.0, 1000.0)

    def broken():
        yield _table_flow(b"a", bo=100)
        raise OSError("dump interrupted")

    with pytest.raises(OSError):
        t.apply(broken(), 11.0, 1001.0)
    assert not any(r.closed for r in t) and t.counts() == {17: 3}
    t.update([_table_flow(b"b", bo=300)], 11.5, 1001.5)     # a visible row refreshed
    assert t.get(b"b").rate_orig == 133.33333333333334      # 200 B since the last full dump
    t.apply([_table_flow(b"a", bo=100), _table_flow(b"b", bo=300)], 12.0, 1002.0)
    assert t.get(b"c").closed == 1 and not t.get(b"a").closed and not t.get(b"b").closed
    assert type(t.get(b"a")) is TableFlow and t.counts() == {17: 2}


def test_recorded_flows_twice_with_modified_counters():
    (when, flows), = replay("ctnetlink-mixed.rec")
    assert len(flows) > 5 and all(f.packets_orig is not None for f in flows)
    table = FlowTable()
    table.apply(flows, 50.0, when)
    assert len(table) == len(flows) and all(r.is_new for r in table)
    assert all(not r.age_approx and r.start_wall == f.start / 1e9 for r, f in zip(table, flows))
    later = [type(f)(**dict(f.as_dict(), bytes_orig=f.bytes_orig + 100 * i,
                            bytes_reply=f.bytes_reply + 300 * i,
                            packets_orig=f.packets_orig + i, packets_reply=f.packets_reply + 2 * i))
             for i, f in enumerate(flows)]
    table.apply(later, 52.0, when + 2)
    assert len(table) == len(flows)
    for i, f in enumerate(flows):
        row = table.get(f.key)
        # an unchanged flow keeps its old record (only its timeout would differ)
        assert row.entry is (later[i] if i else flows[0]) and not row.is_new and row.closed == 0
        assert rates(row) == (50.0 * i, 150.0 * i, 0.5 * i, 1.0 * i)
    n = len(flows)
    assert table.totals() == (50.0 * n * (n - 1) / 2, 150.0 * n * (n - 1) / 2, True)
    want = {}
    for f in flows:
        want[f.l4proto] = want.get(f.l4proto, 0) + 1
    assert table.counts() == want
    # the whole dump vanishes: every flow lingers, none is counted
    table.apply([], 53.0, when + 3)
    assert len(table) == n and table.counts() == {} and table.totals() == (0.0, 0.0, False)


def test_recorded_flows_without_accounting():
    (when, flows), = replay("ctnetlink-acct-off.rec")
    table = FlowTable()
    table.apply(flows, 10.0, when)
    table.apply(flows, 11.0, when + 1)
    assert len(table) == len(flows)
    for row in table:
        assert rates(row) == (None, None, None, None) and row.age_approx
        assert row.start_wall == when and row.age(when + 1) == 1.0
    assert table.totals() == (0.0, 0.0, False)


def _entry(key, id_=1, bo=0, br=0, start=None):
    return CtEntry(family=2, l4proto=17, src="10.0.0.1", dst="10.0.0.2", sport=1, dport=2,
                   id=id_, bytes_orig=bo, bytes_reply=br, packets_orig=bo // 100,
                   packets_reply=br // 100, start=start, key=key)


def test_partial_update_refreshes_only_given_rows():
    t = FlowTable(linger=2)
    a, b = _entry(b"a"), _entry(b"b")
    t.apply([a, b], 10.0, 1000.0)
    t.apply([_entry(b"a", bo=1000), _entry(b"b", bo=500)], 11.0, 1001.0)
    before_b = t.get(b"b")
    t.update([_entry(b"a", bo=3000)], 12.0, 1002.0)
    assert t.get(b"a").rate_orig == 2000.0
    assert t.get(b"b") is before_b                      # untouched: its rate is older
    t.update([], 13.0, 1003.0, gone=[b"b"])
    assert t.get(b"b").closed == 1 and t.get(b"b").rate_orig is None
    t.update([_entry(b"c")], 14.0, 1004.0)            # a NEW event
    assert t.get(b"c").is_new and t.get(b"b").closed == 2
    t.update([], 15.0, 1005.0)
    assert t.get(b"b") is None and len(t) == 2


def test_idle_flows_keep_their_row_and_record():
    """A big idle table allocates nothing per tick: same Row, same record."""
    t = FlowTable()
    e1 = _entry(b"k", bo=100)
    t.apply([e1], 10.0, 1000.0)
    t.apply([_entry(b"k", bo=100)], 11.0, 1001.0)     # idle: rates 0.0
    row = t.get(b"k")
    assert row.rate_orig == 0.0 and row.entry is e1
    t.apply([_entry(b"k", bo=100)], 12.0, 1002.0)
    assert t.get(b"k") is row and row.seen == 12.0
    t.apply([_entry(b"k", bo=400)], 13.0, 1003.0)     # moves again: a new row, right rate
    assert t.get(b"k") is not row and t.get(b"k").rate_orig == 300.0


def _table_flow(key, bo=0, start=1_700_000_000 * 10**9):
    e = _entry(key, bo=bo, start=start)
    return tuple.__new__(TableFlow, e)


def test_idle_flows_with_timestamps_are_stored_bare():
    """A full snapshot keeps a TableFlow as the row itself (no Row): on
    first sight it reads as a new row with unknown rates (a FreshFlow),
    once idle as an idle row, sampled at the last full snapshot."""
    t = FlowTable()
    first = _table_flow(b"k", bo=100)
    t.apply([first], 10.0, 1000.0)
    row = t.get(b"k")
    assert row is first and type(row) is FreshFlow and row.entry is first
    assert row.is_new and rates(row) == (None, None, None, None) and row.closed == 0
    assert row.start_wall == 1_700_000_000.0 and not row.age_approx and t.seen(row) == 10.0
    assert t.counts() == {17: 1} and t.totals() == (0.0, 0.0, False)
    t.apply([_table_flow(b"k", bo=100)], 11.0, 1001.0)
    row = t.get(b"k")
    assert row is first and type(row) is TableFlow          # the same object, now idle
    assert row.entry is first and t.seen(row) == 11.0
    assert rates(row) == (0.0, 0.0, 0.0, 0.0) and not row.is_new and row.closed == 0
    assert not row.age_approx and row.start_wall == 1_700_000_000.0
    assert row.age(1_700_000_010.5) == 10.5
    # between full snapshots an unchanged visible flow gets a Row with its own sample time
    t.update([_table_flow(b"k", bo=100)], 11.5, 1001.5)
    assert type(t.get(b"k")) is Row and t.seen(t.get(b"k")) == 11.5
    t.apply([_table_flow(b"k", bo=100)], 13.0, 1003.0)
    assert t.get(b"k") is first
    # it moves: the rate spans the time since that full snapshot
    t.apply([_table_flow(b"k", bo=700)], 15.0, 1005.0)
    assert type(t.get(b"k")) is Row and t.get(b"k").rate_orig == 300.0
    # gone: a closed Row that remembers the bare record
    t.apply([_table_flow(b"k", bo=700)], 16.0, 1006.0)
    assert t.get(b"k").entry.bytes_orig == 700 and type(t.get(b"k")) is TableFlow
    t.update([], 16.5, 1006.5, gone=[b"k"])
    row = t.get(b"k")
    assert type(row) is Row and row.closed == 1 and row.seen == 16.0
    assert rates(row) == (None, None, None, None)


def test_flows_without_timestamps_keep_rows():
    t = FlowTable()
    for now in (10.0, 11.0, 12.0):
        t.apply([_table_flow(b"k", start=None)], now, 1000.0 + now)
    assert type(t.get(b"k")) is Row and t.get(b"k").age_approx


def test_one_key_object_per_kept_flow():
    """A kept record stays in the dict under its own key object, not the
    equal key of the fresh record dropped for it: one key per flow, not two."""
    def key():
        return bytes(bytearray(b"key-1"))     # equal, never the same object

    t = FlowTable()
    first = _table_flow(key(), bo=100)
    t.apply([first], 10.0, 1000.0)
    t.apply([_table_flow(key(), bo=100)], 11.0, 1001.0)       # idle: kept bare
    (k, v), = t.rows.items()
    assert v is first and k is first.key
    t = FlowTable()                                           # no timestamps: Rows
    e = _table_flow(key(), start=None)
    t.apply([e], 10.0, 1000.0)
    t.apply([_table_flow(key(), start=None)], 11.0, 1001.0)   # idle: a Row of the old record
    (k, row), = t.rows.items()
    assert row.entry is e and k is e.key and row.key is e.key
    t.apply([_table_flow(key(), start=None)], 12.0, 1002.0)   # the idle Row kept
    (k, row2), = t.rows.items()
    assert row2 is row and k is e.key


def test_churn_keeps_the_dict_compact():
    """Flows leaving and joining a table updated in place: the dict is
    copied before its deleted slots run out, so it stays sized for its
    flows (Python's own resize would size it for three times as many)."""
    import sys
    t = FlowTable(linger=0)
    live = list(range(2000))
    clock = 0.0
    biggest = 0
    for step in range(60):
        clock += 1.0
        live = live[100:] + list(range(2000 + step * 100, 2100 + step * 100))
        t.apply([ent(key=b"%d" % i, id=i) for i in live], clock, WALL0 + clock)
        biggest = max(biggest, sys.getsizeof(t.rows))
        assert sorted(t.rows) == sorted(b"%d" % i for i in live)
    assert biggest <= sys.getsizeof(dict.fromkeys(range(2000)))


def test_a_static_table_keeps_its_version_across_full_and_partial_snapshots():
    """The version moves when a reader would see something else (a flow
    new, no longer new, moving, closing), and not when a static table is
    listed again, fully or by a refresh of a few rows: the collector then
    publishes the same rows and the screen chooses nothing again."""
    t = FlowTable()
    keys = (b"a", b"b", b"c")
    t.apply([_table_flow(k, bo=100) for k in keys], 10.0, 1000.0)
    first = t.version
    t.apply([_table_flow(k, bo=100) for k in keys], 11.0, 1001.0)
    assert t.version != first                       # no longer new
    idle = t.version
    t.apply([_table_flow(k, bo=100) for k in keys], 12.0, 1002.0)
    assert t.version == idle
    t.update([_table_flow(b"a", bo=100)], 12.5, 1002.5)     # a shown row refreshed: a Row now
    assert type(t.get(b"a")) is Row and t.version == idle
    t.update([_table_flow(b"a", bo=100)], 13.0, 1003.0)
    t.apply([_table_flow(k, bo=100) for k in keys], 14.0, 1004.0)   # bare again
    assert type(t.get(b"a")) is TableFlow and t.version == idle
    t.update([_table_flow(b"b", bo=300)], 14.5, 1004.5)
    assert t.version != idle                        # b moved
    moved = t.version
    t.update([], 15.0, 1005.0, gone=[b"c"])
    assert t.version != moved and t.get(b"c").closed == 1
    assert t.counts() == {17: 2} and t.totals() == (400.0, 0.0, True)


def test_changes_list_the_rows_in_the_order_the_table_holds_the_new_ones():
    """take_changes: what partial samples changed since the last call, a
    key that left and came back logged where the table now holds it (last);
    a full apply lists what it changed too (see the next test for "anything")."""
    t = FlowTable(linger=1)
    t.apply([_table_flow(k, bo=100) for k in (b"a", b"b", b"c")], 10.0, 1000.0)
    assert t.take_changes() is None
    t.update([], 11.0, 1001.0, gone=[b"a"])                  # a closes
    t.update([_table_flow(b"d", bo=1)], 12.0, 1002.0)        # d new; a leaves (linger 1)
    t.update([_table_flow(b"a", bo=5)], 13.0, 1003.0)        # a back, after d
    dropped, changed = t.take_changes()
    assert dropped == {b"a"} and list(changed) == [b"d", b"a"] == list(t.rows)[-2:]
    assert changed[b"a"] is t.get(b"a") and not t.get(b"a").closed
    assert t.take_changes() == (set(), {})
    t.apply([_table_flow(k, bo=100) for k in (b"b", b"c")], 14.0, 1004.0)
    dropped, changed = t.take_changes()      # b, c no longer new; d, a closing (linger 1)
    assert dropped == set() and list(changed) == [b"b", b"c", b"d", b"a"]
    assert [type(r) for r in changed.values()][:2] == [TableFlow, TableFlow]
    assert [changed[k].closed for k in (b"d", b"a")] == [1, 1] and changed[b"a"] is t.get(b"a")


def test_a_full_apply_lists_the_rows_it_changed_unless_over_a_quarter_of_them():
    """The screen follows a full dump's changes (views.select.Selection) instead
    of a pass over every row (250k: ~60 ms each dump); past a quarter of the
    table a pass costs less, and the table says "anything" (None)."""
    keys = [b"%d" % i for i in range(1000)]
    t = FlowTable(linger=1)
    t.apply([_table_flow(k, bo=100) for k in keys], 10.0, 1000.0)
    t.apply([_table_flow(k, bo=100) for k in keys], 11.0, 1001.0)
    assert t.take_changes() is None                     # the first apply: everything
    moved = keys[10:20]
    t.apply([_table_flow(k, bo=200 if k in moved else 100) for k in keys[:-5]], 12.0, 1002.0)
    dropped, changed = t.take_changes()
    assert dropped == set() and list(changed) == moved + keys[-5:]    # the last 5 closing
    assert all(changed[k] is t.get(k) for k in changed) and t.get(keys[-1]).closed == 1
    t.apply([_table_flow(k, bo=100) for k in keys[:-5]], 13.0, 1003.0)
    dropped, changed = t.take_changes()     # the moved ones idle again; the closed ones leave
    assert dropped == set(keys[-5:]) and list(changed) == moved
    listed = [_table_flow(k, bo=300 if i < 400 else 100) for i, k in enumerate(keys[:-5])]
    t.apply(listed, 14.0, 1004.0)
    assert t.take_changes() is None                     # 400 moved of 995
    t.apply(listed, 15.0, 1005.0)
    assert t.take_changes() is None                     # the 400 idle again
    t.apply(listed, 16.0, 1006.0)
    assert t.take_changes() == (set(), {})


def test_tables_that_nobody_takes_changes_from_keep_no_log():
    """--once, the streams and the exports apply full dumps and never ask."""
    t = FlowTable(linger=1)
    for i in range(5):
        t.apply([_table_flow(b"%d" % k, bo=100 * i) for k in range(i, i + 100)], 10.0 + i,
                1000.0 + i)
        assert t._log == {} and t._dropped == set()


def test_a_refreshed_row_without_counters_that_did_not_change_keeps_the_version():
    """Accounting off (nf_conntrack_acct=0, the router VM's default): no
    counters, rates unknown.  A row on screen refreshed by GET with nothing
    but its timeout moved reads the same: the version stays, so the screen
    chooses nothing again (a mipsel router took 1-4 s a tick choosing 16k
    rows for each such 'change').  A state change still counts."""
    def uncounted(key, state=3, timeout=100):
        return tuple.__new__(TableFlow, CtEntry(
            family=2, l4proto=6, src="10.0.0.1", dst="10.0.0.2", sport=1, dport=2, id=1,
            start=1_700_000_000 * 10**9, key=key, state=state, timeout=timeout))
    t = FlowTable()
    keys = (b"a", b"b")
    t.apply([uncounted(k) for k in keys], 10.0, 1000.0)
    t.apply([uncounted(k) for k in keys], 11.0, 1001.0)
    t.update([uncounted(b"a", timeout=99)], 11.5, 1001.5)     # first GET: no longer new
    v = t.version
    row = t.get(b"a")
    assert type(row) is Row and row.rate_orig is None and not row.is_new
    t.take_changes()
    for i in range(3):
        t.update([uncounted(b"a", timeout=98 - i)], 12.0 + i, 1002.0 + i)
    assert t.version == v and t.get(b"a") is row and t.take_changes() == (set(), {})
    t.update([uncounted(b"a", state=4)], 16.0, 1006.0)        # it moved on: a change
    assert t.version != v and t.get(b"a").entry.state == 4


def test_full_applies_count_the_flows_they_found_new_not_those_listed_again():
    """The collector reads a flood's rate from it while its event reader is paused."""
    t = FlowTable()
    t.apply([ent(b"a"), ent(b"b")], 1.0, 1.0)
    t.update([ent(b"c")], 1.5, 1.5)                 # a NEW event's flow: not a dump's
    t.apply([ent(b"a"), ent(b"c"), ent(b"d"), ent(b"e")], 2.0, 2.0)    # b vanished
    assert t.added == 2 + 2
