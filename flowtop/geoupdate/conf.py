"""geoip.conf for ``flowtop -u``: its sources, the month tokens of their
URLs and file names, and the errors of an update."""

import re
import time

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
