"""The rule for social and messaging handles: "sc: name", "add me on insta name", "@name".

Internal and unstable. A handle is an ordinary word, so a word alone is never enough: the rule
looks for a cue that names a platform in a way that offers an account (a separator, "my … is",
"add me on …", "snap me at …", "… on snap", the ghost emoji) and then takes the word after it.
Where the cue is weak (a bare "ig name"), the word must look like a username (a digit, an
underscore or a dot inside it); after a strong cue any word will do, unless it is one of the
common words that follow platform names in ordinary chat ("my snap is down", "snap decision").
After "platform:" even a common word is a name when it is all the line says ("sc: name"), and
a Discord "#1234" tag makes any word one. Names that also mean other things ("x", and short
names in leetspeak such as "1g") count only in "my x is …" and "x: …", with a username-shaped
value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from logwarden.safety._base import Finding, Message
from logwarden.safety._patterns import alternation, wordset
from logwarden.safety._starts import gated

__all__ = ["HandleRule"]

# alias -> platform. Aliases of four letters or more also match in leetspeak ("sn4p").
_PLATFORMS: dict[str, str] = {
    "snapchat": "Snapchat", "snap chat": "Snapchat", "snap": "Snapchat", "sc": "Snapchat",
    "instagram": "Instagram", "insta": "Instagram", "ig": "Instagram",
    "kik": "Kik",
    "discord": "Discord", "disc": "Discord",
    "telegram": "Telegram", "tele": "Telegram", "tg": "Telegram",
    "whatsapp": "WhatsApp", "whats app": "WhatsApp",
    "tiktok": "TikTok", "tik tok": "TikTok", "tt": "TikTok",
    "twitter": "X (Twitter)", "x": "X (Twitter)",
    "facebook": "Facebook", "fb": "Facebook", "messenger": "Facebook Messenger",
    "skype": "Skype", "roblox": "Roblox", "steam": "Steam", "twitch": "Twitch",
    "reddit": "Reddit", "signal": "Signal", "threads": "Threads", "youtube": "YouTube",
    "psn": "PlayStation", "xbox": "Xbox", "gamertag": "gaming", "yt": "YouTube",
    "@": "social media",
    "👻": "Snapchat",
}  # fmt: skip
_LEET_BACK = str.maketrans(
    {"4": "a", "@": "a", "3": "e", "1": "i", "|": "i", "0": "o", "5": "s", "$": "s", "7": "t"}
)


def _aliases(*, with_x: bool) -> str:
    words = [w for w in _PLATFORMS if with_x or w != "x"]
    long_words = [w for w in words if len(w) >= 4]
    short_words = [w for w in words if len(w) < 4]
    # Short names in leetspeak ("1g", "5c") come last: the plain spelling wins where both
    # match, and a leet short name is trusted less (``_ambiguous``).
    leet_short = [w for w in short_words if w.isascii() and w.isalpha() and len(w) > 1]
    return (
        "(?:"
        + alternation(long_words, leetspeak=True)
        + "|"
        + alternation(short_words)
        + "|"
        + alternation(leet_short, leetspeak=True)
        + ")"
    )


# Every platform name, "x" included ("follow me on x"); which forms accept "x" is decided
# per form below, because a lone "x" is mostly not Twitter.
_ALIAS_RE = gated(rf"(?<![\w@])(?P<alias>{_aliases(with_x=True)})(?![\w])")
# The first word of every alias, for a cheap test before any regex runs.
_ALIAS_WORDS = frozenset(w.split()[0] for w in _PLATFORMS if w.isascii())
# Platforms that are also verbs: "snap me at name", "kik me name".
_VERBS = frozenset({"snap", "snapchat", "kik", "telegram", "tele", "whatsapp", "skype", "discord"})

# Arrows and pointing emoji people put between a platform and a name: "snap 👉 name".
_ARROWS = "→⇒➡➜➔➝➞⟶👉👇⬇⤵▶►"
_NAME_WORD = r"(?:[ ]{0,2}(?:user ?name|user|name|handle|id|tag|account|acc))?"
_VALUE = re.compile(r"(?:@|u/)?[a-z0-9_](?:[a-z0-9_.\-]{0,30}[a-z0-9_])?(?:#\d{4})?")
_VALUE_IN_TEXT = re.compile(r"(?<![\w@.\-])" + _VALUE.pattern)
# Fillers between a cue and the value ("add me on snap, it's: name").
_FILLER = re.compile(
    rf"(?:[ ]{{0,2}}(?:[,:\-=>{_ARROWS}]|@(?=[ ])|(?:it'?s|is|i'?m|im|as|at|its|name|username"
    r"|user|handle|me|same|also|too|there)(?![\w']))[ ]{0,2}){0,4}"
)

# What may follow a platform name. Each match ends where the value may start.
# "sc: name", "insta - name", "discord tag: name"
_SEPARATOR_AFTER = re.compile(
    rf"{_NAME_WORD}[ ]{{0,2}}(?P<sep>[:=]|-{{1,2}}>?(?=[ ])|=>|[{_ARROWS}])"
)
# "snap me at name", "kik me name"
_ME_AFTER = re.compile(r"[ ]{1,2}me(?P<strong>[ ]{0,2}(?:at|@|on|:|-)(?![\w]))?")
# "... my snap is name": after "my <platform>", an optional "is"/":" makes it strong.
_OWN_AFTER = re.compile(rf"{_NAME_WORD}(?P<strong>[ ]{{0,2}}(?:is|=|:|-|'s)(?![\w']))?")
# "whats ur snap? mine is name"
_MINE_AFTER = re.compile(r"[^.!\n]{0,30}?\bmine(?:[ ]is|'s|s|:)")

# What may come before a platform name: searched in a short window that ends at the name.
_INVITE_BEFORE = re.compile(
    r"\b(?:add|follow|dm|message|msg|hmu|hit me up|find|search|look me up|text|reach|contact"
    r"|talk to|chat)(?:[ ]{1,2}me)?(?:[ ]{1,2}up)?[ ]{1,2}(?:on|at|in|via|thru|through|over)"
    r"[ ]{1,2}\Z"
)
# "i'm name on snap", "add name on insta": the value comes before the platform.
_VALUE_BEFORE = re.compile(
    r"\b(?P<lead>i'?m|i am|its|it's|add|follow|find|search|search for|look up)[ ]{1,2}"
    r"(?P<value>@?[a-z0-9_](?:[a-z0-9_.\-]{0,30}[a-z0-9_])?)[ ]{1,2}on[ ]{1,2}\Z"
)
_WEAK_LEADS = frozenset({"i'm", "im", "i am", "its", "it's"})
_LONE_AT = re.compile(r"@(?![\w])")  # "my @ is name": an "@" standing for "username"
_SEPARATOR_CHARS = re.compile(rf"[:=\-{_ARROWS}]")
_INVITE_PREPOSITIONS = frozenset({"on", "at", "in", "via", "thru", "through", "over"})

_MENTION = re.compile(r"(?<![\w@.])@[a-z0-9_](?:[a-z0-9_.]{0,28}[a-z0-9_])?(?![\w@]|\.[a-z])")
# An "@" that a handle can come from: a lone one (``_LONE_AT``) or one where a mention could
# start (``_MENTION``). Written from the "@" on, so the engine jumps from "@" to "@".
_LOOSE_AT = re.compile(r"@(?:(?<![\w@.]@)|(?![\w]))")
_DISCORD_TAG = re.compile(r"(?<![\w#@])[a-z0-9_.]{2,32}#\d{4}(?![\w])")
_REDDIT = re.compile(r"(?<![\w/])u/[a-z0-9_\-]{3,20}(?![\w\-])")
_TIME_LIKE = re.compile(r"\d{1,2}(?::\d\d)?(?:am|pm)?|\d+(?:st|nd|rd|th|k|m|s)?")

# Words that follow platform names in ordinary chat and are not usernames.
_COMMON = wordset(
    """
    me you u ur your yours my mine it its it's is am are was were be been the a an and or
    but so if then than too to on at in of for with from by up down out off over no yes
    yeah yea ya nah nope ok okay k kk lol lmao lmfao haha hahaha rn now later tmrw tomorrow
    tonight today pls plz please thx thanks ty maybe also tho though there here name
    username user handle account acc same private public broken dead deleted banned gone
    hacked new old locked blocked weird glitching lagging not dont don't cant can't i im
    i'm we they he she him her them us this that these those what who why how when where
    which whatever first again more less pic pics photo photos story stories streak streaks
    filter filters chat message messages dm dms call calls video videos live post posts
    reel reels app one lot lots alot everything anything something nothing all any some
    both either quick fast asap soon sure definitely probably bro dude man girl guys bruh
    fam fr ngl idk tbh btw whenever instead bc cause because just only even still really
    never ever always like fine well cool hi hey hello yo sometime sometimes decision back
    shot shots out thing things score update updates group groups server servers friend
    friends please right away bio link links down acting being doing getting going having
    working messed dm'd gonna wanna gotta tho yet either neither mean means too much many
    way ways every each other another home work school everyone everybody all channel night
    noon mall gym add follow dm message msg text hmu find search snapchat instagram sucks
    before after usual
    """
)
_COMMON |= {w.replace(" ", "") for w in _PLATFORMS}
# After "platform:" even a common word is offered as a name ("sc: name"), when it is all the
# line says; but not these, which answer or describe instead ("ig: private", "snap: same").
_ANSWERS = wordset(
    """
    no none nope nah na yes yeah yea yep ya same idk dunno private public deleted banned gone
    hacked down dead broken locked blocked later soon maybe never dm dms pm lol lmao haha ok
    okay k sure me you u ur my mine it its it's this that the a an and or but so too also
    please pls plz tbh ask why what who how when where here there not dont don't cant can't
    i im i'm nothing anything everything sucks trash
    """
)
# What may follow such a name: the end of the line, punctuation, or a word of chat ("sc: name
# lol", "sc: name, add me").
_NAME_ENDS = re.compile(
    r"[ ]*(?:\n|\Z|[^\w\s]|(?:lol|lmao|haha|pls|plz|add|follow|dm|hmu|thx|ty)(?![\w']))"
)


def _username_shaped(value: str) -> bool:
    """Whether a word looks like a username: "@name", a digit, "_" or "." inside, a #tag."""
    return _SHAPED.search(value) is not None


