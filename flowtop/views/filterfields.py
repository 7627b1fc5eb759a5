"""The accessor that ``filterexpr`` filters read: the fields of one table
row, computed only when a filter asks for them (a process lookup or a
GeoIP record costs more than the whole compare)."""

from ..memo import Memo
from ..model import proto_name, state_name, status_names
from ..netlink.uapi import IPPROTO_GRE


def _compile(text):
    from .filterexpr import FilterError, compile as compile_filter
    try:
        return (compile_filter(text) if text.strip() else None, None)
    except FilterError as exc:
        return (None, exc)


# (Filter or None, FilterError or None) of a text, memoised: the live view
# asks every frame, and a keystroke changes it.
compiled = Memo(256, _compile).__getitem__


class RowFields:
    """``get(name)`` of one row (a table Row or a bare flow) through an
    Enrichment; ``text`` is the lower-case search text ``search(row)``
    gives (the shown columns), ``wall`` the time ages are counted at.
    ``device(entry)`` (optional) names its local device: (name, mac, addr)."""

    __slots__ = ("row", "e", "enrich", "wall", "search", "device")

    def __init__(self, enrich, wall=0.0, search=None, device=None):
        self.enrich, self.wall, self.search, self.device = enrich, wall, search, device
        self.row = self.e = None

    def of(self, row):
        """This accessor, now reading ``row`` (one object reused for a pass)."""
        self.row = row
        self.e = getattr(row, "entry", row)
        return self

    def get(self, name):
        fn = _GETTERS.get(name)
        return None if fn is None else fn(self)


def _proc(f):
    if f.enrich is None or f.enrich.process is None:
        return None
    return f.enrich.procs(f.e)[0]


def _attr(attr):
    def get(f):
        p = _proc(f)
        return None if p is None else getattr(p, attr, None)
    return get


def _geo(attr):
    def get(f):
        enrich = f.enrich
        if enrich is None or enrich.geo is None:
            return None
        g = enrich.geo_of(enrich.remote_of(f.e))
        return None if g is None else getattr(g, attr, None)
    return get


def _ifaces(f):
    if f.enrich is None or f.enrich.ifaces is None:
        return (None, None)
    return f.enrich.ifaces_of(f.e)


def _host(f):
    e = f.e
    out = [e.src, e.dst]
    if f.enrich is not None:
        for a in (e.src, e.dst):
            name = f.enrich.host(a)
            if name:
                out.append(name)
    return tuple(out)


def _ports(e):
    """(sport, dport); GRE's are keys, not ports (records say gre_key)."""
    return (None, None) if e.l4proto == IPPROTO_GRE else (e.sport, e.dport)


def _sum(a, b):
    if a is None and b is None:
        return None
    return (a or 0) + (b or 0)


def _age(f):
    return f.row.age(f.wall) if hasattr(f.row, "age") else None


def _device(f):
    if f.device is None:
        return None
    d = f.device(f.e)
    return None if d is None else tuple(x for x in d if x)


def _proc_name(f):
    p = _proc(f)
    if p is None:
        return None
    return getattr(p, "name", None) or ("forwarded" if getattr(p, "pid", None) is None else None)


_GETTERS = {
    "proc": _proc_name,
    "pid": _attr("pid"),
    "user": _attr("user"),
    "host": _host,
    "src": lambda f: f.e.src,
    "dst": lambda f: f.e.dst,
    "sport": lambda f: _ports(f.e)[0],
    "dport": lambda f: _ports(f.e)[1],
    "port": lambda f: _ports(f.e),
    "proto": lambda f: (proto_name(f.e.l4proto), str(f.e.l4proto)),
    "state": lambda f: state_name(f.e.l4proto, f.e.state),
    "country": lambda f: (_geo("country")(f), _geo("country_name")(f)),
    "asn": _geo("asn"),
    "iface": _ifaces,
    "in": lambda f: _ifaces(f)[0],
    "out": lambda f: _ifaces(f)[1],
    "mark": lambda f: f.e.mark,
    "zone": lambda f: f.e.zone or 0,
    "status": lambda f: status_names(f.e.status),
    "device": _device,
    "bytes": lambda f: _sum(f.e.bytes_orig, f.e.bytes_reply),
    "packets": lambda f: _sum(f.e.packets_orig, f.e.packets_reply),
    "rate": lambda f: _sum(getattr(f.row, "rate_orig", None), getattr(f.row, "rate_reply", None)),
    "age": _age,
    "text": lambda f: f.search(f.row) if f.search is not None else None,
}


def row_keep(text, enrich, clock, formatter=None, also=None):
    """The ``--filter`` predicate of the script outputs: keep(row) over
    table rows (or bare flows), ages counted to ``clock()``; ``also``
    (a predicate over entries, the --in-iface/--out-iface one) must hold
    too.  ``formatter`` gives the shown text plain words search."""
    flt, err = compiled(text)
    if err is not None:
        raise err
    search = None
    if formatter is not None and "text" in flt.fields:
        search = formatter.search_text
    fields = RowFields(enrich, 0.0, search, getattr(enrich, "device_of", None))
    plain = flt.plain

    def keep(row):
        if also is not None and not also(getattr(row, "entry", row)):
            return False
        if plain is not None:
            return plain in (search(row) if search is not None else "")
        fields.wall = clock()
        fields.row = row
        fields.e = getattr(row, "entry", row)
        return flt(fields)
    return keep
