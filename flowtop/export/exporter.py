"""The IPFIX exporting process: which flow is reported when, with which
deltas, in which message.  Time, the enrichment and the datagram sender are
passed in; ``ipfix``/``records`` do the encoding.

Per conntrack entry it keeps the counters last reported, so every record
carries deltas and their sum over a flow's life is the kernel's final
counter (counters are reported from 0: a flow found at start-up reports
its whole history in its first record, which starts at the flow's start).
Records go out at the active timeout (after the first full dump past it:
the runner dumps every quarter timeout) and when the flow ends: a DESTROY
event (final counters), or a full dump that no longer lists it.
"""

import collections
import errno
import socket

from . import ipfix as ie
from . import records as rec
from ..memo import Memo
from ..netlink import uapi as u

_ENDED_STATES = {
    u.IPPROTO_TCP: frozenset((u.TCP_CONNTRACK_FIN_WAIT, u.TCP_CONNTRACK_CLOSE_WAIT,
                              u.TCP_CONNTRACK_LAST_ACK, u.TCP_CONNTRACK_TIME_WAIT,
                              u.TCP_CONNTRACK_CLOSE)),
    u.IPPROTO_SCTP: frozenset((u.SCTP_CONNTRACK_CLOSED, u.SCTP_CONNTRACK_SHUTDOWN_SENT,
                               u.SCTP_CONNTRACK_SHUTDOWN_RECD,
                               u.SCTP_CONNTRACK_SHUTDOWN_ACK_SENT)),
    u.IPPROTO_DCCP: frozenset((u.CT_DCCP_CLOSEREQ, u.CT_DCCP_CLOSING, u.CT_DCCP_TIMEWAIT)),
}
_SEEN_REPLY = 1 << u.IPS_SEEN_REPLY_BIT

# Datagrams a second, at most BURST at once: a collector's default socket
# buffer (208 KiB) holds ~150 of 1400 bytes; 25k due flows at a dump make ~1,500.
PACE = 4000.0
BURST = 64
MAX_BACKLOG = 200000      # messages (~280 MB at 1400 B): beyond, the oldest go


def _other(st, e):
    """Is ``e`` another flow than the one ``st`` follows (same tuple, the
    old one destroyed)?  NEW events carry no timestamp: only ids then."""
    last = st.entry
    if last.id != e.id:
        return True
    return last.start is not None and e.start is not None and last.start != e.start


def end_reason(e):
    """flowEndReason of a destroyed entry: end of flow when its protocol
    had closed (TCP FIN/RST states, SCTP shutdown, DCCP close), else idle
    timeout (conntrack expires idle flows)."""
    ended = _ENDED_STATES.get(e.l4proto)
    if ended is not None and e.state in ended:
        return ie.END_OF_FLOW
    return ie.END_IDLE


class _State:
    """One flow: its last entry, what was reported (bytes/packets each
    way), since when the next record counts, when it was last reported."""

    __slots__ = ("entry", "bo", "po", "br", "pr", "since_ms", "last", "missing", "gen",
                 "sent")

    def __init__(self, entry, mono, wall):
        self.entry = entry
        self.bo = self.po = self.br = self.pr = 0
        start = entry.start
        self.since_ms = start // 1000000 if start else int(wall * 1000)
        self.last = mono
        self.missing = 0
        self.gen = 0
        self.sent = False


class UdpSender:
    """Datagrams to one collector, never blocking: a collector that is down
    or slow costs the datagrams (counted in ``dropped``), nothing else."""

    def __init__(self, host, port):
        # bytes: a str host goes through the idna codec, absent on python3-light
        family, kind, proto, _name, addr = socket.getaddrinfo(
            host.encode("ascii", "replace"), port, 0, socket.SOCK_DGRAM, socket.IPPROTO_UDP)[0]
        self.sock = socket.socket(family, kind, proto)
        self.sock.setblocking(False)
        self.sock.connect(addr)
        self.sent = self.dropped = 0

    def __call__(self, data):
        try:
            self.sock.send(data)
            self.sent += 1
        except OSError as exc:
            if exc.errno not in (errno.ECONNREFUSED, errno.EAGAIN, errno.ENOBUFS,
                                 errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EMSGSIZE,
                                 errno.EPERM, errno.ENOMEM):
                raise
            self.dropped += 1

    def close(self):
        self.sock.close()


