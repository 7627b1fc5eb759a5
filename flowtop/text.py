"""Strings that reach a terminal, and numbers people read.

``sanitize`` is the one gate for every string from the kernel, DNS, /proc,
GeoIP or a config file: no C0/C1 control characters, no bidi overrides or
other invisible format characters, length capped.  Works without
``unicodedata`` (absent on OpenWrt's python3-light).
"""

import re

# C0, DEL, C1; bidi embeddings/overrides/isolates; zero-width and other
# format characters; line/paragraph separators; BOM; specials.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e"
    "\u2060-\u206f\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]"
)
MAX_LEN = 64


def sanitize(value, max_len=MAX_LEN, replacement="?"):
    """Printable form of an untrusted string: unsafe characters replaced,
    cut to ``max_len`` characters (with an ellipsis)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        if isinstance(value, (bytes, bytearray)):
            value = bytes(value).decode("utf-8", "replace")
        else:
            value = str(value)
    value = _UNSAFE.sub(replacement, value)
    if len(value) > max_len:
        value = value[:max_len - 1] + "\u2026"
    return value


_SI = ("", "k", "M", "G", "T", "P", "E")
_IEC = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")


def human(n, units="si", suffix="B"):
    """1234567 -> '1.2MB' (si), '1.2MiB' (iec) or '1234567B' (raw); None -> '-'."""
    if n is None:
        return "-"
    if units == "raw":
        return "%d%s" % (n, suffix)
    base, prefixes = (1024.0, _IEC) if units == "iec" else (1000.0, _SI)
    value = float(n)
    i = 0
    while abs(value) >= base and i < len(prefixes) - 1:
        value /= base
        i += 1
    if i == 0:
        return "%d%s" % (n, suffix)
    return ("%.1f%s%s" if value < 100 else "%.0f%s%s") % (value, prefixes[i], suffix)


def duration(seconds):
    """Seconds -> '45s', '12m3s', '5h2m', '3d4h'; None -> '-'."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return "%ds" % s
    if s < 3600:
        return "%dm%ds" % (s // 60, s % 60)
    if s < 86400:
        return "%dh%dm" % (s // 3600, s % 3600 // 60)
    return "%dd%dh" % (s // 86400, s % 86400 // 3600)
