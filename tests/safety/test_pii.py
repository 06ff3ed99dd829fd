"""The personal-information detector: each kind, each disguise, each precision trap, bad input."""

from __future__ import annotations

import dataclasses
import time

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logwarden.safety import KINDS, Finding, PiiDetector, detect
from logwarden.safety._phones import PhoneRule, _check_international, _check_with_phonenumbers
from tests.safety.obfuscation import (
    BIDI_OVERRIDES,
    ZERO_WIDTH,
    disguise,
    fullwidth,
    homoglyphs,
    keycaps,
    math_bold,
    operations,
)


def found(text: str) -> list[tuple[str, str]]:
    """(kind, original text) of every finding in ``text``."""
    return [(f.kind, text[f.start : f.end]) for f in detect(text)]


def kinds(text: str) -> set[str]:
    return {f.kind for f in detect(text)}


def assert_finds(text: str, kind: str, value: str) -> None:
    """``text`` has a finding of ``kind`` that covers ``value`` (which occurs in ``text``)."""
    start = text.index(value)
    end = start + len(value)
    hits = [f for f in detect(text) if f.kind == kind and f.start <= start and f.end >= end]
    assert hits, f"no {kind} covering {value!r} in {text!r}: {found(text)}"


class TestApi:
    def test_kinds_are_the_documented_eight(self) -> None:
        """KINDS names the eight kinds of docs/safety.md, in order."""
        assert KINDS == ("phone", "email", "handle", "url", "address", "card", "ip", "age")

    def test_finding_is_frozen_and_serialises(self) -> None:
        """A Finding cannot be changed and its JSON has exactly the documented keys."""
        finding = detect("call 202-555-0143")[0]
        with pytest.raises(dataclasses.FrozenInstanceError):
            finding.kind = "email"  # type: ignore[misc]
        assert finding.as_json() == {
            "kind": "phone",
            "start": 5,
            "end": 17,
            "confidence": finding.confidence,
            "reason": finding.reason,
        }
        assert 0 < finding.confidence <= 1

    def test_findings_are_sorted_and_do_not_overlap_within_a_kind(self) -> None:
        """Findings come sorted by start, and two findings of one kind never overlap."""
        text = "sc: jake_09 or @jake_09, call 202-555-0143 or 415-555-0199, jake@example.com"
        findings = detect(text)
        assert findings == sorted(findings, key=lambda f: (f.start, f.end, f.kind))
        for a in findings:
            for b in findings:
                if a is not b and a.kind == b.kind:
                    assert a.end <= b.start or b.end <= a.start

    def test_the_module_function_uses_the_default_detector(self) -> None:
        """detect() answers like a PiiDetector built with the defaults."""
        text = "im 14, text 202-555-0143"
        assert detect(text) == PiiDetector().detect(text)

    def test_an_unknown_region_is_refused_by_name(self) -> None:
        """A region code phonenumbers does not know raises ValueError naming it."""
        with pytest.raises(ValueError, match="'XX'"):
            PiiDetector(regions=("US", "XX"))

    def test_regions_decide_which_national_numbers_are_read(self) -> None:
        """A UK mobile number without +44 is a phone number only if GB is a region."""
        text = "text 07911 123456"
        assert kinds(text) == {"phone"}
        assert PiiDetector(regions=("US",)).detect(text) == []

    def test_min_confidence_filters_findings(self) -> None:
        """Findings below min_confidence are not reported."""
        text = "hmu @jake_2009"
        assert PiiDetector().detect(text)
        assert PiiDetector(min_confidence=0.95).detect(text) == []

    @pytest.mark.parametrize(
        "text",
        [
            "call 202-555-0143",
            "jake at gmail dot com",
            "sc: jake_2009",
            "example[.]com/page",
            "42 Elm Street",
            "4111 1111 1111 1111",
            "192.0.2.44",
            "im 14",
            "five five five oh one four three call me",
        ],
    )
    def test_reasons_explain_without_repeating_the_value(self, text: str) -> None:
        """Every finding has a reason, and the reason does not contain what was found."""
        for finding in detect(text):
            value = text[finding.start : finding.end].lower()
            assert finding.reason
            assert value not in finding.reason.lower()

    def test_reasons_say_when_a_value_was_disguised(self) -> None:
        """A value written with invisible or look-alike characters says so in its reason."""
        finding = detect(f"call {fullwidth('202-555-0143')}")[0]
        assert "disguised" in finding.reason
        assert "disguised" not in detect("call 202-555-0143")[0].reason


