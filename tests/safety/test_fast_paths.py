"""The detector's shortcuts find exactly what the long way finds.

``PiiDetector.detect`` skips work that cannot find anything (docs/BENCHMARKS.md, "Safety
engine"): a message of plain words with none of the rules' cue words, a rule whose ``wants``
says no, positions where no match of a pattern can begin, the general resolution of two
overlapping findings, the phone plans asked one by one. Each shortcut is held here to the
long way, on both corpora and on random text built from what the rules look for.
"""

from __future__ import annotations

import bisect
import ipaddress
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logwarden.safety import KINDS, Finding, PiiDetector, detect
from logwarden.safety._base import Message
from logwarden.safety._contact import UrlRule
from logwarden.safety._handles import _ALIAS_RE
from logwarden.safety._numbers import NUMBER_END, NUMBER_START, CardRule, IpRule, digits_of
from logwarden.safety._patterns import wordset
from logwarden.safety._personal import _GRADE_WORDS, AgeRule
from logwarden.safety._phones import PhoneRule
from logwarden.safety.normalize import DIGIT_WORD, normalize
from logwarden.safety.pii import _CONTESTED, _OUTRANKED_BY, _resolve, _resolve_all

DATA = Path(__file__).resolve().parent.parent / "data"
CORPUS = [json.loads(line)["text"] for line in (DATA / "messages.jsonl").read_text().splitlines()]
CONVERSATIONS = [
    text
    for line in (DATA / "conversations.jsonl").read_text().splitlines()
    for _, text in json.loads(line)["messages"]
]
DETECTOR = PiiDetector()

# Pieces of messages that interest the rules, and pieces that do not.
_WORDS = sorted(
    DETECTOR._cue_words
    | wordset(
        """
        at dot asl im i'm m am my is me on add snap insta x sc ig mine of in the and lol call
        text number year yo old grade school high street st lane order code ip one two five oh
        double forty fourteen sixteen seven o ten hi hey you ok
        """
    )
)
_PIECES = st.one_of(
    st.sampled_from(_WORDS),
    st.from_regex(r"[0-9]{1,4}", fullmatch=True),
    st.sampled_from(list(" \n.,:;!?@#/-_()[]{}<>+$|'=")),
    st.sampled_from(["sn4p", "d0t", "f0ur", "1g", "@x", "u/", "::", "//", "com", "\u200b"]),
    st.sampled_from(["\U0001f47b", "\U0001f449", "\u2192", "\uff14", "\u00e9", "\u0430"]),
)
TEXTS = st.lists(_PIECES, max_size=14).map(" ".join) | st.lists(_PIECES, max_size=14).map("".join)


def _messages(texts: list[str]) -> Iterator[Message]:
    for text in texts:
        yield Message(normalize(text))


class TestCueWords:
    def _check(self, message: Message) -> None:
        for rule in DETECTOR._rules:
            if message.plain and message.words.isdisjoint(rule.cue_words):
                assert not rule.wants(message), (rule.kind, message.original)

    def test_the_corpora(self) -> None:
        """A plain message with none of a rule's cue words is one the rule does not want."""
        for message in _messages(CORPUS + CONVERSATIONS):
            self._check(message)

    @settings(max_examples=1500, deadline=None)
    @given(TEXTS)
    def test_random_text(self, text: str) -> None:
        self._check(Message(normalize(text)))

    def test_most_chat_is_plain(self) -> None:
        """The shortcut is taken: most conversation lines are plain and cue no rule."""
        cues = DETECTOR._cue_words
        quiet = [m for m in _messages(CONVERSATIONS) if m.plain and m.words.isdisjoint(cues)]
        assert len(quiet) > len(CONVERSATIONS) // 2
        assert {"snap", "dot", "gmail"} <= cues
        assert cues >= _GRADE_WORDS


_HANDLE_AND_AGE = [rule for rule in DETECTOR._rules if rule.kind in ("handle", "age")]


class TestWants:
    """``wants`` of the handle and age rules reads part of what ``find`` does (an "@" that
    can start a handle, an "asl" answer at the start), so that most email addresses and
    numbers are spared the rest: it may say yes in vain, but never no to a message the rule
    finds something in.

    (Not a property of every rule: the phone and card rules count digits and digit words,
    not letters typed for digits, so "lol0000" is no phone number to them, as it never was.)
    """

    def _check(self, message: Message) -> None:
        for rule in _HANDLE_AND_AGE:
            if not rule.wants(message):
                assert list(rule.find(message)) == [], (rule.kind, message.original)

    def test_the_corpora(self) -> None:
        for message in _messages(CORPUS + CONVERSATIONS):
            self._check(message)

    @settings(max_examples=1500, deadline=None)
    @given(TEXTS)
    def test_random_text(self, text: str) -> None:
        self._check(Message(normalize(text)))

    @pytest.mark.parametrize(
        "text",
        [
            "15 cats aslfourteen m",  # an "asl" answer after a number, not at the start
            "15 f",
            "  14 m lol",
            "fourteen f",
            "202-555-0171",
            "jake@example.com",  # an "@" in an address: no handle to read
            "jake@example.com @jake_09",
            "meet @ the mall",
            "my @ is maxx.gg",
        ],
    )
    def test_the_forms_the_gates_read(self, text: str) -> None:
        self._check(Message(normalize(text)))


