"""The files that name a router's LAN devices: dnsmasq's and odhcpd's DHCP
leases and /etc/ethers, parsed into (address, MAC, name).  Every file is
untrusted (any user of the router may get a lease with any name): names
pass ``text.sanitize``, lines that do not parse are skipped, reads are
bounded.
"""

import _socket as socket  # not socket.py: its enums took 0.29 s of a mipsel start

from ..text import sanitize

DNSMASQ_LEASES = ("/tmp/dhcp.leases", "/var/lib/misc/dnsmasq.leases")
ODHCPD_LEASES = ("/tmp/hosts/odhcpd", "/tmp/odhcpd.leases")
ETHERS = ("/etc/ethers",)
MAX_FILE = 1 << 20          # bytes read of one leases file (a /16 of leases is ~4 MB: ample)
NAME_LEN = 48


# --- parsers: text -> values; every malformed line is skipped --------------------------

def _mac(text):
    """"AA-bb-CC:dd:ee:ff" -> "aa:bb:cc:dd:ee:ff", or None."""
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6:
        return None
    try:
        octets = [int(p, 16) for p in parts]
    except ValueError:
        return None
    if any(not 0 <= o <= 255 or len(p) > 2 for o, p in zip(octets, parts)):
        return None
    return ":".join("%02x" % o for o in octets)


def _ip(text):
    """Canonical address text, or None."""
    text = text.split("/")[0]
    for fam in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_ntop(fam, socket.inet_pton(fam, text))
        except (OSError, ValueError, UnicodeError):
            continue
    return None


def _name(text):
    if not text or text == "*":
        return None
    return sanitize(text, NAME_LEN) or None


def parse_dnsmasq(text):
    """dnsmasq's lease file -> [(address, mac or None, name or None)].
    IPv4 lines: ``expiry mac address name client-id``; after the
    ``duid ...`` line, IPv6 lines carry an IAID where the MAC was."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 4 or f[0] == "duid":
            continue
        addr = _ip(f[2])
        if addr is None:
            continue
        out.append((addr, _mac(f[1]), _name(f[3])))
    return out


def parse_odhcpd(text):
    """odhcpd's lease file -> [(address, None, name)]: state lines
    ``# iface duid iaid name expiry id length addr/len ...`` and the hosts
    lines ``address name [alias...]`` it writes for the resolver."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 9 and f[0] == "#":
            name = _name(f[4]) if f[4] != "-" else None
            # DHCPv4 lines say "ipv4" where the IAID goes, the MAC as the DUID
            mac = _mac(":".join(f[2][i:i + 2] for i in range(0, 12, 2))) \
                if f[3] == "ipv4" and len(f[2]) == 12 else None
            for a in f[8:]:
                addr = _ip(a)
                if addr is not None:
                    out.append((addr, mac, name))
        elif len(f) >= 2 and not f[0].startswith("#"):
            addr = _ip(f[0])
            if addr is not None:
                out.append((addr, None, _name(f[-1])))
    return out


def parse_ethers(text):
    """/etc/ethers -> ({mac: name}, {mac: address}): ``mac name-or-address``."""
    names, addrs = {}, {}
    for line in text.splitlines():
        f = line.split("#", 1)[0].split()
        if len(f) < 2:
            continue
        mac = _mac(f[0])
        if mac is None:
            continue
        addr = _ip(f[1])
        if addr is not None:
            addrs[mac] = addr
        else:
            names[mac] = _name(f[1])
    return names, addrs


def read_text(path, limit=MAX_FILE):
    """A file's first ``limit`` bytes as text ("" when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""