class TestPhone:
    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("call me at 202-555-0143", "202-555-0143"),
            ("my number is (415) 555-0199", "(415) 555-0199"),
            ("text me 312.555.0122", "312.555.0122"),
            ("+1 646 555 0187 thats my cell", "+1 646 555 0187"),
            ("its 2025550168 hmu", "2025550168"),
            ("call 1-800-555-0199", "1-800-555-0199"),
            ("uk number 07700 900461", "07700 900461"),
            ("whatsapp +44 7700 900123", "+44 7700 900123"),
            ("ring 020 7946 0321", "020 7946 0321"),
            ("aussie +61 491 570 158", "+61 491 570 158"),
            ("call me 555-0134", "555-0134"),
            ("call me 555.0123", "555.0123"),
        ],
    )
    def test_formatted_numbers(self, text: str, value: str) -> None:
        """National and international numbers in the usual layouts are found whole."""
        assert_finds(text, "phone", value)

    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("five five five oh one four three", "five five five oh one four three"),
            ("two oh two five five five zero one four three", "two oh two five five five zero"),
            ("four one five, five five five, oh one forty two", "oh one forty two"),
            ("call me double five five oh one nine eight", "double five five oh one nine eight"),
            ("call f1ve f1ve f1ve oh one six s3ven", "f1ve f1ve f1ve oh one six s3ven"),
            ("number is two zero two 555 oh one eight eight", "two zero two 555 oh one"),
        ],
    )
    def test_spelled_numbers(self, text: str, value: str) -> None:
        """Digits written as words, compounds, 'double' and leetspeak still make a number."""
        assert_finds(text, "phone", value)
        assert "words" in next(f.reason for f in detect(text) if f.kind == "phone")

    @pytest.mark.parametrize(
        "value",
        [
            "5 5 5-0 1 2 3",
            "4 1 5 5 5 5 0 1 9 9",
            "4-1-5-5-5-5-0-1-6-1",
            "202 . 555 . 0177",
            "415 555 O1OO",
            "312\u00b7555\u00b70145",
            fullwidth("202-555-0171"),
            keycaps("4155550132"),
            math_bold("202 555 0195"),
            "202\u200b555\u200b0156",
            "\u2074\u00b9\u2075\u2075\u2075\u2075\u2070\u00b9\u2079\u2070",
        ],
    )
    def test_spaced_and_disguised_digits(self, value: str) -> None:
        """Spaced digits, letters for digits, fullwidth, keycap, math and invisible joins."""
        assert_finds(f"call me {value} ok", "phone", value)

    @pytest.mark.parametrize(
        "text",
        [
            "I'm 5 minutes away",
            "be there at 5:30pm",
            "class starts at 08:15",
            "it was $19.99 on sale",
            "that costs 1,299 dollars",
            "we won 21-14",
            "score was 3-2 in overtime",
            "update to v2.3.1",
            "python 3.11 is faster",
            "running windows 10.0.19045",
            "due 12/25/2026",
            "2026-11-25 is the date",
            "its 25.12.2026 in europe",
            "lvl 5000 grind",
            "born in 2010",
            "lobby code 4829 1736",
            "order 2025550143 shipped",
            "the seed is 8675309123",
            "roblox id 2025550143",
            "i have 4111 followers",
            "population 8,000,000",
            "1 2 3 4 5 6 7 8 9 10 counting sheep",
            "coords 40.7128, -74.0060",
            "guid 3f2504e0-4f89-11d3-9a0c-0305e82c3301",
            "got 10000 vbucks lol",
            "115.7405 xxxxxxxx",  # a decimal of the local number's shape, with no cue
            "my order number is 2025550143",  # "number" is the order's, not a phone cue
            "my order no. is 4155550123",
            "ticket # 3125550188",
            "I rolled 5 5 5 0 1 2 3",  # single digits apart, no cue, not a valid number
        ],
    )
    def test_numbers_that_are_not_phone_numbers(self, text: str) -> None:
        """Times, prices, scores, versions, dates, codes, counts and ids are not phones."""
        assert "phone" not in kinds(text)

    def test_the_nearer_word_decides(self) -> None:
        """A phone cue nearer to the number than a blocking word wins, and the other way
        round; a blocker's own "number" ("order number") is no phone cue."""
        assert found("order? no, call me at 202-555-0143") == [("phone", "202-555-0143")]
        assert "phone" not in kinds("call me, order 2025550143")
        assert "phone" not in kinds("my tracking number is 2025550143")

    def test_spaced_single_digits_need_a_cue_or_a_valid_number(self) -> None:
        """Digits typed apart are a phone when cued, valid, or spelled as words."""
        assert found("my digits 5 5 5-0 1 2 3") == [("phone", "5 5 5-0 1 2 3")]
        assert found("2 0 2 5 5 5 0 1 0 7") == [("phone", "2 0 2 5 5 5 0 1 0 7")]
        assert found("five five five oh one four three") == [
            ("phone", "five five five oh one four three")
        ]
        assert found("5 5 5 0 1 9 9 text me") == [("phone", "5 5 5 0 1 9 9")]
        assert "phone" not in kinds("5 5 5 0 1 2 3")

    def test_two_numbers_side_by_side_are_two_findings(self) -> None:
        """Numbers separated only by a space are not merged into one long run."""
        text = "202-555-0143 415-555-0199"
        assert found(text) == [("phone", "202-555-0143"), ("phone", "415-555-0199")]

    def test_bare_digits_need_a_valid_number(self) -> None:
        """Ten bare digits are a phone only if they fit a numbering plan (no area code 555)."""
        assert "phone" in kinds("its 2025550123 lol")
        assert "phone" not in kinds("its 5555550123 lol")

    def test_a_merely_possible_number_needs_context_or_layout(self) -> None:
        """A number of possible length outside the plan counts when written or cued as one."""
        assert "phone" in kinds("call 555-555-0123")
        assert "phone" not in kinds("5555550123")