def parse_target(text, default_port):
    """'host', 'host:port', '[v6]:port', 'v6' -> (host, port)."""
    t = text.strip()
    if t.startswith("["):
        host, _, rest = t[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif t.count(":") == 1:
        host, _, port = t.partition(":")
    else:
        host, port = t, ""
    if not host:
        raise ValueError("no host in %r" % text)
    if not port:
        return host, default_port
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("bad port in %r" % text)
    return host, int(port)


class IpfixExporter:
    """Flow state and message building.  ``send(bytes)`` takes one message;
    ``info_of(entry)`` -> records.Info (None: nothing known);
    ``ifname(index)`` -> interface name or None."""

    def __init__(self, send, domain=0, mtu=1400, active_timeout=60.0, template_refresh=60.0,
                 info_of=None, ifname=None, pace=PACE):
        self.send = send
        self.domain = domain
        self.mtu = mtu
        self.active_timeout = active_timeout
        self.template_refresh = template_refresh
        self.info_of = info_of
        self.ifname = ifname
        self.flows = {}
        self.templates = rec.Templates()
        self.sequence = 0
        self.records = 0          # data records sent, all told
        self.messages = 0
        self.overflowed = 0       # messages dropped unsent (MAX_BACKLOG)
        self.pace = pace
        self._out = collections.deque()
        self._tokens = 0.0
        self._paced = None
        self._items = []
        self._announced = set()
        self._if_announced = set()
        self._iface_template = rec.interface_template()
        self._refreshed = None
        self._gen = 0
        self._ended = {}          # key -> _State of flows a dump ended (a DESTROY may follow)

    # -- what the runner reports -------------------------------------------------------
    def event(self, kind, e, mono, wall):
        if kind == "new":
            if e.key not in self.flows:
                self.flows[e.key] = _State(e, mono, wall)
        elif kind == "destroy":
            self._destroyed(e, mono, wall)

    def dump(self, table, mono, wall, resync=False, events=True):
        """A full dump was applied to ``table`` (a FlowTable): new flows
        start, flows due are reported, flows it no longer lists end.  With
        events flowing, a flow missing from one dump may just have its
        DESTROY event in flight: it ends at the second dump without it,
        or at once after an event overflow (``resync``: forced end)."""
        self._gen += 1
        gen = self._gen
        flows = self.flows
        timeout = self.active_timeout
        for r in table:
            if r.closed:
                continue
            e = r.entry
            st = flows.get(e.key)
            if st is not None and _other(st, e):
                self._final(st, st.entry, mono, wall, ie.END_FORCED)
                st = None
            if st is not None and not st.sent and e.start and st.entry.start is None:
                st.since_ms = e.start // 1000000      # first seen in an event, without times
            if st is None:
                st = flows[e.key] = _State(e, mono, wall)
                if e.start:       # a flow older than flowtop reports as if seen since its start
                    st.last = mono - min(timeout, max(0.0, wall - e.start / 1e9))
            st.entry = e
            st.missing = 0
            st.gen = gen
            if mono - st.last >= timeout:
                self._report(st, e, wall, ie.END_ACTIVE, False)
                st.last = mono
        gone = [k for k, st in flows.items() if st.gen != gen]
        for key in gone:
            st = flows[key]
            st.missing += 1
            if resync or not events or st.missing >= 2:
                del flows[key]
                reason = ie.END_FORCED if (resync or events) else end_reason(st.entry)
                self._final(st, st.entry, mono, wall, reason)
                self._remember(key, st)

    def finish(self, table, mono, wall):
        """Exit: every flow still open ends here (forced end), with the
        counters of ``table``'s last dump (None: the last ones seen)."""
        if table is not None:
            self.dump(table, mono, wall)
        for st in list(self.flows.values()):
            self._final(st, st.entry, mono, wall, ie.END_FORCED)
        self.flows.clear()

    # -- records -----------------------------------------------------------------------
    def _destroyed(self, e, mono, wall):
        st = self.flows.pop(e.key, None)
        if st is not None and _other(st, e):
            self._final(st, st.entry, mono, wall, ie.END_FORCED)
            st = None
        if st is None:
            ended = self._ended.pop(e.key, None)
            st = _State(e, mono, wall)
            if ended is not None and not _other(ended, e):
                st = ended            # ended by a dump: report only what is left
        if not st.sent and e.start:
            st.since_ms = e.start // 1000000      # NEW events carry no timestamp; DESTROY does
        last = st.entry
        if e.state is None and last.state is not None:
            reason = end_reason(last)         # DESTROY events carry no protocol state
        else:
            reason = end_reason(e)
        if e.bytes_orig is None and last.bytes_orig is not None:
            e = last
        self._final(st, e, mono, wall, reason, e.stop)

    def _remember(self, key, st):
        ended = self._ended
        ended[key] = st
        while len(ended) > 65536:
            del ended[next(iter(ended))]

    def _final(self, st, e, mono, wall, reason, stop=None):
        self._report(st, e, wall, reason, True, stop)

    def _report(self, st, e, wall, reason, final, stop=None):
        end_ms = stop // 1000000 if stop else int(wall * 1000)
        start_ms = min(st.since_ms, end_ms)
        bo, po, br, pr = e.bytes_orig, e.packets_orig, e.bytes_reply, e.packets_reply
        sends = []
        if bo is not None and po is not None and br is not None and pr is not None:
            d = (bo - st.bo, po - st.po)
            if d[0] < 0 or d[1] < 0:          # zeroed by someone (conntrack -Z): from 0
                d = (bo, po)
            r = (br - st.br, pr - st.pr)
            if r[0] < 0 or r[1] < 0:
                r = (br, pr)
            if d[1] > 0:
                sends.append((rec.ORIG, d))
            if r[1] > 0:
                sends.append((rec.REPLY, r))
            if final and not sends:
                sends.append((rec.ORIG, (0, 0)))      # carries the end reason
            st.bo, st.po, st.br, st.pr = bo, po, br, pr
        elif final or not st.sent:
            sends.append((rec.ORIG, None))
            if (e.status or 0) & _SEEN_REPLY:
                sends.append((rec.REPLY, None))
        if not sends:
            return
        info = self.info_of(e) if self.info_of is not None else None
        info = info or rec.NO_INFO
        nat = rec.is_nat(e)
        for direction, counts in sends:
            t, data = rec.record(self.templates, e, direction, start_ms, end_ms, counts, reason,
                                 info, nat)
            if t.id not in self._announced:
                self._announced.add(t.id)
                self._items.append((ie.TEMPLATE_SET_ID, t.definition(), False))
            self._items.append((t.id, data, True))
        for index in info.ifaces:
            if index and index not in self._if_announced:
                self._announce_iface(index)
        st.sent = True
        st.since_ms = end_ms

    def _announce_iface(self, index):
        name = self.ifname(index) if self.ifname is not None else None
        if name is None:
            return
        t = self._iface_template
        if t.id not in self._announced:
            self._announced.add(t.id)
            self._items.append((ie.OPTIONS_TEMPLATE_SET_ID, t.definition(), False))
        self._if_announced.add(index)
        self._items.append((t.id, t.record([index, name]), True))

    # -- messages ----------------------------------------------------------------------
    def flush(self, mono, wall):
        """Pack what is queued into messages (first the templates again, and
        the interface names, when the refresh interval has passed) and send
        as many as the pace allows; the rest wait for the next flush."""
        if self._refreshed is None or mono - self._refreshed >= self.template_refresh:
            if self._refreshed is not None:
                self._refresh()
            self._refreshed = mono
        if self._items:
            items, self._items = self._items, []
            messages, self.sequence = ie.pack_messages(items, self.mtu, self.domain,
                                                       self.sequence, wall)
            self.records += sum(1 for item in items if item[2])
            self._out.extend(messages)
            while len(self._out) > MAX_BACKLOG:       # a collector this slow loses the oldest
                self._out.popleft()
                self.overflowed += 1
        self._send_paced(mono)

    def _send_paced(self, mono):
        if self._paced is None:
            self._tokens = float(BURST)
        else:
            self._tokens = min(float(BURST), self._tokens + (mono - self._paced) * self.pace)
        self._paced = mono
        out = self._out
        while out and self._tokens >= 1.0:
            self.send(out.popleft())
            self.messages += 1
            self._tokens -= 1.0

    @property
    def backlog(self):
        """Messages packed but not sent yet."""
        return len(self._out)

    def drain(self, monotonic, sleep, limit=10.0):
        """Send the backlog at the pace, for ``limit`` seconds at most (exit)."""
        end = monotonic() + limit
        while self._out and monotonic() < end:
            self._send_paced(monotonic())
            if self._out:
                sleep(BURST / self.pace)

    def _refresh(self):
        head = []
        for t in self.templates.by_key.values():
            if t.id in self._announced:
                head.append((ie.TEMPLATE_SET_ID, t.definition(), False))
        t = self._iface_template
        if t.id in self._announced:
            head.append((ie.OPTIONS_TEMPLATE_SET_ID, t.definition(), False))
            for index in sorted(self._if_announced):
                name = self.ifname(index) if self.ifname is not None else None
                if name is not None:
                    head.append((t.id, t.record([index, name]), True))
        self._items[:0] = head


def flow_info(enrich):
    """``info_of(entry)`` and ``ifname(index)`` from an Enrichment."""
    index_of = Memo(4096)
    name_of = Memo(4096)

    def index(name):
        if name is None:
            return 0
        i = index_of.get(name)
        if i is None:
            try:
                i = socket.if_nametoindex(name)
            except OSError:
                i = 0
            index_of.put(name, i)
            if i:
                name_of.put(i, name)
        return i

    process = enrich.process

    def info_of(e):
        iin, iout = enrich.ifaces_of(e)
        other = e.reply_src if e.reply_src is not None else e.dst
        procs = (None, None)
        if process is not None:
            try:
                procs = process.lookup_both(e)
            except OSError:
                pass
        return rec.Info((index(iin), index(iout)), (enrich.is_local(e.src), enrich.is_local(other)),
                        procs)

    return info_of, name_of.get
