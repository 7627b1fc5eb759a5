"""The live view's first two lines as text fitted to a width: the header
(version, flow counts, rates, the table's health, the total's sparkline)
and the status line (view, pause, errors, filters, accounting, sort,
interval).  No curses: the screen draws them.
"""

from .. import __version__
from .. import health as _health
from ..values import TITLES, VIEWS
from .select import flows_text


def header_line(fmt, snap, counts, lacking, health, acct, w):
    """(line, health part) of the most detailed header that fits ``w``:
    then without the reason, the per-protocol counts, the version.  The
    health part is ``health.fitting``'s (None: its short form, cut)."""
    why = " (older than accounting: the kernel counts only flows created after it " \
          "was switched on)" if acct else ""
    tx, rx, known = snap.totals       # known: any flow's rate is (0 is a rate)
    rates = "  TX %s  RX %s" % (fmt.rate(tx if known else None),
                                fmt.rate(rx if known else None))
    for version, per, because in ((1, 1, why), (1, 1, ""), (1, 0, ""), (0, 0, "")):
        line = ("flowtop %s  " % __version__ if version else "") + flows_text(
            counts, lacking, because, per, snap.kernel) + rates
        table = _health.fitting(health, w - 1 - len(line) - 2)
        if len(line) <= w - 1 and table is not None:
            break
    return line, table


def total_spark(fmt, unicode, room):
    """The total rate's last minute as a sparkline, when it fits ``room``."""
    h = getattr(fmt.enrich, "history", None)
    if h is None or room < 14 or not len(h.total):
        return ""
    from ..history import sparkline
    n = min(30, room - 2)
    return "  " + sparkline(h.total.series(n, 60.0 / n, h.now()), unicode)


def empty_text(st, loopback_hidden):
    """Why the table is empty: a filter, or flows that are there but on
    loopback (hidden by default; ``loopback_hidden`` of them)."""
    if st.filter:
        return "no flows match"
    if not st.loopback and loopback_hidden:
        return "%d loopback flow%s hidden \u2014 L shows them" % (
            loopback_hidden, "" if loopback_hidden == 1 else "s")
    return "no flows"


def reading_text(reading, now, after=0.5):
    """A full dump's progress ("reading the kernel's table: 85000 flows so
    far") once it has run ``after`` seconds; "" otherwise.  ``reading``:
    the collector's (monotonic start, flows read) or None."""
    if reading is None or now - reading[0] < after:
        return ""
    return "reading the kernel's table: %d flows so far" % reading[1]


def status_line(st, snap, info, shown, w, reading=""):
    """(line, note): the status line, and what it had no room for (an
    error, then shown on the key hints' line).  What changes what the user
    sees (paused, errors, filters, hidden protocols, accounting off) comes
    first: at 80 columns the rest gives way, first of all the other views' tabs."""
    order = "asc" if st.ascending() else "desc"
    every = "every %gs" % st.interval
    if snap.rates_every and snap.rates_every > st.interval + 0.05:
        every += " (rates: shown rows every tick, others every %.1fs)" % snap.rates_every
    if snap.resyncs:
        every += " resynced %d" % snap.resyncs
    acct, tstamp = info.get("acct"), info.get("timestamp")
    filters = st.filters_text()
    error = "error: %s" % snap.error if snap.error else ""
    # (priority: 0 never dropped, larger dropped first; text)
    facts = [(0, "[%s]" % TITLES[st.view]),
             (0, "PAUSED" if st.paused else ""),
             (0, error),
             (1, reading),
             (0, "filter %s" % filters if filters else ""),
             (1 if acct is False else 5, "acct %s" % _onoff(acct)),
             (1 if tstamp is False else 6, "tstamp %s" % _onoff(tstamp)),
             (2, "shown %d" % shown),
             (3, "sort %s %s" % (st.sort, order)),
             (4, every),
             (2, "per name" if st.view == "process" and st.by_name else "")]
    facts = [f for f in facts if f[1]]
    note = ""
    if error and sum(len(t) + 2 for p, t in facts if p == 0) > w - 1:
        facts.remove((0, error))
        note = error                         # no room: the error takes the key hints' line
    while sum(len(t) + 2 for _p, t in facts) > w - 1:
        worst = max(range(len(facts)), key=lambda i: (facts[i][0], i))
        if facts[worst][0] == 0:
            break
        del facts[worst]
    line = "  ".join(t for _p, t in facts)
    tabs = " ".join(("[%s]" if v == st.view else "%s") % TITLES[v] for v in VIEWS)
    if len(line) + len(tabs) - len(facts[0][1]) <= w - 1:
        line = tabs + line[len(facts[0][1]):]        # every view's name when there is room
    return line, note


def _onoff(v):
    return {True: "on", False: "OFF", None: "?"}[v]
