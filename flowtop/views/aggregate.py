"""The aggregate views: flows summed per process, remote host, country or
interface (flowtop's Processes tab, nftop's device table).

"Sent" and "received" are seen from this host: for a flow it opened, the
original direction is sent; for a flow to one of its servers, the reply
direction is; a forwarded flow counts its original direction as sent
toward the remote end.  Per interface, sent and received are what the
flow's directions transmit and receive there (``enrich.iface.crossings``:
nftop's device table, and what ``iface_totals`` sums).
"""

from collections import Counter
from operator import add, attrgetter

from ..enrich.bundle import _DNS_PORT as DNS_PORT     # Enrichment.proc's own queries
from ..netlink.ctnetlink import FIELDS
from ..runtime import gc_paused
from ..table import FreshFlow, TableFlow
from ..text import sanitize
from ..values import KEY_TITLES, TITLES, VIEWS  # noqa: F401  (importable here as before)
from .groups import FRESH, IDLE, MOVING, Group, _add_crossing_summed, add_idle_rows, entry
from .procgroups import by_flow, by_process, key_label, known_answers, proc_which
from .remotes import by_remote, country_of, inbound_of
_SRC, _DST, _RSRC = FIELDS.index("src"), FIELDS.index("dst"), FIELDS.index("reply_src")
_MARK, _KEY, _DPORT = FIELDS.index("mark"), FIELDS.index("key"), FIELDS.index("dport")


def _outbound(e, enrich):
    """Is the original direction "sent" from this host's point of view?"""
    return not (enrich.is_local(e.dst) and not enrich.is_local(e.src))


def keys_of(view, row, enrich, redact=None, by_name=False):
    """[(group key, label, outbound)] of one flow in ``view`` (two for iface);
    ``redact`` (a views.redact.Redactor) hides a remote host's label;
    ``by_name``: processes per program name rather than per PID."""
    e = row.entry
    if view == "process":
        p = enrich.proc(e)
        if p is None:
            return [(("?",), "unknown", _outbound(e, enrich))]
        pid = getattr(p, "pid", None)
        if pid is None:
            return [(("forwarded",), "forwarded", True)]
        name = sanitize(getattr(p, "name", "") or "?", 24)
        if by_name:
            return [(("name", name), name, _outbound(e, enrich))]
        return [(("pid", pid, name), "%s/%d" % (name, pid), _outbound(e, enrich))]
    if view == "host":
        remote = enrich.remote_of(e)
        name = enrich.host(remote)
        label = redact.label(remote, name) if redact is not None else name or remote or "-"
        return [((remote,), label, _outbound(e, enrich))]
    if view == "country":
        code, label = country_of(enrich.geo_of(enrich.remote_of(e)))
        return [((code,), label, _outbound(e, enrich))]
    if view == "iface":
        return [((name or "?",), name or "?", None) for name in _iface_names(e, enrich)]
    if view == "device":                      # enrich/devices.py: totals since start
        from ..enrich.devices import keys_of as device_keys
        return device_keys(enrich.devices, e)
    raise ValueError("not an aggregate view: %r" % view)


def _iface_crossings(e, enrich, crossings=None):
    """``crossings`` (enrich.iface's: imported by the caller once, not per flow)."""
    if enrich.ifaces is None:
        return [(None, "rx", "orig")]
    if crossings is None:
        from ..enrich.iface import crossings
    try:
        return crossings(enrich.ifaces.flow_ifaces(e))
    except (OSError, ValueError):
        return [(None, "rx", "orig")]


def _iface_names(e, enrich):
    names = []
    for name, _what, _which in _iface_crossings(e, enrich):
        if name not in names:
            names.append(name)
    return names


