"""What the view tests share: a table from a recorded dump, a view state
from argv, an enrichment with service names only."""

import os

from flowtop import cli, conntrack
from flowtop.enrich.bundle import Enrichment
from flowtop.table import FlowTable
from flowtop.views.state import ViewState

MIXED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "ctnetlink-mixed.rec")


class FakeServices:
    def of_flow(self, sport, dport, proto, numeric=False):
        return str(dport)


def FakeEnrich(*providers):
    return Enrichment(FakeServices())


def table_of(*argv):
    with open(MIXED, "rb") as f:
        when, flows = next(conntrack.replay(f))
    t = FlowTable()
    t.apply(flows, 100.0, when)
    return t, when


def state_of(*argv):
    return ViewState(cli.parse(list(argv)))
