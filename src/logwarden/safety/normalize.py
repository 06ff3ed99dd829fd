"""Normalisation for detection: undo the tricks people use to hide identifiers, keep a map back.

The detectors never look at the raw message. They look at a *view* of it in which

- every character is compatibility-decomposed (NFKD) and its combining marks are dropped, so
  fullwidth digits and letters (U+FF10…), mathematical digits (U+1D7CE…), circled digits and
  accented letters become plain ASCII; this is NFKC for everything the detectors read, minus
  the accents;
- keycap emoji (a digit, U+FE0F, U+20E3) keep only their digit;
- invisible characters are removed: zero-width spaces and joiners, word joiners, BOMs,
  bidirectional overrides and every other format or control character (tabs and newlines
  stay);
- Cyrillic and Greek letters that look like Latin ones (CYRILLIC SMALL LETTER A, GREEK SMALL
  LETTER RHO …) become those Latin letters;
- dashes become ``-`` and the text is lower-cased.

Every character of a view remembers the span of the original text it came from, so a match
in the view maps back to exactly the original characters that produced it, invisible
characters between them included (``Normalized.span``).

``spell_digits`` builds a second view for number detectors, in which digit words ("five",
"oh", "forty-three", "double two", leetspeak "f1ve") become digits. Leetspeak is never applied
to a whole view: turning "8th" into "bth" would mangle real numbers. Rules that look for cue
words match them through ``leet()`` patterns instead.

Pure ASCII text without control characters, which is most chat, takes a fast path: the view
is the lower-cased text and the map is the identity.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import NamedTuple, overload

from logwarden.safety._starts import gated

__all__ = [
    "DIGIT_WORD",
    "DIGIT_WORDS",
    "Normalized",
    "leet",
    "normalize",
    "rewrite",
    "spell_digits",
]

# Latin look-alikes from Cyrillic and Greek, by Unicode name (so this file shows no
# look-alike itself), both cases, applied after NFKD and before lower-casing. Only letters a
# reader takes for Latin at a glance: a full UTS #39 skeleton also folds symbols we do not
# need, and costs a dependency.
_LOOKALIKE_NAMES: dict[str, str] = {
    "CYRILLIC {} LETTER A": "a", "CYRILLIC {} LETTER VE": "b", "CYRILLIC {} LETTER IE": "e",
    "CYRILLIC {} LETTER DZE": "s", "CYRILLIC {} LETTER BYELORUSSIAN-UKRAINIAN I": "i",
    "CYRILLIC {} LETTER JE": "j", "CYRILLIC {} LETTER KA": "k", "CYRILLIC {} LETTER EM": "m",
    "CYRILLIC {} LETTER EN": "h", "CYRILLIC {} LETTER O": "o", "CYRILLIC {} LETTER ER": "p",
    "CYRILLIC {} LETTER ES": "c", "CYRILLIC {} LETTER TE": "t", "CYRILLIC {} LETTER U": "y",
    "CYRILLIC {} LETTER HA": "x", "CYRILLIC {} LETTER SHHA": "h", "CYRILLIC {} LETTER PE": "n",
    "CYRILLIC {} LETTER KOMI DE": "d", "CYRILLIC {} LETTER QA": "q", "CYRILLIC {} LETTER WE": "w",
    "CYRILLIC {} LETTER SOFT SIGN": "b", "CYRILLIC {} LETTER GHE": "r",
    "CYRILLIC {} LETTER IZHITSA": "v",
    "GREEK {} LETTER ALPHA": "a", "GREEK {} LETTER BETA": "b", "GREEK {} LETTER EPSILON": "e",
    "GREEK {} LETTER ZETA": "z", "GREEK {} LETTER ETA": "h", "GREEK {} LETTER IOTA": "i",
    "GREEK {} LETTER KAPPA": "k", "GREEK {} LETTER MU": "m", "GREEK {} LETTER NU": "v",
    "GREEK {} LETTER OMICRON": "o", "GREEK {} LETTER RHO": "p", "GREEK {} LETTER TAU": "t",
    "GREEK {} LETTER UPSILON": "y", "GREEK {} LETTER CHI": "x",
}  # fmt: skip
_OTHER_LOOKALIKES: dict[str, str] = {
    "CYRILLIC LETTER PALOCHKA": "l", "CYRILLIC SMALL LETTER PALOCHKA": "l",
    "LATIN SMALL LETTER SCRIPT G": "g", "LATIN SMALL LETTER DOTLESS I": "i",
    "LATIN SMALL LETTER DOTLESS J": "j", "LATIN SMALL LETTER L WITH STROKE": "l",
    "LATIN SMALL LETTER O WITH STROKE": "o", "LATIN SMALL LETTER D WITH STROKE": "d",
    "LATIN SMALL LETTER H WITH STROKE": "h",
    # separators people use in addresses and numbers
    "IDEOGRAPHIC FULL STOP": ".", "HALFWIDTH IDEOGRAPHIC FULL STOP": ".",
    "MIDDLE DOT": ".", "BULLET OPERATOR": ".", "SMALL COMMERCIAL AT": "@", "MINUS SIGN": "-",
}  # fmt: skip


def _lookalikes() -> dict[str, str]:
    table = {}
    for pattern, latin in _LOOKALIKE_NAMES.items():
        for case in ("SMALL", "CAPITAL"):
            try:
                table[unicodedata.lookup(pattern.format(case))] = latin
            except KeyError:  # not every letter exists in both cases
                continue
    table.update({unicodedata.lookup(name): latin for name, latin in _OTHER_LOOKALIKES.items()})
    return table


_CONFUSABLES = _lookalikes()

# Characters that disappear: format characters (zero-width space/joiners U+200B-200D, word
# joiner U+2060, BOM U+FEFF, bidi overrides), controls, lone surrogates and combining marks.
_DROPPED_CATEGORIES = frozenset({"Cf", "Cc", "Cs", "Mn", "Me", "Mc"})
_MARKS = frozenset({"Mn", "Me", "Mc"})
_KEPT_CONTROLS = frozenset("\t\n\r\x0b\x0c")
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_PLAIN_OR_ONE = re.compile(r"[\x20-\x7e\t\n\r\x0b\x0c]+|.", re.DOTALL)


class Normalized(NamedTuple):
    """A detection view of ``original``: ``text`` plus, per character, its original span.

    ``starts[i]``/``ends[i]`` are the original offsets of the characters that produced
    ``text[i]``. Both are ``None`` when the view is the identity map (the ASCII fast path).
    A named tuple rather than a frozen dataclass: one is made per message, and a tuple is
    several times cheaper to build.
    """

    original: str
    text: str
    starts: Sequence[int] | None = None
    ends: Sequence[int] | None = None

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span that produced ``text[start:end]`` (``end > start``)."""
        if self.starts is None or self.ends is None:
            return start, end
        return self.starts[start], self.ends[end - 1]

    def maps(self) -> tuple[Sequence[int], Sequence[int]]:
        """Both offset maps, materialised for the identity view."""
        if self.starts is None or self.ends is None:
            n = len(self.text)
            return range(n), range(1, n + 1)
        return self.starts, self.ends


