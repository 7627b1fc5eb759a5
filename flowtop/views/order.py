"""The live view's sorts by state, protocol, destination and port as a
list of keys, one int per row made in a comprehension over the records (no
Python call per row), then one sort of the rows by them (``sort_by``).

At 250k rows (distinct ports) a sort by ``select.SORT_KEYS`` (a key function
per row, a property call for a bare row's entry, shared tuples for the
destination, two passes) took (CPU ms) state 77, proto 101, dst 304, port
115; these 64, 71, 155, 110.  A whole ``o`` press (bench/keys.py --sorts)
went 79, 119, 150, 117 -> 60, 85, 124, 88 with the keys read in the pass
that makes them (no list of records first), dst's one int below 2**30 a
row, and the cursor's row found by identity (``keys.Ui``).  For bytes,
packets and age, whose keys are one or two fields, the key functions
were as fast (the comparisons dominate; key lists with ``sort_by`` too:
250k rows, ~100 / 55 / 47 ms either way).
``select.SORT_KEYS`` stays the plain twin; tests/test_select.py holds both
to the tuple orders the views promise.
"""

from functools import partial
from itertools import chain, compress

from ..model import proto_name
from ..netlink.ctnetlink import FIELDS
from ..netlink.uapi import IPPROTO_GRE
from ..table import TableFlow

_PROTO, _FAMILY, _STATE = FIELDS.index("l4proto"), FIELDS.index("family"), FIELDS.index("state")
_DST, _DPORT = FIELDS.index("dst"), FIELDS.index("dport")


def sort_in_place(out, sort, descending):
    """``out`` sorted in place by ``sort`` (not "rate"), stable (ties keep
    the table's order); False when ``sort`` has no key list here."""
    if sort not in ("port", "state", "proto", "dst"):
        return False
    if sort == "dst":
        _by_address(out, descending)
    else:
        sort_by(out, key_list(out, sort), descending)
    return True


def sort_by(out, keys, descending):
    """``out`` sorted in place (stable) by ``keys``, one per row in its order.
    ``list.sort`` calls its key function once per item, first to last, before
    any comparison (CPython's listobject.c): the keys are handed over by an
    iterator, so no index list is sorted and no permutation applied (250k
    rows, CPU ms: 46-158 -> 20-65; the rows are not touched)."""
    out.sort(key=partial(next, iter(keys)), reverse=descending)


def key_list(rows, sort):
    """The key of each of ``rows`` (a Row or a bare record) for ``sort``
    (port, state or proto), ints in the order of ``select``'s plain keys,
    in one pass (the rows of a big table are scattered over its heap: a
    pass is mostly cache misses; a list of their records first was one
    more, ~20 ms at 250k)."""
    bare = TableFlow
    if sort == "port":         # (port, protocol); GRE keys are no ports
        return [(0 if e[_DPORT] is None or e[_PROTO] == IPPROTO_GRE else e[_DPORT]) * 256
                + e[_PROTO] for r in rows for e in [r if type(r) is bare else r.entry]]
    if sort == "state":        # (protocol, state or -1): the kernel's state is a u8
        return [e[_PROTO] * 512 + (0 if e[_STATE] is None else e[_STATE] + 1)
                for r in rows for e in [r if type(r) is bare else r.entry]]
    # proto: (protocol name, family): a rank per distinct pair
    codes = [e[_PROTO] * 256 + e[_FAMILY] for r in rows for e in [r if type(r) is bare
                                                                      else r.entry]]
    rank = _ranks(set(codes), lambda c: (proto_name(c >> 8), c & 255))
    return list(map(rank.__getitem__, codes))


def _by_address(out, descending):
    """``out`` sorted by (family, address, port).  When no two rows share an
    address (a server's or a router's table: the port ties none), by the
    address text itself in each family: no rank table (250k addresses, an
    ``o`` press: ~370 -> ~90 ms of CPU); else by a rank per distinct address,
    in one int a row below 2**30 while they are few (CPython compares those
    fastest): family * D + rank, times 65536, plus the port."""
    bare = TableFlow
    texts = [(r if type(r) is bare else r.entry)[_DST] or "" for r in out]
    distinct = set(texts)
    if len(distinct) < len(texts):
        step = len(distinct) << 16
        rank = dict(zip(sorted(distinct), range(0, step, 1 << 16)))
        family = [f * step for f in range(256)]         # a family is a u8
        sort_by(out, [family[e[_FAMILY]] + rank[t]
                      + (0 if e[_DPORT] is None or e[_PROTO] == IPPROTO_GRE else e[_DPORT])
                      for r, t in zip(out, texts) for e in [r if type(r) is bare else r.entry]],
                descending)
        return
    families = [(r if type(r) is bare else r.entry)[_FAMILY] for r in out]
    kinds = sorted(set(families), reverse=descending)
    if len(kinds) < 2:
        sort_by(out, texts, descending)
        return
    parts = []
    for f in kinds:                     # each family's rows, in table order, then sorted
        mine = list(map(f.__eq__, families))
        part = list(compress(out, mine))
        sort_by(part, compress(texts, mine), descending)
        parts.append(part)
    out[:] = list(chain.from_iterable(parts))


def _ranks(values, key):
    """{value: its place among ``values`` sorted by ``key``}."""
    return dict(zip(sorted(values, key=key), range(len(values))))
