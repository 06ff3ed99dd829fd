"""The session log's writer process: what it holds when it dies, and that it never outlives
the server (recorder/process.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from logwarden.store import SqlStore
from logwarden.testing import ChatClient, LiveServer, reading_vault, serve_in_process
from logwarden.transcripts import open_transcript
from tests.conftest import TEST_SERVER_ENV
from tests.test_cli import logwarden


def writer_of(server: LiveServer) -> psutil.Process:
    """The server's child process that has the log open: the session log's writer (the risk
    scorer's process has no file of the data directory open)."""
    log = str((server.data_dir / "logwarden.db").resolve())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for child in psutil.Process(server.process.pid).children():
            try:
                if any(f.path == log for f in child.open_files()):
                    return child
            except psutil.Error:
                continue
        time.sleep(0.05)
    raise AssertionError("no child process of the server has the log open")


def pair(server: LiveServer) -> tuple[ChatClient, ChatClient]:
    a = ChatClient(server.ws_url, forwarded_for="192.0.2.71")
    b = ChatClient(server.ws_url, forwarded_for="192.0.2.72")
    a.join()
    b.join()
    a.expect("matched")
    b.expect("matched")
    return a, b


def logged_messages(data_dir: Path) -> dict[int, dict[str, Any]]:
    store = SqlStore.sqlite(data_dir / "logwarden.db")
    try:
        [summary] = store.recent_sessions(limit=5)
        record = store.session(summary.id)
        assert record is not None
        with reading_vault(data_dir) as vault:
            return {m["seq"]: m for m in open_transcript(record, vault).messages}
    finally:
        store.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with serve_in_process(tmp_path / "data", env=TEST_SERVER_ENV) as live:
        yield live


class TestWriterProcess:
    def test_a_writer_that_dies_is_replaced_and_the_chat_goes_on(self, server: LiveServer) -> None:
        """SIGKILL of the writer: what it had not answered fails (never relayed), a new
        writer takes over the live chat, and every message the stranger got is in the log."""
        a, b = pair(server)
        a.send("message", text="before the writer dies")
        a.expect("sent")
        received = [b.expect("message")]
        first = writer_of(server)
        first.kill()
        first.wait(10)
        refused = relayed_after = 0
        deadline = time.monotonic() + 20
        n = 0
        while relayed_after < 3 and time.monotonic() < deadline:
            n += 1
            a.send("message", text=f"after the writer died {n}")
            reply = a.recv()
            if reply["type"] == "error":
                assert reply["code"] == "log_unavailable"
                refused += 1
                time.sleep(0.25)  # under the default 5 messages a second: never rate-limited
                continue
            assert reply["type"] == "sent"
            received.append(b.expect("message"))
            relayed_after += 1
        assert relayed_after == 3, f"no new writer took the chat ({refused} refused)"
        assert writer_of(server).pid != first.pid
        a.send("stop")  # the new writer records the end of a chat the first one began
        b.expect("stranger_left")
        server.stop()
        logged = logged_messages(server.data_dir)
        for frame in received:
            assert logged[frame["seq"]]["text"] == frame["text"]
        assert f"after the writer died {n}" in {m["text"] for m in logged.values()}
        verified = logwarden("audit", "verify", "--data-dir", str(server.data_dir))
        assert verified.returncode == 0, verified.stdout + verified.stderr

    def test_the_writer_does_not_outlive_a_killed_server(self, server: LiveServer) -> None:
        """SIGKILL of the server: its writer writes what it was given, then exits."""
        a, b = pair(server)
        a.send("message", text="the last words")
        a.expect("sent")
        b.expect("message")
        writer = writer_of(server)
        server.kill()
        writer.wait(15)  # psutil.TimeoutExpired if it lingers
        assert logged_messages(server.data_dir)[1]["text"] == "the last words"


class TestInServer:
    def test_recording_in_the_server_itself(self, tmp_path: Path) -> None:
        """``[recorder] process = false``: no writer process, and the chat is logged all the
        same."""
        env = {**TEST_SERVER_ENV, "LOGWARDEN_RECORDER__PROCESS": "false"}
        with serve_in_process(tmp_path / "data", env=env) as server:
            a, b = pair(server)
            a.send("message", text="logged by the server itself")
            a.expect("sent")
            b.expect("message")
            log = str((server.data_dir / "logwarden.db").resolve())
            children = psutil.Process(server.process.pid).children()
            assert not any(f.path == log for c in children for f in c.open_files())
        assert logged_messages(tmp_path / "data")[1]["text"] == "logged by the server itself"
