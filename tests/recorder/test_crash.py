"""Killing the server (SIGKILL) mid-chat loses nothing a stranger had already received."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from websockets.exceptions import ConnectionClosed

from logwarden.store import SqlStore
from logwarden.testing import ChatClient, reading_vault, serve_in_process
from logwarden.transcripts import open_transcript
from tests.conftest import TEST_SERVER_ENV

FAST = {
    **TEST_SERVER_ENV,
    "LOGWARDEN_CHAT__MESSAGES_PER_SECOND": "100000",
    "LOGWARDEN_CHAT__MESSAGE_BURST": "100000",
    "LOGWARDEN_CHAT__FRAMES_PER_SECOND": "100000",
    "LOGWARDEN_CHAT__FRAME_BURST": "100000",
}


class TestSigkill:
    def test_every_received_message_survives_a_sigkill(self, tmp_path: Path) -> None:
        """Messages the stranger received before a SIGKILL are all in the log afterwards."""
        data_dir = tmp_path / "data"
        received: list[dict[str, object]] = []
        with serve_in_process(data_dir, env=FAST) as server:
            sender = ChatClient(server.ws_url, forwarded_for="192.0.2.61")
            receiver = ChatClient(server.ws_url, forwarded_for="192.0.2.62")
            sender.join()
            receiver.join()
            sender.expect("matched")
            receiver.expect("matched")
            killed = threading.Event()

            def flood() -> None:
                # Pipelined, as fast as the server takes them, until the server is gone.
                with contextlib.suppress(ConnectionClosed, OSError):
                    for i in range(100_000):
                        if killed.is_set():
                            return
                        sender.send("message", text=f"crash drill message {i}")

            sending = threading.Thread(target=flood, daemon=True)
            sending.start()
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                while True:
                    frame = receiver.recv(timeout=10)
                    assert frame["type"] == "message"
                    received.append(frame)
                    if len(received) == 300:
                        server.kill()  # SIGKILL: no shutdown code runs
                        killed.set()
            sending.join(timeout=10)
            for client in (sender, receiver):
                with contextlib.suppress(Exception):
                    client.close()

        assert len(received) >= 300
        store = SqlStore.sqlite(data_dir / "logwarden.db")
        try:
            [summary] = store.recent_sessions(limit=5)
            record = store.session(summary.id)
            assert record is not None
            with reading_vault(data_dir) as vault:
                transcript = open_transcript(record, vault)
        finally:
            store.close()
        logged = {m["seq"]: m for m in transcript.messages}
        for frame in received:
            entry = logged.get(frame["seq"])
            assert entry is not None, f"message {frame['seq']} was received but not logged"
            assert (entry["text"], entry["at"]) == (frame["text"], frame["at"])
        assert transcript.ended_at is None  # the process died before it could record an end

        # The next start ends the session the dead server left open, so that its receipts
        # can erase it and its report window closes.
        with serve_in_process(data_dir, env=FAST):
            pass
        restarted = SqlStore.sqlite(data_dir / "logwarden.db")
        try:
            record = restarted.session(summary.id)
            assert record is not None and record.ended is not None
            assert record.ended.reason == "interrupted"
        finally:
            restarted.close()
