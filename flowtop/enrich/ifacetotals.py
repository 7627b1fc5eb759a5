"""What is done with each flow's in and out interface once known: the
nftop/iptables name patterns (``vlan+``), the --in-iface/--out-iface
filter, the bytes and packets summed per interface, and the (src, reply
end, mark) of a batch's flows that ``Interfaces.of_flow`` answers by.  Pure; the route
lookups that find the interfaces are in ``iface.py``.
"""

from ..netlink.ctnetlink import FIELDS
from ..tuples import named

_ENDS = tuple(FIELDS.index(n) for n in ("src", "dst", "reply_src", "mark"))


FlowIfaces = named("FlowIfaces", "in_iface out_iface src_local dst_local")
FlowIfaces.__doc__ = """``in_iface``/``out_iface`` names (None when unknown) and whether
the flow's originator (``src``) and its final destination (``reply_src``)
are this host."""

def iface_match(pattern, name):
    """nftop/iptables interface matching: ``vlan+`` matches every name that
    starts with ``vlan`` (vlan, vlan0, vlan10); ``+`` alone matches any
    interface; anything else must be equal.  A missing name never matches."""
    if name is None or pattern is None:
        return False
    if pattern.endswith("+"):
        return name.startswith(pattern[:-1])
    return name == pattern


def unmatched(patterns, names):
    """The ``patterns`` (--in-iface/--out-iface values) that match none of
    ``names``: a typo shows no flows and no error otherwise."""
    return [p for p in patterns if p and not any(iface_match(p, n) for n in names)]


def iface_totals(flows, interfaces):
    """Bytes and packets per interface, summed from the flows' counters.

    ``interfaces``: an ``Interfaces`` (or anything with ``flow_ifaces``), or
    a callable ``flow -> (in_name, out_name)`` (every end then counts as
    remote, as on a router).  Returns ``{name: {"rx_bytes", "rx_packets",
    "tx_bytes", "tx_packets"}}``; name None collects what went through an
    interface that is not known.

    Per flow, the original direction (``bytes_orig``/``packets_orig``) is
    received on the in interface and transmitted on the out interface; the
    reply direction (``*_reply``) is received on out and transmitted on in.
    A side that is this host neither receives from nor transmits to the wire:
    a flow this host originated adds no rx on its in interface for the
    original direction and no tx there for the reply, and likewise for a
    local destination on the out interface.  A flow with both ends local
    crosses the loopback once each way: rx and tx on it for both directions
    (as lo's own counters count).  Flows without counters (accounting off)
    are skipped.  Conntrack counts layer-3 bytes, so these stay below the
    interface's own (layer-2, all traffic) counters.
    """
    flow_ifaces = getattr(interfaces, "flow_ifaces", None)
    totals = {}
    for f in flows:
        if f.bytes_orig is None or f.bytes_reply is None:
            continue
        if flow_ifaces is not None:
            fi = flow_ifaces(f)
        else:
            fi = FlowIfaces(*interfaces(f), False, False)
        for name, what, which in crossings(fi):
            t = totals.get(name)
            if t is None:
                t = totals[name] = {"rx_bytes": 0, "rx_packets": 0, "tx_bytes": 0,
                                    "tx_packets": 0}
            if which == "orig":
                nbytes, npackets = f.bytes_orig, f.packets_orig or 0
            else:
                nbytes, npackets = f.bytes_reply, f.packets_reply or 0
            t[what + "_bytes"] += nbytes
            t[what + "_packets"] += npackets
    return totals


def iface_filter(in_pattern, out_pattern, of_flow):
    """A predicate over flows for --in-iface/--out-iface (None when neither
    is given); ``of_flow(entry) -> (in, out)``."""
    if not in_pattern and not out_pattern:
        return None

    def keep(entry):
        iin, iout = of_flow(entry)
        return ((not in_pattern or iface_match(in_pattern, iin or ""))
                and (not out_pattern or iface_match(out_pattern, iout or "")))
    return keep


def crossings(fi):
    """Where a flow's two directions cross interfaces: [(name, "rx"|"tx",
    "orig"|"reply")] for FlowIfaces ``fi`` (see ``iface_totals``)."""
    in_if, out_if, a_local, b_local = fi
    if a_local and b_local:       # once each way through the loopback
        return [(in_if, "tx", "orig"), (in_if, "rx", "orig"),
                (out_if, "tx", "reply"), (out_if, "rx", "reply")]
    parts = []
    if not a_local:
        parts += [(in_if, "rx", "orig"), (in_if, "tx", "reply")]    # arrives on in; replies leave
    if not b_local:
        parts += [(out_if, "tx", "orig"), (out_if, "rx", "reply")]  # leaves through out
    return parts


class Columns(list):
    """A batch's columns (``list(zip(*flows))``) that may carry their
    ``ends``: (``ends_keys``, {key: its first flow}), made once for the
    route prefetch and read again by the writer (~20 ms at 100k flows)."""

    __slots__ = ("ends",)

    def __init__(self, columns=()):
        super().__init__(columns)
        self.ends = None


def ends_of(fields, entries):
    """(``ends_keys(fields)``, {each key: its first flow of ``entries``}),
    kept on ``fields`` when it is a Columns."""
    ends = getattr(fields, "ends", None)
    if ends is None:
        keys = ends_keys(fields)
        ends = (keys, dict(zip(keys, entries)))
        if isinstance(fields, Columns):
            fields.ends = ends
    return ends


def ends_keys(fields):
    """(src, reply end, mark) of each flow of a batch given as columns
    (``zip(*flows)``): what ``Interfaces.of_flow``'s answer follows (its
    ``by_ends``); the reply end is reply_src, else dst."""
    src, dst, rsrc, mark = (fields[i] for i in _ENDS)
    if None in rsrc:
        rsrc = [r if r is not None else d for r, d in zip(rsrc, dst)]
    return list(zip(src, rsrc, mark))


def answers_by_ends(ifaces, fields, entries):
    """(each flow's ends key, {ends key: (in, out)}) of a batch given also
    as columns: asked once per distinct (src, reply end, mark), by
    ``of_ends`` where ``ifaces`` has it (see ``Interfaces.by_ends``)."""
    keys, distinct = ends_of(fields, entries)
    of_ends = getattr(ifaces, "of_ends", None)
    if of_ends is None:
        return keys, {k: ifaces.of_flow(e) for k, e in distinct.items()}
    return keys, dict(zip(distinct, of_ends(list(distinct), list(distinct.values()))))
