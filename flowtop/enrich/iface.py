"""The input and output interface of each flow, from route lookups (nftop's
in/out interface columns and its ``-i``/``-o`` filters).

Conntrack does not record interfaces, so they are inferred per flow end as
``ip route get`` would: from a copy of the routing tables (``fib.py``), or
over rtnetlink where the copy cannot tell (policy rules, multipath, ...).

Which lookups
-------------
A flow's original tuple is ``src -> dst``; its reply tuple ``reply_src ->
reply_dst``.  ``src`` is the originator as its packets arrive here;
``reply_src`` is where the original-direction packets are finally sent (it
equals ``dst`` unless DNAT rewrote the destination - then ``dst`` is often
this router's own public address, and routing to it would say "local").
"in" is the interface the original-direction packets arrive on, "out" the
one they leave through; reply packets go the other way (arrive on "out",
leave through "in").

* A flow through a router (neither end local):
  in  = oif of ``route get <src> mark <ctmark>`` - the interface the
  originator is reachable through (the reverse path that rp_filter checks);
  out = oif of ``route get <reply_src> mark <ctmark>``.
* One end is this host (the route lookup answers type RTN_LOCAL): the route
  to a local address always says ``lo``, which is not where the flow's
  packets are.  That end takes the interface that owns the address
  (RTM_GETADDR); an address no interface owns (127.0.0.2 in 127/8) keeps
  the route's answer.  The other end is looked up as above.  So a
  connection from this host's eth0 address to the Internet is eth0 -> eth0,
  and a LAN client reaching this router's WAN address is lan0 -> wan0 -
  "out" then names the address the flow is for, though its packets never
  leave through wan0 (``iface_totals`` counts only the wire side).
* Both ends local: the packets really cross the loopback device, and the
  route's answer (``lo``) is kept for both.

Lookups are cached per (address, ctmark) - both directions of many flows
share them - with a bound that follows the table's size, and refreshed
after ``ttl`` seconds since routes change, an eighth of the table per
``prefetch`` (a stale answer serves until then).  ``prefetch(entries)``
sends every missing lookup of a tick in batches (``rtlookup.route_get_many``);
``of_flow`` then only reads the cache (a miss costs one lookup, or with
``deferred`` - the live view, where another thread prefetches - waits for
the next ``prefetch``: one thread talks to the kernel).  Interface names come from one
RTM_GETLINK dump, refreshed after ``ttl`` or when an unknown ifindex shows
up (at most once a second), and pass ``text.sanitize``.

Caveats (nftop's README says as much): this is the kernel's *current*
answer for a *simplified* packet, not what happened to the flow's packets.
It can be wrong with policy routing that matches on anything but the
destination and the mark - source address (``ip rule from``), input
interface (``iif``), uid, tos, ports -, with a packet fwmark that differs
from the conntrack mark (the ct mark is used; setups that copy it with
``meta mark set ct mark`` / ``CONNMARK --restore-mark`` agree), with
multipath/ECMP routes (the kernel hashes each flow), asymmetric routing,
VRFs, tunnels and bridges (the route names the bridge, not its port), and
after a route changed since the flow began.  IPv6 link-local addresses
carry no scope in conntrack, so the owner of an address that exists on
several interfaces is one of them.
"""

import itertools
import time

from ..netlink import route as _route
from ..netlink import rtlookup as _rtlookup
from ..netlink.errors import DecodeError, NetlinkError
from ..text import sanitize
from .ifaceflow import _FAILED, FlowAnswers
from .ifacetotals import (   # the pure half, importable from here too
    FlowIfaces, crossings, iface_filter, iface_match, iface_totals, unmatched,
)

MAX_ENTRIES = 4096        # cached (address, mark) lookups, at least (more for a bigger table)
STALE_MIN = 4096          # stale lookups refreshed per prefetch, at least ...
STALE_SHARE = 8           # ... or this fraction of the ends passed in
RETRY = 5.0               # seconds before a failed (not "no route") lookup is retried
NAMES_MIN_INTERVAL = 1.0  # an unknown ifindex re-dumps the links at most this often
# Addresses asked of the kernel one by one before the routing tables are copied (fib): a
# host's few ends cost less so (14 flows, --once: ~2 M instructions of fib's import and two
# dumps), a router's thousands are answered by the copy
FIB_AFTER = 32



