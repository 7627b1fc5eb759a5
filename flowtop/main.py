"""flowtop's main: options -> source, enrichment, writer; the one-shot and
refreshing runs, with the sysctl guard around them.

Everything that touches the world (clock, sleep, streams, /proc/sys root)
is passed in, so tests can drive it.
"""

import errno
import os
import sys
import time

from .netlink.errors import DecodeError, DumpInterrupted, NetlinkError, RecordingError
from .netlink.session import MAX_DUMP_RETRIES
from .sources import MODULE_HINT, FlowtopError, KernelSource, ReplaySource, one_table  # noqa: F401
from .enrich.bundle import from_options
from .sysctl import SysctlGuard, Terminated, exit_status_for
from .runtime import started
from .text import sanitize

EXIT_OK = 0
EXIT_ERROR = 1


def iface_keep(opts, enrich):
    """The --in-iface/--out-iface and --filter predicate over table rows
    (or flows), or None."""
    keep = None
    if enrich is not None and (opts.in_iface or opts.out_iface):
        from .enrich.iface import iface_filter
        keep = iface_filter(opts.in_iface, opts.out_iface, enrich.ifaces_of)
    if opts.filter:
        from .views.filterfields import row_keep
        from .views.cells import Formatter
        from .views.state import ViewState
        return row_keep(opts.filter, enrich, time.time, Formatter(ViewState(opts), enrich), keep)
    return None if keep is None else (lambda r: keep(getattr(r, "entry", r)))


def warn_unknown_ifaces(opts, enrich, say):
    """One line per --in-iface/--out-iface that names no interface of this
    host (the kernel's link list); replays have none to check against."""
    if enrich.ifaces is None or not (opts.in_iface or opts.out_iface):
        return
    from .enrich.iface import unmatched
    names = enrich.ifaces.names()
    if not names:
        return
    for flag, pattern in (("--in-iface", opts.in_iface), ("--out-iface", opts.out_iface)):
        for p in unmatched([pattern], names):
            say("no interface matches %s %s (this host has: %s)" % (
                flag, sanitize(p, 32), ", ".join(names[:12])))


def make_writer(opts, stream, enrich=None, notes=()):
    """The writer of ``opts``' format; each has ``write_rows(table, wall)``;
    with --stats, behind a table-health record per snapshot."""
    writer = _format_writer(opts, stream, enrich, notes)
    if opts.stats:
        from .health import StatsWriter
        writer = StatsWriter(writer, stream, opts.output)
    return writer


def _format_writer(opts, stream, enrich=None, notes=()):
    keep = iface_keep(opts, enrich)
    redact = None                   # (redacting nothing: views.redact not loaded)
    if opts.redact_local or opts.redact_remote:
        from .views.redact import of as redactor
        redact = redactor(opts, enrich)
    if opts.output in ("json", "csv") and opts.view != "flows":
        from .views.export import GroupWriter
        sort = opts.sort.lstrip("+")
        return GroupWriter(stream, opts.view, enrich, opts.output, sort, opts.sort.startswith("+"),
                           keep, redact)
    if opts.output == "json":
        from .views.export import JsonLinesWriter
        from .views.tail import JsonTail
        return JsonLinesWriter(stream, JsonTail(enrich).line if enrich is not None else None, keep,
                               enrich, redact)
    if opts.output == "csv":
        from .views.export import CsvWriter
        return CsvWriter(stream, enrich, keep, redact)
    from .views.text import TextFrames
    return TextFrames(stream, opts, enrich, notes)


def once(source, opts, stdout, enrich, notes):
    """``--once``: one snapshot in the chosen format.

    JSON streams straight from the kernel's bytes (the fast path; with
    interfaces or names, each datagram's lookups are made ready before its
    lines get their keys); the other outputs of flows stream a datagram at
    a time (``flowtop.once``); aggregate views and --stats take the whole
    table first.
    """
    keep = iface_keep(opts, enrich)
    lean = enrich.dns is None and enrich.ifaces is None
    if (opts.output == "json" and source.live and opts.view == "flows" and keep is None
            and not (opts.redact_local or opts.redact_remote) and (lean or not opts.stats)):
        prepare = None      # (--stats counts offloaded flows unless -n --no-iface: README)
        if lean and (enrich.process is None or opts.stats):
            from .table import FlowTable
            enrich.tick(FlowTable())
        else:       # a datagram's route lookups, names, processes: before its lines
            from .once import Preparer
            prepare = Preparer(enrich)
        now, lines = source.snapshot("json", enrich, prepare)
        make_writer(opts, stdout, enrich).write(lines, now)
        return
    from . import once as streamed
    if streamed.streams(opts, opts.stats):
        if opts.output == "text":
            from .views.oncetext import OnceText
            writer, keep = OnceText(stdout, opts, enrich, notes), None  # its state filters
        elif opts.output == "csv":
            from .views.export import OnceCsv
            from .views.redact import of as redactor
            writer = OnceCsv(stdout, enrich, keep, redactor(opts, enrich))
        else:
            writer = _format_writer(opts, stdout, enrich, notes)
        streamed.run(source, enrich, keep, writer)
        return
    snap = one_table(source, enrich)
    if snap is None:
        return
    now, flows, table = snap
    if keep is not None:               # over the table's rows: they have ages (and names)
        flows = [r.entry for r in table if keep(r)]
    if enrich.dns is not None:
        addrs = {a for f in flows for a in (f.src, f.dst)}
        from .once import DNS_WAIT     # (the live view's start loads no once.py)
        enrich.dns.wait(sorted(addrs), DNS_WAIT)
    writer = make_writer(opts, stdout, enrich, notes)
    if opts.output != "text" and opts.view != "flows":
        writer.write_rows(table, now)
    elif opts.output in ("json", "csv"):
        writer.write_flows(flows, now)
    else:
        writer.write_rows(table, now)


