"""The session log's store on both backends: batches written in one transaction, read back."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from logwarden.errors import StoreError
from logwarden.store import (
    MessageRow,
    ParticipantRow,
    ReportRow,
    SessionEndRow,
    SessionRow,
    SqlStore,
    WriteBatch,
)

T0 = 1_764_061_200_000  # ms since the epoch
PSEUDONYMS = ("a" * 32, "b" * 32, "c" * 32)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "logwarden.db"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, db_path: Path) -> Iterator[SqlStore]:
    """An empty store on each backend: the same tests run against both."""
    if request.param == "sqlite":
        store = SqlStore.sqlite(db_path)
    else:
        url: str = request.getfixturevalue("postgres_url")
        store = SqlStore.postgres(url)
        with psycopg.connect(url, autocommit=True) as db:
            db.execute("TRUNCATE sessions, participants, messages, reports RESTART IDENTITY")
    yield store
    store.close()


@pytest.fixture
def sqlite_store(db_path: Path) -> Iterator[SqlStore]:
    store = SqlStore.sqlite(db_path)
    yield store
    store.close()


def sid(n: int) -> str:
    return f"{n:032x}"


def started(
    n: int, *, at: int, pseudonyms: tuple[str, str] = PSEUDONYMS[:2], messages: int = 0
) -> WriteBatch:
    """A batch starting session ``n`` with two participants and ``messages`` messages."""
    session_id = sid(n)
    return WriteBatch(
        sessions=[SessionRow(session_id, at, b"sealed interests %d" % n)],
        participants=[
            ParticipantRow(session_id, slot, pseudonym, b"sealed ip %d" % slot, pseudonym)
            for slot, pseudonym in enumerate(pseudonyms)
        ],
        messages=[
            MessageRow(session_id, seq, seq % 2, at + seq, b"sealed text %d" % seq)
            for seq in range(1, messages + 1)
        ],
    )


def full_batch() -> WriteBatch:
    """A session's whole life in one batch: start, participants, messages, a report, the end."""
    batch = started(1, at=T0, messages=3)
    batch.reports.append(ReportRow(sid(1), 1, "harassment", b"sealed comment", T0 + 10))
    batch.ends.append(SessionEndRow(sid(1), T0 + 20, "stopped", 0))
    return batch


