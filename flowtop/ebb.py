"""After a flood ebbs: the value caches the live view's collector empties
when they hold far more than its table needs, and each time the table has
shrunk to a quarter since the last time.  Values cached while a flood ran
sit alone in the memory its flows had and keep it from the system
(Python's 1 MiB arenas go back only when every block in them is free).
"""

__all__ = ["Ebb", "addresses"]


def addresses(rows):
    """Every address of ``rows`` (a FlowTable's values: Rows or bare records)."""
    out = set()
    for r in rows:
        e = getattr(r, "entry", r)
        out.update((e.src, e.dst, e.reply_src, e.reply_dst))
    out.discard(None)
    return out


class Ebb:
    """``trim(table, socks, enrich)`` after each full dump."""

    def __init__(self):
        self.at = 0         # the table's size at the last shrink, or the largest since

    def trim(self, table, socks, enrich):
        """Empty the decoders' address texts and ints, the route cache and the
        services' names holding far more than ``table`` needs (4 per flow), and
        when it has shrunk: a flood's kept 460 MB RSS with the table empty.
        The names of addresses no longer in it go too: 60 s after a flood,
        ~500 of them (the screenfuls it showed) kept 45-58 more arenas in use."""
        n = len(table)
        shrunk, limit = 4 * n + 64 < self.at, 4 * n + 4096
        self.at = n if shrunk else max(self.at, n)
        for sock in socks:
            decoder = getattr(sock, "decoder", None)
            if decoder is not None and (shrunk or decoder.cached() > limit):
                decoder.forget()
        for cache in (getattr(enrich, "ifaces", None), getattr(enrich, "services", None)):
            if cache is not None and (shrunk or cache.cached() > limit):
                cache.forget()
        retain = getattr(getattr(enrich, "dns", None), "retain", None)
        if shrunk and retain is not None:       # ~50 ms at 100k rows, at a shrink only
            retain(addresses(table.rows.values()))