class TestNumberingPlan:
    @settings(max_examples=300, deadline=None)
    @given(
        region=st.sampled_from(["US", "CA", "GB", "AU", "IE", "NZ", "IN"]),
        national=st.from_regex(r"[1-9][0-9]{4,11}", fullmatch=True),
    )
    def test_validity_agrees_with_phonenumbers(self, region: str, national: str) -> None:
        """Our precompiled check answers what phonenumbers.is_valid_number_for_region does."""
        plan = PhoneRule([region])._plans[0]
        number = phonenumbers.PhoneNumber(
            country_code=plan.country_code, national_number=int(national)
        )
        assert plan.is_valid(national) == phonenumbers.is_valid_number_for_region(number, region)

    @settings(max_examples=500, deadline=None)
    @given(
        code=st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)),
        national=st.from_regex(r"[0-9]{1,13}", fullmatch=True),
    )
    def test_international_numbers_agree_with_phonenumbers(self, code: int, national: str) -> None:
        """Numbers after "+" get the (valid, possible) phonenumbers gives them, or go to it."""
        number = f"{code}{national}"
        answer = _check_international(number)
        if answer is not None:
            assert answer == _check_with_phonenumbers(number)

    @pytest.mark.parametrize("region", sorted(phonenumbers.SUPPORTED_REGIONS))
    def test_international_example_numbers(self, region: str) -> None:
        """Every example number in the metadata, valid or one digit off, agrees as well."""
        for kind in phonenumbers.PhoneNumberType.values():
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            digits = f"{example.country_code}{phonenumbers.national_significant_number(example)}"
            for number in (digits, digits[:-1], digits + "1"):
                answer = _check_international(number)
                if answer is not None:
                    assert answer == _check_with_phonenumbers(number)


