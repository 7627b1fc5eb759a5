"""``flowtop -u``: download the GeoIP databases named in geoip.conf.

``update(conf_text=None, dest_dirs=DEST_DIRS, fetch=None, say=print,
today=None) -> int`` fetches every database of the configuration (the
package's ``conf/geoip.conf``, overridden by ``/etc/flowtop/geoip.conf``),
unpacks it (gzip, or MaxMind's tar.gz), checks that it is a MaxMind DB and
only then moves it over the old file with ``os.replace``: a failed or
corrupt download leaves the old database in place.  Messages go to ``say``,
one line each; errors are one line, never a traceback.  The exit status is
0 when every database is up to date, else 1.

Downloads use ``urllib`` when this Python has it, else ``uclient-fetch``
(OpenWrt), ``wget`` or ``curl``.  ``fetch(url, path)`` can be injected: it
writes the body to ``path`` or raises ``FetchError`` (``status`` is the HTTP
code when there is one).
"""

import os
import re
import time

from ..text import sanitize

DEST_DIRS = ("/var/lib/GeoIP", "/usr/share/GeoIP")
CONF_PATHS = ("/etc/flowtop/geoip.conf",)
MAGIC = b"\xab\xcd\xefMaxMind.com"
MAX_SIZE = 1 << 30                      # nothing we fetch is bigger than 1 GiB unpacked
MAXMIND_URL = ("https://download.maxmind.com/app/geoip_download"
               "?edition_id={edition}&license_key={license_key}&suffix=tar.gz")
TOOLS = ("uclient-fetch", "wget", "curl")
KEYS = ("url", "file", "previous_month", "attribution", "edition", "license_key", "run",
        "enabled")
_DATE_TOKENS = ("{YYYY-MM}", "{YYYY}", "{MM}")
_TMP_PREFIX = ".flowtop-geoip-"


class FetchError(Exception):
    """A download that failed; ``status`` is the HTTP status, if any."""

    def __init__(self, message, status=None):
        Exception.__init__(self, message)
        self.status = status


class NoFetcher(FetchError):
    """Nothing on this machine can download."""


class UpdateError(Exception):
    """One database could not be updated (a one-line reason)."""


# -- configuration ---------------------------------------------------------------------

class Source:
    """One ``[name]`` section of geoip.conf."""

    def __init__(self, name, values):
        self.name = name
        self.values = values

    def get(self, key, default=None):
        return self.values.get(key, default)

    def flag(self, key, default=False):
        v = self.values.get(key)
        if v is None:
            return default
        return v.strip().lower() in ("1", "yes", "true", "on")

    def __repr__(self):
        return "Source(%r)" % self.name


def parse_conf(text, where="geoip.conf"):
    """geoip.conf text -> [Source].  Raises UpdateError with the line number
    for a malformed line; unknown keys are kept (and ignored)."""
    defaults = {}
    sections = []
    current = defaults
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith(";"):
            continue
        if line.startswith("["):
            if not line.endswith("]") or not line[1:-1].strip():
                raise UpdateError("%s line %d: expected [name]" % (where, n))
            current = {}
            sections.append((line[1:-1].strip(), current))
            continue
        key, eq, value = line.partition("=")
        key = key.strip().lower()
        if not eq or not key or not re.match(r"^[a-z_][a-z0-9_]*$", key):
            raise UpdateError("%s line %d: expected key = value" % (where, n))
        current[key] = value.strip()
    return [Source(name, dict(defaults, **values)) for name, values in sections]


def read_conf(conf_paths=CONF_PATHS):
    """(text, where): the first readable of ``conf_paths``, else the
    package's conf/geoip.conf (read through the package's loader, so a zipapp works)."""
    for path in conf_paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read(), path
        except OSError:
            continue
    from .. import resources
    data = resources.get_data("conf/geoip.conf")
    if data is None:
        raise UpdateError("flowtop's conf/geoip.conf is missing from this install")
    return data.decode("utf-8", "replace"), "geoip.conf"


def _month(today):
    """(year, month) of ``today``: a date/datetime, a (year, month) pair, or
    None for the current month (UTC)."""
    if today is None:
        t = time.gmtime()
        return t.tm_year, t.tm_mon
    if isinstance(today, tuple):
        return int(today[0]), int(today[1])
    return today.year, today.month


