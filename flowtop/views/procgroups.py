"""The Processes view over a big table: the flows on ports where no socket
is (most of a router's, many of a server's) answered from their ends'
locality in C passes, as ``ProcessMap.lookup_both`` answers them, and
kept nowhere; only the flows a socket may match are asked one by one;
the sums a column at a time (``views.remotes``).  A first look at 250k
flows was ~0.7 s, half of it a ``lookup_both`` a flow."""

from itertools import compress, repeat
from operator import and_, eq, itemgetter, or_, truth

from ..enrich.bundle import _DNS_PORT as DNS_PORT     # Enrichment.proc's own queries
from ..enrich.sockets import asked_of
from ..model import ICMP_PROTOS
from ..netlink.ctnetlink import FIELDS
from ..netlink.uapi import AF_INET, AF_INET6
from ..text import sanitize
from ..table import FreshFlow, TableFlow
from .groups import add_idle_rows, entry
from .remotes import Sums, inbound_of, open_flows

_COLUMNS = [FIELDS.index(n) for n in ("family", "l4proto", "src", "dst", "sport", "dport",
                                      "reply_src", "reply_sport", "key")]
_FAMILY, _PROTO, _SRC, _DST, _SPORT, _DPORT, _RSRC, _RSPORT, _KEY = _COLUMNS
_IP = frozenset((AF_INET, AF_INET6))
_NONE = frozenset()


def by_process(rows, enrich, by_name):
    """``aggregate``'s Groups of the process view (``by_name``: see
    ``keys_of``), or None when the process provider does not tell which
    ports have a socket (the caller asks each flow)."""
    process = enrich.process
    ports = getattr(process, "socket_ports", None)
    remembered = getattr(process, "remembered", None)
    if process is not None and (ports is None or remembered is None):
        return None
    idle, live, ents = open_flows(rows)
    if not ents:
        return []
    if process is None:                 # every flow's process unknown (Enrichment.proc)
        inbound = inbound_of(ents, list(map(itemgetter(_DST), ents)), enrich)
        return [Sums(ents, len(idle), live, inbound).one(("?",), "unknown")]
    n = len(ents)
    need = [i for i in _COLUMNS if (i != _KEY or remembered) and (i != _DPORT or enrich.dns)]
    fields = {i: list(map(itemgetter(i), ents)) for i in need}    # only what is read
    asked = asked_of(ports, fields, n)
    if remembered:                      # its process kept from a socket since closed
        asked.update(compress(range(n), map(remembered.__contains__, fields[_KEY])))
    if enrich.dns is not None and DNS_PORT in fields[_DPORT]:
        # nobody's, or a query of flowtop's own reverse DNS (Enrichment.proc)
        asked.update(compress(range(n), map(eq, fields[_DPORT], repeat(DNS_PORT))))
    # the others: nobody's (True: group 1) when an end is this host's, else forwarded (0)
    which = list(map(or_, process.locals_of(fields[_SRC]), process.locals_of(fields[_RSRC])))
    keys, labels = [("forwarded",), ("?",)], ["forwarded", "unknown"]
    _ask(ents, sorted(asked), which, keys, labels, enrich, by_name)
    inbound = inbound_of(ents, fields[_DST], enrich)
    if inbound is not None:             # a forwarded flow's original direction is sent
        inbound = list(map(and_, inbound, map(truth, which)))     # which: 0 forwarded
    groups = Sums(ents, len(idle), live, inbound).summed(keys, labels, which, bulk=2)
    return [g for g in groups if g.flows]


def by_flow(rows, enrich, by_name):
    """``aggregate``'s Groups of the process view in one pass a flow (where remote ends
    repeat), or None (see ``by_process``).  A flow on ports no socket has: its group from
    its ends' locality, as ``lookup_both`` answers, no answer kept; the others read the
    answer kept, else ask (250k: ~0.6-0.9 s of ``lookup_both`` -> ~0.25 s, bench/README)."""
    process = enrich.process
    of_proto = _socket_ports(process)
    if of_proto is None:
        return None
    memo, is_local = process.remembered, process.is_local
    here = process.local.union(("::1",))
    dns = DNS_PORT if enrich.dns is not None else -1   # flowtop's own queries asked
    groups, held, mine, local = {}, {}, {}, {}      # mine: process.is_local; local: enrich's
    known, ask = _asker(enrich, groups, held, by_name)
    unknown, forwarded, bare, fresh = None, None, TableFlow, FreshFlow
    for r in rows:
        idle = type(r) is bare          # idle, open, read by index: no property call
        if not idle and r.closed:
            continue
        e = r if idle or type(r) is fresh else r.entry      # (first seen: as idle, apart)
        src, back, bport = e[_SRC], e[_RSRC], e[_RSPORT]
        ports = of_proto.get(e[_PROTO], _NONE)          # None: ICMP, raw sockets' protocols
        if (ports is None or bport is None or back is None or e[_SPORT] in ports
                or bport in ports or (memo and e[_KEY] in memo)):
            hit = known(e[_KEY])
            p = None if hit is None else hit[0] if hit[0] is not None else hit[1]
            ent = held.get(id(p)) if p is not None or (
                hit is not None and e[_DPORT] != DNS_PORT) else None
            ent = ask(e, hit, p) if ent is None else ent[1]
        else:                           # no socket can match: its ends' locality tells
            ours = mine.get(back)
            if ours is None:
                ours = mine[back] = is_local(back)
            if not ours:                # (ProcessMap.is_local inlined: 250k distinct sources)
                ours = src in here or (src is not None and src.startswith("127.")) \
                    or e[_FAMILY] not in _IP            # not IP: nobody's, not forwarded
            if not ours:
                ent = forwarded = forwarded or entry(groups, *key_label((None, None), by_name))
            elif e[_DPORT] == dns:
                ent = ask(e, None, None)
            else:
                ent = unknown = unknown or entry(groups, *key_label(None, by_name))
        if ent[1]:                      # forwarded: its original direction is sent
            inbound = False
        else:                           # received: to this host, not from it
            inbound = local.get(e[_DST])
            if inbound is None:
                inbound = local[e[_DST]] = enrich.is_local(e[_DST])
            if inbound:
                ls = local.get(src)
                if ls is None:
                    ls = local[src] = enrich.is_local(src)
                inbound = not ls
        if idle:
            ent[3 if inbound else 2].append(r)
        elif type(r) is fresh:          # rates unknown: summed apart (groups._add_summed)
            ent[5 if inbound else 4].append(r)
        else:
            ent[7 if inbound else 6].append(r)             # moving: groups._add_summed
    return add_idle_rows(groups)


