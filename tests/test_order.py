"""views/order.py: the key lists of the live view's sorts give the orders
of select's plain keys, on rows made to hit every edge (no state and state
0 in one protocol, GRE, no port, no address, both families, bare and Row)."""

import itertools

import pytest

from flowtop.model import proto_name
from flowtop.netlink.ctnetlink import CtEntry
from flowtop.table import FlowTable, TableFlow
from flowtop.views.order import sort_in_place
from tests.viewutil import Indexed
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


@pytest.mark.parametrize("families", [(2,), (2, 10)])
@pytest.mark.parametrize("descending", [False, True])
def test_the_destination_order_of_rows_that_share_no_address(families, descending):
    """A server's or a router's table: every row its own address (and one
    without), sorted by the text in each family, as the plain key does."""
    def family_dst(n):
        family = families[n % len(families)]
        return family, None if n == 7 else ("10.%d.0.%d" % (n % 3, n) if family == 2
                                            else "fe80::%x" % n)
    rows, got = _by_dst(300, family_dst, (None, 80, 443, 53), descending)
    assert [r.key for r in got] != [r.key for r in rows]


def _by_dst(count, family_dst, ports, descending):
    """(rows, the rows sorted by dst) of ``count`` flows (``family_dst(n)``:
    the family and destination of the n-th), asserting the plain key's order."""
    entries = []
    for n in range(count):
        family, dst = family_dst(n)
        e = CtEntry(family=family, l4proto=(6, 17, 47)[n % 3], src="10.0.0.1", dst=dst,
                    sport=1, dport=ports[n % 4], id=n, bytes_orig=1,
                    start=(1_700_000_000 + n) * 10**9, key=b"%d" % n)
        entries.append(tuple.__new__(TableFlow, e) if n % 2 else e)
    t = FlowTable()
    t.apply(entries, 10.0, 1000.0)
    t.apply(entries, 11.0, 1001.0)
    rows = list(t)
    want = sorted(rows, key=lambda r: PLAIN["dst"](r.entry), reverse=descending)
    got = list(rows)
    assert sort_in_place(got, "dst", descending)
    assert [r.key for r in got] == [r.key for r in want]
    return rows, got


@pytest.mark.parametrize("addresses", [40, 3000])
@pytest.mark.parametrize("descending", [False, True])
def test_rows_that_share_addresses_sort_as_the_plain_keys_few_or_many(addresses, descending):
    """The rank key is one int: below 2**30 for a few addresses, wider for
    thousands (family * addresses + rank, then the port): the same order."""
    def family_dst(n):
        return (2, 10)[n % 5 == 0], None if n == 9 else (
            "10.%d.%d.1" % (n % addresses // 250, n % 250) if n % 7
            else "fe80::%x" % (n % addresses))
    _by_dst(2 * addresses, family_dst, (None, 80, 65535, 53), descending)


def test_rows_that_share_no_address_are_sorted_by_it_without_a_rank_table(monkeypatch):
    """250k distinct addresses: ranking them first (a set, a sort, a dict,
    a lookup a row) was ~170 of the sort's ~330 ms of CPU."""
    from flowtop.views import order
    rows = []
    for n in range(50):
        e = CtEntry(family=2, l4proto=6, src="10.0.0.1", dst="10.1.%d.%d" % (n % 7, n),
                    sport=1, dport=80, id=n, start=10**18, key=b"%d" % n)
        rows.append(tuple.__new__(TableFlow, e))
    monkeypatch.setattr(order, "_ranks", lambda *a: pytest.fail("ranked"))
    assert sort_in_place(rows, "dst", False)
    assert [r.dst for r in rows] == sorted(r.dst for r in rows)


@pytest.mark.parametrize("sort", sorted(PLAIN))
def test_a_sort_moves_the_rows_without_reading_them_one_by_one(sort):
    """The rows put in their new order by the sort itself: reading each
    by its new index (a permutation applied in Python) was 25-95 ms of a
    sort key at 250k rows."""
    rows = _rows()
    want = sorted(rows, key=lambda r: PLAIN[sort](r.entry))
    got = Indexed(rows)
    assert sort_in_place(got, sort, False)
    assert [r.key for r in got] == [r.key for r in want] and got.reads == 0


def test_other_sorts_are_left_to_the_key_functions():
    rows = _rows()
    for sort in ("rate", "bytes", "packets", "age"):
        assert not sort_in_place(rows, sort, True)
