"""The recorder: what the chat hands to the session log, sealed and group-committed.

Each call returns once its record is durable. The chat relays a message only after
``message`` returns, so nothing reaches a stranger that the log does not hold.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Protocol

from logwarden.audit.entries import digest, entry, metadata_commitment, sha256_hex
from logwarden.audit.log import AuditLog
from logwarden.errors import StoreError
from logwarden.recorder.batcher import GroupCommitter
from logwarden.retention.policy import RAW_IP, SESSION, day_of
from logwarden.retention.service import Retention
from logwarden.store import (
    PRESERVED,
    AddressRow,
    AuditRecord,
    MessageRow,
    ParticipantRow,
    ReceiptRow,
    ReportRow,
    SafetyEventRow,
    SessionEndRow,
    SessionRow,
    Store,
    WriteBatch,
)
from logwarden.vault import ADDRESS, TEXT, NewDataKey, Vault

__all__ = [
    "Recorder",
    "SessionLog",
    "UnsafeNoLogRecorder",
    "interests_label",
    "ip_label",
    "message_label",
    "report_label",
]

log = logging.getLogger("logwarden.recorder")


# The labels bind each sealed value to what it is (the AEAD's associated data, with the
# session id): a message's sequence number, sender slot and time are all authenticated, so a
# row moved, renumbered, re-attributed or re-timed no longer opens.
def message_label(seq: int, slot: int, sent_at: int) -> str:
    return f"msg:{seq}:{slot}:{sent_at}"


def ip_label(slot: int) -> str:
    return f"ip:{slot}"


def interests_label() -> str:
    return "interests"


def report_label(reporter_slot: int, created_at: int) -> str:
    return f"report:{reporter_slot}:{created_at}"


@dataclass(frozen=True, slots=True)
class _SessionStart:
    session_id: str
    started_at: int
    interests: tuple[str, ...]
    addresses: tuple[str, str]  # raw IPs of slot 0 and slot 1
    pseudonyms: tuple[str, str]
    block_keys: tuple[str, str]
    receipts: tuple[str, str]  # digests of the receipt tokens handed to slot 0 and slot 1
    audit_salt: bytes  # random: keys the audit log's commitments to the metadata


@dataclass(frozen=True, slots=True)
class _Message:
    session_id: str
    seq: int
    slot: int
    sent_at: int
    text: str


@dataclass(frozen=True, slots=True)
class _SessionEnd:
    session_id: str
    ended_at: int
    reason: str
    ended_by: int | None


@dataclass(frozen=True, slots=True)
class _Report:
    session_id: str
    reporter_slot: int
    reason: str
    comment: str | None
    created_at: int


@dataclass(frozen=True, slots=True)
class _SafetyEvent:
    session_id: str
    slot: int | None
    at: int
    kind: str
    detail: dict[str, object]
    preserve: bool


_Record = _SessionStart | _Message | _SessionEnd | _Report | _SafetyEvent


class SessionLog(Protocol):
    """What the chat needs from the log.

    ``Recorder`` is the log; ``UnsafeNoLogRecorder`` exists for benchmarks only.
    """

    async def session_started(
        self,
        *,
        session_id: str,
        started_at: int,
        interests: Sequence[str],
        addresses: tuple[str, str],
        pseudonyms: tuple[str, str],
        block_keys: tuple[str, str],
        receipts: tuple[str, str],
    ) -> None: ...

    def message(
        self, *, session_id: str, seq: int, slot: int, sent_at: int, text: str
    ) -> asyncio.Future[None]:
        """Queue a message; the future resolves once it is durable.

        Not a coroutine, so that one connection can have several messages on their way to the
        disk at once (the chat relays each from the future's callback, in order).
        """
        ...

    async def session_ended(
        self, *, session_id: str, ended_at: int, reason: str, ended_by: int | None
    ) -> None: ...

    async def report(
        self,
        *,
        session_id: str,
        reporter_slot: int,
        reason: str,
        comment: str | None,
        created_at: int,
    ) -> None: ...

    def safety_event(
        self,
        *,
        session_id: str,
        slot: int | None,
        at: int,
        kind: str,
        detail: dict[str, object],
        preserve: bool = False,
    ) -> asyncio.Future[None]:
        """Queue a safety event (never message text: ``detail`` is stored as it is); with
        ``preserve``, the session moves to the reported class as a report moves it."""
        ...

    def start(self, loop: asyncio.AbstractEventLoop) -> None: ...

    async def started(self) -> None:
        """Return once records are taken (a writer process may take a moment to start)."""
        ...

    def close(self) -> None: ...

    async def aclose(self) -> None:
        """Write everything submitted, then stop; the loop goes on meanwhile."""
        ...


class Recorder:
    """Seals records with the vault and writes them through one group-commit thread.

    A session's data keys are made (durable in the keystore) in the same group commit that
    records its start, before its rows are written. Its rows carry the session's day bucket,
    or ``PRESERVED`` once it is reported, and a report re-wraps its keys (``Retention.apply``).

    Reports and safety events are signed with the audit log's key (``audit.sign``), one
    signature each on the committer's thread: they are rare, and they decide how long a chat
    is kept. Sessions, messages and ends are not: a signature per message would cost the chat
    its rate, and they are held to their rows instead (docs/audit.md).
    """

    def __init__(
        self,
        *,
        store: Store,
        vault: Vault,
        retention: Retention,
        audit: AuditLog,
        window: float,
        max_batch: int,
    ) -> None:
        self._store = store
        self._vault = vault
        self._retention = retention
        self._audit = audit
        # Re-wrapping a reported session's keys happens after its commit, off the writer
        # thread: it waits for the retention lock (a purge may hold it for seconds), which must
        # not stall everyone's messages, and its failure must not fail a batch already durable
        # (the next purge's reconcile finishes it).
        self._followups = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retention")
        self._pending: set[Future[None]] = set()
        # Live sessions, touched only on the writer thread: their day, their last message's
        # number, and whether reported.
        self._days: dict[str, int] = {}
        self._last_seq: dict[str, int] = {}
        self._preserved: set[str] = set()
        self._committer: GroupCommitter[_Record, WriteBatch] = GroupCommitter(
            self._prepare, self._write, window=window, max_batch=max_batch
        )

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._committer.start(loop)

    async def started(self) -> None:
        return None

    def close(self) -> None:
        self._committer.close()
        self._followups.shutdown(wait=True)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until the retention work of every report committed so far is done."""
        wait(self._pending.copy(), timeout=timeout)  # copy(): atomic against the callbacks

    async def session_started(
        self,
        *,
        session_id: str,
        started_at: int,
        interests: Sequence[str],
        addresses: tuple[str, str],
        pseudonyms: tuple[str, str],
        block_keys: tuple[str, str],
        receipts: tuple[str, str],
    ) -> None:
        await self._committer.submit(
            _SessionStart(
                session_id,
                started_at,
                tuple(interests),
                addresses,
                pseudonyms,
                block_keys,
                receipts,
                secrets.token_bytes(16),
            )
        )

    def message(
        self, *, session_id: str, seq: int, slot: int, sent_at: int, text: str
    ) -> asyncio.Future[None]:
        return self._committer.submit(_Message(session_id, seq, slot, sent_at, text))

    async def session_ended(
        self, *, session_id: str, ended_at: int, reason: str, ended_by: int | None
    ) -> None:
        await self._committer.submit(_SessionEnd(session_id, ended_at, reason, ended_by))

    async def report(
        self,
        *,
        session_id: str,
        reporter_slot: int,
        reason: str,
        comment: str | None,
        created_at: int,
    ) -> None:
        await self._committer.submit(
            _Report(session_id, reporter_slot, reason, comment, created_at)
        )

    def safety_event(
        self,
        *,
        session_id: str,
        slot: int | None,
        at: int,
        kind: str,
        detail: dict[str, object],
        preserve: bool = False,
    ) -> asyncio.Future[None]:
        return self._committer.submit(_SafetyEvent(session_id, slot, at, kind, detail, preserve))

    # These two run on the committer's threads: sealing there keeps the crypto off the event
    # loop. A batch is prepared while the one before it is written (recorder/batcher.py).
    def _prepare(self, records: Sequence[_Record], batch: WriteBatch | None) -> WriteBatch:
        self._make_keys([r for r in records if type(r) is _SessionStart])
        batch = WriteBatch() if batch is None else batch
        for record in records:
            self._add(batch, record)
        return batch

    def _write(self, batch: WriteBatch) -> None:
        self._store.write(batch)
        preserved = {r.session_id for r in batch.reports} | {s for s, _at in batch.preserve}
        for session_id in preserved:
            future = self._followups.submit(self._apply, session_id)
            self._pending.add(future)
            future.add_done_callback(self._pending.discard)
        for end in batch.ends:
            self._vault.forget(end.session_id)
            self._days.pop(end.session_id, None)
            self._last_seq.pop(end.session_id, None)
            self._preserved.discard(end.session_id)

    def _apply(self, session_id: str) -> None:
        try:
            self._retention.apply(session_id)
        except Exception:
            log.exception(
                "reported session %s: keys not re-wrapped yet (the purge will)", session_id
            )

    def _make_keys(self, starts: Sequence[_SessionStart]) -> None:
        # Skips sessions whose keys exist: when a group commit fails, the committer writes its
        # records again one by one, and a session's keys must not be made twice.
        new = [start for start in starts if start.session_id not in self._days]
        wanted: list[NewDataKey] = []
        for start in new:
            day = day_of(start.started_at)
            wanted.append(NewDataKey(start.session_id, TEXT, SESSION, day))
            wanted.append(NewDataKey(start.session_id, ADDRESS, RAW_IP, day))
        if wanted:
            self._vault.begin_sessions(wanted)
        for start in new:
            self._days[start.session_id] = day_of(start.started_at)

    def _live_day(self, session_id: str) -> int:
        """The day of a live session. One this recorder did not start (its writer process was
        restarted mid-chat, recorder/process.py) is read back from the store, with its last
        message's number and whether it is preserved."""
        day = self._days.get(session_id)
        if day is not None:
            return day
        record = self._store.session(session_id)
        if record is None or record.ended is not None:
            raise StoreError(f"session {session_id} is not a live session of the log")
        self._last_seq[session_id] = max((m.seq for m in record.messages), default=0)
        state = record.retention
        if state.reported_at is not None or state.held_at is not None:
            self._preserved.add(session_id)
        day = self._days[session_id] = record.session.day
        return day

    def _add(self, batch: WriteBatch, record: _Record) -> None:
        seal = self._vault.seal
        match record:
            case _Message(session_id, seq, slot, sent_at, text):
                raw = text.encode()
                sealed = seal(raw, session_id=session_id, label=message_label(seq, slot, sent_at))
                day = self._live_day(session_id)
                bucket = PRESERVED if session_id in self._preserved else day
                batch.messages.append(MessageRow(session_id, seq, bucket, slot, sent_at, sealed))
                commitment = self._vault.text_commitment(raw, session_id=session_id, seq=seq)
                batch.audit.append(message_entry(batch.messages[-1], commitment))
                self._last_seq[session_id] = max(seq, self._last_seq.get(session_id, 0))
            case _SessionStart():
                self._add_start(batch, record)
            case _SafetyEvent(session_id, slot, at, kind, detail, preserve):
                detail = {**detail, "preserve": preserve}  # what verify reads reported_at from
                body = json.dumps(detail, sort_keys=True, separators=(",", ":"))
                batch.safety.append(SafetyEventRow(session_id, slot, at, kind, body))
                batch.audit.append(
                    self._audit.entry(
                        "safety",
                        at=at,
                        session_id=session_id,
                        slot=slot,
                        event=kind,
                        detail=detail,
                    )
                )
                if preserve:
                    batch.preserve.append((session_id, at))
                    if session_id in self._days:
                        self._preserved.add(session_id)
            case _SessionEnd(session_id, ended_at, reason, ended_by):
                self._live_day(session_id)  # its message count, if it began in another writer
                batch.ends.append(SessionEndRow(session_id, ended_at, reason, ended_by))
                batch.audit.append(
                    entry(
                        "end",
                        at=ended_at,
                        session_id=session_id,
                        reason=reason,
                        by=ended_by,
                        messages=self._last_seq.get(session_id, 0),
                    )
                )
            case _Report(session_id, reporter_slot, reason, comment, created_at):
                if session_id in self._days:
                    self._preserved.add(session_id)
                comment_sealed = (
                    None
                    if comment is None
                    else seal(
                        comment.encode(),
                        session_id=session_id,
                        label=report_label(reporter_slot, created_at),
                    )
                )
                batch.reports.append(
                    ReportRow(session_id, reporter_slot, reason, comment_sealed, created_at)
                )
                batch.audit.append(self._audit.sign(report_entry(batch.reports[-1])))

    def _add_start(self, batch: WriteBatch, start: _SessionStart) -> None:
        seal, session_id = self._vault.seal, start.session_id
        day = self._days[session_id]
        interests_json = json.dumps(list(start.interests)).encode()
        sealed = seal(interests_json, session_id=session_id, label=interests_label())
        row = SessionRow(session_id, start.started_at, day, sealed, start.audit_salt)
        batch.sessions.append(row)
        for slot, (address, pseudonym, block_key, receipt) in enumerate(
            zip(start.addresses, start.pseudonyms, start.block_keys, start.receipts, strict=True)
        ):
            ip_sealed = seal(address.encode(), session_id=session_id, label=ip_label(slot))
            batch.participants.append(ParticipantRow(session_id, slot, pseudonym, block_key))
            batch.addresses.append(AddressRow(session_id, slot, day, ip_sealed))
            batch.receipts.append(ReceiptRow(receipt, session_id, slot, start.started_at))
        batch.audit.append(
            session_entry(row, batch.participants[-2:], batch.addresses[-2:], batch.receipts[-2:])
        )


# The entries of what the recorder writes; ``audit verify`` recomputes them from the rows.
def message_entry(row: MessageRow, text_commitment: bytes) -> AuditRecord:
    sealed = sha256_hex(row.text_sealed)
    sid = row.session_id
    if not (sid.isascii() and sid.isalnum()):  # ours are hex; anything else: the general path
        return entry(
            "message",
            at=row.sent_at,
            session_id=sid,
            seq=row.seq,
            slot=row.slot,
            sealed=sealed,
            text=text_commitment.hex(),
        )
    # The one entry per message: written out in canonical form (keys sorted, no spaces), as
    # ``entry`` would, at a fifth of json.dumps's cost on the recorder's thread. The test
    # suite checks the two agree.
    body = (
        f'{{"at":{row.sent_at:d},"kind":"message","sealed":"{sealed}","seq":{row.seq:d},'
        f'"session":"{sid}","slot":{row.slot:d},"text":"{text_commitment.hex()}"}}'
    )
    return AuditRecord(row.sent_at, "message", sid, body.encode())


def session_entry(
    row: SessionRow,
    participants: Sequence[ParticipantRow],
    addresses: Sequence[AddressRow],
    receipts: Sequence[ReceiptRow],
) -> AuditRecord:
    salt = row.audit_salt or b""
    return entry(
        "session",
        at=row.started_at,
        session_id=row.id,
        day=row.day,
        interests=digest(row.interests_sealed),
        addresses=[digest(a.ip_sealed) for a in addresses],
        people=metadata_commitment(
            salt, [(p.slot, p.ip_pseudonym, p.block_key) for p in participants]
        ),
        receipts=metadata_commitment(salt, [(r.slot, r.token_digest) for r in receipts]),
    )


def report_entry(row: ReportRow) -> AuditRecord:
    return entry(
        "report",
        at=row.created_at,
        session_id=row.session_id,
        slot=row.reporter_slot,
        reason=row.reason,
        comment=digest(row.comment_sealed),
    )


class UnsafeNoLogRecorder:
    """Records nothing. Exists only so bench/relay.py can measure what the log costs."""

    def __init__(self) -> None:
        log.warning("UNSAFE: the session log is OFF (unsafe_bench_no_log); for benchmarks only")

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        return None

    async def started(self) -> None:
        return None

    def close(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def session_started(
        self,
        *,
        session_id: str,
        started_at: int,
        interests: Sequence[str],
        addresses: tuple[str, str],
        pseudonyms: tuple[str, str],
        block_keys: tuple[str, str],
        receipts: tuple[str, str],
    ) -> None:
        return None

    def message(
        self, *, session_id: str, seq: int, slot: int, sent_at: int, text: str
    ) -> asyncio.Future[None]:
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def session_ended(
        self, *, session_id: str, ended_at: int, reason: str, ended_by: int | None
    ) -> None:
        return None

    async def report(
        self,
        *,
        session_id: str,
        reporter_slot: int,
        reason: str,
        comment: str | None,
        created_at: int,
    ) -> None:
        return None

    def safety_event(
        self,
        *,
        session_id: str,
        slot: int | None,
        at: int,
        kind: str,
        detail: dict[str, object],
        preserve: bool = False,
    ) -> asyncio.Future[None]:
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done
