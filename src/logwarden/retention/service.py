"""Retention in action: reclassify, hold, erase, purge and check (docs/retention.md).

The log store holds each session's retention state (reported, held, erasure asked); the
keystore follows it. Every operation here brings a session's keys and rows in line with its
state, so running one again, or the purge after a crash half-way, finishes what was started.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from logwarden.audit.entries import entry
from logwarden.audit.log import AuditLog
from logwarden.clock import Clock
from logwarden.errors import LogwardenError
from logwarden.retention.policy import (
    DAY_MS,
    HOLD,
    METADATA,
    RAW_IP,
    REPORTED,
    SESSION,
    RetentionPolicy,
    day_of,
)
from logwarden.retention.receipts import is_well_formed, receipt_digest
from logwarden.store import PRESERVED, AuditRecord, DayTable, RetentionState, Store
from logwarden.vault import ADDRESS, TEXT, KeyStore
from logwarden.vault.keystore import bucket_id

__all__ = ["Erasure", "Finding", "Kept", "PurgeSummary", "Receipt", "Retention"]

log = logging.getLogger("logwarden.retention")

# The rows each data key seals, as audit entries name them.
_ROWS = {TEXT: "messages", ADDRESS: "addresses"}

# What each data key seals, as a receipt names it.
_KEPT_UNDER = {TEXT: "messages and interests (encrypted)", ADDRESS: "IP addresses (encrypted)"}

Progress = Callable[[str], None]

SYSTEM = "logwarden"  # who acts when no person does: the purge, the server

# A report accepted at the last moment of the window is written a little later (the group
# commit), and the server's window runs on its own clock: erasure waits this much longer
# (when there is a window at all).
REPORT_GRACE_MS = 10_000


class _RetentionLock:
    """One retention change at a time, across threads and across processes.

    ``serve`` (its scheduled purge, reports) and the CLI (``purge``, ``hold``, ``release``)
    may act on one data directory at once; a hold must not land between an erasure's check
    and its destruction, nor two purges drop the same partitions. Re-entrant, so a purge can
    call ``apply``. The file lock is ``flock`` on ``keys/retention.lock``.
    """

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        if self._depth == 0 and self._path is not None:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                self._thread_lock.release()
                raise
            self._fd = fd
        self._depth += 1

    def __exit__(self, *_exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        self._thread_lock.release()


@dataclass(frozen=True, slots=True)
class PurgeSummary:
    as_of: int
    buckets_destroyed: dict[str, int] = field(default_factory=dict)  # class → bucket keys
    data_keys_destroyed: int = 0
    messages_deleted: int = 0
    addresses_deleted: int = 0
    sessions_deleted: int = 0
    sessions_erased: int = 0
    kek_rotated: bool = False
    wal_truncated: bool = True


@dataclass(frozen=True, slots=True)
class Finding:
    """Something kept past its retention, or a key that should be gone (``retention check``)."""

    cls: str
    what: str
    count: int


@dataclass(frozen=True, slots=True)
class Kept:
    what: str
    until: int | None  # ms; None: until a hold is released


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a receipt holder may know about their chat: what is kept and until when."""

    session_id: str
    started_at: int
    ended_at: int | None
    kept: tuple[Kept, ...]
    reported: bool
    held: bool
    erase_after: int | None
    # Kept for a reason the deployment does not disclose: ``reported`` and ``held`` read
    # False and no ``until`` is given (``receipts_disclose_preservation = false``).
    withheld: bool = False


@dataclass(frozen=True, slots=True)
class Erasure:
    """The answer to a deletion request: erased now, scheduled, or refused (why, until when)."""

    outcome: str  # "erased", "scheduled", "refused"
    reason: str
    at: int | None = None  # when it is (or was) erased, or until when it is kept


