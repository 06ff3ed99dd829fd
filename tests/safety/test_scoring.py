"""Conversation risk: indicator families, the scoring rules, decay, reasons, policy decisions,
and hostile input (src/logwarden/safety/scoring.py, indicators.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pytest

from logwarden.errors import ConfigError
from logwarden.safety.indicators import (
    DEFAULT_LEXICON,
    Indicator,
    Lexicon,
    Phrase,
    fold,
)
from logwarden.safety.scoring import (
    FLAGS,
    SAFETY_MESSAGE,
    Assessment,
    ConversationRisk,
    Decision,
    RiskPolicy,
    score_conversation,
)


@dataclass(frozen=True, slots=True)
class Found:
    """A stand-in PII finding: the scorer reads only ``kind``."""

    kind: str
    start: int = 0
    end: int = 0
    confidence: float = 0.9
    reason: str = "test"


def chat(
    *lines: str,
    findings: Mapping[int, Sequence[str]] | None = None,
    policy: RiskPolicy | None = None,
) -> ConversationRisk:
    """A scorer fed ``"a: text"`` lines; ``findings`` gives PII kinds by message index."""
    risk = ConversationRisk(policy)
    for index, line in enumerate(lines):
        sender, text = line.split(": ", 1)
        kinds = (findings or {}).get(index, ())
        risk.observe(sender, text, [Found(kind) for kind in kinds])
    return risk


def assess(*lines: str, findings: Mapping[int, Sequence[str]] | None = None) -> Assessment:
    return chat(*lines, findings=findings).assessment


def filler(count: int, sender: str = "b") -> list[str]:
    """Harmless messages, to let indicators age."""
    return [f"{sender}: ok cool {i}" for i in range(count)]


class TestFold:
    def test_case_punctuation_and_apostrophes(self) -> None:
        """Case folds, apostrophes vanish and other punctuation becomes single spaces."""
        assert fold("Don't   TELL, a/s/l?!") == "dont tel a s l"

    def test_leetspeak_only_inside_mixed_words(self) -> None:
        """Leet digits inside words are undone; bare numbers and amounts stay numbers."""
        assert fold("h0w 0ld r u") == "how old r u"
        assert fold("$end me $200 im 14") == "send me $200 im 14"

    def test_repeated_letters_collapse(self) -> None:
        """Stretched spelling reads as one letter per run."""
        assert fold("pleeeease heyyyy") == "please hey"

    def test_fullwidth_accents_and_invisible_characters(self) -> None:
        """Fullwidth letters, accents and zero-width characters do not hide a word."""
        assert fold("\uff53\uff45\uff4e\uff44 s\u00e9\u00f1d se\u200bnd") == "send send send"

    def test_reads_at_most_max_chars(self) -> None:
        """Only the first ``max_chars`` characters are read."""
        assert fold("abc def", max_chars=3) == "abc"


# Every phrase family of the default lexicon, with a message that shows it.
EXAMPLES = [
    ("How old r u?", "grooming.age_probe", "how_old"),
    ("a/s/l", "grooming.age_probe", "asl"),
    ("whats ur age", "grooming.age_probe", "your_age"),
    ("what grade are you in", "grooming.age_probe", "grade"),
    ("r u over 18", "grooming.age_probe", "over_18"),
    ("dont tell your mom about me", "grooming.secrecy", "dont_tell_parents"),
    ("this is our little secret", "grooming.secrecy", "our_secret"),
    ("never tell anyone ok", "grooming.secrecy", "dont_tell_anyone"),
    ("delete our chat after", "grooming.secrecy", "delete_chat"),
    ("do your parents check your phone", "grooming.secrecy", "watched"),
    ("you're so mature for your age", "grooming.flattery", "mature"),
    ("your parents don't understand you", "grooming.isolation", "nobody_understands"),
    ("you dont need your friends", "grooming.isolation", "dont_need_others"),
    ("r u home alone", "grooming.isolation", "home_alone"),
    ("add me on snap", "grooming.platform_move", "add_me"),
    ("lets talk on telegram", "grooming.platform_move", "move_to"),
    ("do you have whatsapp", "grooming.platform_move", "have_platform"),
    ("whats your number", "grooming.platform_move", "number"),
    ("I'll buy you robux", "grooming.gifts", "buy_you"),
    ("want some money?", "grooming.gifts", "want_money"),
    ("i can pay you", "grooming.gifts", "pay_you"),
    ("send a pic", "grooming.picture_request", "send_pic"),
    ("show me what you look like", "grooming.picture_request", "look_like"),
    ("can you turn on your camera", "grooming.picture_request", "camera"),
    ("we should meet up", "grooming.meeting", "meet_up"),
    ("where do you live", "grooming.meeting", "where_live"),
    ("I'll show everyone", "sextortion.threat", "show_everyone"),
    ("or this goes to all your contacts", "sextortion.threat", "will_see"),
    ("your school gets the screenshots", "sextortion.threat", "will_see"),
    ("ill post your pics", "sextortion.threat", "post_pics"),
    ("your friends will see your pics", "sextortion.threat", "will_see"),
    ("i have screenshots of our chat", "sextortion.threat", "expose"),
    ("send me more pics or I'll post the ones I have", "sextortion.threat", "post_pics"),
    ("venmo me or everyone at your school gets it", "sextortion.threat", "or_else"),
    ("send 100 in gift cards or I tell everyone", "sextortion.threat", "or_else"),
    ("if you dont pay your friends will see it", "sextortion.threat", "or_else"),
    ("everyone at your school sees it tonight", "sextortion.threat", "will_see"),
    ("I screenshotted everything", "sextortion.threat", "kept_chat"),
    ("I saved our chat", "sextortion.threat", "kept_chat"),
    ("send me $200", "sextortion.demand", "pay"),
    ("buy me gift cards", "sextortion.demand", "gift_cards"),
    ("send more pics", "sextortion.demand", "more_pics"),
    ("you have 24 hours", "sextortion.demand", "deadline"),
    ("venmo me", "sextortion.demand", "pay"),
    ("send 100 in bitcoin", "sextortion.demand", "pay"),
    ("give me your password", "sextortion.demand", "account"),
    ("send me your snap login", "sextortion.demand", "account"),
    ("send me private pics", "solicitation.explicit", "private_pics"),
    ("send something spicy", "solicitation.explicit", "something_spicy"),
    ("something you wouldnt show your parents", "solicitation.explicit", "wouldnt_show"),
    ("what are you wearing", "solicitation.explicit", "what_wearing"),
    ("pics just for me", "solicitation.explicit", "just_for_me"),
    ("you're worthless", "harassment.insult", "degrading"),
    ("nobody likes you", "harassment.insult", "nobody_likes"),
    ("shut up loser", "harassment.insult", "shut_up"),
    ("i'll hurt you", "harassment.violence", "hurt_you"),
    ("i know where you live", "harassment.violence", "where_you_live"),
    ("kys", "harassment.self_harm", "kys"),
]

# Messages that must match nothing: the hard negatives of chat.
NOTHING = [
    "i'll kill you in the next round",
    "im gonna show everyone my new skin",
    "never send private pics to strangers",
    "i'll pay you back tomorrow",
    "i took screenshots of the bug",
    "my parents dont understand my music",
    "finally home alone tonight",
    "anyone else get spammed with free robux sites",
    "i paid $200 for this keyboard",
    "hello? is anyone there",
    "everyone knows it",
    "i recorded a video of my cat",
    "you're so good at this",
    "how old is your dog",
    "i was in high school once",
    # Near-misses of the sextortion families: a plan, a bill, news, and an idiom.
    "I'll post the pics from the trip",
    "send me the venmo for the pizza",
    "venmo me back for the tickets",
    "I'll tell everyone the surprise party is off",
    "hurry up or i tell everyone we're late",
    "don't worry, everyone gets it",
    "your parents just dont get it",
    "i saved a seat for you",
    "",
]


def scan(text: str) -> set[tuple[str, str]]:
    return {(i.name, p.id) for i, p in DEFAULT_LEXICON.scan(fold(text))}


class TestIndicators:
    @pytest.mark.parametrize(("text", "indicator", "phrase"), EXAMPLES)
    def test_each_phrase_family_matches_its_example(
        self, text: str, indicator: str, phrase: str
    ) -> None:
        """Every phrase family finds the message it was written for."""
        assert (indicator, phrase) in scan(text)

    def test_every_phrase_family_has_an_example(self) -> None:
        """No phrase family of the default lexicon goes untested."""
        every = {(c.name, p.id) for c in DEFAULT_LEXICON.indicators for p in c.phrases.values()}
        assert every == {(i, p) for _, i, p in EXAMPLES}

    @pytest.mark.parametrize("text", NOTHING)
    def test_hard_negatives_match_nothing(self, text: str) -> None:
        """Game talk, negations, one's own parents and prices are not indicators."""
        assert scan(text) == set()

    def test_obfuscated_spelling_still_matches(self) -> None:
        """Leetspeak, stretched letters and fullwidth letters do not hide a phrase."""
        assert ("grooming.age_probe", "how_old") in scan("h0w 0ooold r u")
        assert ("grooming.picture_request", "send_pic") in scan("\uff53\uff45\uff4e\uff44 a pic")
        assert ("grooming.secrecy", "dont_tell_parents") in scan("DONT TELLLL UR PARENTS")

    def test_phrases_have_weights_and_words(self) -> None:
        """Every phrase carries a positive weight and an explanation for reviewers."""
        for compiled in DEFAULT_LEXICON.indicators:
            for phrase in compiled.phrases.values():
                assert phrase.weight > 0 and phrase.why, phrase.id


