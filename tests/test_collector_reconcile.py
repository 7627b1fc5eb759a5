"""The live collector against the kernel's count and after a table shrank.

A live-looking source (``live = True``) hands the real Collector loop its
dumps; the event reader and the kernel's count (GET_STATS) are stand-ins,
so nothing here opens a socket.  Between full dumps the table follows the
events; when it differs from the kernel's count on two ticks running, a
full dump sets it right.  After a big table shrank, the decoders' value
caches are emptied when they hold far more than the table needs (they
pinned hundreds of MB after a flood)."""

import time

from flowtop.collector import Collector
from flowtop.netlink.ctnetlink import CtEntry


def entry(i):
    return CtEntry(family=2, l4proto=17, src="10.0.0.1", dst="10.%d.%d.%d" % (
        i >> 16, (i >> 8) & 255, i & 255), sport=1, dport=2, id=i, bytes_orig=0,
        bytes_reply=0, packets_orig=0, packets_reply=0, key=b"k%d" % i)


class Decoder:
    """Caches as full as a decoder's get (65536 addresses): emptied by forget."""

    def __init__(self):
        self.forgotten = 0
        self.size = 65536

    def cached(self):
        return self.size

    def forget(self):
        self.forgotten += 1
        self.size = 0


class Sock:
    def __init__(self):
        self.decoder = Decoder()


class Source:
    live = True

    def __init__(self, sizes):
        self.sizes = list(sizes)
        self.dumps = 0
        self.sock = Sock()

    def snapshot(self, wants="list", enrich=None):
        assert wants == "stamped"
        n = self.sizes[min(self.dumps, len(self.sizes) - 1)]
        self.dumps += 1
        return time.time(), [(time.monotonic(), [entry(i) for i in range(n)])]


class Events:
    paused, read = False, 0      # never paused: no reader's CPU here

    def drain(self, limit=None):
        return [], False

    def pending(self):
        return 0

    def stop(self):
        pass


class Quiet(Collector):
    """Full dumps only when forced: the budget allows none after the first."""
    BUDGET = 1e-9
    MAX_AGE = 1e6

    def __init__(self, source, kernel):
        super().__init__(source, 0.005)
        self.kernel = kernel

    def _start_events(self):
        self.events = Events()

    def _kernel_count(self):
        self.kernel_count = self.kernel
        return self.kernel


def run_ticks(c, ticks, timeout=10.0, until=None):
    """Run ``c`` until its ``ticks``-th snapshot (and ``until()``, if given) or ``timeout``."""
    c.start()
    deadline = time.monotonic() + timeout
    try:
        while ((c._seq < ticks or (until is not None and not until()))
               and time.monotonic() < deadline):
            time.sleep(0.005)
    finally:
        c.stop()
        c.join(2)
    assert c.failure is None, c.failure


def test_a_table_that_agrees_with_the_kernel_count_gets_no_extra_full_dumps():
    src = Source([100])
    c = Quiet(src, kernel=100)
    run_ticks(c, 30)
    assert src.dumps == 1
    assert c.latest().kernel == 100


def test_a_table_that_drifts_from_the_kernel_count_gets_a_full_dump_within_three_ticks():
    src = Source([100])
    c = Quiet(src, kernel=600)            # 500 flows the events never brought
    run_ticks(c, 30)
    assert src.dumps >= 30 // 3 - 1, src.dumps


def test_a_small_difference_is_not_drift():
    src = Source([1000])
    c = Quiet(src, kernel=1015)           # under 2 % and 32 flows: events in flight
    run_ticks(c, 30)
    assert src.dumps == 1


def test_decoder_caches_are_emptied_once_a_big_table_shrank():
    src = Source([30000, 30000, 100, 100, 100])
    c = Collector(src, 0.005, events=False)
    run_ticks(c, 5)
    assert src.sock.decoder.forgotten >= 1


def test_decoder_caches_are_emptied_again_each_time_the_table_shrank_to_a_quarter():
    """A flood's table drains over several ticks: values cached meanwhile
    (a few hundred held among freed records pin Python's arenas) go too."""
    sizes = [40000, 40000, 8000, 8000, 1500, 1500, 200, 200, 20, 20, 20]
    src = Source(sizes)
    c = Collector(src, 0.005, events=False)
    run_ticks(c, len(sizes) + 1)        # (+1: the first dump's early Snapshot, its one datagram)
    assert src.sock.decoder.forgotten >= 4
    run_more = Collector(Source([20] * 5), 0.005, events=False)
    run_ticks(run_more, 5)
    assert run_more.source.sock.decoder.forgotten == 1      # 65536 cached over 20 flows' need


def test_decoder_caches_are_kept_while_the_table_needs_them():
    src = Source([30000, 16000, 30000])
    c = Collector(src, 0.005, events=False)
    run_ticks(c, 3)
    assert src.sock.decoder.forgotten == 0


