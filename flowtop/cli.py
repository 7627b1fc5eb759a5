"""argv -> a frozen Options, then hand over to ``main``.

Option letters follow netsniff-ng's flowtop so its users' habits and
scripts carry over.
"""

import os
import sys

from . import __version__
from .tuples import named
from .optgroups import (
    EXPORT_DEFAULTS, EXPORT_FIELDS, OPS_DEFAULTS, OPS_FIELDS, VIEW_DEFAULTS, VIEW_FIELDS,
    add_export_options, add_ops_options, add_view_options, export_options, ops_options,
    positive_float, rate_value, view_options,
)
from .values import PROTOCOL_FLAGS, VIEWS  # noqa: F401  (cli.PROTOCOL_FLAGS, cli.VIEWS)

# argparse and views.state are imported where used: importing this module stays
# cheap (~1 ms, was 40 ms here), so run() takes Ctrl-C over before the heavy imports.

Options = named("Options", (
    "families",      # frozenset of "ipv4"/"ipv6"; empty = both
    "protocols",     # frozenset of protocol names; empty = every protocol
    "interval",      # seconds between snapshots
    "once",          # one snapshot, then exit
    "output",        # "text" | "json" | "csv"
    "record",        # path or None
    "replay",        # path or None
    "sysctl",        # manage nf_conntrack_acct/timestamp
    "dns",           # reverse DNS wanted (-n turns it off)
    "geoip",         # GeoIP wanted (-G turns it off)
    "units",         # "si" | "iec" | "raw"
    "continuous",    # plain text frames instead of the curses view
    "sort",          # "[+]column" of values.SORTS ("+": ascending)
    "threshold",     # bytes/s: hide flows slower than this (0: none)
    "active",        # only flows with a non-zero rate
    "bits",          # rates in bits/s
    "show_src",      # show the source column
    "redact_local",  # obfuscate this host's addresses
    "redact_remote", # obfuscate the other ends' addresses
    "show_id",       # show the conntrack id column
    "age",           # "human" | "seconds" | "none"
    "wide",          # every column, scroll sideways
    "loopback",      # include flows on loopback addresses
    "numeric_port",  # port numbers instead of service names
    "view",          # flows | process | host | country | iface
    "update",        # -u: fetch GeoIP databases and exit
    "geoip_db",      # tuple of explicit GeoIP database paths
    "numeric_local", # no reverse DNS for this host's addresses
    "numeric_remote",  # no reverse DNS for the other ends
    "in_iface",      # input interface filter (nftop: trailing + is a wildcard)
    "out_iface",     # output interface filter
    "ifaces",        # look up in/out interfaces (route lookups)
    "process",       # name the processes of local flows
    "geoip_conf",    # -u: the geoip.conf to read (None: /etc/flowtop, else packaged)
    "geoip_dir",     # -u: where to install; also searched first for databases
) + EXPORT_FIELDS + OPS_FIELDS + VIEW_FIELDS,
    defaults=EXPORT_DEFAULTS + OPS_DEFAULTS + VIEW_DEFAULTS)

def sort_spec(text):
    from .values import SORTS
    col = text.lstrip("+")
    if col not in SORTS:
        import argparse
        raise argparse.ArgumentTypeError("sort by one of %s, '+' first for ascending: %r"
                                         % (", ".join(SORTS), text))
    return text


def _columns():
    """The terminal's width as ``shutil.get_terminal_size`` reads it (COLUMNS, stdout, 80)."""
    try:
        n = int(os.environ.get("COLUMNS", 0))
    except ValueError:
        n = 0
    if n <= 0:
        try:
            n = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            n = 0
    return n or 80


def build_parser():
    import argparse

    def formatter(prog):
        # argparse's own would import shutil (with bz2, lzma) for this width at every
        # add_argument: 1.0 s of a mipsel router's 18 s to the live view's first rows
        return argparse.HelpFormatter(prog, width=_columns() - 2)
    p = argparse.ArgumentParser(
        prog="flowtop", formatter_class=formatter,
        description="A top-like viewer of the Linux netfilter connection-tracking table.",
        epilog="With no protocol or family option every protocol of both families is shown "
               "(netsniff-ng's flowtop showed TCP only; QUIC made UDP essential). "
               "Needs CAP_NET_ADMIN (root).",
    )
    define(p)
    return p


