"""Make this Python look like OpenWrt's python3-light (tests only).

A directory holding this file, put first on PYTHONPATH, makes every Python
started with that environment refuse the modules python3-light lacks, so
``python -m flowtop ...`` runs as it would on a router.  ``site`` imports
``sitecustomize`` at start-up, after PYTHONPATH is on ``sys.path``; nothing
else is needed (``-I``/``-E``/``-S`` turn it off, so the tests never use them).

Blocked, with their submodules: BLOCKED, OTHER_SPLIT, and PY39_BLOCKED on 3.9;
``codecs.lookup('idna')`` fails because ``encodings.idna`` is blocked.
``maxminddb.extension`` is blocked too: the router has no compiler, so
maxminddb runs in pure-Python mode there.  ROUTERPY_EXTRA_BLOCK (names
separated by commas or spaces) adds names, e.g. ``zipfile`` on every version
to show that zipimport does without it.
"""

import sys

BLOCKED = (
    "curses", "_curses", "_curses_panel",
    "ctypes", "_ctypes",
    "logging",
    "urllib",
    "email",
    "unittest",
    "unicodedata",
    "encodings.idna",
    "concurrent",
    "decimal", "_decimal", "_pydecimal",
    "sqlite3", "_sqlite3",
    "asyncio", "_asyncio",
    "multiprocessing", "_multiprocessing", "_posixshmem",
    "ssl", "_ssl",
    "lzma", "_lzma",
    "maxminddb.extension",
)
# The rest of what OpenWrt ships in separate packages or not at all
# (openwrt/packages lang/python/python3: files/python3-package-*.mk and the
# python3-light filespec in the Makefile).
OTHER_SPLIT = (
    "_codecs_cn", "_codecs_hk", "_codecs_iso2022", "_codecs_jp", "_codecs_kr", "_codecs_tw",
    "_hashlib",                                     # python3-openssl (hashlib falls back)
    "xml", "xmlrpc", "pyexpat", "_elementtree",     # python3-xml
    "cgi", "cgitb", "doctest", "pydoc", "pydoc_data", "dbm", "_dbm", "_gdbm",
    "distutils", "lib2to3", "readline", "uuid", "_uuid", "venv", "ensurepip",
    "webbrowser", "idlelib", "tkinter", "_tkinter", "turtledemo",
)
# Blocked on Python 3.9 as well: flowtop must do without them there.
PY39_BLOCKED = ("pathlib", "importlib.resources", "zipfile")


def blocked_names(version=None, extra=None):
    import os
    version = sys.version_info if version is None else version
    names = list(BLOCKED + OTHER_SPLIT)
    if tuple(version[:2]) == (3, 9):
        names.extend(PY39_BLOCKED)
    if extra is None:
        extra = os.environ.get("ROUTERPY_EXTRA_BLOCK", "")
    names.extend(n for n in extra.replace(",", " ").split() if n)
    return tuple(names)


class LightBlocker:
    """A meta path finder, first on sys.meta_path: blocked names (and their
    submodules) raise ModuleNotFoundError, as if they were not installed."""

    def __init__(self, names):
        self.names = frozenset(names)

    def blocked(self, fullname):
        parts = fullname.split(".")
        return any(".".join(parts[:i]) in self.names for i in range(1, len(parts) + 1))

    def find_spec(self, fullname, path=None, target=None):
        if self.blocked(fullname):
            raise ModuleNotFoundError(
                "No module named %r (not in OpenWrt's python3-light)" % fullname,
                name=fullname)
        return None


def install(names=None):
    names = blocked_names() if names is None else names
    for finder in sys.meta_path:
        if isinstance(finder, LightBlocker) or type(finder).__name__ == "LightBlocker":
            return finder
    finder = LightBlocker(names)
    sys.meta_path.insert(0, finder)
    # Anything imported before us (start-up) would otherwise stay usable.
    for mod in list(sys.modules):
        if finder.blocked(mod):
            del sys.modules[mod]
            parent, _, child = mod.rpartition(".")
            if parent in sys.modules:
                try:
                    delattr(sys.modules[parent], child)
                except AttributeError:
                    pass
    # The idna codec is found through encodings.idna, blocked above; a fresh
    # interpreter has not looked it up yet, so no codec cache holds it.
    return finder


install()