def aggregate(rows, view, enrich, redact=None, by_name=False, address=None):
    """Open rows summed into Groups for ``view`` (labels redacted by ``redact``;
    ``by_name``: see keys_of; ``address(addr)``: how an address may be shown,
    by default as ``redact`` shows it)."""
    if address is None and redact is not None:
        address = redact.address
    if view == "device":
        from ..enrich.devices import group_rows
        devices = getattr(enrich, "devices", None)
        return [] if devices is None else group_rows(rows, devices, Group)
    if view in ("process", "host", "country"):
        # no cycles among the groups made: the collector's passes over 250k of them
        # (the rows frozen) were 0.6 of 1.4 s
        with gc_paused():
            out, shared = None, view == "host"
            if _many_remotes(rows, enrich):
                if view == "process":
                    out = by_process(rows, enrich, by_name)
                else:
                    out, shared = by_remote(rows, view, enrich, redact)
            elif view == "process":
                out = by_flow(rows, enrich, by_name)
            if out is None:
                out = _by_distinct(rows, view, enrich, redact, by_name)
        if shared:
            _tell_apart(out, address or str)
        return out
    if view == "iface":
        return _by_iface(rows, enrich)
    groups = {}
    for r in rows:
        if r.closed:
            continue
        for key, label, outbound in keys_of(view, r, enrich, redact, by_name):
            g = groups.get(key)
            if g is None:
                g = groups[key] = Group(key, sanitize(label, 64))
            g.add(r, outbound)
    out = list(groups.values())
    if view == "host":
        _tell_apart(out, address or str)
    return out


def _many_remotes(rows, enrich, sample=512):
    """Are the remote ends of ``rows`` mostly distinct (over their first
    ``sample``)?  Then the views are summed a column at a time (250k distinct:
    Tab to Hosts ~1 s -> ~0.45 s); where they repeat, a pass a flow with
    each address asked once costs less (250k flows to 250 addresses: ~0.14
    s, against ~0.26 s in C passes)."""
    ents = [r if type(r) is TableFlow or type(r) is FreshFlow else r.entry for r in rows[:sample]]
    dst = [e[_DST] for e in ents]
    inbound = inbound_of(ents, dst, enrich)         # remote_of's, in C: no call a flow
    remotes = dst if inbound is None else [e[_SRC] if i else d
                                           for e, d, i in zip(ents, dst, inbound)]
    return len(set(remotes)) * 2 > len(ents) > 0


def _by_distinct(rows, view, enrich, redact, by_name):
    """``aggregate`` for the process, host and country views where remote
    addresses repeat (else ``remotes``, ``procgroups``): the locality, key
    and label of each address or process asked once; the idle
    rows stored bare (most of a big table) summed per group by C loops
    (``_add_summed``), not a call each (Tab at 100k: ~100 -> ~45 ms).
    ``keys_of`` stays the plain twin (test_aggregate holds them equal)."""
    groups = {}                 # group key -> [group, forwarded, idle sent, idle received]
    named = {}                  # which -> its group's entry
    local = {}                  # address -> is_local(address)
    is_local = enrich.is_local
    proc = enrich.proc
    by_proc = view == "process"
    held = {}                   # id(process answer) -> (it, its named entry)
    known = known_answers(enrich, len(rows)) if by_proc else None
    bare, fresh = TableFlow, FreshFlow
    for r in rows:
        idle = type(r) is bare  # idle, open, read by index: no property call
        if not idle and r.closed:
            continue
        e = r if idle or type(r) is fresh else r.entry      # (first seen: as idle, apart)
        src, dst = e[_SRC], e[_DST]
        inbound = local.get(dst)           # remote_of's and _outbound's test
        if inbound is None:
            inbound = local[dst] = is_local(dst)
        if inbound:
            ls = local.get(src)
            if ls is None:
                ls = local[src] = is_local(src)
            inbound = not ls
        if by_proc:
            hit = known(e[_KEY]) if known is not None else None
            p = None if hit is None else hit[0] if hit[0] is not None else hit[1]
            if p is None and (hit is None or e[_DPORT] == DNS_PORT):
                p = proc(e)             # not asked yet; or nobody's: flowtop's own query?
            if p is None:               # unknown (every flow without a process map)
                ent = named.get(None) or _entry(named, groups, view, None, enrich, redact,
                                                by_name)
            else:
                ent = held.get(id(p))   # a few processes answer for many flows
                if ent is None:         # (p held: its id is not reused meanwhile)
                    ent = held[id(p)] = (p, _entry(named, groups, view, proc_which(p), enrich,
                                                   redact, by_name))
                ent = ent[1]
        else:
            which = src if inbound else dst     # the remote end
            ent = named.get(which)
            if ent is None:
                ent = _entry(named, groups, view, which, enrich, redact, by_name)
        if idle:
            # outbound unless inbound (a forwarded flow's original direction is sent)
            ent[3 if inbound and not ent[1] else 2].append(r)
        elif type(r) is fresh:          # rates unknown: summed apart (groups._add_summed)
            ent[5 if inbound and not ent[1] else 4].append(r)
        else:
            ent[6 if ent[1] or not inbound else 7].append(r)     # moving: groups._add_summed
    return add_idle_rows(groups)


