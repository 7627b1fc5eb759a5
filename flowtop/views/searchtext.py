"""The '/' text of each flow (``Formatter.search_text``), kept for the live
view's ``Selection`` across keys and snapshots.

A text costs ~5 us to make (process, names, services, interfaces): each
character typed at 100k flows made every text again, 500-650 ms a key
(``bench/keys.py``).  A kept text serves while its flow's entry is the same
object (the table keeps an unchanged flow's record and replaces a changed
one's) and within one ``TTL`` window of the snapshots' time: names,
processes and routes arrive or change without the entry changing.
"""

from ..netlink.ctnetlink import FIELDS
from ..tablerows import Row

_KEY = FIELDS.index("key")
TTL = 5.0       # seconds of snapshot time a kept text may lag a new name behind


class SearchTexts:
    """``reader(formatter, state, n)`` gives search_text(row), kept."""

    def __init__(self):
        self._texts = {}        # flow key -> (its entry when made, text)
        self._of = None         # what the kept texts were made under
        self._warm = (None, 0)  # (rows, how many of them warm() made)
        self.warm_done = False  # warm() went through every row once since clear()

    def reader(self, formatter, state, rows=0):
        """search_text(row) for ``rows`` rows at most, from the kept texts
        where still good (see the module docstring)."""
        enrich = formatter.enrich
        of = (id(formatter), state.numeric_port, state.redact_local, state.redact_remote,
              getattr(enrich, "numeric_local", False), getattr(enrich, "numeric_remote", False),
              state.wall // TTL)
        texts = self._texts
        if of != self._of or len(texts) > 2 * rows + 4096:    # + the keys of gone flows
            texts = self._texts = {}
            self._of, self._warm = of, (None, 0)
        make = formatter.search_text
        get = texts.get

        def text(row):
            if type(row) is Row:
                e, key = row.entry, row.key
            else:
                e = row                         # a bare record is its entry
                key = e[_KEY]
            hit = get(key)
            if hit is not None and hit[0] is e:
                return hit[1]
            t = texts[key] = (e, make(row))
            return t[1]
        return text

    def warmed(self, rows, upto=None):
        """How many of ``rows`` have their texts (``upto``: now so many)."""
        if upto is not None:
            self._warm = (rows, upto)
        return self._warm[1] if self._warm[0] is rows else 0

    def clear(self):
        """Let the texts go (no '/' text is set)."""
        self._texts, self._of, self._warm, self.warm_done = {}, None, (None, 0), False
