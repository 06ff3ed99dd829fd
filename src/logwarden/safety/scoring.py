"""Conversation risk: one scorer per session, updated with every message.

Risk lives in patterns across a conversation, not in single messages (Roblox Sentinel and
Microsoft's Project Artemis both score conversations). Each message is folded and scanned
once against the indicator lexicon (``indicators.py``); what it matches is added to a
per-sender accumulator; the assessment is recomputed from the accumulators.

**Signals.** A message can raise

- an *indicator* hit: a phrase family such as ``grooming.secrecy/dont_tell_parents``
  (weights in ``indicators.py``, in score points);
- a *minor disclosure*: an ``age`` finding from the PII detector (the sender says they are
  under 18, or names their school grade or school), or a reply of an age from 10 to 17
  ("14", "14 wbu") within 3 messages of the other person asking an age, which no
  per-message detector can read as an age. It never decays: a minor stays a minor;
- a *contact* hit: a ``handle``, ``phone`` or ``email`` finding counts as the grooming family
  ``grooming.platform_move`` (10 points): sharing an account elsewhere moves the chat off the
  platform, where nobody can see it.

**Accumulation and decay**, per (sender, indicator). Grooming and sextortion indicators
*saturate*: their value is the strongest phrase seen (asking an age five times is not five
times the evidence). Solicitation and harassment are *cumulative*: each message adds its
weight (repetition is the harm). An insult in a message that laughs at itself ("lol", "jk")
counts half: banter between friends. Decay runs in messages, not seconds, so a slow
conversation loses nothing by being slow: an indicator keeps its full value for
``grace_messages`` (60) messages after its last hit, then halves every
``half_life_messages`` (30). An indicator is *live* while it keeps at least half its value,
i.e. within 90 messages of its last hit by default.

**Rules** (per sender S; "minor other" = another participant disclosed being a minor):

1. minor disclosure: flag ``minor``; +40 points; at least medium.
2. grooming points of S = the sum of S's grooming families (each 8 to 25 points), doubled when
   there is a minor other and S has not said they are a minor too. Flag ``grooming`` when the
   undoubled sum reaches 40 (several families: age + platform + pictures is 30, not enough;
   secrecy + isolation is 45), or when there is a minor other, S has not said they are a
   minor, and S shows any live grooming family other than asking an age. Grooming means high.
   Two self-declared minors asking each other for their socials is how teenagers make friends,
   not grooming; an adult who claims to be a minor loses only the amplifier, since their
   families still count and can still reach 40, and the ``minor`` flag stays.
3. sextortion: S has a live threat to share images or messages (``sextortion.threat``, which
   includes leverage such as "I saved our chat") *and* a live demand (``sextortion.demand``),
   in any order. Flag ``sextortion``; 100 points; high. A threat alone is harassment (45
   points; leverage alone 10); a demand alone is 10 points and no flag.
4. solicitation: any live ``solicitation.explicit`` hit by S. Flag ``solicitation``; 50 points
   a message, doubled with a minor other; at least medium, high with a minor other. This
   amplifier stays whoever asks: a request for private pictures from a minor is harmful
   whether or not the person asking is (or says they are) a minor too.
5. harassment: insults (20 a message), threats of violence and urging self-harm (60 each),
   and a threat to expose without a demand (45), summed. Flag ``harassment`` from 40 points
   (two insults, or one threat); at least medium; high when violence or self-harm is live.

The score is the sum of all points, capped at 100, and then raised to the threshold of the
lowest level the rules demand: so ``level`` always agrees with ``score`` and the thresholds.
Levels: low < ``medium`` (30) <= medium < ``high`` (70) <= high.

``RiskPolicy.decide`` turns an assessment into what the chat server does: flag the session
for review, preserve it (the reported retention class), end the chat, show a safety message.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Literal, Protocol

from logwarden.errors import ConfigError
from logwarden.safety.indicators import AGE_ANSWER, DEFAULT_LEXICON, Lexicon, Phrase, fold
from logwarden.safety.pii import detect

__all__ = [
    "FLAGS",
    "SAFETY_MESSAGE",
    "Assessment",
    "ConversationRisk",
    "Decision",
    "Detector",
    "FindingLike",
    "Level",
    "Reason",
    "RiskPolicy",
    "score_conversation",
]

Level = Literal["low", "medium", "high"]
FLAGS = ("minor", "grooming", "sextortion", "solicitation", "harassment")  # reporting order

# For everyone the policy notifies: an adult threatened for money, and a minor who got past
# the age gate (the people this matters most for), so it names no age and no country.
SAFETY_MESSAGE = (
    "If someone is pressuring or threatening you, you are not in trouble. Stop replying, and "
    "don't pay or send anything. Keep your receipt for this chat, and talk to someone you "
    "trust: a parent, a friend, or a local helpline."
)

_LOW, _MEDIUM, _HIGH = 0, 1, 2
_CONTACT_KINDS = frozenset({"handle", "phone", "email"})
_CONTACT_INDICATOR = "grooming.platform_move"
_CONTACT = Phrase("contact_shared", "", 10, "shares an account or number elsewhere")
_SEVERE = frozenset({"harassment.violence", "harassment.self_harm"})
_HARASSMENT = ("harassment.insult", "harassment.violence", "harassment.self_harm")
_HARASSMENT_OR_THREAT = (*_HARASSMENT, "sextortion.threat")
_DISCLOSED = Phrase("age", "", 0, "says they are under 18 (age, school grade or school)")
_ANSWERED = Phrase("age_answer", "", 0, "answers an age question with an age under 18")
_ANSWER_WINDOW = 3  # messages after an age question in which a bare "14" answers it
_HITS_KEPT = 4  # reasons kept per (sender, indicator): the latest few explain the score
_FORGET_BELOW = 0.01  # an indicator decayed below 1 % of its value is dropped from memory


class FindingLike(Protocol):
    """What the scorer reads from a PII finding (``logwarden.safety.Finding`` is one)."""

    @property
    def kind(self) -> str: ...


Detector = Callable[[str], Sequence[FindingLike]]


@dataclass(frozen=True, slots=True)
class Reason:
    """Why the score moved: which message (0-based index), whose, which indicator and phrase
    family, in words. Never the message text."""

    index: int
    sender: str
    indicator: str  # "grooming.secrecy", "minor.age"
    phrase: str  # the phrase family id: "dont_tell_parents"
    why: str

    def as_json(self) -> dict[str, object]:
        """``{"message", "sender", "indicator", "phrase", "why"}``."""
        return {
            "message": self.index,
            "sender": self.sender,
            "indicator": self.indicator,
            "phrase": self.phrase,
            "why": self.why,
        }


@dataclass(frozen=True, slots=True)
class Assessment:
    """A conversation's risk after its latest message.

    ``score`` runs from 0 to 100. ``flags`` names escalations only, in ``FLAGS`` order, and is
    empty when there are none. ``reasons`` are ordered by message. ``at_risk`` names the
    participants a safety message is for: disclosed minors and the targets of a flagged sender.
    """

    score: float
    level: Level
    flags: tuple[str, ...] = ()
    reasons: tuple[Reason, ...] = ()
    at_risk: tuple[str, ...] = ()

    def as_json(self) -> dict[str, object]:
        """The stable form of docs/safety.md: ``{"score", "level", "flags", "reasons"}``,
        the score rounded to one decimal and each reason as ``Reason.as_json``."""
        return {
            "score": round(self.score, 1),
            "level": self.level,
            "flags": list(self.flags),
            "reasons": [reason.as_json() for reason in self.reasons],
        }


_QUIET = Assessment(0.0, "low")
_BY_MESSAGE = attrgetter("index", "indicator")


def _minor(index: int, sender: str, phrase: Phrase) -> Reason:
    return Reason(index, sender, "minor.age", phrase.id, phrase.why)


@dataclass(frozen=True, slots=True)
class Decision:
    """What the chat server should do about a session now.

    ``review``: put it in the moderators' queue. ``preserve``: move it to the reported
    retention class. ``end_chat``: end the chat. ``notify``: the safety message to show to each
    of ``notify_senders``, or ``None``. ``decide`` is pure: the server acts on changes.
    """

    review: bool = False
    preserve: bool = False
    end_chat: bool = False
    notify: str | None = None
    notify_senders: tuple[str, ...] = ()


def _flags(*names: str) -> frozenset[str]:
    return frozenset(names)


@dataclass(frozen=True, slots=True)
class RiskPolicy:
    """How risk is scored and what each level and flag sets off. Raises ``ConfigError`` when a
    threshold is out of order or a flag name is unknown."""

    medium: float = 30.0  # score points at which a conversation is medium
    high: float = 70.0  # ... and high
    review_on: frozenset[str] = field(default_factory=lambda: frozenset(FLAGS))
    review_at_high: bool = True
    # Evidence of exploitation or extortion is kept; harassment goes to review only, because
    # preserving keeps both people's words for longer.
    preserve_on: frozenset[str] = field(
        default_factory=lambda: _flags("minor", "grooming", "sextortion", "solicitation")
    )
    preserve_at_high: bool = True
    end_chat_on: frozenset[str] = field(default_factory=lambda: _flags("sextortion"))
    end_chat_on_minor_at_high: bool = True  # a minor in a high-risk chat: end it
    notify_on: frozenset[str] = field(default_factory=lambda: _flags("sextortion", "grooming"))
    safety_message: str = SAFETY_MESSAGE  # also shown whenever the chat is ended
    grace_messages: int = 60  # messages an indicator keeps its full value after its last hit
    half_life_messages: float = 30.0  # then it halves every this many messages
    grooming_points: float = 40.0  # one sender's grooming families needed for the flag
    harassment_points: float = 40.0  # one sender's harassment needed for the flag
    minor_points: float = 40.0  # a disclosed minor adds this much
    minor_multiplier: float = 2.0  # grooming and solicitation aimed at a minor count this often
    max_scan_chars: int = 10_000  # characters of a message read (the chat allows at most 10k)

    def __post_init__(self) -> None:
        if not 0 < self.medium < self.high <= 100:
            raise ConfigError(
                f"risk thresholds need 0 < medium < high <= 100, got {self.medium}, {self.high}"
            )
        for name in ("review_on", "preserve_on", "end_chat_on", "notify_on"):
            unknown = set(getattr(self, name)) - set(FLAGS)
            if unknown:
                raise ConfigError(f"risk policy {name} names unknown flags {sorted(unknown)}")
        if self.grace_messages < 0 or self.half_life_messages <= 0 or self.max_scan_chars < 1:
            raise ConfigError("risk decay and scan limits must be positive")

    def level_of(self, score: float) -> Level:
        """The level a score falls in under these thresholds."""
        if score >= self.high:
            return "high"
        return "medium" if score >= self.medium else "low"

    def threshold(self, level: int) -> float:
        """The lowest score of a level given as 0 (low), 1 (medium) or 2 (high)."""
        return (0.0, self.medium, self.high)[level]

    def decide(self, assessment: Assessment) -> Decision:
        """What to do about a conversation with this assessment."""
        flags = set(assessment.flags)
        high = assessment.level == "high"
        end_chat = bool(flags & self.end_chat_on) or (
            self.end_chat_on_minor_at_high and high and "minor" in flags
        )
        notify = end_chat or bool(flags & self.notify_on)
        return Decision(
            review=bool(flags & self.review_on) or (self.review_at_high and high),
            preserve=bool(flags & self.preserve_on) or (self.preserve_at_high and high),
            end_chat=end_chat,
            notify=self.safety_message if notify else None,
            notify_senders=assessment.at_risk if notify else (),
        )


@dataclass(slots=True)
class _Trace:
    """One sender's accumulator for one indicator."""

    value: float  # points at the last hit, before decay
    last: int  # index of the last hit
    hits: deque[Reason]  # the latest few, made once: reassessing builds no objects


