"""Dead and slow peers: heartbeats end chats with silent clients, full outboxes cut readers off."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from logwarden.testing import ChatClient, LiveServer, serve_in_process
from tests.conftest import TEST_SERVER_ENV


@pytest.fixture(scope="module")
def quick_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with a fast heartbeat."""
    env = {
        **TEST_SERVER_ENV,
        "LOGWARDEN_CHAT__HEARTBEAT_INTERVAL": "0.2",
        "LOGWARDEN_CHAT__HEARTBEAT_TIMEOUT": "0.8",
    }
    data_dir: Path = tmp_path_factory.mktemp("quick") / "data"
    with serve_in_process(data_dir, env=env) as server:
        yield server


@pytest.fixture(scope="module")
def small_outbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with generous rate limits and a tiny outbox."""
    env = {
        **TEST_SERVER_ENV,
        "LOGWARDEN_CHAT__MESSAGES_PER_SECOND": "100000",
        "LOGWARDEN_CHAT__MESSAGE_BURST": "100000",
        "LOGWARDEN_CHAT__FRAMES_PER_SECOND": "100000",
        "LOGWARDEN_CHAT__FRAME_BURST": "100000",
        "LOGWARDEN_CHAT__OUTBOUND_QUEUE": "64",  # room for a burst of 50 replies
    }
    data_dir: Path = tmp_path_factory.mktemp("outbox") / "data"
    with serve_in_process(data_dir, env=env) as server:
        yield server


class TestHeartbeat:
    def test_silent_client_is_closed_and_its_stranger_told(self, quick_server: LiveServer) -> None:
        """A client that stops answering pings is closed with 4000; the stranger gets `timeout`."""
        url = quick_server.ws_url
        with (
            ChatClient(url, forwarded_for="192.0.2.101", answer_pings=False) as silent,
            ChatClient(url, forwarded_for="192.0.2.102") as alive,
        ):
            silent.join(["heartbeat-test"])
            alive.join(["heartbeat-test"])
            silent.expect("matched")
            alive.expect("matched")
            left = alive.expect("stranger_left", timeout=5)
            assert left["reason"] == "timeout"
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    silent.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000

    def test_answering_pings_keeps_a_quiet_chat_alive(self, quick_server: LiveServer) -> None:
        """Clients that answer pings stay paired well past the heartbeat timeout."""
        url = quick_server.ws_url
        with (
            ChatClient(url, forwarded_for="192.0.2.103") as a,
            ChatClient(url, forwarded_for="192.0.2.104") as b,
        ):
            a.join(["quiet-test"])
            b.join(["quiet-test"])
            a.expect("matched")
            b.expect("matched")
            deadline = time.monotonic() + 2.5
            while time.monotonic() < deadline:
                with pytest.raises(TimeoutError):
                    a.recv(timeout=0.1)  # answers pings meanwhile
                with pytest.raises(TimeoutError):
                    b.recv(timeout=0.1)
            a.send("message", text="still here?")
            assert b.expect("message")["text"] == "still here?"


class TestSlowReader:
    def test_a_client_that_stops_reading_is_cut_off(self, small_outbox_server: LiveServer) -> None:
        """A stranger who never reads is disconnected; the sender is never blocked."""
        port = small_outbox_server.port
        with (
            ChatClient(small_outbox_server.ws_url, forwarded_for="192.0.2.105") as sender,
            socket.create_connection(("127.0.0.1", port)) as raw,
        ):
            # A raw client that completes the handshake, joins, then never reads again.
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            raw.sendall(
                (
                    f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                    "X-Forwarded-For: 192.0.2.106\r\n\r\n"
                ).encode()
            )
            assert raw.recv(4096).startswith(b"HTTP/1.1 101")
            join = b'{"type":"join","interests":["slow-reader-test"]}'
            raw.sendall(bytes([0x81, 0x80 | len(join), 0, 0, 0, 0]) + join)
            sender.join(["slow-reader-test"])
            sender.expect("matched")
            text = "a" * 1000
            for _ in range(400):  # bursts of 50, each answered before the next
                for _ in range(50):
                    sender.send("message", text=text)
                frames = [sender.recv(timeout=10) for _ in range(50)]
                left = [f for f in frames if f["type"] == "stranger_left"]
                if left:
                    assert left[0]["reason"] == "disconnected"
                    return
                assert {f["type"] for f in frames} <= {"sent", "error"}
            pytest.fail("the non-reading client was never cut off")
