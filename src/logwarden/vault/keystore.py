"""The keystore: bucket keys, and the session data keys they wrap, apart from the log store.

Three levels (docs/retention.md):

1. A **data key** per session and purpose (``text``: messages, interests and report comments;
   ``address``: raw IP addresses), random, used to seal that session's values in the log store.
2. A **bucket key** per (retention class, day), random, wrapping the data keys whose records
   expire with that day's class. Expiry destroys the bucket key and the data keys under it.
3. **Key-encryption keys** in ``kek.json`` wrap the bucket keys and rotate: an earlier copy of
   this database is useless once the keys that wrapped it are gone (and its stale buckets have
   been re-keyed, below).

Everything lives in ``keys/keystore.db``, a SQLite file beside the key files and never in the
log store: a copy of the log store alone decrypts nothing, and erasing a session deletes its
wrapped data keys, so even an earlier copy of the log store holds nothing that today's keystore
opens. Wrapped keys are AES-256-GCM tokens whose associated data names what they are and where
they sit (bucket id and KEK id; session id, purpose and bucket id), so a wrapped key copied to
another row does not open.

A bucket that loses a data key while it lives is **re-keyed**. Rotation re-wraps bucket keys
but never changes them, so after ``destroy_data_keys`` (erasure, early destruction) the bucket
key that wraps the destroyed key is still here, under today's KEK; an earlier copy of this
database still holds the destroyed key wrapped under it, and the two together would open it
until the bucket expires (never, for the hold bucket ``hold:0``). So each bucket that loses a
key is marked in ``stale_buckets``, in the transaction that takes the key, as is the bucket a
key leaves by ``move_data_key(..., rekey_source=True)`` (a key let go from a hold). Later and in
a batch (the purge), ``rekey_stale`` gives each a new random key and re-wraps the data keys it
still holds under that, one transaction per bucket, so a crash leaves the old key with the old
wrappings. Moving a key out of a day bucket into a longer one needs none: the key lives on.

Deleting is made real on disk: ``secure_delete`` zeroes deleted rows in the database file, and
a ``wal_checkpoint(TRUNCATE)`` after every destruction copies those zeroed pages over the old
ones and empties the WAL, which would otherwise keep earlier versions of the pages.

Written by hand on the standard ``sqlite3`` module: the keystore is always a local file, a
handful of rows per session, and it needs ``BEGIN IMMEDIATE`` as its lock across processes
(``serve`` and ``logwarden purge`` may run at once).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from logwarden.errors import DataDirError, VaultError
from logwarden.vault._aead import KEY_BYTES, NONCE_BYTES, open_token, seal_at
from logwarden.vault.keys import KEK_FILE_NAME, KeyEncryptionKey, load_keks, write_keks

__all__ = [
    "ADDRESS",
    "TEXT",
    "Bucket",
    "DestroyResult",
    "KeyStore",
    "NewDataKey",
    "bucket_id",
]

TEXT = "text"
ADDRESS = "address"
KEYSTORE_FILE_NAME = "keystore.db"
# Version 2 adds stale_buckets; a version-1 file gets it when opened (every statement is
# idempotent, so a file of any earlier version is brought up to date by running them all).
_SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    id TEXT PRIMARY KEY,
    class TEXT NOT NULL,
    day INTEGER NOT NULL,
    kek_id TEXT NOT NULL,
    wrapped BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS data_keys (
    session_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    bucket_id TEXT NOT NULL REFERENCES buckets(id),
    wrapped BLOB NOT NULL,
    PRIMARY KEY (session_id, purpose)
);
CREATE INDEX IF NOT EXISTS ix_data_keys_bucket ON data_keys(bucket_id);
CREATE TABLE IF NOT EXISTS stale_buckets (
    id TEXT PRIMARY KEY REFERENCES buckets(id)
);
"""
_BUCKET_AAD = b"logwarden bucket key v1\x00"
_DATA_KEY_AAD = b"logwarden data key v1\x00"


def bucket_id(cls: str, day: int) -> str:
    return f"{cls}:{day}"


class NewDataKey(NamedTuple):
    session_id: str
    purpose: str
    cls: str  # the retention class of the bucket that wraps it
    day: int


