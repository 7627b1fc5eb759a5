"""Reverse DNS that never blocks the screen, a snapshot or the tick.

``Resolver.lookup`` answers from a cache and otherwise queues the address
for a few daemon worker threads and returns None at once, so the caller
shows the address until a later tick has the name (bandwhich's DNS client).
The queue is bounded: when it is full the request is dropped, not waited
for, and the next lookup of that address tries again.  Failures are cached
too (for a shorter time), so an address without a PTR record is asked about
once per ``negative_ttl``, not once per tick.

Names come from whoever controls the reverse zone of a remote address, so
a name that is not a plain hostname (ASCII letters, digits, ``.-_``) is
discarded and the address is shown instead.  That whitelist is stricter
than ``text.sanitize``: an accepted name has nothing for sanitize to
change.  A name that poses as something else is discarded too: one that
reads as an address (a server named ``8.8.8.8``) or as ``localhost`` for an
address that is not loopback (``poses_as_other``).

Resolution is ``socket.getnameinfo(..., NI_NAMEREQD)``: unlike
``gethostbyaddr`` on a str it needs no idna codec, which OpenWrt's
python3-light lacks.  Before Python 3.11.4 getnameinfo holds the GIL for
the whole lookup (CPython gh-104308), which would freeze the tick for as
long as DNS takes; there ``gethostbyaddr`` on ASCII bytes is used instead:
it releases the GIL and, given bytes, needs no codec either.  ``threading``
and ``queue`` are imported when a Resolver is made, so importing this
module costs nothing when names are off.
"""

import socket
import sys
import time
from array import array

from ..memo import Memo

MAX_NAME = 253
MAX_LABEL = 63
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")
_STOP = object()
SPANS = 1024            # resolve spans remembered: a flow's first dump comes within seconds
SPAN_SLACK = 0.01       # seconds around a span: the kernel's and Python's clock reads
_GETNAMEINFO_FREES_GIL = sys.version_info >= (3, 11, 4)
# Answers that tell no server answered (none reachable, SERVFAIL, REFUSED), unlike
# "no such name", which a server gives: getnameinfo's EAI codes, gethostbyaddr's h_errno.
_NO_SERVER = {socket.gaierror: frozenset(getattr(socket, c) for c in ("EAI_AGAIN", "EAI_FAIL")
                                         if hasattr(socket, c)),
              socket.herror: frozenset((2, 3))}     # TRY_AGAIN, NO_RECOVERY
SILENT_RUN = 16         # such answers in a row: DNS is silent here (a router without a
                        # resolver: armhf spent 1.3 s of --once on 600 failing lookups)


def plain_hostname(name):
    """True if ``name`` is safe to show as is: ASCII letters, digits, '.',
    '-', '_'; at most 253 characters; labels of 1..63 characters (one
    trailing dot allowed)."""
    if not isinstance(name, str):
        return False
    name = name.removesuffix(".")
    if not name or len(name) > MAX_NAME or not _HOST_CHARS.issuperset(name):
        return False
    return all(0 < len(label) <= MAX_LABEL for label in name.split("."))


# RFC 6761 (.localhost) and the loopback names of Debian's and Red Hat's /etc/hosts.
_LOOPBACK_NAMES = frozenset(("localhost", "localhost4", "localhost6", "ip6-localhost",
                             "ip6-loopback"))


def poses_as_other(name, addr):
    """True if ``name`` (a plain hostname) would be read as something it is
    not: an IPv4 address in any spelling inet_aton takes (``8.8.8.8``,
    ``134744072``, ``0x8.8.8.8``), an IPv6 address, or a loopback name
    (``localhost``, ``localhost.localdomain``, ``x.localhost``) for ``addr``
    that is not a loopback address."""
    n = name.removesuffix(".").lower()
    try:
        socket.inet_aton(n)
        return True
    except (OSError, ValueError):
        pass
    try:
        socket.inet_pton(socket.AF_INET6, n)
        return True
    except (OSError, ValueError):
        pass
    labels = n.split(".")
    if labels[0] in _LOOPBACK_NAMES or labels[-1] == "localhost":
        from ..model import is_loopback
        return not is_loopback(addr.split("%", 1)[0])
    return False


def resolve_ptr(addr):
    """The PTR name of an IPv4/IPv6 address string (a scope id ignored);
    raises OSError when there is none (UnicodeError for a non-UTF-8 name)."""
    addr = addr.split("%", 1)[0]
    if _GETNAMEINFO_FREES_GIL:
        return socket.getnameinfo((addr, 0), socket.NI_NAMEREQD)[0]
    return socket.gethostbyaddr(addr.encode("ascii"))[0]


