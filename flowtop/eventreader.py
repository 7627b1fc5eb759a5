"""The thread that drains conntrack NEW/DESTROY events for the collectors
(the live view's and the exports'), and the error that ends the program
when one of their threads dies.
"""

import threading


class CollectorFailed(Exception):
    """The collector thread died of an unexpected exception: the screen
    would freeze on its last snapshot, so the program must end instead.
    ``str()`` is the one line for the user."""

    def __init__(self, cause, where="collector"):
        super().__init__(cause)
        self.cause = cause
        self.where = where

    def __str__(self):
        from .text import sanitize
        what = "%s: %s" % (type(self.cause).__name__, self.cause)
        return "internal error in the %s thread (%s); please report it" % (
            self.where, sanitize(what, 160))


class EventReader(threading.Thread):
    """Drains conntrack NEW/DESTROY events continuously into a list (one
    recv per event: read per tick, they would overflow the socket).

    ``read(sock)``: the next events, [] after a while without any (to notice
    ``stop``); ``destroy_keys``: a DESTROY event's flow is its key (bytes).
    By default the socket is non-blocking and a read takes every datagram
    waiting (``api.events_waiting``): in a flood one recv an event, not a
    poll and a recv, and one turn of the loop for many."""

    def __init__(self, open_events=None, read=None, gate=None, destroy_keys=False,
                 pause_events=None, drop_waiting=None):
        super().__init__(name="flowtop-events", daemon=True)
        from . import api as conntrack
        self.sock = (open_events or conntrack.open_events)()
        self.sock.settimeout(0.5 if read is not None else 0.0)   # to notice stop()
        self._read = read or (lambda sock: conntrack.events_waiting(
            sock, destroy_keys=destroy_keys))
        self._pause_events = pause_events or conntrack.pause_events
        self._drop_waiting = drop_waiting or conntrack.drop_waiting
        self._lock = threading.Lock()
        self._events = []
        self.read = 0                 # events read so far (none while paused)
        self.paused = False           # pause(): the kernel sends none until resume()
        self.overflowed = False
        self.failure = None           # the exception that ended run(), if one did
        self._halt = threading.Event()
        self._go = threading.Event()  # cleared by hold(): events wait in the socket
        self._go.set()
        self._gate = gate             # collector.Gate: the screen's turn, or None

    def run(self):
        try:
            self._run()
        except BaseException as exc:     # noqa: B036 - the collector ends the program
            self.failure = exc
        finally:
            self.sock.close()

    MAX_ERRORS = 100     # socket errors in a row before the reader gives up

    def _run(self):
        import _socket      # not socket.py (its enums: 15 M instructions beside a router's dump)
        errors = 0
        while not self._halt.is_set():
            self._go.wait()
            if self.paused:
                self._drop_waiting(self.sock)   # sent before the pause: a dump covers them
                with self._lock:
                    if self.paused:
                        self._go.clear()        # until resume (or hold's release)
                continue
            if self._gate is not None:
                self._gate.wait()
            try:
                batch = self._read(self.sock)
            except _socket.timeout:
                continue
            except OSError:
                if self._halt.is_set():
                    break
                errors += 1
                if errors > self.MAX_ERRORS:    # not a passing one: end, do not spin
                    raise
                continue
            errors = 0
            with self._lock:
                if self.paused:
                    continue                # read as the pause came: a dump covers them
                self.read += len(batch)
                for kind, entry in batch:
                    if entry is None:
                        self.overflowed = True
                    else:
                        self._events.append((kind, entry))

    def drain(self, limit=None):
        """(the oldest events since the last drain, at most ``limit``;
        whether some were lost).  Raises CollectorFailed once the reader
        has died."""
        if self.failure is not None:
            raise CollectorFailed(self.failure, "event reader")
        with self._lock:
            if limit is not None and len(self._events) > limit:
                events, self._events = self._events[:limit], self._events[limit:]
            else:
                events, self._events = self._events, []
            lost, self.overflowed = self.overflowed, False
        return events, lost

    def pending(self):
        return len(self._events)

    def hold(self):
        """Leave events in the socket's 64 MiB buffer until ``release``:
        during a full dump, whose ~1,400 recv() calls at 200k flows each
        wait to get the GIL back from this thread (20k events/s in a flood
        made a 1.4 s dump take 4-6 s)."""
        self._go.clear()

    def release(self):
        self._go.set()

    def pause(self):
        """Stop the events until ``resume``: the kernel sends none (leaving
        its groups), those waiting are dropped unread, none are pending.  In
        a flood of 20,000 new flows a second reading them took 25 % of a
        core, more than the full dumps that list the same flows."""
        self._pause_events(self.sock, True)
        with self._lock:
            self.paused = True
            self._events, self.overflowed = [], False

    def resume(self):
        """Events again from now on (those missed meanwhile: a full dump's)."""
        if not self.paused:
            return
        self._pause_events(self.sock, False)
        with self._lock:
            self.paused = False
            self._events, self.overflowed = [], False
        self._go.set()

    def stop(self):
        self._halt.set()
        self._go.set()