class TestLexicon:
    def test_an_empty_lexicon_is_invalid(self) -> None:
        """A rule set with no indicators is a mistake, not a set that finds nothing."""
        with pytest.raises(ConfigError, match="at least one"):
            Lexicon([])

    def test_an_indicator_needs_phrases(self) -> None:
        """An indicator with no phrases is rejected by name."""
        with pytest.raises(ConfigError, match=r"grooming\.empty"):
            Lexicon([Indicator("grooming.empty", "grooming", cumulative=False, phrases=())])

    def test_names_start_with_the_category(self) -> None:
        """An indicator's name begins with its category, which the scorer groups by."""
        odd = Indicator("misc.x", "harassment", True, (Phrase("p", "boo", 1, "boo"),))
        with pytest.raises(ConfigError, match=r"harassment\.\*"):
            Lexicon([odd])

    def test_names_are_unique(self) -> None:
        """Two indicators with one name are rejected."""
        one = Indicator("harassment.x", "harassment", True, (Phrase("p", "boo", 1, "boo"),))
        with pytest.raises(ConfigError, match="unique"):
            Lexicon([one, one])

    def test_a_broken_pattern_is_a_config_error(self) -> None:
        """A phrase that does not compile names its indicator."""
        bad = Indicator("harassment.bad", "harassment", True, (Phrase("p", "(oops", 1, "x"),))
        with pytest.raises(ConfigError, match=r"harassment\.bad"):
            Lexicon([bad])


