"""Recorded kernel dumps decode to what conntrack-tools listed for them."""

import glob
import io
import os

import pytest

from flowtop import conntrack
from flowtop.views.record import record
from tests import ctparse
from tests.expect import mismatches

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
RECORDINGS = sorted(glob.glob(os.path.join(FIXTURES, "*.rec")))


def load(path):
    with open(path, "rb") as f:
        return list(conntrack.replay(f))


def expected(path):
    with open(path[:-len(".rec")] + ".conntrack.txt") as f:
        return ctparse.parse(f.read())


def test_fixtures_present():
    names = {os.path.basename(p) for p in RECORDINGS}
    assert {"ctnetlink-mixed.rec", "ctnetlink-multipart.rec", "ctnetlink-acct-off.rec"} <= names


@pytest.mark.parametrize("path", RECORDINGS, ids=os.path.basename)
def test_fixture_matches_conntrack(path):
    dumps = load(path)
    assert len(dumps) == 1
    when, flows = dumps[0]
    records = [record(f, when) for f in flows]
    entries = expected(path)
    assert len(records) == len(entries) > 0
    assert mismatches(records, entries) == []


def test_mixed_covers_every_protocol():
    _, flows = load(os.path.join(FIXTURES, "ctnetlink-mixed.rec"))[0]
    seen = {(f.family_name, f.proto_name) for f in flows}
    for want in [("ipv4", "tcp"), ("ipv6", "tcp"), ("ipv4", "udp"), ("ipv6", "udp"),
                 ("ipv4", "icmp"), ("ipv6", "icmpv6"), ("ipv4", "sctp"),
                 ("ipv4", "udplite"), ("ipv4", "gre"), ("ipv4", "dccp")]:
        assert want in seen
    assert any(f.mark == 42 for f in flows)
    assert any(f.zone == 3 for f in flows)
    tcp = [f for f in flows if f.proto_name == "tcp" and f.bytes_reply]
    assert tcp and all(f.bytes_orig > 0 for f in tcp)


def test_acct_off_has_no_counters_or_start():
    _, flows = load(os.path.join(FIXTURES, "ctnetlink-acct-off.rec"))[0]
    assert flows
    for f in flows:
        assert f.packets_orig is None and f.bytes_reply is None
        assert f.start is None
        rec = record(f, 0.0)
        assert rec["bytes_orig"] is None and rec["age"] is None and rec["start"] is None


def test_multipart_spans_several_datagrams():
    with open(os.path.join(FIXTURES, "ctnetlink-multipart.rec"), "rb") as f:
        data = f.read()
    from flowtop.netlink import nlmsg
    from flowtop.recording import iter_dumps, read_header
    stream = io.BytesIO(data)
    read_header(stream)
    (_, body), = list(iter_dumps(stream))
    msgs = list(nlmsg.iter_messages(body))
    assert len(msgs) > 400
    # the kernel marks every message of a dump multi-part
    assert all(flags & 0x2 for _t, flags, *_ in msgs)


def test_filters_on_replay():
    path = os.path.join(FIXTURES, "ctnetlink-mixed.rec")
    with open(path, "rb") as f:
        _, tcp6 = next(conntrack.replay(f, families=["ipv6"], protocols=["tcp"]))
    entries = [e for e in expected(path) if e["family"] == "ipv6" and e["proto"] == "tcp"]
    assert len(tcp6) == len(entries) > 0
    assert all(f.family_name == "ipv6" and f.proto_name == "tcp" for f in tcp6)


def _raw_dump(path):
    from flowtop.recording import iter_dumps, read_header
    with open(path, "rb") as f:
        read_header(f)
        return list(iter_dumps(f))[0]


@pytest.mark.parametrize("path", RECORDINGS, ids=os.path.basename)
def test_layout_decoder_agrees_with_plain_decoder(path):
    """Decoder's compiled layouts give exactly what the schema walk gives,
    on the second pass too (when every layout has been learnt)."""
    from flowtop.model import Flow
    from flowtop.netlink import ctnetlink
    from flowtop.netlink.conntrack import DumpState, feed
    _, data = _raw_dump(path)
    plain, fast = [], []
    feed(data, plain, DumpState(), decode=lambda b, o, e: ctnetlink.decode_entry(b, o, e, Flow))
    decoder = ctnetlink.Decoder(Flow)
    for _ in range(2):
        fast = []
        feed(data, fast, DumpState(), decode=decoder)
        assert fast == plain
    assert decoder.fast
    # equal ports and timeouts are one object each: a big table holds them once
    for field in ("sport", "dport", "reply_sport", "reply_dport", "timeout"):
        by_value = {}
        for f in fast:
            v = getattr(f, field)
            if v is not None:
                assert by_value.setdefault(v, v) is v, field


