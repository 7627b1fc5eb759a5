"""GeoIP: country, city and AS of an address, from MaxMind DB (.mmdb) files.

``GeoIP.open(paths, dirs)`` finds the databases and returns a provider:
``lookup(addr) -> GeoRecord | None``, ``available``, ``reason`` (why not,
with the fix), ``databases``, ``close()``.  When the optional ``maxminddb``
module (2.x or later; its pure-Python reader is enough) or a database is
missing, the provider is a null one that answers None: flowtop runs on
without GeoIP and can show ``reason`` in one line.

Addresses that no database places (private, loopback, link-local, CGNAT,
multicast, unspecified, reserved) get a label record without a lookup:
country code ``--`` and the label as the country name.  Every looked-up
result is cached per address (bounded): a pure-Python lookup costs about
100 us.  Every string from a database passes ``text.sanitize``.

Nothing happens at import time; ``maxminddb`` is imported by ``open``.
"""

import os
import re
import time

from ..memo import Memo
from ..text import sanitize
from .georanges import GeoRecord, label, label_record, parse_address, special  # noqa: F401 (re-exported)

DEFAULT_DIRS = ("/etc/flowtop", "/usr/share/GeoIP", "/var/lib/GeoIP",
                "/usr/local/share/GeoIP", "/var/GeoIP")

# File names searched in each directory, with the kind each name suggests.
# The kind that counts is the one in the database's metadata.
_NAMES = (
    (re.compile(r"^GeoLite2-City\.mmdb$"), "city"),
    (re.compile(r"^GeoLite2-Country\.mmdb$"), "country"),
    (re.compile(r"^GeoLite2-ASN\.mmdb$"), "asn"),
    (re.compile(r"^dbip-city-lite-.*\.mmdb$"), "city"),
    (re.compile(r"^dbip-country-lite-.*\.mmdb$"), "country"),
    (re.compile(r"^dbip-asn-lite-.*\.mmdb$"), "asn"),
)
_DATED = re.compile(r"(\d{4})-(\d{2})(?!\d)")

CACHE_SIZE = 8192

# -- database files --------------------------------------------------------------------

def kind_of(database_type):
    """'city', 'country', 'asn' or None from a metadata database_type
    ("GeoLite2-City", "DBIP-Country-Lite", "GeoLite2-ASN", "GeoIP2-ISP",
    "DBIP-Location-ISP (compat=Enterprise)", ...)."""
    t = (database_type or "").lower()
    if "city" in t or "enterprise" in t or "location" in t:
        return "city"
    if "country" in t:
        return "country"
    if "asn" in t or "isp" in t:
        return "asn"
    return None


def _file_date(path, name):
    """Sort key, newest largest: (month of the YYYY-MM in the name, else of
    the modification time; the modification time)."""
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        mtime = 0.0
    m = _DATED.search(name)
    if m:
        return (int(m.group(1)) * 12 + int(m.group(2)) - 1, mtime)
    t = time.gmtime(mtime)
    return (t.tm_year * 12 + t.tm_mon - 1, mtime)


def candidates(dirs=DEFAULT_DIRS):
    """[(path, kind by name)] of the known database names in ``dirs``: the
    directories in order, in each the newest first (YYYY-MM in the name,
    else modification time)."""
    out = []
    for d in dirs:
        try:
            names = os.listdir(d)
        except OSError:
            continue
        found = []
        for name in names:
            for pattern, kind in _NAMES:
                if pattern.match(name):
                    path = os.path.join(d, name)
                    if os.path.isfile(path):
                        found.append((_file_date(path, name), name, path, kind))
                    break
        found.sort(key=lambda t: (t[0], t[1]), reverse=True)
        out.extend((path, kind) for _, _, path, kind in found)
    return out


def _none_found(dirs):
    where = " in " + ", ".join(dirs) if dirs else ""
    return "no GeoIP database found%s (flowtop -u downloads one)" % where


