"""The process enricher's answers kept across ticks: a tick asks again only
the flows whose ports a socket came to, left or changed owner on (a fake
/proc: the socket tables are injected as the kernel's text)."""

import pytest

from flowtop.enrich.process import FORWARDED, ProcInfo
from flowtop.netlink.uapi import IPPROTO_ICMP as ICMP
from tests.clock import Clock
from tests.test_process import CLOSE, EST, LISTEN, TCP, UDP, FakeProc, flow, make_map


@pytest.fixture
def fake(tmp_path):
    return FakeProc(str(tmp_path / "proc"))


def viewed(m):
    """``m`` as a Processes view has it: its answers read, so kept."""
    assert m.answers is not None
    return m


def counting(m, monkeypatch):
    """The matching calls ``lookup_both`` makes, in a list."""
    calls = []
    for name in ("_side", "_unmatched"):
        real = getattr(m, name)
        monkeypatch.setattr(m, name, lambda *a, _r=real, _n=name: calls.append(_n) or _r(*a))
    return calls


def test_a_tick_without_socket_changes_answers_every_flow_from_the_last_one(fake, monkeypatch):
    fake.sock("tcp", "10.0.0.1", 22, "0.0.0.0", 0, LISTEN, 2001)
    fake.process(200, "sshd", [2001], uid=0)
    m = viewed(make_map(fake))
    m.refresh()
    flows = [flow(TCP, "198.51.100.%d" % i, 50000 + i, "10.0.0.1", 22) for i in range(20)]
    flows += [flow(UDP, "192.0.2.%d" % i, 4000 + i, "192.0.2.200", 53) for i in range(20)]
    first = [m.lookup_both(f) for f in flows]
    assert first[0][1].name == "sshd" and first[-1] == (FORWARDED, FORWARDED)
    calls = counting(m, monkeypatch)
    m.refresh()
    assert [m.lookup_both(f) for f in flows] == first
    assert calls == []
    assert len(m.answers) == 40


def test_a_new_socket_on_a_flows_port_asks_that_flow_again_and_no_other(fake, monkeypatch):
    m = viewed(make_map(fake))
    m.refresh()
    web = [flow(TCP, "198.51.100.%d" % i, 50000 + i, "10.0.0.1", 8080) for i in range(5)]
    other = [flow(TCP, "198.51.100.%d" % i, 51000 + i, "10.0.0.1", 9090) for i in range(5)]
    assert [m.lookup(f) for f in web + other] == [None] * 10     # local, no socket: unknown
    fake.sock("tcp", "0.0.0.0", 8080, "0.0.0.0", 0, LISTEN, 3001)  # a server starts
    fake.process(300, "httpd", [3001])
    calls = counting(m, monkeypatch)
    m.refresh()
    assert [m.lookup(f) for f in web] == [ProcInfo(300, "httpd", "alice")] * 5
    assert [m.lookup(f) for f in other] == [None] * 5
    assert calls == ["_side"] * 5      # the web flows' server side; the others kept
    fake.unsock(3001)                   # it stops: the names found stay with the flows
    fake.kill(300)
    m.refresh()
    assert [m.lookup(f) for f in web] == [ProcInfo(300, "httpd", "alice")] * 5
    newcomer = flow(TCP, "198.51.100.99", 52000, "10.0.0.1", 8080)
    assert m.lookup(newcomer) is None   # a flow that came after: nobody's


def test_a_socket_whose_owner_is_found_a_tick_later_names_its_flows_then(fake):
    e = flow(TCP, "10.0.0.1", 40000, "93.184.216.34", 443)
    fake.sock("tcp", "10.0.0.1", 40000, "93.184.216.34", 443, EST, 8001)
    fake.process(800, "curl", [])       # the socket is listed before its descriptor is seen
    clock = Clock()
    m = viewed(make_map(fake, clock))
    m.refresh()
    assert m.lookup(e) is None
    fake.add_fd(800, 8001)
    clock.t += m.retry_interval         # (an inode a pass missed is retried this often)
    m.refresh()
    assert m.lookup(e) == ProcInfo(800, "curl", "alice")


def test_a_shared_listener_names_its_flows_anew_when_its_first_owner_exits(fake):
    queued = flow(TCP, "192.0.2.4", 1300, "10.0.0.1", 80)
    fake.sock("tcp", "0.0.0.0", 80, "0.0.0.0", 0, LISTEN, 9001)
    fake.process(900, "nginx", [9001])
    m = viewed(make_map(fake))
    m.refresh()
    assert m.lookup(queued).pid == 900
    fake.process(901, "nginx-worker", [9001])            # forked: shares the listener
    fake.kill(900)
    fake.sock("tcp", "10.0.0.1", 443, "192.0.2.4", 1235, EST, 9003)   # (a pass runs)
    fake.add_fd(901, 9003)
    m.refresh()
    assert m.lookup(queued).pid == 901


