"""The session log's storage: one interface, SQL backends."""

from logwarden.store.base import (
    AddressRow,
    AuditEntryRow,
    AuditHead,
    AuditRecord,
    DayTable,
    MessageRow,
    ParticipantRow,
    ReceiptRow,
    ReportRow,
    RetentionState,
    SafetyEventRow,
    SessionEndRow,
    SessionRecord,
    SessionRow,
    SessionSummary,
    Store,
    WriteBatch,
)
from logwarden.store.schema import PRESERVED
from logwarden.store.sql import SqlStore

__all__ = [
    "PRESERVED",
    "AddressRow",
    "AuditEntryRow",
    "AuditHead",
    "AuditRecord",
    "DayTable",
    "MessageRow",
    "ParticipantRow",
    "ReceiptRow",
    "ReportRow",
    "RetentionState",
    "SafetyEventRow",
    "SessionEndRow",
    "SessionRecord",
    "SessionRow",
    "SessionSummary",
    "SqlStore",
    "Store",
    "WriteBatch",
]