def _acceptable(value: str, *, strong: bool, ambiguous: bool = False) -> bool:
    core, tag, _ = value.removeprefix("@").removeprefix("u/").partition("#")
    # A Discord number tag makes any word a username: "cool#1234".
    if (core in _COMMON and not tag) or len(core) < (3 if ambiguous else 2):
        return False  # after an ambiguous name, "x: y2" is algebra
    if not _HAS_LETTER.search(core) or _TIME_LIKE.fullmatch(core):
        return False  # usernames have letters: "@ 646-555-0166" is a phone number
    return strong or _username_shaped(value)


_SHAPED = re.compile(r"^(?:@|u/)|[0-9_.#]")
_HAS_LETTER = re.compile(r"[a-z]")


def _platform(alias: str) -> str:
    """'a Snapchat', 'an Instagram': the platform an alias names, with its article."""
    named = _NAMED.get(alias)  # the usual case: an alias as _PLATFORMS writes it
    return named if named is not None else _name_platform(alias)


def _name_platform(alias: str) -> str:
    key = alias.translate(_LEET_BACK).replace("-", " ").replace(".", " ")
    name = _PLATFORMS.get(key, _PLATFORMS.get(key.replace(" ", ""), "social media"))
    # "an X (Twitter)", "an Xbox": the letter is said "ex".
    return ("an " if name[0] in "AEIOUX" else "a ") + name


