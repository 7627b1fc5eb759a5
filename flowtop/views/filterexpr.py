"""The filter language of the ``/`` prompt, ``--filter`` and ``--delete``.

    proc=firefox and dport=443
    dst=10.0.0.0/8 or host~*.example.com
    not (proto=udp or state=TIME_WAIT) and rate>1M and age<1h

``compile(text)`` returns a ``Filter``: call it with an *accessor* and it
says whether the flow matches.  An accessor is anything with ``get(name)``
(a dict will do) giving the value of a field:

    text fields     proc user proto state country in out      str or None
    several values  host iface port status device text        tuple of those
    addresses       src dst (and the addresses of host, device)   str ("10.1.2.3")
    numbers         pid sport dport port mark zone asn        int or None
                    bytes packets rate age                    float or None
    "text"          what a plain word searches (lower case, the shown columns)

A field that is None (no process, no GeoIP) matches nothing but ``!=``.
A field with several values matches ``=``/``~``/``<``/``>`` when one of
them does, ``!=``/``!~`` when none equals.  Text compares ignore case;
``~`` is a substring, or a glob when the value has ``*``, ``?`` or ``[``.
Addresses take ``=`` with a CIDR (``10.0.0.0/8``, ``fe80::/10``).  Numbers
take ``= != < > <= >=``; sizes and rates the suffixes k M G T (1000) or
Ki Mi Gi Ti (1024) and an optional ``B``/``B/s``; ages s m h d (``1h30m``).
Words side by side mean ``and``; a text of plain words only is one
substring, as before the language existed.

Pure: no I/O, nothing read from the world; the callers build accessors.
"""

import re
import socket

from ..memo import Memo

FIELDS = {
    # name: kind
    "proc": "text", "user": "text", "proto": "text", "state": "text",
    "country": "text", "in": "text", "out": "text", "iface": "text",
    "status": "text",
    "host": "addr", "src": "addr", "dst": "addr", "device": "addr",
    "pid": "int", "sport": "int", "dport": "int", "port": "int",
    "mark": "int", "zone": "int", "asn": "int",
    "bytes": "size", "packets": "size", "rate": "size", "age": "age",
}
OPS = ("!=", "!~", "<=", ">=", "=", "~", "<", ">")
KEYWORDS = ("and", "or", "not")
_TOKEN = re.compile(r"""\s*(?:(?P<paren>[()])|(?P<op>!=|!~|<=|>=|[=~<>])|"""
                    r"""(?P<quoted>"[^"]*"|'[^']*')|(?P<word>[^\s()=!~<>"']+|!))""")
