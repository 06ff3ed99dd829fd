"""The session log's store on both backends: batches written in one transaction, read back;
retention's reclassification, erasure and expiry; PostgreSQL's day partitions."""

from __future__ import annotations

import sqlite3
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from logwarden.errors import StoreError
from logwarden.store import (
    PRESERVED,
    AddressRow,
    DayTable,
    MessageRow,
    ParticipantRow,
    ReceiptRow,
    ReportRow,
    RetentionState,
    SessionEndRow,
    SessionRecord,
    SessionRow,
    SqlStore,
    WriteBatch,
)
from tests.conftest import empty_postgres_log

DAY_MS = 86_400_000
T0 = 1_764_061_200_000  # ms since the epoch
DAY = T0 // DAY_MS  # T0's UTC day: 20417
PSEUDONYMS = ("a" * 32, "b" * 32, "c" * 32)

_PARTITIONS_OF_MESSAGES = (
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
    " WHERE i.inhparent = 'messages'::regclass"
)

# A lock on messages that someone in this database waits for.
_WAITING_FOR_MESSAGES = (
    "SELECT 1 FROM pg_locks WHERE NOT granted AND relation = 'messages'::regclass"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "logwarden.db"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, db_path: Path) -> Iterator[SqlStore]:
    """An empty store on each backend: the same tests run against both."""
    if request.param == "sqlite":
        store = SqlStore.sqlite(db_path)
    else:
        store = request.getfixturevalue("pg_store")
    yield store
    store.close()


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[SqlStore]:
    """An empty PostgreSQL store, with no day partitions left by earlier tests."""
    store = SqlStore.postgres(postgres_url)
    empty_postgres_log(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as db:
        for (name,) in db.execute(_PARTITIONS_OF_MESSAGES).fetchall():
            if name != "messages_preserved":
                db.execute(f"DROP TABLE {name}")
    yield store
    store.close()


@pytest.fixture
def sqlite_store(db_path: Path) -> Iterator[SqlStore]:
    store = SqlStore.sqlite(db_path)
    yield store
    store.close()


def sid(n: int) -> str:
    return f"{n:032x}"


def digest(n: int, slot: int) -> str:
    return f"{n:060x}{slot:04x}"


def started(
    n: int,
    *,
    at: int,
    pseudonyms: tuple[str, str] = PSEUDONYMS[:2],
    messages: int = 0,
    text: bytes = b"sealed text %d",
) -> WriteBatch:
    """A batch starting session ``n`` with two participants, their addresses and receipts,
    and ``messages`` messages, all in the session's day bucket."""
    session_id, day = sid(n), at // DAY_MS
    return WriteBatch(
        sessions=[SessionRow(session_id, at, day, b"sealed interests %d" % n)],
        participants=[
            ParticipantRow(session_id, slot, pseudonym, pseudonym)
            for slot, pseudonym in enumerate(pseudonyms)
        ],
        addresses=[AddressRow(session_id, slot, day, b"sealed ip %d" % slot) for slot in (0, 1)],
        messages=[
            MessageRow(session_id, seq, day, seq % 2, at + seq, text % seq)
            for seq in range(1, messages + 1)
        ],
        receipts=[ReceiptRow(digest(n, slot), session_id, slot, at) for slot in (0, 1)],
    )


def said(n: int, seqs: range, *, at: int, bucket: int | None = None) -> WriteBatch:
    """A batch of session ``n``'s messages ``seqs``, in the bucket of ``at``'s day."""
    day = at // DAY_MS if bucket is None else bucket
    return WriteBatch(
        messages=[
            MessageRow(sid(n), seq, day, seq % 2, at + seq, b"later %d" % seq) for seq in seqs
        ]
    )


def full_batch() -> WriteBatch:
    """A session's whole life in one batch: start, participants, messages, a report, the end."""
    batch = started(1, at=T0, messages=3)
    batch.reports.append(ReportRow(sid(1), 1, "harassment", b"sealed comment", T0 + 10))
    batch.ends.append(SessionEndRow(sid(1), T0 + 20, "stopped", 0))
    return batch


def record(store: SqlStore, n: int) -> SessionRecord:
    found = store.session(sid(n))
    assert found is not None
    return found


def buckets(store: SqlStore, n: int) -> tuple[set[int], set[int]]:
    """The buckets of session ``n``'s message rows and of its address rows."""
    found = record(store, n)
    return {m.bucket for m in found.messages}, {a.bucket for a in found.addresses}


def retention(store: SqlStore, n: int) -> RetentionState:
    state = store.retention_state(sid(n))
    assert state is not None
    return state


def partitions(url: str) -> set[str]:
    """The names of the partitions of ``messages`` in the PostgreSQL database at ``url``."""
    with psycopg.connect(url) as db:
        return {name for (name,) in db.execute(_PARTITIONS_OF_MESSAGES)}


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

    def test_deleted_rows_are_zeroed(self, db_path: Path) -> None:
        """secure_delete is on: a deleted session's sealed bytes are gone from the file, not
        left in free space."""
        marker = b"SEALED-MARKER-" * 8 + b"%d"
        store = SqlStore.sqlite(db_path)
        store.write(started(1, at=T0, messages=200, text=marker))
        store.write(started(2, at=T0, messages=2))
        store.close()  # checkpoints the WAL into the file and removes it
        assert b"SEALED-MARKER-" in db_path.read_bytes()  # it was there to be found
        store = SqlStore.sqlite(db_path)
        assert store.delete_sessions([sid(1)]) == 1
        store.close()
        assert b"SEALED-MARKER-" not in db_path.read_bytes()
        assert b"sealed text 1" in db_path.read_bytes()  # the other session's rows stay


class TestSessionRecord:
    def test_full_batch_reads_back(self, store: SqlStore) -> None:
        """Every row of a batch comes back from session(), exactly as written."""
        batch = full_batch()
        store.write(batch)
        record = store.session(sid(1))
        assert record is not None
        assert record.session == batch.sessions[0]
        assert record.participants == tuple(batch.participants)
        # The report moved the rows to PRESERVED; otherwise they are as written.
        preserved = [m._replace(bucket=PRESERVED) for m in batch.messages]
        assert record.messages == tuple(preserved)
        assert record.addresses == tuple(a._replace(bucket=PRESERVED) for a in batch.addresses)
        assert record.reports == tuple(batch.reports)
        assert record.ended == batch.ends[0]
        assert record.retention == RetentionState(
            sid(1), T0, DAY, T0 + 20, T0 + 10, None, None, None
        )

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
        rows = [MessageRow(sid(1), seq, DAY, 0, T0 + seq, b"m%d" % seq) for seq in (3, 1, 2, 10)]
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
        bad.messages.append(MessageRow(sid(2), 2, DAY, 1, T0 + 9, b"again"))
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
            store.write(WriteBatch(messages=[MessageRow(sid(1), 1, DAY, 1, T0 + 5, b"replaced?")]))
        record = store.session(sid(1))
        assert record is not None
        assert [m.text_sealed for m in record.messages] == [b"sealed text 1"]

    def test_message_for_unknown_session(self, store: SqlStore) -> None:
        """A message for a session that was never started violates the foreign key."""
        with pytest.raises(StoreError):
            store.write(WriteBatch(messages=[MessageRow(sid(9), 1, DAY, 0, T0, b"orphan")]))
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
            store.write(WriteBatch(messages=[MessageRow(sid(9), 1, DAY, 0, T0, b"orphan")]))
        store.write(started(1, at=T0, messages=2))
        record = store.session(sid(1))
        assert record is not None
        assert len(record.messages) == 2

    def test_empty_batch(self, store: SqlStore) -> None:
        """An empty batch writes nothing and does not fail."""
        store.write(WriteBatch())
        assert store.recent_sessions(limit=1) == []


class TestReceipts:
    def test_written_and_read_by_digest(self, store: SqlStore) -> None:
        """A batch's receipts are found by their token digest."""
        store.write(started(1, at=T0))
        assert store.receipt(digest(1, 1)) == ReceiptRow(digest(1, 1), sid(1), 1, T0)
        assert store.receipt(digest(1, 0)) == ReceiptRow(digest(1, 0), sid(1), 0, T0)

    def test_unknown_digest(self, store: SqlStore) -> None:
        """An unknown digest gives None."""
        store.write(started(1, at=T0))
        assert store.receipt(digest(2, 0)) is None


class TestReportsInBatches:
    def test_report_preserves_earlier_rows(self, store: SqlStore) -> None:
        """A report moves the session's rows written in earlier batches to PRESERVED and sets
        reported_at to the report's time."""
        store.write(started(1, at=T0, messages=3))
        store.write(WriteBatch(reports=[ReportRow(sid(1), 0, "spam", None, T0 + 50)]))
        assert buckets(store, 1) == ({PRESERVED}, {PRESERVED})
        assert retention(store, 1).reported_at == T0 + 50

    def test_report_preserves_rows_of_its_own_batch(self, store: SqlStore) -> None:
        """Rows written in the same batch as the report land in PRESERVED too."""
        batch = started(1, at=T0, messages=2)
        batch.reports.append(ReportRow(sid(1), 0, "spam", None, T0 + 5))
        store.write(batch)
        assert buckets(store, 1) == ({PRESERVED}, {PRESERVED})
        assert len(record(store, 1).messages) == 2

    def test_rows_go_to_the_bucket_they_name(self, store: SqlStore) -> None:
        """The store writes each row to the bucket it names and does not look up the session:
        the recorder names PRESERVED for a chat it has seen reported, and the purge moves any
        other late rows of a preserved session before a day expires (tests/retention)."""
        store.write(started(1, at=T0, messages=1))
        store.write(WriteBatch(reports=[ReportRow(sid(1), 0, "spam", None, T0 + 5)]))
        store.write(said(1, range(2, 4), at=T0))
        store.write(said(1, range(4, 5), at=T0, bucket=PRESERVED))
        assert {m.seq: m.bucket for m in record(store, 1).messages} == {
            1: PRESERVED,
            2: T0 // DAY_MS,
            3: T0 // DAY_MS,
            4: PRESERVED,
        }

    def test_first_report_time_is_kept(self, store: SqlStore) -> None:
        """A later report leaves reported_at at the first report's time."""
        store.write(started(1, at=T0))
        store.write(WriteBatch(reports=[ReportRow(sid(1), 0, "spam", None, T0 + 5)]))
        store.write(WriteBatch(reports=[ReportRow(sid(1), 1, "hate", None, T0 + 9)]))
        assert retention(store, 1).reported_at == T0 + 5
        assert len(record(store, 1).reports) == 2

    def test_earliest_report_of_a_batch_counts(self, store: SqlStore) -> None:
        """Of two reports in one batch, the earlier one's time is reported_at, in any order."""
        store.write(started(1, at=T0))
        reports = [
            ReportRow(sid(1), 1, "hate", None, T0 + 9),
            ReportRow(sid(1), 0, "spam", None, T0 + 5),
        ]
        store.write(WriteBatch(reports=reports))
        assert retention(store, 1).reported_at == T0 + 5

    def test_other_sessions_untouched(self, store: SqlStore) -> None:
        """A report moves only its own session's rows and marks only its own session."""
        store.write(started(1, at=T0, messages=2))
        store.write(started(2, at=T0, messages=2))
        store.write(WriteBatch(reports=[ReportRow(sid(1), 0, "spam", None, T0 + 5)]))
        assert buckets(store, 2) == ({DAY}, {DAY})
        assert retention(store, 2).reported_at is None

    def test_failed_batch_marks_nothing(self, store: SqlStore) -> None:
        """A report in a batch that fails leaves its session unreported, its rows in place."""
        store.write(started(1, at=T0, messages=1))
        bad = WriteBatch(
            reports=[ReportRow(sid(1), 0, "spam", None, T0 + 5)],
            messages=[MessageRow(sid(9), 1, DAY, 0, T0, b"orphan")],
        )
        with pytest.raises(StoreError):
            store.write(bad)
        assert retention(store, 1).reported_at is None
        assert buckets(store, 1) == ({DAY}, {DAY})


class TestMarkReported:
    def test_marks_and_preserves(self, store: SqlStore) -> None:
        """A safety flag sets reported_at and moves the session's rows to PRESERVED."""
        store.write(started(1, at=T0, messages=2))
        assert store.mark_reported(sid(1), at=T0 + 100) is True
        assert retention(store, 1).reported_at == T0 + 100
        assert buckets(store, 1) == ({PRESERVED}, {PRESERVED})

    def test_keeps_an_earlier_report(self, store: SqlStore) -> None:
        """Flagging a session already reported keeps the first reported_at."""
        store.write(started(1, at=T0))
        store.write(WriteBatch(reports=[ReportRow(sid(1), 0, "spam", None, T0 + 5)]))
        assert store.mark_reported(sid(1), at=T0 + 100) is True
        assert retention(store, 1).reported_at == T0 + 5

    def test_unknown_session(self, store: SqlStore) -> None:
        """Flagging an unknown session is False and changes nothing."""
        store.write(started(1, at=T0, messages=1))
        assert store.mark_reported(sid(2), at=T0) is False
        assert store.preserved_sessions() == []
        assert buckets(store, 1) == ({DAY}, {DAY})


class TestHold:
    def test_placing_preserves(self, store: SqlStore) -> None:
        """A hold records its time and reason and moves the session's rows to PRESERVED."""
        store.write(started(1, at=T0, messages=2))
        store.write(started(2, at=T0, messages=2))
        assert store.set_hold(sid(1), held_at=T0 + 7, reason="case 12") is True
        state = retention(store, 1)
        assert (state.held_at, state.hold_reason, state.reported_at) == (T0 + 7, "case 12", None)
        assert buckets(store, 1) == ({PRESERVED}, {PRESERVED})
        assert buckets(store, 2) == ({DAY}, {DAY})

    def test_releasing_moves_nothing(self, store: SqlStore) -> None:
        """Releasing clears the hold and leaves the rows where they are."""
        store.write(started(1, at=T0, messages=2))
        store.set_hold(sid(1), held_at=T0 + 7, reason="case 12")
        assert store.set_hold(sid(1), held_at=None, reason=None) is True
        state = retention(store, 1)
        assert (state.held_at, state.hold_reason) == (None, None)
        assert buckets(store, 1) == ({PRESERVED}, {PRESERVED})

    def test_unknown_session(self, store: SqlStore) -> None:
        """Holding or releasing an unknown session is False."""
        assert store.set_hold(sid(1), held_at=T0, reason="case 12") is False
        assert store.set_hold(sid(1), held_at=None, reason=None) is False


class TestMoveRows:
    def test_to_a_day(self, store: SqlStore) -> None:
        """Rows move to the day given, messages and addresses each to their own."""
        store.write(started(1, at=T0, messages=3))
        store.mark_reported(sid(1), at=T0)
        store.move_rows(sid(1), text_bucket=DAY, address_bucket=DAY - 3)
        assert buckets(store, 1) == ({DAY}, {DAY - 3})
        assert len(record(store, 1).messages) == 3

    def test_to_an_older_day_without_a_partition(self, store: SqlStore) -> None:
        """A day no row was written to before can take moved rows (on PostgreSQL: its
        partition is made)."""
        store.write(started(1, at=T0, messages=2))
        store.move_rows(sid(1), text_bucket=DAY - 40, address_bucket=DAY - 40)
        assert buckets(store, 1) == ({DAY - 40}, {DAY - 40})

    def test_none_deletes(self, store: SqlStore) -> None:
        """``None`` deletes that kind of row and leaves the other, and other sessions' rows."""
        store.write(started(1, at=T0, messages=3))
        store.write(started(2, at=T0, messages=3))
        store.move_rows(sid(1), text_bucket=DAY, address_bucket=None)
        one = record(store, 1)
        assert (len(one.messages), one.addresses) == (3, ())
        store.move_rows(sid(1), text_bucket=None, address_bucket=None)
        one = record(store, 1)
        assert (one.messages, one.addresses) == ((), ())
        two = record(store, 2)
        assert (len(two.messages), len(two.addresses)) == (3, 2)

    def test_unknown_session(self, store: SqlStore) -> None:
        """Moving the rows of an unknown session moves nothing and does not fail."""
        store.write(started(1, at=T0, messages=1))
        store.move_rows(sid(2), text_bucket=PRESERVED, address_bucket=None)
        assert buckets(store, 1) == ({DAY}, {DAY})


class TestRetentionState:
    def test_fields(self, store: SqlStore) -> None:
        """The state carries the session's times, day and retention columns."""
        store.write(started(1, at=T0 + 5))
        store.write(WriteBatch(ends=[SessionEndRow(sid(1), T0 + 60, "stopped", 1)]))
        store.set_erase_after(sid(1), T0 + 99)
        assert store.retention_state(sid(1)) == RetentionState(
            sid(1), T0 + 5, DAY, T0 + 60, None, None, None, T0 + 99
        )

    def test_unknown_session(self, store: SqlStore) -> None:
        """The state of an unknown session is None."""
        assert store.retention_state(sid(1)) is None

    def test_preserved_sessions(self, store: SqlStore) -> None:
        """Reported and held sessions are listed, oldest first; others are not."""
        for n in (1, 2, 3, 4):
            store.write(started(n, at=T0 - n))
        store.mark_reported(sid(1), at=T0)
        store.set_hold(sid(3), held_at=T0, reason="case")
        store.set_hold(sid(4), held_at=T0, reason="case")
        store.set_hold(sid(4), held_at=None, reason=None)
        found = store.preserved_sessions()
        assert [s.session_id for s in found] == [sid(3), sid(1)]
        assert (found[0].held_at, found[1].reported_at) == (T0, T0)


class TestErasures:
    def test_due_at_and_after(self, store: SqlStore) -> None:
        """An erasure is due from ``erase_after`` on, not a millisecond before."""
        store.write(started(1, at=T0))
        store.write(started(2, at=T0))
        store.set_erase_after(sid(1), T0 + 100)
        assert store.pending_erasures(T0 + 99) == []
        assert store.pending_erasures(T0 + 100) == [sid(1)]
        assert store.pending_erasures(T0 + 10_000) == [sid(1)]

    def test_oldest_due_first(self, store: SqlStore) -> None:
        """Due erasures are listed in the order they fell due."""
        for n, at in ((1, T0 + 30), (2, T0 + 10), (3, T0 + 20)):
            store.write(started(n, at=T0))
            store.set_erase_after(sid(n), at)
        assert store.pending_erasures(T0 + 30) == [sid(2), sid(3), sid(1)]

    def test_not_reported_or_held(self, store: SqlStore) -> None:
        """A reported or held session's erasure is never due."""
        for n in (1, 2, 3):
            store.write(started(n, at=T0))
            store.set_erase_after(sid(n), T0)
        store.mark_reported(sid(1), at=T0)
        store.set_hold(sid(2), held_at=T0, reason="case")
        assert store.pending_erasures(T0 + 1) == [sid(3)]

    def test_cancelled(self, store: SqlStore) -> None:
        """Setting ``erase_after`` to None cancels the erasure."""
        store.write(started(1, at=T0))
        store.set_erase_after(sid(1), T0)
        store.set_erase_after(sid(1), None)
        assert store.pending_erasures(T0 + 1) == []


class TestExpiredSessions:
    def test_day_boundary(self, store: SqlStore) -> None:
        """A session started on day D expires with metadata_through_day D, not D - 1."""
        store.write(started(1, at=DAY * DAY_MS))  # the day's first millisecond
        store.write(started(2, at=(DAY + 1) * DAY_MS - 1))  # its last
        store.write(started(3, at=(DAY + 1) * DAY_MS))  # the next day's first
        assert store.expired_sessions(metadata_through_day=DAY - 1, reported_before=0) == []
        assert store.expired_sessions(metadata_through_day=DAY, reported_before=0) == [
            sid(1),
            sid(2),
        ]

    def test_reported_boundary(self, store: SqlStore) -> None:
        """A session reported at ``reported_before`` is kept; one a millisecond earlier is not."""
        for n in (1, 2, 3):
            store.write(started(n, at=T0))
        store.mark_reported(sid(1), at=T0 + 500)
        store.mark_reported(sid(2), at=T0 + 499)
        found = store.expired_sessions(metadata_through_day=DAY, reported_before=T0 + 500)
        assert found == [sid(2), sid(3)]

    def test_held_never_expire(self, store: SqlStore) -> None:
        """A held session is never expired, whatever its days."""
        store.write(started(1, at=T0))
        store.write(started(2, at=T0))
        store.set_hold(sid(1), held_at=T0, reason="case")
        assert store.expired_sessions(metadata_through_day=DAY + 999, reported_before=0) == [sid(2)]


class TestDeleteSessions:
    def test_every_row_of_those_sessions_only(self, store: SqlStore) -> None:
        """Every row of the sessions goes, in every table; other sessions keep all theirs."""
        for n in (1, 2, 3):
            batch = started(n, at=T0, messages=3)
            batch.reports.append(ReportRow(sid(n), 0, "spam", b"comment", T0 + 1))
            batch.ends.append(SessionEndRow(sid(n), T0 + 9, "stopped", 0))
            store.write(batch)
        kept = record(store, 2)
        assert store.delete_sessions([sid(1), sid(3)]) == 2
        assert store.session(sid(1)) is None
        assert store.session(sid(3)) is None
        assert store.receipt(digest(1, 0)) is None
        assert store.receipt(digest(3, 1)) is None
        assert record(store, 2) == kept
        assert store.receipt(digest(2, 0)) is not None
        assert [s.id for s in store.recent_sessions(limit=10)] == [sid(2)]
        assert store.reported_pairs() == [(PSEUDONYMS[0], PSEUDONYMS[1])]

    def test_counts_sessions_found(self, store: SqlStore) -> None:
        """Unknown and repeated ids are not counted."""
        store.write(started(1, at=T0))
        assert store.delete_sessions([sid(1), sid(1), sid(7)]) == 1
        assert store.delete_sessions([]) == 0

    def test_more_ids_than_one_statement_takes(self, store: SqlStore) -> None:
        """Over a thousand sessions are deleted, in chunks, all of them."""
        batch = WriteBatch()
        for n in range(1, 1202):
            one = started(n, at=T0, messages=1)
            batch.sessions += one.sessions
            batch.messages += one.messages
            batch.receipts += one.receipts
        store.write(started(5000, at=T0, messages=1))
        store.write(batch)
        assert store.delete_sessions([sid(n) for n in range(1, 1202)]) == 1201
        assert [s.id for s in store.recent_sessions(limit=10)] == [sid(5000)]


class TestDays:
    @pytest.fixture
    def days(self, store: SqlStore) -> SqlStore:
        """Sessions on DAY - 2, DAY - 1, DAY and DAY + 1 (2 messages each), and a reported
        one of DAY - 2 (3 messages, in PRESERVED)."""
        for n, day in ((1, DAY - 2), (2, DAY - 1), (3, DAY), (4, DAY + 1)):
            store.write(started(n, at=day * DAY_MS, messages=2))
        store.write(started(5, at=(DAY - 2) * DAY_MS, messages=3))
        store.mark_reported(sid(5), at=T0)
        return store

    @pytest.mark.parametrize("table", ["messages", "addresses"])
    def test_count(self, days: SqlStore, table: DayTable) -> None:
        """count_days counts the rows of days 1..through_day only: not PRESERVED, not later."""
        assert days.count_days(table, through_day=DAY - 3) == 0
        assert days.count_days(table, through_day=DAY - 2) == 2
        assert days.count_days(table, through_day=DAY) == 6
        assert days.count_days(table, through_day=DAY + 1) == 8

    @pytest.mark.parametrize("table", ["messages", "addresses"])
    def test_drop_leaves_preserved_and_later_days(self, days: SqlStore, table: DayTable) -> None:
        """drop_days removes days 1..through_day, returning how many rows; PRESERVED and later
        days keep theirs, and so does the other table."""
        assert days.drop_days(table, through_day=DAY - 1) == 4
        assert days.count_days(table, through_day=DAY + 1) == 4
        assert days.drop_days(table, through_day=DAY - 1) == 0
        for n in (1, 2):
            assert getattr(record(days, n), table) == ()
        for n in (3, 4):
            assert len(getattr(record(days, n), table)) == 2
        preserved = record(days, 5)
        assert (len(preserved.messages), len(preserved.addresses)) == (3, 2)
        other = "addresses" if table == "messages" else "messages"
        assert days.count_days(other, through_day=DAY + 1) == 8

    def test_drop_nothing(self, store: SqlStore) -> None:
        """Dropping from an empty log removes nothing and does not fail."""
        assert store.drop_days("messages", through_day=DAY) == 0
        assert store.drop_days("addresses", through_day=DAY) == 0


class TestPartitions:
    def test_one_partition_per_day_written(self, pg_store: SqlStore, postgres_url: str) -> None:
        """Writing messages makes their days' partitions, beside messages_preserved."""
        pg_store.write(started(1, at=T0, messages=1))
        pg_store.write(started(2, at=T0 + 3 * DAY_MS, messages=1))
        assert partitions(postgres_url) == {
            "messages_preserved",
            f"messages_d{DAY}",
            f"messages_d{DAY + 3}",
        }

    def test_prepare_days_makes_partitions_ahead(
        self, pg_store: SqlStore, postgres_url: str
    ) -> None:
        """prepare_days makes the partitions of days not written yet (the purge prepares
        today and tomorrow, so the chat's first message of a day waits for no DDL)."""
        pg_store.prepare_days([DAY + 1, DAY + 2])
        assert {f"messages_d{DAY + 1}", f"messages_d{DAY + 2}"} <= partitions(postgres_url)

    def test_drop_days_drops_partitions(self, pg_store: SqlStore, postgres_url: str) -> None:
        """drop_days drops the day partitions up to through_day and keeps the rest."""
        for n, day in ((1, DAY - 1), (2, DAY), (3, DAY + 1)):
            pg_store.write(started(n, at=day * DAY_MS, messages=3))
        assert pg_store.drop_days("messages", through_day=DAY) == 6
        assert partitions(postgres_url) == {"messages_preserved", f"messages_d{DAY + 1}"}

    def test_write_after_drop_makes_it_again(self, pg_store: SqlStore, postgres_url: str) -> None:
        """A write to a dropped day makes its partition again."""
        pg_store.write(started(1, at=T0, messages=1))
        pg_store.drop_days("messages", through_day=DAY)
        pg_store.write(started(2, at=T0, messages=2))
        assert f"messages_d{DAY}" in partitions(postgres_url)
        assert len(record(pg_store, 2).messages) == 2

    def test_dropped_by_another_process(self, pg_store: SqlStore, postgres_url: str) -> None:
        """A store whose partition was dropped by another store makes it again and writes."""
        pg_store.write(started(1, at=T0, messages=1))
        purger = SqlStore.postgres(postgres_url)
        try:
            assert purger.drop_days("messages", through_day=DAY) == 1
        finally:
            purger.close()
        pg_store.write(started(2, at=T0, messages=2))
        assert len(record(pg_store, 2).messages) == 2
        pg_store.move_rows(sid(2), text_bucket=DAY, address_bucket=DAY)  # no retry needed

    def test_made_by_another_process_meanwhile(self, pg_store: SqlStore, postgres_url: str) -> None:
        """A partition made by another connection while the store makes it does not fail the
        write."""
        day = DAY + 5
        with (
            psycopg.connect(postgres_url) as other,
            psycopg.connect(postgres_url, autocommit=True) as watcher,
            ThreadPoolExecutor(1) as pool,
        ):
            other.execute(
                f"CREATE TABLE messages_d{day} PARTITION OF messages"
                f" FOR VALUES FROM ({day}) TO ({day + 1})"
            )  # not committed: holds its lock on messages
            writing = pool.submit(pg_store.write, started(1, at=day * DAY_MS, messages=2))
            deadline = time.monotonic() + 10
            while not watcher.execute(_WAITING_FOR_MESSAGES).fetchone():
                assert time.monotonic() < deadline, "the store never waited for the lock"
                time.sleep(0.01)
            other.commit()
            writing.result(timeout=10)
        assert len(record(pg_store, 1).messages) == 2

    def test_no_default_partition(self, pg_store: SqlStore, postgres_url: str) -> None:
        """messages is range-partitioned by bucket with no DEFAULT partition to catch rows."""
        with psycopg.connect(postgres_url) as db:
            strategy, default = db.execute(
                "SELECT partstrat, partdefid FROM pg_partitioned_table"
                " WHERE partrelid = 'messages'::regclass"
            ).fetchone()
        assert (strategy, default) == ("r", 0)

    def test_bucket_before_day_one(self, pg_store: SqlStore) -> None:
        """A bucket that is neither PRESERVED nor a day fails the write, which writes nothing."""
        batch = started(1, at=T0)
        batch.messages.append(MessageRow(sid(1), 1, -1, 0, T0, b"?"))
        with pytest.raises(StoreError):
            pg_store.write(batch)
        assert pg_store.session(sid(1)) is None
