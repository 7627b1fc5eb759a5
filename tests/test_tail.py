"""The enrichment keys of a JSON record as text (views.tail.JsonTail):
the interfaces' texts kept per a batch's distinct ends when the provider's
answer follows them."""

import pytest

from flowtop.enrich.bundle import Enrichment
from flowtop.services import Services
from flowtop.sources import _tailed
from flowtop.views.tail import JsonTail

from tests.test_once import Names, Processes, recorded
from tests.test_oncetext import EndsIfaces

MULTIPART = "tests/fixtures/ctnetlink-multipart.rec"


class PlainIfaces(EndsIfaces):
    by_ends = False


def _lines(ifaces, flows, batch, dns=None, process=None):
    tail = JsonTail(Enrichment(Services(), process, dns, ifaces=ifaces))
    out = []
    for i in range(0, len(flows), batch):
        tail.fresh()
        out += [tail.line(e) for e in flows[i:i + batch]]
    return out


def test_interfaces_keyed_by_ends_are_asked_once_a_batch_per_distinct_ends_same_lines():
    _when, flows = recorded(MULTIPART)
    kept, plain = EndsIfaces(), PlainIfaces()
    got = _lines(kept, flows, 100)
    assert got == _lines(plain, flows, 100)
    assert len(plain.asked) == len(flows)
    per_batch = sum(len({(f.src, f.reply_src if f.reply_src is not None else f.dst, f.mark)
                         for f in flows[i:i + 100]}) for i in range(0, len(flows), 100))
    assert len(kept.asked) == per_batch < len(flows) // 2
    assert '"in_iface":"if-' in got[0]


def test_without_fresh_every_flow_is_asked():
    _when, flows = recorded(MULTIPART)
    ifaces = EndsIfaces()
    tail = JsonTail(Enrichment(Services(), ifaces=ifaces))
    [tail.line(e) for e in flows]           # (the live view's lines: no batches)
    assert len(ifaces.asked) == len(flows)


def test_a_deferred_batch_is_prepared_then_tailed_a_flow_or_a_batch_at_a_time():
    batches = [[("{a", 1), "", ("{b", 2)], [("{c", 3)]]
    seen = []
    out = list(_tailed(iter(batches), lambda flows: seen.append(("prepare", list(flows))),
                       lambda e: seen.append(("tail", e)) or ",%d" % e))
    assert out == [["{a,1}\n", "{b,2}\n"], ["{c,3}\n"]]
    assert seen == [("prepare", [1, 2]), ("tail", 1), ("tail", 2), ("prepare", [3]), ("tail", 3)]
    seen.clear()

    def prepare(flows):
        seen.append(("prepare", list(flows)))
        return "columns of %s" % (flows,)

    def tails(es, heads, fields, services=None):
        seen.append(("tails", list(es), fields, services))
        return ["%s,%d}\n" % he for he in zip(heads, es)]
    out = list(_tailed(iter(batches), prepare, None, tails))
    assert out == [["{a,1}\n", "{b,2}\n"], ["{c,3}\n"]]
    assert seen == [("prepare", [1, 2]), ("tails", [1, 2], "columns of (1, 2)", None),
                    ("prepare", [3]), ("tails", [3], "columns of (3,)", None)]
    seen.clear()        # the formatter's services, a third item a flow: handed on as a column
    out = list(_tailed(iter([[("{e", 5, "x"), "", ("{f", 6, "y")]]), prepare, None, tails))
    assert out == [["{e,5}\n", "{f,6}\n"]]
    assert seen[-1] == ("tails", [5, 6], "columns of (5, 6)", ("x", "y"))
    out = list(_tailed(iter([["", ""], [("{d", 4)]]), lambda flows: None, None, tails))
    assert out == [[], ["{d,4}\n"]]


def test_a_batchs_whole_lines_are_its_heads_and_its_flows_lines():
    _when, flows = recorded(MULTIPART)
    addrs = {a for f in flows for a in (f.src, f.dst)}
    tail = JsonTail(Enrichment(Services(), Processes(), Names(addrs), ifaces=EndsIfaces()))
    heads = ["{%d" % i for i in range(len(flows))]
    want = tail.lines(flows)
    assert tail.lines(flows, heads, list(zip(*flows))) == [
        h + t + "}\n" for h, t in zip(heads, want)]
    assert tail.lines(flows, heads) == [h + t + "}\n" for h, t in zip(heads, want)]


