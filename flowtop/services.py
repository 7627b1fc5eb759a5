"""Port -> service name (``443`` -> ``https``).

Names come from netsniff-ng-format files ("port, name" lines): first
``/etc/flowtop/{tcp,udp}.conf`` when present, else the ones shipped in the
package (``resources.get_data``, so a zipapp works), then /etc/services for
ports neither lists - read once into a table: getservbyport rereads the
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
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or "," not in line:
            continue
        port, _, name = line.partition(",")
        try:
            port = int(port)
        except ValueError:
            continue
        name = sanitize(name.strip(), 16)
        if 0 < port < 65536 and name:
            out.setdefault(port, name)
    return out


_PROTOS = ("tcp", "udp", "sctp", "dccp")
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME = _ALNUM | frozenset("_.+-")


def parse_services(text):
    r"""services(5) text -> {proto: {port: first name}}: lines that match
    ``NAME\s+PORT/PROTO\b`` (NAME of ``[A-Za-z0-9][\w.+-]*``), read without
    ``re`` (whose import and this pattern were ~0.3 s of a mipsel start)."""
    out = {}
    for line in text.splitlines():
        found = _service(line.split("#", 1)[0].strip())
        if found is not None:
            name, port, proto = found
            if 0 < port < 65536:
                out.setdefault(proto, {}).setdefault(port, sanitize(name, 16))
    return out


def _service(line):
    """(name, port, proto) of one services(5) line, or None."""
    parts = line.split(None, 1)
    if len(parts) < 2 or parts[0][0] not in _ALNUM:
        return None
    name, rest = parts
    if not (_NAME.issuperset(name) if name.isascii()
            else all(c.isalnum() or c in "_.+-" for c in name)):      # \w is Unicode's
        return None
    digits, slash, after = rest.partition("/")
    if not slash or not digits.isdecimal():          # \d: Unicode decimal digits
        return None
    for proto in _PROTOS:       # a whole word: "tcp" but not "tcpx"
        if after.startswith(proto) and not (after[len(proto):len(proto) + 1].isalnum()
                                            or after[len(proto):len(proto) + 1] == "_"):
            return name, int(digits), proto
    return None


def load_system(path="/etc/services"):
    try:
        with open(path, "rb") as f:
            return parse_services(f.read(MAX_CONF).decode("utf-8", "replace"))
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

    def __init__(self, etc_dir=ETC_DIR, system=load_system, load=load_conf):
        self._etc = etc_dir
        self._system_fn = system
        self._system = None
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
                if self._system is None:
                    self._system = self._system_fn()
                name = self._system.get(proto, {}).get(port)
        return cache.put(key, name)

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
        if self._system is None:
            self._system = self._system_fn()
        table = self._tables.get(proto)
        if table is None:
            table = self._tables[proto] = self._load(proto, self._etc)
        merged = dict(self._system.get(proto, {}))
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
