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

from logwarden.audit import ledger
from logwarden.audit.entries import metadata_commitment
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

_BUCKETS_PER_ENTRY = 500  # a keys entry stays far below the 64 KiB an entry may hold


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
    # Every entry here is made by the audit log, signed (``AuditLog.entry``); destructions
    # record the policy they applied, which `audit verify` judges them by, and who acted.
    # Nothing of a session is destroyed, and no protection let go, unless the store's account
    # of it is the audit log's (``_account``): a hold or report cleared in the database must
    # not let the genuine purge destroy the evidence.

    def flag(
        self, session_id: str, *, by: str = SYSTEM, reason: str | None = None
    ) -> RetentionState | None:
        """Move a session to the reported class (a safety flag); None if there is none."""
        with self._lock:
            now = self._clock.now_ms()
            flagged = self._audit.entry("flag", at=now, session_id=session_id, by=by, reason=reason)
            if not self._store.mark_reported(session_id, at=now, audit=[flagged]):
                return None
            return self.apply(session_id, by=by)

    def hold(self, session_id: str, *, reason: str, by: str = SYSTEM) -> RetentionState | None:
        """Place a legal hold: everything of the session is kept until released."""
        with self._lock:
            now = self._clock.now_ms()
            held = self._audit.entry("hold", at=now, session_id=session_id, by=by, reason=reason)
            if not self._store.set_hold(session_id, held_at=now, reason=reason, audit=[held]):
                return None
            return self.apply(session_id, by=by)

    def release(self, session_id: str, *, reason: str, by: str = SYSTEM) -> RetentionState | None:
        """Release a hold: the session's own classes apply again, from their own days (what
        has expired meanwhile is destroyed now)."""
        with self._lock:
            # The release names the hold it lifts, so that it cannot be replayed to lift a
            # later one (the retention lock keeps holds from coming in between).
            holds = [e.idx for e in self._store.audit_entries_of(session_id) if e.kind == "hold"]
            released = self._audit.entry(
                "release",
                at=self._clock.now_ms(),
                session_id=session_id,
                by=by,
                hold=holds[-1] if holds else None,
                reason=reason,
            )
            if not self._store.set_hold(session_id, held_at=None, reason=None, audit=[released]):
                return None
            return self.apply(session_id, by=by)

    def _record(self, kind: str, *, at: int, **fields: object) -> None:
        """An entry about no session (keys, kek), signed and appended."""
        self._audit.append([self._audit.entry(kind, at=at, session_id=None, **fields)])

    def _destroyed(
        self, kind: str, session_id: str, *, at: int, by: str, **fields: object
    ) -> AuditRecord:
        """An entry recording a destruction, with the policy that made it due and who acted."""
        return self._audit.entry(
            kind, at=at, session_id=session_id, by=by, policy=self._policy.periods(), **fields
        )

    def apply(self, session_id: str, *, by: str = SYSTEM) -> RetentionState | None:
        """Re-wrap the session's keys under the buckets its state asks for and move its rows
        to match.

        A key is destroyed, with its rows, if the bucket it sits in has expired or the one it
        should move to has: a hold or a report keeps what still exists, it never brings back
        what retention has already given up, whether or not the purge has run. Nothing is
        destroyed because something is *missing*: a session without a key keeps its rows
        (they go with their day), and keys without a session are left alone (``check``
        reports both). A keystore or log that failed to mount must not cost any evidence.
        Nor is anything destroyed or let go while the store's retention state is not the
        audit log's (logged; ``audit verify`` names it).
        """
        with self._lock:
            state = self._store.retention_state(session_id)
            if state is None:
                return None
            self._apply(state, self._clock.now_ms(), by)
            return state

    def _apply(self, state: RetentionState, now: int, by: str) -> None:
        session_id = state.session_id
        preserved = state.held_at is not None or state.reported_at is not None
        present = self._keystore.locate(session_id)
        targets = self._targets(state)
        destroy = {
            purpose: purpose in present
            and (self._expired(present[purpose], now) or self._expired(target, now))
            for purpose, target in targets.items()
        }
        letting_go = any(
            where[0] in (HOLD, REPORTED) and targets[purpose][0] != where[0]
            for purpose, where in present.items()
            if purpose in targets
        )
        if (any(destroy.values()) or letting_go) and self._account(session_id) is None:
            return
        rows = {
            purpose: None if destroy[purpose] else (PRESERVED if preserved else state.day)
            for purpose in targets
        }
        gone = [_ROWS[purpose] for purpose in targets if destroy[purpose]]
        if gone:
            shred = self._destroyed(
                "shred", session_id, at=now, by=by, what=gone, why="expired", keys="session"
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

    def _account(self, session_id: str) -> ledger.Account | None:
        """The audit log's account of the session, if the store's retention state is that
        account (its day, start, report, hold and erasure request); else None, logged.

        Before anything of a session is destroyed: the purge decides by the store's columns,
        which anyone with the database can set, and must not act on a cleared hold or report,
        a moved day or a forged erasure request."""
        state = self._store.retention_state(session_id)
        if state is None:
            return None
        size = self._store.audit_head().size
        entries = [e for e in self._store.audit_entries_of(session_id) if 0 <= e.idx < size]
        found = ledger.account(entries, session_id, verifier=self._audit.verifier)
        differences = [what for _index, what in ledger.retention_differences(state, found.state)]
        start = found.start
        if start is None:
            differences.append(f"session {session_id} has no session entry")
        elif (start["at"], start["day"]) != (state.started_at, state.day):
            differences.append(f"session {session_id}: its start or day differs from its entry")
        if differences:
            log.error(
                "not destroying anything of session %s: the store does not match the audit log "
                "(%s); run `logwarden audit verify`",
                session_id,
                "; ".join(differences),
            )
            return None
        return found

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
        closed; refused while the chat is on, reported or held. None for an unknown token.

        Goes by the audit log, not by the store's columns alone: the token must be one the
        session's entry committed to, the window runs from the session's end entry, and the
        store's retention state must be the log's (``_account``)."""
        with self._lock:
            return self._erase(token)

    def _erase(self, token: str) -> Erasure | None:
        state = self._state_of_receipt(token)
        if state is None:
            return None
        found = self._account(state.session_id)
        if found is not None and not self._receipt_recorded(state.session_id, found, token):
            log.error(
                "a receipt of session %s is not among those its audit entry committed to: "
                "the receipts were altered (run `logwarden audit verify`)",
                state.session_id,
            )
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
        if found is None:
            return Erasure(
                "refused", "its record does not match the audit log; the operator has been told"
            )
        if found.end is None:
            return Erasure(
                "refused", "the chat has not ended yet (if it just ended, try again in a moment)"
            )
        # Not before the other person's chance to report it has passed: an erasure must not
        # let someone remove the evidence of what they just did. The window runs from the
        # end the log recorded (the store's ended_at is anyone's with the database to move).
        end_index, ended_at = found.end
        window = self._report_window_ms + (REPORT_GRACE_MS if self._report_window_ms else 0)
        window_closes = ended_at + window
        # Scheduled for the window's end, or for now; either way the request is durable with
        # its entry before anything is destroyed, and the purge finishes what a crash cut short.
        when = max(now, window_closes)
        asked = self._audit.entry(
            "erasure", at=now, session_id=state.session_id, until=when, end=end_index, window=window
        )
        self._store.set_erase_after(state.session_id, when, audit=[asked])
        if now < window_closes:
            return Erasure(
                "scheduled", "the other person can still report this chat until then", window_closes
            )
        self._shred([state.session_id], why="erased", by=SYSTEM)
        return Erasure("erased", "everything about this chat has been destroyed", now)

    def _receipt_recorded(self, session_id: str, found: ledger.Account, token: str) -> bool:
        """Whether ``token`` is one of the session's receipts, and its receipt rows are the
        ones its session entry committed to (a receipt row inserted in the database is not)."""
        record = self._store.session(session_id)
        if record is None or found.start is None:
            return False
        rows = [(r.slot, r.token_digest) for r in record.receipts]
        committed = metadata_commitment(record.session.audit_salt or b"", rows)
        return committed == found.start["receipts"] and receipt_digest(token) in {
            digest for _slot, digest in rows
        }

    def _state_of_receipt(self, token: str) -> RetentionState | None:
        if not is_well_formed(token):
            return None
        found = self._store.receipt(receipt_digest(token))
        return None if found is None else self._store.retention_state(found.session_id)

    def _shred(self, session_ids: list[str], *, why: str, by: str) -> tuple[int, int]:
        """Destroy the sessions' keys, then delete their rows: keys first, so a crash in
        between leaves only ciphertext nobody can open. Sessions whose store state is not the
        audit log's are left alone (logged). Returns (data keys, sessions) destroyed."""
        agreed = [s for s in _well_formed(session_ids) if self._account(s) is not None]
        if not agreed:
            return 0, 0
        now = self._clock.now_ms()
        self._audit.append([self._destroyed("delete", s, at=now, by=by, why=why) for s in agreed])
        keys = self._keystore.destroy_data_keys(agreed)
        self._store.delete_sessions(agreed)
        return keys, len(agreed)

    # -- purge -------------------------------------------------------------------------------

    def purge(self, *, progress: Progress | None = None, by: str = SYSTEM) -> PurgeSummary:
        """Destroy every key whose class has expired, then the rows they sealed; ``by`` is
        who runs it (the operator of ``logwarden purge``), recorded in each destruction."""
        with self._lock:
            return self._purge(progress or (lambda _step: None), by)

    def _purge(self, say: Progress, by: str) -> PurgeSummary:
        now = self._clock.now_ms()
        policy = self._policy

        say("reconciling reported and held sessions")
        self._reconcile(by)

        say("carrying out erasures")
        erased_keys, erased = self._shred(self._store.pending_erasures(now), why="erased", by=by)

        say("destroying expired keys")
        expired = [
            b
            for b in self._keystore.buckets()
            if b.cls != HOLD
            and (expires := policy.expires_at(b.cls, b.day)) is not None
            and expires <= now
        ]
        for start in range(0, len(expired), _BUCKETS_PER_ENTRY):
            self._record(
                "keys",
                at=now,
                buckets=[[b.id, b.data_keys] for b in expired[start : start + _BUCKETS_PER_ENTRY]],
                by=by,
                policy=policy.periods(),
            )
        destroyed = self._keystore.destroy_buckets([b.id for b in expired])
        classes = Counter(b.cls for b in expired)

        say("deleting expired rows")
        messages = self._drop_days("messages", policy.last_expired_day(SESSION, now), now, by)
        addresses = self._drop_days("addresses", policy.last_expired_day(RAW_IP, now), now, by)
        gone = self._store.expired_sessions(
            metadata_through_day=policy.last_expired_day(METADATA, now),
            reported_before=(policy.last_expired_day(REPORTED, now) + 1) * DAY_MS,
        )
        leftover_keys, deleted = self._shred(gone, why="expired", by=by)
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
            self._record("kek", at=now, by=by)
            self._keystore.rotate_kek_at(now)
            rotate = True
        return PurgeSummary(
            as_of=now,
            buckets_destroyed=dict(classes),
            data_keys_destroyed=destroyed.data_keys + erased_keys + leftover_keys,
            messages_deleted=messages,
            addresses_deleted=addresses,
            sessions_deleted=deleted,
            sessions_erased=erased,
            kek_rotated=rotate,
            wal_truncated=destroyed.wal_truncated and reclaimed,
        )

    def _drop_days(self, table: DayTable, through_day: int, now: int, by: str) -> int:
        """Delete a table's expired day buckets, recording first whose rows they hold (their
        keys went with their day's bucket, which the purge's ``keys`` entry names)."""
        sessions = _well_formed(self._store.sessions_in_days(table, through_day=through_day))
        if sessions:
            self._audit.append(
                [
                    self._destroyed(
                        "shred", s, at=now, by=by, what=[table], why="expired", keys="bucket"
                    )
                    for s in sessions
                ]
            )
        return self._store.drop_days(table, through_day=through_day)

    def _reconcile(self, by: str) -> None:
        """Bring every reported or held session, and every key under a hold, in line.

        Costs a few queries per preserved session (they are few: reports, flags and holds).
        One that fails is logged and left for the next purge; the rest of the purge goes on.
        """
        sessions = set(
            _well_formed([state.session_id for state in self._store.preserved_sessions()])
        )
        sessions.update(self._keystore.sessions_in_class(HOLD))
        for session_id in sorted(sessions):
            try:
                self.apply(session_id, by=by)
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


def _well_formed(session_ids: list[str]) -> list[str]:
    """The ids that can be sessions of ours; the others (SQLite keeps bytes, or anything,
    in a text column) are logged and left alone, so one altered row cannot stop every purge."""
    kept = [s for s in session_ids if isinstance(s, str)]
    if len(kept) != len(session_ids):
        odd = [s for s in session_ids if not isinstance(s, str)]
        log.error(
            "%d session ids in the store are not text (%s): left alone; run `logwarden audit "
            "verify`",
            len(odd),
            ", ".join(repr(s)[:40] for s in odd[:5]),
        )
    return kept
