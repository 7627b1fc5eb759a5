"""The plain-text table of ``flowtop --once`` (and continuous text frames)."""

from ..model import ICMP_PROTOS, proto_name, state_name
from ..netlink.uapi import AF_INET6, IPPROTO_GRE
from ..text import duration, human, sanitize

HEADERS = ("PROTO", "STATE", "SOURCE", "DESTINATION", "DETAIL",
           "PKTS_OUT", "BYTES_OUT", "PKTS_IN", "BYTES_IN", "AGE", "TIMEOUT")
_RIGHT = {"PKTS_OUT", "BYTES_OUT", "PKTS_IN", "BYTES_IN", "AGE", "TIMEOUT"}


def endpoint(family, addr, port):
    if addr is None:
        return "-"
    if port is None:
        return addr
    if family == AF_INET6:
        return "[%s]:%d" % (addr, port)
    return "%s:%d" % (addr, port)


def detail(f):
    parts = []
    if f.l4proto in ICMP_PROTOS and f.icmp_type is not None:
        parts.append("type=%d code=%d id=%d" % (f.icmp_type, f.icmp_code or 0, f.icmp_id or 0))
    if f.l4proto == IPPROTO_GRE and f.dport is not None:
        parts.append("key=0x%x/0x%x" % (f.dport, f.reply_dport or 0))
    if f.mark:
        parts.append("mark=%d" % f.mark)
    if f.zone:
        parts.append("zone=%d" % f.zone)
    return " ".join(parts)


def _num(n):
    return "-" if n is None else str(n)


def row(f, now, units="si"):
    gre = f.l4proto == IPPROTO_GRE
    sport = None if gre else f.sport
    dport = None if gre else f.dport
    return (
        proto_name(f.l4proto), state_name(f.l4proto, f.state) or "",
        endpoint(f.family, f.src, sport), endpoint(f.family, f.dst, dport), detail(f),
        _num(f.packets_orig), human(f.bytes_orig, units), _num(f.packets_reply),
        human(f.bytes_reply, units),
        duration(None if f.start is None else max(0.0, now - f.start / 1e9)),
        _num(f.timeout),
    )


def sort_key(f):
    return (proto_name(f.l4proto), f.state or 0, f.family, f.dst or "", f.dport or 0,
            f.src or "", f.sport or 0)


def summary(flows):
    counts = {}
    for f in flows:
        name = proto_name(f.l4proto)
        counts[name] = counts.get(name, 0) + 1
    per = ", ".join("%s %d" % kv for kv in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return "%d flow%s%s" % (len(flows), "" if len(flows) == 1 else "s",
                            " (%s)" % per if per else "")


def render(flows, now, units="si", notes=()):
    """The whole table as one string; every cell passes ``sanitize``."""
    rows = [tuple(sanitize(c, 80) for c in row(f, now, units))
            for f in sorted(flows, key=sort_key)]
    widths = [len(h) for h in HEADERS]
    for r in rows:
        for i, c in enumerate(r):
            if len(c) > widths[i]:
                widths[i] = len(c)
    lines = [summary(flows)]
    lines.extend(sanitize(n, 200) for n in notes)

    def fmt(cells):
        out = []
        for i, c in enumerate(cells):
            out.append(c.rjust(widths[i]) if HEADERS[i] in _RIGHT else c.ljust(widths[i]))
        return "  ".join(out).rstrip()

    lines.append(fmt(HEADERS))
    lines.extend(fmt(r) for r in rows)
    return "\n".join(lines) + "\n"
