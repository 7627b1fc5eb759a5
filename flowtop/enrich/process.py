"""Which process owns each flow: PID, name and user of the local ends.

Once per tick ``ProcessMap.refresh`` reads this namespace's socket table
(``enrich.sockets``: sock_diag, else /proc/net) and resolves the sockets it
has not seen before to a PID (``enrich.owners``: /proc/PID/fd links);
``lookup`` then answers per flow with dictionary lookups; the answers
are kept across ticks (``enrich.answers``) but those on the ports of the
sockets that changed, or whose owner did.  The cost of a
tick grows with the number of sockets plus the file descriptors of new or
changed processes, not with flows x descriptors (netsniff-ng's flowtop
matched the source port alone and stat()ed every fd of every process once
per flow).  Measurements: bench/README.md, "process".

Matching (a flow is the kernel's original tuple and its reply tuple):
* orig side - the socket whose (local, remote) is (orig src:sport, orig
  dst:dport): the process that opened the flow;
* reply side - the socket whose (local, remote) is (reply src:sport, reply
  dst:dport), which without NAT is (orig dst:dport, orig src:sport): the
  local server; with DNAT (a redirect to a local port) it is still right;
* an unconnected UDP (or ping, or raw) socket matches on its local
  address:port alone, a wildcard one (0.0.0.0, ::) only for an address of
  this host; a listening TCP socket answers for a connection not yet
  accepted; IPv4-mapped sockets (::ffff:a.b.c.d) match IPv4 flows;
* a flow neither of whose sides is local (orig src, reply src) is
  FORWARDED (with DNAT the real destination is the reply source).

Local addresses come from an injected callable (``local_addresses``), by
default ``flowtop.netlink.route.local_addresses`` (RTM_GETADDR) and, where
that is missing or fails, a fallback: /proc/net/if_inet6, the /32 "host
LOCAL" entries of /proc/net/fib_trie, plus always 127.0.0.0/8, ::1 and the
local address of every socket seen.

Names: /proc/PID/comm (the kernel cuts it to 15 bytes; then argv[0]'s
basename is used when it extends it), user from /proc/PID/status's real
Uid through ``pwd`` when importable, else the number; both pass
``text.sanitize``.  Read when a PID holding a listed socket is scanned, so
a short-lived client is named before it exits; a flow keeps the last name
found for it until ``retain``/``forget`` drops it.  Everything under /proc
is untrusted: vanished processes, unreadable files and odd contents are
skipped, reads are capped.
"""

import operator
import os
import time

from ..model import ICMP_PROTOS, PORT_PROTOS, local_flags
from ..netlink.ctnetlink import FIELDS, CtEntry
from ..netlink.errors import DumpInterrupted
from ..netlink.uapi import (
    AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE,
)
from .answers import Answers, code
from .owners import FORWARDED, Owners, ProcInfo, fd_count
from .procfs import PROC_NET, fallback_local_addresses, normalize_addresses, parse_proc_net
from .sockets import SocketTable

__all__ = ["ProcInfo", "FORWARDED", "ProcessMap", "Stats", "parse_proc_net",
           "fallback_local_addresses", "PROC_NET"]

# The port protocols whose sockets the kernel lists (/proc/net, sock_diag):
# a flow of another (SCTP, DCCP) matches no socket by port.
SOCKET_PORT_PROTOS = frozenset(p for p in PORT_PROTOS
                               if p in (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE))
_WILD = {AF_INET: ("0.0.0.0", "::"), AF_INET6: ("::",)}
_NOPORT = 0x10000         # answers.code's port None, inlined
_NEITHER = (None, None)
ANSWERS_IDLE = 30.0     # seconds after a view last read every flow's answer: let them go
_BOTH_FORWARDED = (FORWARDED, FORWARDED)

# CtEntry is a tuple: the fields lookup_both reads, in one C call
_TUPLES = operator.itemgetter(*[FIELDS.index(n) for n in (
    "key", "family", "l4proto", "src", "dst", "sport", "dport",
    "reply_src", "reply_dst", "reply_sport", "reply_dport")])


class Stats:
    """What the last ``refresh`` did (for the bench and a debug line)."""

    __slots__ = ("source", "sockets", "unknown", "unresolved", "pids_stat", "pids_scanned",
                 "fds", "full_scan", "info_reads", "socket_seconds", "seconds")

    def __init__(self):
        self.source = ""            # "sock_diag", "proc" or "sock_diag+proc(raw,raw6)"
        self.sockets = 0            # sockets with an inode in the table
        self.unknown = 0            # of them, not in the inode cache at the start
        self.unresolved = 0         # of them, still without a PID at the end
        self.pids_stat = 0          # /proc/PID/fd directories stat()ed
        self.pids_scanned = 0       # /proc/PID/fd directories listed
        self.fds = 0                # descriptor links read (readlink)
        self.full_scan = False      # a pass that ignored descriptor counts ran
        self.info_reads = 0         # processes whose comm/status were read
        self.socket_seconds = 0.0   # reading the socket table
        self.seconds = 0.0          # the whole refresh

    def as_dict(self):
        return {name: getattr(self, name) for name in self.__slots__}


