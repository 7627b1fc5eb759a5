"""This namespace's socket table, for the process enricher: read once per
tick with sock_diag, falling back per family and protocol to /proc/net, and
indexed for matching flows.

sock_diag is ~3x cheaper than /proc/net at 10k sockets (bench/README.md,
"process"); /proc/net stays the fallback because sock_diag's modules are
optional (OpenWrt packages inet_diag, udp_diag, raw_diag apart): an error
answer switches that pair to its /proc/net file for good.  Ping sockets
always come from /proc/net/icmp{,6}; a ``proc_root`` other than /proc
(tests) gives everything from its net/ files.
"""

import os
from itertools import compress, repeat
from operator import contains, is_

from ..model import ICMP_PROTOS
from ..netlink import sockdiag
from ..netlink.ctnetlink import FIELDS
from ..netlink.errors import DecodeError, DumpInterrupted, NetlinkError
from ..netlink.uapi import AF_INET, AF_INET6, IPPROTO_RAW, IPPROTO_TCP, TCP_LISTEN
from .answers import code
from .procfs import FILE_OF, NET_CAP, PING, PROC_NET, hex_text, parse_proc_net, read_file

__all__ = ["SocketTable", "WILDCARDS"]

WILDCARDS = frozenset(("0.0.0.0", "::"))


class SocketTable:
    """The sockets of the last ``read``: ``exact`` (proto, laddr, lport,
    raddr, rport) -> inode of connected ones, ``bound`` (proto, laddr,
    lport) -> inode of unconnected and listening ones, ``live`` the set of
    inodes, ``seen_local`` the local addresses they are bound to;
    ``changed`` the ``answers.code(proto, lport)`` of the sockets that
    came, went or changed inode since the read before (the flows to ask
    again)."""

    def __init__(self, proc_root, use_diag):
        self.proc_root = proc_root
        self.use_diag = use_diag
        self.exact = {}
        self.bound = {}
        self.live = set()
        self.seen_local = set()
        self.changed = set()
        self.source = ""        # "sock_diag", "proc" or "sock_diag+proc(raw,raw6)"
        self._diag = None       # the sock_diag socket, opened on first use
        self._diag_off = set()  # (family, proto) read from /proc/net instead
        self._hex = hex_text()
        self._text4 = sockdiag.AddressText(True)
        self._text6 = sockdiag.AddressText(False)

    def read(self):
        """Read the table and index it."""
        exact = {}
        bound = {}
        live = set()
        seen_local = set()
        for proto, state, la, lp, ra, rp, _uid, ino in self._records():
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
        # set operations in C over both reads: ~1 ms per 10k sockets
        changed = {code(k[0], k[2]) for k, _ino in self.exact.items() ^ exact.items()}
        changed.update(code(k[0], k[2]) for k, _ino in self.bound.items() ^ bound.items())
        self.changed = changed
        self.exact, self.bound, self.live, self.seen_local = exact, bound, live, seen_local

    def close(self):
        if self._diag is not None:
            self._diag.close()
            self._diag = None

    def _records(self):
        out = []
        if not self.use_diag:
            for name, proto, _family in PROC_NET:
                self._read_proc_net(name, proto, out)
            self.source = "proc"
            return out
        off = []
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
                name = FILE_OF[(proto, family)]
                off.append(name)
                self._read_proc_net(name, proto, out)
        for name, proto, _family in PING:
            self._read_proc_net(name, proto, out)
        self.source = "sock_diag" + ("+proc(%s)" % ",".join(off) if off else "")
        return out

    def _diag_socket(self):
        if self._diag is None:
            try:
                self._diag = sockdiag.open_socket()
            except OSError:
                return None                 # no sock_diag: /proc/net this tick, retried next
        return self._diag

    def _read_proc_net(self, name, proto, out):
        data = read_file(os.path.join(self.proc_root, "net", name), NET_CAP)
        if data:
            parse_proc_net(data, proto, out, self._hex)


# the columns asked_of reads (``fields``: a batch's, by FIELDS index)
_FAMILY, _PROTO, _SPORT, _RSRC, _RSPORT = (FIELDS.index(n) for n in (
    "family", "l4proto", "sport", "reply_src", "reply_sport"))


def asked_of(ports, fields, n):
    """The indices (a set) of the ``n`` flows (``fields``: their columns by
    FIELDS index) a socket of ``ports`` (``socket_ports``) may match: on a
    socket's (protocol, port) at either end, without a reply end, ICMP, raw
    sockets' protocols, families other than IP.  The others' process
    answer is their ends' locality alone (``ProcessMap._unmatched``)."""
    protos, sports = fields[_PROTO], fields[_SPORT]
    backs, bports = fields[_RSRC], fields[_RSPORT]
    asked = set(compress(range(n), map(contains, repeat(ports, n), zip(protos, sports))))
    asked.update(compress(range(n), map(contains, repeat(ports, n), zip(protos, bports))))
    if None in backs or None in bports:     # no reply end (ICMP's ports): asked
        asked.update(compress(range(n), map(is_, backs, repeat(None))))
        asked.update(compress(range(n), map(is_, bports, repeat(None))))
    # ICMP (its echo id), a raw socket's protocols, other families: as lookup_both
    # does them (GRE or SCTP without a raw socket: only their ends' locality)
    odd = {p for p in set(protos) if p in ICMP_PROTOS or (p, None) in ports}
    if odd:
        asked.update(compress(range(n), map(odd.__contains__, protos)))
    odd = set(fields[_FAMILY]).difference((AF_INET, AF_INET6))
    if odd:
        asked.update(compress(range(n), map(odd.__contains__, fields[_FAMILY])))
    return asked
