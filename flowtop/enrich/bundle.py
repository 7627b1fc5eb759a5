"""What flowtop adds to a raw flow, in one place for every output.

``Enrichment`` holds the optional providers - processes, reverse DNS,
GeoIP, interfaces - and answers per flow from their caches.  Nothing here
waits: a DNS miss is queued and shows as an address until a worker has
the name; the process map and route lookups are refreshed once per tick
by ``tick``.  Every string it returns has passed ``text.sanitize`` in its
provider.
"""

import json

from ..model import is_loopback
from ..text import sanitize

_GRE = 47

FIELDS = ("pid", "process", "user", "peer_pid", "peer_process", "service", "src_host", "dst_host",
          "src_country", "src_city", "src_asn", "dst_country", "dst_city", "dst_asn",
          "in_iface", "out_iface")


class Enrichment:
    """Optional providers behind one per-flow interface.

    ``process``: flowtop.enrich.process.ProcessMap-like (refresh, lookup, retain);
    ``dns``: flowtop.enrich.dns.Resolver-like (lookup);
    ``geo``: flowtop.enrich.geoip provider (lookup -> record);
    ``ifaces``: flowtop.enrich.iface.Interfaces-like (prefetch, of_flow);
    ``services``: flowtop.services.Services;
    ``local``: callable -> set of this host's addresses.
    ``numeric_local``/``numeric_remote``: resolve only the other side (nftop).
    """

    def __init__(self, services, process=None, dns=None, geo=None, ifaces=None, local=None,
                 numeric_local=False, numeric_remote=False):
        self.services = services
        self.process = process
        self.dns = dns
        self.geo = geo
        self.ifaces = ifaces
        self._local_fn = local
        self.local = frozenset()
        # Asked for on first use after a tick: an output that never asks whether an
        # address is local (--once -n -G --no-iface --no-process) never loads rtnetlink.
        self._local_stale = True
        self.numeric_local = numeric_local
        self.numeric_remote = numeric_remote
        self._jstr = {}
        self._tail_template = None

    # -- once per tick --------------------------------------------------------------
    def tick(self, table):
        """Refresh what is refreshed per tick (never per flow).  ``table``:
        a FlowTable, iterated and asked ``key in`` (at 100k flows no list
        or set of its flows is built)."""
        self._local_stale = True
        if self.process is not None:
            try:
                self.process.refresh()
            except OSError:
                pass
            # A closed row keeps its process name while it lingers.
            self.process.retain(table)
        if self.ifaces is not None:
            try:
                self.ifaces.prefetch(r.entry for r in table if not r.closed)
            except OSError:
                pass

    def tick_new(self, entries):
        """Between full refreshes: get ready for flows that just appeared
        (their sockets and routes), without the per-flow sweep of ``tick``."""
        if self.process is not None:
            try:
                self.process.refresh()
            except OSError:
                pass
        if self.ifaces is not None:
            try:
                self.ifaces.prefetch(entries)
            except OSError:
                pass

    def close(self):
        for p in (self.dns, self.geo, self.ifaces):
            if p is not None and hasattr(p, "close"):
                p.close()

    # -- per flow ---------------------------------------------------------------------
    def is_local(self, addr):
        if self._local_stale:
            self._refresh_local()
        return addr in self.local or is_loopback(addr)

    def _refresh_local(self):
        self._local_stale = False
        if self._local_fn is not None:
            try:
                self.local = frozenset(self._local_fn())
            except (OSError, ImportError):
                pass

    def remote_of(self, e):
        """The other end of a flow, seen from this host (a router: the
        destination)."""
        if self.is_local(e.src) and not self.is_local(e.dst):
            return e.dst
        if self.is_local(e.dst) and not self.is_local(e.src):
            return e.src
        return e.dst

    def proc(self, e):
        """ProcInfo, the FORWARDED marker, or None."""
        if self.process is None:
            return None
        try:
            return self.process.lookup(e)
        except OSError:
            return None

    def procs(self, e):
        """(local process, its peer): the flow's local process (the opener
        when local, else the answerer) and, when both ends are on this host,
        the other one; None where unknown."""
        if self.process is None:
            return None, None
        try:
            orig, reply = self.process.lookup_both(e)
        except OSError:
            return None, None
        if orig is None:
            return reply, None
        return orig, (reply if reply is not orig else None)

    def process_label(self, e):
        p = self.proc(e)
        if p is None:
            return ""
        pid = getattr(p, "pid", None)
        name = getattr(p, "name", None) or ""
        if pid is None:
            return sanitize(name or "forwarded", 32)
        return "%s/%d" % (sanitize(name, 24), pid)

    def host(self, addr):
        """Reverse-DNS name when known (never waits), else None."""
        if self.dns is None or addr is None:
            return None
        local = self.is_local(addr)
        if (local and self.numeric_local) or (not local and self.numeric_remote):
            return None
        return self.dns.lookup(addr)

    def geo_of(self, addr):
        if self.geo is None or addr is None:
            return None
        return self.geo.lookup(addr)

    def ifaces_of(self, e):
        if self.ifaces is None:
            return (None, None)
        return self.ifaces.of_flow(e)

    def service(self, e):
        """The flow's service name (or lower port), None without ports
        (GRE keys are not ports)."""
        if e.l4proto == _GRE:
            return None
        return self.services.of_flow(e.sport, e.dport, e.l4proto) or None

    def json_tail(self, e):
        """``fields(e)`` as the text of extra JSON keys: ',"pid":1,...'.

        The hot path of ``--json`` (once per flow): what a missing provider
        would give is baked into the template as null."""
        tpl = self._tail_template
        if tpl is None:
            tpl = self._tail_template = self._make_tail_template()
        jstr = self._jstr
        p, peer = self.procs(e)
        if p is None:
            pid = name = user = "null"
        else:
            pid = "null" if p.pid is None else p.pid
            name = p.name or "forwarded"
            name = jstr.get(name) or self._json(name)
            user = "null" if p.user is None else (jstr.get(p.user) or self._json(p.user))
        if peer is None:
            ppid = pname = "null"
        else:
            ppid = "null" if peer.pid is None else peer.pid
            pname = self._jopt(peer.name)
        service = self.service(e)
        service = jstr.get(service) or self._json(service) if service else "null"
        values = [pid, name, user, ppid, pname, service]
        if self.dns is not None:
            values += [self._jopt(self.host(e.src)), self._jopt(self.host(e.dst))]
        if self.geo is not None:
            for addr in (e.src, e.dst):
                g = self.geo_of(addr)
                values += [self._jopt(getattr(g, "country", None)),
                           self._jopt(getattr(g, "city", None)),
                           "null" if getattr(g, "asn", None) is None else int(g.asn)]
        if self.ifaces is not None:
            iin, iout = self.ifaces_of(e)
            values += [self._jopt(iin), self._jopt(iout)]
        return tpl % tuple(values)

    @property
    def services_only(self):
        """Only service names to add: no process, DNS, GeoIP or interfaces."""
        return (self.process is None and self.dns is None and self.geo is None
                and self.ifaces is None)

    def service_tails(self, l4proto):
        """For services_only: ({port: name}, tail, tail for no port) - the
        ``json_tail`` text with its one "%s" where the service goes, and
        the names as JSON string contents, so the JSON fast path fills in a
        flow's service with two dict lookups (else the lower port's number)."""
        tpl = self._tail_template or self._make_tail_template()
        self._tail_template = tpl
        names = {port: self._json(name)[1:-1]
                 for port, name in self.services.names(l4proto).items()}
        nulls = ("null",) * 5
        return names, tpl % (nulls + ('"%s"',)), tpl % (nulls + ("null",))

    def _make_tail_template(self):
        have = {"pid": True, "process": True, "user": True, "peer_pid": True,
                "peer_process": True, "service": True,
                "src_host": self.dns is not None, "dst_host": self.dns is not None,
                "in_iface": self.ifaces is not None, "out_iface": self.ifaces is not None}
        geo = self.geo is not None
        return "".join(',"%s":%s' % (k, "%s" if have.get(k, geo) else "null") for k in FIELDS)

    def _jopt(self, value):
        if value is None:
            return "null"
        return self._jstr.get(value) or self._json(value)

    def _json(self, value):
        text = json.dumps(value)
        if len(self._jstr) < 65536:
            self._jstr[value] = text
        return text

    def fields(self, e):
        """The enrichment keys of the JSON/CSV records (FIELDS order)."""
        p, peer = self.procs(e)
        sg, dg = self.geo_of(e.src), self.geo_of(e.dst)
        ii, oi = self.ifaces_of(e)
        return {
            "pid": getattr(p, "pid", None),
            "process": (getattr(p, "name", None) or "forwarded") if p is not None else None,
            "user": getattr(p, "user", None),
            "peer_pid": getattr(peer, "pid", None),
            "peer_process": getattr(peer, "name", None),
            "service": self.service(e),
            "src_host": self.host(e.src),
            "dst_host": self.host(e.dst),
            "src_country": getattr(sg, "country", None),
            "src_city": getattr(sg, "city", None),
            "src_asn": getattr(sg, "asn", None),
            "dst_country": getattr(dg, "country", None),
            "dst_city": getattr(dg, "city", None),
            "dst_asn": getattr(dg, "asn", None),
            "in_iface": ii,
            "out_iface": oi,
        }


