"""The rule for social and messaging handles: "sc: name", "add me on insta name", "@name".

Internal and unstable. A handle is an ordinary word, so a word alone is never enough: the rule
looks for a cue that names a platform in a way that offers an account (a separator, "my … is",
"add me on …", "snap me at …", "… on snap", the ghost emoji) and then takes the word after it.
Where the cue is weak (a bare "ig name"), the word must look like a username (a digit, an
underscore or a dot inside it); after a strong cue any word will do, unless it is one of the
common words that follow platform names in ordinary chat ("my snap is down", "snap decision").
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from logwarden.safety._base import Finding, Message
from logwarden.safety._patterns import alternation, wordset

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
    return "(?:" + alternation(long_words, leetspeak=True) + "|" + alternation(short_words) + ")"


# Every platform name, "x" included ("follow me on x"); which forms accept "x" is decided
# per form below, because a lone "x" is mostly not Twitter.
_ALIAS_RE = re.compile(rf"(?<![\w@])(?P<alias>{_aliases(with_x=True)})(?![\w])")
# The first word of every alias, for a cheap test before any regex runs.
_ALIAS_WORDS = frozenset(w.split()[0] for w in _PLATFORMS if w.isascii())
# Platforms that are also verbs: "snap me at name", "kik me name".
_VERBS = frozenset({"snap", "snapchat", "kik", "telegram", "tele", "whatsapp", "skype", "discord"})

_NAME_WORD = r"(?:[ ]{0,2}(?:user ?name|user|name|handle|id|tag|account|acc))?"
_VALUE = re.compile(r"(?:@|u/)?[a-z0-9_](?:[a-z0-9_.\-]{0,30}[a-z0-9_])?(?:#\d{4})?")
_VALUE_IN_TEXT = re.compile(r"(?<![\w@.\-])" + _VALUE.pattern)
# Fillers between a cue and the value ("add me on snap, it's: name").
_FILLER = re.compile(
    r"(?:[ ]{0,2}(?:[,:\-=>→]|@(?=[ ])|(?:it'?s|is|i'?m|im|as|at|its|name|username|user"
    r"|handle|me|same|also|too|there)(?![\w']))[ ]{0,2}){0,4}"
)

# What may follow a platform name. Each match ends where the value may start.
# "sc: name", "insta - name", "discord tag: name"
_SEPARATOR_AFTER = re.compile(rf"{_NAME_WORD}[ ]{{0,2}}(?:[:=]|-{{1,2}}>?(?=[ ])|=>|→)")
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
_SEPARATOR_CHARS = re.compile(r"[:=\-→]")
_INVITE_PREPOSITIONS = frozenset({"on", "at", "in", "via", "thru", "through", "over"})

_MENTION = re.compile(r"(?<![\w@.])@[a-z0-9_](?:[a-z0-9_.]{0,28}[a-z0-9_])?(?![\w@]|\.[a-z])")
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
    noon mall gym add follow dm message msg text hmu find search snapchat instagram
    """
)
_COMMON |= {w.replace(" ", "") for w in _PLATFORMS}


def _username_shaped(value: str) -> bool:
    """Whether a word looks like a username: "@name", a digit, "_" or "." inside, a #tag."""
    return _SHAPED.search(value) is not None


def _acceptable(value: str, *, strong: bool) -> bool:
    core = value.removeprefix("@").removeprefix("u/").partition("#")[0]
    if core in _COMMON or len(core) < 2:
        return False
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
    return ("an " if name[0] in "AEIOU" else "a ") + name


_NAMED = {alias: _name_platform(alias) for alias in _PLATFORMS}


class HandleRule:
    """Usernames on social and messaging platforms, offered with a cue that says so."""

    kind = "handle"

    def wants(self, message: Message) -> bool:
        text = message.text
        return (
            "@" in text
            or "#" in text
            or "u/" in text
            or "👻" in text
            or message.mentions(_ALIAS_WORDS)
        )

    def find(self, message: Message) -> Iterator[Finding]:
        text = message.text
        if message.mentions(_ALIAS_WORDS) or "👻" in text or _LONE_AT.search(text):
            for m in _ALIAS_RE.finditer(message.text):
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
        mine = "mine" in message.words
        for strong, cue_end, how in self._cues(text, alias, start, end, prev, mine=mine):
            value = self._value_after(text, cue_end)
            own = strong and prev in ("my", "our")
            if value is not None and own and not _acceptable(value.group(), strong=True):
                # "my insta is private but it's name_2": past the common words, a username
                # shape still counts.
                value = self._shaped_ahead(text, value.end())
            if value is not None and _acceptable(value.group(), strong=strong):
                reason = f"{_platform(alias)} username {how}"
                return self._finding(message, value.start(), value.end(), 0.9, reason)
        return None

    @staticmethod
    def _cues(
        text: str, alias: str, start: int, end: int, prev: str, *, mine: bool
    ) -> Iterator[tuple[bool, int, str]]:
        """(strong, where the value may start, how it was offered), strongest first."""
        if prev in _INVITE_PREPOSITIONS and _INVITE_BEFORE.search(text, max(0, start - 40), start):
            yield True, end, "offered with an invitation to add them"
        if alias == "x":
            return  # a lone "x" is Twitter only after "follow me on" and the like
        own = prev in ("my", "our")
        if own:
            after = _OWN_AFTER.match(text, end)
            strong = after is not None and after["strong"] is not None
            yield strong, after.end() if after else end, "given as their own account"
        # The next few characters say which after-forms can apply (cheap tests first, so
        # a message of many platform names stays linear and cheap).
        ahead = text[end : end + 16]
        if _SEPARATOR_CHARS.search(ahead) and (sep := _SEPARATOR_AFTER.match(text, end)):
            yield True, sep.end(), "after a platform name and a separator"
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
            for m in _MENTION.finditer(text):
                if _acceptable(m.group(), strong=True):
                    yield self._finding(message, m.start(), m.end(), 0.7, "an @username")
        if "#" in text:
            for m in _DISCORD_TAG.finditer(text):
                if _acceptable(m.group(), strong=True):
                    reason = "a Discord username with its number tag"
                    yield self._finding(message, m.start(), m.end(), 0.75, reason)
        if "u/" in text:
            for m in _REDDIT.finditer(text):
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