class TestGrooming:
    def test_a_single_age_question_between_adults_is_low(self) -> None:
        """One "how old are you" answered by an adult is low, with no flag."""
        result = assess("a: how old are you", "b: im 25", "a: cool im 31")
        assert (result.level, result.flags, result.score) == ("low", (), 8.0)

    def test_repeating_one_family_does_not_add_up(self) -> None:
        """Asking an age five times is worth no more than asking once."""
        result = assess(*["a: how old are you"] * 5)
        assert result.score == 8.0 and result.flags == ()

    def test_two_weak_families_are_not_grooming(self) -> None:
        """Age and "add me on snap" from an adult stay below the grooming bar."""
        result = assess("a: asl", "b: 24 m", "a: add me on snap?")
        assert result.flags == () and result.level == "low"

    def test_several_families_from_one_sender_are_grooming(self) -> None:
        """Age, a platform move and secrecy from one sender: grooming, high."""
        result = assess(
            "a: how old are you", "b: why", "a: do you have snap", "a: dont tell your parents"
        )
        assert result.flags == ("grooming",) and result.level == "high"

    def test_families_from_different_senders_do_not_combine(self) -> None:
        """Grooming is one sender's pattern: two people's weak signals are not added up."""
        result = assess("a: how old are you", "b: do you have snap", "a: keep it between us")
        assert "grooming" not in result.flags

    def test_a_minor_plus_any_grooming_family_by_the_other_is_high(self) -> None:
        """A disclosed minor and one platform move by the other sender: grooming, high."""
        result = assess("b: im 13", "a: do you have snap?", findings={0: ["age"]})
        assert result.flags == ("minor", "grooming") and result.level == "high"

    def test_asking_a_minor_their_age_is_not_grooming(self) -> None:
        """Age probing alone next to a disclosed minor is medium, flagged minor only."""
        result = assess("a: how old r u", "b: 14", findings={1: ["age"]})
        assert result.flags == ("minor",) and result.level == "medium"

    def test_a_minors_own_platform_move_is_not_grooming(self) -> None:
        """The minor sharing their own snap is not grooming by anyone."""
        result = assess("b: im 14, add me on snap", "a: ok", findings={0: ["age", "handle"]})
        assert result.flags == ("minor",)

    def test_two_self_declared_minors_are_not_grooming_each_other(self) -> None:
        """Two people who both say they are minors and ask for each other's socials: the
        minor flag stays, medium, no grooming (the amplifier is for someone who has not said
        they are a minor)."""
        result = assess(
            "a: im 16", "b: im 15", "a: cool, do you have insta", findings={0: ["age"], 1: ["age"]}
        )
        assert (result.flags, result.level, result.score) == (("minor",), "medium", 50.0)

    def test_a_self_declared_minor_can_still_groom_on_their_own_points(self) -> None:
        """Saying "im 15" removes the amplifier only: secrecy and isolation from that sender
        still reach the grooming bar (an adult may lie about their age)."""
        result = assess(
            "b: im 13",
            "a: im 15 too",
            "a: dont tell your parents about me",
            "a: are you home alone",
            findings={0: ["age"], 1: ["age"]},
        )
        assert result.flags == ("minor", "grooming") and result.level == "high"

    def test_the_amplifier_stays_for_the_sender_who_did_not_disclose(self) -> None:
        """When only the other participant said they are a minor, one platform move from
        this sender is still grooming."""
        result = assess(
            "a: im 16", "b: im 15", "c: do you have insta", findings={0: ["age"], 1: ["age"]}
        )
        assert "grooming" in result.flags

    def test_contact_findings_count_as_moving_platforms(self) -> None:
        """A shared handle, phone or email from the detector is a platform move."""
        result = assess("b: im 13", "a: text me", findings={0: ["age"], 1: ["phone"]})
        assert "grooming" in result.flags
        assert any(r.phrase == "contact_shared" and r.index == 1 for r in result.reasons)


