"""A whole log deployment for retention tests: keystore, vault, store (both backends), the real
recorder on its own event loop, and a fake clock that the tests move."""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from logwarden.audit.checkpoint import SigningKey
from logwarden.audit.log import AuditLog
from logwarden.clock import FakeClock
from logwarden.recorder import Recorder
from logwarden.retention import Retention, RetentionPolicy
from logwarden.retention.policy import DAY_MS
from logwarden.retention.receipts import new_receipt
from logwarden.retention.service import REPORT_GRACE_MS
from logwarden.store import SqlStore
from logwarden.transcripts import Transcript, open_transcript
from logwarden.vault import KeyStore, Vault, create_key_file, load_key_file
from tests.conftest import empty_postgres_log

T = TypeVar("T")

# Noon UTC, so that a few hours either way stay on the same day.
T0 = 1_764_072_000_000  # 2025-11-25T12:00:00Z
DAY0 = T0 // DAY_MS
POLICY = RetentionPolicy(session_days=30, raw_ip_days=7, metadata_days=90, reported_days=365)
REPORT_WINDOW_MS = 300_000
ERASABLE_AFTER_MS = REPORT_WINDOW_MS + REPORT_GRACE_MS  # after a chat's end

_ids = itertools.count(1)


class LoopThread:
    """An event loop on its own thread, so synchronous tests can drive the async recorder."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@dataclass
class Chat:
    session_id: str
    started_at: int
    receipts: tuple[str, str]
    addresses: tuple[str, str]
    pseudonyms: tuple[str, str]
    texts: list[str] = field(default_factory=list)


@dataclass
class Deployment:
    data_dir: Path
    store: SqlStore
    keystore: KeyStore
    vault: Vault
    clock: FakeClock
    retention: Retention
    recorder: Recorder
    loop: LoopThread

    def chat(self, *, messages: int = 3, report: bool = False, end: bool = True) -> Chat:
        """A chat recorded through the real recorder at the clock's time."""
        n = next(_ids)
        session_id = f"{n:032x}"
        started_at = self.clock.now_ms()
        receipts = (new_receipt(), new_receipt())
        addresses = (f"192.0.2.{n % 250 + 1}", f"2001:db8::{n:x}")
        # Random, so that no byte scan can find them by chance in other rows' bytes.
        pseudonyms = (secrets.token_hex(16), secrets.token_hex(16))
        chat = Chat(session_id, started_at, (receipts[0][0], receipts[1][0]), addresses, pseudonyms)
        self.loop.run(
            self.recorder.session_started(
                session_id=session_id,
                started_at=started_at,
                interests=["chess"],
                addresses=addresses,
                pseudonyms=pseudonyms,
                block_keys=pseudonyms,
                receipts=(receipts[0][1], receipts[1][1]),
            )
        )
        for seq in range(1, messages + 1):
            text = f"retention marker {session_id[-6:]}-{seq}"
            chat.texts.append(text)
            self.loop.run(self._message(session_id, seq, started_at + seq, text))
        if report:
            self.loop.run(
                self.recorder.report(
                    session_id=session_id,
                    reporter_slot=1,
                    reason="harassment",
                    comment=f"report comment {session_id[-6:]}",
                    created_at=started_at + messages + 1,
                )
            )
            self.recorder.settle()
        if end:
            self.loop.run(
                self.recorder.session_ended(
                    session_id=session_id,
                    ended_at=started_at + messages + 2,
                    reason="stopped",
                    ended_by=0,
                )
            )
        return chat

    async def _message(self, session_id: str, seq: int, at: int, text: str) -> None:
        await self.recorder.message(
            session_id=session_id, seq=seq, slot=seq % 2, sent_at=at, text=text
        )

    def transcript(self, session_id: str) -> Transcript | None:
        """What an administrator can read now, with a vault that has nothing in memory."""
        record = self.store.session(session_id)
        if record is None:
            return None
        reader = Vault(load_key_file(self.data_dir / "keys"), self.keystore)
        return open_transcript(record, reader)

    def readable(self, session_id: str) -> dict[str, bool]:
        """Which parts of a session can be read: its text, its addresses, its metadata."""
        transcript = self.transcript(session_id)
        if transcript is None:
            return {"text": False, "address": False, "metadata": False}
        return {
            "text": bool(transcript.messages)
            and all(m["text"] is not None for m in transcript.messages),
            "address": bool(transcript.participants)
            and all(p["ip"] is not None for p in transcript.participants),
            "metadata": True,
        }

    def at(self, ms: int) -> None:
        """Move the clock to ``ms`` (forward only)."""
        assert ms >= self.clock.now_ms()
        self.clock.advance(seconds=(ms - self.clock.now_ms()) / 1000)


