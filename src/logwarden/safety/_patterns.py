"""Regex fragments and word lists shared by several rules. Internal and unstable.

Every fragment here has bounded repetition (or repeats a class disjoint from what follows),
so no pattern built from them can backtrack catastrophically: matching stays linear in the
message length.
"""

from __future__ import annotations

from logwarden.safety.normalize import leet

__all__ = [
    "BARE_TLDS",
    "DOT",
    "DOT_STRICT",
    "LABEL",
    "PROVIDERS",
    "PROVIDER_WORDS",
    "SPOKEN_DOT",
    "SPOKEN_TLDS",
    "TLD_WORDS",
    "alternation",
    "wordset",
]


def wordset(text: str) -> frozenset[str]:
    """The whitespace-separated words of ``text``: long word lists stay readable as prose."""
    return frozenset(text.split())


def alternation(words: list[str] | tuple[str, ...], *, leetspeak: bool = False) -> str:
    """``(?:w1|w2|…)``, longest first so that a longer word wins over its prefix."""
    ordered = sorted(words, key=len, reverse=True)
    return "(?:" + "|".join(leet(w) if leetspeak else w for w in ordered) + ")"


# A dot between labels of a domain, as typed to get past filters: "[.]", "(dot)", " dot ".
SPOKEN_DOT = (
    r"(?:[ ]{0,2}[\[({<][ ]{0,2}(?:\.|d[o0]t)[ ]{0,2}[\])}>][ ]{0,2}"
    r"|[ ]{1,2}d[o0]t[ ]{1,2}|[ ]{1,2}\.[ ]{1,2})"
)
DOT_STRICT = r"(?:\.|\[\.\]|\(\.\)|\{\.\})"
DOT = rf"(?:{SPOKEN_DOT}|\.)"

# One label of a domain name.
LABEL = r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?"

# Mail providers people name without the top-level domain ("jake at gmail").
_PROVIDER_LIST = [
    "gmail", "googlemail", "yahoo", "hotmail", "outlook", "icloud", "protonmail", "proton",
    "aol", "gmx", "yandex", "zoho",
]  # fmt: skip
PROVIDERS = alternation(_PROVIDER_LIST, leetspeak=True)
PROVIDER_WORDS = frozenset(_PROVIDER_LIST)

# Top-level domains we accept after a spoken or bracketed dot ("example dot com").
_SPOKEN_TLD_LIST = [
    "com", "net", "org", "edu", "gov", "io", "co", "uk", "us", "ca", "au", "de", "fr",
    "info", "biz", "me", "tv", "gg", "app", "dev", "xyz", "ly", "example",
]  # fmt: skip
SPOKEN_TLDS = alternation(_SPOKEN_TLD_LIST)

# Top-level domains we accept for a bare domain after a literal dot ("example.com/x").
# Left out on purpose: ones that are also file extensions or English words glued to a
# full stop ("report.pdf" is not a TLD anyway, but "main.py", "run.sh", "file.zip",
# "yes.no", "do.it", "log.in", "trust.me", "so.so" would all be).
_BARE_TLD_LIST = [
    "com", "net", "org", "edu", "gov", "io", "co", "uk", "ca", "au", "de", "fr", "nl",
    "eu", "ru", "jp", "info", "biz", "tv", "gg", "app", "dev", "xyz", "ly", "link",
    "site", "online", "store", "shop", "club", "live", "blog", "tech", "example",
]  # fmt: skip
BARE_TLDS = alternation(_BARE_TLD_LIST)
# Every top-level domain either list accepts: a message without one has no domain name.
TLD_WORDS = frozenset(_SPOKEN_TLD_LIST) | frozenset(_BARE_TLD_LIST)
