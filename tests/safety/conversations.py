"""The labelled conversation corpus (tests/data/conversations.jsonl): loader and evaluator.

Run ``.venv/bin/python -m tests.safety.conversations`` from the repository root for the report:
per-flag precision and recall, the level confusion matrix, every mismatch, and the scorer's
cost per message (phrases only, and with the PII detector).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from logwarden.safety.scoring import (
    FLAGS,
    Assessment,
    ConversationRisk,
    Detector,
    FindingLike,
    Level,
    score_conversation,
)

CORPUS = Path(__file__).resolve().parents[1] / "data" / "conversations.jsonl"
LEVELS: tuple[Level, ...] = ("low", "medium", "high")


@dataclass(frozen=True)
class Conversation:
    id: str
    messages: tuple[tuple[str, str], ...]
    level: Level
    flags: frozenset[str]
    note: str


def load(path: Path = CORPUS) -> list[Conversation]:
    """Every conversation of the corpus, checked for shape as it is read."""
    conversations = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        record = json.loads(line)
        label = record["label"]
        assert label["level"] in LEVELS, f"line {number}: level {label['level']!r}"
        assert set(label["flags"]) <= set(FLAGS), f"line {number}: flags {label['flags']}"
        conversations.append(
            Conversation(
                id=record["id"],
                messages=tuple((sender, text) for sender, text in record["messages"]),
                level=label["level"],
                flags=frozenset(label["flags"]),
                note=record["note"],
            )
        )
    return conversations


@dataclass
class Evaluation:
    """What the scorer made of the corpus, against its labels."""

    results: list[tuple[Conversation, Assessment]]
    # confusion[labelled][scored]: how many conversations
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.confusion = {want: dict.fromkeys(LEVELS, 0) for want in LEVELS}
        for conversation, assessment in self.results:
            self.confusion[conversation.level][assessment.level] += 1

    def of(self, conversation_id: str) -> Assessment:
        """The assessment of one conversation."""
        return next(a for c, a in self.results if c.id == conversation_id)

    def counts(self, flag: str) -> tuple[int, int, int]:
        """True positives, false positives and false negatives of one flag."""
        tp = fp = fn = 0
        for conversation, assessment in self.results:
            labelled, scored = flag in conversation.flags, flag in assessment.flags
            tp += labelled and scored
            fp += scored and not labelled
            fn += labelled and not scored
        return tp, fp, fn

    def precision(self, flag: str) -> float:
        tp, fp, _ = self.counts(flag)
        return tp / (tp + fp) if tp + fp else 1.0

    def recall(self, flag: str) -> float:
        tp, _, fn = self.counts(flag)
        return tp / (tp + fn) if tp + fn else 1.0

    @property
    def level_accuracy(self) -> float:
        right = sum(self.confusion[level][level] for level in LEVELS)
        return right / len(self.results)

    def mismatches(self) -> list[tuple[Conversation, Assessment]]:
        return [(c, a) for c, a in self.results if c.level != a.level or c.flags != set(a.flags)]


def evaluate(
    conversations: Iterable[Conversation], *, detector: Detector | None = None
) -> Evaluation:
    """Score every conversation (with ``detector``, by default the package's PII detector)."""
    return Evaluation(
        [(c, score_conversation(c.messages, detector=detector)) for c in conversations]
    )


def no_findings(_text: str) -> Sequence[FindingLike]:
    """A detector that finds nothing: phrases alone."""
    return ()


def cost_per_message(
    conversations: Sequence[Conversation], detector: Callable[[str], Sequence[FindingLike]]
) -> float:
    """Microseconds the scorer spends per message on average (findings computed beforehand)."""
    prepared = [[(s, t, detector(t)) for s, t in c.messages] for c in conversations]
    count = sum(len(p) for p in prepared)
    best = float("inf")
    for _ in range(20):
        start = time.perf_counter()
        for messages in prepared:
            risk = ConversationRisk()
            for sender, text, findings in messages:
                risk.observe(sender, text, findings)
        best = min(best, time.perf_counter() - start)
    return best / count * 1e6


def report(evaluation: Evaluation) -> str:
    """The evaluation as text: per-flag precision/recall, confusion matrix, mismatches."""
    lines = [f"{len(evaluation.results)} conversations", "", "flag          P     R   tp fp fn"]
    for flag in FLAGS:
        tp, fp, fn = evaluation.counts(flag)
        lines.append(
            f"{flag:<12} {evaluation.precision(flag):.2f}  {evaluation.recall(flag):.2f}"
            f"  {tp:>3} {fp:>2} {fn:>2}"
        )
    lines += ["", "labelled \\ scored   low  medium  high"]
    for want in LEVELS:
        row = evaluation.confusion[want]
        lines.append(f"{want:<18} {row['low']:>4} {row['medium']:>7} {row['high']:>5}")
    lines += ["", f"level accuracy {evaluation.level_accuracy:.3f}", ""]
    for c, a in evaluation.mismatches():
        lines.append(
            f"MISMATCH {c.id} ({c.note}): labelled {c.level} {sorted(c.flags)}, "
            f"scored {a.level} {list(a.flags)} {a.score}"
        )
    return "\n".join(lines)


def _main() -> None:
    conversations = load()
    counts: dict[str, int] = {"benign (no flags)": 0}
    for c in conversations:
        for flag in c.flags or ["benign (no flags)"]:
            counts[flag] = counts.get(flag, 0) + 1
    print("corpus:", ", ".join(f"{k} {v}" for k, v in counts.items()))
    print("phrases only --------------------------------")
    print(report(evaluate(conversations, detector=no_findings)))
    print(f"cost: {cost_per_message(conversations, no_findings):.1f} us/message")
    try:
        from logwarden.safety.pii import detect
    except ImportError:
        print("(no PII detector yet)")
        return
    print("with the PII detector -----------------------")
    print(report(evaluate(conversations)))
    print(f"cost: {cost_per_message(conversations, detect):.1f} us/message (scorer only)")


if __name__ == "__main__":
    _main()
