"""The columns of the live views: which ones fit, how wide."""

from flowtop.views.columns import layout

from tests.viewutil import state_of


def test_layout_fits_the_width():
    st = state_of()
    for width in (40, 70, 80, 120, 200):
        cols = layout(width, st)
        used = sum(w for _c, w in cols) + len(cols) - 1
        assert used <= width, (width, used)
        names = [c.name for c, _w in cols]
        assert "dst" in names and "proto" in names
    assert {"rate_tx", "rate_rx", "state"} <= {c.name for c, _ in layout(80, st)}
    wide = {c.name for c, _ in layout(200, state_of("-s", "--show-id"))}
    assert {"src", "dst", "bytes_tx", "bytes_rx", "pkts_tx", "pkts_rx", "age", "id"} <= wide
