"""Rows of the wrong type: SQLite keeps whatever type a statement gives each value, so whoever
can write the database file can put text in a blob column, bytes in a text column or text in
an integer column. The readers the CLI, the export and `audit verify` use hand back only
rows of their declared types (text in a blob column as the same bytes), and raise a
StoreError naming the table, the row and the column for any other (store/sql.py).

Each test writes a real session and its audit entries, changes one value with sqlite3 as an
attacker would, and reads it back through the store."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from logwarden.audit.entries import entry
from logwarden.errors import StoreError
from logwarden.store import SqlStore
from tests.store.test_sql import T0, full_batch, sid


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "logwarden.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SqlStore]:
    """A SQLite store holding session 1 (messages, a report, its end) and two audit entries,
    0 (the session's) and 1 (its first message's)."""
    store = SqlStore.sqlite(db_path)
    batch = full_batch()
    batch.audit = [
        entry("session", at=T0, session_id=sid(1)),
        entry("message", at=T0 + 1, session_id=sid(1), seq=1),
    ]
    batch.messages = batch.messages[:1]
    store.write(batch)
    yield store
    store.close()


def tamper(db_path: Path, statement: str, *params: object) -> None:
    with sqlite3.connect(db_path) as db:
        db.execute(statement, params)
    db.close()


READERS: dict[str, Callable[[SqlStore], Any]] = {
    "audit_entries": lambda store: store.audit_entries(0, 2),
    "audit_entries_of": lambda store: store.audit_entries_of(sid(1)),
    "audit_entries_at": lambda store: store.audit_entries_at([0, 1]),
}


CHANGES = [
    ("at = 'abc'", r"its at holds text where an integer belongs"),
    ("kind = x'41'", r"its kind holds bytes where text belongs"),
    ("session_id = x'41'", r"its session_id holds bytes where text or NULL belongs"),
    ("leaf_hash = 1.5", r"its leaf_hash holds a real number where bytes belongs"),
]


class TestAuditEntries:
    @pytest.mark.parametrize("reader", list(READERS))
    @pytest.mark.parametrize(("change", "message"), CHANGES, ids=[c for c, _ in CHANGES])
    def test_a_value_of_another_type_is_named(
        self, store: SqlStore, db_path: Path, reader: str, change: str, message: str
    ) -> None:
        """An entry's time as text, its kind or session as bytes, its leaf hash as a number:
        a StoreError naming the table, the entry and the column, from every entry reader
        that finds the entry (one whose session is bytes is no entry of that session)."""
        if reader == "audit_entries_of" and change.startswith("session_id"):
            assert [row.idx for row in READERS[reader](store)] == [0, 1]
            tamper(db_path, f"UPDATE audit_entries SET {change} WHERE idx = 0")  # noqa: S608
            assert [row.idx for row in READERS[reader](store)] == [1]
            return
        tamper(db_path, f"UPDATE audit_entries SET {change} WHERE idx = 0")  # noqa: S608
        with pytest.raises(StoreError, match=r"audit_entries row \(idx 0\): " + message):
            READERS[reader](store)

    def test_an_index_that_is_not_an_integer_is_named(self, store: SqlStore, db_path: Path) -> None:
        """An entry moved to index 0.5 (a column SQLite does not make an alias of the rowid):
        named by the index it holds."""
        tamper(db_path, "UPDATE audit_entries SET idx = 0.5 WHERE idx = 0")
        with pytest.raises(
            StoreError, match=r"audit_entries row \(idx 0.5\): its idx holds a real number"
        ):
            store.audit_entries(0, 2)

    def test_text_in_a_blob_column_is_the_same_bytes(self, store: SqlStore, db_path: Path) -> None:
        """Bodies cast to text are handed back as the bytes SQLite holds, which are the bytes
        they held before: judged as the originals are (verify names any other change)."""
        before = store.audit_entries(0, 2)
        tamper(db_path, "UPDATE audit_entries SET body = CAST(body AS TEXT)")
        with sqlite3.connect(db_path) as db:
            stored = db.execute("SELECT typeof(body) FROM audit_entries").fetchall()
        db.close()
        assert stored == [("text",), ("text",)]
        after = store.audit_entries(0, 2)
        assert after == before
        assert all(type(row.body) is bytes for row in after)

    def test_text_that_is_not_utf8_is_named_without_its_bytes(
        self, store: SqlStore, db_path: Path
    ) -> None:
        """A leaf hash cast to text is not UTF-8, which the driver cannot read: the error names
        the column and quotes none of the row's bytes."""
        (leaf,) = store.audit_entries(0, 1)[0][-1:]
        tamper(db_path, "UPDATE audit_entries SET leaf_hash = CAST(x'ff00ff' AS TEXT)")
        with pytest.raises(StoreError, match=r"column leaf_hash holds text that is not UTF-8") as e:
            store.audit_entries(0, 2)
        assert "\ufffd" not in str(e.value) and leaf.hex() not in str(e.value)