class TestSextortion:
    def test_threat_and_demand_from_one_sender_is_sextortion(self) -> None:
        """A threat to share plus a demand from the same sender: sextortion, always high."""
        result = assess("a: i'll show everyone", "b: what", "a: unless you pay me")
        assert result.flags == ("sextortion",) and result.level == "high"
        assert result.score == 100.0

    def test_the_demand_may_come_first(self) -> None:
        """Order does not matter: a demand then a threat is sextortion too."""
        result = assess("a: send me more pics", "b: no", "a: or i'll post your pics")
        assert "sextortion" in result.flags

    def test_a_threat_alone_is_harassment(self) -> None:
        """A threat to share without a demand is harassment, medium, not sextortion."""
        result = assess("a: i'll show everyone what you said", "b: go ahead")
        assert (result.flags, result.level) == (("harassment",), "medium")

    def test_a_demand_alone_is_nothing(self) -> None:
        """A demand for money without a threat raises no flag."""
        result = assess("a: pay me for the tickets", "b: sure")
        assert (result.flags, result.level) == ((), "low")

    @pytest.mark.parametrize(
        "lines",
        [
            ("a: send me more pics or I'll post the ones I have", "b: no"),
            ("a: I saved our chat", "b: so?", "a: venmo me or everyone at your school gets it"),
            ("a: give me your password or I leak your photos", "b: what"),
            ("a: I screenshotted everything", "a: send 100 in gift cards or I tell everyone"),
            ("a: i kept everything", "b: why", "a: send 50 in bitcoin by tonight"),
        ],
    )
    def test_plain_wordings_of_threat_and_demand(self, lines: tuple[str, ...]) -> None:
        """Threats to post, leak or tell, and kept screenshots as leverage, with a demand for
        money, gift cards, crypto, more pictures or a password: sextortion, high."""
        result = assess(*lines)
        assert "sextortion" in result.flags and result.level == "high"

    def test_kept_chat_alone_is_no_flag(self) -> None:
        """Saying the chat was saved, without a demand, is leverage only: no flag."""
        result = assess("a: i saved our chat lol it was so funny", "b: haha same")
        assert (result.flags, result.level) == ((), "low")

    def test_threat_and_demand_from_different_senders_are_not_sextortion(self) -> None:
        """The threat and the demand must come from the same person."""
        result = assess("a: i'll show everyone", "b: send me $200")
        assert "sextortion" not in result.flags

    def test_a_threat_that_has_faded_does_not_combine(self) -> None:
        """A threat over 90 messages before the demand no longer combines with it."""
        result = assess("a: i'll show everyone", *filler(95), "a: send me $200")
        assert "sextortion" not in result.flags


