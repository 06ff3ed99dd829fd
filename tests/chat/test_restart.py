"""What the chat remembers across a restart: reports keep the two people apart."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from logwarden.store import SqlStore
from logwarden.testing import ChatClient, serve_in_process
from tests.conftest import TEST_SERVER_ENV

REPORTER, REPORTED, NEWCOMER = "192.0.2.151", "192.0.2.152", "192.0.2.153"


class TestReportsSurviveRestart:
    def test_reported_pair_stays_apart_after_a_restart(self, tmp_path: Path) -> None:
        """A report blocks the pair by IP pseudonym, and the block is read back at start-up."""
        data_dir = tmp_path / "data"
        with (
            serve_in_process(data_dir, env=TEST_SERVER_ENV) as server,
            ChatClient(server.ws_url, forwarded_for=REPORTER) as a,
            ChatClient(server.ws_url, forwarded_for=REPORTED) as b,
        ):
            a.join()
            b.join()
            a.expect("matched")
            a.send("report", reason="threats")
            a.expect("reported")

        with (
            serve_in_process(data_dir, env=TEST_SERVER_ENV) as server,
            ChatClient(server.ws_url, forwarded_for=REPORTER) as a,
            ChatClient(server.ws_url, forwarded_for=REPORTED) as b,
        ):
            a.join()
            b.join()
            with pytest.raises(TimeoutError):
                a.recv(timeout=1.0)
            with ChatClient(server.ws_url, forwarded_for=NEWCOMER) as c:
                c.join()
                c.expect("matched")
                a.expect("matched")  # the reporter waited longest


class TestGracefulShutdown:
    def test_sigterm_ends_chats_with_server_shutdown(self, tmp_path: Path) -> None:
        """On SIGTERM clients are closed with 1012 and the log records why the chat ended."""
        data_dir = tmp_path / "data"
        with serve_in_process(data_dir, env=TEST_SERVER_ENV) as server:
            a = ChatClient(server.ws_url, forwarded_for="192.0.2.154")
            b = ChatClient(server.ws_url, forwarded_for="192.0.2.155")
            a.join()
            b.join()
            a.expect("matched")
            a.send("message", text="one last thing")
            a.expect("sent")
            server.stop()
            # uvicorn re-raises the signal once it has shut down cleanly.
            assert server.process.returncode in (0, -signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    b.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
            a.close()
            b.close()
        store = SqlStore.sqlite(data_dir / "logwarden.db")
        try:
            [summary] = store.recent_sessions(limit=5)
        finally:
            store.close()
        assert (summary.end_reason, summary.message_count) == ("server_shutdown", 1)
