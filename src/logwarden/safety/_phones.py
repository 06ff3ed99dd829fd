"""The rule for phone numbers: national or international, formatted, spaced out or spelled.

Internal and unstable. Candidates are runs of digits (in the digit view, so "five five five
oh one two three" is one) with the separators people put in phone numbers. A candidate is a
phone number when it has a possible length and fits the numbering plan of one of the
detector's regions, or of its country when it starts with "+" or "00"; context words raise
or lower the confidence ("call me", "text") or veto it ("order", "lobby code").

Validation uses phonenumbers' metadata. ``phonenumbers.parse`` and ``is_valid_number`` cost
tens of microseconds a call, more than everything else the detector does with a message, so
``_NumberingPlan`` reads the same metadata once and answers the same question with a few
precompiled regexes (tests/safety/test_pii.py checks that it agrees with phonenumbers).
Numbers written with "+" are read the same way (``_check_international``); phonenumbers itself
is asked only about those whose national prefix it would strip ("+44 (0)20 …").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneMetadata

from logwarden.safety._base import Finding, Message
from logwarden.safety._numbers import (
    NOT_CONTACT_WORDS,
    NUMBER_END,
    NUMBER_NOT_CONTACT,
    NUMBER_START,
    digits_of,
    is_spelled,
)
from logwarden.safety._patterns import alternation, wordset
from logwarden.safety.normalize import Normalized

__all__ = ["PhoneRule"]

# Words that, shortly before a number, make it a phone number.
_PHONE_CUE_WORDS = wordset(
    """
    call text txt phone number num cell mobile tel digits ring whatsapp signal sms hmu
    contact reach dial imessage facetime viber nr ph cel fone
    """
)
_PHONE_CUE = re.compile(
    r"\b" + alternation(sorted(_PHONE_CUE_WORDS), leetspeak=True) + r"|\b(?:my|the|a)[ ]?#|\bno\."
)
# A unit right after the number: it counts something.
_COUNTED = re.compile(
    r"[ ]?(?:robux|coins?|points?|pts|xp|views|likes|followers|subs|subscribers|dollars|bucks"
    r"|usd|eur|gbp|euros?|pounds|yen|people|times|miles|km|steps|kills|years?|days?|hours?"
    r"|minutes?|mins?|seconds?|secs?|ms|bytes|kb|mb|gb|tb|k|m|b|x|votes|downloads|plays"
    r"|gold|gems|credits)\b"
)


# Digits of counting up to 30 and down from 9: "1 2 3 4 5 6 7 8" is not a number to call.
_COUNTING_UP = "".join(str(i) for i in range(31))
_COUNTING_DOWN = "9876543210"


class PhoneRule:
    """Phone numbers: national or international, formatted, spaced out or spelled as words."""

    kind = "phone"
    cue_words: frozenset[str] = frozenset()  # every number has a digit or a digit word

    _SEP = r"(?:[ ]{0,2}[\-.)(][ ]{0,2}|[ \t]{1,3}|,[ ]{1,2})"
    # Each step is a digit, or a separator and a digit. No separator starts with a digit, so
    # the two never both match, and trying the digit first (most steps are one) spares the
    # engine three failed separators a digit: a fifth of the cost of this scan.
    _CANDIDATE = re.compile(
        rf"{NUMBER_START}(?P<plus>\+[ ]?|00[ ]?)?\(?\d(?:\d|{_SEP}\d){{5,19}}{NUMBER_END}"
    )
    # Layouts people use for phone numbers; a match adds confidence.
    _LAYOUT = re.compile(
        r"(?:\+?1[ .\-]?)?\(?\d{3}\)?[ .\-]?\d{3}[ .\-]\d{4}"  # North America
        r"|0\d{4}[ ]?\d{6}|0\d{3}[ ]\d{3}[ ]\d{4}|0\d{2}[ ]\d{4}[ ]\d{4}"  # UK
        r"|(?:\+|00)[ ]?\d{1,3}[ .\-]?\(?\d{1,5}\)?(?:[ .\-]\d{1,6}){1,5}"  # international
        r"|\d{3}[\-.]\d{4}"  # local
    )
    # Not right after a point or comma: the digits after a decimal point are no number of
    # their own ("33101.03887226801").
    _LAYOUT_PART = re.compile(
        rf"(?<![\d+.,])(?P<plus>(?=\+|00))?(?:{_LAYOUT.pattern})(?![\d.,]\d|\d)"
    )
    _SPACED = re.compile(r"\d(?:[ .\-]{1,3}\d){6,}")
    # Shapes that are not phone numbers even when phonenumbers might accept the digits.
    _NOT_PHONE = re.compile(
        r"\d{4}[\-.]\d{1,2}[\-.]\d{1,2}|\d{1,2}[\-.]\d{1,2}[\-.]\d{2,4}"  # dates
        r"|\d{1,3}(?:\.\d{1,3}){3}"  # IPv4
        r"|\d{4,}\.\d{1,2}"  # a decimal amount
        r"|(?!\d{3}\.\d{4}\Z)\d+\.\d+"  # any decimal: one point between two runs of digits
        # (but for 555.0123, a local number written with a point: see _LOCAL_OR_DECIMAL)
        r"|\d{1,2}\.\d{1,2}\.\d+(?:\.\d+)?"  # a version or build number (10.0.19045)
    )

    _LOCAL_OR_DECIMAL = re.compile(r"\d{3}\.\d{4}")

    def __init__(self, regions: Sequence[str]) -> None:
        # Regions that share a country code ("US" and "CA" share +1) share one reading.
        by_code: dict[int, list[PhoneMetadata]] = {}
        for code in regions:
            meta = PhoneMetadata.metadata_for_region(code.upper())
            if meta is None or meta.country_code is None:
                raise ValueError(f"unknown phone region {code!r}: use ISO 3166 codes like 'US'")
            by_code.setdefault(meta.country_code, []).append(meta)
        self._plans = [_NumberingPlan.load(code, metas) for code, metas in by_code.items()]
        # Every way of writing a national number, of every plan, in one flat tuple (prefix,
        # whether it is written in full, the plan's lengths, its validity check): ``_check``
        # reads bare digits in one loop instead of asking each plan in turn, which costs a
        # call and a tuple per plan, most of the check for digits no plan accepts.
        self._readings = tuple(
            (prefix, in_full, plan.lengths, plan.is_valid)
            for plan in self._plans
            for prefix, in_full in plan.prefixes
        )
        self._local_lengths = frozenset().union(*(plan.local_lengths for plan in self._plans))
        # Numbers written with "+" are mostly of these countries: compile their plans now
        # (+1 has 25 regions, about 40 ms) rather than while a chat message waits.
        for country_code in by_code:
            _country(country_code)

    def wants(self, message: Message) -> bool:
        return message.max_digits >= 7

    def find(self, message: Message) -> Iterator[Finding]:
        view = message.digits
        # Context regexes run only if the message has one of their words at all.
        text = message.text
        cued = message.mentions(_PHONE_CUE_WORDS) or "#" in text or "no." in text
        blocked = message.mentions(NOT_CONTACT_WORDS)
        pos = 0
        while (m := self._CANDIDATE.search(view.text, pos)) is not None:
            pos = m.end()
            digits = digits_of(m.group())
            finding = self._judge(message, view, m, digits, cued=cued, blocked=blocked)
            if finding is not None:
                yield finding
            elif len(digits) > 11:
                # "202-555-0143 415-555-0199": two numbers with only a space between them
                # are one run of digits; try the phone-shaped parts of the run on their own.
                yield from self._parts(message, view, m, cued=cued, blocked=blocked)

    def _parts(
        self, message: Message, view: Normalized, run: re.Match[str], *, cued: bool, blocked: bool
    ) -> Iterator[Finding]:
        """The phone numbers among the phone-shaped parts of a run of digits."""
        pos, end = run.span()
        while (part := self._LAYOUT_PART.search(view.text, pos, end)) is not None:
            pos = part.end()
            digits = digits_of(part.group())
            finding = self._judge(message, view, part, digits, cued=cued, blocked=blocked)
            if finding is not None:
                yield finding

    def _judge(
        self,
        message: Message,
        view: Normalized,
        m: re.Match[str],
        digits: str,
        *,
        cued: bool,
        blocked: bool,
    ) -> Finding | None:
        """The finding for the candidate ``m`` whose digits are ``digits``, if it is one."""
        raw = m.group()
        if not 7 <= len(digits) <= 15:
            return None
        # Every shape _NOT_PHONE knows has a point or a dash.
        if ("." in raw or "-" in raw) and self._NOT_PHONE.fullmatch(raw):
            return None
        if digits in _COUNTING_UP or digits in _COUNTING_DOWN:
            return None  # "1 2 3 4 5 6 7 8 9 10" is counting
        text = view.text
        cue_end = _last_end(_PHONE_CUE, text, m.start(), width=40) if cued else -1
        block_end = _last_end(NUMBER_NOT_CONTACT, text, m.start(), width=30) if blocked else -1
        # The nearer word decides: "my order number is …" is an order (the blocker's match
        # takes its "number" with it), "order? no, call me at …" is a phone.
        if block_end >= 0 and block_end >= cue_end:
            return None
        cue = cue_end >= 0
        if not cue and _COUNTED.match(text, m.end()):
            return None
        valid, possible = self._check(digits, international=m["plus"] is not None)
        if not possible:
            return None
        if not (valid or cue) and self._LOCAL_OR_DECIMAL.fullmatch(raw):
            return None  # "115.7405": a decimal, unless the number is real or named a phone
        spelled = is_spelled(message, view, m.start(), m.end())
        spaced = self._SPACED.fullmatch(raw) is not None and not self._LAYOUT.fullmatch(raw)
        if spaced and not (valid or cue or spelled or self._cued_after(text, m.end(), cued)):
            # "I rolled 5 5 5 1 2 3 4": digits typed apart make no number unasked (digits
            # spelled as words, "five five five oh one …", are written to hide one; "… text
            # me" after them asks).
            return None
        confidence = (0.75 if valid else 0.45) + 0.2 * cue
        confidence += 0.15 * (self._LAYOUT.fullmatch(raw.strip("() ")) is not None)
        confidence += 0.15 * (spelled or spaced)
        if confidence < 0.6:
            return None
        how = (
            " written with words or letters for digits"
            if spelled
            else " with its digits spaced apart"
            if spaced
            else ""
        )
        reason = f"a{'' if valid else ' possible'} phone number{how}"
        return message.finding(view, self.kind, m.start(), m.end(), confidence, reason)

    @staticmethod
    def _cued_after(text: str, end: int, cued: bool) -> bool:
        """Whether a phone cue follows the number closely ("5 5 5 0 1 9 9 text me")."""
        return cued and _PHONE_CUE.search(text, end, end + 16) is not None

    def _check(self, digits: str, *, international: bool) -> tuple[bool, bool]:
        """(valid, possible) for the digits, as an international number or in any region."""
        if international:  # a "+" number has one reading; regions do not apply
            number = digits.removeprefix("00")
            answer = _check_international(number)
            return answer if answer is not None else _check_with_phonenumbers(number)
        # Valid if any plan reads the digits, in full, as a valid national number; possible if
        # any reads them as a number of a possible length, or they are one dialled locally.
        possible = False
        for prefix, in_full, lengths, is_valid in self._readings:
            if not digits.startswith(prefix) or (not prefix and digits[0] == "0"):
                continue
            national = digits[len(prefix) :]
            if len(national) in lengths and national[0] != "0":
                if in_full and is_valid(national):
                    return True, True
                possible = True
        return False, possible or len(digits) in self._local_lengths


def _last_end(pattern: re.Pattern[str], text: str, start: int, *, width: int) -> int:
    """Where the last match of ``pattern`` in the ``width`` characters before ``start`` ends,
    or -1."""
    end = -1
    pos = max(0, start - width)
    while (m := pattern.search(text, pos, start)) is not None:
        pos = end = m.end()
    return end


def _check_with_phonenumbers(number: str) -> tuple[bool, bool]:
    """(valid, possible) for the digits of a number written with "+", by phonenumbers."""
    try:
        parsed = phonenumbers.parse("+" + number, None)
    except phonenumbers.NumberParseException:
        return False, False
    if not phonenumbers.is_possible_number(parsed):
        return False, False
    return phonenumbers.is_valid_number(parsed), True


# The number types phonenumbers distinguishes; a valid number matches one of them. The
# common ones come first in each alternation: they decide most numbers.
_TYPES = (
    "fixed_line", "mobile", "toll_free", "voip", "premium_rate", "shared_cost",
    "personal_number", "pager", "uan", "voicemail",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Plan:
    """One region's numbering plan from phonenumbers' metadata, compiled once."""

    general: re.Pattern[str]
    # Number length -> the number types of that length as one alternation: a valid number
    # matches one of them, and a single fullmatch of the alternation says whether it does.
    typed: Mapping[int, re.Pattern[str]]

    @classmethod
    def load(cls, meta: PhoneMetadata) -> _Plan:
        general = meta.general_desc
        pattern = general.national_number_pattern if general else None
        default_lengths = frozenset(general.possible_length or ()) if general else frozenset()
        types: list[tuple[str, frozenset[int]]] = []
        for name in _TYPES:
            desc = getattr(meta, name)
            if desc is not None and desc.national_number_pattern:
                lengths = frozenset(desc.possible_length or ()) or default_lengths
                types.append((desc.national_number_pattern, lengths))
        typed = {
            n: re.compile("|".join(f"(?:{p})" for p, lengths in types if n in lengths))
            for n in sorted(frozenset().union(*(lengths for _, lengths in types)))
        }
        return cls(re.compile(pattern or "(?!)"), typed)

    def is_valid(self, national: str) -> bool:
        """What ``phonenumbers.is_valid_number_for_region`` answers for this region.

        That is: the number matches the general pattern and one type's pattern, at one of that
        type's lengths. phonenumbers also checks the general lengths; in its metadata every
        type's lengths are among them (for every region), so that check never decides.
        """
        if self.general.fullmatch(national) is None:
            return False
        typed = self.typed.get(len(national))
        return typed is not None and typed.fullmatch(national) is not None


@dataclass(frozen=True, slots=True)
class _NumberingPlan:
    """The regions of one country code that the detector reads national numbers for.

    The national formats of these regions are simple enough (an optional trunk prefix such as
    "0" or "1", or the country code written without "+") to strip by hand, so no
    ``phonenumbers.parse`` is needed.
    """

    country_code: int
    lengths: frozenset[int]
    local_lengths: frozenset[int]
    plans: tuple[_Plan, ...]  # one per region asked for that uses this country code
    # (prefix, whether digits that start with it are written in full), for each way of
    # writing a national number: after the country code, after the trunk prefix, bare.
    # Where numbers are dialled with a "0" trunk prefix (the UK, Australia, India …), people
    # write that 0, so digits without it are at most a possible number there: a bare
    # "5555550123" is not a UK number just because 55 5555 0123 would be one.
    prefixes: tuple[tuple[str, bool], ...]

    @classmethod
    def load(cls, country_code: int, metas: Sequence[PhoneMetadata]) -> _NumberingPlan:
        lengths: set[int] = set()
        local: set[int] = set()
        trunk = ""
        for meta in metas:
            trunk = trunk or meta.national_prefix or ""
            if meta.general_desc is not None:
                lengths.update(meta.general_desc.possible_length or ())
                local.update(meta.general_desc.possible_length_local_only or ())
        plans = tuple(_Plan.load(meta) for meta in metas)
        prefixes = [(str(country_code), True), (trunk, True), ("", trunk != "0")]
        if trunk in ("", str(country_code)):  # "1" is both in North America
            del prefixes[1]
        return cls(country_code, frozenset(lengths), frozenset(local), plans, tuple(prefixes))

    def is_valid(self, national: str) -> bool:
        # A loop: any() over a generator costs as much again, on most candidates.
        for plan in self.plans:  # noqa: SIM110
            if plan.is_valid(national):
                return True
        return False


def _check_international(number: str) -> tuple[bool, bool] | None:
    """(valid, possible) for the digits after "+", or None where phonenumbers must say.

    What phonenumbers answers for "+" and the digits, from its metadata compiled once per
    country code: ``parse``, ``is_possible_number`` and ``is_valid_number`` cost about 50 µs
    a number, as much as the rest of a message's detection. The country code is the first
    one to three digits that are one, as in ``parse``.
    """
    if len(number) <= 2 or number[0] == "0":
        return False, False  # too short, or no country code starts with 0
    for size in (1, 2, 3):
        if int(number[:size]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return False, False  # no country code
    country = _country(int(number[:size]))
    return None if country is None else country.check(number[size:])


@dataclass(frozen=True, slots=True)
class _Country:
    """A country calling code's numbering plan, as phonenumbers reads a number after "+".

    ``check`` answers for numbers written plainly: those whose digits after the country code
    do not start with its national prefix. For the others ("+44 (0)20 …") phonenumbers
    strips the prefix by rules of its own, and is asked itself.
    """

    national_prefix: re.Pattern[str] | None  # of the main region, as ``parse`` reads it
    lengths: frozenset[int]  # the main region's possible lengths, local-only ones included
    # The regions of the code in phonenumbers' order, each with the leading digits that
    # claim a number for it (None: it claims the numbers valid in it). With one region for
    # the code (``single``), that region has every number.
    regions: tuple[tuple[re.Pattern[str] | None, _Plan], ...]
    single: bool

    @classmethod
    def load(cls, country_code: int) -> _Country | None:
        codes = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[country_code]
        main = PhoneMetadata.metadata_for_region_or_calling_code(
            country_code, phonenumbers.region_code_for_country_code(country_code)
        )
        if main is None or main.general_desc is None:
            return None
        general = main.general_desc
        lengths = {*general.possible_length, *(general.possible_length_local_only or ())}
        regions = []
        for code in codes:
            meta = PhoneMetadata.metadata_for_region_or_calling_code(country_code, code)
            if meta is not None:
                leading = None if meta.leading_digits is None else re.compile(meta.leading_digits)
                regions.append((leading, _Plan.load(meta)))
        prefix = main.national_prefix_for_parsing
        national_prefix = re.compile(prefix) if prefix else None
        return cls(national_prefix, frozenset(lengths), tuple(regions), len(codes) == 1)

    def check(self, national: str) -> tuple[bool, bool] | None:
        """(valid, possible) for the digits after the country code, or None (phonenumbers').

        Possible lengths are those of phonenumbers' ``_test_number_length``; the region is
        the one ``region_code_for_number`` chooses.
        """
        if len(national) < 2:
            return None
        if self.national_prefix is not None and self.national_prefix.match(national):
            return None
        if len(national) not in self.lengths:
            return False, False
        if self.single:
            return any(region.is_valid(national) for _, region in self.regions), True
        for leading, region in self.regions:
            if leading is None:
                if region.is_valid(national):
                    return True, True
            elif leading.match(national):
                return region.is_valid(national), True
        return False, True


@functools.cache  # compiled on first use: about 250 codes, most never seen
def _country(country_code: int) -> _Country | None:
    return _Country.load(country_code)
