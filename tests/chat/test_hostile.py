"""Hostile clients against a real server: each test is one attack, over real sockets.

A test that fails here is a finding: the attack works. Tests marked as regression guards in
their docstrings are attacks the server resists today and must keep resisting.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import psutil
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from logwarden.store import SqlStore
from logwarden.testing import ChatClient, LiveServer, reading_vault, serve_in_process
from logwarden.transcripts import Transcript, open_transcript
from tests.conftest import TEST_SERVER_ENV

NewIP = Callable[[], str]
OpenClient = Callable[..., ChatClient]

MB = 1 << 20


# -- servers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with the ordinary test settings."""
    data_dir: Path = tmp_path_factory.mktemp("hostile") / "data"
    with serve_in_process(data_dir, env=TEST_SERVER_ENV) as live:
        yield live


@pytest.fixture(scope="module")
def quick_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with a fast heartbeat: silent connections are due for closing after 0.8 s."""
    env = {
        **TEST_SERVER_ENV,
        "LOGWARDEN_CHAT__HEARTBEAT_INTERVAL": "0.2",
        "LOGWARDEN_CHAT__HEARTBEAT_TIMEOUT": "0.8",
        "LOGWARDEN_CHAT__HANDSHAKE_TIMEOUT": "0.8",
    }
    data_dir: Path = tmp_path_factory.mktemp("hostile-quick") / "data"
    with serve_in_process(data_dir, env=env) as live:
        yield live


@pytest.fixture(scope="module")
def slow_log_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose every log write takes at least 100 ms, to widen race windows."""
    env = {**TEST_SERVER_ENV, "LOGWARDEN_RECORDER__COMMIT_WINDOW_MS": "100"}
    data_dir: Path = tmp_path_factory.mktemp("hostile-slow-log") / "data"
    with serve_in_process(data_dir, env=env) as live:
        yield live


@pytest.fixture
def clients(new_ip: NewIP) -> Iterator[OpenClient]:
    """Open clients on a given server, each from its own address; all closed after the test."""
    with ExitStack() as stack:

        def open_client(live: LiveServer, **kwargs: Any) -> ChatClient:
            kwargs.setdefault("forwarded_for", new_ip())
            return stack.enter_context(ChatClient(live.ws_url, **kwargs))

        yield open_client


# -- helpers ---------------------------------------------------------------------------------


def pair(open_client: OpenClient, live: LiveServer, **kwargs: Any) -> tuple[ChatClient, ChatClient]:
    a, b = open_client(live, **kwargs), open_client(live, **kwargs)
    a.join()
    b.join()
    a.expect("matched")
    b.expect("matched")
    return a, b


def drain(client: ChatClient, quiet: float = 0.4) -> list[Any]:
    """Every frame until ``quiet`` seconds pass without one; a close ends the list."""
    frames: list[Any] = []
    try:
        while True:
            frames.append(client.recv(timeout=quiet))
    except TimeoutError:
        pass
    except ConnectionClosed as closed:
        frames.append(("closed", closed.rcvd.code if closed.rcvd else None))
    return frames


def ws_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """One client frame, masked with a zero mask, written by hand."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    if n < 126:
        header = bytes([first, 0x80 | n])
    elif n < 1 << 16:
        header = bytes([first, 0x80 | 126]) + struct.pack("!H", n)
    else:
        header = bytes([first, 0x80 | 127]) + struct.pack("!Q", n)
    return header + b"\0\0\0\0" + payload


PING_125 = ws_frame(0x9, b"p" * 125)


def handshake_request(port: int, *, host: str | None = None, extra: str = "") -> bytes:
    return (
        f"GET /ws HTTP/1.1\r\nHost: {host or f'127.0.0.1:{port}'}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"{extra}\r\n"
    ).encode("latin-1")


def handshake_status(port: int, *, host: str | None = None, extra: str = "") -> int:
    """The HTTP status the server answers a hand-written WebSocket handshake with."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(handshake_request(port, host=host, extra=extra))
        status_line = raw.recv(4096).split(b"\r\n", 1)[0]
    return int(status_line.split()[1])


