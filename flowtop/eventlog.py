"""``--events``: a connection log.  One line per flow as it starts (a NEW
event) and as it ends (DESTROY, with its duration and final counters), with
process, user, names and country: "when I open website X, what else
connects in the background?".  Text, JSON Lines (``--json``) or CSV
(``--csv``); events the kernel dropped (ENOBUFS) are a line of their own.

No loop of its own: a sink of ``export.runner.Runner``, which drains
``collector.EventReader`` and keeps the enrichment fresh with full dumps (few:
``LogSink.period``).
"""

import csv
import json
import time

from .netlink.uapi import IPPROTO_GRE
from .text import duration, human, sanitize

# Seconds between full dumps: they only refresh the process map and the
# table a lost-events resync rebuilds (a dump at 100k flows costs ~1 s CPU).
DUMP_PERIOD = 30.0
REMEMBER = 65536          # flows whose start is remembered for their end (bounded)


class LogSink:
    """A Runner sink writing the connection log to ``stream``.

    ``fmt``: "text" | "json" | "csv"; ``keep(entry)``: the family/protocol
    filter (None: all); ``redact``: a views.redact.Redactor or None."""

    period = DUMP_PERIOD

    def __init__(self, stream, fmt="text", enrich=None, keep=None, redact=None, units="si"):
        self.stream, self.fmt, self.enrich = stream, fmt, enrich
        self.keep, self.redact, self.units = keep, redact, units
        self._started = {}         # flow key -> (wall at NEW, enrichment fields)
        self._csv = csv.writer(stream, lineterminator="\n") if fmt == "csv" else None
        self._header = False
        from .enrich.bundle import FIELDS
        from .views.record import COLUMNS
        self.columns = ("event", "duration") + COLUMNS + (FIELDS if enrich is not None else ())
        self.written = self.lost = 0
        self._pending = []         # (kind, entry, wall) of the drain being read

    # -- runner sink ------------------------------------------------------------------
    def event(self, kind, e, mono, wall):
        """Held until ``flush`` (after each drain): the process map is
        refreshed once for all the new flows of a drain, not per flow
        (per flow, 2,000 new flows a second fell behind)."""
        if self.keep is None or self.keep(e):
            self._pending.append((kind, e, wall))

    def flush(self, mono, wall):
        pending, self._pending = self._pending, []
        news = [e for kind, e, _w in pending if kind == "new"]
        if news and self.enrich is not None:
            self.enrich.tick_new(news)           # their sockets and routes, before they close
        for kind, e, when in pending:
            self._log(kind, e, when)
        self.stream.flush()

    def _log(self, kind, e, wall):
        if kind == "new":
            fields = self._fields(e)
            if len(self._started) >= REMEMBER:
                self._started.clear()
            self._started[e.key] = (wall, fields)
            self._write("start", e, wall, fields, None)
        elif kind == "destroy":
            seen = self._started.pop(e.key, None)
            fields = seen[1] if seen is not None else self._fields(e)
            self._write("end", e, wall, fields, self._duration(e, wall, seen))

    def dump(self, table, mono, wall, resync, events):
        if resync:                 # the runner drained an overflow (ENOBUFS)
            self.flush(mono, wall)
            self.lost += 1
            self._write_lost(wall)

    def finish(self, table, mono, wall):
        pass

    # -- records ----------------------------------------------------------------------
    def _fields(self, e):
        return self.enrich.fields(e) if self.enrich is not None else {}

    @staticmethod
    def _duration(e, wall, seen):
        """(seconds, exact): from the kernel's start and stop timestamps,
        else since the NEW event (None when the flow is older than us)."""
        if e.start is not None and e.stop is not None and e.stop >= e.start:
            return (e.stop - e.start) / 1e9, True
        if seen is not None:
            return max(0.0, wall - seen[0]), False
        return None, False

    def record(self, event, e, wall, fields, took):
        """The JSON/CSV record: "event", "duration", then the --json keys."""
        from .views.record import record
        r = {"event": event, "duration": None if took is None or took[0] is None
             else round(took[0], 3)}
        r.update(record(e, wall))
        r.update(fields)
        if self.redact is not None:
            r = self.redact.record(r)
        return r

    def _write(self, event, e, wall, fields, took):
        self.written += 1
        if self.fmt == "json":
            self.stream.write(json.dumps(self.record(event, e, wall, fields, took),
                                         separators=(",", ":")) + "\n")
        elif self.fmt == "csv":
            from .views.export import csv_row
            self._csv_head()
            self._csv.writerow(csv_row(self.record(event, e, wall, fields, took)))
        else:
            self.stream.write(self.text(event, e, wall, fields, took) + "\n")

    def _write_lost(self, wall):
        if self.fmt == "json":
            self.stream.write(json.dumps({"event": "lost", "time": round(wall, 3)}) + "\n")
        elif self.fmt == "csv":          # the same columns: event, duration, time, the rest empty
            self._csv_head()
            self._csv.writerow(["lost", "", "%.3f" % wall] + [""] * (len(self.columns) - 3))
        else:
            self.stream.write("%s LOST  conntrack events were lost (ENOBUFS: the kernel's "
                              "queue overflowed); flows that started or ended meanwhile "
                              "are missing\n" % _clock(wall))

    def _csv_head(self):
        if not self._header:
            self._csv.writerow(self.columns)
            self._header = True

    def text(self, event, e, wall, fields, took):
        """One log line: time, START/END, protocol, both ends (names when
        known), service, process and user, countries; on END the duration,
        the final counters and the last state."""
        from .model import proto_name, state_name
        hide = self.redact

        def end(addr, port, host, country):
            shown = hide.address(addr) if hide is not None else addr
            host = hide.name(addr, host) if hide is not None and host else host
            if host:
                shown = sanitize(host, 64)
            if port is not None:
                shown = ("[%s]:%d" if ":" in shown and not host else "%s:%d") % (shown, port)
            return shown + (" %s" % sanitize(country, 3) if country and country != "--" else "")

        gre = e.l4proto == IPPROTO_GRE
        parts = [_clock(wall), "START" if event == "start" else "END  ",
                 proto_name(e.l4proto),
                 end(e.src, None if gre else e.sport, fields.get("src_host"),
                     fields.get("src_country")),
                 "->",
                 end(e.dst, None if gre else e.dport, fields.get("dst_host"),
                     fields.get("dst_country"))]
        if fields.get("service"):
            parts.append("(%s)" % sanitize(fields["service"], 24))
        proc = fields.get("process")
        if proc:
            who = sanitize(proc, 32) + ("/%d" % fields["pid"] if fields.get("pid") else "")
            if fields.get("user"):
                who += " user " + sanitize(fields["user"], 32)
            parts.append(who)
        if event == "end":
            seconds, exact = took if took else (None, False)
            took_s = "%.1fs" % seconds if seconds is not None and seconds < 10 else \
                duration(seconds)
            parts.append("after %s%s" % (took_s, "" if exact or seconds is None else "~"))
            parts.append("sent %s/%s pkts  received %s/%s pkts" % (
                human(e.bytes_orig, self.units), _n(e.packets_orig),
                human(e.bytes_reply, self.units), _n(e.packets_reply)))
            st = state_name(e.l4proto, e.state)
            if st:
                parts.append(st)
        return " ".join(parts)


def _n(v):
    return "-" if v is None else str(v)


def _clock(wall):
    return time.strftime("%H:%M:%S", time.localtime(wall)) + ".%03d" % (int(wall * 1000) % 1000)


def run(source, opts, stdout, say, enrich):
    """``--events`` until interrupted: main.main calls it instead of the views."""
    from . import api
    from .export.runner import Runner
    from .views.redact import of as redactor
    sink = LogSink(stdout, opts.output, enrich, api.make_filter(opts.families, opts.protocols),
                   redactor(opts, enrich), opts.units)
    Runner(source, opts, enrich, [sink], say).run()
