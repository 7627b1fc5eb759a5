"""Which flows the live views show and in what order: the filters and
the sort over the table's rows, and the per-snapshot counts of the header.

``build`` is the whole pass (every row, each time); ``Selection`` keeps
its results while the rows and the filters are the same, so a key that
changes only the order sorts again and one that changes only the looks
selects nothing.
"""

import time
from itertools import chain
from operator import itemgetter

from ..model import proto_name
from ..netlink.ctnetlink import FIELDS, Interner
from ..netlink.uapi import IPPROTO_GRE
from ..table import TableFlow
from ..text import sanitize
from .counts import (  # noqa: F401 (importable here)
    _LOOP_PREFIXES, flows_text, header_counts, loopback_count, named, summary, uncounted)
from .state import GROUP_OF, GROUPS

_PROTO, _FAMILY = FIELDS.index("l4proto"), FIELDS.index("family")
_SRC, _DST = FIELDS.index("src"), FIELDS.index("dst")
_KEY = FIELDS.index("key")
_KEY_OF = itemgetter(_KEY)


def _port(e):
    """The destination port for sorting; GRE keys are not ports."""
    return 0 if e.dport is None or e.l4proto == IPPROTO_GRE else e.dport


def _rate_sum(row):
    a, b = row.rate_orig, row.rate_reply
    if not a and not b:
        return 0.0            # one shared object: most rows of a big table are idle
    return (a or 0.0) + (b or 0.0)


def _bytes_sum(row):
    e = row.entry
    a, b = e.bytes_orig, e.bytes_reply
    return (a or 0) + b if b else (a or 0)     # no new int for one-way flows


def _pkts_sum(row):
    e = row.entry
    a, b = e.packets_orig, e.packets_reply
    return (a or 0) + b if b else (a or 0)


# Sort keys allocate nothing per row where they can (a sort of 100k rows by
# tuples made 6-8 MB of them at once): keys over a few values are shared
# objects from a memo, and the destination sort is two stable passes.
_SHARED = Interner()


def _state_key(r):
    e = r.entry
    return _SHARED[(e.l4proto, e.state if e.state is not None else -1)]


def _proto_key(r):
    e = r.entry
    return _SHARED[(proto_name(e.l4proto), e.family)]


def _dst_key(r):
    e = r.entry
    return _SHARED[(e.family, e.dst or "")]


SORT_KEYS = {
    "state": _state_key,
    "rate": _rate_sum,
    "bytes": _bytes_sum,
    "packets": _pkts_sum,
    "age": lambda r: -r.start_wall,
    "proto": _proto_key,
    # (family, dst, port): by port, then (stable) by family and address
    "dst": (lambda r: _port(r.entry), _dst_key),
    "port": lambda r: _port(r.entry) * 256 + r.entry.l4proto,
}

def trim(rows):
    """Empty the memo keyed by flow values once it holds far more than a
    table of ``rows`` needs (2 per row): after a flood of 160k flows their
    ~60k surviving keys pinned ~30 MB of Python's arenas with the table empty."""
    if len(_SHARED) > 2 * rows + 4096:
        _SHARED.clear()


def build(rows, state, formatter):
    """What the current view shows: flows, or aggregate Groups, in order.
    A pass over every row at each call (``Selection`` keeps results)."""
    return ordered(chosen(rows, state, formatter), state)


