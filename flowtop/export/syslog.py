"""Flow start/end events as RFC 5424 syslog messages carrying JSON, for
log pipelines (Vector, Loki, Elastic, rsyslog).

The message text is the ``--json`` record of the flow plus ``"event"``
("start" or "end"), so a pipeline parses one schema.  Starts come from
NEW events (flows older than flowtop are not announced: a start-up would
flood the target), ends from DESTROY events with the final counters.
Targets: ``udp://HOST:PORT``, ``tcp://HOST:PORT`` (RFC 6587 octet
counting) or ``unix:PATH`` (a datagram socket such as /dev/log).  Sending
never blocks: what cannot go out now is dropped and counted.
"""

import errno
import os
import socket
import time

FACILITY_DAEMON = 3
SEVERITY_INFO = 6
PRI = FACILITY_DAEMON * 8 + SEVERITY_INFO
_SOFT = (errno.EAGAIN, errno.ENOBUFS, errno.ECONNREFUSED, errno.EHOSTUNREACH,
         errno.ENETUNREACH, errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ENOENT,
         errno.EINPROGRESS, errno.EMSGSIZE)


def rfc5424(text, msgid, wall, hostname, pid, app="flowtop"):
    """One RFC 5424 message: header, no structured data, ``text`` as MSG."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall)) + ".%03dZ" % (
        int(wall * 1000) % 1000)
    return "<%d>1 %s %s %s %d %s - %s" % (PRI, stamp, hostname or "-", app, pid, msgid, text)


def parse_target(text):
    """'udp://h:p' | 'tcp://h:p' | 'unix:PATH' -> (kind, address)."""
    from .exporter import parse_target as host_port
    if text.startswith("unix:"):
        path = text[5:]
        if not path:
            raise ValueError("no path in %r" % text)
        return "unix", path
    for kind in ("udp", "tcp"):
        if text.startswith(kind + "://"):
            return kind, host_port(text[len(kind) + 3:], 514)
    raise ValueError("syslog target must be udp://HOST:PORT, tcp://HOST:PORT or unix:PATH: %r"
                     % text)


class SyslogSender:
    """Messages to one target without blocking; TCP reconnects on the next
    message after a failure."""

    def __init__(self, target):
        self.kind, self.address = parse_target(target)
        self.sock = None
        self.sent = self.dropped = 0
        self._connect()

    def _connect(self):
        if self.kind == "unix":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.setblocking(False)
            self.sock, self._to = s, self.address
            return
        host, port = self.address
        kind = socket.SOCK_DGRAM if self.kind == "udp" else socket.SOCK_STREAM
        family, _k, proto, _n, addr = socket.getaddrinfo(host.encode("ascii", "replace"), port,
                                                         0, kind)[0]
        s = socket.socket(family, kind, proto)
        s.setblocking(False)
        try:
            s.connect(addr)
        except OSError as exc:
            if exc.errno not in _SOFT:
                s.close()
                raise
        self.sock, self._to = s, None

    def __call__(self, message):
        data = message.encode("utf-8", "replace")
        if self.kind == "tcp":
            data = b"%d %s" % (len(data), data)
        try:
            if self.sock is None:
                self._connect()
            if self._to is not None:
                self.sock.sendto(data, self._to)
            elif self.kind == "tcp":
                n = self.sock.send(data)
                if n != len(data):          # a cut frame would corrupt the stream
                    raise OSError(errno.EPIPE, "short send")
            else:
                self.sock.send(data)
            self.sent += 1
        except OSError as exc:
            if exc.errno not in _SOFT:
                raise
            self.dropped += 1
            if self.kind == "tcp":
                self.close()

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class SyslogSink:
    """A runner sink: NEW -> "start", DESTROY -> "end" messages."""

    period = None

    def __init__(self, send, enrich=None, hostname=None, pid=None):
        self.send = send
        self.enrich = enrich
        self._tail = None
        if enrich is not None:
            from ..views.tail import JsonTail
            self._tail = JsonTail(enrich).line
        self.hostname = hostname if hostname is not None else _hostname()
        self.pid = pid if pid is not None else os.getpid()

    def _text(self, e, wall, event):
        from ..views.record import json_line
        line = json_line(e, wall)[:-2]
        tail = self._tail(e) if self._tail is not None else ""
        return '%s%s,"event":"%s"}' % (line, tail, event)

    def event(self, kind, e, mono, wall):
        if kind == "new":
            self.send(rfc5424(self._text(e, wall, "start"), "flow-start", wall, self.hostname,
                              self.pid))
        elif kind == "destroy":
            self.send(rfc5424(self._text(e, wall, "end"), "flow-end", wall, self.hostname,
                              self.pid))

    def dump(self, table, mono, wall, resync, events):
        pass

    def flush(self, mono, wall):
        pass

    def finish(self, table, mono, wall):
        pass

    def close(self):
        close = getattr(self.send, "close", None)
        if close is not None:
            close()


def _hostname():
    """This host's name as RFC 5424 allows it (printable ASCII, 255 at most)."""
    name = "".join(c if 33 <= ord(c) <= 126 else "_" for c in socket.gethostname())[:255]
    return name or "-"