class TestFile:
    def test_created_owner_only(self, db_path: Path) -> None:
        """A new database file is created with mode 0600."""
        SqlStore.sqlite(db_path).close()
        assert stat.S_IMODE(db_path.stat().st_mode) == 0o600

    def test_wal_journal(self, sqlite_store: SqlStore, db_path: Path) -> None:
        """The database uses the WAL journal, as seen by an independent connection."""
        sqlite_store.write(started(1, at=T0))
        with sqlite3.connect(db_path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    def test_wal_files_are_owner_only(self, sqlite_store: SqlStore, db_path: Path) -> None:
        """The WAL and shared-memory files next to the database are owner-only too."""
        sqlite_store.write(started(1, at=T0))
        companions = [p for p in db_path.parent.iterdir() if p.name != db_path.name]
        assert companions, "WAL mode should leave -wal/-shm files while open"
        for path in companions:
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path.name

    def test_reopen_keeps_data(self, db_path: Path) -> None:
        """What was written is there after the store is closed and opened again."""
        first = SqlStore.sqlite(db_path)
        first.write(full_batch())
        first.close()
        second = SqlStore.sqlite(db_path)
        try:
            record = second.session(sid(1))
            assert record is not None
            assert len(record.messages) == 3
        finally:
            second.close()

    def test_opening_twice_is_harmless(self, db_path: Path) -> None:
        """Opening an existing log creates nothing new and loses nothing."""
        store = SqlStore.sqlite(db_path)
        store.write(started(1, at=T0))
        store.close()
        again = SqlStore.sqlite(db_path)
        try:
            assert [s.id for s in again.recent_sessions(limit=10)] == [sid(1)]
        finally:
            again.close()


class TestSessionRecord:
    def test_full_batch_reads_back(self, store: SqlStore) -> None:
        """Every row of a batch comes back from session(), exactly as written."""
        batch = full_batch()
        store.write(batch)
        record = store.session(sid(1))
        assert record is not None
        assert record.session == batch.sessions[0]
        assert record.participants == tuple(batch.participants)
        assert record.messages == tuple(batch.messages)
        assert record.reports == tuple(batch.reports)
        assert record.ended == batch.ends[0]

    def test_unknown_session(self, store: SqlStore) -> None:
        """session() of an unknown id is None."""
        assert store.session(sid(404)) is None

    def test_not_ended_yet(self, store: SqlStore) -> None:
        """A session without an end row has ``ended`` None."""
        store.write(started(1, at=T0))
        record = store.session(sid(1))
        assert record is not None
        assert record.ended is None
        assert record.reports == ()

    def test_end_written_in_a_later_batch(self, store: SqlStore) -> None:
        """An end written in a later batch is attached to its session."""
        store.write(started(1, at=T0))
        store.write(WriteBatch(ends=[SessionEndRow(sid(1), T0 + 5, "timeout", None)]))
        record = store.session(sid(1))
        assert record is not None
        assert record.ended == SessionEndRow(sid(1), T0 + 5, "timeout", None)

    def test_messages_in_seq_order(self, store: SqlStore) -> None:
        """Messages come back ordered by their sequence number, whatever the insert order."""
        store.write(started(1, at=T0))
        rows = [MessageRow(sid(1), seq, 0, T0 + seq, b"m%d" % seq) for seq in (3, 1, 2, 10)]
        store.write(WriteBatch(messages=rows))
        record = store.session(sid(1))
        assert record is not None
        assert [m.seq for m in record.messages] == [1, 2, 3, 10]

    def test_sessions_are_kept_apart(self, store: SqlStore) -> None:
        """Rows of one session do not show up in another's record."""
        store.write(started(1, at=T0, messages=2))
        store.write(started(2, at=T0 + 1, messages=5))
        one, two = store.session(sid(1)), store.session(sid(2))
        assert one is not None
        assert two is not None
        assert {m.session_id for m in one.messages} == {sid(1)}
        assert len(one.messages) == 2
        assert len(two.messages) == 5


class TestRecentSessions:
    def test_newest_first_with_counts(self, store: SqlStore) -> None:
        """Sessions are listed newest first, with message and report counts and pseudonyms."""
        store.write(full_batch())  # T0, 3 messages, 1 report, ended
        store.write(started(2, at=T0 + 1000, pseudonyms=(PSEUDONYMS[2], PSEUDONYMS[0])))
        store.write(started(3, at=T0 - 1000, messages=1))
        summaries = store.recent_sessions(limit=10)
        assert [s.id for s in summaries] == [sid(2), sid(1), sid(3)]
        newest, middle, oldest = summaries
        assert (newest.message_count, newest.report_count) == (0, 0)
        assert (middle.message_count, middle.report_count) == (3, 1)
        assert (oldest.message_count, oldest.report_count) == (1, 0)
        assert newest.ip_pseudonyms == (PSEUDONYMS[2], PSEUDONYMS[0])  # slot order
        assert middle.ip_pseudonyms == PSEUDONYMS[:2]
        assert (middle.ended_at, middle.end_reason) == (T0 + 20, "stopped")
        assert (newest.ended_at, newest.end_reason) == (None, None)
        assert newest.started_at == T0 + 1000

    def test_limit(self, store: SqlStore) -> None:
        """At most ``limit`` sessions are listed, the newest ones."""
        for n in range(10):
            store.write(started(n, at=T0 + n))
        assert [s.id for s in store.recent_sessions(limit=3)] == [sid(9), sid(8), sid(7)]

    def test_same_start_time_is_ordered_by_id(self, store: SqlStore) -> None:
        """Sessions started in the same millisecond are listed in a stable order."""
        for n in (3, 1, 2):
            store.write(started(n, at=T0))
        assert [s.id for s in store.recent_sessions(limit=10)] == [sid(1), sid(2), sid(3)]

    def test_empty(self, store: SqlStore) -> None:
        """An empty log lists no sessions."""
        assert store.recent_sessions(limit=10) == []


class TestReportedPairs:
    def test_reporter_then_reported(self, store: SqlStore) -> None:
        """Each report gives (reporter's pseudonym, reported's pseudonym)."""
        store.write(full_batch())  # slot 1 (b) reports slot 0 (a)
        assert store.reported_pairs() == [(PSEUDONYMS[1], PSEUDONYMS[0])]

    def test_reports_from_both_slots(self, store: SqlStore) -> None:
        """Reports from both sides of a chat give both directions."""
        store.write(started(1, at=T0, pseudonyms=(PSEUDONYMS[0], PSEUDONYMS[2])))
        store.write(
            WriteBatch(
                reports=[
                    ReportRow(sid(1), 0, "spam", None, T0 + 1),
                    ReportRow(sid(1), 1, "other", None, T0 + 2),
                ]
            )
        )
        assert sorted(store.reported_pairs()) == sorted(
            [(PSEUDONYMS[0], PSEUDONYMS[2]), (PSEUDONYMS[2], PSEUDONYMS[0])]
        )

    def test_no_reports(self, store: SqlStore) -> None:
        """Sessions without reports give no pairs."""
        store.write(started(1, at=T0, messages=2))
        assert store.reported_pairs() == []


class TestAtomicity:
    def test_duplicate_seq_fails_the_whole_batch(self, store: SqlStore) -> None:
        """A batch with a duplicate message seq raises StoreError and writes none of its rows."""
        store.write(started(1, at=T0, messages=1))
        bad = started(2, at=T0 + 1, messages=2)
        bad.messages.append(MessageRow(sid(2), 2, 1, T0 + 9, b"again"))
        bad.reports.append(ReportRow(sid(1), 0, "spam", None, T0 + 9))
        bad.ends.append(SessionEndRow(sid(1), T0 + 9, "stopped", 0))
        with pytest.raises(StoreError):
            store.write(bad)
        assert store.session(sid(2)) is None
        record = store.session(sid(1))
        assert record is not None
        assert record.reports == ()
        assert record.ended is None
        assert [s.id for s in store.recent_sessions(limit=10)] == [sid(1)]

    def test_duplicate_of_an_earlier_batch(self, store: SqlStore) -> None:
        """A message repeating an already written seq fails, leaving the first version."""
        store.write(started(1, at=T0, messages=1))
        with pytest.raises(StoreError):
            store.write(WriteBatch(messages=[MessageRow(sid(1), 1, 1, T0 + 5, b"replaced?")]))
        record = store.session(sid(1))
        assert record is not None
        assert [m.text_sealed for m in record.messages] == [b"sealed text 1"]

    def test_message_for_unknown_session(self, store: SqlStore) -> None:
        """A message for a session that was never started violates the foreign key."""
        with pytest.raises(StoreError):
            store.write(WriteBatch(messages=[MessageRow(sid(9), 1, 0, T0, b"orphan")]))
        assert store.session(sid(9)) is None

    def test_error_hides_row_values(self, store: SqlStore) -> None:
        """The StoreError names what failed but not the row values (pseudonyms, sealed bytes)."""
        store.write(started(1, at=T0))
        with pytest.raises(StoreError) as info:
            store.write(started(1, at=T0))  # the same session again
        message = str(info.value)
        assert "could not write" in message
        assert PSEUDONYMS[0] not in message
        assert "sealed interests 1" not in message
        assert "sealed ip" not in message

    def test_store_usable_after_a_failed_batch(self, store: SqlStore) -> None:
        """After a failed batch, the next good batch is written normally."""
        with pytest.raises(StoreError):
            store.write(WriteBatch(messages=[MessageRow(sid(9), 1, 0, T0, b"orphan")]))
        store.write(started(1, at=T0, messages=2))
        record = store.session(sid(1))
        assert record is not None
        assert len(record.messages) == 2

    def test_empty_batch(self, store: SqlStore) -> None:
        """An empty batch writes nothing and does not fail."""
        store.write(WriteBatch())
        assert store.recent_sessions(limit=1) == []
