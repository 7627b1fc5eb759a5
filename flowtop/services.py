"""Port -> service name (``443`` -> ``https``).

Names come from netsniff-ng-format files ("port, name" lines): first
``/etc/flowtop/{tcp,udp}.conf`` when present, else the ones shipped in the
package (``resources.get_data``, so a zipapp works), then /etc/services for
ports neither lists - read once a protocol into a table: getservbyport rereads the
file on every call (~25 us), far too slow for 64k ports.  A conf file is
input like any other: names pass ``text.sanitize``.
"""

from . import resources
from .memo import Memo
from .netlink.uapi import (
    IPPROTO_DCCP, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE,
)
from .text import sanitize

ETC_DIR = "/etc/flowtop"
# Which file names a protocol's ports: SCTP and DCCP share TCP's port names.
_CONF_OF = {IPPROTO_TCP: "tcp", IPPROTO_SCTP: "tcp", IPPROTO_DCCP: "tcp", IPPROTO_UDP: "udp",
            IPPROTO_UDPLITE: "udp"}
MAX_CONF = 1 << 20


def parse_conf(text):
    """'port, name' lines -> {port: name}; comments (#) and junk skipped."""
    out = {}
    plain = text.isascii()      # then a short printable name is its own sanitize
    for line in text.splitlines():
        if "#" in line:
            line = line.split("#", 1)[0]
        port, comma, name = line.partition(",")
        if not comma:
            continue
        try:
            port = int(port)
        except ValueError:
            continue
        name = name.strip()
        if not (plain and len(name) <= 16 and name.isprintable()):
            name = sanitize(name, 16)
        if 0 < port < 65536 and name and port not in out:
            out[port] = name
    return out


_PROTOS = ("tcp", "udp", "sctp", "dccp")
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME = _ALNUM | frozenset("_.+-")


def parse_services(text, protos=_PROTOS):
    r"""services(5) text -> {proto: {port: first name}} of ``protos``: lines that
    match ``NAME\s+PORT/PROTO\b`` (NAME of ``[A-Za-z0-9][\w.+-]*``), read without
    ``re`` (whose import and this pattern were ~0.3 s of a mipsel start), a line
    in one pass of this loop (a call a line was 13.7 k instructions, 4.9 M for
    Debian's 361 lines on the live view's way to its first rows; 3.8 M now, and
    1.1 M for its 95 udp lines alone: a line without "/udp" is skipped in C)."""
    out = {}
    marker = "/" + protos[0] if len(protos) == 1 else "/"
    for line in text.splitlines():
        if marker not in line:                      # no PORT/PROTO: comments, blanks
            continue
        parts = line.split("#", 1)[0].split(None, 1)
        if len(parts) < 2:
            continue
        name, rest = parts
        if name[0] not in _ALNUM or not (
                _NAME.issuperset(name) if name.isascii()
                else all(c.isalnum() or c in "_.+-" for c in name)):    # \w is Unicode's
            continue
        digits, slash, after = rest.partition("/")
        if not slash or not digits.isdecimal():     # \d: Unicode decimal digits
            continue
        proto = after[:3]           # a whole word: "tcp" but not "tcpx"
        if proto not in protos:
            proto = after[:4]
            if proto not in protos:
                continue
        follow = after[len(proto):len(proto) + 1]
        port = int(digits)
        if follow.isalnum() or follow == "_" or not 0 < port < 65536:
            continue
        table = out.get(proto)
        if table is None:
            table = out[proto] = {}
        if port not in table:
            table[port] = name if len(name) <= 16 and name.isascii() else sanitize(name, 16)
    return out


def load_system(path="/etc/services", protos=_PROTOS):
    try:
        with open(path, "rb") as f:
            return parse_services(f.read(MAX_CONF).decode("utf-8", "replace"), protos)
    except OSError:
        return {}


def load_conf(proto, etc_dir=ETC_DIR):
    """The port table of ``proto`` ("tcp"/"udp"): /etc/flowtop's file when
    readable, else the packaged one, else empty."""
    try:
        with open("%s/%s.conf" % (etc_dir, proto), "rb") as f:
            return parse_conf(f.read(MAX_CONF).decode("utf-8", "replace"))
    except OSError:
        pass
    try:
        data = resources.get_data("conf/%s.conf" % proto)
    except OSError:
        data = None
    return parse_conf(data.decode("utf-8", "replace")) if data else {}


class Services:
    """Names ports; the side of a flow with a known name (or the lower
    port) is the service.  Tables load on first use."""

    def __init__(self, etc_dir=ETC_DIR, system=None, load=load_conf):
        self._etc = etc_dir
        self._system_fn = system    # -> every protocol's table; None: /etc/services'
        self._whole = None          # what it gave
        self._system = {}           # proto -> {port: name}, read on first use
        self._load = load
        self._tables = {}
        self._cache = Memo(65536)

    def name(self, port, l4proto):
        if port is None:
            return None
        key = (port, l4proto)
        cache = self._cache             # one read: forget() may swap it meanwhile
        if key in cache:
            return cache[key]
        proto = _CONF_OF.get(l4proto)
        name = None
        if proto is not None:
            table = self._tables.get(proto)
            if table is None:
                table = self._tables[proto] = self._load(proto, self._etc)
            name = table.get(port)
            if name is None:
                system = self._system.get(proto)
                if system is None:
                    system = self._system_table(proto)
                name = system.get(port)
        return cache.put(key, name)

    def _system_table(self, proto):
        """The services database's {port: name} of ``proto``: /etc/services read for
        that protocol alone (its other lines skipped), or the ``system`` table's."""
        table = self._system.get(proto)
        if table is None:
            if self._system_fn is None:
                table = load_system(protos=(proto,)).get(proto, {})
            else:
                if self._whole is None:
                    self._whole = self._system_fn()
                table = self._whole.get(proto, {})
            self._system[proto] = table
        return table

    def cached(self):
        return len(self._cache)

    def forget(self):
        """Empty the names asked so far (the collector's, after a flood: its
        ports' keys kept 19 of Python's 1 MiB arenas); a new one, as the screen's
        thread may be reading the old."""
        self._cache = Memo(65536)

    def names(self, l4proto):
        """Every named port of ``l4proto`` as {port: name} (conf first, then
        the system's services): for code that names flows in bulk."""
        proto = _CONF_OF.get(l4proto)
        if proto is None:
            return {}
        table = self._tables.get(proto)
        if table is None:
            table = self._tables[proto] = self._load(proto, self._etc)
        merged = dict(self._system_table(proto))
        merged.update(table)
        return merged

    def of_flow(self, sport, dport, l4proto, numeric=False):
        """Service label of a flow: the named port (destination first),
        else the lower port number."""
        if dport is None:
            return ""
        low = dport if sport is None or dport <= sport else sport
        if numeric:
            return str(low)
        for port in (dport, sport):
            name = self.name(port, l4proto)
            if name:
                return name
        return str(low)