class TestSessions:
    def test_a_session_id_of_bytes_is_named(self, store: SqlStore, db_path: Path) -> None:
        """A session row inserted with an id of bytes: the session list and the list of ids
        name it (and neither sorts nor prints bytes as an id)."""
        tamper(
            db_path,
            "INSERT INTO sessions (id, started_at, day, interests_sealed) "
            "VALUES (x'41', 1, 0, x'00')",
        )
        match = r"sessions row \(id x'41'\): its id holds bytes where text belongs"
        with pytest.raises(StoreError, match=match):
            store.session_ids()
        with pytest.raises(StoreError, match=match):
            store.recent_sessions(limit=10)

    @pytest.mark.parametrize(
        ("statement", "message"),
        [
            (
                "UPDATE sessions SET started_at = 'abc'",
                rf"sessions row \(id '{sid(1)}'\): its started_at holds text where an integer",
            ),
            (
                "UPDATE sessions SET end_reason = x'41'",
                r"its end_reason holds bytes where text or NULL belongs",
            ),
            (
                "UPDATE messages SET slot = 'one'",
                rf"messages row \(session_id '{sid(1)}', seq 1\): its slot holds text",
            ),
            (
                "UPDATE participants SET ip_pseudonym = x'00' WHERE slot = 1",
                rf"participants row \(session_id '{sid(1)}', slot 1\): its ip_pseudonym holds "
                "bytes",
            ),
            (
                "UPDATE reports SET created_at = 'yesterday'",
                r"reports row \(session_id .*, created_at 'yesterday'\): its created_at holds",
            ),
        ],
        ids=["started_at", "end_reason", "message-slot", "pseudonym", "report-time"],
    )
    def test_a_session_row_of_another_type_is_named(
        self, store: SqlStore, db_path: Path, statement: str, message: str
    ) -> None:
        """A value of the wrong type in a session's row or one of its children: reading the
        session names the table, the row and the column."""
        tamper(db_path, statement)
        with pytest.raises(StoreError, match=message):
            store.session(sid(1))

    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE sessions SET started_at = 'abc'",
            "UPDATE sessions SET end_reason = x'41'",
            "UPDATE participants SET ip_pseudonym = x'00' WHERE slot = 1",
        ],
        ids=["started_at", "end_reason", "pseudonym"],
    )
    def test_the_session_list_names_a_row_of_another_type(
        self, store: SqlStore, db_path: Path, statement: str
    ) -> None:
        """The list `sessions list` prints refuses what it could not print or serialise."""
        tamper(db_path, statement)
        with pytest.raises(StoreError, match=r"row \(.*\): its \w+ holds"):
            store.recent_sessions(limit=10)

    def test_sealed_text_cast_to_text_is_read_as_bytes(
        self, store: SqlStore, db_path: Path
    ) -> None:
        """A message's ciphertext replaced by text: read as those bytes, which then fail to
        open and differ from what the audit log committed to (verify names it)."""
        tamper(db_path, "UPDATE messages SET text_sealed = 'not a token'")
        found = store.session(sid(1))
        assert found is not None
        assert found.messages[0].text_sealed == b"not a token"

    def test_well_typed_rows_are_unchanged(self, store: SqlStore) -> None:
        """Untouched rows read back as written, every value of its declared type."""
        found = store.session(sid(1))
        assert found is not None
        assert found.session.id == sid(1) and found.ended is not None
        assert [type(v) for v in found.messages[0]] == [str, int, int, int, int, bytes, int]
        assert store.session_ids() == [sid(1)]
        (summary,) = store.recent_sessions(limit=5)
        assert (summary.id, summary.message_count, summary.report_count) == (sid(1), 1, 1)
        assert [row.idx for row in store.audit_entries(0, 2)] == [0, 1]
