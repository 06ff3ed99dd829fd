"""The audit commands as an operator runs them, against a data directory a real server wrote:
init makes the signing key, reads and actions leave entries, checkpoints are published and
can be checked for consistency, and the docs' example checkpoint is real."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from logwarden.audit import checkpoint as notes
from logwarden.audit import merkle
from logwarden.store import SqlStore
from logwarden.testing import LiveServer, serve_in_process
from tests.conftest import TEST_SERVER_ENV
from tests.recorder.test_session_log import run_scripted_chat
from tests.test_cli import logwarden

ROOT = Path(__file__).resolve().parents[2]


def run(server: LiveServer, *args: str, operator: str = "tester"):  # type: ignore[no-untyped-def]
    return logwarden(
        *args, "--data-dir", str(server.data_dir), env={"LOGWARDEN_OPERATOR": operator}
    )


def tail(server: LiveServer, count: int = 50) -> list[dict[str, Any]]:
    """The newest entries, read straight from the log (cheaper than a command per check)."""
    store = SqlStore.sqlite(server.data_dir / "logwarden.db")
    try:
        size = store.audit_head().size
        return [json.loads(row.body) for row in store.audit_entries(max(0, size - count), size)]
    finally:
        store.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[LiveServer, str, Path]:
    """A server that published checkpoints to a file while hosting the scripted chat; stopped.
    Returns the server, the chat's session id and the checkpoint file."""
    data_dir = tmp_path_factory.mktemp("audit") / "data"
    published = data_dir.parent / "published-checkpoint"
    env = {
        **TEST_SERVER_ENV,
        "LOGWARDEN_AUDIT__CHECKPOINT_FILE": str(published),
        "LOGWARDEN_AUDIT__CHECKPOINT_INTERVAL_MS": "50",
    }
    with serve_in_process(data_dir, env=env) as server:
        run_scripted_chat(server)
        deadline = time.monotonic() + 10
        while not published.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    listed = logwarden("sessions", "list", "--json", "--data-dir", str(data_dir))
    session_id = json.loads(listed.stdout.splitlines()[0])["id"]
    return server, session_id, published


class TestInit:
    def test_init_makes_an_owner_only_signing_key_and_a_public_key(
        self, served: tuple[LiveServer, str, Path]
    ) -> None:
        """`init` made keys/audit.key (0600) and audit.pub, and `audit key` prints the latter."""
        server, _, _ = served
        key_file = server.data_dir / "keys" / "audit.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        public = (server.data_dir / "audit.pub").read_text().strip()
        name = notes.VerifierKey.parse(public).name
        assert re.fullmatch(r"[A-Za-z0-9.-]+/logwarden/[0-9a-f]{16}", name), name
        assert run(server, "audit", "key").stdout.strip() == public

    def test_each_log_gets_an_origin_of_its_own(self, tmp_path: Path) -> None:
        """Two data directories made on one host name their logs differently (C2SP: an origin
        identifies one log), and `init` again keeps the name the key was made with."""
        names = []
        for n in (1, 2):
            data_dir = tmp_path / f"data{n}"
            assert logwarden("init", "--data-dir", str(data_dir)).returncode == 0
            names.append((data_dir / "audit.pub").read_text().split("+")[0])
        assert names[0] != names[1]
        assert names[0].rsplit("/", 1)[0] == names[1].rsplit("/", 1)[0]  # the same host
        assert logwarden("init", "--data-dir", str(tmp_path / "data1")).returncode == 0
        assert (tmp_path / "data1" / "audit.pub").read_text().split("+")[0] == names[0]

    def test_a_configured_origin_is_kept(self, tmp_path: Path) -> None:
        """An origin set in the configuration is the log's name, as given."""
        data_dir = tmp_path / "data"
        env = {"LOGWARDEN_AUDIT__ORIGIN": "chat.example.org/logwarden"}
        assert logwarden("init", "--data-dir", str(data_dir), env=env).returncode == 0
        public = (data_dir / "audit.pub").read_text().strip()
        assert notes.VerifierKey.parse(public).name == "chat.example.org/logwarden"


