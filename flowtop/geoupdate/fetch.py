"""Downloading for ``flowtop -u``: urllib where this Python has it (with
ssl for https), else uclient-fetch (OpenWrt), wget or curl."""

import os
import re

from .conf import MAX_SIZE, TOOLS, FetchError, NoFetcher, UpdateError


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
