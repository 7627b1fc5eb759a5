"""Rate history (flowtop.history): rings, iftop's averages, the peak,
sparklines with and without Unicode, and the bounds on what is kept."""

from types import SimpleNamespace

import pytest

from flowtop.history import SPARK_PLAIN, SPARK_UNICODE, History, Ring, sparkline


def ring(*samples, size=100):
    r = Ring(size)
    for s in samples:
        r.add(*s)
    return r


def test_averages_are_bytes_in_the_window_over_the_window():
    r = ring(*[(t, 1000.0, 1.0) for t in range(1, 41)])       # 1000 B/s for 40 s
    assert r.average(2, 40) == pytest.approx(1000.0)
    assert r.average(40, 40) == pytest.approx(1000.0)
    r = ring((39, 4000.0, 1.0), (40, 0.0, 1.0))                # one busy second
    assert r.average(2, 40) == pytest.approx(2000.0)
    assert r.average(10, 40) == pytest.approx(400.0)
    assert r.average(40, 40) == pytest.approx(100.0)


def test_a_quiet_flow_averages_down_to_zero():
    r = ring((10, 500.0, 1.0))
    assert r.average(2, 10.5) == pytest.approx(250.0)          # half its second is in the window
    assert r.average(2, 13) == 0.0


def test_a_sample_longer_than_the_window_counts_only_its_overlap():
    r = ring((10, 100.0, 5.0))                                 # 100 B/s over [5, 10]
    assert r.average(2, 10) == pytest.approx(100.0)
    assert r.average(10, 10) == pytest.approx(50.0)


def test_peak_and_series():
    r = ring((1, 10.0, 1.0), (2, 30.0, 1.0), (3, 20.0, 1.0))
    assert r.peak() == 30.0 and Ring(3).peak() is None
    assert r.series(4, 1.0, 4) == pytest.approx([10.0, 30.0, 20.0, 0.0])
    assert r.series(2, 2.0, 4) == pytest.approx([20.0, 10.0])


def test_the_ring_is_bounded():
    r = ring(*[(t, 1.0, 1.0) for t in range(1000)], size=121)
    assert len(r.samples) == 121 and r.samples[0][0] == 879


def test_sparklines_scale_to_the_top_in_plain_or_unicode_characters():
    assert sparkline([0.0, 1.0, 2.0, 4.0], unicode=False) == \
        SPARK_PLAIN[0] + SPARK_PLAIN[2] + SPARK_PLAIN[4] + SPARK_PLAIN[-1]
    line = sparkline([0.0, 4.0], unicode=True)
    assert line == SPARK_UNICODE[0] + SPARK_UNICODE[-1]
    assert all(c.isascii() and c.isprintable() for c in SPARK_PLAIN)
    assert sparkline([0.0, 0.0], unicode=False) == SPARK_PLAIN[0] * 2
    assert sparkline([], unicode=False) == ""


class Idle(SimpleNamespace):
    pass


def row(key, ro, rr, closed=0, cls=SimpleNamespace):
    return cls(key=key, rate_orig=ro, rate_reply=rr, closed=closed)


def test_history_feeds_active_rows_and_the_total_skipping_idle_and_closed():
    t = [100.0]
    h = History(clock=lambda: t[0])
    rows = [row(b"a", 100.0, 50.0), row(b"b", None, None), row(b"c", 0.0, 0.0),
            row(b"d", 5.0, 5.0, closed=1), row(b"e", 7.0, 7.0, cls=Idle)]
    h.feed(rows, Idle)
    t[0] = 101.0
    h.feed(rows, Idle)
    assert set(h.flows) == {b"a"}
    a2, a10, a40, peak = h.averages(b"a")
    assert a2 == pytest.approx(150.0) and peak == 150.0
    assert a10 == pytest.approx(30.0)
    assert h.averages(b"zz") == (None, None, None, None)
    assert [s[1] for s in h.total.samples] == [150.0, 150.0]


def test_history_keeps_at_most_max_flows_and_forgets_the_quiet():
    t = [0.0]
    h = History(seconds=10, max_flows=3, clock=lambda: t[0])
    h.feed([row(bytes([i]), 1.0, 0.0) for i in range(10)])
    assert len(h.flows) == 3
    for _ in range(16):                    # 16 feeds later, past the 10 s history
        t[0] += 1.0
        h.feed([row(b"\x09", 1.0, 0.0)])
    assert set(h.flows) == {b"\x09"}           # room again once the quiet ones went
    assert b"\x00" not in h.flows


