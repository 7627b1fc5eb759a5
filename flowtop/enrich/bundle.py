"""What flowtop adds to a raw flow, in one place for every output.

``Enrichment`` holds the optional providers - processes, reverse DNS,
GeoIP, interfaces - and answers per flow from their caches.  Nothing here
waits: a DNS miss is queued and shows as an address until a worker has
the name; the process map and route lookups are refreshed once per tick
by ``tick``.  Every string it returns has passed ``text.sanitize`` in its
provider.
"""

from ..model import local_flags
from ..netlink.uapi import IPPROTO_GRE, IPPROTO_TCP, IPPROTO_UDP
from ..text import sanitize

_DNS_PORT = 53
_DNS_PROTOS = (IPPROTO_TCP, IPPROTO_UDP)
_LOOPBACK = ("127.", "::ffff:127.")    # and ::1: model.is_loopback's test

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
        self._self_info = None
        self._labels = {}        # id(ProcInfo) -> (it, its PROCESS cell)

    devices = None        # an enrich.devices.Devices: totals per LAN device (--view device)
    history = None        # a flowtop.history.History: rate rings (live views)
    # The providers from_options(later=True) leaves for ``attach`` (their names; kept after):
    # their imports were ~12 M of the live view's ~141 M instructions to its first rows.
    planned = frozenset()
    _later = ()           # (name, factory) pairs not made yet
    _routes_deferred = False

    def attach(self):
        """Make the providers left for later (the live view's collector thread, once the
        first rows are drawn; else the first ``tick``).  One that cannot start stays None
        (from_options' makers: they catch what it raises)."""
        later = self._later
        if not later:
            return
        for name, make in later:
            value = make(self)
            if name == "ifaces" and value is not None and self._routes_deferred:
                value.deferred = True
            setattr(self, name, value)
        self._later = ()

    def defer_routes(self):
        """Only the collector's prefetch asks the kernel for routes (the live view: the
        screen's thread reads the cache), those attached later too."""
        self._routes_deferred = True
        if self.ifaces is not None:
            self.ifaces.deferred = True

    def device_of(self, e):
        """(name, mac, address) of the flow's local device, or None."""
        d = self.devices
        where = None if d is None else d.device_of(e)
        if where is None:
            return None
        dev = d.devices.get(where[0])
        addr = e.src if where[1] else e.reply_src
        return (None if dev is None else d.name_of(dev),
                where[0][1] if where[0][0] == "mac" else None, addr)

    # -- once per tick --------------------------------------------------------------
    def tick(self, table):
        """Refresh what is refreshed per tick (never per flow).  ``table``:
        a FlowTable, iterated and asked ``key in`` (at 100k flows no list
        or set of its flows is built)."""
        if self._later:
            self.attach()
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
        if self.devices is not None or self.history is not None:
            from ..table import TableFlow
            if self.devices is not None:
                self.devices.refresh()
                self.devices.account(table, TableFlow)
            if self.history is not None:
                self.history.feed(table, TableFlow)

    def tick_new(self, entries):
        """Between full refreshes: get ready for flows that just appeared
        (their sockets and routes), without the per-flow sweep of ``tick``."""
        if self._later:
            self.attach()
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
        # model.is_loopback inlined: asked per distinct address, 250k of them a Tab to Hosts
        return addr in self.local or (addr is not None and (
            addr.startswith(_LOOPBACK) or addr == "::1"))

    def locals_of(self, addrs):
        """``list(map(self.is_local, addrs))`` in C passes."""
        if self._local_stale:
            self._refresh_local()
        return local_flags(addrs, self.local, _LOOPBACK)

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
            p = self.process.lookup(e)
        except OSError:
            return None
        return p if p is not None else self._own_dns(e)

    def _own_dns(self, e):
        """flowtop itself for a DNS query of its own reverse-DNS workers, else
        None.  Their sockets live for milliseconds, so no socket scan finds
        them: a query from this host to port 53 that began (kernel
        timestamp) while a worker was resolving is theirs."""
        if e.dport != _DNS_PORT or e.l4proto not in _DNS_PROTOS or e.start is None:
            return None
        dns = self.dns
        if dns is None or not hasattr(dns, "resolving_at") or not self.is_local(e.src):
            return None
        if not dns.resolving_at(e.start / 1e9):
            return None
        if self._self_info is None:
            import os
            from .owners import ProcInfo
            from .procfs import pwd_name
            self._self_info = ProcInfo(os.getpid(), "flowtop", pwd_name(os.getuid()))
        return self._self_info

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
            orig = self._own_dns(e)
        if orig is None:
            return reply, None
        return orig, (reply if reply is not orig else None)

    def process_label(self, e):
        p = self.proc(e)
        if p is None:
            return ""
        hit = self._labels.get(id(p))   # few processes, many flows: sanitize once each
        if hit is not None and hit[0] is p:
            return hit[1]
        pid = getattr(p, "pid", None)
        name = getattr(p, "name", None) or ""
        if pid is None:
            label = sanitize(name or "forwarded", 32)
        else:
            label = "%s/%d" % (sanitize(name, 24), pid)
        if len(self._labels) >= 4096:
            self._labels.clear()
        self._labels[id(p)] = (p, label)     # (p held: its id is not reused meanwhile)
        return label

    def host(self, addr):
        """Reverse-DNS name when known (never waits), else None."""
        if self.dns is None or addr is None:
            return None
        if self.numeric_local or self.numeric_remote:    # else no local test (2 a JSON line)
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
        if e.l4proto == IPPROTO_GRE:
            return None
        return self.services.of_flow(e.sport, e.dport, e.l4proto) or None

    @property
    def services_only(self):
        """Only service names to add: no process, DNS, GeoIP or interfaces."""
        return (self.process is None and self.dns is None and self.geo is None
                and self.ifaces is None)

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


