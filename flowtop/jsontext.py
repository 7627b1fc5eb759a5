"""JSON text of plain values without importing ``json``.

``json`` and the seven patterns its modules compile took ~0.3 s of a
14-flow ``--json`` in the mipsel router VM (importtime), for names and
constants that are nearly always printable ASCII.  ``dumps(value)`` equals
``json.dumps(value, separators=(",", ":"))`` and hands anything but None,
bools, ints, printable-ASCII strings and lists or str-keyed dicts of them
to ``json`` itself (tests/test_jsontext.py holds the two together).
"""


# the characters that are their own JSON text inside a string: printable ASCII
# but the quote and the backslash (``PLAIN.issuperset(name)``: one C call a name)
PLAIN = frozenset(map(chr, range(32, 127))).difference('"\\')


def dumps(value):
    """``json.dumps(value, separators=(",", ":"))``, mostly without json."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is str:
        if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
            return '"%s"' % value
    elif kind is list or kind is tuple:
        return "[%s]" % ",".join(map(dumps, value))
    elif kind is dict and all(type(k) is str for k in value):
        return "{%s}" % ",".join("%s:%s" % (dumps(k), dumps(v)) for k, v in value.items())
    import json
    return json.dumps(value, separators=(",", ":"))
