"""The session log as an operator finds it after real chats: exact, encrypted, and nowhere plain."""

from __future__ import annotations

import ipaddress
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from logwarden.errors import VaultError
from logwarden.store import SqlStore
from logwarden.testing import ChatClient, LiveServer, reading_vault, serve_in_process
from logwarden.transcripts import Transcript, open_transcript
from tests.conftest import TEST_SERVER_ENV

ALICE_IP = "192.0.2.77"
BOB_IP = "2001:db8::4d"
SCRIPT = [  # (sender slot, text): synthetic and harmless, with a few distinctive markers
    (0, "hello stranger, marker-alpha-7731"),
    (1, "hi! what do you like to do? marker-bravo-2208"),
    (0, "mostly chess and long walks, marker-charlie-9154"),
    (1, "caf\u00e9 au lait and \U0001f600 emoji, marker-delta-4410"),
    (0, "line one\nline two, marker-echo-6627"),
    (1, "\x1b[2J\x1b]0;owned\x07 and \u202eright-to-left, marker-golf-5102"),
]
REPORT_COMMENT = "kept asking personal questions marker-foxtrot-3381"


def run_scripted_chat(
    server: LiveServer,
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Alice and Bob chat the script; Bob reports, Alice stops. Returns (acks, receipts)."""
    acks: list[dict[str, object]] = []
    receipts: list[dict[str, object]] = []
    with (
        ChatClient(server.ws_url, forwarded_for=ALICE_IP) as alice,
        ChatClient(server.ws_url, forwarded_for=BOB_IP) as bob,
    ):
        alice.join(["board games", "chess"])
        bob.join(["Chess"])
        alice.expect("matched")
        bob.expect("matched")
        people = (alice, bob)
        for slot, text in SCRIPT:
            people[slot].send("message", text=text)
            acks.append(people[slot].expect("sent"))
            receipts.append(people[1 - slot].expect("message"))
        bob.send("report", reason="harassment", comment=REPORT_COMMENT)
        bob.expect("reported")
        alice.send("stop")
        alice.expect("ended")
        bob.expect("stranger_left")
    return acks, receipts


@pytest.fixture(scope="module")
def chatted(tmp_path_factory: pytest.TempPathFactory) -> tuple[LiveServer, list, list]:
    """A server that has hosted the scripted chat, and has been stopped (SIGTERM) since."""
    data_dir = tmp_path_factory.mktemp("log") / "data"
    with serve_in_process(data_dir, env=TEST_SERVER_ENV) as server:
        acks, receipts = run_scripted_chat(server)
    return server, acks, receipts


def only_transcript(data_dir: Path) -> Transcript:
    store = SqlStore.sqlite(data_dir / "logwarden.db")
    try:
        summaries = store.recent_sessions(limit=10)
        assert len(summaries) == 1
        record = store.session(summaries[0].id)
        assert record is not None
        with reading_vault(data_dir) as vault:
            return open_transcript(record, vault)
    finally:
        store.close()


class TestRecord:
    def test_transcript_holds_exactly_what_was_said_in_order(self, chatted: tuple) -> None:
        """Every message is in the log once, in order, with its sender, text and time."""
        server, acks, receipts = chatted
        transcript = only_transcript(server.data_dir)
        assert [(m["slot"], m["text"]) for m in transcript.messages] == SCRIPT
        assert [m["seq"] for m in transcript.messages] == list(range(1, len(SCRIPT) + 1))
        assert [m["at"] for m in transcript.messages] == [a["at"] for a in acks]
        assert [r["at"] for r in receipts] == [a["at"] for a in acks]
        times = [m["at"] for m in transcript.messages]
        assert times == sorted(times)
        assert transcript.started_at <= times[0]
        assert transcript.ended_at is not None and times[-1] <= transcript.ended_at

    def test_session_metadata(self, chatted: tuple) -> None:
        """Start, end, end reason, matched interests, addresses and pseudonyms are recorded."""
        server, _, _ = chatted
        transcript = only_transcript(server.data_dir)
        assert transcript.end_reason == "stopped"
        assert transcript.ended_by == 0
        assert transcript.interests == ["chess"]
        assert [p["ip"] for p in transcript.participants] == [ALICE_IP, BOB_IP]
        with reading_vault(server.data_dir) as vault:
            assert [p["ip_pseudonym"] for p in transcript.participants] == [
                vault.pseudonym(ALICE_IP),
                vault.pseudonym(BOB_IP),
            ]

    def test_report_is_recorded(self, chatted: tuple) -> None:
        """The report names its reporter, reason and comment."""
        server, _, _ = chatted
        [report] = only_transcript(server.data_dir).reports
        assert (report["reporter_slot"], report["reason"], report["comment"]) == (
            1,
            "harassment",
            REPORT_COMMENT,
        )


def needles() -> dict[str, bytes]:
    """Everything that must never be found in plaintext on disk."""
    found: dict[str, bytes] = {}
    for _, text in SCRIPT:
        marker = text.split("marker-")[1][:10]
        found[f"text {marker}"] = ("marker-" + marker).encode()
    found["report comment"] = b"marker-foxtrot"
    for ip in (ALICE_IP, BOB_IP):
        found[f"ip {ip}"] = ip.encode()
        found[f"packed ip {ip}"] = ipaddress.ip_address(ip).packed
    found["ip 2001:db8::4d expanded"] = b"2001:0db8"
    return found


class TestTampering:
    @pytest.mark.parametrize(
        "change",
        [
            "UPDATE messages SET slot = 1 - slot WHERE seq = 1",  # re-attributed
            "UPDATE messages SET sent_at = sent_at + 1 WHERE seq = 2",  # re-timed
            "UPDATE messages SET seq = 99 WHERE seq = 3",  # renumbered
            "UPDATE addresses SET ip_sealed ="
            " (SELECT ip_sealed FROM addresses WHERE slot = 1) WHERE slot = 0",  # swapped
        ],
    )
    def test_a_changed_row_no_longer_opens(
        self, chatted: tuple, tmp_path: Path, change: str
    ) -> None:
        """Moving, renumbering, re-attributing or re-timing a sealed row makes it fail to open."""
        server, _, _ = chatted
        copy = tmp_path / "data"
        shutil.copytree(server.data_dir, copy)
        with sqlite3.connect(copy / "logwarden.db") as db:
            db.execute(change)
        with pytest.raises(VaultError):
            only_transcript(copy)


class TestNothingInPlaintext:
    def test_byte_scan_of_the_data_directory(self, chatted: tuple) -> None:
        """No file in the data directory holds a message text, comment or address."""
        server, _, _ = chatted
        files = [p for p in server.data_dir.rglob("*") if p.is_file()]
        assert any(p.name == "logwarden.db" for p in files)
        for path in files:
            data = path.read_bytes()
            for what, needle in needles().items():
                assert needle not in data, f"{what} found in {path}"
                assert needle.decode("latin-1").encode("utf-16-le") not in data, what

    def test_byte_scan_while_serving(self, tmp_path: Path) -> None:
        """Also while the server runs, with the WAL still holding recent pages."""
        data_dir = tmp_path / "data"
        with serve_in_process(data_dir, env=TEST_SERVER_ENV) as server:
            run_scripted_chat(server)
            files = [p for p in data_dir.rglob("*") if p.is_file()]
            assert any(p.name.endswith("-wal") for p in files)
            for path in files:
                data = path.read_bytes()
                for what, needle in needles().items():
                    assert needle not in data, f"{what} found in {path}"

    def test_server_log_has_no_address_and_no_text(self, chatted: tuple) -> None:
        """The server's own log (uvicorn's included) names pseudonyms, never addresses or text."""
        server, _, _ = chatted
        log = server.log_text()
        assert "session" in log and "ip:" in log  # it does log, with pseudonyms
        for what, needle in needles().items():
            if not what.startswith("packed"):
                assert needle.decode() not in log, f"{what} in the server log"
        # The proxy's address (every socket peer here) too; only our own start-up line names
        # the address we listen on.
        served = [line for line in log.splitlines() if "127.0.0.1" in line]
        assert len(served) == 1
        assert served[0].startswith("logwarden serving on http://127.0.0.1:")

    def test_files_are_owner_only(self, chatted: tuple) -> None:
        """The data directory, key file and database are readable by the owner alone."""
        server, _, _ = chatted
        for path in [server.data_dir, *server.data_dir.rglob("*")]:
            assert path.stat().st_mode & 0o077 == 0, f"{path} is open to others"


class TestCommandLine:
    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "logwarden", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def test_sessions_list_shows_metadata_only(self, chatted: tuple) -> None:
        """`sessions list --json` gives the session's metadata and no text or address."""
        server, _, _ = chatted
        result = self.run("sessions", "list", "--json", "--data-dir", str(server.data_dir))
        assert result.returncode == 0, result.stderr
        [summary] = [json.loads(line) for line in result.stdout.splitlines()]
        assert summary["message_count"] == len(SCRIPT)
        assert summary["report_count"] == 1
        assert summary["end_reason"] == "stopped"
        assert "marker" not in result.stdout and ALICE_IP not in result.stdout

    def test_sessions_show_decrypts_the_transcript(self, chatted: tuple) -> None:
        """`sessions show ID` prints the decrypted transcript for the administrator."""
        server, _, _ = chatted
        listed = self.run("sessions", "list", "--json", "--data-dir", str(server.data_dir))
        session_id = json.loads(listed.stdout.splitlines()[0])["id"]
        shown = self.run(
            "sessions", "show", session_id, "--reason", "test", "--data-dir", str(server.data_dir)
        )
        assert shown.returncode == 0, shown.stderr
        for _, text in SCRIPT[:5]:
            assert text.splitlines()[0] in shown.stdout
        # A stranger's control characters reach the administrator's terminal as inert escapes.
        assert "\x1b" not in shown.stdout and "\u202e" not in shown.stdout
        assert "\\x1b[2J\\x1b]0;owned\\x07 and \\u202eright-to-left" in shown.stdout
        assert ALICE_IP in shown.stdout and REPORT_COMMENT in shown.stdout
        as_json = self.run(
            "sessions",
            "show",
            session_id,
            "--reason",
            "test",
            "--json",
            "--data-dir",
            str(server.data_dir),
        )
        assert [m["text"] for m in json.loads(as_json.stdout)["messages"]] == [t for _, t in SCRIPT]

    def test_unknown_session_is_a_clear_error(self, chatted: tuple) -> None:
        """Asking for a session that does not exist exits non-zero and says so."""
        server, _, _ = chatted
        result = self.run(
            "sessions", "show", "nope", "--reason", "test", "--data-dir", str(server.data_dir)
        )
        assert result.returncode == 1
        assert "no session 'nope'" in result.stderr

    def test_uninitialised_data_dir_is_a_clear_error(self, tmp_path: Path) -> None:
        """Reading a directory that was never initialised says how to fix it."""
        result = self.run("sessions", "list", "--data-dir", str(tmp_path / "nothing"))
        assert result.returncode == 1
        assert "logwarden init" in result.stderr
