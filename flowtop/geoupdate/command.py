"""``flowtop -u``: ``update`` fetches and installs every database of
geoip.conf; 0 when all are up to date, else 1 (each failure one line)."""

import os

from ..text import sanitize
from .conf import (
    CONF_PATHS, DEST_DIRS, MAXMIND_URL, FetchError, NoFetcher, UpdateError, _check_name,
    _default_file, _is_dated, _month, _previous, expand, parse_conf, read_conf,
)
from .fetch import _which, make_fetcher
from .install import _mb, _prune, _tmp, _unlink, check_mmdb, install, pick_dest


def update(conf_text=None, dest_dirs=DEST_DIRS, fetch=None, say=print, today=None,
           conf_paths=CONF_PATHS, force=False, which=None):
    """Fetch and install every database of the configuration; 0 when all
    are up to date, 1 otherwise (each failure said in one line)."""
    raw_say = say

    def say(line):                      # server and tool texts reach a terminal
        raw_say(sanitize(line, 400))

    sources = _sources(conf_text, conf_paths, say)
    if not sources:
        return 1
    dest = pick_dest(dest_dirs)
    if dest is None:
        say("error: cannot write to %s (run as root)" % " or ".join(dest_dirs))
        return 1
    which = which or _which
    fetch = fetch or make_fetcher(which=which)
    ym = _month(today)
    failed = 0
    attributions = []
    ran = []                            # geoipupdate runs once for every edition
    for src in sources:
        secrets = [src.get("license_key")] if src.get("license_key") else []
        try:
            if not _update_source(src, dest, fetch, say, ym, force, which, ran):
                continue
            att = src.get("attribution")
            if att and att not in attributions:
                attributions.append(att)
        except NoFetcher as exc:
            say("error: %s" % exc)
            return 1
        except (UpdateError, FetchError) as exc:
            say("error: %s: %s" % (src.name, _redact(str(exc), secrets)))
            failed += 1
        except OSError as exc:
            say("error: %s: %s" % (src.name, _redact(
                "%s%s" % (exc.strerror or exc, ": %s" % exc.filename if exc.filename else ""),
                secrets)))
            failed += 1
        except Exception as exc:        # never a traceback from an update
            say("error: %s: %s: %s" % (src.name, type(exc).__name__, _redact(str(exc), secrets)))
            failed += 1
    for att in attributions:
        say(att)
    return 1 if failed else 0


def _sources(conf_text, conf_paths, say):
    """The enabled sources of the configuration (``conf_text``, else the
    first of ``conf_paths``, else the package's); None, said, on an error."""
    try:
        if conf_text is None:
            conf_text, where = read_conf(conf_paths)
            if where != "geoip.conf":
                say("using %s" % where)
        else:
            where = "geoip.conf"
        sources = [s for s in parse_conf(conf_text, where) if s.flag("enabled", True)]
    except UpdateError as exc:
        say("error: %s" % exc)
        return None
    except OSError as exc:
        say("error: cannot read the GeoIP configuration: %s" % (exc.strerror or exc))
        return None
    if not sources:
        say("error: no database to update in %s" % where)
    return sources


def _update_source(src, dest, fetch, say, ym, force, which, ran):
    """Update one source: its ``run`` command, geoipupdate for an edition
    without a license key (once: ``ran``), else a download.  False when
    there was nothing left to do."""
    run = src.get("run")
    if not run and src.get("edition") and not src.get("license_key") and not src.get("url"):
        if not which("geoipupdate"):
            raise UpdateError("edition %s needs license_key in geoip.conf, or "
                              "geoipupdate installed" % src.get("edition"))
        if ran:
            return False
        run = "geoipupdate -d {dest}"
    if run:
        _run(expand(run, ym, {"dest": dest}), say, src.name)
        if run.split()[0].endswith("geoipupdate"):
            ran.append(run)
    else:
        _update_one(src, dest, fetch, say, ym, force)
    return True


def _update_one(src, dest, fetch, say, ym, force):
    secrets = [src.get("license_key")] if src.get("license_key") else []
    url_t = src.get("url")
    if not url_t:
        if not src.get("edition"):
            raise UpdateError("no url, edition or run")
        url_t = MAXMIND_URL
    extra = {"dest": dest, "edition": src.get("edition") or "",
             "license_key": src.get("license_key") or ""}
    file_t = src.get("file") or _default_file(src, url_t)
    dated = _is_dated(url_t) or _is_dated(file_t)
    months = [ym, _previous(ym)] if src.flag("previous_month") and _is_dated(url_t) else [ym]
    for i, month in enumerate(months):
        url = expand(url_t, month, extra)
        name = _check_name(expand(file_t, month, extra), src.name)
        final = os.path.join(dest, name)
        if dated and not force and os.path.isfile(final):
            try:
                check_mmdb(final)
                say("%s: %s is up to date" % (src.name, final))
                return final
            except UpdateError:
                pass                    # a bad file of this month: fetch it again
        say("fetching %s" % _redact(url, secrets))
        download = _tmp(dest)
        try:
            try:
                fetch(url, download)
            except FetchError as exc:
                if exc.status == 404 and i + 1 < len(months):
                    say("%s: %04d-%02d is not published yet (HTTP 404), trying %04d-%02d"
                        % ((src.name,) + month + months[i + 1]))
                    continue
                raise
            try:
                final, dbtype, size = install(download, dest, name)
            except UpdateError as exc:
                if os.path.exists(final):
                    raise UpdateError("%s; kept the old %s" % (exc, final))
                raise
        finally:
            _unlink(download)
        say("%s: installed %s (%s, %s)" % (src.name, final, dbtype or "MaxMind DB", _mb(size)))
        if dated:
            _prune(dest, file_t, name, say)
        return final
    raise UpdateError("not found")      # not reached: the last month raises


def _run(command, say, name):
    import shlex
    import subprocess
    argv = shlex.split(command)
    if not argv:
        raise UpdateError("empty run command")
    say("running %s" % command)
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
    except OSError as exc:
        raise UpdateError("cannot run %s: %s" % (argv[0], exc.strerror or exc))
    lines = [ln.strip() for ln in p.stdout.decode("utf-8", "replace").splitlines() if ln.strip()]
    if p.returncode != 0:
        raise UpdateError("%s failed (exit %d)%s" % (argv[0], p.returncode,
                                                    ": " + lines[-1][:200] if lines else ""))
    say("%s: %s finished" % (name, argv[0]))


def _redact(text, secrets):
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text
