"""The enrichment keys of a JSON record as text: ',"pid":1,"process":...'.

``JsonTail(enrich).line(e)`` is the hot path of ``--json`` (once per flow):
what a missing provider would give is baked into the template as null, and
names are JSON-encoded once (memoised).  ``service_tails`` serves the fast
path of ``views.record.JsonTarget`` when only service names are added.
"""

from itertools import compress, repeat
from operator import eq

from ..enrich.bundle import _DNS_PORT, FIELDS
from ..jsontext import PLAIN, dumps
from ..memo import Memo
from ..netlink.ctnetlink import FIELDS as FLOW_FIELDS
from ..netlink.uapi import IPPROTO_GRE

__all__ = ["JsonTail"]

_NO_PROCESS = ("null",) * 5
_VARIES = object()      # a column of a batch with more than one value
_FORWARDED = ("null", '"forwarded"', "null", "null", "null")


class JsonTail:
    """``Enrichment.fields(e)`` as JSON text, for the streaming outputs."""

    def __init__(self, enrich):
        self.enrich = enrich
        self._jstr = Memo(65536)
        self._template = None
        self._pairs = {}            # (in, out) interface names -> their JSON texts
        self._baked = {}            # (a batch's one-value columns, no heads) -> its fixed texts
        self._ends = None           # (src, reply end, mark) -> the same, in a batch (``fresh``)
        self._hosts = None          # address -> its name's JSON text, in a batch (``fresh``)
        self._service_json = {}     # l4proto -> {port: its service name as JSON}
        self._forwarded = None      # enrich.owners.FORWARDED (not loaded without processes)
        if enrich.process is not None:
            from ..enrich.owners import FORWARDED
            self._forwarded = FORWARDED

    @property
    def services_only(self):
        return self.enrich.services_only

    def line(self, e):
        """The extra keys of flow ``e``: ',"pid":1,...'."""
        tpl = self._template
        if tpl is None:
            tpl = self._template = self._make_template()
        enrich, jopt = self.enrich, self._jopt
        procs = _NO_PROCESS if enrich.process is None else self._process(e)
        # enrich.service(e), from a table per protocol: a call and a memo entry per
        # flow (every ephemeral port) were a fifth of the line
        proto, dport = e.l4proto, e.dport
        if proto == IPPROTO_GRE or dport is None:
            service = "null"
        else:
            table = self._service_json.get(proto) or self._service_table(proto)
            sport = e.sport
            service = (table.get(dport) or (sport is not None and table.get(sport))
                       or '"%d"' % (dport if sport is None or dport <= sport else sport))
        values = procs + (service,)
        if enrich.dns is not None:
            hosts = self._hosts
            if hosts is None:
                values += (self._host(e.src), self._host(e.dst))
            else:
                values += (hosts.get(e.src) or self._host(e.src, hosts),
                           hosts.get(e.dst) or self._host(e.dst, hosts))
        if enrich.geo is not None:
            for addr in (e.src, e.dst):
                g = enrich.geo_of(addr)
                values += (jopt(getattr(g, "country", None)), jopt(getattr(g, "city", None)),
                           "null" if getattr(g, "asn", None) is None else int(g.asn))
        ifaces = enrich.ifaces
        if ifaces is not None:
            ends = self._ends
            if ends is None:
                values += self._iface_texts(ifaces.of_flow(e))
            else:
                key = (e.src, e.reply_src if e.reply_src is not None else e.dst, e.mark)
                text = ends.get(key)
                if text is None:
                    text = ends[key] = self._iface_texts(ifaces.of_flow(e))
                values += text
        return tpl % values

    def lines(self, entries, heads=None, fields=None, services=None):
        """``[line(e) for e in entries]`` for a batch made ready (its route
        lookups and names: ``fresh``), a key at a time: what repeats once a
        batch (names per address, interfaces per distinct ends), the
        service by a comprehension, the text by one ``map`` (GeoIP: a line
        at a time).  With ``heads`` (each flow's record without its closing
        "}\n"), whole lines: one %-format a flow places head and keys.
        ``fields``: the batch's columns (``zip(*entries)``), when made;
        ``services``: their service values, when the formatter made them."""
        self.fresh()
        enrich = self.enrich
        if enrich.geo is not None or not entries:
            if heads is None:
                return [self.line(e) for e in entries]
            return [h + self.line(e) + "}\n" for h, e in zip(heads, entries)]
        tpl = self._template or self._make_template()
        self._template = tpl
        if fields is None:
            fields = list(zip(*entries))
        n = len(entries)
        if enrich.process is None:
            cols = [("null",) * n] * 5
        else:
            rows = self._processes(entries, fields)
            cols = [(v,) * n for v in rows[0]] if rows.count(rows[0]) == n \
                else list(zip(*rows))
        cols.append(self._service_column(fields) if services is None else services)
        if enrich.dns is not None and not getattr(enrich.dns, "known", True):
            cols.extend([("null",) * n] * 2)    # --once's names: none found (no DNS: a router)
        elif enrich.dns is not None:    # each address's name once, then read in C
            hosts = self._hosts
            for a in set(fields[_SRC]).union(fields[_DST]).difference(hosts):
                self._host(a, hosts)
            cols.extend(list(map(hosts.__getitem__, fields[i])) for i in (_SRC, _DST))
        if enrich.ifaces is not None:
            of_flow, texts = enrich.ifaces.of_flow, self._iface_texts
            if self._ends is None:
                cols.extend(zip(*(texts(of_flow(e)) for e in entries)))
            else:
                from ..enrich.ifacetotals import answers_by_ends
                keys, pairs = answers_by_ends(enrich.ifaces, fields, entries)
                made = {p: texts(p) for p in set(pairs.values())}
                if len(made) == 1:      # (a host's "lo", a router's few links: per batch)
                    cols.extend((t,) * n for t in made.popitem()[1])
                else:
                    cols.extend(zip(*[made[pairs[k]] for k in keys]))
        return self._filled(tpl, cols, heads)

    def _filled(self, tpl, cols, heads):
        """The lines of ``tpl`` over its values by column (after each
        ``heads``' item): a column with one value for the whole batch is
        baked into the batch's texts between the others (a router's
        "forwarded", a host's "lo"), one join a flow places the rest (a
        batch of 133 flows, two varying: ~30 us by %-format, ~12 joined)."""
        same = tuple(c[0] if c.count(c[0]) == len(c) else _VARIES for c in cols)
        texts = self._baked.get((same, heads is None))
        if texts is None:
            if len(self._baked) >= 256:
                self._baked.clear()
            texts, text = [], ""          # the fixed texts around the varying values
            for piece, value in zip(tpl.split("%s"), same):
                if value is _VARIES:
                    texts.append(text + piece)
                    text = ""
                else:
                    text += piece + value
            texts.append(text + tpl.rsplit("%s", 1)[-1] + ("" if heads is None else "}\n"))
            texts = self._baked[(same, heads is None)] = tuple(texts)
        parts = [] if heads is None else [heads]
        parts.append(repeat(texts[0]))
        for column, text in zip([c for c, v in zip(cols, same) if v is _VARIES], texts[1:]):
            parts += (column, repeat(text))
        if len(parts) == 1:
            return [texts[0]] * len(cols[0])
        return list(map("".join, zip(*parts)))

    def _service_column(self, fields):
        """The service values of a batch's flows (``line``'s), as JSON."""
        names = self._service_json
        protos = fields[_PROTO]
        for p in set(protos).difference(names):
            self._service_table(p)
        return ["null" if p == IPPROTO_GRE or d is None else
                names[p].get(d) or (s is not None and names[p].get(s))
                or f'"{d if s is None or d <= s else s}"'     # (an f-string: ~20 % less than %d)
                for p, s, d in zip(protos, fields[_SPORT], fields[_DPORT])]

    def service_json(self, proto):
        """{port: its service name as JSON} of ``proto`` (``line``'s names)."""
        return self._service_json.get(proto) or self._service_table(proto)

    def _service_table(self, proto):
        """{port: its service name as JSON} of ``proto``, made once."""
        table = self._service_json[proto] = {
            port: '"%s"' % text for port, text in self._service_texts(proto).items()}
        return table

    def _service_texts(self, proto):
        """{port: its service name's JSON string contents} of ``proto``: plain
        names as they are (one C test each, not two calls: ~200 a protocol)."""
        plain, jn = PLAIN.issuperset, self._json
        return {port: n if plain(n) else jn(n)[1:-1]
                for port, n in self.enrich.services.names(proto).items()}

    def fresh(self):
        """A batch begins, its route lookups and names made ready: the
        names' texts are kept per address until the next one, and the
        interfaces' per (src, reply end, mark) when the answer follows those
        (``Interfaces.by_ends``; 100k flows: ~1 us a flow less each where
        they repeat)."""
        self._ends = {} if getattr(self.enrich.ifaces, "by_ends", False) else None
        self._hosts = {}

    def _host(self, addr, hosts=None):
        """The name of ``addr`` as JSON (kept in ``hosts``)."""
        enrich = self.enrich
        final = getattr(enrich.dns, "final", None)     # --once's names, past their wait
        if final is not None and not (enrich.numeric_local or enrich.numeric_remote):
            text = self._jopt(final.get(addr))
        else:
            text = self._jopt(enrich.host(addr))
        if hosts is not None:
            hosts[addr] = text
        return text

    def _iface_texts(self, pair):
        text = self._pairs.get(pair)
        if text is None:
            text = (self._jopt(pair[0]), self._jopt(pair[1]))
            if len(self._pairs) < 4096:
                self._pairs[pair] = text
        return text

    def _processes(self, entries, fields):
        """``_process`` of each flow: the lookups by one ``map``, each
        distinct answer's values once a batch (the sockets' answers are
        shared), whether a query is flowtop's own asked only of the flows to
        port 53 without an answer (``Enrichment._own_dns`` answers no other)."""
        try:
            from .procbatch import BatchLookup, by_answer
            answers = BatchLookup.of(self, self.enrich.process).answers(entries, fields)
        except OSError:                 # each flow on its own: none where it fails
            return list(map(self._process, entries))
        out = by_answer(answers, entries, lambda e, answer: self._answer(e, answer, False))
        for i in compress(range(len(out)), map(eq, fields[_DPORT], repeat(_DNS_PORT))):
            values = self._answer(entries[i], answers[i], True)
            out[i] = values if values is not None else self._process(entries[i])
        return out

    def _answer(self, e, answer, port53):
        """``_process``' values for any flow with this answer and port 53 or
        not (``e`` one of them), None where the flow itself decides."""
        orig, reply = answer
        fwd = self._forwarded
        if orig is fwd and reply is fwd:
            return _FORWARDED
        if orig is None and port53:
            return None
        if orig is None and reply is None:
            return _NO_PROCESS
        return self._procs(e, orig, reply)

    def _process(self, e):
        """The five process values of flow ``e``, as JSON."""
        try:
            orig, reply = self.enrich.process.lookup_both(e)
        except OSError:
            orig = reply = None
        fwd = self._forwarded
        if orig is fwd and reply is fwd:    # no local end (most of a router's flows)
            return _FORWARDED
        if orig is None and reply is None and self.enrich._own_dns(e) is None:
            return _NO_PROCESS              # no socket (a host's unanswered flows)
        return self._procs(e, orig, reply)

    def _procs(self, e, orig, reply):
        """The five process values of ``Enrichment.procs``' answer, as JSON."""
        if orig is None:
            orig = self.enrich._own_dns(e)
        if orig is None:
            p, peer = reply, None
        else:
            p, peer = orig, (reply if reply is not orig else None)
        jstr, jopt = self._jstr, self._jopt
        if p is None:
            pid = name = user = "null"
        else:
            pid = "null" if p.pid is None else str(p.pid)     # texts: _filled joins them
            name = p.name or "forwarded"
            name = jstr.get(name) or self._json(name)
            user = "null" if p.user is None else (jstr.get(p.user) or self._json(p.user))
        if peer is None:
            return (pid, name, user, "null", "null")
        return (pid, name, user, "null" if peer.pid is None else str(peer.pid), jopt(peer.name))

    def service_tails(self, l4proto):
        """For services_only: ({port: name}, tail, tail for no port) - the
        ``line`` text with its one "%s" where the service goes, and the
        names as JSON string contents, so the JSON fast path fills in a
        flow's service with two dict lookups (else the lower port's number)."""
        tpl = self._template or self._make_template()
        self._template = tpl
        names = self._service_texts(l4proto)
        nulls = ("null",) * 5
        return names, tpl % (nulls + ('"%s"',)), tpl % (nulls + ("null",))

    def _make_template(self):
        enrich = self.enrich
        dns, ifaces = enrich.dns is not None, enrich.ifaces is not None
        have = {"pid": True, "process": True, "user": True, "peer_pid": True,
                "peer_process": True, "service": True, "src_host": dns, "dst_host": dns,
                "in_iface": ifaces, "out_iface": ifaces}
        geo = enrich.geo is not None
        return "".join(',"%s":%s' % (k, "%s" if have.get(k, geo) else "null") for k in FIELDS)

    def _jopt(self, value):
        if value is None:
            return "null"
        return self._jstr.get(value) or self._json(value)

    def _json(self, value):
        return self._jstr.put(value, dumps(value))


_PROTO, _SRC, _DST, _SPORT, _DPORT = (
    FLOW_FIELDS.index(n) for n in ("l4proto", "src", "dst", "sport", "dport"))
