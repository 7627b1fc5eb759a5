"""Table health: how full the conntrack table is, the kernel's per-CPU
statistics that mean trouble (``conntrack -S``), and how many flows are
offloaded (their counters stop: the flowtable forwards their packets past
conntrack).  "nf_conntrack: table full, dropping packet" is the classic
outage: the header says it before it happens.

Pure over what it is given: ``Probe`` takes the two kernel reads as
functions, time is passed in.
"""

from .netlink.ctnetlink import FIELDS
from .netlink.uapi import IPS_HW_OFFLOAD_BIT, IPS_OFFLOAD_BIT

# per-CPU counters that rise only when something goes wrong
TROUBLE = ("drop", "early_drop", "insert_failed", "error", "search_restart")
FULL = 0.9                    # table share from which the header warns
_OFFLOAD = 1 << IPS_OFFLOAD_BIT
_HW_OFFLOAD = 1 << IPS_HW_OFFLOAD_BIT
_STATUS = FIELDS.index("status")


class Health:
    """One reading.  ``count``/``max``: entries and nf_conntrack_max (None
    unknown); ``cpus``: {cpu: {name: value}}; ``rates``: {name: per second
    summed over CPUs} for TROUBLE, None on the first reading;
    ``offload``/``hw_offload``: open flows with those status bits."""

    __slots__ = ("time", "count", "max", "cpus", "rates", "offload", "hw_offload")

    def __init__(self, time, count, max_, cpus, rates, offload=0, hw_offload=0):
        self.time, self.count, self.max, self.cpus, self.rates = time, count, max_, cpus, rates
        self.offload, self.hw_offload = offload, hw_offload

    @property
    def share(self):
        if self.count is None or not self.max:
            return None
        return self.count / self.max

    @property
    def full(self):
        share = self.share
        return share is not None and share >= FULL

    @property
    def trouble(self):
        """The table is nearly full, or a trouble counter moved."""
        return self.full or bool(self.rates and any(self.rates.get(n) for n in TROUBLE))

    def totals(self):
        """{name: value} summed over CPUs."""
        out = {}
        for values in self.cpus.values():
            for k, v in values.items():
                out[k] = out.get(k, 0) + v
        return out


def offloaded(rows, statuses=None):
    """(flows with OFFLOAD, with HW_OFFLOAD) among the open rows: one pass
    per snapshot, counted per status word (few distinct ones); ``statuses``:
    those counts ({status: open rows}) when the caller's own pass made them."""
    if statuses is None:
        from .table import open_counts
        statuses = open_counts(rows, _STATUS)
    soft = hard = 0
    for status, n in statuses.items():
        if status and status & (_OFFLOAD | _HW_OFFLOAD):
            soft += n
            if status & _HW_OFFLOAD:
                hard += n
    return soft, hard


def offload_mark(status):
    """"!" after the byte counts of an offloaded flow (software or
    hardware): the flowtable forwards its packets past conntrack, so its
    counters stand still.  "" for every other flow."""
    return "!" if status and status & (_OFFLOAD | _HW_OFFLOAD) else ""


class Probe:
    """Reads the kernel's table size and per-CPU statistics, and keeps the
    previous reading for rates.  ``stats_global() -> (entries, max)``,
    ``stats_cpu() -> {cpu: {name: value}}``; ``table_max()`` the sysctl
    for kernels older than CTA_STATS_GLOBAL_MAX_ENTRIES (4.15)."""

    def __init__(self, stats_global, stats_cpu, table_max=None):
        self._global, self._cpu, self._max = stats_global, stats_cpu, table_max
        self._last = None

    def read(self, now, rows=None, statuses=None):
        count, max_ = self._global()
        if max_ is None and self._max is not None:
            max_ = self._max()
        cpus = self._cpu()
        soft, hard = (offloaded(rows, statuses) if rows is not None or statuses is not None
                      else (None, None))
        h = Health(now, count, max_, cpus, None, soft, hard)
        last = self._last
        if last is not None and now > last.time:
            before, after = last.totals(), h.totals()
            dt = now - last.time
            # a counter that went down (a CPU went offline) is no negative rate
            h.rates = {n: max(0, after.get(n, 0) - before.get(n, 0)) / dt for n in TROUBLE}
        self._last = h
        return h


def kernel_probe(sysctl_root="/proc/sys"):
    """A Probe on a ctnetlink socket of its own (the collector's is busy in
    its thread).  Raises OSError without the kernel's netlink interface."""
    from .netlink import conntrack as ct
    from .netlink.socket import NetlinkSocket
    sock = NetlinkSocket()

    def table_max():
        try:
            with open(sysctl_root + "/net/netfilter/nf_conntrack_max") as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    probe = Probe(lambda: ct.stats_global(sock), lambda: ct.stats_cpu(sock), table_max)
    probe.sock = sock
    return probe


def read(probe, snap, statuses=None):
    """The Health of a live-view snapshot, or None (no probe: a replay; a
    failed read: the header goes on without it); ``statuses``: see offloaded."""
    if probe is None:
        return None
    try:
        return probe.read(snap.wall, snap.rows, statuses)
    except (OSError, ValueError):
        return None


