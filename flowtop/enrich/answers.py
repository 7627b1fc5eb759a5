"""The process enricher's answer per flow, kept across ticks.

An answer (the flow's (orig side, reply side)) depends on the sockets on
its two ports, their owners, this host's addresses and the names found
for the flow before.  Each answer is filed under its (protocol, port)
pairs; a tick drops the answers filed under the ports whose sockets
changed (``drop``), so a tick costs per changed socket and the answers
of the rest - most of a router's or server's table, which no socket
matches - are one dictionary read each (Tab to Processes at 100k: ~190
ms of matching per flow before).
"""

__all__ = ["Answers"]


class Answers:
    """``pairs``: flow key -> (orig, reply), read by anyone; ``put`` and
    the droppers below keep it true to the socket table.  ``gen`` moves
    when a tick starts and when it ends: an answer computed across a
    tick is not kept (the screen asks while the collector refreshes)."""

    def __init__(self):
        self.pairs = {}
        self.gen = 0
        self._by_port = {}      # (proto, port) -> [flow keys filed there]
        self._filed = 0         # entries in _by_port's lists

    def put(self, key, proto, port_a, port_b, pair, gen):
        """Keep ``pair`` for ``key``, filed under (proto, port_a) and
        (proto, port_b); ``gen``: ``self.gen`` when its computation began."""
        by_port = self._by_port
        for port in (port_a, port_b) if port_b != port_a else (port_a,):
            keys = by_port.get((proto, port))
            if keys is None:
                by_port[(proto, port)] = [key]
            else:
                keys.append(key)
            self._filed += 1
        self.pairs[key] = pair
        if self.gen != gen:             # a tick came meanwhile: it may be stale
            self.pairs.pop(key, None)

    def drop(self, ports):
        """Forget the answers filed under any of ``ports`` ((proto, port))."""
        pairs, by_port = self.pairs, self._by_port
        for port in ports:
            keys = by_port.pop(port, ())
            self._filed -= len(keys)
            for key in keys:
                pairs.pop(key, None)

    def forget(self, keys):
        for key in keys:
            self.pairs.pop(key, None)

    def clear(self):
        self.gen += 1
        self.pairs = {}
        self._by_port = {}
        self._filed = 0

    def retain(self, live):
        """Forget the answers of flows not in ``live`` (``in``); refile the
        rest once the lists hold 3x more than the answers (flows gone,
        answers made again), so they stay within the table's size."""
        pairs = self.pairs
        for key in [k for k in list(pairs) if k not in live]:
            pairs.pop(key, None)
        if self._filed <= 3 * len(pairs) + 4096:
            return
        self.gen += 1                   # an answer put meanwhile may miss its filing
        by_port = {}
        for port, keys in list(self._by_port.items()):
            keys = [k for k in dict.fromkeys(keys) if k in pairs]
            if keys:
                by_port[port] = keys
        self._by_port = by_port
        self._filed = sum(map(len, by_port.values()))
        self.gen += 1
