"""Redaction (``x``/``X``, ``--redact-local``/``--redact-remote``): the one
place that hides what identifies a flow's ends, for every output.

A hidden address is replaced by a tag (``local#3fa2c1``, ``remote#…``), and
what would identify it as well is dropped with it: its reverse-DNS name,
its GeoIP city and AS number/organisation.  The country stays: it names no
host, and the Countries view is built on it.  Ports, processes, users,
counters and interfaces are not addresses and are shown.

``flags`` is read at every call (a ViewState whose keys flip it, or the
frozen Options): anything with ``redact_local`` and ``redact_remote``.
"""

_SALT = []             # filled on first use: no work at import time

# A record's address keys and, per end, what is dropped with its address.
ADDRESS_KEYS = ("src", "dst", "reply_src", "reply_dst")
WITH_ADDRESS = {"src": ("src_host", "src_city", "src_asn"),
                "dst": ("dst_host", "dst_city", "dst_asn")}


class Redactor:
    """Hides addresses on the sides ``flags`` asks for; ``is_local(addr)``
    tells the sides apart."""

    __slots__ = ("is_local", "flags")

    def __init__(self, is_local, flags):
        self.is_local = is_local
        self.flags = flags

    @property
    def active(self):
        f = self.flags
        return bool(f.redact_local or f.redact_remote)

    def hides(self, addr):
        f = self.flags
        if addr is None or not (f.redact_local or f.redact_remote):
            return False
        return bool(f.redact_local if self.is_local(addr) else f.redact_remote)

    def tag(self, addr):
        # A random salt per process: a tag is stable within this run, in every
        # output (rows stay tellable apart), unlinkable across runs even with
        # PYTHONHASHSEED set; no hashlib, which python3-light may lack.
        if not _SALT:
            import os
            _SALT.append(os.urandom(8))
        return ("local#" if self.is_local(addr) else "remote#") + "%06x" % (
            hash((_SALT[0], addr)) & 0xFFFFFF)

    def address(self, addr):
        """``addr``, or its tag when hidden."""
        return self.tag(addr) if self.hides(addr) else addr

    def name(self, addr, name):
        """The reverse-DNS ``name`` of ``addr``, None when ``addr`` is hidden."""
        return None if name is None or self.hides(addr) else name

    def geo(self, addr, g):
        """GeoIP record ``g`` of ``addr``: itself, or only its country when
        ``addr`` is hidden (a city or an AS can single out a host)."""
        if g is None or not self.hides(addr):
            return g
        if hasattr(g, "_replace"):          # enrich.geoip.GeoRecord
            return g._replace(city=None, asn=None, org=None)
        return Country(getattr(g, "country", None), getattr(g, "country_name", None))

    def label(self, addr, name):
        """What names one remote host (the Hosts view): name, else address."""
        if self.hides(addr):
            return self.tag(addr)
        return name or addr or "-"

    def record(self, rec):
        """A flat JSON/CSV record (dict), redacted in place and returned."""
        if not self.active:
            return rec
        for end, extra in WITH_ADDRESS.items():
            if self.hides(rec.get(end)):
                for k in extra:
                    if k in rec:
                        rec[k] = None
        for k in ADDRESS_KEYS:
            rec[k] = self.address(rec.get(k))
        return rec


class Country:
    """A GeoIP record cut down to its country."""

    __slots__ = ("country", "country_name")
    city = asn = org = None

    def __init__(self, country, country_name):
        self.country, self.country_name = country, country_name


def of(flags, enrich):
    """The Redactor of ``flags`` over ``enrich``'s idea of local, or None
    when ``flags`` redact nothing (the outputs then take their fast paths)."""
    if not (flags.redact_local or flags.redact_remote):
        return None
    return Redactor(enrich.is_local if enrich is not None else _loopback_only, flags)


def _loopback_only(addr):
    from ..model import is_loopback
    return is_loopback(addr)