class Resolver:
    """Cached, non-blocking reverse DNS.

    ``resolve(addr) -> name`` (default ``resolve_ptr``) runs on the workers,
    which start on the first lookup.  ``clock`` dates cache entries only;
    ``wait`` bounds its real waiting with ``time.monotonic``, because a fake
    clock that never moves must not make it wait forever.  A positive entry
    past its TTL is still returned while a refresh is queued, so a known
    name does not flicker back to an address every ``ttl`` seconds.
    """

    def __init__(self, workers=3, cache_size=8192, ttl=600.0, negative_ttl=120.0,
                 queue_size=2048, resolve=None, clock=time.monotonic, wall=time.time):
        import queue
        import threading

        self.workers = max(1, int(workers))
        self.cache_size = max(1, int(cache_size))
        self.ttl = float(ttl)
        self.negative_ttl = float(negative_ttl)
        self._resolve = resolve or resolve_ptr
        self._clock = clock
        self._queue = queue.Queue(max(1, int(queue_size)))
        self._full = queue.Full
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._cache = Memo(self.cache_size)     # addr -> (name or None, expires), LRU order
        self._pending = set()           # queued or being resolved
        self._threads = []
        self._closed = False
        # When the workers were resolving (wall-clock spans): flowtop's own
        # DNS flows are the ones that began inside one (``resolving_at``).
        # A ring of doubles, not of tuples: a flood's spans, each two floats
        # and a tuple, kept ~50 of Python's 1 MiB arenas from being freed.
        self._wall = wall
        self._spans = array("d", bytes(16 * SPANS))     # start, end; start, end; ...
        self._spanned = 0               # spans recorded in all
        self._busy = {}                 # worker thread id -> wall time its resolve began
        self._stats = dict.fromkeys(
            ("hits", "misses", "queued", "dropped", "rejected", "failures", "unanswered"), 0)
        self._unanswered_run = 0        # answers in a row that no server gave
        self._one_shot = False          # wait() was used: once silent, drop the queue

    @property
    def stats(self):
        """Counters (a copy): cache ``hits`` (failures included) and
        ``misses``; ``queued`` and ``dropped`` (queue full) requests;
        ``rejected`` names that were not plain hostnames; ``failures`` of the
        resolve function, ``unanswered`` those of them no server answered.  Also the current ``cached`` and ``pending`` sizes."""
        with self._lock:
            out = dict(self._stats)
            out["cached"] = len(self._cache)
            out["pending"] = len(self._pending)
        return out

    # -- caller side ------------------------------------------------------------------
    def lookup(self, addr):
        """The cached name of ``addr``, else None (and the address queued).

        Never waits for DNS: only a short lock around the cache."""
        if not addr:
            return None
        with self._lock:
            return self._lookup_locked(addr, self._clock())

    def _lookup_locked(self, addr, now):
        entry = self._cache.get(addr)
        if entry is not None:
            name, expires = entry
            self._cache.touch(addr)
            if now < expires:
                self._stats["hits"] += 1
                return name
            if name is None:
                del self._cache[addr]
        self._stats["misses"] += 1
        self._enqueue_locked(addr)
        return entry[0] if entry is not None else None

    def retain(self, addrs):
        """Forget the names of addresses not in ``addrs`` (a set), answers
        and failures alike; the rest keep their LRU order."""
        with self._lock:
            kept = Memo(self.cache_size)
            kept.update((a, v) for a, v in self._cache.items() if a in addrs)
            self._cache = kept

    def _enqueue_locked(self, addr):
        if addr in self._pending or self._closed:
            return
        if not self._threads:
            self._start_locked()
        # A full queue is told by its length, not by put_nowait's exception: at
        # 87k new addresses a --once spent ~2 s (profiled) failing puts.
        q = self._queue
        if len(q.queue) >= q.maxsize:
            self._stats["dropped"] += 1  # retried by a later lookup, never waited for
            return
        try:
            q.put_nowait(addr)
        except self._full:
            self._stats["dropped"] += 1
            return
        self._pending.add(addr)
        self._stats["queued"] += 1

    @property
    def silent(self):
        """True while the last SILENT_RUN answers all came from no server
        (none reachable or none answering): a name is not to be expected."""
        return self._unanswered_run >= SILENT_RUN

    def wait(self, addrs, timeout):
        """For one-shot output: queue every address and wait until all have an
        answer, ``timeout`` seconds have passed or DNS shows ``silent``,
        whichever comes first (the total wait, not per address; a resolve
        still running then keeps running in the background; once silent, what
        is still queued is dropped, then and by the workers from then on).  Returns ``{addr: name or None}``."""
        addrs = [a for a in dict.fromkeys(addrs) if a]
        deadline = time.monotonic() + max(0.0, float(timeout))
        out = dict.fromkeys(addrs)
        todo = addrs                    # each pass looks again only at what was missing
        with self._lock:
            self._one_shot = True
            out = self._wait_locked(out, todo, deadline)
        if self.silent:
            self.drop_queued()          # no server answers: the rest would fail as well
        return out

    def _wait_locked(self, out, todo, deadline):
        while True:
            now = self._clock()
            missing = []
            for a in todo:
                entry = self._cache.get(a)
                if entry is not None and now < entry[1]:
                    out[a] = entry[0]
                else:
                    out[a] = entry[0] if entry is not None else None
                    missing.append(a)
                    self._enqueue_locked(a)     # again, if dropped as full
            todo = missing
            left = deadline - time.monotonic()
            if not missing or left <= 0 or self._closed or self.silent:
                return out
            # Woken per finished resolve; a short cap retries dropped ones.
            self._done.wait(min(left, 0.05))

    def drop_queued(self):
        """Forget the addresses queued and not yet taken by a worker (a
        one-shot output past its wait: nothing prints their names).  Returns
        how many were dropped."""
        import queue

        dropped = 0
        while True:
            try:
                addr = self._queue.get_nowait()
            except queue.Empty:
                break
            if addr is _STOP:           # close()'s, for the workers: put back
                self._queue.put_nowait(addr)
                break
            with self._lock:
                self._pending.discard(addr)
            dropped += 1
        return dropped

    def resolving_at(self, when):
        """Was a worker inside the system resolver at wall time ``when``
        (epoch seconds)?  A DNS flow of this host whose socket is gone and
        that began then was made by this Resolver."""
        with self._lock:
            if any(t0 - SPAN_SLACK <= when for t0 in self._busy.values()):
                return True
            spans, n = self._spans, self._spanned
            for k in range(n - 1, max(n - SPANS, 0) - 1, -1):
                i = 2 * (k % SPANS)
                if spans[i] - SPAN_SLACK <= when <= spans[i + 1] + SPAN_SLACK:
                    return True
                if spans[i + 1] + SPAN_SLACK < when:
                    return False        # spans end in order: all older ones end sooner
        return False

    def close(self, timeout=0.5):
        """Stop the workers: drop what is queued, join for at most ``timeout``
        seconds in all (a worker stuck in a slow resolve is a daemon thread
        and is left to finish on its own)."""
        import queue

        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads, self._threads = self._threads, []
            self._done.notify_all()
        while True:             # drop what is queued; workers pass one stop on
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if threads:
            try:
                self._queue.put_nowait(_STOP)
            except queue.Full:  # refilled meanwhile; workers see _closed
                pass
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._pending.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- worker side --------------------------------------------------------------------
    def _start_locked(self):
        import threading

        for i in range(self.workers):
            t = threading.Thread(target=self._work, name="flowtop-dns-%d" % i, daemon=True)
            t.start()
            self._threads.append(t)

    def _work(self):
        import queue
        import threading

        while True:
            addr = self._queue.get()
            if addr is _STOP or self._closed:
                try:                # pass the stop on to the next worker
                    self._queue.put_nowait(_STOP)
                except queue.Full:
                    pass
                return
            me = threading.get_ident()
            with self._lock:
                self._busy[me] = self._wall()
            name, outcome = self._answer(addr)
            with self._lock:
                i = 2 * (self._spanned % SPANS)
                self._spans[i], self._spans[i + 1] = self._busy.pop(me), self._wall()
                self._spanned += 1
                if outcome == "unanswered":
                    self._stats["failures"] += 1
                    self._unanswered_run += 1
                else:
                    self._unanswered_run = 0    # a name, or a server's "no such name"
                if outcome:
                    self._stats[outcome] += 1
                ttl = self.ttl if name is not None else self.negative_ttl
                self._cache.pop(addr, None)                 # the newest again
                self._cache.put(addr, (name, self._clock() + ttl))
                self._pending.discard(addr)
                self._done.notify_all()
            if self._one_shot and self.silent:
                self.drop_queued()      # at once: on a fast CPU the workers outran wait()

    def _answer(self, addr):
        """(name or None, the stats key to count or None)."""
        try:
            name = self._resolve(addr)
        except Exception as e:  # noqa: BLE001 - OSError, UnicodeError, a broken resolve fn:
            codes = _NO_SERVER.get(type(e))     # the worker must outlive any one answer
            return None, "unanswered" if codes and e.errno in codes else "failures"
        if name is None:
            return None, "failures"
        if not plain_hostname(name):
            return None, "rejected"
        name = name.removesuffix(".")
        if name == addr.split("%", 1)[0]:
            return None, "failures"     # some resolvers echo the address back
        if poses_as_other(name, addr):
            return None, "rejected"
        return name, None
