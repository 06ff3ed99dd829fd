"""Key files in ``keys/``, readable by the owner only.

- ``vault.json``: the pseudonym key (HMAC of addresses, for linking sessions without them).
  It never rotates: a pseudonym must mean the same address for as long as any is kept.
- ``kek.json``: the key-encryption keys that wrap the bucket keys in ``keystore.db``, newest
  last. Rotation (``keystore.py``) appends a new one, re-wraps every bucket key and removes the
  old, so an earlier copy of ``keystore.db`` holds only keys wrapped by keys that are gone.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logwarden._fsutil import fsync_dir
from logwarden.errors import DataDirError
from logwarden.vault._aead import KEY_BYTES

KEY_FILE_FORMAT = "logwarden-keys/2"
KEY_FILE_NAME = "vault.json"
KEK_FILE_FORMAT = "logwarden-kek/1"
KEK_FILE_NAME = "kek.json"


@dataclass(frozen=True, repr=False)
class KeyMaterial:
    pseudonym_key: bytes

    def __repr__(self) -> str:  # never print key bytes, not even in a traceback
        return "KeyMaterial(**********)"


@dataclass(frozen=True, repr=False)
class KeyEncryptionKey:
    id: str
    created_at: int  # ms since the epoch
    key: bytes

    def __repr__(self) -> str:
        return f"KeyEncryptionKey(id={self.id!r}, created_at={self.created_at})"


def create_key_file(keys_dir: Path, *, random_bytes: bytes | None = None) -> Path:
    """Write a new key file with owner-only permissions; refuse to overwrite one."""
    material = random_bytes if random_bytes is not None else os.urandom(KEY_BYTES)
    if len(material) != KEY_BYTES:
        raise ValueError(f"need {KEY_BYTES} random bytes")
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    document = {"format": KEY_FILE_FORMAT, "pseudonym_key": _b64(material)}
    path = keys_dir / KEY_FILE_NAME
    # O_EXCL: two concurrent `init`s cannot both write, and an existing key is never replaced.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    _write_fd(fd, document)
    return path


def load_key_file(keys_dir: Path) -> KeyMaterial:
    """Read the key file; raises ``DataDirError`` if it is missing, malformed or too open."""
    path = keys_dir / KEY_FILE_NAME
    document = _read_private_json(
        path, missing=f"run `logwarden init --data-dir {keys_dir.parent}`"
    )
    try:
        if document.get("format") == "logwarden-keys/1":
            raise ValueError(
                "it is from a pre-release logwarden whose log this version cannot read; "
                "move the data directory aside and run `logwarden init`"
            )
        if document.get("format") != KEY_FILE_FORMAT:
            raise ValueError("unknown format")
        return KeyMaterial(pseudonym_key=_unb64(document["pseudonym_key"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataDirError(f"key file {path} is malformed ({exc})") from None


def load_keks(keys_dir: Path) -> list[KeyEncryptionKey]:
    """The key-encryption keys, oldest first; at least one."""
    path = keys_dir / KEK_FILE_NAME
    document = _read_private_json(path, missing="run `logwarden init`")
    try:
        if document.get("format") != KEK_FILE_FORMAT:
            raise ValueError("unknown format")
        keks = [
            KeyEncryptionKey(id=str(k["id"]), created_at=int(k["created_at"]), key=_unb64(k["key"]))
            for k in document["keks"]
        ]
        if not keks:
            raise ValueError("no keys")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataDirError(f"key file {path} is malformed ({exc})") from None
    return keks


def write_keks(keys_dir: Path, keks: Sequence[KeyEncryptionKey]) -> None:
    """Replace ``kek.json`` atomically, then overwrite the old file's bytes.

    The new file is written beside it, fsynced and renamed over it, so a crash leaves either the
    old list or the new, never neither. The old file stays open across the rename and its
    content is then overwritten with zeros: on an ordinary filesystem this overwrites the blocks
    that held the retired keys (on copy-on-write filesystems and SSDs it cannot be guaranteed;
    docs/retention.md says what we rely on instead).
    """
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = keys_dir / KEK_FILE_NAME
    temporary = keys_dir / f".{KEK_FILE_NAME}.{os.getpid()}.tmp"
    document = {
        "format": KEK_FILE_FORMAT,
        "keks": [{"id": k.id, "created_at": k.created_at, "key": _b64(k.key)} for k in keks],
    }
    _write_fd(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), document)
    try:
        old = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        old = None
    try:
        os.replace(temporary, path)
        fsync_dir(keys_dir)
        if old is not None:
            size = os.fstat(old).st_size
            os.pwrite(old, bytes(size), 0)
            os.fsync(old)
    finally:
        if old is not None:
            os.close(old)


def _read_private_json(path: Path, *, missing: str) -> Any:
    try:
        mode = path.stat().st_mode
        text = path.read_bytes()
    except FileNotFoundError:
        raise DataDirError(f"no key file at {path}: {missing}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise DataDirError(
            f"key file {path} is accessible to other users (mode {stat.S_IMODE(mode):o}); "
            f"run `chmod 600 {path}`"
        )
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise DataDirError(f"key file {path} is malformed ({exc})") from None
    if not isinstance(document, dict):
        raise DataDirError(f"key file {path} is malformed (not an object)")
    return document


def _write_fd(fd: int, document: dict[str, Any]) -> None:
    with os.fdopen(fd, "w") as f:
        json.dump(document, f)
        f.flush()
        os.fsync(f.fileno())


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def _unb64(text: str) -> bytes:
    key = base64.b64decode(text, validate=True)
    if len(key) != KEY_BYTES:
        raise ValueError("wrong key length")
    return key
