"""Run flowtop as on OpenWrt's python3-light, from the tests (no pytest here).

``light/sitecustomize.py`` is the blocker: a directory first on PYTHONPATH
whose ``sitecustomize`` makes the modules python3-light lacks unimportable.
Flowtop runs under it in a subprocess of the Python running the tests
(``sys.executable``), so pytest itself keeps its own modules (it needs
unittest, logging, ...).

maxminddb: python3-light can only load maxminddb 2.x (3.x imports
importlib.metadata, which needs email).  ``scripts/ci-pythons.sh`` installs
``maxminddb<3`` per Python into ``build/routerpy/site-X.Y`` (a pip
``--target`` directory: nothing outside the checkout's build/ changes);
ROUTERPY_MAXMINDDB_SITE names another directory.  The blocker also blocks
``maxminddb.extension``, so it runs in pure-Python mode, as on a router.
"""

import os
import socket
import struct
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIGHT = os.path.join(REPO, "tests", "routerpy", "light")
FIXTURES = os.path.join(REPO, "tests", "fixtures")
MIXED = os.path.join(FIXTURES, "ctnetlink-mixed.rec")
CITY = os.path.join(FIXTURES, "geoip-city.mmdb")
ASN = os.path.join(FIXTURES, "geoip-asn.mmdb")
NCURSES_HINT = "python3-ncurses"
PYVER = "%d.%d" % sys.version_info[:2]


def maxminddb_site():
    """(directory or None, why not): a pip --target dir with maxminddb 2.x
    for this Python."""
    d = os.environ.get("ROUTERPY_MAXMINDDB_SITE") or os.path.join(
        REPO, "build", "routerpy", "site-" + PYVER)
    if not os.path.isfile(os.path.join(d, "maxminddb", "__init__.py")):
        return None, ("maxminddb<3 is not installed in %s (scripts/ci-pythons.sh "
                      "installs it: python -m pip install --target %s 'maxminddb<3')"
                      % (os.path.relpath(d, REPO), os.path.relpath(d, REPO)))
    versions = [n[len("maxminddb-"):-len(".dist-info")] for n in os.listdir(d)
                if n.startswith("maxminddb-") and n.endswith(".dist-info")]
    if not versions or any(not v.startswith("2.") for v in versions):
        return None, "%s holds maxminddb %s, not 2.x" % (d, ", ".join(versions) or "?")
    return d, ""


def env(blocked=True, path=(REPO,), geo_site=None, extra_block="", **more):
    """The environment of a flowtop child: the blocker first (if ``blocked``),
    then ``geo_site`` (maxminddb 2.x), then ``path`` (the checkout, or a .pyz)."""
    e = dict(os.environ)
    for k in ("PYTHONHOME", "PYTHONSTARTUP", "PYTHONNOUSERSITE", "ROUTERPY_EXTRA_BLOCK"):
        e.pop(k, None)
    parts = ([LIGHT] if blocked else []) + ([geo_site] if geo_site else []) + list(path)
    e["PYTHONPATH"] = os.pathsep.join(parts)
    e["PYTHONIOENCODING"] = "utf-8"
    if extra_block:
        e["ROUTERPY_EXTRA_BLOCK"] = extra_block
    e.update(more)
    return e


def run(argv, blocked=True, timeout=60, cwd=None, stdin=subprocess.DEVNULL, **envkw):
    """``sys.executable ARGV`` with ``env(...)``; a CompletedProcess (text)."""
    return subprocess.run([sys.executable] + list(argv), env=env(blocked, **envkw),
                          cwd=cwd or REPO, stdin=stdin, capture_output=True, text=True,
                          encoding="utf-8", errors="replace", timeout=timeout)


def flowtop(*args, **kw):
    return run(["-m", "flowtop"] + list(args), **kw)


def build_pyz(workdir, python=None, bytecode_for=None):
    """``scripts/build_pyz.py`` run on a staged copy of the checkout (just
    ``flowtop/`` and the script) in ``workdir``: the script walks its whole
    checkout, build/ included, where other jobs' files (even a mounted /proc)
    come and go.  ``bytecode_for``: its ``--python`` (X.Y or a path).
    Returns the .pyz path; raises with the script's stderr."""
    import shutil
    stage = os.path.join(workdir, "stage")
    shutil.copytree(os.path.join(REPO, "flowtop"), os.path.join(stage, "flowtop"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    os.makedirs(os.path.join(stage, "scripts"))
    shutil.copy2(os.path.join(REPO, "scripts", "build_pyz.py"), os.path.join(stage, "scripts"))
    out = os.path.join(workdir, "flowtop.pyz")
    r = subprocess.run([python or sys.executable, os.path.join(stage, "scripts", "build_pyz.py"),
                        "-o", out] + (["--python", bytecode_for] if bytecode_for else []),
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError("build_pyz.py failed: %s" % r.stderr[-2000:])
    shutil.rmtree(stage)
    return out


def flowtop_modules(root=os.path.join(REPO, "flowtop")):
    """Every module of the flowtop package, by walking its files."""
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x != "__pycache__")
        rel = os.path.relpath(d, os.path.dirname(root)).replace(os.sep, ".")
        for f in sorted(files):
            if f.endswith(".py"):
                out.append(rel if f == "__init__.py" else rel + "." + f[:-3])
    return sorted(out)


# -- a recording of flows to the GeoIP fixtures' networks --------------------------------

# Addresses of ctnetlink-mixed.rec (made by tests/record_fixtures.py from nsutil.INSERTED)
# and public ones of the same size in tests/fixtures/test-*.mmdb networks.
GEO_ADDRS = {
    "10.9.0.3": "81.2.69.3",          # GB London, AS20712
    "10.9.0.2": "89.160.20.2",        # SE Linköping, AS29518
    "10.9.0.5": "216.160.83.5",       # US Milton, no ASN
    "10.9.0.4": "175.16.199.4",       # CN, a hostile city name and AS name
    "2001:db8::2": "2001:218::2",     # JP Tokyo, AS2516
    "fd00::2": "2a02:cf40::2",        # NO Oslo, AS2119
}
GEO_EXPECT = {      # address -> (country, city, asn) as flowtop's JSON gives them
    "81.2.69.3": ("GB", "London", 20712),
    "89.160.20.2": ("SE", "Link\u00f6ping", 29518),
    "216.160.83.5": ("US", "Milton", None),
    "2001:218::2": ("JP", "Tokyo", 2516),
    "2a02:cf40::2": ("NO", "Oslo", 2119),
}


def _addr_attrs(addr):
    """The CTA_IP_V{4,6}_{SRC,DST} attributes (header + value, host-order
    header) that can carry ``addr`` in a ctnetlink message."""
    if ":" in addr:
        raw, types = socket.inet_pton(socket.AF_INET6, addr), (3, 4)
    else:
        raw, types = socket.inet_pton(socket.AF_INET, addr), (1, 2)
    return [struct.pack("=HH", 4 + len(raw), t) + raw for t in types]


def geo_recording(src=MIXED, mapping=GEO_ADDRS):
    """ctnetlink-mixed.rec with its test addresses replaced by ones in the GeoIP
    fixtures' networks.  Only whole address attributes are replaced (same
    length), so every message stays well formed."""
    with open(src, "rb") as f:
        data = f.read()
    for old, new in mapping.items():
        for a, b in zip(_addr_attrs(old), _addr_attrs(new)):
            data = data.replace(a, b)
    return data