def _import_maxminddb():
    import maxminddb
    return maxminddb


def _import_reason(exc):
    """Why ``import maxminddb`` failed, with the fix, in one line."""
    missing = (getattr(exc, "name", None) or "").split(".")[0]
    if missing and missing != "maxminddb":
        # maxminddb 3 imports importlib.metadata, which needs email: absent
        # from OpenWrt's python3-light
        return ("maxminddb cannot load: this Python has no %s module "
                "(opkg install python3-%s, or pip install 'maxminddb<3')"
                % (sanitize(missing, 40), sanitize(missing, 40)))
    return "the maxminddb module is missing (pip install maxminddb)"


def _open_mode(maxminddb, mode):
    """maxminddb open mode for ours: 'auto' (C extension when built, else
    pure Python), 'pure' (pure Python with mmap, else plain file reads)."""
    if mode in (None, "auto"):
        return maxminddb.MODE_AUTO
    if mode == "pure":
        try:
            import mmap  # noqa: F401
            return maxminddb.MODE_MMAP
        except ImportError:
            return maxminddb.MODE_FILE
    return mode                         # a maxminddb MODE_* constant


class _Db:
    __slots__ = ("path", "kind", "type", "reader", "pure")

    def __init__(self, path, kind, dbtype, reader):
        self.path, self.kind, self.type, self.reader = path, kind, dbtype, reader
        self.pure = not type(reader).__module__.endswith("extension")


# -- providers -------------------------------------------------------------------------

class NullGeoIP:
    """No GeoIP: ``lookup`` answers None; ``reason`` says why and the fix."""

    available = False
    databases = ()
    pure = False

    def __init__(self, reason, notes=()):
        self.reason = reason
        self.notes = list(notes)

    def lookup(self, addr):
        return None

    def summary(self):
        return "GeoIP off: " + self.reason

    def close(self):
        pass