_NAMED = {alias: _name_platform(alias) for alias in _PLATFORMS}


def _ambiguous(alias: str) -> bool:
    """Whether a platform name is also something else: "x" (a letter, a variable, "times") and
    short names in leetspeak ("1g", "5c"). Offered with "my … is" or a colon, the value must
    then look like a username ("my x is coolkid22", not "my x is crazy")."""
    return alias == "x" or (alias not in _PLATFORMS and len(alias) < 4)


_ALGEBRA = frozenset({"=", "-", "--", "->", "-->", "=>"})
# How a value was offered, in reasons; ``_around`` tells the separator form by identity.
_OWN = "given as their own account"
_SEPARATED = "after a platform name and a separator"


class HandleRule:
    """Usernames on social and messaging platforms, offered with a cue that says so."""

    kind = "handle"
    cue_words = _ALIAS_WORDS  # without "@", "#" or "u/", only a platform name cues one

    def wants(self, message: Message) -> bool:
        text = message.text
        if message.mentions(_ALIAS_WORDS) or "👻" in text or "#" in text or "u/" in text:
            return True
        # An "@" inside an email address ("jake@example.com") gives ``find`` nothing to read:
        # only a lone "@" or one that starts a word can (``_LOOSE_AT``). Asking here spares
        # the rule's whole search to most messages with an "@", which are email addresses.
        return "@" in text and _LOOSE_AT.search(text) is not None

    def find(self, message: Message) -> Iterator[Finding]:
        text = message.text
        if message.mentions(_ALIAS_WORDS) or "👻" in text or _LONE_AT.search(text):
            pos = 0
            while (m := _ALIAS_RE.search(text, pos)) is not None:
                pos = m.end()
                if (finding := self._around(message, m)) is not None:
                    yield finding
        if "@" in text or "#" in text or "u/" in text:
            yield from self._loose(message)

    def _around(self, message: Message, m: re.Match[str]) -> Finding | None:
        """The handle a platform name at ``m`` points to, in whichever form it was offered."""
        text = message.text
        start, end = m.span()
        alias = m["alias"]
        # The word before the platform name decides which before-forms can apply; looking
        # at it first keeps a message of many platform names linear and cheap.
        before = text[max(0, start - 16) : start].split()
        prev = before[-1] if before else ""
        if prev == "on" and (v := _VALUE_BEFORE.search(text, max(0, start - 48), start)):
            strong = v["lead"] not in _WEAK_LEADS
            if _acceptable(v["value"], strong=strong):
                reason = f"{_platform(alias)} username given before the platform name"
                return self._finding(message, v.start("value"), v.end("value"), 0.85, reason)
        if alias not in _PLATFORMS and not _HAS_LETTER.search(alias):
            return None  # "19", "77": leetspeak of "ig" and "tt" with no letter left
        ambiguous = _ambiguous(alias)
        mine = "mine" in message.words
        for strong, cue_end, how in self._cues(text, alias, start, end, prev, mine=mine):
            value = self._value_after(text, cue_end)
            own = strong and prev in ("my", "our")
            if value is not None and own and not _acceptable(value.group(), strong=True):
                # "my insta is private but it's name_2": past the common words, a username
                # shape still counts.
                value = self._shaped_ahead(text, value.end())
            if value is not None and _acceptable(value.group(), strong=strong, ambiguous=ambiguous):
                reason = f"{_platform(alias)} username {how}"
                return self._finding(message, value.start(), value.end(), 0.9, reason)
            if how is _SEPARATED and not ambiguous:
                value = self._named_after_separator(text, cue_end)
                if value is not None:  # "sc: name"
                    reason = f"{_platform(alias)} username {how}"
                    return self._finding(message, value.start(), value.end(), 0.85, reason)
        return None

    @staticmethod
    def _cues(
        text: str, alias: str, start: int, end: int, prev: str, *, mine: bool
    ) -> Iterator[tuple[bool, int, str]]:
        """(strong, where the value may start, how it was offered), strongest first."""
        if prev in _INVITE_PREPOSITIONS and _INVITE_BEFORE.search(text, max(0, start - 40), start):
            yield True, end, "offered with an invitation to add them"
        # "x" and leet short names stand for other things too: only "my x is …" and "x: …"
        # offer an account, and then only a username-shaped one (``_ambiguous``).
        ambiguous = _ambiguous(alias)
        own = prev in ("my", "our")
        if own:
            after = _OWN_AFTER.match(text, end)
            strong = after is not None and after["strong"] is not None
            yield strong and not ambiguous, after.end() if after else end, _OWN
        # The next few characters say which after-forms can apply (cheap tests first, so
        # a message of many platform names stays linear and cheap).
        ahead = text[end : end + 16]
        sep = _SEPARATOR_AFTER.match(text, end) if _SEPARATOR_CHARS.search(ahead) else None
        # "x = y2" is algebra: for an ambiguous name only a colon or an arrow will do.
        if sep is not None and not (ambiguous and sep["sep"] in _ALGEBRA):
            yield not ambiguous, sep.end(), _SEPARATED
        if ambiguous:
            return
        if alias == "\U0001f47b":
            yield True, end, "after the Snapchat ghost"
        if alias in _VERBS and " me" in ahead and (me := _ME_AFTER.match(text, end)):
            strong = me["strong"] is not None
            yield strong, me.end(), "offered with an invitation to message them"
        if mine and (answer := _MINE_AFTER.match(text, end)) is not None:
            yield True, answer.end(), "given in answer to a question about the platform"
        if not own and _SHAPED.search(ahead):
            yield False, end, "after a platform name"

    def _loose(self, message: Message) -> Iterator[Finding]:
        """Handles recognisable by their own shape: @name, name#1234, u/name."""
        text = message.view.text
        if "@" in text:
            pos = 0
            while (m := _MENTION.search(text, pos)) is not None:
                pos = m.end()
                if _acceptable(m.group(), strong=True):
                    yield self._finding(message, m.start(), m.end(), 0.7, "an @username")
        if "#" in text:
            pos = 0
            while (m := _DISCORD_TAG.search(text, pos)) is not None:
                pos = m.end()
                if _acceptable(m.group(), strong=True):
                    reason = "a Discord username with its number tag"
                    yield self._finding(message, m.start(), m.end(), 0.75, reason)
        if "u/" in text:
            pos = 0
            while (m := _REDDIT.search(text, pos)) is not None:
                pos = m.end()
                yield self._finding(message, m.start(), m.end(), 0.8, "a Reddit username")

    @staticmethod
    def _shaped_ahead(text: str, pos: int) -> re.Match[str] | None:
        """The first username-shaped word in the few words after ``pos``, on the same line."""
        line_end = text.find("\n", pos)
        for i, m in enumerate(_VALUE_IN_TEXT.finditer(text, pos, min(pos + 60, len(text)))):
            if i >= 5 or (line_end != -1 and m.start() > line_end):
                break
            if _username_shaped(m.group()) and _acceptable(m.group(), strong=False):
                return m
        return None

    @staticmethod
    def _named_after_separator(text: str, pos: int) -> re.Match[str] | None:
        """After "platform:", a common word that is all the line says is offered as the name
        ("sc: name", "snap: sunshine"), unless it is an answer ("ig: private", "sc: no")."""
        while pos < len(text) and text[pos] == " ":
            pos += 1
        value = _VALUE.match(text, pos)
        if value is None or _NAME_ENDS.match(text, value.end()) is None:
            return None
        word = value.group()
        if word in _ANSWERS or len(word) < 2 or not _HAS_LETTER.search(word):
            return None
        return value

    @staticmethod
    def _value_after(text: str, pos: int) -> re.Match[str] | None:
        """The word a cue points at: after optional fillers, on the same line."""
        skipped = _FILLER.match(text, pos)
        start = skipped.end() if skipped else pos
        if start < len(text) and text[start] == " ":
            start += 1
        return _VALUE.match(text, start)

    @staticmethod
    def _finding(message: Message, start: int, end: int, confidence: float, reason: str) -> Finding:
        return message.finding(message.view, "handle", start, end, confidence, reason)
