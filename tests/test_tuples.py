"""tuples.named: the named tuples of the start's path, held to collections.namedtuple."""

import copy
import pickle
from collections import namedtuple

import pytest

from flowtop.tuples import named

Plain = named("Plain", "a b c")
Defaulted = named("Defaulted", ("x", "y", "z"), defaults=(5, None))
Twin = namedtuple("Plain", "a b c")
DefaultedTwin = namedtuple("Defaulted", ("x", "y", "z"), defaults=(5, None))


def both(make):
    """(the named record, the namedtuple one) that ``make(cls)`` makes of each pair."""
    return [(make(new), make(old)) for new, old in ((Plain, Twin), (Defaulted, DefaultedTwin))]


def test_a_named_record_is_made_read_and_shown_as_a_namedtuple_is():
    for new, old in ((Plain(1, 2, 3), Twin(1, 2, 3)), (Plain(1, c=3, b=2), Twin(1, c=3, b=2)),
                     (Defaulted(1), DefaultedTwin(1)), (Defaulted(z=0, x=1), DefaultedTwin(z=0, x=1)),
                     (Plain._make([1, (2,), "3"]), Twin._make([1, (2,), "3"]))):
        assert tuple(new) == tuple(old) and new == old and hash(new) == hash(old)
        assert repr(new) == repr(old)
        assert new._asdict() == old._asdict()
        assert [getattr(new, f) for f in new._fields] == [getattr(old, f) for f in old._fields]
    assert Plain._fields == Twin._fields and Defaulted._fields == DefaultedTwin._fields
    assert Defaulted._field_defaults == DefaultedTwin._field_defaults == {"y": 5, "z": None}
    assert Plain.__match_args__ == ("a", "b", "c") and Plain.__module__ == __name__


def test_replace_makes_a_changed_copy_and_refuses_unknown_fields():
    r = Defaulted(1, 2, 3)
    assert r._replace(y=9) == DefaultedTwin(1, 2, 3)._replace(y=9) == (1, 9, 3)
    assert type(r._replace(y=9)) is Defaulted
    with pytest.raises(Exception) as twin:
        DefaultedTwin(1, 2, 3)._replace(w=1)
    with pytest.raises(twin.type):      # ValueError until Python 3.13, TypeError since
        r._replace(w=1)


@pytest.mark.parametrize("args, kwargs", [
    ((1, 2), {}),                       # Plain: one missing
    ((1, 2, 3, 4), {}),                 # too many
    ((1, 2), {"d": 4, "c": 3}),         # unknown
    ((1, 2, 3), {"a": 1}),              # twice
    ((), {}),                           # Defaulted: x missing
])
def test_wrong_arguments_raise_typeerror_as_with_namedtuple(args, kwargs):
    for new, old in ((Plain, Twin), (Defaulted, DefaultedTwin)):
        try:
            old(*args, **kwargs)
        except TypeError:
            with pytest.raises(TypeError):
                new(*args, **kwargs)
        else:
            assert new(*args, **kwargs) == old(*args, **kwargs)
    with pytest.raises(TypeError):
        Plain._make([1, 2])


def test_a_named_record_pickles_copies_and_keeps_no_dict():
    r = Defaulted(1, [2], "3")
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(r, protocol))
        assert back == r and type(back) is Defaulted
    assert copy.copy(r) == r and copy.deepcopy(r) == r and type(copy.deepcopy(r)) is Defaulted
    assert not hasattr(r, "__dict__")
    with pytest.raises(AttributeError):
        r.x = 2


def test_options_and_the_netlink_records_are_named_records():
    from flowtop.cli import Options
    from flowtop.netlink.ctfilter import DumpFilter
    from flowtop.netlink.ctnetlink import Related
    from flowtop.netlink.neigh import NeighInfo
    from flowtop.netlink.route import AddrInfo, LinkInfo
    from flowtop.netlink.rtdump import RouteEntry, RuleEntry
    from flowtop.netlink.rtlookup import RouteInfo
    from flowtop.enrich.ifacetotals import FlowIfaces
    # (the route records too: six namedtuples were ~2 M instructions of a --once's start)
    for cls in (Options, DumpFilter, Related, RouteInfo, AddrInfo, LinkInfo, RouteEntry,
                RuleEntry, NeighInfo, FlowIfaces):
        assert "__new__" in vars(cls) and cls.__new__.__code__ is Plain.__new__.__code__
    assert DumpFilter(mark=1)._replace(proto=6) == DumpFilter(mark=1, proto=6)
    assert Options(*[None] * len(Options._fields))._fields == Options._fields
