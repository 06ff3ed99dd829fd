"""The key file: created once at initialisation, readable by the owner only.

This is the interim key handling of the chat core: one master key from which per-session data
keys are derived, and one key for IP pseudonyms. The retention key hierarchy replaces the
master key; the ``Vault`` interface in envelope.py is what the rest of the code sees.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from logwarden.errors import DataDirError
from logwarden.vault._aead import KEY_BYTES

KEY_FILE_FORMAT = "logwarden-keys/1"
KEY_FILE_NAME = "vault.json"


@dataclass(frozen=True, repr=False)
class KeyMaterial:
    master_key: bytes
    pseudonym_key: bytes

    def __repr__(self) -> str:  # never print key bytes, not even in a traceback
        return "KeyMaterial(**********)"


def create_key_file(keys_dir: Path, *, random_bytes: bytes | None = None) -> Path:
    """Write a new key file with owner-only permissions; refuse to overwrite one."""
    material = random_bytes if random_bytes is not None else os.urandom(2 * KEY_BYTES)
    if len(material) != 2 * KEY_BYTES:
        raise ValueError("need 64 random bytes")
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = keys_dir / KEY_FILE_NAME
    document = {
        "format": KEY_FILE_FORMAT,
        "master_key": base64.b64encode(material[:KEY_BYTES]).decode(),
        "pseudonym_key": base64.b64encode(material[KEY_BYTES:]).decode(),
    }
    # O_EXCL: two concurrent `init`s cannot both write, and an existing key is never replaced.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(document, f)
        f.flush()
        os.fsync(f.fileno())
    return path


def load_key_file(keys_dir: Path) -> KeyMaterial:
    """Read the key file; raises ``DataDirError`` if it is missing, malformed or too open."""
    path = keys_dir / KEY_FILE_NAME
    try:
        mode = path.stat().st_mode
        text = path.read_bytes()
    except FileNotFoundError:
        raise DataDirError(
            f"no key file at {path}: run `logwarden init --data-dir {keys_dir.parent}`"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise DataDirError(
            f"key file {path} is accessible to other users (mode {stat.S_IMODE(mode):o}); "
            f"run `chmod 600 {path}`"
        )
    try:
        document = json.loads(text)
        if document.get("format") != KEY_FILE_FORMAT:
            raise ValueError("unknown format")
        master = base64.b64decode(document["master_key"], validate=True)
        pseudonym = base64.b64decode(document["pseudonym_key"], validate=True)
        if len(master) != KEY_BYTES or len(pseudonym) != KEY_BYTES:
            raise ValueError("wrong key length")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataDirError(f"key file {path} is malformed ({exc})") from None
    return KeyMaterial(master_key=master, pseudonym_key=pseudonym)