class TestWhatTheServerRecords:
    def test_the_chat_is_in_the_log_and_verifies(
        self, served: tuple[LiveServer, str, Path]
    ) -> None:
        """The session, its messages, the report and the end are entries, in that order, and
        `audit verify` passes."""
        server, session_id, _ = served
        kinds = [e["kind"] for e in tail(server) if e.get("session") == session_id]
        assert kinds[:1] == ["session"] and kinds.count("message") == 6
        assert kinds.index("report") < kinds.index("end")
        result = run(server, "audit", "verify")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "audit log verified" in result.stdout

    def test_the_server_published_a_signed_checkpoint(
        self, served: tuple[LiveServer, str, Path]
    ) -> None:
        """The checkpoint file holds a checkpoint signed with the log's key covering the chat."""
        server, _, published = served
        verifier = notes.VerifierKey.parse((server.data_dir / "audit.pub").read_text().strip())
        signed = notes.verify(published.read_bytes(), verifier_key=verifier, origin=verifier.name)
        assert signed.size >= 9  # session, six messages, report, end


class TestTail:
    def test_tail_prints_the_newest_entries(self, served: tuple[LiveServer, str, Path]) -> None:
        """`audit tail --json` prints the newest entries as stored, oldest first; the table
        form names their kinds."""
        server, _, _ = served
        result = run(server, "audit", "tail", "-n", "3", "--json")
        assert result.returncode == 0, result.stderr
        printed = [json.loads(line)["entry"] for line in result.stdout.splitlines()]
        assert printed == tail(server, 3)
        table = run(server, "audit", "tail", "-n", "3")
        assert all(entry["kind"] in table.stdout for entry in printed)


class TestReadsAndActions:
    def test_reading_a_transcript_needs_a_reason(
        self, served: tuple[LiveServer, str, Path]
    ) -> None:
        """`sessions show` without --reason is a usage error and records nothing."""
        server, session_id, _ = served
        before = len(tail(server, 1000))
        result = run(server, "sessions", "show", session_id)
        assert result.returncode == 2
        assert len(tail(server, 1000)) == before

    def test_a_read_is_recorded_with_who_and_why(
        self, served: tuple[LiveServer, str, Path]
    ) -> None:
        """A read leaves an entry naming the operator, the session and the reason, covered by
        a signed checkpoint before the command returns."""
        server, session_id, _ = served
        result = run(
            server, "sessions", "show", session_id, "--reason", "ticket T-100", operator="dana"
        )
        assert result.returncode == 0, result.stderr
        last = tail(server, 1)[0]
        assert last["kind"] == "read"
        assert (last["session"], last["by"], last["reason"]) == (session_id, "dana", "ticket T-100")
        assert (
            "included in checkpoint"
            in run(server, "audit", "show", str(len(tail(server, 1000)) - 1)).stdout
        )

    def test_hold_release_and_flag_are_recorded(self, served: tuple[LiveServer, str, Path]) -> None:
        """Each moderation command leaves its entry, and the log still verifies."""
        server, session_id, _ = served
        assert run(server, "sessions", "hold", session_id, "--reason", "order 9").returncode == 0
        assert (
            run(server, "sessions", "release", session_id, "--reason", "order 9 lifted").returncode
            == 0
        )
        flagged = run(server, "sessions", "flag", session_id, "--reason", "review R-3")
        assert flagged.returncode == 0, flagged.stderr
        entries = list(tail(server, 3))
        assert [e["kind"] for e in entries] == ["hold", "release", "flag"]
        assert entries[0]["reason"] == "order 9" and entries[2]["reason"] == "review R-3"
        assert all(e["by"] == "tester" for e in entries)
        assert run(server, "audit", "verify").returncode == 0

    @pytest.mark.parametrize("reason", ["", "   ", "x" * 501, "line\nbreak"])
    def test_a_bad_reason_is_refused(
        self, served: tuple[LiveServer, str, Path], reason: str
    ) -> None:
        """An empty, blank, overlong or multi-line reason is a usage error."""
        server, session_id, _ = served
        result = run(server, "sessions", "show", session_id, "--reason", reason)
        assert result.returncode == 2
        assert "--reason must be" in result.stderr