class SomeProcesses(Processes):
    """A process that opened a quarter of the flows, one that answers
    another quarter, forwarded a quarter, none the rest."""

    def lookup_both(self, e):
        from flowtop.enrich.owners import FORWARDED, ProcInfo
        n = (e.sport or 0) % 4
        if n == 0:
            return ProcInfo(4242, "a-process", "root"), None
        if n == 3:
            return None, ProcInfo(77, "a-server", "root")
        return (FORWARDED, FORWARDED) if n == 1 else (None, None)


class CountingNames(Names):
    def __init__(self, addrs):
        super().__init__(addrs)
        self.asked = 0

    def lookup(self, addr):
        self.asked += 1
        return super().lookup(addr)


def test_names_are_asked_once_a_batch_per_address_and_give_the_same_lines():
    flows = recorded(MULTIPART)[1] + recorded("tests/fixtures/ctnetlink-mixed.rec")[1]
    addrs = {a for f in flows for a in (f.src, f.dst)}
    kept, plain = CountingNames(addrs), CountingNames(addrs)
    procs = SomeProcesses()
    got = _lines(None, flows, 100, dns=kept, process=procs)
    tail = JsonTail(Enrichment(Services(), procs, plain))
    want = [tail.line(e) for e in flows]
    assert got == want
    assert plain.asked == 2 * len(flows)
    assert kept.asked == sum(len({a for f in flows[i:i + 100] for a in (f.src, f.dst)})
                             for i in range(0, len(flows), 100)) < len(flows) // 2
    assert any('"src_host":"h' in line for line in got)
    assert '"process":"forwarded"' in "".join(got) and '"pid":4242' in "".join(got)
    assert '"pid":null,"process":null' in "".join(got)


@pytest.mark.parametrize("kind", ["bare", "processes", "names", "ends-ifaces", "plain-ifaces",
                                  "all", "geo"])
def test_a_batchs_lines_are_its_flows_lines(kind):
    from tests.test_aggregate import Geo
    flows = recorded(MULTIPART)[1] + recorded("tests/fixtures/ctnetlink-mixed.rec")[1]
    addrs = {a for f in flows for a in (f.src, f.dst)}

    def enrichment():
        return Enrichment(
            Services(), SomeProcesses() if kind in ("processes", "all", "geo") else None,
            Names(addrs) if kind in ("names", "all", "geo") else None,
            Geo() if kind == "geo" else None,
            PlainIfaces() if kind == "plain-ifaces" else EndsIfaces()
            if kind in ("ends-ifaces", "all", "geo") else None)
    one = JsonTail(enrichment())
    want = [one.line(e) for e in flows]
    batched = JsonTail(enrichment())
    got = [t for i in range(0, len(flows), 37) for t in batched.lines(flows[i:i + 37])]
    assert got == want
    assert batched.lines([]) == []


def test_a_batchs_lines_with_own_dns_queries_and_failed_lookups_are_its_flows_lines():
    import os
    from flowtop.netlink.ctnetlink import FIELDS
    from tests.test_oncetext import NoSockets, OwnQueries
    flows = recorded("tests/fixtures/ctnetlink-mixed.rec")[1]
    flows = flows + [type(f)(**dict(zip(FIELDS, f), dport=53, reply_sport=53, key=(f.key, 53)))
                     for f in flows if f.l4proto == 17]
    addrs = {a for f in flows for a in (f.src, f.dst)}

    def tail(processes):
        return JsonTail(Enrichment(Services(), processes, OwnQueries(addrs),
                                   local=lambda: addrs))
    for processes in (NoSockets, SomeProcesses):
        want = [tail(processes()).line(e) for e in flows]
        assert tail(processes()).lines(flows) == want
    assert '"pid":%d,"process":"flowtop"' % os.getpid() in "".join(want)


@pytest.mark.parametrize("name", ["50%s off", "100%", "plain"])
def test_a_batchs_one_value_columns_are_baked_into_its_template_percent_signs_kept(name):
    from flowtop.enrich.owners import ProcInfo

    class OneProcess(Processes):
        def lookup_both(self, e):
            return ProcInfo(7, name, "ro%ot"), None
    _when, flows = recorded(MULTIPART)
    tail = JsonTail(Enrichment(Services(), OneProcess(), ifaces=EndsIfaces()))
    want = [tail.line(e) for e in flows]
    assert '"process":"%s"' % name in want[0]
    for size in (1, 3, len(flows)):
        heads = ["{%d" % i for i in range(size)]
        for i in range(0, len(flows), size):
            part = flows[i:i + size]
            assert tail.lines(part) == want[i:i + size]
            assert tail.lines(part, heads[:len(part)]) == [
                h + t + "}\n" for h, t in zip(heads, want[i:i + size])]
    assert tail._baked          # (the one-value columns were baked)
