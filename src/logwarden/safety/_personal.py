"""Rules for where someone lives and how old they are: street addresses, and minors' ages.

Internal and unstable. ``age`` findings are a participant saying they are under 18: an age
("im 13", "14 yo", "15/f"), a school grade ("8th grade", "year 9", "freshman in high school")
or their school ("I go to Lincoln Middle School"). Other people's ages, the past, and
numbers that count something else ("I'm 5 minutes away") are not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from logwarden.safety._base import Finding, Message, context_before
from logwarden.safety._patterns import alternation, wordset
from logwarden.safety._starts import gated

__all__ = ["AddressRule", "AgeRule"]

_STREET_WORDS = wordset(
    """
    street st avenue ave av road rd lane ln drive dr boulevard blvd court ct place pl way
    terrace ter circle cir parkway pkwy highway hwy close crescent cres grove gardens gdns
    square sq trail trl row mews
    """
)
_STREET_TYPES = alternation(sorted(_STREET_WORDS))
# Words that sit between a number and a street type without being a street name:
# "300 miles down the road", "a 2 way street", "10 min drive", "5 star place".
_NOT_STREET_NAME = wordset(
    """
    the a an my your his her our their this that on in at of to from down up across along by
    for with and or is was more less other way ways one minute minutes min mins hour hours hr
    hrs day days week weeks month months year years mile miles km feet ft foot block blocks
    step steps second seconds sec secs star stars lane lanes time times point points people
    person car cars lap laps hole holes yard yards meter meters m lvl level levels player
    players man men guy guys kid kids lol just only about around like than
    """
)


class AddressRule:
    """Street addresses: a house number, one to three name words and a street type."""

    kind = "address"
    cue_words: frozenset[str] = frozenset()  # a house number has digits

    _PATTERN = re.compile(
        r"(?<![\w.,$#/\-:])(?P<number>\d{1,6}[a-z]?(?:-\d{1,4})?)[ ]{1,2}"
        # Name words may hide letters as digits ("Map1e"), but start with a letter.
        r"(?P<name>(?:(?:[a-z][a-z0-9'\-]{0,20}|\d{1,3}(?:st|nd|rd|th))\.?[ ]{1,2}){1,3})"
        rf"{_STREET_TYPES}\.?(?![\w])"
        r"(?P<unit>,?[ ]{0,2}(?:apt|apartment|unit|suite|ste|flat|#)\.?[ ]{0,2}#?[a-z0-9]{1,5}"
        r"(?![\w]))?"
    )
    _CUE = re.compile(
        r"\b(?:live|living|lives|address|addy|house|home|apartment|apt|flat|come over|pick me up"
        r"|my place|at|to|on|near|deliver|send it)\b"
    )

    _COUNTING = re.compile(
        r"\b(?:top|the|a|an|over|under|about|around|like|only|just|all|every|first|last|of"
        r"|than|those|these|with|have|has|had|got|get|need|needs|play|played)[ ]{1,2}\Z"
    )

    def wants(self, message: Message) -> bool:
        return message.digit_count > 0 and not message.words.isdisjoint(_STREET_WORDS)

    def find(self, message: Message) -> Iterator[Finding]:
        view = message.view
        text = view.text
        pos = 0
        while (m := self._PATTERN.search(text, pos)) is not None:
            pos = m.end()
            words = m["name"].split()
            if any(w.rstrip(".") in _NOT_STREET_NAME for w in words):
                continue
            if self._COUNTING.search(text, max(0, m.start() - 10), m.start()):
                continue  # "top 10 high street brands", "about 2 main roads"
            cue = context_before(text, m.start(), self._CUE, width=40)
            confidence = 0.7 + 0.15 * cue + 0.1 * (m["unit"] is not None)
            reason = "a street address" + (" with a flat or unit number" if m["unit"] else "")
            yield message.finding(view, self.kind, m.start(), m.end(), confidence, reason)


_TEEN_WORDS = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
               "seventeen"]  # fmt: skip
_CHILD_WORDS = ["six", "seven", "eight", "nine"]
_WORD_AGE = {w: 10 + i for i, w in enumerate(_TEEN_WORDS)} | {
    w: 6 + i for i, w in enumerate(_CHILD_WORDS)
}
_LEET_BACK = str.maketrans({"4": "a", "3": "e", "1": "i", "0": "o", "5": "s", "7": "t"})
_AGE_NUMBER = rf"(?P<n>\d{{1,2}}|{alternation(_TEEN_WORDS + _CHILD_WORDS, leetspeak=True)})"
# What makes a number an age in years: "13 yo", "13 y/o", "13 years old", "13yrs".
_YEARS_OLD = r"(?:[ ]?(?:yo|y/o|y\.o\.?|yrs? old|years? old|yr old)(?![\w]))"
# A sex marker after an age, as in "asl" answers: "14 m", "15/f", "13 male".
_SEX = r"(?:[ ]?/?[ ]?(?:m|f|male|female|boy|girl|guy)(?![\w]))"
_I_AM = r"(?:i'?m|i am|ima|iam)"
_HEDGE = (
    r"(?:[ ]{1,2}(?:only|just|almost|nearly|like|barely|literally|actually|still|now|a)"
    r"(?![\w])){0,3}"
)

# What may follow a bare number for it to be an age: "im 13", "im 13.", "im 13 lol", "im 13 and
# you", "im 14 turning 15 in june". A whitelist, not a list of units: what follows "im 13" in
# other senses ("blocks away", "episodes in", "in line", "tabs deep", "down") has no end, and
# what follows an age does: the end of the message or a clause, or a word that starts a new one.
_AFTER_AGE_WORDS = wordset(
    """
    and but so or though tho too also as if not no which from here now still already rn
    today tomorrow yesterday lol lmao lmfao haha hahaha hehe xd jk tbh btw fr ngl fyi irl omg
    ok okay k yes yeah yea yep nah idk i im i'm ive i've u you ya ur wbu hbu wby hby what how
    turning turn going almost nearly soon actually honestly bro dude my please pls plz stop
    sorry thanks thx ty why who where when can cant can't do dont don't will wont won't is are
    """
)
_MONTHS = (
    "jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    "|sep(?:t|tember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_WEEKDAYS = "(?:mon|tues?|wed(?:nes)?|thu(?:rs)?|fri|sat(?:ur)?|sun)(?:day)?"
_SPAN_OF_TIME = r"(?:day|days|week|weeks|month|months|year|yr|summer|winter|spring|fall)"
# The end of the message or of a clause: anything but a letter, a digit or a space, unless it
# glues the number to more of a number or to a unit ("13-0", "13:00", "13.5", "5'11", "13+").
_CLAUSE_END = r"(?:$|(?![\-:/.,'\"][ ]?\d|['\"+%$°])[^\w ])"
_AGE_FOLLOWS = re.compile(
    rf"[ ]*(?:{_CLAUSE_END}"
    # "age 13 and up" is a rating, not a participant.
    rf"|(?!and[ ]{{1,2}}(?:up|over|older|above|under|below|younger)(?![\w]))"
    rf"{alternation(sorted(_AFTER_AGE_WORDS))}(?![\w'])"
    # "turning 15 in june", "in 2 weeks", "on friday", "next month"
    rf"|in[ ]{{1,2}}(?:{_MONTHS}|(?:a|an|a few|like|about|\d{{1,2}}|two|three)[ ]{{1,2}}"
    rf"{_SPAN_OF_TIME})(?![\w])"
    rf"|on[ ]{{1,2}}{_WEEKDAYS}(?![\w])"
    rf"|(?:this|next|last)[ ]{{1,2}}{_SPAN_OF_TIME}(?![\w]))"
)
# What may follow a school grade for it to be the speaker's: as after an age, and the words
# that go with a grade ("year 9 is so boring", "year 8 here", "a year 9 student", "in 9th grade
# at maple high"). Not "a year 9 teacher", "year 9 of my marriage", "high school musical".
_AFTER_GRADE_WORDS = _AFTER_AGE_WORDS | wordset(
    "at in is sucks student students pupil kid kids girl boy this next"
)
_GRADE_FOLLOWS = re.compile(
    rf"[ ]*(?:{_CLAUSE_END}|{alternation(sorted(_AFTER_GRADE_WORDS))}(?![\w']))"
)
_OTHER_PERSON = re.compile(
    r"\b(?:my|his|her|their|your|our|ur)[ ]{1,2}(?:\w+[ ]{1,2})?(?:brother|bro|sister|sis|son"
    r"|daughter|kid|kids|child|children|cousin|nephew|niece|friend|friends|bf|gf|boyfriend"
    r"|girlfriend|mom|mum|dad|student|students|class|dog|cat|sibling|siblings)\b"
    r"|\b(?:he|she|they|he's|she's|they're|hes|shes|theyre|was|were|when|since|back|teach"
    r"|teacher|teaching|taught|ago|used to|until|till)\b"
)
# A determiner right before the number: "my 12 yo brother", "a 13 year old kid".
_DETERMINED = re.compile(r"\b(?:my|his|her|their|your|ur|our|a|an|the|this|that)[ ]{1,2}\Z")
# The grade is at a university, not a school: "in year 2 of uni".
_NOT_SCHOOL_YEAR = re.compile(
    r"[ ]{0,2}(?:of|at|in)?[ ]{0,2}(?:my[ ]{1,2})?(?:uni|university"
    r"|college|phd|degree|course|apprenticeship|med school|law school)"
)
_GRADE_ORDINALS = alternation(
    ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
     "tenth", "eleventh", "twelfth"]
)  # fmt: skip
_NUMBERED_GRADE = (
    rf"(?:(?:1[0-2]|[1-9])(?:st|nd|rd|th)|{_GRADE_ORDINALS})[ ]?grade(?:r)?(?![\w])"
    r"|grade[ ]?(?:1[0-2]|[1-9])(?![\w])"
    r"|(?:year|yr)[ ]?(?:1[0-3]|[1-9])(?![\w])"
    r"|(?:freshman|sophomore|junior|senior)[ ]{1,2}(?:in|at)[ ]{1,2}(?:high[ ]?school|hs)"
)
_SCHOOL_LEVEL = r"(?:middle|high|junior high|elementary|primary|secondary)[ ]?school(?:er)?(?![\w])"
_SCHOOL_TYPE = (
    r"(?:middle school|high school|junior high(?: school)?|elementary(?: school)?"
    r"|primary(?: school)?|secondary(?: school)?|academy|prep(?: school)?|intermediate"
    r"(?: school)?|grammar school|high|middle|ms|hs|jhs|elem)"
)
_NOT_SCHOOL_NAME = r"(?:the|a|an|my|our|your|his|her|their|this|that|some|any|so|really|very)"


# Words without which a sub-pattern of AgeRule cannot match (the gates of ``find``).
_NUMBER_WORDS = frozenset(_TEEN_WORDS + _CHILD_WORDS)
# "i'm" gives "m", "i am" gives "am", "i'll be" gives "ll": "i" alone is too common to gate on.
_STATED_WORDS = wordset("m im am iam ima ll age aged asl turning turned")
_UNIT_WORDS = wordset("yo y yr yrs year years old")
_CUE_WORDS = _STATED_WORDS | _UNIT_WORDS
_GRADE_WORDS = wordset(
    """
    grade grader graders year yr freshman sophomore junior senior school schooler schoolers
    academy elementary primary secondary prep intermediate high middle hs ms jhs elem
    """
)
_AGE_WORDS = _NUMBER_WORDS | _STATED_WORDS | _GRADE_WORDS


def _age_value(token: str) -> int:
    if token.isdigit():
        return int(token)
    return _WORD_AGE.get(token.translate(_LEET_BACK), _WORD_AGE.get(token, 99))


class AgeRule:
    """A participant saying they are a minor: their age, school grade or school."""

    kind = "age"
    # Ages and grades have a number in them (a digit or a digit word); schools do not.
    cue_words = _GRADE_WORDS

    # "im 13", "i'm only fourteen", "i just turned 15", "age: 15", "asl 14 m"
    _STATED = gated(
        rf"\b(?:{_I_AM}{_HEDGE}|(?:i[ ]{{1,2}})?(?:just[ ]{{1,2}})?turned|i'?ll be|im turning"
        rf"|i'?m turning|turning|age|aged|my age is|asl)[ ]{{0,2}}[:=\-]?[ ]{{0,2}}"
        rf"{_AGE_NUMBER}(?![\w])(?P<unit>{_YEARS_OLD}|{_SEX})?"
    )
    # "13 yo", "14 years old lol": an age with its unit, not about someone else.
    _UNIT_AGE = re.compile(rf"(?<![\w.,/$#@:\-]){_AGE_NUMBER}(?P<unit>{_YEARS_OLD})")
    # "13 m", "15/f" at the start of a message or after "asl".
    _ASL = re.compile(rf"(?:^[ ]*|\basl[ :,?]{{0,3}}){_AGE_NUMBER}(?P<unit>{_SEX})")
    _LEADING_NUMBER = re.compile(rf"[ ]*(?:\d|{alternation(_TEEN_WORDS, leetspeak=True)})")
    # "im in 8th grade", "i'm a freshman in high school", "in year 9", "8th grade sucks"
    _GRADE_STATED = re.compile(
        rf"(?:\b(?:{_I_AM}|i[ ]go[ ]to|i[ ]attend|still|currently){_HEDGE}"
        rf"(?:[ ]{{1,2}}(?:in|at|a|an|the|going into|starting|gonna be in)(?![\w])){{0,3}}"
        rf"[ ]{{1,2}}(?P<grade>{_NUMBERED_GRADE}|{_SCHOOL_LEVEL})"
        # At the very start: "8th grade sucks", "year 9 is boring", "high schooler here".
        rf"|^[ ]*(?P<numbered>{_NUMBERED_GRADE}|(?:middle|high)[ ]?schooler(?![\w])))"
    )
    # "i go to lincoln middle school", "im at westfield high", "my school is oak academy"
    _SCHOOL = gated(
        r"\b(?:i[ ]{1,2}(?:go|goes)[ ]{1,2}to|i[ ]{1,2}attend|(?:i'?m|i am)[ ]{1,2}(?:at|in)"
        r"|(?:i'?m|i am)[ ]{1,2}(?:an?[ ]{1,2})?(?:freshman|sophomore|junior|senior|student"
        r"|(?:1[0-2]|[1-9])(?:st|nd|rd|th)[ ]?grader)[ ]{1,2}(?:at|in)"
        # "im in 9th grade at Maple High": a grade, then where.
        r"|(?:1[0-2]|[1-9])(?:st|nd|rd|th)[ ]?grade[ ]{1,2}(?:at|in)"
        r"|my[ ]{1,2}school[ ]{1,2}is|my school's)[ ]{1,2}"
        rf"(?P<school>(?:(?!(?:{_SCHOOL_TYPE}|{_NOT_SCHOOL_NAME})\b)[a-z][a-z'.\-]{{1,20}}"
        rf"[ ]{{1,2}}){{1,4}}"
        rf"{_SCHOOL_TYPE})(?![\w])"
    )

    def wants(self, message: Message) -> bool:
        words = message.words
        if not words.isdisjoint(_GRADE_WORDS):
            return True
        # Every other form has a number in it (what ``find`` calls ``numbers``).
        if not (message.digit_count > 0 or message.mentions(_NUMBER_WORDS)):
            return False
        if not words.isdisjoint(_CUE_WORDS):
            return True
        # What is left is an "asl" answer ("14 m"), which ``find`` looks for where the text
        # says "asl" and otherwise only at the start of a message that starts with a number.
        # Most such messages are something else (a phone number, an address, a card): their
        # start is read here, as ``find`` would read it, and they are spared the rest of it.
        text = message.text
        if "asl" in text:
            return True
        return self._leads_with_number(message) and self._ASL.match(text) is not None

    def find(self, message: Message) -> Iterator[Finding]:
        view = message.view
        text = view.text
        words = message.words
        if message.digit_count > 0 or message.mentions(_NUMBER_WORDS):
            if not words.isdisjoint(_STATED_WORDS):
                pos = 0
                while (m := self._STATED.search(text, pos)) is not None:
                    pos = m.end()
                    if (finding := self._stated(message, m)) is not None:
                        yield finding
            if not words.isdisjoint(_UNIT_WORDS):
                yield from self._with_unit(message, self._UNIT_AGE.finditer(text))
            if "asl" in words or self._leads_with_number(message):
                yield from self._with_unit(message, self._asl_answers(text))
        if words.isdisjoint(_GRADE_WORDS):
            return
        pos = 0
        while (m := self._GRADE_STATED.search(text, pos)) is not None:
            pos = m.end()
            start = m.start("grade") if m["grade"] is not None else m.start("numbered")
            if self._about_someone_else(text, start) or not self._own_grade(text, m.end()):
                continue
            reason = "a participant stating their school grade"
            yield message.finding(view, self.kind, start, m.end(), 0.8, reason)
        pos = 0
        while (m := self._SCHOOL.search(text, pos)) is not None:
            pos = m.end()
            if not m.group().startswith(("i", "my")) and self._about_someone_else(text, m.start()):
                continue  # "my brother is in 9th grade at Maple High"
            reason = "a participant naming the school they go to"
            yield message.finding(view, self.kind, m.start("school"), m.end(), 0.85, reason)

    def _with_unit(self, message: Message, matches: Iterable[re.Match[str]]) -> Iterator[Finding]:
        """The ages of ``matches`` ("13 yo", "14 m"), where they are the speaker's own."""
        text = message.text
        for m in matches:
            start = m.start("n")
            if _age_value(m["n"]) >= 18 or self._about_someone_else(text, start):
                continue
            if _DETERMINED.search(text, max(0, start - 8), start):
                continue  # "my 12 yo brother", "a 13 year old kid"
            reason = "a participant stating an age under 18"
            yield message.finding(message.view, self.kind, start, m.end(), 0.9, reason)

    def _asl_answers(self, text: str) -> Iterable[re.Match[str]]:
        """The matches of ``_ASL`` in ``text``.

        Without an "asl" in the text only its start can match, and one ``match`` costs a
        fraction of a search: most messages that start with a number are no "asl" answer.
        """
        if "asl" in text:
            return self._ASL.finditer(text)
        m = self._ASL.match(text)
        return () if m is None else (m,)

    def _leads_with_number(self, message: Message) -> bool:
        """Whether the message starts with a number, as "asl" answers do ("14 m")."""
        head = message.text[:1]
        if head.isspace():
            head = message.text.lstrip()[:1]
        if head.isdigit():
            return True
        # Only the initials of the number words ("ten" … "seventeen", "six" … "nine").
        return head in "tefsn" and self._LEADING_NUMBER.match(message.text) is not None

    @staticmethod
    def _own_grade(text: str, end: int) -> bool:
        """Whether what follows a grade ending at ``end`` leaves it the speaker's school grade."""
        return _GRADE_FOLLOWS.match(text, end) is not None and not _NOT_SCHOOL_YEAR.match(text, end)

    @staticmethod
    def _about_someone_else(text: str, start: int) -> bool:
        return context_before(text, start, _OTHER_PERSON, width=30)

    def _stated(self, message: Message, m: re.Match[str]) -> Finding | None:
        view = message.view
        text = view.text
        age = _age_value(m["n"])
        explicit = m["unit"] is not None
        if age >= 18 or (age < 10 and not explicit):
            return None  # "im 5 minutes away" needs "yo" or "years old" to be an age
        if not explicit and _AGE_FOLLOWS.match(text, m.end()) is None:
            return None  # "im 13 blocks away": the number counts something
        if context_before(text, m.start(), _PAST_OR_REPORTED, width=20):
            return None
        if not m.group().startswith(("i", "asl")) and self._about_someone_else(text, m.start()):
            return None  # "my sister is turning 15", "age 12" about a child they mention
        reason = "a participant stating an age under 18"
        start = m.start("n")
        return message.finding(view, self.kind, start, m.end(), 0.95 if explicit else 0.85, reason)


# "when i was 12", "he said im 14" were not about the speaker now.
_PAST_OR_REPORTED = re.compile(r"\b(?:when|since|if|said|says|thought|pretend|pretending)\b")