class TestEmail:
    @pytest.mark.parametrize(
        "value",
        [
            "jake.smith@example.com",
            "hello+chat@example.com",
            "Chris.P@Example.NET",
            "kai@mail.example.org",
            "jake at gmail dot com",
            "name at gmail dot com",
            "coolkid99(at)example(dot)com",
            "sam [at] example [dot] net",
            "tom {at} example {dot} org",
            "ruby<at>example<dot>com",
            "kai(@)example(.)com",
            "mia @ example . com",
            "ella AT example DOT com",
            "ben at mail dot example dot org",
            "zoe.k at gmail",
            "liam@gmail",
            "n0ah at yah00 d0t c0m",
            "max99 at example.com",
            fullwidth("max@example.com"),
            homoglyphs("jake@example.com"),
            "ja\u200bke@exa\u2060mple.com",
        ],
    )
    def test_addresses_and_their_disguises(self, value: str) -> None:
        """Literal addresses and every 'at'/'dot' disguise are found whole."""
        assert_finds(f"email me {value} ok", "email", value)

    @pytest.mark.parametrize(
        "text",
        [
            "look at this",
            "i'm at home",
            "meet me at noon",
            "i work at yahoo",
            "good at math",
            "arrive at 5.30",
            "we're at gmail hq for a tour",
            "email me later",
            "my email is private sorry",
            "tiktok @dance.with.zoe",
            "meet @ the mall",
        ],
    )
    def test_at_and_dot_in_ordinary_sentences(self, text: str) -> None:
        """'at' between ordinary words and a spaced '@' before no domain are not emails."""
        assert "email" not in kinds(text)

    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("jane dot doe at example dot com", "jane dot doe at example dot com"),
            ("hit me up at sam dot lee at example dot com", "sam dot lee at example dot com"),
            ("jake underscore b at example dot org", "jake underscore b at example dot org"),
            ("JAKE . B @ EXAMPLE . COM", "JAKE . B @ EXAMPLE . COM"),
            ("mail me jdoe at example.com", "jdoe at example.com"),
            ("a dot b dot c at example dot com", "b dot c at example dot com"),
            ("hey. b@example.com", "b@example.com"),
            ("polka dot jane at example dot com", "jane at example dot com"),
        ],
    )
    def test_the_span_is_the_whole_mailbox(self, text: str, value: str) -> None:
        """A mailbox with spoken or spaced dots is found from its first word, exactly; a
        sentence's own dot or an ordinary word before it is not part of it."""
        assert found(text) == [("email", value)]

    def test_a_provider_is_a_domain_without_its_ending(self) -> None:
        """People name a mail provider without ".com" ("name at gmail"); the cue stays."""
        assert found("name at gmail") == [("email", "name at gmail")]
        assert found("its zoe.k at hotmail") == [("email", "zoe.k at hotmail")]

    def test_a_spoken_at_before_a_plain_domain_needs_talk_of_mail(self) -> None:
        """ "jdoe at example.com" is an address after "mail me", a web address otherwise."""
        assert kinds("mail me jdoe at example.com") == {"email"}
        assert kinds("sold out at example.com") == {"url"}
        assert kinds("look at example.com") == {"url"}

    def test_an_email_is_not_also_a_url_or_handle(self) -> None:
        """The domain inside an address is not reported again as a web address."""
        assert kinds("jake at gmail dot com") == {"email"}
        assert kinds("jake@example.com") == {"email"}


