"""ctnetlink's requests over the session engine (flowtop/netlink/conntrack.py):
the kernel's dump filter (one dump per family for a tuple, a refused filter
asked again unfiltered and kept out of the recording) and the DELETE batch.
No kernel: tests/test_session.py's scripted socket answers each send."""

import errno

import pytest

from flowtop.netlink import conntrack as ct
from flowtop.netlink import ctfilter, ctnetlink, nlmsg
from flowtop.netlink.errors import NetlinkError
from flowtop.netlink.uapi import AF_INET, AF_INET6, AF_UNSPEC, IPPROTO_TCP
from tests.test_session import Script, decode, done, error, item

CT_NEW = ctnetlink.MSG_CT_NEW


def entry(value, seq):
    return item(value, seq, mtype=CT_NEW)


class Sent(Script):
    """The scripted socket, keeping the bytes of each send too."""

    def __init__(self, *attempts, dump_filter=None):
        super().__init__(*attempts)
        self.data = []
        self.dump_filter = dump_filter

    def send(self, data):
        self.data.append(data)
        super().send(data)


def request_family(data):
    """The nfgenmsg family of a sent dump request."""
    _t, _f, _s, _p, body, _e = next(nlmsg.iter_messages(data))
    return data[body]


def refused(err):
    return lambda s: [error(s, err)]


def table(*values):
    return lambda s: [b"".join(entry(v, s) for v in values[:-1]), entry(values[-1], s) + done(s)]


MARK = ctfilter.DumpFilter(mark=7, mark_mask=0xFFFFFFFF)
TUPLE = ctfilter.DumpFilter(proto=IPPROTO_TCP)


@pytest.mark.parametrize("err", [errno.EINVAL, errno.EOPNOTSUPP])
def test_a_refused_filter_is_asked_again_unfiltered_and_the_refusal_is_not_recorded(err):
    sock = Sent(refused(err), table(1, 2), dump_filter=MARK)
    recorded = []
    got = [v for batch in ct.iter_dump(sock, AF_UNSPEC, recorded.append, decode) for v in batch]
    assert got == [1, 2]
    assert sock.dump_filter is None                      # the next dumps go unfiltered
    seq = sock.sent[1][0]
    assert sock.data[0] == ctfilter.dump_request(sock.sent[0][0], AF_UNSPEC, MARK)
    assert sock.data[1] == ctnetlink.dump_request(seq, AF_UNSPEC)
    assert recorded == [entry(1, seq), entry(2, seq) + done(seq)]


def test_a_refused_filter_in_a_consistent_dump_leaves_only_the_full_dump_recorded():
    class Recorder:
        def __init__(self):
            self.chunks = []

        def begin(self):
            self.chunks = []

        def chunk(self, data):
            self.chunks.append(data)

    rec = Recorder()
    sock = Sent(refused(errno.EOPNOTSUPP), table(3, 4), dump_filter=MARK)
    assert ct.dump(sock, AF_UNSPEC, rec, decode) == [3, 4]
    seq = sock.sent[1][0]
    assert sock.dump_filter is None
    assert rec.chunks == [entry(3, seq), entry(4, seq) + done(seq)]


def test_another_kernel_error_of_a_filtered_dump_is_raised_and_recorded():
    sock = Sent(refused(errno.EPERM), dump_filter=MARK)
    recorded = []
    with pytest.raises(NetlinkError) as exc:
        list(ct.iter_dump(sock, AF_UNSPEC, recorded.append, decode))
    assert exc.value.errno == errno.EPERM
    assert recorded == [error(sock.sent[0][0], errno.EPERM)]
    assert sock.dump_filter is MARK


@pytest.mark.parametrize("how", ["iter_dump", "dump"])
def test_a_tuple_filter_asks_one_dump_per_family(how):
    sock = Sent(table(1), table(2), dump_filter=TUPLE)
    if how == "dump":
        got = ct.dump(sock, AF_UNSPEC, None, decode)
    else:
        got = [v for batch in ct.iter_dump(sock, AF_UNSPEC, None, decode) for v in batch]
    assert got == [1, 2]
    assert [request_family(d) for d in sock.data] == [AF_INET, AF_INET6]
    assert sock.data[1] == ctfilter.dump_request(sock.sent[1][0], AF_INET6, TUPLE)


def test_a_recorded_dump_with_a_tuple_filter_is_one_dump_without_the_tuple():
    flt = TUPLE._replace(mark=7, mark_mask=0xFF)
    sock = Sent(table(5), dump_filter=flt)
    recorded = []
    got = [v for batch in ct.iter_dump(sock, AF_UNSPEC, recorded.append, decode) for v in batch]
    assert got == [5] and len(sock.data) == 1
    assert sock.data[0] == ctfilter.dump_request(sock.sent[0][0], AF_UNSPEC,
                                                 ctfilter.untupled(flt))
    assert len(recorded) == 2


