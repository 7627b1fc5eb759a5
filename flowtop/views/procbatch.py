"""``ProcessMap.lookup_both`` of a datagram's flows in a few C passes, for
the ``--once`` outputs: a flow on ports that no socket has is answered
from the locality of its two ends (``is_local``, once per address), and
only the flows a socket may match are asked one by one."""

from operator import or_

from ..enrich.owners import FORWARDED
from ..netlink.ctnetlink import FIELDS
from .procgroups import asked_of

_SRC, _RSRC = FIELDS.index("src"), FIELDS.index("reply_src")
_ANSWER = {True: (None, None), False: (FORWARDED, FORWARDED)}     # by "an end is local"
_SAME = {a: a for a in _ANSWER.values()}    # an answer without a socket: one object each


class BatchLookup:
    """``answers(entries, fields)`` == ``list(map(process.lookup_both,
    entries))`` for a ``ProcessMap`` in its one-shot mode (``keep`` False:
    no answer kept, none remembered).  A flow whose (protocol, port) at
    both ends is no socket's is answered as ``lookup_both`` answers it
    without a socket: (None, None) when one end is this host's, else
    FORWARDED twice.  Its ports' set is read from the map (``socket_ports``:
    the one index that says which flows no socket can match);
    without it, or remembering answers, each flow is asked.  100k flows:
    ~1.4 us a flow in ``lookup_both``, ~0.3 here.  The answers without a
    socket are two objects, so a batch's distinct answers go by ``id``."""

    @classmethod
    def of(cls, owner, process):
        """``owner``'s BatchLookup of ``process`` (kept as its ``_batch``)."""
        batch = getattr(owner, "_batch", None)
        if batch is None or batch.process is not process:
            batch = owner._batch = cls(process)
        return batch

    def __init__(self, process):
        self.process = process
        self._local = {}            # address -> is_local(address), across batches

    def answers(self, entries, fields):
        process = self.process
        ports = getattr(process, "socket_ports", None)
        if ports is None or getattr(process, "keep", True) or not entries:
            return list(map(process.lookup_both, entries))
        asked = asked_of(ports, fields, len(entries))
        local = self._local
        srcs, backs = fields[_SRC], fields[_RSRC]
        new = set(srcs).union(backs).difference(local)
        if new:
            if len(local) + len(new) > 65536:
                local.clear()
                new = set(srcs).union(backs)
            is_local = process.is_local
            local.update(zip(new, map(is_local, new)))
        out = list(map(_ANSWER.__getitem__, map(or_, map(local.__getitem__, srcs),
                                                map(local.__getitem__, backs))))
        lookup, same = process.lookup_both, _SAME.get
        for i in sorted(asked):
            answer = lookup(entries[i])
            out[i] = same(answer, answer)
        return out