def test_a_kernel_without_a_count_is_not_reconciled_and_ticks_go_on():
    from flowtop.netlink.errors import NetlinkError

    class NoStats(Quiet):
        def _kernel_count(self):
            import flowtop.conntrack as api
            real = api.count
            api.count = lambda sock=None: (_ for _ in ()).throw(NetlinkError(95))
            try:
                return Collector._kernel_count(self)
            finally:
                api.count = real

    src = Source([100])
    c = NoStats(src, kernel=None)
    run_ticks(c, 10)
    assert c._seq >= 10 and not c.reconcile and c.latest().error is None


def test_the_kernel_count_a_snapshot_carries_is_read_after_its_dump_not_before():
    class Growing(Source):                # a flood: the kernel's table grows during the dump
        def snapshot(self, wants="list", enrich=None):
            c.kernel = 100
            out = Source.snapshot(self, wants, enrich)
            c.kernel = 500
            return out

    global c
    src = Growing([10])
    c = Quiet(src, kernel=100)
    run_ticks(c, 1)
    assert c.latest().kernel == 500


class Datagrams(Source):
    """A dump of three datagrams of 2, 3 and 4 flows; ``seen`` records the
    collector's progress as each is handed over."""

    def __init__(self):
        super().__init__([9])
        self.seen = []

    def snapshot(self, wants="list", enrich=None):
        self.dumps += 1

        def batches():
            n = 0
            for size in (2, 3, 4):
                self.seen.append(c.reading)
                yield time.monotonic(), [entry(n + i) for i in range(size)]
                n += size
            self.seen.append(c.reading)
        return time.time(), batches()


def test_a_full_dump_publishes_its_progress_as_datagrams_arrive_and_clears_it_after():
    global c
    src = Datagrams()
    c = Quiet(src, kernel=9)
    run_ticks(c, 1)
    counts = [r[1] for r in src.seen]
    assert counts == [0, 2, 5, 9], src.seen
    assert len({r[0] for r in src.seen}) == 1      # one start for the dump
    assert c.reading is None


def test_a_dump_waits_between_datagrams_while_the_screen_holds_the_gate():
    global c
    src = Datagrams()
    c = Quiet(src, kernel=9)
    c.gate.hold()
    c.start()
    try:
        deadline = time.monotonic() + 5
        while not src.seen and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.2)
        held = len(src.seen)                 # the first datagram, then it waits
        c.gate.release()
        deadline = time.monotonic() + 5
        while len(src.seen) < 4 and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        c.stop()
        c.join(2)
    assert held == 1 and len(src.seen) == 4, (held, src.seen)   # it waits after the first


def test_a_held_gate_lets_a_dump_go_on_after_its_longest_wait():
    from flowtop.collector import Gate
    g = Gate()
    g.hold()
    t = time.monotonic()
    g.wait()
    assert Gate.WAIT * 0.9 <= time.monotonic() - t < Gate.WAIT + 1.0


def test_the_services_names_asked_are_forgotten_once_a_big_table_shrank():
    """Their keys, made during a flood, sat alone in 19 of Python's 1 MiB
    arenas a minute after it (bench/floodmem.py --owners)."""
    from flowtop.enrich.bundle import Enrichment
    from flowtop.services import Services
    services = Services(system=lambda: {"udp": {53: "domain"}}, load=lambda proto, etc: {})
    for port in range(1000, 1100):
        services.name(port, 17)
    assert services.cached() == 100 and services.name(53, 17) == "domain"
    c = Collector(Source([30000, 30000, 100, 100, 100]), 0.005, Enrichment(services),
                  events=False)
    run_ticks(c, 5)
    assert services.cached() == 0 and services.name(53, 17) == "domain"


class Names:
    """The enrichment's reverse DNS, its cache filled by hand: what the
    collector may keep of it after a table shrank."""

    def __init__(self, addrs):
        from flowtop.enrich.dns import Resolver
        self.dns = Resolver(resolve=lambda a: None, clock=lambda: 0.0)
        for a in addrs:
            self.dns._cache.put(a, ("host-" + a.replace(".", "-"), 1e9))

    def tick(self, table):
        pass


def test_after_a_flood_the_names_of_addresses_gone_are_forgotten_and_the_rest_kept():
    """A flood's screenfuls of names (~500, negative answers mostly) held
    32-41 of Python's 1 MiB arenas 60 s after it (bench/floodmem.py)."""
    flood = ["10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255) for i in range(30000)]
    enrich = Names(flood[::8] + flood[:100] + ["192.0.2.7", "10.0.0.1"])
    c = Collector(Source([30000, 30000, 100, 100, 100]), 0.005, enrich, events=False)
    run_ticks(c, 6)                     # (the first dump's early Snapshot, then five dumps)
    dns = enrich.dns
    assert sorted(dns._cache) == sorted(set(["10.0.0.1"] + flood[:100]))
    assert dns.lookup("10.0.0.99") == "host-10-0-0-99"     # still a hit: no query
    assert dns.stats["misses"] == 0


def test_names_are_all_kept_while_the_table_does_not_shrink():
    addrs = ["10.0.%d.%d" % (i >> 8, i & 255) for i in range(3000)]
    enrich = Names(addrs)
    c = Collector(Source([3000, 2000, 3000]), 0.005, enrich, events=False)
    run_ticks(c, 3)
    assert len(enrich.dns._cache) == 3000
