"""The detection view: what normalisation folds, and that every span maps back exactly."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logwarden.safety.normalize import leet, normalize, spell_digits
from tests.safety.obfuscation import (
    BIDI_OVERRIDES,
    HOMOGLYPHS,
    KEYCAP,
    ZERO_WIDTH,
    fullwidth,
    homoglyphs,
    keycaps,
    math_bold,
)


def _original(text: str, start: int, end: int) -> str:
    """The original characters behind ``view.text[start:end]``."""
    view = normalize(text)
    o_start, o_end = view.span(start, end)
    return text[o_start:o_end]


class TestAsciiFastPath:
    def test_plain_ascii_is_the_identity_map(self) -> None:
        """Printable ASCII gives the lower-cased text and no offset tables."""
        view = normalize("Call ME at 5")
        assert view.text == "call me at 5"
        assert view.starts is None and view.ends is None
        assert view.span(5, 7) == (5, 7)

    def test_ascii_control_characters_are_dropped(self) -> None:
        """NUL and other controls vanish, tabs and newlines stay."""
        view = normalize("5\x005\x075\tx\n")
        assert view.text == "555\tx\n"
        assert _original("5\x005\x075", 0, 3) == "5\x005\x075"


class TestInvisibleCharacters:
    @pytest.mark.parametrize("mark", ZERO_WIDTH + BIDI_OVERRIDES + ("\u00ad",))
    def test_format_characters_vanish(self, mark: str) -> None:
        """Zero-width spaces and joiners, word joiners, BOMs, bidi controls, soft hyphens go."""
        view = normalize(f"ja{mark}ke")
        assert view.text == "jake"

    def test_a_span_across_an_invisible_character_covers_it(self) -> None:
        """The original span of two folded neighbours includes what was between them."""
        text = "a5\u200b5b"
        view = normalize(text)
        assert view.text == "a55b"
        assert _original(text, 1, 3) == "5\u200b5"

    def test_lone_surrogates_vanish(self) -> None:
        """A lone surrogate (possible in a Python str) is dropped, not an error."""
        assert normalize("5\ud8005").text == "55"


class TestCompatibilityForms:
    def test_fullwidth_becomes_ascii(self) -> None:
        """Fullwidth digits, letters and '@' fold to ASCII."""
        assert normalize(fullwidth("Max@Example.com 202")).text == "max@example.com 202"

    def test_mathematical_digits_and_letters_become_ascii(self) -> None:
        """Mathematical bold digits and letters fold to ASCII."""
        assert normalize(math_bold("snap 415")).text == "snap 415"

    def test_circled_and_superscript_digits_become_digits(self) -> None:
        """Circled and superscript digits are digits in the view."""
        assert normalize("\u2460\u2461 \u00b9\u00b2\u00b3").text == "12 123"

    def test_digits_of_other_scripts_become_ascii_digits(self) -> None:
        """Arabic-Indic and Devanagari digits are digits in the view."""
        assert normalize("\u0664\u0661\u0665 \u0968\u0966\u0968").text == "415 202"

    def test_dashes_become_hyphens(self) -> None:
        """En and em dashes and the minus sign separate digit groups like '-'."""
        assert normalize("555\u2013012\u20143\u22124").text == "555-012-3-4"

    def test_an_expanded_character_maps_each_part_to_itself(self) -> None:
        """A ligature that folds to two letters maps both back to the one original."""
        text = "\ufb01x"  # LATIN SMALL LIGATURE FI
        view = normalize(text)
        assert view.text == "fix"
        assert view.span(0, 2) == (0, 1)
        assert view.span(1, 3) == (0, 2)

    def test_an_expansion_and_a_deletion_do_not_cancel_out(self) -> None:
        """A ligature (two letters) plus a zero-width space (none) still map exactly."""
        text = "\ufb01\u200bx"
        view = normalize(text)
        assert view.text == "fix"
        assert view.span(2, 3) == (2, 3)
        assert view.span(0, 2) == (0, 1)


class TestKeycaps:
    def test_keycap_digits_become_digits(self) -> None:
        """A keycap emoji keeps only its digit."""
        assert normalize(keycaps("415")).text == "415"

    def test_a_digit_span_covers_its_keycap(self) -> None:
        """The span of a keycap digit includes the variation selector and the keycap mark."""
        text = keycaps("42")
        assert _original(text, 0, 2) == text
        assert _original(text, 0, 1) == "4" + KEYCAP


class TestLookAlikes:
    @pytest.mark.parametrize(("latin", "twin"), sorted(HOMOGLYPHS.items()))
    def test_cyrillic_and_greek_twins_become_latin(self, latin: str, twin: str) -> None:
        """Each look-alike letter in the test table folds to the Latin letter it imitates."""
        assert normalize(twin).text == latin
        assert normalize(twin.upper()).text in (latin, latin.upper().lower())

    def test_accents_and_stacked_marks_are_stripped(self) -> None:
        """Accented letters lose their accents; stacked combining marks vanish."""
        assert normalize("jos\u00e9").text == "jose"
        assert normalize("j\u0301\u0302\u0303ake").text == "jake"

    def test_an_accent_belongs_to_its_letter(self) -> None:
        """The span of a letter covers the combining marks written after it."""
        text = "e\u0301x"
        assert _original(text, 0, 1) == "e\u0301"

    def test_no_look_alike_folds_to_a_non_ascii_character(self) -> None:
        """Everything the confusables table produces is plain ASCII."""
        folded = normalize("".join(HOMOGLYPHS.values()) + homoglyphs("example")).text
        assert folded.isascii()


class TestSpanMapping:
    @given(st.text(max_size=60))
    def test_every_span_maps_inside_the_original(self, text: str) -> None:
        """Any view span maps to a span of the original, in order, within bounds."""
        view = normalize(text)
        for start in range(len(view.text)):
            o_start, o_end = view.span(start, start + 1)
            assert 0 <= o_start < o_end <= len(text)
            if start:
                assert o_start >= view.span(start - 1, start)[0]

    @given(st.text(alphabet=st.characters(codec="ascii"), max_size=60))
    def test_ascii_text_maps_to_itself(self, text: str) -> None:
        """For ASCII text, every view character comes from the same offset."""
        view = normalize(text)
        for i, ch in enumerate(view.text):
            o_start, o_end = view.span(i, i + 1)
            assert text[o_start:o_end].lower() == ch

    @given(st.text(max_size=200))
    def test_normalize_never_raises(self, text: str) -> None:
        """Every str, surrogates and controls included, has a view."""
        normalize(text)


class TestSpellDigits:
    @pytest.mark.parametrize(
        ("text", "digits"),
        [
            ("five five five", "5 5 5"),
            ("oh one two", "0 1 2"),
            ("zero seven", "0 7"),
            ("forty two", "42"),
            ("forty-three", "43"),
            ("nineteen", "19"),
            ("double five", "55"),
            ("triple 7", "777"),
            ("f1ve s3ven", "5 7"),
            ("415 o1oo", "415 0100"),
        ],
    )
    def test_digit_words_become_digits(self, text: str, digits: str) -> None:
        """Digit words, compounds, repeats, leetspeak and letters typed for digits fold."""
        assert spell_digits(normalize(text)).text == digits

    def test_words_inside_other_words_stay(self) -> None:
        """'often', 'someone' and 'one's' keep their letters."""
        assert spell_digits(normalize("often someone one's")).text == "often someone one's"

    def test_a_digit_maps_back_to_its_word(self) -> None:
        """Each spelled digit maps back to the whole word that produced it."""
        text = "call five oh"
        view = spell_digits(normalize(text))
        assert view.text == "call 5 0"
        start, end = view.span(5, 8)
        assert text[start:end] == "five oh"

    def test_nothing_to_spell_returns_the_same_view(self) -> None:
        """Without digit words the digit view is the detection view itself."""
        view = normalize("hello there")
        assert spell_digits(view) is view


class TestLeet:
    @pytest.mark.parametrize("typed", ["snap", "sn4p", "5nap", "$n@p"])
    def test_leet_patterns_accept_common_substitutions(self, typed: str) -> None:
        """A leet pattern for 'snap' matches the usual digit and symbol substitutions."""
        assert re.fullmatch(leet("snap"), typed)

    def test_leet_patterns_reject_other_words(self) -> None:
        """The pattern is not a wildcard: 'snip' and 'span' do not match 'snap'."""
        assert not re.fullmatch(leet("snap"), "snip")
        assert not re.fullmatch(leet("snap"), "span")

    def test_spaces_in_a_word_match_separators(self) -> None:
        """'whats app' matches 'whatsapp', 'whats app' and 'whats-app'."""
        for typed in ("whatsapp", "whats app", "whats-app"):
            assert re.fullmatch(leet("whats app"), typed)


def test_confusables_are_named_characters() -> None:
    """Every twin in the test table is the character its name says (guards the helpers)."""
    for twin in HOMOGLYPHS.values():
        assert unicodedata.name(twin).startswith(("CYRILLIC", "GREEK"))
