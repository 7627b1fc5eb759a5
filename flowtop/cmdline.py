"""Plain command lines read without argparse: a router's start-up.

In the mipsel router VM argparse took ~2.9 s of a 14-flow ``--once --json
-n -G``'s ~8.5 s (its import with gettext, then shutil and locale, which its
first add_argument pulls in, and the 60 add_argument calls), against 0.5 s
for ``python3 -c pass``.  ``read(define, argv)`` reads argv against the
same definitions (``define(parser)``, handed a ``Recorder`` that keeps what
add_argument is told) and returns the namespace argparse would, or None for
anything it does not read exactly as argparse does: help, version, an
abbreviation, a value that starts with "-", a bad value, a conflict in a
mutually exclusive group, "--", a positional.  argparse then parses it,
with its own messages.  tests/test_cmdline.py holds the two together.
"""

from types import SimpleNamespace

_FLAG_VALUES = {"store_true": True, "store_false": False}
_READ = frozenset(("store", "store_true", "store_false", "store_const", "append"))


class _Spec:
    __slots__ = ("dest", "action", "const", "default", "type", "choices", "group")

    def takes_value(self):
        return self.action in ("store", "append")


class Recorder:
    """Enough of argparse.ArgumentParser for ``define``: each option's
    dest, action, const, default, type, choices and exclusive group."""

    def __init__(self):
        self.options = {}           # option string -> _Spec
        self.specs = []             # in definition order (the order defaults are set in)
        self._groups = 0

    def add_argument_group(self, *args, **kwargs):
        return self

    def add_mutually_exclusive_group(self, **kwargs):
        self._groups += 1
        return _Group(self, self._groups)

    def add_argument(self, *flags, _group=None, **kw):
        spec = _Spec()
        spec.action = kw.get("action", "store")
        spec.dest = kw.get("dest") or _dest_of(flags)
        spec.const = kw.get("const")
        spec.type = kw.get("type")
        spec.choices = kw.get("choices")
        spec.group = _group
        # argparse's own defaults: True/False for the flags, None otherwise
        spec.default = kw.get("default", not _FLAG_VALUES[spec.action]
                              if spec.action in _FLAG_VALUES else None)
        if spec.action not in _READ or set(kw) - {"action", "dest", "const", "default", "type",
                                                  "choices", "metavar", "help", "version"}:
            spec.action = None      # given on the line: argparse reads it
        self.specs.append(spec)
        for flag in flags:
            self.options[flag] = spec


class _Group:
    def __init__(self, recorder, number):
        self._recorder = recorder
        self._number = number

    def add_argument(self, *flags, **kw):
        return self._recorder.add_argument(*flags, _group=self._number, **kw)


def _dest_of(flags):
    longs = [f for f in flags if f.startswith("--")]
    return (longs[0] if longs else flags[0]).lstrip("-").replace("-", "_")


class _Unread(Exception):
    """argv holds something argparse must read."""


def read(define, argv):
    """The argparse namespace of ``argv`` for the parser ``define`` builds,
    or None where argparse must parse it (see the module doc)."""
    rec = Recorder()
    define(rec)
    try:
        given = _given(rec.options, list(argv))
    except _Unread:
        return None
    ns = {}
    for spec in rec.specs:      # a dest shared by several options: the first one's default
        if spec.dest not in ns and spec.action is not None:
            ns[spec.dest] = spec.default
    strings = {s.dest: s for s in rec.specs if isinstance(s.default, str) and s.type}
    for dest, value in given.items():
        ns[dest] = value
        strings.pop(dest, None)
    try:
        for dest, spec in strings.items():      # argparse converts a str default by type
            if ns[dest] is spec.default:
                ns[dest] = _value(spec, spec.default)
    except _Unread:
        return None
    return SimpleNamespace(**ns)


def _given(options, argv):
    """dest -> value of what argv sets, in argparse's terms."""
    given, groups = {}, {}
    i = 0
    while i < len(argv):
        tok = argv[i]
        i += 1
        if tok[:1] != "-" or tok in ("-", "--"):
            raise _Unread
        if tok.startswith("--"):
            name, eq, text = tok.partition("=")
            spec = _option(options, name, groups)
            if spec.takes_value():
                if not eq:
                    text, i = _next(argv, i)
                _apply(spec, _value(spec, text), given)
            elif eq:
                raise _Unread
            else:
                _apply(spec, None, given)
            continue
        j = 1
        while j < len(tok):     # -nG: flags together; -t1 or -t 1: a value
            spec = _option(options, "-" + tok[j], groups)
            j += 1
            if not spec.takes_value():
                _apply(spec, None, given)
                continue
            text = tok[j:]
            if not text:
                text, i = _next(argv, i)
            elif text[0] == "=":
                raise _Unread
            _apply(spec, _value(spec, text), given)
            break
    return given


def _option(options, name, groups):
    spec = options.get(name)
    if spec is None or spec.action is None:
        raise _Unread
    if spec.group is not None and groups.setdefault(spec.group, spec) is not spec:
        raise _Unread               # two of one exclusive group: argparse's error
    return spec


def _next(argv, i):
    if i >= len(argv) or argv[i][:1] == "-":
        raise _Unread               # missing, or an option/negative number: argparse decides
    return argv[i], i + 1


def _value(spec, text):
    try:
        value = spec.type(text) if spec.type is not None else text
    except Exception:  # noqa: BLE001 - argparse prints the type's own message
        raise _Unread from None
    if spec.choices is not None and value not in spec.choices:
        raise _Unread
    return value


def _apply(spec, value, given):
    action = spec.action
    if action == "store":
        given[spec.dest] = value
    elif action == "append":
        items = given.get(spec.dest)
        if items is None:
            items = given[spec.dest] = list(spec.default or ())
        items.append(value)
    elif action == "store_const":
        given[spec.dest] = spec.const
    else:
        given[spec.dest] = _FLAG_VALUES[action]
