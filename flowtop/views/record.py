"""A flow as a record: the schema of the JSON Lines and CSV outputs, the
plain dict (``record``) and the one JSON encoder, generated per layout.

One schema for both outputs (README documents it).  Every value is a
number, a plain string, a list of status names or null; strings that come
from the kernel are addresses and names from fixed tables, so they need no
escaping beyond what ``json`` does.  ``record`` is the plain twin: the
encoder's text parses to it (tests check every recorded flow).
"""

from operator import is_

from ..jsontext import dumps
from ..memo import Memo
from ..model import family_name, proto_name, state_name, status_names
from ..netlink.ctnetlink import FIELDS, RELATED_PARTS
from ..netlink.uapi import IPPROTO_GRE

COLUMNS = (
    "time", "id", "family", "proto", "l4proto", "state",
    "src", "dst", "sport", "dport",
    "reply_src", "reply_dst", "reply_sport", "reply_dport",
    "icmp_type", "icmp_code", "icmp_id",
    "packets_orig", "bytes_orig", "packets_reply", "bytes_reply",
    "start", "age", "timeout", "mark", "zone", "status",
    "gre_key", "gre_reply_key",
) + RELATED_PARTS
_NO_RELATED = dict.fromkeys(RELATED_PARTS)


def related_record(related):
    """The helper, labels and master_* keys of a flow (None: all null)."""
    if related is None:
        return _NO_RELATED
    r = related._asdict()
    r["labels"] = None if related.labels is None else list(related.labels)
    return r


def _related_json(related):
    """The related keys as JSON text, without braces: memoised (few values)."""
    text = _RELATED_JSON.get(related)
    if text is None:
        text = dumps(related_record(related))[1:-1]
        if len(_RELATED_JSON) < 4096:
            _RELATED_JSON[related] = text
    return text


_RELATED_JSON = {}


def record(f, now):
    """One flow as a dict in COLUMNS order; ``now`` is the snapshot's wall time."""
    proto = f.l4proto
    gre = proto == IPPROTO_GRE
    start = f.start
    r = {
        "time": round(now, 3),
        "id": f.id,
        "family": family_name(f.family),
        "proto": proto_name(proto),
        "l4proto": proto,
        "state": state_name(proto, f.state),
        "src": f.src,
        "dst": f.dst,
        "sport": None if gre else f.sport,
        "dport": None if gre else f.dport,
        "reply_src": f.reply_src,
        "reply_dst": f.reply_dst,
        "reply_sport": None if gre else f.reply_sport,
        "reply_dport": None if gre else f.reply_dport,
        "icmp_type": f.icmp_type,
        "icmp_code": f.icmp_code,
        "icmp_id": f.icmp_id,
        "packets_orig": f.packets_orig,
        "bytes_orig": f.bytes_orig,
        "packets_reply": f.packets_reply,
        "bytes_reply": f.bytes_reply,
        "start": None if start is None else round(start / 1e9, 3),
        "age": None if start is None else round(max(0.0, now - start / 1e9), 3),
        "timeout": f.timeout,
        "mark": f.mark,
        "zone": f.zone,
        "status": list(status_names(f.status)),
        "gre_key": f.dport if gre else None,
        "gre_reply_key": f.reply_dport if gre else None,
    }
    r.update(related_record(f.related))
    return r


def _status_json(status):
    return dumps(list(status_names(status)))


_PORTS = ("sport", "dport", "reply_sport", "reply_dport")