def explain(exc, opts):
    """A one-line reason and remedy for an error the user can fix."""
    if isinstance(exc, FlowtopError):
        return str(exc)
    if isinstance(exc, RecordingError) or (opts.replay and isinstance(exc, DecodeError)):
        return "cannot replay %s: %s" % (opts.replay, exc)
    if opts.replay and isinstance(exc, NetlinkError):
        return "cannot replay %s: the recording ends in a kernel error (%s)" % (
            opts.replay, exc.strerror)
    if isinstance(exc, DecodeError):
        return "malformed data from the kernel: %s" % exc
    code = getattr(exc, "errno", None)
    if isinstance(exc, NetlinkError) and code in (errno.EPERM, errno.EACCES):
        return ("permission denied: reading the conntrack table needs CAP_NET_ADMIN; "
                "run flowtop as root (sudo flowtop)")
    if code in (errno.EPROTONOSUPPORT, errno.EOPNOTSUPP, errno.EAFNOSUPPORT):
        return MODULE_HINT
    if isinstance(exc, DumpInterrupted):
        return ("the conntrack table kept changing during the dump (interrupted %d times); "
                "try again" % (MAX_DUMP_RETRIES + 1))
    filename = getattr(exc, "filename", None)
    if isinstance(exc, OSError) and filename and filename == opts.record:
        return "cannot record to %s: %s" % (filename, exc.strerror or exc)
    if isinstance(exc, OSError) and filename and filename == opts.replay:
        return "cannot replay %s: %s" % (filename, exc.strerror or exc)
    if isinstance(exc, OSError) and filename:
        return "%s: %s" % (filename, exc.strerror or exc)
    if isinstance(exc, OSError):
        return "system error: %s" % (exc.strerror or exc)
    return str(exc)


def _sysctl_notes(guard, now=False):
    if now:
        guard.current()
    notes = []
    if guard.acct is False:
        notes.append("accounting is off (net.netfilter.nf_conntrack_acct=0): "
                     "byte and packet counters are absent")
    if guard.timestamp is False:
        notes.append("timestamps are off (net.netfilter.nf_conntrack_timestamp=0): "
                     "ages are absent")
    return notes


def screen_problem(stdout, environ=os.environ):
    """Why the full-screen view cannot run here, or None."""
    try:
        tty = stdout.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty:
        return "stdout is not a terminal"
    if environ.get("TERM", "dumb") in ("", "dumb"):
        return "TERM is %r" % environ.get("TERM", "")
    return None


def run_refreshing(source, opts, stdout, say, notes, enrich, info):
    """Everything that refreshes: the curses view (default on a terminal),
    text frames (-c, or the fallback), streaming JSON/CSV."""
    from . import collector
    if opts.output in ("json", "csv") or opts.continuous:
        collector.stream(source, make_writer(opts, stdout, enrich, notes), opts, enrich)
        return
    problem = screen_problem(stdout)
    if problem is None:
        problem = collector.run_screen(source, opts, enrich, info)
        if problem is None:
            return
    else:
        problem = "no full-screen view (%s): printing text frames; -c asks for them" % problem
    say(problem)
    collector.stream(source, make_writer(opts, stdout, enrich, notes), opts, enrich)


def _screen_first(opts, source, stdout):
    """Whether the live view's first rows come before its process map, interfaces,
    devices and rate history (their imports: ~12 M instructions, 0.4 s of a mipsel
    router's start): the flows view of the kernel's table on a terminal, no
    interface or filter choosing its rows (their cells fill in from the first full tick)."""
    return (source.live and not (opts.once or opts.events or opts.delete is not None
                                 or export_wanted(opts) or opts.continuous)
            and opts.output == "text" and opts.view == "flows"
            and not (opts.in_iface or opts.out_iface or opts.filter)
            and screen_problem(stdout) is None)


