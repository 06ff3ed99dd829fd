"""How people disguise what they type, as functions and Hypothesis strategies for the tests.

Look-alike characters are built from their Unicode names, so no test file shows one.
"""

from __future__ import annotations

import unicodedata

from hypothesis import strategies as st

ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff")
BIDI_OVERRIDES = ("\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2069")
KEYCAP = "\ufe0f\u20e3"

# Latin letter -> a Cyrillic or Greek letter that looks the same.
HOMOGLYPHS = {
    "a": unicodedata.lookup("CYRILLIC SMALL LETTER A"),
    "c": unicodedata.lookup("CYRILLIC SMALL LETTER ES"),
    "e": unicodedata.lookup("CYRILLIC SMALL LETTER IE"),
    "i": unicodedata.lookup("CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I"),
    "j": unicodedata.lookup("CYRILLIC SMALL LETTER JE"),
    "o": unicodedata.lookup("GREEK SMALL LETTER OMICRON"),
    "p": unicodedata.lookup("CYRILLIC SMALL LETTER ER"),
    "s": unicodedata.lookup("CYRILLIC SMALL LETTER DZE"),
    "x": unicodedata.lookup("CYRILLIC SMALL LETTER HA"),
    "y": unicodedata.lookup("CYRILLIC SMALL LETTER U"),
    "k": unicodedata.lookup("GREEK SMALL LETTER KAPPA"),
    "t": unicodedata.lookup("GREEK SMALL LETTER TAU"),
}


def fullwidth(text: str) -> str:
    """``text`` in fullwidth forms (U+FF01…): digits, letters and punctuation."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def math_bold(text: str) -> str:
    """Digits and lower-case letters of ``text`` as mathematical bold characters."""
    out = []
    for c in text:
        if c.isdigit():
            out.append(chr(0x1D7CE + int(c)))
        elif "a" <= c <= "z":
            out.append(chr(0x1D41A + ord(c) - ord("a")))
        else:
            out.append(c)
    return "".join(out)


def keycaps(text: str) -> str:
    """Every digit of ``text`` as a keycap emoji (the digit, U+FE0F, U+20E3)."""
    return "".join(c + KEYCAP if c.isdigit() else c for c in text)


def homoglyphs(text: str) -> str:
    """Every letter of ``text`` that has a Cyrillic or Greek twin, replaced by it."""
    return "".join(HOMOGLYPHS.get(c, c) for c in text)


def disguise(value: str, ops: list[int]) -> str:
    """``value`` with one operation per character: keep, zero-width after, fullwidth, twin.

    ``ops[i] % 4`` picks the operation for character ``i``; characters without a
    fullwidth form or a twin are kept. Zero-width characters go only between characters, so
    the disguised value starts and ends with a visible one.
    """
    out = []
    for i, c in enumerate(value):
        op = ops[i % len(ops)] % 4 if ops else 0
        if op == 2 and "!" <= c <= "~":
            c = fullwidth(c)
        elif op == 3:
            c = HOMOGLYPHS.get(c, c)
        out.append(c)
        if op == 1 and i < len(value) - 1:
            out.append(ZERO_WIDTH[i % len(ZERO_WIDTH)])
    return "".join(out)


operations = st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=40)
