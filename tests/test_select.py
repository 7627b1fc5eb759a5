"""Which flows the live views show and in what order: the filters, the
sort, and the Selection that keeps their results (no curses)."""

import pytest

from flowtop.netlink.ctnetlink import FIELDS

from flowtop import conntrack
from flowtop.table import FlowTable
from flowtop.model import is_loopback, proto_name
from flowtop.views.cells import Formatter
from flowtop.views.select import _port, header_counts, select
from flowtop.values import SORTS
from flowtop.views.state import ASCENDING, GROUPS, GROUP_OF

from tests.viewutil import MIXED, FakeEnrich, state_of, table_of

def test_loopback_hidden_unless_asked():
    t, _ = table_of()
    fmt = Formatter(state_of(), FakeEnrich())
    shown = select(list(t), state_of(), fmt)
    assert shown and not any(is_loopback(r.entry.dst) for r in shown)
    everything = select(list(t), state_of("--loopback"), fmt)
    assert len(everything) == len(t)


def test_protocol_and_family_filters():
    t, _ = table_of()
    fmt = Formatter(state_of(), FakeEnrich())
    only_tcp = select(list(t), state_of("--loopback", "-T"), fmt)
    assert only_tcp and all(r.entry.l4proto == 6 for r in only_tcp)
    st = state_of("--loopback")
    st.toggle_group("T")
    assert not any(r.entry.l4proto == 6 for r in select(list(t), st, fmt))
    st.toggle_family("4")
    assert all(r.entry.family == 10 for r in select(list(t), st, fmt))


def test_text_filter_and_sort():
    t, _ = table_of()
    st = state_of("--loopback", "--sort", "+port")
    fmt = Formatter(st, FakeEnrich())
    def port(r):                                      # GRE keys are not ports
        return 0 if r.entry.l4proto == 47 else r.entry.dport or 0
    rows = select(list(t), st, fmt)
    ports = [port(r) for r in rows]
    assert ports == sorted(ports, reverse=True)       # '+' flips port's natural A-Z order
    st.reverse = False
    ports = [port(r) for r in select(list(t), st, fmt)]
    assert ports == sorted(ports)
    st.filter = "5001"
    assert [r.entry.dport for r in select(list(t), st, fmt)] == [5001]


@pytest.mark.parametrize("argv", [(), ("--loopback",), ("-T",), ("-U", "--loopback"), ("-6",),
                                  ("-4", "-I")])
def test_select_agrees_with_the_plain_filter_on_bare_and_full_rows(argv):
    """select()'s memoised, by-index loop against the filters spelt out,
    over recorded flows (as bare TableFlow rows and as Rows) plus
    loopback spellings the recording lacks."""
    from flowtop.table import TableFlow
    with open(MIXED, "rb") as f:
        when, flows = next(conntrack.replay(f))
    records = [tuple.__new__(TableFlow, f) for f in flows]
    for addr in ("127.9.9.9", "::1", "::ffff:127.0.0.2", "::ffff:10.0.0.1", "12.7.0.1",
                 "::1:2", "1127.0.0.1"):
        fields = list(flows[0])
        fields[2], fields[3] = "10.9.9.9", addr    # src, dst
        fields[FIELDS.index("key")] = b"extra-" + addr.encode()
        records.append(tuple.__new__(TableFlow, fields))
    t = FlowTable()
    t.apply(records, 100.0, when)                   # Rows (new)
    t.apply(list(records), 101.0, when + 1)         # idle: bare records
    assert any(type(r) is TableFlow for r in t)
    st = state_of(*argv)
    fmt = Formatter(st, FakeEnrich())
    hidden = set().union(*(GROUPS[k] for k in st.hidden_groups)) if st.hidden_groups else set()

    def plain(r):
        e = r.entry
        return not (e.l4proto in hidden or e.family in st.hidden_families
                    or (not st.show_other and e.l4proto not in GROUP_OF)
                    or (not st.loopback and (is_loopback(e.src) or is_loopback(e.dst))))
    want = [r.key for r in t if plain(r)]
    got = [r.key for r in select(list(t), st, fmt, sort=False)]
    assert got == want
    if not argv:
        others = (b"extra-12.7.0.1", b"extra-::ffff:10.0.0.1", b"extra-::1:2",
                  b"extra-1127.0.0.1")
        assert all(k in got for k in others)
        assert not any(k.startswith(b"extra-") for k in got if k not in others)
    if argv == ("--loopback",):
        assert sum(k.startswith(b"extra-") for k in got) == 7


