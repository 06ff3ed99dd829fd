"""The store interface: what the recorder writes and the CLI and console read.

Rows arriving here are already sealed by the vault; the store never sees plaintext text or
addresses. Rows are named tuples whose fields are their table's columns in order, so a batch
goes to the driver as it is, with no per-row conversion.

Two backends implement ``Store`` with the same code, ``SqlStore.sqlite(path)`` and
``SqlStore.postgres(url)``; callers never branch on the backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol

if TYPE_CHECKING:
    from logwarden.audit.merkle import CompactRange

DayTable = Literal["messages", "addresses"]

__all__ = [
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
    "Store",
    "WriteBatch",
]


class SessionRow(NamedTuple):
    id: str
    started_at: int  # ms since the epoch, UTC
    day: int  # started_at's UTC day (ms // 86_400_000): the session's key buckets
    interests_sealed: bytes
    audit_salt: bytes | None = None  # keys the audit log's commitments to its metadata


class ParticipantRow(NamedTuple):
    session_id: str
    slot: int  # 0 or 1
    ip_pseudonym: str
    block_key: str


class AddressRow(NamedTuple):
    """A participant's raw address, sealed under the session's address key (7-day class)."""

    session_id: str
    slot: int
    bucket: int  # the session's day, or PRESERVED
    ip_sealed: bytes


class MessageRow(NamedTuple):
    session_id: str
    seq: int  # 1, 2, ... within the session, in the order the server received them
    bucket: int  # the session's day, or PRESERVED
    slot: int
    sent_at: int
    text_sealed: bytes
    entry: int | None = None  # its audit entry's index; the store sets it as it writes


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


class SafetyEventRow(NamedTuple):
    session_id: str
    slot: int | None
    at: int
    kind: str  # "warning" or "risk"
    detail: str  # JSON; never message text or the values found


class ReceiptRow(NamedTuple):
    token_digest: str  # SHA-256 of the token, hex
    session_id: str
    slot: int
    issued_at: int


class AuditRecord(NamedTuple):
    """An entry for the audit log, before it has its place (``audit/entries.py`` makes them).

    ``body`` is the leaf's data, the bytes the Merkle tree hashes; the other fields repeat
    what it says, for indexes and for people.
    """

    at: int
    kind: str
    session_id: str | None
    body: bytes


class AuditEntryRow(NamedTuple):
    idx: int  # the leaf index: 0, 1, 2, ... with no gap
    at: int
    kind: str
    session_id: str | None
    body: bytes
    leaf_hash: bytes


@dataclass(frozen=True, slots=True)
class AuditHead:
    """How far the audit log goes: its size, its root, and its newest signed checkpoint."""

    size: int
    root: bytes
    checkpoint: bytes | None


class RetentionState(NamedTuple):
    """What decides how long a session is kept (docs/retention.md)."""

    session_id: str
    started_at: int
    day: int
    ended_at: int | None
    reported_at: int | None
    held_at: int | None
    hold_reason: str | None
    erase_after: int | None


@dataclass(slots=True)
class WriteBatch:
    """Everything one group commit writes, in one transaction."""

    sessions: list[SessionRow] = field(default_factory=list)
    participants: list[ParticipantRow] = field(default_factory=list)
    addresses: list[AddressRow] = field(default_factory=list)
    messages: list[MessageRow] = field(default_factory=list)
    reports: list[ReportRow] = field(default_factory=list)
    receipts: list[ReceiptRow] = field(default_factory=list)
    ends: list[SessionEndRow] = field(default_factory=list)
    safety: list[SafetyEventRow] = field(default_factory=list)
    # Sessions the safety engine moves to the reported class, as a report does: (id, at).
    preserve: list[tuple[str, int]] = field(default_factory=list)
    # Appended to the audit log in the same transaction (the rows and their entries are
    # durable together, or neither).
    audit: list[AuditRecord] = field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.sessions)
            + len(self.participants)
            + len(self.addresses)
            + len(self.messages)
            + len(self.reports)
            + len(self.receipts)
            + len(self.ends)
            + len(self.safety)
            + len(self.preserve)
            + len(self.audit)
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
    addresses: tuple[AddressRow, ...]
    messages: tuple[MessageRow, ...]
    reports: tuple[ReportRow, ...]
    retention: RetentionState
    safety: tuple[SafetyEventRow, ...] = ()
    receipts: tuple[ReceiptRow, ...] = ()


class Store(Protocol):
    def write(self, batch: WriteBatch) -> None:
        """Write the batch in one transaction: all of it is durable on return, or none.

        The batch's message entries must be in the order of its messages (the n-th message
        entry is the n-th message's): each message row is written with its entry's index.

        A report also marks its session reported (``reported_at``, kept from the first) and
        moves the session's message and address rows to ``PRESERVED``, in the same transaction.
        Rows go to the bucket they name; the store does not look their session up (that cost
        a tenth of the ingest rate): the purge moves late rows of preserved sessions.
        """
        ...

    def recent_sessions(self, *, limit: int) -> list[SessionSummary]:
        """Metadata of the most recently started sessions, newest first."""
        ...

    def session(self, session_id: str) -> SessionRecord | None:
        """One session with its participants, messages (in order) and reports."""
        ...

    def sessions(self, session_ids: Sequence[str]) -> list[SessionRecord]:
        """The sessions of these ids that exist, in id order, as ``session`` reads each:
        a few queries for hundreds of sessions (``audit verify`` reads them all)."""
        ...

    def reported_pairs(self) -> list[tuple[str, str]]:
        """(reporter, reported) block keys (network pseudonyms) of every report."""
        ...

    def receipt(self, token_digest: str) -> ReceiptRow | None: ...

    # Retention. The log store holds the retention state; the keystore follows it.
    def retention_state(self, session_id: str) -> RetentionState | None: ...

    def preserved_sessions(self) -> list[RetentionState]:
        """Every session that is reported or held."""
        ...

    def mark_reported(self, session_id: str, *, at: int, audit: Sequence[AuditRecord] = ()) -> bool:
        """Put a session in the reported class (a safety flag); False if there is no such
        session. Keeps an earlier ``reported_at``; moves its rows to ``PRESERVED``."""
        ...

    def set_hold(
        self,
        session_id: str,
        *,
        held_at: int | None,
        reason: str | None,
        audit: Sequence[AuditRecord] = (),
    ) -> bool:
        """Place (``held_at`` set) or release (``None``) a legal hold; False if no session.
        Placing moves the session's rows to ``PRESERVED``; releasing moves nothing (the
        caller decides where they go with ``move_rows``)."""
        ...

    def move_rows(
        self, session_id: str, *, text_bucket: int | None, address_bucket: int | None
    ) -> None:
        """Set the bucket of a session's message rows and of its address rows; ``None``
        deletes those rows instead."""
        ...

    def set_erase_after(
        self, session_id: str, at: int | None, *, audit: Sequence[AuditRecord] = ()
    ) -> None:
        """Schedule (or cancel) an erasure. State changes take ``audit`` entries, appended in
        the same transaction if the session exists."""
        ...

    def pending_erasures(self, as_of: int) -> list[str]:
        """Sessions whose erasure is due (``erase_after <= as_of``), not reported or held."""
        ...

    def expired_sessions(self, *, metadata_through_day: int, reported_before: int) -> list[str]:
        """Sessions past every class that keeps their metadata: not held, started on or
        before ``metadata_through_day``, and not reported at or after ``reported_before``."""
        ...

    def delete_sessions(self, session_ids: Sequence[str]) -> int:
        """Delete every row of these sessions in every table; returns how many sessions."""
        ...

    def count_days(self, table: DayTable, *, through_day: int) -> int:
        """Rows of ``table`` in day buckets 1..through_day (expired, when the purge asks)."""
        ...

    def drop_days(self, table: DayTable, *, through_day: int) -> int:
        """Delete the rows in day buckets 1..through_day; returns how many. On PostgreSQL
        ``messages`` drops whole day partitions instead of deleting rows."""
        ...

    def prepare_days(self, days: Sequence[int]) -> None:
        """Make ready to write the day buckets ``days`` (PostgreSQL: their partitions), so
        that the chat's first message of a day does not wait for the DDL's lock."""
        ...

    def unfinished_sessions(self) -> list[str]:
        """Sessions without an end: at start-up, those the server that ran them left open."""
        ...

    def session_ids(self, *, well_typed_only: bool = False) -> list[str]:
        """Every session in the log. ``StoreError`` names a row whose id is not text (SQLite
        lets a tampered row hold any type); ``well_typed_only`` leaves such rows out instead."""
        ...

    def sessions_in_days(self, table: DayTable, *, through_day: int) -> list[str]:
        """Sessions with rows of ``table`` in day buckets 1..through_day."""
        ...

    def reclaim(self) -> bool:
        """Make deleted rows leave the disk where the backend can (SQLite: empty the WAL);
        False if it could not finish now."""
        ...

    # The audit log (docs/audit.md). Appends are serialised by the database, across processes.
    def append_audit(self, records: Sequence[AuditRecord]) -> int:
        """Append entries in one transaction; returns the index of the first."""
        ...

    def audit_head(self) -> AuditHead: ...

    def audit_entries(
        self, start: int, stop: int, *, limit: int | None = None
    ) -> list[AuditEntryRow]:
        """The stored entries with ``start <= idx < stop``, in order (gaps are not filled),
        at most ``limit`` of them."""
        ...

    def audit_bodies(self, start: int, stop: int) -> list[tuple[object, object]]:
        """``(idx, body)`` of the stored entries with ``start <= idx < stop``, in order, as
        stored (the caller checks their types): the signer's read, done at the chat's rate."""
        ...

    def audit_entries_of(self, session_id: str) -> list[AuditEntryRow]:
        """Every entry about one session, in order: its message entries through the message
        rows that remain, the others through the index."""
        ...

    def audit_entries_about(self, session_ids: Sequence[str]) -> list[AuditEntryRow]:
        """The entries of every kind but message about these sessions, in order (through the
        session index; message entries are found through their rows)."""
        ...

    def audit_entries_at(self, indexes: Sequence[int]) -> list[AuditEntryRow]:
        """The stored entries at these indexes, in order."""
        ...

    def audit_nodes(self) -> dict[tuple[int, int], bytes]:
        """Every stored perfect node: ``(level, index)`` → hash."""
        ...

    def audit_proof(self, *, index: int, size: int) -> list[bytes]:
        """The inclusion proof of entry ``index`` in the tree of the first ``size`` entries."""
        ...

    def audit_consistency(self, *, old_size: int, new_size: int) -> list[bytes]: ...

    def audit_root(self, size: int) -> bytes:
        """The root of the tree of the first ``size`` entries, from the stored nodes."""
        ...

    def audit_range(self, size: int) -> CompactRange:
        """The compact range (the perfect subtrees) of the first ``size`` entries, from the
        stored nodes. Raises ``ValueError`` if a hash it needs is missing or malformed."""
        ...

    def save_checkpoint(self, *, size: int, at: int, note: bytes, history_ms: int) -> bool:
        """Make ``note`` (signed for ``size`` entries, at ``at`` ms) the newest signed
        checkpoint unless one as large is stored already (False then). A marker past the log's
        own size is damage, not a newer checkpoint: it is overwritten.

        A saved checkpoint is also kept in the history unless the newest kept one is less than
        ``history_ms`` away from ``at`` (either way: a clock set back starts afresh), so the
        history holds at most one a ``history_ms`` whichever process signs.
        """
        ...

    def checkpoint_marker(self) -> int | None:
        """The size the store records for its newest checkpoint, which ``save_checkpoint``
        compares with (``audit verify`` holds it to the checkpoint's own size)."""
        ...

    def audit_checkpoints(self) -> list[tuple[int, int, bytes]]:
        """The history of signed checkpoints: (size, at, note), oldest first."""
        ...

    def close(self) -> None: ...
