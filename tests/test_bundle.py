"""Enrichment (enrich/bundle.py): per-flow answers from the providers."""

import os

import pytest

from flowtop.enrich.bundle import Enrichment
from flowtop.model import Flow
from flowtop.netlink.ctnetlink import FIELDS
from flowtop.services import Services
from flowtop.views.tail import JsonTail


class FakeProcesses:
    """A process map whose ``lookup_both(e)`` is ``answer(e)``."""

    def __init__(self, answer):
        self.answer = answer

    def lookup_both(self, e):
        return self.answer(e)

    def lookup(self, e):
        orig, reply = self.answer(e)
        return orig if orig is not None else reply

    def refresh(self):
        pass

    def retain(self, table):
        pass


class Spans:
    """A resolver that was resolving from t=100 to t=101 (wall clock)."""

    def lookup(self, addr):
        return None

    def resolving_at(self, when):
        return 100.0 <= when <= 101.0


def flow(dport=53, proto=17, src="10.0.0.1", start=100.5):
    values = dict.fromkeys(FIELDS)
    values.update(family=2, l4proto=proto, src=src, dst="10.0.0.53", sport=40000, dport=dport,
                  reply_src="10.0.0.53", reply_dst=src, reply_sport=dport, reply_dport=40000,
                  start=None if start is None else int(start * 1e9), key=b"k")
    return tuple.__new__(Flow, [values[f] for f in FIELDS])


def enrichment():
    e = Enrichment(Services(), process=FakeProcesses(lambda e: (None, None)), dns=Spans(), local=lambda: {"10.0.0.1"})
    e.tick([])
    return e


def test_a_dns_query_begun_while_resolving_is_flowtops_own():
    e = enrichment()
    for f in (flow(), flow(proto=6)):
        p = e.proc(f)
        assert (p.pid, p.name) == (os.getpid(), "flowtop")
        assert e.procs(f)[0] is p
        assert e.fields(f)["pid"] == os.getpid() and '"process":"flowtop"' in JsonTail(e).line(f)
        assert e.process_label(f) == "flowtop/%d" % os.getpid()


def test_other_flows_stay_unattributed():
    e = enrichment()
    for f in (flow(start=99.0), flow(start=101.5), flow(start=None), flow(dport=443),
              flow(proto=1, dport=None), flow(src="10.0.0.9")):
        assert e.proc(f) is None and e.procs(f) == (None, None), f


class Names:
    """A resolver that knows every address (``lookup`` never waits)."""

    def lookup(self, addr):
        return "name-of-" + addr


@pytest.mark.parametrize("is_local,nl,nr,want", [
    (True, False, False, True), (False, False, False, True),
    (True, True, False, False), (False, True, False, True),
    (True, False, True, True), (False, False, True, False),
])
def test_numeric_local_and_remote_leave_only_that_side_unnamed(is_local, nl, nr, want):
    """nftop's --numeric-local/--numeric-remote."""
    enr = Enrichment(Services(), dns=Names(), numeric_local=nl, numeric_remote=nr)
    enr.local = frozenset({"10.0.0.1"})
    addr = "10.0.0.1" if is_local else "192.0.2.7"
    assert (enr.host(addr) is not None) is want


def test_names_on_both_sides_ask_no_local_address():
    asked = []
    enr = Enrichment(Services(), dns=Names(), local=lambda: asked.append(1) or {"10.0.0.1"})
    enr.tick([])
    assert enr.host("10.0.0.1") == "name-of-10.0.0.1" and enr.host("8.8.8.8")
    assert asked == []          # a --json line asks two names: no local test for them