class TestSolicitation:
    def test_one_request_is_medium(self) -> None:
        """One request for private pictures: solicitation, medium."""
        result = assess("a: send me something spicy", "b: no")
        assert (result.flags, result.level) == (("solicitation",), "medium")

    def test_persisting_after_refusal_is_high(self) -> None:
        """A second request is cumulative: high."""
        result = assess("a: what are you wearing", "b: no", "a: send me private pics")
        assert result.level == "high"

    def test_aimed_at_a_minor_is_high(self) -> None:
        """Solicitation after the other disclosed being a minor is high."""
        result = assess("b: im 14", "a: send me a private pic", findings={0: ["age"]})
        assert result.flags == ("minor", "solicitation") and result.level == "high"


class TestHarassment:
    def test_one_insult_is_not_flagged(self) -> None:
        """A single insult stays below the harassment bar."""
        assert assess("a: you're worthless").flags == ()

    def test_two_insults_are_harassment(self) -> None:
        """Two insults from one sender: harassment, medium."""
        result = assess("a: you're worthless", "a: nobody likes you")
        assert (result.flags, result.level) == (("harassment",), "medium")

    def test_banter_counts_half(self) -> None:
        """Two laughing insults between friends stay below the bar."""
        assert assess("a: you're such an idiot lol", "a: you're so dumb haha").flags == ()

    @pytest.mark.parametrize("text", ["kys", "i'll hurt you", "i know where you live"])
    def test_threats_and_self_harm_are_high(self, text: str) -> None:
        """Urging self-harm or threatening violence once is harassment, high."""
        result = assess(f"a: {text}")
        assert (result.flags, result.level) == (("harassment",), "high")


