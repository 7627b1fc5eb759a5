"""Settings that stay: what the live view's keys chose (sort, view,
columns, units, filter, ...) saved to a small file and read at start.

The file is ``$XDG_CONFIG_HOME/flowtop/flowtoprc`` (``~/.config/flowtop/
flowtoprc`` without it), or ``--rc FILE``: ``name = value`` lines, ``#``
comments.  Command-line options win over it; it applies to the live view
and text frames, never to the machine outputs (``--json``, ``--csv``,
exports), so a saved view cannot change what a script reads.  A line this
version does not know is skipped; a bad value is skipped with one warning.
"""

import os

RC_NAME = "flowtoprc"
MAX_RC = 1 << 16            # bytes read: the file is a dozen lines

# name -> kind; the Options fields the file may set
FIELDS = {
    "view": "view", "sort": "sort", "units": "units", "age": "age", "filter": "filter",
    "bits": "bool", "show_src": "bool", "wide": "bool", "show_id": "bool",
    "numeric_port": "bool", "loopback": "bool", "active": "bool",
    "threshold": "rate", "interval": "seconds", "protocols": "protocols",
    "families": "families",
}
_TRUE = {"yes": True, "true": True, "on": True, "1": True,
         "no": False, "false": False, "off": False, "0": False}


def rc_path(explicit=None, environ=None, home=None):
    """The settings file: ``explicit``, else under XDG_CONFIG_HOME, else
    ~/.config (``environ``/``home`` injected; os.environ and ~ by default)."""
    if explicit:
        return explicit
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME")
    if not base or not os.path.isabs(base):      # the XDG spec: a relative one is invalid
        base = os.path.join(home or os.path.expanduser("~"), ".config")
    return os.path.join(base, "flowtop", RC_NAME)


def _value(kind, text):
    """The Options value of one setting, or raise ValueError."""
    from .values import VIEWS, rate, seconds
    from .values import AGE_FORMATS, SORTS, UNITS
    if kind == "bool":
        if text.lower() not in _TRUE:
            raise ValueError("not yes/no: %r" % text)
        return _TRUE[text.lower()]
    if kind == "view":
        if text not in VIEWS:
            raise ValueError("not a view: %r" % text)
        return text
    if kind == "sort":
        if text.lstrip("+") not in SORTS:
            raise ValueError("not a sort: %r" % text)
        return text
    if kind == "units":
        if text not in UNITS:
            raise ValueError("not units: %r" % text)
        return text
    if kind == "age":
        if text not in AGE_FORMATS:
            raise ValueError("not an age format: %r" % text)
        return text
    if kind == "filter":
        from .views.filterexpr import compile as compile_filter
        compile_filter(text)                     # FilterError is a ValueError
        return text or None
    if kind == "rate":
        return rate(text)
    if kind == "seconds":
        return seconds(text)
    if kind == "protocols":
        from .values import PROTOCOL_FLAGS
        known = {p for *_x, protos, _h in PROTOCOL_FLAGS for p in protos}
        names = frozenset(x for x in text.replace(",", " ").split())
        if not names <= known:
            raise ValueError("unknown protocols: %s" % ", ".join(sorted(names - known)))
        return names
    if kind == "families":
        names = frozenset(x for x in text.replace(",", " ").split())
        if not names <= {"ipv4", "ipv6"}:
            raise ValueError("not ipv4/ipv6: %r" % text)
        return names
    raise ValueError(kind)                       # pragma: no cover


def parse(text, warn=None):
    """``name = value`` lines -> {Options field: value}; unknown names are
    skipped quietly (a newer flowtop wrote them), bad values with a warning."""
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, eq, value = line.partition("=")
        name, value = name.strip(), value.strip()
        kind = FIELDS.get(name)
        if not eq or kind is None:
            continue
        try:
            out[name] = _value(kind, value)
        except ValueError as exc:
            if warn is not None:
                from .text import sanitize
                warn("settings line %d: %s ignored (%s)" % (n, sanitize(name, 20),
                                                            sanitize(str(exc), 80)))
    return out


def load(path, warn=None):
    """The settings in ``path`` ({} when there is no such file)."""
    try:
        with open(path, "rb") as f:
            text = f.read(MAX_RC).decode("utf-8", "replace")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        if warn is not None:
            warn("cannot read %s: %s" % (path, exc.strerror or exc))
        return {}
    return parse(text, warn)


def given_fields(parser, argv):
    """The Options fields ``argv`` sets explicitly: ``parser`` (cli's) with
    every default suppressed parses it again (only done when a settings
    file exists)."""
    import argparse
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    names = set(vars(parser.parse_args(argv)))
    if names & {"tcp", "udp", "dccp", "icmp", "sctp"}:
        names.add("protocols")
    if names & {"ipv4", "ipv6"}:
        names.add("families")
    return names


def apply(opts, given, values):
    """``opts`` with ``values`` (from ``load``) for the fields the command
    line did not give (``given``: the Options fields it set)."""
    if opts.output != "text" or opts.ipfix or opts.metrics or opts.metrics_file \
            or opts.syslog or opts.quiet:
        return opts
    # threshold is saved in bytes/s, as Options holds it (also under -b)
    changes = {k: v for k, v in values.items() if k not in given and k in opts._fields}
    return opts._replace(**changes) if changes else opts


def of_state(st):
    """The settings of a live view's ViewState (what ``save`` writes)."""
    from .views.state import GROUP_NAMES
    values = {
        "view": st.view, "sort": ("+" if st.reverse else "") + st.sort, "units": st.units,
        "age": st.age, "filter": st.filter, "bits": st.bits, "show_src": st.show_src,
        "wide": st.wide, "show_id": st.show_id, "numeric_port": st.numeric_port,
        "loopback": st.loopback, "active": st.active_only, "threshold": st.threshold,
        "interval": st.interval,
    }
    if st.hidden_groups:
        from .values import PROTOCOL_FLAGS
        by_name = {dest: protos for dest, _s, _l, protos, _h in PROTOCOL_FLAGS}
        shown = [k for k in "TUDIS" if k not in st.hidden_groups]
        values["protocols"] = sorted(p for k in shown for p in by_name[GROUP_NAMES[k]])
    if st.hidden_families:
        values["families"] = ["ipv6"] if 2 in st.hidden_families else ["ipv4"]
    return values


def render(values):
    """The file's text."""
    lines = ["# flowtop settings, written by the live view's W key; options win over them"]
    for name in FIELDS:
        if name not in values:
            continue
        v = values[name]
        if isinstance(v, bool):
            v = "yes" if v else "no"
        elif isinstance(v, (list, tuple, set, frozenset)):
            v = ",".join(v)
        elif v is None:
            v = ""
        else:
            v = str(v).replace("\n", " ")
        lines.append("%s = %s" % (name, v))
    return "\n".join(lines) + "\n"


def save(st, path):
    """Write a ViewState's settings to ``path`` atomically (a temporary file
    renamed over it); returns the line to show, success or why not."""
    text = render(of_state(st))
    tmp = "%s.tmp%d" % (path, os.getpid())
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return "cannot save settings to %s: %s" % (path, exc.strerror or exc)
    return "settings saved to %s" % path
