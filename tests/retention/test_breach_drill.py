"""The breach drill (docs/retention.md): someone copied the log store and, separately, the
keystore at t0. After retention has passed and the purge has run, neither copy together with
what the system holds today opens anything expired, and the live files hold no trace of it."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from logwarden.errors import KeyDestroyedError, VaultError
from logwarden.recorder.recorder import message_label
from logwarden.retention.policy import DAY_MS
from logwarden.store import SqlStore
from logwarden.vault import KeyStore, Vault, load_key_file
from logwarden.vault._aead import open_token
from logwarden.vault.keys import KEK_FILE_NAME
from logwarden.vault.keystore import KEYSTORE_FILE_NAME
from tests.retention.conftest import (
    DAY0,
    POLICY,
    T0,
    Chat,
    Deployment,
    day_start,
    files_under,
    open_deployment,
    open_store,
)

PAST_METADATA = day_start(DAY0 + POLICY.metadata_days + 1)


def sqlite_copy(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database, WAL included (what a backup takes)."""
    with sqlite3.connect(source) as live, sqlite3.connect(target) as copy:
        live.backup(copy)


def everything_sealed(store: SqlStore, chat: Chat) -> list[tuple[bytes, str]]:
    record = store.session(chat.session_id)
    assert record is not None
    return [(m.text_sealed, message_label(m.seq, m.slot, m.sent_at)) for m in record.messages]


def opens_with_any(keys: list[bytes], session_id: str, sealed: list[tuple[bytes, str]]) -> bool:
    """Whether any of ``keys`` opens any of the sealed values (the vault's own AAD layout)."""
    for key in keys:
        for token, label in sealed:
            aad = b"logwarden/v1\x00" + session_id.encode() + b"\x00" + label.encode()
            try:
                open_token(AESGCM(key), token, aad)
            except VaultError:
                continue
            return True
    return False


def all_data_keys(keystore: KeyStore, session_ids: list[str]) -> list[bytes]:
    keys = []
    for session_id in session_ids:
        for purpose in ("text", "address"):
            key = keystore.data_key(session_id, purpose)
            if key is not None:
                keys.append(key)
    return keys


@pytest.fixture
def drill(backend: tuple[str, str | None], tmp_path: Path) -> Iterator[Deployment]:
    data_dir = tmp_path / "data"
    with open_deployment(data_dir, open_store(backend[0], data_dir, backend[1])) as d:
        yield d