class JsonTarget:
    """The JSON encoder: a ctnetlink.Decoder target that writes ``record``
    as JSON text directly from the kernel's bytes, one generated formatter
    per message layout; ``line`` does the same for a decoded entry.

    A layout fixes the family, the protocol and which attributes exist, so
    the formatter has every null, name and key baked in and no branches;
    only values are filled in.  Flows outside ``families``/``protocols``
    (sets of numbers; empty: all) become "".  Set ``now`` (epoch seconds)
    before each dump: it is the snapshot's ``time`` and the base of ``age``.
    """

    keeps = False        # text only: no need to share the decoded ints
    MAX_LAYOUTS = 512    # of decoded entries (``line``): bounded against hostile input

    def __init__(self, families=(), protocols=(), tail=None, cls=None, services=None,
                 defer=False, service_of=None):
        self.families = frozenset(families)
        self.protocols = frozenset(protocols)
        # services: a views.tail.JsonTail with only service names to add; its
        # per-port tails are baked in (no call per flow), instead of ``tail``.
        self.services = services
        # tail(entry) -> text of extra keys (",\"pid\":1,..."): the enrichment;
        # the formatter then also builds the entry (class ``cls``) to pass it.
        self.tail = tail
        self.cls = cls
        # defer: each flow becomes (its text without the closing "}\n", the entry), so
        # a batch's enrichment is made ready (route lookups, names) before ``tail`` runs
        self.defer = defer
        # service_of(l4proto) -> {port: service name as JSON}: with defer, each flow's
        # service is a third item, made here (a comprehension over the batch: ~5 % of a run)
        self.service_of = service_of
        self.now = 0.0
        self._status = Memo(4096, _status_json)
        self._lines = Memo(self.MAX_LAYOUTS)   # (family, proto, which fields are None) -> line(f)

    @property
    def now(self):
        return self._now

    @now.setter
    def now(self, value):
        self._now = value
        self.stamp = "%.3f" % value      # read once per flow by the formatters

    def wanted(self, family, proto):
        return ((not self.families or family in self.families)
                and (not self.protocols or proto in self.protocols))

    def convert(self, entry):
        """The text of an entry the plain decoder built (with ``defer``: the
        pair)."""
        return self.line(entry) if self.wanted(entry.family, entry.l4proto) else ""

    def line(self, f):
        """``record(f, self.now)`` as one JSON line (with the tail's keys), by
        the formatter generated for its layout: the same code as for bytes."""
        layout = (f[0], f[1], tuple(map(is_, f, _NONES)))
        fmt = self._lines.get(layout)
        if fmt is None:
            exprs = {n: "None" if v is None else "f[%d]" % i for i, (n, v) in
                     enumerate(zip(FIELDS, f))}
            prelude, result, env = self.compile(exprs, {"family": f[0], "l4proto": f[1]},
                                                 wanted=True)
            env = dict(env, new=tuple.__new__, cls=self.cls or type(f))
            # (the text, not compile()'s code: see netlink.ctdecoder)
            exec("def line(f):\n%s    return %s\n" % (prelude, result), env)  # ints, names
            fmt = env["line"]
            self._lines.put(layout, fmt)
        return fmt(f)

    def compile(self, exprs, consts, wanted=False):
        """(statements, expression, names) of one layout's JSON text: the
        Decoder's target protocol (``ctnetlink.TupleTarget``)."""
        family, proto = consts["family"], consts["l4proto"]
        if not wanted and not self.wanted(family, proto):
            return "", '""', {}
        gre = proto == IPPROTO_GRE
        parts, args = [], []
        env = {"T": self, "STATUS": self._status,
               "STATE": Memo(4096, lambda st: dumps(state_name(proto, st)))}
        prelude = ""
        for c in COLUMNS:
            if c in RELATED_PARTS:           # helper, labels, master_*: one piece
                if c == "helper" and exprs["related"] == "None":
                    parts.append(_related_json(None).replace("%", "%%"))
                elif c == "helper":
                    env["RELJ"] = _related_json
                    parts.append("%s")
                    args.append("RELJ(%s)" % exprs["related"])
                continue
            fmt, expr = _column(c, exprs, family, proto, gre)
            if expr is None:                 # a constant: baked into the text
                parts.append('"%s":%s' % (c, dumps(fmt).replace("%", "%%")))
            else:
                parts.append('"%s":%s' % (c, fmt))
                args.append(expr)
        if exprs["start"] != "None":
            prelude = "    s = %s / 1e9\n    n = T._now\n" % exprs["start"]
        if self.defer:
            env.update(new=tuple.__new__, cls=self.cls)
            service = ""
            if self.service_of is not None:
                prelude += self._service(exprs, proto, gre, env)
                service = ", sv"
            return prelude, "(%r %% (%s,), new(cls, (%s,))%s)" % (
                "{" + ",".join(parts), ",".join(args), ",".join(exprs[n] for n in FIELDS),
                service), env
        prelude += self._tail(exprs, proto, gre, parts, args, env)
        template = "{" + ",".join(parts) + "}\n"
        return prelude, "%r %% (%s,)" % (template, ",".join(args)), env

    def _service(self, exprs, proto, gre, env):
        """The statements that set ``sv``, a flow's service as JSON, by
        ``views.tail.JsonTail.line``'s rule: the destination port's name,
        the source's, the lower port's number; null without ports."""
        sp, dp = exprs["sport"], exprs["dport"]
        if gre or dp == "None":
            return "    sv = 'null'\n"
        env["SJ"] = self.service_of(proto)
        if sp == "None":
            return "    d = %s\n    sv = SJ.get(d) or f'\"{d}\"'\n" % dp
        return ("    d = %s\n    p = %s\n"
                "    sv = SJ.get(d) or SJ.get(p) or f'\"{d if d <= p else p}\"'\n" % (dp, sp))

    def _tail(self, exprs, proto, gre, parts, args, env):
        """The enrichment's keys after the last column: service names baked
        in, or a call of ``tail``.  Returns the statements they need."""
        if self.services is not None:
            names, tail, none = self.services.service_tails(proto)
            sp, dp = exprs["sport"], exprs["dport"]
            if gre or sp == "None" or dp == "None":
                parts[-1] += none.replace("%", "%%")
                return ""
            env.update(SN=names)
            head, _, rest = tail.partition('"%s"')
            parts[-1] += head.replace("%", "%%") + '"%s"' + rest.replace("%", "%%")
            args.append("(SN.get(d) or SN.get(p) or (d if d <= p else p))")
            return "    d = %s\n    p = %s\n" % (dp, sp)
        if self.tail is not None:
            env.update(TAIL=self.tail, new=tuple.__new__, cls=self.cls)
            parts[-1] += "%s"
            args.append("TAIL(new(cls, (%s,)))" % ",".join(exprs[n] for n in FIELDS))
        return ""