def _previous(ym):
    y, m = ym
    return (y - 1, 12) if m == 1 else (y, m - 1)


def expand(template, ym, extra=None):
    y, m = ym
    out = (template.replace("{YYYY-MM}", "%04d-%02d" % (y, m))
           .replace("{YYYY}", "%04d" % y).replace("{MM}", "%02d" % m))
    for k, v in (extra or {}).items():
        out = out.replace("{%s}" % k, v)
    return out


def _is_dated(template):
    return any(t in template for t in _DATE_TOKENS)


def _default_file(source, url_template):
    if source.get("edition") and not source.get("url"):
        return source.get("edition") + ".mmdb"
    path = url_template.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    base = path.rsplit("/", 1)[-1]
    for suffix in (".tar.gz", ".tgz", ".gz"):
        if base.endswith(suffix):
            base = base[:-len(suffix)]
            break
    if not base.endswith(".mmdb"):
        base = source.name + ".mmdb"
    return base


def _check_name(name, section):
    if not name or "/" in name or name.startswith(".") or "\0" in name:
        raise UpdateError("%s: file = %r is not a plain file name" % (section, name))
    return name


# -- downloading -----------------------------------------------------------------------

def _which(name):
    from shutil import which
    return which(name)


def _import_urllib(url):
    """True when urllib can fetch ``url`` here (http.client needs email,
    https needs ssl: OpenWrt's python3-light has neither)."""
    try:
        import urllib.error  # noqa: F401
        import urllib.request  # noqa: F401
        if url.lower().startswith("https:"):
            import ssl  # noqa: F401
    except ImportError:
        return False
    return True


def _copy(src, dst, limit=MAX_SIZE):
    total = 0
    while True:
        chunk = src.read(1 << 16)
        if not chunk:
            return total
        total += len(chunk)
        if total > limit:
            raise UpdateError("more than %d MiB: not a GeoIP database" % (limit >> 20))
        dst.write(chunk)


def _user_agent():
    try:
        from .. import __version__
    except ImportError:
        __version__ = "0"
    return "flowtop/%s" % __version__


def urllib_fetch(url, path, timeout=60):
    import urllib.error
    import urllib.request
    req = urllib.request.Request(url, headers={"User-Agent": _user_agent()})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp, open(path, "wb") as out:
            _copy(resp, out)
    except urllib.error.HTTPError as exc:
        raise FetchError("HTTP %d %s" % (exc.code, exc.reason or ""), exc.code)
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, OSError) and reason.strerror:
            reason = reason.strerror
        raise FetchError("cannot reach %s: %s" % (_host(url), reason))
    except UpdateError:
        raise
    except Exception as exc:            # socket timeouts, http.client errors, ...
        raise FetchError("download from %s failed: %s" % (_host(url), exc or type(exc).__name__))


_STATUS = re.compile(r"(?:ERROR|[Ee]rror:?|HTTP/\d(?:\.\d)?)\s+(\d{3})\b")


def _tool_argv(tool, url, path):
    if tool == "uclient-fetch":
        return [tool, "-q", "-T", "60", "-O", path, url]
    if tool == "wget":                  # GNU and BusyBox both take these
        return [tool, "-T", "60", "-O", path, url]
    return [tool, "-fsSL", "--connect-timeout", "30", "--speed-limit", "1",
            "--speed-time", "120", "-o", path, url]


def tool_fetch(tool, url, path):
    """Download with an external program (output to ``path``)."""
    import subprocess
    argv = _tool_argv(tool, url, path)
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    except OSError as exc:
        raise FetchError("cannot run %s: %s" % (tool, exc.strerror or exc))
    if p.returncode == 0:
        if not os.path.exists(path):
            raise FetchError("%s wrote nothing" % tool)
        return
    err = (p.stderr or b"").decode("utf-8", "replace")
    m = _STATUS.search(err)
    status = int(m.group(1)) if m else None
    lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
    last = lines[-1] if lines else "exit status %d" % p.returncode
    if status is not None:
        raise FetchError("HTTP %d (%s)" % (status, tool), status)
    raise FetchError("%s failed: %s" % (tool, last[:200]))


