"""IPFIX encoding and the exporter's record logic, without a kernel: the
bytes are read back by an independent parser (``ipfix.parse_message``
walks the RFC 7011 layout, not the encoder's structs)."""

import socket

import pytest

from flowtop.export import ipfix
from flowtop.export.exporter import IpfixExporter, end_reason, parse_target
from flowtop.export.records import ORIG, REPLY, Info, Templates, is_nat, record
from flowtop.model import Flow
from flowtop.netlink import uapi as u


def flow(**kw):
    base = dict(family=u.AF_INET, l4proto=u.IPPROTO_UDP, src="10.0.0.1", dst="10.0.0.2",
                sport=1000, dport=53, reply_src="10.0.0.2", reply_dst="10.0.0.1",
                reply_sport=53, reply_dport=1000, id=7, status=1 << u.IPS_SEEN_REPLY_BIT,
                start=1_700_000_000_000_000_000, key=b"k1",
                packets_orig=1, bytes_orig=60, packets_reply=1, bytes_reply=120)
    base.update(kw)
    return Flow(**base)


def parse_all(messages):
    templates, out, headers = {}, [], []
    for m in messages:
        h, recs = ipfix.parse_message(m, templates)
        headers.append(h)
        out.extend(recs)
    return headers, out


@pytest.mark.parametrize("n", [0, 1, 254, 255, 300, 65535])
def test_variable_length_strings_use_one_length_byte_below_255_else_three(n):
    enc = ipfix.varlen(b"a" * n)
    if n < 255:
        assert enc[0] == n and len(enc) == n + 1
    else:
        assert enc[0] == 255 and int.from_bytes(enc[1:3], "big") == min(n, 65534)


def test_a_string_cut_to_the_cap_stays_valid_utf8():
    enc = ipfix.varlen("é" * 200, cap=255)      # 400 bytes, cut at a character boundary
    assert enc[0] == 254
    enc[1:].decode("utf-8")


def test_template_record_marks_enterprise_elements_and_varlen():
    t = ipfix.Template(300, [ipfix.srcProcPid, ipfix.userName, ipfix.srcProcName])
    d = t.definition()
    assert d[:4] == bytes.fromhex("012c0003")
    assert d[4:12] == bytes.fromhex("80a80004") + (35632).to_bytes(4, "big")
    assert d[12:16] == bytes.fromhex("0173ffff")                 # userName 371, varlen
    assert d[16:24] == bytes.fromhex("80a9ffff") + (35632).to_bytes(4, "big")


def test_messages_stay_within_the_mtu_and_number_the_data_records_sent_before_them():
    t = ipfix.Template(256, [ipfix.flowId, ipfix.userName])
    items = [(2, t.definition(), False)]
    items += [(256, t.record([i, "user%d" % i]), True) for i in range(100)]
    messages, seq = ipfix.pack_messages(items, 200, 9, 4294967290, 1234)
    assert all(len(m) <= 200 for m in messages) and len(messages) > 5
    headers, recs = parse_all(messages)
    assert [r["flowId"] for _, r in recs] == list(range(100))
    assert [r["userName"] for _, r in recs][:2] == ["user0", "user1"]
    expect, counted = 4294967290, []
    for h, m in zip(headers, messages):
        counted.append(h["sequence"])
        assert h["domain"] == 9 and h["export_time"] == 1234
    firsts = [4294967290]
    n = 0
    for m in messages[:-1]:
        n += len(ipfix.parse_message(m, {256: t})[1])
        firsts.append((expect + n) & 0xFFFFFFFF)
    assert counted == firsts
    assert seq == (expect + 100) & 0xFFFFFFFF


