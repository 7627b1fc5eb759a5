"""Port -> service name (``443`` -> ``https``), cached.

From the system's services database for now (``getservbyport`` reads
/etc/services); the shipped conf files arrive with the enrichment work.
Every name passes ``text.sanitize``: a services file is input too.
"""

import socket

from .text import sanitize

_DB_PROTO = {6: "tcp", 17: "udp", 136: "udp", 132: "sctp", 33: "dccp"}


class Services:
    """Names ports; the side of a flow with a known name (or the lower
    port) is the service."""

    def __init__(self, lookup=socket.getservbyport):
        self._lookup = lookup
        self._cache = {}

    def name(self, port, l4proto):
        if port is None:
            return None
        key = (port, l4proto)
        if key in self._cache:
            return self._cache[key]
        name = None
        proto = _DB_PROTO.get(l4proto)
        if proto is not None:
            for p in (proto, "tcp") if proto not in ("tcp", "udp") else (proto,):
                try:
                    name = sanitize(self._lookup(port, p), 16)
                    break
                except (OSError, OverflowError, TypeError):
                    pass
        if len(self._cache) < 65536:
            self._cache[key] = name
        return name

    def of_flow(self, sport, dport, l4proto, numeric=False):
        """Service label of a flow: the named port, else the lower port."""
        if dport is None:
            return ""
        if numeric:
            return str(dport if sport is None or dport <= sport else sport)
        for port in (dport, sport):
            name = self.name(port, l4proto)
            if name:
                return name
        return str(dport if sport is None or dport <= sport else sport)