@pytest.mark.parametrize("path", RECORDINGS, ids=os.path.basename)
def test_a_one_shot_decoder_agrees_and_shares_no_port_or_status_ints(path):
    """``--once``'s decoder (``api.passing_decoder``: its records are written
    once and dropped) gives the same records as the table's, without looking
    every port and status word up in the shared tables (250k flows: 1.8 % of
    ``--once``'s instructions)."""
    from flowtop import api
    from flowtop.netlink import ctdecoder
    from flowtop.netlink.conntrack import DumpState, feed
    from flowtop.table import TableFlow
    _, data = _raw_dump(path)
    from types import SimpleNamespace
    kept = api._decoder(TableFlow)
    passing = api.passing_decoder(SimpleNamespace(decoder=kept))
    assert passing.cls is TableFlow
    first, second = [], []
    for _ in range(2):      # (the second pass: every layout learnt)
        first, second = [], []
        feed(data, first, DumpState(), decode=kept)
        ctdecoder._PORTS[:] = [None] * 65536 if ctdecoder._PORTS else []
        feed(data, second, DumpState(), decode=passing)
    assert second == first and passing.fast
    assert all(p is None for p in ctdecoder._PORTS) and not len(passing._shared)


def test_a_decoder_that_forgets_lets_go_of_every_cached_value_and_still_decodes_alike():
    """forget() (the collector's, after a flood) empties the address and
    int caches and the shared port ints: values cached among a flood's
    freed records pinned Python's arenas."""
    from flowtop.model import Flow
    from flowtop.netlink import ctdecoder, ctnetlink
    from flowtop.netlink.conntrack import DumpState, feed
    _, data = _raw_dump(RECORDINGS[0])
    decoder = ctnetlink.Decoder(Flow)
    first, again = [], []
    feed(data, first, DumpState(), decode=decoder)
    feed(data, first[:0], DumpState(), decode=decoder)      # every layout learnt
    assert decoder.cached() and any(p is not None for p in ctdecoder._PORTS)
    decoder.forget()
    assert decoder.cached() == 0 and all(p is None for p in ctdecoder._PORTS)
    assert len(ctdecoder._PORTS) == 65536
    feed(data, again, DumpState(), decode=decoder)
    assert again == first


@pytest.mark.parametrize("path", RECORDINGS, ids=os.path.basename)
@pytest.mark.parametrize("families,protocols", [((), ()), ((10,), ()), ((), (6, 47)),
                                                ((2,), (17, 136))])
def test_json_target_agrees_with_record(path, families, protocols):
    """What --json prints from the bytes equals json.dumps(record(flow))."""
    import json
    from flowtop.model import Flow
    from flowtop.netlink import ctnetlink
    from flowtop.netlink.conntrack import DumpState, feed
    from flowtop.views.record import JsonTarget, json_line
    when, data = _raw_dump(path)
    flows = []
    feed(data, flows, DumpState(), decode=lambda b, o, e: ctnetlink.decode_entry(b, o, e, Flow))
    want = [record(f, when + 3.5) for f in flows
            if (not families or f.family in families) and (not protocols or f.l4proto in protocols)]
    assert want or os.path.basename(path) == "ctnetlink-helper.rec"     # two IPv4 TCP flows only
    target = JsonTarget(families, protocols)
    target.now = when + 3.5
    decoder = ctnetlink.Decoder(Flow, target)
    for _ in range(2):       # first pass: plain decoder + json_line; second: compiled
        lines = []
        feed(data, lines, DumpState(), decode=decoder)
        got = [json.loads(line) for line in lines if line]
        assert got == want
    assert [json.loads(json_line(f, when + 3.5)) for f in flows] == [
        record(f, when + 3.5) for f in flows]


@pytest.mark.parametrize("path", RECORDINGS, ids=os.path.basename)
def test_json_target_with_baked_service_names(path):
    """The fast path with service names baked per layout says what
    json_line + JsonTail.line say."""
    import json
    from flowtop.enrich.bundle import Enrichment
    from flowtop.model import Flow
    from flowtop.netlink import ctnetlink
    from flowtop.netlink.conntrack import DumpState, feed
    from flowtop.services import Services
    from flowtop.views.record import JsonTarget, json_line
    from flowtop.views.tail import JsonTail
    enrich = Enrichment(Services(etc_dir="/nonexistent"))
    tail = JsonTail(enrich)
    assert tail.services_only
    when, data = _raw_dump(path)
    flows = []
    feed(data, flows, DumpState(), decode=lambda b, o, e: ctnetlink.decode_entry(b, o, e, Flow))
    want = [json.loads(json_line(f, when)[:-2] + tail.line(f) + "}") for f in flows]
    target = JsonTarget(services=tail)
    target.now = when
    decoder = ctnetlink.Decoder(Flow, target)
    for _ in range(2):
        lines = []
        feed(data, lines, DumpState(), decode=decoder)
        assert [json.loads(line) for line in lines] == want
    assert any(w["service"] for w in want)


