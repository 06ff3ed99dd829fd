"""The store interface: what the recorder writes and the CLI and console read.

Rows arriving here are already sealed by the vault; the store never sees plaintext text or
addresses. Two backends implement ``Store``: SQLite now, PostgreSQL next, behind the same
calls (``SqlStore.sqlite(path)``; callers never branch on the backend).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "MessageRow",
    "ParticipantRow",
    "ReportRow",
    "SessionEndRow",
    "SessionRecord",
    "SessionRow",
    "SessionSummary",
    "Store",
    "WriteBatch",
]


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: str
    started_at: int  # ms since the epoch, UTC
    interests_sealed: bytes


@dataclass(frozen=True, slots=True)
class ParticipantRow:
    session_id: str
    slot: int  # 0 or 1
    ip_pseudonym: str
    ip_sealed: bytes


@dataclass(frozen=True, slots=True)
class MessageRow:
    session_id: str
    seq: int  # 1, 2, ... within the session, in the order the server received them
    slot: int
    sent_at: int
    text_sealed: bytes


@dataclass(frozen=True, slots=True)
class SessionEndRow:
    session_id: str
    ended_at: int
    reason: str
    ended_by: int | None  # the slot whose action or failure ended it, if any


@dataclass(frozen=True, slots=True)
class ReportRow:
    session_id: str
    reporter_slot: int
    reason: str
    comment_sealed: bytes | None
    created_at: int


@dataclass(slots=True)
class WriteBatch:
    """Everything one group commit writes, in one transaction."""

    sessions: list[SessionRow] = field(default_factory=list)
    participants: list[ParticipantRow] = field(default_factory=list)
    messages: list[MessageRow] = field(default_factory=list)
    reports: list[ReportRow] = field(default_factory=list)
    ends: list[SessionEndRow] = field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.sessions)
            + len(self.participants)
            + len(self.messages)
            + len(self.reports)
            + len(self.ends)
        )


@dataclass(frozen=True, slots=True)
class SessionSummary:
    id: str
    started_at: int
    ended_at: int | None
    end_reason: str | None
    message_count: int
    report_count: int
    ip_pseudonyms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SessionRecord:
    session: SessionRow
    ended: SessionEndRow | None
    participants: tuple[ParticipantRow, ...]
    messages: tuple[MessageRow, ...]
    reports: tuple[ReportRow, ...]


class Store(Protocol):
    def write(self, batch: WriteBatch) -> None:
        """Write the batch in one transaction: all of it is durable on return, or none."""
        ...

    def recent_sessions(self, *, limit: int) -> list[SessionSummary]:
        """Metadata of the most recently started sessions, newest first."""
        ...

    def session(self, session_id: str) -> SessionRecord | None:
        """One session with its participants, messages (in order) and reports."""
        ...

    def reported_pairs(self) -> list[tuple[str, str]]:
        """(reporter, reported) IP pseudonyms of every report."""
        ...

    def close(self) -> None: ...
