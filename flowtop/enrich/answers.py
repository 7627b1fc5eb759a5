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

__all__ = ["Answers", "code"]


def code(proto, port):
    """(proto, port) as one int (port None: a raw socket's, or no port)."""
    return proto << 17 | (0x10000 if port is None else port)


class Answers:
    """``pairs``: flow key -> (orig, reply), read by anyone; ``put`` and
    the droppers below keep it true to the socket table.  ``gen`` moves
    when a tick starts and when it ends: an answer computed across a
    tick is not kept (the screen asks while the collector refreshes)."""

    def __init__(self):
        self.pairs = {}
        self.gen = 0
        self._by_port = {}      # code(proto, port) -> the flow key, or keys, filed there
        self._filed = 0         # keys in _by_port (an upper bound)
        self.unfiled = []      # key, code_a, code_b, ...: put since the last ``file``

    def put(self, key, code_a, code_b, pair, gen):
        """Keep ``pair`` for ``key``, to be filed under ``code_a`` and
        ``code_b`` (``code(proto, port)``) by the next tick's ``file``
        (the Processes view's first look at 100k flows puts them all: the
        filing is the collector's, not the screen's); ``gen``: ``self.gen``
        when its computation began."""
        self.pairs[key] = pair
        self.unfiled.extend((key, code_a, code_b))     # one call: atomic
        if self.gen != gen:             # a tick came meanwhile: it may be stale
            self.pairs.pop(key, None)

    def file(self):
        """File the answers put since the last call (a tick does, first;
        100k answers: ~50 ms, once)."""
        unfiled, self.unfiled = self.unfiled, []
        by_port = self._by_port
        get = by_port.get
        list_ = list
        for key, a, b in zip(unfiled[0::3], unfiled[1::3], unfiled[2::3]):
            filed = get(a)
            if filed is None:
                by_port[a] = key                # one key: no list (a GC-tracked object)
            elif type(filed) is list_:
                filed.append(key)
            else:
                by_port[a] = [filed, key]
            if b != a:
                filed = get(b)
                if filed is None:
                    by_port[b] = key
                elif type(filed) is list_:
                    filed.append(key)
                else:
                    by_port[b] = [filed, key]
        self._filed += 2 * (len(unfiled) // 3)

    def drop(self, codes):
        """Forget the answers filed under any of ``codes``."""
        pairs, by_port = self.pairs, self._by_port
        for c in codes:
            keys = by_port.pop(c, ())
            if type(keys) is not list:
                keys = (keys,)
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
        self.unfiled = []
        self._filed = 0

    def retain(self, live):
        """Forget the answers of flows not in ``live`` (``in``); refile the
        rest once the lists hold 3x more than the answers (flows gone,
        answers made again), so they stay within the table's size."""
        pairs = self.pairs
        dead = [k for k in list(pairs) if k not in live]
        if len(dead) > len(pairs) // 2 + 4096:
            # most are gone (a flood ebbed): a dict does not shrink as keys go, so a
            # right-sized copy gives the table's memory back (a 200k-flow flood
            # sorted by process kept ~50 MB more without it); a put meanwhile is lost
            self.gen += 1
            self.pairs = pairs = {k: v for k, v in list(pairs.items()) if k in live}
            self.gen += 1
        else:
            for key in dead:
                pairs.pop(key, None)
        if self._filed <= 3 * len(pairs) + 4096:
            return
        self.gen += 1                   # an answer put meanwhile may miss its filing
        by_port = {}
        for c, keys in list(self._by_port.items()):
            if type(keys) is not list:
                if keys in pairs:
                    by_port[c] = keys
                continue
            keys = [k for k in dict.fromkeys(keys) if k in pairs]
            if keys:
                by_port[c] = keys if len(keys) > 1 else keys[0]
        self._by_port = by_port
        self._filed = sum(len(k) if type(k) is list else 1 for k in by_port.values())
        self.gen += 1
