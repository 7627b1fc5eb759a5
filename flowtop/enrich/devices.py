"""Devices on a router: totals per local device since flowtop started.

A flow belongs to a device when one of its LAN-side addresses - the
original source (a LAN client's pre-NAT address) or, for a port forward,
the reply source (the DNAT target) - is a neighbour of this host (the
kernel's neighbour table, RTM_GETNEIGH) or holds a DHCP lease, and is not
one of this host's own addresses.  Devices are grouped per MAC address
where the neighbour table or the leases know it (a phone's IPv4 and IPv6
addresses are one device), else per address, and named from the DHCP
leases (dnsmasq, odhcpd), ``/etc/ethers``, else reverse DNS.

Totals grow by each flow's counter deltas from tick to tick, so the bytes
of flows that have closed still count.  Every file read here is untrusted
(any user of the router may get a lease with any name): names pass
``text.sanitize``, lines that do not parse are skipped, sizes are bounded.
"""

import os

from ..text import sanitize
from .leases import (
    DNSMASQ_LEASES, ETHERS, NAME_LEN, ODHCPD_LEASES, parse_dnsmasq, parse_ethers, parse_odhcpd,
    read_text,
)

REFRESH = 5.0               # seconds between reads of the neighbour table and the files
MAX_DEVICES = 65536         # devices remembered; past that, new ones are not added


_ZERO = (0, 0, 0, 0)


# --- the devices ------------------------------------------------------------------------

class Device:
    """Totals of one device since flowtop started."""

    __slots__ = ("key", "mac", "addrs", "name", "bytes_tx", "bytes_rx", "pkts_tx", "pkts_rx",
                 "flows")

    def __init__(self, key, mac):
        self.key, self.mac = key, mac
        self.addrs = []
        self.name = None
        self.bytes_tx = self.bytes_rx = self.pkts_tx = self.pkts_rx = 0
        self.flows = 0              # flows seen in all, open or closed

    def label(self):
        return self.name or (self.addrs[0] if self.addrs else self.mac or "?")