class LogCopy:
    """A copy of the log store taken now: the SQLite file, or a copy of the PostgreSQL
    database (CREATE DATABASE … TEMPLATE, what a backup restores)."""

    def __init__(self, backend: tuple[str, str | None], d: Deployment, tmp_path: Path) -> None:
        self.url = backend[1]
        if self.url is None:
            self.path = tmp_path / "stolen-log.db"
            sqlite_copy(d.data_dir / "logwarden.db", self.path)
            return
        live = self.url.rsplit("/", 1)[1]
        self.name = f"{live}_stolen"
        with psycopg.connect(self.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
            admin.execute(  # a template must have no other sessions; the store reconnects
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (live,),
            )
            admin.execute(f"CREATE DATABASE {self.name} TEMPLATE {live}")

    def open(self) -> SqlStore:
        if self.url is None:
            return SqlStore.sqlite(self.path)
        return SqlStore.postgres(self.url.rsplit("/", 1)[0] + "/" + self.name)

    def drop(self) -> None:
        if self.url is not None:
            admin_url = self.url.rsplit("/", 1)[0] + "/postgres"
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


def postgres_files(url: str) -> list[Path]:
    """The live database's table files and the WAL, after a checkpoint wrote every page."""
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("CHECKPOINT")
        root = Path(db.execute("SHOW data_directory").fetchone()[0])  # type: ignore[index]
        oid = db.execute(
            "SELECT oid FROM pg_database WHERE datname = current_database()"
        ).fetchone()[0]  # type: ignore[index]
    found = [p for d in (root / "base" / str(oid), root / "pg_wal") for p in d.rglob("*")]
    return [p for p in found if p.is_file()]


def test_breach_drill(drill: Deployment, backend: tuple[str, str | None], tmp_path: Path) -> None:
    """Copies taken at t0 are useless for expired sessions after the purge; kept ones open."""
    d = drill
    expired = [d.chat(messages=4), d.chat(messages=2)]
    reported = d.chat(messages=3, report=True)
    # 1. The copies, taken at t0: the log store, and separately the keystore.
    log_copy = LogCopy(backend, d, tmp_path)
    keystore_copy = tmp_path / "stolen-keystore.db"
    sqlite_copy(d.data_dir / "keys" / KEYSTORE_FILE_NAME, keystore_copy)
    old_keys = all_data_keys(d.keystore, [c.session_id for c in expired])
    assert len(old_keys) == 4
    sealed = {c.session_id: everything_sealed(d.store, c) for c in expired}
    pseudonyms = [p for c in expired for p in c.pseudonyms]
    # 2. Time passes, a session starts that is still within retention; the purge runs.
    d.at(PAST_METADATA - 10 * DAY_MS)
    recent = d.chat(messages=2)
    d.at(PAST_METADATA)
    d.retention.purge()
    assert d.retention.check() == []

    # 3. The earlier log copy with today's keystore: every key the system holds, tried on
    #    every expired ciphertext, opens none; the vault reports the keys destroyed.
    today = all_data_keys(d.keystore, [reported.session_id, recent.session_id])
    for chat in expired:
        assert not opens_with_any(today, chat.session_id, sealed[chat.session_id])
        assert d.keystore.locate(chat.session_id) == {}
    old_store = log_copy.open()
    try:
        record = old_store.session(expired[0].session_id)
        assert record is not None, "the copy still holds the ciphertext"
        reader = Vault(load_key_file(d.data_dir / "keys"), d.keystore)
        token, label = sealed[expired[0].session_id][0]
        with pytest.raises(KeyDestroyedError):
            reader.open(token, session_id=expired[0].session_id, label=label)
    finally:
        old_store.close()
        log_copy.drop()

    # 4. The earlier keystore copy with today's key-encryption key opens no bucket at all.
    stolen_keys = tmp_path / "stolen-keys"
    stolen_keys.mkdir(mode=0o700)
    shutil.copy(keystore_copy, stolen_keys / KEYSTORE_FILE_NAME)
    shutil.copy(d.data_dir / "keys" / KEK_FILE_NAME, stolen_keys / KEK_FILE_NAME)
    stolen = KeyStore(stolen_keys)
    try:
        for chat in expired:
            with pytest.raises(VaultError):
                stolen.data_key(chat.session_id, "text")
    finally:
        stolen.close()
    # (With the keystore copy's own keys, of course, they would open: that copy is why the
    # key-encryption key rotates and the old one is destroyed.)
    assert opens_with_any(old_keys, expired[0].session_id, sealed[expired[0].session_id])

    # 5. No trace in the live files: no expired key, ciphertext or pseudonym, and never any
    #    plaintext or address of anyone.
    needles = [*old_keys, *(t for s in sealed.values() for t, _ in s)]
    needles += [p.encode() for p in pseudonyms]
    never = [t.encode() for c in (*expired, reported, recent) for t in c.texts]
    never += [a.encode() for c in (*expired, reported, recent) for a in c.addresses]
    for path in files_under(d.data_dir):
        content = path.read_bytes()
        for needle in needles:
            assert needle not in content, f"expired data left in {path.name}: {needle!r}"
        for needle in never:
            assert needle not in content, f"plaintext in {path.name}"
    assert d.store.session(expired[0].session_id) is None
    if backend[1] is not None:
        # PostgreSQL's own files: no key ever, no plaintext ever. (Deleted rows' ciphertext
        # and pseudonyms may linger in dead tuples until VACUUM: docs/retention.md.)
        try:
            contents = [(p, p.read_bytes()) for p in postgres_files(backend[1])]
        except PermissionError:
            pytest.skip("PostgreSQL's data directory is not readable by this user")
        for path, content in contents:
            for needle in [*old_keys, *never]:
                assert needle not in content, f"key or plaintext in {path}"

    # 6. What is still within retention opens fine.
    kept = d.transcript(reported.session_id)
    assert kept is not None and [m["text"] for m in kept.messages] == reported.texts
    assert [p["ip"] for p in kept.participants] == list(reported.addresses)
    fresh = d.transcript(recent.session_id)
    assert fresh is not None and [m["text"] for m in fresh.messages] == recent.texts


@pytest.mark.parametrize("backend", [("sqlite", None)])
def test_plaintext_never_on_disk_at_t0(drill: Deployment) -> None:
    """Before any purge, no file of the data directory holds a message or an address."""
    d = drill
    chats = [d.chat(messages=3), d.chat(messages=2, report=True)]
    d.at(T0 + 1)
    never = [t.encode() for c in chats for t in c.texts]
    never += [a.encode() for c in chats for a in c.addresses]
    for path in files_under(d.data_dir):
        content = path.read_bytes()
        assert not any(needle in content for needle in never), path.name