class TestMinor:
    def test_an_age_finding_flags_minor_at_medium(self) -> None:
        """A minor disclosure is always flagged, at least medium, and names them at risk."""
        result = assess("a: hi", "b: im 13", findings={1: ["age"]})
        assert (result.flags, result.level, result.at_risk) == (("minor",), "medium", ("b",))

    def test_adults_stating_ages_raise_no_flag(self) -> None:
        """Ages the detector does not report as minors mean nothing to the scorer."""
        assert assess("a: asl", "b: 25 f uk", "a: 27 m").flags == ()

    def test_a_bare_age_answering_an_age_question_is_a_disclosure(self) -> None:
        """ "14" in reply to "how old are you" is a minor disclosure the detector cannot see."""
        result = assess("a: how old r u", "b: 14 wbu")
        assert result.flags == ("minor",)
        assert [
            (r.index, r.sender, r.phrase) for r in result.reasons if r.indicator == "minor.age"
        ] == [(1, "b", "age_answer")]

    @pytest.mark.parametrize(
        "lines",
        [
            ("a: how old r u", "b: 25 f uk"),  # an adult's answer
            ("a: how old r u", "a: 14?"),  # the asker's own words
            ("a: how old r u", "b: lol", "b: why", "b: ok", "b: 14"),  # too late to be an answer
            ("a: hi", "b: 14"),  # no question was asked
            ("a: how old r u", "b: 140"),  # not an age under 18
        ],
    )
    def test_other_numbers_are_not_age_answers(self, lines: tuple[str, ...]) -> None:
        """Only a reply under 18, soon after the other person's age question, counts."""
        assert "minor" not in assess(*lines).flags

    def test_a_minor_stays_a_minor(self) -> None:
        """A disclosure never decays, however long the chat goes on."""
        risk = chat("b: im 13", *filler(500), findings={0: ["age"]})
        assert risk.assessment.flags == ("minor",)


class TestDecay:
    def test_within_the_grace_period_nothing_fades(self) -> None:
        """For 60 messages after its last hit an indicator keeps its full value."""
        assert assess("a: you're worthless", *filler(60)).score == 20.0

    def test_then_it_halves_every_half_life(self) -> None:
        """30 messages after the grace period an indicator is worth half."""
        assert assess("a: you're worthless", *filler(90)).score == pytest.approx(10.0)

    def test_long_faded_indicators_are_forgotten(self) -> None:
        """Far enough on, the score is back to zero and the reasons are gone."""
        result = assess("a: you're worthless", *filler(400))
        assert (result.score, result.reasons) == (0.0, ())

    def test_families_far_apart_do_not_make_a_pattern(self) -> None:
        """Grooming families 200 messages apart do not add up to grooming."""
        result = assess(
            "a: how old are you", "a: dont tell your parents", *filler(200), "a: add me on snap"
        )
        assert "grooming" not in result.flags

    def test_a_faded_flag_clears(self) -> None:
        """Harassment long past no longer flags the conversation."""
        result = assess("a: kys", *filler(200))
        assert result.flags == ()


class TestReasons:
    def test_reasons_name_the_messages_senders_and_indicators(self) -> None:
        """Each reason points at the message index, its sender and the phrase family."""
        result = assess(
            "a: hi",
            "a: how old are you",
            "b: 13",
            "a: dont tell your parents",
            findings={2: ["age"]},
        )
        got = [(r.index, r.sender, r.indicator, r.phrase) for r in result.reasons]
        assert got == [
            (1, "a", "grooming.age_probe", "how_old"),
            (2, "b", "minor.age", "age"),
            (3, "a", "grooming.secrecy", "dont_tell_parents"),
        ]

    def test_sextortion_reasons_name_both_halves(self) -> None:
        """A sextortion flag is explained by the threat and the demand."""
        result = assess("a: i'll show everyone", "b: no", "a: send me $200")
        assert [(r.index, r.indicator) for r in result.reasons] == [
            (0, "sextortion.threat"),
            (2, "sextortion.demand"),
        ]

    def test_reasons_never_repeat_the_text(self) -> None:
        """No reason carries the words of the message."""
        result = assess("a: send me private pics zebracorn")
        assert "zebracorn" not in json.dumps(result.as_json())

    def test_as_json_shape(self) -> None:
        """The JSON form has exactly score, level, flags and reasons as small dicts."""
        document = assess("a: kys").as_json()
        assert document == {
            "score": 70.0,
            "level": "high",
            "flags": ["harassment"],
            "reasons": [
                {
                    "message": 0,
                    "sender": "a",
                    "indicator": "harassment.self_harm",
                    "phrase": "kys",
                    "why": "urges them to harm themselves",
                }
            ],
        }

    def test_flags_follow_the_documented_order(self) -> None:
        """Flags are reported in the order of FLAGS whatever order they arose in."""
        result = assess("a: kys", "b: im 13", "a: add me on snap", findings={1: ["age"]})
        assert result.flags == ("minor", "grooming", "harassment")
        assert list(result.flags) == [f for f in FLAGS if f in result.flags]


