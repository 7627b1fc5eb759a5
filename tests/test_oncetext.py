"""``--once`` text from the kernel's dated flows (views.oncetext): each flow
its own row, no table a datagram, the cells memoised per distinct value,
one format a batch - and still the whole-table frame, byte for byte."""

import io

import pytest

from flowtop import cli, main
from flowtop.enrich.bundle import Enrichment
from flowtop.services import Services
from flowtop.table import FlowTable, TableFlow
from flowtop.views.oncetext import _formatted
from flowtop.views.text import TextFrames

from tests.test_aggregate import Geo
from tests.test_once import TEXT_ARGS, BatchSource, Ifaces, Names, Processes, recorded
from tests.viewutil import UNSAFE

DATED = ["tests/fixtures/ctnetlink-mixed.rec", "tests/fixtures/ctnetlink-multipart.rec",
         "tests/fixtures/ctnetlink-helper.rec"]


def kernel_flows(flows):
    """The flows as the kernel source decodes them (TableFlow, what the
    live table stores bare), fresh each call (a row is made of its flow)."""
    return [tuple.__new__(TableFlow, f) for f in flows]


def frame(opts, when, flows, enrich):
    """What TextFrames writes for the whole table of ``flows``."""
    table = FlowTable()
    table.apply(kernel_flows(flows), when, when)
    enrich.tick(table)
    out = io.StringIO()
    TextFrames(out, opts, enrich, []).write_rows(table, when)
    return out.getvalue()


def streamed(opts, when, flows, enrich, size=2):
    out = io.StringIO()
    main.once(BatchSource(when, kernel_flows(flows), size=size), opts, out, enrich, [])
    return out.getvalue()


class NoTables:
    """Counts the FlowTable applies while a streamed --once runs."""

    def __init__(self, monkeypatch):
        self.applies = 0
        real = FlowTable.apply

        def apply(table, *a, **kw):
            self.applies += 1
            return real(table, *a, **kw)
        monkeypatch.setattr(FlowTable, "apply", apply)


# (a filter on rates reads a fresh row's: unknown, not 0)
MORE_ARGS = [["--age", "none", "--show-id"], ["--filter", "rate>=0"], ["--filter", "rate<0 or tcp"]]


@pytest.mark.parametrize("path", DATED, ids=lambda p: p.rsplit("/", 1)[-1])
@pytest.mark.parametrize("args", TEXT_ARGS + MORE_ARGS, ids=" ".join)
def test_dated_kernel_flows_are_their_own_rows_and_print_the_whole_table_frame(
        path, args, monkeypatch):
    when, flows = recorded(path)
    opts = cli.parse(["--once", "-n", "-G"] + args)
    want = frame(opts, when, flows, Enrichment(Services()))
    tables = NoTables(monkeypatch)
    got = streamed(opts, when, flows, Enrichment(Services()))
    assert len(want.splitlines()) >= 2
    assert got == want
    assert tables.applies == 0