class Devices:
    """The devices behind this host and their totals.

    ``neighbours()`` -> {address: mac} (``neigh.lladdr_of(neigh.neighbours())``);
    ``is_local(addr)``: this host's own; ``host(addr)``: a reverse-DNS name
    or None (never waits); file paths are parameters; ``clock`` monotonic.
    """

    def __init__(self, neighbours=None, is_local=None, host=None, dnsmasq=DNSMASQ_LEASES,
                 odhcpd=ODHCPD_LEASES, ethers=ETHERS, clock=None, refresh_every=REFRESH):
        import time
        self._neighbours = neighbours
        self._is_local = is_local or (lambda a: False)
        self._host = host
        self.paths = (tuple(dnsmasq), tuple(odhcpd), tuple(ethers))
        self._clock = clock or time.monotonic
        self._every = refresh_every
        self._next = None
        self._mtimes = {}
        self.neigh = {}             # address -> mac
        self.leased = {}            # address -> (mac, name)
        self.ether_names = {}       # mac -> name
        self.ether_addrs = {}       # address -> mac
        self.devices = {}           # key -> Device
        self._flows = {}            # flow key -> (device key, outbound, bo, br, po, pr) or None
        self._where = {}            # address -> device key (or None): per refresh
        self._forced = False        # this account() pass has re-read the table

    # -- knowledge -------------------------------------------------------------------------
    def refresh(self, force=False):
        """Re-read the neighbour table and the files (changed ones), at most
        every ``refresh_every`` seconds."""
        now = self._clock()
        if not force and self._next is not None and now < self._next:
            return
        self._next = now + self._every
        if self._neighbours is not None:
            try:
                self.neigh = dict(self._neighbours())
            except OSError:
                pass
        dnsmasq, odhcpd, ethers = self.paths
        changed = False
        for group in self.paths:
            for p in group:
                try:
                    m = os.stat(p).st_mtime_ns
                except OSError:
                    m = None
                if self._mtimes.get(p, -1) != m:
                    self._mtimes[p] = m
                    changed = True
        if changed:
            leased = {}
            for p in odhcpd:
                for addr, mac, name in parse_odhcpd(read_text(p)):
                    leased[addr] = (mac, name)
            for p in dnsmasq:                   # dnsmasq's names win: they carry MACs
                for addr, mac, name in parse_dnsmasq(read_text(p)):
                    leased[addr] = (mac, name)
            self.leased = leased
            names, addrs = {}, {}
            for p in ethers:
                n, a = parse_ethers(read_text(p))
                names.update(n)
                addrs.update({v: k for k, v in a.items()})
            self.ether_names, self.ether_addrs = names, addrs
        self._where = {}
        for d in self.devices.values():
            d.name = None                       # named again from what is known now

    def mac_of(self, addr):
        mac = self.neigh.get(addr)
        if mac is None:
            mac = (self.leased.get(addr) or (None,))[0] or self.ether_addrs.get(addr)
        return mac

    def device_key(self, addr):
        """The key of the device at ``addr`` ("mac" or "addr" keyed), or None
        when ``addr`` is not a local device.  Memoised per refresh."""
        where = self._where
        key = where.get(addr, 0)
        if key != 0:
            return key
        key = None
        if addr is not None and (addr in self.neigh or addr in self.leased
                                 or addr in self.ether_addrs) and not self._is_local(addr):
            mac = self.mac_of(addr)
            key = ("mac", mac) if mac else ("addr", addr)
        if len(where) > 4 * MAX_DEVICES:
            where.clear()
        where[addr] = key
        return key

    def device_of(self, e):
        """(device key, outbound) of a flow, or None: its original source
        when that is a device (outbound: the device sent the original
        direction), else its reply source (a port forward's target)."""
        key = self.device_key(e.src)
        if key is not None:
            return key, True
        key = self.device_key(e.reply_src)
        return None if key is None else (key, False)

    def name_of(self, d):
        """A device's name: its lease, /etc/ethers, else reverse DNS."""
        if d.name is not None:
            return d.name
        name = None
        for a in d.addrs:
            lease = self.leased.get(a)
            if lease is not None and lease[1]:
                name = lease[1]
                break
        if name is None and d.mac is not None:
            name = self.ether_names.get(d.mac)
            if name is None:
                for a, (mac, n) in self.leased.items():
                    if mac == d.mac and n:
                        name = n
                        break
        if name is None and self._host is not None:
            for a in d.addrs:
                name = self._host(a)
                if name:
                    name = sanitize(name, NAME_LEN)
                    break
        d.name = name or None
        return d.label()

    # -- accounting --------------------------------------------------------------------------
    def _first_seen(self, e):
        """(device, outbound) of a flow seen for the first time, the flow
        counted and its address added; None: no device, or too many."""
        where = self.device_of(e)
        if (where is None or not where[1]) and not self._forced:
            # Its source is no device, as of the last read: once a pass, read
            # again (the flow is in the table, so its neighbour entry is too).
            # A device new to the LAN sends before the next REFRESH, and its
            # first flows went to the far end (a neighbour too) or nowhere, for good.
            self._forced = True
            self.refresh(force=True)
            where = self.device_of(e)
        if where is None:
            return None
        dkey, outbound = where
        d = self.devices.get(dkey)
        if d is None:
            if len(self.devices) >= MAX_DEVICES:
                return None
            d = self.devices[dkey] = Device(dkey, dkey[1] if dkey[0] == "mac" else None)
        addr = e.src if outbound else e.reply_src
        if addr not in d.addrs and len(d.addrs) < 16:
            d.addrs.append(addr)
        d.flows += 1
        return d, outbound

    def account(self, rows, idle_type=None):
        """Add each flow's counter growth since the last call to its
        device.  ``rows``: the table (iterable twice: its rows, open and
        lingering closed);
        rows of ``idle_type`` (the table's bare idle flows) already seen
        have not changed and are skipped on a dict lookup."""
        flows = self._flows
        devices = self.devices
        present = 0
        self._forced = False
        for r in rows:
            present += 1
            if type(r) is idle_type:
                k = r.key
                if k in flows:
                    continue
            e = r.entry
            k = e.key
            seen = flows.get(k, 0)
            if seen == 0:
                found = self._first_seen(e)
                if found is None:
                    flows[k] = None
                    continue
                d, outbound = found
                dkey = d.key
                before = _ZERO
            elif seen is None:
                continue
            else:
                dkey, outbound = seen[0], seen[1]
                d = devices.get(dkey)
                before = seen[2:]
                if d is None:
                    continue
            bo, br = e.bytes_orig or 0, e.bytes_reply or 0
            po, pr = e.packets_orig or 0, e.packets_reply or 0
            b0, b1, p0, p1 = before
            # a counter that went down is a new flow under the same key: count it whole
            dbo = bo - b0 if bo >= b0 else bo
            dbr = br - b1 if br >= b1 else br
            dpo = po - p0 if po >= p0 else po
            dpr = pr - p1 if pr >= p1 else pr
            if outbound:
                d.bytes_tx += dbo
                d.bytes_rx += dbr
                d.pkts_tx += dpo
                d.pkts_rx += dpr
            else:
                d.bytes_tx += dbr
                d.bytes_rx += dbo
                d.pkts_tx += dpr
                d.pkts_rx += dpo
            flows[k] = (dkey, outbound, bo, br, po, pr)
        # forget flows the table has dropped (their keys, kept after a flood, pinned arenas)
        if len(flows) > 2 * present + 64:
            keep = {r.entry.key for r in rows}
            self._flows = {k: v for k, v in flows.items() if k in keep}

    def snapshot(self):
        """The devices, named, as a list (sorted by nothing in particular)."""
        out = list(self.devices.values())
        for d in out:
            self.name_of(d)
        return out