class Interfaces(FlowAnswers):
    """In/out interface names per flow from cached route lookups.

    ``route_sock_factory()`` opens the NETLINK_ROUTE socket (lazily, once;
    reopened after an error); ``clock`` is monotonic seconds; ``ttl`` how
    long a route or the name table is trusted.  The tests' seams:
    ``lookup(keys)`` - a list of ``(address, mark)`` to a list of
    ``RouteInfo``/None/NetlinkError (default: ``rtlookup.route_get_many``),
    ``links()`` - ``{ifindex: name}`` (default: ``route.interfaces``),
    ``owners()`` - ``{address: ifindex}`` (default: from
    ``route.addresses``).
    """

    def __init__(self, route_sock_factory=_route.open_socket, clock=time.monotonic, ttl=30.0,
                 max_entries=MAX_ENTRIES, lookup=None, links=None, owners=None):
        self._factory = route_sock_factory
        self.clock = clock
        self.ttl = ttl
        self.max_entries = max_entries
        self._lookup_fn = lookup or self._first_lookups
        self._direct = 0          # addresses the kernel answered before the copy (FIB_AFTER)
        self._links_fn = links or self._kernel_links
        self._owners_fn = owners or self._kernel_owners
        self._sock = None
        # address (mark 0) or (address, mark) -> (RouteInfo | None | _FAILED, expires):
        # the bare text for mark 0 spares a 2-tuple per address (~40 B on 32-bit)
        self._cache = {}
        self._names = {}          # ifindex -> name
        self._owners = {}         # address -> ifindex
        self._names_expire = None
        self._names_tried = None
        self._ends = 0            # address ends of the largest prefetch within the TTL
        self._ends_at = None
        # keys ``route`` missed while deferred: a list, so the screen thread may
        # still append to one the collector has taken (a set raised "changed size")
        self._wanted = []
        self._names_wanted = False
        self._prefetched = None   # clock at the last prefetch: what was fresh then serves
        self.deferred = False     # True: only prefetch talks to the kernel (see route)
        self.lookups = 0          # route lookups asked for, all told (for tests and stats)
        self.asked = 0            # ... of which the kernel answered (the copied tables could not)

    # -- the kernel -------------------------------------------------------------------
    def _socket(self):
        if self._sock is None:
            self._sock = self._factory()
        return self._sock

    def _drop_socket(self):
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    def _kernel(self, fn):
        try:
            return fn(self._socket())
        except (OSError, DecodeError):
            self._drop_socket()         # a fresh socket next time: no stale replies
            raise

    def _kernel_lookup(self, keys):
        self.asked += len(keys)
        return self._kernel(lambda s: _rtlookup.route_get_many(
            [(addr, None, mark or None, None) for addr, mark in keys], sock=s))

    def _first_lookups(self, keys):
        """The kernel's answers for the first FIB_AFTER addresses; from then on a
        copy of the routing tables answers (``fib.Lookups``: what it cannot, the kernel)."""
        self._direct += len(keys)
        if self._direct <= FIB_AFTER:
            return self._kernel_lookup(keys)
        from . import fib
        self._lookup_fn = fib.Lookups(self._kernel_lookup, self.clock, min(self.ttl, fib.TTL))
        return self._lookup_fn(keys)

    def _kernel_links(self):
        return self._kernel(_route.interfaces)

    def _kernel_owners(self):
        owners = {}
        for a in self._kernel(_route.addresses):
            owners.setdefault(a.address, a.index)
        return owners

    # -- the route cache ----------------------------------------------------------------
    # One writer: only ``prefetch`` (the collector thread) changes the cache
    # when ``deferred`` is set; the screen thread then only reads it, and its
    # misses wait in ``_wanted`` for the next prefetch.  (Two writers evicting
    # the same dict killed the collector with a KeyError past 65k addresses.)

    def _resolve(self, keys, now):
        if not keys:
            return
        self.lookups += len(keys)
        try:
            # the cache's keys as the seam's (address, mark) pairs
            results = self._lookup_fn([(k, 0) if k.__class__ is str else k for k in keys])
        except (OSError, DecodeError):
            results = [_FAILED] * len(keys)
        cache = self._cache
        ok_until, retry_at = now + self.ttl, now + min(RETRY, self.ttl)
        # Many addresses share one answer (oif, type): one (value, expires)
        # pair per answer and batch, not one per address (~110 B each).
        pairs = {}
        for key, result in zip(keys, results):
            if isinstance(result, NetlinkError) or result is _FAILED:
                pair = (_FAILED, retry_at)
            else:
                if result is not None and result.dst is not None:
                    result = result._replace(dst=None)
                pair = pairs.get(result)
                if pair is None:
                    pair = pairs[result] = (result, ok_until)
            cache.pop(key, None)              # to the end: most recently refreshed
            cache[key] = pair
        if len(cache) > self._bound():
            self._evict(now)

    def _bound(self):
        return max(self.max_entries, self._ends + self._ends // 4)

    def _evict(self, now):
        """Down to below the bound in one pass: expired entries first, then
        the least recently refreshed.  A chunk at a time (an eighth of the
        bound), not one key per insert: ``next(iter(dict))`` after many
        deletions scans every deleted slot, which made each eviction O(n)."""
        bound = self._bound()
        cache = self._cache
        keep = {k: v for k, v in cache.items() if v[1] > now}
        excess = len(keep) - (bound - bound // 8)
        if excess > 0:
            drop = list(itertools.islice(keep, excess))
            for k in drop:
                del keep[k]
            keep = dict(keep)                 # a compact copy, sized for what is left
        self._cache = keep

    def prefetch(self, entries):
        """Look up, in batches, every (address, mark) of ``entries`` that is
        not cached, and the stale ones up to STALE_SHARE of them a call
        (the rest keep their last answer until a later call), plus what
        ``route`` was asked for and did not have.  Returns the number of
        lookups sent."""
        now = self.clock()
        self._prefetched = now
        want = {}
        stale = []
        cached = self._cache.get
        ends = 0
        # Every flow of the table passes here each full refresh: no call
        # per address (``_fresh`` inlined).
        for e in entries:
            mark = e.mark
            ends += 2
            for addr in (e.src, e.reply_src if e.reply_src is not None else e.dst):
                if addr is not None:
                    key = (addr, mark) if mark else addr
                    if key not in want:
                        hit = cached(key)
                        if hit is None:
                            want[key] = True
                        elif hit[1] <= now:
                            want[key] = False
                            stale.append(key)
        if self._wanted:
            wanted, self._wanted = self._wanted, []
            for key in wanted:
                hit = cached(key)
                if hit is None or hit[1] <= now:
                    want[key] = True
        # The bound follows the largest table of the last TTL, so a table of
        # 100k flows (200k ends) does not thrash a smaller cache.
        if ends >= self._ends or now - self._ends_at > self.ttl:
            self._ends, self._ends_at = ends, now
        keys = [k for k, missing in want.items() if missing]
        # A whole table's routes expire together: refresh them a share per
        # call (at 200k addresses, 1.5 s of lookups in one tick otherwise).
        keys += stale[:max(STALE_MIN, ends // STALE_SHARE)]
        self._resolve(keys, now)
        if len(self._cache) > self._bound():
            self._evict(now)
        self._names_for(now)
        return len(keys)

    def cached(self):
        return len(self._cache)

    def forget(self):
        """Empty the route cache (the collector's, as ``prefetch``): after
        the table shrank, its entries pin the memory the flows had."""
        self._cache = {}
        self._ends = 0

    def wanted(self):
        """Whether ``route`` or ``name`` left work for the next ``prefetch``."""
        return bool(self._wanted) or self._names_wanted

    def route(self, addr, mark=0):
        """The cached RouteInfo (None: no route or unknown) for ``addr``; a
        miss or a stale entry costs one lookup now, or, when ``deferred``,
        waits for the next ``prefetch`` (None meanwhile, or the stale answer).
        An answer fresh at the last ``prefetch`` serves until the next one (a
        --once of 16k flows on a router outlasts the TTL: 5x the lookups)."""
        if addr is None:
            return None
        key = (addr, mark) if mark else addr
        now = self.clock()
        hit = self._cache.get(key)
        if hit is None or hit[1] <= now:
            if self.deferred:
                self._wanted.append(key)
            elif hit is None or self._prefetched is None or hit[1] <= self._prefetched:
                self._resolve([key], now)     # (stale since the last prefetch: it serves)
                hit = self._cache.get(key)
        if hit is None:
            return None
        value = hit[0]
        return None if value is _FAILED else value

    # -- names --------------------------------------------------------------------------
    def _names_for(self, now, unknown=None):
        """Refresh the ifindex -> name and address -> ifindex maps when they
        expired, or when ``unknown`` ifindex is asked for (rate-limited)."""
        expired = self._names_expire is None or now >= self._names_expire
        if self.deferred and unknown is not None:     # not this thread's to refresh
            self._names_wanted = True
            return
        if self._names_wanted:
            self._names_wanted = False
            unknown = -1
        if not expired:
            if unknown is None or unknown in self._names:
                return
            if self._names_tried is not None and now - self._names_tried < NAMES_MIN_INTERVAL:
                return
        self._names_tried = now
        try:
            names = self._links_fn()
            owners = self._owners_fn()
        except (OSError, DecodeError):
            self._names_expire = now + min(RETRY, self.ttl)
            return
        self._names = {int(i): sanitize(n) for i, n in names.items()}
        self._owners = dict(owners)
        self._names_expire = now + self.ttl

    def name(self, ifindex):
        """The name of ``ifindex`` (None when unknown)."""
        if ifindex is None:
            return None
        name = self._names.get(ifindex)
        if name is None:
            self._names_for(self.clock(), unknown=ifindex)
            name = self._names.get(ifindex)
        return name

    def names(self):
        """The names of this host's interfaces (empty when the links cannot
        be read)."""
        self._names_for(self.clock())
        return sorted(set(self._names.values()))

    def owner(self, addr):
        """The ifindex of the interface that has ``addr`` configured, or None."""
        if not self.deferred:
            self._names_for(self.clock())
        return self._owners.get(addr)

    def close(self):
        self._drop_socket()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


__all__ = ["Interfaces", "FlowIfaces", "iface_match", "iface_totals", "crossings",
           "iface_filter", "unmatched"]
