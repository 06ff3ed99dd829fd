"""The audit log in the store, on both backends: appends, proofs from stored nodes, appends
from several processes at once, and signed checkpoints with their publishers."""

from __future__ import annotations

import fcntl
import hashlib
import http.server
import logging
import multiprocessing
import os
import random
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logwarden.audit import checkpoint as notes
from logwarden.audit import merkle
from logwarden.audit.authority import check_signature
from logwarden.audit.entries import SIGNED, entry, parse_body
from logwarden.audit.log import AuditLog, file_publisher, read_alarm, url_publisher, write_if_newer
from logwarden.audit.proofs import verify_consistency, verify_inclusion
from logwarden.audit.verify import verify_log
from logwarden.clock import FakeClock
from logwarden.errors import AuditVerificationError
from logwarden.recorder.recorder import message_entry
from logwarden.store import AuditRecord, MessageRow, SqlStore, WriteBatch, schema

SIGNER = notes.SigningKey.from_seed("log.example/audit-test", seed=bytes(range(32)))
T0 = 1_795_000_000_000


def records(n: int, *, start: int = 0) -> list[AuditRecord]:
    return [
        entry("read", at=T0 + i, session_id=f"{i:032x}", by="test", what="transcript", reason="t")
        for i in range(start, start + n)
    ]


def leaf_hashes(store: SqlStore) -> list[bytes]:
    return [merkle.leaf_hash(row.body) for row in store.audit_entries(0, 1 << 62)]


class TestAppend:
    def test_appends_in_batches_give_the_tree_of_all_entries(self, store: SqlStore) -> None:
        """Entries appended in batches of any size get indexes 0..n-1, and the head's root is
        the RFC 9162 root of their bodies."""
        sizes = [1, 2, 3, 15, 16, 17, 200, 1, 300]
        first = 0
        for size in sizes:
            assert store.append_audit(records(size, start=first)) == first
            first += size
        rows = store.audit_entries(0, first + 10)
        assert [row.idx for row in rows] == list(range(first))
        assert all(row.leaf_hash == merkle.leaf_hash(row.body) for row in rows)
        head = store.audit_head()
        assert head.size == first
        assert head.root == merkle.root(leaf_hashes(store))

    def test_entries_go_in_the_recorders_transaction(self, store: SqlStore) -> None:
        """A WriteBatch's audit records are appended with its rows."""
        store.append_audit(records(5))
        store.write(WriteBatch(audit=records(7, start=5)))
        assert store.audit_head().size == 12
        assert [parse_body(r.idx, r.body)["session"] for r in store.audit_entries(5, 12)] == [
            f"{i:032x}" for i in range(5, 12)
        ]

    def test_an_empty_append_is_refused(self, store: SqlStore) -> None:
        """Appending nothing is a mistake, not a no-op that looks like a record."""
        with pytest.raises(ValueError, match="nothing"):
            store.append_audit([])

    def test_entries_of_a_session_in_order(self, store: SqlStore) -> None:
        """``audit_entries_of`` finds a session's entries through its index, in order."""
        sid = "ab" * 16
        store.append_audit(records(3))
        store.append_audit([entry("flag", at=T0, session_id=sid, by="x", reason=None)])
        store.append_audit(records(2, start=3))
        store.append_audit([entry("hold", at=T0, session_id=sid, by="x", reason="case")])
        assert [(r.idx, r.kind) for r in store.audit_entries_of(sid)] == [(3, "flag"), (6, "hold")]