class Flow:
    def __init__(self, n):
        self.family, self.key, self.id = AF_INET, ("k", n), n


def test_delete_many_sorts_acks_and_enoent_and_raises_another_refusal_after_every_answer(
        monkeypatch):
    monkeypatch.setattr(ctnetlink, "delete_request", lambda seq, fam, key, ct_id: nlmsg.pack(
        0x0102, 0, seq))
    flows = [Flow(n) for n in range(4)]
    sock = Sent(lambda a, b, c, d: [entry(9, a) + error(a, 0), error(b, errno.ENOENT),
                                    error(c, errno.EPERM) + error(d, 0)])
    with pytest.raises(NetlinkError) as exc:
        ct.delete_many(sock, flows)
    assert exc.value.errno == errno.EPERM
    assert sock.queue == []                              # every answer was read

    sock = Sent(lambda a, b: [error(b, errno.ENOENT) + error(a, 0)])
    assert ct.delete_many(sock, flows[:2]) == ([("k", 0)], [("k", 1)])


def test_delete_many_sends_get_batch_requests_at_a_time(monkeypatch):
    monkeypatch.setattr(ctnetlink, "delete_request", lambda seq, fam, key, ct_id: nlmsg.pack(
        0x0102, 0, seq))
    monkeypatch.setattr(ct, "GET_BATCH", 2)
    sock = Sent(*[lambda *seqs: [b"".join(error(s, 0) for s in seqs)]] * 2)
    deleted, gone = ct.delete_many(sock, [Flow(n) for n in range(3)])
    assert [len(s) for s in sock.sent] == [2, 1]
    assert deleted == [("k", 0), ("k", 1), ("k", 2)] and gone == []


def test_stats_global_returns_the_decoded_stats_answer():
    sock = Sent(lambda s: [error(s - 1, 0) + entry(6, s) + done(s)])
    assert ct.stats_global(sock, decode) == 6



def event_datagrams():
    """The recorded mixed table's flows as the kernel sends events: one
    message a datagram, NEW then DESTROY (the body of a dump's message)."""
    import os
    from tests.recutil import split
    _head, dumps = split(os.path.join(os.path.dirname(__file__), "fixtures",
                                      "ctnetlink-mixed.rec"))
    data = dumps[0][1]
    bodies = [data[b:e] for t, _f, _s, _p, b, e in nlmsg.iter_messages(data) if t == CT_NEW]
    return ([nlmsg.pack(CT_NEW, 0, 0, body) for body in bodies]
            + [nlmsg.pack(ctnetlink.MSG_CT_DELETE, 0, 0, body) for body in bodies])


def test_events_waiting_decode_as_one_datagram_at_a_time_does():
    from flowtop.netlink.ctdecoder import Decoder
    from tests.test_session import Waiting
    grams = event_datagrams()
    one = [ev for g in grams for ev in ct.read_events(Waiting([g]), Decoder())]
    sock = Waiting(grams)
    got = ct.read_events_waiting(sock, Decoder(), most=len(grams))
    assert got == one and len(got) == len(grams) and sock.waits == []
    assert {k for k, _e in got} == {ct.EVENT_NEW, ct.EVENT_DESTROY}


def test_events_waiting_skip_a_bad_message_and_report_an_overflow():
    from flowtop.netlink.ctdecoder import Decoder
    from tests.test_session import Waiting
    good = event_datagrams()[0]
    lying = good[:-4]                     # a header longer than its datagram
    empty_body = nlmsg.pack(CT_NEW, 0, 0, b"")
    two = good + nlmsg.pack(CT_NEW, 0, 0, b"\x02\x00\x00\x00") + good     # 2nd has no tuple
    sock = Waiting([lying, empty_body, OSError(errno.ENOBUFS, "full"), two])
    got = ct.read_events_waiting(sock, Decoder(), most=10)
    assert [k for k, _e in got] == [ct.EVENT_OVERFLOW, ct.EVENT_NEW, ct.EVENT_NEW]
    assert got[1][1] == got[2][1] == ct.read_events(Waiting([good]), Decoder())[0][1]


def test_destroy_events_can_carry_their_flow_key_only():
    """The live table needs only a DESTROY's key: decoded as a slice (0.7 us)
    rather than a record (2.2 us), the same bytes as the record's key."""
    from flowtop.netlink.ctdecoder import Decoder
    from tests.test_session import Waiting
    grams = event_datagrams()
    whole = ct.read_events_waiting(Waiting(grams), Decoder(), most=len(grams))
    decoder = Decoder()
    for _ in range(2):                       # learning the layouts, then through them
        got = ct.read_events_waiting(Waiting(grams), decoder, most=len(grams),
                                     destroy_keys=True)
        assert [k for k, _e in got] == [k for k, _e in whole]
        assert [e if k == ct.EVENT_DESTROY else e.key for k, e in got] == \
            [e.key for _k, e in whole]
        assert all(type(e) is bytes for k, e in got if k == ct.EVENT_DESTROY)
