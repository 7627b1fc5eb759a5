"""A collector thread that dies must end the live view, never freeze it.

The real Collector loop runs here with a source or an enricher that raises
what no handler expects (a KeyError, as a cache race once did): ``latest()``
must raise CollectorFailed with one line that names the exception, and the
thread must be gone.  No kernel: ``live = False`` sources open no socket.
"""

import threading
import time

import pytest

from flowtop.collector import Collector, CollectorFailed, EventReader


class Source:
    live = False

    def __init__(self, fail_at=None):
        self.calls = 0
        self.fail_at = fail_at

    def snapshot(self, wants="list", enrich=None):
        self.calls += 1
        if self.calls == self.fail_at:
            raise KeyError(("10.0.0.1", 0))
        return time.time(), []


class FailingEnricher:
    def __init__(self, fail_at):
        self.calls = 0
        self.fail_at = fail_at

    def tick(self, table):
        self.calls += 1
        if self.calls >= self.fail_at:
            raise KeyError(("10.0.0.1", 0))


def _until_failed(c, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            c.latest()
        except CollectorFailed as exc:
            return exc
        time.sleep(0.01)
    return None


@pytest.fixture
def no_thread_hook():
    calls = []
    old = threading.excepthook
    threading.excepthook = lambda args: calls.append(args.exc_type)
    yield calls
    threading.excepthook = old


def test_an_enricher_exception_in_the_collector_reaches_the_screen_as_collector_failed(
        no_thread_hook):
    c = Collector(Source(), 0.01, enrich=FailingEnricher(fail_at=3))
    c.start()
    try:
        failed = _until_failed(c)
        c.join(2)
    finally:
        c.stop()
    assert failed is not None, "latest() never raised: the screen would freeze"
    assert not c.is_alive()
    line = str(failed)
    assert "\n" not in line and "KeyError" in line and "10.0.0.1" in line, line
    assert isinstance(failed.cause, KeyError)
    assert no_thread_hook == []          # handed over, not printed by threading


def test_a_source_exception_in_the_collector_reaches_the_screen_as_collector_failed(
        no_thread_hook):
    c = Collector(Source(fail_at=2), 0.01)
    c.start()
    try:
        failed = _until_failed(c)
    finally:
        c.stop()
    assert failed is not None and isinstance(failed.cause, KeyError)


def test_snapshots_before_the_failure_are_published():
    c = Collector(Source(), 0.01, enrich=FailingEnricher(fail_at=4))
    c.start()
    seen = None
    deadline = time.monotonic() + 5
    try:
        while time.monotonic() < deadline:
            try:
                snap = c.latest()
            except CollectorFailed:
                break
            if snap is not None:
                seen = snap
            time.sleep(0.001)
    finally:
        c.stop()
    assert seen is not None


def test_an_event_reader_that_dies_fails_the_collector_that_drains_it(no_thread_hook):
    class Sock:
        def settimeout(self, t):
            pass

        def close(self):
            pass

    def read(sock):
        raise ValueError("bad event batch")

    r = EventReader(open_events=Sock, read=read)
    r.start()
    r.join(2)
    assert not r.is_alive()
    with pytest.raises(CollectorFailed) as info:
        r.drain()
    assert "ValueError" in str(info.value) and "event reader" in str(info.value)


def test_the_failure_line_has_no_control_characters():
    line = str(CollectorFailed(KeyError("\x1b[2Jx\n")))
    assert "\x1b" not in line and "\n" not in line


def test_an_event_socket_that_keeps_failing_ends_the_reader_instead_of_spinning(no_thread_hook):
    import errno

    class Sock:
        def settimeout(self, t):
            pass

        def close(self):
            pass

    calls = []

    def read(sock):
        calls.append(1)
        raise OSError(errno.EBADF, "Bad file descriptor")

    r = EventReader(open_events=Sock, read=read)
    r.start()
    r.join(2)
    alive = r.is_alive()
    r.stop()
    assert not alive and len(calls) == EventReader.MAX_ERRORS + 1
    with pytest.raises(CollectorFailed) as info:
        r.drain()
    assert "OSError" in str(info.value)