class Selection:
    """``build`` that keeps its results for the rows of one snapshot: the
    rows past the protocol, family and loopback filters while those stay;
    the chosen rows while ``state.which()`` does (a longer '/' text filters
    what the shorter one chose); the order while the sort does too.  At 100k
    rows the first filters are ~30 ms, '/' ~50 us a row, a sort 10-60 ms;
    a cursor move or a change of looks needs none of them.  Given the
    snapshot's ``version`` and ``delta`` (collector.Snapshot), the first
    filters pass over the rows that changed only (250k rows: 60 ms a tick),
    after a full dump too (250k rows, 0.5 % moved: ~110 -> ~22 ms of CPU)."""

    def __init__(self):
        self._rows = self._base_of = self._base = None
        self._which = self._chosen = self._how = self._kept = None
        self._view = []
        self._map = self._version = None     # the base rows by key, of that table version
        self._hidden = None     # key -> record of the rows the first filters hide, of it too
        self._loop = None       # keys of the open loopback rows of self._rows (None: not counted)
        from .searchtext import SearchTexts     # the live view's alone
        self._texts = SearchTexts()
        self._warmed = False    # warm() ran since the last choice

    def build(self, rows, state, formatter, version=None, delta=None):
        if rows is not self._rows:
            follows = (delta is not None and self._base is not None and delta[0] == self._version
                       and self._version is not None and self._base_of == state.base())
            self._rows, self._which, self._version = rows, None, version
            if follows:
                self._follow(rows, delta[1], delta[2], state)
            else:
                self._base_of = self._map = self._hidden = self._loop = None
            trim(len(rows))
        which = state.which()
        if which == self._kept:     # the old one: a new tuple a snapshot pins a flood's holes
            which = self._kept
        else:
            self._kept = which
        if which != self._which:
            self._chosen = self._choose(rows, state, formatter, which)
            self._which, self._how = which, None
        how = (state.view, state.sort, state.reverse)
        if how != self._how:
            self._how = how
            self._view = ordered(list(self._chosen), state)
        return self._view

    def loopback_count(self, rows):
        """The open flows the loopback filter alone hides, for the rows of
        the last ``build``: collected by its base pass, over every row or
        over those a snapshot's delta changed (an empty view on a loopback
        flood counted 160k rows a snapshot again)."""
        if rows is not self._rows or self._loop is None:
            return loopback_count(rows)
        return len(self._loop)

    def _follow(self, rows, dropped, changed, state):
        """The base rows of ``rows``, from the rows ``changed`` (key -> row, None: gone) and
        ``dropped`` (keys) since the last (a row passes by its key alone).  Few hidden: ``rows``
        less those, by their records (a Row read idle becomes its record, unlogged); many
        (a loopback flood): the last base rows by key, followed (~20 MiB at 250k rows)."""
        hidden, loop = self._hidden, self._loop
        if loop is not None:
            loop.difference_update(dropped)
            loop.difference_update(changed)
        for k in chain(dropped, changed) if hidden is not None else ():
            hidden.pop(k, None)
        more = []
        passing = base([r for r in changed.values() if r is not None], state, loop, more)
        if hidden is not None and (len(hidden) + len(more)) * 4 <= len(rows):
            hidden.update(zip(map(_KEY_OF, more), more))
            ids, bare = set(map(id, hidden.values())), TableFlow
            self._base = [r for r in rows if id(r if type(r) is bare else r.entry)
                          not in ids] if ids else rows
            return
        self._hidden = None             # many: the map until the next whole pass (_choose)
        if self._map is None:
            bare = TableFlow            # its key by index: no property call (160k rows: 30 ms)
            self._map = {(r[_KEY] if type(r) is bare else r.key): r for r in self._base}
        kept, passing = self._map, set(map(id, passing))
        for k in dropped:
            kept.pop(k, None)
        for k, r in changed.items():
            if r is not None and id(r) in passing:
                kept[k] = r             # in its place; a new key last, as in the table
            else:
                kept.pop(k, None)
        self._base = list(kept.values())

    def _choose(self, rows, state, formatter, which):
        of = state.base()
        if of != self._base_of:
            self._loop = None if state.loopback else set()
            hidden = []
            self._base_of, self._base, self._map = of, base(rows, state, self._loop, hidden), None
            self._hidden = (dict(zip(map(_KEY_OF, hidden), hidden))   # (None: many, a map)
                            if len(hidden) * 4 <= len(rows) else None)
        narrower = self._which is not None and _narrows(self._which, which)
        search = None
        if state.filter.strip():
            search = self._texts.reader(formatter, state, len(rows))
        elif not self._warmed:
            self._texts.clear()
        self._warmed = False
        return chosen(self._chosen if narrower else self._base, state, formatter, based=True,
                      search=search)

    def warm(self, state, formatter, budget, clock=time.perf_counter):
        """While the '/' prompt waits for a key: make the texts of the last
        choice's rows for ``budget`` seconds of ``clock`` (100k flows take ~0.4 s, the
        first character's wait); True while some are left.  Once per prompt:
        warming again at each TTL took 20 % of a core at 100k idle flows."""
        self._warmed = True
        rows = self._base
        if rows is None or state.view != "flows" or self._texts.warm_done:
            return False
        text = self._texts.reader(formatter, state, len(self._rows))
        start = self._texts.warmed(rows)
        stop = clock() + budget
        for i in range(start, len(rows), 512):
            for r in rows[i:i + 512]:
                text(r)
            if clock() > stop:
                return self._texts.warmed(rows, i + 512) < len(rows)
        self._texts.warmed(rows, len(rows))
        self._texts.warm_done = True
        return False


