"""What every personal-information rule shares: the finding, the message views, the rule seam.

Internal and unstable: import ``Finding`` and ``KINDS`` from ``logwarden.safety``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, fields
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


# A frozen dataclass's ``__init__`` sets every field through ``object.__setattr__``, which
# costs about as much as the rest of building a finding. ``Message.finding`` makes one per
# candidate, so it sets the slots through their descriptors instead: the same object (equal,
# hashable, frozen to anyone who assigns), built in half the time.
_new_object = object.__new__
# (Unpacked by name: a field added to Finding makes this line fail at import.)
_set_kind, _set_start, _set_end, _set_confidence, _set_reason = (
    getattr(Finding, field.name).__set__ for field in fields(Finding)
)


class Message:
    """One message being scanned: its views, and cheap facts that let rules skip work.

    The detector asks every rule's ``wants`` about almost every message (all but plain words
    without a cue word, ``plain``), so the facts they read are computed here, once, up front:
    two passes of ``bytes.translate`` over the view (together about the cost of a single
    regex search) give its words, its digit count, whether it has leetspeak and whether it is
    plain, and ``wants`` costs an attribute read or a set lookup. What few messages need, the
    leetspeak readings and the view with digit words spelled as digits, is built when asked.
    """

    __slots__ = (
        "_digits",
        "_leet_words",
        "digit_count",
        "leet",
        "max_digits",
        "original",
        "plain",
        "text",
        "view",
        "words",
    )

    def __init__(self, view: Normalized) -> None:
        self.original = view.original
        self.view = view
        self.text = text = view.text
        raw = text.encode("ascii", "ignore")
        runs = raw.translate(_LETTERS_ONLY).decode().split()
        # The runs of ASCII letters in the view ("i'm" gives "i" and "m").
        self.words = words = frozenset(runs)
        # The view by class of character: letters "a", digits "0", the symbols that stand for
        # letters in leetspeak ("@", "$", "|") "1", the other symbols rules look for ("#",
        # ":", "/", ".") "2", anything else " ". A character outside ASCII is anything else:
        # it separates what is on either side of it.
        spaced = raw if len(raw) == len(text) else text.encode("ascii", "replace")
        # (A str: "in" on bytes costs several times more.)
        classes = spaced.translate(_CLASSES).decode()
        # How many ASCII digits the view has.
        self.digit_count = digit_count = classes.count("0")
        # At most how many digits the view's digits and digit words stand for ("forty" is
        # two): fewer than a rule's shortest number and it has nothing to read.
        self.max_digits = digit_count
        if not words.isdisjoint(DIGIT_WORDS):
            self.max_digits += sum(2 for w in runs if w in DIGIT_WORDS)
        # Whether a digit or symbol touches a letter, as in leetspeak ("sn4p", "d0t"): a few
        # substring tests, several times cheaper than a regex search.
        self.leet = (digit_count > 0 or "1" in classes) and (
            "a0" in classes or "0a" in classes or "a1" in classes or "1a" in classes
        )
        # Whether the view is plain words, as most chat is: ASCII only, no digit or digit
        # word, no leetspeak and none of the symbols above. A rule wants a plain message only
        # if it has one of the rule's ``cue_words``.
        self.plain = (
            self.max_digits == 0
            and spaced is raw
            and not self.leet
            and "1" not in classes
            and "2" not in classes
        )
        self._leet_words: frozenset[str] | None = None
        self._digits: Normalized | None = None

    @property
    def leet_words(self) -> frozenset[str]:
        """The letter runs of the view read as leetspeak ("sn4p" gives "snap"), if any.

        Only for deciding which rules to run: the rules themselves match leetspeak with
        ``normalize.leet`` patterns and never read this folded text. Built when first asked
        for: a message whose words name what a rule looks for never is.
        """
        if self._leet_words is None:
            self._leet_words = frozenset()
            if self.leet:
                raw = self.text.encode("ascii", "ignore").translate(_LEET_LETTERS)
                self._leet_words = frozenset(raw.decode().split()) - self.words
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
            spelled = self.mentions(DIGIT_WORDS) or (self.leet and _lookalike_digits(self.text))
            self._digits = spell_digits(self.view) if spelled else self.view
        return self._digits

    def finding(
        self, view: Normalized, kind: str, start: int, end: int, confidence: float, reason: str
    ) -> Finding:
        """A finding for ``view.text[start:end]``, with its span mapped to the original."""
        if view.starts is not None:  # else the view is the original, lower-cased
            start, end = view.span(start, end)
        if not self.original[start:end].isascii():
            reason += _DISGUISED
        # At most 0.99, to two decimals. Confidences are sums of hundredths, so this is
        # round(x, 2), which formats the float in decimal first and costs several times more.
        confidence = round(confidence * 100) / 100 if confidence < 0.99 else 0.99
        finding: Finding = _new_object(Finding)  # Finding(kind, start, …), built faster
        _set_kind(finding, kind)
        _set_start(finding, start)
        _set_end(finding, end)
        _set_confidence(finding, confidence)
        _set_reason(finding, reason)
        return finding


def _byte_table(keep: bytes, *, other: int = 32) -> bytes:
    return bytes(c if c in keep else other for c in range(256))


_LOWER = bytes(range(97, 123))
_LETTERS_ONLY = _byte_table(_LOWER)
# Leetspeak read back as letters, everything else but letters a space.
_LEET_LETTERS = bytes(
    c if c in _LOWER else b"oieastbg"[b"01345789".index(c)] if c in b"01345789"
    else {64: 97, 36: 115, 124: 108}.get(c, 32)
    for c in range(256)
)  # fmt: skip
# Letters "a", digits "0", the symbols that stand for letters "1", the other symbols rules
# look for "2", everything else " ".
_CLASSES = bytes(
    97 if c in _LOWER else 48 if c in b"0123456789" else 49 if c in b"@$|"
    else 50 if c in b"#:/." else 32
    for c in range(256)
)  # fmt: skip
# Digits "0", the letters typed for them ("415 555 O1OO") "o", everything else " ".
_LOOKALIKE_CLASSES = bytes(48 if 48 <= c <= 57 else 111 if c in b"oil" else 32 for c in range(256))


def _lookalike_digits(text: str) -> bool:
    """Whether a letter typed for a digit ("o", "i", "l") touches a digit in ``text``."""
    classes = text.encode("ascii", "replace").translate(_LOOKALIKE_CLASSES).decode()
    return "0o" in classes or "o0" in classes


class Rule(Protocol):
    """A detector for one kind of personal information."""

    kind: str
    # The words that a plain message (``Message.plain``) needs for ``wants`` to say yes: a
    # plain message without any of them interests the rule in no way, and the detector does
    # not ask it. Empty for a rule that wants no plain message (one that reads numbers).
    cue_words: frozenset[str]

    def wants(self, message: Message) -> bool:
        """False only when the rule cannot find anything in ``message`` (cheap to ask)."""
        ...

    def find(self, message: Message) -> Iterator[Finding]:
        """Every finding of this rule's kind in ``message``, in any order, overlaps allowed."""
        ...


def context_before(text: str, start: int, pattern: re.Pattern[str], *, width: int) -> bool:
    """Whether ``pattern`` occurs in the ``width`` characters before ``start``."""
    return pattern.search(text, max(0, start - width), start) is not None
