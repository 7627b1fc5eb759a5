"""Pure readers of /proc text and capped file reads, for the process
enricher (``enrich.process``): socket tables (/proc/net/{tcp,udp,...}),
this host's addresses (if_inet6, fib_trie) and a process's comm, cmdline
and status.  Everything under /proc is untrusted: a line that does not
parse is skipped, reads are capped, a vanished file is None.
"""

import os
import _socket as socket  # not socket.py (see netlink/socket.py)
import struct

from ..memo import Memo
from ..netlink import sockdiag
from ..netlink.uapi import (
    AF_INET, AF_INET6, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_RAW, IPPROTO_TCP, IPPROTO_UDP,
    IPPROTO_UDPLITE,
)

__all__ = ["PROC_NET", "parse_proc_net", "parse_if_inet6", "parse_fib_trie",
           "normalize_addresses", "fallback_local_addresses", "hex_text", "read_file",
           "read_small", "pwd_name", "status_uid"]

# /proc/net/NAME -> (protocol, family).  The last two are ping sockets.
PROC_NET = (
    ("tcp", IPPROTO_TCP, AF_INET), ("tcp6", IPPROTO_TCP, AF_INET6),
    ("udp", IPPROTO_UDP, AF_INET), ("udp6", IPPROTO_UDP, AF_INET6),
    ("udplite", IPPROTO_UDPLITE, AF_INET), ("udplite6", IPPROTO_UDPLITE, AF_INET6),
    ("raw", IPPROTO_RAW, AF_INET), ("raw6", IPPROTO_RAW, AF_INET6),
    ("icmp", IPPROTO_ICMP, AF_INET), ("icmp6", IPPROTO_ICMPV6, AF_INET6),
)
FILE_OF = {(proto, family): name for name, proto, family in PROC_NET}
PING = PROC_NET[-2:]          # ping sockets: /proc/net only

# read caps, bytes
NET_CAP = 64 << 20          # a /proc/net table (~150 bytes a socket)
COMM_CAP = 64
CMDLINE_CAP = 4096
STATUS_CAP = 16384
ADDR_CAP = 1 << 20          # if_inet6, fib_trie
TASK_COMM_LEN = 16


def _hex_address(h):
    """/proc/net hex (32-bit words in host order) -> address text."""
    if len(h) == 8:
        return sockdiag.address_text(struct.pack("=I", int(h, 16)))
    if len(h) == 32:
        return sockdiag.address_text(struct.pack(
            "=IIII", int(h[0:8], 16), int(h[8:16], 16), int(h[16:24], 16), int(h[24:32], 16)))
    raise ValueError("address of %d hex digits" % len(h))


def hex_text():
    """/proc/net hex address -> text, memoised and bounded."""
    return Memo(65536, _hex_address)


def parse_proc_net(data, proto, out, cache=None):
    """Append the socket records (``sockdiag.SOCK_FIELDS``) of one
    /proc/net/{tcp,udp,udplite,raw,icmp}[6] text (bytes) to ``out``.

    Pure.  The first line is the header; a line that does not parse (odd
    contents) is skipped, and so is a last line without its newline (cut by
    the read cap: its inode could be cut short).  Returns the number of
    lines skipped.
    """
    if cache is None:
        cache = hex_text()
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


def read_file(path, cap):
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


def read_small(path, cap):
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
    data = read_file(os.path.join(proc_root, "net", "if_inet6"), ADDR_CAP)
    if data:
        out |= parse_if_inet6(data)
    data = read_file(os.path.join(proc_root, "net", "fib_trie"), ADDR_CAP)
    if data:
        out |= parse_fib_trie(data)
    return out


def pwd_name(uid):
    try:
        import pwd
    except ImportError:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError, ValueError):
        return None


def status_uid(status):
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



def process_name(base):
    """The name of the process at ``base`` ("/proc/PID/") as bytes: its
    comm, or argv[0]'s basename where that extends a comm the kernel cut
    to 15 bytes; None if the process is gone."""
    comm = read_small(base + "comm", COMM_CAP)
    if comm is None:
        return None
    if comm.endswith(b"\n"):
        comm = comm[:-1]
    name = comm
    if len(comm) >= TASK_COMM_LEN - 1:
        cmdline = read_small(base + "cmdline", CMDLINE_CAP)
        if cmdline:
            argv0 = cmdline.split(b"\0", 1)[0].rsplit(b"/", 1)[-1]
            if len(argv0) > len(comm) and argv0.startswith(comm):
                name = argv0
    return name
