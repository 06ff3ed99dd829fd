"""Retention you can prove: classes, purge by crypto-shredding, holds, receipts and erasure."""

from logwarden.retention.policy import RetentionPolicy, day_of
from logwarden.retention.service import Erasure, Finding, Kept, PurgeSummary, Receipt, Retention

__all__ = [
    "Erasure",
    "Finding",
    "Kept",
    "PurgeSummary",
    "Receipt",
    "Retention",
    "RetentionPolicy",
    "day_of",
]