def _narrows(old, new):
    """Whether the state ``new`` (``which()``) keeps a subset of what ``old``
    kept: the same but for a flows view's '/' text, which got longer."""
    old, new = dict(old), dict(new)
    before, after = _plain(old.pop("filter")), _plain(new.pop("filter"))
    # expressions do not narrow by growing ("a" -> "a or b"): only plain words
    return (old == new and new["view"] == "flows" and before is not None
            and after is not None and before in after)


def _plain(text):
    """The lower-case substring of a '/' text of plain words (or ""), else
    None (an expression, or a mistake)."""
    if not text.strip():        # no filter: no parser to import (filterexpr: 1.3 s on mipsel)
        return ""
    from .filterfields import compiled
    flt, err = compiled(text)
    if err is not None:
        return None
    return "" if flt is None else flt.plain


def chosen(rows, state, formatter, based=False, search=None):
    """The flows (or Groups) of the current view, in the table's order;
    ``based``: ``rows`` have passed ``base`` already; ``search``: the '/'
    text of a row, if not ``formatter.search_text``."""
    group = state.group
    if group is not None and group[0] == "host":    # x/X may have come after Enter
        remote = group[1][0]
        state.group = group[:2] + (sanitize(formatter.redact.label(
            remote, formatter.enrich.host(remote)), 64),)
    keep = _rare_filter(state, formatter, search)
    flows = rows if based else base(rows, state)
    if keep is not None:
        flows = [r for r in flows if keep(r)]
    if state.view == "flows":
        return flows
    from . import aggregate as agg
    groups = agg.aggregate(flows, state.view, formatter.enrich, formatter.redact, state.by_name,
                           formatter.address)
    needle = _plain(state.filter)
    if needle:
        groups = [g for g in groups if needle in g.label.lower()]
    history = formatter.enrich.history if state.has_history else None   # (None: not yet)
    if history is not None:                # per-group rate history, once per snapshot
        history.feed_groups(state.view, groups, state.wall)
    return groups


def ordered(items, state):
    """``items`` (from ``chosen``) sorted in place as ``state`` says."""
    if state.view == "flows":
        return sort_rows(items, state)
    from . import aggregate as agg
    return agg.sort_groups(items, state.sort, state.reverse)


def select(rows, state, formatter, sort=True):
    """The flows to show, filtered (and sorted) by ``state``."""
    out = base(rows, state)
    keep = _rare_filter(state, formatter)
    if keep is not None:
        out = [r for r in out if keep(r)]
    return sort_rows(out, state) if sort else out


def base(rows, state, hidden_loop=None, hidden_rows=None):
    """The rows past the filters every view has on: protocols, families,
    loopback (a new list).  ``hidden_loop``: a set that gets the keys of the
    open rows the loopback filter alone hid (what L would show); ``hidden_rows``
    a list that gets each hidden row's record."""
    hidden = set()
    for k in state.hidden_groups:
        hidden |= GROUPS[k]
    fams = state.hidden_families
    other = state.show_other
    loop = state.loopback
    out = []
    # This loop runs over every row each frame (100k rows: ~2x faster so):
    # fields by index, the protocol test memoised, the loopback test
    # inlined, and the rarer filters left to a second pass over what is left.
    shown = {}
    pre = _LOOP_PREFIXES
    bare = TableFlow                    # its own entry: no property call
    for r in rows:
        e = r if type(r) is bare else r.entry
        p = e[_PROTO]
        ok = shown.get(p)
        if ok is None:
            ok = shown[p] = not (p in hidden or (not other and p not in GROUP_OF))
        if not ok or e[_FAMILY] in fams:
            if hidden_rows is not None:
                hidden_rows.append(e)
            continue
        if not loop:                    # unrolled: a loop over (src, dst) was ~25 % of the pass
            a, b = e[_SRC], e[_DST]
            if (a and (a.startswith(pre) or a == "::1")) or (b and (b.startswith(pre)
                                                                   or b == "::1")):
                if hidden_loop is not None and not r.closed:
                    hidden_loop.add(e[_KEY])
                if hidden_rows is not None:
                    hidden_rows.append(e)
                continue
        out.append(r)
    return out