def test_the_loopback_filter_keeps_nothing_per_distinct_address():
    """A table of many distinct addresses (a server's, a router's) costs the
    loopback test no memory: a memo of addresses thrashed past 2**17 of them."""
    import tracemalloc
    from flowtop.table import TableFlow
    from flowtop.views.select import base
    with open(MIXED, "rb") as f:
        _when, flows = next(conntrack.replay(f))
    fields = list(next(f for f in flows if f.family == 2))
    rows = []
    for i in range(20000):
        fields[2] = "10.77.%d.%d" % (i >> 8, i & 255)
        fields[3] = "10.78.%d.%d" % (i >> 8, i & 255)
        rows.append(tuple.__new__(TableFlow, fields))
    st = state_of()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = base(rows, st)
        assert len(kept) == len(rows)
        del kept
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 100_000, grown


PLAIN_SORT_KEYS = {      # the orders the views promise, spelt out as tuples
    "state": lambda r: (r.entry.l4proto, r.entry.state if r.entry.state is not None else -1),
    "rate": lambda r: (r.rate_orig or 0.0) + (r.rate_reply or 0.0),
    "bytes": lambda r: (r.entry.bytes_orig or 0) + (r.entry.bytes_reply or 0),
    "packets": lambda r: (r.entry.packets_orig or 0) + (r.entry.packets_reply or 0),
    "age": lambda r: -r.start_wall,
    "proto": lambda r: (proto_name(r.entry.l4proto), r.entry.family),
    "dst": lambda r: (r.entry.family, r.entry.dst or "", _port(r.entry)),
    "port": lambda r: (_port(r.entry), r.entry.l4proto),
}


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("flip", ["", "+"])
def test_sort_orders_equal_the_plain_tuple_keys(sort, flip):
    """The allocation-free sort keys (shared tuples, two stable passes for
    dst) give exactly the order of the plain keys, ties in table order."""
    assert set(PLAIN_SORT_KEYS) == set(SORTS)
    t, when = table_of()
    st = state_of("--loopback", "--sort", flip + sort)
    got = [r.key for r in select(list(t), st, Formatter(st, FakeEnrich()))]
    descending = (sort not in ASCENDING) != bool(flip)
    want = [r.key for r in sorted(select(list(t), st, Formatter(st, FakeEnrich()),
                                            sort=False),
                                  key=PLAIN_SORT_KEYS[sort], reverse=descending)]
    assert len(got) > 10 and got == want


def _keys(items):
    return [r.key for r in items]


def test_a_selection_chooses_again_only_when_the_rows_or_a_filter_change(monkeypatch):
    from flowtop.views import select as sel
    calls = []
    real = sel.chosen
    monkeypatch.setattr(sel, "chosen", lambda *a, **k: calls.append(1) or real(*a, **k))
    t, _ = table_of()
    rows = list(t)
    st = state_of("--loopback")
    fmt = Formatter(st, FakeEnrich())
    selection = sel.Selection()
    first = selection.build(rows, st, fmt)
    st.bits = st.wide = True                          # looks: the same list
    assert selection.build(rows, st, fmt) is first and len(calls) == 1
    st.sort = "port"                                  # order: sorted again, not chosen again
    by_port = selection.build(rows, st, fmt)
    assert by_port is not first and len(calls) == 1
    assert _keys(by_port) == _keys(sel.ordered(real(rows, st, fmt), st))
    st.filter = "5001"                                # a filter: chosen again
    assert _keys(selection.build(rows, st, fmt)) == _keys(sel.ordered(real(rows, st, fmt), st))
    assert len(calls) == 2
    selection.build(list(rows), st, fmt)              # a new snapshot's rows
    assert len(calls) == 3


