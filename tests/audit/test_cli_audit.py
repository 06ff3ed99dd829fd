"""The audit commands as an operator runs them, against a data directory a real server wrote:
init makes the signing key, reads and actions leave entries, checkpoints are published and
can be checked for consistency, and the docs' example checkpoint is real."""

from __future__ import annotations

import json
import re
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from logwarden.audit import checkpoint as notes
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
        assert notes.VerifierKey.parse(public).name.endswith("/logwarden")
        assert run(server, "audit", "key").stdout.strip() == public


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
        assert run(server, "sessions", "release", session_id).returncode == 0
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
