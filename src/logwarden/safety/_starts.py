"""How a regular expression's matches can begin: the gate in front of each risk indicator.

Internal. ``starts(pattern, width)`` lists every way a match of ``pattern`` can begin, cut to
``width`` characters, read from the pattern's parse tree. Each indicator's search puts them in
a lookahead right after the space a match starts at (``indicators.py``): at most words the
lookahead fails at once, where the regex engine would otherwise try every alternative of
every phrase in turn; a scan of everyday chat costs about 40% less (docs/BENCHMARKS.md).
``gated(pattern)`` does the same with the first character for the personal-information
rules' long alternations of words (platform names, digit words, "i'm …").

Why by hand: no library lists a regex's possible prefixes. The parse tree comes from
``re._parser``, CPython's own parser (private, but the same module ``re`` compiles with);
anything it is not sure about (a construct it does not know, a set too large, a parser that
changed) gives ``None``, and the indicator is then searched in every message, as without the
gate. ``tests/safety/test_indicators.py`` and ``test_fast_paths.py`` check that the gates
never change a match.
"""

from __future__ import annotations

import re
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]
from typing import Any

__all__ = ["gated", "starts"]

_MAX_STARTS = 2_000  # beginnings kept per pattern before giving up


class _Unknown(Exception):
    """The pattern holds something whose beginnings are not worked out here."""


def starts(pattern: str, width: int) -> frozenset[str] | None:
    """Every beginning of a match of ``pattern``, cut to ``width`` characters (shorter where
    a match can end sooner); ``None`` if they cannot be listed, or if a match can be empty."""
    try:
        found = _sequence(_parser.parse(pattern), width)
    except Exception:  # _Unknown, or a surprise of the private parser: no gate
        return None
    return None if "" in found else frozenset(found)


def gated(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled behind a lookahead of the characters its matches can begin with.

    A search tries the pattern at every position of the text, and a pattern that starts with
    a long alternation of words tries each of them there in turn. Behind the lookahead, a
    position whose character begins no match costs one class test: a scan of everyday chat
    costs a sixth to a third less. The matches are the same, since the lookahead refuses only
    positions where none can start. When the characters cannot be listed (``starts`` gives
    ``None``), the pattern is compiled as it is.
    """
    first = starts(pattern, 1)
    if first is None:
        return re.compile(pattern)
    return re.compile("(?=[" + "".join(map(re.escape, sorted(first))) + "])" + pattern)


def _sequence(items: Any, width: int) -> set[str]:
    found = {""}
    for op, arg in items:
        if all(len(text) >= width for text in found):
            break  # what follows cannot change the first ``width`` characters
        options = _item(op, arg, width)
        found = {
            (text + option)[:width] if len(text) < width else text
            for text in found
            for option in options
        }
        if len(found) > _MAX_STARTS:
            raise _Unknown
    return found


def _item(op: Any, arg: Any, width: int) -> set[str]:
    if op is sre.LITERAL:
        return {chr(arg)}
    if op is sre.SUBPATTERN:
        return _sequence(arg[3], width)
    if op is sre.BRANCH:
        return set().union(*(_sequence(branch, width) for branch in arg[1]))
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        least, most, body = arg
        return _repeat(least, most, body, width)
    if op in (sre.ASSERT, sre.ASSERT_NOT, sre.AT):
        return {""}  # zero-width: it only narrows where a match can be
    if op is sre.IN:
        return set(_characters(arg))
    raise _Unknown


def _repeat(least: int, most: int, body: Any, width: int) -> set[str]:
    once = _sequence(body, width)
    found = {""} if least == 0 else set()
    texts = {""}
    # After max(least, width) rounds every beginning is there: a longer repetition starts
    # like one of these, since each non-empty round adds a character.
    for rounds in range(1, min(most, max(least, width)) + 1):
        texts = {(a + b)[:width] for a in texts for b in once}
        if len(texts) > _MAX_STARTS:
            raise _Unknown
        if rounds >= least:
            found |= texts
    return found


def _characters(members: Any) -> frozenset[str]:
    chars: set[str] = set()
    for op, arg in members:
        if op is sre.NEGATE:
            raise _Unknown
        if op is sre.LITERAL:
            chars.add(chr(arg))
        elif op is sre.RANGE:
            chars.update(map(chr, range(arg[0], arg[1] + 1)))
        else:  # categories too: ``\d`` is every Unicode digit, not a short list
            raise _Unknown
            raise _Unknown
    return frozenset(chars)
