"""Statements straight to the driver, for the group commit's hot path.

SQLAlchemy's execution context around ``Connection.exec_driver_sql`` was a third of the
recorder's time under the GIL per group commit (docs/BENCHMARKS.md), and the writer's
statements need none of it: they are written out, with the driver's own placeholders. The
statement runs in the connection's open transaction, as through SQLAlchemy. A driver error
comes back as the ``DBAPIError`` subclass ``exec_driver_sql`` would raise (without the
parameters), so callers handle both alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

__all__ = ["execute"]


def execute(conn: Connection, sql: str, params: Sequence[Any]) -> Any:
    """Run ``sql`` with ``params`` on ``conn``'s driver connection; returns its cursor."""
    driver_error = conn.dialect.loaded_dbapi.Error
    try:
        return conn.connection.driver_connection.execute(sql, params)  # type: ignore[union-attr]
    except driver_error as exc:
        raise DBAPIError.instance(
            sql, None, exc, driver_error, hide_parameters=True, dialect=conn.dialect
        ) from None
