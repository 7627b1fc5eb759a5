"""One full refresh of a FlowTable (``tick``: the live view's full dumps,
the exports', streaming output's) and the loop of streaming JSON/CSV and
continuous text (``stream``): every interval a snapshot, applied, written.
"""

import time

from .netlink.errors import DumpInterrupted
from .netlink.session import MAX_DUMP_RETRIES
from .table import FlowTable


def tick(source, table, enrich=None, monotonic=time.monotonic, counted=None):
    """One full refresh: snapshot the source, apply it, refresh the
    enrichers.  Returns the wall time of the snapshot, or None when a
    replay has ended.  ``counted(n)``: called as each datagram's n flows
    arrive (live only), for a progress line."""
    mono = monotonic()
    # Streamed: the table takes each datagram's flows as they are decoded,
    # so a full dump never holds a second copy of the table.  Live, each
    # datagram carries the time it was received: rates per datagram.
    snap = source.snapshot("stamped" if source.live else "stream")
    if snap is None:
        return None
    wall, flows = snap
    if source.live:
        if counted is not None:
            flows = _counting(flows, counted)
        table.apply_stamped(flows, mono, wall)
    else:
        table.apply(flows, wall, wall)
    if enrich is not None:
        enrich.tick(table)
    return wall


def _counting(batches, counted):
    for item in batches:
        yield item
        # once the table took it (asked for the next): a first dump's first rows are shown
        # after one datagram, not two (the second's decoding and its new layouts' code
        # came before them: 5.7 M of 121.5 M instructions to the live view's first rows)
        counted(len(item[1]))


def stream(source, writer, opts, enrich=None, sleep=time.sleep, monotonic=time.monotonic):
    """Streaming JSON/CSV and continuous text: every interval a snapshot,
    applied to the table, written with rates."""
    table = FlowTable()
    deadline = monotonic()
    interrupted = 0
    while True:
        try:
            wall = tick(source, table, enrich, monotonic)
        except DumpInterrupted:
            # the table changed mid-dump: the table kept its last state; redo
            # now, unless it keeps happening
            interrupted += 1
            if interrupted > MAX_DUMP_RETRIES:
                raise
            continue
        interrupted = 0
        if wall is None:
            return
        writer.write_rows(table, wall)
        if getattr(source, "finished", False):
            return
        deadline += opts.interval
        delay = deadline - monotonic()
        if delay > 0:
            sleep(delay)
        else:
            deadline = monotonic()