def fitting(h, room):
    """The header's table part for ``room`` columns: the whole of it, or
    the short one (the fill level and what is wrong, without count/max);
    "" without a reading; None when neither fits (the caller tries a
    shorter line beside it)."""
    if h is None:
        return ""
    for text in (header_text(h), header_text(h, short=True)):
        if len(text) <= room:
            return text
    return None


def probe_for(source, sysctl_root="/proc/sys"):
    """A kernel Probe for a live source, None for a replay or when the
    kernel refuses (the header then goes without)."""
    if not getattr(source, "live", False):
        return None
    try:
        return kernel_probe(sysctl_root)
    except OSError:
        return None


def _rate(v):
    if v >= 10:
        return "%d" % round(v)
    return ("%.1f" % v).rstrip("0").rstrip(".")


def header_text(h, short=False):
    """The header's table part: "table 1234/262144 0.5%", the trouble
    counters that moved ("drop 3/s"), offloaded flows ("offload 12 (hw 3)");
    ``short``: "ct 0.5%" (the count is the header's flows; 9 columns, what
    a 120-column header with eight protocols has left)."""
    if h is None:
        return ""
    share = h.share
    if short and share is not None:
        parts = ["ct %s%%" % _pct(share)]
    else:
        parts = ["table %s/%s%s" % ("?" if h.count is None else h.count,
                                    "?" if h.max is None else h.max,
                                    "" if share is None else " %s%%" % _pct(share))]
    if h.full:
        parts.append("FULL" if share >= 1 else "NEARLY FULL")
    for n in TROUBLE:
        v = (h.rates or {}).get(n)
        if v:
            parts.append("%s %s/s" % (n, _rate(v)))
    if h.offload:
        parts.append("offload %d%s" % (h.offload, " (hw %d)" % h.hw_offload if h.hw_offload
                                       else ""))
    return "  ".join(parts)


def _pct(share):
    p = share * 100
    return ("%.1f" % p) if p < 10 else "%d" % p


NAMES = ("found", "invalid", "insert", "insert_failed", "drop", "early_drop", "error",
         "search_restart", "clash_resolve", "chain_toolong")


def cpu_lines(h):
    """The per-CPU table of ``conntrack -S`` for the stats pane, the
    totals, and the rates of the trouble counters."""
    if h is None:
        return ["no statistics: they come from the kernel (not in --replay)"]
    short = {"insert_failed": "ins_fail", "early_drop": "e_drop", "search_restart": "restart",
             "clash_resolve": "clash", "chain_toolong": "toolong"}
    heads = [short.get(n, n) for n in NAMES]
    widths = [max(len(t), 6) for t in heads]
    lines = [header_text(h), "",
             "cpu  " + " ".join(t.rjust(w) for t, w in zip(heads, widths))]
    rows = sorted(h.cpus.items()) + [("all", h.totals())]
    for cpu, values in rows:
        lines.append(str(cpu).ljust(4) + " " + " ".join(
            str(values.get(n, "-")).rjust(w) for n, w in zip(NAMES, widths)))
    if h.rates is not None:
        lines += ["", "per second: " + "  ".join("%s %s" % (n, _rate(h.rates[n]))
                                                 for n in TROUBLE)]
    return lines


def record(h, wall):
    """The ``--stats`` header record of one snapshot (JSON)."""
    share = h.share
    return {
        "record": "stats", "time": round(wall, 3), "count": h.count, "max": h.max,
        "percent": None if share is None else round(share * 100, 2),
        "full": h.full, "trouble": h.trouble,
        "rates": None if h.rates is None else {n: round(v, 3) for n, v in h.rates.items()},
        "totals": h.totals(),
        "cpus": [dict(cpu=cpu, **values) for cpu, values in sorted(h.cpus.items())],
        "offload": h.offload, "hw_offload": h.hw_offload,
    }


class StatsWriter:
    """``--stats``: a writer of flows behind the table's health, written
    before each snapshot (a JSON record, or a text line).  The probe is
    the kernel's (opened on first use)."""

    def __init__(self, inner, stream, fmt, probe=None):
        self.inner, self.stream, self.fmt = inner, stream, fmt
        self.probe = probe
        self.wants = getattr(inner, "wants", None)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def _head(self, wall, rows=None):
        if self.probe is None:
            self.probe = kernel_probe()
        h = self.probe.read(wall, rows)
        if self.fmt == "json":
            import json
            self.stream.write(json.dumps(record(h, wall), separators=(",", ":")) + "\n")
        else:
            self.stream.write(header_text(h) + "\n")

    def write_rows(self, table, wall):
        self._head(wall, list(table))
        self.inner.write_rows(table, wall)

    def write_flows(self, flows, now):
        self._head(now, [_Open(f) for f in flows])
        self.inner.write_flows(flows, now)

    def write(self, items, now):
        # the --once fast path hands text lines: offloaded flows go uncounted
        self._head(now)
        self.inner.write(items, now)


class _Open:
    """A flow as an open row, for ``offloaded``."""

    __slots__ = ("entry",)
    closed = 0

    def __init__(self, entry):
        self.entry = entry