def test_uniflow_records_swap_ends_interfaces_and_nat_for_the_reply_direction():
    e = flow(l4proto=u.IPPROTO_TCP, reply_src="192.0.2.9", reply_dst="198.51.100.1",
             reply_sport=443, reply_dport=40001, dport=443)
    assert is_nat(e)
    templates = Templates()
    info = Info((2, 3), (False, False), (None, None))
    items = []
    for d in (ORIG, REPLY):
        t, data = record(templates, e, d, 1000, 2000, (10, 1), ipfix.END_ACTIVE, info)
        items += [(2, t.definition(), False), (t.id, data, True)]
    messages, _ = ipfix.pack_messages(items, 1400, 0, 0, 0)
    _, recs = parse_all(messages)
    orig, reply = recs[0][1], recs[1][1]
    a = lambda b: socket.inet_ntop(socket.AF_INET, b)
    assert (a(orig["sourceIPv4Address"]), a(orig["destinationIPv4Address"])) == ("10.0.0.1",
                                                                                 "10.0.0.2")
    assert (a(orig["postNATSourceIPv4Address"]), orig["postNAPTSourceTransportPort"]) == (
        "198.51.100.1", 40001)
    assert (orig["ingressInterface"], orig["egressInterface"]) == (2, 3)
    assert (reply["ingressInterface"], reply["egressInterface"]) == (3, 2)
    assert a(reply["sourceIPv4Address"]) == "192.0.2.9"
    assert (a(reply["postNATDestinationIPv4Address"]), reply["postNAPTDestinationTransportPort"]
            ) == ("10.0.0.1", 1000)
    assert (orig["biflowDirection"], reply["biflowDirection"]) == (1, 2)


class Table(list):
    """What the exporter reads of a FlowTable: rows with .entry and .closed."""


class Row:
    closed = 0

    def __init__(self, entry):
        self.entry = entry


def run_exporter(steps, timeout=10.0):
    sent = []
    x = IpfixExporter(sent.append, active_timeout=timeout)
    for step in steps:
        step(x)
    _, recs = parse_all(sent)
    return x, recs


def test_deltas_over_periodic_and_final_records_sum_to_the_final_counters():
    a = flow(bytes_orig=100, packets_orig=2, bytes_reply=50, packets_reply=1)
    b = flow(bytes_orig=700, packets_orig=9, bytes_reply=250, packets_reply=4)
    end = flow(bytes_orig=900, packets_orig=12, bytes_reply=250, packets_reply=4, stop=None)
    _, recs = run_exporter([
        lambda x: x.event("new", a, 0.0, 1000.0),
        lambda x: (x.dump(Table([Row(a)]), 1.0, 1001.0), x.flush(1.0, 1001.0)),
        lambda x: (x.dump(Table([Row(b)]), 11.0, 1011.0), x.flush(11.0, 1011.0)),
        lambda x: (x.event("destroy", end, 12.0, 1012.0), x.flush(12.0, 1012.0)),
    ])
    by_dir = {1: [], 2: []}
    for _, r in recs:
        by_dir[r["biflowDirection"]].append(r)
    assert sum(r["octetDeltaCount"] for r in by_dir[1]) == 900
    assert sum(r["packetDeltaCount"] for r in by_dir[1]) == 12
    assert sum(r["octetDeltaCount"] for r in by_dir[2]) == 250
    assert [r["flowEndReason"] for r in by_dir[1]] == [ipfix.END_ACTIVE, ipfix.END_IDLE]
    # no reply packets after the periodic record: no zero-delta reply record
    assert len(by_dir[2]) == 1
    starts = [r["flowStartMilliseconds"] for r in by_dir[1]]
    assert starts[1] == by_dir[1][0]["flowEndMilliseconds"]   # records do not overlap


def test_a_flow_without_counters_is_exported_without_counter_fields():
    bare = flow(bytes_orig=None, packets_orig=None, bytes_reply=None, packets_reply=None)
    _, recs = run_exporter([
        lambda x: (x.dump(Table([Row(bare)]), 100.0, 1_700_000_100.0),
                   x.flush(100.0, 1_700_000_100.0)),
    ])
    assert recs and all("octetDeltaCount" not in r and "packetDeltaCount" not in r
                        for _, r in recs)


def test_a_flow_missing_from_a_resync_dump_ends_forced():
    a = flow()
    _, recs = run_exporter([
        lambda x: x.dump(Table([Row(a)]), 0.0, 1000.0),
        lambda x: (x.dump(Table([]), 1.0, 1001.0, resync=True), x.flush(1.0, 1001.0)),
    ])
    assert {r["flowEndReason"] for _, r in recs} == {ipfix.END_FORCED}


def test_a_flow_missing_from_one_ordinary_dump_waits_for_its_destroy_event():
    a = flow()
    x, recs = run_exporter([
        lambda x: x.dump(Table([Row(a)]), 0.0, 1000.0),
        lambda x: (x.dump(Table([]), 1.0, 1001.0), x.flush(1.0, 1001.0)),
    ])
    assert recs == [] and a.key in x.flows