def export_wanted(opts):
    """--ipfix, --metrics, --syslog or --quiet: the headless export loop."""
    return bool(opts.ipfix or opts.metrics or opts.metrics_file or opts.syslog or opts.quiet)


def main(opts, stdout=None, stderr=None, sysctl_root="/proc/sys"):
    """Run flowtop with ``opts``; return the exit status.  Never a traceback
    for conditions a user can meet: one line on stderr instead."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr

    def say(line):
        stderr.write("flowtop: %s\n" % line)
        stderr.flush()

    if opts.update:
        started()
        return _geoip_update(opts, stdout, say)
    problem = _geoip_db_problem(opts)
    if problem:
        say(problem)
        return EXIT_ERROR
    source = ReplaySource(opts) if opts.replay else KernelSource(opts)
    try:
        try:
            source.open()
            guard = SysctlGuard(root=sysctl_root, enabled=opts.sysctl and source.live, warn=say)
            with guard:
                notes = _sysctl_notes(guard) if source.live else []
                enrich = from_options(opts, live=source.live, warn=say,
                                      later=_screen_first(opts, source, stdout))
                warn_unknown_ifaces(opts, enrich, say)
                started()       # the collector on again: the start's objects frozen
                try:
                    _run_mode(source, opts, stdout, say, enrich, guard, notes)
                finally:
                    enrich.close()
        finally:
            source.close()
    except (KeyboardInterrupt, Terminated) as exc:
        return exit_status_for(exc)
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_OK
    except (FlowtopError, RecordingError, DecodeError, DumpInterrupted, OSError) as exc:
        say(explain(exc, opts))
        return EXIT_ERROR
    return EXIT_OK


def _geoip_update(opts, stdout, say):
    """``-u``: download the GeoIP databases; the exit status."""
    from .geoupdate.command import update

    def report(line):
        if line.startswith("error:"):
            say(line[len("error:"):].strip())
        else:
            stdout.write(line + "\n")
            stdout.flush()
    kwargs = {}
    if opts.geoip_conf:
        if not os.access(opts.geoip_conf, os.R_OK):    # no silent fallback to the default
            say("cannot read %s: no such readable file" % opts.geoip_conf)
            return EXIT_ERROR
        kwargs["conf_paths"] = (opts.geoip_conf,)
    if opts.geoip_dir:
        kwargs["dest_dirs"] = (opts.geoip_dir,)
    with _interrupt_once():
        try:
            return update(say=report, **kwargs)
        except KeyboardInterrupt:
            return 130


def _run_mode(source, opts, stdout, say, enrich, guard, notes):
    """The one run the options ask for, inside the sysctl guard."""
    if opts.events:
        from .eventlog import run as log_events
        log_events(source, opts, stdout, say, enrich)
    elif opts.delete is not None:
        from .delete import run as delete_flows
        delete_flows(source, opts, stdout, say, enrich)
    elif opts.once:
        once(source, opts, stdout, enrich, notes)
    elif export_wanted(opts):
        from .export import runner
        runner.run(source, opts, stdout, say, enrich, make_writer)
    else:
        info = dict({"acct": guard.acct, "timestamp": guard.timestamp}, **_ops_info(source))
        if source.live:
            # what the kernel has each tick (another program may switch it)
            notes = lambda: _sysctl_notes(guard, now=True)   # noqa: E731
            info["now"] = guard.current
        run_refreshing(source, opts, stdout, say, notes, enrich, info)


def _ops_info(source):
    """The live view's table health probe and flow deleter (issue 15)."""
    from .act import for_source
    from .health import probe_for
    return {"health": probe_for(source), "act": for_source(source)}


class _interrupt_once:
    """-u: a first Ctrl-C raises KeyboardInterrupt, so the download's temp files are
    removed on the way out; a second one gets the handler from before (run(): exit)."""

    def __enter__(self):
        import signal
        import threading
        self.previous = signal.getsignal(signal.SIGINT)
        if (threading.current_thread() is not threading.main_thread()
                or self.previous in (signal.SIG_IGN, None)):
            self.previous = None
            return self

        def once(signum, frame):
            signal.signal(signal.SIGINT, self.previous)
            raise KeyboardInterrupt

        signal.signal(signal.SIGINT, once)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            import signal
            signal.signal(signal.SIGINT, self.previous)
        return False


def _geoip_db_problem(opts):
    """A --geoip-db that is a FIFO or a device (a read would block the start
    forever), in one line; a missing file is the GeoIP module's to report."""
    for path in opts.geoip_db if opts.geoip else ():
        from .recording import open_regular     # (only with a path: not at every start)
        try:
            open_regular(path).close()
        except FileNotFoundError:
            continue
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                return "--geoip-db %s: %s" % (path, exc.strerror)
    return None


def _silence_stdout():
    """The reader went away (``| head``): point stdout at /dev/null so the
    interpreter's final flush does not print a traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
