"""Strings that reach a terminal, and numbers people read.

``sanitize`` is the one gate for every string from the kernel, DNS, /proc,
GeoIP or a config file: no C0/C1 control characters, no bidi overrides or
other invisible format characters, length capped.  ``width``/``fit``/
``cut``/``skip`` measure text in terminal columns (a CJK character or an
emoji takes two).  Works without ``unicodedata`` (absent on OpenWrt's
python3-light).
"""

from bisect import bisect_right


# The characters sanitize replaces, as code point ranges for ``str.translate``: C0, DEL,
# C1; bidi embeddings/overrides/isolates; zero-width and other format characters;
# line/paragraph separators; BOM; specials; tags.  No ``re`` (with the enum it imports,
# ~0.3 s of a mipsel router's start) for a name that is not ASCII.
_UNSAFE_RANGES = ((0x00, 0x1F), (0x7F, 0x9F), (0xAD, 0xAD), (0x61C, 0x61C), (0x180E, 0x180E),
                  (0x200B, 0x200F), (0x2028, 0x202E), (0x2060, 0x206F), (0xFEFF, 0xFEFF),
                  (0xFFF9, 0xFFFB), (0xE0000, 0xE007F))
_TABLES = {}        # replacement -> {unsafe code point: replacement}
MAX_LEN = 64


def _unsafe_table(replacement):
    table = _TABLES.get(replacement)
    if table is None:
        table = {cp: replacement for a, b in _UNSAFE_RANGES for cp in range(a, b + 1)}
        if len(_TABLES) < 4:
            _TABLES[replacement] = table
    return table


def sanitize(value, max_len=MAX_LEN, replacement="?"):
    """Printable form of an untrusted string: unsafe characters replaced,
    cut to ``max_len`` characters (with an ellipsis)."""
    if value is None:
        return ""
    # Most texts are short printable ASCII, which the pattern leaves alone:
    # no regex for them (a --once text row made ~13 calls, 40 % of its cost).
    if type(value) is str and len(value) <= max_len and value.isascii() and value.isprintable():
        return value
    if not isinstance(value, str):
        if isinstance(value, (bytes, bytearray)):
            value = bytes(value).decode("utf-8", "replace")
        else:
            value = str(value)
    value = value.translate(_unsafe_table(replacement))
    if len(value) > max_len:
        value = value[:max_len - 1] + "\u2026"
    return value


# Display width without unicodedata (absent on python3-light): the East Asian
# wide/fullwidth blocks and emoji as glibc's wcwidth counts them (2 columns),
# and the common combining marks (0); everything else is 1.  Rare symbols of
# 1F300-1F6FF that glibc counts as 1 are counted 2 here: a table of 71 ranges
# instead of glibc's ~470.
_WIDTHS = (
    (0x0300, 0x036F, 0), (0x0483, 0x0489, 0), (0x0591, 0x05BD, 0), (0x0610, 0x061A, 0),
    (0x064B, 0x065F, 0), (0x1100, 0x115F, 2), (0x1160, 0x11FF, 0), (0x1AB0, 0x1AFF, 0),
    (0x1DC0, 0x1DFF, 0), (0x20D0, 0x20FF, 0), (0x231A, 0x231B, 2), (0x2329, 0x232A, 2),
    (0x23E9, 0x23EC, 2), (0x23F0, 0x23F0, 2), (0x23F3, 0x23F3, 2), (0x25FD, 0x25FE, 2),
    (0x2614, 0x2615, 2), (0x2648, 0x2653, 2), (0x267F, 0x267F, 2), (0x2693, 0x2693, 2),
    (0x26A1, 0x26A1, 2), (0x26AA, 0x26AB, 2), (0x26BD, 0x26BE, 2), (0x26C4, 0x26C5, 2),
    (0x26CE, 0x26CE, 2), (0x26D4, 0x26D4, 2), (0x26EA, 0x26EA, 2), (0x26F2, 0x26F3, 2),
    (0x26F5, 0x26F5, 2), (0x26FA, 0x26FA, 2), (0x26FD, 0x26FD, 2), (0x2705, 0x2705, 2),
    (0x270A, 0x270B, 2), (0x2728, 0x2728, 2), (0x274C, 0x274C, 2), (0x274E, 0x274E, 2),
    (0x2753, 0x2755, 2), (0x2757, 0x2757, 2), (0x2795, 0x2797, 2), (0x27B0, 0x27B0, 2),
    (0x27BF, 0x27BF, 2), (0x2B1B, 0x2B1C, 2), (0x2B50, 0x2B50, 2), (0x2B55, 0x2B55, 2),
    (0x2E80, 0x3029, 2), (0x302A, 0x302D, 0), (0x302E, 0x303E, 2), (0x3041, 0x3098, 2),
    (0x3099, 0x309A, 0), (0x309B, 0xA4CF, 2), (0xA960, 0xA97F, 2), (0xAC00, 0xD7A3, 2),
    (0xF900, 0xFAFF, 2), (0xFE00, 0xFE0F, 0), (0xFE10, 0xFE19, 2), (0xFE20, 0xFE2F, 0),
    (0xFE30, 0xFE6F, 2), (0xFF00, 0xFF60, 2), (0xFFE0, 0xFFE6, 2), (0x16FE0, 0x1B2FF, 2),
    (0x1F004, 0x1F004, 2), (0x1F0CF, 0x1F0CF, 2), (0x1F18E, 0x1F18E, 2),
    (0x1F191, 0x1F19A, 2), (0x1F200, 0x1F64F, 2), (0x1F680, 0x1F6FF, 2),
    (0x1F7E0, 0x1F7EB, 2), (0x1F900, 0x1F9FF, 2), (0x1FA70, 0x1FAFF, 2),
    (0x20000, 0x3FFFD, 2), (0xE0100, 0xE01EF, 0),
)
_STARTS = [a for a, _b, _w in _WIDTHS]


