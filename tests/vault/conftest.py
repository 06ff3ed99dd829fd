"""Fixtures for the vault tests: a real keystore in a temporary keys directory.

The helpers read ``keystore.db`` and ``kek.json`` directly (sqlite3, json, plain AESGCM) rather
than through ``KeyStore``, so what the tests see on disk is what an attacker with a copy sees.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from logwarden.vault import ADDRESS, TEXT, KeyStore, NewDataKey

T0 = 1_764_061_200_000  # 2025-11-25T09:00:00Z, in ms since the epoch
DAY = 20_417  # days since the epoch of T0
SESSION_CLASS = "session"  # the retention classes' names, as the retention policy spells them
RAW_IP_CLASS = "raw_ip"
HOLD_CLASS = "hold"
SESSION = "0123456789abcdef0123456789abcdef"
OTHER = "fedcba9876543210fedcba9876543210"
TODAY = f"{SESSION_CLASS}:{DAY}"  # bucket ids
TOMORROW = f"{SESSION_CLASS}:{DAY + 1}"
HOLD = f"{HOLD_CLASS}:0"
# Every file a keys directory holds while a keystore is open; nothing else, no temporary files.
KEYSTORE_FILES = {"kek.json", "keystore.db", "keystore.db-wal", "keystore.db-shm"}


def sid(n: int) -> str:
    """A session id: 32 hex digits, as the chat makes them."""
    return f"{n:032x}"


def run_in_threads(*targets: Callable[[], None]) -> list[BaseException]:
    """Run each target in its own thread, all released at once; the exceptions they raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(targets))

    def run(target: Callable[[], None]) -> None:
        try:
            barrier.wait()
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return errors


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    """An initialised keys directory: kek.json with one key, and an empty keystore.db."""
    path = tmp_path / "keys"
    KeyStore.create(path, now_ms=T0)
    return path


@pytest.fixture
def keystore(keys_dir: Path) -> Iterator[KeyStore]:
    """A keystore open on ``keys_dir``, closed after the test."""
    store = KeyStore(keys_dir)
    yield store
    store.close()


OpenKeyStore = Callable[..., KeyStore]


@pytest.fixture
def open_keystore() -> Iterator[OpenKeyStore]:
    """Opens a keystore on a keys directory (initialised if new); all are closed afterwards.

    Called as ``open_keystore(keys_dir, random_bytes=...)``; each call is another instance, as
    another process would have.
    """
    opened: list[KeyStore] = []

    def open_(keys_dir: Path, *, random_bytes: Callable[[int], bytes] = os.urandom) -> KeyStore:
        KeyStore.create(keys_dir, now_ms=T0)  # does nothing if kek.json exists
        store = KeyStore(keys_dir, random_bytes=random_bytes)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


def session_keys(*session_ids: str, day: int = DAY) -> list[NewDataKey]:
    """Both data keys of each session, as the recorder asks for them."""
    keys: list[NewDataKey] = []
    for session_id in session_ids:
        keys.append(NewDataKey(session_id, TEXT, SESSION_CLASS, day))
        keys.append(NewDataKey(session_id, ADDRESS, RAW_IP_CLASS, day))
    return keys


def scripted_random(*first_keys: bytes) -> Callable[[int], bytes]:
    """A ``random_bytes`` giving these 32-byte values to the first 32-byte requests, in order.

    Every other request (nonces, later keys) is real randomness.
    """
    queue = list(first_keys)

    def random_bytes(n: int) -> bytes:
        if n == 32 and queue:
            return queue.pop(0)
        return os.urandom(n)

    return random_bytes


def data_key_rows(keys_dir: Path) -> dict[tuple[str, str], tuple[str, bytes]]:
    """(session id, purpose) → (bucket id, wrapped key), read straight from keystore.db."""
    rows = _select(keys_dir, "SELECT session_id, purpose, bucket_id, wrapped FROM data_keys")
    return {(s, p): (b, w) for s, p, b, w in rows}


def bucket_rows(keys_dir: Path) -> dict[str, tuple[str, bytes]]:
    """Bucket id → (KEK id, wrapped key), read straight from keystore.db."""
    return {b: (k, w) for b, k, w in _select(keys_dir, "SELECT id, kek_id, wrapped FROM buckets")}


def execute(keys_dir: Path, sql: str, params: Iterable[object] = ()) -> None:
    """Change keystore.db behind the KeyStore's back, as someone with the file could."""
    db = sqlite3.connect(keys_dir / "keystore.db", isolation_level=None)
    try:
        db.execute(sql, tuple(params))
    finally:
        db.close()


def kek_file(keys_dir: Path) -> dict[str, bytes]:
    """KEK id → raw key, read straight from kek.json."""
    document = json.loads((keys_dir / "kek.json").read_bytes())
    return {k["id"]: base64.b64decode(k["key"]) for k in document["keks"]}


def unwrap_bucket(keys_dir: Path, bucket_id: str) -> bytes:
    """A bucket's raw key, opened with plain AES-GCM under the KEK kek.json names for it.

    The layout is the vault token's (version 1 || nonce || ciphertext || tag); the associated
    data names the bucket and the KEK. Raises ``InvalidTag`` or ``KeyError`` if it cannot.
    """
    kek_id, wrapped = bucket_rows(keys_dir)[bucket_id]
    aad = b"\x01logwarden bucket key v1\x00" + bucket_id.encode() + b"\x00" + kek_id.encode()
    return AESGCM(kek_file(keys_dir)[kek_id]).decrypt(wrapped[1:13], wrapped[13:], aad)


def stale_rows(keys_dir: Path) -> list[str]:
    """The ids in stale_buckets, sorted, read straight from keystore.db."""
    return [row[0] for row in _select(keys_dir, "SELECT id FROM stale_buckets ORDER BY id")]


def open_data_key(
    bucket_key: bytes, wrapped: bytes, session_id: str, purpose: str, bucket_id: str
) -> bytes:
    """A wrapped data key opened with plain AES-GCM under a raw bucket key.

    The associated data names the session, the purpose and the bucket. Raises ``InvalidTag``
    if it does not open.
    """
    aad = b"\x01logwarden data key v1\x00" + f"{session_id}\x00{purpose}\x00{bucket_id}".encode()
    return AESGCM(bucket_key).decrypt(wrapped[1:13], wrapped[13:], aad)


class Disk:
    """The bytes of every file in a keys directory, read once, to search many needles in."""

    def __init__(self, keys_dir: Path) -> None:
        self.files = {f.name: f.read_bytes() for f in keys_dir.iterdir() if f.is_file()}

    def holding(self, needle: bytes) -> list[str]:
        """The names of the files whose bytes contain ``needle``."""
        assert len(needle) >= 16, "a needle this short could match by chance"
        return sorted(name for name, content in self.files.items() if needle in content)


def files_holding(keys_dir: Path, needle: bytes) -> list[str]:
    """The names of the files in the keys directory whose bytes contain ``needle``."""
    return Disk(keys_dir).holding(needle)


def _select(keys_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    # Read-only: closing a writable connection could checkpoint and delete the WAL, changing
    # the very files the tests then scan.
    db = sqlite3.connect(f"file:{keys_dir / 'keystore.db'}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()
