"""flowtop.memo: the bounded memo; flowtop.runtime: gc pause, switch interval."""

import gc
import sys

from flowtop.memo import Memo
from flowtop.runtime import gc_paused, switch_interval


def test_a_miss_is_made_once_and_kept():
    calls = []
    m = Memo(10, lambda k: calls.append(k) or k * 2)
    assert m[3] == 6 and m[3] == 6
    assert calls == [3]


def test_a_full_memo_drops_its_oldest_chunk_not_everything():
    m = Memo(8, lambda k: k)
    for k in range(8):
        m[k]
    m[8]
    assert len(m) == 7 and list(m) == [2, 3, 4, 5, 6, 7, 8]


def test_the_memo_never_grows_past_its_limit_under_a_flood():
    m = Memo(100, str)
    for k in range(10000):
        m[k]
        assert len(m) <= 100


def test_without_make_a_miss_is_a_key_error_and_put_bounds():
    m = Memo(2)
    assert m.get(1) is None
    m.put(1, "a")
    m.put(2, "b")
    m.put(2, "B")                   # a replacement evicts nothing
    assert dict(m) == {1: "a", 2: "B"}
    m.put(3, "c")
    assert dict(m) == {2: "B", 3: "c"}


def test_touch_makes_an_entry_the_newest():
    m = Memo(2)
    m.put(1, "a")
    m.put(2, "b")
    m.touch(1)
    m.put(3, "c")
    assert dict(m) == {1: "a", 3: "c"}


def test_gc_paused_restores_the_collector_as_it_was():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()   # it was off: it stays off
    finally:
        gc.enable()


def test_switch_interval_is_restored_after_the_block_even_on_error():
    before = sys.getswitchinterval()
    try:
        with switch_interval(0.001):
            assert abs(sys.getswitchinterval() - 0.001) < 1e-9
            raise ValueError
    except ValueError:
        pass
    assert sys.getswitchinterval() == before
    with switch_interval(1.0, at_most=True):
        assert sys.getswitchinterval() == before


def test_texts_makes_each_value_once_and_empties_when_full():
    made = []
    texts = Memo(65536, lambda v: made.append(v) or "t%d" % v, chunk=1)    # oncetext's
    assert list(map(texts.__getitem__, [1, 2, 1, 1])) == ["t1", "t2", "t1", "t1"]
    assert made == [1, 2]
    for v in range(65537):
        texts[v]
    assert len(texts) == 1              # emptied once full: bounded on hostile input
