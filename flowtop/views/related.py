"""Helped and RELATED flows in the details pane: the conntrack helper
(ftp, sip, ...), the labels, the master a RELATED flow was expected by, and
under a master the flows it brought (CTA_HELP, CTA_LABELS, CTA_TUPLE_MASTER;
``CtEntry.related``)."""

from ..model import proto_name


def master_tuple(entry):
    """(l4proto, src, dst, sport, dport) of a flow's own original direction."""
    return (entry.l4proto, entry.src, entry.dst, entry.sport, entry.dport)


def master_of(related):
    """The master's original tuple named by a Related, or None."""
    if related is None or related.master_src is None:
        return None
    return (related.master_l4proto, related.master_src, related.master_dst,
            related.master_sport, related.master_dport)


def detail_lines(fmt, entry):
    """(label, value) lines of a flow's helper, labels and master."""
    r = entry.related
    if r is None:
        return []
    lines = []
    if r.helper is not None:
        lines.append(("helper", r.helper))
    if r.labels is not None:
        lines.append(("labels", " ".join(str(b) for b in r.labels) or "-"))
    m = master_of(r)
    if m is not None:
        lines.append(("master", "%s %s -> %s" % (
            proto_name(m[0]) if m[0] is not None else "?",
            fmt.endpoint(entry.family, m[1], m[3]), fmt.endpoint(entry.family, m[2], m[4]))))
    return lines


def children(entry, rows):
    """The rows expected by ``entry`` (their master is its original tuple).
    Only a helped flow can be a master: others cost no scan."""
    r = entry.related
    if r is None or r.helper is None:
        return []
    own = master_tuple(entry)
    return [row for row in rows
            if row.entry.related is not None and master_of(row.entry.related) == own
            and row.entry.family == entry.family and row.entry.zone == entry.zone]


def children_lines(fmt, entry, rows):
    """One "related" line per flow ``entry`` expected, under the master's
    own lines in the details pane."""
    return [("related" if i == 0 else "", "%s %s -> %s  %s" % (
        proto_name(c.entry.l4proto),
        fmt.endpoint(c.entry.family, c.entry.src, c.entry.sport),
        fmt.endpoint(c.entry.family, c.entry.dst, c.entry.dport),
        fmt.amount(_total(c.entry))))
        for i, c in enumerate(children(entry, rows))]


def _total(e):
    if e.bytes_orig is None:
        return None
    return e.bytes_orig + (e.bytes_reply or 0)
