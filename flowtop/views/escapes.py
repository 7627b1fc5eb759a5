"""The keys an Esc read from the terminal stands for.  Anything that
follows at once (Alt-x, a paste, a slow link delivering Esc and the next
key together) is the Esc key and then that key: both count.  A CSI/SS3
sequence curses did not decode (split by a slow link, or a key this
terminfo does not know) is read whole: a cursor key it names counts as
that key, any other is swallowed.  No curses here: ``read(ms)`` gives the
next key within ``ms`` milliseconds, or None.
"""

# After an Esc curses returned: how long the rest of a sequence may take to
# arrive (a slow SSH link splits "ESC [ A"), and then each of its bytes.
ESC_WAIT_MS, SEQ_WAIT_MS = 30, 100
# The cursor keys' sequences (after ESC [ or ESC O) in xterm's two modes.
SEQUENCES = {"A": "KEY_UP", "B": "KEY_DOWN", "C": "KEY_RIGHT", "D": "KEY_LEFT",
             "H": "KEY_HOME", "F": "KEY_END", "1~": "KEY_HOME", "4~": "KEY_END",
             "5~": "KEY_PPAGE", "6~": "KEY_NPAGE", "Z": "KEY_BTAB"}


def after_escape(read):
    """The keys (names or curses key numbers) an Esc just read stands for."""
    nxt = read(ESC_WAIT_MS)
    if nxt is None:
        return ["\x1b"]             # nothing follows: the Esc key itself
    if nxt == "\x1b":                # Esc Esc: the second may start a sequence
        return ["\x1b"] + after_escape(read)
    if nxt not in ("[", "O"):
        return ["\x1b", nxt]
    seq = ""
    for _ in range(16):              # parameters, then a final byte @..~
        c = read(SEQ_WAIT_MS)
        if c is None:
            break
        if not isinstance(c, str):
            return [c]               # curses decoded what came next itself
        seq += c
        if "@" <= c <= "~" and not (nxt == "[" and c == "["):
            break
    key = SEQUENCES.get(seq)
    return [] if key is None else [key]
