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