class TestCheckpointsAndConsistency:
    def test_a_later_checkpoint_is_consistent_with_an_earlier_one(
        self, served: tuple[LiveServer, str, Path], tmp_path: Path
    ) -> None:
        """`audit check-consistency OLD NEW` proves NEW extends OLD; reversed, it refuses."""
        server, session_id, published = served
        old = tmp_path / "old"
        old.write_bytes(published.read_bytes())
        run(server, "sessions", "show", session_id, "--reason", "ticket T-101")
        new = tmp_path / "new"
        assert run(server, "audit", "checkpoint", "-o", str(new)).returncode == 0
        ok = run(server, "audit", "check-consistency", str(old), str(new))
        assert ok.returncode == 0, ok.stderr
        assert "consistent" in ok.stdout
        backwards = run(server, "audit", "check-consistency", str(new), str(old))
        assert backwards.returncode == 1

    def test_a_checkpoint_of_another_log_does_not_verify(
        self, served: tuple[LiveServer, str, Path], tmp_path: Path
    ) -> None:
        """A checkpoint signed by another key with the same name is refused by name."""
        server, _, published = served
        name = notes.VerifierKey.parse((server.data_dir / "audit.pub").read_text().strip()).name
        forged_body = notes.Checkpoint.parse(published.read_bytes().split(b"\n\n")[0] + b"\n")
        forged = tmp_path / "forged"
        forged.write_bytes(notes.sign(forged_body, notes.SigningKey.generate(name)))
        result = run(server, "audit", "check-consistency", str(published), str(forged))
        assert result.returncode == 1
        assert "signature" in result.stderr or "key" in result.stderr

    def test_an_entry_is_shown_with_its_proof(self, served: tuple[LiveServer, str, Path]) -> None:
        """`audit show 0` prints the entry's body, leaf hash and inclusion proof; an entry past
        the end is an error."""
        server, _, _ = served
        shown = run(server, "audit", "show", "0")
        assert shown.returncode == 0, shown.stderr
        assert '"kind":"session"' in shown.stdout
        assert re.search(r"leaf hash [0-9a-f]{64}", shown.stdout)
        missing = run(server, "audit", "show", "999999")
        assert missing.returncode == 1 and "no entry 999999" in missing.stderr


class TestTranscripts:
    def test_export_then_verify_offline(
        self, served: tuple[LiveServer, str, Path], tmp_path: Path
    ) -> None:
        """An exported package verifies offline with the published key, and the export is an
        entry; exporting over an existing file is refused."""
        server, session_id, _ = served
        package = tmp_path / "package.zip"
        exported = run(
            server, "export-transcript", session_id, "-o", str(package), "--reason", "case 12"
        )
        assert exported.returncode == 0, exported.stderr
        assert tail(server, 1)[0]["kind"] == "export"
        key = str(server.data_dir / "audit.pub")
        checked = logwarden("verify-transcript", str(package), "--key", key)
        assert checked.returncode == 0, checked.stderr
        assert f"session {session_id}, 6 messages" in checked.stdout
        again = run(server, "export-transcript", session_id, "-o", str(package), "--reason", "x")
        assert again.returncode != 0 and "exists" in again.stderr


class TestDocs:
    def test_the_example_checkpoint_in_the_docs_verifies(self) -> None:
        """docs/audit.md's example checkpoint is real: it verifies with the key it names."""
        text = (ROOT / "docs" / "audit.md").read_text()
        block = text.split("```\nchat.example.org/logwarden\n", 1)[1].split("```", 1)[0]
        note = ("chat.example.org/logwarden\n" + block).encode()
        key = re.search(r"`(chat\.example\.org/logwarden\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+)`", text)
        assert key is not None
        signed = notes.verify(note, verifier_key=key.group(1), origin="chat.example.org/logwarden")
        assert signed.size == 4213


# -- hostile input and a tampered log: clear answers, never a traceback ------------------------


