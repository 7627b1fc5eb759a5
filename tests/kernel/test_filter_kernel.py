"""--filter against the real kernel: in a populated namespace, the flows an
expression keeps are those ``conntrack -L`` lists with its own filter
options (the independent truth), with and without kernel pushdown."""

import json
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests import ctparse  # noqa: E402
from tests.nsutil import Netns, kernel_ready, populate  # noqa: E402

_READY, _WHY = kernel_ready()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]

# expression -> conntrack -L options selecting the same flows (both families
# unless the options name one).
CASES = [
    ("mark=42", ["-m", "42"]),
    ("mark=0xdeadbeef", ["-m", "0xdeadbeef"]),
    ("zone=3", ["-w", "3"]),
    ("status=assured", ["-u", "ASSURED"]),
    ("proto=tcp and dport=5001", ["-p", "tcp", "--dport", "5001"]),
    ("proto=udp and sport=53", ["-p", "udp", "--sport", "53"]),
    ("src=10.9.0.0/24", ["-f", "ipv4", "-s", "10.9.0.0/24"]),
    ("dst=2001:db8::2", ["-f", "ipv6", "-d", "2001:db8::2"]),
    ("src=10.9.0.1", ["-f", "ipv4", "-s", "10.9.0.1"]),
]


def ct_ids(ns, opts):
    families = [[]] if "-f" in opts else [["-f", "ipv4"], ["-f", "ipv6"]]
    ids = set()
    for fam in families:
        out = ns.run("conntrack", "-L", "-o", "extended,id", *(fam + opts), check=False).stdout
        ids |= {e["ctid"] for e in ctparse.parse(out)}
    return ids


def flowtop_ids(ns, expr, env=None):
    r = ns.flowtop("--once", "--json", "-n", "--loopback", "--no-sysctl", "--filter", expr)
    assert r.returncode == 0, r.stderr
    return {json.loads(line)["id"] for line in r.stdout.splitlines()}


@pytest.fixture(scope="module")
def populated():
    with Netns("i15bflt") as ns:
        populate(ns)
        yield ns


@pytest.mark.parametrize("expr,opts", CASES, ids=[c[0] for c in CASES])
def test_filter_keeps_what_conntrack_lists_with_the_same_filter(populated, expr, opts):
    want = ct_ids(populated, opts)
    assert want, "the namespace has flows for %s" % expr
    got = flowtop_ids(populated, expr)
    assert got == want


def test_not_and_or_combine_kernel_flows_as_conntracks_lists_do(populated):
    marked = ct_ids(populated, ["-m", "42"])
    udp = ct_ids(populated, ["-p", "udp"])
    every = ct_ids(populated, [])
    assert flowtop_ids(populated, "mark=42 or proto=udp") == marked | udp
    assert flowtop_ids(populated, "not (mark=42 or proto=udp)") == every - marked - udp


# Raw dump inside the namespace with the pushed-down filter only (no
# filtering in Python): what the kernel itself sent.
RAW = r"""
import json, sys
from flowtop import conntrack
from flowtop.netlink import conntrack as ct
from flowtop.views.filterexpr import compile
from flowtop.views.filterpush import pushdown
sock = conntrack.open_socket()
sock.dump_filter = pushdown(compile(sys.argv[1]))
flows = ct.dump(sock, 0, None, sock.decoder)
print(json.dumps({"ids": [f.id for f in flows], "pushed": sock.dump_filter is not None}))
"""

PUSHED = ["mark=42", "mark=0xdeadbeef", "zone=3", "status=assured",
          "proto=tcp and dport=5001", "proto=udp and sport=53", "src=10.9.0.1"]


@pytest.mark.parametrize("expr", PUSHED)
def test_the_kernel_itself_sends_only_the_pushed_down_flows(populated, expr):
    opts = dict(CASES)[expr]
    r = populated.run(sys.executable, "-c", RAW, expr, env=dict(os.environ, PYTHONPATH=REPO))
    got = json.loads(r.stdout)
    assert got["pushed"], "this kernel refused the filter"
    want = ct_ids(populated, opts)
    assert set(got["ids"]) == want and len(got["ids"]) == len(want)


def test_a_filter_the_kernel_refuses_falls_back_to_the_whole_table(populated):
    # CTA_FILTER flag bits this kernel does not know: EOPNOTSUPP, then a plain dump
    code = RAW.replace("sock.dump_filter = pushdown(compile(sys.argv[1]))",
                       "from flowtop.netlink import ctfilter\n"
                       "ctfilter.u.CTA_FILTER_F_CTA_PROTO_NUM = 1 << 30\n"
                       "sock.dump_filter = pushdown(compile(sys.argv[1]))")
    r = populated.run(sys.executable, "-c", code, "proto=tcp",
                      env=dict(os.environ, PYTHONPATH=REPO))
    got = json.loads(r.stdout)
    assert not got["pushed"]
    assert set(got["ids"]) == ct_ids(populated, [])
