"""flowtop/main.py: the one-shot run hands its source what it needs."""

import io

from flowtop import cli, main
from flowtop.enrich.bundle import from_options


class LiveJsonSource:
    """A live source that records what ``snapshot`` was asked for."""

    live = True

    def __init__(self):
        self.asked = []

    def snapshot(self, wants="list", enrich=None, prepare=None):
        self.asked.append((wants, enrich))
        self.prepare = prepare
        if wants == "list":
            return 1.0, []
        return 1.0, iter(['{"a":1}\n'])


def once_live(*args):
    """``main.once`` over a LiveJsonSource: (source, stdout text, the Enrichment)."""
    opts = cli.parse(["--once", "--json"] + list(args))
    enrich = from_options(opts, live=True)
    source, out = LiveJsonSource(), io.StringIO()
    try:
        main.once(source, opts, out, enrich, [])
    finally:
        enrich.close()
    return source, out.getvalue(), enrich


def test_once_json_passes_the_enrichment_itself_to_the_kernel_source():
    source, out, enrich = once_live("-n", "-G", "--no-iface", "--no-process")
    assert source.asked == [("json", enrich)]
    assert out == '{"a":1}\n'
    assert source.prepare is None


def test_once_json_with_interfaces_takes_the_fast_path_with_a_batch_preparer():
    """Interfaces (and names) no longer send --once --json to the slower
    per-datagram path: the kernel source gets a preparer for each datagram."""
    from flowtop.once import Preparer
    source, _, enrich = once_live("-n", "-G", "--no-process")
    assert enrich.ifaces is not None
    assert source.asked == [("json", enrich)] and isinstance(source.prepare, Preparer)


def test_once_json_with_processes_alone_also_gets_a_batch_preparer():
    """Processes without interfaces or names: the datagram's flows are
    answered together (``views.procbatch``), not one ``lookup_both`` each
    inside the decoder (100k flows: 7.47 -> 7.04 G instructions)."""
    from flowtop.once import Preparer
    source, _, enrich = once_live("-n", "-G", "--no-iface")
    assert enrich.process is not None and enrich.ifaces is None
    assert source.asked == [("json", enrich)] and isinstance(source.prepare, Preparer)


def test_once_json_stats_with_interfaces_reads_the_table_to_count_offloaded_flows():
    """The fast path hands text, not flows: --stats (its offload count) keeps it
    only under -n --no-iface, where README says the count is null."""
    source, _, _ = once_live("--stats", "-n", "-G", "--no-process")
    assert source.asked and source.asked[0][0] == "list"


def test_only_the_live_flows_view_on_a_terminal_draws_rows_before_its_providers(monkeypatch):
    """main leaves the process map, interfaces, devices and history for after the first
    rows where nothing on the first screen needs them: the flows view of the kernel's
    table, no interface or filter choosing its rows, on a terminal (else text frames)."""
    class Tty(io.StringIO):
        def isatty(self):
            return True

    class Live:
        live = True

    monkeypatch.setenv("TERM", "xterm")
    screen_first = main._screen_first
    assert screen_first(cli.parse(["-n", "-G"]), Live(), Tty())
    live_view = cli.parse(["-n"])
    assert screen_first(live_view, Live(), Tty())
    for opts in (cli.parse(["--once"]), cli.parse(["-c"]), cli.parse(["--json"]),
                 cli.parse(["--view", "process"]), cli.parse(["--in-iface", "eth0"]),
                 cli.parse(["--events"]), live_view._replace(filter="proto tcp")):
        assert not screen_first(opts, Live(), Tty()), opts
    assert not screen_first(live_view, Live(), io.StringIO())        # not a terminal
    Live.live = False                                                # a replay
    assert not screen_first(live_view, Live(), Tty())
