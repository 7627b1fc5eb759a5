"""Route lookups in user space: a copy of this namespace's routing tables
(one rtnetlink dump of the routes, one of the rules) searched per address
by longest prefix, as ``ip route get ADDR`` would answer - without a round
trip to the kernel per address.  On a router every flow has its own
remote address: the lookups were most of ``--once``'s time there (433 s
against 78 s without them, 16k flows, mipsel), ~14 us each here.

It answers only what it can reproduce exactly, and ``ASK`` otherwise (the
caller then asks the kernel):

* a family whose rules are all plain "look up table T" rules (the default
  local/main/default trio, or any such list): no selector (from, to, iif,
  oif, fwmark, uid, ports, tos), no goto, no suppress_prefixlength - so
  the mark does not matter.  Any other rule: ``ASK`` for the whole family.
* then the tables in rule order: the longest prefix that matches, within
  it the lowest metric (``ASK`` when a later table holds a longer one:
  IPv4 merges local and main into one table while the rules are the
  default); ``throw`` goes on to the next table, unreachable,
  prohibit and blackhole are "no route" (None).  A local route answers as
  the kernel does: type local, out through the loopback device.
* ``ASK`` where the longest match is a route it cannot reproduce (several
  nexthops or a nexthop object, a source prefix, a tos, a dead or
  linkdown nexthop, two routes of one prefix and metric, a type but
  unicast/local/broadcast/the no-route ones), and for destinations the
  kernel treats apart: 0.0.0.0/8, multicast, 255.255.255.255, ::,
  IPv6 link-local (it needs a scope), multicast and v4-mapped addresses.

``build(routes, rules)`` is pure (lists of ``rtdump.RouteEntry`` and
``RuleEntry``); ``Fib.lookup(address text)``, a binary search over the
address space cut where prefixes begin and end, answers a ``RouteInfo``
(oif, type and table set), None, or ``ASK``.  ``Lookups`` keeps a copy
fresh and passes what it cannot answer on to the kernel.
"""

import _socket as socket  # not socket.py (see netlink/socket.py)
from bisect import bisect_right

from ..netlink import rtdump
from ..netlink.errors import DecodeError, DumpInterrupted
from ..netlink.rtlookup import RouteInfo
from ..netlink.uapi import (
    AF_INET, AF_INET6, FR_ACT_TO_TBL, LOOPBACK_IFINDEX, RTN_BLACKHOLE, RTN_BROADCAST, RTN_LOCAL,
    RTN_PROHIBIT, RTN_THROW, RTN_UNICAST, RTN_UNREACHABLE, RTNH_F_DEAD, RTNH_F_LINKDOWN,
)

# More routes than this is a BGP table: copying it (and its memory) costs
# more than asking the kernel per address.
MAX_ROUTES = 2048
TTL = 5.0                 # seconds a copy serves (its two dumps: ~1 ms here)

ASK = "ask the kernel"        # a sentinel (a str: RouteInfo == it is a cheap False)
_THROW = "throw"

_BITS = {AF_INET: 32, AF_INET6: 128}
_NO_ROUTE = frozenset((RTN_UNREACHABLE, RTN_PROHIBIT, RTN_BLACKHOLE))
_ANSWERED = frozenset((RTN_UNICAST, RTN_LOCAL, RTN_BROADCAST)) | _NO_ROUTE | {RTN_THROW}
# destinations the kernel routes apart from the tables: (family, prefix, length)
_SPECIAL = (
    (AF_INET, "0.0.0.0", 8), (AF_INET, "224.0.0.0", 4), (AF_INET, "255.255.255.255", 32),
    (AF_INET6, "::", 128), (AF_INET6, "fe80::", 10), (AF_INET6, "ff00::", 8),
    (AF_INET6, "::ffff:0:0", 96),
)


_pton = socket.inet_pton


def _int(family, text):
    return int.from_bytes(_pton(family, text), "big")


class _Table:
    """One routing table of one family: {prefix length: {prefix: answer}}."""

    __slots__ = ("bits", "lengths", "by_length")

    def __init__(self, bits):
        self.bits = bits
        self.lengths = ()
        self.by_length = {}

    def lookup(self, value, longer_than=-1):
        """(prefix length, answer) of the longest match longer than
        ``longer_than``, or None."""
        bits = self.bits
        for length in self.lengths:
            if length <= longer_than:
                break
            hit = self.by_length[length].get(value >> (bits - length))
            if hit is not None:
                return length, hit
        return None


def _answer(route):
    """What a lookup that ends on ``route`` answers."""
    if (route.multipath or route.src_len or route.tos
            or route.flags & (RTNH_F_DEAD | RTNH_F_LINKDOWN) or route.type not in _ANSWERED):
        return ASK
    if route.type == RTN_THROW:
        return _THROW
    if route.type in _NO_ROUTE:
        return False                  # "no route" (None is "no match" in a table)
    oif = LOOPBACK_IFINDEX if route.type == RTN_LOCAL else route.oif
    if oif is None:
        return ASK
    return RouteInfo(oif, None, None, None, route.table, route.type, None)


