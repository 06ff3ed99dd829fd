"""Tamper drills: someone with write access to the database alters, removes, inserts or reorders
rows, cuts the log short or replaces a signed checkpoint, and `audit verify` names what they did
(docs/audit.md).

The log is made once per backend by the real recorder (chats with messages, a report, ends), the
retention service (a flag, a hold) and an ``AuditLog`` that signs checkpoints; every drill runs on
a fresh copy of it (a copied SQLite file, or a PostgreSQL database put back to it, which is much
quicker than a new database per drill) and tampers with raw SQL, as an attacker with database
access would.
"""

from __future__ import annotations

import re
import secrets
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import select, text

from logwarden.audit import checkpoint as notes
from logwarden.audit import merkle
from logwarden.audit.authority import check_signature, sign_entry
from logwarden.audit.entries import entry, parse_body
from logwarden.audit.log import AuditLog
from logwarden.audit.verify import Verification, verify_log
from logwarden.clock import FakeClock
from logwarden.retention import Retention, RetentionPolicy
from logwarden.retention.policy import DAY_MS
from logwarden.store import AuditRecord, SqlStore, schema
from logwarden.testing import serve_in_process
from tests.conftest import POSTGRES_ADMIN_URL, TEST_SERVER_ENV
from tests.recorder.test_session_log import run_scripted_chat
from tests.retention.conftest import (
    AUDIT_SIGNER,
    DAY0,
    ERASABLE_AFTER_MS,
    POLICY,
    T0,
    Chat,
    Deployment,
    attach_deployment,
    open_deployment,
    retention_over,
)
from tests.test_cli import logwarden

# Another key for the same origin: what someone without the log's key can sign with.
FORGER = notes.SigningKey.from_seed(AUDIT_SIGNER.name, seed=bytes(range(1, 33)))
MINUTE_MS = 61_000  # a little over the history's one checkpoint a minute, in ms


# -- the log, made once per backend ---------------------------------------------------------------


@dataclass
class Built:
    """A log made by the recorder and retention, kept as a template for the drills."""

    backend: str
    data_dir: Path  # keys, and the SQLite file
    database: str | None  # the PostgreSQL template database
    chats: dict[str, Chat]
    entries: dict[str, dict[str, list[int]]]  # role → kind → entry indexes
    checkpoints: list[int]  # the sizes signed
    ended_at: int  # the clock when the log was made
    size: int  # entries


@dataclass
class Copy:
    """A copy of the built log: a store over it and raw SQL on it."""

    built: Built
    store: SqlStore
    data_dir: Path

    def run(self, statement: str, **params: Any) -> int:
        """Execute one statement in its own transaction; the number of rows it touched."""
        with self.store._engine.begin() as conn:
            return conn.execute(text(statement), params).rowcount

    def rows(self, query: str, **params: Any) -> list[Any]:
        with self.store._engine.connect() as conn:
            return list(conn.execute(text(query), params))

    def value(self, query: str, **params: Any) -> Any:
        with self.store._engine.connect() as conn:
            return conn.execute(text(query), params).scalar_one()

    def verify(self) -> Verification:
        return verify_log(self.store, verifier=AUDIT_SIGNER.verifier(), origin=AUDIT_SIGNER.name)

    def entry(self, role: str, kind: str, n: int = 0) -> int:
        """The index of the ``n``-th entry of ``kind`` about the chat ``role``."""
        return self.built.entries[role][kind][n]

    def sid(self, role: str) -> str:
        return self.built.chats[role].session_id