@lru_cache(maxsize=8192)
def _fold_char(ch: str) -> str:
    """What one non-ASCII character becomes in the view ("" when it disappears)."""
    category = unicodedata.category(ch)
    if category in _DROPPED_CATEGORIES:
        return ""
    if category == "Pd":  # hyphens, en/em dashes, minus signs all separate digit groups
        return "-"
    if category in ("Zs", "Zl", "Zp"):
        return " "
    if category == "Nd":  # digits of any script (Arabic-Indic, Devanagari …) are digits
        return str(unicodedata.decimal(ch))
    out = []
    for part in unicodedata.normalize("NFKD", ch):
        if unicodedata.category(part) in _MARKS:
            continue
        out.append(_CONFUSABLES.get(part, part).lower())
    return "".join(out)


class _FoldTable(dict[int, str]):
    """Code point -> its folded form, for ``str.translate``; filled on first sight.

    Translating in C is an order of magnitude faster than a Python loop over characters.
    The table is emptied when it grows past ``_LIMIT`` entries, so text full of distinct
    rare characters cannot make it use unbounded memory.
    """

    _LIMIT = 65_536

    def __init__(self, *, marks_width: bool = False) -> None:
        super().__init__()
        # With marks_width, the table maps a character to "" when it folds to exactly one
        # character and to "x" otherwise: translating with it tells whether offsets move.
        self._marks_width = marks_width

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        if ch < "\x80":
            folded = ch.lower() if " " <= ch < "\x7f" or ch in _KEPT_CONTROLS else ""
        else:
            folded = _fold_char(ch)
        if self._marks_width:
            folded = "" if len(folded) == 1 else "x"
        if len(self) >= self._LIMIT:
            self.clear()
        self[code] = folded
        return folded


_FOLD = _FoldTable()
_WIDTH_CHANGES = _FoldTable(marks_width=True)
# Builds a view from all four fields without the named tuple's ``__new__``, a Python function
# that costs a third of normalising a plain message: every message gets a view.
_new_view = tuple.__new__


