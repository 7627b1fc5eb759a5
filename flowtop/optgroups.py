"""The option groups of the exports, the operations and issue 15's view
options (their arguments, Options fields and checks), and the value types
argparse converts with.  cli.py builds the parser and Options from them.
"""

import sys

from .values import rate, seconds

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

def _argtype(check):
    """An argparse type from a values.py check: its ValueError becomes
    argparse's error line (argparse would otherwise print its own)."""
    def parse(text):
        try:
            return check(text)
        except ValueError as exc:
            import argparse
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = check.__name__
    return parse


positive_float = _argtype(seconds)
rate_value = _argtype(rate)


def _int_range(low, high):
    def parse(text):
        try:
            value = int(text, 0)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            import argparse         # on the error path only: cmdline reads most lines
            raise argparse.ArgumentTypeError(
                ("must be between %d and %d: %r" % (low, high, text)) if value is not None
                else "not an integer: %r" % text)
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


def _quoted(text):
    from .text import sanitize
    return "'%s'" % sanitize(text, 80)


def export_options(ns, parser):
    """The EXPORT_FIELDS of an argparse namespace, checked (argparse's exit 2)."""
    values = dict(ipfix=ns.ipfix, ipfix_active_timeout=ns.ipfix_active_timeout,
                  ipfix_mtu=ns.ipfix_mtu, ipfix_domain=ns.ipfix_domain,
                  ipfix_template_refresh=ns.ipfix_template_refresh, metrics=ns.metrics,
                  metrics_file=ns.metrics_file, syslog=ns.syslog, quiet=ns.quiet)
    exporting = ns.ipfix or ns.metrics or ns.metrics_file or ns.syslog or ns.quiet
    if exporting and ns.once:
        parser.error("--ipfix/--metrics/--syslog/--quiet run until stopped: not with --once")
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
