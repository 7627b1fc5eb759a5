"""views/order.py: the key lists of the live view's sorts give the orders
of select's plain keys, on rows made to hit every edge (no state and state
0 in one protocol, GRE, no port, no address, both families, bare and Row)."""

import itertools

import pytest

from flowtop.model import proto_name
from flowtop.netlink.ctnetlink import CtEntry
from flowtop.table import FlowTable, TableFlow
from flowtop.views.order import sort_in_place
from flowtop.views.select import _port


PLAIN = {
    "state": lambda e: (e.l4proto, e.state if e.state is not None else -1),
    "proto": lambda e: (proto_name(e.l4proto), e.family),
    "dst": lambda e: (e.family, e.dst or "", _port(e)),
    "port": lambda e: (_port(e), e.l4proto),
}


def _rows():
    entries = []
    n = 0
    for proto, state, dport, dst, family in itertools.product(
            (6, 17, 47, 1, 132), (None, 0, 3, 255), (None, 0, 80, 65535),
            (None, "10.0.0.2", "10.0.0.10", "fe80::1"), (2, 10)):
        n += 1
        e = CtEntry(family=family, l4proto=proto, src="10.0.0.1", dst=dst, sport=1, dport=dport,
                    state=state, id=n, bytes_orig=100, bytes_reply=0, packets_orig=1,
                    packets_reply=0, start=(1_700_000_000 + n % 7) * 10**9, key=b"%d" % n)
        # every third one a bare record (TableFlow), the rest Rows
        entries.append(tuple.__new__(TableFlow, e) if n % 3 == 0 else e)
    t = FlowTable()
    t.apply(entries, 10.0, 1000.0)
    t.apply(entries, 11.0, 1001.0)
    return list(t)


@pytest.mark.parametrize("sort", sorted(PLAIN))
@pytest.mark.parametrize("descending", [False, True])
def test_the_key_lists_sort_as_the_plain_tuple_keys_with_ties_in_table_order(sort, descending):
    rows = _rows()
    assert any(type(r) is TableFlow for r in rows) and any(type(r) is not TableFlow for r in rows)
    want = sorted(rows, key=lambda r: PLAIN[sort](r.entry), reverse=descending)
    got = list(rows)
    assert sort_in_place(got, sort, descending)
    assert [r.key for r in got] == [r.key for r in want]


def test_other_sorts_are_left_to_the_key_functions():
    rows = _rows()
    for sort in ("rate", "bytes", "packets", "age"):
        assert not sort_in_place(rows, sort, True)
