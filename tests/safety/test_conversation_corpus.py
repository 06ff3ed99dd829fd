"""The labelled conversations (tests/data/conversations.jsonl) scored end to end, through the
PII detector and the risk scorer, against the floors of issue 5: no benign conversation high,
every sextortion and minor-disclosure conversation flagged, and per-flag precision and recall.

``python -m tests.safety.conversations`` prints the full report.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from logwarden.safety.pii import detect
from logwarden.safety.scoring import FLAGS
from tests.safety.conversations import Conversation, Evaluation, evaluate, load

CONVERSATIONS = load()
BY_ID = {c.id: c for c in CONVERSATIONS}


def ids(selection: list[Conversation]) -> list[str]:
    return [c.id for c in selection]


BENIGN = [c for c in CONVERSATIONS if not c.flags]
SEXTORTION = [c for c in CONVERSATIONS if "sextortion" in c.flags]
MINOR = [c for c in CONVERSATIONS if "minor" in c.flags]
MINOR_NOT_GROOMED = [c for c in MINOR if "grooming" not in c.flags]

# Words that must never appear in the corpus: risk is written only in non-graphic phrases.
GRAPHIC = re.compile(r"\b(?:nudes?|naked|sex|sexy|sexual|porn\w*|undress\w*|explicit)\b", re.I)


@pytest.fixture(scope="module")
def evaluation() -> Evaluation:
    return evaluate(CONVERSATIONS, detector=detect)


class TestCorpus:
    def test_size_and_mix(self) -> None:
        """At least 70 conversations: 30 benign, 10 grooming, 8 sextortion, 8 minor, 6 each
        solicitation and harassment."""
        counts = Counter(flag for c in CONVERSATIONS for flag in c.flags)
        assert len(CONVERSATIONS) >= 70
        assert len(BENIGN) >= 30
        floors = {"grooming": 10, "sextortion": 8, "minor": 8, "solicitation": 6, "harassment": 6}
        assert {f: counts[f] >= n for f, n in floors.items()} == dict.fromkeys(floors, True)

    def test_shape(self) -> None:
        """Ids are unique, and every conversation has 4 to 20 messages from opaque senders."""
        assert len(BY_ID) == len(CONVERSATIONS)
        for c in CONVERSATIONS:
            assert 4 <= len(c.messages) <= 20, c.id
            assert all(sender in {"a", "b"} and text for sender, text in c.messages), c.id

    def test_nothing_graphic(self) -> None:
        """No message uses a graphic word."""
        found = [(c.id, t) for c in CONVERSATIONS for _, t in c.messages if GRAPHIC.search(t)]
        assert found == []

    def test_contact_details_are_reserved_values(self) -> None:
        """Any phone number or email address in the corpus is a reserved example value."""
        for c in CONVERSATIONS:
            for _, text in c.messages:
                for finding in detect(text):
                    value = text[finding.start : finding.end]
                    if finding.kind == "phone":
                        assert re.search(r"555\D?01\d\d", value), (c.id, value)
                    if finding.kind == "email":
                        assert re.search(r"example\.(?:com|org|net)", value), (c.id, value)


class TestFloors:
    @pytest.mark.parametrize("conversation", BENIGN, ids=ids(BENIGN))
    def test_no_benign_conversation_is_high(
        self, conversation: Conversation, evaluation: Evaluation
    ) -> None:
        """A conversation labelled without flags is never scored high."""
        assessment = evaluation.of(conversation.id)
        assert assessment.level != "high", conversation.note

    @pytest.mark.parametrize("conversation", SEXTORTION, ids=ids(SEXTORTION))
    def test_every_sextortion_is_flagged_high(
        self, conversation: Conversation, evaluation: Evaluation
    ) -> None:
        """Every sextortion conversation is flagged sextortion and scored high."""
        assessment = evaluation.of(conversation.id)
        assert ("sextortion" in assessment.flags, assessment.level) == (True, "high")

    @pytest.mark.parametrize("conversation", MINOR, ids=ids(MINOR))
    def test_every_minor_disclosure_is_flagged(
        self, conversation: Conversation, evaluation: Evaluation
    ) -> None:
        """Every conversation in which a participant discloses being a minor is flagged."""
        assessment = evaluation.of(conversation.id)
        assert "minor" in assessment.flags, conversation.note

    @pytest.mark.parametrize("conversation", MINOR_NOT_GROOMED, ids=ids(MINOR_NOT_GROOMED))
    def test_no_grooming_flag_a_minor_conversation_is_not_labelled_with(
        self, conversation: Conversation, evaluation: Evaluation
    ) -> None:
        """Next to a disclosed minor the grooming bar is low; it must still not fire where
        nobody grooms (two minors swapping socials, a minor threatened for money)."""
        assessment = evaluation.of(conversation.id)
        assert "grooming" not in assessment.flags, conversation.note


class TestQuality:
    @pytest.mark.parametrize("flag", FLAGS)
    def test_precision_and_recall_per_flag(self, flag: str, evaluation: Evaluation) -> None:
        """Each flag reaches precision and recall of at least 0.9 on the corpus."""
        assert evaluation.precision(flag) >= 0.9, evaluation.counts(flag)
        assert evaluation.recall(flag) >= 0.9, evaluation.counts(flag)

    def test_level_accuracy(self, evaluation: Evaluation) -> None:
        """At least 90 % of conversations get the level they are labelled with."""
        assert evaluation.level_accuracy >= 0.9, evaluation.confusion

    def test_phrases_alone_never_raise_a_false_flag(self) -> None:
        """Without the detector the scorer misses disclosures but invents no flag."""
        alone = evaluate(CONVERSATIONS, detector=lambda _text: ())
        assert all(alone.precision(flag) == 1.0 for flag in FLAGS)