def _tables(family, routes):
    """{table id: _Table} of ``family``; raises ValueError on a route it cannot place."""
    bits = _BITS[family]
    best = {}                          # (table, length, prefix) -> (metric, answer, tie)
    for r in routes:
        if r.family != family:
            continue
        if not 0 <= r.dst_len <= bits or (r.dst is None) != (r.dst_len == 0):
            raise ValueError("a route of prefix length %d to %r" % (r.dst_len, r.dst))
        try:
            prefix = _int(family, r.dst) >> (bits - r.dst_len) if r.dst_len else 0
        except OSError:     # an address of the other family's size (a dump that lies)
            raise ValueError("a route of family %d to %r" % (family, r.dst)) from None
        key = (r.table, r.dst_len, prefix)
        metric = r.priority
        seen = best.get(key)
        if seen is None or metric < seen[0]:
            best[key] = (metric, _answer(r))
        elif metric == seen[0]:
            best[key] = (metric, ASK)     # which of the two the kernel takes: ask it
    tables = {}
    for (table, length, prefix), (_metric, answer) in best.items():
        t = tables.get(table)
        if t is None:
            t = tables[table] = _Table(bits)
        t.by_length.setdefault(length, {})[prefix] = answer
    for t in tables.values():
        t.lengths = tuple(sorted(t.by_length, reverse=True))
    return tables


def _order(family, rules):
    """The table ids to search, in rule order; None when a rule is not plain."""
    mine = [r for r in rules if r.family == family]
    if not mine or any(not r.plain or r.action != FR_ACT_TO_TBL for r in mine):
        return None
    return [r.table for r in sorted(mine, key=lambda r: r.priority)]


_V6 = 1 << 32          # IPv6 values follow IPv4's in one number line: one search for both
_from_bytes = int.from_bytes


class Fib:
    """The lookup over one family's tables in rule order (see the module doc).

    The tables are searched once per piece of the address space where no
    prefix begins or ends (``_walk``): a lookup is then one binary search
    in C, not a dict read per prefix length and table (100k addresses:
    1.6 us each before, 0.4 us; bench/README, fib)."""

    def __init__(self, families):
        self._families = families     # family -> (tables in order, specials) or None
        self._pieces = None           # (their starts, [ASK] + their answers), when first asked

    def lookup(self, addr):
        starts, answers = self._pieces or self._cut()
        try:
            value = (_from_bytes(_pton(AF_INET6, addr), "big") + _V6 if ":" in addr
                     else _from_bytes(_pton(AF_INET, addr), "big"))
        except (OSError, ValueError, TypeError):
            return ASK
        return answers[bisect_right(starts, value)]

    def _cut(self):
        """The address space in pieces, each one answer (``_walk``'s at its start)."""
        starts, answers = [], [ASK]
        for family, base in ((AF_INET, 0), (AF_INET6, _V6)):
            bits = _BITS[family]
            cuts = {0}
            plan = self._families.get(family)
            if plan is not None:
                order, specials = plan
                for length, prefix in specials:
                    cuts.update((prefix << (bits - length), (prefix + 1) << (bits - length)))
                for table in order:
                    for length, prefixes in table.by_length.items():
                        for prefix in prefixes:
                            cuts.update((prefix << (bits - length),
                                         (prefix + 1) << (bits - length)))
            cuts.discard(1 << bits)
            for cut in sorted(cuts):
                answer = ASK if plan is None else self._walk(plan, bits, cut)
                if answer != answers[-1] or not starts:
                    starts.append(base + cut)
                    answers.append(answer)
        self._pieces = (starts, answers)
        return self._pieces

    @staticmethod
    def _walk(plan, bits, value):
        """What the tables answer for the address ``value`` (an int)."""
        order, specials = plan
        for length, prefix in specials:
            if value >> (bits - length) == prefix:
                return ASK
        for i, table in enumerate(order):
            hit = table.lookup(value)
            if hit is None:
                continue
            length, hit = hit
            if hit is _THROW:
                continue
            # IPv4 with the default rules searches local and main as one
            # table (longest prefix over both): where that differs, ask
            for later in order[i + 1:]:
                if later.lookup(value, length) is not None:
                    return ASK
            return None if hit is False else hit
        return None


def build(routes, rules):
    """A Fib of the route and rule dumps; a family it cannot copy asks the kernel."""
    families = {}
    for family, bits in _BITS.items():
        order = _order(family, rules)
        if order is None:
            continue
        try:
            tables = _tables(family, routes)
        except ValueError:
            continue
        specials = tuple((length, _int(family, text) >> (bits - length))
                         for f, text, length in _SPECIAL if f == family)
        families[family] = ([tables[t] for t in order if t in tables], specials)
    return Fib(families)


class Lookups:
    """``lookups(keys)``: ``[(address, mark)]`` to answers (``iface``'s lookup
    seam), from a copy of the tables dumped again after ``ttl`` seconds, and
    from ``ask(keys)`` (the kernel) for what the copy cannot answer or
    while it cannot be made (too many routes, a dump that failed)."""

    def __init__(self, ask, clock, ttl, routes=None, rules=None):
        self.ask = ask
        self.clock = clock
        self.ttl = ttl
        self._routes = routes or (lambda: rtdump.routes(MAX_ROUTES))
        self._rules = rules or rtdump.rules
        self._fib = None
        self._expire = None
        self._dumps = None          # the (routes, rules) the copy was built from

    def fib(self):
        now = self.clock()
        if self._expire is None or now >= self._expire:
            self._expire = now + self.ttl
            try:
                routes = self._routes()
                dumps = None if routes is None else (routes, self._rules())
            except (OSError, DecodeError, DumpInterrupted):
                dumps = None
            if dumps is None:
                self._fib = None
            elif self._fib is None or dumps != self._dumps:
                # (unchanged dumps keep the copy and its pieces: 2,048 routes cut in
                # ~4,000 pieces cost ~10 ms here, every TTL)
                self._fib = build(*dumps)
            self._dumps = dumps
        return self._fib

    def __call__(self, keys):
        fib = self.fib()
        if fib is None:
            return self.ask(keys)
        out = [fib.lookup(addr) for addr, _mark in keys]
        asked = [i for i, answer in enumerate(out) if answer is ASK]
        if asked:
            for i, answer in zip(asked, self.ask([keys[i] for i in asked])):
                out[i] = answer
        return out
