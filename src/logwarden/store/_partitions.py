"""Day buckets of ``messages``: on PostgreSQL a partition per day, made on demand, dropped whole.

Internal and unstable: ``SqlStore`` is the only user.

``messages`` is ``PARTITION BY RANGE (bucket)``: ``messages_preserved`` holds bucket 0 (made by
the baseline migration) and ``messages_d<day>`` holds one day, ``FROM (day) TO (day + 1)``.
There is deliberately no DEFAULT partition: a row for a day without its partition fails the
transaction instead of landing somewhere that expiry would not drop. SQLite has no partitions;
``RowDays`` deletes rows instead, so the store's code is the same for both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

import psycopg.errors
from sqlalchemy import Connection, Engine, Table, delete, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from logwarden.errors import StoreError
from logwarden.store import schema

__all__ = ["DayBuckets", "PartitionedDays", "RowDays", "is_partition"]

_PARTITION_NAME = re.compile(r"messages_(?:preserved|d\d+)")
_BOUND = re.compile(r"FOR VALUES FROM \((-?\d+)\) TO \((-?\d+)\)")

# What CREATE TABLE IF NOT EXISTS … PARTITION OF raises when another process made the same
# partition between its existence check and its catalog insert: the partition exists.
_CREATED_CONCURRENTLY = (
    psycopg.errors.DuplicateTable,
    psycopg.errors.UniqueViolation,
    psycopg.errors.InvalidObjectDefinition,  # "would overlap partition": the day is covered
)


def is_partition(table_name: str) -> bool:
    """Whether ``table_name`` is a partition of ``messages`` (made at run time, not a table
    of the schema)."""
    return _PARTITION_NAME.fullmatch(table_name) is not None


class DayBuckets(Protocol):
    def ensure(self, days: Iterable[int]) -> None:
        """Make sure a ``messages`` row in each of ``days`` (or ``PRESERVED``) can be written."""
        ...

    def forget(self) -> None:
        """Forget which days are known to be ready (another process may have dropped some)."""
        ...

    def missing_partition(self, exc: SQLAlchemyError) -> bool:
        """Whether ``exc`` says a row had no partition to go to."""
        ...

    def drop_messages(self, conn: Connection, *, through_day: int) -> int:
        """Remove the ``messages`` rows of day buckets 1..through_day; returns how many."""
        ...


class RowDays:
    """Day buckets as plain rows (SQLite): nothing to make, expiry deletes rows."""

    def ensure(self, days: Iterable[int]) -> None:
        pass  # deliberately does not iterate ``days``: the write path pays nothing here

    def forget(self) -> None:
        pass

    def missing_partition(self, exc: SQLAlchemyError) -> bool:
        return False

    def drop_messages(self, conn: Connection, *, through_day: int) -> int:
        return delete_days(conn, schema.messages, through_day=through_day)


class PartitionedDays:
    """Day partitions of ``messages`` on PostgreSQL, with the days known to exist.

    The common case of ``ensure`` is a set lookup per day of the batch. A missing day gets its
    partition in a short transaction of its own, before the caller's: creating a partition
    takes an ACCESS EXCLUSIVE lock on ``messages`` (briefly blocking its readers and writers,
    once a day), which must not be held for the length of a write.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._known: set[int] = {schema.PRESERVED}

    def ensure(self, days: Iterable[int]) -> None:
        for day in set(days) - self._known:
            self._create(day)
            self._known.add(day)

    def forget(self) -> None:
        self._known = {schema.PRESERVED}

    def missing_partition(self, exc: SQLAlchemyError) -> bool:
        # "no partition of relation "messages" found for row": the schema has no CHECK
        # constraint, so a check violation can only mean this.
        return isinstance(exc, DBAPIError) and isinstance(exc.orig, psycopg.errors.CheckViolation)

    def _create(self, day: int) -> None:
        if day < 1:
            raise StoreError(f"bucket {day} is neither PRESERVED (0) nor a day")
        # The day is an int and the name is made from it: no input reaches the statement text.
        ddl = (
            f"CREATE TABLE IF NOT EXISTS messages_d{day} PARTITION OF messages "
            f"FOR VALUES FROM ({day}) TO ({day + 1})"
        )
        try:
            with self._engine.begin() as conn:
                conn.exec_driver_sql(ddl)
        except DBAPIError as exc:
            if not isinstance(exc.orig, _CREATED_CONCURRENTLY):
                raise

    def drop_messages(self, conn: Connection, *, through_day: int) -> int:
        """Count and drop every day partition wholly within 1..through_day.

        Rows of 1..through_day in any other partition (none, unless someone attached one by
        hand) are deleted, so the promise holds whatever the partitions are.
        """
        count = 0
        quote = conn.dialect.identifier_preparer.quote
        # DROP needs an exclusive lock on `messages`, and while it waits for one (behind a
        # long reader, a pg_dump), every insert of the chat queues behind it. Give up after a
        # while instead: the purge fails, says so, and the next one tries again.
        conn.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
        for name, first, last in self._day_partitions(conn):
            if first >= 1 and last <= through_day:
                table = quote(name)
                count += conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()  # noqa: S608 - a catalog name, quoted
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
                self._known.difference_update(range(first, last + 1))
        return count + delete_days(conn, schema.messages, through_day=through_day)

    def _day_partitions(self, conn: Connection) -> list[tuple[str, int, int]]:
        """(name, first day, last day) of each range partition of ``messages``."""
        found = conn.execute(
            text(
                "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)"
                " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'messages'::regclass"
            )
        )
        partitions = []
        for name, bound in found:
            if bound is None:  # dropped meanwhile by another process
                continue
            match = _BOUND.fullmatch(bound)
            if match is not None:  # not DEFAULT (we make none, but do not trip over one)
                partitions.append((name, int(match[1]), int(match[2]) - 1))
        return partitions


def delete_days(conn: Connection, table: Table, *, through_day: int) -> int:
    """Delete the rows of ``table`` in day buckets 1..through_day; returns how many."""
    result = conn.execute(delete(table).where(table.c.bucket.between(1, through_day)))
    return result.rowcount
