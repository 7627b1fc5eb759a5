"""One aggregate row (``Group``) and the sums that add many rows (idle,
first seen or moving) to one a column at a time (``views.aggregate``'s views)."""

from functools import reduce
from itertools import repeat
from operator import add, and_, attrgetter, is_, is_not, itemgetter, or_

from ..netlink.ctnetlink import FIELDS
from ..text import sanitize

_GET_BO, _GET_BR = itemgetter(FIELDS.index("bytes_orig")), itemgetter(FIELDS.index("bytes_reply"))
_GET_PO = itemgetter(FIELDS.index("packets_orig"))
_GET_PR = itemgetter(FIELDS.index("packets_reply"))
_ENTRY, _RATE_O, _RATE_R = attrgetter("entry"), attrgetter("rate_orig"), attrgetter("rate_reply")


class Group:
    """One aggregate row."""

    __slots__ = ("key", "label", "flows", "bytes_tx", "bytes_rx", "pkts_tx", "pkts_rx",
                 "rate_tx", "rate_rx", "closed", "is_new", "uncounted", "rated")

    def __init__(self, key, label):
        self.key, self.label = key, label
        self.flows = 0
        self.uncounted = 0        # flows the kernel gives no counters (accounting was off)
        self.rated = 0            # flows with a known rate (none on first sight)
        self.bytes_tx = self.bytes_rx = self.pkts_tx = self.pkts_rx = 0
        self.rate_tx = self.rate_rx = 0.0
        self.closed = 0
        self.is_new = False

    def totals(self):
        """(bytes, packets, rates) as (tx, rx) pairs; None where no flow of
        the group had one: absent is not zero."""
        counted = self.flows > self.uncounted
        return ((self.bytes_tx, self.bytes_rx) if counted else (None, None),
                (self.pkts_tx, self.pkts_rx) if counted else (None, None),
                (self.rate_tx, self.rate_rx) if self.rated else (None, None))

    def add_crossing(self, row, what, which, first):
        """Count one direction of ``row`` crossing this interface."""
        e = row.entry
        if which == "orig":
            nb, np_, rate = e.bytes_orig, e.packets_orig or 0, row.rate_orig
        else:
            nb, np_, rate = e.bytes_reply, e.packets_reply or 0, row.rate_reply
        if first:
            self.flows += 1
            self.uncounted += nb is None
            self.rated += rate is not None
        if what == "tx":
            self.bytes_tx += nb or 0
            self.pkts_tx += np_
            self.rate_tx += rate or 0.0
        else:
            self.bytes_rx += nb or 0
            self.pkts_rx += np_
            self.rate_rx += rate or 0.0

    def add(self, row, outbound, e=None):
        """Count ``row`` (``e``: its entry, when the caller has it);
        ``outbound``: its original direction is "sent"."""
        if e is None:
            e = row.entry
        bo, br = e.bytes_orig, e.bytes_reply
        ro, rr = row.rate_orig, row.rate_reply
        self.flows += 1
        if bo is None and br is None:
            self.uncounted += 1
        if ro is not None or rr is not None:
            self.rated += 1
        bo, br = bo or 0, br or 0
        po, pr = e.packets_orig or 0, e.packets_reply or 0
        ro, rr = ro or 0.0, rr or 0.0
        if not outbound:
            bo, br, po, pr, ro, rr = br, bo, pr, po, rr, ro
        self.bytes_tx += bo
        self.bytes_rx += br
        self.pkts_tx += po
        self.pkts_rx += pr
        self.rate_tx += ro
        self.rate_rx += rr


_SMALL = 8        # fewer idle rows than this in a group: a call each beats the C loops' setup


IDLE, FRESH, MOVING = "idle", "fresh", "moving"   # the rows a pass a flow sums apart


def _columns_of(rows, kind):
    """(the entries, the rates read or None, how many are rated) of ``rows`` of
    ``kind``: IDLE (TableFlow: its own entry, rates known, 0.0), FRESH
    (FreshFlow, first seen: its own entry, rates unknown), MOVING (a Row:
    ``entry``, rates None when unknown)."""
    if kind != MOVING:
        return rows, None, len(rows) if kind == IDLE else 0
    ro, rr = list(map(_RATE_O, rows)), list(map(_RATE_R, rows))
    rated = sum(map(or_, map(is_not, ro, repeat(None)), map(is_not, rr, repeat(None))))
    return list(map(_ENTRY, rows)), (ro, rr), rated


def _add_summed(g, rows, outbound, kind=IDLE):
    """``Group.add`` of each of ``rows`` (``_columns_of``'s ``kind``), as sums
    over columns: map and sum run in C (Tab at 100k: a first dump's 100k
    FreshFlows, 112-124 -> 56-72 ms, bench/keys.py --fresh; ~65k Rows were
    most of the Interfaces view).  The rates are added in the rows' order,
    one by one (``reduce``), so the floats are Group.add's."""
    if len(rows) < _SMALL:
        if kind == MOVING:
            for r in rows:
                g.add(r, outbound)
        else:
            for r in rows:
                g.add(r, outbound, r)           # (its own entry: no property call)
        return
    ents, rates, rated = _columns_of(rows, kind)
    try:                        # every flow counted (accounting on): no list, no filter
        bo, br = sum(map(_GET_BO, ents)), sum(map(_GET_BR, ents))
    except TypeError:           # a None: flows older than the accounting
        bo, br = list(map(_GET_BO, ents)), list(map(_GET_BR, ents))
        if None in bo and None in br:
            g.uncounted += sum(map(and_, map(is_, bo, repeat(None)), map(is_, br, repeat(None))))
        bo, br = sum(filter(None, bo)), sum(filter(None, br))
    po, pr = _total(_GET_PO, ents), _total(_GET_PR, ents)
    ro, rr = rates or ((), ())
    if not outbound:
        bo, br, po, pr, ro, rr = br, bo, pr, po, rr, ro
    g.flows += len(rows)
    g.rated += rated
    g.bytes_tx += bo
    g.bytes_rx += br
    g.pkts_tx += po
    g.pkts_rx += pr
    if rates is not None:
        g.rate_tx = reduce(add, filter(None, ro), g.rate_tx)
        g.rate_rx = reduce(add, filter(None, rr), g.rate_rx)