def open_raw_websocket(port: int, *, rcvbuf: int = 4096) -> socket.socket:
    """A completed handshake on a bare socket with a tiny receive buffer, never read again."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.sendall(handshake_request(port))
    assert raw.recv(4096).startswith(b"HTTP/1.1 101")
    return raw


def flood(raw: socket.socket, chunk: bytes, total: int, *, seconds: float) -> int:
    """Send ``chunk`` until ``total`` bytes are out, the peer stops reading, or time runs out."""
    raw.settimeout(1.0)
    sent = 0
    deadline = time.monotonic() + seconds
    with suppress(OSError):  # a timeout (the peer stopped reading) or a reset ends the flood
        while sent < total and time.monotonic() < deadline:
            raw.sendall(chunk)
            sent += len(chunk)
    return sent


def http_get(live: LiveServer, request_line: str) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", live.port), timeout=5) as raw:
        raw.sendall(
            f"{request_line}\r\nHost: 127.0.0.1:{live.port}\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := raw.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def rss(live: LiveServer) -> int:
    return int(psutil.Process(live.process.pid).memory_info().rss)


def peak_rss(live: LiveServer, seconds: float) -> int:
    peak = rss(live)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
        peak = max(peak, rss(live))
    return peak


def connections(live: LiveServer) -> int:
    """TCP connections the server process holds open on its port (its listening socket aside)."""
    held = psutil.Process(live.process.pid).net_connections(kind="tcp")
    return sum(1 for c in held if c.laddr.port == live.port and c.status != psutil.CONN_LISTEN)


def transcript_with_interest(live: LiveServer, interest: str) -> Transcript:
    """The logged session whose (unique) shared interest is ``interest``, decrypted."""
    store = SqlStore.sqlite(live.data_dir / "logwarden.db")
    try:
        with reading_vault(live.data_dir) as vault:
            for summary in store.recent_sessions(limit=500):
                record = store.session(summary.id)
                assert record is not None
                transcript = open_transcript(record, vault)
                if transcript.interests == [interest]:
                    return transcript
    finally:
        store.close()
    raise AssertionError(f"no logged session with interest {interest!r}")


def pad_to(kind: str, size: int) -> str:
    """A frame of type ``kind`` that is exactly ``size`` bytes long."""
    empty = json.dumps({"type": kind, "pad": ""}, separators=(",", ":"))
    frame = json.dumps({"type": kind, "pad": "x" * (size - len(empty))}, separators=(",", ":"))
    assert len(frame.encode()) == size
    return frame


# -- frames ----------------------------------------------------------------------------------


class TestHostileFrames:
    @pytest.mark.parametrize(
        "frame",
        [
            '{"type":"report","reason":[]}',
            '{"type":"report","reason":{"spam":1}}',
            '{"type":"pong","n":' + "1" * 5000 + "}",
        ],
        ids=["report-reason-list", "report-reason-object", "5000-digit-integer"],
    )
    def test_frame_that_trips_the_parser_does_not_drop_the_chat(
        self, server: LiveServer, clients: OpenClient, frame: str
    ) -> None:
        """Regression guard (fixed in bcd3ce7, here end to end): a frame that once made the
        parser raise TypeError or ValueError gets an error frame; the chat goes on."""
        a, b = pair(clients, server)
        a.send_raw(frame)
        a.send("message", text="still here")
        try:
            replies = [a.recv(timeout=5)]
            while replies[-1]["type"] == "error":
                replies.append(a.recv(timeout=5))
        except ConnectionClosed:
            pytest.fail(f"the server dropped the connection on {frame[:40]!r}")
        assert replies[-1]["type"] == "sent", replies
        assert {r["code"] for r in replies[:-1]} <= {"invalid_field", "invalid_json"}
        assert b.expect("message")["text"] == "still here"

    @pytest.mark.parametrize(
        ("size", "outcome"),
        [
            (16 * 1024, "not_joined"),
            (16 * 1024 + 1, "frame_too_large"),
            (64 * 1024, "frame_too_large"),
            (64 * 1024 + 1, 1009),
        ],
    )
    def test_frames_at_and_just_over_each_size_limit(
        self, server: LiveServer, clients: OpenClient, size: int, outcome: str | int
    ) -> None:
        """Regression guard: max_frame_bytes and the transport limit hold to the byte."""
        a = clients(server)
        a.send_raw(pad_to("stop", size))
        if isinstance(outcome, int):
            with pytest.raises(ConnectionClosed) as closed:
                a.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == outcome
        else:
            assert a.expect("error", timeout=5)["code"] == outcome

    @pytest.mark.parametrize(
        "raw",
        [
            ws_frame(0x0, b'{"type":"stop"}'),
            ws_frame(0x1, b'{"type":"stop"}', rsv1=True),
            ws_frame(0x3, b'{"type":"stop"}'),
            ws_frame(0x9, b"x", fin=False),
            ws_frame(0x9, b"x" * 126),
            bytes([0x81, 15]) + b'{"type":"stop"}',
        ],
        ids=[
            "continuation-without-start",
            "compressed-rsv1-without-extension",
            "reserved-opcode",
            "fragmented-ping",
            "ping-over-125-bytes",
            "unmasked-frame",
        ],
    )
    def test_websocket_protocol_violations_close_1002(
        self, server: LiveServer, clients: OpenClient, raw: bytes
    ) -> None:
        """Regression guard: frames that break RFC 6455 fail the connection with 1002."""
        a = clients(server)
        a.connection.socket.sendall(raw)
        with pytest.raises(ConnectionClosed) as closed:
            a.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1002

    def test_fragmented_message_with_pings_between_fragments(
        self, server: LiveServer, clients: OpenClient
    ) -> None:
        """Regression guard: a frame in 100 fragments with pings between is one frame."""
        a = clients(server)
        payload = pad_to("stop", 3000).encode()
        parts = [payload[i : i + 30] for i in range(0, len(payload), 30)]
        data = ws_frame(0x1, parts[0], fin=False)
        for part in parts[1:-1]:
            data += ws_frame(0x0, part, fin=False) + ws_frame(0x9, b"hi")
        data += ws_frame(0x0, parts[-1])
        a.connection.socket.sendall(data)
        assert a.expect("error", timeout=5)["code"] == "not_joined"

    def test_fragments_adding_up_over_the_transport_limit_close_1009(
        self, server: LiveServer, clients: OpenClient
    ) -> None:
        """Regression guard: the transport limit counts a fragmented message as a whole."""
        a = clients(server)
        a.connection.socket.sendall(
            ws_frame(0x1, b"x" * 40_000, fin=False) + ws_frame(0x0, b"x" * 40_000)
        )
        with pytest.raises(ConnectionClosed) as closed:
            a.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009

    def test_permessage_deflate_is_not_negotiated(self, server: LiveServer) -> None:
        """Regression guard: a client offering compression gets none (no zip bombs)."""
        with connect(server.ws_url, compression="deflate") as ws:
            assert "Sec-WebSocket-Extensions" not in ws.response.headers

    def test_hostile_unicode_is_relayed_and_logged_exactly(
        self, server: LiveServer, clients: OpenClient
    ) -> None:
        """Regression guard: NUL, bidi overrides, separators, BOM, astral characters and 900
        combining marks reach the stranger and the log unchanged, and never the server log."""
        interest = "hostile-unicode-test"
        marker = "hostile-unicode-7f3a"
        text = (
            f"{marker} \x00 \u202eevil\u202c \u2066x\u2069 \u2028 \ufeff \U0001f600 \U000e0041 a"
            + "\u0301" * 900
        )
        a, b = clients(server), clients(server)
        a.join([interest])
        b.join([interest])
        a.expect("matched")
        b.expect("matched")
        a.send("message", text=text)
        a.expect("sent")
        assert b.expect("message")["text"] == text
        assert transcript_with_interest(server, interest).messages[0]["text"] == text
        assert marker not in server.log_text()

    def test_next_spam_is_cut_off_and_the_stranger_told_once(
        self, server: LiveServer, clients: OpenClient
    ) -> None:
        """Regression guard: 150 pipelined `next` frames are rate limited until the client is
        closed with 1008; its stranger hears of it exactly once."""
        a, b = pair(clients, server)
        # The server may close before the last of them leaves the client; that is the point.
        with suppress(ConnectionClosed):
            for _ in range(150):
                a.send("next")
        frames = drain(a)
        assert frames[-1] == ("closed", 1008)
        assert drain(b) == [{"type": "stranger_left", "reason": "next"}]

    def test_report_with_a_10kb_comment_is_refused_and_can_be_retried(
        self, server: LiveServer, clients: OpenClient
    ) -> None:
        """Regression guard: an oversized report comment records nothing and blocks no retry."""
        a, _b = pair(clients, server)
        a.send("report", reason="spam", comment="c" * 10_000)
        assert a.expect("error")["code"] == "invalid_field"
        a.send("report", reason="spam", comment="short and true")
        a.expect("reported")


# -- handshake and HTTP ----------------------------------------------------------------------


class TestHostileHandshake:
    def test_origin_of_a_rebound_host_is_refused(self, server: LiveServer) -> None:
        """DNS rebinding: a page at http://rebind.example whose name now points at the server
        sends Host and Origin that agree; the server must not take Host as its own origin."""
        origin = f"rebind.example:{server.port}"
        status = handshake_status(server.port, host=origin, extra=f"Origin: http://{origin}\r\n")
        assert status == 403

    @pytest.mark.parametrize(
        "origin_lines",
        [
            "Origin: null\r\n",
            "Origin: \r\n",
            "Origin: http://127.0.0.1.:{port}\r\n",
            "Origin: http://127.0.0.1:{port}.\r\n",
            "Origin: http://127.0.0.1\r\n",
            "Origin: http://127.0.0.1:1{port}\r\n",
            "Origin: http://evil.example@127.0.0.1:{port}x\r\n",
            "Origin: ws://127.0.0.1:{port}\r\n",
            "Origin: https://evil.example\r\nOrigin: http://127.0.0.1:{port}\r\n",
            "Origin: http://127.0.0.1:{port}\r\nOrigin: https://evil.example\r\n",
        ],
    )
    def test_foreign_origin_variants_are_refused(
        self, server: LiveServer, origin_lines: str
    ) -> None:
        """Regression guard: null, empty, trailing dots, other ports, userinfo tricks, ws:
        and duplicated Origin headers never open a chat."""
        extra = origin_lines.format(port=server.port)
        assert handshake_status(server.port, extra=extra) in (400, 403)

    def test_forwarded_for_over_two_header_lines_is_read_right_to_left(
        self, server: LiveServer, clients: OpenClient
    ) -> None:
        """A proxy that adds its own X-Forwarded-For line (HAProxy's `option forwardfor`) after
        the client's forged one: the right-most address is the client, not the first line's."""
        interest = "xff-two-lines-test"
        forged, real = "192.0.2.201", "192.0.2.202"
        headers = [("X-Forwarded-For", forged), ("X-Forwarded-For", real)]
        with connect(server.ws_url, additional_headers=headers) as ws:
            assert json.loads(ws.recv(timeout=5))["type"] == "hello"
            ws.send(json.dumps({"type": "join", "interests": [interest]}))
            other = clients(server)
            other.join([interest])
            other.expect("matched")
        logged = {p["ip"] for p in transcript_with_interest(server, interest).participants}
        assert forged not in logged
        assert real in logged

    def test_forwarded_for_from_an_untrusted_peer_is_ignored(
        self, server: LiveServer, clients: OpenClient
    ) -> None:
        """Regression guard: from 127.0.0.2 (not a trusted proxy) X-Forwarded-For is ignored."""
        interest = "xff-untrusted-test"
        raw = socket.create_connection(
            ("127.0.0.1", server.port), timeout=5, source_address=("127.0.0.2", 0)
        )
        headers = [("X-Forwarded-For", "192.0.2.203")]
        with connect(server.ws_url, sock=raw, additional_headers=headers) as ws:
            assert json.loads(ws.recv(timeout=5))["type"] == "hello"
            ws.send(json.dumps({"type": "join", "interests": [interest]}))
            other = clients(server)
            other.join([interest])
            other.expect("matched")
        logged = {p["ip"] for p in transcript_with_interest(server, interest).participants}
        assert "127.0.0.2" in logged
        assert "192.0.2.203" not in logged

    def test_half_sent_handshake_is_not_held_open(self, quick_server: LiveServer) -> None:
        """Slowloris: a connection that never finishes its request is closed after
        handshake_timeout (0.8 s here), not held open for ever."""
        with socket.create_connection(("127.0.0.1", quick_server.port), timeout=5) as raw:
            raw.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
            raw.settimeout(0.1)
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                try:
                    if raw.recv(4096) == b"":
                        return  # closed by the server
                except TimeoutError:
                    continue
                except ConnectionResetError:
                    return
        pytest.fail("a half-sent handshake was still open after 3 s")

    def test_endless_request_headers_do_not_grow_server_memory(self, server: LiveServer) -> None:
        """4 MB of tiny headers in one request must be refused early, not parsed into a
        Python list (httptools has no limit: about 16 bytes of memory per byte sent)."""
        before = rss(server)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
            raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            flood(raw, b"X-A: b\r\n" * (MB // 8), 4 * MB, seconds=3)
            growth = peak_rss(server, 0.5) - before
        assert growth < 16 * MB, f"server memory grew by {growth // MB} MB"

    def test_control_characters_in_the_request_never_reach_the_server_log(
        self, server: LiveServer
    ) -> None:
        """Regression guard: terminal escapes, BEL and bidi overrides in a request target are
        refused or stay percent-encoded; the administrator's terminal never gets them raw."""
        targets = [
            b"/ws?\x1b[31mq",
            b"/ws?\x07",
            b"/ws?%1b[31m%07%e2%80%ae",
            b"/ws/%1b[31m",
            b"/static/%1b]0;owned%07",
            "/ws?\u202e".encode(),
        ]
        for target in targets:
            request = handshake_request(server.port).replace(b"/ws", target, 1)
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
                raw.sendall(request)
                raw.recv(4096)
        time.sleep(0.2)
        log = server.log_path.read_bytes()
        assert b"\x1b" not in log
        assert b"\x07" not in log
        assert "\u202e".encode() not in log

    @pytest.mark.parametrize(
        "path",
        [
            "/static/../app.py",
            "/static/%2e%2e/app.py",
            "/static/..%2fapp.py",
            "/static/%2e%2e%2f%2e%2e%2fcli.py",
            "/static/..%5capp.py",
            "/static/%2fetc%2fpasswd",
            "/static/../../../../../../etc/passwd",
            "/static/app.js%00.html",
            "/static/",
        ],
    )
    def test_static_path_traversal_is_refused(self, server: LiveServer, path: str) -> None:
        """Regression guard: /static serves its own directory and nothing outside it."""
        status, body = http_get(server, f"GET {path} HTTP/1.1")
        assert status == 404
        assert b"import" not in body and b"root:" not in body

    @pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "TRACE", "OPTIONS"])
    def test_unsupported_methods_are_refused(self, server: LiveServer, method: str) -> None:
        """Regression guard: only GET is routed; no TRACE echo, no docs or schema."""
        assert http_get(server, f"{method} / HTTP/1.1")[0] == 405
        assert http_get(server, "GET /docs HTTP/1.1")[0] == 404
        assert http_get(server, "GET /openapi.json HTTP/1.1")[0] == 404


