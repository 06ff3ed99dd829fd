"""The gate in front of each indicator's search: the beginnings a match can have
(src/logwarden/safety/_starts.py), and that the gated lexicon finds exactly what the plain
one does."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logwarden.safety._starts import starts
from logwarden.safety.indicators import DEFAULT_LEXICON, CompiledIndicator, _expand, fold

DATA = Path(__file__).resolve().parent.parent / "data"


class TestStarts:
    @pytest.mark.parametrize(
        ("pattern", "width", "expected"),
        [
            ("abc", 2, {"ab"}),
            ("a|bc", 3, {"a", "bc"}),
            ("(?:so )?you", 3, {"so ", "you"}),
            ("a{0,2}b", 3, {"b", "ab", "aab"}),
            ("x+y", 3, {"xy", "xxy", "xxx"}),
            ("[a-c]d", 2, {"ad", "bd", "cd"}),
            ("(?<=^ )age$", 3, {"age"}),
            ("(?<!never )send (?P<p0>pics|vids)", 7, {"send pi", "send vi"}),
        ],
    )
    def test_beginnings(self, pattern: str, width: int, expected: set[str]) -> None:
        """Every way a match can begin, cut to the width, and nothing else."""
        assert starts(pattern, width) == expected

    @pytest.mark.parametrize("pattern", [r"\d+ dollars", "a?", "(?:)", "[^a]b", ".x", r"(a)\1"])
    def test_unknown_or_possibly_empty_gives_no_gate(self, pattern: str) -> None:
        """What it cannot list (a category, a negated class, any character, a back
        reference) or a match that can be empty gives None: the indicator is always searched."""
        assert starts(pattern, 3) is None

    def test_too_many_beginnings_gives_no_gate(self) -> None:
        assert starts("[a-z][a-z][a-z]", 3) is None  # 17,576 beginnings


def _plain_search(indicator: CompiledIndicator) -> re.Pattern[str]:
    """The indicator's search without the gate, as it was compiled before it."""
    alternatives = "|".join(
        f"(?P<p{i}>{_expand(phrase.pattern)})"
        for i, phrase in enumerate(indicator.indicator.phrases)
    )
    return re.compile(f" (?:{alternatives})(?![a-z0-9])")


PLAIN = [(indicator, _plain_search(indicator)) for indicator in DEFAULT_LEXICON.indicators]


def _assert_same(text: str) -> None:
    spaced = " " + fold(text)
    for indicator, plain in PLAIN:
        gated, ungated = indicator.search(spaced), plain.search(spaced)
        assert (gated and (gated.span(), gated.lastgroup)) == (
            ungated and (ungated.span(), ungated.lastgroup)
        ), (indicator.name, text)


class TestGatedLexicon:
    def test_every_indicator_but_amounts_has_a_gate(self) -> None:
        """The gate is in force: only the indicator whose phrases begin with an amount of
        money (any digit) is searched without it."""
        ungated = [
            i.name
            for i in DEFAULT_LEXICON.indicators
            if not i.search.__self__.pattern.startswith(" (?=")
        ]
        assert ungated == ["sextortion.demand"]

    def test_corpora_match_exactly_as_without_the_gate(self) -> None:
        """Every message and conversation line of the corpora gives the same match, with the
        same span and phrase, gated or not."""
        texts = [json.loads(line)["text"] for line in (DATA / "messages.jsonl").open()]
        for line in (DATA / "conversations.jsonl").open():
            texts.extend(text for _sender, text in json.loads(line)["messages"])
        assert len(texts) > 1000
        for text in texts:
            _assert_same(text)

    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(
            st.sampled_from(
                sorted(
                    {
                        word
                        for indicator in DEFAULT_LEXICON.indicators
                        for phrase in indicator.indicator.phrases
                        for word in re.findall(r"[a-z0-9]+", phrase.pattern)
                    }
                )
            )
            | st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 $@", max_size=6),
            max_size=12,
        )
    )
    def test_phrase_words_in_any_order_match_exactly_as_without_the_gate(
        self, words: list[str]
    ) -> None:
        """Random texts made of the lexicon's own words (so that phrases do match) and of
        random letters give the same match gated or not."""
        _assert_same(" ".join(words))