def make_fetcher(use_urllib=None, which=None):
    """``fetch(url, path)`` with what this machine has: urllib when it can
    (``use_urllib`` None: when importable; False: never), else the first of
    uclient-fetch, wget, curl found by ``which``.  When nothing can fetch a
    URL, the fetcher raises ``NoFetcher`` with one line saying what to
    install."""
    which = which or _which

    def fetch(url, path):
        if use_urllib is not False and _import_urllib(url):
            return urllib_fetch(url, path)
        for tool in TOOLS:
            if which(tool):
                return tool_fetch(tool, url, path)
        https = url.lower().startswith("https:")
        raise NoFetcher(
            "cannot download: this Python has no urllib%s (opkg install python3-urllib%s) "
            "and none of %s is installed" % (" with ssl" if https else "",
                                             " python3-openssl" if https else "",
                                             ", ".join(TOOLS)))
    return fetch


def _host(url):
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]


# -- unpacking and checking ------------------------------------------------------------

def _head(path, n=512):
    with open(path, "rb") as f:
        return f.read(n)


def _gunzip(src, dst):
    try:
        import gzip
    except ImportError:
        raise UpdateError("this Python has no gzip module: cannot unpack the download")
    try:
        with gzip.open(src, "rb") as g, open(dst, "wb") as out:
            _copy(g, out)
    except UpdateError:
        raise
    except Exception as exc:            # OSError, EOFError, zlib.error
        raise UpdateError("corrupt download: not a valid gzip file (%s)" % (exc or "truncated"))


def _untar(src, dst):
    try:
        import tarfile
    except ImportError:
        raise UpdateError("this Python has no tarfile module: cannot unpack MaxMind's tar.gz")
    try:
        with tarfile.open(src, "r:*") as tf:
            for member in tf:
                if member.isfile() and member.name.endswith(".mmdb"):
                    f = tf.extractfile(member)
                    with open(dst, "wb") as out:
                        _copy(f, out)
                    return
    except UpdateError:
        raise
    except Exception as exc:
        raise UpdateError("corrupt download: not a valid tar file (%s)" % exc)
    raise UpdateError("the tar file holds no .mmdb database")


def check_mmdb(path):
    """The database_type of the MaxMind DB at ``path`` ('' if unknown);
    raises UpdateError when it is not one.  With maxminddb the file is
    opened, its search tree checked against its size and a few addresses
    looked up; without it, the metadata marker must be near the end."""
    size = os.path.getsize(path)
    try:
        import maxminddb
    except ImportError:
        maxminddb = None
    if maxminddb is None:
        with open(path, "rb") as f:
            f.seek(max(0, size - 128 * 1024))
            tail = f.read()
        if MAGIC not in tail:
            raise UpdateError("not a MaxMind DB file (no metadata marker)")
        return _meta_type(tail[tail.rfind(MAGIC) + len(MAGIC):])
    try:
        reader = maxminddb.open_database(path, maxminddb.MODE_AUTO)
    except Exception:                   # its text names our temp file: say it plainly
        raise UpdateError("not a MaxMind DB file")
    try:
        meta = reader.metadata()
        tree = meta.node_count * meta.record_size * 2 // 8
        if meta.node_count <= 0 or tree + 16 > size:
            raise UpdateError("not a valid MaxMind DB file (search tree larger than the file)")
        probes = ("1.1.1.1", "8.8.8.8", "81.2.69.160")
        if meta.ip_version == 6:
            probes += ("2001:4860:4860::8888", "2a00:1450::1")
        for addr in probes:
            reader.get(addr)
        return str(meta.database_type or "")
    except UpdateError:
        raise
    except Exception as exc:
        raise UpdateError("corrupt MaxMind DB file (%s)"
                          % str(exc).replace(path, "download").split("\n")[0][:120])
    finally:
        reader.close()