def _socket_ports(process):
    """protocol -> the ports where it has a socket (None: its flows are all
    asked: ICMP, a raw socket's protocol), or None when ``process`` does not
    tell them."""
    ports = getattr(process, "socket_ports", None)
    if ports is None or getattr(process, "remembered", None) is None \
            or getattr(process, "local", None) is None:
        return None
    of_proto = {}
    for proto, port in ports:
        of_proto.setdefault(proto, set()).add(port)
    for proto in set(ICMP_PROTOS).union(p for p, port in ports if port is None):
        of_proto[proto] = None
    return of_proto


def _asker(enrich, groups, held, by_name):
    """(``known``: the answers kept, by flow key; ``ask(e, hit, p)``: the
    ``entry`` of flow ``e`` whose kept answer is ``hit`` (None: none),
    process ``p`` in it: its group made, else ``Enrichment.proc`` asked)."""
    known = known_answers(enrich, 0) or {}.get
    proc = enrich.proc

    def ask(e, hit, p):
        if p is None and (hit is None or e[_DPORT] == DNS_PORT):
            p = proc(e)                 # not asked yet; or nobody's: flowtop's own query?
        ent = held.get(id(p))           # a few processes answer for many flows
        if ent is None:                 # (p held: its id is not reused meanwhile)
            ent = held[id(p)] = (p, entry(groups, *key_label(proc_which(p), by_name)))
        return ent[1]
    return known, ask


def _ask(ents, asked, which, keys, labels, enrich, by_name):
    """``which[i]``, the group index of each flow ``asked`` (ascending), from
    its process answer: the answers kept across ticks, else
    ``Enrichment.proc``; new groups appended to ``keys`` and ``labels``."""
    known = known_answers(enrich, len(asked))
    proc = enrich.proc
    index = {k: i for i, k in enumerate(keys)}
    held = {}                           # id(process answer) -> (it, its group's index)
    for i in asked:
        e = ents[i]
        hit = known(e[_KEY]) if known is not None else None
        p = None if hit is None else hit[0] if hit[0] is not None else hit[1]
        if p is None and (hit is None or e[_DPORT] == DNS_PORT):
            p = proc(e)                 # not asked yet; or nobody's: flowtop's own query?
        if p is None:
            which[i] = 1
            continue
        ent = held.get(id(p))           # a few processes answer for many flows
        if ent is None:                 # (p held: its id is not reused meanwhile)
            key, label, _forwarded = key_label(proc_which(p), by_name)
            g = index.get(key)
            if g is None:
                g = index[key] = len(keys)
                keys.append(key)
                labels.append(sanitize(label, 64))
            ent = held[id(p)] = (p, g)
        which[i] = ent[1]


def known_answers(enrich, n):
    """The process map's answers kept across ticks, as a dict's ``get``
    (flow key -> (orig, reply)), or None: one dict read a flow instead of
    ``Enrichment.proc``'s calls (Tab to Processes at 100k: ~130 ms); None
    too while it holds fewer than half of ``n`` flows (a first look: the
    reads would miss)."""
    known = getattr(getattr(enrich, "process", None), "answers", None)
    return known.get if isinstance(known, dict) and len(known) >= n // 2 else None


def proc_which(p):
    """(pid, name) of a process answer, (None, None) forwarded, None unknown."""
    if p is None:
        return None
    pid = getattr(p, "pid", None)
    return (pid, getattr(p, "name", "") if pid is not None else None)


def key_label(which, by_name):
    """(group key, label, forwarded) of one process ((pid, name); None:
    unknown): ``keys_of``'s."""
    if which is None:
        return ("?",), "unknown", False
    pid = which[0]
    if pid is None:
        return ("forwarded",), "forwarded", True
    name = sanitize(which[1] or "?", 24)
    if by_name:
        return ("name", name), name, False
    return ("pid", pid, name), "%s/%d" % (name, pid), False
