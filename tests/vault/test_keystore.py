"""The keystore: data keys under bucket keys under key-encryption keys, and their destruction.

Every test runs on a real ``keystore.db`` and ``kek.json`` in a temporary directory, with real
AES-GCM; what is on disk is read directly (sqlite3, file bytes), not through ``KeyStore``.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import logwarden.vault.keystore as keystore_module
from logwarden.errors import DataDirError, VaultError
from logwarden.vault import ADDRESS, TEXT, Bucket, DestroyResult, KeyStore, NewDataKey
from logwarden.vault.keys import KeyEncryptionKey
from tests.vault.conftest import (
    DAY,
    HOLD,
    HOLD_CLASS,
    KEYSTORE_FILES,
    OTHER,
    RAW_IP_CLASS,
    SESSION,
    SESSION_CLASS,
    T0,
    TODAY,
    TOMORROW,
    Disk,
    OpenKeyStore,
    bucket_rows,
    data_key_rows,
    execute,
    files_holding,
    kek_file,
    run_in_threads,
    session_keys,
    sid,
    stale_rows,
    unwrap_bucket,
)

RAW_TODAY = f"{RAW_IP_CLASS}:{DAY}"
RAW_TOMORROW = f"{RAW_IP_CLASS}:{DAY + 1}"


class TestDataKeys:
    def test_round_trip(self, keystore: KeyStore) -> None:
        """Each data key made is the key read back for its session and purpose."""
        wanted = session_keys(SESSION, OTHER)
        keys = keystore.create_data_keys(wanted)
        assert len(keys) == len(wanted)
        for new, key in zip(wanted, keys, strict=True):
            assert len(key) == 32
            assert keystore.data_key(new.session_id, new.purpose) == key

    def test_random_and_distinct(
        self, keystore: KeyStore, tmp_path: Path, open_keystore: OpenKeyStore
    ) -> None:
        """Data keys are distinct across sessions, purposes and keystores, and are not zero."""
        keys = keystore.create_data_keys(session_keys(*(sid(n) for n in range(100))))
        other = open_keystore(tmp_path / "elsewhere")
        keys += other.create_data_keys(session_keys(*(sid(n) for n in range(100))))
        assert len(set(keys)) == 400
        assert bytes(32) not in keys

    def test_raw_keys_are_not_stored(self, keystore: KeyStore, keys_dir: Path) -> None:
        """Only wrapped keys reach disk: no raw data key is in any file of the keys dir."""
        keys = keystore.create_data_keys(session_keys(SESSION, OTHER))
        assert len(data_key_rows(keys_dir)) == 4
        for key in keys:
            assert files_holding(keys_dir, key) == []

    def test_survive_reopening(self, keys_dir: Path, open_keystore: OpenKeyStore) -> None:
        """A keystore opened afresh (after a restart) gives the same data keys."""
        first = open_keystore(keys_dir)
        keys = first.create_data_keys(session_keys(SESSION))
        first.close()
        again = open_keystore(keys_dir)
        assert [again.data_key(SESSION, TEXT), again.data_key(SESSION, ADDRESS)] == keys

    def test_purposes_are_separate_keys(self, keystore: KeyStore, keys_dir: Path) -> None:
        """A session's text and address keys differ and sit in their classes' buckets."""
        text, address = keystore.create_data_keys(session_keys(SESSION))
        assert text != address
        rows = data_key_rows(keys_dir)
        assert rows[SESSION, TEXT][0] == TODAY
        assert rows[SESSION, ADDRESS][0] == f"{RAW_IP_CLASS}:{DAY}"
        assert rows[SESSION, TEXT][1] != rows[SESSION, ADDRESS][1]

    def test_unknown_key_is_none(self, keystore: KeyStore) -> None:
        """A key never made reads as None, for an unknown session or purpose alike."""
        keystore.create_data_keys([NewDataKey(SESSION, TEXT, SESSION_CLASS, DAY)])
        assert keystore.data_key(OTHER, TEXT) is None
        assert keystore.data_key(SESSION, ADDRESS) is None

    def test_duplicate_create_fails_and_changes_nothing(
        self, keystore: KeyStore, keys_dir: Path
    ) -> None:
        """Making a key that exists fails as a VaultError; the whole batch is undone."""
        [first] = keystore.create_data_keys([NewDataKey(SESSION, TEXT, SESSION_CLASS, DAY)])
        rows, buckets = data_key_rows(keys_dir), bucket_rows(keys_dir)
        batch = [
            NewDataKey(OTHER, TEXT, SESSION_CLASS, DAY + 1),  # new, in a new bucket
            NewDataKey(SESSION, TEXT, SESSION_CLASS, DAY + 2),  # already exists
        ]
        with pytest.raises(VaultError):
            keystore.create_data_keys(batch)
        assert data_key_rows(keys_dir) == rows
        assert bucket_rows(keys_dir) == buckets
        assert keystore.data_key(SESSION, TEXT) == first
        assert keystore.data_key(OTHER, TEXT) is None
        # The keystore is still usable: the new key alone can be made now.
        [other] = keystore.create_data_keys(batch[:1])
        assert keystore.data_key(OTHER, TEXT) == other

    def test_keys_are_grouped_in_buckets(self, keystore: KeyStore) -> None:
        """buckets() lists each (class, day) once, under the current KEK, with its key count."""
        keystore.create_data_keys(session_keys(SESSION, OTHER) + session_keys(sid(1), day=DAY + 1))
        kek = keystore.current_kek().id
        assert keystore.buckets() == [
            Bucket(f"{RAW_IP_CLASS}:{DAY}", RAW_IP_CLASS, DAY, kek, 2),
            Bucket(TODAY, SESSION_CLASS, DAY, kek, 2),
            Bucket(f"{RAW_IP_CLASS}:{DAY + 1}", RAW_IP_CLASS, DAY + 1, kek, 1),
            Bucket(TOMORROW, SESSION_CLASS, DAY + 1, kek, 1),
        ]

    def test_sessions_in_class(self, keystore: KeyStore) -> None:
        """sessions_in_class names each session with a key in that class once."""
        keystore.create_data_keys(session_keys(SESSION, OTHER))
        keystore.move_data_key(OTHER, TEXT, cls=HOLD_CLASS, day=0)
        keystore.move_data_key(OTHER, ADDRESS, cls=HOLD_CLASS, day=0)
        assert keystore.sessions_in_class(HOLD_CLASS) == [OTHER]
        assert sorted(keystore.sessions_in_class(SESSION_CLASS)) == [SESSION]
        assert keystore.sessions_in_class("reported") == []


class TestLocateAndMove:
    def test_locate(self, keystore: KeyStore) -> None:
        """locate names the class and day of each of a session's keys; nothing if unknown."""
        keystore.create_data_keys(session_keys(SESSION))
        assert keystore.locate(SESSION) == {
            TEXT: (SESSION_CLASS, DAY),
            ADDRESS: (RAW_IP_CLASS, DAY),
        }
        assert keystore.locate(OTHER) == {}

    def test_move_rewraps_the_same_key(self, keystore: KeyStore, keys_dir: Path) -> None:
        """Moving re-wraps a key under the new bucket: new wrapped bytes, the same raw key."""
        text, _ = keystore.create_data_keys(session_keys(SESSION))
        _, before = data_key_rows(keys_dir)[SESSION, TEXT]
        assert keystore.move_data_key(SESSION, TEXT, cls=HOLD_CLASS, day=0) is True
        where, after = data_key_rows(keys_dir)[SESSION, TEXT]
        assert where == f"{HOLD_CLASS}:0"
        assert after != before
        assert keystore.data_key(SESSION, TEXT) == text
        assert keystore.locate(SESSION)[TEXT] == (HOLD_CLASS, 0)
        counts = {b.id: b.data_keys for b in keystore.buckets()}
        assert counts[f"{HOLD_CLASS}:0"] == 1
        assert counts[TODAY] == 0

    def test_moved_key_survives_its_old_bucket(self, keystore: KeyStore) -> None:
        """Destroying the bucket a key was moved out of leaves the moved key intact."""
        text, _ = keystore.create_data_keys(session_keys(SESSION))
        keystore.move_data_key(SESSION, TEXT, cls=HOLD_CLASS, day=0)
        result = keystore.destroy_buckets([TODAY])
        assert result.data_keys == 0
        assert keystore.data_key(SESSION, TEXT) == text

    def test_move_to_the_same_bucket_is_a_no_op(self, keystore: KeyStore, keys_dir: Path) -> None:
        """Moving a key to the bucket it is in succeeds and rewrites nothing."""
        keystore.create_data_keys(session_keys(SESSION))
        rows, buckets = data_key_rows(keys_dir), bucket_rows(keys_dir)
        assert keystore.move_data_key(SESSION, TEXT, cls=SESSION_CLASS, day=DAY) is True
        assert data_key_rows(keys_dir) == rows
        assert bucket_rows(keys_dir) == buckets

    def test_move_missing_key_returns_false(self, keystore: KeyStore, keys_dir: Path) -> None:
        """Moving a key never made, or destroyed, returns False and makes no bucket."""
        keystore.create_data_keys(session_keys(SESSION))
        keystore.destroy_data_keys([SESSION], purpose=ADDRESS)
        assert keystore.move_data_key(OTHER, TEXT, cls=HOLD_CLASS, day=0) is False
        assert keystore.move_data_key(SESSION, ADDRESS, cls=HOLD_CLASS, day=0) is False
        assert f"{HOLD_CLASS}:0" not in bucket_rows(keys_dir)
        assert keystore.data_key(SESSION, ADDRESS) is None


