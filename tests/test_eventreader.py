"""The event reader thread (flowtop/eventreader.py) over a scripted
non-blocking socket: every datagram waiting is read in one turn, without
a wait (a poll) between them, and none is left behind or read twice."""

import threading
import time

from flowtop.eventreader import EventReader
from tests.test_ct_conversation import event_datagrams
from tests.test_session import Waiting


class Sock(Waiting):
    """Waiting, thread-safe enough for one reader; ``timeout`` as set."""

    def __init__(self, queue):
        super().__init__(queue)
        self.lock = threading.Lock()
        self.reads = 0

    def recv(self):
        with self.lock:
            self.reads += 1
            return Waiting.recv(self)

    def readable(self, seconds):
        self.waits.append(seconds)
        time.sleep(0.01)
        return bool(self.queue)

    def close(self):
        pass


def test_the_reader_takes_every_waiting_event_from_a_non_blocking_socket_at_once():
    grams = event_datagrams() * 20
    sock = Sock(grams)
    r = EventReader(open_events=lambda: sock)
    assert sock.timeout == 0.0                   # recv never polls first
    read, turns = r._read, []

    def counted(s):
        turns.append(len(s.queue))               # datagrams waiting as a turn begins
        return read(s)
    r._read = counted
    r.start()
    try:
        deadline = time.monotonic() + 5
        while r.pending() < len(grams) and time.monotonic() < deadline:
            time.sleep(0.01)
        events, lost = r.drain()
    finally:
        r.stop()
        r.join(2)
    assert len(events) == len(grams) and not lost and r.failure is None
    busy = [n for n in turns if n]
    assert len(busy) <= -(-len(grams) // 256), busy      # up to 256 datagrams a turn


def wait_until(cond, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)
    return cond()


def test_a_paused_reader_leaves_the_event_groups_drops_what_waits_and_resumes_from_then():
    """In a flood the collector pauses the reader: the kernel sends no more
    (the socket leaves the NEW and DESTROY groups), the datagrams already
    waiting are dropped unread, and none are pending; a dump's hold and
    release meanwhile do not start it again.  Resumed, it joins the groups
    and reads what comes from then on."""
    grams = event_datagrams()
    sock = Sock([])
    joined, dropped = [], []

    def drop(s):
        with s.lock:
            dropped.append(len(s.queue))
            s.queue.clear()
    r = EventReader(open_events=lambda: sock, pause_events=lambda s, p: joined.append(not p),
                    drop_waiting=drop)
    r.start()
    try:
        with sock.lock:
            sock.queue.extend(grams)
        assert wait_until(lambda: r.read == len(grams))
        r.hold()                                # a full dump: the reader waits
        time.sleep(0.1)
        with sock.lock:
            sock.queue.extend(grams)            # sent before the groups were left
        r.pause()
        r.release()
        assert wait_until(lambda: dropped == [len(grams)])
        r.hold()
        r.release()                             # a full dump while paused
        time.sleep(0.1)
        assert r.drain() == ([], False) and r.paused and r.read == len(grams)
        r.resume()
        with sock.lock:
            sock.queue.extend(grams[:3])
        assert wait_until(lambda: r.pending() == 3)
        assert len(r.drain()[0]) == 3 and r.read == len(grams) + 3
    finally:
        r.stop()
        r.join(2)
    assert joined == [False, True] and r.failure is None
