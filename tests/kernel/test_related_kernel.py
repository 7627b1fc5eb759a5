"""Helped and RELATED flows on the real kernel: nf_conntrack_ftp assigned by
an nftables ``ct helper`` rule in a namespace, an FTP control connection
whose PASV reply makes the kernel expect the data connection.  Truth:
``conntrack -L -o extended`` (helper=ftp, the tuples), the labels the rule
set, and the control flow's own tuple for the data flow's master."""

import json
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests import ctparse  # noqa: E402
from tests.expect import mismatches  # noqa: E402
from tests.helperns import RULES, ftp_session  # noqa: E402
from tests.nsutil import Netns, kernel_ready  # noqa: E402

_READY, _WHY = kernel_ready()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]


def _helper_available():
    return os.path.isdir("/sys/module/nf_conntrack_ftp")


@pytest.mark.skipif(not _READY or not _helper_available(), reason="no nf_conntrack_ftp")
@pytest.mark.parametrize("fast", [True, False], ids=["from-bytes", "enriched"])
def test_ftp_control_flow_has_its_helper_and_labels_and_the_data_flow_its_master(fast):
    with Netns("i15a-ftp", ruleset=RULES) as ns:
        data_port, control_port = ftp_session(ns)
        args = ["--once", "--json", "--no-sysctl"] + (["-n", "-G", "--no-iface"] if fast else [])
        r = ns.flowtop(*args, check=True)
        truth = ctparse.parse(ns.conntrack_list())
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert mismatches(records, truth) == []              # helper= included
    control, = [x for x in records if x["dport"] == 21]
    data, = [x for x in records if x["dport"] == data_port]
    assert control["sport"] == control_port
    assert [e.get("helper") for e in truth if e["orig"]["dport"] == 21] == ["ftp"]
    assert control["helper"] == "ftp" and control["labels"] == [5, 70]
    assert "EXPECTED" in data["status"] and data["helper"] is None and data["labels"] is None
    assert (data["master_l4proto"], data["master_src"], data["master_dst"],
            data["master_sport"], data["master_dport"]) == (
        6, control["src"], control["dst"], control["sport"], control["dport"])
    assert control["master_src"] is None
