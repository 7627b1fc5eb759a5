"""``-c/--continuous``: the live view as plain text frames, one per
interval, for terminals without curses, logs and routers."""

import time

from ..services import Services
from . import rows as vm


class TextFrames:
    """Writes a frame per tick: a header line, column titles, every row
    the view's filters keep (all columns, as with --wide)."""

    def __init__(self, stream, opts, notes=(), width=None):
        self.stream = stream
        self.state = vm.ViewState(opts)
        self.fmt = vm.Formatter(self.state, Services())
        self.notes = list(notes)
        self.width = width
        self._frames = 0

    def write_rows(self, table, wall):
        st = self.state
        rows = vm.select(list(table), st, self.fmt)
        flex = max([len(self.fmt.endpoint(r.entry.family, r.entry.dst, r.entry.dport))
                    for r in rows] or [21])
        wide = st.wide
        st.wide = self.width is None
        cols = vm.layout(self.width or 10000, st, flex)
        st.wide = wide
        counts = vm.summary(list(table))
        tx, rx = table.totals()[:2]
        out = ["\n"] if self._frames else []
        out.append("%s  %d flows (%s)  TX %s  RX %s  shown %d\n" % (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(wall)), sum(counts.values()),
            ", ".join("%s %d" % kv for kv in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
            self.fmt.rate(tx), self.fmt.rate(rx), len(rows)))
        out.extend(n + "\n" for n in self.notes)
        out.append(" ".join(c.title.rjust(w) if c.right else c.title.ljust(w)
                            for c, w in cols).rstrip() + "\n")
        out.extend(self.fmt.line(r, cols, wall).rstrip() + "\n" for r in rows)
        self.stream.write("".join(out))
        self.stream.flush()
        self._frames += 1
