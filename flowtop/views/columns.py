"""The columns of the live views: which ones, how wide, how a line of
cells is placed, and which titles a sort marks.
"""

from ..text import cut as cut_cols, fit, sanitize, width

class Column:
    __slots__ = ("name", "title", "width", "right", "priority", "flex")

    def __init__(self, name, title, width, right=False, priority=5, flex=False):
        self.name, self.title, self.width = name, title, width
        self.right, self.priority, self.flex = right, priority, flex


COLUMNS = (
    Column("process", "PROCESS", 14, priority=2),
    Column("proto", "PROTO", 7, priority=1),
    Column("state", "STATE", 11, priority=2),
    Column("service", "SERVICE", 9, priority=4),
    Column("id", "ID", 10, right=True, priority=3),
    Column("src", "SOURCE", 21, priority=3, flex=True),
    Column("dst", "DESTINATION", 21, priority=1, flex=True),
    Column("nat", "NAT", 3, priority=3),         # S, D, SD: only while a shown flow is NATed
    Column("xlate", "NAT_TO", 6, priority=9),     # --wide: the translated ends
    Column("country", "GEO", 14, priority=4),
    Column("in_iface", "IN", 8, priority=7),
    Column("out_iface", "OUT", 8, priority=7),
    Column("bytes_tx", "TX", 8, right=True, priority=5),
    Column("bytes_rx", "RX", 8, right=True, priority=5),
    Column("pkts_tx", "PKTS_TX", 8, right=True, priority=8),
    Column("pkts_rx", "PKTS_RX", 8, right=True, priority=8),
    Column("rate_tx", "RATE_TX", 10, right=True, priority=2),
    Column("rate_rx", "RATE_RX", 10, right=True, priority=2),
    # iftop's averages and the peak (flowtop.history): --wide or H
    Column("avg2", "AVG2S", 8, right=True, priority=9),
    Column("avg10", "AVG10S", 8, right=True, priority=9),
    Column("avg40", "AVG40S", 8, right=True, priority=9),
    Column("peak", "PEAK", 8, right=True, priority=9),
    Column("age", "AGE", 7, right=True, priority=5),
)
HISTORY_COLUMNS = ("avg2", "avg10", "avg40", "peak")
_PAIRS = (("bytes_tx", "bytes_rx"), ("pkts_tx", "pkts_rx"), ("rate_tx", "rate_rx"),
          ("in_iface", "out_iface"))
MAX_FLEX = 47         # "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"


def widths_of(cells_list):
    """Column name -> the widest text among ``cells_list`` (dicts of cell
    text): numbers widen their column rather than being cut."""
    out = {}
    for cells in cells_list:
        for name, text in cells.items():
            if len(text) > out.get(name, 0):
                out[name] = len(text)
    return out


def _widened(columns, widths):
    """``columns`` with right-aligned (number) columns as wide as their
    widest text (a raw 148 MB counter is 10 digits; TX is 8 wide)."""
    if not widths:
        return columns
    out = []
    for c in columns:
        w = widths.get(c.name, 0)
        if (c.right or c.name == "xlate") and w > c.width:
            c = Column(c.name, c.title, w, c.right, c.priority, c.flex)
        out.append(c)
    return out


