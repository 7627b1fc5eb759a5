"""Which process owns each flow: PID, name and user of the local ends.

Once per tick ``ProcessMap.refresh`` reads this namespace's socket table and
resolves the sockets it has not seen before to a PID; ``lookup`` then
answers per flow with dictionary lookups.  The cost of a tick grows with the
number of sockets plus the file descriptors of new or changed processes, not
with flows x descriptors (netsniff-ng's flowtop matched the source port
alone and stat()ed every fd of every process once per flow).

Socket table.  Read with sock_diag (``flowtop.netlink.sockdiag``) for TCP,
UDP, UDP-lite and raw sockets, IPv4 and IPv6.  Measured with bench/process.py
at 10k sockets (1,000 processes; 2 cores, kernel 6.18, Python 3.11), TCP +
UDP + UDP-lite x IPv4 + IPv6, median ms per pass:

    sock_diag    kernel (recv)  8-9   Python (decode)  6    total 15
    /proc/net    kernel (read) 31-32  Python (parse)  12-13 total 45-47

sock_diag is ~3x cheaper: the kernel formats no text, and Python makes one
struct call per socket instead of splitting a line and six int() calls.
/proc/net stays the fallback, per family and protocol, because sock_diag is
optional in the kernel (OpenWrt ships inet_diag, udp_diag and raw_diag as
separate packages; the kernel measured has no raw_diag): an error answer
switches that pair to its /proc/net file for good.  Ping sockets (SOCK_DGRAM
ICMP, whose port is the echo id) have no sock_diag handler and always come
from /proc/net/icmp{,6}.  With a ``proc_root`` other than /proc (tests),
everything comes from its net/ files.

Sockets to PIDs.  A socket's inode appears as the ``socket:[INODE]`` link
of a descriptor in /proc/PID/fd.  The inode -> PID map is a cache; a pass
over /proc runs only when the table holds inodes the cache lacks, at most
once per refresh, and it lists /proc, stat()s each /proc/PID/fd - highest
PID first, since new processes are the likely owners - (since Linux 6.2
its st_size is the number of open descriptors) and reads the links of new
PIDs and of PIDs whose count changed only, stopping as soon as every
unknown inode is found.  Inodes still unknown after that (a descriptor
closed and another opened: same count; a kernel < 6.2, where st_size is 0)
get one full pass, at most every ``retry_interval`` seconds; what a full
pass cannot find (kernel sockets, other PID namespaces, unreadable
processes) is remembered, and retried only by the cheap pass, at most every
``retry_interval``.  Measured as above, a tick - refresh and the lookup of
4,000 flows - costs ~28 ms with nothing new (no /proc access), ~30 ms with
10 new processes (18 directories stat()ed, 100 links read) and 200-240 ms
the first time (15,000 links, 1,000 comm/status reads).

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
import socket
import struct
import time

from ..netlink import sockdiag
from ..netlink.ctnetlink import FIELDS, CtEntry
from ..netlink.errors import DecodeError, DumpInterrupted, NetlinkError
from ..netlink.uapi import (
    AF_INET, AF_INET6, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_RAW, IPPROTO_TCP, IPPROTO_UDP,
    IPPROTO_UDPLITE, TCP_LISTEN,
)
from ..text import sanitize

__all__ = ["ProcInfo", "FORWARDED", "ProcessMap", "Stats", "parse_proc_net",
           "fallback_local_addresses", "PROC_NET"]

# /proc/net/NAME -> (protocol, family).  The last two are ping sockets.
PROC_NET = (
    ("tcp", IPPROTO_TCP, AF_INET), ("tcp6", IPPROTO_TCP, AF_INET6),
    ("udp", IPPROTO_UDP, AF_INET), ("udp6", IPPROTO_UDP, AF_INET6),
    ("udplite", IPPROTO_UDPLITE, AF_INET), ("udplite6", IPPROTO_UDPLITE, AF_INET6),
    ("raw", IPPROTO_RAW, AF_INET), ("raw6", IPPROTO_RAW, AF_INET6),
    ("icmp", IPPROTO_ICMP, AF_INET), ("icmp6", IPPROTO_ICMPV6, AF_INET6),
)
_FILE_OF = {(proto, family): name for name, proto, family in PROC_NET}
_PING = PROC_NET[-2:]

PORT_PROTOS = frozenset((IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE))
ICMP_PROTOS = frozenset((IPPROTO_ICMP, IPPROTO_ICMPV6))
WILDCARDS = frozenset(("0.0.0.0", "::"))
_WILD = {AF_INET: ("0.0.0.0", "::"), AF_INET6: ("::",)}

# CtEntry is a tuple: the fields lookup_both reads, in one C call
_TUPLES = operator.itemgetter(*[FIELDS.index(n) for n in (
    "key", "family", "l4proto", "src", "dst", "sport", "dport",
    "reply_src", "reply_dst", "reply_sport", "reply_dport")])

# read caps, bytes
NET_CAP = 64 << 20          # a /proc/net table (~150 bytes a socket)
COMM_CAP = 64
CMDLINE_CAP = 4096
STATUS_CAP = 16384
ADDR_CAP = 1 << 20          # if_inet6, fib_trie
TASK_COMM_LEN = 16


class ProcInfo:
    """A process as shown: ``pid`` (int), ``name`` and ``user`` (sanitized
    text; user is the name, else the uid as text, else None)."""

    __slots__ = ("pid", "name", "user")

    def __init__(self, pid, name, user):
        self.pid = pid
        self.name = name
        self.user = user

    def __eq__(self, other):
        return (isinstance(other, ProcInfo)
                and (self.pid, self.name, self.user) == (other.pid, other.name, other.user))

    def __hash__(self):
        return hash((self.pid, self.name, self.user))

    def __repr__(self):
        return "ProcInfo(pid=%r, name=%r, user=%r)" % (self.pid, self.name, self.user)


# Neither end of the flow is on this host (a router's flow).  Test with ``is``.
FORWARDED = ProcInfo(None, "forwarded", None)


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


class _Pid:
    __slots__ = ("nfds", "inodes")

    def __init__(self, nfds, inodes):
        self.nfds = nfds            # st_size of /proc/PID/fd when scanned
        self.inodes = inodes        # socket inodes it held then (tuple)


# --- pure readers of /proc text -----------------------------------------------------

def _hex_address(h):
    """/proc/net hex (32-bit words in host order) -> address text."""
    if len(h) == 8:
        return sockdiag.address_text(struct.pack("=I", int(h, 16)))
    if len(h) == 32:
        return sockdiag.address_text(struct.pack(
            "=IIII", int(h[0:8], 16), int(h[8:16], 16), int(h[16:24], 16), int(h[24:32], 16)))
    raise ValueError("address of %d hex digits" % len(h))


class _HexText(dict):
    """/proc/net hex address -> text, memoised and bounded."""

    __slots__ = ()
    LIMIT = 65536

    def __missing__(self, h):
        if len(self) >= self.LIMIT:
            self.clear()
        text = self[h] = _hex_address(h)
        return text


def parse_proc_net(data, proto, out, cache=None):
    """Append the socket records (``sockdiag.SOCK_FIELDS``) of one
    /proc/net/{tcp,udp,udplite,raw,icmp}[6] text (bytes) to ``out``.

    Pure.  The first line is the header; a line that does not parse (odd
    contents) is skipped, and so is a last line without its newline (cut by
    the read cap: its inode could be cut short).  Returns the number of
    lines skipped.
    """
    if cache is None:
        cache = _HexText()
    append = out.append
    bad = 0
    lines = data.split(b"\n")
    lines.pop()                     # after the last newline: empty, or a cut line
    for line in lines[1:]:
        f = line.split()
        if len(f) < 10:
            if f:
                bad += 1
            continue
        try:
            la, _, lp = f[1].partition(b":")
            ra, _, rp = f[2].partition(b":")
            append((proto, int(f[3], 16), cache[la], int(lp, 16), cache[ra], int(rp, 16),
                    int(f[7]), int(f[9])))
        except (ValueError, OSError):
            bad += 1
    return bad


def parse_if_inet6(data):
    """Addresses of /proc/net/if_inet6 text (32 hex digits, network order)."""
    out = set()
    for line in data.split(b"\n"):
        f = line.split()
        if f and len(f[0]) == 32:
            try:
                out.add(sockdiag.address_text(bytes.fromhex(f[0].decode("ascii"))))
            except (ValueError, UnicodeDecodeError):
                pass
    return out


def parse_fib_trie(data):
    """IPv4 addresses of this host from /proc/net/fib_trie text: each
    ``|-- A.B.C.D`` followed by a ``/32 host LOCAL`` line."""
    out = set()
    last = None
    for line in data.split(b"\n"):
        s = line.strip()
        if s.startswith(b"|-- "):
            last = s[4:]
        elif last is not None and s == b"/32 host LOCAL":
            try:
                out.add(socket.inet_ntop(socket.AF_INET, socket.inet_pton(
                    socket.AF_INET, last.decode("ascii"))))
            except (OSError, ValueError, UnicodeDecodeError):
                pass
    return out


def normalize_addresses(addresses):
    """Address text (or objects whose str() is one, "/prefix" allowed) ->
    frozenset of the text inet_ntop writes, IPv4-mapped as IPv4."""
    out = set()
    for a in addresses or ():
        text = str(a).split("/", 1)[0].split("%", 1)[0]
        family = socket.AF_INET6 if ":" in text else socket.AF_INET
        try:
            out.add(sockdiag.address_text(socket.inet_pton(family, text)))
        except (OSError, ValueError):
            pass
    return frozenset(out)


def _read(path, cap):
    """Up to ``cap`` bytes of a file, in chunks (a /proc/net table), or None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        chunks = []
        n = 0
        while n < cap:
            b = os.read(fd, min(1 << 18, cap - n))
            if not b:
                break
            chunks.append(b)
            n += len(b)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _read_small(path, cap):
    """One read of a small /proc file (comm, status, cmdline), or None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, cap)
    except OSError:
        return None
    finally:
        os.close(fd)


def fallback_local_addresses(proc_root="/proc"):
    """This host's addresses without netlink: /proc/net/if_inet6 (IPv6) and
    the /32 host LOCAL entries of /proc/net/fib_trie (IPv4)."""
    out = set()
    data = _read(os.path.join(proc_root, "net", "if_inet6"), ADDR_CAP)
    if data:
        out |= parse_if_inet6(data)
    data = _read(os.path.join(proc_root, "net", "fib_trie"), ADDR_CAP)
    if data:
        out |= parse_fib_trie(data)
    return out


def _pwd_name(uid):
    try:
        import pwd
    except ImportError:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError, ValueError):
        return None


# --- the map ------------------------------------------------------------------------

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
    """

    def __init__(self, proc_root="/proc", local_addresses=None, clock=time.monotonic,
                 sockets="auto", user_name=None, retry_interval=2.0, local_interval=5.0):
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
        self._user_name = user_name or _pwd_name
        self.retry_interval = retry_interval
        self.local_interval = local_interval
        self.stats = Stats()
        self._exact = {}        # (proto, laddr, lport, raddr, rport) -> inode
        self._bound = {}        # (proto, laddr, lport) -> inode: unconnected, listening
        self._live = set()      # inodes in the table
        self._owners = {}       # inode -> pid (every socket link seen in a scan)
        self._pids = {}         # pid -> _Pid
        self._info = {}         # pid -> ProcInfo
        self._users = {}        # uid -> user text
        self._missed = set()    # inodes a full pass could not find
        self._last_pass = None
        self._last_full = None
        self._memo = {}         # flow key -> (orig, reply) last found
        self._tick = {}         # flow key -> (orig, reply) this tick
        self._local = frozenset()
        self._local_base = frozenset()
        self._local_at = None
        self._diag = None       # the sock_diag socket, opened on first use
        self._diag_off = set()  # (family, proto) read from /proc/net instead
        self._hex = _HexText()
        self._text4 = sockdiag.AddressText(True)
        self._text6 = sockdiag.AddressText(False)

    # -- once per tick ------------------------------------------------------------
    def refresh(self):
        """Read the socket table; resolve inodes not seen before to PIDs."""
        clock = self._clock
        t0 = clock()
        st = self.stats = Stats()
        socks = self._read_sockets(st)
        st.socket_seconds = clock() - t0
        exact = {}
        bound = {}
        live = set()
        seen_local = set()
        for proto, state, la, lp, ra, rp, _uid, ino in socks:
            if not ino:
                continue
            live.add(ino)
            if la not in WILDCARDS:
                seen_local.add(la)
            if proto == IPPROTO_RAW:
                proto, lp, rp = lp, None, None      # a raw socket's port is its protocol
            if ra in WILDCARDS and not rp:          # unconnected
                if proto == IPPROTO_TCP and state != TCP_LISTEN:
                    continue                        # bound, neither listening nor connected
                bound.setdefault((proto, la, lp), ino)
            else:
                exact[(proto, la, lp, ra, rp)] = ino
        self._exact, self._bound, self._live = exact, bound, live
        self._tick = {}
        st.sockets = len(live)
        now = clock()
        self._refresh_local(now, seen_local)
        owners = self._owners
        pending = {ino for ino in live if ino not in owners}
        st.unknown = len(pending)
        self._missed &= pending
        fresh = not pending <= self._missed
        if fresh or (pending and (self._last_pass is None
                                  or now - self._last_pass >= self.retry_interval)):
            self._last_pass = now
            self._pass(pending, now, st)
        st.unresolved = len(pending)
        st.seconds = clock() - t0

    def retain(self, keys):
        """Forget the flows whose key is not in ``keys`` (a set, a
        FlowTable: anything that answers ``in``)."""
        memo = self._memo
        for key in [k for k in memo if k not in keys]:
            del memo[key]

    def forget(self, keys):
        """Forget these flows (their keys)."""
        for key in keys:
            self._memo.pop(key, None)

    def close(self):
        if self._diag is not None:
            self._diag.close()
            self._diag = None

    # -- per flow -----------------------------------------------------------------
    def lookup(self, entry):
        """The process of a flow's local end - the originating one when both
        are local -, FORWARDED, or None (not found)."""
        orig, reply = self.lookup_both(entry)
        return orig if orig is not None else reply

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
        if key is not None:
            hit = self._tick.get(key)
            if hit is not None:
                return hit
        wild = _WILD.get(family)
        if wild is None:
            return (None, None)
        if proto in PORT_PROTOS:
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
        orig = self._side(proto, src, sport, dst, dport, orig_local, wild, True)
        reply = (None if proto in ICMP_PROTOS    # the kernel answers echo requests
                 else self._side(proto, rsrc, rsport, rdst, rdport, reply_local, wild, False))
        if key is not None:
            memo = self._memo.get(key)
            if memo is not None:
                orig = orig if orig is not None else memo[0]
                reply = reply if reply is not None else memo[1]
            if (orig is not None or reply is not None) and (
                    memo is None or memo[0] is not orig or memo[1] is not reply):
                self._memo[key] = (orig, reply)
        if orig is None and reply is None and not orig_local and not reply_local:
            result = (FORWARDED, FORWARDED)
        else:
            result = (orig, reply)
        if key is not None:
            self._tick[key] = result
        return result

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
        if ino is None and lp is not None and proto not in PORT_PROTOS:
            ino = (exact.get((proto, la, None, ra, None))         # ICMP: a raw socket
                   or self._unconnected(proto, la, None, local, wild))
        if ino is None:
            return None
        pid = self._owners.get(ino)
        if pid is None:
            return None
        info = self._info.get(pid)
        if info is None:
            info = self._read_info(pid, None)
            if info is not None:
                self._info[pid] = info
        return info

    def _unconnected(self, proto, la, lp, local, wild):
        bound = self._bound
        ino = bound.get((proto, la, lp))
        if ino is None and local:           # a wildcard socket, for this host's addresses
            for w in wild:
                ino = bound.get((proto, w, lp))
                if ino is not None:
                    break
        return ino

    # -- the socket table ---------------------------------------------------------
    def _read_sockets(self, st):
        out = []
        off = []
        if self.use_diag:
            sock = self._diag_socket()
            for family in sockdiag.FAMILIES:
                for proto in sockdiag.PROTOCOLS:
                    if sock is not None and (family, proto) not in self._diag_off:
                        try:
                            out.extend(sockdiag.dump(sock, family, proto, text4=self._text4,
                                                     text6=self._text6))
                            continue
                        except NetlinkError:
                            self._diag_off.add((family, proto))   # no diag module for it
                        except DumpInterrupted:
                            pass                                  # /proc/net, this tick
                        except (OSError, DecodeError):
                            self.close()                          # timeout, garbage: reopen
                            sock = None
                    name = _FILE_OF[(proto, family)]
                    off.append(name)
                    self._read_proc_net(name, proto, out)
            for name, proto, _family in _PING:
                self._read_proc_net(name, proto, out)
            st.source = "sock_diag" + ("+proc(%s)" % ",".join(off) if off else "")
        else:
            for name, proto, _family in PROC_NET:
                self._read_proc_net(name, proto, out)
            st.source = "proc"
        return out

    def _diag_socket(self):
        if self._diag is None:
            try:
                self._diag = sockdiag.open_socket()
            except OSError:
                return None                 # no sock_diag: /proc/net this tick, retried next
        return self._diag

    def _read_proc_net(self, name, proto, out):
        data = _read(os.path.join(self.proc_root, "net", name), NET_CAP)
        if data:
            parse_proc_net(data, proto, out, self._hex)

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

    # -- inodes to PIDs -----------------------------------------------------------
    def _pass(self, pending, now, st):
        """One pass over /proc for the inodes in ``pending`` (found ones are
        removed from it): new and changed PIDs, then, if fresh inodes remain
        and the interval allows, every PID."""
        root = self.proc_root
        try:
            names = os.listdir(root)
        except OSError:
            return
        pids = [int(n) for n in names if n.isdigit()]
        pids.sort(reverse=True)             # new PIDs are likely the highest: found first
        present = set(pids)
        for pid in [p for p in self._pids if p not in present]:
            self._drop(pid, pending)
        known = self._pids
        skipped = []
        fd_count = self._fd_count
        for pid in pids:
            if not pending:
                break
            try:
                nfds = fd_count("%s/%d/fd" % (root, pid))
            except OSError:
                continue                    # gone, or not ours to see
            st.pids_stat += 1
            old = known.get(pid)
            if old is not None and old.nfds == nfds:
                skipped.append((pid, nfds))
                continue
            self._scan(pid, nfds, pending, st)
        if pending and not pending <= self._missed and (
                self._last_full is None or now - self._last_full >= self.retry_interval):
            self._last_full = now
            st.full_scan = True
            for pid, nfds in skipped:
                if not pending:
                    break
                self._scan(pid, nfds, pending, st)
            self._missed = set(pending)

    @staticmethod
    def _fd_count(path):
        """Open descriptors of a /proc/PID/fd (Linux 6.2+; 0 before).  A seam:
        a fake /proc in a temp dir has no such sizes."""
        return os.stat(path).st_size

    def _drop(self, pid, pending):
        old = self._pids.pop(pid)
        self._info.pop(pid, None)
        owners = self._owners
        live = self._live
        for ino in old.inodes:
            if owners.get(ino) == pid:
                del owners[ino]
                if ino in live:
                    pending.add(ino)        # shared with another process, maybe

    def _scan(self, pid, nfds, pending, st):
        path = "%s/%d/fd" % (self.proc_root, pid)
        try:
            names = os.listdir(path)
        except OSError:
            names = ()                      # gone or not ours: remember the count
        st.pids_scanned += 1
        st.fds += len(names)
        readlink = os.readlink
        inodes = []
        for name in names:
            try:
                link = readlink(path + "/" + name)
            except OSError:
                continue
            if link.startswith("socket:[") and link.endswith("]"):
                try:
                    inodes.append(int(link[8:-1]))
                except ValueError:
                    pass
        owners = self._owners
        old = self._pids.get(pid)
        if old is not None:
            for ino in old.inodes:
                if owners.get(ino) == pid:
                    del owners[ino]
        self._info.pop(pid, None)
        live = self._live
        mine = False
        for ino in inodes:
            if owners.setdefault(ino, pid) == pid and ino in live:
                mine = True
                pending.discard(ino)
        self._pids[pid] = _Pid(nfds, tuple(inodes))
        if mine:
            info = self._read_info(pid, st)
            if info is not None:
                self._info[pid] = info

    def _read_info(self, pid, st):
        """ProcInfo from /proc/PID/{comm,cmdline,status}, None if gone."""
        base = "%s/%d/" % (self.proc_root, pid)
        comm = _read_small(base + "comm", COMM_CAP)
        if comm is None:
            return None
        if st is not None:
            st.info_reads += 1
        if comm.endswith(b"\n"):
            comm = comm[:-1]
        name = comm
        if len(comm) >= TASK_COMM_LEN - 1:
            cmdline = _read_small(base + "cmdline", CMDLINE_CAP)
            if cmdline:
                argv0 = cmdline.split(b"\0", 1)[0].rsplit(b"/", 1)[-1]
                if len(argv0) > len(comm) and argv0.startswith(comm):
                    name = argv0
        return ProcInfo(pid, sanitize(name.decode("utf-8", "replace")),
                        self._user(_status_uid(_read_small(base + "status", STATUS_CAP))))

    def _user(self, uid):
        if uid is None:
            return None
        user = self._users.get(uid)
        if user is None:
            name = self._user_name(uid)
            user = sanitize(name, 32) if name else str(uid)
            if len(self._users) < 4096:
                self._users[uid] = user
        return user


def _status_uid(status):
    """The real uid on the Uid: line of /proc/PID/status text, or None."""
    if not status:
        return None
    at = status.find(b"\nUid:")
    if at < 0:
        return None
    fields = status[at + 5:at + 200].split(b"\n", 1)[0].split()
    try:
        return int(fields[0])
    except (IndexError, ValueError):
        return None
