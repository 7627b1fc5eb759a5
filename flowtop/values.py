"""The values a person types, checked the same way wherever they are typed
(the command line, the settings file): seconds, rates, and the names of
the views and protocol groups.  A mistake raises ValueError with the line
to show; ``optgroups`` turns it into argparse's error.
"""

# what --sort, --age and --units take (views.state's too: cli checks them here,
# without loading the view-model on a --once's way)
SORTS = ("state", "rate", "bytes", "packets", "age", "proto", "dst", "port")
AGE_FORMATS = ("human", "seconds", "none")
UNITS = ("si", "iec", "raw")
VIEWS = ("flows", "process", "host", "country", "iface", "device")
# the views' names on screen and their key columns' titles: here, not in views.aggregate,
# so the live view starts without the aggregate views' modules (4 M instructions)
TITLES = {"flows": "Flows", "process": "Processes", "host": "Hosts", "country": "Countries",
          "iface": "Interfaces", "device": "Devices"}
KEY_TITLES = {"process": "PROCESS", "host": "REMOTE HOST", "country": "COUNTRY",
              "iface": "INTERFACE", "device": "DEVICE"}

PROTOCOL_FLAGS = (
    # dest, short, long, protocols, help
    ("tcp", "-T", "--tcp", ("tcp",), "show TCP flows"),
    ("udp", "-U", "--udp", ("udp", "udplite"), "show UDP and UDP-lite flows"),
    ("dccp", "-D", "--dccp", ("dccp",), "show DCCP flows"),
    ("icmp", "-I", "--icmp", ("icmp", "icmpv6"), "show ICMP and ICMPv6 flows"),
    ("sctp", "-S", "--sctp", ("sctp",), "show SCTP flows"),
)

_UNITS = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12,
          "ki": 1024, "mi": 1024 ** 2, "gi": 1024 ** 3, "ti": 1024 ** 4}


def seconds(text):
    """'2.5' -> 2.5: more than 0, at most a day."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError("not a number: %r" % text) from None
    if not value > 0 or value > 86400:
        raise ValueError("must be more than 0 and at most 86400 seconds: %r" % text)
    return value


def rate(text):
    """'10k', '1.5M', '2Mi', '800' -> a number (per second); units SI or IEC."""
    t = text.strip().lower()
    for suffix in ("b/s", "bps", "/s", "b"):
        if t.endswith(suffix) and len(t) > len(suffix):
            t = t[:-len(suffix)]
            break
    num = t.rstrip("kmgti")
    unit = t[len(num):]
    try:
        value = float(num) * _UNITS[unit]
    except (ValueError, KeyError):
        raise ValueError("not a rate: %r (e.g. 800, 10k, 1.5M, 2Mi)" % text) from None
    if not value >= 0 or value == float("inf"):
        raise ValueError("not a rate: %r" % text)
    return value