# The audit log's signing key in these tests: fixed, so a failure can be replayed.
AUDIT_SIGNER = SigningKey.from_seed("test.example/logwarden", seed=bytes(range(32)))


def day_start(day: int) -> int:
    return day * DAY_MS


def retention_over(
    store: SqlStore,
    keystore: KeyStore,
    clock: FakeClock,
    *,
    disclose: bool = True,
    audit: AuditLog | None = None,
) -> Retention:
    """The retention service with the test policy (the settings' defaults)."""
    return Retention(
        store=store,
        keystore=keystore,
        audit=audit or AuditLog(store, signer=AUDIT_SIGNER, clock=clock),
        policy=POLICY,
        clock=clock,
        report_window_ms=REPORT_WINDOW_MS,
        kek_rotation_days=7,
        disclose_preservation=disclose,
    )


@contextmanager
def open_deployment(data_dir: Path, store: SqlStore) -> Iterator[Deployment]:
    """New keys in ``data_dir/keys``, the log in ``store``, the clock at T0."""
    keys_dir = data_dir / "keys"
    keys_dir.mkdir(parents=True, mode=0o700)
    create_key_file(keys_dir)
    KeyStore.create(keys_dir, now_ms=T0)
    with attach_deployment(data_dir, store, at=T0) as d:
        yield d


@contextmanager
def attach_deployment(data_dir: Path, store: SqlStore, *, at: int) -> Iterator[Deployment]:
    """The real recorder over a data directory's existing keys and ``store``, with a fake
    clock at ``at``; everything (the store too) is closed at the end."""
    keys_dir = data_dir / "keys"
    keystore = KeyStore(keys_dir)
    vault = Vault(load_key_file(keys_dir), keystore)
    clock = FakeClock(at)
    audit = AuditLog(store, signer=AUDIT_SIGNER, clock=clock)
    retention = retention_over(store, keystore, clock, audit=audit)
    loop = LoopThread()
    recorder = Recorder(
        store=store, vault=vault, retention=retention, audit=audit, window=0.0, max_batch=64
    )
    recorder.start(loop.loop)
    try:
        yield Deployment(data_dir, store, keystore, vault, clock, retention, recorder, loop)
    finally:
        recorder.close()
        loop.close()
        keystore.close()
        store.close()


def open_store(backend: str, data_dir: Path, postgres_url: str | None) -> SqlStore:
    """An empty store: a new SQLite file, or the test PostgreSQL database emptied."""
    if backend == "sqlite":
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return SqlStore.sqlite(data_dir / "logwarden.db")
    assert postgres_url is not None
    store = SqlStore.postgres(postgres_url)
    empty_postgres_log(postgres_url)
    return store


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """The backend name and, for PostgreSQL, the test database's URL."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return request.param, url


@pytest.fixture
def deployment(backend: tuple[str, str | None], tmp_path: Path) -> Iterator[Deployment]:
    """A fresh deployment on each backend, at T0."""
    data_dir = tmp_path / "data"
    with open_deployment(data_dir, open_store(backend[0], data_dir, backend[1])) as d:
        yield d


def files_under(path: Path) -> Iterator[Path]:
    for root, _dirs, names in os.walk(path):
        for name in names:
            yield Path(root) / name
