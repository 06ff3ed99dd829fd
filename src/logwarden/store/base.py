"""The store interface: what the recorder writes and the CLI and console read.

Rows arriving here are already sealed by the vault; the store never sees plaintext text or
addresses. Rows are named tuples whose fields are their table's columns in order, so a batch
goes to the driver as it is, with no per-row conversion.

Two backends implement ``Store`` with the same code, ``SqlStore.sqlite(path)`` and
``SqlStore.postgres(url)``; callers never branch on the backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

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


class SessionRow(NamedTuple):
    id: str
    started_at: int  # ms since the epoch, UTC
    interests_sealed: bytes


class ParticipantRow(NamedTuple):
    session_id: str
    slot: int  # 0 or 1
    ip_pseudonym: str
    ip_sealed: bytes
    block_key: str


class MessageRow(NamedTuple):
    session_id: str
    seq: int  # 1, 2, ... within the session, in the order the server received them
    slot: int
    sent_at: int
    text_sealed: bytes


class SessionEndRow(NamedTuple):
    session_id: str
    ended_at: int
    reason: str
    ended_by: int | None  # the slot whose action or failure ended it, if any


class ReportRow(NamedTuple):
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
        """(reporter, reported) block keys (network pseudonyms) of every report."""
        ...

    def close(self) -> None: ...
