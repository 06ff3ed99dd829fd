"""Statements straight to the driver, for the group commit's hot path.

SQLAlchemy's execution context around ``Connection.exec_driver_sql`` was a third of the
recorder's time under the GIL per group commit (docs/BENCHMARKS.md), and the writer's
statements need none of it: they are written out, with the driver's own placeholders. The
statement runs in the connection's open transaction, as through SQLAlchemy. A driver error
comes back as the ``DBAPIError`` subclass ``exec_driver_sql`` would raise (without the
parameters), so callers handle both alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

__all__ = ["copy_rows", "execute"]


def execute(conn: Connection, sql: str, params: Sequence[Any]) -> Any:
    """Run ``sql`` with ``params`` on ``conn``'s driver connection; returns its cursor."""
    with _driver_errors(conn, sql):
        return conn.connection.driver_connection.execute(sql, params)  # type: ignore[union-attr]


def copy_rows(conn: Connection, sql: str, types: Sequence[str], rows: Iterable[Any]) -> None:
    """PostgreSQL: stream ``rows`` through ``sql``, a ``COPY … FROM STDIN (FORMAT BINARY)``,
    each column dumped as the PostgreSQL type of the same place in ``types``.

    Binary COPY skips the parsing and planning of an INSERT and psycopg's escaping of every
    value, which it does in Python: 1.3 against 15 us of client time a row, and six times the
    rows a second (bench/audit.py; docs/BENCHMARKS.md).
    """
    with _driver_errors(conn, sql):
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor, cursor.copy(sql) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)


@contextmanager
def _driver_errors(conn: Connection, sql: str) -> Iterator[None]:
    driver_error = conn.dialect.loaded_dbapi.Error
    try:
        yield
    except driver_error as exc:
        raise DBAPIError.instance(
            sql, None, exc, driver_error, hide_parameters=True, dialect=conn.dialect
        ) from None
