"""The connection log (flowtop.eventlog): records of recorded flows as
NEW and DESTROY events, and lost events said as such in every format."""

import csv
import io
import json
import os

import pytest

from flowtop import conntrack, eventlog
from flowtop.export.runner import Runner
from flowtop.model import Flow
from flowtop.netlink.ctnetlink import FIELDS

MIXED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "ctnetlink-mixed.rec")
START, STOP = FIELDS.index("start"), FIELDS.index("stop")


def a_tcp_flow():
    with open(MIXED, "rb") as f:
        when, flows = next(conntrack.replay(f))
    flow = next(f for f in flows if f.proto_name == "tcp" and f.bytes_orig and f.start)
    return when, flow


def ended(flow, seconds):
    fields = list(flow)
    fields[STOP] = flow.start + int(seconds * 1e9)
    return tuple.__new__(Flow, fields)


@pytest.mark.parametrize("fmt", ["text", "json", "csv"])
def test_a_flow_starts_and_ends_with_its_duration_and_counters_then_lost_events_are_said(fmt):
    when, flow = a_tcp_flow()
    out = io.StringIO()
    sink = eventlog.LogSink(out, fmt)
    sink.event("new", flow, 1.0, when)
    sink.event("destroy", ended(flow, 2.5), 3.0, when + 3)
    sink.dump(None, 4.0, when + 4, True, True)       # the runner resynchronised: ENOBUFS
    sink.flush(4.0, when + 4)
    text = out.getvalue()
    if fmt == "json":
        recs = [json.loads(line) for line in text.splitlines()]
        assert [r["event"] for r in recs] == ["start", "end", "lost"]
        assert recs[1]["duration"] == 2.5 and recs[1]["bytes_orig"] == flow.bytes_orig
    elif fmt == "csv":
        rows = list(csv.reader(io.StringIO(text)))
        assert [r[0] for r in rows] == ["event", "start", "end", "lost"]
        assert len({len(r) for r in rows}) == 1              # one width, lost row too
        assert rows[2][1] == "2.5" and rows[3][2] == "%.3f" % (when + 4)
    else:
        lines = text.splitlines()
        assert [l.split()[1] for l in lines] == ["START", "END", "LOST"]
        assert "after 2.5s" in lines[1] and "ENOBUFS" in lines[2]


def test_without_kernel_timestamps_the_duration_is_since_the_new_event_and_marked():
    when, flow = a_tcp_flow()
    bare = list(flow)
    bare[START] = bare[STOP] = None
    bare = tuple.__new__(Flow, bare)
    out = io.StringIO()
    sink = eventlog.LogSink(out, "text")
    sink.event("new", bare, 1.0, when)
    sink.event("destroy", bare, 5.0, when + 4)
    sink.flush(5.0, when + 4)
    assert "after 4.0s~" in out.getvalue().splitlines()[1]


def test_the_family_and_protocol_filter_applies():
    when, flow = a_tcp_flow()
    out = io.StringIO()
    sink = eventlog.LogSink(out, "json", keep=conntrack.make_filter(None, ["udp"]))
    sink.event("new", flow, 1.0, when)
    sink.flush(1.0, when)
    assert out.getvalue() == ""


class Source:
    live = True

    def snapshot(self, wants="list", enrich=None):
        return 100.0, []


class Events:
    """An EventReader's drain: one overflow, then nothing."""

    def __init__(self):
        self.calls = 0

    def drain(self):
        self.calls += 1
        return [], self.calls == 2

    def stop(self):
        pass


def test_an_overflow_the_runner_drains_becomes_a_lost_line():
    out = io.StringIO()
    sink = eventlog.LogSink(out, "json")
    said = []
    naps = []

    def sleep(s):
        naps.append(s)
        if len(naps) > 4:
            raise KeyboardInterrupt

    class Opts:
        interval = 1.0
    with pytest.raises(KeyboardInterrupt):
        Runner(Source(), Opts(), None, [sink], said.append, events=Events(), sleep=sleep).run()
    assert [json.loads(l)["event"] for l in out.getvalue().splitlines()] == ["lost"]
    assert said and "lost" in said[0]


def test_the_process_map_is_refreshed_once_per_drain_not_per_new_flow():
    """At 2,000 new flows a second a refresh per flow fell behind (8 % logged)."""
    with open(MIXED, "rb") as f:
        when, flows = next(conntrack.replay(f))

    class Enrich:
        refreshes = 0

        def tick_new(self, entries):
            self.refreshes += 1

        def fields(self, e):
            return {}
    enrich = Enrich()
    out = io.StringIO()
    sink = eventlog.LogSink(out, "json", enrich)
    for f in flows:
        sink.event("new", f, 1.0, when)
    sink.flush(1.0, when)
    assert enrich.refreshes == 1 and len(out.getvalue().splitlines()) == len(flows) > 5
