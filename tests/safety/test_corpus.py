"""The detector against the labelled corpus of single messages (tests/data/messages.jsonl).

The floors are the issue's, per kind for precision and recall each (so F1 too): 0.95 for
phone, email, handle and card, 0.90 for url and ip, 0.85 for address and age. Every hard
negative gets no finding at all, as docs/safety.md says, and found spans match the labelled
ones exactly for at least 98% of the labels (overlap scoring alone would hide a span cut
short). The corpus is synthetic: reserved numbers, example domains, documentation
addresses, published test cards, invented streets and schools, which a test here checks.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from pathlib import Path

import pytest

from logwarden.safety import KINDS, Finding, detect
from logwarden.safety.evaluation import (
    GoldFinding,
    KindScore,
    LabelledMessage,
    errors,
    load_messages,
    negative_precision,
    score,
    span_exactness,
)
from logwarden.safety.normalize import normalize, spell_digits

CORPUS = Path(__file__).parent.parent / "data" / "messages.jsonl"
# The floors, held by precision and recall each.
FLOORS = {
    "phone": 0.95,
    "email": 0.95,
    "handle": 0.95,
    "card": 0.95,
    "url": 0.90,
    "ip": 0.90,
    "address": 0.85,
    "age": 0.85,
}
EXACT_SPAN_FLOOR = 0.98  # of all labelled spans, found with exactly their start and end


@pytest.fixture(scope="module")
def messages() -> list[LabelledMessage]:
    return load_messages(CORPUS)


@pytest.fixture(scope="module")
def scores(messages: list[LabelledMessage]) -> dict[str, KindScore]:
    return score(detect, messages)


class TestCorpusShape:
    def test_it_is_big_enough(self, messages: list[LabelledMessage]) -> None:
        """At least 450 messages, of which at least 150 are negatives."""
        assert len(messages) >= 450
        assert sum(1 for m in messages if not m.findings) >= 150

    def test_every_kind_has_positives_and_disguised_ones(
        self, messages: list[LabelledMessage]
    ) -> None:
        """Each kind has at least 25 labelled values, and at least 5 of them disguised."""
        counts = Counter(f.kind for m in messages for f in m.findings)
        disguised = Counter(f.kind for m in messages for f in m.findings if f.obfuscated)
        for kind in KINDS:
            assert counts[kind] >= 25, kind
            assert disguised[kind] >= 5, kind

    def test_spans_are_trimmed_and_texts_unique(self, messages: list[LabelledMessage]) -> None:
        """Every labelled span is non-empty without surrounding spaces; no text is repeated."""
        for m in messages:
            for f in m.findings:
                value = m.text[f.start : f.end]
                assert value and value == value.strip(), (m.text, f)
        assert len({m.text for m in messages}) == len(messages)


class TestDetectorOnCorpus:
    @pytest.mark.parametrize("kind", KINDS)
    def test_precision_meets_the_floor(self, kind: str, scores: dict[str, KindScore]) -> None:
        """Per-kind precision over the corpus is at or above the issue's floor."""
        assert scores[kind].precision >= FLOORS[kind], (kind, scores[kind])

    @pytest.mark.parametrize("kind", KINDS)
    def test_recall_meets_the_floor(self, kind: str, scores: dict[str, KindScore]) -> None:
        """Per-kind recall over the corpus is at or above the issue's floor."""
        assert scores[kind].recall >= FLOORS[kind], (kind, scores[kind])

    @pytest.mark.parametrize("kind", KINDS)
    def test_f1_meets_the_floor(self, kind: str, scores: dict[str, KindScore]) -> None:
        """Per-kind F1 over the corpus is at or above the issue's floor."""
        assert scores[kind].f1 >= FLOORS[kind], (kind, scores[kind])

    def test_found_spans_are_the_labelled_spans(self, messages: list[LabelledMessage]) -> None:
        """At least 98% of labelled values are found with exactly their span; the message
        names the others (a span cut short still overlaps, and overlap scoring counts it)."""
        exactness = span_exactness(detect, messages)
        assert exactness.exact >= EXACT_SPAN_FLOOR * exactness.total, (
            f"{exactness.total - exactness.exact} of {exactness.total} spans not exact",
            exactness.inexact,
        )

    def test_hard_negatives_stay_clean(self, messages: list[LabelledMessage]) -> None:
        """Every negative (times, prices, scores, codes, other people's ages …) gets no
        finding at all."""
        dirty = [(m.text, detect(m.text)) for m in messages if not m.findings and detect(m.text)]
        assert dirty == []
        assert negative_precision(detect, messages) == 1.0

    def test_disguised_values_are_found(self, messages: list[LabelledMessage]) -> None:
        """At least 90% of the values labelled as disguised are found."""
        disguised = [
            LabelledMessage(m.text, tuple(f for f in m.findings if f.obfuscated))
            for m in messages
            if any(f.obfuscated for f in m.findings)
        ]
        missed = [e for e in errors(detect, disguised) if e.false_negatives]
        total = sum(len(m.findings) for m in disguised)
        assert total and len(missed) / total <= 0.10, missed


