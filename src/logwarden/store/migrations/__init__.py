"""The session log's schema migrations (Alembic), shipped inside the package.

There is no ``alembic.ini``: ``upgrade(connection)`` builds the configuration in code and
migrates the connection it is given, so one environment serves SQLite files and PostgreSQL
URLs alike. ``SqlStore.sqlite`` and ``SqlStore.postgres`` call it on every open; at the newest
revision it changes nothing.

A new revision goes in ``versions/`` as ``NNNN_what.py``, with its operations written out, never
read from ``schema.metadata`` (a revision must keep doing what it did when it was written).
To draft one against a scratch database at the previous head::

    from alembic import command
    from logwarden.store.migrations import config
    cfg = config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, "what it does", autogenerate=True, rev_id="0002")

then edit the draft by hand; ``tests/store/test_migrations.py`` checks that the migrated schema
matches ``schema.py`` on both backends.
"""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, inspect, text

from logwarden.errors import StoreError

__all__ = ["config", "upgrade"]

# Any constant shared by every logwarden process: the advisory lock that serialises
# concurrent upgrades of one PostgreSQL database (a server and a CLI command opening at once).
_UPGRADE_LOCK = 0x6C6F6777  # "logw"

# Alembic keeps the running migration's context in module globals (``alembic.context``,
# ``alembic.op``), so one process runs one upgrade at a time, whatever the database.
_running = threading.Lock()


def config() -> Config:
    """Alembic's configuration for these migrations, with no file and no URL."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent))
    return cfg


def upgrade(connection: Connection) -> None:
    """Bring the schema on ``connection`` to the newest revision, in its open transaction.

    Raises ``StoreError`` if the database holds a log made before migrations existed (its
    format is gone: start a new log). Driver errors propagate.
    """
    # Serialise upgrades of the database, until commit: without it, two processes creating a
    # new log at once would both find no version table and both create the tables.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK})
    elif connection.dialect.name == "sqlite":
        # The write lock, now (the driver would begin only at the first INSERT): the upgrade
        # is one transaction, DDL included, and another opener waits for it (busy_timeout).
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    tables = inspect(connection)
    if tables.has_table("sessions") and not tables.has_table("alembic_version"):
        raise StoreError(
            "this session log was made before schema migrations and cannot be upgraded; "
            "move it away and start a new one"
        )
    cfg = config()
    cfg.attributes["connection"] = connection
    with _running:
        command.upgrade(cfg, "head")
