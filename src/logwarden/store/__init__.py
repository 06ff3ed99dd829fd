"""The session log's storage: one interface, SQL backends."""

from logwarden.store.base import (
    MessageRow,
    ParticipantRow,
    ReportRow,
    SessionEndRow,
    SessionRecord,
    SessionRow,
    SessionSummary,
    Store,
    WriteBatch,
)
from logwarden.store.sql import SqlStore

__all__ = [
    "MessageRow",
    "ParticipantRow",
    "ReportRow",
    "SessionEndRow",
    "SessionRecord",
    "SessionRow",
    "SessionSummary",
    "SqlStore",
    "Store",
    "WriteBatch",
]