_SIZE = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*([kKmMgGtTpP]?)(i?)(?:B|B/s|/s)?$")
_AGE = re.compile(r"(\d+(?:\.\d*)?)([smhd]?)")
_ADDRLIKE = re.compile(r"^[0-9.]+$|^[0-9a-fA-F:.]*:[0-9a-fA-F:.]*$")   # "1.2.3" is a typo, no name
_MACLIKE = re.compile(r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$")
_MULT = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "p": 1e15}
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class FilterError(ValueError):
    """A mistake in a filter: ``column`` (1-based) is where it starts."""

    def __init__(self, message, column):
        ValueError.__init__(self, "column %d: %s" % (column, message))
        self.message = message
        self.column = column

    def pointer(self, text, width=80):
        """One line: the filter text with a caret line's worth of context,
        ``dst=1.2.3 <- column 5: not an address``."""
        return "%s  <- %s" % (text[:max(8, width // 2)], str(self))


class Filter:
    """A compiled filter: ``filter(accessor) -> bool``.

    ``plain`` is the substring (lower case) when the text has no field,
    operator or keyword (the fast path of today's ``/``), else None.
    ``fields`` names the fields it reads; ``terms`` the top-level ``and``ed
    (field, op, value) comparisons, for callers that push some of them down
    to the kernel (only ever narrowing: the filter still runs after)."""

    __slots__ = ("text", "plain", "fields", "terms", "_fn")

    def __init__(self, text, fn, plain, fields, terms):
        self.text, self._fn, self.plain = text, fn, plain
        self.fields, self.terms = fields, terms

    def __call__(self, acc):
        return self._fn(acc)

    def __repr__(self):
        return "Filter(%r)" % self.text


def compile(text):
    """``text`` -> Filter; raises FilterError at the first mistake."""
    text = text if isinstance(text, str) else str(text)
    tokens = _tokenize(text)
    if not tokens:
        return Filter(text, _true, "", frozenset(), ())
    if all(kind == "word" and val.lower() not in KEYWORDS for kind, val, _c in tokens):
        needle = text.strip().lower()
        return Filter(text, lambda acc: needle in (acc.get("text") or ""), needle,
                      frozenset(("text",)), ())
    parser = _Parser(tokens, text)
    node = parser.expr()
    if parser.pos < len(tokens):
        kind, val, col = tokens[parser.pos]
        raise FilterError("unexpected %r" % val if val != ")" else "')' without '('", col)
    fields = frozenset(_fields_of(node))
    terms = tuple(_top_terms(node))
    return Filter(text, _build(node), None, fields, terms)


def _true(acc):
    return True


def _tokenize(text):
    out = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            if text[pos:].strip() == "":
                break
            col = pos + 1 + (len(text[pos:]) - len(text[pos:].lstrip()))
            ch = text[col - 1]
            raise FilterError("unclosed quote" if ch in "\"'" else "unexpected %r" % ch, col)
        kind = m.lastgroup
        if kind is None:                           # trailing blanks
            break
        val = m.group(kind)
        col = m.start(kind) + 1
        if kind == "quoted":
            kind, val = "value", val[1:-1]
        elif kind == "word" and val == "!":
            raise FilterError("'!' only in '!=' or '!~' (use 'not')", col)
        out.append((kind, val, col))
        pos = m.end()
    return out


class _Parser:
    """Recursive descent: or > and (also implied) > not > term."""

    def __init__(self, tokens, text):
        self.tokens, self.pos, self.text = tokens, 0, text

    def peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else (None, None, len(self.text) + 1)

    def _keyword(self, word):
        kind, val, _c = self.peek()
        return kind == "word" and val.lower() == word

    def expr(self):
        left = self.conj()
        while self._keyword("or"):
            self.pos += 1
            left = ("or", left, self.conj())
        return left

    def conj(self):
        left = self.neg()
        while True:
            kind, val, _c = self.peek()
            if self._keyword("and"):
                self.pos += 1
            elif kind is None or kind == "op" or (kind == "paren" and val == ")") \
                    or self._keyword("or"):
                return left
            left = ("and", left, self.neg())

    def neg(self):
        if self._keyword("not"):
            self.pos += 1
            return ("not", self.neg())
        return self.term()

    def term(self):
        kind, val, col = self.peek()
        if kind is None:
            raise FilterError("expression ends too soon", col)
        if kind == "paren" and val == "(":
            self.pos += 1
            inner = self.expr()
            k2, v2, c2 = self.peek()
            if k2 != "paren" or v2 != ")":
                raise FilterError("'(' at column %d is not closed" % col, c2)
            self.pos += 1
            return inner
        if kind == "paren":
            raise FilterError("')' without '('", col)
        if kind == "op":
            raise FilterError("%r needs a field before it" % val, col)
        if kind == "word" and val.lower() in KEYWORDS:
            raise FilterError("%r needs something to its left and right" % val, col)
        self.pos += 1
        k2, op, c2 = self.peek()
        if k2 != "op":
            return ("word", val.lower())
        name = val.lower()
        if kind == "value" or name not in FIELDS:
            raise FilterError("unknown field %r (fields: %s)" % (val, ", ".join(sorted(FIELDS))),
                              col)
        self.pos += 1
        k3, value, c3 = self.peek()
        if k3 not in ("word", "value"):
            raise FilterError("%s%s needs a value" % (name, op), c3)
        self.pos += 1
        return ("cmp", name, op, _value(name, op, value, c3))


def _value(name, op, raw, col):
    """The compare value of ``name op raw``, parsed for the field's kind."""
    kind = FIELDS[name]
    if op in ("<", ">", "<=", ">=") and kind in ("text", "addr"):
        raise FilterError("%s is not a number: %s takes = != ~" % (name, name), col)
    if op in ("~", "!~"):
        return _text_match(raw)
    if kind == "text":
        return raw.lower()
    if kind == "addr" and not _MACLIKE.match(raw):
        if "/" in raw or _addr_int(raw) is not None or _ADDRLIKE.match(raw):
            net = _network(raw)
            if net is None:
                raise FilterError("not an address or network: %r" % raw, col)
            return net
        return raw.lower()                    # a host name
    if kind == "addr":
        return raw.lower().replace("-", ":")  # a MAC (device)
    if kind == "int":
        return _int_value(name, raw, col)
    if kind == "age":
        return _age_value(raw, col)
    return _size_value(raw, col)


def _int_value(name, raw, col):
    text = raw
    if name == "asn" and text[:2].lower() == "as":
        text = text[2:]
    if name == "mark" and "/" in text:          # mark=value/mask
        v, m = text.split("/", 1)
        return ("mask", _int_value(name, v, col), _int_value(name, m, col))
    try:
        return int(text, 16) if text[:2].lower() == "0x" else int(text)
    except ValueError:
        raise FilterError("%s wants a number, not %r" % (name, raw), col) from None


def _size_value(raw, col):
    m = _SIZE.match(raw)
    if m is None:
        raise FilterError("not a size or rate: %r (like 1.5M, 10KiB, 200k)" % raw, col)
    mult = _MULT[m.group(2).lower()]
    if m.group(3):
        mult = 1024 ** "kmgtp".index(m.group(2).lower()) * 1024 if m.group(2) else None
        if mult is None:
            raise FilterError("'i' needs a prefix (Ki, Mi, ...): %r" % raw, col)
    return float(m.group(1)) * mult


def _age_value(raw, col):
    pos, total = 0, 0.0
    for m in _AGE.finditer(raw):
        if m.start() != pos or not m.group(0):
            break
        total += float(m.group(1)) * _SECONDS[m.group(2)]
        pos = m.end()
    if pos != len(raw) or not raw:
        raise FilterError("not a duration: %r (like 90s, 5m, 1h30m, 2d)" % raw, col)
    return total


def _text_match(raw):
    """``~``'s matcher over a lower-case value: substring or glob."""
    low = raw.lower()
    if any(c in low for c in "*?["):
        from fnmatch import translate
        rx = re.compile(translate(low), re.S)
        return ("glob", rx.match)
    return ("sub", low)


# --- addresses: (family, int, prefix) without the ipaddress module ----------

def _parse_addr(text):
    """"10.1.2.3" -> (4, int); "::1" -> (6, int); anything else None."""
    if isinstance(text, str):
        for fam, ver in ((socket.AF_INET, 4), (socket.AF_INET6, 6)):
            try:
                return (ver, int.from_bytes(socket.inet_pton(fam, text.split("%")[0]), "big"))
            except (OSError, ValueError, UnicodeError):
                continue
    return None


# memoised: the same addresses come back every tick
_addr_int = Memo(1 << 16, _parse_addr).__getitem__


def _network(text):
    """"10.0.0.0/8" -> ("net", 4, network int, mask int); None when bad."""
    addr, _s, plen = text.partition("/")
    a = _addr_int(addr)
    if a is None:
        return None
    bits = 32 if a[0] == 4 else 128
    try:
        n = bits if not _s else int(plen)
    except ValueError:
        return None
    if not 0 <= n <= bits:
        return None
    mask = ((1 << n) - 1) << (bits - n)
    return ("net", a[0], a[1] & mask, mask)


# --- evaluation ----------------------------------------------------------------

def _fields_of(node):
    if node[0] == "cmp":
        yield node[1]
    elif node[0] == "word":
        yield "text"
    else:
        for child in node[1:]:
            yield from _fields_of(child)


def _top_terms(node):
    if node[0] == "and":
        yield from _top_terms(node[1])
        yield from _top_terms(node[2])
    elif node[0] == "cmp":
        yield node[1:]


def _build(node):
    tag = node[0]
    if tag == "and":
        a, b = _build(node[1]), _build(node[2])
        return lambda acc: a(acc) and b(acc)
    if tag == "or":
        a, b = _build(node[1]), _build(node[2])
        return lambda acc: a(acc) or b(acc)
    if tag == "not":
        a = _build(node[1])
        return lambda acc: not a(acc)
    if tag == "word":
        word = node[1]
        return lambda acc: word in (acc.get("text") or "")
    return _compare(*node[1:])


def _compare(name, op, value):
    """The predicate of one comparison."""
    negate = op in ("!=", "!~")
    one = _one_test(name, op, value)

    def test(acc):
        v = acc.get(name)
        if v is None:
            return negate
        if v.__class__ is tuple:
            hit = any(x is not None and one(x) for x in v)
        else:
            hit = one(v)
        return not hit if negate else hit
    return test


def _one_test(name, op, value):
    """A test of one (non-None) value: the positive form of != and !~."""
    if op in ("~", "!~"):
        how, what = value
        if how == "glob":
            return lambda v: what(str(v).lower()) is not None
        return lambda v: what in str(v).lower()
    kind = FIELDS[name]
    if kind in ("text", "addr"):
        if isinstance(value, tuple):             # a network
            _n, ver, net, mask = value

            def in_net(v):
                a = _addr_int(v)
                return a is not None and a[0] == ver and a[1] & mask == net
            return in_net
        return lambda v: str(v).lower() == value
    if isinstance(value, tuple):                 # mark=value/mask
        _m, want, mask = value
        return lambda v: v & mask == want & mask
    if op in ("=", "!="):
        return lambda v: v == value
    return {"<": lambda v: v < value, ">": lambda v: v > value,
            "<=": lambda v: v <= value, ">=": lambda v: v >= value}[op]
