"""The data directory: the SQLite log and the key file, readable by the owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from logwarden.config import Settings
from logwarden.errors import DataDirError
from logwarden.store import SqlStore
from logwarden.vault import create_key_file
from logwarden.vault.keys import KEY_FILE_NAME

__all__ = ["initialise", "is_initialised", "open_store"]


def is_initialised(settings: Settings) -> bool:
    return (settings.keys_dir / KEY_FILE_NAME).exists()


def initialise(settings: Settings) -> bool:
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
    if not is_initialised(settings):
        create_key_file(settings.keys_dir)
        created = True
    if settings.database_url is None and not settings.sqlite_path.exists():
        created = True
    open_store(settings).close()
    return created


def open_store(settings: Settings) -> SqlStore:
    """The configured session log: PostgreSQL at ``database_url``, else SQLite in data_dir."""
    if settings.database_url is not None:
        return SqlStore.postgres(settings.database_url.get_secret_value())
    return SqlStore.sqlite(settings.sqlite_path, synchronous=settings.recorder.sqlite_synchronous)


def _require_private(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        # Tighten rather than refuse: a fresh `mkdir data` under a 022 umask is the common case.
        os.chmod(path, mode & 0o700)