class TestHandle:
    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("sc: jake_2009", "jake_2009"),
            ("add me on snap lily.rose22", "lily.rose22"),
            ("add me on snapchat its theo.k", "theo.k"),
            ("my ig is mia.draws", "mia.draws"),
            ("my insta is private but its rae.draws", "rae.draws"),
            ("\U0001f47b coolkid_x", "coolkid_x"),
            ("snap me at jakey", "jakey"),
            ("kik me tommy_b99", "tommy_b99"),
            ("my discord is shadowfox#4821", "shadowfox#4821"),
            ("telegram: @ben_runs", "@ben_runs"),
            ("tiktok @dance.with.zoe", "@dance.with.zoe"),
            ("follow me on x @sam_writes", "@sam_writes"),
            ("add me on facebook noah.fisher.77", "noah.fisher.77"),
            ("im gamer_leo12 on discord", "gamer_leo12"),
            ("add zoe.plays on tiktok", "zoe.plays"),
            ("whats ur snap? mine is kai.surf", "kai.surf"),
            ("my whatsapp name is sunny_days", "sunny_days"),
            ("my xbox gamertag is BlueFalcon22", "BlueFalcon22"),
            ("my @ is maxx.gg", "maxx.gg"),
            ("hmu @jake_2009", "@jake_2009"),
            ("find me on reddit u/quiet_reader", "u/quiet_reader"),
            ("yt: gamerguy_101", "gamerguy_101"),
            ("my x is coolkid22", "coolkid22"),
            ("x: coolkid22", "coolkid22"),
            ("x: @jdoe", "@jdoe"),
            ("my discord is cool#1234", "cool#1234"),
            ("cool#1234 add me", "cool#1234"),
            ("snap 👉 jdoe22", "jdoe22"),
            ("insta ➡️ art.by.jo", "art.by.jo"),
            ("sc: name", "name"),
            ("snap: cool", "cool"),
            ("sc: name, add me", "name"),
        ],
    )
    def test_offered_handles(self, text: str, value: str) -> None:
        """Each way of offering an account yields the username, not the cue."""
        assert_finds(text, "handle", value)

    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("sn4p: jake_2009", "jake_2009"),
            ("5nap: kayla.b2", "kayla.b2"),
            ("add me on 1nsta zara.lane", "zara.lane"),
            (homoglyphs("snap") + ": lilyy_rose", "lilyy_rose"),
            (math_bold("snap") + ": ben_10", "ben_10"),
            ("add me on snap: j\u200bake_2009", "j\u200bake_2009"),
            ("kik: " + fullwidth("tommy_b"), fullwidth("tommy_b")),
            ("my 1g is jdoe_22", "jdoe_22"),
            ("5c: jake_2009", "jake_2009"),
        ],
    )
    def test_disguised_cues_and_handles(self, text: str, value: str) -> None:
        """Leetspeak, look-alike or styled platform names and disguised usernames."""
        assert_finds(text, "handle", value)

    @pytest.mark.parametrize(
        "text",
        [
            "snap decision",
            "oh snap",
            "in a snap",
            "snap out of it",
            "add me to the group chat",
            "add me on snap",
            "do you have snap?",
            "my snap is acting weird",
            "my snap streak is 200 days",
            "my insta is private",
            "i deleted my insta",
            "discord is down again",
            "disc golf is fun",
            "ig report was wrong",
            "i'm on tiktok too much",
            "follow me on insta",
            "snap me later",
            "x marks the spot",
            "i got 3 x 4 = 12",
            "@everyone look",
            "@ me next time",
            "@ 5pm works",
            "call me @ 646-555-0166",
            "issue #1234 fixed",
            "call of duty",
            "x: 5",
            "x: y2",
            "x = abc_1",
            "my x is my ex lol",
            "my x is crazy",
            "sc: 10 points",
            "ig: private",
            "snap: same as before",
            "discord: down again",
            "my 19 is jake_1",
            "its 5c outside",
            "my 1g is full",
        ],
    )
    def test_platform_words_without_an_account(self, text: str) -> None:
        """Platform names in ordinary chat, and requests without a username, are not handles."""
        assert "handle" not in kinds(text)

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            ("follow me on x @jdoe", "an X (Twitter) username"),
            ("my xbox is BlueFalcon22", "an Xbox username"),
            ("my ig is mia.draws", "an Instagram username"),
            ("my sc is maxxie", "a Snapchat username"),
        ],
    )
    def test_reasons_name_the_platform_with_its_article(self, text: str, reason: str) -> None:
        """ "an X", "an Xbox", "an Instagram", "a Snapchat": the article follows the sound."""
        (finding,) = detect(text)
        assert finding.reason.startswith(reason)


class TestUrl:
    @pytest.mark.parametrize(
        "value",
        [
            "example.com",
            "example.com/x",
            "https://example.org/my-page",
            "www.example.net/forum",
            "http://shop.example/items?id=42",
            "ftp://files.example.net/pub",
            "example.co.uk/shop",
            "art.example",
            "example[.]com",
            "example(.)net",
            "www[.]example[.]com",
            "hxxps://example[.]org/login",
            "hxxps[:]//example[.]com/login",
            "mysite dot example",
            "example [dot] org",
            "example d0t com",
            fullwidth("example.com"),
            homoglyphs("example") + ".com",
            "exa\u200bmple.org",
            "example\u3002com",
        ],
    )
    def test_addresses_and_defanged_forms(self, value: str) -> None:
        """Schemes, www, bare domains with known endings, defanged and spoken dots."""
        assert_finds(f"see {value} ok", "url", value)

    def test_sentence_punctuation_is_not_part_of_the_address(self) -> None:
        """A full stop, comma or closing bracket after an address is left out."""
        text = "go to (example.org/page). now"
        [finding] = detect(text)
        assert text[finding.start : finding.end] == "example.org/page"

    @pytest.mark.parametrize(
        "text",
        [
            "open report.pdf",
            "rename it to main.py",
            "the file is notes.txt",
            "check config.json",
            "node.js is cool",
            "lol.ok",
            "end.start",
            "e.g. this one",
            "i.e. no",
            "Mr. Smith is my teacher",
            "polka dot dress",
            "the dot com bubble",
            "say it with a dot com accent",
            "v2.3.1",
        ],
    )
    def test_file_names_abbreviations_and_dots(self, text: str) -> None:
        """File names, abbreviations and the word 'dot' are not web addresses."""
        assert "url" not in kinds(text)