def _meta_type(meta):
    """database_type from raw metadata bytes, without maxminddb: the key
    string, then a short UTF-8 string (type 2, size < 29)."""
    i = meta.find(b"database_type")
    if i < 0 or i + 14 > len(meta):
        return ""
    ctrl = meta[i + 13]
    size = ctrl & 0x1F
    if ctrl >> 5 != 2 or size >= 29:
        return ""
    return meta[i + 14:i + 14 + size].decode("utf-8", "replace")


# -- installing ------------------------------------------------------------------------

def pick_dest(dest_dirs=DEST_DIRS):
    """The first of ``dest_dirs`` that is (or can be made) a writable
    directory, or None."""
    for d in dest_dirs:
        if not os.path.isdir(d):
            try:
                os.makedirs(d, 0o755)
            except OSError:
                continue
        if os.access(d, os.W_OK | os.X_OK):
            return d
    return None


def _tmp(dest):
    import tempfile
    fd, path = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".tmp", dir=dest)
    os.close(fd)
    return path


def install(download, dest, name):
    """Unpack ``download`` (gzip, tar or plain), check it, and move it onto
    ``dest/name`` atomically.  Returns (final path, database_type, size).
    The temp files live in ``dest`` and are removed whatever happens; each
    stage's input is removed once unpacked (a router's /var is RAM)."""
    temps = []
    try:
        current = download
        head = _head(current)
        if head[:2] == b"\x1f\x8b":
            temps.append(_tmp(dest))
            _gunzip(current, temps[-1])
            _unlink(current)
            current = temps[-1]
            head = _head(current)
        if len(head) >= 262 and head[257:262] == b"ustar":
            temps.append(_tmp(dest))
            _untar(current, temps[-1])
            _unlink(current)
            current = temps[-1]
        dbtype = check_mmdb(current)
        with open(current, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(current, 0o644)
        final = os.path.join(dest, name)
        os.replace(current, final)
        if current in temps:
            temps.remove(current)
        _fsync_dir(dest)
        return final, dbtype, os.path.getsize(final)
    finally:
        for t in temps:
            _unlink(t)


def _fsync_dir(d):
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _prune(dest, file_template, keep, say):
    """Remove other months of a dated file name (after a successful update)."""
    pattern = re.escape(file_template)
    for token, rx in (("{YYYY-MM}", r"\d{4}-\d{2}"), ("{YYYY}", r"\d{4}"), ("{MM}", r"\d{2}")):
        pattern = pattern.replace(re.escape(token), rx)
    rx = re.compile("^" + pattern + "$")
    try:
        names = os.listdir(dest)
    except OSError:
        return
    for name in names:
        if name != keep and rx.match(name):
            path = os.path.join(dest, name)
            if os.path.isfile(path):
                try:
                    os.unlink(path)
                    say("removed the older %s" % path)
                except OSError:
                    pass


def _mb(n):
    return "%.1f MB" % (n / 1e6) if n >= 100000 else "%d bytes" % n


# -- the command -----------------------------------------------------------------------

def update(conf_text=None, dest_dirs=DEST_DIRS, fetch=None, say=print, today=None,
           conf_paths=CONF_PATHS, force=False, which=None):
    """Fetch and install every database of the configuration; 0 when all
    are up to date, 1 otherwise (each failure said in one line)."""
    raw_say = say

    def say(line):                      # server and tool texts reach a terminal
        raw_say(sanitize(line, 400))

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
        return 1
    except OSError as exc:
        say("error: cannot read the GeoIP configuration: %s" % (exc.strerror or exc))
        return 1
    if not sources:
        say("error: no database to update in %s" % where)
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
    ran_geoipupdate = False
    for src in sources:
        secrets = [src.get("license_key")] if src.get("license_key") else []
        try:
            run = src.get("run")
            if not run and src.get("edition") and not src.get("license_key") \
                    and not src.get("url"):
                if not which("geoipupdate"):
                    raise UpdateError("edition %s needs license_key in geoip.conf, or "
                                      "geoipupdate installed" % src.get("edition"))
                if ran_geoipupdate:
                    continue
                run = "geoipupdate -d {dest}"
            if run:
                _run(expand(run, ym, {"dest": dest}), say, src.name)
                ran_geoipupdate = ran_geoipupdate or run.split()[0].endswith("geoipupdate")
            else:
                _update_one(src, dest, fetch, say, ym, force)
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