@pytest.fixture
def copied(served: tuple[LiveServer, str, Path], tmp_path: Path) -> Path:
    """A copy of the served data directory, for a drill to tamper with."""
    server, _, _ = served
    data_dir = tmp_path / "data"
    shutil.copytree(server.data_dir, data_dir)
    return data_dir


# Wide enough that Rich does not wrap a path inside an error message.
WIDE = {"COLUMNS": "500"}


def on(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return logwarden(
        *args, "--data-dir", str(data_dir), env={"LOGWARDEN_OPERATOR": "tester", **WIDE}
    )


def sql(data_dir: Path, statement: str, *params: object) -> list[Any]:
    with sqlite3.connect(data_dir / "logwarden.db") as db:
        found = db.execute(statement, params).fetchall()
    db.close()
    return found


def size_of(data_dir: Path) -> int:
    (size,) = sql(data_dir, "SELECT size FROM audit_head")[0]
    return int(size)


def clean(result: subprocess.CompletedProcess[str]) -> str:
    """stderr as one line, without the frame Rich draws around usage errors, after checking
    that the command did not crash."""
    assert "Traceback" not in result.stderr, result.stderr
    return " ".join(result.stderr.replace("│", " ").split())


class TestCheckpointCommand:
    def test_a_forged_newest_checkpoint_is_not_printed(self, copied: Path, tmp_path: Path) -> None:
        """The database's newest checkpoint replaced by one another key signed: `audit
        checkpoint` prints and writes a checkpoint that verifies with the log's key, never the
        forged one."""
        verifier = notes.VerifierKey.parse((copied / "audit.pub").read_text().strip())
        (size,) = sql(copied, "SELECT size FROM audit_head")[0]
        forged = notes.sign(
            notes.Checkpoint(verifier.name, size, bytes(32)),
            notes.SigningKey.generate(verifier.name),
        )
        sql(copied, "UPDATE audit_head SET checkpoint = ?", forged)
        written = tmp_path / "witness.ckpt"
        result = on(copied, "audit", "checkpoint", "-o", str(written))
        assert result.returncode == 0, result.stderr
        assert result.stdout.encode() == written.read_bytes() != forged
        signed = notes.verify(written.read_bytes(), verifier_key=verifier, origin=verifier.name)
        assert signed.size == size

    def test_a_log_that_does_not_extend_its_checkpoint_is_refused(
        self, copied: Path, tmp_path: Path
    ) -> None:
        """The last entries cut off and the head rolled back with them: `audit checkpoint`
        prints nothing, writes nothing and exits 1."""
        size = size_of(copied)
        keep = size - 3
        leaves = [
            row[0]
            for row in sql(
                copied, "SELECT leaf_hash FROM audit_entries WHERE idx < ? ORDER BY idx", keep
            )
        ]
        tree = merkle.CompactRange()
        tree.extend(leaves)
        sql(copied, "DELETE FROM audit_entries WHERE idx >= ?", keep)
        sql(copied, "UPDATE audit_head SET size = ?, frontier = ?", keep, b"".join(tree.hashes))
        written = tmp_path / "witness.ckpt"
        result = on(copied, "audit", "checkpoint", "-o", str(written))
        assert result.returncode == 1
        assert "refusing to sign" in clean(result)
        assert result.stdout == "" and not written.exists()

    @pytest.mark.parametrize("where", ["no-such-dir/c.txt", "a-directory"])
    def test_an_output_that_cannot_be_written_is_a_usage_error(
        self, copied: Path, tmp_path: Path, where: str
    ) -> None:
        """`-o` into a missing directory, or onto a directory: exit 2, naming the path."""
        (tmp_path / "a-directory").mkdir()
        result = on(copied, "audit", "checkpoint", "-o", str(tmp_path / where))
        assert result.returncode == 2
        assert "directory" in clean(result)


class TestShowChecksTheEntry:
    def test_an_altered_entry_is_not_shown_as_included(self, copied: Path) -> None:
        """An entry's body rewritten with its leaf hash: `audit show` proves the body shown
        against the signed checkpoint, says it does not match, and exits 1."""
        index, body = sql(copied, "SELECT idx, body FROM audit_entries WHERE kind = 'end'")[0]
        changed = bytes(body).replace(b'"reason":"', b'"reason":"x', 1)
        sql(
            copied,
            "UPDATE audit_entries SET body = ?, leaf_hash = ? WHERE idx = ?",
            changed,
            merkle.leaf_hash(changed),
            index,
        )
        result = on(copied, "audit", "show", str(index))
        assert result.returncode == 1
        assert f"entry {index} does NOT match the signed checkpoint" in clean(result)

    def test_an_untouched_entry_is_proven(self, copied: Path) -> None:
        """`audit show` says the proof verifies for an entry nobody touched."""
        result = on(copied, "audit", "show", "1")
        assert result.returncode == 0, result.stderr
        assert "the proof verifies: this is entry 1" in " ".join(result.stdout.split())

    def test_an_entry_number_past_any_integer_is_no_entry(self, copied: Path) -> None:
        """The largest 64-bit number: 'no entry', exit 1, no overflow."""
        result = on(copied, "audit", "show", str(2**63 - 1))
        assert result.returncode == 1
        assert f"no entry {2**63 - 1}" in clean(result)


class TestDamage:
    def test_a_damaged_frontier_is_an_error_not_a_crash(self, copied: Path) -> None:
        """The head's frontier overwritten: `audit verify` names it (exit 1); `tail`, `show`
        and `checkpoint` say the head is damaged (exit 1)."""
        sql(copied, "UPDATE audit_head SET frontier = ?", b"\x00")
        verified = on(copied, "audit", "verify")
        assert verified.returncode == 1
        assert "the audit log's head is damaged" in " ".join(verified.stdout.split()) + clean(
            verified
        )
        for args in (["tail"], ["show", "0"], ["checkpoint"]):
            result = on(copied, "audit", *args)
            assert result.returncode == 1, args
            assert "head is damaged" in clean(result), args

    def test_a_body_that_is_not_json_is_shown_not_crashed_on(self, copied: Path) -> None:
        """An entry body replaced by bytes that are not JSON: `audit tail` and `tail --json`
        show it as not an audit entry, with a warning."""
        last = size_of(copied) - 1
        sql(copied, "UPDATE audit_entries SET body = ? WHERE idx = ?", b"\xff\x00", last)
        table = on(copied, "audit", "tail", "-n", "2")
        assert table.returncode == 0
        assert f"entry {last} is not an audit entry" in clean(table)
        lines = on(copied, "audit", "tail", "-n", "2", "--json")
        assert lines.returncode == 0, lines.stderr
        shown = [json.loads(line) for line in lines.stdout.splitlines()]
        assert shown[-1] == {"index": last, "unreadable": "\\xff\x00"}
        assert "entry" in shown[0]

    def test_checkpoint_files_that_are_not_files_are_refused(
        self, copied: Path, tmp_path: Path
    ) -> None:
        """`--checkpoint` a directory: a usage error; /dev/zero: refused after 64 KiB."""
        directory = on(copied, "audit", "verify", "--checkpoint", str(tmp_path))
        assert directory.returncode == 2
        assert "Is a directory" in clean(directory)
        endless = on(copied, "audit", "verify", "--checkpoint", "/dev/zero")
        assert endless.returncode == 1
        assert "more than 64 KiB: not a checkpoint" in clean(endless)


class TestRowsOfAnotherType:
    """SQLite keeps whatever type a statement gives a value, so a changed row can hold text
    where a time belongs or bytes where a name does: the commands name the table, the row and
    the column (exit 1), never a traceback."""

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ("at = 'abc'", "its at holds text where an integer belongs"),
            ("kind = x'41'", "its kind holds bytes where text belongs"),
            ("session_id = x'41'", "its session_id holds bytes where text or NULL belongs"),
        ],
        ids=["at-text", "kind-bytes", "session-bytes"],
    )
    def test_an_entry_of_another_type_is_named(
        self, copied: Path, change: str, message: str
    ) -> None:
        """An entry's time as text (a TypeError in the time's formatting before), its kind or
        session as bytes (Rich could not render them): `audit tail` (table and JSON),
        `audit show` and `audit verify` each name the entry and the column."""
        last = size_of(copied) - 1
        sql(copied, f"UPDATE audit_entries SET {change} WHERE idx = ?", last)  # noqa: S608
        for args in (
            ["audit", "tail", "-n", "3"],
            ["audit", "tail", "-n", "3", "--json"],
            ["audit", "show", str(last)],
            ["audit", "verify"],
        ):
            result = on(copied, *args)
            assert f"audit_entries row (idx {last}): {message}" in clean(result), args
            assert result.returncode == 1, args

    def test_a_session_id_of_bytes_is_named(self, copied: Path) -> None:
        """A session row inserted with an id of bytes: `sessions list` (table and JSON) and
        `audit verify` name it; before, Rich could not render it, JSON could not serialise
        it, and verify could not sort it among the others."""
        sql(
            copied,
            "INSERT INTO sessions (id, started_at, day, interests_sealed) "
            "VALUES (x'41', 1, 0, x'00')",
        )
        for args in (["sessions", "list"], ["sessions", "list", "--json"], ["audit", "verify"]):
            result = on(copied, *args)
            assert "sessions row (id x'41'): its id holds bytes where text belongs" in clean(
                result
            ), args
            assert result.returncode == 1, args

    def test_a_body_cast_to_text_is_judged_as_its_bytes(self, copied: Path) -> None:
        """An entry's body cast to text holds the same bytes: `audit show` proves it (a
        TypeError before), and `audit verify` finds the log intact."""
        last = size_of(copied) - 1
        sql(copied, "UPDATE audit_entries SET body = CAST(body AS TEXT) WHERE idx = ?", last)
        assert sql(copied, "SELECT typeof(body) FROM audit_entries WHERE idx = ?", last) == [
            ("text",)
        ]
        shown = on(copied, "audit", "show", str(last))
        assert shown.returncode == 0, clean(shown)
        assert "the proof verifies" in shown.stdout
        verified = on(copied, "audit", "verify")
        assert verified.returncode == 0, clean(verified)

    def test_a_key_too_long_for_a_path_is_a_malformed_key(self, copied: Path) -> None:
        """`audit verify --key` with 300 characters and no "+": a malformed key (exit 1), not
        OSError "File name too long" from looking for a file of that name."""
        result = on(copied, "audit", "verify", "--key", "k" * 300)
        assert "verifier key is not of the form" in clean(result)
        assert result.returncode == 1


