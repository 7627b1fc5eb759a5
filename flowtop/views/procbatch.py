"""``ProcessMap.lookup_both`` of a datagram's flows in a few C passes, for
the ``--once`` outputs: a flow on ports that no socket has is answered
from the locality of its two ends (``is_local``, once per address), and
only the flows a socket may match are asked one by one."""

from itertools import compress, repeat
from operator import eq, or_

from ..enrich.bundle import _DNS_PORT
from ..enrich.owners import FORWARDED
from ..enrich.sockets import asked_of
from ..netlink.ctnetlink import FIELDS

_SRC, _RSRC, _DPORT = (FIELDS.index(n) for n in ("src", "reply_src", "dport"))
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
        ends = set(srcs).union(backs)
        new = ends.difference(local)
        if new:
            if len(local) + len(new) > 65536:
                local.clear()
                new = ends
            new = list(new)         # (87k distinct addresses: no call an address)
            of = getattr(process, "locals_of", None)
            local.update(zip(new, map(process.is_local, new) if of is None else of(new)))
        kinds = set(map(local.__getitem__, ends))
        if len(kinds) == 1:     # every end local, or none (a router): one answer, no map a flow
            out = [_ANSWER[kinds.pop()]] * len(entries)
        else:
            out = list(map(_ANSWER.__getitem__, map(or_, map(local.__getitem__, srcs),
                                                    map(local.__getitem__, backs))))
        lookup, same = process.lookup_both, _SAME.get
        for i in sorted(asked):
            answer = lookup(entries[i])
            out[i] = same(answer, answer)
        return out




def by_answer(answers, entries, make):
    """``[make(e, answer) ...]`` of a batch's flows, made once per distinct
    answer (by ``id``: the sockets' answers are shared) from its first flow;
    a batch of one answer (a router: forwarded) is one value repeated."""
    first = answers[0]
    if answers.count(first) == len(answers):
        return [make(entries[0], first)] * len(answers)
    keys = list(map(id, answers))
    made = {k: make(entries[i], answers[i])
            for k, i in dict(zip(keys, range(len(keys)))).items()}
    return list(map(made.__getitem__, keys))


def labels(owner, enrich, entries, fields):
    """The PROCESS column of ``--once`` text: the flows' answers by
    ``owner``'s BatchLookup, each distinct answer's label once a batch (the
    sockets' answers are shared: 2.5k of 100k flows had one of their own),
    and whether a query is flowtop's own asked only of the flows to port 53
    without an answer (``Enrichment._own_dns`` answers no other)."""
    try:
        answers = BatchLookup.of(owner, enrich.process).answers(entries, fields)
    except OSError:                 # each flow on its own: "" where it fails
        return list(map(enrich.process_label, entries))
    texts = by_answer(answers, entries, lambda e, answer: "" if answer == (None, None)
                      else enrich.process_label(e))
    own_dns, label_of = enrich._own_dns, enrich.process_label
    for i in compress(range(len(texts)), map(eq, fields[_DPORT], repeat(_DNS_PORT))):
        if answers[i] == (None, None):
            texts[i] = "" if own_dns(entries[i]) is None else label_of(entries[i])
    return texts
