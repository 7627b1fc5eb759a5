"""Display width (text.width/fit/cut/skip) against glibc's wcwidth, and the
columns of the text views with wide names."""

import ctypes
import ctypes.util
import locale
import os
import subprocess
import sys

import pytest

from flowtop.text import char_width, cut, fit, skip, width

from tests.viewutil import UNSAFE

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Characters people put in names: CJK, kana, Hangul, fullwidth forms, emoji,
# combining accents, and the narrow ones around them.
SAMPLES = ("東京タワー", "서울", "ｆｕｌｌ", "😀🚀🦊", "⌚⭐", "e\u0301", "naïve", "Ωμέγα",
           "Привет", "\u3000", "a\u20dd", "☃", "x")


@pytest.fixture(scope="module")
def wcwidth():
    lib = ctypes.util.find_library("c")
    if lib is None:
        pytest.skip("no libc")
    libc = ctypes.CDLL(lib)
    libc.wcwidth.argtypes = [ctypes.c_wchar]
    old = locale.setlocale(locale.LC_CTYPE)
    try:
        locale.setlocale(locale.LC_CTYPE, "C.UTF-8")
    except locale.Error:
        pytest.skip("no C.UTF-8 locale")
    yield lambda ch: libc.wcwidth(ch)
    locale.setlocale(locale.LC_CTYPE, old)


def test_width_agrees_with_glibc_wcwidth_on_names_people_use(wcwidth):
    for s in SAMPLES:
        assert width(s) == sum(wcwidth(c) for c in s), s


def test_every_cjk_hangul_kana_fullwidth_and_common_emoji_character_agrees(wcwidth):
    ranges = ((0x1100, 0x115F), (0x2E80, 0x2FDF), (0x3000, 0x30FF), (0x3400, 0x4DBF),
              (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xFF01, 0xFF60), (0x1F600, 0x1F64F),
              (0x1F680, 0x1F6C5), (0x1F910, 0x1F93A), (0x0300, 0x036F))
    bad = [hex(cp) for a, b in ranges for cp in range(a, b + 1)
           if wcwidth(chr(cp)) >= 0 and char_width(chr(cp)) != wcwidth(chr(cp))]
    assert not bad, bad[:20]


@pytest.mark.parametrize("s", SAMPLES + ("plain ascii text", ""))
@pytest.mark.parametrize("cols", [1, 2, 3, 5, 8, 20])
def test_fit_fills_exactly_the_columns_it_is_given(s, cols):
    for right in (False, True):
        out = fit(s, cols, right)
        assert width(out) == cols, (s, cols, out)
        if width(s) <= cols:
            assert out.strip() == s.strip()
        else:
            assert out.rstrip().endswith("\u2026") and width(cut(s, cols)) <= cols


def test_cut_and_skip_never_split_a_wide_character():
    assert cut("東京タワー", 3) == "東" and cut("東京タワー", 4) == "東京"
    assert skip("東京タワー", 2) == "京タワー" and skip("東京タワー", 3) == " タワー"
    assert width(skip("東京タワー", 3)) == width("東京タワー") - 3
    assert skip("e\u0301x", 1) == "x"            # the accent goes with its letter
    assert fit("", 0) == "" and fit("abc", 0) == ""


# -- the text views ---------------------------------------------------------------------------

WIDE_NAMES = ("東京タワー", "😀🚀", "서울서울서울서울", "plain")


def wide_names(e):
    """Every flow's process has a wide name (a different one per port)."""
    from flowtop.enrich.process import ProcInfo
    return ProcInfo(4242, WIDE_NAMES[(e.dport or 0) % len(WIDE_NAMES)], "root"), None


def test_text_frames_line_up_every_column_with_wide_process_names():
    import io
    from flowtop import cli
    from flowtop.enrich.bundle import Enrichment
    from flowtop.services import Services
    from flowtop.views.text import TextFrames
    from tests.test_redact import recorded_table
    table, when = recorded_table()
    from tests.test_bundle import FakeProcesses
    enrich = Enrichment(Services(), process=FakeProcesses(wide_names))
    out = io.StringIO()
    TextFrames(out, cli.parse(["--once"]), enrich).write_rows(table, when)
    lines = out.getvalue().splitlines()
    title = next(i for i, ln in enumerate(lines) if ln.startswith("PROCESS"))
    head = lines[title]
    rows = lines[title + 1:]
    assert len(rows) == 14 and any(width(r) != len(r) for r in rows)
    for r in rows:
        assert width(r) == width(head), r          # the right-aligned AGE ends with its title
        for t in ("PROTO", "STATE", "SERVICE", "SOURCE", "DESTINATION"):
            col = head.index(t)                    # ASCII: index = display column
            assert skip(r, col - 1)[:1] == " ", (t, r)   # the gap before its column


# -- the printable-ASCII fast paths of sanitize and place ---------------------------------

TEXTS = ("", "abc", "10.0.0.1:443", "a\x7fb", "\x1b[31mred", "tab\there", "x" * 70, "x" * 64,
         "\u202eevil", "naïve", "東京", "é", "a\u200bb", " lead", "trail ", "~!@#$%^&*()",
         "\x00", "\x9b", "name/1234", "a-long-process-name/41234")


