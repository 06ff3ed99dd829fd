"""Alembic's environment: migrate the connection ``upgrade()`` hands over, in its transaction.

Run by Alembic only (``logwarden.store.migrations.upgrade``), never imported by logwarden.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from logwarden.store import schema
from logwarden.store._partitions import is_partition


def _include_name(name: str | None, type_: str, _parents: object) -> bool:
    # Partitions of ``messages`` are made and dropped at run time, one per day; they are not
    # part of the schema, and autogenerate must not offer to drop them.
    return not (type_ == "table" and name is not None and is_partition(name))


def _run() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "logwarden's migrations run on a connection: use logwarden.store.migrations.upgrade"
        )
    context.configure(
        connection=connection,
        target_metadata=schema.metadata,  # for autogenerate only; revisions never read it
        include_name=_include_name,
        # SQLite alters most things by copying the table; autogenerate should draft that.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


_run()
