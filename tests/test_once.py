"""flowtop/once.py: ``--once`` writes a datagram at a time, and what it writes is
what the whole-table writers wrote (the recorded fixtures, byte for byte)."""

import io
import json
import os
import time
import tracemalloc

import pytest

from flowtop import api, cli, main
from flowtop import once as once_mod
from flowtop.enrich.bundle import from_options
from flowtop.table import FlowTable
from flowtop.views.text import TextFrames

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
RECORDINGS = sorted(os.path.join(FIXTURES, n) for n in os.listdir(FIXTURES) if n.endswith(".rec"))


def recorded(path):
    with open(path, "rb") as f:
        return next(api.replay(f))


class BatchSource:
    """A replay-like source that hands its flows out ``size`` at a time, as the
    kernel's datagrams come; ``on_batch(i)`` runs before batch ``i`` is handed."""

    live = False

    def __init__(self, when, flows, size=3, on_batch=None):
        self.when, self.flows, self.size = when, flows, size
        self.on_batch = on_batch
        self.asked = []

    def snapshot(self, wants="list", enrich=None):
        self.asked.append(wants)
        if wants == "batches":
            return self.when, self._batches()
        return self.when, list(self.flows)

    def _batches(self):
        for i in range(0, len(self.flows), self.size):
            if self.on_batch is not None:
                self.on_batch(i // self.size)
            yield self.flows[i:i + self.size]


def whole_table_frame(args, when, flows):
    """What --once text printed before it streamed: TextFrames over the table."""
    opts = cli.parse(["--once"] + args)
    enrich = from_options(opts, live=False)
    table = FlowTable()
    table.apply(flows, when, when)
    enrich.tick(table)
    out = io.StringIO()
    TextFrames(out, opts, enrich, ["a note"]).write_rows(table, when)
    return out.getvalue()


def once_text(args, source, out=None):
    opts = cli.parse(["--once"] + args)
    enrich = from_options(opts, live=False)
    out = out or io.StringIO()
    try:
        main.once(source, opts, out, enrich, ["a note"])
    finally:
        enrich.close()
    return out.getvalue()


class Counting:
    """A stream that keeps only how many lines went through it."""

    def __init__(self):
        self.lines = 0

    def write(self, text):
        self.lines += text.count("\n")

    def flush(self):
        pass

    def getvalue(self):
        return self.lines


TEXT_ARGS = [[], ["--redact-remote"], ["--redact-local", "-s"], ["--sort", "bytes"], ["--sort", "+bytes"], ["--sort", "dst"], ["--sort", "+age"], ["--sort", "port"],
             ["--sort", "state"], ["--sort", "proto"], ["--sort", "packets"], ["-s", "--show-id"],
             ["--age", "seconds"], ["--age", "none"], ["-b", "--units", "iec"], ["--units", "raw"],
             ["--filter", "tcp or udp"], ["--filter", "dport<1000"], ["-T"], ["-4"], ["-6"],
             ["--wide"]]


@pytest.mark.parametrize("path", RECORDINGS, ids=os.path.basename)
@pytest.mark.parametrize("args", TEXT_ARGS, ids=" ".join)
def test_streamed_once_text_is_the_whole_table_frame_byte_for_byte(path, args):
    when, flows = recorded(path)
    args = args + ["-n", "-G"]
    want = whole_table_frame(args, when, flows)
    assert len(want.splitlines()) >= 3
    assert once_text(args, BatchSource(when, flows, size=2)) == want


def synthetic(n):
    """N distinct flows made from the recorded ones (bench/keys.py's)."""
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "bench", "keys.py")
    spec = importlib.util.spec_from_file_location("bench_keys", path)
    keys = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(keys)
    return keys.synthetic(n)


@pytest.mark.parametrize("args", [[], ["--sort", "bytes"]], ids=["table-order", "sorted"])
def test_once_text_holds_cell_texts_not_the_table(args):
    n = 20000
    when, flows = synthetic(n)
    source = BatchSource(when, flows, size=130)
    tracemalloc.start()
    try:
        lines = once_text(args + ["-n", "-G"], source, Counting())
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lines == n + 3
    # the whole-table frame held ~2.8 KB a row (rows, cell dicts, lines); the spool
    # holds ~100 B of cell text a row (a sort: plus its key and a str object each)
    assert peak / n < 400, peak / n