def test_a_new_local_address_asks_every_flow_again(fake):
    local = {"10.0.0.1"}
    m = viewed(make_map(fake, local_addresses=lambda: set(local), local_interval=0))
    m.refresh()
    e = flow(UDP, "192.0.2.9", 4000, "192.0.2.10", 53)
    assert m.lookup(e) is FORWARDED
    local.add("192.0.2.10")
    m.refresh()
    assert m.lookup(e) is None          # ours now, and no socket of ours has its port


def test_a_raw_socket_asks_every_flow_of_its_protocol_again(fake):
    m = viewed(make_map(fake))
    m.refresh()
    ping = flow(ICMP, "10.0.0.1", None, "192.0.2.7", None, icmp_id=7)
    assert m.lookup(ping) is None
    fake.sock("raw", "0.0.0.0", ICMP, "0.0.0.0", 0, CLOSE, 7003)  # raw ICMP: port 1
    fake.process(702, "rawping", [7003])
    m.refresh()
    assert m.lookup(ping).name == "rawping"


def test_gone_flows_answers_are_forgotten_and_the_index_stays_small(fake):
    m = viewed(make_map(fake))
    m.refresh()
    for tick in range(30):          # 1,000 flows a tick, each seen for one tick
        flows = [flow(UDP, "192.0.2.1", 1024 + tick * 1000 + i, "192.0.2.2", 53)
                 for i in range(1000)]
        assert all(m.lookup(f) is FORWARDED for f in flows)
        m.retain({f.key for f in flows})
        m.refresh()
        assert len(m.answers) == 1000
    assert m._answers._filed <= 3 * 1000 + 4096


def test_an_answer_found_while_a_tick_runs_is_not_kept(fake, monkeypatch):
    m = viewed(make_map(fake))
    m.refresh()
    e = flow(UDP, "192.0.2.9", 4000, "192.0.2.10", 53)
    real = m._unmatched

    def racing(*a):
        m._answers.gen += 1             # the collector's refresh began meanwhile
        return real(*a)
    monkeypatch.setattr(m, "_unmatched", racing)
    assert m.lookup(e) is FORWARDED
    assert e.key not in m.answers
    monkeypatch.setattr(m, "_unmatched", real)
    assert m.lookup(e) is FORWARDED and e.key in m.answers


def test_an_answer_computed_across_a_tick_is_not_kept():
    from flowtop.enrich.answers import Answers, code
    a = Answers()
    gen = a.gen
    a.gen += 1                          # a tick started while it was computed
    a.put(b"k", code(UDP, 4000), code(UDP, 53), ("stale", None), gen)
    assert a.pairs == {}
    a.put(b"k", code(UDP, 4000), code(UDP, 53), ("fresh", None), a.gen)
    assert a.pairs == {b"k": ("fresh", None)}
    a.file()
    a.drop({code(UDP, 53)})
    assert a.pairs == {}


def test_refiling_keeps_what_a_dropped_port_must_forget():
    from flowtop.enrich.answers import Answers, code
    a = Answers()
    for round_ in range(6):             # answers made again and again: the lists grow
        for i in range(1000):
            a.put(i, code(UDP, 1000 + i), code(UDP, 53), ("x", None), a.gen)
        a.file()
        a.drop({code(UDP, 1000 + i) for i in range(1000)})
    for i in range(1000):
        a.put(i, code(UDP, 1000 + i), code(UDP, 53), ("x", None), a.gen)
    a.file()
    a.retain(set(range(500)))           # half the flows gone: refiled
    assert len(a.pairs) == 500 and a._filed == 1000
    a.drop({code(UDP, 53)})
    assert a.pairs == {}


def test_the_processes_view_reads_each_flows_kept_answer_after_a_tick(fake):
    """Tab to Processes at 100k was ~190 ms of per-flow matching at every
    snapshot: after a tick without socket changes it is a dict read a flow."""
    from flowtop.enrich.bundle import Enrichment
    from flowtop.services import Services
    from flowtop.views import aggregate as agg
    from tests.test_aggregate import _many, _plain_aggregate, calls_of
    fake.sock("tcp", "127.0.0.1", 5001, "0.0.0.0", 0, LISTEN, 2001)
    fake.sock("udp", "0.0.0.0", 5353, "0.0.0.0", 0, CLOSE, 2002)
    fake.process(200, "server", [2001])
    fake.process(201, "mdns", [2002])
    m = viewed(make_map(fake, local_addresses={"10.9.0.1", "2001:db8::1"}))
    m.refresh()
    enrich = Enrichment(Services(), process=m)
    rows = list(_many(300, ("ctnetlink-mixed.rec",)))     # flows with timestamps: stored bare
    first = {g.key: (g.label, g.flows, g.totals()) for g in agg.aggregate(rows, "process", enrich)}
    assert first == _plain_aggregate(rows, "process", enrich, None, False)
    assert {g[0] for g in first.values()} >= {"server/200", "mdns/201", "forwarded", "unknown"}
    m.refresh()
    calls, again = calls_of(agg.aggregate, rows, "process", enrich)
    assert {g.key: (g.label, g.flows, g.totals()) for g in again} == first
    assert calls < len(rows) // 4, (calls, len(rows))


