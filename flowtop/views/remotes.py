"""The Hosts and Countries views over a big table: each flow's remote end,
group and counters found a column at a time (C passes of map, zip and
compress over lists), and one Group made per group with its sums.  Tab to
Hosts at 250k distinct remote addresses was ~1 s of CPU, ~4 us of calls a
group (bench/README.md, keys.py)."""

from collections import Counter
from itertools import compress, repeat
from functools import reduce
from operator import add, and_, attrgetter, eq, ge, is_, is_not, itemgetter, not_, or_

from ..netlink.ctnetlink import FIELDS
from ..table import FreshFlow, TableFlow
from ..text import sanitize
from .groups import Summed

_SRC, _DST = itemgetter(FIELDS.index("src")), itemgetter(FIELDS.index("dst"))
_COUNTERS = tuple(itemgetter(FIELDS.index(n)) for n in (
    "bytes_orig", "bytes_reply", "packets_orig", "packets_reply"))
_ZERO = {None: 0}                       # _ZERO.get(v, v): None as 0, in C
_DASH = {None: "-", "": "-"}            # a host without an address: "-"
_ZERO_RATE = {None: 0.0}
_RATE = attrgetter("rate_orig"), attrgetter("rate_reply")


def _zeroed(col):
    """``col`` with None as 0 (as it is when no None is in it: counters on)."""
    if None not in col:
        return col
    return list(map(_ZERO.get, col, col))


def by_remote(rows, view, enrich, redact):
    """``aggregate``'s Groups of ``view`` ("host" or "country") over ``rows``,
    and whether two of them share a label (``_tell_apart``'s work)."""
    idle, live, ents = open_flows(rows)
    if not ents:
        return [], False
    dst = list(map(_DST, ents))
    inbound = inbound_of(ents, dst, enrich)
    remotes = dst if inbound is None else list(map(tuple.__getitem__, zip(dst, map(_SRC, ents)),
                                                   inbound))
    sums = Sums(ents, len(idle), live, inbound)
    if view == "host":
        keys = list(dict.fromkeys(remotes))
        raw = _host_labels(keys, enrich, redact)
        labels = _sanitized(raw, 64)
        if len(keys) == len(ents):
            groups = sums.one_each(list(zip(keys)), labels)
        else:
            pos = dict(zip(keys, range(len(keys))))
            groups = sums.summed(list(zip(keys)), labels, list(map(pos.__getitem__, remotes)))
        if labels is raw and enrich.dns is None and not (redact is not None and redact.active):
            return groups, raw.count("-") > 1      # the addresses themselves: "-" alone twice
        return groups, len(set(labels)) < len(labels)
    if enrich.geo is None:                              # -G: one group, no lookup
        return [sums.one(("-",), "- unknown")], False
    country = {a: country_of(enrich.geo_of(a)) for a in dict.fromkeys(remotes)}
    named = {}                                          # code -> its first address's label
    for code, label in country.values():
        named.setdefault(code, label)
    if len(named) == 1:
        ((code, label),) = named.items()
        return [sums.one((code,), sanitize(label, 64))], False
    pos = dict(zip(named, range(len(named))))
    which = list(map(pos.__getitem__, map(itemgetter(0), map(country.__getitem__, remotes))))
    return sums.summed(list(zip(named)), _sanitized(list(named.values()), 64), which), False


def country_of(g):
    """(country code, "code name") of GeoIP record ``g`` (None: unknown)."""
    code = getattr(g, "country", None) or "-"
    cname = getattr(g, "country_name", None) or ("unknown" if code == "-" else "")
    return code, ("%s %s" % (code, cname)).strip()


def open_flows(rows):
    """(idle rows, live rows, entries: the idle ones then the live ones') of
    the open ``rows``; the idle ones are TableFlows (their own entry, rates
    0.0), the live ones first seen TableFlows (FreshFlow: their own entry,
    rates unknown; a router's table until its next full dump), then Rows."""
    kinds = list(map(type, rows))
    idle = list(compress(rows, map(is_, kinds, repeat(TableFlow))))
    live = list(compress(rows, map(is_not, kinds, repeat(TableFlow))))
    fresh = []
    if FreshFlow in set(kinds):       # (a list's ``in`` compares each type: ~4x the set's)
        kinds = list(map(type, live))
        fresh = list(compress(live, map(is_, kinds, repeat(FreshFlow))))
        live = list(compress(live, map(is_not, kinds, repeat(FreshFlow))))
    if any(map(attrgetter("closed"), live)):
        live = [r for r in live if not r.closed]
    # (their entry property a call each: 100k first seen flows, ~10 ms)
    return idle, fresh + live, idle + fresh + list(map(attrgetter("entry"), live))


def inbound_of(ents, dst, enrich):
    """Per flow: is its original direction received (its destination this
    host's, its source not)?  None when no flow's is."""
    local = enrich.locals_of(dst)
    if not any(local):
        return None
    inbound = list(map(and_, local, map(not_, enrich.locals_of(list(map(_SRC, ents))))))
    return inbound if any(inbound) else None


def _host_labels(addrs, enrich, redact):
    """The label of each remote address (``keys_of``'s): its name, else itself."""
    if enrich.dns is None:
        names = repeat(None)
    else:
        names = map(enrich.host, addrs)
    if redact is not None and redact.active:
        return list(map(redact.label, addrs, names))
    if enrich.dns is None:
        return list(map(_DASH.get, addrs, addrs))
    return [n or a or "-" for n, a in zip(names, addrs)]


