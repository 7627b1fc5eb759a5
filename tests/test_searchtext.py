"""What '/' searches: each flow's text, and the live view's kept texts
(views.searchtext) that spare making them again for every key."""

import pytest

from flowtop.enrich.bundle import Enrichment
from flowtop.views.cells import Formatter
from flowtop.views.select import Selection, build

from tests.test_aggregate import CountingNames, Geo, MixedProcs, Services
from tests.viewutil import FakeEnrich, state_of, table_of


class Ifaces:
    def of_flow(self, e):
        b = e.reply_src if e.reply_src is not None else e.dst
        return ("if" + e.src[-1], None if b[-1] == "1" else "if" + b[-1])


def _rich(rows):
    local = {r.entry.src for r in rows[::3]}
    return Enrichment(Services(), process=MixedProcs(), dns=CountingNames(), geo=Geo(),
                      ifaces=Ifaces(), local=lambda: local)


@pytest.mark.parametrize("argv", [(), ("--redact-remote",), ("--redact-local",), ("-P",)])
def test_the_search_text_is_the_naming_cells_then_both_addresses(argv):
    """search_text spelt out against what it was: the ``names`` cells joined,
    then both addresses as shown (redacted where asked), lower case."""
    t, _ = table_of()
    rows = list(t)
    st = state_of("--loopback", *argv)
    fmt = Formatter(st, _rich(rows))
    for r in rows:
        c = fmt.names(r.entry)
        want = " ".join((c["process"], c["proto"], c["state"], c["service"], c["src"],
                         c["dst"], c["country"], c["in_iface"], c["out_iface"],
                         fmt.address(r.entry.src), fmt.address(r.entry.dst))).lower()
        assert fmt.search_text(r) == want
    assert len(rows) > 10


def _counting(fmt):
    made = []
    real = fmt.search_text
    fmt.search_text = lambda r: made.append(r) or real(r)
    return made


def _keys(rows):
    return [r.key for r in rows]


def test_each_character_typed_searches_the_kept_texts_not_new_ones():
    t, _ = table_of()
    rows = list(t)
    st = state_of("--loopback")
    fmt = Formatter(st, FakeEnrich())
    made = _counting(fmt)
    sel = Selection()
    for text in ("5", "50", "500", "50", "5", "1"):    # longer, shorter, another
        st.filter = text
        assert _keys(sel.build(rows, st, fmt)) == _keys(build(rows, st, Formatter(st, FakeEnrich())))
    assert len(made) == len(rows)                     # each flow's text made once


def test_a_new_snapshot_makes_texts_only_for_the_flows_whose_record_changed():
    from flowtop.netlink.ctnetlink import FIELDS
    t, when = table_of()
    st = state_of("--loopback")
    st.filter = "1"
    fmt = Formatter(st, FakeEnrich())
    made = _counting(fmt)
    sel = Selection()
    sel.build(list(t), st, fmt)
    made.clear()
    i = FIELDS.index("bytes_orig")
    moved = [tuple.__new__(type(r.entry), r.entry[:i] + ((r.entry[i] or 0) + 999,)
                           + r.entry[i + 1:]) for r in list(t)[:3]]
    t.update(moved, 101.0, when + 1)
    rows = list(t)
    assert _keys(sel.build(rows, st, fmt)) == _keys(build(rows, st, Formatter(st, FakeEnrich())))
    assert sorted(r.key for r in made) == sorted(e.key for e in moved)


def test_kept_texts_go_when_the_redaction_changes_so_a_hidden_address_is_not_found():
    """A kept text holds the address in the clear: once remote addresses
    are redacted, searching for one must find nothing."""
    t, _ = table_of()
    rows = list(t)
    st = state_of("--loopback")
    enrich = _rich(rows)
    fmt = Formatter(st, enrich)
    remote = next(r.entry.dst for r in rows if r.entry.dst and not enrich.is_local(r.entry.dst)
                  and r.entry.dst.count(".") == 3)
    sel = Selection()
    st.filter = remote
    assert sel.build(rows, st, fmt)
    st.redact_remote = True
    found = sel.build(rows, st, fmt)
    assert not [r for r in found if r.entry.dst == remote or r.entry.src == remote]


def test_a_name_that_arrives_is_searched_once_the_kept_texts_are_ttl_old():
    from flowtop.views import searchtext
    t, when = table_of()
    rows = list(t)
    named = {}

    class Late:
        def lookup(self, addr):
            return named.get(addr)

    st = state_of("--loopback")
    fmt = Formatter(st, Enrichment(Services(), dns=Late()))
    sel = Selection()
    st.wall = 1000.0
    st.filter = "late.example"
    assert sel.build(rows, st, fmt) == []
    named[rows[0].entry.dst] = "late.example"
    rows = list(rows)                                  # the next snapshot, the same records
    st.wall += searchtext.TTL
    assert rows[0] in sel.build(rows, st, fmt)


def test_the_kept_texts_go_with_the_filter_text():
    t, _ = table_of()
    rows = list(t)
    st = state_of("--loopback")
    fmt = Formatter(st, FakeEnrich())
    sel = Selection()
    st.filter = "5"
    sel.build(rows, st, fmt)
    assert len(sel._texts._texts) == len(rows)
    st.filter = ""
    sel.build(rows, st, fmt)
    assert not sel._texts._texts


def _many(n):
    from flowtop.netlink.ctnetlink import CtEntry
    from flowtop.table import FlowTable, TableFlow
    t = FlowTable()
    t.apply([tuple.__new__(TableFlow, CtEntry(
        family=2, l4proto=17, src="10.0.%d.%d" % (i >> 8 & 255, i & 255), dst="10.1.0.1",
        sport=1000 + i, dport=53, id=i, bytes_orig=1, bytes_reply=0, packets_orig=1,
        packets_reply=0, start=(1_700_000_000 + i) * 10**9, key=b"%d" % i)) for i in range(n)],
        10.0, 1000.0)
    return list(t)


def test_the_prompt_waiting_for_a_key_makes_the_texts_a_slice_at_a_time():
    """What the live view does between two looks for a key while '/' is
    open: then the first character typed makes no text."""
    rows = _many(3000)
    st = state_of("--loopback")
    fmt = Formatter(st, FakeEnrich())
    made = _counting(fmt)
    sel = Selection()
    sel.build(rows, st, fmt)
    ticks = iter(range(10**6))                  # a clock a second on at each read

    def clock():
        return next(ticks)
    assert sel.warm(st, fmt, 0.5, clock) is True and len(made) == 512   # one slice, a key look
    slices = 1
    while sel.warm(st, fmt, 0.5, clock):
        slices += 1
    assert len(made) == len(rows) and slices == 5
    assert sel.warm(st, fmt, 0.5, clock) is False and len(made) == len(rows)
    from flowtop.views import searchtext
    st.wall += searchtext.TTL                           # once per prompt: not again at each TTL
    sel.build(list(rows), st, fmt)
    assert sel.warm(st, fmt, 0.5, clock) is False and len(made) == len(rows)
    st.wall -= searchtext.TTL
    sel.build(list(rows), st, fmt)                     # a snapshot while the prompt is open
    st.filter = "10.0.1"
    got = sel.build(rows, st, fmt)
    assert len(made) == len(rows)
    assert _keys(got) == _keys(build(rows, st, Formatter(st, FakeEnrich())))
