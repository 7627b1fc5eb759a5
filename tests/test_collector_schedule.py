"""When the live collector makes full dumps: never back to back.

A full dump of 200k flows in a flood took 2-3 s; counting the next one
from the previous one's start, it began at once, and the screen got no
snapshot for seconds.  Counted from its end, the ticks between refresh
the screen."""

import time

from flowtop.live import Collector
from tests.test_collector_reconcile import Events, Source, run_ticks


class SlowDumps(Source):
    def snapshot(self, wants="list", tail=None):
        end = time.thread_time() + 0.1          # 0.1 s of this thread's CPU
        while time.thread_time() < end:
            pass
        return super().snapshot(wants, tail)


class Budgeted(Collector):
    MAX_AGE = 0.1          # a full dump every 0.1 s at most: as long as one takes

    def _start_events(self):
        self.events = Events()

    def _kernel_count(self):
        return None


def test_ticks_between_full_dumps_come_even_when_a_dump_takes_as_long_as_the_spacing():
    src = SlowDumps([10])
    c = Budgeted(src, 0.02)
    run_ticks(c, 24)
    partial = c._seq - src.dumps
    assert partial >= src.dumps, (src.dumps, c._seq)


class Flood:
    """An event reader that hands over more events than a tick may apply."""

    def __init__(self, n):
        from tests.test_collector_reconcile import entry
        self.batch = [("new", entry(i)) for i in range(n)]

    def drain(self):
        return list(self.batch), False

    def stop(self):
        pass


class Flooded(Budgeted):
    MAX_AGE = 1e6
    BUDGET = 1e-9

    def _start_events(self):
        self.events = Flood(Collector.EVENTS_MAX + 1)


def test_an_event_backlog_beyond_events_max_is_replaced_by_a_full_dump():
    src = Source([10])
    c = Flooded(src, 0.005)
    run_ticks(c, 4)
    assert src.dumps >= 3 and c.resyncs >= 2         # every tick: a full dump, not the events
    assert len(c.table) == 10
