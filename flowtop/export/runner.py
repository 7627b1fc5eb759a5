"""The headless loop that feeds the exports (IPFIX, metrics, syslog).

It reuses the live view's pieces: ``collector.EventReader`` drains NEW/DESTROY
events in its thread, ``collector.tick`` applies a full dump to a ``FlowTable``
and refreshes the enrichers.  Each sink gets the events as they are
drained (every TICK seconds), each full dump, and a flush.  An event
overflow (ENOBUFS) is said on stderr and answered by a full dump at once.
"""

import time

from ..netlink.conntrack import MAX_DUMP_RETRIES
from ..netlink.errors import DumpInterrupted
from ..table import FlowTable

TICK = 0.25          # seconds between event drains: the latency of a final record
SAY_EVERY = 60.0     # seconds between two lines about lost events
TICK_BACKLOG = 0.016  # while messages wait for their pace (exporter.BURST / PACE)


def dump_period(opts, sinks, writer):
    """Seconds between full dumps: what the sinks need, and the interval
    when text/JSON is written beside them."""
    periods = [s.period for s in sinks if getattr(s, "period", None)]
    if writer is not None or not periods:
        periods.append(opts.interval)
    return max(0.05, min(periods))


class Runner:
    """``sinks``: objects with ``event(kind, entry, mono, wall)``,
    ``dump(table, mono, wall, resync, events)``, ``flush(mono, wall)``,
    ``finish(table, mono, wall)``, optional ``period`` (seconds between
    dumps they need) and ``close()``."""

    def __init__(self, source, opts, enrich, sinks, say, writer=None, events=None,
                 monotonic=time.monotonic, clock=time.time, sleep=time.sleep):
        self.source, self.opts, self.enrich, self.sinks = source, opts, enrich, sinks
        self.say, self.writer = say, writer
        self.monotonic, self.clock, self.sleep = monotonic, clock, sleep
        self.table = FlowTable()
        self.events = events
        self.resyncs = 0
        self.dumps = 0
        self._said = None
        self._last_wall = None

    def _open_events(self):
        if self.events is not None or not self.source.live:
            return
        from ..collector import EventReader
        try:
            self.events = EventReader()
            self.events.start()
        except OSError as exc:
            self.events = None
            self.say("no conntrack events (%s): flows end at the next full dump"
                     % (exc.strerror or exc))

    def _full(self):
        from ..collector import tick
        for attempt in range(MAX_DUMP_RETRIES + 1):
            try:
                return tick(self.source, self.table, self.enrich, self.monotonic)
            except DumpInterrupted:
                if attempt == MAX_DUMP_RETRIES:
                    raise
        return None

    def _drain(self, mono, wall):
        if self.events is None:
            return False
        events, lost = self.events.drain()
        for kind, e in events:
            for s in self.sinks:
                s.event(kind, e, mono, wall)
        if lost:
            self.resyncs += 1
            if self._said is None or mono - self._said >= SAY_EVERY:
                self._said = mono
                self.say("conntrack events were lost (ENOBUFS: the event socket overflowed, "
                         "%d times so far); resynchronising with a full dump, flows that ended "
                         "meanwhile are exported as forced ends" % self.resyncs)
        return lost

    def run(self):
        period = dump_period(self.opts, self.sinks, self.writer)
        self._open_events()
        live = self.source.live
        next_dump = self.monotonic()
        resync = False
        try:
            while True:
                mono, wall = self.monotonic(), self.clock()
                resync = self._drain(mono, wall) or resync
                if resync or mono >= next_dump or not live:
                    wall = self._full()
                    if wall is None:
                        break
                    mono = self.monotonic() if live else wall
                    self.dumps += 1
                    self._last_wall = wall
                    for s in self.sinks:
                        s.dump(self.table, mono, wall, resync, self.events is not None)
                    if self.writer is not None:
                        self.writer.write_rows(self.table, wall)
                    resync = False
                    next_dump += period
                    if next_dump <= mono:
                        next_dump = mono + period
                for s in self.sinks:
                    s.flush(mono, wall)
                if not live:
                    if getattr(self.source, "finished", False):
                        break
                    continue
                tick = TICK_BACKLOG if any(getattr(s, "backlog", 0) for s in self.sinks) else TICK
                self.sleep(max(0.0, min(tick, next_dump - self.monotonic())))
        finally:
            self._stop()

    def _stop(self):
        """Last records of the flows still open (from one more dump when
        the kernel answers), then close everything."""
        if self.events is not None:
            self.events.stop()
        table = None
        mono, wall = self.monotonic(), self.clock()
        if self.source.live:
            try:
                if self._full() is not None:
                    table = self.table
                    mono, wall = self.monotonic(), self.clock()
            except (OSError, DumpInterrupted):
                table = None
        else:
            wall = mono = self._last_wall if self._last_wall is not None else wall
        for s in self.sinks:
            try:
                s.finish(table, mono, wall)
                s.flush(mono, wall)
            except OSError:
                pass


class IpfixSink:
    """An IpfixExporter as a runner sink: dumps every quarter of the active
    timeout, so a flow is reported within 1.25 timeouts."""

    def __init__(self, exporter, sender, monotonic=time.monotonic, sleep=time.sleep):
        self.exporter = exporter
        self.sender = sender
        self.period = exporter.active_timeout / 4
        self.monotonic, self.sleep = monotonic, sleep

    def event(self, kind, e, mono, wall):
        self.exporter.event(kind, e, mono, wall)

    def dump(self, table, mono, wall, resync, events):
        self.exporter.dump(table, mono, wall, resync, events)

    def flush(self, mono, wall):
        self.exporter.flush(mono, wall)

    @property
    def backlog(self):
        return self.exporter.backlog

    def finish(self, table, mono, wall):
        self.exporter.finish(table, mono, wall)
        self.exporter.flush(mono, wall)
        self.exporter.drain(self.monotonic, self.sleep)

    def close(self):
        self.sender.close()


def ipfix_sink(opts, enrich):
    from .exporter import IpfixExporter, UdpSender, flow_info, parse_target
    host, port = parse_target(opts.ipfix, 4739)
    try:
        sender = UdpSender(host, port)
    except OSError as exc:      # said as "--ipfix HOST: reason" (main.explain)
        raise OSError(exc.errno, exc.strerror or str(exc), "--ipfix " + opts.ipfix) from None
    info_of, ifname = flow_info(enrich) if enrich is not None else (None, None)
    exporter = IpfixExporter(sender, domain=opts.ipfix_domain, mtu=opts.ipfix_mtu,
                             active_timeout=opts.ipfix_active_timeout,
                             template_refresh=opts.ipfix_template_refresh,
                             info_of=info_of, ifname=ifname)
    return IpfixSink(exporter, sender)


def run(source, opts, stdout, say, enrich, make_writer):
    """The export loop of ``opts`` (main.main calls it instead of the views)."""
    sinks = []
    try:
        if opts.ipfix:
            sinks.append(ipfix_sink(opts, enrich))
        if opts.syslog:
            from .syslog import SyslogSender, SyslogSink
            sinks.append(SyslogSink(SyslogSender(opts.syslog), enrich))
        if opts.metrics or opts.metrics_file:
            from .metrics import metrics_sink
            sinks.append(metrics_sink(opts, enrich, source))
        writer = None
        if not opts.quiet and (opts.output in ("json", "csv") or opts.continuous):
            writer = make_writer(opts, stdout, enrich)
        Runner(source, opts, enrich, sinks, say, writer).run()
    finally:
        for s in sinks:
            close = getattr(s, "close", None)
            if close is not None:
                try:
                    close()
                except OSError:
                    pass
