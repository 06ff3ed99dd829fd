"""The conversation-risk lexicon: indicator families, their phrases, and the cheap text folding
they match against.

An *indicator* is one family of risky behaviour (``grooming.secrecy``, ``sextortion.threat``);
it holds *phrases*, each a small regular expression with a stable id, a weight in score points
and a one-line explanation. A reason names the indicator and the phrase id, never the text.

Phrases are written in plain spelling and matched against *folded* text:

1. only the first ``max_chars`` characters are read (the chat caps a message far below that);
2. non-ASCII text is decomposed (NFKD: fullwidth and styled letters become ASCII) and stripped
   of combining marks, so fullwidth "send" and "séñd" read "send";
3. lower case; apostrophes and zero-width characters vanish ("don't" -> "dont"); every other
   ASCII punctuation mark except ``$`` becomes a space ("a/s/l" -> "a s l");
4. inside a word that mixes letters with digits or ``@$``, common leetspeak is undone
   ("h0w 0ld" -> "how old", "p1c" -> "pic"); a bare number or amount ("$200", "14") is kept;
5. every run of a repeated letter becomes one letter ("pleeease", "heyyy", "tell" -> "tel");
6. runs of whitespace become one space.

Step 5 is lossy, so the same folding is applied to each phrase's pattern when it is compiled:
authors write "tell", the compiled pattern says "tel". Homoglyphs from other scripts are not
mapped here (the PII normaliser does that for identifiers); risk phrases are long enough that a
single swapped letter rarely matters, and this keeps folding to a few microseconds.

Every pattern is built from literals, bounded repeats and alternations, without nested
quantifiers, so matching is linear in the message length.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from logwarden.errors import ConfigError
from logwarden.safety._starts import starts

__all__ = [
    "AGE_ANSWER",
    "DEFAULT_LEXICON",
    "Category",
    "CompiledIndicator",
    "Indicator",
    "Lexicon",
    "Phrase",
    "fold",
]

Category = Literal["grooming", "sextortion", "solicitation", "harassment"]

# -- folding -------------------------------------------------------------------------------

_DELETE = "'`\u2018\u2019\u02bc\u00ad\u200b\u200c\u200d\u2060\ufeff"
_TO_SPACE = "".join(c for c in string.punctuation if c not in "$@'`") + "\u201c\u201d\u2026"
_TABLE = str.maketrans(_TO_SPACE, " " * len(_TO_SPACE), _DELETE)
_LEET = str.maketrans("013457@$", "oieastas")
_HAS_LEET = re.compile(r"[0-9@$]")
_TOKEN = re.compile(r"[a-z0-9@$]+")
_LETTER = re.compile(r"[a-z]")
# Drops each letter that the same letter follows: a run becomes its last letter. (A lookahead
# with an empty replacement is three times faster than replacing ``([a-z])\1+`` by ``\1``.)
_REPEATS = re.compile(r"([a-z])(?=\1)")
# In a pattern's source a doubled letter right after a backslash is an escape (``\bb``), not
# spelling, so it is left alone.
_PATTERN_REPEATS = re.compile(r"(?<!\\)([a-z])\1+")


def _unleet(match: re.Match[str]) -> str:
    token = match.group()
    # Only words that mix letters with leet characters: "14", "$200" and "2024" stay numbers.
    if _LETTER.search(token) and _HAS_LEET.search(token):
        return token.translate(_LEET)
    return token


def fold(text: str, *, max_chars: int = 10_000) -> str:
    """Fold chat spelling to the form phrases are matched against (see the module docstring)."""
    text = text[:max_chars]
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    else:
        text = text.lower()
    text = text.translate(_TABLE)
    if _HAS_LEET.search(text):
        text = _TOKEN.sub(_unleet, text)
    text = _REPEATS.sub("", text)
    return " ".join(text.split())


# -- data ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Phrase:
    """One phrase family inside an indicator: ``pattern`` is matched against folded text."""

    id: str
    pattern: str
    weight: float  # score points one match is worth
    why: str  # shown to reviewers: what the sender did, in a few words


@dataclass(frozen=True, slots=True)
class Indicator:
    """A family of risky behaviour.

    ``cumulative`` indicators add up with every matching message (insults: repetition is the
    harm); the others saturate at their strongest phrase (asking someone's age five times is
    no more grooming than asking once: grooming is several *different* behaviours).
    """

    name: str  # "<category>.<family>"
    category: Category
    cumulative: bool
    phrases: tuple[Phrase, ...]


class CompiledIndicator:
    """An indicator compiled once: one regular expression, one named group per phrase."""

    __slots__ = ("category", "cumulative", "indicator", "name", "phrases", "search")

    def __init__(self, indicator: Indicator) -> None:
        if not indicator.phrases:
            raise ConfigError(f"indicator {indicator.name!r} has no phrases")
        # The scorer groups indicators by this prefix.
        if not indicator.name.startswith(indicator.category + "."):
            raise ConfigError(f"indicator {indicator.name!r} must be named {indicator.category}.*")
        self.indicator = indicator
        self.name = indicator.name
        self.category = indicator.category
        self.cumulative = indicator.cumulative
        self.phrases = {f"p{i}": phrase for i, phrase in enumerate(indicator.phrases)}
        alternatives = "|".join(
            f"(?P<{group}>{_expand(phrase.pattern)})" for group, phrase in self.phrases.items()
        )
        try:
            # Matches start after a space and end at a word edge. The text is searched with a
            # space in front: a leading literal lets the regex engine jump from word to word
            # instead of trying every phrase at every character (a third faster).
            self.search = re.compile(_matched_as_words(alternatives)).search
        except re.error as exc:
            raise ConfigError(f"indicator {indicator.name!r} does not compile: {exc}") from None


def _matched_as_words(alternatives: str) -> str:
    """A search for ``alternatives`` starting at a word (the text is searched with a space in
    front) and ending at a word's edge.

    After the space, a lookahead lists the three characters any match can begin with
    (``_starts.py``): at most words it fails at once, where the engine would otherwise try
    every alternative in turn, and a scan costs about a third less.
    """
    beginnings = starts(alternatives, _GATE_WIDTH)
    gate = "" if beginnings is None else f"(?={'|'.join(map(re.escape, sorted(beginnings)))})"
    return f" {gate}(?:{alternatives})(?![a-z0-9])"


_GATE_WIDTH = 3


class Lexicon:
    """A compiled set of indicators; built once per process and shared by every session."""

    __slots__ = ("banter", "indicators")

    def __init__(self, indicators: Iterable[Indicator]) -> None:
        compiled = tuple(CompiledIndicator(i) for i in indicators)
        # An empty rule set is a configuration mistake, not a set that finds nothing.
        if not compiled:
            raise ConfigError("a risk lexicon needs at least one indicator")
        names = [c.name for c in compiled]
        if len(names) != len(set(names)):
            raise ConfigError("indicator names in a risk lexicon must be unique")
        self.indicators = compiled
        self.banter = re.compile(_expand(_BANTER))

    def scan(self, folded: str) -> list[tuple[CompiledIndicator, Phrase]]:
        """Every indicator that matches ``folded`` text, with the phrase that matched."""
        spaced = " " + folded
        hits = []
        # The hot loop of the scorer: one search per indicator, nothing else.
        for indicator in self.indicators:
            found = indicator.search(spaced)
            if found is not None:
                hits.append((indicator, indicator.phrases[str(found.lastgroup)]))
        return hits

    def is_banter(self, folded: str) -> bool:
        """Whether the message laughs at itself ("lol", "haha", "jk"): insults count half."""
        return self.banter.search(folded) is not None


# -- the lexicon ---------------------------------------------------------------------------
#
# Macros shared by the phrases; ``{name}`` in a pattern is replaced before folding.
_MACROS = {
    "start": r"(?<=^ )",  # the start of the message (the text is searched as " " + text)
    "you": r"(?:you|u|ya|yu)",
    "your": r"(?:your|ur|yur|yr)",
    "youre": r"(?:youre|ur|your|you are|u are|u r|you r|yur)",
    "yourself": r"(?:yourself|urself|ur self|your self|yourslf)",
    "are": r"(?:are|r)",
    "do": r"(?:do|d)",
    "dont": r"(?:dont|do not|dnt|don)",
    "parents": r"(?:parents|parent|mom|mum|mommy|dad|daddy|mother|father|family|folks)",
    "anyone": r"(?:anyone|anybody|any one|no one|noone|nobody)",
    "platform": (
        r"(?:snap|snapchat|sc|insta|instagram|ig|kik|discord|disc|telegram|tele|whatsapp"
        r"|whats app|tiktok|twitter|facebook|fb|messenger|skype|signal|wechat|viber)"
    ),
    "pics": r"(?:pic|pics|picture|pictures|photo|photos|pix|selfie|selfies|vid|vids|video|videos)",
    "will": (
        r"(?:i will|ill|i ll|im gonna|im going to|i am going to|i am gonna|imma|ima|gonna"
        r"|going to|or i|or ill|or i will|i swear i will|i swear ill)"
    ),
    "offer": r"(?:ill|i will|i ll|i can|i could|i would|let me|want me to|i wanna|i want to)",
    "propose": (
        r"(?:lets|let us|we should|can we|could we|wanna|want to|should we|we could|we can"
        r"|come)"
    ),
    "audience": (
        r"(?:every ?(?:one|body) (?:at|in|from) {your} (?:school|class|work|family)"
        r"|everyone|everybody|every one|all {your} (?:friends|followers|contacts)"
        r"|{your} (?:friends|family|parents|mom|mum|dad|school|class|classmates|teachers"
        r"|followers|contacts|boss|work|whole school|brother|sister|girlfriend|boyfriend))"
    ),
    "money": (
        r"(?:\$ ?\d+|\d+ ?(?:\$|dollars|bucks|usd|euros|pounds|quid)|money|cash|the money"
        r"|bitcoin|btc|crypto|robux|{cards})"
    ),
    "cards": r"(?:gift ?cards?|steam cards?|apple cards?|itunes cards?|google play cards?"
    r"|amazon cards?|roblox cards?)",
    "evidence": (
        r"(?:the (?:screenshots|screenshot|ss|pics|pictures|photos|video|videos|recording|chat"
        r"|messages))"
    ),
    # A request is not one when it is negated: "never send private pics to strangers".
    "asked": r"(?<!never )(?<!nt )(?<!not )(?<!no )",
    # What turns a statement into a threat: the condition. "I'll tell everyone the party is
    # off" is news; "pay or I tell everyone" is extortion.
    "or": (
        r"(?:or(?: else)?|else|otherwise|if not|if {you} (?:dont|wont|do not|will not|refuse)"
        r"(?: [a-z0-9$]+){0,3})"
    ),
    "i_will": (
        r"(?:i|ill|i will|i ll|im gonna|imma|ima|i am gonna|i swear i will|i swear ill"
        r"|i swear i ll)"
    ),
    "share": r"(?:post|share|leak|upload|send|show|spread|expose|release|forward)",
}

_BANTER = r"(?:^| )(?:lol|lmao|lmfao|haha|hahaha|hehe|jk|jking|just kidding|xd|rofl)(?: |$)|😂|🤣"


def _expand(pattern: str) -> str:
    # Two rounds: macros may use macros ({audience} uses {your}, {or} uses {you}).
    for _ in range(2):
        for name, body in _MACROS.items():
            pattern = pattern.replace("{" + name + "}", body)
    return _PATTERN_REPEATS.sub(r"\1", pattern)


# A reply that gives an age under 18 (and 10 or over: smaller numbers are more often
# something else), read from the start of the message: "14", "14 wbu", "im 15 f uk",
# "thirteen". The PII detector cannot know a bare "14" is an age; the scorer reads it as one
# when it answers an age question (scoring.py).
AGE_ANSWER = re.compile(
    _expand(
        r"(?:im |i am |i m |am )?(?:1[0-7]|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen"
        r"|seventeen)(?: |$)"
    )
)


def _phrases(*rows: tuple[str, str, float, str]) -> tuple[Phrase, ...]:
    return tuple(Phrase(id=i, pattern=p, weight=w, why=y) for i, p, w, y in rows)


# Weights are score points on the 0-100 scale (scoring.py explains how they add up). The
# grooming weights are set so that no single family, nor the common adult pair "age + add me
# on snap", reaches the grooming bar of 40 points: grooming is a pattern of families.
GROOMING: tuple[Indicator, ...] = (
    Indicator(
        "grooming.age_probe",
        "grooming",
        cumulative=False,
        phrases=_phrases(
            ("how_old", r"(?:how|hw|hou) old {are} {you}|how old {youre}", 8, "asks their age"),
            ("asl", r"a ?s ?l", 8, "asks age/sex/location"),
            (
                "your_age",
                r"(?:whats|what is|wats|tell me) {your} age|{start}(?:and |so )?{your} age$"
                r"|{start}age$",
                8,
                "asks their age",
            ),
            (
                "grade",
                r"what (?:grade|year|class) {are} {you} in|{are} {you} in (?:middle|high"
                r"|elementary|primary|secondary|junior high) school",
                8,
                "asks their school grade",
            ),
            (
                "over_18",
                r"{are} {you} (?:over|under|above|below) (?:18|eighteen|age)|{are} {you}"
                r" (?:18|eighteen|legal|a minor|a kid|underage)|how young {are} {you}",
                8,
                "asks whether they are an adult",
            ),
        ),
    ),
    Indicator(
        "grooming.secrecy",
        "grooming",
        cumulative=False,
        phrases=_phrases(
            (
                "dont_tell_parents",
                r"(?:{dont}|never|dont ever) (?:tell|show|mention)(?: this| it| that| us)?"
                r"(?: to)? {your} {parents}|{your} {parents} (?:cant|cannot|must not|shouldnt"
                r"|dont need to|dont have to|can never|must never) (?:know|find out|see)",
                25,
                "asks them to hide the chat from their parents",
            ),
            (
                "our_secret",
                r"our (?:little )?secret|keep (?:it|this|that|us) (?:a )?(?:little )?secret"
                r"|(?:just )?between (?:us|you and me|me and you|u and me|me and u)",
                20,
                "asks them to keep a secret",
            ),
            (
                "dont_tell_anyone",
                r"(?:{dont}|never) tell {anyone}|(?:no one|noone|nobody) (?:needs|has) to know",
                15,
                "asks them not to tell anyone",
            ),
            (
                "watched",
                r"(?:{do}|does) {your} {parents} (?:check|look at|read|see|go through|monitor)"
                r" {your} (?:phone|messages|texts|chats|dms|account)|(?:i wont|i will not|i would"
                r" never|i never) tell (?:{your} {parents}|anyone)",
                20,
                "asks whether their parents watch their messages, or promises secrecy",
            ),
            (
                "delete_chat",
                r"(?:delete|clear|erase|wipe) (?:our|this|the|these|{your}|all|all our|all the)"
                r" (?:chat|chats|messages|msgs|convo|conversation|texts|dms|history)",
                20,
                "asks them to delete the conversation",
            ),
        ),
    ),
    Indicator(
        "grooming.isolation",
        "grooming",
        cumulative=False,
        phrases=_phrases(
            (
                "nobody_understands",
                r"{your} {parents} (?:dont|do not|never|wont|will never|doesnt|does not|cant)"
                r" (?:understand|get|care about|listen to|love|deserve) {you}"
                r"|(?:only i|im the only one who|i am the only one who) (?:understands?|gets?)"
                r" {you}|no one (?:understands|gets) {you} like|i understand {you} better than",
                25,
                "tells them nobody else understands them",
            ),
            (
                "dont_need_others",
                r"{you} (?:dont|do not) need (?:{your} )?(?:friends|parents|family|them|anyone"
                r" else)|{your} friends (?:dont|do not|never) (?:care|understand|like {you})",
                25,
                "tells them they do not need friends or family",
            ),
            (
                "home_alone",
                r"{are} {you} (?:home )?alone|{are} {you} by {yourself}|(?:is|are) {your}"
                r" {parents} (?:home|there|around|awake|asleep|out|away)|when (?:are|do|does)"
                r" {your} {parents} (?:leave|go out|get home|go to sleep|go to bed)"
                r"|is (?:anyone|anybody|any one|someone) (?:home|with {you})"
                r"|who(?:s| is) (?:home )?with {you}",
                20,
                "asks whether they are alone or unsupervised",
            ),
        ),
    ),
    Indicator(
        "grooming.flattery",
        "grooming",
        cumulative=False,
        phrases=_phrases(
            (
                "mature",
                r"{youre} (?:so |really |very )?(?:mature|grown up|grownup)|mature for {your}"
                r" age|{you} (?:seem|look|act|sound) (?:so |really )?(?:mature|older than)",
                12,
                "calls them mature for their age",
            ),
        ),
    ),
    Indicator(
        "grooming.platform_move",
        "grooming",
        cumulative=False,
        phrases=_phrases(
            (
                "add_me",
                r"(?:add|follow|dm|msg|message|hit|text) me (?:up )?(?:on|in) {platform}"
                r"|add (?:me|my) {platform}",
                10,
                "asks to be added on another platform",
            ),
            (
                "move_to",
                r"{propose} (?:talk|chat|move|go|continue|switch|text|talk more|chat more)"
                r" (?:on|to|over to|over on|in) {platform}|{propose} (?:use|get on|try) {platform}",
                10,
                "asks to move the chat to another platform",
            ),
            (
                "have_platform",
                r"(?:{do} {you} have|{you} have|{you} got|{are} {you} on|whats {your}"
                r"|what is {your}|send me {your}|give me {your}|drop {your}) (?:a |an )?{platform}",
                10,
                "asks for their account on another platform",
            ),
            (
                "number",
                r"(?:whats|what is|give me|send me|can i (?:have|get)|drop) {your} (?:number"
                r"|phone number|digits|cell|phone)",
                10,
                "asks for their phone number",
            ),
        ),
    ),
    Indicator(
        "grooming.gifts",
        "grooming",
        cumulative=False,
        phrases=_phrases(
            (
                "buy_you",
                r"{offer} (?:buy|get|send|give|gift) {you} (?:some |a |an |free |more |\d+ )?"
                r"(?:robux|v ?bucks|{cards}|money|cash|nitro|skins?|presents?|gifts?|games?"
                r"|phone|new phone|credits|coins|gems|\$ ?\d+)|{offer} buy {you}",
                15,
                "offers them gifts or game currency",
            ),
            (
                "want_money",
                r"(?:{start}|{do} {you} |would {you} |{you} )(?:want|need|like) (?:some )?"
                r"(?:free )?(?:robux|v ?bucks|money|cash|nitro|a gift card|gift cards|a present"
                r"|a gift)",
                15,
                "offers them money or game currency",
            ),
            ("pay_you", r"{offer} pay {you}(?! back)", 15, "offers to pay them"),
        ),
    ),
    Indicator(
        "grooming.picture_request",
        "grooming",
        cumulative=False,
        phrases=_phrases(
            (
                "send_pic",
                r"{asked}(?:send|snap|show|text|dm) (?:me )?(?:a |an |some |any |ur |{your}"
                r" |more |another )?{pics}",
                12,
                "asks them for a picture",
            ),
            (
                "look_like",
                r"what (?:{do} )?{you} look like|(?:{pics}) of {you}(?:rself)?|{do} {you} have"
                r" (?:any )?(?:{pics})",
                12,
                "asks what they look like",
            ),
            (
                "camera",
                r"(?:turn|put|switch) on {your} (?:cam|camera|webcam|video)|(?:turn|put|switch)"
                r" {your} (?:cam|camera|webcam|video) on|(?:go|get|come) on (?:cam|camera|video)"
                r"|(?:can|let) (?:i|me) see {you}|video ?call",
                12,
                "asks them to turn on their camera",
            ),
        ),
    ),
    Indicator(
        "grooming.meeting",
        "grooming",
        cumulative=False,
        phrases=_phrases(
            (
                "meet_up",
                r"{propose} (?:meet|hang out|hangout|meet up)(?: up| irl| in person| somewhere"
                r"| sometime)?|meet (?:up )?(?:irl|in person|in real life)|{offer} (?:pick {you}"
                r" up|come (?:to|over to) {your} (?:house|place|school)|come see {you}"
                r"|visit {you})",
                15,
                "proposes meeting in person",
            ),
            (
                "where_live",
                r"where (?:{do} )?{you} live|(?:whats|what is) {your} (?:address|street)"
                r"|(?:what|which) school (?:{do} )?{you} (?:go to|attend)|what school {are}"
                r" {you} at",
                15,
                "asks where they live or go to school",
            ),
        ),
    ),
)

SEXTORTION: tuple[Indicator, ...] = (
    Indicator(
        "sextortion.threat",
        "sextortion",
        cumulative=False,
        phrases=_phrases(
            (
                "show_everyone",
                r"{will} (?:show|send|post|share|leak|upload|forward|spread|give)(?! my )"
                r"(?: \S+){0,4} (?:to |with |on |around )?{audience}"
                r"(?! (?:my|how|the|our|who))",
                45,
                "threatens to show their pictures or messages to others",
            ),
            (
                "post_pics",
                r"{will} (?:post|share|leak|upload|send|show|spread|expose|release) (?:all )?"
                r"{your} (?:{pics}|messages|msgs|chats?|screenshots|texts|secrets)|{will}"
                r" (?:leak|spread|expose|release) (?:them|these|those|it|this|everything)"
                r"|{will} {share} (?:the ones|what|everything|all(?: the ones)?) i (?:have|got"
                r"|saved|kept|took)",
                45,
                "threatens to post their pictures or messages online",
            ),
            (
                "or_else",
                # The condition makes the threat: "send it or I post them", "pay or I tell
                # everyone", "venmo me or everyone at your school gets it".
                r"{or} (?:{i_will} (?:{share} (?:them|it|these|those|this|everything|all of"
                r" (?:it|them)|{evidence}|the ones|what i|our (?:chat|chats|messages|convo"
                r"|conversation))"
                # "or I tell everyone", "... or I tell your parents what you did"; not "hurry
                # or I tell everyone we're late".
                r"|tell {audience}(?:$| (?:about|what|everything|the truth)))"
                r"|{audience} (?:gets|get|sees|see|will (?:get|see)|is gonna (?:get|see)"
                r"|are gonna (?:get|see)|gonna (?:get|see)|finds out|find out|hears about"
                r"|hear about) (?:it|this|them|these|those|everything|all of it|{evidence}"
                r"|about (?:it|this|us|{you})))",
                45,
                "threatens to share their pictures or messages unless they comply",
            ),
            (
                "will_see",
                r"{audience} (?:will|is going to|are going to|gonna|is gonna|are gonna) (?:see"
                r"|find out|know|get)(?: about)? (?:{your} (?:{pics}|messages|chat|screenshots)"
                r"|this|everything|what {you}|{evidence})|{audience} (?:sees|see|gets|get"
                r"|receives|receive) (?:{your} (?:{pics}|messages|chat|screenshots)|{evidence})"
                r"|(?:this|it|these|them|everything|{evidence}|{your} {pics}) (?:goes|go|gets sent"
                r"|get sent|will go|will be sent|gets posted|will be posted|gets shared|will get"
                r" sent) (?:out )?(?:to|on) {audience}"
                # "everyone at your school gets it": a named audience of theirs. (A bare
                # "everyone gets it" is mostly "everyone understands"; with a condition it is
                # the "or_else" phrase.)
                r"|every ?(?:one|body) (?:at|in|from) {your} (?:school|class|work|family|team)"
                r" (?:gets|sees|will (?:get|see)|is gonna (?:get|see)|gonna (?:get|see)) (?:it"
                r"|this|them|these|everything)",
                45,
                "threatens that others will see their pictures or messages",
            ),
            (
                "expose",
                r"{will} expose {you}|i (?:have|got|saved|took|kept) (?:screenshots|ss|screen"
                r" shots|a recording|recordings) of (?:this|our|{you}|{your}|everything)"
                r"|i (?:have|got|saved|kept) (?:all )?{your} {pics}|i (?:recorded|filmed"
                r"|screen ?recorded|screenshotted) {you}",
                45,
                "threatens to expose them",
            ),
            (
                "kept_chat",
                # Leverage, not yet a threat: alone it is 10 points and no flag ("I saved our
                # chat, it was funny"); with a demand it is the sextortion pattern.
                r"i (?:saved|kept|screenshotted|screenshoted|screen ?shotted|ssd|ssed|recorded"
                r"|screen ?recorded) (?:all (?:of )?)?(?:our|this|the|these|those|{your}) (?:chat"
                r"|chats|messages|msgs|convo|conversation|texts|dms|{pics})|i (?:saved|kept"
                r"|screenshotted|screenshoted|screen ?shotted|ssd|ssed|recorded|screen ?recorded)"
                r" (?:everything|it all|all of it|all of this|all of them)",
                10,
                "says they kept the conversation or pictures (leverage)",
            ),
        ),
    ),
    Indicator(
        "sextortion.demand",
        "sextortion",
        cumulative=False,
        phrases=_phrases(
            (
                "pay",
                r"unless {you} (?:pay|send|give|transfer|do)|if {you} (?:dont|do not|wont"
                r"|refuse to) (?:pay|send|give)|(?:venmo|cashapp|cash app|paypal|zelle) me"
                r"(?! back| later| for)|(?:pay|send|give|transfer|wire) me (?:{money}|now|first)"
                r"|pay (?:up|me)|(?:i want|i need) {money}|{money} (?:now|or|by|within|only)"
                r"|(?:send|pay|transfer|wire) (?:{money}|(?:me )?\d+ (?:in|of|worth of)"
                r" (?:bitcoin|btc|crypto|ethereum|eth|usdt))",
                10,
                "demands money",
            ),
            (
                "gift_cards",
                r"(?:buy|get|send|give) me (?:a |some |\d+ |\$ ?\d+ (?:in )?)?{cards}|in {cards}",
                10,
                "demands gift cards",
            ),
            (
                "more_pics",
                r"(?:send|give|want|need) (?:me )?more {pics}|(?:send|give) me more",
                10,
                "demands more pictures",
            ),
            (
                "account",
                r"(?:give|send|tell|text|dm) me {your} (?:password|passwords|pass|passcode|login"
                r"|log in|login details|pin|2fa code|verification code|security code"
                r"|(?:{platform} |email )?(?:password|login))",
                10,
                "demands their password or account",
            ),
            (
                "deadline",
                r"{you} (?:have|got) (?:\d+|one|two|three|ten|twenty four) (?:minutes|mins"
                r"|hours|hrs|days)|or else",
                10,
                "sets a deadline or ultimatum",
            ),
        ),
    ),
)

SOLICITATION: tuple[Indicator, ...] = (
    Indicator(
        "solicitation.explicit",
        "solicitation",
        cumulative=True,
        phrases=_phrases(
            (
                "private_pics",
                r"{asked}(?:send|show|give|share|trade|swap|exchange) (?:me |{you} |each other )?"
                r"(?:some |a few |any |ur |{your} |more |a )?(?:private|inappropriate|spicy"
                r"|naughty|revealing|risky) (?:{pics}|stuff|content|things)|(?:{do} {you} have"
                r"|got|can i see|i wanna see|i want to see|let me see) (?:any |some )?(?:private"
                r"|inappropriate|spicy|naughty|revealing|risky) (?:{pics}|stuff|content)",
                50,
                "asks for private or inappropriate pictures",
            ),
            (
                "something_spicy",
                r"{asked}(?:send|show) (?:me )?something (?:spicy|naughty|private|inappropriate"
                r"|revealing|risky)",
                50,
                "asks for something inappropriate",
            ),
            (
                "wouldnt_show",
                r"something {you} (?:wouldnt|would not|wont|dont|cant|would never) (?:show"
                r"|want to show|send) (?:to )?(?:{your} )?(?:{parents}|anyone|friends)",
                50,
                "asks for something they would hide from others",
            ),
            ("what_wearing", r"what {are} {you} wearing", 50, "asks what they are wearing"),
            (
                "just_for_me",
                r"{pics} (?:just |only )for me",
                50,
                "asks for pictures only for them",
            ),
        ),
    ),
)

HARASSMENT: tuple[Indicator, ...] = (
    Indicator(
        "harassment.insult",
        "harassment",
        cumulative=True,
        phrases=_phrases(
            (
                "degrading",
                r"{youre} (?:so |such |a |an |just |really |literally |the most ){0,3}"
                r"(?:worthless|pathetic|disgusting|ugly|useless|a loser|loser|an idiot|idiot"
                r"|stupid|a freak|freak|trash|garbage|nothing|a joke|gross|dumb|a moron|moron"
                r"|scum|vile|a clown|clown|(?:a )?waste of (?:space|oxygen|air|skin|life))"
                r"|{start}(?:loser|freak|idiot|moron|clown|creep)$",
                20,
                "insults them",
            ),
            (
                "nobody_likes",
                r"(?:nobody|no one|noone) (?:likes|loves|cares about|wants|will ever (?:like|love))"
                r" {you}|every ?(?:one|body) hates {you}|{you} have no friends",
                20,
                "tells them nobody likes them",
            ),
            (
                "shut_up",
                r"shut up(?: {you})? (?:loser|idiot|freak|moron|clown)|(?:stupid|dumb|ugly"
                r"|worthless|pathetic) (?:idiot|loser|freak|moron|clown)",
                20,
                "insults them",
            ),
        ),
    ),
    Indicator(
        "harassment.violence",
        "harassment",
        cumulative=True,
        phrases=_phrases(
            (
                "hurt_you",
                # Not "I'll kill you in the next round": game talk names the game.
                r"(?:{will}|i should|i could|i want to|i wanna) (?:(?:kill|hurt|stab|shoot"
                r"|punch) {you}|beat {you} up|find {you} and hurt {you})"
                r"(?! (?:in|next|at|on|this|every) )",
                60,
                "threatens violence",
            ),
            (
                "where_you_live",
                r"i know where {you} live|i know {your} address|(?:i will|ill|i ll|imma"
                r"|im gonna|im going to) find {you}(?= and|$)|watch {your} back"
                r"|{you} better watch out",
                60,
                "threatens to find or hurt them",
            ),
        ),
    ),
    Indicator(
        "harassment.self_harm",
        "harassment",
        cumulative=True,
        phrases=_phrases(
            (
                "kys",
                r"kill {yourself}|kys|go die|die already|end {yourself}|{you} should (?:die"
                r"|disappear|not exist|end it)|no one would miss {you}|do (?:us all|everyone"
                r"|the world) a favou?r and (?:die|disappear|end it|kill {yourself})|(?:go )?jump"
                r" off a (?:bridge|cliff|building|roof)|go (?:hang|drown) {yourself}|(?:nobody"
                r"|no one) would care if {you} died|(?:the )?world (?:is|would be) better"
                r" without {you}",
                60,
                "urges them to harm themselves",
            ),
        ),
    ),
)


DEFAULT_LEXICON = Lexicon((*GROOMING, *SEXTORTION, *SOLICITATION, *HARASSMENT))