class TestPolicy:
    @pytest.mark.parametrize(("medium", "high"), [(0, 70), (70, 70), (80, 70), (30, 101)])
    def test_thresholds_must_be_in_order(self, medium: float, high: float) -> None:
        """Thresholds out of order are a configuration error."""
        with pytest.raises(ConfigError, match="thresholds"):
            RiskPolicy(medium=medium, high=high)

    def test_unknown_flags_are_rejected(self) -> None:
        """A flag name that does not exist names the setting it was found in."""
        with pytest.raises(ConfigError, match="end_chat_on"):
            RiskPolicy(end_chat_on=frozenset({"spam"}))

    def test_decay_must_be_positive(self) -> None:
        """A zero half-life is rejected."""
        with pytest.raises(ConfigError, match="decay"):
            RiskPolicy(half_life_messages=0)

    def test_thresholds_set_the_level(self) -> None:
        """A lower high threshold turns the same score high."""
        strict = RiskPolicy(medium=5, high=8)
        result = chat("a: how old are you", policy=strict).assessment
        assert (result.score, result.level) == (8.0, "high")

    def test_flag_floors_follow_the_thresholds(self) -> None:
        """Sextortion is high under any thresholds: its score is raised to the bar."""
        lenient = RiskPolicy(medium=50, high=99)
        result = chat("a: i'll show everyone", "a: pay me", policy=lenient).assessment
        assert result.level == "high"


class TestDecision:
    def test_low_risk_does_nothing(self) -> None:
        """A quiet conversation asks for nothing."""
        assert RiskPolicy().decide(assess("a: hi", "b: hey")) == Decision()

    def test_sextortion_ends_the_chat_and_tells_the_target(self) -> None:
        """By default sextortion is reviewed, preserved, ended, and the target is told."""
        decision = RiskPolicy().decide(assess("b: hi", "a: i'll show everyone", "a: pay me"))
        assert decision == Decision(True, True, True, SAFETY_MESSAGE, ("b",))

    def test_a_minor_at_medium_is_reviewed_and_preserved(self) -> None:
        """A disclosed minor is reviewed and preserved, but the chat goes on."""
        decision = RiskPolicy().decide(assess("a: im 13", findings={0: ["age"]}))
        assert decision == Decision(review=True, preserve=True)

    def test_a_minor_in_a_high_risk_chat_ends_it(self) -> None:
        """A minor plus grooming (high) ends the chat and tells the minor."""
        result = assess("b: im 13", "a: do you have snap", findings={0: ["age"]})
        decision = RiskPolicy().decide(result)
        assert decision.end_chat and decision.notify_senders == ("b",)

    def test_harassment_is_reviewed_only(self) -> None:
        """Harassment goes to review; it is not preserved and the chat is not ended."""
        decision = RiskPolicy().decide(assess("a: you're worthless", "a: nobody likes you"))
        assert decision == Decision(review=True)

    def test_grooming_notifies_without_ending(self) -> None:
        """Grooming without a disclosed minor keeps the chat but tells the target."""
        result = assess("b: hi", "a: how old are you", "a: add me on snap", "a: our secret ok")
        assert result.flags == ()  # 8 + 10 + 20: below the bar of 40
        result = assess("b: hi", "a: how old are you", "a: add me on snap", "a: dont tell ur mom")
        decision = RiskPolicy().decide(result)
        assert (decision.end_chat, decision.notify, decision.notify_senders) == (
            False,
            SAFETY_MESSAGE,
            ("b",),
        )

    def test_a_policy_can_end_on_other_flags(self) -> None:
        """``end_chat_on`` names the flags that end a chat."""
        policy = RiskPolicy(end_chat_on=frozenset({"harassment"}))
        assert policy.decide(assess("a: kys")).end_chat

    def test_a_policy_can_switch_everything_off(self) -> None:
        """With every trigger emptied, even sextortion only changes the score."""
        policy = RiskPolicy(
            review_on=frozenset(),
            review_at_high=False,
            preserve_on=frozenset(),
            preserve_at_high=False,
            end_chat_on=frozenset(),
            end_chat_on_minor_at_high=False,
            notify_on=frozenset(),
        )
        assert policy.decide(assess("a: i'll show everyone", "a: pay me")) == Decision()

    def test_the_safety_message_is_configurable(self) -> None:
        """The operator's own wording is what the person at risk sees."""
        policy = RiskPolicy(safety_message="Stay safe.")
        assert policy.decide(assess("a: i'll show everyone", "a: pay me")).notify == "Stay safe."

    def test_the_scorer_decides_with_its_policy(self) -> None:
        """``ConversationRisk.decide`` applies the session's own policy."""
        risk = chat("a: i'll show everyone", "a: pay me")
        assert risk.decide() == risk.policy.decide(risk.assessment)


