"""argv -> a frozen Options, then hand over to ``main``.

Option letters follow netsniff-ng's flowtop so its users' habits and
scripts carry over.
"""

import os
import signal
import sys
from collections import namedtuple

from . import __version__

# argparse and views.state are imported where used: importing this module stays
# cheap (~1 ms, was 40 ms here), so run() takes Ctrl-C over before the heavy imports.

PROTOCOL_FLAGS = (
    # dest, short, long, protocols, help
    ("tcp", "-T", "--tcp", ("tcp",), "show TCP flows"),
    ("udp", "-U", "--udp", ("udp", "udplite"), "show UDP and UDP-lite flows"),
    ("dccp", "-D", "--dccp", ("dccp",), "show DCCP flows"),
    ("icmp", "-I", "--icmp", ("icmp", "icmpv6"), "show ICMP and ICMPv6 flows"),
    ("sctp", "-S", "--sctp", ("sctp",), "show SCTP flows"),
)

# Export options (flowtop.export): defaults so that code building Options
# without them still works.
EXPORT_FIELDS = (
    "ipfix",         # HOST[:PORT] of an IPFIX collector, or None
    "ipfix_active_timeout",  # seconds between records of a long flow
    "ipfix_mtu",     # bytes: largest IPFIX message
    "ipfix_domain",  # observation domain id
    "ipfix_template_refresh",  # seconds between template resends
    "metrics",       # [ADDR]:PORT of the Prometheus listener, or None
    "metrics_file",  # path of a node_exporter textfile, or None
    "syslog",        # udp://HOST:PORT | tcp://HOST:PORT | unix:PATH, or None
    "quiet",         # headless: no screen, no text
)
EXPORT_DEFAULTS = (None, 60.0, 1400, 0, 60.0, None, None, None, False)

# Operator options (issue 15: table health, connection log, delete)
OPS_FIELDS = (
    "stats",         # --json/text: a table-health record before each snapshot
    "events",        # the connection log: flows as they start and end
    "delete",        # EXPR: delete the flows it matches, then exit (None: not asked)
    "dry_run",       # --delete: only list what would be deleted
)
OPS_DEFAULTS = (False, False, None, False)
# Issue 15's view options (filter language, devices, settings file).
VIEW_FIELDS = (
    "filter",        # filter expression text (views.filterexpr), or None
    "leases",        # tuple of DHCP lease files (dnsmasq/odhcpd) for the device view, or ()
    "ethers",        # an /etc/ethers-format file, or None
    "rc",            # the settings file (flowtop.settings), or None: the XDG default
)
VIEW_DEFAULTS = (None, (), None, None)

Options = namedtuple("Options", (
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
    "sort",          # "[+]column" of views.state.SORTS ("+": ascending)
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

VIEWS = ("flows", "process", "host", "country", "iface", "device")

_UNITS = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12,
          "ki": 1024, "mi": 1024 ** 2, "gi": 1024 ** 3, "ti": 1024 ** 4}


def positive_float(text):
    import argparse
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number: %r" % text) from None
    if not value > 0 or value > 86400:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 86400 seconds: %r"
                                         % text)
    return value


def rate_value(text):
    """'10k', '1.5M', '2Mi', '800' -> a number (per second); units SI or IEC."""
    import argparse
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
        raise argparse.ArgumentTypeError("not a rate: %r (e.g. 800, 10k, 1.5M, 2Mi)" % text) from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("not a rate: %r" % text)
    return value


def sort_spec(text):
    import argparse
    from .views.state import SORTS
    col = text.lstrip("+")
    if col not in SORTS:
        raise argparse.ArgumentTypeError("sort by one of %s, '+' first for ascending: %r"
                                         % (", ".join(SORTS), text))
    return text


def build_parser():
    import argparse
    from .views.state import SORTS
    p = argparse.ArgumentParser(
        prog="flowtop",
        description="A top-like viewer of the Linux netfilter connection-tracking table.",
        epilog="With no protocol or family option every protocol of both families is shown "
               "(netsniff-ng's flowtop showed TCP only; QUIC made UDP essential). "
               "Needs CAP_NET_ADMIN (root).",
    )
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
    return p


def _int_range(low, high):
    def parse(text):
        import argparse
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError("not an integer: %r" % text) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError("must be between %d and %d: %r" % (low, high, text))
        return value
    return parse


def _checked(module, fn, *args):
    """An argparse type that checks a target with flowtop.export's parser
    (imported only when the option is given: start-up cost on a router)."""
    def parse(text):
        import importlib
        try:
            getattr(importlib.import_module("flowtop.export." + module), fn)(text, *args)
        except ValueError as exc:
            import argparse
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text
    return parse


def add_export_options(p):
    e = p.add_argument_group("export (headless; beside --json/--csv/-c if given)")
    e.add_argument("--ipfix", metavar="HOST[:PORT]",
                   type=_checked("exporter", "parse_target", 4739),
                   help="send IPFIX flow records over UDP to a collector (port 4739 by "
                        "default; [v6addr]:port)")
    e.add_argument("--ipfix-active-timeout", type=positive_float, default=60.0,
                   metavar="SECONDS", help="a record of each long flow every SECONDS "
                                           "(default 60)")
    e.add_argument("--ipfix-mtu", type=_int_range(256, 65000), default=1400, metavar="BYTES",
                   help="largest IPFIX message (default 1400)")
    e.add_argument("--ipfix-domain", type=_int_range(0, 0xFFFFFFFF), default=0, metavar="ID",
                   help="IPFIX observation domain id (default 0)")
    e.add_argument("--ipfix-template-refresh", type=positive_float, default=60.0,
                   metavar="SECONDS", help="resend the templates every SECONDS (default 60)")
    e.add_argument("--metrics", metavar="[ADDR]:PORT", type=_checked("metrics", "parse_listen"),
                   help="serve Prometheus metrics over HTTP on ADDR:PORT")
    e.add_argument("--metrics-file", metavar="PATH",
                   help="write Prometheus metrics to PATH (node_exporter textfile; atomic)")
    e.add_argument("--syslog", metavar="TARGET", type=_checked("syslog", "parse_target"),
                   help="flow start/end events as RFC 5424 syslog with JSON to "
                        "udp://HOST:PORT, tcp://HOST:PORT or unix:PATH")
    e.add_argument("-q", "--quiet", action="store_true",
                   help="headless: no screen and no text (for services)")


