"""Named tuples made without ``collections.namedtuple``'s ``eval``.

``namedtuple`` compiles each class's ``__new__`` from source text: 2.6 M instructions
for ``Options``' 52 fields, 0.56 M for 7 (0.6 and 0.22 M here), on the live view's way
to its first rows.  ``named`` makes the same class - the fields, their defaults,
``_make``, ``_replace``, ``_asdict``, the repr, pickling - with one generic ``__new__``
(a call 0.29 against namedtuple's 0.27 us here: fine for the route records, made per
address; the decoder's records per flow are made by ``tuple.__new__`` itself).
``tests/test_tuples.py`` holds it to ``namedtuple``.
"""

import sys
from operator import itemgetter

try:
    from _collections import _tuplegetter
except ImportError:                                            # pragma: no cover
    def _tuplegetter(index, doc):
        return property(itemgetter(index), doc=doc)

_new = tuple.__new__
_MISSING = object()


def named(typename, field_names, defaults=()):
    """A tuple subclass ``typename`` with ``field_names`` (a sequence of names, or
    one string of them), the last ``len(defaults)`` of them defaulted."""
    if isinstance(field_names, str):
        field_names = field_names.replace(",", " ").split()
    fields = tuple(map(sys.intern, map(str, field_names)))
    n = len(fields)
    defaults = tuple(defaults)
    if len(defaults) > n:
        raise TypeError("Got more default values than field names")
    start = (_MISSING,) * (n - len(defaults)) + defaults
    index = {name: i for i, name in enumerate(fields)}

    def __new__(cls, *args, **kwargs):
        if not kwargs and len(args) == n:
            return _new(cls, args)
        if len(args) > n:
            raise TypeError("%s() takes %d positional arguments but %d were given"
                            % (typename, n, len(args)))
        values = list(args) + list(start[len(args):])
        for key, value in kwargs.items():
            i = index.get(key)
            if i is None:
                raise TypeError("%s() got an unexpected keyword argument %r" % (typename, key))
            if i < len(args):
                raise TypeError("%s() got multiple values for argument %r" % (typename, key))
            values[i] = value
        if _MISSING in values:
            missing = [fields[i] for i, v in enumerate(values) if v is _MISSING]
            raise TypeError("%s() missing %d required argument%s: %s" % (
                typename, len(missing), "" if len(missing) == 1 else "s",
                ", ".join(map(repr, missing))))
        return _new(cls, values)

    fmt = "(%s)" % ", ".join("%s=%%r" % name for name in fields)
    namespace = {
        "__doc__": "%s(%s)" % (typename, ", ".join(fields)),
        "__slots__": (),
        "_fields": fields,
        "_field_defaults": dict(zip(fields[n - len(defaults):], defaults)),
        "__new__": __new__,
        "_make": classmethod(_make),
        "_replace": _replace,
        "__repr__": lambda self: self.__class__.__name__ + fmt % self,
        "_asdict": _asdict,
        "__getnewargs__": _getnewargs,
        "__match_args__": fields,
    }
    for i, name in enumerate(fields):
        namespace[name] = _tuplegetter(i, "Alias for field number %d" % i)
    cls = type(typename, (tuple,), namespace)
    cls.__module__ = sys._getframe(1).f_globals.get("__name__", "__main__")
    return cls


def _make(cls, iterable):
    result = _new(cls, iterable)
    if len(result) != len(cls._fields):
        raise TypeError("Expected %d arguments, got %d" % (len(cls._fields), len(result)))
    return result


# what namedtuple's _replace raises for an unknown field: ValueError until 3.13
_UNKNOWN_FIELD = TypeError if sys.version_info >= (3, 13) else ValueError


def _replace(self, **kwargs):
    result = self._make(map(kwargs.pop, self._fields, self))
    if kwargs:
        raise _UNKNOWN_FIELD("Got unexpected field names: %r" % list(kwargs))
    return result


def _asdict(self):
    return dict(zip(self._fields, self))


def _getnewargs(self):
    return tuple(self)