def test_once_json_writes_each_datagram_before_the_next_is_read():
    when, flows = recorded(os.path.join(FIXTURES, "ctnetlink-mixed.rec"))
    out = io.StringIO()
    seen = []

    def on_batch(i):
        seen.append(out.getvalue().count("\n"))

    source = BatchSource(when, flows, size=4, on_batch=on_batch)
    opts = cli.parse(["--once", "--json", "-n", "-G"])
    enrich = from_options(opts, live=False)
    main.once(source, opts, out, enrich, [])
    assert seen == [min(4 * i, len(flows)) for i in range(len(seen))]
    assert len(seen) > 2 and out.getvalue().count("\n") == len(flows)


class SlowResolver:
    """A reverse-DNS resolver whose answers take ``delay`` seconds a wait."""

    def __init__(self, delay):
        self.delay = delay
        self.asked = []
        self.lookups = 0

    def wait(self, addrs, timeout):
        self.asked.extend(addrs)
        time.sleep(min(self.delay, timeout))
        return {a: "host-%s.example" % a.replace(".", "-").replace(":", "-") for a in addrs}

    def lookup(self, addr):
        self.lookups += 1
        return None

    def close(self):
        pass


def test_once_asks_no_name_after_its_dns_wait_and_keeps_the_names_it_found(monkeypatch):
    monkeypatch.setattr(once_mod, "DNS_WAIT", 0.2)
    when, flows = synthetic(40)
    opts = cli.parse(["--once", "-G"])
    enrich = from_options(opts, live=False)
    enrich.dns.close()
    enrich.dns = resolver = SlowResolver(0.15)
    out = io.StringIO()
    main.once(BatchSource(when, flows, size=10), opts, out, enrich, [])
    asked = set(resolver.asked)
    everything = {a for f in flows for a in (f.src, f.dst)}
    # two batches fit in the 0.2 s wait; the other two are never asked about
    assert 0 < len(asked) < len(everything)
    assert resolver.lookups == 0          # no lookup queued work past the wait
    rows = out.getvalue().splitlines()[2:]       # after the header and the titles
    assert len(rows) == 40
    first = flows[0].src
    assert "host-%s.example" % first.replace(".", "-") in rows[0]
    assert flows[-1].src not in asked and flows[-1].src in rows[-1]


class Names:
    """Reverse DNS that knows every other address (IPv6 ones too)."""

    def __init__(self, addrs):
        self.names = {a: "h%d.example" % i for i, a in enumerate(sorted(addrs)) if i % 2 == 0}

    def wait(self, addrs, timeout):
        return {a: self.names.get(a) for a in addrs}

    def lookup(self, addr):
        return self.names.get(addr)

    def close(self):
        pass


class Processes:
    """A process for flows to some ports (a name long enough to be cut)."""

    def refresh(self):
        pass

    def retain(self, table):
        pass

    def lookup(self, e):
        return self.lookup_both(e)[0]

    def lookup_both(self, e):
        from flowtop.enrich.owners import FORWARDED, ProcInfo
        if e.dport in (443, 21):
            return ProcInfo(4242, "a-very-long-process-name", "root"), None
        if e.dport == 53:
            return FORWARDED, FORWARDED
        return None, None


class Ifaces:
    def prefetch(self, entries):
        list(entries)

    def of_flow(self, e):
        return ("eth%d" % (e.l4proto % 3), None if e.family == 10 else "a-long-bridge-name0")

    def close(self):
        pass


@pytest.mark.parametrize("path", RECORDINGS, ids=os.path.basename)
@pytest.mark.parametrize("args", [[], ["--sort", "dst"], ["--show-id", "-P"]], ids=" ".join)
def test_streamed_once_text_with_names_processes_and_interfaces_is_the_whole_table_frame(
        path, args):
    from flowtop.enrich.bundle import Enrichment
    from flowtop.services import Services
    when, flows = recorded(path)
    opts = cli.parse(["--once", "-G"] + args)
    addrs = {a for f in flows for a in (f.src, f.dst)}

    def enrichment():
        return Enrichment(Services(), Processes(), Names(addrs), None, Ifaces())

    enrich = enrichment()
    table = FlowTable()
    table.apply(flows, when, when)
    want = io.StringIO()
    TextFrames(want, opts, enrich, []).write_rows(table, when)
    got = io.StringIO()
    main.once(BatchSource(when, flows, size=2), opts, got, enrichment(), [])
    assert "h0.example" in want.getvalue() and "PROCESS" in want.getvalue()
    assert got.getvalue() == want.getvalue()