def add_view_options(p):
    p.add_argument("--filter", metavar="EXPR",
                   help="show only flows matching EXPR, e.g. 'dport=443 and dst=10.0.0.0/8', "
                        "'proc~fire* or rate>1M' (see README: filter expressions)")
    p.add_argument("--leases", metavar="FILE", action="append", default=[],
                   help="DHCP leases (dnsmasq or odhcpd format) naming devices for "
                        "--view device (default /tmp/dhcp.leases, "
                        "/var/lib/misc/dnsmasq.leases, /tmp/hosts/odhcpd); repeatable")
    p.add_argument("--ethers", metavar="FILE",
                   help="MAC-to-name file in /etc/ethers format (default /etc/ethers)")
    p.add_argument("--rc", metavar="FILE",
                   help="settings file the live view's W key writes and start-up reads "
                        "(default $XDG_CONFIG_HOME/flowtop/flowtoprc or "
                        "~/.config/flowtop/flowtoprc); options win over it")


def view_options(ns):
    """Issue 15's fields; a --filter mistake is one line with its column, exit 2."""
    if ns.filter and (ns.ipfix or ns.metrics or ns.metrics_file or ns.syslog or ns.quiet):
        # the exports see every event and the whole table: a filter would be half applied
        sys.stderr.write("flowtop: --filter applies to the views and --json/--csv, not to "
                         "--ipfix/--metrics/--syslog/--quiet: leave one of them out\n")
        sys.exit(2)
    if ns.filter:
        from .views.filterexpr import FilterError, compile as compile_filter
        try:
            compile_filter(ns.filter)
        except FilterError as exc:
            sys.stderr.write("flowtop: --filter %s: %s\n" % (_quoted(ns.filter), exc))
            sys.exit(2)
    return dict(filter=ns.filter, leases=tuple(ns.leases), ethers=ns.ethers, rc=ns.rc)


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


def _quoted(text):
    from .text import sanitize
    return "'%s'" % sanitize(text, 80)


def export_options(ns):
    """The EXPORT_FIELDS of an argparse namespace, checked (argparse's exit 2)."""
    values = dict(ipfix=ns.ipfix, ipfix_active_timeout=ns.ipfix_active_timeout,
                  ipfix_mtu=ns.ipfix_mtu, ipfix_domain=ns.ipfix_domain,
                  ipfix_template_refresh=ns.ipfix_template_refresh, metrics=ns.metrics,
                  metrics_file=ns.metrics_file, syslog=ns.syslog, quiet=ns.quiet)
    exporting = ns.ipfix or ns.metrics or ns.metrics_file or ns.syslog or ns.quiet
    if exporting and ns.once:
        build_parser().error("--ipfix/--metrics/--syslog/--quiet run until stopped: not with --once")
    return values


def add_ops_options(p):
    g = p.add_argument_group("operations (table health, connection log, delete)")
    g.add_argument("--stats", action="store_true",
                   help="before each snapshot, the table's health: count/max and the kernel's "
                        "per-CPU statistics (a JSON record with --json, a line in text)")
    g.add_argument("--events", action="store_true",
                   help="a connection log: one line per flow as it starts and as it ends "
                        "(text, --json or --csv), until interrupted")
    g.add_argument("--delete", metavar="EXPR",
                   help="delete the flows EXPR matches from the kernel's table, then exit "
                        "(EXPR: the live view's / filter)")
    g.add_argument("--dry-run", action="store_true",
                   help="with --delete: list the flows it would delete, delete nothing")


def ops_options(ns, parser):
    """The OPS_FIELDS of an argparse namespace, checked (argparse's exit 2)."""
    if ns.stats and ns.output == "csv":
        parser.error("--stats is a JSON record or a text line: not with --csv")
    if (ns.stats or ns.events) and ns.replay:
        parser.error("--stats and --events read the kernel: not with --replay")
    if ns.events and (ns.once or ns.delete is not None):
        parser.error("--events runs until interrupted: not with --once or --delete")
    if ns.dry_run and ns.delete is None:
        parser.error("--dry-run goes with --delete")
    return dict(stats=ns.stats, events=ns.events, delete=ns.delete, dry_run=ns.dry_run)


def parse(argv=None):
    """argv -> Options (argparse exits 2 with its usage on bad input)."""
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
        **export_options(ns), **ops_options(ns, parser), **view_options(ns)
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
    if signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, None):   # not if ignored
        import atexit
        atexit.register(signal.signal, signal.SIGINT, signal.SIG_IGN)   # runs last (LIFO)
        signal.signal(signal.SIGINT, _end_now)


def run():
    """The command (``python3 -m flowtop``, the zipapp, the console script)."""
    quiet_interrupts()
    sys.exit(main())