def entry(groups, key, label, forwarded):
    """``groups[key]``, made if new: [Group, forwarded, its idle rows sent,
    received, its first seen rows (FreshFlow) sent, received] (the pass a
    flow of ``views.aggregate`` and ``views.procgroups``; those rows summed
    by ``add_idle_rows``)."""
    ent = groups.get(key)
    if ent is None:
        ent = groups[key] = [Group(key, sanitize(label, 64)), forwarded, [], [], [], [], [], []]
    return ent


def add_idle_rows(groups):
    """The Groups of ``entry``'s ``groups``, their idle rows added."""
    for g, _forwarded, sent, received, fresh_sent, fresh_received, moving_sent, \
            moving_received in groups.values():
        # (ifs, not a loop over a tuple: 250k hosts are 250k groups)
        if moving_sent:             # first: their rates in row order, as Group.add's
            _add_summed(g, moving_sent, True, MOVING)
        if moving_received:
            _add_summed(g, moving_received, False, MOVING)
        if sent:
            _add_summed(g, sent, True)
        if received:
            _add_summed(g, received, False)
        if fresh_sent:
            _add_summed(g, fresh_sent, True, FRESH)
        if fresh_received:
            _add_summed(g, fresh_received, False, FRESH)
    return [ent[0] for ent in groups.values()]


def _add_crossing_summed(g, rows, what, which, first, kind=IDLE, memo=None):
    """``Group.add_crossing`` of each of ``rows`` (``_columns_of``'s ``kind``),
    as sums over columns, the rates in the rows' order.  ``memo`` (a dict, one
    for each ``rows``): each direction's columns summed once for all its
    crossings (a host's "lo": four of the same rows; Tab at 100k, 80-89 -> 56-57 ms)."""
    if len(rows) < _SMALL:
        for r in rows:
            g.add_crossing(r, what, which, first)
        return
    got = None if memo is None else memo.get(which)
    if got is None:
        got = _crossing_sums(rows, kind, which, memo)
        if memo is not None:
            memo[which] = got
    flows, uncounted, rated, nb, np_, rate = got
    if first:
        g.flows += flows
        g.uncounted += uncounted
        g.rated += rated
    if what == "tx":
        g.bytes_tx += nb
        g.pkts_tx += np_
        if rate is not None:
            g.rate_tx = reduce(add, filter(None, rate), g.rate_tx)
    else:
        g.bytes_rx += nb
        g.pkts_rx += np_
        if rate is not None:
            g.rate_rx = reduce(add, filter(None, rate), g.rate_rx)


def _crossing_sums(rows, kind, which, memo=None):
    """(flows, uncounted, rated, bytes, packets, the rates read or None) of
    ``rows`` in direction ``which`` ("orig", "reply"); their columns kept in
    ``memo`` for the other direction (moving rows: three lists, made once)."""
    columns = None if memo is None else memo.get("columns")
    if columns is None:
        columns = _columns_of(rows, kind)
        if memo is not None:
            memo["columns"] = columns
    ents, rates, rated = columns
    get = _GET_BO if which == "orig" else _GET_BR
    try:
        nb, uncounted = sum(map(get, ents)), 0
    except TypeError:           # a None: flows older than the accounting
        nb = list(map(get, ents))
        nb, uncounted = sum(filter(None, nb)), nb.count(None)
    rate = None if rates is None else rates[0 if which == "orig" else 1]
    if rate is not None:
        rated = len(rate) - rate.count(None)
    np_ = _total(_GET_PO if which == "orig" else _GET_PR, ents)
    return len(rows), uncounted, rated, nb, np_, rate


def _total(get, ents):
    """The sum of ``get`` over ``ents``, a None read as 0: one C pass when
    there is none (100k synthetic rows scattered in memory: ~14 against ~25
    ms a column for the list, its None test and the filtered sum)."""
    try:
        return sum(map(get, ents))
    except TypeError:
        return sum(filter(None, map(get, ents)))


def _field(i):
    """A Summed field: read in C, set (rarely: a label told apart) by index."""
    return property(itemgetter(i), lambda self, value: self.__setitem__(i, value))


class Summed(list):
    """A Group made with its sums, for the views that make one a remote
    address (``views.remotes``): built in C from a tuple (``map`` over
    ``zip`` of columns), read as a Group is.  250k of them: ~200 -> ~60 ms
    against a Group's ``__init__``."""

    __slots__ = ()
    FIELDS = ("key", "label", "flows", "uncounted", "rated", "bytes_tx", "bytes_rx",
              "pkts_tx", "pkts_rx", "rate_tx", "rate_rx")
    (key, label, flows, uncounted, rated, bytes_tx, bytes_rx, pkts_tx, pkts_rx, rate_tx,
     rate_rx) = map(_field, range(len(FIELDS)))
    closed = 0
    is_new = False
    totals = Group.totals
    __eq__ = object.__eq__          # a group is itself, as a Group is (and hashable)
    __ne__ = object.__ne__
    __hash__ = object.__hash__
