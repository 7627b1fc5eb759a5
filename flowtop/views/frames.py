"""``-c/--continuous``: the live view as plain text frames, one per
interval, for terminals without curses, logs and routers."""

import time

from . import rows as vm


class TextFrames:
    """Writes a frame per tick: a header line, column titles, every row
    the view's filters keep (all columns, as with --wide)."""

    def __init__(self, stream, opts, enrich, notes=(), width=None):
        self.stream = stream
        self.state = vm.ViewState(opts)
        if opts.once:
            self.state.loopback = True      # a snapshot lists every flow
        self.fmt = vm.Formatter(self.state, enrich)
        self.notes = notes if callable(notes) else list(notes)   # callable: per frame
        self.width = width
        self._frames = 0

    def write_rows(self, table, wall):
        st, fmt = self.state, self.fmt
        items = vm.build(list(table), st, fmt)
        if st.view == "flows":
            flex = max([len(fmt.endpoint(r.entry.family, r.entry.dst, r.entry.dport))
                        for r in items] or [21])
            wide, st.wide = st.wide, self.width is None
            cols = vm.layout(self.width or 10000, st, flex)
            st.wide = wide
            lines = [fmt.line(r, cols, wall) for r in items]
        else:
            cols = vm.group_layout(self.width or 10000, st.view)
            lines = [fmt.group_line(g, cols) for g in items]
        counts = vm.summary(list(table))
        tx, rx, known = table.totals()
        out = ["\n"] if self._frames else []
        out.append("%d flows (%s)  TX %s  RX %s  shown %d  %s\n" % (
            sum(counts.values()),
            ", ".join("%s %d" % kv for kv in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
            fmt.rate(tx if known else None), fmt.rate(rx if known else None), len(items),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(wall))))
        out.extend(n + "\n" for n in (self.notes() if callable(self.notes) else self.notes))
        out.append(" ".join(c.title.rjust(w) if c.right else c.title.ljust(w)
                            for c, w in cols).rstrip() + "\n")
        out.extend(line.rstrip() + "\n" for line in lines)
        self.stream.write("".join(out))
        self.stream.flush()
        self._frames += 1