class TestDestroy:
    def test_destroy_buckets_takes_exactly_their_keys(self, keystore: KeyStore) -> None:
        """A destroyed bucket's keys are gone; keys in every other bucket still open."""
        today = [sid(n) for n in range(10)]
        tomorrow = [sid(n) for n in range(10, 15)]
        keys = dict(
            zip(
                session_keys(*today) + session_keys(*tomorrow, day=DAY + 1),
                keystore.create_data_keys(
                    session_keys(*today) + session_keys(*tomorrow, day=DAY + 1)
                ),
                strict=True,
            )
        )
        result = keystore.destroy_buckets([TODAY])
        assert result == DestroyResult(buckets=1, data_keys=10, wal_truncated=True)
        for new, key in keys.items():
            expected = None if (new.cls, new.day) == (SESSION_CLASS, DAY) else key
            assert keystore.data_key(new.session_id, new.purpose) == expected, new
        assert TODAY not in {b.id for b in keystore.buckets()}

    def test_destroy_result_counts(self, keystore: KeyStore) -> None:
        """DestroyResult counts the buckets and keys that existed, not the ids asked for."""
        keystore.create_data_keys(session_keys(SESSION, OTHER) + session_keys(sid(1), day=DAY + 1))
        keystore.move_data_key(sid(1), TEXT, cls=HOLD_CLASS, day=0)  # TOMORROW is now empty
        result = keystore.destroy_buckets([TODAY, TOMORROW, "session:1", f"{RAW_IP_CLASS}:{DAY}"])
        assert result == DestroyResult(buckets=3, data_keys=4, wal_truncated=True)
        assert keystore.destroy_buckets([TODAY]) == DestroyResult(0, 0, wal_truncated=True)
        assert keystore.destroy_buckets([]) == DestroyResult(0, 0, wal_truncated=True)
        assert {b.id for b in keystore.buckets()} == {
            f"{HOLD_CLASS}:0",
            f"{RAW_IP_CLASS}:{DAY + 1}",
        }

    def test_destroy_many_buckets_at_once(self, keystore: KeyStore) -> None:
        """More buckets than one statement's parameters are destroyed in one call."""
        wanted = [NewDataKey(sid(n), TEXT, SESSION_CLASS, n) for n in range(1200)]
        keystore.create_data_keys([*wanted, NewDataKey(SESSION, TEXT, HOLD_CLASS, 0)])
        result = keystore.destroy_buckets([f"{SESSION_CLASS}:{n}" for n in range(1200)])
        assert (result.buckets, result.data_keys) == (1200, 1200)
        assert [b.id for b in keystore.buckets()] == [f"{HOLD_CLASS}:0"]

    def test_destroy_data_keys_by_session(self, keystore: KeyStore) -> None:
        """Destroying a session's keys takes both purposes and leaves its bucket and others."""
        keys = keystore.create_data_keys(session_keys(SESSION, OTHER))
        assert keystore.destroy_data_keys([SESSION]) == 2
        assert keystore.data_key(SESSION, TEXT) is None
        assert keystore.data_key(SESSION, ADDRESS) is None
        assert [keystore.data_key(OTHER, TEXT), keystore.data_key(OTHER, ADDRESS)] == keys[2:]
        assert {b.id: b.data_keys for b in keystore.buckets()}[TODAY] == 1
        assert keystore.destroy_data_keys([SESSION]) == 0

    def test_destroy_data_keys_by_purpose(self, keystore: KeyStore) -> None:
        """Destroying one purpose leaves the session's other key."""
        text, _, other_text, other_address = keystore.create_data_keys(session_keys(SESSION, OTHER))
        assert keystore.destroy_data_keys([SESSION, sid(99)], purpose=ADDRESS) == 1
        assert keystore.data_key(SESSION, ADDRESS) is None
        assert keystore.data_key(SESSION, TEXT) == text
        assert keystore.data_key(OTHER, TEXT) == other_text
        assert keystore.data_key(OTHER, ADDRESS) == other_address

    @pytest.mark.parametrize("purpose", [None, TEXT])
    def test_destroy_data_keys_of_many_sessions(
        self, keystore: KeyStore, purpose: str | None
    ) -> None:
        """More sessions than one statement's parameters are destroyed in one call."""
        sessions = [sid(n) for n in range(1100)]
        keystore.create_data_keys(session_keys(*sessions, OTHER))
        expected = 1100 if purpose else 2200
        assert keystore.destroy_data_keys(sessions, purpose=purpose) == expected
        assert all(keystore.data_key(s, TEXT) is None for s in sessions)
        assert keystore.data_key(OTHER, TEXT) is not None
        remaining = sum(b.data_keys for b in keystore.buckets())
        assert remaining == (2 + 1100 if purpose else 2)


