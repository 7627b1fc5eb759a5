"""A batch's process answers (views.procbatch.BatchLookup) on a fake /proc:
the one-shot ``lookup_both`` answers, flow for flow, with only the flows on
a socket's port asked one by one."""

import random

from flowtop.enrich.bundle import Enrichment
from flowtop.netlink.ctnetlink import CtEntry
from flowtop.netlink.uapi import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP
from flowtop.services import Services
from flowtop.views.procbatch import BatchLookup
from flowtop.views.tail import JsonTail

from tests.test_process import CLOSE, EST, LISTEN, FakeProc, flow, make_map

TCP, UDP = IPPROTO_TCP, IPPROTO_UDP


def _world(tmp_path):
    fake = FakeProc(str(tmp_path / "proc"))
    fake.sock("tcp", "10.0.0.1", 40000, "93.184.216.34", 443, EST, 1001)
    fake.sock("tcp", "0.0.0.0", 22, "0.0.0.0", 0, LISTEN, 1002)
    fake.sock("udp", "0.0.0.0", 53, "0.0.0.0", 0, CLOSE, 1003)
    fake.sock("udp6", "::", 5353, "::", 0, CLOSE, 1004)
    fake.sock("icmp", "10.0.0.1", 4242, "0.0.0.0", 0, CLOSE, 1005)
    fake.process(100, "curl", [1001])
    fake.process(101, "sshd", [1002], uid=0)
    fake.process(102, "dnsmasq", [1003, 1004], uid=0)
    fake.process(103, "ping", [1005])
    m = make_map(fake, local_addresses={"10.0.0.1", "192.168.1.1", "2001:db8::1"})
    m.refresh()
    m.one_shot()
    return m


def _flows(n, seed=16):
    """Flows of every kind the matcher tells apart: on a socket's port or
    not, local or forwarded ends, NAT, IPv6, ICMP, a missing reply tuple."""
    rnd = random.Random(seed)
    hosts = ["10.0.0.1", "192.168.1.1", "127.0.0.1", "192.168.1.50", "198.51.100.7",
             "93.184.216.34", None]
    hosts6 = ["2001:db8::1", "2001:db8::9", "::1"]
    ports = [22, 53, 443, 5353, 40000, 41000, 123, None]
    out = []
    for _ in range(n):
        kind = rnd.random()
        if kind < 0.1:
            out.append(flow(IPPROTO_ICMP, rnd.choice(hosts[:-1]), None, rnd.choice(hosts[:-1]),
                            None, icmp_id=rnd.choice([4242, 7])))
            continue
        pool = hosts6 if kind < 0.3 else hosts
        proto = rnd.choice([TCP, UDP, 47])
        src, dst = rnd.choice(pool[:3] if kind < 0.2 else pool), rnd.choice(pool)
        sport, dport = rnd.choice(ports), rnd.choice(ports)
        reply = None
        if rnd.random() < 0.3:      # NAT, or a reply end the kernel left out
            reply = (rnd.choice(pool), rnd.choice(ports), rnd.choice(pool), rnd.choice(ports))
        e = flow(proto, src or "10.0.0.9", sport, dst or "10.0.0.8", dport, reply)
        if src is None:
            e = CtEntry(**dict(e.as_dict(), src=None))
        out.append(e)
    return out


def test_a_batchs_answers_are_lookup_boths_flow_for_flow(tmp_path):
    m = _world(tmp_path)
    flows = _flows(3000)
    flows[7:7] = [CtEntry(**dict(e.as_dict(), family=7)) for e in flows[:3]]   # not IP
    want = [m.lookup_both(e) for e in flows]
    batch = BatchLookup(m)
    for i in range(0, len(flows), 130):
        part = flows[i:i + 130]
        assert batch.answers(part, list(zip(*part))) == want[i:i + 130]
    assert sum(w != (None, None) for w in want) > 300      # (sockets and forwarded seen)


def test_flows_on_ports_no_socket_has_are_not_asked_one_by_one(tmp_path, monkeypatch):
    m = _world(tmp_path)
    asked = []
    real = m.lookup_both
    monkeypatch.setattr(m, "lookup_both", lambda e: asked.append(e) or real(e))
    on_socket = flow(TCP, "10.0.0.1", 40000, "93.184.216.34", 443)
    others = [flow(UDP, "192.168.1.50", 30000 + i, "198.51.100.7", 9000 + i) for i in range(50)]
    others += [flow(TCP, "10.0.0.1", 30000 + i, "198.51.100.7", 8443) for i in range(50)]
    flows = others + [on_socket]
    tail = JsonTail(Enrichment(Services(), m))
    tail.fresh()
    lines = tail.lines(flows)
    assert asked == [on_socket]
    assert '"process":"curl"' in lines[-1] and '"process":"forwarded"' in lines[0]
    assert '"pid":null,"process":null' in lines[50]


def test_a_map_that_keeps_its_answers_is_asked_for_every_flow(tmp_path, monkeypatch):
    m = _world(tmp_path)
    m.keep = True               # the live view's: a flow's answer remembered across ticks
    asked = []
    real = m.lookup_both
    monkeypatch.setattr(m, "lookup_both", lambda e: asked.append(e) or real(e))
    flows = _flows(200)
    assert BatchLookup(m).answers(flows, list(zip(*flows))) == [real(e) for e in flows]
    assert asked == flows


def _one_kind_batches():
    """Batches whose flows share one answer (a router's forwarded flows, a
    host's closed sockets), and the same with one flow that differs."""
    fwd = [flow(UDP, "192.168.1.50", 30000 + i, "198.51.100.7", 9000 + i) for i in range(40)]
    local = [flow(UDP, "10.0.0.1", 30000 + i, "198.51.100.7", 9000 + i) for i in range(40)]
    dns = flow(UDP, "10.0.0.1", 33333, "198.51.100.53", 53)
    curl = flow(TCP, "10.0.0.1", 40000, "93.184.216.34", 443)
    return [fwd, local, local + [dns], fwd + [curl], [curl] + local, fwd[:1]]


def test_a_batch_of_one_answer_is_written_as_each_flow_on_its_own(tmp_path):
    from flowtop.views.procbatch import labels
    m = _world(tmp_path)
    enrich = Enrichment(Services(), m)
    tail = JsonTail(enrich)

    class Owner:
        pass
    for flows in _one_kind_batches():
        fields = list(zip(*flows))
        assert BatchLookup(m).answers(flows, fields) == [m.lookup_both(e) for e in flows]
        tail.fresh()
        assert tail.lines(flows) == [tail.line(e) for e in flows]
        assert labels(Owner(), enrich, flows, fields) == list(map(enrich.process_label, flows))
    texts = labels(Owner(), enrich, _one_kind_batches()[3], fields=list(zip(
        *_one_kind_batches()[3])))
    assert texts[0] == "forwarded" and texts[-1].startswith("curl/")