class TestProofsFromStoredNodes:
    def test_roots_and_proofs_match_the_list_algorithms(self, store: SqlStore) -> None:
        """Roots, inclusion and consistency proofs built from the stored nodes (every fourth
        level) are the RFC's, for sizes across the stored levels, and they verify."""
        store.append_audit(records(300))
        hashes = leaf_hashes(store)
        rng = random.Random(7)
        for size in [1, 2, 15, 16, 17, 255, 256, 257, 300, *rng.sample(range(1, 301), 20)]:
            expected_root = merkle.root(hashes[:size])
            assert store.audit_root(size) == expected_root
            for index in {0, size - 1, rng.randrange(size)}:
                proof = store.audit_proof(index=index, size=size)
                assert proof == merkle.inclusion_proof(hashes[:size], index)
                verify_inclusion(
                    leaf_hash=hashes[index],
                    index=index,
                    tree_size=size,
                    proof=proof,
                    root=expected_root,
                )
            old = rng.randrange(size + 1)
            consistency = store.audit_consistency(old_size=old, new_size=size)
            assert consistency == merkle.consistency_proof(hashes[:size], old)
            if old:
                verify_consistency(
                    old_size=old,
                    new_size=size,
                    old_root=merkle.root(hashes[:old]),
                    new_root=expected_root,
                    proof=consistency,
                )

    def test_only_every_fourth_level_is_stored(self, store: SqlStore) -> None:
        """The node table holds levels 4 and 8 only (one row per 15 entries), and each stored
        hash is the perfect node's."""
        store.append_audit(records(512))
        nodes = store.audit_nodes()
        assert {level for level, _ in nodes} == {4, 8}
        assert len(nodes) == 512 // 16 + 512 // 256
        hashes = leaf_hashes(store)
        assert nodes[8, 1] == merkle.root(hashes[256:512])
        assert nodes[4, 3] == merkle.root(hashes[48:64])


def _append_from_process(url: str, worker: int, batches: int) -> None:
    store = SqlStore.postgres(url) if url.startswith("postgresql") else SqlStore.sqlite(Path(url))
    try:
        for batch in range(batches):
            entries = records(7, start=worker * 10_000 + batch * 7)
            # Both ways in: the recorder's group commit, which moves the head in one statement
            # while nobody else appended since its last, and a single append.
            if batch % 2:
                store.append_audit(entries)
            else:
                store.write(WriteBatch(audit=entries))
    finally:
        store.close()


class TestConcurrentAppends:
    def test_processes_appending_at_once_never_share_an_index(
        self, store: SqlStore, tmp_path: Path, request: pytest.FixtureRequest
    ) -> None:
        """Three processes appending at once to one log, through group commits and single
        appends: every entry gets its own index, none is lost, and the head is the root of them
        all."""
        url = (
            str(tmp_path / "logwarden.db")
            if store._engine.dialect.name == "sqlite"
            else request.getfixturevalue("postgres_url")
        )
        context = multiprocessing.get_context("spawn")
        workers = [
            context.Process(target=_append_from_process, args=(url, worker, 20))
            for worker in range(3)
        ]
        for process in workers:
            process.start()
        for process in workers:
            process.join(timeout=120)
            assert process.exitcode == 0
        rows = store.audit_entries(0, 1 << 62)
        assert [row.idx for row in rows] == list(range(3 * 20 * 7))
        sessions = {parse_body(row.idx, row.body)["session"] for row in rows}
        assert len(sessions) == len(rows)
        assert store.audit_head().root == merkle.root(leaf_hashes(store))