# The schema of version 1, as it was: no stale_buckets.
V1_SCHEMA = """
CREATE TABLE buckets (
    id TEXT PRIMARY KEY,
    class TEXT NOT NULL,
    day INTEGER NOT NULL,
    kek_id TEXT NOT NULL,
    wrapped BLOB NOT NULL
);
CREATE TABLE data_keys (
    session_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    bucket_id TEXT NOT NULL REFERENCES buckets(id),
    wrapped BLOB NOT NULL,
    PRIMARY KEY (session_id, purpose)
);
CREATE INDEX ix_data_keys_bucket ON data_keys(bucket_id);
PRAGMA user_version=1;
"""


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """A vault token made with plain AES-GCM: version 1 || nonce || ciphertext || tag."""
    nonce = os.urandom(12)
    return b"\x01" + nonce + AESGCM(key).encrypt(nonce, plaintext, b"\x01" + aad)


def schema_of(keys_dir: Path) -> tuple[int, set[str]]:
    """keystore.db's user_version and table names, read straight from the file."""
    db = sqlite3.connect(f"file:{keys_dir / 'keystore.db'}?mode=ro", uri=True)
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        db.close()
    return version, tables


class TestRekeying:
    """Buckets that lose a data key while they live are marked stale, then re-keyed."""

    def test_destroy_marks_the_buckets_it_takes_from(
        self, keystore: KeyStore, keys_dir: Path
    ) -> None:
        """destroy_data_keys marks exactly the buckets that lost a key, emptied ones too."""
        keystore.create_data_keys(session_keys(SESSION, OTHER) + session_keys(sid(1), day=DAY + 1))
        assert keystore.stale_buckets() == []
        assert keystore.destroy_data_keys([SESSION], purpose=TEXT) == 1
        assert keystore.stale_buckets() == [TODAY]
        assert keystore.destroy_data_keys([sid(1), sid(99)]) == 2  # empties both its buckets
        assert keystore.stale_buckets() == sorted([TODAY, TOMORROW, RAW_TOMORROW])
        assert stale_rows(keys_dir) == keystore.stale_buckets()
        assert keystore.destroy_data_keys([sid(99)]) == 0  # nothing taken, nothing marked
        assert keystore.destroy_data_keys([SESSION], purpose=TEXT) == 0
        assert stale_rows(keys_dir) == sorted([TODAY, TOMORROW, RAW_TOMORROW])

    def test_destroy_marks_many_sessions_buckets(self, keystore: KeyStore) -> None:
        """Sessions in many buckets, more than one statement's parameters: all are marked."""
        wanted = [NewDataKey(sid(n), TEXT, SESSION_CLASS, n % 7) for n in range(1100)]
        keystore.create_data_keys([*wanted, NewDataKey(SESSION, TEXT, HOLD_CLASS, 0)])
        assert keystore.destroy_data_keys([sid(n) for n in range(1100)]) == 1100
        assert keystore.stale_buckets() == sorted(f"{SESSION_CLASS}:{d}" for d in range(7))

    def test_move_marks_its_source_only_when_asked(
        self, keystore: KeyStore, keys_dir: Path
    ) -> None:
        """A plain move marks nothing; one with rekey_source marks the bucket the key left,
        and only if the key did leave one."""
        keystore.create_data_keys(session_keys(SESSION, OTHER))
        assert keystore.move_data_key(SESSION, TEXT, cls=HOLD_CLASS, day=0) is True
        assert keystore.move_data_key(OTHER, TEXT, cls=HOLD_CLASS, day=0) is True
        assert keystore.stale_buckets() == []
        # Into the bucket it is in, or a key that does not exist: no key leaves a bucket.
        assert keystore.move_data_key(SESSION, TEXT, cls=HOLD_CLASS, day=0, rekey_source=True)
        missing = keystore.move_data_key(sid(9), TEXT, cls=HOLD_CLASS, day=0, rekey_source=True)
        assert missing is False
        assert keystore.stale_buckets() == []
        assert keystore.move_data_key(SESSION, TEXT, cls=SESSION_CLASS, day=DAY, rekey_source=True)
        assert keystore.data_key(SESSION, TEXT) is not None
        assert keystore.stale_buckets() == [HOLD]
        assert stale_rows(keys_dir) == [HOLD]

    def test_rekey_gives_new_bucket_keys_and_keeps_data_keys(
        self, keystore: KeyStore, keys_dir: Path
    ) -> None:
        """rekey_stale re-keys the stale buckets alone, under the current KEK, re-wraps every
        key left in them, keeps their raw bytes, and clears the marks."""
        wanted = session_keys(SESSION, OTHER, sid(1)) + session_keys(sid(2), day=DAY + 1)
        made = dict(zip(wanted, keystore.create_data_keys(wanted), strict=True))
        keystore.rotate_kek_at(T0 + 1)  # the buckets' KEK is not the first one
        keystore.destroy_data_keys([SESSION], purpose=TEXT)
        keystore.destroy_data_keys([sid(1)], purpose=ADDRESS)
        rows, buckets = data_key_rows(keys_dir), bucket_rows(keys_dir)
        raw = {b: unwrap_bucket(keys_dir, b) for b in buckets}
        kek = keystore.rotate_kek_at(T0 + 2)

        assert keystore.rekey_stale() == 2

        assert stale_rows(keys_dir) == keystore.stale_buckets() == []
        for bucket in (TODAY, RAW_TODAY):
            assert unwrap_bucket(keys_dir, bucket) != raw[bucket], bucket
            assert bucket_rows(keys_dir)[bucket][0] == kek.id
        for bucket in (TOMORROW, RAW_TOMORROW):  # not stale: untouched
            assert unwrap_bucket(keys_dir, bucket) == raw[bucket]
            assert bucket_rows(keys_dir)[bucket][1] != buckets[bucket][1]  # by the rotation only
        after = data_key_rows(keys_dir)
        assert set(after) == set(rows)
        for where, (bucket, wrapped) in after.items():
            assert bucket == rows[where][0]
            assert (wrapped != rows[where][1]) is (bucket in (TODAY, RAW_TODAY)), where
        for new, key in made.items():
            gone = (new.session_id, new.purpose) in {(SESSION, TEXT), (sid(1), ADDRESS)}
            assert keystore.data_key(new.session_id, new.purpose) == (None if gone else key)
        assert keystore.rekey_stale() == 0

    def test_rekey_an_emptied_bucket(self, keystore: KeyStore, keys_dir: Path) -> None:
        """A bucket left with no data key is re-keyed too, and takes new keys afterwards."""
        keystore.create_data_keys([NewDataKey(SESSION, TEXT, SESSION_CLASS, DAY)])
        keystore.destroy_data_keys([SESSION])
        old = unwrap_bucket(keys_dir, TODAY)
        assert keystore.rekey_stale() == 1
        assert unwrap_bucket(keys_dir, TODAY) != old
        assert [b.data_keys for b in keystore.buckets()] == [0]
        [key] = keystore.create_data_keys([NewDataKey(OTHER, TEXT, SESSION_CLASS, DAY)])
        assert keystore.data_key(OTHER, TEXT) == key

    def test_nothing_stale_is_a_no_op(self, keystore: KeyStore, keys_dir: Path) -> None:
        """With nothing stale, rekey_stale returns 0 and changes no row, empty or not."""
        assert keystore.rekey_stale() == 0
        keystore.create_data_keys(session_keys(SESSION, OTHER))
        keystore.move_data_key(SESSION, TEXT, cls=HOLD_CLASS, day=0)
        rows, buckets = data_key_rows(keys_dir), bucket_rows(keys_dir)
        assert keystore.rekey_stale() == 0
        assert data_key_rows(keys_dir) == rows
        assert bucket_rows(keys_dir) == buckets

    def test_destroy_buckets_clears_their_marks(self, keystore: KeyStore, keys_dir: Path) -> None:
        """A destroyed bucket's mark goes with it (nothing left to re-key); others stay."""
        keystore.create_data_keys(session_keys(SESSION, OTHER) + session_keys(sid(1), day=DAY + 1))
        keystore.destroy_data_keys([SESSION, sid(1)], purpose=TEXT)
        assert keystore.stale_buckets() == [TODAY, TOMORROW]
        assert keystore.destroy_buckets([TODAY, RAW_TODAY]) == DestroyResult(2, 3, True)
        assert stale_rows(keys_dir) == [TOMORROW]
        assert keystore.destroy_buckets([TOMORROW]).buckets == 1
        assert stale_rows(keys_dir) == []
        assert keystore.rekey_stale() == 0

    def test_another_keystore_rekeys(self, keys_dir: Path, open_keystore: OpenKeyStore) -> None:
        """Marks made by one process are re-keyed by another (the purge); both keep working."""
        serve, purge = open_keystore(keys_dir), open_keystore(keys_dir)
        _, _, text, address = serve.create_data_keys(session_keys(SESSION, OTHER))
        serve.destroy_data_keys([SESSION])
        assert purge.stale_buckets() == [RAW_TODAY, TODAY]
        assert purge.rekey_stale() == 2
        assert serve.stale_buckets() == []
        assert [serve.data_key(OTHER, TEXT), serve.data_key(OTHER, ADDRESS)] == [text, address]
        [later] = serve.create_data_keys([NewDataKey(sid(1), TEXT, SESSION_CLASS, DAY)])
        assert purge.data_key(sid(1), TEXT) == later

    def test_version_1_keystore_is_migrated(self, keys_dir: Path) -> None:
        """A keystore.db of version 1, made by hand, opens as version 2 with stale_buckets,
        its keys intact, and its buckets can be marked and re-keyed."""
        for name in ("keystore.db", "keystore.db-wal", "keystore.db-shm"):
            (keys_dir / name).unlink(missing_ok=True)
        [(kek_id, kek)] = kek_file(keys_dir).items()
        bucket_key, mine, theirs = os.urandom(32), os.urandom(32), os.urandom(32)
        db = sqlite3.connect(keys_dir / "keystore.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(V1_SCHEMA)
        bucket_aad = b"logwarden bucket key v1\x00" + TODAY.encode() + b"\x00" + kek_id.encode()
        db.execute(
            "INSERT INTO buckets VALUES (?, ?, ?, ?, ?)",
            (TODAY, SESSION_CLASS, DAY, kek_id, seal(kek, bucket_key, bucket_aad)),
        )
        for session_id, key in ((SESSION, mine), (OTHER, theirs)):
            aad = b"logwarden data key v1\x00" + f"{session_id}\x00{TEXT}\x00{TODAY}".encode()
            db.execute(
                "INSERT INTO data_keys VALUES (?, ?, ?, ?)",
                (session_id, TEXT, TODAY, seal(bucket_key, key, aad)),
            )
        db.close()
        (keys_dir / "keystore.db").chmod(0o600)
        assert schema_of(keys_dir) == (1, {"buckets", "data_keys"})

        store = KeyStore(keys_dir)
        try:
            assert schema_of(keys_dir) == (2, {"buckets", "data_keys", "stale_buckets"})
            assert [store.data_key(SESSION, TEXT), store.data_key(OTHER, TEXT)] == [mine, theirs]
            assert store.destroy_data_keys([SESSION]) == 1
            assert store.stale_buckets() == [TODAY]
        finally:
            store.close()
        again = KeyStore(keys_dir)  # reopening a version-2 file changes nothing
        try:
            assert again.stale_buckets() == [TODAY]
            assert again.rekey_stale() == 1
            assert unwrap_bucket(keys_dir, TODAY) != bucket_key
            assert again.data_key(OTHER, TEXT) == theirs
        finally:
            again.close()
        assert schema_of(keys_dir)[0] == 2


class Made(NamedTuple):
    keys: dict[NewDataKey, bytes]
    old_wrappings: list[bytes]  # of sid(0)'s text key, before it was moved away and back


class Forms(NamedTuple):
    raw: list[bytes]  # raw data keys and the raw bucket key: never on disk at all
    wrapped: list[bytes]  # wrapped data keys and the wrapped bucket key: on disk until destroyed


class TestOnDiskDestruction:
    """After destruction no form of a destroyed key is in any file of the keys directory."""

    # 40 sessions a day fit in a few pages; 1500 spread over many, so deleting them also frees
    # whole pages onto SQLite's freelist.
    @pytest.fixture(params=[40, 1500], ids=["few", "many"])
    def made(self, request: pytest.FixtureRequest, keystore: KeyStore, keys_dir: Path) -> Made:
        """Keys of n sessions today and n tomorrow; one key moved away and back."""
        n: int = request.param
        wanted = session_keys(*(sid(i) for i in range(n))) + session_keys(
            *(sid(i) for i in range(n, 2 * n)), day=DAY + 1
        )
        keys = dict(zip(wanted, keystore.create_data_keys(wanted), strict=True))
        old_wrappings = [data_key_rows(keys_dir)[sid(0), TEXT][1]]
        keystore.move_data_key(sid(0), TEXT, cls=SESSION_CLASS, day=DAY + 1)
        old_wrappings.append(data_key_rows(keys_dir)[sid(0), TEXT][1])
        keystore.move_data_key(sid(0), TEXT, cls=SESSION_CLASS, day=DAY)
        return Made(keys, old_wrappings)

    @staticmethod
    def forms(keys_dir: Path, made: Made, *, where: str) -> Forms:
        """Every form of bucket ``where`` and the data keys in it, read before destruction."""
        rows = data_key_rows(keys_dir)
        raw = [k for new, k in made.keys.items() if rows[new.session_id, new.purpose][0] == where]
        wrapped = [w for (bucket, w) in rows.values() if bucket == where]
        raw.append(unwrap_bucket(keys_dir, where))
        wrapped.append(bucket_rows(keys_dir)[where][1])
        return Forms(raw, wrapped)

    def test_destroy_buckets(self, keystore: KeyStore, keys_dir: Path, made: Made) -> None:
        """Destroying a bucket leaves no form of it or its data keys on disk, and no WAL."""
        doomed = self.forms(keys_dir, made, where=TODAY)
        kept = self.forms(keys_dir, made, where=TOMORROW)
        assert len(doomed.raw) == len(doomed.wrapped) == len(made.keys) // 4 + 1
        # The scan sees what is there: every wrapped key, even old ones, is on disk beforehand.
        before = Disk(keys_dir)
        for needle in [*doomed.wrapped, *made.old_wrappings]:
            assert before.holding(needle) != [], needle.hex()

        assert keystore.destroy_buckets([TODAY]).wal_truncated
        assert (keys_dir / "keystore.db-wal").stat().st_size == 0
        assert {f.name for f in keys_dir.iterdir()} == KEYSTORE_FILES
        after = Disk(keys_dir)
        for needle in [*doomed.raw, *doomed.wrapped, *made.old_wrappings]:
            assert after.holding(needle) == [], needle.hex()
        for needle in kept.wrapped:
            assert after.holding(needle) == ["keystore.db"], needle.hex()

    def test_destroy_data_keys(self, keystore: KeyStore, keys_dir: Path, made: Made) -> None:
        """Destroying sessions' keys leaves no form of those keys on disk, and no WAL."""
        rows = data_key_rows(keys_dir)
        doomed = {session_id for session_id, _ in rows if int(session_id, 16) % 2 == 0}
        raw = [key for new, key in made.keys.items() if new.session_id in doomed]
        wrapped = [w for (session_id, _), (_, w) in rows.items() if session_id in doomed]
        kept = [w for (session_id, _), (_, w) in rows.items() if session_id not in doomed]
        before = Disk(keys_dir)
        for needle in [*wrapped, *made.old_wrappings]:
            assert before.holding(needle) != [], needle.hex()

        assert keystore.destroy_data_keys(sorted(doomed)) == len(wrapped)
        assert (keys_dir / "keystore.db-wal").stat().st_size == 0
        after = Disk(keys_dir)
        for needle in [*raw, *wrapped, *made.old_wrappings]:
            assert after.holding(needle) == [], needle.hex()
        for needle in kept:
            assert after.holding(needle) == ["keystore.db"], needle.hex()

    def test_rekey_stale(self, keystore: KeyStore, keys_dir: Path, made: Made) -> None:
        """After re-keying, no form of the old bucket keys nor any old wrapping of a data key
        in those buckets is on disk; the new wrappings are in keystore.db alone; no WAL."""
        rows = data_key_rows(keys_dir)
        doomed = {session_id for session_id, _ in rows if int(session_id, 16) % 2 == 0}
        stale = sorted({bucket for bucket, _ in rows.values()})
        old_raw = [unwrap_bucket(keys_dir, b) for b in stale]
        old_wrapped = [bucket_rows(keys_dir)[b][1] for b in stale]
        old_kept = [w for (session_id, _), (_, w) in rows.items() if session_id not in doomed]
        keystore.destroy_data_keys(sorted(doomed))
        assert keystore.stale_buckets() == stale
        # The scan sees what is there: the old wrappings of the kept keys are on disk now.
        before = Disk(keys_dir)
        for needle in [*old_wrapped, *old_kept]:
            assert before.holding(needle) == ["keystore.db"], needle.hex()

        assert keystore.rekey_stale() == len(stale) == 4
        assert (keys_dir / "keystore.db-wal").stat().st_size == 0
        assert {f.name for f in keys_dir.iterdir()} == KEYSTORE_FILES
        after = Disk(keys_dir)
        for needle in [*old_raw, *old_wrapped, *old_kept, *made.old_wrappings]:
            assert after.holding(needle) == [], needle.hex()
        new_rows = data_key_rows(keys_dir)
        assert len(new_rows) == len(old_kept)
        for bucket, wrapped in [*new_rows.values(), *bucket_rows(keys_dir).values()]:
            assert after.holding(wrapped) == ["keystore.db"], bucket
        for new, key in made.keys.items():
            if new.session_id not in doomed:
                assert keystore.data_key(new.session_id, new.purpose) == key

    def test_files_are_private(self, keystore: KeyStore, keys_dir: Path) -> None:
        """The keys directory is 0700 and every keystore file in it is 0600."""
        keystore.create_data_keys(session_keys(SESSION))
        assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700
        for path in keys_dir.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


class TestTampering:
    """A wrapped key moved to another row does not open there."""

    def test_data_key_copied_to_another_session(self, keystore: KeyStore, keys_dir: Path) -> None:
        """Session A's wrapped key copied into session B's row (same bucket) does not open."""
        mine, _, theirs, _ = keystore.create_data_keys(session_keys(SESSION, OTHER))
        _, wrapped = data_key_rows(keys_dir)[SESSION, TEXT]
        execute(
            keys_dir,
            "UPDATE data_keys SET wrapped = ? WHERE session_id = ? AND purpose = ?",
            (wrapped, OTHER, TEXT),
        )
        with pytest.raises(VaultError):
            keystore.data_key(OTHER, TEXT)
        assert keystore.data_key(SESSION, TEXT) == mine
        assert theirs != mine

    def test_data_key_copied_to_another_purpose(self, keystore: KeyStore, keys_dir: Path) -> None:
        """A session's text key placed in its address row (same bucket) does not open."""
        keystore.create_data_keys([NewDataKey(SESSION, TEXT, SESSION_CLASS, DAY)])
        execute(
            keys_dir,
            "INSERT INTO data_keys SELECT session_id, ?, bucket_id, wrapped "
            "FROM data_keys WHERE session_id = ?",
            (ADDRESS, SESSION),
        )
        with pytest.raises(VaultError):
            keystore.data_key(SESSION, ADDRESS)

    def test_data_key_row_moved_to_another_bucket(self, keystore: KeyStore, keys_dir: Path) -> None:
        """A data key row pointed at another bucket does not open there."""
        keystore.create_data_keys(session_keys(SESSION) + session_keys(OTHER, day=DAY + 1))
        execute(
            keys_dir,
            "UPDATE data_keys SET bucket_id = ? WHERE session_id = ? AND purpose = ?",
            (TOMORROW, SESSION, TEXT),
        )
        with pytest.raises(VaultError):
            keystore.data_key(SESSION, TEXT)

    def test_bucket_key_moved_to_another_bucket(self, keystore: KeyStore, keys_dir: Path) -> None:
        """A bucket's wrapped key put in another bucket's row does not open there."""
        keystore.create_data_keys(session_keys(SESSION) + session_keys(OTHER, day=DAY + 1))
        _, wrapped = bucket_rows(keys_dir)[TODAY]
        execute(keys_dir, "UPDATE buckets SET wrapped = ? WHERE id = ?", (wrapped, TOMORROW))
        with pytest.raises(VaultError):
            keystore.data_key(OTHER, TEXT)
        assert keystore.data_key(SESSION, TEXT) is not None

    def test_flipped_byte_in_a_wrapped_key(self, keystore: KeyStore, keys_dir: Path) -> None:
        """Any flipped byte of a wrapped data or bucket key makes it not open."""
        keystore.create_data_keys(session_keys(SESSION))
        _, wrapped = data_key_rows(keys_dir)[SESSION, TEXT]
        _, bucket = bucket_rows(keys_dir)[TODAY]
        for position in (0, 5, 20, len(wrapped) - 1):
            bad = bytearray(wrapped)
            bad[position] ^= 0x01
            execute(
                keys_dir, "UPDATE data_keys SET wrapped = ? WHERE purpose = ?", (bytes(bad), TEXT)
            )
            with pytest.raises(VaultError):
                keystore.data_key(SESSION, TEXT)
        execute(keys_dir, "UPDATE data_keys SET wrapped = ? WHERE purpose = ?", (wrapped, TEXT))
        assert keystore.data_key(SESSION, TEXT) is not None
        bad = bytearray(bucket)
        bad[30] ^= 0x80
        execute(keys_dir, "UPDATE buckets SET wrapped = ? WHERE id = ?", (bytes(bad), TODAY))
        with pytest.raises(VaultError):
            keystore.data_key(SESSION, TEXT)

    def test_bucket_relabelled_with_another_kek(self, keystore: KeyStore, keys_dir: Path) -> None:
        """A bucket row naming a KEK other than the one that wrapped it does not open."""
        keystore.create_data_keys(session_keys(SESSION))
        old = keystore.current_kek()
        keystore.rotate_kek_at(T0 + 1)
        # Rotate again by hand, keeping both KEKs in the file: the row's KEK id is the only lie.
        keks = [*keystore.key_encryption_keys(), old]
        keystore_module.write_keks(keys_dir, keks)
        execute(keys_dir, "UPDATE buckets SET kek_id = ? WHERE id = ?", (old.id, TODAY))
        with pytest.raises(VaultError):
            keystore.data_key(SESSION, TEXT)


def write_kek_json(keys_dir: Path, document: Any, *, mode: int = 0o600) -> None:
    path = keys_dir / "kek.json"
    path.write_bytes(document if isinstance(document, bytes) else json.dumps(document).encode())
    path.chmod(mode)


KEY = base64.b64encode(b"K" * 32).decode()
GOOD_KEK = {"id": "kek-1", "created_at": T0, "key": KEY}
KEK_FORMAT = "logwarden-kek/1"


def kek_document(**changes: Any) -> dict[str, Any]:
    """A kek.json document with one key, its fields changed (``...`` removes one)."""
    kek = {k: v for k, v in {**GOOD_KEK, **changes}.items() if v is not ...}
    return {"format": KEK_FORMAT, "keks": [kek]}


class TestKekFileErrors:
    """A missing, exposed or malformed kek.json is a DataDirError that says so, without keys."""

    def test_missing(self, keys_dir: Path) -> None:
        """No kek.json: the error says to run `logwarden init`."""
        (keys_dir / "kek.json").unlink()
        with pytest.raises(DataDirError, match="logwarden init"):
            KeyStore(keys_dir)

    @pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o620, 0o602, 0o610, 0o601])
    def test_exposed(self, keys_dir: Path, mode: int) -> None:
        """A kek.json other users can touch is refused, with the chmod that fixes it."""
        write_kek_json(keys_dir, kek_document(), mode=mode)
        with pytest.raises(DataDirError) as info:
            KeyStore(keys_dir)
        assert "chmod 600" in str(info.value)
        assert f"{mode:o}" in str(info.value)
        assert KEY not in str(info.value)

    @pytest.mark.parametrize(
        "document",
        [
            pytest.param(b"", id="empty"),
            pytest.param(b"not json", id="text"),
            pytest.param(b"[]", id="list"),
            pytest.param(b"null", id="null"),
            pytest.param(b"\xff\xfe{}", id="not-utf8"),
            pytest.param({"keks": [GOOD_KEK]}, id="no-format"),
            pytest.param({"format": "logwarden-kek/2", "keks": [GOOD_KEK]}, id="other-format"),
            pytest.param({"format": KEK_FORMAT}, id="no-keks"),
            pytest.param({"format": KEK_FORMAT, "keks": []}, id="empty-keks"),
            pytest.param({"format": KEK_FORMAT, "keks": KEY}, id="keks-string"),
            pytest.param({"format": KEK_FORMAT, "keks": [KEY]}, id="kek-string"),
            pytest.param(kek_document(key=KEY[:-4]), id="short-key"),
            pytest.param(kek_document(key="!" + KEY[1:]), id="not-base64"),
            pytest.param(kek_document(key=None), id="null-key"),
            pytest.param(kek_document(key=...), id="no-key"),
            pytest.param(kek_document(id=...), id="no-id"),
            pytest.param(kek_document(created_at="soon"), id="bad-time"),
            pytest.param(
                {"format": KEK_FORMAT, "keks": [GOOD_KEK, {**GOOD_KEK, "key": KEY + "AAAA"}]},
                id="second-key-long",
            ),
        ],
    )
    def test_malformed(self, keys_dir: Path, document: Any) -> None:
        """Anything but a list of well-formed keys is malformed, and the message names the file."""
        write_kek_json(keys_dir, document)
        with pytest.raises(DataDirError, match="malformed") as info:
            KeyStore(keys_dir)
        message = str(info.value)
        assert str(keys_dir / "kek.json") in message
        assert KEY[:16] not in message
        assert (b"K" * 8).hex() not in message and "KKKK" not in message

    def test_malformed_after_opening(self, keystore: KeyStore, keys_dir: Path) -> None:
        """A kek.json spoiled while the keystore is open fails its next write, not silently."""
        keystore.create_data_keys(session_keys(SESSION))
        write_kek_json(keys_dir, b"{")
        with pytest.raises(DataDirError, match="malformed"):
            keystore.create_data_keys(session_keys(OTHER))
        assert keystore.locate(OTHER) == {}

    def test_kek_repr_hides_the_key(self) -> None:
        """Neither repr nor str of a key-encryption key shows the key."""
        kek = KeyEncryptionKey(id="kek-1", created_at=T0, key=b"K" * 32)
        for text in (repr(kek), str(kek), repr([kek])):
            assert "KKKK" not in text
            assert KEY[:8] not in text
            assert (b"K" * 4).hex() not in text
            assert "kek-1" in text