@pytest.mark.parametrize("args", [[], ["-4"], ["-T"]], ids=" ".join)
def test_dated_flows_are_counted_and_kept_a_protocol_at_a_time_not_a_row_at_a_time(
        args, monkeypatch):
    from flowtop.views import oncetext
    when, flows = recorded(DATED[1])
    opts = cli.parse(["--once", "-n", "-G"] + args)
    want = frame(opts, when, flows, Enrichment(Services()))
    seen = {"header_counts": 0, "base": 0}
    for name in seen:
        def counting(rows, *a, _name=name, _real=getattr(oncetext, name)):
            seen[_name] += len(rows)
            return _real(rows, *a)
        monkeypatch.setattr(oncetext, name, counting)
    assert streamed(opts, when, flows, Enrichment(Services()), size=100) == want
    kinds = {(f.l4proto, f.family) for f in flows}
    assert seen["header_counts"] == 0
    # every row passes (no option hides one): a row of each kind was asked, per batch
    assert seen["base"] <= len(kinds) * (len(flows) // 100 + 1) < len(flows) or args


@pytest.mark.parametrize("every", [1, 7, 0], ids=["all", "some", "none"])
def test_offloaded_flows_byte_counts_are_marked_as_the_whole_table_frame_marks_them(every):
    from flowtop.netlink.ctnetlink import FIELDS
    from flowtop.netlink.uapi import IPS_OFFLOAD_BIT
    when, flows = recorded(DATED[1])
    at = FIELDS.index("status")
    flows = [tuple.__new__(type(f), f[:at] + ((f[at] or 0) | 1 << IPS_OFFLOAD_BIT,) + f[at + 1:])
             if every and i % every == 0 else f for i, f in enumerate(flows)]
    opts = cli.parse(["--once", "-n", "-G"])
    want = frame(opts, when, flows, Enrichment(Services()))
    assert ("B!" in want) == bool(every)
    assert streamed(opts, when, flows, Enrichment(Services()), size=50) == want


def test_undated_flows_still_get_a_table_and_no_age(monkeypatch):
    when, flows = recorded("tests/fixtures/ctnetlink-acct-off.rec")
    assert not any(f.start for f in flows)
    opts = cli.parse(["--once", "-n", "-G"])
    want = frame(opts, when, flows, Enrichment(Services()))
    tables = NoTables(monkeypatch)
    assert streamed(opts, when, flows, Enrichment(Services())) == want
    assert tables.applies > 0


class HostileNames(Names):
    """Names with control characters, a % and a non-ASCII letter in them."""

    def __init__(self, addrs):
        super().__init__(addrs)
        bad = ["evil\x1b[2J%s.example", "bell\x07%d\n.ex", "caf\u00e9.example"]
        for i, a in enumerate(sorted(self.names)):
            self.names[a] = bad[i % 3] if i % 2 else self.names[a]


class HostileProcesses(Processes):
    def lookup_both(self, e):
        from flowtop.enrich.owners import ProcInfo
        if e.l4proto == 17:
            return ProcInfo(7, "nc\x1b]0;x\x07%s", "root"), None
        return super().lookup_both(e)


class EndsIfaces(Ifaces):
    """Interfaces whose answer follows (src, reply end, mark), as the real
    Interfaces' does (``by_ends``): counts what it is asked."""

    by_ends = True

    def __init__(self):
        self.asked = []

    def of_flow(self, e):
        self.asked.append(e)
        b = e.reply_src if e.reply_src is not None else e.dst
        return ("if-" + e.src[-2:], None if b.endswith("1") else "a-long-bridge-" + b[-2:])


@pytest.mark.parametrize("path", DATED[:2], ids=lambda p: p.rsplit("/", 1)[-1])
@pytest.mark.parametrize("args", [[], ["--sort", "dst"], ["--show-id", "-P"], ["--wide"],
                                  ["--redact-remote"], ["-T", "--age", "seconds"]],
                         ids=" ".join)
@pytest.mark.parametrize("hostile", [False, True], ids=["names", "hostile-names"])
def test_enriched_rows_of_kernel_flows_are_the_whole_table_frame(path, args, hostile):
    when, flows = recorded(path)
    opts = cli.parse(["--once", "-G"] + args)
    addrs = {a for f in flows for a in (f.src, f.dst)}

    def enrichment():
        if hostile:
            return Enrichment(Services(), HostileProcesses(), HostileNames(addrs), None,
                              EndsIfaces())
        return Enrichment(Services(), Processes(), Names(addrs), None, EndsIfaces())

    want = frame(opts, when, flows, enrichment())
    got = streamed(opts, when, flows, enrichment(), size=5)
    assert "PROCESS" in want and "IN" in want
    assert got == want
    assert not UNSAFE.search(got.replace("\n", ""))


@pytest.mark.parametrize("args", [[], ["--redact-local"], ["--sort", "age"]], ids=" ".join)
def test_geoip_rows_of_kernel_flows_are_the_whole_table_frame(args):
    when, flows = recorded(DATED[0])
    opts = cli.parse(["--once", "-n"] + args)

    def enrichment():
        return Enrichment(Services(), geo=Geo())

    want = frame(opts, when, flows, enrichment())
    assert "GEO" in want and "C1" in want
    assert streamed(opts, when, flows, enrichment()) == want


def test_interfaces_keyed_by_their_ends_are_asked_once_a_batch_per_distinct_ends():
    when, flows = recorded(DATED[1])
    opts = cli.parse(["--once", "-n", "-G"])
    ifaces = EndsIfaces()
    streamed(opts, when, flows, Enrichment(Services(), ifaces=ifaces), size=len(flows))
    ends = {(f.src, f.reply_src if f.reply_src is not None else f.dst, f.mark) for f in flows}
    assert len(flows) > 2 * len(ends)
    assert len(ifaces.asked) == len(ends)


def test_one_format_a_batch_cuts_long_cells_and_strips_blank_line_ends():
    from flowtop.views.columns import cut
    template = "%-4s %3s %-8s\n"
    cells = ["a", "1", "", "toolong", "22", "xy", "b", "333", "name-long/4242"]
    got = _formatted(template, list(cells), 3, [(0, 4, False), (2, 8, True)])
    assert got == "a      1\ntoo\u2026  22 xy\nb    333 na\u2026/4242\n"
    assert cut("name-long/4242", 8, True) == "na\u2026/4242"


class OwnQueries(Names):
    """A resolver that was resolving at every moment: a local query to port
    53 is flowtop's own (``Enrichment._own_dns``)."""

    def resolving_at(self, when):
        return True


class NoSockets(Processes):
    """No socket answers; a TCP flow's lookup fails (OSError)."""

    def lookup_both(self, e):
        if e.l4proto == 6:
            raise OSError("sock_diag failed")
        return None, None


def test_own_dns_queries_and_failed_lookups_read_as_the_whole_table_frame():
    import os
    from flowtop.netlink.ctnetlink import FIELDS
    when, flows = recorded(DATED[0])
    flows = flows + [type(f)(**dict(zip(FIELDS, f), dport=53, reply_sport=53, key=(f.key, 53)))
                     for f in flows if f.l4proto == 17]
    addrs = {a for f in flows for a in (f.src, f.dst)}
    opts = cli.parse(["--once", "-G"])

    def enrichment():
        return Enrichment(Services(), NoSockets(), OwnQueries(addrs), local=lambda: addrs)

    want = frame(opts, when, flows, enrichment())
    assert "flowtop/%d" % os.getpid() in want
    assert streamed(opts, when, flows, enrichment(), size=4) == want


@pytest.mark.parametrize("args", [["-n", "-G"], ["-G"]], ids=" ".join)
def test_flows_without_an_address_read_as_the_whole_table_frame(args):
    from flowtop.netlink.ctnetlink import FIELDS
    when, flows = recorded(DATED[0])
    six = [i for i, f in enumerate(flows) if ":" in f.src][:2]
    four = [i for i, f in enumerate(flows) if ":" not in f.src][:2]
    assert six and four
    for n, i in enumerate(six + four):
        f = flows[i]
        flows[i] = type(f)(**dict(zip(FIELDS, f), **{("src", "dst")[n % 2]: None}))
    opts = cli.parse(["--once"] + args)
    addrs = {a for f in flows for a in (f.src, f.dst) if a}

    def enrichment():
        return Enrichment(Services(), dns=Names(addrs)) if "-n" not in args else Enrichment(
            Services())

    want = frame(opts, when, flows, enrichment())
    assert "[-]:" in want and "-:" in want
    assert streamed(opts, when, flows, enrichment()) == want


def _translated(flows):
    """The flows with their reply tuples moved every way NAT moves them:
    the source, the destination, both, only a port, a missing reply end."""
    out = []
    for i, f in enumerate(flows):
        d = f.as_dict()
        v6, kind = ":" in (f.src or ""), 2 if f.l4proto == 47 else i % 6     # GRE: keys
        if kind in (0, 2):          # masquerade: the reply comes back to the router
            d.update(reply_dst="2001:db8::fe" if v6 else "192.0.2.254",
                     reply_dport=None if f.reply_dport is None else 40000 + i)
        if kind in (1, 2):          # a forwarded port: the reply comes from the server
            d.update(reply_src="2001:db8::7" if v6 else "10.1.2.3")
        if kind == 3 and f.reply_sport is not None:
            d.update(reply_sport=f.reply_sport + 1)
        if kind == 4:
            d.update(reply_src=None, reply_dst=None)
        out.append(type(f)(**d))
    return out


@pytest.mark.parametrize("path", DATED[:2], ids=lambda p: p.rsplit("/", 1)[-1])
@pytest.mark.parametrize("names", [None, Names, HostileNames], ids=["numeric", "names", "hostile"])
def test_translated_flows_nat_and_xlate_cells_are_the_whole_table_frames(path, names):
    when, flows = recorded(path)
    flows = _translated(flows)
    opts = cli.parse(["--once", "-G", "--wide"] + (["-n"] if names is None else []))
    addrs = {a for f in flows for a in (f.src, f.dst, f.reply_src, f.reply_dst)} - {None}

    def enrichment():
        return Enrichment(Services(), dns=None if names is None else names(addrs))

    want = frame(opts, when, flows, enrichment())
    assert "NAT" in want and " SD " in want and "src " in want and " dst " in want
    assert streamed(opts, when, flows, enrichment(), size=7) == want
