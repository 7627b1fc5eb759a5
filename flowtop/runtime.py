"""The interpreter settings flowtop changes, each in one place.

``gc_paused()``: the garbage collector off for a block that allocates many
objects that live on (a dump at 100k flows: a collection per ~700 objects
would walk the whole table again and again); back as it was after.
``switch_interval(seconds)``: how often a thread holding the GIL yields; a
shorter one lets the key loop or the event reader run while a dump decodes.
``cpus()``: how many CPUs this process may run on.
``start_paused()``/``started()``: the collector off while the command starts.
"""

import contextlib
import gc
import os
import sys

__all__ = ["gc_paused", "switch_interval", "cpus", "start_paused", "started"]

_starting = []          # [True] from start_paused() until started()


def cpus():
    """The CPUs this process may run on (its affinity mask; a router may have
    one), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@contextlib.contextmanager
def gc_paused(freeze=False):
    """Disable the garbage collector for the block; re-enable it after only
    if it was enabled before, and then (``freeze``) move what survived to
    the permanent generation, never scanned again."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
            if freeze:
                gc.freeze()


@contextlib.contextmanager
def switch_interval(seconds, at_most=False):
    """``sys.setswitchinterval(seconds)`` for the block (with ``at_most``:
    only if that is shorter than the current one), restored after."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, seconds) if at_most else seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def start_paused():
    """The garbage collector off while the command starts (``entry``): its imports and
    set-up make ~100k objects that all live on, and the collections over them were 4.9 M
    of the live view's 150 M instructions to its first rows (none found a cycle)."""
    if gc.isenabled():
        gc.disable()
        _starting.append(True)


def started():
    """The run begins: the collector on again, what the start made moved to the
    permanent generation (never scanned again); nothing if ``start_paused`` was not."""
    if _starting:
        _starting.clear()
        gc.freeze()
        gc.enable()