def define(p):
    """Every option, on ``p``: an argparse parser, or cmdline's Recorder."""
    from .values import SORTS
    g = p.add_argument_group("what to show")
    g.add_argument("-4", "--ipv4", dest="ipv4", action="store_true", help="show IPv4 flows")
    g.add_argument("-6", "--ipv6", dest="ipv6", action="store_true", help="show IPv6 flows")
    for dest, short, long_, _protos, text in PROTOCOL_FLAGS:
        g.add_argument(short, long_, dest=dest, action="store_true", help=text)
    g.add_argument("-n", "--no-dns", dest="dns", action="store_false",
                   help="no reverse DNS lookups (numeric addresses)")
    g.add_argument("-G", "--no-geoip", dest="geoip", action="store_false",
                   help="no GeoIP lookups")
    g.add_argument("--numeric-local", action="store_true",
                   help="no reverse DNS for this host's own addresses")
    g.add_argument("--numeric-remote", action="store_true",
                   help="no reverse DNS for the remote ends")
    g.add_argument("--geoip-db", action="append", default=[], metavar="PATH",
                   help="a GeoIP .mmdb database to use (repeatable); default: search "
                        "/etc/flowtop, /usr/share/GeoIP, /var/lib/GeoIP, /usr/local/share/GeoIP, "
                        "/var/GeoIP")
    g.add_argument("-u", "--update", action="store_true",
                   help="download the GeoIP databases named in geoip.conf, then exit")
    g.add_argument("--geoip-conf", metavar="PATH",
                   help="the geoip.conf for -u (default /etc/flowtop/geoip.conf, else the "
                        "packaged one)")
    g.add_argument("--geoip-dir", metavar="DIR",
                   help="where -u installs databases (default /var/lib/GeoIP, else "
                        "/usr/share/GeoIP); also searched first for databases")
    g.add_argument("--in-iface", metavar="NAME",
                   help="only flows entering through NAME ('vlan+' matches vlan0, vlan10, ...)")
    g.add_argument("--out-iface", metavar="NAME",
                   help="only flows leaving through NAME (trailing + is a wildcard)")
    g.add_argument("--no-iface", dest="ifaces", action="store_false",
                   help="no route lookups for the in/out interfaces")
    g.add_argument("--no-process", dest="process", action="store_false",
                   help="do not look up the processes of local flows")
    o = p.add_argument_group("output")
    o.add_argument("--once", action="store_true", help="print one snapshot and exit")
    fmt = o.add_mutually_exclusive_group()
    fmt.add_argument("--json", dest="output", action="store_const", const="json",
                     help="JSON Lines: one object per flow per line")
    fmt.add_argument("--csv", dest="output", action="store_const", const="csv",
                     help="CSV with a header row")
    o.add_argument("-t", "--interval", type=positive_float, default=1.0, metavar="SECONDS",
                   help="seconds between snapshots (default 1)")
    o.add_argument("--units", choices=("si", "iec", "raw"), default="si",
                   help="units of bytes and rates (default si)")
    o.add_argument("-c", "--continuous", action="store_true",
                   help="plain text frames, one per interval, instead of the full-screen view")
    v = p.add_argument_group("live view (full screen and -c)")
    v.add_argument("--sort", type=sort_spec, default="rate", metavar="[+]COLUMN",
                   help="sort by %s (default rate; largest first, names A-Z; "
                        "'+' flips the order)" % ", ".join(SORTS))
    v.add_argument("--threshold", type=rate_value, default=0.0, metavar="RATE",
                   help="hide flows slower than RATE (bytes/s, or bits/s with -b; 10k, 1M, 2Mi)")
    v.add_argument("--active", action="store_true", help="only flows with a non-zero rate")
    v.add_argument("-b", "--bits", action="store_true", help="rates in bits per second")
    v.add_argument("-s", "--show-src", action="store_true", help="also show the source")
    v.add_argument("--redact-local", action="store_true", help="obfuscate local addresses")
    v.add_argument("--redact-remote", action="store_true", help="obfuscate remote addresses")
    v.add_argument("--show-id", action="store_true", help="show the conntrack id")
    v.add_argument("--age", choices=("none", "seconds", "human"), default="human",
                   help="age column format (default human)")
    v.add_argument("--wide", action="store_true", help="every column, both ends; scroll sideways")
    v.add_argument("--loopback", action="store_true",
                   help="include flows on loopback addresses (hidden by default)")
    v.add_argument("-P", "--numeric-port", action="store_true",
                   help="port numbers instead of service names")
    v.add_argument("--view", choices=VIEWS, default="flows",
                   help="flows (default), or totals per process, remote host, country, "
                        "interface or LAN device (Tab in the live view)")
    k = p.add_argument_group("kernel and files")
    src = k.add_mutually_exclusive_group()
    src.add_argument("--record", metavar="FILE",
                     help="also write the raw kernel dumps to FILE (for bug reports, tests)")
    src.add_argument("--replay", metavar="FILE",
                     help="read dumps from a --record FILE instead of the kernel")
    k.add_argument("--no-sysctl", dest="sysctl", action="store_false",
                   help="leave net.netfilter.nf_conntrack_acct/_timestamp alone")
    add_export_options(p)
    add_ops_options(p)
    add_view_options(p)
    p.add_argument("-v", "--version", action="version", version="flowtop " + __version__)


