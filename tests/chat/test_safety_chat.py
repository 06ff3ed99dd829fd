"""The safety engine in the chat, against a real server: personal information is held back
until its sender decides, the decision is logged without the value, and a risky conversation
is escalated, preserved and ended as the policy says."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from logwarden.store import SqlStore
from logwarden.testing import ChatClient, LiveServer, serve_in_process
from tests.chat.test_chat_server import NewIP, assert_silent, pair
from tests.conftest import TEST_SERVER_ENV

PHONE = "415 555 0199"
SEXTORTION = "I'll show everyone your pics unless you pay me $200"


@pytest.fixture
def clients(live_server: LiveServer, new_ip: NewIP) -> Iterator[Callable[..., ChatClient]]:
    """Open clients, each from its own address; all are closed after the test."""
    with ExitStack() as stack:

        def open_client(**kwargs: object) -> ChatClient:
            kwargs.setdefault("forwarded_for", new_ip())
            return stack.enter_context(ChatClient(live_server.ws_url, **kwargs))  # type: ignore[arg-type]

        yield open_client


def safety_events(server: LiveServer, session_id: str) -> list[tuple[str, dict[str, object]]]:
    """The session's safety events as the log holds them, once the log has them."""
    deadline = time.monotonic() + 5
    store = SqlStore.sqlite(server.data_dir / "logwarden.db")
    try:
        while True:
            record = store.session(session_id)
            events = (
                [] if record is None else [(e.kind, json.loads(e.detail)) for e in record.safety]
            )
            if events or time.monotonic() > deadline:
                return events
            time.sleep(0.05)
    finally:
        store.close()


def matched_pair(clients: Callable[..., ChatClient]) -> tuple[ChatClient, ChatClient, str]:
    a, b = clients(), clients()
    a.join()
    b.join()
    session = a.expect("matched")["chat"]
    b.expect("matched")
    return a, b, session


class TestWarnings:
    def test_personal_information_is_held_back_with_a_warning(
        self, clients: Callable[..., ChatClient]
    ) -> None:
        """A message with a phone number gets a warning naming the kind and its span, and the
        stranger receives nothing."""
        a, b, _ = matched_pair(clients)
        text = f"call me at {PHONE} ok"
        a.send("message", text=text)
        warning = a.expect("warning")
        assert warning["text"] == text
        (finding,) = warning["findings"]
        assert finding["kind"] == "phone"
        assert text[finding["start"] : finding["end"]] == PHONE
        assert finding["reason"]
        assert_silent(b)

    def test_send_anyway_delivers_it(self, clients: Callable[..., ChatClient]) -> None:
        """Sending it again with confirm delivers it; the log records the kinds and the
        decision, not the number."""
        a, b, _ = matched_pair(clients)
        a.send("message", text=f"my number is {PHONE}")
        a.expect("warning")
        a.send("message", text=f"my number is {PHONE}", confirm=True)
        assert a.expect("sent")["seq"] == 1
        assert b.expect("message")["text"] == f"my number is {PHONE}"

    def test_cancel_drops_it(self, clients: Callable[..., ChatClient]) -> None:
        """Cancelling drops the message; a second cancel has nothing to cancel."""
        a, b, _ = matched_pair(clients)
        a.send("message", text=f"text me {PHONE}")
        a.expect("warning")
        a.send("cancel")
        a.send("cancel")
        assert a.expect("error")["code"] == "no_warning"
        assert_silent(b)

    def test_a_message_without_personal_information_is_not_held(
        self, clients: Callable[..., ChatClient]
    ) -> None:
        """Numbers that are not personal information pass: times, scores, prices."""
        a, b = pair(clients)
        for text in ("I'm 5 minutes away", "we won 21-14", "it costs $19.99", "call of duty?"):
            a.send("message", text=text)
            a.expect("sent")
            assert b.expect("message")["text"] == text

    def test_replies_keep_their_order(self, clients: Callable[..., ChatClient]) -> None:
        """A warning answers its message in order, after the replies to earlier messages."""
        a, _b = pair(clients)
        a.send("message", text="first")
        a.send("message", text=f"second {PHONE}")
        a.send("message", text="third")
        assert [a.recv()["type"] for _ in range(3)] == ["sent", "warning", "sent"]