def test_formatter_shows_averages_and_a_history_line(monkeypatch):
    from flowtop import cli
    from flowtop.views.cells import Formatter
    from flowtop.views.columns import layout
    from flowtop.views.state import ViewState
    t = [50.0]
    h = History(clock=lambda: t[0])
    key = b"k"
    for i in range(5):
        t[0] += 1.0
        h.feed([row(key, 1000.0, 0.0)])
    enrich = SimpleNamespace(services=None, process=None, geo=None, ifaces=None, history=h,
                             is_local=lambda a: False)
    st = ViewState(cli.parse(["--rc", "/nonexistent/rc"]))
    fmt = Formatter(st, enrich)
    r = SimpleNamespace(key=key)
    assert fmt._history(r) == ("",) * 4                      # columns off
    st.show_history = True
    assert fmt._history(r) == ("1.0kB/s", "500B/s", "125B/s", "1.0kB/s")   # 5 s of 1 kB/s
    line = fmt.history_text(r)
    assert line.startswith(SPARK_PLAIN[0]) and "2s 1.0kB/s" in line and "peak 1.0kB/s" in line
    assert all(c.isascii() for c in line)
    st.unicode = True
    assert SPARK_UNICODE[-1] in fmt.history_text(r)
    assert "none yet" in fmt.history_text(SimpleNamespace(key=b"other"))
    cols = [c.name for c, _w in layout(300, st)]
    assert cols[-5:] == ["avg2", "avg10", "avg40", "peak", "age"]
    st.show_history = False
    assert "peak" not in [c.name for c, _w in layout(300, st)]


def test_group_history_is_fed_once_per_snapshot_and_averaged():
    h = History()
    g = SimpleNamespace(key=("pid", 1), rated=1, rate_tx=300.0, rate_rx=100.0)
    quiet = SimpleNamespace(key=("pid", 2), rated=0, rate_tx=0.0, rate_rx=0.0)
    for t in (10.0, 11.0, 11.0, 11.0, 12.0):      # key presses rebuild at the same time
        h.feed_groups("process", [g, quiet], t)
    ring = h.groups[("process", ("pid", 1))][0]
    assert len(ring.samples) == 3 and ("process", ("pid", 2)) not in h.groups
    assert h.group_averages("process", ("pid", 1)) == pytest.approx((400.0, 120.0, 30.0, 400.0))
    assert h.group_averages("host", ("x",)) == (None, None, None, None)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=400, deadline=1000, derandomize=True)
@given(st.lists(st.tuples(st.floats(0, 1e6), st.floats(0, 1e9), st.floats(0.001, 20)),
                max_size=20),
       st.floats(0, 1e6), st.integers(1, 60), st.floats(0.01, 10))
def test_series_ends_and_keeps_the_bytes_of_the_span_it_covers(samples, now, n, step):
    # a sample ending exactly on a bin's edge once made the walk loop forever
    r = ring(*samples)
    out = r.series(n, step, now)
    start = now - n * step
    want = sum(rate * max(0.0, min(t, now) - max(t - dt, start)) for t, rate, dt in samples)
    assert len(out) == n
    assert sum(out) * step == pytest.approx(want, rel=1e-6, abs=1e-3)


def test_series_at_a_bin_edge_that_rounding_puts_a_bin_low():
    now = 1765000000.7000002                 # monotonic-like values: edges round
    r = ring((now - 0.5, 1000.0, 0.5), (now, 1000.0, 0.5))
    out = r.series(30, 2.0, now)
    assert sum(out) * 2.0 == pytest.approx(1000.0)


def test_a_ring_keeps_its_samples_as_doubles_not_objects_that_pin_memory():
    """A flood's samples, as tuples of floats, sat alone in 23 of Python's
    1 MiB arenas a minute after it (bench/floodmem.py --owners)."""
    import gc
    r = Ring(121)
    for i in range(500):
        r.add(float(i), i * 0.5, 1.0)
    seen, todo = set(), [r]
    while todo:
        o = todo.pop()
        for ref in gc.get_referents(o):
            if id(ref) not in seen and not isinstance(ref, type):
                seen.add(id(ref))
                todo.append(ref)
                assert not isinstance(ref, (float, tuple)), ref
    assert r.samples[0] == (379.0, 189.5, 1.0) and len(r) == 121
