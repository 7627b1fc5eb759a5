"""A flow's two interfaces from the route cache of ``iface.Interfaces``:
``of_flow`` for one flow, ``of_ends`` for a batch (see ``iface``'s module
doc for which lookup names which end).  A mix-in: ``Interfaces`` keeps the
cache, the names and the kernel."""

from ..netlink.errors import DecodeError
from ..netlink.rtlookup import RouteInfo
from ..netlink.uapi import RTN_LOCAL
from .ifacetotals import FlowIfaces

_FAILED = object()        # a transient failure, cached for RETRY seconds


class FlowAnswers:
    """The per-flow half of ``Interfaces`` (its ``route``, ``name``,
    ``owner``, ``_cache``, ``_names``, ``_owners``, ``_prefetched``)."""

    def flow_ifaces(self, entry):
        """FlowIfaces of a conntrack entry (``iface``'s module doc)."""
        mark = entry.mark or 0
        a = entry.src
        b = entry.reply_src if entry.reply_src is not None else entry.dst
        ra = self.route(a, mark)
        rb = self.route(b, mark)
        a_local = ra is not None and ra.type == RTN_LOCAL
        b_local = rb is not None and rb.type == RTN_LOCAL
        if a_local and b_local:       # host-internal: it really is the loopback
            return FlowIfaces(self.name(ra.oif), self.name(rb.oif), True, True)
        return FlowIfaces(self._end(a, ra, a_local), self._end(b, rb, b_local),
                          a_local, b_local)

    def _end(self, addr, info, local):
        if info is None:
            return None
        if local:
            index = self.owner(addr)
            if index is not None:
                return self.name(index)
        return self.name(info.oif)

    # of_flow's answer follows a flow's (src, reply_src or dst, mark) until the next
    # prefetch: --once asks it once a batch per distinct three (100k flows: 1.2 us each)
    by_ends = True

    def of_flow(self, entry):
        """``(in_name, out_name)`` of a conntrack entry; None where unknown."""
        if not self.deferred:
            # --once asks this of every flow: two cached ends answer here,
            # without the ~7 calls of flow_ifaces (tested equal to it).
            mark, a = entry.mark, entry.src
            b = entry.reply_src if entry.reply_src is not None else entry.dst
            get = self._cache.get
            ha = get((a, mark) if mark else a)
            hb = get((b, mark) if mark else b)
            if ha is not None and hb is not None:
                # what ``route`` serves: fresh now, or fresh at the last prefetch
                since = self._prefetched if self._prefetched is not None else self.clock()
                if ha[1] > since and hb[1] > since:
                    names, out, local = self._names, [], 0
                    for value in (ha[0], hb[0]):
                        if value is None or value is _FAILED:     # no route: no name
                            out.append(None)
                        elif value.__class__ is RouteInfo and value.oif in names:
                            local += value.type == RTN_LOCAL
                            out.append(names[value.oif])
                        else:             # an unnamed ifindex: the long way
                            break
                    else:
                        if local != 1:         # else the local end is named for its owner
                            return tuple(out)
                        i = 0 if ha[0].__class__ is RouteInfo and ha[0].type == RTN_LOCAL else 1
                        index = self._owners.get(b if i else a)
                        if index is None or index in names:
                            out[i] = names[index] if index is not None else out[i]
                            return tuple(out)
        try:
            f = self.flow_ifaces(entry)
        except (OSError, DecodeError):
            return (None, None)
        return (f.in_iface, f.out_iface)

    def of_ends(self, ends, entries):
        """``[of_flow(e) for e in entries]``, ``ends`` their distinct (src,
        reply end, mark) (``ifacetotals.ends_keys``): the cached answers read
        a column at a time, each distinct answer's name once (--once, 87k
        distinct addresses: of_flow's ~1.5 us a flow was a sixth of the run)."""
        if self.deferred or not ends:
            return list(map(self.of_flow, entries))
        srcs, rends, marks = zip(*ends)
        get = self._cache.get
        if any(marks):
            ha = [get((a, m) if m else a) for a, m in zip(srcs, marks)]
            hb = [get((b, m) if m else b) for b, m in zip(rends, marks)]
        else:
            ha, hb = list(map(get, srcs)), list(map(get, rends))
        since = self._prefetched if self._prefetched is not None else self.clock()
        names, owners = self._names, self._owners
        known = {}          # id of a cache entry -> (name, local), None: of_flow's long way
        hits = dict(zip(map(id, ha), ha))
        hits.update(zip(map(id, hb), hb))
        for key, hit in hits.items():
            if hit is None or hit[1] <= since:      # (not what ``route`` serves)
                known[key] = None
                continue
            value = hit[0]
            if value is None or value is _FAILED:       # no route: no name
                known[key] = (None, False)
            elif value.__class__ is RouteInfo and value.oif in names:
                known[key] = (names[value.oif], value.type == RTN_LOCAL)
            else:                                       # an unnamed ifindex
                known[key] = None
        out = []
        for x, y, a, b, e in zip(map(known.__getitem__, map(id, ha)),
                                 map(known.__getitem__, map(id, hb)), srcs, rends, entries):
            if x is None or y is None:
                out.append(self.of_flow(e))
            elif x[1] is y[1]:          # both ends local (the loopback) or neither
                out.append((x[0], y[0]))
            else:                       # the local end is named for its owner
                index = owners.get(a if x[1] else b)
                if index is None:
                    out.append((x[0], y[0]))
                elif index not in names:
                    out.append(self.of_flow(e))
                else:
                    out.append((names[index], y[0]) if x[1] else (x[0], names[index]))
        return out
