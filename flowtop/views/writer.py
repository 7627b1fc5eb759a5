"""The one interface of the output writers (JSON Lines, CSV, groups, text
frames): the live loop and ``--once`` call these whatever the format."""


class Writer:
    spools = False      # writes nothing before ``finish``: ``reset`` may start over
    wants_rows = False  # write_batch reads rows (ages, rates), not only flows
    shows_translated = False    # writes the names of NAT's translated ends (XLATE)

    """``write_rows`` writes one snapshot of a table's open rows;
    ``write_flows`` a list of flows (``--once``); ``write_batch`` the
    rows and flows of one datagram of a streamed ``--once``, ``finish``
    after its last."""

    def write_rows(self, table, wall):
        raise NotImplementedError

    def write_flows(self, flows, now):
        raise NotImplementedError

    def write_batch(self, rows, flows, wall, fields=None):
        raise NotImplementedError

    def finish(self, wall):
        self.stream.flush()


class Spool:
    """A stream that keeps what is written until ``into(stream)``: the
    output of a writer that must not write before the dump has ended."""

    def __init__(self):
        self.parts = []
        self.write = self.parts.append

    def flush(self):
        pass

    def into(self, stream):
        for part in self.parts:
            stream.write(part)
        self.parts.clear()
