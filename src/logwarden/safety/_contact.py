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


class EmailRule:
    """Email addresses, literal or with "at"/"dot" spelled out, bracketed or spaced."""

    kind = "email"

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
            judged = self._judge(m)
            if judged is None:
                # "look at jake at gmail dot com": the mailbox may start where this domain did.
                pos = m.start("domain")
                continue
            end, confidence, reason = judged
            yield message.finding(view, self.kind, m.start(), end, confidence, reason)
            pos = end

    def _judge(self, m: re.Match[str]) -> tuple[int, float, str] | None:
        """(end, confidence, reason) when the match is an email address, else None."""
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
            handle_like = any(c in local for c in "0123456789._") and len(labels) > 1
            if not (spoken_ok or provider or handle_like):
                return None
            return m.end(), 0.9, "an email address with 'at' and 'dot' written as words"
        if len(labels) < 2 and not provider:
            return None  # "name@host" with no top-level domain is no address we can reach
        if m["sign"] != "@" and not (provider or _KNOWN_TLD_RE.fullmatch(labels[-1])):
            return None  # "tiktok @dance.with.zoe": a spaced "@" needs a real ending
        if len(labels) > 1 and not labels[-1].isalpha():
            return None
        if m["bracket"] is not None or spoken_dot:
            return m.end(), 0.95, "an email address with its '@' or dots disguised"
        return m.end(), 0.95, "an email address"


# Labels that, before a spoken "dot", are ordinary words ("the dot com era", "polka dot").
_NOT_A_DOMAIN = wordset(
    """
    the a an my your to of in on at is it this that polka
    """
)
_DOT_OR_PROVIDER = PROVIDER_WORDS | {"dot"}
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

    _PATH = r"(?:/[\w\-.~%/?#=&+:@!,;*$']{0,512})?"
    _SCHEME = re.compile(r"(?<![\w])(?:h[tx]{2}ps?|ftp)(?::|\[:\])//[^\s<>\"`]{1,2048}")
    _BARE = re.compile(
        rf"(?<![\w.@\-'/])(?P<host>(?:{LABEL}(?:\.|\[\.\]|\(\.\)|\{{\.\}})){{1,5}}{BARE_TLDS})"
        rf"(?![\w\-]|\.[a-z0-9]){_PATH}"
    )
    _SPOKEN = re.compile(
        rf"(?<![\w.@\-'/])(?P<first>{LABEL})(?:{SPOKEN_DOT}{LABEL}){{0,3}}{SPOKEN_DOT}"
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
            for m in pattern.finditer(text):
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