def test_flowtops_own_dns_queries_stay_its_own_in_the_processes_view(fake):
    """The kept answer of a query no socket has is 'nobody's': the view still
    asks Enrichment.proc, which knows its own resolver's queries."""
    import os

    from flowtop.enrich.bundle import Enrichment
    from flowtop.netlink.ctnetlink import FIELDS
    from flowtop.services import Services
    from flowtop.table import FlowTable, TableFlow
    from flowtop.views import aggregate as agg
    from tests.test_bundle import Spans
    m = viewed(make_map(fake))
    m.refresh()
    enrich = Enrichment(Services(), process=m, dns=Spans(), local=lambda: {"10.0.0.1"})
    enrich.tick([])
    fields = list(flow(UDP, "10.0.0.1", 40000, "10.0.0.53", 53))
    fields[FIELDS.index("start")] = int(100.5e9)         # while the resolver was resolving
    other = list(fields)
    other[FIELDS.index("dport")] = other[FIELDS.index("reply_sport")] = 443
    other[FIELDS.index("key")] = b"other"
    t = FlowTable()
    t.apply([tuple.__new__(TableFlow, f) for f in (fields, other)], 100.0, 1000.0)
    for _ in range(2):                  # asked, then read from the kept answers
        got = {g.label: g.flows for g in agg.aggregate(list(t), "process", enrich)}
        assert got == {"flowtop/%d" % os.getpid(): 1, "unknown": 1}
        m.refresh()


def test_one_shot_answers_alike_and_keeps_nothing(fake):
    """--once asks each flow once: the answers are the kept mode's, and
    neither the answers nor the per-flow memo grow with the table."""
    fake.sock("tcp", "10.0.0.1", 22, "0.0.0.0", 0, LISTEN, 2001)
    fake.process(200, "sshd", [2001], uid=0)
    flows = [flow(TCP, "198.51.100.%d" % i, 50000 + i, "10.0.0.1", 22) for i in range(20)]
    flows += [flow(UDP, "192.0.2.%d" % i, 4000 + i, "192.0.2.200", 53) for i in range(20)]
    flows += [flow(ICMP, "192.0.2.%d" % i, None, "192.0.2.201", None) for i in range(5)]
    kept = viewed(make_map(fake))
    kept.refresh()
    want = [kept.lookup_both(f) for f in flows]
    once = viewed(make_map(fake))
    once.refresh()
    once.one_shot()
    assert [once.lookup_both(f) for f in flows] == want
    assert len(kept.answers) == len(flows)
    assert len(once.answers) == 0 and not once._answers.unfiled and not once._memo


def test_the_answers_go_once_no_view_has_read_them_for_a_while(fake):
    """The Processes view reads every flow's answer; after it is left, the
    next full tick past ANSWERS_IDLE lets them go (RSS, on a router)."""
    from flowtop.enrich.process import ANSWERS_IDLE
    clock = Clock()
    m = viewed(make_map(fake, clock))
    m.refresh()
    flows = [flow(UDP, "192.0.2.%d" % i, 4000 + i, "192.0.2.200", 53) for i in range(30)]
    keys = {f.key for f in flows}
    want = [m.lookup_both(f) for f in flows]
    assert len(m.answers) == 30                 # a view reads them all
    clock.t += ANSWERS_IDLE / 2
    m.retain(keys)
    assert len(m._answers.pairs) == 30          # still read recently: kept
    clock.t += ANSWERS_IDLE
    m.retain(keys)
    assert len(m._answers.pairs) == 0           # left: gone
    assert [m.lookup_both(f) for f in flows] == want


def test_without_a_view_reading_them_no_answer_is_kept(fake):
    """The flows view asks about the rows it shows, or all of them when sorted
    by process: in a flood of 200k flows kept answers held ~70 MiB after it.
    Only a view that reads every flow's answer (``answers``) has them kept;
    the names found for a flow are remembered all the same."""
    fake.sock("tcp", "10.0.0.1", 40000, "93.184.216.34", 443, EST, 8001)
    fake.process(800, "wget", [8001])
    m = make_map(fake)
    m.refresh()
    e = flow(TCP, "10.0.0.1", 40000, "93.184.216.34", 443)
    flows = [flow(UDP, "192.0.2.%d" % i, 4000 + i, "192.0.2.200", 53) for i in range(30)]
    assert m.lookup(e).name == "wget"
    assert [m.lookup_both(f) for f in flows] == [(FORWARDED, FORWARDED)] * 30
    assert not m._answers.pairs and not m._answers.unfiled
    fake.unsock(8001)
    fake.kill(800)
    m.refresh()
    assert m.lookup(e).name == "wget"       # the name found stays with its flow