def build(d: Deployment) -> tuple[dict[str, Chat], list[int]]:
    """Chats, a report, a flag and a hold, with checkpoints signed a minute apart in between.

    Enough entries (over 32) that the stored tree nodes (every 16 leaves) cover some of them.
    """
    audit = AuditLog(d.store, signer=AUDIT_SIGNER, clock=d.clock)
    chats: dict[str, Chat] = {}
    signed: list[int] = []

    def checkpoint() -> None:
        assert audit.checkpoint() is not None
        signed.append(d.store.audit_head().size)
        d.at(d.clock.now_ms() + MINUTE_MS)

    chats["plain"] = d.chat(messages=5)
    chats["reported"] = d.chat(messages=5, report=True)
    checkpoint()
    chats["held"] = d.chat(messages=4)
    assert d.retention.hold(chats["held"].session_id, reason="case 17", by="legal") is not None
    chats["flagged"] = d.chat(messages=4)
    assert d.retention.flag(chats["flagged"].session_id, by="safety", reason="pii") is not None
    checkpoint()
    chats["last"] = d.chat(messages=3)
    checkpoint()
    return chats, signed


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Built]:
    """The log on each backend (PostgreSQL in a database of its own, dropped after).

    The retention tests' ``backend`` fixture, made once per module: building the log is the
    expensive part, and every drill starts from a copy of it.
    """
    data_dir = tmp_path_factory.mktemp(f"tamper-{request.param}") / "data"
    database = None
    if request.param == "sqlite":
        data_dir.mkdir(mode=0o700)
        store = SqlStore.sqlite(data_dir / "logwarden.db")
    else:
        request.getfixturevalue("postgres_url")  # skips, or fails in CI, if unreachable
        database = f"logwarden_tamper_{secrets.token_hex(6)}"
        admin("CREATE DATABASE " + database)
        store = SqlStore.postgres(database_url(database))
    try:
        with open_deployment(data_dir, store) as d:
            chats, signed = build(d)
            ended_at = d.clock.now_ms()
            rows = d.store.audit_entries(0, 1 << 62)
        entries: dict[str, dict[str, list[int]]] = {}
        for role, chat in chats.items():
            kinds = entries.setdefault(role, {})
            for row in rows:
                if row.session_id == chat.session_id:
                    kinds.setdefault(row.kind, []).append(row.idx)
        yield Built(request.param, data_dir, database, chats, entries, signed, ended_at, len(rows))
    finally:
        if database is not None:
            admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def admin(statement: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as db:
        db.execute(statement)  # our own names, never input


def database_url(name: str) -> str:
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


# Parents before children: the order rows are put back in.
TABLES = (
    schema.sessions,
    schema.participants,
    schema.addresses,
    schema.messages,
    schema.reports,
    schema.receipts,
    schema.audit_entries,
    schema.audit_nodes,
    schema.audit_head,
    schema.audit_checkpoints,
)


@dataclass
class Restorable:
    """A PostgreSQL database made from the template, put back to it before each drill: much
    quicker than a new database per drill."""

    store: SqlStore
    rows: dict[str, list[dict[str, Any]]]

    def restore(self) -> None:
        with self.store._engine.begin() as conn:
            for table in reversed(TABLES):  # DELETE: far quicker than TRUNCATE on tiny tables
                conn.execute(table.delete())
            for table in TABLES:
                if self.rows[table.name]:
                    conn.execute(table.insert(), self.rows[table.name])


@pytest.fixture(scope="module")
def work(built: Built) -> Iterator[Restorable | None]:
    """On PostgreSQL, one database for the drills, restored before each; None on SQLite."""
    if built.database is None:
        yield None
        return
    database = f"{built.database}_work"
    admin(f"CREATE DATABASE {database} TEMPLATE {built.database}")
    store = SqlStore.postgres(database_url(database))
    try:
        with store._engine.connect() as conn:
            rows = {t.name: [dict(r._mapping) for r in conn.execute(select(t))] for t in TABLES}
        yield Restorable(store, rows)
    finally:
        store.close()
        admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


@pytest.fixture
def log(built: Built, work: Restorable | None, tmp_path: Path) -> Iterator[Copy]:
    """The built log as it was made, for one drill: a copied SQLite file, or the PostgreSQL
    work database restored."""
    if work is None:
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        for path in built.data_dir.glob("logwarden.db*"):  # its -wal too, if one was left
            shutil.copy2(path, data_dir / path.name)
        store = SqlStore.sqlite(data_dir / "logwarden.db")
    else:
        work.restore()
        store, data_dir = work.store, built.data_dir
    copy = Copy(built, store, data_dir)
    if work is not None:  # the last drill's changes are undone: the drill starts clean
        assert copy.verify().ok, problems(copy.verify())
    try:
        yield copy
    finally:
        if work is None:
            store.close()


@pytest.fixture
def fresh(built: Built, tmp_path: Path) -> Iterator[Copy]:
    """A copy of the built log of its own, keys too, that retention may change at will."""
    data_dir = tmp_path / "data"
    shutil.copytree(built.data_dir, data_dir)
    if built.database is None:
        store = SqlStore.sqlite(data_dir / "logwarden.db")
        database = None
    else:
        database = f"{built.database}_{secrets.token_hex(4)}"
        admin(f"CREATE DATABASE {database} TEMPLATE {built.database}")
        store = SqlStore.postgres(database_url(database))
    try:
        yield Copy(built, store, data_dir)
    finally:
        store.close()
        if database is not None:
            admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def problems(result: Verification) -> str:
    return "\n".join(p.what for p in result.problems)


def assert_found(result: Verification, *fragments: str, entry: int | None = None) -> None:
    """Verification failed, one problem names every fragment, and the first problem is at
    ``entry`` when one is given."""
    assert not result.ok, "the tampering went unnoticed"
    assert any(all(f in p.what for f in fragments) for p in result.problems), problems(result)
    if entry is not None:
        first = result.first()
        assert first is not None and first.entry == entry, problems(result)


def flip(value: bytes, at: int = -1) -> bytes:
    """``value`` with one byte changed."""
    changed = bytearray(value)
    changed[at] ^= 0x01
    return bytes(changed)


class TestUntouched:
    def test_the_log_as_made_verifies(self, log: Copy) -> None:
        """A log nobody touched verifies: every entry, node, checkpoint and row matches."""
        result = log.verify()
        assert result.ok, problems(result)
        assert result.size == log.built.size
        assert result.checkpoints == len(log.built.checkpoints) >= 3
        assert result.notes == []

    def test_the_log_covers_everything_that_happened(self, log: Copy) -> None:
        """Every session, message, report, end, flag and hold made an entry."""
        entries = log.built.entries
        for role, chat in log.built.chats.items():
            assert len(entries[role]["message"]) == len(chat.texts), role
            assert len(entries[role]["session"]) == len(entries[role]["end"]) == 1, role
        assert len(entries["reported"]["report"]) == 1
        assert len(entries["held"]["hold"]) == 1
        assert len(entries["flagged"]["flag"]) == 1
        assert log.built.size > 32  # some entries lie under stored tree nodes


# -- the rows ------------------------------------------------------------------------------------


def message_entry(log: Copy, role: str, seq: int) -> int:
    return log.entry(role, "message", seq - 1)


def sealed(log: Copy, role: str, seq: int) -> bytes:
    value: bytes = log.value(
        "SELECT text_sealed FROM messages WHERE session_id = :s AND seq = :q",
        s=log.sid(role),
        q=seq,
    )
    return value


def set_sealed(log: Copy, role: str, seq: int, value: bytes) -> None:
    touched = log.run(
        "UPDATE messages SET text_sealed = :v WHERE session_id = :s AND seq = :q",
        v=value,
        s=log.sid(role),
        q=seq,
    )
    assert touched == 1


class TestMessageRows:
    def test_a_changed_byte_of_a_message_is_named(self, log: Copy) -> None:
        """One byte of a stored message's ciphertext changed: the message and its entry are
        named."""
        sid, index = log.sid("plain"), message_entry(log, "plain", 2)
        set_sealed(log, "plain", 2, flip(sealed(log, "plain", 2), at=20))
        assert_found(log.verify(), f"message {sid}#2 differs from entry {index}", entry=index)

    def test_a_deleted_message_is_named(self, log: Copy) -> None:
        """A message row deleted: it is missing from the store, and no entry records why."""
        sid, index = log.sid("plain"), message_entry(log, "plain", 3)
        assert log.run("DELETE FROM messages WHERE session_id = :s AND seq = 3", s=sid) == 1
        result = log.verify()
        assert_found(
            result, f"message {sid}#3 (entry {index}) is missing from the store", entry=index
        )
        assert "no entry records its destruction" in problems(result)

    def test_two_swapped_texts_are_both_named(self, log: Copy) -> None:
        """Messages 2 and 3 swap their ciphertexts: both differ from their entries, the first
        problem is message 2's."""
        sid = log.sid("reported")
        second, third = sealed(log, "reported", 2), sealed(log, "reported", 3)
        set_sealed(log, "reported", 2, third)
        set_sealed(log, "reported", 3, second)
        result = log.verify()
        first, then = message_entry(log, "reported", 2), message_entry(log, "reported", 3)
        assert_found(result, f"message {sid}#2 differs from entry {first}", entry=first)
        assert_found(result, f"message {sid}#3 differs from entry {then}", "swapped")

    def test_two_swapped_numbers_are_both_named(self, log: Copy) -> None:
        """Messages 2 and 3 swap their numbers (the rows reordered): both are named."""
        sid = log.sid("reported")
        for old, new in ((2, -1), (3, 2), (-1, 3)):
            statement = "UPDATE messages SET seq = :n WHERE session_id = :s AND seq = :o"
            assert log.run(statement, n=new, s=sid, o=old) == 1
        result = log.verify()
        first, then = message_entry(log, "reported", 2), message_entry(log, "reported", 3)
        assert_found(result, f"message {sid}#2 differs from entry {first}", entry=first)
        assert_found(result, f"message {sid}#3 differs from entry {then}")

    def test_an_inserted_message_is_named(self, log: Copy) -> None:
        """A message row added after the last: it has no audit entry."""
        sid = log.sid("plain")
        bucket, slot, sent_at = log.rows(
            "SELECT bucket, slot, sent_at FROM messages WHERE session_id = :s AND seq = 5", s=sid
        )[0]
        log.run(
            "INSERT INTO messages (session_id, seq, bucket, slot, sent_at, text_sealed) "
            "VALUES (:s, 6, :b, :slot, :at, :v)",
            s=sid,
            b=bucket,
            slot=1 - slot,
            at=sent_at + 1,
            v=secrets.token_bytes(60),
        )
        assert_found(log.verify(), f"message {sid}#6 has no audit entry: it was inserted")

    def test_a_changed_sender_is_named(self, log: Copy) -> None:
        """A message's sender changed, its text untouched: the message and its entry are named."""
        sid, index = log.sid("held"), message_entry(log, "held", 1)
        log.run("UPDATE messages SET slot = 1 - slot WHERE session_id = :s AND seq = 1", s=sid)
        assert_found(
            log.verify(), f"message {sid}#1: its sender or time differs from entry {index}"
        )


class TestSessionRows:
    def test_a_changed_pseudonym_is_named(self, log: Copy) -> None:
        """A participant's IP pseudonym replaced (to frame someone else): the session's
        participants differ from its entry."""
        sid, index = log.sid("reported"), log.entry("reported", "session")
        touched = log.run(
            "UPDATE participants SET ip_pseudonym = :p WHERE session_id = :s AND slot = 0",
            p=secrets.token_hex(16),
            s=sid,
        )
        assert touched == 1
        assert_found(
            log.verify(),
            f"session {sid}: its participants (IP pseudonyms) differ from entry {index}",
            entry=index,
        )

    def test_a_changed_address_is_named(self, log: Copy) -> None:
        """A sealed address replaced: the slot and the session's entry are named."""
        sid, index = log.sid("plain"), log.entry("plain", "session")
        log.run(
            "UPDATE addresses SET ip_sealed = :v WHERE session_id = :s AND slot = 1",
            v=secrets.token_bytes(40),
            s=sid,
        )
        assert_found(
            log.verify(), f"session {sid}: the address of slot 1 differs from entry {index}"
        )

    def test_a_cleared_hold_is_named(self, log: Copy) -> None:
        """A legal hold cleared in the row (so the purge would destroy the evidence): named
        with the entry that placed it."""
        sid, index = log.sid("held"), log.entry("held", "hold")
        assert log.run("UPDATE sessions SET held_at = NULL WHERE id = :s", s=sid) == 1
        assert_found(log.verify(), f"session {sid}: held since None in the store", entry=index)

    def test_a_hold_without_an_entry_is_named(self, log: Copy) -> None:
        """A hold set in the row but never recorded: named."""
        sid = log.sid("plain")
        log.run("UPDATE sessions SET held_at = :t, hold_reason = 'x' WHERE id = :s", t=T0, s=sid)
        assert_found(
            log.verify(), f"session {sid}: held since {T0} in the store, the entries say None"
        )

    @pytest.mark.parametrize(("role", "kind"), [("reported", "report"), ("flagged", "flag")])
    def test_a_cleared_report_flag_is_named(self, log: Copy, role: str, kind: str) -> None:
        """The reported class cleared in the row (report or safety flag): named with the entry
        that reported it."""
        sid, index = log.sid(role), log.entry(role, kind)
        assert log.run("UPDATE sessions SET reported_at = NULL WHERE id = :s", s=sid) == 1
        assert_found(log.verify(), f"session {sid}: reported since None in the store", entry=index)

    def test_a_deleted_report_is_named(self, log: Copy) -> None:
        """A report row deleted: the entry that recorded it is named."""
        sid, index = log.sid("reported"), log.entry("reported", "report")
        assert log.run("DELETE FROM reports WHERE session_id = :s", s=sid) == 1
        assert_found(
            log.verify(), f"session {sid}: the report of entry {index} is missing", entry=index
        )

    def test_a_changed_end_is_named(self, log: Copy) -> None:
        """A session's end reason rewritten: the end entry is named."""
        sid, index = log.sid("plain"), log.entry("plain", "end")
        log.run("UPDATE sessions SET end_reason = 'timeout' WHERE id = :s", s=sid)
        assert_found(log.verify(), f"session {sid}: its end differs from entry {index}")

    def test_a_deleted_session_is_named(self, log: Copy) -> None:
        """A whole session deleted, every row of it: named with its first entry."""
        sid, index = log.sid("flagged"), log.entry("flagged", "session")
        for table in ("receipts", "reports", "messages", "addresses", "participants"):
            log.run(f"DELETE FROM {table} WHERE session_id = :s", s=sid)  # noqa: S608 - ours
        assert log.run("DELETE FROM sessions WHERE id = :s", s=sid) == 1
        assert_found(
            log.verify(),
            f"session {sid} (entry {index}) is missing from the store, and no entry records",
            entry=index,
        )

    def test_an_inserted_session_is_named(self, log: Copy) -> None:
        """A session inserted with rows of its own (a forged chat): it has no audit entry."""
        insert_session(log, started_at=log.built.ended_at)
        assert_found(log.verify(), "has no audit entry: it was inserted")

    def test_an_inserted_session_dated_before_the_log_is_named(self, log: Copy) -> None:
        """A forged session dated before the log's first entry is still named: the log began on
        an empty store, so no session can predate it."""
        sid = insert_session(log, started_at=T0 - DAY_MS)
        result = log.verify()
        assert_found(result, f"session {sid} has no audit entry")


def insert_session(log: Copy, *, started_at: int) -> str:
    """Rows of a session nobody recorded, copying a real participant's pseudonym and adding a
    report against them; its id."""
    sid = secrets.token_hex(16)
    pseudonym, block_key = log.rows(
        "SELECT ip_pseudonym, block_key FROM participants WHERE session_id = :s AND slot = 0",
        s=log.sid("plain"),
    )[0]
    log.run(
        "INSERT INTO sessions (id, started_at, day, interests_sealed, ended_at, end_reason, "
        "ended_by, reported_at) VALUES (:s, :t, :d, :i, :e, 'stopped', 1, :e)",
        s=sid,
        t=started_at,
        d=started_at // DAY_MS,
        i=secrets.token_bytes(40),
        e=started_at + 10,
    )
    for slot in (0, 1):
        log.run(
            "INSERT INTO participants (session_id, slot, ip_pseudonym, block_key) "
            "VALUES (:s, :slot, :p, :b)",
            s=sid,
            slot=slot,
            p=pseudonym if slot == 0 else secrets.token_hex(16),
            b=block_key if slot == 0 else secrets.token_hex(16),
        )
    log.run(
        "INSERT INTO reports (session_id, reporter_slot, reason, created_at) "
        "VALUES (:s, 1, 'harassment', :t)",
        s=sid,
        t=started_at + 5,
    )
    return sid


# -- the entries ---------------------------------------------------------------------------------


def body_of(log: Copy, index: int) -> bytes:
    body: bytes = log.value("SELECT body FROM audit_entries WHERE idx = :i", i=index)
    return body


def rewrite_entry(log: Copy, index: int, old: bytes, new: bytes, *, leaf: bool = False) -> None:
    """Replace ``old`` by ``new`` in entry ``index``'s body (and its leaf hash with it)."""
    body = body_of(log, index)
    assert body.count(old) == 1, body
    body = body.replace(old, new)
    log.run("UPDATE audit_entries SET body = :b WHERE idx = :i", b=body, i=index)
    if leaf:
        log.run(
            "UPDATE audit_entries SET leaf_hash = :h WHERE idx = :i",
            h=merkle.leaf_hash(body),
            i=index,
        )


def reseal_tree(log: Copy) -> int:
    """What a careful attacker does after changing entries: store the tree nodes and the head
    (size, frontier) that the entries as they now are give. Returns the size."""
    leaves = [row[0] for row in log.rows("SELECT leaf_hash FROM audit_entries ORDER BY idx")]
    nodes: list[dict[str, Any]] = []

    def keep(level: int, index: int, h: bytes) -> None:
        if level and not level % 4:
            nodes.append({"level": level, "idx": index, "hash": h})

    tree = merkle.CompactRange()
    tree.extend(leaves, on_node=keep)
    log.run("DELETE FROM audit_nodes")
    for node in nodes:
        log.run("INSERT INTO audit_nodes (level, idx, hash) VALUES (:level, :idx, :hash)", **node)
    log.run(
        "UPDATE audit_head SET size = :n, frontier = :f WHERE id = 1",
        n=tree.size,
        f=b"".join(tree.hashes),
    )
    return tree.size


def signed_before(log: Copy, index: int) -> int:
    """How many of the built log's checkpoints cover only entries before ``index``."""
    return sum(1 for size in log.built.checkpoints if size <= index)


def first_covering(log: Copy, index: int) -> int:
    return min(size for size in log.built.checkpoints if size > index)


class TestReviewDrills:
    """Attacks a hostile review found that an earlier verify missed."""

    def test_an_entry_outside_the_tree_is_named(self, log: Copy) -> None:
        """An entry inserted at a negative index (to excuse deleted messages with a forged
        shred) is outside the tree: named, and the deleted messages too."""
        sid = log.sid("reported")
        body = entry("shred", at=1, session_id=sid, what=["messages"], why="expired").body
        log.run(
            "INSERT INTO audit_entries (idx, at, kind, session_id, body, leaf_hash) "
            "VALUES (-1, 1, 'shred', :s, :b, :h)",
            s=sid,
            b=body,
            h=merkle.leaf_hash(body),
        )
        log.run("DELETE FROM messages WHERE session_id = :s", s=sid)
        result = log.verify()
        assert_found(result, "outside the log")
        assert_found(result, f"message {sid}#1")

    def test_a_back_dated_report_is_named(self, log: Copy) -> None:
        """``reported_at`` moved 800 days back (so the purge would destroy the evidence now):
        named against the report's entry."""
        sid = log.sid("reported")
        log.run("UPDATE sessions SET reported_at = :t WHERE id = :s", t=T0 - 800 * DAY_MS, s=sid)
        assert_found(log.verify(), f"session {sid}: reported since {T0 - 800 * DAY_MS}")

    def test_a_forged_erasure_is_named(self, log: Copy) -> None:
        """``erase_after`` set on a session nobody asked to erase: named."""
        sid = log.sid("plain")
        log.run("UPDATE sessions SET erase_after = 1 WHERE id = :s", s=sid)
        assert_found(log.verify(), f"session {sid}: an erasure is due at 1 in the store")

    def test_a_repointed_receipt_is_named(self, log: Copy) -> None:
        """A receipt moved to another session (so it could erase that one): named."""
        sid, other = log.sid("plain"), log.sid("last")
        log.run(
            "UPDATE receipts SET session_id = :o WHERE session_id = :s AND slot = 0", o=other, s=sid
        )
        result = log.verify()
        assert_found(result, f"session {sid}: its receipts differ")
        assert_found(result, f"session {other}: its receipts differ")

    def test_an_extra_address_row_is_named(self, log: Copy) -> None:
        """A copy of an address row under a slot the entry never committed: named."""
        sid = log.sid("last")
        log.run(
            "INSERT INTO addresses (session_id, slot, bucket, ip_sealed) "
            "SELECT session_id, -1, bucket, ip_sealed FROM addresses WHERE session_id = :s "
            "AND slot = 1",
            s=sid,
        )
        assert_found(log.verify(), f"session {sid}: it has address rows")

    def test_a_malformed_row_is_a_problem_not_a_crash(self, log: Copy) -> None:
        """A row of the wrong type is reported as tampering; verify does not crash."""
        sid = log.sid("plain")
        if log.built.backend == "sqlite":
            log.run("UPDATE messages SET text_sealed = 'text' WHERE session_id = :s", s=sid)
            # The store reads text in a blob column as its bytes (store/sql.py), which differ.
            assert_found(log.verify(), f"message {sid}#1 differs from entry")
        else:
            log.run("UPDATE audit_entries SET body = :b WHERE idx = 0", b=b"[" * 100_000)
            assert_found(log.verify(), "entry 0")


class TestEntries:
    def test_a_changed_byte_of_an_entry_is_named(self, log: Copy) -> None:
        """One byte of an entry's body changed (the reason of a hold): the entry is named."""
        index = log.entry("held", "hold")
        rewrite_entry(log, index, b'"case 17"', b'"case 18"')
        assert_found(log.verify(), f"entry {index} does not hash to its leaf hash", "altered")

    def test_the_first_problem_of_a_changed_entry_is_that_entry(self, log: Copy) -> None:
        """Only the body changed (its stored leaf hash intact): the first problem, the one
        `audit verify` prints, is that entry, not the range of 16 around it."""
        index = log.entry("held", "hold")
        rewrite_entry(log, index, b'"case 17"', b'"case 18"')
        result = log.verify()
        assert_found(result, f"entry {index} does not hash to its leaf hash", entry=index)
        assert "its body and leaf hash both" not in problems(result)

    def test_an_entry_rewritten_with_its_leaf_hash_is_named(self, log: Copy) -> None:
        """The body and its leaf hash rewritten together: the stored node over the entry names
        its range, and the checkpoints signed since no longer match."""
        index = log.entry("held", "hold")
        rewrite_entry(log, index, b'"case 17"', b'"case 18"', leaf=True)
        result = log.verify()
        low = index - index % 16
        assert_found(
            result,
            f"the stored tree node over entries {low}..{low + 15} does not match",
            entry=low,
        )
        size = first_covering(log, index)
        assert_found(result, f"the checkpoint signed for size {size} does not match")
        assert "does not hash" not in problems(result)
        assert result.checkpoints == signed_before(log, index)

    def test_an_entry_rewritten_with_the_tree_above_it_is_named(self, log: Copy) -> None:
        """Body, leaf hash, every stored node and the head rewritten: only the signatures are
        out of reach, and the first checkpoint signed since the entry is named."""
        index = log.entry("held", "hold")
        rewrite_entry(log, index, b'"case 17"', b'"case 18"', leaf=True)
        assert reseal_tree(log) == log.built.size
        result = log.verify()
        size = first_covering(log, index)
        assert_found(
            result,
            f"the checkpoint signed for size {size} does not match the log's first {size} entries",
        )
        assert "tree node" not in problems(result)
        assert "head says" not in problems(result)
        assert result.checkpoints == signed_before(log, index)

    def test_an_entry_past_the_stored_nodes_rewritten_is_named(self, log: Copy) -> None:
        """An entry in the last, incomplete stretch of 16 (no stored node above it) rewritten
        with its leaf hash: the checkpoint covering it and the head no longer match."""
        index = log.entry("last", "end")
        assert index >= log.built.size - log.built.size % 16
        rewrite_entry(log, index, b'"messages":3', b'"messages":4', leaf=True)
        result = log.verify()
        assert_found(result, f"the checkpoint signed for size {first_covering(log, index)}")
        assert_found(result, f"the log's head says {log.built.size} entries")

    def test_an_entry_moved_to_another_session_is_named(self, log: Copy) -> None:
        """An entry's session column changed (so the session's rows seem to have no entry
        for it): its columns do not match its body."""
        index = message_entry(log, "plain", 4)
        log.run(
            "UPDATE audit_entries SET session_id = :s WHERE idx = :i", s=log.sid("last"), i=index
        )
        assert_found(log.verify(), f"entry {index}: its columns do not match its body")

    @pytest.mark.parametrize(
        ("old", "new", "leaf", "named"),
        [
            (b'"by":0,', b'"by": 0,', True, "its body is not in canonical form"),
            (b'"by":0,', b'"by":0;', False, "does not hash to its leaf hash"),
        ],
        ids=["non-canonical", "not-json"],
    )
    def test_an_unreadable_body_is_named(
        self, log: Copy, old: bytes, new: bytes, leaf: bool, named: str
    ) -> None:
        """A session's entry re-encoded with a space (same JSON, leaf hash recomputed) or made
        unreadable (one byte): named, with the rest of the report, not raised."""
        index = log.entry("plain", "end")
        rewrite_entry(log, index, old, new, leaf=leaf)
        assert_found(log.verify(), f"entry {index}", named)

    def test_a_deleted_entry_is_named(self, log: Copy) -> None:
        """An entry deleted from the middle of the log: the gap is named."""
        index = message_entry(log, "reported", 3)
        assert log.run("DELETE FROM audit_entries WHERE idx = :i", i=index) == 1
        assert_found(log.verify(), f"entries {index}..{index} are missing: removed from the log")

    def test_the_first_problem_of_a_deleted_entry_is_the_gap(self, log: Copy) -> None:
        """The first problem, the one `audit verify` prints, is the gap itself."""
        index = message_entry(log, "reported", 3)
        assert log.run("DELETE FROM audit_entries WHERE idx = :i", i=index) == 1
        result = log.verify()
        assert_found(result, f"entries {index}..{index} are missing", entry=index)
        assert "its body and leaf hash both" not in problems(result)

    def test_a_deleted_entry_with_the_rest_renumbered_is_named(self, log: Copy) -> None:
        """An entry deleted, the later ones renumbered to close the gap and the tree rewritten:
        every checkpoint since no longer matches, and the log is shorter than they say."""
        index = message_entry(log, "reported", 3)
        assert log.run("DELETE FROM audit_entries WHERE idx = :i", i=index) == 1
        log.run("UPDATE audit_entries SET idx = -idx WHERE idx > :i", i=index)
        log.run("UPDATE audit_entries SET idx = -idx - 1 WHERE idx < 0")
        assert reseal_tree(log) == log.built.size - 1
        result = log.verify()
        size = first_covering(log, index)
        assert_found(result, f"the checkpoint signed for size {size} does not match")
        assert_found(result, "truncated")
        assert_found(result, f"message {log.sid('reported')}#3 has no audit entry")
        assert result.checkpoints == signed_before(log, index)


class TestTruncation:
    def truncate(self, log: Copy, *, rows: bool) -> int:
        """Cut the last chat's entries off the log, its rows too if ``rows``, and rewrite the
        tree and the head to match; the size left."""
        first = log.entry("last", "session")
        assert log.run("DELETE FROM audit_entries WHERE idx >= :i", i=first) > 0
        if rows:
            sid = log.sid("last")
            for table in ("receipts", "reports", "messages", "addresses", "participants"):
                log.run(f"DELETE FROM {table} WHERE session_id = :s", s=sid)  # noqa: S608
            log.run("DELETE FROM sessions WHERE id = :s", s=sid)
        assert reseal_tree(log) == first
        return first

    def test_a_careful_truncation_is_named(self, log: Copy) -> None:
        """The last entries and their rows removed, the head rewritten to a consistent
        shorter log: the checkpoint signed for the longer one names the removed entries."""
        size, signed = self.truncate(log, rows=True), log.built.checkpoints[-1]
        result = log.verify()
        assert_found(
            result,
            f"a checkpoint was signed for {signed} entries but the log holds {size}: "
            f"entries {size}..{signed - 1} were removed (the log was truncated)",
            entry=size,
        )
        assert result.checkpoints == signed_before(log, size)

    def test_a_truncation_that_drops_the_newest_checkpoint_is_named(self, log: Copy) -> None:
        """Truncated, and the head's checkpoint cleared: the one kept in the history names it."""
        size = self.truncate(log, rows=True)
        log.run("UPDATE audit_head SET checkpoint = NULL WHERE id = 1")
        assert_found(log.verify(), "truncated", entry=size)

    def test_a_truncation_that_leaves_the_rows_is_named(self, log: Copy) -> None:
        """Truncated, the session's rows left behind: the truncation comes first, and the rows
        without entries are named too."""
        size = self.truncate(log, rows=False)
        result = log.verify()
        assert_found(result, "truncated", entry=size)
        assert_found(result, f"session {log.sid('last')} has no audit entry")

    def test_a_naive_truncation_is_named(self, log: Copy) -> None:
        """The last entries deleted and nothing else: truncated, and the head disagrees."""
        size = log.entry("last", "session")
        log.run("DELETE FROM audit_entries WHERE idx >= :i", i=size)
        result = log.verify()
        assert_found(result, "truncated", entry=size)
        assert_found(result, f"the log's head says {log.built.size} entries")


# -- the signed checkpoints ----------------------------------------------------------------------


def flip_root(note: bytes) -> bytes:
    """The note with one character of its root hash line changed (still valid base64)."""
    lines = note.split(b"\n")
    lines[2] = (b"A" if lines[2][:1] != b"A" else b"B") + lines[2][1:]
    return b"\n".join(lines)


def forged(size: int, root: bytes) -> bytes:
    """A checkpoint for the log's origin signed by a key that is not the log's."""
    return notes.sign(notes.Checkpoint(AUDIT_SIGNER.name, size, root), FORGER)


class TestCheckpoints:
    def head_note(self, log: Copy) -> bytes:
        note: bytes = log.value("SELECT checkpoint FROM audit_head WHERE id = 1")
        return note

    def kept_note(self, log: Copy, size: int) -> bytes:
        note: bytes = log.value("SELECT note FROM audit_checkpoints WHERE size = :n", n=size)
        return note

    def test_a_flipped_newest_checkpoint_is_named(self, log: Copy) -> None:
        """A byte of the newest checkpoint changed: it does not verify, replaced or forged."""
        log.run("UPDATE audit_head SET checkpoint = :c", c=flip_root(self.head_note(log)))
        assert_found(log.verify(), "the newest checkpoint does not verify", "replaced or forged")

    def test_a_flipped_kept_checkpoint_is_named(self, log: Copy) -> None:
        """A byte of a checkpoint in the history changed: named by its size."""
        size = log.built.checkpoints[1]
        note = flip_root(self.kept_note(log, size))
        log.run("UPDATE audit_checkpoints SET note = :c WHERE size = :n", c=note, n=size)
        assert_found(log.verify(), f"the checkpoint kept for size {size} does not verify", "forged")

    def test_a_newest_checkpoint_signed_by_another_key_is_named(self, log: Copy) -> None:
        """The newest checkpoint re-signed, for the true size and root, by a key for the same
        origin that is not the log's: it does not verify."""
        head = log.store.audit_head()
        log.run("UPDATE audit_head SET checkpoint = :c", c=forged(head.size, head.root))
        assert_found(log.verify(), "the newest checkpoint does not verify", "no signature by key")

    def test_a_kept_checkpoint_signed_by_another_key_is_named(self, log: Copy) -> None:
        """A kept checkpoint replaced by one another key signed over a different root (a
        rewritten history): it does not verify."""
        size = log.built.checkpoints[0]
        note = forged(size, secrets.token_bytes(32))
        log.run("UPDATE audit_checkpoints SET note = :c WHERE size = :n", c=note, n=size)
        assert_found(log.verify(), f"the checkpoint kept for size {size} does not verify")

    def test_a_rewritten_log_with_forged_checkpoints_is_named(self, log: Copy) -> None:
        """An entry rewritten with the tree above it, and every checkpoint re-signed over the
        new roots by another key: none of them verifies."""
        index = log.entry("held", "hold")
        rewrite_entry(log, index, b'"case 17"', b'"case 18"', leaf=True)
        reseal_tree(log)
        for size in log.built.checkpoints:
            note = forged(size, log.store.audit_root(size))
            log.run("UPDATE audit_checkpoints SET note = :c WHERE size = :n", c=note, n=size)
        log.run("UPDATE audit_head SET checkpoint = :c", c=note)
        result = log.verify()
        for size in log.built.checkpoints:
            assert_found(result, f"the checkpoint kept for size {size} does not verify")
        assert_found(result, "the newest checkpoint does not verify")
        assert result.checkpoints == 0

    def test_a_moved_checkpoint_is_named(self, log: Copy) -> None:
        """A kept checkpoint filed under another size: it says which size it was signed for."""
        size = log.built.checkpoints[0]
        log.run("UPDATE audit_checkpoints SET size = :m WHERE size = :n", m=size + 1, n=size)
        assert_found(log.verify(), f"is signed for size {size}: it was moved")

    def test_a_rewrite_with_the_later_checkpoints_removed_is_named(self, log: Copy) -> None:
        """An entry rewritten with the tree above it, and the checkpoints signed since deleted
        (the head's replaced by the older genuine one): the entries no checkpoint covers any
        more are named."""
        index = log.entry("held", "hold")
        rewrite_entry(log, index, b'"case 17"', b'"case 18"', leaf=True)
        reseal_tree(log)
        kept = log.built.checkpoints[0]
        log.run("UPDATE audit_head SET checkpoint = :c", c=self.kept_note(log, kept))
        log.run("DELETE FROM audit_checkpoints WHERE size > :n", n=kept)
        result = log.verify()
        said = [p.what for p in result.problems] + result.notes
        assert any(str(kept) in text and "checkpoint" in text for text in said), said

    def test_a_marker_ahead_of_the_newest_checkpoint_is_named(self, log: Copy) -> None:
        """The marker saving compares with set far ahead (to stop checkpoints being saved):
        named as altered."""
        log.run("UPDATE audit_head SET checkpoint_size = :n", n=10**15)
        assert_found(log.verify(), "marker of its newest checkpoint says size", "altered")

    def test_a_rolled_back_newest_checkpoint_is_named(self, log: Copy) -> None:
        """The newest checkpoint put back to an older genuine one, its marker with it: the
        history's newer ones name the roll-back."""
        size = log.built.checkpoints[0]
        log.run(
            "UPDATE audit_head SET checkpoint = :c, checkpoint_size = :n",
            c=self.kept_note(log, size),
            n=size,
        )
        assert_found(log.verify(), f"a newest checkpoint of size {size}", "rolled back")

    def test_a_roll_back_with_the_history_is_named_by_a_witness(self, log: Copy) -> None:
        """The newest checkpoint and the history both put back: a witness's copy of the
        newest names the roll-back."""
        newest, size = self.head_note(log), log.built.checkpoints[0]
        log.run("DELETE FROM audit_checkpoints WHERE size > :n", n=size)
        log.run(
            "UPDATE audit_head SET checkpoint = :c, checkpoint_size = :n",
            c=self.kept_note(log, size),
            n=size,
        )
        assert log.verify().ok  # the database alone now looks consistent
        result = verify_log(
            log.store,
            verifier=AUDIT_SIGNER.verifier(),
            origin=AUDIT_SIGNER.name,
            anchors=[("the witness's copy", newest)],
        )
        assert_found(result, "the witness's copy was signed for size", "rolled back")

    def test_a_damaged_frontier_is_named(self, log: Copy) -> None:
        """The head's frontier overwritten with one byte: named as a problem, and the rest of
        the log is still checked."""
        log.run("UPDATE audit_head SET frontier = :f", f=b"\x00")
        result = log.verify()
        assert_found(result, "the audit log's head is damaged", "altered")
        assert result.size == log.built.size
        assert result.checkpoints == len(log.built.checkpoints)


# -- entries that excuse missing data or lift a protection -------------------------------------


def delete_session_rows(log: Copy, sid: str) -> None:
    for table in ("receipts", "reports", "messages", "addresses", "participants"):
        log.run(f"DELETE FROM {table} WHERE session_id = :s", s=sid)  # noqa: S608 - ours
    assert log.run("DELETE FROM sessions WHERE id = :s", s=sid) == 1


def index_of(log: Copy, kind: str, sid: str) -> int:
    """The index of the last entry of ``kind`` about session ``sid``."""
    index: int = log.value(
        "SELECT max(idx) FROM audit_entries WHERE kind = :k AND session_id = :s", k=kind, s=sid
    )
    return index


class TestAuthorisingEntries:
    def test_an_unsigned_delete_does_not_excuse_a_deleted_session(self, log: Copy) -> None:
        """A reported session's rows deleted and a `delete` entry appended through the store
        (no key needed): the entry is named forged, and the session as deleted without a
        valid entry."""
        sid = log.sid("reported")
        delete_session_rows(log, sid)
        index = log.store.append_audit(
            [entry("delete", at=log.built.ended_at, session_id=sid, why="expired")]
        )
        result = log.verify()
        assert_found(result, f"entry {index} (delete of session {sid}): it is not signed: forged")
        assert_found(
            result,
            f"session {sid} (entry {log.entry('reported', 'session')}) is missing",
            f"({index}) are not valid",
        )

    def test_a_delete_signed_by_another_key_is_forged(self, log: Copy) -> None:
        """The same with the entry signed by a key that is not the log's: forged."""
        sid = log.sid("plain")
        delete_session_rows(log, sid)
        forged_delete = entry(
            "delete", at=log.built.ended_at, session_id=sid, why="expired", policy=POLICY.periods()
        )
        index = log.store.append_audit([sign_entry(forged_delete, FORGER, made=log.built.ended_at)])
        assert_found(
            log.verify(), f"entry {index} (delete of session {sid})", "not the log's", "forged"
        )

    def test_an_unsigned_shred_does_not_excuse_deleted_messages(self, log: Copy) -> None:
        """A session's messages deleted and an unsigned `shred` appended: both named."""
        sid = log.sid("flagged")
        log.run("DELETE FROM messages WHERE session_id = :s", s=sid)
        index = log.store.append_audit(
            [
                entry(
                    "shred", at=log.built.ended_at, session_id=sid, what=["messages"], why="expired"
                )
            ]
        )
        result = log.verify()
        assert_found(result, f"entry {index} (shred messages of session {sid})", "forged")
        assert_found(result, f"message {sid}#1", "no entry records its destruction")

    def test_a_forged_release_does_not_lift_a_hold(self, log: Copy) -> None:
        """An unsigned `release` appended and the row's hold cleared (so the purge would
        destroy the evidence): the release is forged and the hold still stands."""
        sid, hold = log.sid("held"), log.entry("held", "hold")
        index = log.store.append_audit(
            [entry("release", at=log.built.ended_at, session_id=sid, by="legal", hold=hold)]
        )
        log.run("UPDATE sessions SET held_at = NULL, hold_reason = NULL WHERE id = :s", s=sid)
        result = log.verify()
        assert_found(result, f"entry {index} (release of session {sid})", "forged")
        assert_found(result, f"session {sid}: held since None in the store", entry=hold)

    def test_a_forged_erasure_request_is_named(self, log: Copy) -> None:
        """An unsigned `erasure` appended and ``erase_after`` set (so the purge would erase a
        chat nobody asked to erase): named."""
        sid = log.sid("last")
        index = log.store.append_audit(
            [entry("erasure", at=log.built.ended_at, session_id=sid, until=log.built.ended_at)]
        )
        log.run("UPDATE sessions SET erase_after = :t WHERE id = :s", t=log.built.ended_at, s=sid)
        result = log.verify()
        assert_found(result, f"entry {index} (erasure of session {sid})", "forged")
        assert_found(
            result, f"session {sid}: an erasure is due at {log.built.ended_at} in the store"
        )

    def signed(self, log: Copy, record: AuditRecord) -> int:
        """Append ``record`` signed with the log's own key, as the retention service would."""
        audit = AuditLog(log.store, signer=AUDIT_SIGNER, clock=FakeClock(record.at))
        return audit.append([record])

    def test_a_signed_shred_before_its_time_is_named(self, log: Copy) -> None:
        """A genuinely signed shred of a plain session's messages on the day they were sent:
        its retention has not passed, so it excuses nothing."""
        sid = log.sid("plain")
        index = self.signed(
            log,
            entry(
                "shred",
                at=log.built.ended_at,
                session_id=sid,
                what=["messages"],
                why="expired",
                keys="session",
                policy=POLICY.periods(),
                by="logwarden",
            ),
        )
        log.run("DELETE FROM messages WHERE session_id = :s", s=sid)
        expires = (DAY0 + POLICY.session_days + 1) * DAY_MS
        result = log.verify()
        assert_found(
            result,
            f"entry {index} (shred messages of session {sid}) was not due",
            f"kept by the session class until {iso(expires)}",
        )
        assert_found(result, f"message {sid}#1", "no entry records its destruction")

    def test_a_day_shred_needs_the_keys_entry_of_its_bucket(self, log: Copy) -> None:
        """A signed shred of a day's rows past their time, but no `keys` entry destroyed the
        day's bucket key first: named."""
        sid, at = log.sid("last"), (DAY0 + 32) * DAY_MS
        index = self.signed(
            log,
            entry(
                "shred",
                at=at,
                session_id=sid,
                what=["messages"],
                why="expired",
                keys="bucket",
                policy=POLICY.periods(),
                by="logwarden",
            ),
        )
        assert_found(
            log.verify(),
            f"entry {index}",
            f"no keys entry before it destroyed the bucket of its messages (session:{DAY0})",
        )

    def test_an_erasure_needs_its_signed_request(self, log: Copy) -> None:
        """A signed `delete` for an erasure nobody asked for: named."""
        sid = log.sid("plain")
        index = self.signed(
            log,
            entry(
                "delete",
                at=log.built.ended_at,
                session_id=sid,
                why="erased",
                policy=POLICY.periods(),
                by="logwarden",
            ),
        )
        delete_session_rows(log, sid)
        result = log.verify()
        assert_found(
            result,
            f"entry {index} (delete of session {sid}) was not due",
            "no signed erasure request",
        )
        assert_found(result, f"session {sid}", "are not valid")

    def test_the_purge_does_not_launder_a_cleared_report(
        self, fresh: Copy, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The reported class cleared in a reported session's row: at 93 days the genuine
        purge refuses to delete it (the store is not the log's account) and says so. A purge
        that did delete it (one that skipped the check) signs a deletion that the log shows
        was not due: the report's 365 days have not passed."""
        sid, report = fresh.sid("reported"), fresh.entry("reported", "report")
        fresh.run("UPDATE sessions SET reported_at = NULL WHERE id = :s", s=sid)
        with attach_deployment(fresh.data_dir, fresh.store, at=(DAY0 + 93) * DAY_MS) as d:
            d.retention.purge()
            assert d.store.session(sid) is not None  # the evidence is kept
            assert f"not destroying anything of session {sid}" in caplog.text
            assert_found(fresh.verify(), f"session {sid}: reported since None", entry=report)
            skip_the_check(monkeypatch)
            d.retention.purge()
            assert d.store.session(sid) is None  # the evidence is gone
            result, index = fresh.verify(), index_of(fresh, "delete", sid)
        assert_found(
            result,
            f"entry {index} (delete of session {sid}) was not due",
            f"its report (entry {report}) keeps it until",
        )

    def test_the_purge_does_not_launder_a_cleared_hold(
        self, fresh: Copy, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A legal hold cleared in the row: at 32 days the genuine purge refuses to let the
        held session's keys go. One that skipped the check destroys its messages and signs
        the shred, but the log shows the hold: named."""
        sid, hold = fresh.sid("held"), fresh.entry("held", "hold")
        fresh.run("UPDATE sessions SET held_at = NULL, hold_reason = NULL WHERE id = :s", s=sid)
        with attach_deployment(fresh.data_dir, fresh.store, at=(DAY0 + 32) * DAY_MS) as d:
            d.retention.purge()
            record = d.store.session(sid)
            assert record is not None and len(record.messages) == 4  # the evidence is kept
            assert f"not destroying anything of session {sid}" in caplog.text
            skip_the_check(monkeypatch)
            d.retention.purge()
            record = d.store.session(sid)
            assert record is not None and not record.messages  # the evidence is gone
            result, index = fresh.verify(), index_of(fresh, "shred", sid)
        assert_found(
            result,
            f"entry {index} (shred messages and addresses of session {sid}) was not due",
            f"its messages are under the legal hold of entry {hold}",
        )

    def test_a_back_dated_flag_does_not_let_the_purge_through(
        self, fresh: Copy, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An unsigned flag dated in 1970 appended for a plain session and its row's
        ``reported_at`` set to match (so its reported class expired long ago): the flag is
        named forged, and the purge refuses to act on the row. One that skipped the check
        shreds the messages, and the log names the shred as not due."""
        sid, at = fresh.sid("plain"), 86_400_000
        flag = fresh.store.append_audit(
            [entry("flag", at=at, session_id=sid, by="safety", reason="pii")]
        )
        fresh.run("UPDATE sessions SET reported_at = :t WHERE id = :s", t=at, s=sid)
        with attach_deployment(fresh.data_dir, fresh.store, at=fresh.built.ended_at) as d:
            d.retention.purge()
            record = d.store.session(sid)
            assert record is not None and len(record.messages) == 5  # the evidence is kept
            assert f"not destroying anything of session {sid}" in caplog.text
            skip_the_check(monkeypatch)
            d.retention.purge()
            record = d.store.session(sid)
            assert record is not None and not record.messages  # the evidence is gone
            result, shred = fresh.verify(), index_of(fresh, "shred", sid)
        assert_found(result, f"entry {flag} (flag of session {sid}): it is not signed: forged")
        assert_found(
            result,
            f"entry {shred} (shred messages and addresses of session {sid}) was not due",
            "kept by the session class until",
        )

    def test_a_replayed_release_does_not_lift_a_later_hold(self, fresh: Copy) -> None:
        """A hold released and placed again; the first release's signed entry appended once
        more and the row's hold cleared: the copy names a hold no longer in force, so the
        second hold stands."""
        sid = fresh.sid("held")
        with attach_deployment(
            fresh.data_dir, fresh.store, at=fresh.built.ended_at + MINUTE_MS
        ) as d:
            assert d.retention.release(sid, reason="order 18 lifted", by="legal") is not None
            assert d.retention.hold(sid, reason="case 18", by="legal") is not None
            release = index_of(fresh, "release", sid)
            at, body = fresh.rows("SELECT at, body FROM audit_entries WHERE idx = :i", i=release)[0]
            replayed = d.store.append_audit([AuditRecord(at, "release", sid, bytes(body))])
            fresh.run("UPDATE sessions SET held_at = NULL, hold_reason = NULL WHERE id = :s", s=sid)
            result, hold = fresh.verify(), index_of(fresh, "hold", sid)
        assert_found(result, f"entry {replayed} (release of session {sid})", "replayed")
        assert_found(result, f"session {sid}: held since None in the store", entry=hold)

    def test_the_purge_records_the_bucket_keys_it_destroys(self, fresh: Copy) -> None:
        """At 32 days the purge destroys the first day's text and address bucket keys: a
        `keys` entry signed by the log's key names them, before the shreds of the rows they
        sealed, and the log verifies."""
        with attach_deployment(fresh.data_dir, fresh.store, at=(DAY0 + 32) * DAY_MS) as d:
            d.retention.purge()
            found = [
                (idx, parse_body(idx, bytes(body)))
                for idx, body in fresh.rows(
                    "SELECT idx, body FROM audit_entries WHERE idx >= :n AND kind IN ('keys', "
                    "'shred') ORDER BY idx",
                    n=fresh.built.size,
                )
            ]
            result = fresh.verify()
        assert result.ok, problems(result)
        keys = [(idx, fields) for idx, fields in found if fields["kind"] == "keys"]
        assert len(keys) == 1
        keys_index, keys_entry = keys[0]
        check_signature(keys_entry, AUDIT_SIGNER.verifier())
        destroyed = {bucket for bucket, _count in keys_entry["buckets"]}
        assert {f"session:{DAY0}", f"raw_ip:{DAY0}"} <= destroyed
        assert keys_entry["policy"] == POLICY.periods()
        shreds = [(idx, f) for idx, f in found if f["kind"] == "shred" and f["keys"] == "bucket"]
        assert {f["session"] for _idx, f in shreds} >= {fresh.sid("plain"), fresh.sid("last")}
        assert all(idx > keys_index for idx, _f in shreds)


def skip_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the retention service act on the store's columns alone, as it did before it held
    them to the log: what `audit verify` must still catch."""
    from logwarden.audit.ledger import Account, SessionState
    from logwarden.retention.service import Retention

    monkeypatch.setattr(
        Retention, "_account", lambda _self, _sid: Account(SessionState(), None, None)
    )


def iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, tz=UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


# -- the second hostile review (review 7) ---------------------------------------------------------


def session_rows(log: Copy, sid: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of a session, table by table (parents first): what a backup holds."""
    found = {}
    with log.store._engine.connect() as conn:
        for table in (schema.sessions, *CHILDREN):
            key = table.c.id if table is schema.sessions else table.c.session_id
            found[table.name] = [
                dict(r._mapping) for r in conn.execute(select(table).where(key == sid))
            ]
    return found


def put_back(log: Copy, rows: dict[str, list[dict[str, Any]]]) -> None:
    with log.store._engine.begin() as conn:
        for table in (schema.sessions, *CHILDREN):
            if rows[table.name]:
                conn.execute(table.insert(), rows[table.name])


CHILDREN = (schema.participants, schema.addresses, schema.messages, schema.reports, schema.receipts)


class TestSignedEntries:
    """Every entry but the recorder's bulk is signed: appended through the store alone, a
    read, export, hold, flag, report or safety event is forged and counts for nothing (A3)."""

    @pytest.mark.parametrize(
        ("kind", "fields"),
        [
            ("read", {"by": "alice", "what": "transcript", "reason": "personal curiosity"}),
            ("export", {"by": "alice", "reason": "sent to a friend", "messages": 3}),
            ("hold", {"by": "judge", "reason": "order 404"}),
            ("flag", {"by": "alice", "reason": None}),
            ("report", {"slot": 1, "reason": "threats", "comment": None}),
            ("safety", {"slot": 0, "event": "risk", "detail": {"preserve": True}}),
        ],
    )
    def test_an_entry_appended_without_the_key_is_forged(
        self, log: Copy, kind: str, fields: dict[str, Any]
    ) -> None:
        """Framing an operator, or placing a protection nobody placed: named forged."""
        sid = log.sid("plain")
        index = log.store.append_audit(
            [entry(kind, at=log.built.ended_at, session_id=sid, **fields)]
        )
        assert_found(
            log.verify(), f"entry {index} ({kind} of session {sid}): it is not signed: forged"
        )

    def test_reports_are_signed_by_the_recorder(self, log: Copy) -> None:
        """The recorder signs the reports it writes with the log's key."""
        index = log.entry("reported", "report")
        check_signature(parse_body(index, body_of(log, index)), AUDIT_SIGNER.verifier())

    def test_a_flag_placed_ahead_of_time_counts_for_nothing(self, fresh: Copy) -> None:
        """An unsigned flag dated at a plain session's start, its row's ``reported_at`` set to
        match; a moderator flags it for real on day 20. The reported class runs from day 20:
        at day 366 the session is still kept, and the flag is named forged (A4)."""
        sid, start = fresh.sid("plain"), fresh.built.chats["plain"].started_at
        fresh.store.append_audit(
            [entry("flag", at=start, session_id=sid, by="safety", reason="pii")]
        )
        fresh.run("UPDATE sessions SET reported_at = :t WHERE id = :s", t=start, s=sid)
        with attach_deployment(fresh.data_dir, fresh.store, at=fresh.built.ended_at) as d:
            d.retention.purge()
            d.at((DAY0 + 20) * DAY_MS)
            d.retention.purge()
            assert d.retention.flag(sid, by="moderator", reason="complaint 42") is not None
            d.at((DAY0 + 366) * DAY_MS + 3_600_000)
            d.retention.purge()
            assert d.store.session(sid) is not None
            result = fresh.verify()
        assert_found(result, f"(flag of session {sid}): it is not signed: forged")


class TestEnds:
    def test_a_second_end_is_named_and_the_first_counts(self, log: Copy) -> None:
        """An end entry appended for an ended session, and its row moved to match it: the
        second end is named inserted, and the row is held to the first (A4)."""
        sid, first = log.sid("plain"), log.entry("plain", "end")
        ended = parse_body(first, body_of(log, first))
        later = ended["at"] + 3_600_000
        second = log.store.append_audit(
            [entry("end", at=later, session_id=sid, reason="stopped", by=0, messages=5)]
        )
        log.run("UPDATE sessions SET ended_at = :t WHERE id = :s", t=later, s=sid)
        result = log.verify()
        assert_found(result, f"entry {second} is a second end of session {sid}", "inserted")
        assert_found(result, f"session {sid}: its end differs from entry {first}")

    def test_an_end_dated_before_its_messages_is_back_dated(self, log: Copy) -> None:
        """A session's end rewritten to an hour before its messages, with the tree above it:
        the end counts for nothing (it would open the erasure window early)."""
        sid, index = log.sid("last"), log.entry("last", "end")
        body = body_of(log, index)
        at = parse_body(index, body)["at"]
        rewrite_entry(
            log, index, f'"at":{at}'.encode(), f'"at":{at - 3_600_000}'.encode(), leaf=True
        )
        log.run("UPDATE audit_entries SET at = :t WHERE idx = :i", t=at - 3_600_000, i=index)
        reseal_tree(log)
        assert_found(log.verify(), f"entry {index} (end of session {sid})", "back-dated")


class TestErasureRequests:
    def signed(self, log: Copy, record: AuditRecord) -> int:
        audit = AuditLog(log.store, signer=AUDIT_SIGNER, clock=FakeClock(record.at))
        return audit.append([record])

    def test_a_request_due_before_the_window_closes_counts_for_nothing(self, log: Copy) -> None:
        """A signed erasure due at the session's end, though it records a window of five
        minutes: it counts for nothing, and the store's erasure time is named (A1)."""
        sid, end = log.sid("plain"), log.entry("plain", "end")
        ended_at = parse_body(end, body_of(log, end))["at"]
        index = self.signed(
            log,
            entry("erasure", at=ended_at, session_id=sid, until=ended_at, end=end, window=310_000),
        )
        log.run("UPDATE sessions SET erase_after = :t WHERE id = :s", t=ended_at, s=sid)
        result = log.verify()
        assert_found(result, f"entry {index} (erasure of session {sid}) is due at", "report window")
        assert_found(result, f"session {sid}: an erasure is due at {ended_at} in the store")

    def test_a_request_must_name_the_sessions_end(self, log: Copy) -> None:
        """A signed erasure naming another entry as the session's end: void."""
        sid, end = log.sid("plain"), log.entry("plain", "end")
        at = log.built.ended_at
        index = self.signed(
            log, entry("erasure", at=at, session_id=sid, until=at, end=end - 1, window=0)
        )
        assert_found(log.verify(), f"entry {index} (erasure of session {sid}) names end entry")


class TestBoundedVerify:
    @pytest.mark.timeout(60)
    @pytest.mark.parametrize("head", ["damaged", "claimed"])
    def test_an_entry_far_past_the_log_does_not_stop_verify(self, log: Copy, head: str) -> None:
        """One entry stored at index 10**12, the head damaged or claiming a log that long:
        verify names the gap and ends, without filling 10**12 leaves (A5)."""
        body = entry("kek", at=1, by="x").body
        log.run(
            "INSERT INTO audit_entries (idx, at, kind, session_id, body, leaf_hash) "
            "VALUES (:i, 1, 'kek', NULL, :b, :h)",
            i=10**12,
            b=body,
            h=merkle.leaf_hash(body),
        )
        if head == "damaged":
            log.run("UPDATE audit_head SET frontier = :f", f=b"\x00")
        else:
            size = 10**12 + 1
            log.run(
                "UPDATE audit_head SET size = :n, frontier = :f",
                n=size,
                f=b"\x11" * 32 * size.bit_count(),
            )
        result = log.verify()
        assert_found(result, f"entries {log.built.size}..{10**12 - 1} are missing")


class TestEntryShapes:
    def test_a_body_over_64_kib_is_not_read(self, log: Copy) -> None:
        """An appended entry of a mebibyte of JSON: named by its size, never parsed (A7)."""
        body = b'{"at":1,"kind":"read","x":[' + b"{}," * 350_000 + b"{}]}"
        index = log.store.append_audit([AuditRecord(1, "read", None, body)])
        assert_found(log.verify(), f"entry {index}: its body is {len(body)} bytes, over the 65536")

    def test_a_signed_entry_without_its_fields_is_named(self, log: Copy) -> None:
        """A read signed with the log's key but with no reason: not an entry logwarden
        writes; it counts for nothing."""
        record = AuditRecord(
            log.built.ended_at,
            "read",
            None,
            b'{"at":%d,"by":"alice","kind":"read","what":"transcript"}' % log.built.ended_at,
        )
        audit = AuditLog(log.store, signer=AUDIT_SIGNER, clock=FakeClock(log.built.ended_at))
        index = audit.append([record])
        assert_found(log.verify(), f"entry {index} (read)", "needs the field 'reason'")


class TestRowsTheEntriesAccountFor:
    def test_deleted_receipts_are_named(self, log: Copy) -> None:
        """A session's receipt rows deleted (they go only with their session): named (A8)."""
        sid, index = log.sid("plain"), log.entry("plain", "session")
        assert log.run("DELETE FROM receipts WHERE session_id = :s", s=sid) == 2
        assert_found(log.verify(), f"session {sid}: its receipts differ from entry {index}")

    def test_a_changed_hold_reason_is_named(self, log: Copy) -> None:
        """The reason of a hold rewritten in the row: named with the hold's entry."""
        sid, index = log.sid("held"), log.entry("held", "hold")
        log.run("UPDATE sessions SET hold_reason = 'nothing to see' WHERE id = :s", s=sid)
        assert_found(log.verify(), f"session {sid}: its hold's reason", f"entry {index}")

    def test_a_deleted_session_put_back_is_named(self, fresh: Copy) -> None:
        """A session erased on request, then its rows put back from a backup: named as
        present after the entry that deleted it."""
        sid = fresh.sid("plain")
        backup = session_rows(fresh, sid)
        at = fresh.built.ended_at + ERASABLE_AFTER_MS
        with attach_deployment(fresh.data_dir, fresh.store, at=at) as d:
            erased = d.retention.erase(fresh.built.chats["plain"].receipts[0])
            assert erased is not None and erased.outcome == "erased"
            put_back(fresh, backup)
            result, index = fresh.verify(), index_of(fresh, "delete", sid)
        assert_found(result, f"session {sid} is in the store, but entry {index} deleted it")


class TestRowsOfAnotherType:
    # SQLite only: PostgreSQL keeps only text in a text column.
    @pytest.mark.parametrize("built", ["sqlite"], indirect=True)
    def test_a_session_id_of_bytes_stops_neither_verify_nor_the_purge(
        self, fresh: Copy, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A session row whose id is bytes (SQLite keeps them in a text column): verify
        names it and still checks every other session's rows, and every purge goes on,
        leaving that row alone and saying so (A6)."""
        fresh.run(
            "INSERT INTO sessions (id, started_at, day, interests_sealed) "
            "VALUES (x'41', 1, 0, x'00')"
        )
        sid = fresh.sid("plain")
        fresh.run("UPDATE messages SET slot = 1 - slot WHERE session_id = :s AND seq = 1", s=sid)
        found = [problem.what for problem in fresh.verify().problems]
        assert any("x'41'" in what and "inserted" in what for what in found), found
        assert any(f"message {sid}#1" in what for what in found), found  # checked all the same
        with attach_deployment(fresh.data_dir, fresh.store, at=(DAY0 + 93) * DAY_MS) as d:
            for _ in range(2):
                d.retention.purge()
            assert d.store.session(fresh.sid("plain")) is None  # the purge did its work
        assert "session ids in the store are not text (b'A')" in caplog.text


class TestSessionsReadTogether:
    """Verify reads the rows and entries of many sessions at once (``_SESSIONS_PER_READ``);
    here two at a time, so that the built log's sessions span several reads."""

    @pytest.fixture(autouse=True)
    def two_per_read(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr("logwarden.audit.verify._SESSIONS_PER_READ", 2)

    def test_the_log_as_made_verifies_across_reads(self, log: Copy) -> None:
        result = log.verify()
        assert result.ok, problems(result)

    def test_each_read_names_its_own_sessions(self, log: Copy) -> None:
        """A change in the first session and one in the last (by id): each named, once."""
        ids = sorted(chat.session_id for chat in log.built.chats.values())
        for sid in (ids[0], ids[-1]):
            log.run("UPDATE messages SET slot = 1 - slot WHERE session_id = :s AND seq = 1", s=sid)
        found = [p.what for p in log.verify().problems]
        for sid in (ids[0], ids[-1]):
            named = [what for what in found if what.startswith(f"message {sid}#1: its sender")]
            assert len(named) == 1, found

    def test_a_message_row_naming_another_sessions_entry_is_named(self, log: Copy) -> None:
        """A message row moved to another session, still naming its entry: the entry names
        its own session, so both sessions' accounts are short or wrong."""
        plain, last = log.sid("plain"), log.sid("last")
        log.run(
            "UPDATE messages SET session_id = :t, seq = 99 WHERE session_id = :s AND seq = 1",
            s=plain,
            t=last,
        )
        found = [p.what for p in log.verify().problems]
        assert any(f"message {plain}#1" in what for what in found), found
        assert any(f"{last}#99" in what for what in found), found

    @pytest.mark.parametrize("built", ["sqlite"], indirect=True)  # PostgreSQL keeps types
    def test_a_malformed_row_does_not_hide_the_other_sessions_of_its_read(self, log: Copy) -> None:
        """A row of another type stops the read of its sessions together: each is then read
        alone, the malformed one named and its neighbour's change found all the same."""
        ids = sorted(chat.session_id for chat in log.built.chats.values())
        broken, neighbour = ids[0], ids[1]  # read together, two at a time
        log.run("UPDATE participants SET slot = 'one' WHERE session_id = :s AND slot = 0", s=broken)
        log.run(
            "UPDATE messages SET slot = 1 - slot WHERE session_id = :s AND seq = 1", s=neighbour
        )
        found = [p.what for p in log.verify().problems]
        assert f"session {broken}: a row is malformed (StoreError)" in found, found
        assert any(what.startswith(f"message {neighbour}#1: its sender") for what in found), found


class TestDrillsAndPolicy:
    def test_a_purge_dated_ahead_of_its_signing_is_named(self, fresh: Copy) -> None:
        """A purge as of 400 days ahead run on the live log (the retention service's clock
        ahead, the audit log's real): each destruction records who ran it and when it was
        really made; verify names them dated ahead, and judges them at that time, when the
        reported session was not due (B1)."""
        sid, real = fresh.sid("reported"), fresh.built.ended_at
        with attach_deployment(fresh.data_dir, fresh.store, at=real) as d:
            audit = AuditLog(d.store, signer=AUDIT_SIGNER, clock=d.clock)
            ahead = FakeClock((DAY0 + 400) * DAY_MS)
            retention_over(d.store, d.keystore, ahead, audit=audit).purge(by="mallory")
            assert d.store.session(sid) is None
            result, index = fresh.verify(), index_of(fresh, "delete", sid)
        deleted = parse_body(index, body_of(fresh, index))
        assert (deleted["by"], deleted["made"], deleted["at"]) == ("mallory", real, ahead.now_ms())
        assert_found(result, f"entry {index} (delete of session {sid}) is dated", "dated ahead")
        assert_found(result, f"entry {index} (delete of session {sid}) was not due")

    def test_a_shortened_reported_period_does_not_excuse_destroyed_evidence(
        self, fresh: Copy
    ) -> None:
        """A purge with the reported period cut to one day (after purges that recorded 365)
        deletes the reported session: verify judges it by the 365 days recorded before, and
        notes every shortened period (B1)."""
        sid = fresh.sid("reported")
        short = RetentionPolicy(session_days=1, raw_ip_days=1, metadata_days=1, reported_days=1)
        with attach_deployment(fresh.data_dir, fresh.store, at=(DAY0 + 9) * DAY_MS) as d:
            d.retention.purge()  # the raw addresses of day 0: a keys entry records the policy
            cut = Retention(
                store=d.store,
                keystore=d.keystore,
                audit=AuditLog(d.store, signer=AUDIT_SIGNER, clock=d.clock),
                policy=short,
                clock=d.clock,
                report_window_ms=0,
                kek_rotation_days=7,
            )
            d.at((DAY0 + 10) * DAY_MS)
            cut.purge()
            assert d.store.session(sid) is None
            result, index = fresh.verify(), index_of(fresh, "delete", sid)
        assert_found(
            result,
            f"entry {index} (delete of session {sid}) was not due",
            "judged by the reported period of 365 days",
        )
        assert any("shorter" in n and "session 30 → 1 days" in n for n in result.notes)


# -- what retention destroys is not tampering -----------------------------------------------------


class TestRetention:
    def test_what_retention_destroys_leaves_a_clean_log(self, fresh: Copy) -> None:
        """An erasure, purges past 7, 30 and 90 days and a release that lets expired text go
        delete rows the entries committed to, each recorded first: the log verifies after
        every step, with a new checkpoint consistent with the old ones."""
        chats, signed = fresh.built.chats, len(fresh.built.checkpoints)
        day0 = T0 // DAY_MS
        start = fresh.built.ended_at + ERASABLE_AFTER_MS
        with attach_deployment(fresh.data_dir, fresh.store, at=start) as d:
            audit = AuditLog(d.store, signer=AUDIT_SIGNER, clock=d.clock)

            def assert_clean() -> None:
                nonlocal signed
                assert audit.checkpoint() is not None
                signed += 1
                result = fresh.verify()
                assert result.ok, problems(result)
                assert result.checkpoints == signed

            def messages(role: str) -> int:
                record = d.store.session(chats[role].session_id)
                return -1 if record is None else len(record.messages)

            erased = d.retention.erase(chats["plain"].receipts[0])
            assert erased is not None and erased.outcome == "erased"
            assert d.store.session(chats["plain"].session_id) is None
            assert_clean()

            d.at((day0 + 9) * DAY_MS)  # raw addresses: 7 days
            d.retention.purge()
            record = d.store.session(chats["last"].session_id)
            assert record is not None and not record.addresses
            assert_clean()

            d.at((day0 + 32) * DAY_MS)  # text: 30 days, unless reported or held
            d.retention.purge()
            assert messages("last") == 0
            assert messages("held") == len(chats["held"].texts)
            assert_clean()

            d.at(d.clock.now_ms() + MINUTE_MS)  # so that its checkpoint is kept too
            assert (
                d.retention.release(chats["held"].session_id, reason="order 17 lifted", by="legal")
                is not None
            )
            assert messages("held") == 0  # released past its text's 30 days: destroyed now
            assert_clean()

            d.at((day0 + 93) * DAY_MS)  # metadata: 90 days
            d.retention.purge()
            assert messages("last") == messages("held") == -1
            assert messages("reported") == len(chats["reported"].texts)  # kept 365 days
            assert_clean()


# -- `logwarden audit verify` ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose server hosted the scripted chat, stopped since."""
    data_dir = tmp_path_factory.mktemp("served") / "data"
    with serve_in_process(data_dir, env=TEST_SERVER_ENV) as server:
        run_scripted_chat(server)
    return data_dir


class TestCommand:
    def test_a_clean_log_verifies(self, served: Path) -> None:
        """`audit verify` on the log a server wrote exits 0 and counts its checkpoints."""
        result = logwarden("audit", "verify", "--data-dir", str(served))
        assert result.returncode == 0, result.stderr
        found = re.search(
            r"audit log verified: (\d+) entries, (\d+) signed checkpoints match", result.stdout
        )
        assert found is not None, result.stdout
        assert int(found[1]) > 6 and int(found[2]) >= 1

    def test_a_tampered_log_fails_naming_the_first_problem(
        self, served: Path, tmp_path: Path
    ) -> None:
        """One byte of a message changed in the SQLite file: `audit verify` exits 1 and prints
        the message and its entry as the first problem."""
        data_dir = tmp_path / "data"
        shutil.copytree(served, data_dir)
        with sqlite3.connect(data_dir / "logwarden.db") as db:
            sid, sealed = db.execute(
                "SELECT session_id, text_sealed FROM messages WHERE seq = 3"
            ).fetchone()
            db.execute(
                "UPDATE messages SET text_sealed = ? WHERE session_id = ? AND seq = 3",
                (flip(sealed, at=30), sid),
            )
            (index,) = db.execute(
                "SELECT idx FROM audit_entries WHERE session_id = ? AND kind = 'message' "
                "ORDER BY idx LIMIT 1 OFFSET 2",
                (sid,),
            ).fetchone()
        db.close()
        result = logwarden("audit", "verify", "--data-dir", str(data_dir))
        assert result.returncode == 1, result.stdout
        assert "audit log does NOT verify" in result.stderr
        assert f"first at entry {index}: message {sid}#3 differs from entry {index}" in " ".join(
            result.stderr.split()
        )
