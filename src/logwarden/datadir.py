"""The data directory: the SQLite log and the keys, readable by the owner only.

``keys/`` holds the pseudonym key (``vault.json``), the key-encryption keys (``kek.json``), the
keystore (``keystore.db``) and the audit log's signing key (``audit.key``); ``audit.pub`` is its
public half, for whoever checks the log's checkpoints. The log is ``logwarden.db`` here or a
PostgreSQL database.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import socket
import stat
from pathlib import Path

from logwarden.audit.checkpoint import SigningKey, load_signing_key, write_signing_key
from logwarden.audit.log import AuditLog, Publisher, file_publisher, url_publisher
from logwarden.clock import Clock, SystemClock
from logwarden.config import Settings
from logwarden.errors import DataDirError
from logwarden.recorder.recorder import Recorder
from logwarden.retention import Retention, RetentionPolicy
from logwarden.store import SqlStore, Store
from logwarden.vault import KeyStore, Vault, create_key_file, load_key_file
from logwarden.vault.keys import KEK_FILE_NAME, KEY_FILE_NAME

__all__ = [
    "AUDIT_ALARM_FILE",
    "AUDIT_ANCHOR_FILE",
    "AUDIT_KEY_FILE",
    "AUDIT_PUBLIC_FILE",
    "initialise",
    "is_initialised",
    "lock_for_serving",
    "open_audit",
    "open_keystore",
    "open_recorder",
    "open_retention",
    "open_store",
    "open_vault",
]


AUDIT_KEY_FILE = "audit.key"  # in keys/
AUDIT_PUBLIC_FILE = "audit.pub"  # in the data directory: the verifier key, for anyone
AUDIT_ANCHOR_FILE = "audit.last"  # in keys/: the last checkpoint signed, outside the database
AUDIT_ALARM_FILE = "audit.alarm"  # in keys/: the signer's refusal, until an operator clears it


def is_initialised(settings: Settings) -> bool:
    keys = settings.keys_dir
    return (keys / KEY_FILE_NAME).exists() and (keys / KEK_FILE_NAME).exists()


def initialise(settings: Settings, *, clock: Clock | None = None) -> bool:
    """Create the data directory, keys and database if missing; True if anything was created.

    Safe to run again: an existing key is never replaced (that would make the log unreadable).
    """
    data_dir = settings.data_dir
    created = False
    if not data_dir.exists():
        data_dir.mkdir(mode=0o700, parents=True)
        created = True
    if not data_dir.is_dir():
        raise DataDirError(f"{data_dir} exists and is not a directory")
    _require_private(data_dir)
    keys_missing = not is_initialised(settings)
    if keys_missing and _log_has_sessions(settings):
        # New keys for an existing log would read nothing of it, and the purge would take the
        # log's reported and held sessions for ones whose keys are gone.
        raise DataDirError(
            f"the session log has sessions but {settings.keys_dir} has no keys: restore the "
            "keys directory (or point --data-dir at the right one); refusing to make new keys"
        )
    if not (settings.keys_dir / KEY_FILE_NAME).exists():
        create_key_file(settings.keys_dir)
        created = True
    if not (settings.keys_dir / KEK_FILE_NAME).exists():
        KeyStore.create(settings.keys_dir, now_ms=(clock or SystemClock()).now_ms())
        created = True
    if not (settings.keys_dir / AUDIT_KEY_FILE).exists():
        key = SigningKey.generate(settings.audit.origin or _default_origin())
        write_signing_key(settings.keys_dir / AUDIT_KEY_FILE, key)
        created = True
    public = settings.data_dir / AUDIT_PUBLIC_FILE
    if not public.exists():
        key = load_signing_key(settings.keys_dir / AUDIT_KEY_FILE)
        public.write_text(key.verifier_key() + "\n", encoding="ascii")
    if settings.database_url is None and not settings.sqlite_path.exists():
        created = True
    open_store(settings).close()
    return created


def _default_origin() -> str:
    # C2SP: an origin names one log, and witnesses keep one tree per origin. The host name
    # alone is shared by every data directory on the host, so a log id made here (at init,
    # once: the key keeps it) tells them apart. A key name has no spaces or '+': keep what a
    # host name may hold.
    host = re.sub(r"[^A-Za-z0-9.-]", "", socket.gethostname()) or "localhost"
    return f"{host}/logwarden/{secrets.token_hex(8)}"


def _log_has_sessions(settings: Settings) -> bool:
    if settings.database_url is None and not settings.sqlite_path.exists():
        return False
    store = open_store(settings)
    try:
        return bool(store.recent_sessions(limit=1))
    finally:
        store.close()


def lock_for_serving(settings: Settings) -> int:
    """Take the data directory for this process's lifetime; a second ``serve`` on it fails.

    Returns the descriptor holding the lock (``flock`` ends with the process). Two servers on
    one data directory would end each other's live chats at start-up and race on the keys.
    """
    fd = os.open(settings.data_dir / "serve.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataDirError(
            f"another `logwarden serve` is using {settings.data_dir}; stop it first"
        ) from None
    return fd


def open_store(settings: Settings) -> SqlStore:
    """The configured session log: PostgreSQL at ``database_url``, else SQLite in data_dir."""
    if settings.database_url is not None:
        return SqlStore.postgres(settings.database_url.get_secret_value())
    return SqlStore.sqlite(settings.sqlite_path, synchronous=settings.recorder.sqlite_synchronous)


def open_keystore(settings: Settings) -> KeyStore:
    if not is_initialised(settings):
        raise DataDirError(
            f"{settings.data_dir} is not initialised: run `logwarden init --data-dir "
            f"{settings.data_dir}`"
        )
    return KeyStore(settings.keys_dir)


def open_audit(settings: Settings, *, store: Store, clock: Clock) -> AuditLog:
    """The audit log in ``store``, signing with the data directory's key, publishing where
    ``[audit]`` says."""
    signer = load_signing_key(settings.keys_dir / AUDIT_KEY_FILE)
    publishers: list[Publisher] = []
    if settings.audit.checkpoint_file is not None:
        publishers.append(
            file_publisher(settings.audit.checkpoint_file, verifier=signer.verifier())
        )
    if settings.audit.checkpoint_url is not None:
        publishers.append(url_publisher(settings.audit.checkpoint_url))
    return AuditLog(
        store,
        signer=signer,
        clock=clock,
        publishers=publishers,
        anchor_path=settings.keys_dir / AUDIT_ANCHOR_FILE,
        alarm_path=settings.keys_dir / AUDIT_ALARM_FILE,
    )


def open_vault(settings: Settings, keystore: KeyStore) -> Vault:
    return Vault(load_key_file(settings.keys_dir), keystore)


def open_retention(
    settings: Settings, *, store: Store, keystore: KeyStore, audit: AuditLog, clock: Clock
) -> Retention:
    return Retention(
        store=store,
        audit=audit,
        keystore=keystore,
        policy=RetentionPolicy.from_settings(settings.retention),
        clock=clock,
        report_window_ms=round(settings.chat.report_window * 1000),
        kek_rotation_days=settings.retention.kek_rotation_days,
        lock_path=settings.keys_dir / "retention.lock",
        disclose_preservation=settings.retention.receipts_disclose_preservation,
    )


def open_recorder(
    settings: Settings, *, store: Store, vault: Vault, retention: Retention, audit: AuditLog
) -> Recorder:
    """The recorder with ``[recorder]``'s group commit: in the server, or in its writer
    process (recorder/process.py)."""
    return Recorder(
        store=store,
        vault=vault,
        retention=retention,
        audit=audit,
        window=settings.recorder.commit_window_ms / 1000,
        max_batch=settings.recorder.max_batch,
    )


def _require_private(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        # Tighten rather than refuse: a fresh `mkdir data` under a 022 umask is the common case.
        os.chmod(path, mode & 0o700)