# -- clients that stop reading ---------------------------------------------------------------


class TestHostileReader:
    def test_ping_flood_without_reading_does_not_grow_server_memory(
        self, quick_server: LiveServer
    ) -> None:
        """WebSocket pings sent by a client that never reads: the pongs must not pile up in
        the server's write buffer without bound (48 MB of pings here)."""
        before = rss(quick_server)
        with open_raw_websocket(quick_server.port) as raw:
            flood(raw, PING_125 * 8000, 48 * MB, seconds=3)
            growth = peak_rss(quick_server, 0.3) - before
        assert growth < 16 * MB, f"server memory grew by {growth // MB} MB"

    def test_client_that_stops_reading_is_released(self, quick_server: LiveServer) -> None:
        """A silent client whose socket the server can no longer write to is still closed and
        forgotten after heartbeat_timeout; its handler and buffers are not held for ever."""
        baseline = connections(quick_server)
        with open_raw_websocket(quick_server.port) as raw:
            flood(raw, PING_125 * 8000, 8 * MB, seconds=2)  # fills the server's send buffer
            deadline = time.monotonic() + 3
            while connections(quick_server) > baseline and time.monotonic() < deadline:
                time.sleep(0.1)
            assert connections(quick_server) == baseline, "the silent client is still served"


# -- state machine and identity --------------------------------------------------------------


