"""Browser tests of the chat page: real Chromium pages talking through a live server.

Each page gets its own browser context (its own sessionStorage and cookies) and its own
client address through ``X-Forwarded-For`` (the test server trusts 127.0.0.1 as a proxy).
Addresses come from 192.0.2.0/24 (TEST-NET-1) and are fresh per test, because pages that
reported one another are never paired again.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    WebSocket,
    expect,
    sync_playwright,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 10_000  # pairing and logging go through a real server; be patient

OpenPage = Callable[..., Page]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Debian Chromium for the module; skipped (or failed) when it is missing."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} not found: install Debian's chromium package to run browser tests"
        if os.environ.get("LOGWARDEN_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser: Browser, live_server: Any) -> Iterator[OpenPage]:
    """Open the chat page in a fresh context, as a client at `address`.

    On teardown, fails if any page hit a script error or a Content-Security-Policy violation.
    """
    contexts = []
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            problems.append(f"CSP: {message.text}")

    def _open(address: str, *, viewport: dict[str, int] = DESKTOP) -> Page:
        context = browser.new_context(
            viewport=viewport,  # type: ignore[arg-type]
            extra_http_headers={"X-Forwarded-For": address},
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("console", on_console)
        page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
        page.goto(live_server.url + "/")
        return page

    yield _open
    for context in contexts:
        context.close()
    assert problems == []


def pass_gate(page: Page) -> None:
    """Confirm the age gate and wait for the interests form."""
    page.check("#age-confirm")
    page.click("#age-continue")
    expect(page.locator("#interests")).to_be_visible()


def start(page: Page, *interests: str) -> None:
    """Type `interests` as chips and press Start."""
    for interest in interests:
        page.fill("#interests", interest)
        page.press("#interests", "Enter")
    page.click("#start")


def pair(first: Page, second: Page, *interests: str) -> None:
    """Take both pages through the gate and into one chat."""
    for page in (first, second):
        pass_gate(page)
        start(page, *interests)
    for page in (first, second):
        expect(page.locator("#status")).to_contain_text("You're now chatting with")


def say(page: Page, text: str) -> None:
    """Type `text` into the message box and press Enter."""
    page.locator("#message").press_sequentially(text, delay=15)
    page.press("#message", "Enter")


def record_frames(page: Page) -> list[dict[str, Any]]:
    """Every JSON frame the page will receive from the server, in order."""
    frames: list[dict[str, Any]] = []

    def on_socket(socket: WebSocket) -> None:
        socket.on(
            "framereceived",
            lambda payload: (
                frames.append(json.loads(payload)) if isinstance(payload, str) else None
            ),
        )

    page.on("websocket", on_socket)
    return frames


def matched_frames(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [frame for frame in frames if frame["type"] == "matched"]


def screenshot(page: Page, directory: Path, name: str) -> Path:
    """Save a screenshot as `directory/name.png` and check that it was written."""
    path = directory / f"{name}.png"
    page.screenshot(path=str(path))
    assert path.is_file()
    assert path.stat().st_size > 0
    return path


class TestChatPage:
    def test_age_gate_comes_first(self, open_page: OpenPage, tmp_path: Path) -> None:
        """Only the gate and the recording notice are usable until the visitor confirms 18+."""
        page = open_page("192.0.2.1")
        notice = page.locator("#notice")
        expect(notice).to_be_visible()
        expect(notice).to_contain_text("Chats are recorded for safety")
        expect(notice).not_to_contain_text("{{")
        expect(page.locator("#start")).to_be_hidden()
        expect(page.locator("#message")).to_be_hidden()
        screenshot(page, tmp_path, "gate")

        page.click("#age-continue")
        expect(page.locator("#gate-error")).to_be_visible()
        expect(page.locator("#start")).to_be_hidden()

        pass_gate(page)
        expect(page.locator("#notice")).to_be_visible()
        screenshot(page, tmp_path, "lobby")
        page.reload()
        expect(page.locator("#interests")).to_be_visible()  # remembered for the session
        expect(page.locator("#gate")).to_be_hidden()

    def test_two_strangers_chat_and_one_stops(self, open_page: OpenPage, tmp_path: Path) -> None:
        """Two pages pair on a shared interest, talk both ways, see typing; Esc twice ends it."""
        alice = open_page("192.0.2.11")
        bob = open_page("192.0.2.12")

        pass_gate(alice)
        start(alice, "chess", "jazz")
        expect(alice.locator("#status")).to_contain_text("Looking for a stranger")
        screenshot(alice, tmp_path, "waiting")

        pass_gate(bob)
        start(bob, "chess")
        for page in (alice, bob):
            expect(page.locator("#status")).to_contain_text("You both like: chess")
        expect(alice.locator("#report")).to_be_enabled()

        alice.locator("#message").press_sequentially("hi, I like ch", delay=15)
        expect(bob.locator("#typing")).to_be_visible()
        expect(bob.locator("#typing")).to_have_text("Stranger is typing…")
        alice.locator("#message").press_sequentially("ess", delay=15)
        alice.press("#message", "Enter")
        expect(bob.locator("#log .msg.them .bubble")).to_have_text("hi, I like chess")
        expect(bob.locator("#typing")).to_be_hidden()
        expect(alice.locator("#log .msg.me.is-delivered")).to_have_count(1)

        bob.locator("#message").press_sequentially("hello! me too, and jazz", delay=15)
        bob.click("#send")
        expect(alice.locator("#log .msg.them .bubble")).to_have_text("hello! me too, and jazz")
        say(alice, "e4 or d4?")
        expect(bob.locator("#log .msg.them").last).to_contain_text("e4 or d4?")
        expect(alice.locator("#log .msg.me.is-delivered")).to_have_count(2)
        screenshot(alice, tmp_path, "conversation-alice")
        screenshot(bob, tmp_path, "conversation-bob")

        alice.focus("#message")
        alice.keyboard.press("Escape")
        expect(alice.locator("#stop")).to_contain_text("Really?")
        alice.keyboard.press("Escape")
        expect(bob.locator("#status")).to_have_text("Stranger has disconnected.")
        expect(bob.locator("#log")).to_contain_text("Stranger has disconnected.")
        expect(bob.locator("#message")).to_be_disabled()
        expect(bob.locator("#stop")).to_contain_text("New")
        expect(alice.locator("#status")).to_have_text("You have disconnected.")
        expect(alice.locator("#stop")).to_contain_text("New")
        screenshot(bob, tmp_path, "stranger-left")

        alice.keyboard.press("Escape")  # a third Esc starts a new chat with the same interests
        expect(alice.locator("#status")).to_contain_text("Looking for a stranger who likes chess")
        alice.keyboard.press("Escape")  # stop looking, so no later test meets a closing page
        expect(alice.locator("#status")).to_contain_text("You stopped looking")

    def test_report_dialog(self, open_page: OpenPage, tmp_path: Path) -> None:
        """Reporting the stranger through the dialog is confirmed on the page."""
        alice = open_page("192.0.2.21")
        bob = open_page("192.0.2.22")
        pair(alice, bob)
        expect(alice.locator("#status")).to_contain_text("a random stranger")
        say(bob, "buy cheap followers at my site")
        expect(alice.locator("#log .msg.them")).to_contain_text("buy cheap followers")

        alice.click("#report")
        dialog = alice.locator("#report-dialog")
        expect(dialog).to_be_visible()
        alice.click("#report-submit")  # no reason chosen yet: the dialog stays open
        expect(alice.locator("#report-error")).to_be_visible()
        expect(dialog).to_be_visible()
        alice.select_option("#report-reason", "spam")
        comment = "advertising in the first message"
        alice.fill("#report-comment", comment)
        expect(alice.locator("#report-comment-count")).to_have_text(f"{len(comment)} / 500")
        screenshot(alice, tmp_path, "report-dialog")

        alice.click("#report-submit")
        expect(dialog).to_be_hidden()
        expect(alice.locator("#log .sys-report-confirm")).to_contain_text("Your report was sent")
        expect(alice.locator("#report")).to_be_disabled()
        screenshot(alice, tmp_path, "reported")

    def test_phone_width(self, open_page: OpenPage, tmp_path: Path) -> None:
        """At 390x844 the whole page fits the width and the chat stays usable."""
        alice = open_page("192.0.2.31", viewport=PHONE)
        bob = open_page("192.0.2.32", viewport=PHONE)
        screenshot(alice, tmp_path, "phone-gate")
        pair(alice, bob, "hiking")
        say(alice, "hi, I like chess")
        expect(bob.locator("#log .msg.them")).to_contain_text("hi, I like chess")
        say(bob, "hi! I prefer hiking, but chess is fun too. Do you play online or over the board?")
        expect(alice.locator("#log .msg.them")).to_contain_text("over the board")
        bob.locator("#message").press_sequentially("thinking", delay=15)
        expect(alice.locator("#typing")).to_be_visible()
        for page in (alice, bob):
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0
            for selector in ("#stop", "#message", "#send", "#report"):
                box = page.locator(selector).bounding_box()
                assert box is not None, selector
                assert box["x"] >= 0, selector
                assert box["x"] + box["width"] <= PHONE["width"], selector
        screenshot(alice, tmp_path, "phone-conversation")

    def test_receipt_link_after_the_chat_ends(self, open_page: OpenPage, tmp_path: Path) -> None:
        """Once a chat ends, both sides get a link to their own receipt, until the next chat."""
        alice = open_page("192.0.2.41")
        bob = open_page("192.0.2.42")
        expect(alice.locator("#notice")).to_contain_text("you get a receipt")
        frames = {page: record_frames(page) for page in (alice, bob)}
        pair(alice, bob)
        for page in (alice, bob):
            expect(page.locator("#receipt")).to_be_hidden()  # not while the chat is on
        say(bob, "nice to meet you")
        expect(alice.locator("#log .msg.them")).to_contain_text("nice to meet you")

        alice.click("#stop")
        alice.click("#stop")  # "Really?"
        expect(alice.locator("#status")).to_have_text("You have disconnected.")
        expect(bob.locator("#status")).to_have_text("Stranger has disconnected.")
        tokens = {}
        for page in (alice, bob):
            [matched] = matched_frames(frames[page])
            tokens[page] = matched["receipt"]
            line = page.locator("#receipt")
            expect(line).to_be_visible()
            expect(line).to_contain_text("Your receipt for this chat")
            expect(line).to_contain_text("only copy")
            link = page.locator("#receipt-link")
            expect(link).to_have_attribute("href", f"/receipt/{tokens[page]}")
            expect(link).to_have_attribute("target", "_blank")
            expect(link).to_have_attribute("rel", re.compile(r"\bnoopener\b.*\bnoreferrer\b"))
        assert tokens[alice] != tokens[bob]
        screenshot(alice, tmp_path, "receipt-line")

        with alice.context.expect_page() as opened:
            alice.click("#receipt-link")
        receipt = opened.value
        problems: list[str] = []
        receipt.on("console", lambda message: problems.append(message.text))
        receipt.wait_for_load_state()
        assert receipt.url == f"{alice.url.rstrip('/')}/receipt/{tokens[alice]}"
        expect(receipt.locator("body.receipt h1")).to_have_text("Your chat receipt")
        expect(receipt.locator("table tbody tr")).to_have_count(3)
        expect(receipt.locator("table")).to_contain_text("messages and interests (encrypted)")
        # style.css applies: the page is one card, like the rest of the site.
        card = receipt.evaluate(
            "(() => { const s = getComputedStyle(document.querySelector('main'));"
            " return [s.maxWidth, s.borderTopLeftRadius]; })()"
        )
        assert card == ["640px", "14px"]
        screenshot(receipt, tmp_path, "receipt-page")
        receipt.click("button[type=submit]")  # within the report window: scheduled, not done
        expect(receipt.locator("h1")).to_have_text("Erasure scheduled")
        assert problems == []
        receipt.close()

        alice.click("#stop")  # New: waiting, and the receipt of the last chat is still there
        expect(alice.locator("#status")).to_contain_text("Looking for a stranger")
        expect(alice.locator("#receipt")).to_be_visible()
        bob.click("#stop")
        for page in (alice, bob):
            expect(page.locator("#status")).to_contain_text("You're now chatting with")
            expect(page.locator("#receipt")).to_be_hidden()
            again = matched_frames(frames[page])
            assert len(again) == 2 and again[1]["receipt"] != tokens[page]
        alice.click("#stop")
        alice.click("#stop")
        expect(bob.locator("#status")).to_have_text("Stranger has disconnected.")
        expect(bob.locator("#receipt-link")).to_have_attribute(
            "href", f"/receipt/{matched_frames(frames[bob])[1]['receipt']}"
        )
