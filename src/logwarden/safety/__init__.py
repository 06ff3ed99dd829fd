"""Safety engine: personal-information detection for messages before they are relayed.

``detect(text)`` (or a configured ``PiiDetector``) returns ``Finding`` objects, one per piece
of personal information, each with its span in the original text and a reason; ``KINDS``
lists the kinds. See ``logwarden.safety.pii`` for how detection works.

Conversation risk: one ``ConversationRisk`` per session, fed every message with its findings,
keeps an ``Assessment`` (score, level, ``FLAGS`` raised, reasons); ``RiskPolicy.decide`` turns
it into a ``Decision`` (review, preserve, end the chat, safety message). ``score_conversation``
scores a finished conversation. See ``logwarden.safety.scoring`` for the rules.
"""

from logwarden.safety.pii import DEFAULT_REGIONS, KINDS, Finding, PiiDetector, detect
from logwarden.safety.scoring import (
    FLAGS,
    Assessment,
    ConversationRisk,
    Decision,
    Reason,
    RiskPolicy,
    score_conversation,
)

__all__ = [
    "DEFAULT_REGIONS",
    "FLAGS",
    "KINDS",
    "Assessment",
    "ConversationRisk",
    "Decision",
    "Finding",
    "PiiDetector",
    "Reason",
    "RiskPolicy",
    "detect",
    "score_conversation",
]