def test_a_collector_that_refuses_costs_only_the_datagram():
    from flowtop.export.exporter import UdpSender
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()                        # nobody listens: ICMP port unreachable
    s = UdpSender("127.0.0.1", port)
    for _ in range(5):
        s(b"x" * 100)
    s.close()
    assert s.sent + s.dropped == 5 and s.dropped >= 1


def test_end_reason_says_end_of_flow_for_closed_tcp_and_idle_otherwise():
    assert end_reason(flow(l4proto=u.IPPROTO_TCP, state=u.TCP_CONNTRACK_TIME_WAIT)) == 3
    assert end_reason(flow(l4proto=u.IPPROTO_TCP, state=u.TCP_CONNTRACK_ESTABLISHED)) == 1
    assert end_reason(flow()) == 1


@pytest.mark.parametrize("text,want", [
    ("collector", ("collector", 4739)), ("10.0.0.1:2055", ("10.0.0.1", 2055)),
    ("[::1]:9995", ("::1", 9995)), ("[fd00::1]", ("fd00::1", 4739)), ("fd00::1", ("fd00::1", 4739)),
])
def test_collector_targets_parse_with_ipfix_default_port(text, want):
    assert parse_target(text, 4739) == want


@pytest.mark.parametrize("text", ["", ":99", "host:0", "host:x", "[::1]:70000"])
def test_bad_collector_targets_are_refused(text):
    with pytest.raises(ValueError):
        parse_target(text, 4739)


def replay_to_socket(recording, *args):
    """``flowtop --replay RECORDING --ipfix`` to a local UDP socket, under the
    python3-light blocker: (the run, [messages received])."""
    from tests.routerpy import lightenv
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(0.5)
    run = lightenv.flowtop("--replay", recording, "--ipfix", "127.0.0.1:%d" % rx.getsockname()[1],
                           "-n", "-G", *args)
    messages = []
    try:
        while True:
            messages.append(rx.recv(65535))
    except socket.timeout:
        pass
    rx.close()
    return run, messages


def test_a_replayed_recording_exports_under_python3_light_beside_json_with_the_recorded_counters():
    """No root: --replay of a recorded dump, flowtop under the python3-light
    import blocker, records received on a local UDP socket and summed per
    direction against the recording's ``conntrack -L`` text."""
    import os
    from tests import ctparse
    from tests.routerpy import lightenv
    run, messages = replay_to_socket(lightenv.MIXED, "--ipfix-domain", "77", "--json")
    assert run.returncode == 0, run.stderr
    import json
    lines = [json.loads(l) for l in run.stdout.splitlines()]        # --json beside the export
    assert len(lines) == 14 and {l["id"] for l in lines} == {
        e["ctid"] for e in ctparse.parse(open(os.path.join(lightenv.FIXTURES,
                                                           "ctnetlink-mixed.conntrack.txt")).read())}
    headers, recs = parse_all(messages)
    assert {h["domain"] for h in headers} == {77}
    with open(os.path.join(lightenv.FIXTURES, "ctnetlink-mixed.conntrack.txt")) as f:
        truth = ctparse.parse(f.read())
    assert len({r["flowId"] for _, r in recs}) == len(truth) == 14
    for e in truth:
        mine = [r for _, r in recs if r["flowId"] == e["ctid"]]
        for side, direction in (("orig", 1), ("reply", 2)):
            got = [r for r in mine if r["biflowDirection"] == direction]
            assert sum(r["octetDeltaCount"] for r in got) == e[side]["bytes"], (e, mine)
            assert sum(r["packetDeltaCount"] for r in got) == e[side]["packets"], (e, mine)
        assert {r["flowEndReason"] for r in mine} == {ipfix.END_FORCED}      # at the end


class _Source:
    live = True

    def __init__(self, tables):
        self.tables = tables
        self.dumps = 0

    def snapshot(self, wants="list", enrich=None):
        flows = self.tables[min(self.dumps, len(self.tables) - 1)]
        self.dumps += 1
        if wants == "stamped":          # (received at, flows) per datagram: one here
            return 1000.0 + self.dumps, iter([(float(self.dumps), flows)])
        return 1000.0 + self.dumps, iter(flows)


class _Events:
    def __init__(self, batches):
        self.batches = list(batches)

    def drain(self):
        return self.batches.pop(0) if self.batches else ([], False)

    def stop(self):
        pass


