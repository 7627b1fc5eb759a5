"""What the user chose to see: the view state, built from the frozen
Options alone and changed afterwards only by the key handlers
(``views.keys``).  Never the data.

The protocol groups here are what ``cli`` checks its arguments against
(the sorts and units, in ``values``): this module imports nothing of the
view-model.
"""

from ..text import human, sanitize

# Columns whose natural order is ascending (names, ports); the others
# (rate, bytes, age) read best largest first.
ASCENDING = {"state", "proto", "dst", "port"}

# Protocol groups for flowtop's toggles, by key letter.  Kernel numbers by
# hand: cli imports this module and must not load netlink/ (start-up on a
# router); tests/test_state.py holds them equal to netlink/uapi.py's.
GROUPS = {
    "T": frozenset((6,)), "U": frozenset((17, 136)), "D": frozenset((33,)),
    "I": frozenset((1, 58)), "S": frozenset((132,)),
}
GROUP_OF = {p: k for k, ps in GROUPS.items() for p in ps}
GROUP_NAMES = {"T": "tcp", "U": "udp", "D": "dccp", "I": "icmp", "S": "sctp"}
FAMILIES = {"4": 2, "6": 10}

# Fields that change only how rows look, not which rows or in what order:
# a key that changes one of them redraws without selecting again.
LOOKS = frozenset(("show_src", "bits", "units", "show_id", "age", "wide", "interval",
                   "paused", "wall", "rc", "show_history", "has_history", "unicode"))
ORDER = frozenset(("sort", "reverse"))


class ViewState:
    """What the user changed with keys (and options): never the data.

    Key handlers change these fields; ``select.build`` reads them.
    """

    def __init__(self, opts):
        protos = set(opts.protocols and _numbers(opts.protocols))
        self.hidden_groups = set() if not protos else {
            k for k, ps in GROUPS.items() if not ps & protos}
        self.show_other = not protos          # protocols outside the groups (GRE, ...)
        self.hidden_families = set() if not opts.families else {
            n for k, n in FAMILIES.items() if {"4": "ipv4", "6": "ipv6"}[k] not in opts.families}
        sort = opts.sort or "rate"
        self.sort = sort.lstrip("+")
        self.reverse = sort.startswith("+")   # "+col": ascending
        self.filter = opts.filter or ""       # views.filterexpr: words or an expression
        self.wall = 0.0                   # the shown snapshot's time: what 'age<1h' counts to
        self.rc = opts.rc                 # the settings file W writes (None: XDG default)
        self.active_only = opts.active
        self.threshold = opts.threshold or 0.0
        self.show_src = opts.show_src
        self.bits = opts.bits
        self.units = opts.units
        self.numeric_port = opts.numeric_port
        self.loopback = opts.loopback
        self.show_id = opts.show_id
        self.age = opts.age or "human"
        self.wide = opts.wide
        self.redact_local = opts.redact_local
        self.redact_remote = opts.redact_remote
        self.interval = opts.interval
        self.paused = False
        self.view = opts.view or "flows"
        self.in_iface = opts.in_iface
        self.out_iface = opts.out_iface
        self.group = None                 # (view, key, label): flows of one aggregate row
        self.by_name = False              # Processes view: per program name, not per PID
        self.show_rates = not opts.once   # a single snapshot has none
        self.has_process = False          # set by the Formatter from its enrichment
        self.has_geo = False
        self.has_iface = False
        self.has_history = False          # set by the Formatter: rate rings are kept
        self.show_history = False         # H: the average and peak columns
        self.unicode = False              # the screen can draw block characters

    def toggle_group(self, key):
        self.hidden_groups ^= {key}
        if not self.show_other and not self.hidden_groups:
            self.show_other = True

    def toggle_family(self, key):
        self.hidden_families ^= {FAMILIES[key]}

    def ascending(self):
        """Whether the rows run smallest first: the sort's natural order, flipped by r."""
        return (self.sort in ASCENDING) != self.reverse

    def which(self):
        """Everything that decides which rows are shown (not their order, not
        their looks): equal values select the same rows from the same data."""
        return tuple((k, frozenset(v) if isinstance(v, set) else v)
                     for k, v in sorted(vars(self).items())
                     if k not in LOOKS and k not in ORDER and k != "group") + (
            ("group", self.group and self.group[:2]),)

    def base(self):
        """What decides the rows past the protocol, family and loopback filters."""
        return (frozenset(self.hidden_groups), frozenset(self.hidden_families), self.show_other,
                self.loopback)

    def filters_text(self):
        """Short description of the active filters, for the header."""
        parts = []
        if self.hidden_groups or not self.show_other:     # what is shown, not what was removed
            shown = [GROUP_NAMES[k] for k in "TUDIS" if k not in self.hidden_groups]
            parts.append("only " + ",".join(shown + (["other"] if self.show_other else [])))
        if self.hidden_families:
            parts.append("ipv6 only" if 2 in self.hidden_families else "ipv4 only")
        if self.active_only:
            parts.append("active")
        if self.threshold:
            parts.append(">=" + human(self.threshold, self.units, "B/s"))
        if not self.loopback:
            parts.append("no loopback")
        if self.filter:
            parts.append("/" + self.filter)
        if self.in_iface:
            parts.append("in %s" % sanitize(self.in_iface, 32))
        if self.out_iface:
            parts.append("out %s" % sanitize(self.out_iface, 32))
        if self.group:
            parts.append("%s=%s" % (self.group[0], self.group[2]))
        return " ".join(parts)


def _numbers(names):
    from ..model import PROTO_NUMBERS
    return {PROTO_NUMBERS[n] for n in names if n in PROTO_NUMBERS}
