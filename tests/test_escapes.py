"""views/escapes.py: what an Esc from the terminal stands for, over a reader
of queued keys (no curses)."""

from flowtop.views.escapes import ESC_WAIT_MS, SEQ_WAIT_MS, after_escape


def reader(keys):
    waits = []

    def read(ms):
        waits.append(ms)
        return keys.pop(0) if keys else None
    return read, waits


def test_a_cursor_sequence_split_by_a_slow_link_is_that_key_and_each_byte_waits_longer():
    read, waits = reader(["[", "5", "~"])
    assert after_escape(read) == ["KEY_PPAGE"]
    assert waits == [ESC_WAIT_MS, SEQ_WAIT_MS, SEQ_WAIT_MS]


def test_esc_alone_esc_then_a_key_and_an_unknown_sequence():
    assert after_escape(reader([])[0]) == ["\x1b"]
    assert after_escape(reader(["x"])[0]) == ["\x1b", "x"]
    assert after_escape(reader(["\x1b", "O", "H"])[0]) == ["\x1b", "KEY_HOME"]
    assert after_escape(reader(["[", "9", "9", "~", "p"])[0]) == []
    assert after_escape(reader(["[", 338])[0]) == [338]      # curses decoded the rest itself
