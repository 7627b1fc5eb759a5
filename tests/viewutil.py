"""What the view tests share: a table from a recorded dump, a view state
from argv, an enrichment with service names only."""

import os
import re

from flowtop import cli, conntrack
from flowtop.enrich.bundle import Enrichment
from flowtop.table import FlowTable
from flowtop.views.state import ViewState

MIXED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "ctnetlink-mixed.rec")

# What sanitize must have removed, written out apart from flowtop.text: C0, DEL, C1,
# bidi and other invisible format characters, line/paragraph separators, BOM,
# specials, tags.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e"
                    "\u2060-\u206f\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]")


class Indexed(list):
    """A list that counts the reads of its items by index (``x[i]``)."""
    reads = 0

    def __getitem__(self, i):
        self.reads += 1
        return list.__getitem__(self, i)


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
