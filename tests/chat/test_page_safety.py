"""Browser tests of the safety features of the chat page, through a live server.

The page's user is a real Chromium page; the stranger is a ``ChatClient`` speaking the
protocol (or a second page), so what the stranger receives is read off the wire. The server
runs with its default safety settings: personal information is held back with a `warning`,
and a sextortion pattern ends the chat (docs/protocol.md, docs/safety.md).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Dialog, Page, expect

from logwarden.store import SqlStore
from logwarden.testing import ChatClient, LiveServer
from tests.chat import test_page
from tests.chat.test_page import (
    PHONE,
    OpenPage,
    pair,
    pass_gate,
    record_frames,
    say,
    screenshot,
    start,
)

# The browser fixtures of the page tests: one Chromium for this module, and pages that fail
# the test on a script error or a Content-Security-Policy violation.
browser = test_page.browser
open_page = test_page.open_page

PHONE_MESSAGE = "call me at 415 555 0199"
DIGITS = "415 555 0199"
# Code points before the number: a family (5 code points, 8 UTF-16 units) and a party popper
# (1 code point, 2 units), so UTF-16 offsets would land 4 units early.
EMOJI_MESSAGE = "👩\u200d👩\u200d👧 🎉 call me at 415 555 0199"
HOSTILE_MESSAGE = "<img src=x onerror=alert(1)> 415 555 0199"
SEXTORTION = "I'll show everyone your pics unless you pay me $200"

Stranger = Callable[[str], ChatClient]


@pytest.fixture
def stranger(live_server: LiveServer) -> Iterator[Stranger]:
    """Connect protocol clients as strangers from `address`; closed after the test."""
    clients: list[ChatClient] = []

    def connect(address: str) -> ChatClient:
        client = ChatClient(live_server.ws_url, forwarded_for=address)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()


def sent_frames(page: Page) -> list[dict[str, Any]]:
    """Every JSON frame the page will send to the server, in order."""
    frames: list[dict[str, Any]] = []
    page.on(
        "websocket",
        lambda socket: socket.on(
            "framesent",
            lambda payload: (
                frames.append(json.loads(payload)) if isinstance(payload, str) else None
            ),
        ),
    )
    return frames


def pair_with_client(page: Page, client: ChatClient, interest: str) -> str:
    """Take the page through the gate and into one chat with `client`, on `interest`; the
    chat's session id."""
    pass_gate(page)
    start(page, interest)
    expect(page.locator("#status")).to_contain_text("Looking for a stranger")
    client.join([interest])
    session: str = client.expect("matched")["chat"]
    expect(page.locator("#status")).to_contain_text("You both like")
    return session


def logged_warnings(server: LiveServer, session: str, count: int) -> list[tuple[Any, Any]]:
    """(kinds, decision) of the session's logged warnings, once there are `count` of them
    (or after 5 s)."""
    deadline = time.monotonic() + 5
    store = SqlStore.sqlite(server.data_dir / "logwarden.db")
    try:
        while True:
            record = store.session(session)
            events = [] if record is None else record.safety
            details = [json.loads(e.detail) for e in events if e.kind == "warning"]
            warnings = [(d["kinds"], d["decision"]) for d in details]
            if len(warnings) >= count or time.monotonic() > deadline:
                return warnings
            time.sleep(0.05)
    finally:
        store.close()


def next_frame(client: ChatClient, kind: str) -> dict[str, Any]:
    """The next frame the client receives, which must be of type `kind`; typing indicators
    are skipped."""
    while True:
        frame = client.recv()
        if frame["type"] != "typing":
            assert frame["type"] == kind, frame
            return frame


def next_message(client: ChatClient) -> str:
    """The text of the next `message` the client receives."""
    text: str = next_frame(client, "message")["text"]
    return text


def type_and_send(page: Page, text: str) -> None:
    """Type `text` at once (like a paste) and press Enter."""
    page.fill("#message", text)
    page.press("#message", "Enter")