def _long_way(text: str) -> list[Finding]:
    """What ``detect`` returns without its own shortcuts: every rule asked whether it wants
    the message, every finding resolved by the general resolution."""
    message = Message(normalize(text))
    found = [
        f
        for rule in DETECTOR._rules
        if rule.wants(message)
        for f in rule.find(message)
        if f.confidence >= 0.5
    ]
    return _resolve_all(found)


class TestDetect:
    def test_the_corpora(self) -> None:
        for text in CORPUS + CONVERSATIONS:
            assert detect(text) == _long_way(text), text

    @settings(max_examples=1500, deadline=None)
    @given(TEXTS)
    def test_random_text(self, text: str) -> None:
        assert detect(text) == _long_way(text)


def _ungated(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """``pattern`` without the lookahead ``_starts.gated`` put in front of it."""
    gate = re.match(r"\(\?=\[[^\]]*\]\)", pattern.pattern)
    assert gate is not None, pattern.pattern
    return re.compile(pattern.pattern[gate.end() :])


def _matches(pattern: re.Pattern[str], text: str) -> list[tuple[tuple[int, int], dict[str, str]]]:
    return [(m.span(), m.groupdict()) for m in pattern.finditer(text)]


# (fast, slow): each pattern as compiled, and as it was before its shortcut.
_SEP = PhoneRule._SEP
_EQUIVALENT = [
    (_ALIAS_RE, _ungated(_ALIAS_RE)),
    (AgeRule._STATED, _ungated(AgeRule._STATED)),
    (AgeRule._SCHOOL, _ungated(AgeRule._SCHOOL)),
    (DIGIT_WORD, _ungated(DIGIT_WORD)),
    (UrlRule._BARE, re.compile(UrlRule._BARE.pattern.replace(UrlRule._THEN_DOT, "", 1))),
    (
        UrlRule._SPOKEN,
        re.compile(UrlRule._SPOKEN.pattern.replace(UrlRule._THEN_SPOKEN_DOT, "", 1)),
    ),
    (
        PhoneRule._CANDIDATE,
        re.compile(
            rf"{NUMBER_START}(?P<plus>\+[ ]?|00[ ]?)?\(?\d(?:{_SEP}?\d){{5,19}}{NUMBER_END}"
        ),
    ),
    (
        CardRule._CANDIDATE,
        re.compile(rf"{NUMBER_START}\d(?:[ ,.\-]{{0,3}}\d){{12,18}}{NUMBER_END}"),
    ),
]
_NUMBERS = st.lists(
    st.sampled_from(["1", "2", "0", "00", "555", "0143", " ", "-", ".", ",", "(", ")", "+", "a"]),
    max_size=30,
).map("".join)


class TestPatterns:
    @pytest.mark.parametrize(("fast", "slow"), _EQUIVALENT)
    def test_the_corpora(self, fast: re.Pattern[str], slow: re.Pattern[str]) -> None:
        """A pattern behind a lookahead or with its steps reordered finds the same matches."""
        assert fast.pattern != slow.pattern
        for message in _messages(CORPUS + CONVERSATIONS):
            for text in (message.text, message.digits.text):
                assert _matches(fast, text) == _matches(slow, text)

    @settings(max_examples=400, deadline=None)
    @given(text=TEXTS | _NUMBERS, start=st.integers(0, 20))
    @pytest.mark.parametrize(("fast", "slow"), _EQUIVALENT)
    def test_random_text(
        self, fast: re.Pattern[str], slow: re.Pattern[str], text: str, start: int
    ) -> None:
        text = normalize(text).text
        assert _matches(fast, text) == _matches(slow, text)
        found, expected = fast.search(text, start), slow.search(text, start)
        assert (found and found.span()) == (expected and expected.span())


def _reference_resolve(findings: list[Finding]) -> list[Finding]:
    """The overlap resolution as it was before its shortcuts (commit c28bb4c)."""
    if len(findings) < 2:
        return findings
    by_kind: dict[str, list[Finding]] = {}

    def overlapping(chosen: list[Finding], finding: Finding) -> Iterator[Finding]:
        i = max(0, bisect.bisect_left(chosen, finding.start, key=lambda f: f.start) - 1)
        while i < len(chosen) and chosen[i].start < finding.end:
            if chosen[i].end > finding.start:
                yield chosen[i]
            i += 1

    def outranked(finding: Finding) -> bool:
        for kind in _OUTRANKED_BY.get(finding.kind, ()):
            if next(overlapping(by_kind.get(kind, []), finding), None) is not None:
                return True
        for kind in _CONTESTED.get(finding.kind, ()):
            for other in overlapping(by_kind.get(kind, []), finding):
                if (other.confidence, other.kind) > (finding.confidence, finding.kind):
                    return True
        return False

    for f in sorted(findings, key=lambda f: (-f.confidence, f.start - f.end, f.start)):
        chosen = by_kind.setdefault(f.kind, [])
        if next(overlapping(chosen, f), None) is None:
            chosen.insert(bisect.bisect_left(chosen, f.start, key=lambda f: f.start), f)
    kept = [f for chosen in by_kind.values() for f in chosen if not outranked(f)]
    kept.sort(key=lambda f: (f.start, f.end, f.kind))
    return kept


def _finding(kind: str, start: int, length: int, confidence: float) -> Finding:
    return Finding(kind, start, start + length, confidence, "")


_FINDINGS = st.lists(
    st.builds(
        _finding,
        st.sampled_from(KINDS),
        st.integers(0, 12),
        st.integers(-1, 6),  # empty and reversed spans too: the shortcuts must notice them
        st.sampled_from([0.5, 0.7, 0.85, 0.9, 0.95]),
    ),
    max_size=6,
)


class TestResolve:
    @settings(max_examples=3000, deadline=None)
    @given(_FINDINGS)
    def test_agrees_with_the_general_resolution(self, findings: list[Finding]) -> None:
        """Findings apart, two that overlap, or any others: as the resolution always did."""
        expected = _reference_resolve(list(findings))
        assert _resolve(list(findings)) == expected
        assert _resolve_all(list(findings)) == expected


def _check_plan_by_plan(rule: PhoneRule, digits: str) -> tuple[bool, bool]:
    """``PhoneRule._check`` for bare digits as it was: each plan asked in turn."""
    possible = False
    for plan in rule._plans:
        possible_here = len(digits) in plan.local_lengths
        for prefix, in_full in plan.prefixes:
            if not digits.startswith(prefix) or (not prefix and digits[0] == "0"):
                continue
            national = digits[len(prefix) :]
            if len(national) in plan.lengths and national[0] != "0":
                if in_full and plan.is_valid(national):
                    return True, True
                possible_here = True
        possible = possible or possible_here
    return False, possible


_RULES = {
    regions: PhoneRule(regions)
    for regions in [("US", "GB", "CA", "AU", "IE", "NZ", "IN"), ("GB",), ("DE", "FR")]
}


class TestPhonePlans:
    @settings(max_examples=1500, deadline=None)
    @given(
        regions=st.sampled_from(sorted(_RULES)),
        digits=st.from_regex(r"(?:0|1|44|61|91)?[0-9]{6,13}", fullmatch=True),
    )
    def test_one_loop_answers_as_each_plan_did(self, regions: tuple[str, ...], digits: str) -> None:
        rule = _RULES[regions]
        expected = _check_plan_by_plan(rule, digits)
        assert rule._check(digits, international=False) == expected


class TestSmallHelpers:
    @settings(max_examples=500, deadline=None)
    @given(st.text(alphabet="0123456789 -.()+\uff10\u0661\u00b2x", max_size=30))
    def test_digits_of(self, raw: str) -> None:
        assert digits_of(raw) == re.sub(r"\D", "", raw)

    @settings(max_examples=500, deadline=None)
    @given(st.text(alphabet="0123456789abcdef:.%g", min_size=2, max_size=45))
    def test_ipv6_reading(self, candidate: str) -> None:
        """Read as IPv6 directly: what ``ipaddress.ip_address`` answers for text with colons."""
        if candidate.count(":") < 2:
            return
        try:
            address = ipaddress.ip_address(candidate)
        except ValueError:
            expected = False
        else:
            documentation = address in ipaddress.ip_network("2001:db8::/32")
            expected = documentation or (address.is_global and not address.is_multicast)
        assert IpRule()._locates(candidate) == expected

    def test_findings_are_dataclass_findings(self) -> None:
        """A finding built by ``Message.finding`` is an ordinary, equal, frozen Finding."""
        message = Message(normalize("call 202-555-0143"))
        finding = message.finding(message.view, "phone", 5, 17, 0.75 + 0.2 + 0.15, "a reason")
        expected = Finding("phone", 5, 17, 0.99, "a reason")
        assert type(finding) is Finding
        assert finding == expected
        assert hash(finding) == hash(expected)
        assert repr(finding) == repr(expected)
        with pytest.raises(AttributeError):
            finding.start = 0  # type: ignore[misc]
