"""Deleting flows (flowtop.act): refusals, the delete request's bytes, the
expression glue.  The kernel side is tests/kernel/test_act_kernel.py."""

import os

import pytest

from flowtop import act, cli, conntrack, delete
from flowtop.netlink import ctnetlink, nlmsg
from flowtop.netlink.uapi import NLM_F_ACK, NLM_F_REQUEST
from flowtop.table import FlowTable
from flowtop.views.cells import Formatter
from flowtop.views.state import ViewState

MIXED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "ctnetlink-mixed.rec")


def recorded():
    with open(MIXED, "rb") as f:
        return next(conntrack.replay(f))


def status_file(tmp_path, capeff):
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "status").write_text("Name:\tpython3\nCapEff:\t%s\n" % capeff)
    return str(tmp_path)


def test_a_replay_or_a_process_without_cap_net_admin_is_refused(tmp_path):
    assert act.refusal(False) == act.REPLAY
    root = status_file(tmp_path, "000001fffeffefff")      # bit 12 cleared (setpriv -net_admin)
    assert act.refusal(True, root) == act.NO_ADMIN
    assert act.may_admin(root) is False


def test_with_cap_net_admin_or_an_unreadable_status_the_kernel_decides(tmp_path):
    assert act.refusal(True, status_file(tmp_path, "000001ffffffffff")) is None
    assert act.may_admin(str(tmp_path / "nowhere")) is None


def test_the_delete_request_names_the_flow_by_tuple_zone_and_id():
    """Decoded back with the flow decoder: the same key (tuple + zone) and id."""
    _, flows = recorded()
    zoned = next(f for f in flows if f.zone == 3)
    for f in (zoned, flows[0]):
        msg = ctnetlink.delete_request(7, f.family, f.key, f.id)
        (mtype, flags, seq, _pid, body, end), = nlmsg.iter_messages(msg)
        assert mtype == ctnetlink.MSG_CT_DELETE and seq == 7
        assert flags == NLM_F_REQUEST | NLM_F_ACK
        back = ctnetlink.decode_entry(msg, body, end)
        assert (back.key, back.id, back.zone, back.src, back.dport) == (
            f.key, f.id, f.zone, f.src, f.dport)


def test_without_the_filter_language_an_expression_is_the_slash_filter_text():
    when, flows = recorded()
    t = FlowTable()
    t.apply(flows, 1.0, when)
    from flowtop.enrich.bundle import Enrichment

    class Services:
        def of_flow(self, sport, dport, proto, numeric=False):
            return str(dport)
    fmt = Formatter(ViewState(cli.parse([])), Enrichment(Services()))
    keep = delete.matcher("10.9.0.2", fmt, fmt.enrich)
    hits = [r for r in t if keep(r)]
    assert hits and all("10.9.0.2" in (r.entry.src, r.entry.dst) for r in hits)
    assert len(hits) == sum("10.9.0.2" in (f.src, f.dst) for f in flows)


@pytest.mark.parametrize("deleted,gone,text", [(1, 0, "deleted 1 flow"),
                                               (3, 1, "deleted 3 flows (1 had already ended)")])
def test_the_outcome_line(deleted, gone, text):
    assert act.outcome(deleted, gone) == text
