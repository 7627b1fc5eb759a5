"""The one interface of the output writers (JSON Lines, CSV, groups, text
frames): the live loop and ``--once`` call these whatever the format."""


class Writer:
    """``write_rows`` writes one snapshot of a table's open rows;
    ``write_flows`` a list of flows (``--once``)."""

    def write_rows(self, table, wall):
        raise NotImplementedError

    def write_flows(self, flows, now):
        raise NotImplementedError