class _Opts:
    interval = 1.0


def test_an_event_overflow_is_said_and_resynchronised_by_a_dump_with_forced_ends():
    from flowtop.export.runner import IpfixSink, Runner
    from flowtop.table import TableFlow
    a = TableFlow(**flow().as_dict())
    b = TableFlow(**flow(key=b"k2", id=8, sport=1001, reply_dport=1001).as_dict())
    sent, said = [], []
    x = IpfixExporter(sent.append, active_timeout=100.0)
    sink = IpfixSink(x, sender=None)
    sink.period = 100.0
    source = _Source([[a, b], [b], [b], [b]])
    events = _Events([([], False), ([], True)])        # the second drain: ENOBUFS
    clock = [0.0]

    def sleep(s):
        clock[0] += 0.25
        if clock[0] > 1.0:
            raise KeyboardInterrupt

    r = Runner(source, _Opts(), None, [sink], said.append, events=events,
               monotonic=lambda: clock[0], clock=lambda: 1000.0 + clock[0], sleep=sleep)
    with pytest.raises(KeyboardInterrupt):
        r.run()
    assert r.resyncs == 1 and any("ENOBUFS" in line for line in said), said
    assert source.dumps >= 2                        # the start, then the resync at once
    _, recs = parse_all(sent)
    ends = {(r["flowId"], r["flowEndReason"]) for _, r in recs}
    assert (7, ipfix.END_FORCED) in ends            # a: gone at the resync dump


def test_messages_leave_at_the_pace_in_order_and_none_is_lost():
    from flowtop.export import exporter as ex
    sent = []
    x = IpfixExporter(sent.append, active_timeout=10.0, pace=1000.0)
    flows = [flow(key=b"k%d" % i, id=i, sport=2000 + i, reply_dport=2000 + i) for i in range(3000)]
    x.dump(Table([Row(f) for f in flows]), 100.0, 1_700_000_100.0)    # all due: older than 10 s
    x.flush(100.0, 1_700_000_100.0)
    assert len(sent) == ex.BURST and x.backlog > 0
    x.flush(100.01, 1_700_000_100.0)                   # 10 ms at 1000/s: 10 more
    assert len(sent) == ex.BURST + 10
    now = [100.01]
    x.drain(lambda: now[0], lambda s: now.__setitem__(0, now[0] + s))
    assert x.backlog == 0
    headers, recs = parse_all(sent)
    assert len(recs) == 6000                            # both directions of every flow
    seqs = [h["sequence"] for h in headers]
    assert seqs == sorted(seqs) and seqs[0] == 0


@pytest.mark.parametrize("argv,why", [
    (["--ipfix", "host:99999"], "bad port"),
    (["--metrics", "nowhere"], "bad port"),
    (["--syslog", "ftp://x"], "syslog target must be"),
    (["--ipfix", "host", "--once"], "not with --once"),
])
def test_bad_export_options_are_refused_at_parse_time(argv, why, capsys):
    from flowtop import cli
    with pytest.raises(SystemExit) as exit_:
        cli.parse(argv)
    assert exit_.value.code == 2 and why in capsys.readouterr().err


def test_a_replayed_recording_without_accounting_exports_no_counter_fields():
    import os
    from tests.routerpy import lightenv
    run, messages = replay_to_socket(os.path.join(lightenv.FIXTURES, "ctnetlink-acct-off.rec"))
    assert run.returncode == 0, run.stderr
    _, recs = parse_all(messages)
    assert recs and not any("octetDeltaCount" in r or "packetDeltaCount" in r for _, r in recs)


def test_a_flow_born_and_ended_between_dumps_starts_at_the_kernels_start_time():
    born = flow(start=None, bytes_orig=None, packets_orig=None, bytes_reply=None,
                packets_reply=None)                  # NEW events carry no timestamp, no counters
    died = flow(start=1_700_000_000_500_000_000, stop=1_700_000_003_000_000_000, state=None)
    _, recs = run_exporter([
        lambda x: x.event("new", born, 5.0, 1_700_000_002.0),
        lambda x: (x.event("destroy", died, 6.0, 1_700_000_003.2), x.flush(6.0, 0)),
    ])
    assert [(r["flowStartMilliseconds"], r["flowEndMilliseconds"]) for _, r in recs] == [
        (1_700_000_000_500, 1_700_000_003_000)] * 2