def normalize(text: str) -> Normalized:
    """Fold ``text`` into its detection view; never raises for any ``str``."""
    # isprintable() answers for most text at a third of the cost of the search.
    if text.isascii() and (text.isprintable() or not _ASCII_CONTROL.search(text)):
        return _new_view(Normalized, (text, text.lower(), None, None))
    if not text.translate(_WIDTH_CHANGES):
        # Every character folds to exactly one (fullwidth, look-alike letters, dashes):
        # offsets do not move and the identity map serves.
        return _new_view(Normalized, (text, text.translate(_FOLD), None, None))
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    # Printable ASCII runs are copied whole; only the other characters are looked at one by
    # one. Disguised messages are mostly ASCII with a few odd characters in them.
    for m in _PLAIN_OR_ONE.finditer(text):
        i = m.start()
        run = m.group()
        if len(run) > 1 or " " <= run < "\x7f" or run in _KEPT_CONTROLS:
            pieces.append(run.lower())
            starts.extend(range(i, i + len(run)))
            ends.extend(range(i + 1, i + len(run) + 1))
            continue
        folded = _FOLD[ord(run)]
        if folded:
            pieces.append(folded)
            starts.extend([i] * len(folded))
            ends.extend([i + 1] * len(folded))
        elif ends and unicodedata.category(run) in _MARKS:
            _attach_mark(ends, i + 1)
    return Normalized(text, "".join(pieces), starts, ends)


def _attach_mark(ends: list[int], end: int) -> None:
    """Grow the span of the last folded character over a mark that belongs to it.

    A mark (the keycap of 5️⃣, an accent) disappears from the view but is part of what the
    reader sees as that character, so a finding ending there must cover it.
    """
    last = ends[-1]
    j = len(ends) - 1
    while j >= 0 and ends[j] == last:
        ends[j] = end
        j -= 1


def rewrite(
    base: Normalized, pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str]
) -> Normalized:
    """A view of ``base`` with every match of ``pattern`` replaced, spans composed.

    Each replacement character maps to the whole original span of the text it replaced.
    Returns ``base`` itself when nothing matches.
    """
    text = base.text
    pieces: list[str] = []
    breaks: list[int] = []
    replaced: list[tuple[int, int, int]] = []
    pos = size = 0
    for m in pattern.finditer(text):
        start, end = m.span()
        new = replace(m)
        pieces += (text[pos:start], new)
        size += start - pos
        breaks.append(size)
        size += len(new)
        replaced.append((size, start, end))
        pos = end
    if not breaks:
        return base
    pieces.append(text[pos:])
    size += len(text) - pos
    old_starts, old_ends = base.maps()
    starts = _Spliced(old_starts, breaks, replaced, size, at_end=False)
    ends = _Spliced(old_ends, breaks, replaced, size, at_end=True)
    return Normalized(base.original, "".join(pieces), starts, ends)


class _Spliced(Sequence[int]):
    """The offset map of a view made by ``rewrite``, worked out for the offsets asked for.

    Detectors ask a view for the spans of a few findings, so a list per character, built
    per replacement, would cost more than everything they ask. Between replacements the new
    view copies ``base`` one to one; ``breaks[k]`` is where replacement ``k`` starts in the
    new view, and ``replaced[k]`` is (where it ends there, the ``base`` span it replaced).
    Each of its characters maps to the first (``at_end`` false) or the last character of
    that span.
    """

    __slots__ = ("_at_end", "_base", "_breaks", "_replaced", "_size")

    def __init__(
        self,
        base: Sequence[int],
        breaks: list[int],
        replaced: list[tuple[int, int, int]],
        size: int,
        *,
        at_end: bool,
    ) -> None:
        self._base = base
        self._breaks = breaks
        self._replaced = replaced
        self._size = size
        self._at_end = at_end

    def __len__(self) -> int:
        return self._size

    @overload
    def __getitem__(self, i: int) -> int: ...

    @overload
    def __getitem__(self, i: slice) -> list[int]: ...

    def __getitem__(self, i: int | slice) -> int | list[int]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._size))]
        if i < 0:
            i += self._size
        if not 0 <= i < self._size:
            raise IndexError(i)
        k = bisect.bisect_right(self._breaks, i) - 1
        if k < 0:
            return self._base[i]
        new_end, start, end = self._replaced[k]
        if i < new_end:
            return self._base[end - 1 if self._at_end else start]
        return self._base[end + i - new_end]


