"""flowtop/main.py: the one-shot run hands its source what it needs."""

import io

from flowtop import cli, main
from flowtop.enrich.bundle import from_options


class LiveJsonSource:
    """A live source that records what ``snapshot`` was asked for."""

    live = True

    def __init__(self):
        self.asked = []

    def snapshot(self, wants="list", enrich=None):
        self.asked.append((wants, enrich))
        return 1.0, iter(['{"a":1}\n'])


def test_once_json_passes_the_enrichment_itself_to_the_kernel_source():
    opts = cli.parse(["--once", "--json", "-n", "-G", "--no-iface", "--no-process"])
    enrich = from_options(opts, live=True)
    source, out = LiveJsonSource(), io.StringIO()
    try:
        main.once(source, opts, out, enrich, [])
    finally:
        enrich.close()
    assert source.asked == [("json", enrich)]
    assert out.getvalue() == '{"a":1}\n'