def char_width(ch):
    """Columns a terminal gives one (sanitized) character: 0, 1 or 2."""
    cp = ord(ch)
    if cp < 0x300:
        return 1
    i = bisect_right(_STARTS, cp) - 1
    if i >= 0 and cp <= _WIDTHS[i][1]:
        return _WIDTHS[i][2]
    return 1


# Every character outside _WIDTHS is one column: a text with none of them (most non-ASCII
# lines: a sort mark, an ellipsis) is measured by its length - a mipsel router spent a
# third of each draw walking such lines a character at a time.  Only its distinct
# characters from U+0300 on are looked up (set operations in C; a pattern of _WIDTHS'
# ranges took 21 ms to compile here, and ``re`` itself ~0.3 s of a mipsel start).
_LOW = []           # [the characters below U+0300], made on the first non-ASCII text


def _narrow(text):
    """Whether every character of ``text`` takes one column."""
    if text.isascii():
        return True
    if not _LOW:
        _LOW.append(frozenset(map(chr, range(0x300))))
    for c in set(text).difference(_LOW[0]):
        cp = ord(c)
        i = bisect_right(_STARTS, cp) - 1
        if i >= 0 and cp <= _WIDTHS[i][1]:
            return False
    return True


def width(text):
    """Display width of ``text`` in terminal columns (not ``len``)."""
    if _narrow(text):
        return len(text)
    return sum(map(char_width, text))


def cut(text, cols):
    """The longest start of ``text`` that fits in ``cols`` columns."""
    if _narrow(text):
        return text[:max(0, cols)]
    used = 0
    for i, ch in enumerate(text):
        used += char_width(ch)
        if used > cols:
            return text[:i]
    return text


def skip(text, cols):
    """``text`` without its first ``cols`` columns (sideways scrolling); a
    wide character cut in two leaves a space."""
    if _narrow(text):
        return text[cols:]
    used = 0
    for i, ch in enumerate(text):
        w = char_width(ch)
        if used >= cols and w:      # a combining mark goes with what it marks
            return text[i:]
        used += w
        if used > cols:
            return " " + text[i + 1:]
    return ""


def fit(text, cols, right=False):
    """``text`` in exactly ``cols`` columns: cut with an ellipsis, padded
    (on the left when ``right``)."""
    if cols <= 0:
        return ""
    if _narrow(text):
        if len(text) > cols:
            text = text[:cols - 1] + "\u2026"
        return text.rjust(cols) if right else text.ljust(cols)
    n = width(text)
    if n > cols:
        text = cut(text, cols - 1) + "\u2026"
        n = width(text)
    pad = " " * (cols - n)
    return pad + text if right else text + pad


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
