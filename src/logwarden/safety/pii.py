"""Personal-information detection for one chat message, run before the message is relayed.

``detect(text)`` returns the personal information a message would give away: phone numbers,
email addresses, social and messaging handles, web addresses, street addresses, payment
cards, IP addresses, and a participant stating that they are a minor (``KINDS``). Each
``Finding`` carries its span in the original text, a confidence and a reason a person can
read; the reason never repeats the value.

How it works:

1. The message is normalised (``normalize.py``): invisible characters, look-alike letters,
   fullwidth and keycap digits stop mattering, and every character keeps its original span.
2. Each rule first says, from cheap facts about the message (has it a digit, an ``@``, one
   of the rule's cue words?), whether it could find anything. Most chat lines are plain
   words that interest no rule, and one set lookup for the cue words of all of them says so.
3. A rule that is interested looks for candidates with bounded regular expressions and
   checks them (phonenumbers for phones, Luhn for cards, ``ipaddress`` for IPs, context words
   for everything that could be an ordinary number or word). Rules walk a pattern's matches
   with a loop of ``search`` calls, not ``finditer``, whose scanner costs more to set up than
   most scans of a chat message take.
4. Findings of one kind never overlap (the most confident wins), and a finding inside a more
   specific one of another kind is dropped (a phone number inside a card number, a URL
   inside an email address).

The rules live in private modules: ``_phones`` (phone), ``_numbers`` (card, ip),
``_contact`` (email, url), ``_handles`` (handle) and ``_personal`` (address, age).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from logwarden.safety._base import KINDS, Finding, Message, Rule
from logwarden.safety._contact import EmailRule, UrlRule
from logwarden.safety._handles import HandleRule
from logwarden.safety._numbers import CardRule, IpRule
from logwarden.safety._personal import AddressRule, AgeRule
from logwarden.safety._phones import PhoneRule
from logwarden.safety.normalize import normalize

__all__ = ["DEFAULT_REGIONS", "KINDS", "Finding", "PiiDetector", "detect"]

# Regions whose national phone formats are tried for numbers written without "+": the
# English-speaking countries. Numbers written with "+" or "00" are read for every country.
DEFAULT_REGIONS: tuple[str, ...] = ("US", "GB", "CA", "AU", "IE", "NZ", "IN")

# A finding of the key's kind is dropped when it overlaps one of these kinds: the other
# finding explains the same characters better.
_OUTRANKED_BY: dict[str, tuple[str, ...]] = {
    "phone": ("card", "ip", "email", "url"),
    "ip": ("url", "email"),
    "url": ("email",),
    "handle": ("email",),
    "address": ("phone", "card"),
}
# Kinds that can both claim the same characters, where the more confident finding wins:
# "my @ is name.gg" is a username, "my fb is facebook.com/name" is a web address.
_CONTESTED: dict[str, tuple[str, ...]] = {"url": ("handle",), "handle": ("url",)}
# Every kind that can drop a finding of the key's kind.
_RIVALS = {kind: _OUTRANKED_BY.get(kind, ()) + _CONTESTED.get(kind, ()) for kind in KINDS}


class PiiDetector:
    """Finds personal information in single messages; build once, call ``detect`` often.

    Args:
        regions: ISO 3166 region codes whose national phone number formats are accepted
            for numbers written without a country code.
        min_confidence: findings below this confidence (0..1) are not reported.
    """

    def __init__(
        self, *, regions: Sequence[str] = DEFAULT_REGIONS, min_confidence: float = 0.5
    ) -> None:
        self._rules: tuple[Rule, ...] = (
            PhoneRule(regions),
            CardRule(),
            IpRule(),
            EmailRule(),
            UrlRule(),
            HandleRule(),
            AddressRule(),
            AgeRule(),
        )
        # Bound methods, looked up once: detect() runs on every chat message.
        self._steps = tuple((rule.wants, rule.find) for rule in self._rules)
        self._cue_words = frozenset().union(*(rule.cue_words for rule in self._rules))
        self._min_confidence = min_confidence

    def detect(self, text: str) -> list[Finding]:
        """The personal information in ``text``: sorted by start, no overlaps within a kind.

        Accepts any ``str`` (empty, huge, lone surrogates, control characters) and never
        raises for one.
        """
        message = Message(normalize(text))
        if message.plain and message.words.isdisjoint(self._cue_words):
            # Plain words, none of which cues a rule (``Rule.cue_words``): no rule wants the
            # message, and asking all eight costs more than the rest of it. Most chat ends
            # here.
            return []
        found: list[Finding] = []
        for wants, find in self._steps:
            if wants(message):
                found.extend(find(message))
        if not found:
            return found
        if len(found) == 1:  # most messages with a finding: nothing to resolve
            return found if found[0].confidence >= self._min_confidence else []
        return _resolve([f for f in found if f.confidence >= self._min_confidence])


def _resolve(findings: list[Finding]) -> list[Finding]:
    """One finding per stretch of text and kind, the best first; outranked kinds dropped."""
    if len(findings) < 2:
        return findings
    ordered = sorted(findings, key=_position)
    if _apart(ordered):
        # Nothing overlaps, so every finding is chosen and none is outranked: what
        # ``_resolve_all`` would return, at a fraction of its cost.
        return ordered
    if len(ordered) == 2:
        first, second = ordered
        if first.end > first.start and second.end > second.start:
            # Two findings that overlap (they are not apart, and neither is empty): the
            # usual case of a message with more than one, as an email address spelled out
            # and the domain in it.
            best, other = sorted(ordered, key=_rank)
            return _resolve_pair(best, other)
    return _resolve_all(findings)


def _resolve_all(findings: list[Finding]) -> list[Finding]:
    """``_resolve`` for any findings: the best of each stretch of each kind is chosen, then
    those that a finding of another kind outranks are dropped.

    O(n log n): a message built to produce thousands of findings stays cheap.
    """
    by_kind: dict[str, list[Finding]] = {}
    for f in sorted(findings, key=_rank):
        chosen = by_kind.setdefault(f.kind, [])
        if not _overlaps(chosen, f):
            chosen.insert(bisect.bisect_left(chosen, f.start, key=_start), f)
    kept = [f for chosen in by_kind.values() for f in chosen if not _outranked(f, by_kind)]
    kept.sort(key=_position)
    return kept


def _resolve_pair(best: Finding, other: Finding) -> list[Finding]:
    """``_resolve_all`` for two findings that overlap, ``best`` ranked first (``_rank``)."""
    if best.kind == other.kind:
        return [best]
    kept = [f for f, rival in ((best, other), (other, best)) if not _beats(rival, f)]
    kept.sort(key=_position)
    return kept


def _position(finding: Finding) -> tuple[int, int, str]:
    return finding.start, finding.end, finding.kind


def _rank(finding: Finding) -> tuple[float, int, int]:
    """The most confident first, then the longest, then the first."""
    return -finding.confidence, finding.start - finding.end, finding.start


def _apart(ordered: list[Finding]) -> bool:
    """Whether no two findings overlap, for findings sorted by position.

    Each must end after it starts and before the next one starts: then no two of them share
    a character (and no two have the same position, so the order is the one ``_resolve``
    sorts by).
    """
    end = -1
    for finding in ordered:
        if finding.start < end or finding.end <= finding.start:
            return False
        end = finding.end
    return True


def _start(finding: Finding) -> int:
    return finding.start


# Two helpers rather than one generator: a generator costs more to start than the few
# findings a message has cost to look at.


def _overlaps(chosen: list[Finding], finding: Finding) -> bool:
    """Whether a finding of ``chosen`` (sorted, none overlapping another) overlaps ``finding``."""
    i = max(0, bisect.bisect_left(chosen, finding.start, key=_start) - 1)
    while i < len(chosen) and chosen[i].start < finding.end:
        if chosen[i].end > finding.start:
            return True
        i += 1
    return False


def _overlapping(chosen: list[Finding], finding: Finding) -> list[Finding]:
    """The findings of ``chosen`` (sorted, none overlapping another) that overlap ``finding``."""
    overlapping = []
    i = max(0, bisect.bisect_left(chosen, finding.start, key=_start) - 1)
    while i < len(chosen) and chosen[i].start < finding.end:
        if chosen[i].end > finding.start:
            overlapping.append(chosen[i])
        i += 1
    return overlapping


def _outranked(finding: Finding, by_kind: dict[str, list[Finding]]) -> bool:
    for kind in _RIVALS.get(finding.kind, ()):
        for other in _overlapping(by_kind.get(kind, []), finding):
            if _beats(other, finding):
                return True
    return False


def _beats(other: Finding, finding: Finding) -> bool:
    """Whether ``other``, of another kind and overlapping ``finding``, drops it."""
    if other.kind in _OUTRANKED_BY.get(finding.kind, ()):
        return True
    if other.kind not in _CONTESTED.get(finding.kind, ()):
        return False
    # On a tie "url" beats "handle" (the comparison of kinds): a web address says more.
    return (other.confidence, other.kind) > (finding.confidence, finding.kind)


_DEFAULT = PiiDetector()


def detect(text: str) -> list[Finding]:
    """``PiiDetector().detect(text)`` with the default settings, built once per process."""
    return _DEFAULT.detect(text)