# Leetspeak substitutions people use inside words (0→o, 1→i/l, 3→e, 4→a, 5→s, 7→t, @→a …).
_LEET: dict[str, str] = {
    "a": "a4@",
    "b": "b8",
    "e": "e3",
    "g": "g9",
    "i": "i1|",
    "l": "l1|",
    "o": "o0",
    "s": "s5$",
    "t": "t7",
}


def leet(word: str) -> str:
    """A regex fragment matching ``word`` (lower case) with common leetspeak substitutions.

    Spaces in ``word`` match one optional space or dot or dash ("whats app", "tik-tok").
    """
    parts = []
    for ch in word:
        if ch == " ":
            parts.append(r"[ .\-]?")
        elif ch in _LEET:
            parts.append("[" + re.escape(_LEET[ch]) + "]")
        else:
            parts.append(re.escape(ch))
    return "".join(parts)


_UNITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_TEENS = (
    "ten", "eleven", "twelve", "thirteen", "fourteen",
    "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
)  # fmt: skip
_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")

_WORD_VALUE: dict[str, str] = {
    **{w: str(i) for i, w in enumerate(_UNITS)},
    **{w: str(10 + i) for i, w in enumerate(_TEENS)},
    **{w: str(20 + 10 * i) for i, w in enumerate(_TENS)},
    "oh": "0",
    "o": "0",
    "fourty": "40",  # a common misspelling
}


# Every plain word that the digit view turns into digits (leetspeak forms contain a digit).
DIGIT_WORDS = frozenset(_WORD_VALUE) | {"double", "triple"}


def _alternation(words: Sequence[str]) -> str:
    # Longest first, so "seventeen" is not read as "seven".
    return "|".join(leet(w) for w in sorted(words, key=len, reverse=True))


# "o" and "oh" are not leetspeak-matched: a lone "0" is a digit already.
_UNIT_RE = _alternation(_UNITS) + "|oh|o"
_TENS_RE = _alternation([*_TENS, "fourty"])
_TEENS_RE = _alternation(_TEENS)
# One digit word, a compound ("forty-three", "forty three"), or "double"/"triple" + a digit.
# Letters, digits and apostrophes on either side mean we are inside a word ("often", "one's").
# (``gated``: behind a lookahead of the characters a match can begin with.)
DIGIT_WORD = gated(
    rf"(?<![\w'])(?:"
    rf"(?P<tens>{_TENS_RE})(?:[ \-](?P<unit>{_alternation(_UNITS[1:])}))?"
    rf"|(?P<teen>{_TEENS_RE})"
    rf"|(?P<times>double|triple)[ \-](?P<rep>{_UNIT_RE}|\d)"
    rf"|(?P<single>{_UNIT_RE})"
    rf"|(?P<lookalike>(?=[oil]*\d)(?=\d*[oil])[0-9oil]{{2,}})"
    rf")(?![\w'])"
)
# Letters typed for digits inside a number: "415 555 O1OO".
_LOOKALIKE_DIGITS = str.maketrans({"o": "0", "i": "1", "l": "1"})

_LEET_BACK = str.maketrans({"4": "a", "@": "a", "8": "b", "3": "e", "9": "g", "1": "i",
                            "|": "i", "0": "o", "5": "s", "$": "s", "7": "t"})  # fmt: skip


def _word_digits(word: str) -> str:
    """The digits a (possibly leetspeak) digit word stands for."""
    plain = word.translate(_LEET_BACK)
    value = _WORD_VALUE.get(plain)
    if value is None:  # "e1ght" → "eight" → but "1" in "e1ght" became "i": try "l" readings
        value = _WORD_VALUE.get(plain.replace("i", "l"), "")
    return value


def _digit_replacement(m: re.Match[str]) -> str:
    # Most matches are one plain digit word ("five", "oh"), whose value is its entry: one
    # lookup instead of reading the groups.
    if (value := _WORD_VALUE.get(m.group())) is not None:
        return value
    if m["lookalike"] is not None:
        return m["lookalike"].translate(_LOOKALIKE_DIGITS)
    if m["tens"] is not None:
        tens = _word_digits(m["tens"])
        return tens[0] + _word_digits(m["unit"]) if m["unit"] else tens
    if m["times"] is not None:
        rep = m["rep"] if m["rep"].isdigit() else _word_digits(m["rep"])
        return rep * (2 if m["times"] == "double" else 3)
    return _word_digits(m["teen"] or m["single"])


def spell_digits(view: Normalized) -> Normalized:
    """``view`` with digit words written as digits ("five oh one" → "5 0 1").

    Only number detectors read this view; "o" and "oh" become 0 here, which is harmless
    because those detectors need long runs of digits.
    """
    return rewrite(view, DIGIT_WORD, _digit_replacement)