class Retention:
    def __init__(
        self,
        *,
        store: Store,
        keystore: KeyStore,
        audit: AuditLog,
        policy: RetentionPolicy,
        clock: Clock,
        report_window_ms: int,
        kek_rotation_days: int,
        lock_path: Path | None = None,
        disclose_preservation: bool = True,
    ) -> None:
        self._lock = _RetentionLock(lock_path)
        self._disclose = disclose_preservation
        self._store = store
        self._keystore = keystore
        self._audit = audit
        self._policy = policy
        self._clock = clock
        self._report_window_ms = report_window_ms
        self._kek_rotation_ms = kek_rotation_days * DAY_MS

    # -- reclassification ------------------------------------------------------------------

    # A change of the log store's state is written with its audit entry, in one transaction.
    # What the keystore destroys is written to the audit log first: a crash in between leaves
    # an entry for a destruction the next purge finishes, never a destruction unlogged.
    # Entries that destroy or lift a protection are signed with the log's key (AuditLog does
    # it); destructions record the policy they applied, which `audit verify` judges them by.

    def flag(
        self, session_id: str, *, by: str = SYSTEM, reason: str | None = None
    ) -> RetentionState | None:
        """Move a session to the reported class (a safety flag); None if there is none."""
        with self._lock:
            now = self._clock.now_ms()
            flagged = entry("flag", at=now, session_id=session_id, by=by, reason=reason)
            if not self._store.mark_reported(session_id, at=now, audit=[flagged]):
                return None
            return self.apply(session_id)

    def hold(self, session_id: str, *, reason: str, by: str = SYSTEM) -> RetentionState | None:
        """Place a legal hold: everything of the session is kept until released."""
        with self._lock:
            now = self._clock.now_ms()
            held = entry("hold", at=now, session_id=session_id, by=by, reason=reason)
            if not self._store.set_hold(session_id, held_at=now, reason=reason, audit=[held]):
                return None
            return self.apply(session_id)

    def release(self, session_id: str, *, by: str = SYSTEM) -> RetentionState | None:
        """Release a hold: the session's own classes apply again, from their own days (what
        has expired meanwhile is destroyed now)."""
        with self._lock:
            # The release names the hold it lifts, so that it cannot be replayed to lift a
            # later one (the retention lock keeps holds from coming in between).
            holds = [e.idx for e in self._store.audit_entries_of(session_id) if e.kind == "hold"]
            released = entry(
                "release",
                at=self._clock.now_ms(),
                session_id=session_id,
                by=by,
                hold=holds[-1] if holds else None,
            )
            audit = [self._audit.authorise(released)]
            if not self._store.set_hold(session_id, held_at=None, reason=None, audit=audit):
                return None
            return self.apply(session_id)

    def _record(self, kind: str, session_id: str | None, *, at: int, **fields: object) -> None:
        self._audit.append([entry(kind, at=at, session_id=session_id, **fields)])

    def _destroyed(self, kind: str, session_id: str, *, at: int, **fields: object) -> AuditRecord:
        """An entry recording a destruction, with the policy that made it due."""
        return entry(kind, at=at, session_id=session_id, policy=self._policy.periods(), **fields)

    def apply(self, session_id: str) -> RetentionState | None:
        """Re-wrap the session's keys under the buckets its state asks for and move its rows
        to match.

        A key is destroyed, with its rows, if the bucket it sits in has expired or the one it
        should move to has: a hold or a report keeps what still exists, it never brings back
        what retention has already given up, whether or not the purge has run. Nothing is
        destroyed because something is *missing*: a session without a key keeps its rows
        (they go with their day), and keys without a session are left alone (``check``
        reports both). A keystore or log that failed to mount must not cost any evidence.
        """
        with self._lock:
            state = self._store.retention_state(session_id)
            if state is None:
                return None
            self._apply(state, self._clock.now_ms())
            return state

    def _apply(self, state: RetentionState, now: int) -> None:
        session_id = state.session_id
        preserved = state.held_at is not None or state.reported_at is not None
        present = self._keystore.locate(session_id)
        targets = self._targets(state)
        destroy = {
            purpose: purpose in present
            and (self._expired(present[purpose], now) or self._expired(target, now))
            for purpose, target in targets.items()
        }
        rows = {
            purpose: None if destroy[purpose] else (PRESERVED if preserved else state.day)
            for purpose in targets
        }
        gone = [_ROWS[purpose] for purpose in targets if destroy[purpose]]
        if gone:
            shred = self._destroyed(
                "shred", session_id, at=now, what=gone, why="expired", keys="session"
            )
            self._audit.append([shred])
        # Rows first when preserving (so an expiring day cannot take them), keys first when
        # letting go; a crash in between is finished by the next purge (``_reconcile``).
        if preserved:
            self._move_rows(session_id, rows)
        for purpose, (cls, day) in targets.items():
            if destroy[purpose]:
                self._keystore.destroy_data_keys([session_id], purpose=purpose)
            elif purpose in present:
                # Leaving the hold bucket (which never expires): it gets a new key at the next
                # purge, so an earlier copy of the keystore cannot open this key through it.
                leaving_hold = present[purpose][0] == HOLD and cls != HOLD
                self._keystore.move_data_key(
                    session_id, purpose, cls=cls, day=day, rekey_source=leaving_hold
                )
        if not preserved:
            self._move_rows(session_id, rows)

    def _targets(self, state: RetentionState) -> dict[str, tuple[str, int]]:
        """The bucket each of the session's data keys should be wrapped under: purpose →
        (class, day)."""
        return {
            TEXT: self._policy.text_bucket(state),
            ADDRESS: self._policy.address_bucket(state),
        }

    def _expired(self, bucket: tuple[str, int], now: int) -> bool:
        expires = self._policy.expires_at(*bucket)
        return expires is not None and expires <= now

    def _move_rows(self, session_id: str, buckets: dict[str, int | None]) -> None:
        self._store.move_rows(
            session_id, text_bucket=buckets[TEXT], address_bucket=buckets[ADDRESS]
        )

    # -- receipts and erasure ----------------------------------------------------------------

    def receipt(self, token: str) -> Receipt | None:
        """What is kept about the session of this receipt; None for an unknown token."""
        state = self._state_of_receipt(token)
        if state is None:
            return None
        present = self._keystore.locate(state.session_id)
        kept = [
            Kept("times, end reason and IP pseudonyms", self._policy.metadata_expires_at(state))
        ]
        for purpose, (cls, day) in self._targets(state).items():
            if purpose in present:
                kept.append(Kept(_KEPT_UNDER[purpose], self._policy.expires_at(cls, day)))
        preserved = state.reported_at is not None or state.held_at is not None
        if preserved and not self._disclose:
            return Receipt(
                session_id=state.session_id,
                started_at=state.started_at,
                ended_at=state.ended_at,
                kept=tuple(Kept(k.what, None) for k in kept),
                reported=False,
                held=False,
                erase_after=None,
                withheld=True,
            )
        return Receipt(
            session_id=state.session_id,
            started_at=state.started_at,
            ended_at=state.ended_at,
            kept=tuple(kept),
            reported=state.reported_at is not None,
            held=state.held_at is not None,
            erase_after=state.erase_after,
        )

    def erase(self, token: str) -> Erasure | None:
        """Shred the receipt's session now, or once the other person's report window has
        closed; refused while the chat is on, reported or held. None for an unknown token."""
        with self._lock:
            return self._erase(token)

    def _erase(self, token: str) -> Erasure | None:
        state = self._state_of_receipt(token)
        if state is None:
            return None
        now = self._clock.now_ms()
        preserved = state.held_at is not None or state.reported_at is not None
        if preserved and not self._disclose:
            return Erasure("refused", "it is kept for safety or legal reasons", None)
        if state.held_at is not None:
            return Erasure("refused", "it is under a legal hold", None)
        if state.reported_at is not None:
            until = self._policy.expires_at(*self._policy.text_bucket(state))
            return Erasure("refused", "it was reported, and reports are kept as evidence", until)
        if state.ended_at is None:
            return Erasure(
                "refused", "the chat has not ended yet (if it just ended, try again in a moment)"
            )
        # Not before the other person's chance to report it has passed: an erasure must not
        # let someone remove the evidence of what they just did.
        grace = REPORT_GRACE_MS if self._report_window_ms else 0
        window_closes = state.ended_at + self._report_window_ms + grace
        # Scheduled for the window's end, or for now; either way the request is durable with
        # its entry before anything is destroyed, and the purge finishes what a crash cut short.
        when = max(now, window_closes)
        asked = self._audit.authorise(
            entry("erasure", at=now, session_id=state.session_id, until=when)
        )
        self._store.set_erase_after(state.session_id, when, audit=[asked])
        if now < window_closes:
            return Erasure(
                "scheduled", "the other person can still report this chat until then", window_closes
            )
        self._shred([state.session_id], why="erased")
        return Erasure("erased", "everything about this chat has been destroyed", now)

    def _state_of_receipt(self, token: str) -> RetentionState | None:
        if not is_well_formed(token):
            return None
        found = self._store.receipt(receipt_digest(token))
        return None if found is None else self._store.retention_state(found.session_id)

    def _shred(self, session_ids: list[str], *, why: str) -> int:
        """Destroy the sessions' keys, then delete their rows: keys first, so a crash in
        between leaves only ciphertext nobody can open."""
        now = self._clock.now_ms()
        self._audit.append([self._destroyed("delete", s, at=now, why=why) for s in session_ids])
        keys = self._keystore.destroy_data_keys(session_ids)
        self._store.delete_sessions(session_ids)
        return keys

    # -- purge -------------------------------------------------------------------------------

    def purge(self, *, progress: Progress | None = None) -> PurgeSummary:
        """Destroy every key whose class has expired, then the rows they sealed."""
        with self._lock:
            return self._purge(progress or (lambda _step: None))

    def _purge(self, say: Progress) -> PurgeSummary:
        now = self._clock.now_ms()
        policy = self._policy

        say("reconciling reported and held sessions")
        self._reconcile()

        say("carrying out erasures")
        due = self._store.pending_erasures(now)
        erased_keys = self._shred(due, why="erased") if due else 0

        say("destroying expired keys")
        expired = [
            b
            for b in self._keystore.buckets()
            if b.cls != HOLD
            and (expires := policy.expires_at(b.cls, b.day)) is not None
            and expires <= now
        ]
        if expired:
            self._record(
                "keys",
                None,
                at=now,
                buckets=[[b.id, b.data_keys] for b in expired],
                by=SYSTEM,
                policy=policy.periods(),
            )
        destroyed = self._keystore.destroy_buckets([b.id for b in expired])
        classes = Counter(b.cls for b in expired)

        say("deleting expired rows")
        messages = self._drop_days("messages", policy.last_expired_day(SESSION, now), now)
        addresses = self._drop_days("addresses", policy.last_expired_day(RAW_IP, now), now)
        gone = self._store.expired_sessions(
            metadata_through_day=policy.last_expired_day(METADATA, now),
            reported_before=(policy.last_expired_day(REPORTED, now) + 1) * DAY_MS,
        )
        leftover_keys = self._shred(gone, why="expired") if gone else 0
        reclaimed = self._store.reclaim()
        today = day_of(now)
        self._store.prepare_days([today, today + 1])

        say("re-keying buckets that lost single keys")
        rekeyed = self._keystore.rekey_stale()

        rotate = bool(
            destroyed.data_keys or destroyed.buckets or erased_keys or leftover_keys or rekeyed
        )
        keks = self._keystore.key_encryption_keys()
        # More than one on disk: a rotation was cut short; finish it now.
        if rotate or len(keks) > 1 or now - keks[-1].created_at >= self._kek_rotation_ms:
            say("rotating the key-encryption key")
            self._record("kek", None, at=now, by=SYSTEM)
            self._keystore.rotate_kek_at(now)
            rotate = True
        return PurgeSummary(
            as_of=now,
            buckets_destroyed=dict(classes),
            data_keys_destroyed=destroyed.data_keys + erased_keys + leftover_keys,
            messages_deleted=messages,
            addresses_deleted=addresses,
            sessions_deleted=len(gone),
            sessions_erased=len(due),
            kek_rotated=rotate,
            wal_truncated=destroyed.wal_truncated and reclaimed,
        )

    def _drop_days(self, table: DayTable, through_day: int, now: int) -> int:
        """Delete a table's expired day buckets, recording first whose rows they hold (their
        keys went with their day's bucket, which the purge's ``keys`` entry names)."""
        sessions = self._store.sessions_in_days(table, through_day=through_day)
        if sessions:
            self._audit.append(
                [
                    self._destroyed("shred", s, at=now, what=[table], why="expired", keys="bucket")
                    for s in sessions
                ]
            )
        return self._store.drop_days(table, through_day=through_day)

    def _reconcile(self) -> None:
        """Bring every reported or held session, and every key under a hold, in line.

        Costs a few queries per preserved session (they are few: reports, flags and holds).
        One that fails is logged and left for the next purge; the rest of the purge goes on.
        """
        sessions = {state.session_id for state in self._store.preserved_sessions()}
        sessions.update(self._keystore.sessions_in_class(HOLD))
        for session_id in sorted(sessions):
            try:
                self.apply(session_id)
            except LogwardenError as exc:
                log.error("could not reconcile session %s: %s", session_id, exc)

    # -- check -------------------------------------------------------------------------------

    def check(self) -> list[Finding]:
        """Everything kept past its retention and every key that should be gone; [] if none."""
        now = self._clock.now_ms()
        policy = self._policy
        findings: list[Finding] = []
        for bucket in self._keystore.buckets():
            if bucket.cls == HOLD:
                continue
            expires = policy.expires_at(bucket.cls, bucket.day)
            if expires is None or expires <= now:
                what = f"bucket key {bucket.id} ({bucket.data_keys} data keys) not destroyed"
                findings.append(Finding(bucket.cls, what, 1))
        held = {s.session_id for s in self._store.preserved_sessions() if s.held_at is not None}
        stray = set(self._keystore.sessions_in_class(HOLD)) - held
        if stray:
            findings.append(Finding(HOLD, "data keys under hold for sessions not held", len(stray)))
        tables: tuple[tuple[str, DayTable, str], ...] = (
            (SESSION, "messages", "message rows past retention"),
            (RAW_IP, "addresses", "address rows past retention"),
        )
        for cls, table, what in tables:
            count = self._store.count_days(table, through_day=policy.last_expired_day(cls, now))
            if count:
                findings.append(Finding(cls, what, count))
        expired = self._store.expired_sessions(
            metadata_through_day=policy.last_expired_day(METADATA, now),
            reported_before=(policy.last_expired_day(REPORTED, now) + 1) * DAY_MS,
        )
        if expired:
            findings.append(Finding(METADATA, "sessions past retention", len(expired)))
        for state in self._store.preserved_sessions():
            findings.extend(self._misplaced_keys(state, now))
        stale = self._keystore.stale_buckets()
        if stale:
            what = "bucket keys that lost a data key and still wait for a new key"
            findings.append(Finding("keys", what, len(stale)))
        keks = self._keystore.key_encryption_keys()
        if len(keks) > 1:
            findings.append(
                Finding("kek", "retired key-encryption keys still on disk", len(keks) - 1)
            )
        if now - keks[-1].created_at >= self._kek_rotation_ms:
            findings.append(Finding("kek", "key-encryption key overdue for rotation", 1))
        return findings

    def _misplaced_keys(self, state: RetentionState, now: int) -> list[Finding]:
        """A preserved session's keys must sit in its class's bucket (or be gone if expired):
        a key left in its ordinary day bucket would be destroyed too early."""
        present = self._keystore.locate(state.session_id)
        found = []
        for purpose, (cls, day) in self._targets(state).items():
            where = present.get(purpose)
            if where is None:
                continue
            if self._expired((cls, day), now) or self._expired(where, now):
                what = f"{purpose} key of session {state.session_id} past retention"
                found.append(Finding(cls, what, 1))
            elif where != (cls, day):
                what = f"{purpose} key of session {state.session_id} in {bucket_id(*where)}"
                found.append(Finding(cls, what, 1))
        return found