class GeoIP:
    """GeoIP over up to two open databases (city or country, and ASN)."""

    available = True
    reason = ""

    def __init__(self, place=None, asn=None, cache_size=CACHE_SIZE, notes=()):
        self._place = place             # _Db of kind city or country
        self._asn = asn                 # _Db of kind asn
        self.cache_size = max(16, int(cache_size))
        self._cache = Memo(self.cache_size)
        self.notes = list(notes)
        self.lookups = 0                # database lookups done (cache misses)

    @classmethod
    def open(cls, paths=(), dirs=DEFAULT_DIRS, mode="auto", cache_size=CACHE_SIZE):
        """A provider for the first usable databases: ``paths`` (given by
        the user, in order), then the known names in ``dirs``.  A city
        database is preferred to a country one; an ASN database is added
        when found.  Never raises: without the module or a database the
        provider is a ``NullGeoIP`` with its ``reason``."""
        found = candidates(dirs)
        if not paths and not found:     # nothing to open: no import (24 ms, a router's ~1 s)
            return NullGeoIP(_none_found(dirs))
        try:
            maxminddb = _import_maxminddb()
        except ImportError as exc:
            return NullGeoIP(_import_reason(exc))
        omode = _open_mode(maxminddb, mode)
        notes = []
        place = asn = None
        pinned = False                  # the place database is one the user named
        explicit = [(p, None) for p in (paths or ())]
        for path, name_kind in explicit + found:
            if asn is not None and place is not None and (pinned or place.kind == "city") \
                    and name_kind is not None:
                break                   # all found: no more directory files to open
            try:
                reader = maxminddb.open_database(path, omode)
            except Exception as exc:    # missing, unreadable or not an MMDB
                if name_kind is None:   # only the user's own paths are worth a note
                    notes.append("%s: %s" % (sanitize(path, 200), _short(exc)))
                continue
            try:
                dbtype = str(getattr(reader.metadata(), "database_type", "") or "")
            except Exception:
                dbtype = ""
            kind = kind_of(dbtype) or name_kind
            if kind is None or _have(kind, place, asn, pinned and name_kind is not None):
                if name_kind is None:
                    notes.append("%s: %s database not used (%s)" % (
                        sanitize(path, 200), kind or "unknown", sanitize(dbtype, 40)))
                reader.close()
                continue
            db = _Db(path, kind, sanitize(dbtype, 40), reader)
            if kind == "asn":
                asn = db
            else:
                if place is not None:   # a city database replaces a country one
                    place.reader.close()
                place = db
                pinned = name_kind is None
        if place is None and asn is None:
            why = _none_found(dirs)
            if notes:
                why = notes[-1] + "; " + why
            return NullGeoIP(why, notes)
        return cls(place, asn, cache_size, notes)

    @property
    def databases(self):
        return tuple(d.path for d in (self._place, self._asn) if d is not None)

    @property
    def pure(self):
        """True when lookups run in pure Python (no C extension)."""
        return any(d.pure for d in (self._place, self._asn) if d is not None)

    def summary(self):
        """One line for the UI/notes: which databases, which reader."""
        parts = ["%s (%s)" % (os.path.basename(d.path), d.type or d.kind)
                 for d in (self._place, self._asn) if d is not None]
        return "GeoIP: %s%s" % (", ".join(parts), ", pure Python" if self.pure else "")

    def lookup(self, addr):
        """GeoRecord of ``addr`` (str or ipaddress object), or None when no
        database knows it or it is no address.  Cached per address."""
        cache = self._cache
        try:
            return cache[addr]
        except KeyError:
            pass
        except TypeError:               # unhashable: not an address
            return None
        return cache.put(addr, self._resolve(addr))

    def _resolve(self, addr):
        ip = parse_address(addr)
        if ip is None:
            return None
        lbl = special(ip)
        if lbl is not None:
            return label_record(lbl)
        self.lookups += 1
        code = cname = city = number = org = None
        if self._place is not None:
            r = _get(self._place.reader, ip)
            if r is not None:
                c = r.get("country")
                if not isinstance(c, dict):
                    c = r.get("registered_country")
                if isinstance(c, dict):
                    code = _str(c.get("iso_code"), 3)
                    cname = _name(c, 32)
                ct = r.get("city")
                if isinstance(ct, dict):
                    city = _name(ct, 32)
        if self._asn is not None:
            r = _get(self._asn.reader, ip)
            if r is not None:
                n = r.get("autonomous_system_number")
                if isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 1 << 32:
                    number = n
                org = _str(r.get("autonomous_system_organization"), 48)
        if code is None and cname is None and city is None and number is None and org is None:
            return None
        return GeoRecord(code, cname, city, number, org, None)

    def close(self):
        for d in (self._place, self._asn):
            if d is not None:
                try:
                    d.reader.close()
                except Exception:
                    pass
        self._place = self._asn = None
        self._cache.clear()


def _have(kind, place, asn, pinned=False):
    """Is a database of ``kind`` still wanted?  No if the slot is filled: a
    city fills the place slot for good, a country until a city comes
    (unless the user named it)."""
    if kind == "asn":
        return asn is not None
    if place is None:
        return False
    return pinned or kind == "country" or place.kind == "city"


def _get(reader, ip):
    try:
        r = reader.get(ip)
    except Exception:                   # IPv6 in an IPv4 tree, a corrupt file: unknown
        return None
    return r if isinstance(r, dict) else None


def _str(value, max_len):
    if not isinstance(value, str) or not value:
        return None
    return sanitize(value, max_len) or None


def _name(d, max_len):
    names = d.get("names")
    if not isinstance(names, dict):
        return None
    v = names.get("en")
    if not isinstance(v, str):
        v = next((x for x in names.values() if isinstance(x, str)), None)
    return _str(v, max_len)


def _short(exc):
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    return sanitize(text, 80)