@dataclass(slots=True)
class _Tally:
    """What the rules make of the accumulators, gathered over all senders."""

    points: float = 0.0
    floor: int = _LOW
    flags: set[str] = field(default_factory=set)
    reasons: list[Reason] = field(default_factory=list)
    at_risk: set[str] = field(default_factory=set)

    def flag(self, name: str, floor: int) -> None:
        self.flags.add(name)
        self.floor = max(self.floor, floor)


class ConversationRisk:
    """The risk scorer of one session. Feed it every message, in order, with the PII findings
    of that message; it never raises on any text."""

    def __init__(
        self,
        policy: RiskPolicy | None = None,
        *,
        lexicon: Lexicon = DEFAULT_LEXICON,
        participants: Sequence[str] = (),
    ):
        """``participants`` names everyone in the conversation, so that one who has not said
        anything yet can still be the target a safety message is for."""
        self.policy = policy if policy is not None else RiskPolicy()
        self._lexicon = lexicon
        self._count = 0
        self._senders: dict[str, dict[str, _Trace]] = {}
        self._minors: dict[str, Reason] = {}  # sender -> their first disclosure
        self._age_question: tuple[str, int] | None = None  # (asker, index) of the latest
        self._speakers: set[str] = set(participants)
        self._assessment = _QUIET
        self._steady_until = sys.maxsize  # last index at which no indicator has begun to decay

    @property
    def assessment(self) -> Assessment:
        """The assessment after the latest message."""
        return self._assessment

    @property
    def messages(self) -> int:
        """How many messages have been observed."""
        return self._count

    def decide(self) -> Decision:
        """``policy.decide`` of the current assessment."""
        return self.policy.decide(self._assessment)

    def observe(self, sender: str, text: str, findings: Sequence[FindingLike] = ()) -> Assessment:
        """Add one message (``sender`` is an opaque participant id) and reassess."""
        index = self._count
        self._count += 1
        self._speakers.add(sender)
        # Findings first: the detector's own reason for a minor wins over an inferred one.
        changed = self._read_findings(sender, index, findings)
        changed |= self._scan(sender, index, text)
        # Without a new hit the assessment can only change once something starts to decay:
        # most messages cost no reassessment at all.
        if changed or index > self._steady_until:
            self._assessment = self._assess(index)
        return self._assessment

    # -- recording ---------------------------------------------------------------------

    def _scan(self, sender: str, index: int, text: str) -> bool:
        folded = fold(text, max_chars=self.policy.max_scan_chars)
        answered = self._answers_age_question(sender, index, folded)
        hits = self._lexicon.scan(folded)
        for indicator, phrase in hits:
            weight = phrase.weight
            if indicator.name == "harassment.insult" and self._lexicon.is_banter(folded):
                weight /= 2
            elif indicator.name == "grooming.age_probe":
                self._age_question = (sender, index)
            self._record(sender, index, indicator.name, phrase, weight, indicator.cumulative)
        return answered or bool(hits)

    def _answers_age_question(self, sender: str, index: int, folded: str) -> bool:
        """A reply of "14" to the other person's age question is a minor disclosure."""
        asked = self._age_question
        if asked is None or asked[0] == sender or index - asked[1] > _ANSWER_WINDOW:
            return False
        if AGE_ANSWER.match(folded) is None:
            return False
        self._minors.setdefault(sender, _minor(index, sender, _ANSWERED))
        return True

    def _read_findings(self, sender: str, index: int, findings: Sequence[FindingLike]) -> bool:
        changed = False
        for finding in findings:
            if finding.kind == "age":
                self._minors.setdefault(sender, _minor(index, sender, _DISCLOSED))
                changed = True
            elif finding.kind in _CONTACT_KINDS:
                self._record(sender, index, _CONTACT_INDICATOR, _CONTACT, _CONTACT.weight, False)
                changed = True
        return changed

    def _record(
        self,
        sender: str,
        index: int,
        indicator: str,
        phrase: Phrase,
        weight: float,
        cumulative: bool,
    ) -> None:
        """Add one hit of ``indicator`` by ``sender`` at message ``index``."""
        traces = self._senders.setdefault(sender, {})
        trace = traces.get(indicator)
        if trace is None:
            trace = _Trace(0.0, index, deque(maxlen=_HITS_KEPT))
            traces[indicator] = trace
        if trace.hits and trace.hits[-1].index == index:
            return  # two phrases of one indicator in one message count once
        kept = trace.value * self._decay(index - trace.last)
        trace.value = kept + weight if cumulative else max(kept, weight)
        trace.last = index
        trace.hits.append(Reason(index, sender, indicator, phrase.id, phrase.why))

    def _decay(self, age: int) -> float:
        """The share of its value an indicator keeps ``age`` messages after its last hit."""
        over = age - self.policy.grace_messages
        return 1.0 if over <= 0 else 0.5 ** (over / self.policy.half_life_messages)

    # -- assessing ---------------------------------------------------------------------

    def _assess(self, now: int) -> Assessment:
        tally = _Tally()
        if self._minors:
            tally.points += self.policy.minor_points
            tally.flag("minor", _MEDIUM)
            tally.at_risk.update(self._minors)
            tally.reasons.extend(self._minors.values())
        for sender in list(self._senders):
            self._assess_sender(sender, now, tally)
        lasts = [t.last for traces in self._senders.values() for t in traces.values()]
        self._steady_until = min(lasts) + self.policy.grace_messages if lasts else sys.maxsize
        score = max(min(tally.points, 100.0), self.policy.threshold(tally.floor))
        tally.reasons.sort(key=_BY_MESSAGE)
        return Assessment(
            score=round(score, 2),
            level=self.policy.level_of(score),
            flags=tuple(f for f in FLAGS if f in tally.flags),
            reasons=tuple(tally.reasons),
            at_risk=tuple(sorted(tally.at_risk)),
        )

    def _decayed(self, sender: str, now: int, tally: _Tally) -> tuple[dict[str, float], set[str]]:
        """``sender``'s indicators: decayed values and which are live; forgets the faded and
        notes the reasons of the rest."""
        traces = self._senders[sender]
        values: dict[str, float] = {}
        live: set[str] = set()
        for name, trace in list(traces.items()):
            share = self._decay(now - trace.last)
            if share < _FORGET_BELOW:
                del traces[name]
                continue
            values[name] = trace.value * share
            # Only live indicators drive flags; faded ones add their points while they last.
            if share >= 0.5:
                live.add(name)
            tally.reasons.extend(trace.hits)
        if not traces:
            del self._senders[sender]
        return values, live

    def _assess_sender(self, sender: str, now: int, tally: _Tally) -> None:
        values, live = self._decayed(sender, now, tally)
        minor_other = any(m != sender for m in self._minors)
        # Grooming is an adult's pattern: between two people who both say they are minors,
        # "do you have insta" is how teenagers make friends. The sender may lie about their
        # age, so only the amplifier goes: their grooming families still count at face value
        # and can still reach the grooming bar. Solicitation keeps it (rule 4 above).
        grooming_a_minor = minor_other and sender not in self._minors
        # Every rule runs (each adds points); any flag raised makes the others targets.
        flagged = [
            self._grooming(values, live, grooming_a_minor, tally),
            self._sextortion(values, live, tally),
            self._solicitation(values, live, minor_other, tally),
        ]
        flagged.append(self._harassment(values, live, tally, extorting=flagged[1]))
        if any(flagged):
            tally.at_risk.update(s for s in self._speakers if s != sender)

    def _grooming(
        self, values: dict[str, float], live: set[str], minor_other: bool, tally: _Tally
    ) -> bool:
        families = [k for k in values if k.startswith("grooming.")]
        total = sum(values[k] for k in families)
        tally.points += total * (self.policy.minor_multiplier if minor_other else 1.0)
        aimed_at_minor = minor_other and any(
            k in live and k != "grooming.age_probe" for k in families
        )
        if total >= self.policy.grooming_points or aimed_at_minor:
            tally.flag("grooming", _HIGH)
            return True
        return False

    def _sextortion(self, values: dict[str, float], live: set[str], tally: _Tally) -> bool:
        if {"sextortion.threat", "sextortion.demand"} <= live:
            tally.points += 100.0
            tally.flag("sextortion", _HIGH)
            return True
        tally.points += values.get("sextortion.demand", 0.0)  # a lone threat is harassment
        return False

    def _solicitation(
        self, values: dict[str, float], live: set[str], minor_other: bool, tally: _Tally
    ) -> bool:
        value = values.get("solicitation.explicit", 0.0)
        tally.points += value * (self.policy.minor_multiplier if minor_other else 1.0)
        if "solicitation.explicit" in live:
            tally.flag("solicitation", _HIGH if minor_other else _MEDIUM)
            return True
        return False

    def _harassment(
        self, values: dict[str, float], live: set[str], tally: _Tally, *, extorting: bool
    ) -> bool:
        parts = _HARASSMENT if extorting else _HARASSMENT_OR_THREAT
        tally.points += sum(values.get(k, 0.0) for k in parts)
        if sum(values[k] for k in parts if k in live) < self.policy.harassment_points:
            return False
        tally.flag("harassment", _HIGH if live & _SEVERE else _MEDIUM)
        return True


def score_conversation(
    messages: Iterable[tuple[str, str]],
    *,
    detector: Detector | None = None,
    policy: RiskPolicy | None = None,
) -> Assessment:
    """Score a whole conversation of ``(sender, text)`` pairs, in order.

    ``detector`` finds the PII in each message (minor disclosures, shared handles); by default
    the package's own ``logwarden.safety.pii.detect``. Pass ``lambda text: ()`` to score on
    phrases alone.
    """
    detector = detect if detector is None else detector
    risk = ConversationRisk(policy)
    for sender, text in messages:
        risk.observe(sender, text, detector(text))
    return risk.assessment
