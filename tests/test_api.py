"""The library API module (flowtop/api.py) and its first name."""

import flowtop.api


def test_the_old_name_flowtop_conntrack_is_the_same_module():
    from flowtop import conntrack
    import flowtop.conntrack as by_path
    assert conntrack is flowtop.api and by_path is flowtop.api
    assert conntrack.dump is flowtop.api.dump


def test_make_filter_passes_everything_when_nothing_is_asked():
    assert flowtop.api.make_filter() is None
