"""Prometheus text exposition (format 0.0.4) of the conntrack table.

Low cardinality: labels are protocols, states, CPUs, process names and
interface names (each capped at MAX_LABELS values, the rest as "other"),
never addresses.  Byte/packet totals are counters that keep a flow's bytes
after it ends: each dump adds what every flow moved since the last one, a
DESTROY event adds a flow's last bytes.  Served over HTTP by a listener on
``socket`` (python3-light has no ``email``, so no ``http.server``) and/or
written to a node_exporter textfile with an atomic rename.
"""

import os
import socket

from ..model import proto_name, state_name

MAX_LABELS = 200      # values per label before the rest count as "other"


def _escape(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def exposition(families):
    """[(name, type, help, [(labels dict, value)])] -> exposition text."""
    out = []
    for name, kind, text, samples in families:
        out.append("# HELP %s %s\n# TYPE %s %s\n" % (name, text, name, kind))
        for labels, value in samples:
            if labels:
                lab = ",".join('%s="%s"' % (k, _escape(v)) for k, v in sorted(labels.items()))
                out.append("%s{%s} %s\n" % (name, lab, _num(value)))
            else:
                out.append("%s %s\n" % (name, _num(value)))
    return "".join(out)


def _num(v):
    return repr(float(v)) if isinstance(v, float) else str(int(v))


class _Bounded(dict):
    """label value -> totals, at most MAX_LABELS keys; the rest go to "other"."""

    def slot(self, label):
        if label not in self and len(self) >= MAX_LABELS:
            label = "other"
        t = self.get(label)
        if t is None:
            t = self[label] = [0, 0, 0, 0]      # bytes, packets orig; bytes, packets reply
        return t


class MetricsSink:
    """A runner sink keeping the metrics; ``text()`` is the exposition.
    ``stats()`` -> {cpu: {name: value}}; ``table_max()`` -> int or None."""

    def __init__(self, enrich=None, stats=None, table_max=None, path=None, period=5.0,
                 count=None):
        self.enrich = enrich
        self.count = count        # -> the kernel's entry count (None: the dump's)
        self.stats = stats
        self.table_max = table_max
        self.path = path
        self.period = period
        self._last = {}            # flow key -> (bo, po, br, pr, process, in, out, country)
        self.by_process = _Bounded()
        self.by_country = _Bounded()
        self.by_iface = _Bounded()
        self._flows = {}
        self._count = 0
        self._text = exposition([])

    def _labels(self, e):
        enrich = self.enrich
        if enrich is None:
            return "unknown", None, None, None
        p = enrich.proc(e)
        name = (getattr(p, "name", None) or "unknown") if p is not None else "unknown"
        iin, iout = enrich.ifaces_of(e)
        country = None
        if enrich.geo is not None:      # the remote end's: sent to / received from there
            country = getattr(enrich.geo_of(enrich.remote_of(e)), "country", None) or "unknown"
        return name, iin, iout, country

    def _add(self, e, last, final=False):
        bo, po, br, pr = e.bytes_orig, e.packets_orig, e.bytes_reply, e.packets_reply
        if bo is None or po is None or br is None or pr is None:
            return None
        if last is None:
            proc, iin, iout, country = self._labels(e)
            d = (bo, po, br, pr)
        else:
            proc, iin, iout, country = last[4], last[5], last[6], last[7]
            d = (bo - last[0], po - last[1], br - last[2], pr - last[3])
            if min(d) < 0:
                d = (bo, po, br, pr)
        if any(d):
            for totals, label in ((self.by_process, proc), (self.by_country, country)):
                if label is not None:
                    t = totals.slot(label)
                    for i in range(4):
                        t[i] += d[i]
            # orig bytes arrive on the in interface and leave by the out one; replies back
            for name, rx, tx in ((iin, (d[0], d[1]), (d[2], d[3])),
                                 (iout, (d[2], d[3]), (d[0], d[1]))):
                if name is not None:
                    t = self.by_iface.slot(name)
                    t[0] += rx[0]
                    t[1] += rx[1]
                    t[2] += tx[0]
                    t[3] += tx[1]
        return (bo, po, br, pr, proc, iin, iout, country)

    def event(self, kind, e, mono, wall):
        if kind == "destroy":
            last = self._last.pop(e.key, None)
            if last is not None:
                self._add(e, last, True)

    def dump(self, table, mono, wall, resync, events):
        flows = {}
        last = self._last
        new_last = {}
        count = 0
        for r in table:
            if r.closed:
                continue
            e = r.entry
            count += 1
            k = (proto_name(e.l4proto), state_name(e.l4proto, e.state) or "")
            flows[k] = flows.get(k, 0) + 1
            got = self._add(e, last.get(e.key))
            if got is not None:
                new_last[e.key] = got
        self._last = new_last
        self._flows = flows
        self._count = count
        if self.count is not None:
            try:
                self._count = self.count()
            except OSError:
                pass
        self._text = self.render()
        if self.path:
            write_atomic(self.path, self._text)

    def render(self):
        fams = [("flowtop_conntrack_entries", "gauge", "Entries in the conntrack table.",
                 [({}, self._count)])]
        if self.table_max is not None:
            m = self.table_max()
            if m is not None:
                fams.append(("flowtop_conntrack_max", "gauge",
                             "Size of the conntrack table (nf_conntrack_max).", [({}, m)]))
        if self.stats is not None:
            try:
                per_cpu = self.stats()
            except OSError:
                per_cpu = {}
            names = sorted({n for v in per_cpu.values() for n in v})
            for n in names:
                fams.append(("flowtop_conntrack_%s_total" % n, "counter",
                             "conntrack statistics per CPU: %s." % n,
                             [({"cpu": cpu}, v[n]) for cpu, v in sorted(per_cpu.items())
                              if n in v]))
        fams.append(("flowtop_flows", "gauge", "Open flows by protocol and state.",
                     [({"proto": p, "state": s}, n) for (p, s), n in sorted(self._flows.items())]))
        for what, idx in (("bytes", 0), ("packets", 1)):
            fams.append(("flowtop_process_%s_total" % what, "counter",
                         "%s of flows by local process, orig and reply direction." % what,
                         [({"process": p, "direction": d}, t[idx + off])
                          for p, t in sorted(self.by_process.items())
                          for d, off in (("orig", 0), ("reply", 2))]))
            if self.by_country:
                fams.append(("flowtop_country_%s_total" % what, "counter",
                             "%s of flows by the remote end's country (GeoIP), orig and reply "
                             "direction." % what,
                             [({"country": c, "direction": d}, t[idx + off])
                              for c, t in sorted(self.by_country.items())
                              for d, off in (("orig", 0), ("reply", 2))]))
            fams.append(("flowtop_interface_%s_total" % what, "counter",
                         "%s of flows received (rx) and sent (tx) per interface." % what,
                         [({"interface": i, "direction": d}, t[idx + off])
                          for i, t in sorted(self.by_iface.items())
                          for d, off in (("rx", 0), ("tx", 2))]))
        return exposition(fams)

    def text(self):
        return self._text

    def flush(self, mono, wall):
        pass

    def finish(self, table, mono, wall):
        pass

    def close(self):
        listener = getattr(self, "listener", None)
        if listener is not None:
            listener.close()


def write_atomic(path, text):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def parse_listen(text):
    """'[ADDR]:PORT', ':PORT', 'ADDR:PORT' -> (addr, port); no address: all (::)."""
    t = text.strip()
    if t.startswith("["):
        addr, _, port = t[1:].partition("]:")
    else:
        addr, _, port = t.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("bad port in %r" % text)
    return addr or "::", int(port)


class HttpListener:
    """GET /metrics (or /) -> the current exposition, one request per
    connection, in a daemon thread.  Anything else: 404."""

    def __init__(self, addr, port, text):
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.sock.bind((addr, port))
        self.sock.listen(16)
        self.text = text
        import threading
        self.thread = threading.Thread(target=self._serve, name="flowtop-metrics", daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                conn.settimeout(5)
                self._answer(conn)
            except OSError:
                pass
            finally:
                conn.close()

    def _answer(self, conn):
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 8192:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        line = data.split(b"\r\n", 1)[0].split()
        if len(line) >= 2 and line[0] in (b"GET", b"HEAD") and line[1].split(b"?")[0] in (
                b"/metrics", b"/"):
            body = self.text().encode("utf-8")
            head = ("HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8"
                    "\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
            conn.sendall(head.encode() + (body if line[0] == b"GET" else b""))
        else:
            conn.sendall(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def conntrack_max(root="/proc/sys"):
    try:
        with open(os.path.join(root, "net/netfilter/nf_conntrack_max")) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def metrics_sink(opts, enrich, source):
    """The sink of --metrics/--metrics-file, with its listener started."""
    from ..netlink import conntrack as ct
    sock = getattr(source, "sock", None)
    stats = (lambda: ct.stats_cpu(sock)) if sock is not None else None
    count = (lambda: ct.count(sock)) if sock is not None else None
    sink = MetricsSink(enrich, stats, conntrack_max, opts.metrics_file,
                       period=min(5.0, max(opts.interval, 1.0)), count=count)
    sink.listener = None
    if opts.metrics:
        addr, port = parse_listen(opts.metrics)
        sink.listener = HttpListener(addr, port, sink.text)
    return sink
