"""What every personal-information rule shares: the finding, the message views, the rule seam.

Internal and unstable: import ``Finding`` and ``KINDS`` from ``logwarden.safety``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from logwarden.safety.normalize import DIGIT_WORDS, Normalized, spell_digits

__all__ = ["KINDS", "Finding", "Message", "Rule", "context_before"]

KINDS = ("phone", "email", "handle", "url", "address", "card", "ip", "age")

_DISGUISED = ", disguised with look-alike, fullwidth or invisible characters"


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of personal information found in a message.

    ``start``/``end`` are offsets into the original text: ``text[start:end]`` is what was
    found. ``reason`` explains the finding to a person and never repeats the value.
    """

    kind: str
    start: int
    end: int
    confidence: float
    reason: str

    def as_json(self) -> dict[str, object]:
        """The stable JSON form (docs/safety.md): kind, start, end, confidence, reason."""
        return {
            "kind": self.kind,
            "start": self.start,
            "end": self.end,
            "confidence": self.confidence,
            "reason": self.reason,
        }


class Message:
    """One message being scanned: its views, and cheap facts that let rules skip work.

    The facts (its words, how many digits it has, whether it looks like leetspeak) come from
    one pass of ``bytes.translate`` over the view, which costs about as much as a single
    regex search. Rules consult them in ``wants`` and before each of their regexes, so a
    chat line without digits or cue words costs a few set lookups.
    """

    __slots__ = (
        "_digits",
        "_leet",
        "_leet_words",
        "_letter_runs",
        "digit_count",
        "original",
        "text",
        "view",
        "words",
    )

    def __init__(self, view: Normalized) -> None:
        self.original = view.original
        self.view = view
        self.text = view.text
        raw = self.text.encode("ascii", "ignore")
        self._letter_runs = raw.translate(_LETTERS_ONLY).decode().split()
        # The runs of ASCII letters in the view ("i'm" gives "i" and "m").
        self.words = frozenset(self._letter_runs)
        # How many ASCII digits the view has.
        self.digit_count = len(raw.translate(None, _NON_DIGITS))
        self._leet: bool | None = None
        self._digits: Normalized | None = None
        self._leet_words: frozenset[str] | None = None

    @property
    def leet(self) -> bool:
        """Whether a digit or symbol touches a letter, as in leetspeak ("sn4p", "d0t")."""
        if self._leet is None:
            text = self.text
            symbols = self.digit_count or "@" in text or "$" in text or "|" in text
            self._leet = bool(symbols) and _LEET_TOUCH.search(text) is not None
        return self._leet

    @property
    def has_digit(self) -> bool:
        """Whether the view has an ASCII digit."""
        return self.digit_count > 0

    @property
    def spelled_count(self) -> int:
        """At most how many digits the digit words of the view stand for ("forty" is two)."""
        if self.words.isdisjoint(DIGIT_WORDS):
            return 0
        return sum(2 for w in self._letter_runs if w in DIGIT_WORDS)

    @property
    def leet_words(self) -> frozenset[str]:
        """The letter runs of the view read as leetspeak ("sn4p" gives "snap"), if any.

        Only for deciding which rules to run: the rules themselves match leetspeak with
        ``normalize.leet`` patterns and never read this folded text.
        """
        if self._leet_words is None:
            if self.leet:
                raw = self.text.encode("ascii", "ignore").translate(_LEET_LETTERS)
                self._leet_words = frozenset(raw.decode().split()) - self.words
            else:
                self._leet_words = frozenset()
        return self._leet_words

    def mentions(self, words: frozenset[str]) -> bool:
        """Whether any of ``words`` occurs in the view, plainly or in leetspeak."""
        return not self.words.isdisjoint(words) or (
            self.leet and not self.leet_words.isdisjoint(words)
        )

    @property
    def digits(self) -> Normalized:
        """The view with digit words spelled as digits ("five five" → "5 5")."""
        if self._digits is None:
            spelled = self.mentions(DIGIT_WORDS) or (
                self.leet and _LOOKALIKE.search(self.text) is not None
            )
            self._digits = spell_digits(self.view) if spelled else self.view
        return self._digits

    def finding(
        self, view: Normalized, kind: str, start: int, end: int, confidence: float, reason: str
    ) -> Finding:
        """A finding for ``view.text[start:end]``, with its span mapped to the original."""
        o_start, o_end = view.span(start, end)
        if not self.original[o_start:o_end].isascii():
            reason += _DISGUISED
        return Finding(kind, o_start, o_end, round(min(confidence, 0.99), 2), reason)


def _byte_table(keep: bytes, *, other: int = 32) -> bytes:
    return bytes(c if c in keep else other for c in range(256))


_LOWER = bytes(range(97, 123))
_LETTERS_ONLY = _byte_table(_LOWER)
_NON_DIGITS = bytes(c for c in range(256) if not 48 <= c <= 57)
# Leetspeak read back as letters, everything else but letters a space.
_LEET_LETTERS = bytes(
    c if c in _LOWER else b"oieastbg"[b"01345789".index(c)] if c in b"01345789"
    else {64: 97, 36: 115, 124: 108}.get(c, 32)
    for c in range(256)
)  # fmt: skip
_LEET_TOUCH = re.compile(r"[a-z][0-9@$|]|[0-9@$|][a-z]")
# Letters typed for digits inside a number ("415 555 O1OO").
_LOOKALIKE = re.compile(r"[0-9][oil]|[oil][0-9]")


class Rule(Protocol):
    """A detector for one kind of personal information."""

    kind: str

    def wants(self, message: Message) -> bool:
        """False only when the rule cannot find anything in ``message`` (cheap to ask)."""
        ...

    def find(self, message: Message) -> Iterator[Finding]:
        """Every finding of this rule's kind in ``message``, in any order, overlaps allowed."""
        ...


def context_before(text: str, start: int, pattern: re.Pattern[str], *, width: int) -> bool:
    """Whether ``pattern`` occurs in the ``width`` characters before ``start``."""
    return pattern.search(text, max(0, start - width), start) is not None