def _plain_sanitize(value, max_len=64):
    """sanitize spelt out: every text through the pattern."""
    value = "" if value is None else value if isinstance(value, str) else str(value)
    value = UNSAFE.sub("?", value)
    return value[:max_len - 1] + "\u2026" if len(value) > max_len else value


@pytest.mark.parametrize("value", TEXTS + (None, 5, b"by\x1btes"))
def test_sanitize_equals_the_pattern_for_every_text(value):
    from flowtop.text import sanitize
    if isinstance(value, bytes):
        assert sanitize(value) == _plain_sanitize(value.decode("utf-8", "replace"))
    else:
        assert sanitize(value) == _plain_sanitize(value)
        assert sanitize(value, 8) == _plain_sanitize(value, 8)


def test_printable_ascii_is_placed_without_the_pattern(monkeypatch):
    """A --once text row made ~13 regex calls (40 % of its cost): ASCII that
    prints as it is needs none."""
    from flowtop import text
    from flowtop.views.columns import Column, place

    calls = []
    real = text._unsafe_table
    monkeypatch.setattr(text, "_unsafe_table", lambda r: calls.append(r) or real(r))
    cols = [(Column("a", "A", 12), 12), (Column("b", "B", 6, right=True), 6)]
    assert text.sanitize("10.0.0.1:443") == "10.0.0.1:443"
    assert place({"a": "10.0.0.1:443", "b": "1.2kB"}, cols) == "10.0.0.1:443  1.2kB"
    assert calls == []


@pytest.mark.parametrize("w", [1, 3, 8, 12, 70])
def test_place_equals_sanitize_then_fit_for_every_text(w):
    from flowtop.views.columns import Column, cut as cut_tailed, place
    from flowtop.text import sanitize
    for right in (False, True):
        for name in ("dst", "process"):
            col = Column(name, "X", w, right=right)
            for t in TEXTS:
                s = sanitize(t, 200)
                if right:
                    want = s.rjust(w)
                elif name == "process" and width(s) > w:
                    want = fit(cut_tailed(s, w, True), w)
                else:
                    want = fit(s, w)
                assert place({name: t}, [(col, w)]) == want, (t, w, right, name)


def test_a_line_whose_characters_are_all_one_column_is_measured_without_a_walk(monkeypatch):
    """A sort mark or an ellipsis made a line non-ASCII, and cut/width/skip/fit
    walked it a character at a time (a third of a draw on a mipsel router):
    such a line is measured by its length, with the same results."""
    from flowtop import text
    calls = []
    slow = text.char_width
    monkeypatch.setattr(text, "char_width", lambda ch: calls.append(ch) or slow(ch))
    line = "PROTO  STATE\u25bc  SRC  10.0.0.1:443 \u2192 203.0.113.9:51234  curl\u2026"
    assert text.width(line) == len(line) and text.cut(line, 20) == line[:20]
    assert text.skip(line, 7) == line[7:] and text.fit(line, 10) == line[:9] + "\u2026"
    assert calls == []
    # a wide or a combining character still takes the walk, and counts
    assert text.width("\u4e2d\u6587") == 4 and text.width("e\u0301") == 1
    assert text.cut("\u4e2d\u6587x", 3) == "\u4e2d" and text.skip("\u4e2d\u6587", 1) == " \u6587"
    assert calls


def test_the_quick_measure_agrees_with_the_walk_on_mixed_text():
    import random
    from flowtop import text
    alphabet = "ab1 :\u2026\u25b2\u2192\u00e9\u4e2d\uac00e\u0301\U0001f600\u200b"
    rnd = random.Random(12)
    for _ in range(500):
        s = "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 12)))
        walked = sum(map(text.char_width, s))
        assert text.width(s) == walked, s
        for cols in range(0, 14, 3):
            c = text.cut(s, cols)
            assert s.startswith(c) and sum(map(text.char_width, c)) <= cols, (s, cols)
            assert text.width(text.fit(s, cols)) == cols, (s, cols)


def test_measuring_and_sanitizing_any_text_needs_no_regular_expression():
    """A class of every wide range cost 4-21 ms of every start here (~1 s on a
    mipsel router), and ``re`` with its enum ~0.3 s there, for a sort mark
    or a name that is not ASCII (python3 -S: this host's site imports re)."""
    code = ("import sys\n"
            "import flowtop.text as t\n"
            "t.width('abc'); t.sanitize('abc')\n"
            "t.width('\\u25b2 \\u2026\\u4e2d'); t.cut('\\u4e2d\\u6587x', 3)\n"
            "t.sanitize('na\\u00efve \\u202eevil \\x1b[2J')\n"
            "print('re' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-S", "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["False"], out


def test_the_unsafe_code_points_are_the_unsafe_pattern_s_class():
    """sanitize's translation table against the pattern written out in the
    tests, over every code point."""
    from flowtop import text
    every = "".join(chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF)
    by_pattern = {ord(c) for c in UNSAFE.findall(every)}
    by_table = set(text._unsafe_table("?"))
    assert by_table == by_pattern and len(by_table) > 200
    assert every.translate(text._unsafe_table("?")) == UNSAFE.sub("?", every)