def _rare_filter(state, formatter, search=None):
    """keep(row) for the filters most views do not have on (activity,
    threshold, group, interfaces, text), or None when none is."""
    active, threshold, group = state.active_only, state.threshold, state.group
    want_in, want_out = state.in_iface, state.out_iface
    search = search or formatter.search_text
    needle, expr, fields = _filter_of(state, formatter, search)
    if state.view != "flows":
        needle = ""                       # plain words match the groups' names instead
    if not (active or threshold or group is not None or want_in or want_out or needle
            or expr is not None):
        return None
    if not (active or threshold or group is not None or want_in or want_out or expr is not None):
        return lambda r: needle in search(r)         # '/' words alone: a key while typing them
    enrich = formatter.enrich
    if group is not None:
        from .aggregate import in_group
    if want_in or want_out:
        from ..enrich.iface import iface_match

    def keep(r):
        if active and not _rate_sum(r) > 0:
            return False
        if threshold and _rate_sum(r) < threshold:
            return False
        if group is not None and not in_group(r, group[0], group[1], enrich):
            return False
        if want_in or want_out:
            iin, iout = enrich.ifaces_of(r.entry)
            if (want_in and not iface_match(want_in, iin or "")) or \
                    (want_out and not iface_match(want_out, iout or "")):
                return False
        if expr is not None and not expr(fields.of(r)):
            return False
        return not needle or needle in search(r)
    return keep


def _filter_of(state, formatter, search):
    """(substring, expression, accessor) of the '/' filter: a plain text
    is the substring; a mistake filters nothing (the prompt shows it)."""
    if not state.filter.strip():     # as compiled() says, without importing the parser
        return "", None, None
    from .filterfields import RowFields, compiled
    flt, _err = compiled(state.filter)
    if flt is None or flt.plain is not None:
        return (flt.plain if flt is not None else ""), None, None
    return "", flt, RowFields(formatter.enrich, state.wall, search,
                              getattr(formatter.enrich, "device_of", None))


def sort_rows(out, state):
    """``out`` sorted in place by ``state.sort`` and ``state.reverse``."""
    descending = not state.ascending()
    # Sorting is stable and the table keeps its rows in the same order from
    # tick to tick (first listed first: updated in place): ties keep their
    # places without a tie-break sort on the key (a third of a rebuild at
    # 100k rows).
    keys = SORT_KEYS.get(state.sort, _rate_sum)
    if keys is _rate_sum:
        return _by_rate(out, descending)
    from .order import sort_in_place       # the same order, ~3x faster at 250k rows
    if sort_in_place(out, state.sort, descending):
        return out
    for key in (keys if isinstance(keys, tuple) else (keys,)):
        out.sort(key=key, reverse=descending)
    return out


def _by_rate(out, descending):
    """``out`` sorted in place by rate, as a stable sort by ``_rate_sum``
    would: the idle rows (rate 0, None or unknown: the table's rates are
    never negative) keep their order after (or before) the moving ones, and
    only those are sorted: most of a big table is idle (a key call per
    row was ~40 ms a snapshot at 250k)."""
    # a bare row (TableFlow) is idle: told by its type, not two class attribute
    # reads (a flood's 160k rows: 28 -> 15 ms a snapshot)
    bare = TableFlow
    moving = [r for r in out if type(r) is not bare and (r.rate_orig or r.rate_reply)]
    if len(moving) == len(out):
        out.sort(key=_rate_sum, reverse=descending)
        return out
    idle = [r for r in out if type(r) is bare or not (r.rate_orig or r.rate_reply)]
    moving.sort(key=_rate_sum, reverse=descending)
    out[:] = moving + idle if descending else idle + moving
    return out
