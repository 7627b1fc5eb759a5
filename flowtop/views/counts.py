"""The header's counts of a snapshot's rows: open flows per protocol, those
without counters, the "14 flows (tcp 4, udp 3)" text, the loopback flows
the default view hides (``views.select`` re-exports them)."""

from ..model import proto_name
from ..netlink.ctnetlink import FIELDS
from ..table import TableFlow

_PROTO, _BYTES, _STATUS = FIELDS.index("l4proto"), FIELDS.index("bytes_orig"), \
    FIELDS.index("status")
_SRC, _DST = FIELDS.index("src"), FIELDS.index("dst")
# model.is_loopback as two string tests, inlined in select.base(): a memo of 2**17
# addresses thrashed past 200k distinct ones (170-290 ms a snapshot) and held ~10 MB.
_LOOP_PREFIXES = ("127.", "::ffff:127.")


def summary(rows):
    """Open flows per protocol name ({'tcp': 10, 'udp': 4})."""
    return header_counts(rows)[0]


def uncounted(rows):
    """Open flows the kernel gives no byte counters: created before
    accounting was switched on (it adds them only to new flows), or with
    accounting off."""
    return header_counts(rows)[1]


def header_counts(rows, statuses=None):
    """(``summary``, ``uncounted``) of ``rows`` in one pass over every row,
    the header's once per snapshot (two passes were ~20 ms more at 100k):
    counted by protocol number, named afterwards.  ``statuses``: a dict
    that also gets the open rows per status word (``health.offloaded``'s
    counts, a third pass otherwise)."""
    per = {}
    get = per.get
    n = 0
    bare = TableFlow
    by_status = statuses is not None
    for r in rows:
        if type(r) is bare:
            e = r
        elif not r.closed:
            e = r.entry
        else:
            continue
        p = e[_PROTO]
        per[p] = get(p, 0) + 1
        if e[_BYTES] is None:
            n += 1
        if by_status:
            p = e[_STATUS]
            statuses[p] = statuses.get(p, 0) + 1
    return named(per), n


def named(per):
    """{protocol number: n} as {protocol name: n}."""
    counts = {}
    for p, k in per.items():
        name = proto_name(p)
        counts[name] = counts.get(name, 0) + k
    return counts


# The kernel adds counters only to flows created while accounting is on.
WHY = " (created before accounting was switched on, or with it off)"


def flows_text(counts, lacking=0, why="", per=True, kernel=None):
    """The header's "14 flows (tcp 4, udp 3)" (without the parenthesis
    unless ``per``), with how many of them have no counters (and ``why``);
    "0 flows" when there are none.  ``kernel``: the kernel's own count, said
    first when the table is behind it (a flood outruns a dump by seconds)."""
    n = sum(counts.values())
    if kernel is not None and abs(kernel - n) > max(1, n // 100):
        text = "%d flows in the kernel, %d listed" % (kernel, n)
    else:
        text = "%d flows" % n
    if per and counts:
        text += " (%s)" % ", ".join(
            "%s %d" % kv for kv in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    if lacking:
        text += ", %d without counters%s" % (lacking, why)
    return text


def loopback_count(rows):
    """Open flows on a loopback address: what "no flows" would hide.  Once
    a snapshot while the view is empty (base's tests inlined: a call per
    address made it 10 % of the screen's time; ``Selection.loopback_count``
    has it from its base pass)."""
    n = 0
    pre, bare = _LOOP_PREFIXES, TableFlow
    for r in rows:
        if type(r) is bare:
            e = r
        elif r.closed:
            continue
        else:
            e = r.entry
        a, b = e[_SRC], e[_DST]
        if (a and (a.startswith(pre) or a == "::1")) or (b and (b.startswith(pre) or b == "::1")):
            n += 1
    return n