class TestHostileInput:
    @pytest.mark.parametrize(
        "text",
        [
            "",
            " ",
            "\x00\x01\x02",
            "\ud800 lone surrogate",
            "\u202eevil\u202c",
            "a\u0301\u0302\u0303\u0304" * 200,
            "\U0001f47b\U0001f480" * 500,
            "\ufdfd\ufffd\uffff",
            "$" * 5000,
            "1" * 5000 + "a",
        ],
    )
    def test_odd_text_never_raises(self, text: str) -> None:
        """Control characters, lone surrogates, bidi overrides and emoji floods are scored."""
        result = chat(f"a: {text}").assessment
        assert result.level == "low"

    def test_a_100_kb_message_is_read_up_to_the_limit(self) -> None:
        """A 100 KB message is scored; what lies past ``max_scan_chars`` is not read."""
        risk = ConversationRisk()
        result = risk.observe("a", "x " * 50_000 + "kys")
        assert result.flags == ()

    def test_adversarial_text_scans_in_linear_time(self) -> None:
        """100 KB built to make a backtracking pattern explode is scanned to the end."""
        policy = RiskPolicy(max_scan_chars=200_000)
        hostile = "ill show " + "x " * 50_000 + "i know where you live"
        risk = ConversationRisk(policy)
        assert risk.observe("a", hostile).flags == ("harassment",)

    def test_long_chats_and_many_senders(self) -> None:
        """Thousands of risky messages, from two senders and then from fifty, are scored.

        A session has two participants; reassessing costs time in proportion to the senders
        with live indicators, so fifty is already far past anything the chat produces.
        """
        risk = ConversationRisk()
        for i in range(5000):
            risk.observe("ab"[i % 2], "how old are you" if i % 7 else "hi")
        for i in range(1000):
            risk.observe(f"s{i % 50}", "you're worthless lol")
        assert risk.messages == 6000 and risk.assessment.flags == ("harassment",)
        assert len(risk.assessment.reasons) <= 52 * 4  # a few reasons per sender and indicator


class TestScoreConversation:
    def test_scores_pairs_with_the_given_detector(self) -> None:
        """``score_conversation`` feeds each message's findings to the scorer."""

        def detector(text: str) -> list[Found]:
            return [Found("age")] if "13" in text else []

        result = score_conversation([("b", "im 13"), ("a", "add me on snap")], detector=detector)
        assert result.flags == ("minor", "grooming")

    def test_uses_the_pii_detector_by_default(self) -> None:
        """Without a detector given, the package's own finds the disclosed age."""
        result = score_conversation([("b", "hi im 13"), ("a", "cool. do you have snap?")])
        assert result.flags == ("minor", "grooming")

    def test_applies_the_policy(self) -> None:
        """The policy given is the one that sets the level."""
        result = score_conversation(
            [("a", "how old are you")],
            detector=lambda _text: (),
            policy=RiskPolicy(medium=5, high=8),
        )
        assert result.level == "high"