class TestConcurrency:
    def test_two_threads_on_one_keystore(self, keystore: KeyStore) -> None:
        """Two threads making keys for many sessions at once on one keystore lose none."""
        made: dict[tuple[str, str], bytes] = {}

        def make(offset: int) -> Callable[[], None]:
            def run() -> None:
                for n in range(offset, offset + 150):
                    wanted = session_keys(sid(n), day=DAY + n % 3)
                    keys = keystore.create_data_keys(wanted)
                    assert keystore.data_key(sid(n), TEXT) == keys[0]
                    made.update(
                        {(k.session_id, k.purpose): v for k, v in zip(wanted, keys, strict=True)}
                    )

            return run

        assert run_in_threads(make(0), make(1000)) == []
        assert len(made) == 600
        assert {where: keystore.data_key(*where) for where in made} == made
        assert sum(b.data_keys for b in keystore.buckets()) == 600
        assert len(keystore.buckets()) == 6

    def test_two_keystores_at_once(self, keys_dir: Path, open_keystore: OpenKeyStore) -> None:
        """Two keystores (two connections, as two processes) making keys at once lose none."""
        stores = [open_keystore(keys_dir), open_keystore(keys_dir)]
        made: dict[tuple[str, str], bytes] = {}

        def make(store: KeyStore, offset: int) -> Callable[[], None]:
            def run() -> None:
                for n in range(offset, offset + 150):
                    wanted = session_keys(sid(n), day=DAY + n % 3)
                    keys = store.create_data_keys(wanted)
                    made.update(
                        {(k.session_id, k.purpose): v for k, v in zip(wanted, keys, strict=True)}
                    )

            return run

        assert run_in_threads(make(stores[0], 0), make(stores[1], 1000)) == []
        assert len(made) == 600
        for store in stores:
            assert {where: store.data_key(*where) for where in made} == made
        assert len(stores[0].buckets()) == 6  # each bucket made once, by one of them

    def test_making_keys_while_another_keystore_rekeys(
        self, keys_dir: Path, open_keystore: OpenKeyStore
    ) -> None:
        """Keys made into a bucket through one keystore while another destroys keys in it and
        re-keys it all stay openable, with their own bytes."""
        maker, purger = open_keystore(keys_dir), open_keystore(keys_dir)
        made: dict[str, bytes] = {}

        def make() -> None:
            for n in range(300):
                [key] = maker.create_data_keys([NewDataKey(sid(n), TEXT, SESSION_CLASS, DAY)])
                made[sid(n)] = key

        def purge() -> None:
            for n in range(60):
                purger.create_data_keys([NewDataKey(sid(10_000 + n), TEXT, SESSION_CLASS, DAY)])
                purger.destroy_data_keys([sid(10_000 + n)])
                purger.rekey_stale()

        assert run_in_threads(make, purge) == []
        purger.rekey_stale()
        fresh = open_keystore(keys_dir)
        assert {s: fresh.data_key(s, TEXT) for s in made} == made
        assert {s: maker.data_key(s, TEXT) for s in made} == made
        assert fresh.stale_buckets() == []

    def test_making_keys_while_destroying(self, keystore: KeyStore) -> None:
        """Keys made on one thread while another destroys buckets are neither lost nor failed."""
        made: dict[str, bytes] = {}
        destroyed: list[DestroyResult] = []

        def make() -> None:
            for n in range(400):
                [key] = keystore.create_data_keys([NewDataKey(sid(n), TEXT, SESSION_CLASS, DAY)])
                made[sid(n)] = key

        def destroy() -> None:
            for n in range(100):
                keystore.create_data_keys([NewDataKey(sid(10_000 + n), TEXT, HOLD_CLASS, n)])
                destroyed.append(keystore.destroy_buckets([f"{HOLD_CLASS}:{n}"]))

        assert run_in_threads(make, destroy) == []
        assert all(r == DestroyResult(1, 1, wal_truncated=True) for r in destroyed)
        assert {s: keystore.data_key(s, TEXT) for s in made} == made
        assert keystore.sessions_in_class(HOLD_CLASS) == []