def from_options(opts, live=True, services=None, warn=None):
    """The Enrichment that ``opts`` ask for, with whatever providers this
    machine has.  A provider that cannot start is left out, and ``warn``
    (if given) hears one line why; nothing here raises for that.  For a
    replayed recording (``live`` False) this host's processes, addresses
    and routes say nothing, so only names (DNS, GeoIP, services) apply."""
    from ..services import Services
    services = services or Services()
    process = dns = geo = ifaces = local = None
    if live and getattr(opts, "process", True):
        try:
            from .process import ProcessMap
            process = ProcessMap()
        except ImportError:
            process = None
        except OSError as exc:
            _say(warn, "no process names: %s" % exc)
    if live:
        local = _local_addresses
    if opts.dns:
        try:
            from .dns import Resolver
            dns = Resolver()
        except ImportError:         # threading-less Python: names stay addresses
            dns = None
    if opts.geoip:
        try:
            from .geoip import GeoIP
            from .geoip import DEFAULT_DIRS
            extra = (opts.geoip_dir,) if getattr(opts, "geoip_dir", None) else ()
            provider = GeoIP.open(paths=getattr(opts, "geoip_db", None) or (),
                                  dirs=extra + tuple(DEFAULT_DIRS))
            if provider.available:
                geo = provider
            elif getattr(opts, "geoip_db", None):
                _say(warn, provider.reason)
        except ImportError:
            pass
    if live and getattr(opts, "ifaces", False):
        try:
            from .iface import Interfaces
            ifaces = Interfaces()
        except ImportError:
            ifaces = None
        except OSError as exc:
            _say(warn, "no interfaces: %s" % exc)
    return Enrichment(services, process, dns, geo, ifaces, local,
                      getattr(opts, "numeric_local", False), getattr(opts, "numeric_remote", False))


def _local_addresses():
    from ..netlink.route import local_addresses
    return local_addresses()


def _say(warn, line):
    if warn is not None:
        warn(line)