@pytest.mark.parametrize("path", RECORDINGS, ids=os.path.basename)
@pytest.mark.parametrize("numeric", [False, True], ids=["names", "numeric"])
def test_streamed_once_json_lines_are_the_plain_records_with_their_enrichment(path, numeric):
    import json
    from flowtop.enrich.bundle import Enrichment
    from flowtop.services import Services
    from flowtop.views.export import full_record
    when, flows = recorded(path)
    addrs = {a for f in flows for a in (f.src, f.dst)}
    enrich = Enrichment(Services(), Processes(), None if numeric else Names(addrs), None, Ifaces())
    out = io.StringIO()
    main.once(BatchSource(when, flows, size=3), cli.parse(["--once", "--json", "-G"]), out,
              enrich, [])
    got = [json.loads(line) for line in out.getvalue().splitlines()]
    assert got == [full_record(f, when, enrich) for f in flows]
    assert {r["service"] for r in got} - {None} and {r["process"] for r in got} - {None}


class NoAnswers(SlowResolver):
    """Reverse DNS that answers at once, with a name for one address only."""

    def wait(self, addrs, timeout):
        self.asked.extend(addrs)
        return {a: "localhost" if a == "10.0.0.1" else None for a in addrs}   # /etc/hosts'


def test_once_stops_asking_for_names_when_none_come(monkeypatch):
    when, flows = synthetic(2000)
    opts = cli.parse(["--once", "-G"])
    enrich = from_options(opts, live=False)
    enrich.dns.close()
    enrich.dns = resolver = NoAnswers(0)
    out = io.StringIO()
    main.once(BatchSource(when, flows, size=100), opts, out, enrich, [])
    everything = {a for f in flows for a in (f.src, f.dst)}
    assert once_mod.SILENT_AFTER <= len(resolver.asked) < once_mod.SILENT_AFTER + 200
    assert len(everything) > 4 * once_mod.SILENT_AFTER
    assert out.getvalue().count("\n") == 2000 + 2


def test_once_stops_asking_for_names_at_once_when_the_resolver_says_no_server_answers():
    """A router without DNS: its resolver's "try again" errors make it
    ``silent`` within the first datagram, long before SILENT_AFTER addresses
    (armhf: 600 failing lookups cost 1.3 s of --once)."""
    when, flows = synthetic(2000)

    class Silent(NoAnswers):
        silent = False
        dropped = 0

        def wait(self, addrs, timeout):
            out = NoAnswers.wait(self, addrs, timeout)
            self.silent = True          # its errors said: no server
            return out

        def drop_queued(self):
            self.dropped += 1

    opts = cli.parse(["--once", "--json", "-G"])
    enrich = from_options(opts, live=False)
    enrich.dns.close()
    enrich.dns = resolver = Silent(0)
    out = io.StringIO()
    main.once(BatchSource(when, flows, size=100), opts, out, enrich, [])
    first = {a for f in flows[:100] for a in (f.src, f.dst)}
    assert set(resolver.asked) == first and len(first) < once_mod.SILENT_AFTER
    assert resolver.dropped == 1 and out.getvalue().count("\n") == 2000