def from_options(opts, live=True, services=None, warn=None, later=False):
    """The Enrichment that ``opts`` ask for, with whatever providers this
    machine has.  A provider that cannot start is left out, and ``warn``
    (if given) hears one line why; nothing here raises for that.  For a
    replayed recording (``live`` False) this host's processes, addresses
    and routes say nothing, so only names (DNS, GeoIP, services) apply.
    ``later``: the process map, the interfaces, the devices and the rate
    history are made by ``Enrichment.attach`` (the live view: after its
    first rows are drawn; ``planned`` names them meanwhile, silently)."""
    from ..services import Services
    services = services or Services()
    dns = geo = None
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
    enrich = Enrichment(services, None, dns, geo, None, _local_addresses if live else None,
                        getattr(opts, "numeric_local", False), getattr(opts, "numeric_remote", False))
    enrich._later = tuple(_makers(opts, live, None if later else warn))
    if later:
        enrich.planned = frozenset(name for name, _ in enrich._later)
    else:
        enrich.attach()
    return enrich


def _makers(opts, live, warn):
    """(provider name, its maker: Enrichment -> provider or None) of what ``opts`` ask for."""
    if live and getattr(opts, "process", True):
        yield "process", lambda enrich: _started(_process_map, warn, "no process names")
    if live and getattr(opts, "ifaces", False):
        yield "ifaces", lambda enrich: _started(_interfaces, warn, "no interfaces")
    # --once without --leases/--ethers/--view device has no devices (for_options says
    # None): the module stays unloaded on the lean path
    if hasattr(opts, "leases") and (opts.leases or opts.ethers or opts.view == "device"
                                    or not opts.once):
        def devices(enrich):
            from .devices import for_options
            return for_options(opts, live, enrich)
        yield "devices", devices
    if not (opts.once or opts.continuous) and opts.output == "text":   # the live view draws it
        def history(enrich):
            from ..history import History
            return History()
        yield "history", history


def _process_map():
    from .process import ProcessMap
    return ProcessMap()


def _interfaces():
    from .iface import Interfaces
    return Interfaces()


def _started(make, warn, what):
    """``make()``, or None when its module is missing or it cannot start (``warn``
    hears "what: why")."""
    try:
        return make()
    except ImportError:
        return None
    except OSError as exc:
        _say(warn, "%s: %s" % (what, exc))
        return None


def _local_addresses():
    from ..netlink.route import local_addresses
    return local_addresses()


def _say(warn, line):
    if warn is not None:
        warn(line)