class TestAddress:
    @pytest.mark.parametrize(
        "value",
        [
            "123 Main St",
            "42 Elm Street Apt 4",
            "304 Birch Blvd, Apt 12",
            "1600 Oakwood Avenue",
            "221b Baker Street",
            "9 Harbour View Close",
            "4501 North Cedar Ct",
            "1010 W 5th St",
            "140 Harmon St #5",
            "67 Queen's Road",
            "5 Sunnyside Dr.",
            fullwidth("42") + " Elm Street",
            "19 Ced\u200bar Ave",
            "56 " + homoglyphs("oak") + " Street",
        ],
    )
    def test_street_addresses(self, value: str) -> None:
        """A house number, a street name and a street type, with any unit after it."""
        assert_finds(f"i live at {value} lol", "address", value)

    @pytest.mark.parametrize(
        "text",
        [
            "I have 3 cats",
            "it's a 2 way street",
            "we drove 300 miles down the road",
            "its a 10 min drive",
            "that's a 5 star place",
            "the top 10 high street brands are boring",
            "2nd street is closed",
            "take the 5th avenue bus",
            "we have 3 dr appointments",
            "there were 40 cars on the road",
            "i walked 3 blocks down the street",
        ],
    )
    def test_numbers_near_street_words(self, text: str) -> None:
        """Counts and distances next to street words are not addresses."""
        assert "address" not in kinds(text)


class TestCard:
    @pytest.mark.parametrize(
        "value",
        [
            "4111 1111 1111 1111",
            "5555 5555 5555 4444",
            "4242-4242-4242-4242",
            "378282246310005",
            "3782 822463 10005",
            "6011 1111 1111 1117",
            "4111.1111.1111.1111",
            "4 2 4 2 4 2 4 2 4 2 4 2 4 2 4 2",
            "four one one one one one one one one one one one one one one one",
            "4111 l111 1111 1111",
            fullwidth("4111 1111 1111 1111"),
            keycaps("4242424242424242"),
            "5555\u200b5555\u200b5555\u200b4444",
        ],
    )
    def test_card_numbers(self, value: str) -> None:
        """Test card numbers with any grouping, spelled or disguised, are found whole."""
        assert_finds(f"card {value} thanks", "card", value)

    def test_a_card_is_not_also_a_phone_number(self) -> None:
        """The digits of a card are reported once, as a card."""
        assert kinds("3782 822463 10005") == {"card"}

    @pytest.mark.parametrize(
        "text",
        [
            "serial 4111 1111 1111 1112",  # Luhn fails
            "1234 5678 9012 3456",  # no issuer starts with 1
            "phone imei 490154203237518",  # Luhn-valid, but a device number
            "tracking number 9400 1000 0000 0000 0000 00",
        ],
    )
    def test_numbers_that_are_not_cards(self, text: str) -> None:
        """A wrong check digit, an unknown issuer or a device/tracking cue rules a card out."""
        assert "card" not in kinds(text)


class TestIp:
    @pytest.mark.parametrize(
        "value",
        [
            "192.0.2.44",
            "198.51.100.23",
            "203.0.113.9",
            "192.0.2[.]15",
            "198[.]51[.]100[.]7",
            "198(.)51(.)100(.)99",
            "203 dot 0 dot 113 dot 54",
            "192 . 0 . 2 . 8",
            fullwidth("192.0.2.1"),
            "2001:db8::1",
            "2001:db8:85a3::8a2e:370:7334",
            "2001:0db8:0000:0000:0000:ff00:0042:8329",
        ],
    )
    def test_addresses(self, value: str) -> None:
        """IPv4 (plain and defanged) and IPv6 addresses are found whole."""
        assert_finds(f"my ip {value} ok", "ip", value)

    @pytest.mark.parametrize(
        "text",
        [
            "server is 192.168.1.20 on my lan",
            "host it on 127.0.0.1",
            "my router is 10.0.0.1",
            "255.255.255.0 subnet mask",
            "0.0.0.0",
            "version 2.0.0.1 broke it",
            "v1.2.3.4",
            "3.4.5.6.7",
            "12:30:45",
            "aa:bb:cc:dd:ee:ff",
            "::1 is localhost",
        ],
    )
    def test_addresses_that_locate_nobody_and_versions(self, text: str) -> None:
        """LAN, loopback, masks, versions, times and MAC addresses are not reported."""
        assert "ip" not in kinds(text)