def with_settings(opts, argv):
    """``opts`` with the settings file's values where ``argv`` gave none."""
    from . import settings
    path = settings.rc_path(opts.rc)
    if not os.path.exists(path):
        return opts

    def warn(line):
        sys.stderr.write("flowtop: %s\n" % line)
    values = settings.load(path, warn)
    if not values:
        return opts
    return settings.apply(opts, settings.given_fields(build_parser(), argv), values)


class _Later:
    """The argparse parser, built when an error is to be printed."""

    def error(self, message):
        build_parser().error(message)


def parse(argv=None):
    """argv -> Options (argparse exits 2 with its usage on bad input)."""
    from .cmdline import read
    if argv is None:
        argv = sys.argv[1:]
    parser = _Later()
    ns = read(define, argv)         # a plain line: without argparse (a router's start-up)
    if ns is None:
        parser = build_parser()
        ns = parser.parse_args(argv)
    if ns.record and (ns.redact_local or ns.redact_remote):
        parser.error("--record writes the kernel's raw bytes, which cannot be redacted")
    if ns.once and (ns.active or ns.threshold):
        # rates are differences between two snapshots: these would hide every flow
        parser.error("--active and --threshold need rates, and --once takes a single "
                     "snapshot (no rates): use -c, or leave them out")
    families = frozenset(f for f, on in (("ipv4", ns.ipv4), ("ipv6", ns.ipv6)) if on)
    protocols = frozenset(p for dest, _s, _l, protos, _h in PROTOCOL_FLAGS
                          if getattr(ns, dest) for p in protos)
    return with_settings(Options(
        families=families, protocols=protocols, interval=ns.interval, once=ns.once,
        output=ns.output or "text", record=ns.record, replay=ns.replay, sysctl=ns.sysctl,
        dns=ns.dns, geoip=ns.geoip, units=ns.units, continuous=ns.continuous,
        sort=ns.sort, threshold=ns.threshold / 8 if ns.bits else ns.threshold,
        active=ns.active, bits=ns.bits, show_src=ns.show_src, redact_local=ns.redact_local,
        redact_remote=ns.redact_remote, show_id=ns.show_id, age=ns.age, wide=ns.wide,
        loopback=ns.loopback, numeric_port=ns.numeric_port, view=ns.view, update=ns.update,
        geoip_db=tuple(ns.geoip_db), numeric_local=ns.numeric_local,
        numeric_remote=ns.numeric_remote, in_iface=ns.in_iface, out_iface=ns.out_iface,
        ifaces=ns.ifaces or bool(ns.in_iface or ns.out_iface),
        geoip_conf=ns.geoip_conf, geoip_dir=ns.geoip_dir, process=ns.process,
        **export_options(ns, parser), **ops_options(ns, parser), **view_options(ns)
    ), argv)


def main(argv=None):
    """Parse, run, and return the exit status."""
    opts = parse(argv)
    from . import main as wiring
    return wiring.main(opts)


def _end_now(signum, frame):
    os._exit(130)


def quiet_interrupts():
    """Ctrl-C from here on exits 130 at once, without a traceback.

    Until the sysctl guard takes SIGINT over (it restores what it changed, then
    hands SIGINT back) there is nothing to undo, so a Ctrl-C just ends the
    process: during the imports, and while exiting (many presses included).
    The last atexit step ignores it: after that Python resets SIGINT to the
    default, which would end the process by the signal instead.
    """
    import _signal as signal  # not signal.py (see sysctl)
    if signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, None):   # not if ignored
        import atexit
        atexit.register(signal.signal, signal.SIGINT, signal.SIG_IGN)   # runs last (LIFO)
        signal.signal(signal.SIGINT, _end_now)


def run():
    """The command (``python3 -m flowtop``, the zipapp, the console script)."""
    quiet_interrupts()
    sys.exit(main())