def _sanitized(labels, width):
    """``sanitize(label, width)`` of each; one test in C when all are short
    printable ASCII (addresses: 250k calls were ~90 ms)."""
    try:
        text = "".join(labels)
    except TypeError:
        text = None
    if text is not None and text.isascii() and text.isprintable() \
            and max(map(len, labels), default=0) <= width:
        return labels
    return [sanitize(label, width) for label in labels]


class Sums:
    """The flows' counters summed per group, sent and received as seen from
    this host: ``ents`` the idle rows' first (rates 0.0, known), then the
    ``live`` rows' (rates None when unknown); ``inbound``: per flow, its
    reply direction is sent (None: none's)."""

    def __init__(self, ents, idle, live, inbound):
        self.ents, self.idle, self.live, self.inbound = ents, idle, live, inbound

    def _columns(self):
        """(uncounted or None, sent bytes, received bytes, sent packets,
        received packets) a flow, None as 0."""
        bo, br, po, pr = (list(map(get, self.ents)) for get in _COUNTERS)
        unc = None
        if None in bo and None in br:
            unc = list(map(int, map(and_, map(is_, bo, repeat(None)), map(is_, br, repeat(None)))))
        return [unc] + self._swapped(*map(_zeroed, (bo, br, po, pr)))

    def _swapped(self, *pairs):
        """Columns of (orig, reply) pairs as (sent, received) pairs."""
        inbound = self.inbound
        if inbound is None:
            return list(pairs)
        if len(inbound) > len(pairs[0]):    # the live rows' columns
            inbound = inbound[self.idle:]
        out = []
        for a, b in zip(pairs[::2], pairs[1::2]):   # a received flow: its reply is sent
            out += [list(map(tuple.__getitem__, zip(a, b), inbound)),
                    list(map(tuple.__getitem__, zip(b, a), inbound))]
        return out

    def _live_rates(self):
        """(rated, rate sent, rate received) of each live row."""
        ro, rr = (list(map(get, self.live)) for get in _RATE)
        rated = list(map(int, map(or_, map(is_not, ro, repeat(None)),
                                  map(is_not, rr, repeat(None)))))
        return [rated] + self._swapped(*(list(map(_ZERO_RATE.get, c, c)) for c in (ro, rr)))

    def one_each(self, keys, labels):
        """Groups of one flow each, in the flows' order."""
        idle = self.idle
        unc, btx, brx, ptx, prx = self._columns()
        rated, rtx, rrx = self._live_rates()
        return list(map(Summed, zip(keys, labels, repeat(1), repeat(0) if unc is None else unc,
                                    [1] * idle + rated, btx, brx, ptx, prx,
                                    [0.0] * idle + rtx, [0.0] * idle + rrx)))

    def one(self, key, label):
        """One group of every flow: sums in C."""
        ents, inbound = self.ents, self.inbound
        bo, br, po, pr = (list(map(get, ents)) for get in _COUNTERS)
        unc = sum(map(and_, map(is_, bo, repeat(None)), map(is_, br, repeat(None)))) \
            if None in bo and None in br else 0
        sent = (bo, po) if inbound is None else (list(compress(bo, map(not_, inbound))) +
                                                 list(compress(br, inbound)),
                                                 list(compress(po, map(not_, inbound))) +
                                                 list(compress(pr, inbound)))
        btx, ptx = (sum(filter(None, c)) for c in sent)
        brx = sum(filter(None, bo)) + sum(filter(None, br)) - btx
        prx = sum(filter(None, po)) + sum(filter(None, pr)) - ptx
        rated, rtx, rrx = self._live_rates()
        # added one by one, in order, as Group.add does (sum() of floats may not)
        rtx, rrx = reduce(add, rtx, 0.0), reduce(add, rrx, 0.0)
        return Summed((key, label, len(ents), unc, self.idle + sum(rated), btx, brx, ptx, prx,
                       rtx, rrx))

    def summed(self, keys, labels, which, bulk=0):
        """Groups of the flows ``which`` (its group's index a flow): the
        first ``bulk`` groups (few, of many flows each) summed in C over a
        mask each, the others a flow at a time."""
        m, idle = len(keys), self.idle
        unc, *cols = self._columns()
        flows, rated = Counter(which), Counter(which[:idle])    # counted in C
        unc = Counter(() if unc is None else compress(which, unc))
        flows, unc, rated = (list(map(c.get, range(m), repeat(0))) for c in (flows, unc, rated))
        sums = [[0] * m for _ in range(4)] + [[0.0] * m, [0.0] * m]
        lr, *lrates = self._live_rates() if self.live else ((), (), ())
        for k in range(bulk):
            mask = list(map(eq, which, repeat(k)))
            for total, col in zip(sums, cols):
                total[k] = sum(compress(col, mask))
            live = mask[idle:]
            rated[k] += sum(compress(lr, live))
            for total, col in zip(sums[4:], lrates):   # in order, as Group.add adds
                total[k] = reduce(add, compress(col, live), 0.0)
        rest = list(map(ge, which, repeat(bulk))) if bulk else None

        def part(col, at=0):
            return col if rest is None else compress(col, rest[at:] if at else rest)
        btx, brx, ptx, prx, rtx, rrx = sums
        for i, a, b, c, d in zip(part(which), *map(part, cols)):
            btx[i] += a
            brx[i] += b
            ptx[i] += c
            prx[i] += d
        if self.live:                  # the live rows' rates, added in their order
            for i, r, a, b in zip(part(which[idle:], idle), part(lr, idle),
                                  *(part(c, idle) for c in lrates)):
                rated[i] += r
                rtx[i] += a
                rrx[i] += b
        return list(map(Summed, zip(keys, labels, flows, unc, rated, btx, brx, ptx, prx, rtx,
                                    rrx)))