class TestAge:
    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("im 13", "13"),
            ("im 14 lol", "14"),
            ("i'm fourteen", "fourteen"),
            ("i'm f0urteen", "f0urteen"),
            ("13 yo here", "13 yo"),
            ("14yo", "14yo"),
            ("i am 12 years old", "12 years old"),
            ("13 m", "13 m"),
            ("15/f", "15/f"),
            ("asl? 14 m uk", "14 m"),
            ("age 15", "15"),
            ("my age is 14", "14"),
            ("i just turned 13", "13"),
            ("im turning 15 next week", "15"),
            ("I'm in 8th grade", "8th grade"),
            ("8th grade sucks", "8th grade"),
            ("year 9 is so boring", "year 9"),
            ("im in yr 8", "yr 8"),
            ("i'm a freshman in high school", "freshman in high school"),
            ("i'm in middle school", "middle school"),
            ("i'm a 7th grader", "7th grader"),
            ("I go to Lincoln Middle School", "Lincoln Middle School"),
            ("im at Westfield High", "Westfield High"),
            ("im a freshman at Northridge High", "Northridge High"),
            ("my school is Riverside Academy", "Riverside Academy"),
            ("im in 9th grade at Maple High", "Maple High"),
            ("i'm 1\u200b3", "1\u200b3"),
            ("i'm " + fullwidth("14"), fullwidth("14")),
            ("im 13.", "13"),
            ("im 13 and you", "13"),
            ("im 13 and a half", "13"),
            ("im 13, you?", "13"),
            ("im 15 please stop", "15"),
            ("i'm 14 turning 15 in june", "14"),
            ("i'll be 14 in june", "14"),
            ("im 14 from ohio", "14"),
            ("im 13 🙂", "13"),
            ("13 f", "13 f"),
            ("i'm a high school student", "high school"),
            ("year 8 here", "year 8"),
        ],
    )
    def test_a_participant_stating_they_are_a_minor(self, text: str, value: str) -> None:
        """Ages under 18, school grades and schools, said about oneself, are found."""
        assert_finds(text, "age", value)

    @pytest.mark.parametrize(
        "text",
        [
            "my brother is 12",
            "my sister is 14",
            "she's 15",
            "my 12 yo cousin beat me",
            "a 15 yo kid",
            "my son just turned 13",
            "I've played for 13 years",
            "I'm 25",
            "im 18",
            "i'm 19 years old",
            "I'm 5 minutes away",
            "i'm 15 minutes late",
            "i'm 12 hours ahead of you",
            "im 16 levels behind you",
            "i'm 6 feet tall",
            "i'm 1 of 3 kids",
            "when i was 13 i broke my arm",
            "my little brother is in 8th grade",
            "i teach 7th grade",
            "i'm in year 2 of uni",
            "back in 6th grade i was shy",
            "in 2nd grade i learned to read",
            "i went to lincoln high",
            "high school musical is a classic",
            "my brother is in 9th grade at Maple High",
            "what grade are you in?",
            "the age limit is 13",
            "age of empires 2 is the best",
            # "I'm N" followed by what N counts, whatever it is: no list of units needed
            "im 12 blocks away",
            "im 14 episodes in",
            "im 17 kilos lighter",
            "im 13 stops away",
            "im 15 steps behind",
            "im 13 down",
            "i'm 12 in line",
            "im 12 messages behind",
            "im 13 tabs deep",
            "i'm 13.5 kilos down",
            "im 13-0 this season",
            "age 13 and up",
            # a grade that is someone else's, or a year of something else
            "I'm a year 9 teacher",
            "I'm in year 9 of my marriage lol",
            "i'm a high school teacher",
            "im a middle school teacher",
            "I'm in year 3 of my phd",
        ],
    )
    def test_other_people_the_past_adults_and_counts(self, text: str) -> None:
        """Other people's ages, the past, adults and numbers that count things are not."""
        assert "age" not in kinds(text)


