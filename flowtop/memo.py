"""The one bounded memo every cache in flowtop uses.

``Memo`` is a dict (a hit is one C-level lookup, as fast as a plain dict)
bounded to ``limit`` entries: when full, the oldest ``1/chunk`` of them go
(dicts keep insertion order), so no cache grows without bound on hostile
input (a flood of distinct addresses) and a full cache is not emptied at once.
Given ``make``, a miss computes the value (``memo[key]``) and keeps it.
"""

from itertools import islice

__all__ = ["Memo"]


class Memo(dict):
    """key -> value, at most ``limit`` entries; ``make(key)`` fills a miss."""

    __slots__ = ("limit", "chunk", "make")

    def __init__(self, limit, make=None, chunk=4):
        super().__init__()
        self.limit = max(1, int(limit))
        self.chunk = max(1, int(chunk))
        self.make = make

    def __missing__(self, key):
        if self.make is None:
            raise KeyError(key)
        value = self.make(key)
        if len(self) >= self.limit:     # put's test, inline: a miss is one call (make)
            self.evict()
        self[key] = value
        return value

    def put(self, key, value):
        """Keep ``value`` under ``key``, evicting the oldest chunk when full."""
        if key not in self and len(self) >= self.limit:
            self.evict()
        self[key] = value
        return value

    def touch(self, key):
        """Make ``key`` the newest entry (least-recently-used order)."""
        self[key] = self.pop(key)

    def evict(self):
        """Drop the oldest ``limit // chunk`` entries (at least one)."""
        n = self.limit // self.chunk or 1
        if n >= len(self):              # chunk=1: everything (a table of texts, emptied)
            self.clear()
            return
        for key in list(islice(self, n)):
            del self[key]

