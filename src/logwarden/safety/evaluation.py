"""Scoring a personal-information detector against a labelled corpus of single messages.

The corpus format (``tests/data/messages.jsonl``) is one JSON object per line::

    {"text": "...", "findings": [{"kind": "phone", "start": 8, "end": 20,
                                  "obfuscated": false}, ...], "note": "optional"}

with spans as offsets into ``text``; ``obfuscated`` (optional, default false) marks values
written to get past filters. A message with no findings is a negative.

Scoring is by overlap: a predicted finding is correct when a gold finding of the same kind
overlaps it, and a gold finding is recalled when a predicted finding of the same kind
overlaps it. The test suite and ``bench/safety.py`` both use this module, so the numbers
they report are computed the same way. Overlap forgives a span that is cut short ("smith at
example dot com" for "jake dot smith at example dot com"), so ``span_exactness`` counts the
gold spans that a finding of the same kind matches exactly, start and end.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

from logwarden.safety._base import KINDS

__all__ = [
    "Errors",
    "GoldFinding",
    "KindScore",
    "LabelledMessage",
    "Span",
    "SpanExactness",
    "errors",
    "load_messages",
    "negative_precision",
    "score",
    "span_exactness",
]


class Span(Protocol):
    """Anything with a kind and a span: our ``Finding``, a gold finding, an adapter's."""

    @property
    def kind(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...


class GoldFinding(NamedTuple):
    kind: str
    start: int
    end: int
    obfuscated: bool = False


@dataclass(frozen=True, slots=True)
class LabelledMessage:
    text: str
    findings: tuple[GoldFinding, ...]
    note: str = ""


class KindScore(NamedTuple):
    """Precision, recall and F1 for one kind (1.0 where nothing was there to get wrong)."""

    precision: float
    recall: float
    f1: float


class Errors(NamedTuple):
    """What a detector got wrong on one message: spans it invented and spans it missed."""

    text: str
    false_positives: list[tuple[str, str]]  # (kind, found text)
    false_negatives: list[tuple[str, str]]  # (kind, gold text)


Detector = Callable[[str], Sequence[Span]]


def load_messages(path: str | Path) -> list[LabelledMessage]:
    """The labelled messages in a JSONL file; raises ``ValueError`` naming a bad line."""
    messages = []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            messages.append(_parse(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: {exc}") from exc
    return messages


def _parse(record: dict[str, object]) -> LabelledMessage:
    text = record["text"]
    raw = record.get("findings", [])
    if not isinstance(text, str) or not isinstance(raw, list):
        raise ValueError("'text' must be a string and 'findings' a list")
    findings = []
    for item in raw:
        gold = GoldFinding(
            str(item["kind"]), int(item["start"]), int(item["end"]), bool(item.get("obfuscated"))
        )
        if gold.kind not in KINDS or not 0 <= gold.start < gold.end <= len(text):
            raise ValueError(f"bad finding {item!r}")
        findings.append(gold)
    return LabelledMessage(text, tuple(findings), str(record.get("note", "")))


def _overlaps(a: Span, b: Span) -> bool:
    return a.kind == b.kind and a.start < b.end and b.start < a.end


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 1.0


def score(
    detect: Detector, messages: Iterable[LabelledMessage], *, kinds: Sequence[str] = KINDS
) -> dict[str, KindScore]:
    """Per-kind precision, recall and F1 of ``detect`` over ``messages`` (overlap matching)."""
    correct = dict.fromkeys(kinds, 0)
    predicted = dict.fromkeys(kinds, 0)
    recalled = dict.fromkeys(kinds, 0)
    gold = dict.fromkeys(kinds, 0)
    for message in messages:
        found = [f for f in detect(message.text) if f.kind in correct]
        for f in found:
            predicted[f.kind] += 1
            correct[f.kind] += any(_overlaps(f, g) for g in message.findings)
        for g in message.findings:
            if g.kind in gold:
                gold[g.kind] += 1
                recalled[g.kind] += any(_overlaps(f, g) for f in found)
    scores = {}
    for kind in kinds:
        p = _ratio(correct[kind], predicted[kind])
        r = _ratio(recalled[kind], gold[kind])
        scores[kind] = KindScore(p, r, 2 * p * r / (p + r) if p + r else 0.0)
    return scores


def negative_precision(detect: Detector, messages: Iterable[LabelledMessage]) -> float:
    """The share of negative messages (no gold findings) on which ``detect`` finds nothing."""
    negatives = [m for m in messages if not m.findings]
    clean = sum(1 for m in negatives if not detect(m.text))
    return _ratio(clean, len(negatives))


def errors(detect: Detector, messages: Iterable[LabelledMessage]) -> list[Errors]:
    """Every message on which ``detect`` disagrees with the labels, for reading."""
    out = []
    for message in messages:
        found = list(detect(message.text))
        fps = [
            (f.kind, message.text[f.start : f.end])
            for f in found
            if not any(_overlaps(f, g) for g in message.findings)
        ]
        fns = [
            (g.kind, message.text[g.start : g.end])
            for g in message.findings
            if not any(_overlaps(f, g) for f in found)
        ]
        if fps or fns:
            out.append(Errors(message.text, fps, fns))
    return out


class SpanExactness(NamedTuple):
    """How many gold spans a finding of the same kind matched exactly, and the others."""

    exact: int
    total: int
    inexact: list[tuple[str, str, list[str]]]  # (kind, gold text, overlapping found texts)


def span_exactness(detect: Detector, messages: Iterable[LabelledMessage]) -> SpanExactness:
    """Gold findings whose exact span ``detect`` finds with the same kind, and those it does
    not (missed, or found with a different span)."""
    exact = total = 0
    inexact = []
    for message in messages:
        found = list(detect(message.text))
        for g in message.findings:
            total += 1
            if any((f.kind, f.start, f.end) == (g.kind, g.start, g.end) for f in found):
                exact += 1
                continue
            near = [message.text[f.start : f.end] for f in found if _overlaps(f, g)]
            inexact.append((g.kind, message.text[g.start : g.end], near))
    return SpanExactness(exact, total, inexact)