def test_a_selection_equals_a_fresh_build_after_any_keys():
    """Whatever the keys did, the kept results are what a whole pass gives."""
    import random
    from flowtop.views import keys as kt
    from flowtop.views.select import Selection, build
    t, _ = table_of()
    rows = list(t)
    keys = list("atTUDIS46LorxXPnswiAbBp/") + ["\t", "KEY_BTAB", "\n", "\x1b", "KEY_DOWN"]
    for seed in range(20):
        rnd = random.Random(seed)
        st = state_of()
        fmt = Formatter(st, FakeEnrich())
        ui = kt.Ui(st)
        selection = Selection()
        for _ in range(40):
            key = rnd.choice(keys)
            kt.dispatch(ui, key)
            while ui.mode == "filter":               # a longer text, or a shorter one
                kt.dispatch(ui, rnd.choice(["1", "5", "0", ".", "\n", "KEY_BACKSPACE"]))
                ui.show(selection.build(rows, st, fmt))
                assert _keys(ui.view) == _keys(build(rows, st, fmt)), (seed, st.filter)
            ui.show(selection.build(rows, st, fmt))
            assert _keys(ui.view) == _keys(build(rows, st, fmt)), (seed, key)


def test_a_longer_filter_text_looks_only_at_what_the_shorter_one_kept():
    from flowtop.views import select as sel
    t, _ = table_of()
    rows = list(t)
    st = state_of("--loopback")
    fmt = Formatter(st, FakeEnrich())
    selection = sel.Selection()
    seen = []
    reader = selection._texts.reader

    def counted(*a):
        text = reader(*a)
        return lambda r: seen.append(r) or text(r)
    selection._texts.reader = counted
    st.filter = "5"
    five = selection.build(rows, st, fmt)
    assert len(seen) == len(rows) > len(five) > 1
    seen.clear()
    st.filter = "500"
    assert _keys(selection.build(rows, st, fmt)) == _keys(sel.build(rows, st, fmt))
    assert sorted(map(id, seen)) == sorted(map(id, five))   # only what "5" kept
    seen.clear()
    st.filter = "50"                                        # shorter: from every row again
    selection.build(rows, st, fmt)
    assert len(seen) == len(rows)


def test_the_header_says_the_kernels_count_first_when_the_table_is_behind_it():
    from flowtop.views.select import flows_text
    counts = {"udp": 1000}
    assert flows_text(counts, kernel=1005, per=False) == "1000 flows"       # within 1 %
    assert flows_text(counts, kernel=21000, per=False) == \
        "21000 flows in the kernel, 1000 listed"                            # a flood outran it
    assert flows_text(counts, kernel=None, per=False) == "1000 flows"       # filtered: unknown


