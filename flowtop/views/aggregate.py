"""The aggregate views: flows summed per process, remote host, country or
interface (flowtop's Processes tab, nftop's device table).

"Sent" and "received" are seen from this host: for a flow it opened, the
original direction is sent; for a flow to one of its servers, the reply
direction is; a forwarded flow counts its original direction as sent
toward the remote end.  Per interface, a flow counts twice: what arrives
on its input interface and what leaves through its output one.
"""

from ..text import sanitize

VIEWS = ("flows", "process", "host", "country", "iface")
TITLES = {"flows": "Flows", "process": "Processes", "host": "Hosts", "country": "Countries",
          "iface": "Interfaces"}
KEY_TITLES = {"process": "PROCESS", "host": "REMOTE HOST", "country": "COUNTRY",
              "iface": "INTERFACE"}


class Group:
    """One aggregate row."""

    __slots__ = ("key", "label", "flows", "bytes_tx", "bytes_rx", "pkts_tx", "pkts_rx",
                 "rate_tx", "rate_rx", "closed", "is_new")

    def __init__(self, key, label):
        self.key, self.label = key, label
        self.flows = 0
        self.bytes_tx = self.bytes_rx = self.pkts_tx = self.pkts_rx = 0
        self.rate_tx = self.rate_rx = 0.0
        self.closed = 0
        self.is_new = False

    def add(self, row, outbound):
        """Count ``row``; ``outbound``: its original direction is "sent"."""
        e = row.entry
        bo, br = e.bytes_orig or 0, e.bytes_reply or 0
        po, pr = e.packets_orig or 0, e.packets_reply or 0
        ro, rr = row.rate_orig or 0.0, row.rate_reply or 0.0
        if not outbound:
            bo, br, po, pr, ro, rr = br, bo, pr, po, rr, ro
        self.flows += 1
        self.bytes_tx += bo
        self.bytes_rx += br
        self.pkts_tx += po
        self.pkts_rx += pr
        self.rate_tx += ro
        self.rate_rx += rr


def _outbound(e, enrich):
    """Is the original direction "sent" from this host's point of view?"""
    return not (enrich.is_local(e.dst) and not enrich.is_local(e.src))


def keys_of(view, row, enrich):
    """[(group key, label, outbound)] of one flow in ``view`` (two for iface)."""
    e = row.entry
    if view == "process":
        p = enrich.proc(e)
        if p is None:
            return [(("?",), "unknown", _outbound(e, enrich))]
        pid = getattr(p, "pid", None)
        if pid is None:
            return [(("forwarded",), "forwarded", True)]
        name = sanitize(getattr(p, "name", "") or "?", 24)
        return [(("pid", pid, name), "%s/%d" % (name, pid), _outbound(e, enrich))]
    if view == "host":
        remote = enrich.remote_of(e)
        name = enrich.host(remote)
        return [((remote,), name or remote or "-", _outbound(e, enrich))]
    if view == "country":
        remote = enrich.remote_of(e)
        g = enrich.geo_of(remote)
        code = getattr(g, "country", None) or "-"
        cname = getattr(g, "country_name", None) or ("unknown" if code == "-" else "")
        return [((code,), ("%s %s" % (code, cname)).strip(), _outbound(e, enrich))]
    if view == "iface":
        iin, iout = enrich.ifaces_of(e)
        # arriving on the input interface: the original direction is received there
        return [((iin or "?",), iin or "?", False), ((iout or "?",), iout or "?", True)]
    raise ValueError("not an aggregate view: %r" % view)


def aggregate(rows, view, enrich):
    """Open rows summed into Groups for ``view``."""
    groups = {}
    for r in rows:
        if r.closed:
            continue
        for key, label, outbound in keys_of(view, r, enrich):
            g = groups.get(key)
            if g is None:
                g = groups[key] = Group(key, sanitize(label, 64))
            g.add(r, outbound)
    return list(groups.values())


def in_group(row, view, key, enrich):
    """Does ``row`` belong to the group ``key`` of ``view`` (Enter on a group)?"""
    return any(k == key for k, _l, _o in keys_of(view, row, enrich))


SORT_KEYS = {
    "rate": lambda g: g.rate_tx + g.rate_rx,
    "bytes": lambda g: g.bytes_tx + g.bytes_rx,
    "packets": lambda g: g.pkts_tx + g.pkts_rx,
    "age": lambda g: g.flows,          # "age" has no meaning for a group: by flow count
}


def sort_groups(groups, sort, reverse):
    key = SORT_KEYS.get(sort)
    groups.sort(key=lambda g: g.label)
    if key is not None:
        groups.sort(key=key, reverse=not reverse)
    elif reverse:
        groups.reverse()
    return groups


def record(g, view, now):
    """A group as a JSON/CSV record."""
    return {"time": round(now, 3), "view": view, "key": g.label, "flows": g.flows,
            "bytes_sent": g.bytes_tx, "bytes_received": g.bytes_rx,
            "packets_sent": g.pkts_tx, "packets_received": g.pkts_rx,
            "rate_sent": round(g.rate_tx, 3), "rate_received": round(g.rate_rx, 3)}


RECORD_COLUMNS = ("time", "view", "key", "flows", "bytes_sent", "bytes_received",
                  "packets_sent", "packets_received", "rate_sent", "rate_received")