def group_rows(rows, devices, make_group):
    """Aggregate Groups for the device view: one per device ever seen, its
    bytes and packets the totals since start; flows and rates from the
    open ``rows`` (already filtered by the view).  ``make_group(key,
    label)`` builds a views.aggregate.Group."""
    groups = {}
    for d in devices.snapshot():
        g = groups[d.key] = make_group(d.key, sanitize(devices.name_of(d), 64))
        g.bytes_tx, g.bytes_rx, g.pkts_tx, g.pkts_rx = d.bytes_tx, d.bytes_rx, d.pkts_tx, d.pkts_rx
    # Only a flow with an end in the neighbour table, the leases or /etc/ethers can be a
    # device's (device_key): a host with none asks no flow (Tab at 100k: ~2 calls a flow)
    known = devices.neigh.keys() | devices.leased.keys() | devices.ether_addrs.keys()
    if not known:
        return list(groups.values())
    for r in rows:
        if r.closed:
            continue
        e = r.entry
        if e.src not in known and e.reply_src not in known:
            continue
        where = devices.device_of(e)
        if where is None:
            continue
        g = groups.get(where[0])
        if g is None:
            continue
        ro, rr = r.rate_orig, r.rate_reply
        g.flows += 1
        if ro is not None or rr is not None:
            g.rated += 1
        ro, rr = ro or 0.0, rr or 0.0
        if where[1]:
            g.rate_tx += ro
            g.rate_rx += rr
        else:
            g.rate_tx += rr
            g.rate_rx += ro
    return list(groups.values())


def keys_of(devices, e):
    """[(device key, label, outbound)] of a flow for the device view (none
    when it is no device's)."""
    if devices is None:
        return []
    where = devices.device_of(e)
    if where is None:
        return []
    d = devices.devices.get(where[0])
    label = devices.name_of(d) if d is not None else where[0][1]
    return [(where[0], label, where[1])]


def for_options(opts, live, enrich):
    """The Devices ``opts`` ask for, or None: with a live kernel for the
    live views and ``--view device`` (other script outputs and the exports
    need no totals: a pass over the table a tick), or whenever
    ``--leases``/``--ethers`` name files."""
    leases = tuple(opts.leases or ())
    ethers = (opts.ethers,) if opts.ethers else ()
    headless = opts.ipfix or opts.metrics or opts.metrics_file or opts.syslog or opts.quiet
    screen = not (opts.once or headless) and opts.output == "text"     # Tab can reach it
    if not (leases or ethers) and not (live and (opts.view == "device" or screen)):
        return None
    neighbours = _kernel_neighbours if live else None
    return Devices(neighbours, enrich.is_local, enrich.host,
                   dnsmasq=leases or DNSMASQ_LEASES, odhcpd=leases or ODHCPD_LEASES,
                   ethers=ethers or ETHERS)


def _kernel_neighbours():
    """MAC of each neighbour address, from the kernel (rtnetlink)."""
    from ..netlink import neigh
    return neigh.lladdr_of(neigh.neighbours())