@dataclass(frozen=True, slots=True)
class Bucket:
    id: str
    cls: str
    day: int
    kek_id: str
    data_keys: int


@dataclass(frozen=True, slots=True)
class DestroyResult:
    buckets: int
    data_keys: int
    wal_truncated: bool  # False if a reader kept the WAL from being emptied (retried later)


class KeyStore:
    """The keystore of one data directory; one instance per process, safe across threads."""

    def __init__(
        self, keys_dir: Path, *, random_bytes: Callable[[int], bytes] = os.urandom
    ) -> None:
        self._keys_dir = keys_dir
        self._random = random_bytes
        self._lock = threading.RLock()
        path = keys_dir / KEYSTORE_FILE_NAME
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise VaultError(f"could not open the keystore {path}: {exc}") from None
        try:
            for pragma in (
                "journal_mode=WAL",
                "synchronous=FULL",
                "secure_delete=ON",
                "foreign_keys=ON",
                "busy_timeout=10000",
            ):
                self._db.execute(f"PRAGMA {pragma}")
            if self._db.execute("PRAGMA user_version").fetchone()[0] < _SCHEMA_VERSION:
                # In one write transaction: another process opening the file at once waits,
                # then finds it up to date; a failure leaves it as it was.
                self._db.executescript(
                    f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version={_SCHEMA_VERSION}; COMMIT;"
                )
        except sqlite3.Error as exc:
            self._db.close()  # rolls back a migration left half-done
            raise VaultError(f"could not open the keystore {path}: {exc}") from None
        self._keks: dict[str, KeyEncryptionKey] = {}
        self._kek_stamp: tuple[int, int, int] | None = None
        try:
            self._refresh_keks()
        except BaseException:
            self._db.close()
            raise

    @classmethod
    def create(cls, keys_dir: Path, *, now_ms: int) -> None:
        """Write the first key-encryption key and an empty keystore (at initialisation)."""
        if (keys_dir / KEK_FILE_NAME).exists():
            return
        write_keks(keys_dir, [_new_kek(now_ms, os.urandom)])
        cls(keys_dir).close()

    # -- data keys ---------------------------------------------------------------------------

    def create_data_keys(self, wanted: Sequence[NewDataKey]) -> list[bytes]:
        """New random data keys, wrapped and durable on return; the raw keys, in order."""
        created: list[bytes] = []
        with self._transaction() as buckets:
            for session_id, purpose, cls, day in wanted:
                key = self._random(KEY_BYTES)
                where = bucket_id(cls, day)
                wrapped = self._wrap_data_key(buckets(cls, day), key, session_id, purpose, where)
                self._db.execute(
                    "INSERT INTO data_keys VALUES (?, ?, ?, ?)",
                    (session_id, purpose, where, wrapped),
                )
                created.append(key)
        return created

    def data_key(self, session_id: str, purpose: str) -> bytes | None:
        """The raw data key, or ``None`` if it was never made or has been destroyed."""
        with self._lock:
            row = self._query_one(
                "SELECT d.bucket_id, d.wrapped, b.kek_id, b.wrapped FROM data_keys d "
                "JOIN buckets b ON b.id = d.bucket_id WHERE d.session_id = ? AND d.purpose = ?",
                (session_id, purpose),
            )
            if row is None:
                return None
            where, wrapped, kek_id, wrapped_bucket = row
            bucket_key = self._unwrap_bucket(where, kek_id, wrapped_bucket)
            return _open_data_key(bucket_key, wrapped, session_id, purpose, where)

    def locate(self, session_id: str) -> dict[str, tuple[str, int]]:
        """Where each of a session's data keys is wrapped: purpose → (class, day)."""
        with self._lock:
            rows = self._query(
                "SELECT d.purpose, b.class, b.day FROM data_keys d "
                "JOIN buckets b ON b.id = d.bucket_id WHERE d.session_id = ?",
                (session_id,),
            )
        return {purpose: (cls, day) for purpose, cls, day in rows}

    def move_data_key(
        self, session_id: str, purpose: str, *, cls: str, day: int, rekey_source: bool = False
    ) -> bool:
        """Re-wrap a data key under the bucket (cls, day); the data stays as sealed.

        With ``rekey_source`` the bucket it leaves is marked stale (re-keyed by ``rekey_stale``):
        for a key let go from a bucket that outlives it, such as the hold bucket, which an
        earlier copy of this database would otherwise keep opening it with.
        False if the key does not exist (never made, or already destroyed).
        """
        target = bucket_id(cls, day)
        with self._transaction() as buckets:
            found = self._query_one(
                "SELECT bucket_id FROM data_keys WHERE session_id = ? AND purpose = ?",
                (session_id, purpose),
            )
            if found is None:
                return False
            if found[0] == target:
                return True
            key = self.data_key(session_id, purpose)
            assert key is not None  # the row exists and we hold the write lock
            wrapped = self._wrap_data_key(buckets(cls, day), key, session_id, purpose, target)
            self._db.execute(
                "UPDATE data_keys SET bucket_id = ?, wrapped = ? "
                "WHERE session_id = ? AND purpose = ?",
                (target, wrapped, session_id, purpose),
            )
            if rekey_source:
                self._db.execute("INSERT OR IGNORE INTO stale_buckets VALUES (?)", (found[0],))
        return True

    def destroy_data_keys(self, session_ids: Sequence[str], *, purpose: str | None = None) -> int:
        """Destroy these sessions' data keys (one purpose, or all); returns how many.

        The buckets they leave are marked stale in the same transaction (see ``rekey_stale``).
        """
        destroyed = 0
        with self._transaction():
            for start in range(0, len(session_ids), 500):
                chunk = session_ids[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                match = f"session_id IN ({marks})"
                params: tuple[str, ...] = tuple(chunk)
                if purpose is not None:
                    match += " AND purpose = ?"
                    params += (purpose,)
                stale = f"SELECT DISTINCT bucket_id FROM data_keys WHERE {match}"  # noqa: S608
                self._db.execute(f"INSERT OR IGNORE INTO stale_buckets {stale}", params)
                destroyed += self._db.execute(
                    f"DELETE FROM data_keys WHERE {match}",  # noqa: S608 - marks
                    params,
                ).rowcount
        if destroyed:
            self._truncate_wal()
        return destroyed

    # -- buckets -----------------------------------------------------------------------------

    def buckets(self) -> list[Bucket]:
        with self._lock:
            rows = self._query(
                "SELECT b.id, b.class, b.day, b.kek_id, count(d.session_id) FROM buckets b "
                "LEFT JOIN data_keys d ON d.bucket_id = b.id GROUP BY b.id ORDER BY b.day, b.id"
            )
        return [Bucket(*row) for row in rows]

    def sessions_in_class(self, cls: str) -> list[str]:
        """Sessions with a data key in a bucket of class ``cls``."""
        with self._lock:
            rows = self._query(
                "SELECT DISTINCT d.session_id FROM data_keys d "
                "JOIN buckets b ON b.id = d.bucket_id WHERE b.class = ?",
                (cls,),
            )
        return [row[0] for row in rows]

    def destroy_buckets(self, bucket_ids: Sequence[str]) -> DestroyResult:
        """Destroy these bucket keys and every data key they wrap, in one transaction."""
        keys = buckets = 0
        with self._transaction():
            for start in range(0, len(bucket_ids), 500):
                chunk = tuple(bucket_ids[start : start + 500])
                marks = ", ".join("?" * len(chunk))
                keys += self._db.execute(
                    f"DELETE FROM data_keys WHERE bucket_id IN ({marks})",  # noqa: S608 - marks
                    chunk,
                ).rowcount
                self._db.execute(
                    f"DELETE FROM stale_buckets WHERE id IN ({marks})",  # noqa: S608 - marks
                    chunk,
                )
                buckets += self._db.execute(
                    f"DELETE FROM buckets WHERE id IN ({marks})",  # noqa: S608 - marks
                    chunk,
                ).rowcount
        truncated = self._truncate_wal() if buckets or keys else True
        return DestroyResult(buckets=buckets, data_keys=keys, wal_truncated=truncated)

    def stale_buckets(self) -> list[str]:
        """The buckets that lost a data key since their key was made, waiting for a new one."""
        with self._lock:
            rows = self._query("SELECT id FROM stale_buckets ORDER BY id")
        return [row[0] for row in rows]

    def rekey_stale(self) -> int:
        """Give every stale bucket a new key, its remaining data keys re-wrapped under it.

        One write transaction per bucket: a crash leaves each bucket wholly under its old key
        (and still marked) or wholly under its new one. Returns how many buckets were re-keyed.
        """
        rekeyed = 0
        try:
            for where in self.stale_buckets():
                with self._transaction():
                    row = self._query_one(
                        "SELECT b.kek_id, b.wrapped FROM stale_buckets s "
                        "JOIN buckets b ON b.id = s.id WHERE s.id = ?",
                        (where,),
                    )
                    if row is None:  # re-keyed or destroyed meanwhile, by another process
                        continue
                    old = self._unwrap_bucket(where, *row)
                    new = self._random(KEY_BYTES)
                    for session_id, purpose, wrapped in self._query(
                        "SELECT session_id, purpose, wrapped FROM data_keys WHERE bucket_id = ?",
                        (where,),
                    ):
                        key = _open_data_key(old, wrapped, session_id, purpose, where)
                        self._db.execute(
                            "UPDATE data_keys SET wrapped = ? WHERE session_id = ? AND purpose = ?",
                            (
                                self._wrap_data_key(new, key, session_id, purpose, where),
                                session_id,
                                purpose,
                            ),
                        )
                    kek = self._newest_kek()
                    self._db.execute(
                        "UPDATE buckets SET kek_id = ?, wrapped = ? WHERE id = ?",
                        (kek.id, self._wrap_bucket(kek, where, new), where),
                    )
                    self._db.execute("DELETE FROM stale_buckets WHERE id = ?", (where,))
                rekeyed += 1
        finally:
            if rekeyed:
                # The old wrappings are zeroed in place (secure_delete); the WAL may still
                # hold earlier versions of their pages.
                with self._lock:
                    self._truncate_wal()
        return rekeyed

    # -- key-encryption keys -----------------------------------------------------------------

    def current_kek(self) -> KeyEncryptionKey:
        return self.key_encryption_keys()[-1]

    def key_encryption_keys(self) -> list[KeyEncryptionKey]:
        """The key-encryption keys on disk, oldest first (one, between rotations)."""
        with self._lock:
            self._refresh_keks()
            return list(self._keks.values())

    def rotate_kek_at(self, now_ms: int) -> KeyEncryptionKey:
        """Make a new key-encryption key, re-wrap every bucket key under it, destroy the rest.

        Crash-safe in order: the new key is added to ``kek.json`` before any bucket moves to it,
        and the old keys leave the file only after every bucket has moved (committed).
        """
        new = _new_kek(now_ms, self._random)
        with self._transaction():
            write_keks(self._keys_dir, [*self._keks.values(), new])
            for where, kek_id, wrapped in self._query("SELECT id, kek_id, wrapped FROM buckets"):
                key = self._unwrap_bucket(where, kek_id, wrapped)
                self._db.execute(
                    "UPDATE buckets SET kek_id = ?, wrapped = ? WHERE id = ?",
                    (new.id, self._wrap_bucket(new, where, key), where),
                )
        with self._transaction():
            # Under the write lock like the first write: a rotation by another process cannot
            # slip in between and have its new KEK dropped here. A KEK that still wraps a
            # bucket (because such a rotation ran just before) stays.
            used = {row[0] for row in self._query("SELECT DISTINCT kek_id FROM buckets")}
            newest = self._newest_kek()
            keep = [k for k in self._keks.values() if k.id in used or k is newest]
            if len(keep) < len(self._keks):
                write_keks(self._keys_dir, keep)
        with self._lock:
            self._refresh_keks()
            self._truncate_wal()
        return new

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- internals ---------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[Callable[[str, int], bytes]]:
        """A write transaction holding the keystore's lock across processes.

        Yields a function giving the raw key of bucket (cls, day), made if missing.
        """
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise VaultError(f"the keystore is unavailable: {exc}") from None
            try:
                # Another process may have rotated the key-encryption keys: wrap under the
                # newest on disk, never under one that has been destroyed.
                self._refresh_keks()
                yield self._bucket_key
            except sqlite3.Error as exc:  # e.g. a data key made twice: nothing of it is kept
                self._db.execute("ROLLBACK")
                raise VaultError(f"could not write the keystore: {exc}") from None
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise VaultError(f"could not write the keystore: {exc}") from None

    def _bucket_key(self, cls: str, day: int) -> bytes:
        where = bucket_id(cls, day)
        row = self._query_one("SELECT kek_id, wrapped FROM buckets WHERE id = ?", (where,))
        if row is not None:
            return self._unwrap_bucket(where, *row)
        key = self._random(KEY_BYTES)
        kek = self._newest_kek()
        self._db.execute(
            "INSERT INTO buckets VALUES (?, ?, ?, ?, ?)",
            (where, cls, day, kek.id, self._wrap_bucket(kek, where, key)),
        )
        return key

    def _newest_kek(self) -> KeyEncryptionKey:
        return next(reversed(self._keks.values()))

    def _wrap_bucket(self, kek: KeyEncryptionKey, where: str, key: bytes) -> bytes:
        aad = _BUCKET_AAD + where.encode() + b"\x00" + kek.id.encode()
        return seal_at(AESGCM(kek.key), key, aad, self._random(NONCE_BYTES))

    def _unwrap_bucket(self, where: str, kek_id: str, wrapped: bytes) -> bytes:
        kek = self._keks.get(kek_id)
        if kek is None:
            self._refresh_keks()
            kek = self._keks.get(kek_id)
        if kek is None:
            raise VaultError(f"bucket {where} is wrapped by key {kek_id}, which is not in kek.json")
        aad = _BUCKET_AAD + where.encode() + b"\x00" + kek_id.encode()
        return open_token(AESGCM(kek.key), wrapped, aad)

    def _wrap_data_key(
        self, bucket_key: bytes, key: bytes, session_id: str, purpose: str, where: str
    ) -> bytes:
        aad = _data_key_aad(session_id, purpose, where)
        return seal_at(AESGCM(bucket_key), key, aad, self._random(NONCE_BYTES))

    def _refresh_keks(self) -> None:
        path = self._keys_dir / KEK_FILE_NAME
        try:
            st = path.stat()
        except FileNotFoundError:
            raise DataDirError(f"no key-encryption keys at {path}: run `logwarden init`") from None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._kek_stamp:
            self._keks = {k.id: k for k in load_keks(self._keys_dir)}
            self._kek_stamp = stamp

    def _truncate_wal(self) -> bool:
        """Empty the WAL so no earlier page version of a destroyed key stays in it."""
        # Under the lock: the connection is shared, and a checkpoint run while another thread
        # is inside a transaction on it makes that thread's COMMIT fail.
        with self._lock:
            for _ in range(50):
                busy = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                if not busy:
                    return True
                time.sleep(0.02)  # a reader in another process holds a snapshot; it ends soon
        return False

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise VaultError(f"could not read the keystore: {exc}") from None

    def _query_one(self, sql: str, params: Sequence[object] = ()) -> tuple[Any, ...] | None:
        rows = self._query(sql, params)
        return rows[0] if rows else None


def _data_key_aad(session_id: str, purpose: str, where: str) -> bytes:
    return _DATA_KEY_AAD + f"{session_id}\x00{purpose}\x00{where}".encode()


def _open_data_key(
    bucket_key: bytes, wrapped: bytes, session_id: str, purpose: str, where: str
) -> bytes:
    return open_token(AESGCM(bucket_key), wrapped, _data_key_aad(session_id, purpose, where))


def _new_kek(now_ms: int, random_bytes: Callable[[int], bytes]) -> KeyEncryptionKey:
    return KeyEncryptionKey(
        id=f"kek-{now_ms}-{random_bytes(4).hex()}", created_at=now_ms, key=random_bytes(KEY_BYTES)
    )