_NONES = (None,) * len(FIELDS)


def _column(c, exprs, family, proto, gre):
    """(format, expression) of column ``c``'s JSON value in one layout, or
    (value, None) when the layout fixes it."""
    e = exprs.get(c, "None")
    if c == "time":
        return "%s", "T.stamp"
    if c == "family":
        return family_name(family), None
    if c == "proto":
        return proto_name(proto), None
    if c == "l4proto":
        return proto, None
    if c in ("gre_key", "gre_reply_key"):
        e = exprs["dport" if c == "gre_key" else "reply_dport"] if gre else "None"
    elif c in _PORTS and gre:
        e = "None"
    elif c == "age":
        e = exprs["start"]
    if e == "None":
        return ([] if c == "status" else None), None
    if c == "state":
        return "%s", "STATE[%s]" % e
    if c in ("src", "dst", "reply_src", "reply_dst"):
        return '"%s"', e
    if c == "start":
        return "%.3f", "s"
    if c == "age":
        return "%.3f", "n - s if n > s else 0.0"
    if c == "status":
        return "%s", "STATUS[%s]" % e
    return "%d", e


_LINES = []         # the JsonTarget ``json_line`` encodes with (made on first use)


def json_line(f, now):
    """``record(f, now)`` as one JSON line, without building the dict: the
    generated encoder over a decoded entry (equal once parsed; tests check
    it on every recorded flow)."""
    if not _LINES:
        _LINES.append(JsonTarget())
    target = _LINES[0]
    if now != target._now:
        target.now = now
    return target.line(f)
