"""Rules for ways to reach someone online: email addresses and URLs.

Internal and unstable. Both accept the disguises people type to get past filters: "at"/"dot"
spelled out or bracketed ("name [at] example [dot] com"), defanged dots ("example[.]com"),
"hxxp://".
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from logwarden.safety._base import Finding, Message
from logwarden.safety._patterns import (
    BARE_TLDS,
    DOT,
    LABEL,
    PROVIDER_WORDS,
    PROVIDERS,
    SPOKEN_DOT,
    SPOKEN_TLDS,
    TLD_WORDS,
    wordset,
)

__all__ = ["EmailRule", "UrlRule"]

_LEET_BACK = str.maketrans({"4": "a", "@": "a", "3": "e", "1": "i", "0": "o", "5": "s"})
_SPOKEN_TLD_RE = re.compile(SPOKEN_TLDS)
_HANDLE_LIKE = re.compile(r"[0-9._]")  # a mailbox with a digit, "." or "_": "jake_b2"
_PROVIDER_RE = re.compile(PROVIDERS)
_KNOWN_TLD_RE = re.compile(f"{SPOKEN_TLDS}|{BARE_TLDS}")
_DOT_SPLIT = re.compile(DOT)
_SPOKEN_DOT_RE = re.compile(SPOKEN_DOT)

# Words that end up before a spoken "at" without being the name of a mailbox ("look at …",
# "I work at …"). Only consulted when "at" is spelled out.
_NOT_A_MAILBOX = wordset(
    """
    look looking looked me us you him her them it im i is was be are here there home work
    working worked job intern interned still now lol good bad great best worst mad angry
    laugh laughing stare staring yell yelling check email mail message text hit hmu the a
    an my your our their this that at in on of to from and or but so just only
    """
)

# What makes "name at …" an address without a "." in the message: a spoken dot or a provider.
_DOT_OR_PROVIDER = PROVIDER_WORDS | {"dot"}


class EmailRule:
    """Email addresses, literal or with "at"/"dot" spelled out, bracketed or spaced."""

    kind = "email"
    # Without "@" or ".", an address is "name at provider" or "name at example dot com".
    cue_words = _DOT_OR_PROVIDER

    _BRACKET_AT = r"[ ]{0,2}[\[({<][ ]{0,2}(?:at|@)[ ]{0,2}[\])}>][ ]{0,2}"
    _PATTERN = re.compile(
        r"(?<![\w.%+\-'@])(?P<local>[a-z0-9](?:[a-z0-9._%+\-]{0,62}[a-z0-9_])?)"
        rf"(?:(?P<sign>[ ]?@[ ]?)|(?P<bracket>{_BRACKET_AT})|(?P<word>[ ]{{1,2}}[a4@]t[ ]{{1,2}}))"
        rf"(?P<domain>{LABEL}(?:{DOT}{LABEL}){{0,4}})(?![\w\-@])"
    )

    def wants(self, message: Message) -> bool:
        if "@" in message.text:
            return True
        words = message.words
        return "at" in words and (
            "dot" in words or "." in message.text or message.mentions(_DOT_OR_PROVIDER)
        )

    def find(self, message: Message) -> Iterator[Finding]:
        view = message.view
        text = view.text
        pos = 0
        while (m := self._PATTERN.search(text, pos)) is not None:
            judged = self._judge(text, m)
            if judged is None:
                # "look at jake at gmail dot com": the mailbox may start where this domain did.
                pos = m.start("domain")
                continue
            confidence, reason, disguised = judged
            start = m.start()
            if disguised:  # a mailbox may be spoken too: "jane dot doe at …"
                start = _spoken_local_start(text, start, pos)
            yield message.finding(view, self.kind, start, m.end(), confidence, reason)
            pos = m.end()

    @staticmethod
    def _mailed(text: str, m: re.Match[str], labels: list[str]) -> bool:
        """Whether "name at example.com" is an address: a plain domain after a spoken "at" is
        one when the sentence is about mail ("mail me jdoe at example.com"), not otherwise
        ("look at example.com", "sold out at example.com")."""
        return (
            len(labels) > 1
            and _KNOWN_TLD_RE.fullmatch(labels[-1]) is not None
            and _MAIL_CUE.search(text, max(0, m.start() - 30), m.start()) is not None
        )

    def _judge(self, text: str, m: re.Match[str]) -> tuple[float, str, bool] | None:
        """(confidence, reason, whether it is disguised) when the match is an email address,
        else None."""
        domain = m["domain"]
        # A spoken or bracketed dot has a space or a bracket; most domains are written plainly,
        # and splitting them at "." is what the regexes would do, at a tenth of the cost.
        spoken_dot = False
        if " " in domain or "[" in domain or "(" in domain or "{" in domain or "<" in domain:
            labels = _DOT_SPLIT.split(domain)
            spoken_dot = _SPOKEN_DOT_RE.search(domain) is not None
        else:
            labels = domain.split(".")
        provider = _PROVIDER_RE.fullmatch(labels[0]) is not None
        if m["word"] is not None:
            local = m["local"]
            if local in _NOT_A_MAILBOX:
                return None
            tld = labels[-1].translate(_LEET_BACK)
            spoken_ok = len(labels) > 1 and spoken_dot and _SPOKEN_TLD_RE.fullmatch(tld)
            handle_like = len(labels) > 1 and _HANDLE_LIKE.search(local) is not None
            if not (spoken_ok or provider or handle_like or self._mailed(text, m, labels)):
                return None
            if spoken_dot:
                return 0.9, "an email address with 'at' and 'dot' written as words", True
            return 0.9, "an email address with 'at' written as a word", True
        if len(labels) < 2 and not provider:
            return None  # "name@host" with no top-level domain is no address we can reach
        if m["sign"] != "@" and not (provider or _KNOWN_TLD_RE.fullmatch(labels[-1])):
            return None  # "tiktok @dance.with.zoe": a spaced "@" needs a real ending
        if len(labels) > 1 and not labels[-1].isalpha():
            return None
        if m["bracket"] is not None or spoken_dot:
            return 0.95, "an email address with its '@' or dots disguised", True
        return 0.95, "an email address", m["sign"] != "@"


_MAIL_CUE = re.compile(r"\b(?:e-?mail|mail|inbox|gmail|contact|reach me|write (?:me|to))\b")
# One more word of a mailbox whose dots or underscores are spoken or spaced, read backwards from
# where the mailbox found so far starts: "jane dot " before "doe at example dot com", "jake
# underscore " before "b at …", "jake . " before "b @ …".
_SPOKEN_LOCAL_PART = re.compile(
    r"(?<![\w.%+\-'@])(?P<word>[a-z0-9](?:[a-z0-9._%+\-]{0,30}[a-z0-9_])?)"
    r"(?:[ ]{1,2}(?:d[o0]t|underscore|under score|dash|hyphen)[ ]{1,2}|[ ]{1,2}\.[ ]{1,2}"
    r"|[ ]{0,2}[\[({<][ ]{0,2}(?:d[o0]t|\.)[ ]{0,2}[\])}>][ ]{0,2})\Z"
)
_LOCAL_WORDS_MAX = 4  # spoken separators followed back: "a dot b dot c dot d at …"


def _spoken_local_start(text: str, start: int, floor: int) -> int:
    """Where a disguised address really starts: its mailbox may have spoken dots too, which
    the address pattern (one word before "at") cannot see. Never before ``floor``, the end of
    the previous address."""
    for _ in range(_LOCAL_WORDS_MAX):
        m = _SPOKEN_LOCAL_PART.search(text, max(floor, start - 48), start)
        if m is None or m["word"] in _NOT_A_MAILBOX or m["word"] in _NOT_A_DOMAIN:
            break
        start = m.start()
    return start


# Labels that, before a spoken "dot", are ordinary words ("the dot com era", "polka dot").
_NOT_A_DOMAIN = wordset(
    """
    the a an my your to of in on at is it this that polka
    """
)
_URL_WORDS = TLD_WORDS | {"www", "http", "https", "hxxp", "hxxps", "ftp"}
_TRAILING_PUNCTUATION = ".,;:!?)]}'\""


def _has_spoken_dot(message: Message) -> bool:
    """Whether ``SPOKEN_DOT`` could match: a bracket, " . ", or "dot" or "d0t" as a word.

    A few substring tests, where a search for the pattern costs microseconds.
    """
    text = message.text
    return (
        "dot" in message.words
        or "d0t" in text
        or " . " in text
        or "[" in text
        or "(" in text
        or "{" in text
        or "<" in text
    )


class UrlRule:
    """Web addresses: with a scheme, starting "www", or a bare domain with a known ending."""

    kind = "url"
    cue_words = frozenset({"dot"})  # without "/" or ".", a link is "example dot com"

    _PATH = r"(?:/[\w\-.~%/?#=&+:@!,;*$']{0,512})?"
    _SCHEME = re.compile(r"(?<![\w])(?:h[tx]{2}ps?|ftp)(?::|\[:\])//[^\s<>\"`]{1,2048}")
    # Both start with a label, which ends where its run of label characters does, since no
    # label character follows it. These lookaheads ask for what must follow (a dot in one of
    # its forms) before the engine tries every way to split the word into a label: an
    # ordinary word costs one pass over its letters, and a scan a fifth to a third less,
    # with the same matches (tests/safety/test_fast_paths.py).
    _THEN_DOT = r"(?=[a-z0-9\-]*+[.\[({])"
    _THEN_SPOKEN_DOT = r"(?=[a-z0-9\-]*+[ ]{0,2}(?:[\[({<.]|d[o0]t))"
    _BARE = re.compile(
        rf"(?<![\w.@\-'/]){_THEN_DOT}"
        rf"(?P<host>(?:{LABEL}(?:\.|\[\.\]|\(\.\)|\{{\.\}})){{1,5}}{BARE_TLDS})"
        rf"(?![\w\-]|\.[a-z0-9]){_PATH}"
    )
    _SPOKEN = re.compile(
        rf"(?<![\w.@\-'/]){_THEN_SPOKEN_DOT}"
        rf"(?P<first>{LABEL})(?:{SPOKEN_DOT}{LABEL}){{0,3}}{SPOKEN_DOT}"
        rf"{SPOKEN_TLDS}(?![\w\-]){_PATH}"
    )

    def wants(self, message: Message) -> bool:
        text = message.text
        if "//" in text:
            return True
        dotted = "." in text or "dot" in message.words or (message.leet and "d0t" in text)
        return dotted and message.mentions(_URL_WORDS)

    def find(self, message: Message) -> Iterator[Finding]:
        # The passes may find the same address twice ("https://example.com" and its bare
        # domain); the detector keeps the more confident of overlapping findings.
        text = message.text
        passes = (
            (self._SCHEME, "//" in text),
            (self._BARE, "." in text),
            (self._SPOKEN, _has_spoken_dot(message)),
        )
        for pattern, wanted in passes:
            if not wanted:
                continue
            pos = 0
            while (m := pattern.search(text, pos)) is not None:
                pos = m.end()
                if pattern is self._SPOKEN and m["first"] in _NOT_A_DOMAIN:
                    continue
                start, end = m.start(), self._trim(text, m.start(), m.end())
                confidence, reason = self._explain(pattern, m.group())
                yield message.finding(message.view, self.kind, start, end, confidence, reason)

    def _explain(self, pattern: re.Pattern[str], url: str) -> tuple[float, str]:
        """Confidence and reason: a bare "name.gg" may be a username, "https://…" is not."""
        if url.startswith("hxxp"):
            return 0.95, "a web address written as 'hxxp' to hide it"
        if pattern is self._SCHEME or url.startswith("www"):
            return 0.95, "a web address"
        if pattern is self._SPOKEN:
            return 0.85, "a web address with its dots written as words or brackets"
        if "[" in url or "(" in url or "{" in url:
            return 0.9, "a web address with its dots disguised"
        return (0.9 if "/" in url else 0.8), "a web address"

    @staticmethod
    def _trim(text: str, start: int, end: int) -> int:
        """The end of the address without the sentence punctuation glued to it."""
        while end > start + 1 and text[end - 1] in _TRAILING_PUNCTUATION:
            if text[end - 1] == ")" and "(" in text[start:end]:
                break
            end -= 1
        return end