def _entry(named, groups, view, which, enrich, redact, by_name):
    """``named[which]``, made: [group, forwarded, idle sent, idle received], one a
    group (``groups``: key -> it) however many addresses fall in it: a country's
    250k addresses were 250k sums of one row each (1.7 s)."""
    ent = named.get(which)
    if ent is None:
        ent = named[which] = entry(groups, *_key_label(view, which, enrich, redact, by_name))
    return ent


def _key_label(view, which, enrich, redact, by_name):
    """(group key, label, forwarded) for ``_by_distinct``: ``keys_of``'s, for
    one process ((pid, name); None: unknown) or remote address."""
    if view == "process":
        return key_label(which, by_name)
    if view == "host":
        name = enrich.host(which)
        label = redact.label(which, name) if redact is not None else name or which or "-"
        return (which,), label, False
    code, label = country_of(enrich.geo_of(which))
    return (code,), label, False


def _by_iface(rows, enrich):
    """``aggregate`` for the interfaces view: each direction where it crosses
    an interface (nftop's device table).  A flow's crossings depend on its
    two ends and mark only, and many ends share one answer: each pair of
    ends is asked once, each answer's crossings made once, and the idle
    rows stored bare summed per answer a column at a time (Tab at 100k:
    1.2 s of route answers and a call per flow in the live view)."""
    ifaces = enrich.ifaces
    if ifaces is not None:
        from ..enrich.iface import crossings
    groups = {}
    answers = {}      # FlowIfaces -> [[(group, what, which, first)], idle, first seen, moving]
    ends = {}                   # (src, other end, mark) -> its answer's entry
    bare, fresh = TableFlow, FreshFlow
    for r in rows:
        idle = type(r) is bare  # idle, open, read by index: no property call
        if not idle and r.closed:
            continue
        e = r if idle or type(r) is fresh else r.entry      # (first seen: as idle, apart)
        if ifaces is None:
            k = None
        else:
            other = e[_RSRC]
            k = (e[_SRC], e[_DST] if other is None else other, e[_MARK])
        ent = ends.get(k)
        if ent is None:
            fi = None
            if ifaces is not None:
                try:
                    fi = ifaces.flow_ifaces(e)
                except (OSError, ValueError):
                    pass
            ent = answers.get(fi)
            if ent is None:
                ent = answers[fi] = [_crossing_parts(
                    [(None, "rx", "orig")] if fi is None else crossings(fi), groups), [], [], []]
            ends[k] = ent
        if idle:
            ent[1].append(r)
        elif type(r) is fresh:
            ent[2].append(r)
        else:
            ent[3].append(r)
    for parts, idle, fresh_rows, moving in answers.values():
        for rows, kind in ((moving, MOVING), (idle, IDLE), (fresh_rows, FRESH)):
            if rows:
                memo = {}
                for g, what, which, first in parts:
                    _add_crossing_summed(g, rows, what, which, first, kind, memo)
    return list(groups.values())


