"""Addresses no GeoIP database places - private, loopback, link-local,
CGNAT, multicast, unspecified, reserved - get a label record without a
lookup: country code ``--`` and the label as the country name.  And the
record type every GeoIP answer is (``GeoRecord``)."""

import ipaddress
from collections import namedtuple

__all__ = ["GeoRecord", "NO_CODE", "label", "parse_address", "special", "label_record"]

NO_CODE = "--"

GeoRecord = namedtuple("GeoRecord", "country country_name city asn org special")
GeoRecord.__doc__ = """What flowtop knows of an address's place.

``country``: ISO 3166 code ("SE"), or ``--`` for a special range;
``country_name``: English name, or the label of the special range
("private", "loopback", ...); ``city``; ``asn`` (int); ``org`` (the AS
organisation); ``special``: the label for a special range, else None.
Any field but ``special`` may be None; strings are sanitized."""


def _ranges(specs):
    out = []
    for net, lbl in specs:
        n = ipaddress.ip_network(net)
        out.append((int(n.network_address), int(n.broadcast_address), lbl))
    return tuple(out)


# First match wins.  Our own table, not ipaddress's is_private & co., whose
# answers changed between Python releases.
_V4_SPECIAL = _ranges((
    ("0.0.0.0/32", "unspecified"),
    ("0.0.0.0/8", "reserved"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "cgnat"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "reserved"),           # TEST-NET-1
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved"),          # benchmarking
    ("198.51.100.0/24", "reserved"),        # TEST-NET-2
    ("203.0.113.0/24", "reserved"),         # TEST-NET-3
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
))
_V6_SPECIAL = _ranges((
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fc00::/7", "private"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
    ("2001:db8::/32", "reserved"),          # documentation
    ("3fff::/20", "reserved"),              # documentation (RFC 9637)
    ("2001:2::/48", "reserved"),            # benchmarking
))
_V6_GLOBAL_LO = int(ipaddress.ip_address("2000::"))
_V6_GLOBAL_HI = int(ipaddress.ip_address("3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))
_MAPPED = int(ipaddress.ip_address("::ffff:0:0"))         # ::ffff:0:0/96
_NAT64 = int(ipaddress.ip_address("64:ff9b::"))           # 64:ff9b::/96


def parse_address(addr):
    """ipaddress object of ``addr`` (str or ipaddress), IPv4-mapped and
    NAT64 well-known-prefix IPv6 addresses unwrapped to IPv4; None if not an
    address."""
    if isinstance(addr, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        ip = addr
    else:
        try:
            ip = ipaddress.ip_address(str(addr).split("%", 1)[0])
        except ValueError:
            return None
    if ip.version == 6:
        n = int(ip)
        if n >> 32 in (_MAPPED >> 32, _NAT64 >> 32):
            return ipaddress.IPv4Address(n & 0xFFFFFFFF)
    return ip


def special(ip):
    n = int(ip)
    if ip.version == 4:
        for lo, hi, lbl in _V4_SPECIAL:
            if lo <= n <= hi:
                return lbl
        return None
    for lo, hi, lbl in _V6_SPECIAL:
        if lo <= n <= hi:
            return lbl
    if not _V6_GLOBAL_LO <= n <= _V6_GLOBAL_HI:
        return "reserved"               # outside 2000::/3: not global unicast
    return None


def label(addr):
    """The label of a special address ("private", "loopback", "link-local",
    "cgnat", "multicast", "unspecified", "broadcast", "reserved"), "invalid"
    for a string that is no address, or None for an address a GeoIP
    database may know."""
    ip = parse_address(addr)
    if ip is None:
        return "invalid"
    return special(ip)


_LABELS = {}


def label_record(lbl):
    rec = _LABELS.get(lbl)
    if rec is None:
        rec = _LABELS[lbl] = GeoRecord(NO_CODE, lbl, None, None, None, lbl)
    return rec
