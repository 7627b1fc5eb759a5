#!/usr/bin/env python3
"""Write the small GeoIP test databases in tests/fixtures/.

    pip install mmdb-writer        # test-data generation only
    python3 scripts/make_test_mmdb.py [OUTDIR]

Writes ``geoip-city.mmdb`` (database_type GeoLite2-City), ``geoip-country.mmdb``
(GeoLite2-Country), ``geoip-asn.mmdb`` (GeoLite2-ASN), all IPv6 trees holding
IPv4 networks too (at ::/96, as MaxMind's readers expect), and
``geoip-city-v4.mmdb``, an IPv4-only city tree.  The layout of the records
follows the GeoLite2/DB-IP lite schema (country.iso_code, country.names.en,
city.names.en, autonomous_system_number/organization).  One city and one AS
organisation carry hostile text (an escape sequence, BEL, U+202E) for the
sanitizer tests.  The networks are public prefixes with made-up data.

The output is deterministic (fixed build_epoch), so re-running it leaves
the committed files unchanged.  flowtop itself never imports mmdb_writer.
"""

import os
import sys

from mmdb_writer import MMDBWriter
from netaddr import IPSet

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD_EPOCH = 1714521600            # 2024-05-01T00:00:00Z

HOSTILE_CITY = "Evil\x1b[2J\x1b]0;pwned\x07Town\u202egnp.exe"
HOSTILE_ORG = "Bad\x1b[31mNet\u202e Ltd\x9b"


def country(code, name):
    return {"iso_code": code, "names": {"en": name, "de": name + " (de)"}}


# network -> (country iso, country name, city or None)
CITY = {
    "81.2.69.0/24": ("GB", "United Kingdom", "London"),
    "89.160.20.0/24": ("SE", "Sweden", "Link\u00f6ping"),
    "216.160.83.0/24": ("US", "United States", "Milton"),
    "175.16.199.0/24": ("CN", "China", HOSTILE_CITY),
    "2001:218::/32": ("JP", "Japan", "Tokyo"),
    "2a02:cf40::/29": ("NO", "Norway", "Oslo"),
}
# a network with only a registered country (no located country, no city)
REGISTERED_ONLY = {"67.43.156.0/24": ("BT", "Bhutan")}

COUNTRY = {
    "81.2.69.0/24": ("GB", "United Kingdom"),
    "89.160.20.0/24": ("SE", "Sweden"),
    "2001:218::/32": ("JP", "Japan"),
}

ASN = {
    "81.2.69.0/24": (20712, "Andrews & Arnold Ltd"),
    "89.160.20.0/24": (29518, "Bredband2 AB"),
    "175.16.199.0/24": (4837, HOSTILE_ORG),
    "2001:218::/32": (2516, "KDDI CORPORATION"),
    "2a02:cf40::/29": (2119, "Telenor Norge AS"),
}


class Writer(MMDBWriter):
    def _build_meta(self):
        meta = MMDBWriter._build_meta(self)
        meta["build_epoch"] = BUILD_EPOCH
        return meta


def _writer(database_type, ip_version=6):
    return Writer(ip_version=ip_version, database_type=database_type, languages=["en"],
                  description="flowtop test data (%s)" % database_type,
                  ipv4_compatible=ip_version == 6)


def city_records(v4_only=False):
    out = {}
    for net, (code, name, city) in CITY.items():
        if v4_only and ":" in net:
            continue
        rec = {"continent": {"code": "XX", "names": {"en": "Test"}},
               "country": country(code, name),
               "registered_country": country(code, name)}
        if city:
            rec["city"] = {"names": {"en": city}}
        out[net] = rec
    for net, (code, name) in REGISTERED_ONLY.items():
        out[net] = {"registered_country": country(code, name)}
    return out


def build(outdir):
    os.makedirs(outdir, exist_ok=True)
    written = []

    def save(w, name):
        path = os.path.join(outdir, name)
        w.to_db_file(path)
        written.append(path)

    w = _writer("GeoLite2-City")
    for net, rec in city_records().items():
        w.insert_network(IPSet([net]), rec)
    save(w, "geoip-city.mmdb")

    w = _writer("GeoLite2-City", ip_version=4)
    for net, rec in city_records(v4_only=True).items():
        w.insert_network(IPSet([net]), rec)
    save(w, "geoip-city-v4.mmdb")

    w = _writer("GeoLite2-Country")
    for net, (code, name) in COUNTRY.items():
        w.insert_network(IPSet([net]), {"country": country(code, name)})
    save(w, "geoip-country.mmdb")

    w = _writer("GeoLite2-ASN")
    for net, (number, org) in ASN.items():
        w.insert_network(IPSet([net]), {"autonomous_system_number": number,
                                        "autonomous_system_organization": org})
    save(w, "geoip-asn.mmdb")
    return written


def main(argv):
    outdir = argv[1] if len(argv) > 1 else os.path.join(REPO, "tests", "fixtures")
    for path in build(outdir):
        print("wrote %s (%d bytes)" % (os.path.relpath(path), os.path.getsize(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