@pytest.mark.parametrize("path", RECORDINGS, ids=os.path.basename)
def test_deferred_json_target_hands_each_flow_with_its_line_for_the_tail(path):
    """``defer``: the fast path's (line without its close, entry) pairs -
    what --once --json with interfaces or names prepares a datagram at a
    time - are the plain decoder's entries and json_line's text."""
    import json
    from flowtop.model import Flow
    from flowtop.netlink import ctnetlink
    from flowtop.netlink.conntrack import DumpState, feed
    from flowtop.views.record import JsonTarget, json_line
    when, data = _raw_dump(path)
    flows = []
    feed(data, flows, DumpState(), decode=lambda b, o, e: ctnetlink.decode_entry(b, o, e, Flow))
    target = JsonTarget(tail=lambda e: ',"x":%d' % e.l4proto, cls=Flow, defer=True)
    target.now = when
    decoder = ctnetlink.Decoder(Flow, target)
    for _ in range(2):                      # learning the layouts, then the fast functions
        pairs = []
        feed(data, pairs, DumpState(), decode=decoder)
        assert [e for _, e in pairs] == flows and all(type(e) is Flow for _, e in pairs)
        assert [json.loads(head + "}") for head, _ in pairs] == [
            json.loads(json_line(f, when)) for f in flows]


@pytest.mark.parametrize("path", RECORDINGS, ids=os.path.basename)
def test_deferred_json_target_makes_each_flows_service_as_the_tails_line_does(path):
    """``service_of``: the formatter's third item is the service value
    ``JsonTail.line`` writes for the flow (a name, the lower port, null)."""
    import json
    from flowtop.enrich.bundle import Enrichment
    from flowtop.model import Flow
    from flowtop.netlink import ctnetlink
    from flowtop.netlink.conntrack import DumpState, feed
    from flowtop.services import Services
    from flowtop.views.record import JsonTarget
    from flowtop.views.tail import JsonTail
    when, data = _raw_dump(path)
    tail = JsonTail(Enrichment(Services()))
    target = JsonTarget(tail=tail.line, cls=Flow, defer=True, service_of=tail.service_json)
    target.now = when
    decoder = ctnetlink.Decoder(Flow, target)
    for _ in range(2):                      # learning the layouts, then the fast functions
        triples = []
        feed(data, triples, DumpState(), decode=decoder)
        want = [json.loads("{" + tail.line(e)[1:] + "}")["service"] for _, e, _ in triples]
        assert [json.loads(sv) for _, _, sv in triples] == want
    assert any(w and not w.isdigit() for w in want)     # a name in every recording


def test_helper_fixture_names_the_helper_its_labels_and_the_master_of_the_related_flow():
    """ctnetlink-helper.rec: nf_conntrack_ftp on the control flow (the nftables rule
    set labels 5 and 70), and the data flow its PASV reply announced, whose
    master is the control flow's original tuple."""
    _, flows = load(os.path.join(FIXTURES, "ctnetlink-helper.rec"))[0]
    control, = [f for f in flows if f.dport == 21]
    data, = [f for f in flows if f.dport != 21]
    assert control.related.helper == "ftp" and control.related.labels == (5, 70)
    assert "HELPER" in control.status_names and "EXPECTED" in data.status_names
    r = data.related
    assert (r.helper, r.labels) == (None, None)
    assert (r.master_l4proto, r.master_src, r.master_dst, r.master_sport, r.master_dport) == (
        control.l4proto, control.src, control.dst, control.sport, control.dport)
    rec = record(data, 0.0)
    assert (rec["master_sport"], rec["master_dport"], rec["helper"]) == (control.sport, 21, None)
    assert record(control, 0.0)["labels"] == [5, 70]


def test_flows_without_helper_labels_or_master_share_none():
    _, flows = load(os.path.join(FIXTURES, "ctnetlink-mixed.rec"))[0]
    assert all(f.related is None for f in flows)


def test_every_fixture_follows_the_one_naming_scheme():
    """tests/fixtures/README.md: <what>-<case>[.<oracle>].<ext>."""
    import re
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
    scheme = re.compile(r"^(ctnetlink|recording|route|sockdiag|geoip|leases|settings)-"
                        r"[a-z0-9]+(-[a-z0-9]+)*"
                        r"(\.conntrack\.txt|\.rec|\.bin|\.json|\.mmdb|\.leases|\.rc)$")
    odd = [n for n in sorted(os.listdir(here)) if n != "README.md" and not scheme.match(n)]
    assert odd == []