class TestHostileStateAndIdentity:
    def test_stop_while_being_matched_keeps_the_protocol(
        self, slow_log_server: LiveServer, clients: OpenClient
    ) -> None:
        """A waiter who stops while its match is being recorded: neither side may see a chat
        end that it was never told had started (`stranger_left` before `matched`)."""
        a, b = clients(slow_log_server), clients(slow_log_server)
        a.join()
        b.send("join")
        b.expect("waiting")  # b's match with a is now being recorded, for at least 100 ms
        a.send("stop")
        broken = []
        for name, frames in (("waiter", drain(a)), ("joiner", drain(b))):
            matched = False
            for frame in frames:
                matched = matched or frame["type"] == "matched"
                ends_a_chat = frame["type"] == "stranger_left" or frame == {
                    "type": "ended",
                    "reason": "stopped",
                }
                if ends_a_chat and not matched:
                    broken.append(f"{name} got {frame} without `matched` ({frames})")
        assert not broken, "; ".join(broken)

    def test_message_then_immediate_close_is_logged_and_relayed(
        self, slow_log_server: LiveServer, clients: OpenClient
    ) -> None:
        """Regression guard: closing while one's message is being recorded neither loses it
        from the log nor reorders it after the `stranger_left`."""
        a, b = pair(clients, slow_log_server)
        a.send("message", text="last words")
        a.close()
        assert b.expect("message")["text"] == "last words"
        assert b.expect("stranger_left")["reason"] == "disconnected"

    def test_message_pipelined_with_join_arrives_after_matched(
        self, slow_log_server: LiveServer, clients: OpenClient
    ) -> None:
        """Regression guard: `join` and `message` sent back to back by the second person: the
        message is handled after the match is recorded, and each side hears `matched` first."""
        a, b = clients(slow_log_server), clients(slow_log_server)
        a.join()
        b.send("join")
        b.send("message", text="hi, right away")
        assert [f["type"] for f in drain(b)] == ["waiting", "matched", "sent"]
        frames = drain(a)
        assert [f["type"] for f in frames] == ["matched", "message"]
        assert frames[1]["text"] == "hi, right away"

    def test_client_close_code_1012_is_not_a_server_shutdown(
        self, server: LiveServer, clients: OpenClient
    ) -> None:
        """A client closing with 1012 must not make its stranger (and the log) believe the
        server is restarting: only the server's own shutdown is `server_shutdown`."""
        a, b = pair(clients, server)
        a.connection.close(code=1012)
        assert b.expect("stranger_left")["reason"] == "disconnected"

    def test_reported_ipv6_user_cannot_return_from_the_same_64(
        self, server: LiveServer, clients: OpenClient
    ) -> None:
        """An IPv6 user holds a whole /64 (privacy addresses rotate within it by themselves):
        a report must keep the reporter apart from the reported person's /64, not one address."""
        interest = "ipv6-report-test"
        reporter, reported = "2001:db8:a:1::1", "2001:db8:b:1::1"
        a = clients(server, forwarded_for=reporter)
        b = clients(server, forwarded_for=reported)
        a.join([interest])
        b.join([interest])
        a.expect("matched")
        b.expect("matched")
        a.send("report", reason="harassment")
        a.expect("reported")
        a.close()
        b.close()

        again = clients(server, forwarded_for=reporter)
        returning = clients(server, forwarded_for="2001:db8:b:1::2")  # same /64, new address
        again.join([interest])
        returning.join([interest])
        with pytest.raises(TimeoutError):
            frame = again.recv(timeout=1.0)  # past the 0.5 s interest fallback too
            pytest.fail(f"the reported /64 was paired with its reporter again: {frame}")
