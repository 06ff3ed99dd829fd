"""The chat against a real server process: pairing, relay, stop/next, reports, bad input."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from logwarden.testing import ChatClient, LiveServer

NewIP = Callable[[], str]


@pytest.fixture
def clients(live_server: LiveServer, new_ip: NewIP) -> Iterator[Callable[..., ChatClient]]:
    """Open clients, each from its own address; all are closed after the test."""
    with ExitStack() as stack:

        def open_client(**kwargs: object) -> ChatClient:
            kwargs.setdefault("forwarded_for", new_ip())
            return stack.enter_context(ChatClient(live_server.ws_url, **kwargs))  # type: ignore[arg-type]

        yield open_client


def pair(clients: Callable[..., ChatClient]) -> tuple[ChatClient, ChatClient]:
    a, b = clients(), clients()
    a.join()
    b.join()
    assert a.expect("matched")["interests"] == []
    assert b.expect("matched")["interests"] == []
    return a, b


def assert_silent(client: ChatClient, seconds: float = 0.3) -> None:
    with pytest.raises(TimeoutError):
        frame = client.recv(timeout=seconds)
        pytest.fail(f"expected no frame, got {frame}")


class TestPairing:
    def test_two_random_clients_are_paired(self, clients: Callable[..., ChatClient]) -> None:
        """Two clients joining without interests are matched with each other."""
        a, b = pair(clients)
        a.send("message", text="hi, I like chess")
        assert b.expect("message")["text"] == "hi, I like chess"

    def test_hello_states_limits_and_retention(self, clients: Callable[..., ChatClient]) -> None:
        """The first frame tells the client the protocol version, limits and retention."""
        hello = clients().hello
        assert hello["protocol"] == 1
        assert hello["limits"]["max_message_chars"] == 1000
        assert hello["retention"]["session_days"] == 30

    def test_a_lone_client_keeps_waiting(self, clients: Callable[..., ChatClient]) -> None:
        """A client is never paired with itself: alone, it just waits."""
        a = clients()
        a.join()
        assert_silent(a, 0.8)

    def test_shared_interests_are_preferred(self, clients: Callable[..., ChatClient]) -> None:
        """A client with interests is paired with the waiter sharing one, not the first waiter."""
        knitter, chess_player, newcomer = clients(), clients(), clients()
        knitter.join(["knitting-pairing-test"])
        chess_player.join(["chess-pairing-test", "jazz-pairing-test"])
        newcomer.join(["Jazz-Pairing-Test"])
        assert newcomer.expect("matched")["interests"] == ["jazz-pairing-test"]
        assert chess_player.expect("matched")["interests"] == ["jazz-pairing-test"]
        knitter.send("stop")
        assert knitter.expect("ended")["reason"] == "cancelled"

    def test_interests_fall_back_to_random(self, clients: Callable[..., ChatClient]) -> None:
        """With no one sharing an interest, a client is paired at random after the fallback wait."""
        a, b = clients(), clients()
        a.join(["an-interest-nobody-has"])
        b.join()
        started = time.monotonic()
        assert a.expect("matched")["interests"] == []
        assert b.expect("matched")["interests"] == []
        assert time.monotonic() - started >= 0.3  # the test server waits 0.5 s

    def test_reported_stranger_is_never_paired_again(
        self, clients: Callable[..., ChatClient], new_ip: NewIP
    ) -> None:
        """After a report, the two addresses are not paired again, even on new connections."""
        reporter_ip, reported_ip = new_ip(), new_ip()
        reporter = clients(forwarded_for=reporter_ip)
        reported = clients(forwarded_for=reported_ip)
        reporter.join(["report-pairing-test"])
        reported.join(["report-pairing-test"])
        reporter.expect("matched")
        reported.expect("matched")
        reporter.send("report", reason="harassment", comment="rude, then threatening")
        reporter.expect("reported")
        reporter.send("stop")
        reporter.expect("ended")
        reported.expect("stranger_left")

        again_reporter = clients(forwarded_for=reporter_ip)
        again_reported = clients(forwarded_for=reported_ip)
        again_reporter.join(["report-pairing-test"])
        again_reported.join(["report-pairing-test"])
        assert_silent(again_reporter, 1.0)  # past the fallback wait too
        third = clients()
        third.join(["report-pairing-test"])
        assert third.expect("matched")["interests"] == ["report-pairing-test"]
        again_reporter.expect("matched")


class TestConversation:
    def test_messages_flow_both_ways_in_order(self, clients: Callable[..., ChatClient]) -> None:
        """Each message reaches the stranger once, in order, and the sender gets a `sent` ack."""
        a, b = pair(clients)
        for i in range(5):
            a.send("message", text=f"from a {i}")
            sent = a.expect("sent")
            got = b.expect("message")
            assert (got["text"], got["seq"], got["at"]) == (f"from a {i}", sent["seq"], sent["at"])
        b.send("message", text="  from b, trimmed  ")
        assert a.expect("message")["text"] == "from b, trimmed"
        assert b.expect("sent")["seq"] == 6

    def test_message_then_stop_still_delivers_the_message(
        self, clients: Callable[..., ChatClient]
    ) -> None:
        """ "bye" sent right before Stop reaches the stranger before they learn the chat ended."""
        a, b = pair(clients)
        a.send("message", text="bye!")
        a.send("stop")
        assert a.expect("sent")["seq"] == 1
        assert a.expect("ended")["reason"] == "stopped"
        assert b.expect("message")["text"] == "bye!"
        assert b.expect("stranger_left")["reason"] == "stopped"

    def test_replies_keep_the_order_of_the_frames(self, clients: Callable[..., ChatClient]) -> None:
        """Pipelined frames are answered in order, errors included, with what they answer."""
        a, b = pair(clients)
        a.send("message", text="one")
        a.send("message", text="")
        a.send("message", text="two")
        a.send("teleport")
        assert a.expect("sent")["seq"] == 1
        empty = a.expect("error")
        assert (empty["code"], empty["in_reply_to"]) == ("empty_message", "message")
        assert a.expect("sent")["seq"] == 2
        error = a.expect("error")
        assert (error["code"], error.get("in_reply_to")) == ("unknown_type", None)
        assert [b.expect("message")["text"] for _ in range(2)] == ["one", "two"]

    def test_typing_is_relayed(self, clients: Callable[..., ChatClient]) -> None:
        """Typing indicators reach the stranger."""
        a, b = pair(clients)
        a.send("typing", active=True)
        assert b.expect("typing")["active"] is True
        a.send("typing", active=False)
        assert b.expect("typing")["active"] is False

    def test_stop_ends_the_chat_for_both(self, clients: Callable[..., ChatClient]) -> None:
        """Stop ends the chat: the stopper gets `ended`, the stranger `stranger_left`."""
        a, b = pair(clients)
        a.send("stop")
        assert a.expect("ended")["reason"] == "stopped"
        assert b.expect("stranger_left")["reason"] == "stopped"
        b.send("message", text="anyone?")
        assert b.expect("error")["code"] == "not_in_chat"

    def test_next_moves_on_to_a_new_stranger(self, clients: Callable[..., ChatClient]) -> None:
        """Next leaves the chat and queues again; a third client is then paired with the leaver."""
        a, b = pair(clients)
        a.send("next")
        assert b.expect("stranger_left")["reason"] == "next"
        a.expect("waiting")
        c = clients()
        c.join()
        a.expect("matched")
        c.expect("matched")
        c.send("message", text="hello new friend")
        assert a.expect("message")["text"] == "hello new friend"
        assert_silent(b)

    def test_disconnect_is_noticed(self, clients: Callable[..., ChatClient]) -> None:
        """Closing the socket ends the chat; the stranger is told."""
        a, b = pair(clients)
        a.close()
        assert b.expect("stranger_left")["reason"] == "disconnected"

    def test_report_after_the_chat_ended(self, clients: Callable[..., ChatClient]) -> None:
        """A chat can still be reported shortly after the stranger left, but only once."""
        a, b = pair(clients)
        b.send("stop")
        a.expect("stranger_left")
        a.send("report", reason="spam")
        a.expect("reported")
        a.send("report", reason="spam")
        assert a.expect("error")["code"] == "already_reported"

    def test_nothing_to_report(self, clients: Callable[..., ChatClient]) -> None:
        """A fresh connection has nothing to report."""
        a = clients()
        a.send("report", reason="spam")
        assert a.expect("error")["code"] == "nothing_to_report"


class TestBadInput:
    @pytest.mark.parametrize(
        ("frame", "code"),
        [
            ("not json", "invalid_json"),
            ("[1, 2]", "invalid_frame"),
            ('{"text": "no type"}', "invalid_frame"),
            ('{"type": "teleport"}', "unknown_type"),
            ('{"type": "message", "text": 42}', "invalid_field"),
            ('{"type": "message", "text": "   "}', "empty_message"),
            ('{"type": "message", "text": "\\ud800"}', "invalid_utf8"),
            ('{"type": "join", "interests": "chess"}', "invalid_field"),
            ('{"type": "join", "interests": ["' + "x" * 33 + '"]}', "invalid_field"),
            (
                '{"type": "join", "interests": ' + json.dumps([str(i) for i in range(11)]) + "}",
                "invalid_field",
            ),
            ('{"type": "report", "reason": "because"}', "invalid_field"),
            ('{"type": "typing", "active": "yes"}', "invalid_field"),
            ("[" * 50_00 + "]" * 50_00, "invalid_json"),
            ('{"type": "stop"}', "not_joined"),
        ],
    )
    def test_bad_frame_gets_an_error_and_the_chat_lives_on(
        self, clients: Callable[..., ChatClient], frame: str, code: str
    ) -> None:
        """A bad frame gets an error frame with a stable code, and the connection stays usable."""
        a = clients()
        a.send_raw(frame)
        error = a.expect("error")
        assert error["code"] == code
        assert error["message"]
        a.join()  # still alive and in a sane state

    def test_message_too_long(self, clients: Callable[..., ChatClient]) -> None:
        """A message over the limit is refused and not relayed."""
        a, b = pair(clients)
        a.send("message", text="x" * 1001)
        assert a.expect("error")["code"] == "message_too_long"
        assert_silent(b)
        a.send("message", text="x" * 1000)
        assert b.expect("message")["text"] == "x" * 1000

    def test_binary_frame_with_invalid_utf8(self, clients: Callable[..., ChatClient]) -> None:
        """A binary frame that is not UTF-8 gets `invalid_utf8`; valid binary JSON works."""
        a, b = pair(clients)
        a.send_raw(b'{"type": "message", "text": "\xff\xfe"}')
        assert a.expect("error")["code"] == "invalid_utf8"
        a.send_raw('{"type": "message", "text": "caf\u00e9 via binary"}'.encode())
        assert b.expect("message")["text"] == "caf\u00e9 via binary"

    def test_frame_too_large_gets_an_error(self, clients: Callable[..., ChatClient]) -> None:
        """A frame over max_frame_bytes (but under the transport limit) gets an error frame."""
        a = clients()
        a.send_raw(json.dumps({"type": "message", "text": "y" * 20_000}))
        assert a.expect("error")["code"] == "frame_too_large"
        a.join()

    def test_frame_over_the_transport_limit_closes_1009(
        self, clients: Callable[..., ChatClient]
    ) -> None:
        """A frame over the transport limit is refused by the WebSocket layer with 1009."""
        a, b = pair(clients)
        a.send_raw("z" * 100_000)
        with pytest.raises(ConnectionClosed) as closed:
            a.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        assert b.expect("stranger_left")["reason"] == "disconnected"

    def test_text_frame_with_invalid_utf8_closes_1007(self, live_server: LiveServer) -> None:
        """A text frame with invalid UTF-8 fails the connection with 1007, as RFC 6455 requires."""
        with connect(live_server.ws_url) as ws:
            ws.recv()
            # The client library refuses to send invalid UTF-8 as text, so write the frame by hand.
            frame = bytes([0x81, 0x82, 0, 0, 0, 0]) + b"\xff\xfe"  # FIN+text, masked, zero mask
            ws.socket.sendall(frame)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007

    def test_message_flood_is_rate_limited(self, clients: Callable[..., ChatClient]) -> None:
        """More messages than the rate allows get `rate_limited`; those within it are relayed."""
        a, b = pair(clients)
        for i in range(15):
            a.send("message", text=f"flood {i}")
        codes = []
        relayed = 0
        for _ in range(15):
            frame = a.recv()
            if frame["type"] == "error":
                codes.append(frame["code"])
            else:
                assert frame["type"] == "sent"
                relayed += 1
        assert set(codes) == {"rate_limited"}
        assert 10 <= relayed < 15  # a burst of 10, plus what refilled meanwhile
        for _ in range(relayed):
            b.expect("message")

    def test_persistent_abuse_closes_1008(self, clients: Callable[..., ChatClient]) -> None:
        """A client that keeps sending garbage is closed with 1008; its stranger is told."""
        a, b = pair(clients)
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(200):
                a.send_raw("garbage")
                time.sleep(0.001)
            while True:
                a.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert b.expect("stranger_left")["reason"] == "abuse"

    def test_abuser_does_not_affect_other_pairs(self, clients: Callable[..., ChatClient]) -> None:
        """While one client floods, another pair keeps chatting normally."""
        abuser, victim = pair(clients)
        c, d = pair(clients)
        for i in range(100):
            with contextlib.suppress(ConnectionClosed):  # it gets closed for abuse midway
                abuser.send_raw("{" * (i % 7))
            if i % 10 == 0:
                c.send("message", text=f"still fine {i}")
                c.expect("sent")
                assert d.expect("message")["text"] == f"still fine {i}"
        d.send("message", text="and back")
        assert c.expect("message")["text"] == "and back"
        assert victim.expect("stranger_left")["reason"] == "abuse"


class TestHandshake:
    def test_foreign_origin_is_refused(self, live_server: LiveServer) -> None:
        """Another site's page cannot open a chat: the handshake gets 403."""
        with pytest.raises(InvalidStatus) as refused:
            ChatClient(live_server.ws_url, origin="https://evil.example")
        assert refused.value.response.status_code == 403

    def test_own_origin_and_no_origin_are_allowed(self, live_server: LiveServer) -> None:
        """The page's own origin and clients without Origin (bots) may connect."""
        with ChatClient(live_server.ws_url, origin=live_server.url) as page:
            assert page.hello["type"] == "hello"
        with ChatClient(live_server.ws_url) as bot:
            assert bot.hello["type"] == "hello"