class TestCheckpoints:
    def test_a_checkpoint_signs_the_head_once_per_growth(self, store: SqlStore) -> None:
        """A checkpoint is signed when the log has grown, verifies with the log's key and
        names its size and root; nothing new is signed until the log grows again."""
        clock = FakeClock(T0)
        audit = AuditLog(store, signer=SIGNER, clock=clock)
        assert audit.checkpoint() is None  # an empty log: nothing to sign
        audit.append(records(10))
        note = audit.checkpoint()
        assert note is not None
        signed = notes.verify(note, verifier_key=SIGNER.verifier(), origin=SIGNER.name)
        assert (signed.size, signed.root_hash) == (10, store.audit_head().root)
        assert audit.checkpoint() is None
        audit.append(records(1, start=10))
        again = audit.checkpoint()
        assert again is not None
        assert notes.verify(again, verifier_key=SIGNER.verifier(), origin=SIGNER.name).size == 11
        assert store.audit_head().checkpoint == again

    def test_history_keeps_one_a_minute(self, store: SqlStore) -> None:
        """The history keeps a checkpoint at most once a minute; the head always has the
        newest."""
        clock = FakeClock(T0)
        audit = AuditLog(store, signer=SIGNER, clock=clock)
        for n in range(5):
            audit.append(records(1, start=n))
            audit.checkpoint()
            clock.advance(seconds=20)
        assert [size for size, _at, _note in store.audit_checkpoints()] == [1, 4]
        assert store.audit_head().checkpoint is not None

    def test_a_truncated_log_is_not_signed(self, store: SqlStore, tmp_path: Path) -> None:
        """Once a checkpoint is signed, a head that does not extend it (the last entries
        deleted and the head rolled back) is refused, also by a new process that only has the
        anchor file."""
        anchor = tmp_path / "audit.last"
        audit = AuditLog(store, signer=SIGNER, clock=FakeClock(T0), anchor_path=anchor)
        audit.append(records(20))
        assert audit.checkpoint() is not None
        assert anchor.exists()
        rows = store.audit_entries(0, 18)
        tree = merkle.CompactRange()
        tree.extend(row.leaf_hash for row in rows)
        with store._engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM audit_entries WHERE idx >= 18")
            conn.execute(schema.audit_head.update().values(size=18, frontier=b"".join(tree.hashes)))
        with pytest.raises(AuditVerificationError, match="refusing to sign"):
            audit.checkpoint()
        again = AuditLog(store, signer=SIGNER, clock=FakeClock(T0), anchor_path=anchor)
        store.append_audit(records(5, start=100))  # grown past the old size, on a rewritten base
        with pytest.raises(AuditVerificationError, match="does not extend checkpoint 20"):
            again.checkpoint()

    def test_a_checkpoint_only_moves_forward(self, store: SqlStore) -> None:
        """An older checkpoint saved after a newer one (a slower signer) is not kept as the
        newest."""
        audit = AuditLog(store, signer=SIGNER, clock=FakeClock(T0))
        audit.append(records(3))
        first = audit.checkpoint()
        audit.append(records(2, start=3))
        second = audit.checkpoint()
        assert first is not None and second is not None
        assert not store.save_checkpoint(size=3, at=T0, note=first, history_ms=0)
        assert store.audit_head().checkpoint == second

    def test_publishers_get_every_checkpoint_and_their_failure_is_logged(
        self, store: SqlStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Each new checkpoint goes to every publisher; one that fails is logged and the
        others still get it."""
        path = tmp_path / "checkpoint"

        def broken(_note: bytes) -> None:
            raise OSError("witness unreachable")

        audit = AuditLog(
            store,
            signer=SIGNER,
            clock=FakeClock(T0),
            publishers=[broken, file_publisher(path, verifier=SIGNER.verifier())],
        )
        audit.append(records(4))
        with caplog.at_level(logging.WARNING, logger="logwarden.audit"):
            note = audit.checkpoint()
        assert path.read_bytes() == note
        assert "witness unreachable" in caplog.text

    def test_url_publisher_posts_the_note(self, store: SqlStore) -> None:
        """The URL publisher POSTs the signed note as text to a real HTTP server."""
        received: list[bytes] = []

        class Witness(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                received.append(self.rfile.read(length))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                return None

        server = http.server.HTTPServer(("127.0.0.1", 0), Witness)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/add-checkpoint"
            audit = AuditLog(
                store, signer=SIGNER, clock=FakeClock(T0), publishers=[url_publisher(url)]
            )
            audit.append(records(2))
            note = audit.checkpoint()
            deadline = time.monotonic() + 10
            while not received and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            server.shutdown()
        assert received == [note]

    def test_url_publisher_takes_only_http(self) -> None:
        """A checkpoint URL that is not http(s) is refused when the publisher is made."""
        with pytest.raises(ValueError, match="http"):
            url_publisher("file:///etc/passwd")


def set_head(store: SqlStore, **values: object) -> None:
    """What an attacker with the database does to the head row."""
    with store._engine.begin() as conn:
        conn.execute(schema.audit_head.update().values(**values))


class TestWitnessesCannotBeSilenced:
    def test_a_marker_ahead_does_not_stop_checkpoints(
        self, store: SqlStore, tmp_path: Path
    ) -> None:
        """The database's marker of its newest checkpoint set far ahead of the log: the next
        checkpoint is still signed, saved and published to the witness file."""
        path = tmp_path / "witness"
        publisher = file_publisher(path, verifier=SIGNER.verifier())
        audit = AuditLog(store, signer=SIGNER, clock=FakeClock(T0), publishers=[publisher])
        audit.append(records(3))
        assert audit.checkpoint() is not None
        set_head(store, checkpoint_size=10**15)
        audit.append(records(2, start=3))
        note = audit.checkpoint()
        assert note is not None
        assert notes.verify(note, verifier_key=SIGNER.verifier(), origin=SIGNER.name).size == 5
        assert path.read_bytes() == note
        assert store.audit_head().checkpoint == note
        assert store.checkpoint_marker() == 5

    def test_a_checkpoint_the_database_refuses_is_still_published(
        self, store: SqlStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A marker set just ahead of the next size (within the log): the database keeps the
        older checkpoint, but the witness gets the new one and the signer says why."""
        path = tmp_path / "witness"
        publisher = file_publisher(path, verifier=SIGNER.verifier())
        audit = AuditLog(store, signer=SIGNER, clock=FakeClock(T0), publishers=[publisher])
        audit.append(records(3))
        first = audit.checkpoint()
        audit.append(records(2, start=3))
        set_head(store, checkpoint_size=5)  # as if a size-5 checkpoint were saved
        with caplog.at_level(logging.ERROR, logger="logwarden.audit"):
            note = audit.checkpoint()
            assert note is not None and path.read_bytes() == note
            assert store.audit_head().checkpoint == first  # the database did not take it
            audit.append(records(1, start=5))
            assert audit.checkpoint() is not None
        assert "marker" in caplog.text and "altered" in caplog.text

    def test_the_signer_logs_a_rolled_back_checkpoint(
        self, store: SqlStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The database's newest checkpoint put back to an older genuine one (its marker
        with it): the signer, which kept the newer one in its anchor file, logs an error; a
        fresh process the same."""
        anchor = tmp_path / "audit.last"
        audit = AuditLog(store, signer=SIGNER, clock=FakeClock(T0), anchor_path=anchor)
        audit.append(records(3))
        older = audit.checkpoint()
        audit.append(records(2, start=3))
        assert audit.checkpoint() is not None
        set_head(store, checkpoint=older, checkpoint_size=3)
        again = AuditLog(store, signer=SIGNER, clock=FakeClock(T0), anchor_path=anchor)
        with caplog.at_level(logging.ERROR, logger="logwarden.audit"):
            assert again.checkpoint() is None  # nothing new to sign
        assert "rolled back" in caplog.text
        newest = again.newest()
        assert newest is not None and newest.checkpoint.size == 5

    def test_a_witness_file_never_goes_back(self, store: SqlStore, tmp_path: Path) -> None:
        """Two signers finishing out of order: the file keeps the larger checkpoint."""
        audit = AuditLog(store, signer=SIGNER, clock=FakeClock(T0))
        audit.append(records(3))
        older = audit.checkpoint()
        audit.append(records(2, start=3))
        newer = audit.checkpoint()
        assert older is not None and newer is not None
        path = tmp_path / "witness"
        publish = file_publisher(path, verifier=SIGNER.verifier())
        publish(newer)
        publish(older)
        assert path.read_bytes() == newer

    def test_a_forged_witness_file_is_replaced(self, store: SqlStore, tmp_path: Path) -> None:
        """A file holding a huge checkpoint signed by another key does not stop the real
        ones from being written."""
        audit = AuditLog(store, signer=SIGNER, clock=FakeClock(T0))
        audit.append(records(3))
        note = audit.checkpoint()
        assert note is not None
        path = tmp_path / "witness"
        other = notes.SigningKey.from_seed(SIGNER.name, seed=bytes(range(1, 33)))
        path.write_bytes(notes.sign(notes.Checkpoint(SIGNER.name, 10**9, bytes(32)), other))
        assert write_if_newer(path, note, verifier=SIGNER.verifier())
        assert path.read_bytes() == note


class TestTheAlarm:
    """A refusal to sign is tamper evidence that outlives the process: the signer stops until
    an operator clears it with a reason, which the log records (review 7, A2)."""

    def signer(self, store: SqlStore, tmp_path: Path) -> AuditLog:
        return AuditLog(
            store,
            signer=SIGNER,
            clock=FakeClock(T0),
            anchor_path=tmp_path / "audit.last",
            alarm_path=tmp_path / "audit.alarm",
        )

    def corrupt_stored_hashes(self, store: SqlStore) -> None:
        """What freezes a signer that trusts stored hashes: every leaf hash and node
        replaced by random bytes (the bodies untouched)."""
        with store._engine.begin() as conn:
            for row in store.audit_entries(0, 1 << 62):
                conn.execute(
                    schema.audit_entries.update()
                    .where(schema.audit_entries.c.idx == row.idx)
                    .values(leaf_hash=random.randbytes(32))
                )
            conn.execute(schema.audit_nodes.update().values(hash=random.randbytes(32)))

    def test_the_signer_signs_the_bodies_not_the_stored_hashes(
        self, store: SqlStore, tmp_path: Path
    ) -> None:
        """Stored leaf hashes and nodes overwritten: the running signer, which keeps its own
        tree, still signs the tree of the entries' bodies, so what is appended meanwhile is
        covered by a checkpoint within the second."""
        audit = self.signer(store, tmp_path)
        audit.append(records(40))
        assert audit.checkpoint() is not None
        self.corrupt_stored_hashes(store)
        audit.append(records(10, start=40))
        note = audit.checkpoint()
        assert note is not None
        signed = notes.verify(note, verifier_key=SIGNER.verifier(), origin=SIGNER.name)
        bodies = [merkle.leaf_hash(row.body) for row in store.audit_entries(0, 1 << 62)]
        assert (signed.size, signed.root_hash) == (50, merkle.root(bodies))

    def test_a_refusal_stands_until_an_operator_clears_it(
        self, store: SqlStore, tmp_path: Path
    ) -> None:
        """A new process that cannot show the log extends the last checkpoint (the stored
        tree below it altered) refuses and raises the alarm. Putting the tree back does not
        let any signer sign again; `audit verify` names the alarm; clearing it records who
        and why, and signing resumes."""
        audit = self.signer(store, tmp_path)
        audit.append(records(40))
        assert audit.checkpoint() is not None
        nodes = store.audit_nodes()
        with store._engine.begin() as conn:
            conn.execute(schema.audit_nodes.update().values(hash=bytes(32)))
        audit.append(records(5, start=40))
        fresh = self.signer(store, tmp_path)
        with pytest.raises(AuditVerificationError, match="does not extend checkpoint 40"):
            fresh.checkpoint()
        alarm = read_alarm(tmp_path / "audit.alarm")
        assert alarm is not None and "does not extend checkpoint 40" in alarm
        with store._engine.begin() as conn:  # the attacker puts the tree back
            for (level, index), h in nodes.items():
                n = schema.audit_nodes
                conn.execute(n.update().where(n.c.level == level, n.c.idx == index).values(hash=h))
        for signer in (audit, fresh, self.signer(store, tmp_path)):
            with pytest.raises(AuditVerificationError, match="signing is stopped"):
                signer.checkpoint()
        result = verify_log(store, verifier=SIGNER.verifier(), origin=SIGNER.name, alarm=alarm)
        assert any("the signer stopped signing" in p.what for p in result.problems)
        index = fresh.clear_alarm(by="carol", reason="ticket 12: nodes restored from backup")
        assert read_alarm(tmp_path / "audit.alarm") is None
        assert fresh.checkpoint() is not None
        resumed = parse_body(index, store.audit_entries(index, index + 1)[0].body)
        check_signature(resumed, SIGNER.verifier())
        assert resumed["by"] == "carol" and "does not extend" in resumed["alarm"]["reason"]
        result = verify_log(store, verifier=SIGNER.verifier(), origin=SIGNER.name)
        assert result.ok, [p.what for p in result.problems]
        assert any("carol let the signer sign again" in n for n in result.notes)

    def test_there_is_nothing_to_clear_without_an_alarm(
        self, store: SqlStore, tmp_path: Path
    ) -> None:
        with pytest.raises(AuditVerificationError, match="no alarm"):
            self.signer(store, tmp_path).clear_alarm(by="carol", reason="x")


class TestOneSignerAtATime:
    def test_a_checkpoint_holds_the_anchor_lock_throughout(
        self, store: SqlStore, tmp_path: Path
    ) -> None:
        """While another process holds the anchor file's lock, a signer neither signs nor
        saves anything: reading the last checkpoint, signing, saving and anchoring are one
        step across processes, so two never sign two trees of one size (review 7, C4)."""
        anchor = tmp_path / "audit.last"
        audit = AuditLog(store, signer=SIGNER, clock=FakeClock(T0), anchor_path=anchor)
        audit.append(records(3))
        assert audit.checkpoint() is not None
        audit.append(records(2, start=3))
        done: list[bytes | None] = []
        fd = os.open(tmp_path / ".audit.last.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            signing = threading.Thread(target=lambda: done.append(audit.checkpoint()))
            signing.start()
            signing.join(timeout=0.5)
            assert signing.is_alive() and not done
            head = store.audit_head().checkpoint
            assert head is not None
            assert notes.verify(head, verifier_key=SIGNER.verifier(), origin=SIGNER.name).size == 3
        finally:
            os.close(fd)  # releases the lock
        signing.join(timeout=10)
        assert done and done[0] is not None
        assert store.checkpoint_marker() == 5


class TestHistoryPace:
    def test_the_history_keeps_one_a_minute_whoever_signs(self, store: SqlStore) -> None:
        """Two signers (the server and a CLI command, each an AuditLog of its own) signing
        within one minute add one checkpoint to the history between them."""
        clock = FakeClock(T0)
        server = AuditLog(store, signer=SIGNER, clock=clock)
        command = AuditLog(store, signer=SIGNER, clock=clock)
        for n, audit in enumerate([server, command, server, command, command]):
            audit.append(records(1, start=n))
            assert audit.checkpoint() is not None
            clock.advance(seconds=10)
        assert [size for size, _at, _note in store.audit_checkpoints()] == [1]
        clock.advance(seconds=60)
        server.append(records(1, start=10))
        server.checkpoint()
        assert [size for size, _at, _note in store.audit_checkpoints()] == [1, 6]


class TestAuthorisingEntries:
    @pytest.mark.parametrize("kind", sorted(SIGNED))
    def test_every_entry_but_the_recorders_bulk_is_signed(self, store: SqlStore, kind: str) -> None:
        """Appended through the AuditLog, every entry but a session, message or end carries
        a signature by the log's key over its body, and when it was made; those carry none."""
        audit = AuditLog(store, signer=SIGNER, clock=FakeClock(T0 + 5))
        bulk = entry("end", at=T0, session_id="ab" * 16, reason="stopped", by=None, messages=0)
        audit.append([entry(kind, at=T0, session_id="ab" * 16, by="test"), bulk])
        signed, plain = (parse_body(r.idx, r.body) for r in store.audit_entries(0, 2))
        check_signature(signed, SIGNER.verifier())
        assert signed["made"] == T0 + 5
        assert "sig" not in plain and "made" not in plain
        other = notes.SigningKey.from_seed(SIGNER.name, seed=bytes(range(1, 33)))
        with pytest.raises(AuditVerificationError, match="not the log's"):
            check_signature(signed, other.verifier())
        with pytest.raises(AuditVerificationError, match="does not verify"):
            check_signature({**signed, "by": "someone else"}, SIGNER.verifier())


class TestEntries:
    def test_an_unknown_kind_is_refused(self) -> None:
        """Only the documented kinds of entry can be made."""
        with pytest.raises(ValueError, match="unknown audit entry kind"):
            entry("coffee", at=T0)

    @pytest.mark.parametrize(
        "body",
        [
            b"not json",
            b"[1, 2]",
            b'{"at":1,"kind":"nope"}',
            b'{"kind":"read","at":1}',  # keys out of order: not canonical
            b'{"at":"1","kind":"read"}',
            b'{"at":1, "kind":"read"}',
            b"\xff\xfe",
        ],
    )
    def test_a_body_that_is_not_a_canonical_entry_is_named(self, body: bytes) -> None:
        """Reading back a body that is not canonical JSON of a known kind fails, naming the
        entry."""
        with pytest.raises(AuditVerificationError, match="entry 9"):
            parse_body(9, body)


class TestMessageEntries:
    @given(
        seq=st.integers(min_value=1, max_value=2**31 - 1),
        slot=st.integers(min_value=0, max_value=1),
        at=st.integers(min_value=0, max_value=2**53),
        sealed=st.binary(max_size=64),
        session=st.sampled_from(["ab" * 16, "0" * 32, "not/hex id", "é"]),
    )
    def test_the_recorders_fast_form_is_the_canonical_one(
        self, seq: int, slot: int, at: int, sealed: bytes, session: str
    ) -> None:
        """The recorder's hand-written message entry is byte for byte what ``entry`` makes,
        so that anyone recomputing a leaf from `audit show` gets the same hash."""
        commitment = bytes(range(32))
        row = MessageRow(session, seq, 0, slot, at, sealed)
        fast = message_entry(row, commitment)
        general = entry(
            "message",
            at=at,
            session_id=session,
            seq=seq,
            slot=slot,
            sealed=hashlib.sha256(sealed).hexdigest(),
            text=commitment.hex(),
        )
        assert fast == general