class ProcessMap:
    """Flow -> owning process, refreshed once per tick.

    ``proc_root``: where /proc is (tests pass a fake tree).
    ``local_addresses``: callable returning this host's addresses (text), or
    a set; None: rtnetlink, else the /proc fallback (see the module doc).
    ``clock``: monotonic seconds, for ``retry_interval`` (how often inodes
    still unknown may cost a full pass over /proc) and ``local_interval``
    (how often the local addresses are read again).
    ``sockets``: "auto" (sock_diag for /proc, falling back per protocol to
    /proc/net), "sock_diag" (the same) or "proc" (/proc/net files only).
    ``user_name``: callable uid -> name or None (default: ``pwd``).

    Per tick: ``refresh()``; then ``lookup(entry)`` (ProcInfo, FORWARDED or
    None) or ``lookup_both(entry)`` -> (orig side, reply side); then
    ``retain(live keys)``.  ``stats`` describes the last refresh.
    ``fd_count(path)``: descriptors of a /proc/PID/fd (a seam for a fake /proc).
    """
    local = property(operator.attrgetter("_local"))     # is_local's addresses (a frozenset)

    def __init__(self, proc_root="/proc", local_addresses=None, clock=time.monotonic,
                 sockets="auto", user_name=None, retry_interval=2.0, local_interval=5.0,
                 fd_count=fd_count):
        self.proc_root = proc_root
        self.live = os.path.realpath(proc_root) == "/proc"
        if sockets not in ("auto", "sock_diag", "proc"):
            raise ValueError("sockets must be auto, sock_diag or proc: %r" % (sockets,))
        self.use_diag = sockets == "sock_diag" or (sockets == "auto" and self.live)
        if local_addresses is not None and not callable(local_addresses):
            fixed = frozenset(local_addresses)
            local_addresses = lambda: fixed    # noqa: E731
        self._local_fn = local_addresses
        self._clock = clock
        self.local_interval = local_interval
        self.stats = Stats()
        self._sockets = SocketTable(proc_root, self.use_diag)
        self._owners = Owners(proc_root, user_name, retry_interval, fd_count)
        self._exact = {}        # (proto, laddr, lport, raddr, rport) -> inode
        self._ports = set()     # (proto, lport) of every socket in the two above
        self._bound = {}        # (proto, laddr, lport) -> inode: unconnected, listening
        self._memo = {}         # flow key -> (orig, reply) last found
        self._answers = Answers()   # flow key -> (orig, reply) now, across ticks
        self.keep = True        # keep answers across ticks (not for --once: ``one_shot``)
        self._read_at = None    # when a view last read them all (``answers``)
        self._local = frozenset()
        self._local_base = frozenset()
        self._local_at = None

    @property
    def answers(self):
        """flow key -> (orig, reply): ``lookup_both``'s answers, still true
        (a Processes view reads every flow's here: one dict read each)."""
        self._read_at = self._clock()
        return self._answers.pairs

    @property
    def retry_interval(self):
        return self._owners.retry_interval

    # -- once per tick ------------------------------------------------------------
    def refresh(self):
        """Read the socket table; resolve inodes not seen before to PIDs."""
        clock = self._clock
        t0 = clock()
        st = self.stats = Stats()
        table = self._sockets
        table.read()
        st.source = table.source
        st.socket_seconds = clock() - t0
        answers = self._answers
        answers.gen += 1
        answers.file()
        self._exact, self._bound = table.exact, table.bound
        # (proto, local port) of every socket: a flow whose ports are none of them
        # is matched by no dict lookup (most of a big table: ~3 us a flow saved)
        self._ports = {(k[0], k[2]) for k in table.exact}.union((k[0], k[2]) for k in table.bound)
        st.sockets = len(table.live)
        now = clock()
        local = self._local
        self._refresh_local(now, table.seen_local)
        self._owners.resolve(table.live, now, st)
        self._drop_changed(table, local != self._local)
        answers.gen += 1
        st.seconds = clock() - t0

    def _drop_changed(self, table, all_):
        """Forget the answers the sockets that changed may change: those on
        their ports (a raw socket's: port None, where the flows it can match
        are filed), and those of sockets whose owner changed; all of them
        when this host's addresses did."""
        changed = table.changed
        touched = self._owners.touched
        if touched:
            changed = set(changed)
            for index in (table.exact, table.bound):
                changed.update(code(k[0], k[2]) for k, ino in index.items() if ino in touched)
        if all_:
            self._answers.clear()
        elif changed:
            self._answers.drop(changed)

    def one_shot(self):
        """Answer each flow without keeping its answer (``--once`` asks once)."""
        self.keep = False
        self._answers.clear()

    def forget_answers(self):
        """Drop the per-flow answers: ``--once`` asks about a datagram's
        flows once each (250k flows' answers held ~25 MB until the end)."""
        self._answers.clear()

    def retain(self, keys):
        """Forget the flows whose key is not in ``keys`` (a set, a
        FlowTable: anything that answers ``in``)."""
        keys = getattr(keys, "rows", keys)     # a FlowTable's dict: ``in`` in C
        memo = self._memo
        dead = [k for k in list(memo) if k not in keys]
        for key in dead:
            memo.pop(key, None)
        self._answers.retain(keys)
        if self._read_at is not None and self._clock() - self._read_at > ANSWERS_IDLE:
            # no view reads them all now: the table's answers (~3.8 MB at 16k flows
            # here) go back, the few rows on screen are asked again
            self._answers.clear()
            self._read_at = None

    def forget(self, keys):
        """Forget these flows (their keys)."""
        keys = list(keys)
        for key in keys:
            self._memo.pop(key, None)
        self._answers.forget(keys)

    def close(self):
        self._sockets.close()

    # -- per flow -----------------------------------------------------------------
    def lookup(self, entry):
        """The process of a flow's local end - the originating one when both
        are local -, FORWARDED, or None (not found)."""
        orig, reply = self.lookup_both(entry)
        return orig if orig is not None else reply

    @property
    def socket_ports(self):
        """(protocol, local port) of every socket read at the last refresh: a flow on
        none of them at either end has no process (views.procbatch's C passes)."""
        return self._ports

    @property
    def remembered(self):
        """The flow keys whose last found process is kept (``lookup_both``
        asks these even on ports no socket has now)."""
        return self._memo

    def locals_of(self, addrs):
        """``list(map(self.is_local, addrs))`` in C passes."""
        return local_flags(addrs, self._local, ("127.",))

    def lookup_both(self, entry):
        """(orig side, reply side): the process that opened the flow and the
        one that answers it, each a ProcInfo or None; (FORWARDED, FORWARDED)
        when neither end is local."""
        if isinstance(entry, CtEntry):
            (key, family, proto, src, dst, sport, dport,
             rsrc, rdst, rsport, rdport) = _TUPLES(entry)
        else:
            key = entry.key
            family, proto, src, dst = entry.family, entry.l4proto, entry.src, entry.dst
            sport, dport, rsrc, rdst = entry.sport, entry.dport, entry.reply_src, entry.reply_dst
            rsport, rdport = entry.reply_sport, entry.reply_dport
        if not self.keep:
            key = None          # --once: each flow asked once, nothing to keep (+3 % a run)
        # Kept only while a view reads every flow's (``answers``): a flood sorted by
        # process otherwise kept 200k flows' answers (RSS 233 MiB after it, 163 without)
        store = key is not None and self._read_at is not None
        if store:
            answers = self._answers
            gen, pairs = answers.gen, answers.pairs
            hit = pairs.get(key)
            if hit is not None:
                return hit
        ports = self._ports
        result = None           # flows no socket can match (most of a router's): 2.2 -> 1.4 us
        if (proto, None) not in ports:
            if proto in SOCKET_PORT_PROTOS:
                back, bport = (dst, dport) if rsrc is None or rsport is None else (rsrc, rsport)
                if (proto, sport) not in ports and (proto, bport) not in ports and (
                        key is None or key not in self._memo):
                    result = self._unmatched(family, src, back)
                    if not store:
                        return result
                    code_a = proto << 17 | (_NOPORT if sport is None else sport)
                    code_b = proto << 17 | (_NOPORT if bport is None else bport)
            elif proto not in ICMP_PROTOS and (key is None or key not in self._memo):
                # no port: only a raw socket could match
                result = self._unmatched(family, src, dst if rsrc is None else rsrc)
                if not store:
                    return result
                code_a = code_b = proto << 17 | _NOPORT
        if result is None:
            result, code_a, code_b = self._answer(entry, key, family, proto, src, dst, sport,
                                                  dport, rsrc, rdst, rsport, rdport)
        if store:               # answers.put inlined: its call was +25 % a flow here
            pairs[key] = result
            answers.unfiled.extend((key, code_a, code_b))
            if answers.gen != gen:
                pairs.pop(key, None)
        return result

    def _answer(self, entry, key, family, proto, src, dst, sport, dport, rsrc, rdst, rsport,
                rdport):
        """(``lookup_both``'s answer for a flow a socket may match, and the
        two codes of the (protocol, port) it is filed under: the sockets
        there may change it)."""
        ports = self._ports
        wild = _WILD.get(family)
        if wild is None:
            return _NEITHER, code(proto, None), code(proto, None)
        if proto in SOCKET_PORT_PROTOS:
            if rsrc is None or rsport is None:
                rsrc, rdst, rsport, rdport = dst, src, dport, sport
        elif proto in ICMP_PROTOS:          # the echo id is a ping socket's port
            sport, dport, rsport, rdport = entry.icmp_id, 0, None, None
        else:
            sport = dport = rsport = rdport = None
        if rsrc is None:
            rsrc, rdst = dst, src
        local = self._local
        orig_local = src is not None and (src in local or src.startswith("127.") or src == "::1")
        reply_local = rsrc is not None and (rsrc in local or rsrc.startswith("127.")
                                            or rsrc == "::1")
        portless = (proto, None) in ports          # a raw socket (or ICMP's)
        orig = (self._side(proto, src, sport, dst, dport, orig_local, wild, True)
                if portless or (proto, sport) in ports else None)
        reply = (None if proto in ICMP_PROTOS    # the kernel answers echo requests
                 else self._side(proto, rsrc, rsport, rdst, rdport, reply_local, wild, False)
                 if portless or (proto, rsport) in ports else None)
        if key is not None:
            orig, reply = self._remember(key, orig, reply)
        if orig is None and reply is None and not orig_local and not reply_local:
            result = _BOTH_FORWARDED
        else:
            result = (orig, reply)
        return result, code(proto, sport), code(proto, rsport)

    def _remember(self, key, orig, reply):
        """(orig, reply) with the sides not found now as last found."""
        memo = self._memo.get(key)
        if memo is not None:
            orig = orig if orig is not None else memo[0]
            reply = reply if reply is not None else memo[1]
        if (orig is not None or reply is not None) and (
                memo is None or memo[0] is not orig or memo[1] is not reply):
            self._memo[key] = (orig, reply)
        return orig, reply

    def _unmatched(self, family, src, back):
        """``lookup_both``'s answer for a flow no socket can match, whose
        ends are ``src`` and ``back`` (the reply's source)."""
        if family not in _WILD:
            return _NEITHER
        local = self._local
        if ((src is not None and (src in local or src.startswith("127.") or src == "::1"))
                or (back is not None and (back in local or back.startswith("127.")
                                          or back == "::1"))):
            return _NEITHER
        return _BOTH_FORWARDED

    def is_local(self, addr):
        """Is ``addr`` (text) an address of this host?"""
        return addr is not None and (addr in self._local or addr.startswith("127.")
                                     or addr == "::1")

    def _side(self, proto, la, lp, ra, rp, local, wild, orig):
        """The ProcInfo of the socket at local (la, lp) talking to (ra, rp)."""
        exact = self._exact
        ino = exact.get((proto, la, lp, ra, rp))
        if ino is None and not (orig and proto == IPPROTO_TCP):   # listeners only answer
            ino = self._unconnected(proto, la, lp, local, wild)
        if ino is None and lp is not None and proto not in SOCKET_PORT_PROTOS:
            ino = (exact.get((proto, la, None, ra, None))         # ICMP: a raw socket
                   or self._unconnected(proto, la, None, local, wild))
        if ino is None:
            return None
        pid = self._owners.owner.get(ino)
        if pid is None:
            return None
        return self._owners.info_of(pid)

    def _unconnected(self, proto, la, lp, local, wild):
        bound = self._bound
        ino = bound.get((proto, la, lp))
        if ino is None and local:           # a wildcard socket, for this host's addresses
            for w in wild:
                ino = bound.get((proto, w, lp))
                if ino is not None:
                    break
        return ino

    def _refresh_local(self, now, seen):
        if self._local_at is None or now - self._local_at >= self.local_interval:
            self._local_at = now
            try:
                if self._local_fn is not None:
                    base = self._local_fn()
                else:
                    base = self._default_local()
                self._local_base = normalize_addresses(base)
            except (OSError, ValueError, DumpInterrupted):
                pass                        # keep the last known set
        self._local = self._local_base | seen

    def _default_local(self):
        if self.live:
            try:
                from ..netlink.route import local_addresses
                return local_addresses()
            except (ImportError, OSError, ValueError, DumpInterrupted):
                pass
        return fallback_local_addresses(self.proc_root)