def _crossing_parts(parts, groups):
    """[(group, what, which, first)] of crossings ``parts`` (groups made in
    ``groups`` as their labels come); ``first``: the flow counts there."""
    out, seen = [], set()
    for name, what, which in parts:
        label = name or "?"
        g = groups.get((label,))
        if g is None:
            g = groups[(label,)] = Group((label,), sanitize(label, 64))
        out.append((g, what, which, label not in seen))
        seen.add(label)
    return out


def _tell_apart(groups, address):
    """Hosts that share a name (its IPv4 and IPv6 address; round-robin
    DNS) read as one host twice: the family tells a v4/v6 pair apart, the
    address (as ``address`` shows it) what is left."""
    def same(gs):
        # labels counted in C: 250k hosts of distinct labels took 0.8 s a dict of lists
        counts = Counter(map(attrgetter("label"), gs))
        if len(counts) == len(gs):
            return []
        return [g for g in gs if counts[g.label] > 1 and g.key[0] and g.label != g.key[0]]
    for g in same(groups):
        g.label = "%s (%s)" % (g.label, "ipv6" if ":" in g.key[0] else "ipv4")
    for g in same(groups):
        g.label = sanitize("%s %s" % (g.label, address(g.key[0])), 96)


def in_group(row, view, key, enrich):
    """Does ``row`` belong to the group ``key`` of ``view`` (Enter on a group)?"""
    by_name = view == "process" and key[0] == "name"
    return any(k == key for k, _l, _o in keys_of(view, row, enrich, by_name=by_name))


SORT_KEYS = {         # the plain twins of sort_groups' orders (tests hold them equal)
    "rate": lambda g: g.rate_tx + g.rate_rx,
    "bytes": lambda g: g.bytes_tx + g.bytes_rx,
    "packets": lambda g: g.pkts_tx + g.pkts_rx,
    "age": lambda g: g.flows,          # "age" has no meaning for a group: by flow count
}
_SUMMED = {"rate": ("rate_tx", "rate_rx"), "bytes": ("bytes_tx", "bytes_rx"),
           "packets": ("pkts_tx", "pkts_rx"), "age": ("flows", None)}


def sort_groups(groups, sort, reverse):
    """``groups`` sorted in place: by label, then (stable) by ``sort``'s
    value, largest first unless ``reverse``.  The keys are read in C (a
    key call a group was ~40 ms at 250k hosts)."""
    groups.sort(key=attrgetter("label"))
    fields = _SUMMED.get(sort)
    if fields is not None:
        tx, rx = fields
        keys = list(map(attrgetter(tx), groups))
        if rx is not None:
            keys = list(map(add, keys, map(attrgetter(rx), groups)))
        order = sorted(range(len(groups)), key=keys.__getitem__, reverse=not reverse)
        groups[:] = list(map(groups.__getitem__, order))
    elif reverse:
        groups.reverse()
    return groups


def record(g, view, now):
    """A group as a JSON/CSV record: totals null where no flow had the
    value (no counters; no rate in a single snapshot)."""
    (bt, br), (pt, pr), (rt, rr) = g.totals()
    return {"time": round(now, 3), "view": view, "key": g.label, "flows": g.flows,
            "bytes_sent": bt, "bytes_received": br,
            "packets_sent": pt, "packets_received": pr,
            "rate_sent": None if rt is None else round(rt, 3),
            "rate_received": None if rr is None else round(rr, 3),
            "flows_uncounted": g.uncounted,
            **({"mac": g.key[1] if g.key[0] == "mac" else None} if view == "device" else {})}


# flows_uncounted last: CSV readers by position keep their columns
RECORD_COLUMNS = ("time", "view", "key", "flows", "bytes_sent", "bytes_received",
                  "packets_sent", "packets_received", "rate_sent", "rate_received",
                  "flows_uncounted")


def record_columns(view):
    """The CSV header of ``view``'s records (devices add their MAC)."""
    return RECORD_COLUMNS + (("mac",) if view == "device" else ())