def layout(width, state, flex_want=21, widths=None):
    """Columns to show at ``width`` characters: by priority, then shown in
    their fixed order; address columns take the room left (up to what the
    widest shown address needs); number columns as wide as ``widths`` (from
    ``widths_of``) says their texts are.  Returns [(Column, width)]."""
    wanted = _widened([c for c in COLUMNS if _enabled(c, state, widths)], widths)
    if state.wide:
        chosen = wanted
    else:
        # Out without in reads as a bug: paired columns come and go together.
        partner = {a: b for a, b in _PAIRS}
        partner.update({b: a for a, b in _PAIRS})
        by_name = {c.name: c for c in wanted}
        units, seen = [], set()
        for c in sorted(wanted, key=lambda c: c.priority):
            if c.name in seen:
                continue
            unit = [c] + ([by_name[partner[c.name]]] if partner.get(c.name) in by_name else [])
            seen.update(u.name for u in unit)
            units.append(unit)
        chosen, used = [], 0
        for unit in units:
            need = sum(c.width + 1 for c in unit) - (0 if chosen else 1)
            if used + need <= width:
                chosen.extend(unit)
                used += need
    chosen = [c for c in wanted if c in chosen]
    fixed = sum(c.width for c in chosen if not c.flex) + len(chosen) - 1
    flex = [c for c in chosen if c.flex]
    out = []
    room = max(0, width - fixed)
    each = min(MAX_FLEX, max(flex_want, 21)) if flex else 0
    if flex and not state.wide:
        each = max(21, min(each, room // len(flex)))
    for c in chosen:
        out.append((c, each if c.flex else c.width))
    return out


def _enabled(c, state, widths=None):
    if c.name in ("nat", "xlate"):
        return bool((widths or {}).get(c.name)) and (c.name == "nat" or state.wide)
    if c.name == "src":
        return state.show_src or state.wide
    if c.name == "id":
        return state.show_id
    if c.name == "age":
        return state.age != "none"
    if c.name in ("rate_tx", "rate_rx"):
        return state.show_rates
    if c.name == "process":
        return state.has_process
    if c.name == "country":
        return state.has_geo
    if c.name in ("in_iface", "out_iface"):
        return state.has_iface
    if c.name in HISTORY_COLUMNS:
        return state.has_history and (state.show_history or state.wide)
    return True


# The column titles each sort marks (the columns the sort key reads).
SORT_COLUMNS = {"state": ("state",), "rate": ("rate_tx", "rate_rx"),
                "bytes": ("bytes_tx", "bytes_rx"), "packets": ("pkts_tx", "pkts_rx"),
                "age": ("age",), "proto": ("proto",), "dst": ("dst",), "port": ("dst",)}
GROUP_SORT_COLUMNS = {"rate": ("rate_tx", "rate_rx"), "bytes": ("bytes_tx", "bytes_rx"),
                      "packets": ("pkts_tx", "pkts_rx"), "age": ("flows",)}


def marked(c, state):
    """Whether column ``c``'s title carries the sort mark (htop's habit)."""
    sorts = SORT_COLUMNS if state.view == "flows" else GROUP_SORT_COLUMNS
    return c.name in sorts.get(state.sort, ())


GROUP_COLUMNS = (
    Column("label", "NAME", 24, priority=1, flex=True),
    Column("flows", "FLOWS", 6, right=True, priority=1),
    Column("uncounted", "NOACCT", 6, right=True, priority=4),   # flows without counters
    Column("bytes_tx", "SENT", 8, right=True, priority=3),
    Column("bytes_rx", "RECEIVED", 8, right=True, priority=3),
    Column("pkts_tx", "PKTS_SENT", 9, right=True, priority=5),
    Column("pkts_rx", "PKTS_RECV", 9, right=True, priority=5),
    Column("rate_tx", "RATE_SENT", 10, right=True, priority=2),
    Column("rate_rx", "RATE_RECV", 10, right=True, priority=2),
    Column("avg2", "AVG2S", 8, right=True, priority=9),
    Column("avg10", "AVG10S", 8, right=True, priority=9),
    Column("avg40", "AVG40S", 8, right=True, priority=9),
    Column("peak", "PEAK", 8, right=True, priority=9),
)


def group_layout(width, state, cells_list=()):
    """Columns of an aggregate view at ``width``: by priority, the name
    taking what is left; number columns as wide as their texts in
    ``cells_list`` (``Formatter.group_cells``); rates only where a view
    has them; NOACCT only when some group has flows without counters."""
    from ..values import KEY_TITLES
    widths = widths_of(cells_list)
    wanted = [c for c in _widened(GROUP_COLUMNS, widths)
              if (state.show_rates or c.name not in ("rate_tx", "rate_rx"))
              and (c.name != "uncounted" or any(x["uncounted"] != "0" for x in cells_list))
              and (c.name not in HISTORY_COLUMNS
                   or (state.has_history and (state.show_history or state.wide)))]
    chosen, used = [], 0
    for c in sorted(wanted, key=lambda c: c.priority):
        need = c.width + (1 if chosen else 0)
        if used + need <= width:
            chosen.append(c)
            used += need
    chosen = [c for c in wanted if c in chosen]
    room = width - (used - 24)
    out = []
    for c in chosen:
        if c.flex:
            c = Column(c.name, KEY_TITLES.get(state.view, c.title), c.width, priority=c.priority,
                       flex=True)
            out.append((c, max(c.width, min(room, max(48, widths.get("label", 0))))))
        else:
            out.append((c, c.width))
    return out


def place(cells, cols):
    """One line of ``cells`` (column name -> text) for the layout ``cols``."""
    # by display width: a CJK or emoji name takes two columns a character
    out = []
    for c, w in cols:
        text = cells[c.name]
        # printable ASCII that fits: sanitize and fit would return it padded
        if type(text) is str and len(text) <= w and len(text) <= 200 and text.isascii() \
                and text.isprintable():
            out.append(text.rjust(w) if c.right else text.ljust(w))
            continue
        text = sanitize(text, 200)
        if c.right:                             # numbers are never cut
            out.append(text.rjust(w))
        elif c.name in _TAILED and width(text) > w:
            out.append(fit(cut(text, w, True), w))
        else:
            out.append(fit(text, w))
    return " ".join(out)


_TAILED = {"process", "label"}      # "name/pid": the pid tells processes apart


def cut(text, w, keep_pid=False):
    """``text`` cut to ``w`` columns with an ellipsis; with ``keep_pid``
    a trailing "/1234" survives and the name before it is cut instead."""
    if keep_pid:
        head, sep, pid = text.rpartition("/")
        if sep and pid.isdigit() and len(pid) + 3 <= w:
            return cut_cols(head, w - len(pid) - 2) + "\u2026/" + pid
    return cut_cols(text, w - 1) + "\u2026"


