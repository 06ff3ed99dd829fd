"""``Store`` on SQLAlchemy Core: one code for SQLite and PostgreSQL.

The schema is made and upgraded by the migrations (``migrations/``), on every open. Day
buckets of ``messages`` are partitions on PostgreSQL and plain rows on SQLite
(``_partitions.py``); nothing else differs between the backends.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import cache, partial
from itertools import chain, product
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeVar

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    create_engine,
    delete,
    event,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from logwarden.audit import merkle
from logwarden.errors import StoreError
from logwarden.store import _audit, _driver, migrations, schema
from logwarden.store._partitions import DayBuckets, PartitionedDays, RowDays, delete_days
from logwarden.store.base import (
    AddressRow,
    AuditEntryRow,
    AuditHead,
    AuditRecord,
    DayTable,
    MessageRow,
    ParticipantRow,
    ReceiptRow,
    ReportRow,
    RetentionState,
    SafetyEventRow,
    SessionEndRow,
    SessionRecord,
    SessionRow,
    SessionSummary,
    WriteBatch,
)
from logwarden.store.schema import PRESERVED

__all__ = ["SqlStore"]

_T = TypeVar("_T")
_Row = TypeVar("_Row", bound=NamedTuple)

# Rows per INSERT: 500 rows of at most 6 columns stay far below SQLite's 32,766 and
# PostgreSQL's 65,535 bound parameters per statement. The same bound for ids in an IN list.
_ROWS_PER_STATEMENT = 500

_DAY_TABLES: dict[DayTable, Table] = {"messages": schema.messages, "addresses": schema.addresses}

# Every table with a session_id, children of sessions: the order deletion must follow.
_SESSION_CHILDREN = (
    schema.safety_events,
    schema.receipts,
    schema.reports,
    schema.messages,
    schema.addresses,
    schema.participants,
)

_s = schema.sessions
# RetentionState's fields, in order, as columns of sessions.
_RETENTION = tuple(_s.c["id" if name == "session_id" else name] for name in RetentionState._fields)
_KEPT = or_(_s.c.reported_at.is_not(None), _s.c.held_at.is_not(None))  # reported or held


class SqlStore:
    """The session log in a SQL database; use the named constructors."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._days: DayBuckets = (
            PartitionedDays(engine) if engine.dialect.name == "postgresql" else RowDays()
        )
        mark = self._mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        # The audit log's head as this process's last group commit left it (``_audit.append``).
        self._audit_tip: _audit.Tip | None = None
        self._writer: Connection | None = None  # see _writer_connection
        self._writing = threading.Lock()  # one write at a time on it
        self._audit_bodies = (
            f"SELECT idx, body FROM audit_entries WHERE idx >= {mark} AND idx < {mark} "  # noqa: S608 - no input
            "ORDER BY idx"
        )
        # Table and column names are ours, never input; the values go as parameters.
        self._insert_head: dict[type[NamedTuple], str] = {
            row: f"INSERT INTO {table} ({', '.join(row._fields)}) VALUES "  # noqa: S608 - no input
            for row, table in (
                (SessionRow, "sessions"),
                (ParticipantRow, "participants"),
                (AddressRow, "addresses"),
                (MessageRow, "messages"),
                (ReportRow, "reports"),
                (ReceiptRow, "receipts"),
                (SafetyEventRow, "safety_events"),
                (AuditEntryRow, "audit_entries"),
                (_audit.AuditNodeRow, "audit_nodes"),
            )
        }
        self._row_marks = {
            row: f"({', '.join([mark] * len(row._fields))})" for row in self._insert_head
        }
        # PostgreSQL: binary COPY (``_driver.copy_rows``), each column dumped as its type.
        self._copy: dict[type[NamedTuple], tuple[str, list[str]]] | None = None
        if engine.dialect.name == "postgresql":
            tables = {table.name: table for table in schema.metadata.tables.values()}
            self._copy = {}
            for row, head in self._insert_head.items():
                table = tables[_table_of(head)]
                self._copy[row] = (
                    f"COPY {table.name} ({', '.join(row._fields)}) FROM STDIN (FORMAT BINARY)",
                    [_PG_TYPES[type(table.c[name].type)] for name in row._fields],
                )

    @classmethod
    def sqlite(cls, path: Path, *, synchronous: Literal["FULL", "NORMAL"] = "FULL") -> SqlStore:
        """Open (creating if needed, owner-only) the SQLite log at ``path``, and migrate it.

        WAL journal: readers never block the writer. ``synchronous=FULL`` fsyncs the WAL at
        every commit, so an acknowledged batch survives power loss as well as a killed process;
        ``NORMAL`` survives a killed process only.
        """
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        # hide_parameters: errors and logs must not carry row values (pseudonyms, sealed bytes).
        engine = create_engine(f"sqlite:///{path}", hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _configure(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=5000")  # ms; the CLI may read while serving
            _journal_wal(cursor)
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA secure_delete=ON")  # deleted rows are zeroed, not left behind
            cursor.close()

        store = cls(engine)
        store.migrate()
        return store

    @classmethod
    def postgres(cls, url: str) -> SqlStore:
        """Open the log in the PostgreSQL database at ``url`` (``postgresql://…``), and migrate
        it. Durability is the server's: a commit returns once its WAL is flushed
        (``synchronous_commit`` on, PostgreSQL's default)."""
        if not url.startswith(("postgresql://", "postgresql+psycopg://")):
            raise StoreError("a PostgreSQL URL starts with postgresql://")
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        engine = create_engine(url, hide_parameters=True, pool_pre_ping=True)
        store = cls(engine)
        store.migrate()
        return store

    def migrate(self) -> None:
        """Bring the schema to the newest revision; at the newest already, change nothing.

        Raises ``StoreError`` if it cannot (the message says why).
        """
        with _store_errors("migrate the schema"), self._engine.begin() as conn:
            migrations.upgrade(conn)

    # -- writing ---------------------------------------------------------------------------

    def write(self, batch: WriteBatch) -> None:
        with _store_errors("write to the session log"), self._writing:
            tip = self._in_days(
                lambda: (row.bucket for row in batch.messages),
                partial(self._write, batch),
                connection=self._writer_connection,
            )
        if tip is not None:
            self._audit_tip = tip  # committed: the next write may extend it in one statement

    def _write(self, batch: WriteBatch, conn: Connection) -> _audit.Tip | None:
        # The entries first, so that each message row can name its entry; the head's lock is
        # then held to the commit, which only the writer of this batch wants anyway.
        tip = None
        if batch.audit:
            tip = _audit.append(
                conn, batch.audit, self._insert_chunked, mark=self._mark, tip=self._audit_tip
            )
        first = tip.size - len(batch.audit) if tip is not None else 0
        messages = _with_entries(batch.messages, batch.audit, first)
        for rows in (
            batch.sessions,
            batch.participants,
            batch.addresses,
            messages,
            batch.reports,
            batch.receipts,
            batch.safety,
        ):
            if rows:
                self._insert_chunked(conn, rows)
        for end in batch.ends:
            conn.execute(
                update(_s)
                .where(_s.c.id == end.session_id)
                .values(ended_at=end.ended_at, end_reason=end.reason, ended_by=end.ended_by)
            )
        first_reports: dict[str, int] = {}
        marks = [(r.session_id, r.created_at) for r in batch.reports] + batch.preserve
        for session_id, at in marks:
            first_reports[session_id] = min(first_reports.get(session_id, at), at)
        for session_id, at in first_reports.items():
            _mark_reported(conn, session_id, at=at)
        return tip

    def _insert_chunked(self, conn: Connection, rows: Sequence[NamedTuple]) -> None:
        if self._copy is not None:
            sql, types = self._copy[type(rows[0])]
            _driver.copy_rows(conn, sql, types, rows)
            return
        for start in range(0, len(rows), _ROWS_PER_STATEMENT):
            self._insert(conn, rows[start : start + _ROWS_PER_STATEMENT])

    def _insert(self, conn: Connection, rows: Sequence[NamedTuple]) -> None:
        """SQLite: one multi-row INSERT, its values as parameters, straight to the driver.

        Not ``executemany``: the sqlite3 module releases the GIL around every row's step and
        must win it back from the busy event loop each time, which made a batch of 500 rows
        take ten times longer (bench: 5,700 against 57,000 rows/s beside a busy thread). Not
        SQLAlchemy's parameter processing either: it cost more than the insert itself.
        """
        kind = type(rows[0])
        sql = self._insert_head[kind] + ", ".join([self._row_marks[kind]] * len(rows))
        _driver.execute(conn, sql, tuple(chain.from_iterable(rows)))

    def _in_days(
        self,
        days: Callable[[], Iterable[int]],
        work: Callable[[Connection], _T],
        *,
        connection: Callable[[], AbstractContextManager[Connection]] | None = None,
    ) -> _T:
        """Run ``work`` in one transaction (on a connection from the pool, or ``connection``),
        once ``messages`` can take rows in ``days()``."""
        self._days.ensure(days())
        try:
            return self._transaction(work, connection)
        except SQLAlchemyError as exc:
            if not self._days.missing_partition(exc):
                raise
        # Another process dropped a day partition that this one had made (a purge of that
        # day): the transaction rolled back; make the partitions again and retry, once.
        self._days.forget()
        self._days.ensure(days())
        return self._transaction(work, connection)

    def _transaction(
        self,
        work: Callable[[Connection], _T],
        connection: Callable[[], AbstractContextManager[Connection]] | None,
    ) -> _T:
        if connection is None:
            with self._engine.begin() as conn:
                return work(conn)
        with connection() as conn, conn.begin():
            return work(conn)

    @contextmanager
    def _writer_connection(self) -> Iterator[Connection]:
        """The connection of ``write`` (the recorder's group commits), kept open between
        commits: taking one from the pool and giving it back cost a sixth of the writer's time
        under the GIL, every commit. A connection that failed is dropped for a new one."""
        if self._writer is None:
            self._writer = self._engine.connect()
        try:
            yield self._writer
        except BaseException:
            self._writer.close()
            self._writer = None
            raise

    # -- reading ---------------------------------------------------------------------------

    def recent_sessions(self, *, limit: int) -> list[SessionSummary]:
        s, m, r, p = _s, schema.messages, schema.reports, schema.participants
        message_count = select(func.count()).where(m.c.session_id == s.c.id).scalar_subquery()
        report_count = select(func.count()).where(r.c.session_id == s.c.id).scalar_subquery()
        query = (
            select(
                s.c.id, s.c.started_at, s.c.ended_at, s.c.end_reason, message_count, report_count
            )
            .order_by(s.c.started_at.desc(), s.c.id)
            .limit(limit)
        )
        with _store_errors("read the session list"), self._engine.connect() as conn:
            rows = _typed("sessions", _SummaryRow, conn.execute(query), key=("id",))
            ids = [row.id for row in rows]
            pseudonyms: dict[str, list[str]] = {}
            found = conn.execute(
                select(p.c.session_id, p.c.ip_pseudonym, p.c.slot)
                .where(p.c.session_id.in_(ids))
                .order_by(p.c.session_id, p.c.slot)
            )
            for pseudonym in _typed("participants", _PseudonymRow, found, key=_CHILD):
                pseudonyms.setdefault(pseudonym.session_id, []).append(pseudonym.ip_pseudonym)
        return [
            SessionSummary(
                id=row.id,
                started_at=row.started_at,
                ended_at=row.ended_at,
                end_reason=row.end_reason,
                message_count=row.message_count,
                report_count=row.report_count,
                ip_pseudonyms=tuple(pseudonyms.get(row.id, ())),
            )
            for row in rows
        ]

    def session(self, session_id: str) -> SessionRecord | None:
        found = self.sessions([session_id])
        return found[0] if found else None

    def sessions(self, session_ids: Sequence[str]) -> list[SessionRecord]:
        wanted = sorted(set(session_ids))
        records: list[SessionRecord] = []
        with _store_errors("read a session"), self._engine.connect() as conn:
            for chunk in _chunks(wanted):
                records.extend(_session_records(conn, chunk))
        return records

    def reported_pairs(self) -> list[tuple[str, str]]:
        r, reporter, reported = (
            schema.reports,
            schema.participants.alias("reporter"),
            schema.participants.alias("reported"),
        )
        query = (
            select(reporter.c.block_key, reported.c.block_key)
            .select_from(r)
            .join(
                reporter,
                (reporter.c.session_id == r.c.session_id) & (reporter.c.slot == r.c.reporter_slot),
            )
            .join(
                reported,
                (reported.c.session_id == r.c.session_id) & (reported.c.slot != r.c.reporter_slot),
            )
        )
        with _store_errors("read the reports"), self._engine.connect() as conn:
            return [(a, b) for a, b in conn.execute(query)]

    def receipt(self, token_digest: str) -> ReceiptRow | None:
        t = schema.receipts
        query = select(*(t.c[name] for name in ReceiptRow._fields)).where(
            t.c.token_digest == token_digest
        )
        with _store_errors("read a receipt"), self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else ReceiptRow(*row)

    # -- retention -------------------------------------------------------------------------

    def retention_state(self, session_id: str) -> RetentionState | None:
        found = self._retention_states(_s.c.id == session_id)
        return found[0] if found else None

    def preserved_sessions(self) -> list[RetentionState]:
        return self._retention_states(_KEPT)

    def _retention_states(self, where: Any) -> list[RetentionState]:
        query = select(*_RETENTION).where(where).order_by(_s.c.started_at, _s.c.id)
        with _store_errors("read retention states"), self._engine.connect() as conn:
            return [RetentionState(*row) for row in conn.execute(query)]

    def mark_reported(self, session_id: str, *, at: int, audit: Sequence[AuditRecord] = ()) -> bool:
        with _store_errors("mark a session reported"), self._engine.begin() as conn:
            found = _mark_reported(conn, session_id, at=at)
            self._append_if(conn, found, audit)
            return found

    def set_hold(
        self,
        session_id: str,
        *,
        held_at: int | None,
        reason: str | None,
        audit: Sequence[AuditRecord] = (),
    ) -> bool:
        with _store_errors("place or release a hold"), self._engine.begin() as conn:
            found = _update_session(conn, session_id, held_at=held_at, hold_reason=reason)
            if found and held_at is not None:
                _move_rows(conn, session_id, text_bucket=PRESERVED, address_bucket=PRESERVED)
            self._append_if(conn, found, audit)
            return found

    def _append_if(self, conn: Connection, found: bool, audit: Sequence[AuditRecord]) -> None:
        """Append a change's audit entries in its transaction: the two are durable together
        (the audit head's lock is taken last, after the row's)."""
        if found and audit:
            _audit.append(conn, audit, self._insert_chunked, mark=self._mark)

    def move_rows(
        self, session_id: str, *, text_bucket: int | None, address_bucket: int | None
    ) -> None:
        days = () if text_bucket is None else (text_bucket,)
        work = partial(
            _move_rows,
            session_id=session_id,
            text_bucket=text_bucket,
            address_bucket=address_bucket,
        )
        with _store_errors("move a session's rows"):
            self._in_days(lambda: days, work)

    def set_erase_after(
        self, session_id: str, at: int | None, *, audit: Sequence[AuditRecord] = ()
    ) -> None:
        with _store_errors("schedule an erasure"), self._engine.begin() as conn:
            self._append_if(conn, _update_session(conn, session_id, erase_after=at), audit)

    def pending_erasures(self, as_of: int) -> list[str]:
        query = (
            select(_s.c.id)
            .where(_s.c.erase_after <= as_of, _s.c.reported_at.is_(None), _s.c.held_at.is_(None))
            .order_by(_s.c.erase_after, _s.c.id)
        )
        with _store_errors("read pending erasures"), self._engine.connect() as conn:
            return list(conn.scalars(query))

    def expired_sessions(self, *, metadata_through_day: int, reported_before: int) -> list[str]:
        query = (
            select(_s.c.id)
            .where(
                _s.c.held_at.is_(None),
                _s.c.day <= metadata_through_day,
                or_(_s.c.reported_at.is_(None), _s.c.reported_at < reported_before),
            )
            .order_by(_s.c.day, _s.c.id)
        )
        with _store_errors("read expired sessions"), self._engine.connect() as conn:
            return list(conn.scalars(query))

    def delete_sessions(self, session_ids: Sequence[str]) -> int:
        """Delete every row of these sessions, children first; returns how many sessions.

        Each chunk of ids is its own transaction, so a long purge lets the recorder write in
        between: an error part-way leaves earlier chunks deleted, never a session in part.
        """
        deleted = 0
        for chunk in _chunks(list(dict.fromkeys(session_ids))):
            with _store_errors("delete sessions"), self._engine.begin() as conn:
                for table in _SESSION_CHILDREN:
                    conn.execute(delete(table).where(table.c.session_id.in_(chunk)))
                deleted += conn.execute(delete(_s).where(_s.c.id.in_(chunk))).rowcount
        return deleted

    def count_days(self, table: DayTable, *, through_day: int) -> int:
        t = _DAY_TABLES[table]
        query = select(func.count()).select_from(t).where(t.c.bucket.between(1, through_day))
        with _store_errors(f"count expired {table}"), self._engine.connect() as conn:
            return conn.execute(query).scalar_one()

    def drop_days(self, table: DayTable, *, through_day: int) -> int:
        t = _DAY_TABLES[table]
        with _store_errors(f"drop expired {table}"), self._engine.begin() as conn:
            if t is schema.messages:
                return self._days.drop_messages(conn, through_day=through_day)
            return delete_days(conn, t, through_day=through_day)

    def prepare_days(self, days: Iterable[int]) -> None:
        with _store_errors("prepare day buckets"):
            self._days.ensure(days)

    def unfinished_sessions(self) -> list[str]:
        query = select(_s.c.id).where(_s.c.ended_at.is_(None)).order_by(_s.c.id)
        with _store_errors("read unfinished sessions"), self._engine.connect() as conn:
            return list(conn.scalars(query))

    def session_ids(self, *, well_typed_only: bool = False) -> list[str]:
        with _store_errors("read the sessions"), self._engine.connect() as conn:
            rows = conn.execute(select(_s.c.id).order_by(_s.c.id))
            if well_typed_only:
                return [session_id for (session_id,) in rows if isinstance(session_id, str)]
            return [row.id for row in _typed("sessions", _IdRow, rows)]

    def sessions_in_days(self, table: DayTable, *, through_day: int) -> list[str]:
        t = _DAY_TABLES[table]
        query = (
            select(t.c.session_id)
            .where(t.c.bucket.between(1, through_day))
            .distinct()
            .order_by(t.c.session_id)
        )
        with _store_errors(f"read the sessions of expired {table}"), self._engine.connect() as conn:
            return list(conn.scalars(query))

    def reclaim(self) -> bool:
        """After a purge: on SQLite, copy the zeroed pages into the file and empty the WAL,
        which would otherwise keep the deleted rows' earlier page versions; False if a reader
        kept it from finishing (the next purge does). PostgreSQL: nothing to do here (dead
        tuples are VACUUM's; docs/retention.md)."""
        if self._engine.dialect.name != "sqlite":
            return True
        with _store_errors("checkpoint the log"), self._engine.connect() as conn:
            for _ in range(50):
                busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").scalar_one()
                if not busy:
                    return True
                time.sleep(0.02)
        return False

    # -- the audit log ---------------------------------------------------------------------

    def append_audit(self, records: Sequence[AuditRecord]) -> int:
        if not records:
            raise ValueError("nothing to append")
        with _store_errors("append to the audit log"), self._engine.begin() as conn:
            tip = _audit.append(conn, records, self._insert_chunked, mark=self._mark)
            return tip.size - len(records)

    def audit_head(self) -> AuditHead:
        with _store_errors("read the audit log's head"), self._engine.connect() as conn:
            return _audit.head(conn)

    def audit_entries(
        self, start: int, stop: int, *, limit: int | None = None
    ) -> list[AuditEntryRow]:
        e = schema.audit_entries
        query = select(*e.c).where(e.c.idx >= start, e.c.idx < stop).order_by(e.c.idx)
        if limit is not None:
            query = query.limit(limit)
        with _store_errors("read the audit log"), self._engine.connect() as conn:
            return _typed("audit_entries", AuditEntryRow, conn.execute(query))

    def audit_bodies(self, start: int, stop: int) -> list[tuple[object, object]]:
        # Straight to the driver: through SQLAlchemy's rows and the type checks of
        # ``audit_entries``, the signer's read of each half-second's entries held the GIL for
        # half of a thread's time at 8,000 messages/s (bench/relay.py, py-spy).
        with _store_errors("read the audit log"), self._engine.connect() as conn:
            cursor = _driver.execute(conn, self._audit_bodies, (start, stop))
            rows: list[tuple[object, object]] = cursor.fetchall()
            return rows

    def audit_entries_of(self, session_id: str) -> list[AuditEntryRow]:
        e, m = schema.audit_entries, schema.messages
        others = select(*e.c).where(e.c.session_id == session_id, e.c.kind != "message")
        said = (
            select(*e.c)
            .join(m, m.c.entry == e.c.idx)
            .where(m.c.session_id == session_id, e.c.kind == "message")
        )
        with _store_errors("read the audit log"), self._engine.connect() as conn:
            rows = _typed("audit_entries", AuditEntryRow, conn.execute(others.union_all(said)))
        return sorted(rows, key=lambda row: row.idx)

    def audit_entries_about(self, session_ids: Sequence[str]) -> list[AuditEntryRow]:
        e = schema.audit_entries
        return self._entries_in(e.c.session_id, session_ids, e.c.kind != "message")

    def audit_entries_at(self, indexes: Sequence[int]) -> list[AuditEntryRow]:
        return self._entries_in(schema.audit_entries.c.idx, indexes)

    def _entries_in(self, column: Any, values: Sequence[Any], *where: Any) -> list[AuditEntryRow]:
        """The entries whose ``column`` holds one of ``values`` (and that meet ``where``), in
        order: one query per chunk of values."""
        e = schema.audit_entries
        rows: list[AuditEntryRow] = []
        with _store_errors("read the audit log"), self._engine.connect() as conn:
            for chunk in _chunks(sorted(set(values))):
                query = select(*e.c).where(column.in_(chunk), *where)
                rows.extend(_typed("audit_entries", AuditEntryRow, conn.execute(query)))
        return sorted(rows, key=lambda row: row.idx)

    def audit_nodes(self) -> dict[tuple[int, int], bytes]:
        n = schema.audit_nodes
        with _store_errors("read the audit log's nodes"), self._engine.connect() as conn:
            return {(level, idx): h for level, idx, h in conn.execute(select(*n.c))}

    def audit_proof(self, *, index: int, size: int) -> list[bytes]:
        with _store_errors("make an inclusion proof"), self._engine.connect() as conn:
            nodes = merkle.inclusion_proof_nodes(index, size)
            hash_at = _audit.node_reader(conn, chain.from_iterable(nodes))
            return merkle.inclusion_proof_from(hash_at, index=index, size=size)

    def audit_consistency(self, *, old_size: int, new_size: int) -> list[bytes]:
        with _store_errors("make a consistency proof"), self._engine.connect() as conn:
            nodes = merkle.consistency_proof_nodes(old_size, new_size)
            hash_at = _audit.node_reader(conn, chain.from_iterable(nodes))
            return merkle.consistency_proof_from(hash_at, old_size=old_size, new_size=new_size)

    def audit_root(self, size: int) -> bytes:
        with _store_errors("compute an audit root"), self._engine.connect() as conn:
            hash_at = _audit.node_reader(conn, merkle.compact_nodes(0, size))
            return merkle.root_from(hash_at, size)

    def audit_range(self, size: int) -> merkle.CompactRange:
        with _store_errors("read the audit tree"), self._engine.connect() as conn:
            try:
                hash_at = _audit.node_reader(conn, merkle.compact_nodes(0, size))
            except StoreError as exc:  # a hash it needs is not stored: damage, not an outage
                raise ValueError(str(exc)) from None
            return merkle.CompactRange.from_nodes(hash_at, size)

    def save_checkpoint(self, *, size: int, at: int, note: bytes, history_ms: int) -> bool:
        h, c = schema.audit_head, schema.audit_checkpoints
        with _store_errors("save a checkpoint"), self._engine.begin() as conn:
            # Only ever forward: a slower signer's older checkpoint must not replace a newer.
            # A marker past the log's size cannot be a checkpoint's (one set there would stop
            # every checkpoint from being saved): it is overwritten.
            newer = or_(
                h.c.checkpoint_size.is_(None),
                h.c.checkpoint_size < size,
                h.c.checkpoint_size > h.c.size,
            )
            saved = conn.execute(
                update(h).where(h.c.id == 1, newer).values(checkpoint=note, checkpoint_size=size)
            ).rowcount
            # The head's row lock, taken by the update, serialises this read and insert
            # across processes: the history's pace holds whoever signs.
            if saved and self._history_due(conn, size=size, at=at, history_ms=history_ms):
                conn.execute(c.insert().values(size=size, at=at, note=note))
            return bool(saved)

    @staticmethod
    def _history_due(conn: Connection, *, size: int, at: int, history_ms: int) -> bool:
        c = schema.audit_checkpoints
        newest = conn.execute(select(c.c.size, c.c.at).order_by(c.c.size.desc()).limit(1)).first()
        if newest is None:
            return True
        kept_size, kept_at = newest
        return bool(kept_size < size and abs(at - kept_at) >= history_ms)

    def checkpoint_marker(self) -> int | None:
        h = schema.audit_head
        with _store_errors("read the checkpoint marker"), self._engine.connect() as conn:
            marker: int | None = conn.scalar(select(h.c.checkpoint_size).where(h.c.id == 1))
            return marker

    def audit_checkpoints(self) -> list[tuple[int, int, bytes]]:
        c = schema.audit_checkpoints
        query = select(c.c.size, c.c.at, c.c.note).order_by(c.c.size)
        with _store_errors("read the checkpoints"), self._engine.connect() as conn:
            return [(size, at, note) for size, at, note in conn.execute(query)]

    def close(self) -> None:
        with self._writing:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        self._engine.dispose()


# -- values of the wrong type ------------------------------------------------------------------
#
# SQLite types each value, not each column: whoever can write the database file can put text
# in a blob column, bytes in a text column, text in an integer column (PostgreSQL cannot).
# The readers of the CLI, the export and `audit verify` (recent_sessions, session,
# session_ids, audit_entries*) hold every row to one rule, in ``_typed``:
#
# - a value of its field's type is handed back as it is: the only case on PostgreSQL, and
#   rows keep the types they always had;
# - text in a bytes column is handed back as its UTF-8 bytes, which are the very bytes SQLite
#   holds (casting between text and blob keeps them): hashing or comparing it judges it as
#   the original would be, so `audit verify` names it if it differs from its entry;
# - any other value has no honest form in its field's type (a time that is 'abc', a session
#   id that is bytes could neither be shown as one nor looked up again as one): the reader
#   raises StoreError naming the table, the row and the column. Nothing logwarden writes
#   looks like that: the row was changed in the database.
#
# So a caller never hashes, sorts, formats or serialises a value of a type it was not
# promised. (The purge's and the server's own readers hand rows back as stored.)


class _SummaryRow(NamedTuple):  # recent_sessions' columns
    id: str
    started_at: int
    ended_at: int | None
    end_reason: str | None
    message_count: int
    report_count: int


class _PseudonymRow(NamedTuple):
    session_id: str
    ip_pseudonym: str
    slot: int


class _IdRow(NamedTuple):
    id: str


class _SessionColumns(NamedTuple):  # a sessions row, every column
    id: str
    started_at: int
    day: int
    interests_sealed: bytes
    ended_at: int | None
    end_reason: str | None
    ended_by: int | None
    reported_at: int | None
    held_at: int | None
    hold_reason: str | None
    erase_after: int | None
    audit_salt: bytes | None


_CHILD = ("session_id", "slot")


def _session_records(conn: Connection, session_ids: Sequence[str]) -> list[SessionRecord]:
    """The records of these sessions (those that exist, in id order): one query per table
    for all of them."""
    columns = select(*(_s.c[name] for name in _SessionColumns._fields))
    found = _typed(
        "sessions",
        _SessionColumns,
        conn.execute(columns.where(_s.c.id.in_(session_ids)).order_by(_s.c.id)),
    )
    if not found:
        return []

    def rows_of(
        table: Table, kind: type[_Row], order: str, key: str = "slot"
    ) -> dict[str, list[_Row]]:
        """The sessions' rows of ``table`` as ``kind`` (its fields are columns), by session."""
        query = (
            select(*(table.c[name] for name in kind._fields))
            .where(table.c.session_id.in_(session_ids))
            .order_by(table.c.session_id, table.c[order])
        )
        by_session: dict[str, list[_Row]] = {}
        for row in _typed(table.name, kind, conn.execute(query), key=("session_id", key)):
            by_session.setdefault(row.session_id, []).append(row)  # type: ignore[attr-defined]
        return by_session

    people = rows_of(schema.participants, ParticipantRow, "slot")
    addresses = rows_of(schema.addresses, AddressRow, "slot")
    said = rows_of(schema.messages, MessageRow, "seq", "seq")
    reported = rows_of(schema.reports, ReportRow, "id", "created_at")
    tokens = rows_of(schema.receipts, ReceiptRow, "slot")
    events = rows_of(schema.safety_events, SafetyEventRow, "id", "at")
    return [
        SessionRecord(
            session=SessionRow(
                row.id, row.started_at, row.day, row.interests_sealed, row.audit_salt
            ),
            ended=_session_end(row),
            participants=tuple(people.get(row.id, ())),
            addresses=tuple(addresses.get(row.id, ())),
            messages=tuple(said.get(row.id, ())),
            reports=tuple(reported.get(row.id, ())),
            retention=RetentionState(*(getattr(row, column.name) for column in _RETENTION)),
            safety=tuple(events.get(row.id, ())),
            receipts=tuple(tokens.get(row.id, ())),
        )
        for row in found
    ]


def _session_end(row: _SessionColumns) -> SessionEndRow | None:
    if row.ended_at is None:
        return None
    # An end without a reason is a changed row, passed on as it always was: `audit verify`
    # names the end as differing from its entry.
    reason: Any = row.end_reason
    return SessionEndRow(row.id, row.ended_at, reason, row.ended_by)


def _typed(
    table: str,
    kind: type[_Row],
    rows: Iterable[Sequence[Any]],
    *,
    key: tuple[str, ...] | None = None,
) -> list[_Row]:
    """``rows`` as ``kind``, once each value has its field's type (the rule above); ``key``
    names the fields that name a row in an error (by default, the first)."""
    well_typed = _shape(kind)[0]
    return [
        kind(*row) if tuple(map(type, row)) in well_typed else _retyped(table, kind, row, key)
        for row in rows
    ]


@cache
def _shape(
    kind: type[NamedTuple],
) -> tuple[frozenset[tuple[type, ...]], tuple[tuple[type, ...], ...]]:
    """Every combination of types a well-typed ``kind`` has (one set lookup accepts a row),
    and the types each field may hold."""
    hints = typing.get_type_hints(kind)
    fields = tuple(
        typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        for hint in (hints[name] for name in kind._fields)
    )
    return frozenset(product(*fields)), fields


def _retyped(table: str, kind: type[_Row], row: Sequence[Any], key: tuple[str, ...] | None) -> _Row:
    _well_typed, fields = _shape(kind)
    values = []
    for name, value, allowed in zip(kind._fields, row, fields, strict=True):
        if type(value) in allowed:
            values.append(value)
        elif isinstance(value, str) and bytes in allowed:
            values.append(value.encode("utf-8"))
        else:
            names = key or kind._fields[:1]
            which = ", ".join(f"{n} {_shown(row[kind._fields.index(n)])}" for n in names)
            raise StoreError(
                f"{table} row ({which}): its {name} holds {_type_name(value)} where "
                f"{' or '.join(map(_type_name, allowed))} belongs: the row was changed in the "
                "database (logwarden never writes that)"
            )
    return kind(*values)


def _type_name(value: Any) -> str:
    kind = value if isinstance(value, type) else type(value)
    names = {int: "an integer", str: "text", bytes: "bytes", float: "a real number"}
    return names.get(kind, "NULL" if kind is type(None) else kind.__name__)


def _shown(value: Any) -> str:
    """A stored value that names a row, shown whatever its type, briefly."""
    if isinstance(value, bytes):
        return f"x'{value[:16].hex()}{'…' if len(value) > 16 else ''}'"
    if isinstance(value, str):
        return repr(value[:40] + ("…" if len(value) > 40 else ""))
    return repr(value)[:40]


_PG_TYPES = {  # the column types of schema.py, as binary COPY dumps them
    BigInteger: "int8",
    Integer: "int4",
    SmallInteger: "int2",
    String: "text",  # varchar's binary form is text's
    LargeBinary: "bytea",
}


def _table_of(insert_head: str) -> str:
    return insert_head.split()[2]  # "INSERT INTO <table> (...) VALUES "


def _with_entries(
    messages: list[MessageRow], audit: Sequence[AuditRecord], first: int
) -> list[MessageRow]:
    """The message rows with their entries' indexes: the n-th message entry of the batch is
    the n-th message's (``Store.write``)."""
    if not messages:
        return messages
    indexes = [first + n for n, record in enumerate(audit) if record.kind == "message"]
    if not indexes:
        return messages
    if len(indexes) != len(messages) or any(
        audit[i - first].session_id != row.session_id
        for i, row in zip(indexes, messages, strict=True)
    ):
        raise StoreError("a batch's message entries are not in the order of its messages")
    return [row._replace(entry=i) for row, i in zip(messages, indexes, strict=True)]


def _journal_wal(cursor: Any) -> None:
    """Switch the file to the WAL journal (a no-op once it is).

    The first openers of a new file race for the switch, and SQLite answers the losers
    "locked" at once rather than wait (waiting could deadlock), so they try again, for about
    as long as busy_timeout.
    """
    for _ in range(50):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            time.sleep(0.1)  # s
        else:
            return
    cursor.execute("PRAGMA journal_mode=WAL")


def _mark_reported(conn: Connection, session_id: str, *, at: int) -> bool:
    """Put the session in the reported class, keeping an earlier ``reported_at``, and move its
    rows to ``PRESERVED``; False if there is no such session."""
    found = _update_session(conn, session_id, reported_at=func.coalesce(_s.c.reported_at, at))
    if found:
        _move_rows(conn, session_id, text_bucket=PRESERVED, address_bucket=PRESERVED)
    return found


def _update_session(conn: Connection, session_id: str, **values: Any) -> bool:
    """Set columns of one session's row; False if there is no such session."""
    result = conn.execute(update(_s).where(_s.c.id == session_id).values(**values))
    return result.rowcount == 1


def _move_rows(
    conn: Connection, session_id: str, *, text_bucket: int | None, address_bucket: int | None
) -> None:
    for table, bucket in ((schema.messages, text_bucket), (schema.addresses, address_bucket)):
        of_session = table.c.session_id == session_id
        if bucket is None:
            conn.execute(delete(table).where(of_session))
        else:
            conn.execute(
                update(table).where(of_session, table.c.bucket != bucket).values(bucket=bucket)
            )


def _chunks(ids: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for start in range(0, len(ids), _ROWS_PER_STATEMENT):
        yield ids[start : start + _ROWS_PER_STATEMENT]


@contextmanager
def _store_errors(doing: str) -> Iterator[None]:
    """Turn driver errors into ``StoreError`` naming what we were doing."""
    try:
        yield
    except SQLAlchemyError as exc:
        undecodable = _NOT_UTF8.search(str(exc))
        if undecodable is not None:
            # SQLite's text that is not UTF-8 (written as bytes cast to text): the driver's
            # message quotes the bytes, which are row values; name the column instead.
            raise StoreError(
                f"could not {doing}: its column {undecodable[1]} holds text that is not UTF-8: "
                "a row was changed in the database (logwarden never writes that)"
            ) from None
        raise StoreError(f"could not {doing}: {exc.__class__.__name__}: {exc}") from exc


_NOT_UTF8 = re.compile(r"Could not decode to UTF-8 column '(\w+)'")