def test_the_header_counts_open_flows_per_protocol_and_those_without_counters_in_one_pass():
    """Bare rows, Rows and closed Rows: the counts spelt out by hand."""
    from flowtop.table import TableFlow
    with open(MIXED, "rb") as f:
        when, flows = next(conntrack.replay(f))
    i_bytes = FIELDS.index("bytes_orig")
    records = [tuple.__new__(TableFlow, f) for f in flows]
    records[0] = tuple.__new__(TableFlow, records[0][:i_bytes] + (None,) + records[0][i_bytes + 1:])
    t = FlowTable()
    t.apply(records, 100.0, when)
    t.apply(records[:len(records) // 2], 101.0, when + 1)     # the rest closed, the first idle
    rows = list(t)
    assert any(type(r) is TableFlow for r in rows) and any(r.closed for r in rows)
    want, lacking = {}, 0
    for r in rows:
        if not r.closed:
            name = proto_name(r.entry.l4proto)
            want[name] = want.get(name, 0) + 1
            lacking += r.entry.bytes_orig is None
    assert lacking >= 1
    assert header_counts(rows) == (want, lacking)


def test_the_header_pass_also_counts_status_words_for_the_offload_count():
    """The table-health header's offloaded flows came from a pass of their own."""
    from flowtop import health
    from flowtop.table import open_counts
    t, _ = table_of()
    rows = list(t)
    statuses = {}
    assert header_counts(rows, statuses) == header_counts(rows)
    assert statuses == open_counts(rows, FIELDS.index("status"))

    class NoPass:
        def __iter__(self):
            raise AssertionError("a second pass over the rows")
    probe = health.Probe(lambda: (len(rows), 1000), lambda: {})
    h = probe.read(1.0, NoPass(), statuses)
    assert (h.offload, h.hw_offload) == health.offloaded(rows)


def _rated_rows():
    """Rows of a recorded table seen twice, a third of them moving (rates > 0,
    some tied), the rest idle (0.0) or unknown (None)."""
    from flowtop.table import TableFlow
    with open(MIXED, "rb") as f:
        when, flows = next(conntrack.replay(f))
    i_key, i_bytes, i_start = FIELDS.index("key"), FIELDS.index("bytes_orig"), FIELDS.index("start")
    first, second = [], []
    for n in range(300):
        fields = list(flows[n % len(flows)])
        fields[i_key] = b"r%d" % n
        fields[i_bytes] = fields[i_bytes] or 0
        fields[i_start] = fields[i_start] or 1
        first.append(tuple.__new__(TableFlow, fields))
        if n % 3 == 0:
            fields = list(fields)
            fields[i_bytes] += 1000 * (n % 7)            # ties among the moving ones
        second.append(tuple.__new__(TableFlow, fields))
    t = FlowTable()
    t.apply(first, 100.0, when)
    t.apply(second[:250], 101.0, when + 1)
    t.apply(second, 102.0, when + 2)
    rows = list(t)
    rates = {(r.rate_orig or 0) + (r.rate_reply or 0) for r in rows}
    assert 0.0 in rates and len(rates) > 3
    return rows


@pytest.mark.parametrize("flip", ["", "+"])
def test_the_rate_order_equals_a_stable_sort_by_rate_sum(flip):
    from flowtop.views.select import sort_rows
    rows = _rated_rows()
    st = state_of("--loopback", "--sort", flip + "rate")
    descending = not st.ascending()
    want = [r.key for r in sorted(rows, key=PLAIN_SORT_KEYS["rate"], reverse=descending)]
    assert [r.key for r in sort_rows(list(rows), st)] == want


def test_sorting_by_rate_asks_the_rate_of_the_moving_rows_only(monkeypatch):
    """Most of a big table is idle: a key call per row was ~40 ms a snapshot at 250k."""
    from flowtop.views import select as sel
    asked = []
    plain = sel._rate_sum

    def counting(r):
        asked.append(r)
        return plain(r)
    monkeypatch.setattr(sel, "_rate_sum", counting)
    monkeypatch.setitem(sel.SORT_KEYS, "rate", counting)
    rows = _rated_rows()
    moving = [r for r in rows if r.rate_orig or r.rate_reply]
    sel.sort_rows(list(rows), state_of("--loopback", "--sort", "rate"))
    assert 0 < len(asked) == len(moving) < len(rows)


def test_the_sort_keys_memo_is_emptied_once_the_table_has_shrunk_far_below_it():
    from flowtop.views import select as sel
    sel._SHARED.clear()
    for i in range(6000):
        sel._SHARED[(2, "10.0.%d.%d" % (i >> 8, i & 255))]
    sel.trim(100000)                  # a big table needs them
    assert len(sel._SHARED) == 6000
    sel.trim(10)                      # after a flood: they pinned the flood's memory
    assert len(sel._SHARED) == 0


def _reading(items):
    return [(r.key, r.closed, r.is_new, r.rate_orig, r.rate_reply, tuple(r.entry)) for r in items]


@pytest.mark.parametrize("argv", [(), ("--sort", "bytes"), ("--loopback", "--sort", "+dst"),
                                  ("--sort", "age")])
def test_a_selection_that_follows_the_table_changes_chooses_what_a_fresh_build_does(argv):
    """Partial samples (new flows, moving ones, gone ones, lingering ones
    leaving, a key back after it left) and full ones, published as the
    collector does: the Selection given each snapshot's delta passes over
    the changed rows only (after a full sample too, when it changed few),
    and shows the rows in the order a fresh build does."""
    import random
    from flowtop.collector import Snapshot
    from flowtop.netlink.ctnetlink import CtEntry
    from flowtop.table import TableFlow
    from flowtop.views.select import Selection, build
    rnd = random.Random(7)
    st = state_of(*argv)
    fmt = Formatter(st, FakeEnrich())

    def flow(i, moved=0):
        src = "127.0.0.1" if i % 5 == 0 else "10.0.%d.%d" % (i >> 8 & 255, i & 255)
        e = CtEntry(family=2, l4proto=(6, 17, 1)[i % 3], src=src, dst="10.1.0.%d" % (i % 7),
                    sport=1000 + i, dport=80 + i % 4, id=i, bytes_orig=100 + moved,
                    bytes_reply=moved // 2, packets_orig=1, packets_reply=0,
                    start=(1_700_000_000 + i) * 10**9, key=b"%d" % i)
        return tuple.__new__(TableFlow, e)

    t = FlowTable(linger=2, linger_max=3)
    moved = {i: 0 for i in range(60)}
    t.apply([flow(i) for i in moved], 10.0, 1000.0)
    sel, prev, now, follows, after_full = Selection(), None, 10.0, 0, 0
    for tick in range(80):
        now += 1.0
        if tick % 15 == 14:
            t.apply([flow(i, m) for i, m in moved.items()], now, 1000.0 + now)
        else:
            news = [rnd.randrange(200) for _ in range(rnd.randrange(4))]
            for i in news:
                moved.setdefault(i, 0)
            up = rnd.sample(sorted(moved), min(len(moved), rnd.randrange(5)))
            for i in up:
                moved[i] += rnd.randrange(0, 3) * 1000
            gone = rnd.sample(sorted(moved), min(len(moved), rnd.randrange(5)))
            for i in gone:
                del moved[i]
            t.update([flow(i, moved[i]) for i in set(news) | set(up) if i in moved], now,
                     1000.0 + now, [b"%d" % i for i in gone])
        if tick % 4 == 1:
            continue                    # two samples before the next snapshot
        changes = t.take_changes()
        delta = None if changes is None or prev is None else (prev.version,) + changes
        follows += delta is not None
        after_full += delta is not None and tick % 15 == 14
        snap = Snapshot(list(t), 1000.0 + now, t.totals(), None, tick, version=t.version,
                        delta=delta)
        got = sel.build(snap.rows, st, fmt, snap.version, snap.delta)
        assert _reading(got) == _reading(build(snap.rows, st, fmt)), tick
        prev = snap
    assert follows > 35 and after_full >= 3



def test_a_hidden_row_that_becomes_its_bare_record_unlogged_stays_hidden():
    """A Row read idle is replaced by its own record at the next full apply
    without a change logged (it reads the same): the Selection tells the
    rows its first filters hide by their records, so a hidden loopback
    flow does not slip into the view; with many hidden, it follows a map."""
    from flowtop.collector import Snapshot
    from flowtop.netlink.ctnetlink import CtEntry
    from flowtop.table import Row, TableFlow
    from flowtop.views.select import Selection, build
    st = state_of()
    fmt = Formatter(st, FakeEnrich())

    def flow(i, loop):
        e = CtEntry(family=2, l4proto=17, src="127.0.0.1" if i < loop else "10.0.0.%d" % i,
                    dst="10.1.0.1", sport=1000 + i, dport=53, id=i, bytes_orig=100,
                    bytes_reply=0, packets_orig=1, packets_reply=0,
                    start=(1_700_000_000 + i) * 10**9, key=b"%d" % i)
        return tuple.__new__(TableFlow, e)

    for loop in (2, 40):                # few hidden of 50, then most
        t = FlowTable()
        flows = [flow(i, loop) for i in range(50)]
        t.apply(flows, 10.0, 1000.0)
        t.apply(flows, 11.0, 1001.0)
        t.take_changes()
        sel, snap = Selection(), Snapshot(list(t), 1001.0, t.totals(), None, 0, version=t.version)
        sel.build(snap.rows, st, fmt, snap.version, None)
        for tick, (now, update) in enumerate(((12.0, True), (13.0, False), (14.0, True))):
            if update:                  # a GET of the same counters: a Row, read idle
                t.update([flow(0, loop), flow(loop, loop)], now, 1000.0 + now)
            else:                       # listed again, idle: each Row becomes its record
                t.apply([flow(i, loop) for i in range(50)], now, 1000.0 + now)
            kinds = {type(t.get(k)) for k in (b"0", b"%d" % loop)}
            assert kinds == ({Row} if update else {TableFlow}), (loop, tick)
            delta = (snap.version,) + t.take_changes()
            snap = Snapshot(list(t), 1000.0 + now, t.totals(), None, tick, version=t.version,
                            delta=delta)
            got = sel.build(snap.rows, st, fmt, snap.version, snap.delta)
            assert _reading(got) == _reading(build(snap.rows, st, fmt)), (loop, tick)
            assert len(got) == 50 - loop and (sel._map is None) == (loop == 2)

def test_the_loopback_count_tests_addresses_as_model_does_without_a_call_per_address(
        monkeypatch):
    """"N loopback flows hidden": an empty view counts them every snapshot
    (a flood on loopback: ~10 % of the screen's time with a call per address)."""
    from flowtop.netlink.ctnetlink import CtEntry
    from flowtop.table import TableFlow
    from flowtop.views import select as sel
    addresses = ("127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.2", "10.0.0.1", "::2",
                 "::ffff:10.0.0.1", "1.127.0.0", None)
    entries, n = [], 0
    for src in addresses:
        for dst in addresses:
            n += 1
            e = CtEntry(family=2, l4proto=17, src=src, dst=dst, sport=1, dport=2, id=n,
                        bytes_orig=0, bytes_reply=0, packets_orig=0, packets_reply=0,
                        start=(1_700_000_000 + n) * 10**9, key=b"%d" % n)
            entries.append(tuple.__new__(TableFlow, e) if n % 2 else e)
    t = FlowTable()
    t.apply(entries, 10.0, 1000.0)
    t.apply(entries, 11.0, 1001.0)
    t.apply(entries[:-5], 12.0, 1002.0)        # five close: not counted
    want = sum(1 for r in t if not r.closed and (is_loopback(r.entry.src)
                                                 or is_loopback(r.entry.dst)))

    def fail(addr):
        raise AssertionError("a call per address")
    monkeypatch.setattr(sel, "is_loopback", fail, raising=False)
    assert 0 < sel.loopback_count(list(t)) == want < len(t)


class _Counted(list):
    """A rows list that counts the passes over it."""

    passes = 0

    def __iter__(self):
        self.passes += 1
        return list.__iter__(self)


def test_the_hidden_loopback_count_follows_the_changed_rows_not_every_row():
    """"N loopback flows hidden" on an empty view: counted over every row
    once, then over what each snapshot's delta changed (a loopback flood:
    160k rows counted a snapshot), equal to a full count each time."""
    from flowtop.netlink.ctnetlink import CtEntry
    from flowtop.table import TableFlow
    from flowtop.views import select as sel
    st = state_of()
    fmt = Formatter(st, FakeEnrich())

    def flow(i, moved=0):
        src = "127.0.0.%d" % (i % 200) if i % 3 else "10.0.%d.%d" % (i >> 8 & 255, i & 255)
        e = CtEntry(family=2, l4proto=17, src=src, dst="10.1.0.%d" % (i % 7), sport=1000 + i,
                    dport=53, id=i, bytes_orig=100 + moved, bytes_reply=0, packets_orig=1,
                    packets_reply=0, start=(1_700_000_000 + i) * 10**9, key=b"%d" % i)
        return tuple.__new__(TableFlow, e)

    t = FlowTable(linger=2, linger_max=3)
    t.apply([flow(i) for i in range(3000)], 10.0, 1000.0)
    t.take_changes()
    selection, version = sel.Selection(), t.version
    rows = _Counted(t)
    selection.build(rows, st, fmt, version, None)
    assert selection.loopback_count(rows) == sel.loopback_count(list(t)) > 0
    for tick in range(1, 6):
        t.update([flow(i, tick) for i in range(3000 + 40 * tick, 3040 + 40 * tick)]
                 + [flow(i, tick) for i in range(tick, 300, 7)], 10.0 + tick, 1000.0 + tick,
                 [b"%d" % i for i in range(500 + 30 * tick, 520 + 30 * tick)])
        delta = (version,) + t.take_changes()
        version = t.version
        rows = _Counted(t)
        selection.build(rows, st, fmt, version, delta)
        got = selection.loopback_count(rows)
        assert rows.passes == 0, tick
        assert got == sel.loopback_count(list(t)), tick
    rows = _Counted(t)          # a snapshot that follows nothing: counted again
    selection.build(rows, st, fmt, None, None)
    assert selection.loopback_count(rows) == sel.loopback_count(list(t)) and rows.passes


def test_the_rate_order_tells_idle_bare_rows_by_their_type(monkeypatch):
    """A flood's table is mostly bare rows (TableFlow, rates 0.0): the rate
    sort of each snapshot reads no rate of theirs, and sorts as a stable
    sort by rate does."""
    from flowtop.netlink.ctnetlink import CtEntry
    from flowtop.table import TableFlow
    from flowtop.views import select as sel

    def flow(i, moved=0):
        e = CtEntry(family=2, l4proto=17, src="10.0.0.%d" % (i % 250), dst="10.1.0.1",
                    sport=1000 + i, dport=53, id=i, bytes_orig=100 + moved, bytes_reply=0,
                    packets_orig=1, packets_reply=0, start=(1_700_000_000 + i) * 10**9,
                    key=b"%d" % i)
        return tuple.__new__(TableFlow, e)

    t = FlowTable()
    t.apply([flow(i) for i in range(300)], 10.0, 1000.0)
    t.apply([flow(i, 1000 * (i % 5) if i % 3 == 0 else 0) for i in range(300)], 11.0, 1001.0)
    t.update([flow(i) for i in range(300, 320)], 11.5, 1001.5)      # fresh: rates unknown
    rows = list(t)
    assert {type(r).__name__ for r in rows} >= {"TableFlow", "Row"}
    st = state_of()
    want = sorted(rows, key=sel._rate_sum, reverse=not st.ascending())

    def unread(_self):
        raise AssertionError("a bare row's rate was read")
    monkeypatch.setattr(TableFlow, "rate_orig", property(unread))
    monkeypatch.setattr(TableFlow, "rate_reply", property(unread))
    got = sel.sort_rows(list(rows), st)
    monkeypatch.undo()
    assert got == want


def test_each_snapshot_is_chosen_by_the_first_equal_which_not_a_new_one():
    """The which-tuple kept from one snapshot to the next is the oldest equal
    one: a new one a snapshot (15 small tuples) lands in the holes a flood left
    and keeps its 1 MiB arenas from the system (bench/floodmem.py --owners)."""
    from flowtop.views import select as sel
    t, _ = table_of()
    rows = list(t)
    st = state_of("--loopback")
    fmt = Formatter(st, FakeEnrich())
    selection = sel.Selection()
    selection.build(rows, st, fmt)
    first = selection._which
    for _ in range(3):
        selection.build(list(rows), st, fmt)          # new snapshots, the same filters
        assert selection._which is first
    st.filter = "5001"
    selection.build(list(rows), st, fmt)
    assert selection._which is not first and selection._which == st.which()