class TestDecimals:
    @settings(max_examples=300, deadline=None)
    @given(st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False))
    def test_a_decimal_number_is_no_phone_or_card(self, value: float) -> None:
        """A decimal (a timestamp, a measurement, a price) is never a phone number or a card,
        whatever its digits: a point between two runs of digits is not a separator."""
        text = f"{value!r} seconds"
        assert [f for f in detect(text) if f.kind in {"phone", "card"}] == []

    def test_card_groups_may_be_separated_by_points(self) -> None:
        """Whole groups separated by points are still a card."""
        assert [f.kind for f in detect("4111.1111.1111.1111")] == ["card"]


class TestDisguisedValuesMapBack:
    """For random disguises of a known value, the finding covers exactly what was typed."""

    TEMPLATES = (
        ("phone", "call me at {} tonight", "202-555-0143"),
        ("email", "email me {} thanks", "jake.smith@example.com"),
        ("card", "card {} ok", "4111 1111 1111 1111"),
        ("ip", "my ip is {} lol", "198.51.100.23"),
        ("url", "see {} now", "example.org/page"),
        ("handle", "sc: {}", "jake_2009"),
        ("address", "i live at {} lol", "42 Elm Street"),
        ("age", "im {} lol", "14"),
    )

    @settings(max_examples=60, deadline=None)
    @given(template=st.sampled_from(TEMPLATES), ops=operations)
    def test_the_span_covers_the_disguised_value(
        self, template: tuple[str, str, str], ops: list[int]
    ) -> None:
        """Zero-width, fullwidth and look-alike characters anywhere in the value."""
        kind, shape, value = template
        typed = disguise(value, ops)
        text = shape.format(typed)
        start = shape.index("{}")
        end = start + len(typed)
        hits = [f for f in detect(text) if f.kind == kind]
        assert any(f.start <= start and f.end >= end for f in hits), (text, found(text))


class TestHostileInput:
    @pytest.mark.parametrize(
        "text",
        [
            "",
            " ",
            "\x00" * 100,
            "\ud800\udfff\ud800",
            "".join(BIDI_OVERRIDES) + "202-555-0143",
            "".join(ZERO_WIDTH) * 50,
            "\u0301" * 500,
            "a" * 100_000,
            "1 " * 50_000,
            "\U0001f47b" * 1000,
            "\uffff\ufffe\U0010ffff",
        ],
    )
    def test_odd_strings_never_raise(self, text: str) -> None:
        """Empty, huge, control, surrogate, bidi and non-character strings give a list."""
        findings = detect(text)
        assert isinstance(findings, list)
        assert all(0 <= f.start < f.end <= len(text) for f in findings)

    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=300))
    def test_any_text_gives_findings_inside_it(self, text: str) -> None:
        """For any str, findings are in bounds and of a known kind."""
        for finding in detect(text):
            assert isinstance(finding, Finding)
            assert finding.kind in KINDS
            assert 0 <= finding.start < finding.end <= len(text)

    @pytest.mark.parametrize(
        "text",
        [
            "1" * 10_000,
            "1 " * 5_000,
            "1." * 5_000,
            "1-" * 5_000,
            " at " * 2_500,
            "a at " * 2_000,
            "a.a." * 2_500,
            "@a" * 5_000,
            "a@" * 5_000,
            "snap " * 2_000,
            "my snap is " * 1_000,
            "1 a " * 2_500,
            "im 1" * 2_500,
            "x" * 64 + " at " + "x." * 5_000,
            "5 5 5 - " * 1_250,
            "[at](dot)" * 1_100,
            "sc: a_1 " * 1_250,  # thousands of findings: overlap resolution stays cheap
            "202-555-0143 " * 770,
        ],
    )
    def test_adversarial_text_is_linear(self, text: str) -> None:
        """10 KB built to make regexes backtrack is scanned in well under 50 ms.

        CPU time of this thread, best of three: other processes on a busy machine must not
        fail the test, while catastrophic backtracking would take seconds.
        """
        detect(text)  # the first call may warm caches
        timings = []
        for _ in range(3):
            started = time.thread_time()
            detect(text)
            timings.append(time.thread_time() - started)
        assert min(timings) < 0.05