class TestWhatIsLogged:
    def test_decisions_are_logged_without_the_values(
        self, live_server: LiveServer, clients: Callable[..., ChatClient]
    ) -> None:
        """Each warning's outcome is a safety event with the kinds and the decision: cancelled,
        edited, sent anyway, left. The warned text is in no event."""
        a, _b, session = matched_pair(clients)
        a.send("message", text="email me at name@example.com")
        a.expect("warning")
        a.send("cancel")
        a.send("message", text="add me on snap: riverfox22")
        a.expect("warning")
        a.send("message", text="never mind")  # edited: a new text without findings
        a.expect("sent")
        a.send("message", text=f"ok {PHONE}", confirm=True)
        a.expect("sent")
        a.send("message", text="my ip is 192.0.2.55")
        a.expect("warning")
        a.send("stop")
        a.expect("ended")
        time.sleep(0.3)  # the last decision is logged as the chat ends
        events = safety_events(live_server, session)
        warnings = [detail for kind, detail in events if kind == "warning"]
        assert [(w["kinds"], w["decision"]) for w in warnings] == [
            (["email"], "cancelled"),
            (["handle"], "edited"),
            (["phone"], "sent_anyway"),
            (["ip"], "left"),
        ]
        stored = json.dumps(events)
        for value in ("name@example.com", "riverfox22", "555", "192.0.2.55"):
            assert value not in stored

    def test_the_same_text_again_is_not_an_edit(
        self, live_server: LiveServer, clients: Callable[..., ChatClient]
    ) -> None:
        """Sending the warned text again unchanged (the page's Edit, then Enter) warns again
        and logs nothing yet: the one warning is settled by what the sender does next. A
        changed text with findings is an edit of the first and a warning of its own."""
        a, _b, session = matched_pair(clients)
        a.send("message", text=f"call me {PHONE}")
        a.expect("warning")
        a.send("message", text=f"call me {PHONE}")  # unchanged
        a.expect("warning")
        a.send("cancel")
        a.send("message", text="my ip is 192.0.2.55")
        a.expect("warning")
        a.send("message", text="my ip is 192.0.2.56")  # changed: an edit
        a.expect("warning")
        a.send("message", text="my ip is 192.0.2.56", confirm=True)
        a.expect("sent")
        time.sleep(0.3)
        warnings = [d for kind, d in safety_events(live_server, session) if kind == "warning"]
        assert [(w["kinds"], w["decision"]) for w in warnings] == [
            (["phone"], "cancelled"),
            (["ip"], "edited"),
            (["ip"], "sent_anyway"),
        ]


class TestRisk:
    def test_sextortion_ends_the_chat_and_preserves_it(
        self, live_server: LiveServer, clients: Callable[..., ChatClient]
    ) -> None:
        """A threat to share pictures with a demand for money: the person threatened gets the
        safety message, both get `ended` with reason safety, and the session is preserved in
        the reported class with a risk event whose reasons name the message and indicators."""
        a, b, session = matched_pair(clients)
        a.send("message", text="hey")
        a.expect("sent")
        b.expect("message")
        a.send("message", text=SEXTORTION)
        assert a.expect("sent")["seq"] == 2
        assert b.expect("message")["text"] == SEXTORTION
        notice = b.expect("safety")
        assert "sextortion" in notice["flags"] and notice["message"]
        assert b.expect("ended")["reason"] == "safety"
        assert a.expect("ended")["reason"] == "safety"
        risk = [detail for kind, detail in safety_events(live_server, session) if kind == "risk"]
        assert risk and risk[-1]["level"] == "high" and risk[-1]["preserve"] is True
        named = {(r["indicator"], r["message"]) for r in risk[-1]["reasons"]}  # type: ignore[union-attr]
        # Reasons name the message by its seq in the chat (the threat was message 2).
        assert {("sextortion.threat", 2), ("sextortion.demand", 2)} <= named
        assert SEXTORTION not in json.dumps(risk)
        store = SqlStore.sqlite(live_server.data_dir / "logwarden.db")
        try:
            state = store.retention_state(session)
        finally:
            store.close()
        assert state is not None and state.reported_at is not None

    def test_a_minor_disclosing_their_age_is_flagged_not_ended(
        self, live_server: LiveServer, clients: Callable[..., ChatClient]
    ) -> None:
        """A participant who says they are 13 (sent anyway after the warning) flags the
        session `minor` for review and preservation; an ordinary chat goes on."""
        a, b, session = matched_pair(clients)
        b.send("message", text="im 13 lol")
        assert b.expect("warning")["findings"][0]["kind"] == "age"
        b.send("message", text="im 13 lol", confirm=True)
        b.expect("sent")
        a.expect("message")
        a.send("message", text="cool, what games do you play")
        a.expect("sent")
        b.expect("message")
        risk = [detail for kind, detail in safety_events(live_server, session) if kind == "risk"]
        assert risk and risk[0]["flags"] == ["minor"] and risk[0]["preserve"] is True

    def test_a_benign_chat_raises_nothing(
        self, live_server: LiveServer, clients: Callable[..., ChatClient]
    ) -> None:
        """Small talk between adults gives no safety event at all."""
        a, b, session = matched_pair(clients)
        for sender, receiver, text in (
            (a, b, "hi! how's your day"),
            (b, a, "good, just got back from work, im 27 so adulting lol"),
            (a, b, "same, making pasta tonight"),
        ):
            sender.send("message", text=text)
            sender.expect("sent")
            receiver.expect("message")
        a.send("stop")
        a.expect("ended")
        time.sleep(0.3)
        assert safety_events(live_server, session) == []


class TestSwitchedOff:
    def test_with_the_engine_off_everything_is_relayed(self, tmp_path: Path, new_ip: NewIP) -> None:
        """`warn_personal_info = false` and `score_risk = false` relay everything as before."""
        env = {
            **TEST_SERVER_ENV,
            "LOGWARDEN_SAFETY__WARN_PERSONAL_INFO": "false",
            "LOGWARDEN_SAFETY__SCORE_RISK": "false",
        }
        with (
            serve_in_process(tmp_path / "data", env=env) as server,
            ChatClient(server.ws_url, forwarded_for=new_ip()) as a,
            ChatClient(server.ws_url, forwarded_for=new_ip()) as b,
        ):
            a.join()
            b.join()
            a.expect("matched")
            b.expect("matched")
            for text in (f"call {PHONE}", SEXTORTION):
                a.send("message", text=text)
                a.expect("sent")
                assert b.expect("message")["text"] == text
            assert_silent(b)