def messages(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [frame for frame in frames if frame["type"] in ("message", "cancel")]


class TestWarningDialog:
    def test_phone_number_waits_for_the_senders_choice(
        self, open_page: OpenPage, stranger: Stranger, live_server: LiveServer, tmp_path: Path
    ) -> None:
        """A phone number opens the dialog; Edit and Don't send send nothing, Send anyway does.
        The log holds one decision per warning: the text sent again unchanged after Edit is
        the same warning, so cancelled, then sent anyway (no "edited")."""
        alice = open_page("192.0.2.101")
        out = sent_frames(alice)
        bob = stranger("192.0.2.102")
        session = pair_with_client(alice, bob, "warning-cycle")

        say(alice, PHONE_MESSAGE)
        dialog = alice.locator("#warning-dialog")
        expect(dialog).to_be_visible()
        expect(dialog).to_have_attribute("role", "dialog")
        expect(dialog).to_have_attribute("aria-modal", "true")
        expect(dialog).to_have_accessible_name("Before you send this")
        expect(alice.locator("#warning-lead")).to_have_text(
            "This message looks like it shares a phone number."
        )
        expect(alice.locator("#warning-kinds li")).to_have_count(1)
        expect(alice.locator("#warning-kinds li")).to_contain_text("Phone number")
        expect(alice.locator("#warning-kinds li")).to_contain_text("outside this chat")
        expect(alice.locator("#warning-text")).to_have_text(PHONE_MESSAGE)
        expect(alice.locator("#warning-text mark")).to_have_text([DIGITS])
        expect(alice.locator("#warning-edit")).to_be_focused()
        expect(alice.locator("#log .msg.me")).to_have_count(0)  # not in the transcript
        screenshot(alice, tmp_path, "warning-dialog")

        alice.click("#warning-edit")
        expect(dialog).to_be_hidden()
        expect(alice.locator("#message")).to_have_value(PHONE_MESSAGE)
        expect(alice.locator("#message")).to_be_focused()
        expect(alice.locator("#log .msg.me")).to_have_count(0)

        alice.press("#message", "Enter")  # sent again as it was: a plain message, warned again
        expect(dialog).to_be_visible()
        alice.click("#warning-cancel")
        expect(dialog).to_be_hidden()
        expect(alice.locator("#message")).to_have_value("")
        expect(alice.locator("#message")).to_be_focused()
        expect(alice.locator("#log .msg.me")).to_have_count(0)
        expect(alice.locator("#log .sys").last).to_have_text("You didn't send that message.")

        say(alice, PHONE_MESSAGE)
        expect(dialog).to_be_visible()
        alice.click("#warning-send")
        expect(dialog).to_be_hidden()
        # The first message to reach the stranger is the one sent anyway: nothing came before.
        assert next_message(bob) == PHONE_MESSAGE
        mine = alice.locator("#log .msg.me")
        expect(mine).to_have_count(1)
        expect(mine).to_have_class("msg me is-delivered")
        expect(mine.locator(".bubble")).to_have_text(PHONE_MESSAGE)
        expect(alice.locator("#message")).to_be_focused()
        assert messages(out) == [
            {"type": "message", "text": PHONE_MESSAGE},
            {"type": "message", "text": PHONE_MESSAGE},
            {"type": "cancel"},
            {"type": "message", "text": PHONE_MESSAGE},
            {"type": "message", "text": PHONE_MESSAGE, "confirm": True},
        ]
        assert logged_warnings(live_server, session, 2) == [
            (["phone"], "cancelled"),
            (["phone"], "sent_anyway"),
        ]

        say(alice, "anyway, how is your day?")  # back to normal: no dialog
        assert next_message(bob) == "anyway, how is your day?"
        expect(alice.locator("#log .msg.me.is-delivered")).to_have_count(2)
        expect(dialog).to_be_hidden()

    def test_spans_are_code_points(self, open_page: OpenPage, stranger: Stranger) -> None:
        """Emoji before the number shift UTF-16 offsets but not the highlighted digits."""
        alice = open_page("192.0.2.103", viewport=PHONE)
        frames = record_frames(alice)
        bob = stranger("192.0.2.104")
        pair_with_client(alice, bob, "warning-emoji")

        type_and_send(alice, EMOJI_MESSAGE)
        expect(alice.locator("#warning-dialog")).to_be_visible()
        [warning] = [frame for frame in frames if frame["type"] == "warning"]
        [finding] = warning["findings"]
        assert EMOJI_MESSAGE[finding["start"] : finding["end"]] == DIGITS  # code points
        utf16 = EMOJI_MESSAGE.encode("utf-16-le")
        assert utf16[2 * finding["start"] : 2 * finding["end"]].decode("utf-16-le") != DIGITS
        expect(alice.locator("#warning-text mark")).to_have_text([DIGITS])
        expect(alice.locator("#warning-text")).to_have_text(EMOJI_MESSAGE)
        # At phone width the three choices are on screen, the safe ones first.
        boxes = [alice.locator(f"#warning-{b}").bounding_box() for b in ("edit", "cancel", "send")]
        for box in boxes:
            assert box is not None
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
            assert box["y"] + box["height"] <= PHONE["height"]
        assert [box["y"] for box in boxes if box] == sorted(box["y"] for box in boxes if box)

        alice.click("#warning-edit")  # the first finding is selected, ready to be changed
        selected = alice.evaluate(
            "(() => { const m = document.getElementById('message');"
            " return m.value.slice(m.selectionStart, m.selectionEnd); })()"
        )
        assert selected == DIGITS

    def test_message_text_is_inert(self, open_page: OpenPage, stranger: Stranger) -> None:
        """Markup in a warned message is shown as text: no element, no script, no CSP report."""
        alice = open_page("192.0.2.105")
        alerts: list[Dialog] = []
        alice.on("dialog", lambda d: (alerts.append(d), d.dismiss()))
        bob = stranger("192.0.2.106")
        pair_with_client(alice, bob, "warning-inert")

        type_and_send(alice, HOSTILE_MESSAGE)
        expect(alice.locator("#warning-dialog")).to_be_visible()
        text = alice.locator("#warning-text")
        expect(text).to_have_text(HOSTILE_MESSAGE)
        expect(text.locator("mark")).to_have_text([DIGITS])
        expect(text.locator("*")).to_have_count(1)  # the <mark>, and nothing else
        expect(alice.locator("img")).to_have_count(0)

        alice.click("#warning-send")
        assert next_message(bob) == HOSTILE_MESSAGE
        bubble = alice.locator("#log .msg.me .bubble")
        expect(bubble).to_have_text(HOSTILE_MESSAGE)
        expect(alice.locator("img")).to_have_count(0)
        assert alerts == []

    def test_escape_is_dont_send(self, open_page: OpenPage, stranger: Stranger) -> None:
        """Esc closes the dialog without sending, leaves the chat on and returns to the input."""
        alice = open_page("192.0.2.107")
        out = sent_frames(alice)
        bob = stranger("192.0.2.108")
        pair_with_client(alice, bob, "warning-escape")

        say(alice, "my email is sam.rivers@example.com")
        dialog = alice.locator("#warning-dialog")
        expect(dialog).to_be_visible()
        expect(alice.locator("#warning-lead")).to_contain_text("an email address")
        expect(alice.locator("#warning-text mark")).to_have_text(["sam.rivers@example.com"])
        alice.keyboard.press("Tab")  # focus stays in the modal dialog
        expect(alice.locator("#warning-cancel")).to_be_focused()
        alice.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        expect(alice.locator("#message")).to_be_focused()
        expect(alice.locator("#message")).to_have_value("")
        expect(alice.locator("#stop")).to_contain_text("Stop")  # Esc did not reach Stop
        assert messages(out)[-1] == {"type": "cancel"}

        say(alice, "never mind, what music do you like?")
        assert next_message(bob) == "never mind, what music do you like?"
        expect(alice.locator("#status")).to_contain_text("You both like")

    def test_stranger_leaving_closes_the_dialog(
        self, open_page: OpenPage, stranger: Stranger
    ) -> None:
        """If the stranger leaves while the dialog is open, it closes: nothing is left to send."""
        alice = open_page("192.0.2.111")
        out = sent_frames(alice)
        bob = stranger("192.0.2.112")
        pair_with_client(alice, bob, "warning-left")

        type_and_send(alice, "find me on snapchat: sam_rivers22")
        expect(alice.locator("#warning-dialog")).to_be_visible()
        expect(alice.locator("#warning-lead")).to_contain_text("a social or messaging account")
        bob.send("stop")
        next_frame(bob, "ended")
        expect(alice.locator("#warning-dialog")).to_be_hidden()
        expect(alice.locator("#status")).to_have_text("Stranger has disconnected.")
        expect(alice.locator("#stop")).to_be_focused()
        expect(alice.locator("#log .msg.me")).to_have_count(0)
        assert {"type": "cancel"} not in out  # the server dropped it with the chat


class TestSafetyNotice:
    def test_sextortion_ends_the_chat_for_your_safety(
        self, open_page: OpenPage, tmp_path: Path
    ) -> None:
        """A threat with a demand brings the notice and the safety ending; both stay in view."""
        alice = open_page("192.0.2.109")
        bob = open_page("192.0.2.110")
        frames = record_frames(alice)
        pair(alice, bob, "safety-notice")
        say(bob, SEXTORTION)

        expect(alice.locator("#log .msg.them .bubble")).to_have_text(SEXTORTION)
        notice = alice.locator("#safety-notice")
        expect(notice).to_be_visible()
        [safety] = [frame for frame in frames if frame["type"] == "safety"]
        assert "sextortion" in safety["flags"]
        expect(notice).to_have_attribute("role", "alert")
        expect(alice.locator("#safety-message")).to_have_text(safety["message"])
        ended = "This chat was ended for your safety."
        expect(alice.locator("#status")).to_have_text(ended)
        expect(alice.locator("#log .sys").last).to_have_text(ended)
        expect(alice.locator("#log")).not_to_contain_text("You have disconnected")
        expect(alice.locator("#message")).to_be_disabled()
        expect(alice.locator("#receipt")).to_be_visible()
        expect(alice.locator("#report")).to_be_enabled()  # still reportable after the end
        expect(notice).to_be_visible()  # after the end too
        screenshot(alice, tmp_path, "safety-notice")

        # The sender got no notice, and no "for your safety".
        expect(bob.locator("#status")).to_have_text("This chat was ended by our safety checks.")
        expect(bob.locator("#safety-notice")).to_be_hidden()

        alice.click("#safety-dismiss")
        expect(notice).to_be_hidden()
        expect(alice.locator("#stop")).to_be_focused()