# A value, written plainly: look-alikes, fullwidth and digit words undone, spoken or bracketed
# dots made dots. (The corpus disguises its values; the reserved check reads through that.)
_SPOKEN_DOT = re.compile(r"\s*[\[({<]\s*(?:dot|d0t|\.)\s*[\])}>]\s*|\s+d[o0]t\s+|\s+\.\s+|\s*。\s*")
_SPOKEN_AT = re.compile(r"\s*[\[({<]\s*(?:at|@)\s*[\])}>]\s*|\s+at\s+|\s*@\s*")
_LEET_BACK = str.maketrans("0431", "oaei")
# RFC 2606: example.com, .net, .org and the .example top-level domain, with any subdomain.
_RESERVED_DOMAIN = re.compile(r"(?:[a-z0-9\-]+\.)*(?:example\.(?:com|net|org)|example)")
_RESERVED_NETWORKS = [
    ipaddress.ip_network(n)
    for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
]
# Fictional numbers: NANP 555-01xx, UK Ofcom drama ranges, Australia's ACMA range.
_RESERVED_PHONE = re.compile(r"(?:55501\d\d|7700900\d{3}|2079460\d{3}|491570\d{3})")
# The card numbers the networks publish for testing.
_TEST_CARDS = frozenset(
    {
        "4111111111111111", "5555555555554444", "4242424242424242", "378282246310005",
        "371449635398431", "6011111111111117", "5105105105105100", "4012888888881881",
        "4000056655665556",
    }
)  # fmt: skip


def _plain(value: str) -> str:
    return _SPOKEN_DOT.sub(".", spell_digits(normalize(value)).text)


def _host(value: str) -> str:
    """The host of a web address: no scheme, path, query or port."""
    rest = re.sub(r"^[a-z]+(?:\[:\]|:)//", "", _plain(value))
    return re.split(r"[/?#:]", rest, maxsplit=1)[0].removeprefix("www.")


def _reserved(kind: str, value: str) -> bool:
    """Whether a labelled value is one of the reserved examples of its kind."""
    plain = _plain(value)
    digits = re.sub(r"\D", "", plain.replace("o", "0").replace("l", "1"))
    if kind == "email":
        domain = _SPOKEN_AT.split(plain)[-1].translate(_LEET_BACK)
        return _RESERVED_DOMAIN.fullmatch(domain) is not None
    if kind == "url":
        host = _host(value)
        if re.fullmatch(r"[\d.]+", host):
            return any(ipaddress.ip_address(host) in net for net in _RESERVED_NETWORKS)
        return _RESERVED_DOMAIN.fullmatch(host) is not None
    if kind == "ip":
        address = ipaddress.ip_address(re.sub(r"\s", "", plain))
        return any(address in net for net in _RESERVED_NETWORKS)
    if kind == "phone":
        return _RESERVED_PHONE.search(digits) is not None
    if kind == "card":
        return digits in _TEST_CARDS
    return True  # handles, addresses, ages and schools are invented words, not checkable


class TestReservedValues:
    @pytest.mark.parametrize("kind", ["email", "url", "ip", "phone", "card"])
    def test_values_are_reserved_examples(self, kind: str, messages: list[LabelledMessage]) -> None:
        """Every labelled email and web address uses an example domain (never a real mail
        provider), every IP a documentation network, every phone a fictional range and every
        card a published test number, however the value is disguised."""
        values = [m.text[f.start : f.end] for m in messages for f in m.findings if f.kind == kind]
        assert values and [v for v in values if not _reserved(kind, v)] == []

    def test_no_real_mail_provider_is_named(self, messages: list[LabelledMessage]) -> None:
        """Not even in a negative: the provider cue is tested in test_pii.py instead."""
        providers = re.compile(r"gmail|hotmail|yahoo|outlook|icloud|proton|aol|gmx", re.I)
        assert [m.text for m in messages if providers.search(_plain(m.text))] == []


SMALL = (
    LabelledMessage("call 202-555-0143", (GoldFinding("phone", 5, 17),)),
    LabelledMessage("im 14", (GoldFinding("age", 3, 5),)),
    LabelledMessage("we won 21-14", ()),
)


class TestEvaluation:
    """The scoring itself, so that a broken detector could not pass the floors above."""

    def test_a_perfect_detector_scores_one(self) -> None:
        """Returning exactly the gold spans gives precision, recall and F1 of 1."""
        by_text = {m.text: m.findings for m in SMALL}
        result = score(lambda text: list(by_text[text]), SMALL)
        assert all(s == (1.0, 1.0, 1.0) for s in result.values())

    def test_a_silent_detector_has_no_recall(self) -> None:
        """Finding nothing gives recall 0 and F1 0 for kinds with gold values."""
        result = score(lambda text: [], SMALL)
        assert result["phone"].recall == 0.0 and result["phone"].f1 == 0.0
        assert negative_precision(lambda text: [], SMALL) == 1.0

    def test_a_wrong_kind_or_a_disjoint_span_does_not_count(self) -> None:
        """A finding counts only with the same kind and an overlapping span."""
        wrong = {
            "call 202-555-0143": [Finding("card", 5, 17, 0.9, "x")],
            "im 14": [Finding("age", 0, 2, 0.9, "x")],
            "we won 21-14": [Finding("phone", 7, 12, 0.9, "x")],
        }
        result = score(lambda text: wrong[text], SMALL)
        assert result["phone"] == (0.0, 0.0, 0.0)
        assert result["age"].recall == 0.0
        assert negative_precision(lambda text: wrong[text], SMALL) == 0.0

    def test_a_bad_line_is_named(self, tmp_path: Path) -> None:
        """A span outside its text is refused with the file and line number."""
        path = tmp_path / "bad.jsonl"
        path.write_text(
            '{"text": "ok", "findings": []}\n'
            '{"text": "hi", "findings": [{"kind": "phone", "start": 0, "end": 9}]}\n'
        )
        with pytest.raises(ValueError, match=r"bad\.jsonl:2"):
            load_messages(path)
