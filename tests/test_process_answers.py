"""The process enricher's answers kept across ticks: a tick asks again only
the flows whose ports a socket came to, left or changed owner on (a fake
/proc: the socket tables are injected as the kernel's text)."""

from flowtop.enrich.process import FORWARDED, ProcInfo
from flowtop.netlink.uapi import IPPROTO_ICMP as ICMP
from tests.clock import Clock
from tests.test_process import CLOSE, EST, LISTEN, TCP, UDP, fake, flow, make_map  # noqa: F401

SERVER = ("10.0.0.1", 22)


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
    m = make_map(fake)
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
    m = make_map(fake)
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
    m = make_map(fake, clock)
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
    m = make_map(fake)
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
    m = make_map(fake, local_addresses=lambda: set(local), local_interval=0)
    m.refresh()
    e = flow(UDP, "192.0.2.9", 4000, "192.0.2.10", 53)
    assert m.lookup(e) is FORWARDED
    local.add("192.0.2.10")
    m.refresh()
    assert m.lookup(e) is None          # ours now, and no socket of ours has its port


def test_a_raw_socket_asks_every_flow_of_its_protocol_again(fake):
    m = make_map(fake)
    m.refresh()
    ping = flow(ICMP, "10.0.0.1", None, "192.0.2.7", None, icmp_id=7)
    assert m.lookup(ping) is None
    fake.sock("raw", "0.0.0.0", ICMP, "0.0.0.0", 0, CLOSE, 7003)  # raw ICMP: port 1
    fake.process(702, "rawping", [7003])
    m.refresh()
    assert m.lookup(ping).name == "rawping"


def test_gone_flows_answers_are_forgotten_and_the_index_stays_small(fake):
    m = make_map(fake)
    m.refresh()
    for tick in range(30):          # 1,000 flows a tick, each seen for one tick
        flows = [flow(UDP, "192.0.2.1", 1024 + tick * 1000 + i, "192.0.2.2", 53)
                 for i in range(1000)]
        assert all(m.lookup(f) is FORWARDED for f in flows)
        m.retain({f.key for f in flows})
        m.refresh()
        assert len(m.answers) == 1000
    assert m._answers._filed <= 3 * 1000 + 4096


def test_an_answer_computed_across_a_tick_is_not_kept():
    from flowtop.enrich.answers import Answers
    a = Answers()
    gen = a.gen
    a.gen += 1                          # a tick started while it was computed
    a.put(b"k", UDP, 4000, 53, ("stale", None), gen)
    assert a.pairs == {}
    a.put(b"k", UDP, 4000, 53, ("fresh", None), a.gen)
    assert a.pairs == {b"k": ("fresh", None)}
    a.drop({(UDP, 53)})
    assert a.pairs == {}


def test_refiling_keeps_what_a_dropped_port_must_forget():
    from flowtop.enrich.answers import Answers
    a = Answers()
    for round_ in range(6):             # answers made again and again: the lists grow
        for i in range(1000):
            a.put(i, UDP, 1000 + i, 53, ("x", None), a.gen)
        a.drop({(UDP, 1000 + i) for i in range(1000)})
    for i in range(1000):
        a.put(i, UDP, 1000 + i, 53, ("x", None), a.gen)
    a.retain(set(range(500)))           # half the flows gone: refiled
    assert len(a.pairs) == 500 and a._filed == 1000
    a.drop({(UDP, 53)})
    assert a.pairs == {}