class TestExportOrder:
    @pytest.mark.parametrize("where", ["no-such-dir/x.zip", "existing.zip"])
    def test_an_export_that_cannot_be_written_records_nothing(
        self, copied: Path, tmp_path: Path, where: str
    ) -> None:
        """`-o` into a missing directory or onto an existing file: a usage error before
        anything is read, and the log does not grow."""
        (tmp_path / "existing.zip").write_bytes(b"kept")
        (session_id,) = sql(copied, "SELECT id FROM sessions")[0]
        before = size_of(copied)
        result = on(
            copied, "export-transcript", session_id, "-o", str(tmp_path / where), "--reason", "c1"
        )
        assert result.returncode == 2
        assert str(tmp_path / where) in clean(result)
        assert size_of(copied) == before
        assert (tmp_path / "existing.zip").read_bytes() == b"kept"

    def test_an_export_that_fails_leaves_no_file(self, copied: Path, tmp_path: Path) -> None:
        """An unknown session: exit 1, and the file made for it is removed again."""
        target = tmp_path / "x.zip"
        result = on(copied, "export-transcript", "0" * 32, "-o", str(target), "--reason", "c2")
        assert result.returncode == 1
        assert "no session" in clean(result)
        assert not target.exists()


class TestWitnessConsistency:
    def checkpoints(self, data_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
        """OLD: the newest checkpoint now; NEW: one signed after a read grew the log."""
        old, new = tmp_path / "old.ckpt", tmp_path / "new.ckpt"
        assert on(data_dir, "audit", "checkpoint", "-o", str(old)).returncode == 0
        (session_id,) = sql(data_dir, "SELECT id FROM sessions")[0]
        assert on(data_dir, "sessions", "show", session_id, "--reason", "T-7").returncode == 0
        assert on(data_dir, "audit", "checkpoint", "-o", str(new)).returncode == 0
        return old, new

    def test_a_bad_checkpoint_file_is_named_old_or_new(self, copied: Path, tmp_path: Path) -> None:
        """A file that is not a signed note, given as OLD or as NEW: the error says which."""
        old, new = self.checkpoints(copied, tmp_path)
        bad = tmp_path / "bad.ckpt"
        bad.write_bytes(b"not a note\n")
        as_old = on(copied, "audit", "check-consistency", str(bad), str(new))
        as_new = on(copied, "audit", "check-consistency", str(old), str(bad))
        assert as_old.returncode == as_new.returncode == 1
        assert f"OLD ({bad}) does not verify" in clean(as_old)
        assert f"NEW ({bad}) does not verify" in clean(as_new)

    def test_a_rewritten_local_log_is_blamed_not_new(self, copied: Path, tmp_path: Path) -> None:
        """The local store's entries rewritten with their tree after OLD and NEW were signed:
        the error says the local log does not lead from OLD to NEW, not that NEW is wrong."""
        old, new = self.checkpoints(copied, tmp_path)
        rows = sql(copied, "SELECT idx, body FROM audit_entries ORDER BY idx")
        index, body = rows[2]
        changed = bytes(body) + b" "
        leaves = [merkle.leaf_hash(changed if i == index else bytes(b)) for i, b in rows]
        tree = merkle.CompactRange()
        nodes: list[tuple[int, int, bytes]] = []
        tree.extend(
            leaves,
            on_node=lambda level, i, h: (
                nodes.append((level, i, h)) if level and not level % 4 else None
            ),
        )
        sql(
            copied,
            "UPDATE audit_entries SET body = ?, leaf_hash = ? WHERE idx = ?",
            changed,
            leaves[index],
            index,
        )
        sql(copied, "DELETE FROM audit_nodes")
        for node in nodes:
            sql(copied, "INSERT INTO audit_nodes (level, idx, hash) VALUES (?, ?, ?)", *node)
        sql(copied, "UPDATE audit_head SET frontier = ?", b"".join(tree.hashes))
        result = on(copied, "audit", "check-consistency", str(old), str(new))
        assert result.returncode == 1
        said = clean(result)
        assert "the local log does not lead from OLD to NEW" in said
        assert "the local store was rewritten" in said

    def test_a_witness_checks_a_proof_without_the_data_directory(
        self, copied: Path, tmp_path: Path
    ) -> None:
        """The operator writes the proof with `audit prove-consistency`; a witness with only
        the two checkpoints, the proof and the published key checks it; a proof with one hash
        changed fails, saying NEW does not extend OLD by it."""
        old, new = self.checkpoints(copied, tmp_path)
        proof = tmp_path / "proof.json"
        made = on(copied, "audit", "prove-consistency", str(old), str(new), "-o", str(proof))
        assert made.returncode == 0, made.stderr
        key = (copied / "audit.pub").read_text().strip()
        witness = tmp_path / "witness"  # somewhere with no data directory
        witness.mkdir()
        args = ["audit", "check-consistency", str(old), str(new), "--proof", str(proof)]
        checked = subprocess.run(
            [sys.executable, "-m", "logwarden", *args, "--key", key],
            capture_output=True,
            text=True,
            cwd=witness,
            timeout=60,
            check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith("LOGWARDEN_")},
        )
        assert checked.returncode == 0, checked.stderr
        assert "consistent" in checked.stdout
        document = json.loads(proof.read_text())
        document["proof"][0] = ("0" if document["proof"][0][0] != "0" else "1") + document["proof"][
            0
        ][1:]
        proof.write_text(json.dumps(document))
        tampered = logwarden(*args, "--key", key, env=WIDE)
        assert tampered.returncode == 1
        assert f"NEW does not extend OLD by the proof {proof} gave" in clean(tampered)