def test_once_drops_each_datagrams_process_answers_once_written():
    from flowtop.enrich.bundle import Enrichment
    from flowtop.services import Services

    class Forgetting(Processes):
        dropped = 0

        def forget_answers(self):
            self.dropped += 1

    when, flows = recorded(os.path.join(FIXTURES, "ctnetlink-mixed.rec"))
    process = Forgetting()
    out = io.StringIO()
    main.once(BatchSource(when, flows, size=5), cli.parse(["--once", "--json", "-n", "-G"]), out,
              Enrichment(Services(), process), [])
    assert process.dropped == -(-len(flows) // 5) and out.getvalue().count("\n") == len(flows)


def test_once_counts_each_address_once_before_it_calls_dns_silent():
    """A small table's unnamed addresses, asked again each datagram, are not 512."""
    when, flows = synthetic(40)
    from flowtop.netlink.ctnetlink import FIELDS
    late = list(flows[0])
    late[FIELDS.index("src")], late[FIELDS.index("key")] = "10.9.9.9", b"late"
    late = tuple.__new__(type(flows[0]), late)
    flows = flows * 30 + [late]         # ~80 addresses over 13 datagrams, one new at the end

    class LateName(NoAnswers):
        def wait(self, addrs, timeout):
            self.asked.extend(addrs)
            return {a: "late.example" if a == "10.9.9.9" else None for a in addrs}

    opts = cli.parse(["--once", "--json", "-G", "--no-process"])
    enrich = from_options(opts, live=False)
    enrich.dns.close()
    enrich.dns = resolver = LateName(0)
    out = io.StringIO()
    main.once(BatchSource(when, flows, size=100), opts, out, enrich, [])
    assert len(resolver.asked) > once_mod.SILENT_AFTER     # asked again: still no answer
    assert out.getvalue().splitlines()[-1].count('"src_host":"late.example"') == 1


@pytest.mark.parametrize("silent", [False, True], ids=["deadline", "silent"])
def test_once_drops_the_resolvers_queue_once_it_stops_waiting_for_names(monkeypatch, silent):
    """Past DNS_WAIT (or once DNS shows silent) nothing prints a new name: the
    addresses still queued are dropped, once, not resolved on the router's
    one core beside the dump."""
    monkeypatch.setattr(once_mod, "DNS_WAIT", 5.0 if silent else 0.2)
    when, flows = synthetic(2000 if silent else 40)

    class Dropping(NoAnswers if silent else SlowResolver):
        dropped = 0

        def drop_queued(self):
            self.dropped += 1
            return 0

    opts = cli.parse(["--once", "-G"])
    enrich = from_options(opts, live=False)
    enrich.dns.close()
    enrich.dns = resolver = Dropping(0 if silent else 0.15)
    out = io.StringIO()
    main.once(BatchSource(when, flows, size=5 if not silent else 100), opts, out, enrich, [])
    assert resolver.dropped == 1
    assert out.getvalue().count("\n") == len(flows) + 2


def test_once_json_reads_the_names_found_once_dns_is_over(monkeypatch):
    """DNS silent (or past its wait): every later line's hosts come from the
    names found, without a lookup per end."""
    when, flows = synthetic(2000)
    opts = cli.parse(["--once", "--json", "-G", "--no-process", "--no-iface"])
    enrich = from_options(opts, live=False)
    enrich.dns.close()
    named = flows[0].dst                    # asked in the first datagram, seen again later

    class OneName(NoAnswers):
        def wait(self, addrs, timeout):
            self.asked.extend(addrs)
            return {a: "named.example" if a == named else None for a in addrs}

    enrich.dns = OneName(0)
    looked = []
    real = once_mod.Names.lookup
    monkeypatch.setattr(once_mod.Names, "lookup", lambda self, a: looked.append(a) or real(self, a))
    out = io.StringIO()
    main.once(BatchSource(when, flows, size=100), opts, out, enrich, [])
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert len(lines) == 2000 and enrich.dns.final == {named: "named.example"}
    late = lines[-1500:]
    assert all(x["src_host"] == ("named.example" if x["src"] == named else None)
               and x["dst_host"] == ("named.example" if x["dst"] == named else None)
               for x in late)
    assert any(x["dst_host"] for x in late)
    assert len(looked) < 2 * 1000          # asked only while DNS could still answer


class Prefetched:
    """Interfaces that keep what each prefetch was given."""

    def __init__(self, by_ends):
        self.by_ends = by_ends
        self.given = []

    def prefetch(self, entries):
        self.given.append(list(entries))

    def of_flow(self, e):
        return ("eth0", None)


@pytest.mark.parametrize("by_ends", [True, False], ids=["by-ends", "every-flow"])
def test_a_datagrams_route_lookups_are_asked_once_per_distinct_ends_when_they_follow_them(
        by_ends):
    from flowtop.enrich.bundle import Enrichment
    from flowtop.services import Services
    _when, flows = recorded(RECORDINGS[-1])
    ifaces = Prefetched(by_ends)
    once_mod.Preparer(Enrichment(Services(), ifaces=ifaces))(flows)
    ends = {(f.src, f.reply_src if f.reply_src is not None else f.dst, f.mark) for f in flows}
    assert len(ends) < len(flows) // 2
    (given,) = ifaces.given
    if by_ends:
        assert {(f.src, f.reply_src if f.reply_src is not None else f.dst, f.mark)
                for f in given} == ends and len(given) == len(ends)
    else:
        assert given == flows


def test_a_datagrams_ends_are_worked_out_once_for_the_prefetch_and_the_writer(monkeypatch):
    from flowtop.enrich import ifacetotals
    from flowtop.enrich.bundle import Enrichment
    from flowtop.services import Services
    _when, flows = recorded(RECORDINGS[-1])
    ifaces = Prefetched(True)
    fields = once_mod.Preparer(Enrichment(Services(), ifaces=ifaces))(flows)
    assert fields == list(zip(*flows))
    made = []
    monkeypatch.setattr(ifacetotals, "ends_keys", lambda f: made.append(f) or [])
    keys, answers = ifacetotals.answers_by_ends(ifaces, fields, flows)
    assert made == [] and len(keys) == len(flows)
    assert set(answers) == {(f.src, f.reply_src if f.reply_src is not None else f.dst, f.mark)
                            for f in flows} and set(answers.values()) == {("eth0", None)}
    plain, _ = ifacetotals.answers_by_ends(ifaces, list(zip(*flows)), flows)
    assert made and plain == []         # plain columns: worked out again


class Nameless(NoAnswers):
    """Reverse DNS that finds no name (no server: a router, a namespace)."""

    def wait(self, addrs, timeout):
        self.asked.extend(addrs)
        return dict.fromkeys(addrs)


def test_once_text_without_any_name_found_is_the_numeric_text_without_a_lookup_an_address(
        monkeypatch):
    """No DNS answers: the hosts are the numeric run's, and no address is
    looked up one by one (87k distinct: ~7 % of a run; NAT's XLATE column
    still asks its addresses: none here)."""
    when, flows = synthetic(2000)
    flows = [type(f)(**dict(f.as_dict(), reply_src=f.dst, reply_dst=f.src, reply_sport=f.dport,
                            reply_dport=f.sport)) for f in flows]

    def run(args):
        opts = cli.parse(["--once", "-G", "--no-process", "--no-iface"] + args)
        enrich = from_options(opts, live=False)
        if enrich.dns is not None:
            enrich.dns.close()
            enrich.dns = Nameless(0)
        out = io.StringIO()
        main.once(BatchSource(when, flows, size=100), opts, out, enrich, [])
        return out.getvalue(), enrich
    looked = []
    real = once_mod.Names.lookup
    monkeypatch.setattr(once_mod.Names, "lookup", lambda self, a: looked.append(a) or real(self, a))
    got, enrich = run([])
    assert enrich.dns.asked and looked == []
    assert got == run(["-n"])[0] and got.count("\n") >= 2000


def test_once_json_tails_without_any_name_found_are_null_hosts_without_a_lookup(
        monkeypatch):
    from flowtop.enrich.bundle import Enrichment
    from flowtop.services import Services
    from flowtop.views.tail import JsonTail
    _when, flows = recorded(RECORDINGS[-1])
    names = once_mod.Names(Nameless(0), deadline=1e9, clock=lambda: 0.0)
    looked = []
    real = once_mod.Names.lookup
    monkeypatch.setattr(once_mod.Names, "lookup", lambda self, a: looked.append(a) or real(self, a))
    tail = JsonTail(Enrichment(Services(), dns=names))
    names.ready({a for f in flows for a in (f.src, f.dst)})
    tail.fresh()
    got = tail.lines(flows)
    assert looked == [] and '"src_host":null,"dst_host":null' in got[0]
    assert got == [tail.line(e) for e in flows]         # (a flow at a time: each address asked)
    assert sorted(looked) == sorted({a for f in flows for a in (f.src, f.dst) if a})
