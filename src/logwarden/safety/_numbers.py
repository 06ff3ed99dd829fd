"""Rules for identifiers made of digits: payment cards and IP addresses, and shared helpers.

Internal and unstable. Both read the digit view, as the phone rule does (``_phones``), so
"four one one one …" and "4 1 1 1 …" look like numbers to them. Candidates come from one
bounded regex each; the checks (issuer and Luhn, address ranges, ``ipaddress`` for IPv6) run
only on candidates that survive cheap shape and context tests.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from logwarden.safety._base import Finding, Message, context_before
from logwarden.safety._patterns import SPOKEN_DOT, alternation, wordset
from logwarden.safety.normalize import Normalized

__all__ = [
    "NOT_CONTACT_WORDS",
    "NUMBER_END",
    "NUMBER_NOT_CONTACT",
    "NUMBER_START",
    "CardRule",
    "IpRule",
    "digits_of",
    "is_spelled",
]

# Nothing that glues a number to a word, a decimal, a price, a path or a version.
NUMBER_START = r"(?<![\w.,/$€£¥#@+\-])"
NUMBER_END = r"(?![\w%$€£¥]|[.,]\d)"
_NON_DIGITS = re.compile(r"\D+")
# Every byte but a digit as a space: translating with a table (and dropping the spaces) costs
# two-thirds of deleting 246 bytes with ``translate``, which builds its table on every call.
_DIGITS_OR_SPACE = bytes(c if 48 <= c <= 57 else 32 for c in range(256))

# Words that, shortly before a number, make it something else (a code, an order, a level).
NOT_CONTACT_WORDS = wordset(
    """
    code order tracking track id pin zip postcode invoice ticket ref reference account acct
    serial isbn lvl level score version ver build room lobby server seed conf confirmation
    case claim sku model part item balance xp ping uid gamertag otp iban routing policy
    receipt transaction batch lot patch imei meid iccid sim
    """
)
# "order number", "ticket no", "case #": the generic word after a blocker belongs to it, so a
# blocker's match ends where a phone cue ("number") in it would.
NUMBER_NOT_CONTACT = re.compile(
    r"\b"
    + alternation(sorted(NOT_CONTACT_WORDS))
    + r"\b(?:[ ]{0,2}(?:(?:number|num|nr)\b|no\b\.?)|[ ]{0,2}#)?"
)


def digits_of(raw: str) -> str:
    """The digits of ``raw``, without its separators."""
    if raw.isascii():  # always, in a view: bytes cost a fifth of a regex ``sub``
        if raw.isdigit():  # a bare run of digits, as most candidates are
            return raw
        return raw.encode("ascii").translate(_DIGITS_OR_SPACE).replace(b" ", b"").decode("ascii")
    return _NON_DIGITS.sub("", raw)


def is_spelled(message: Message, view: Normalized, start: int, end: int) -> bool:
    """Whether digit words were spelled out in ``view.text[start:end]``."""
    if view is message.view:
        return False
    o_start, o_end = view.span(start, end)
    return any(map(str.isalpha, message.original[o_start:o_end]))


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


class CardRule:
    """Payment card numbers: a known issuer prefix, a card length and a valid Luhn digit."""

    kind = "card"
    cue_words: frozenset[str] = frozenset()  # every number has a digit or a digit word

    # A digit, or separators and a digit, per step: the digit first, as in the phone rule.
    _CANDIDATE = re.compile(rf"{NUMBER_START}\d(?:\d|[ ,.\-]{{1,3}}\d){{12,18}}{NUMBER_END}")
    # Visa, Mastercard (51-55, 2221-2720), Amex, Diners, Discover, JCB, UnionPay.
    _ISSUER = re.compile(r"4|5[1-5]|2[2-7]|3[47]|3[0689]|6(?:011|5|4[4-9]|22)|35|62")
    _GROUPED = re.compile(r"\d{4}(?:([ \-])\d{4}){2}\1\d{1,7}|\d{4}([ \-])\d{6}\2\d{4,5}")
    # Dots and commas make decimals ("2440.280644036") and thousands: they count as a card's
    # separators only between whole groups, as people write "4111.1111.1111.1111".
    _POINT = re.compile(r"\d[.,]\d")
    _POINT_GROUPED = re.compile(r"\d{4}(?:([.,])\d{4}){2}\1\d{1,7}|\d{4}([.,])\d{6}\2\d{4,5}")
    _CARD_CUE = re.compile(
        alternation(
            ["card", "visa", "mastercard", "amex", "credit", "debit", "cvv", "cvc", "expiry",
             "exp", "pay", "paypal", "bank", "discover"],
            leetspeak=True,
        )
    )  # fmt: skip

    def wants(self, message: Message) -> bool:
        return message.max_digits >= 13

    def find(self, message: Message) -> Iterator[Finding]:
        view = message.digits
        pos = 0
        while (m := self._CANDIDATE.search(view.text, pos)) is not None:
            pos = m.end()
            digits = digits_of(m.group())
            if not (13 <= len(digits) <= 19 and self._ISSUER.match(digits) and _luhn(digits)):
                continue
            cue = context_before(view.text, m.start(), self._CARD_CUE, width=40)
            if not cue and context_before(view.text, m.start(), NUMBER_NOT_CONTACT, width=30):
                continue
            # Only a point or comma right between two digits reads as a decimal or thousands
            # mark ("five five five five, five …" is a spoken list of groups).
            pointed = self._POINT.search(m.group()) is not None
            if pointed and not cue and not self._POINT_GROUPED.fullmatch(m.group()):
                continue
            grouped = self._GROUPED.fullmatch(m.group()) is not None
            spelled = is_spelled(message, view, m.start(), m.end())
            confidence = 0.8 + 0.15 * (cue or grouped or spelled)
            how = " written as words" if spelled else ""
            reason = f"a payment card number{how} (its check digit is valid)"
            yield message.finding(view, self.kind, m.start(), m.end(), confidence, reason)


class IpRule:
    """IPv4 and IPv6 addresses that could locate someone (not loopback, LAN or multicast)."""

    kind = "ip"
    cue_words: frozenset[str] = frozenset()  # an address has digits or colons

    _DOT = rf"(?:\.|{SPOKEN_DOT})"
    _V4 = re.compile(
        rf"(?<![\w.])(\d{{1,3}}){_DOT}(\d{{1,3}}){_DOT}(\d{{1,3}}){_DOT}(\d{{1,3}})(?![\w]|\.\d)"
    )
    _PLAIN_V4 = re.compile(r"[\d.]+")
    _V6 = re.compile(r"(?<![\w:.])[0-9a-f:]{2,39}(?:\d{1,3}(?:\.\d{1,3}){3})?(?![\w:.])")
    _IP_CUE = re.compile(r"\b(?:ip|ipv4|ipv6|address|addr|server|connect|join|host|vpn)\b")
    _VERSION_CUE = re.compile(
        r"\b(?:v|ver|version|build|release|update|patch|firmware|driver|minecraft|java|python"
        r"|node|android|ios|windows|chrome|firefox)\b|\bv(?=\d)"
    )
    # The IPv6 documentation network (RFC 3849) stands in for public addresses in tests.
    _DOCUMENTATION_V6 = ipaddress.ip_network("2001:db8::/32")

    def wants(self, message: Message) -> bool:
        text = message.text
        if ":" in text and ("::" in text or text.count(":") >= 7):
            return True
        return message.digit_count >= 4 and (text.count(".") >= 3 or "dot" in message.words)

    def find(self, message: Message) -> Iterator[Finding]:
        view = message.digits
        text = view.text
        pos = 0
        while (m := self._V4.search(text, pos)) is not None:
            pos = m.end()
            octets = [int(g) for g in m.groups()]
            if max(octets) > 255 or not _v4_locates(octets):
                continue
            cue = context_before(text, m.start(), self._IP_CUE, width=40)
            if not cue and (
                max(octets) < 10 or context_before(text, m.start(), self._VERSION_CUE, width=30)
            ):
                continue  # "1.2.3.4" after "version" is a version
            defanged = self._PLAIN_V4.fullmatch(m.group()) is None
            reason = "an IPv4 address" + (" with its dots disguised" if defanged else "")
            yield message.finding(view, self.kind, m.start(), m.end(), 0.8 + 0.15 * cue, reason)
        if "::" in text or text.count(":") >= 4:
            yield from self._find_v6(message, view)

    def _find_v6(self, message: Message, view: Normalized) -> Iterator[Finding]:
        pos = 0
        while (m := self._V6.search(view.text, pos)) is not None:
            pos = m.end()
            candidate = m.group()
            if candidate.count(":") < 2 or sum(c.isalnum() for c in candidate) < 3:
                continue
            if "::" not in candidate and candidate.count(":") < 7:
                continue  # times (12:30:45) and MAC-like pairs are not IPv6
            if self._locates(candidate):
                reason = "an IPv6 address"
                yield message.finding(view, self.kind, m.start(), m.end(), 0.9, reason)

    def _locates(self, candidate: str) -> bool:
        """Whether the IPv6 address is one that could point at a person's connection."""
        try:
            # Not ``ip_address``, which first fails to read it as IPv4 (it has colons), at a
            # third of the cost of reading it.
            address = ipaddress.IPv6Address(candidate)
        except ValueError:
            return False
        if address in self._DOCUMENTATION_V6:
            return True
        return address.is_global and not address.is_multicast


# Documentation networks (RFC 5737) stand in for public addresses in examples and tests.
_DOCUMENTATION_V4 = ((192, 0, 2), (198, 51, 100), (203, 0, 113))


def _v4_locates(octets: list[int]) -> bool:
    """Whether an IPv4 address could point at a person's connection.

    The same answer as ``ipaddress``'s ``is_global`` (minus multicast) for the ranges that
    matter, without building an address object: not "this network", private (RFC 1918),
    shared (CGNAT), loopback, link-local, benchmarking, multicast or reserved.
    """
    a, b, c = octets[0], octets[1], octets[2]
    if (a, b, c) in _DOCUMENTATION_V4:
        return True
    return not (
        a in (0, 10, 127)
        or a >= 224
        or (a == 100 and 64 <= b <= 127)
        or (a == 169 and b == 254)
        or (a == 172 and 16 <= b <= 31)
        or (a == 192 and b == 168)
        or (a == 192 and b == 0 and c in (0, 2))
        or (a == 198 and b in (18, 19))
    )
