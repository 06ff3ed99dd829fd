"""Receipts as their holders and an operator see them: real servers, real WebSocket clients.

Each participant gets a receipt in ``matched``; ``/receipt/{token}`` shows what is kept about
that chat and takes erasure requests (docs/protocol.md, *Receipts*). Two servers: the
module's ``live_server`` with the default report window (300 s), where an erasure after the
chat can only be scheduled, and ``prompt_server`` with no report window, where it is done at
once.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from logwarden.retention.service import REPORT_GRACE_MS
from logwarden.testing import ChatClient, LiveServer, serve_in_process
from tests.conftest import TEST_SERVER_ENV

TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
KEPT_TEXT = "messages and interests (encrypted)"
KEPT_ADDRESSES = "IP addresses (encrypted)"
KEPT_METADATA = "times, end reason and IP pseudonyms"
NOT_FOUND = "Nothing is kept under this receipt"
REPORT_WINDOW_MS = 300_000  # the default report_window, which live_server keeps
# Erasure waits for the window and the grace for a report's commit (retention/service.py).
ERASABLE_AFTER_MS = REPORT_WINDOW_MS + REPORT_GRACE_MS

# Every token handed out in this module, to be looked for in the servers' logs at the end.
ISSUED: list[str] = []


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        assert self.headers["content-type"] == "application/json", self.headers
        return json.loads(self.body)


def request(server: LiveServer, method: str, path: str, *, json_: bool = False) -> Reply:
    """One HTTP request, with `path` sent exactly as given (no normalisation, no quoting)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        headers = {"Accept": "application/json"} if json_ else {"Accept": "text/html"}
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        body = response.read().decode()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        connection.close()


def receipt_json(server: LiveServer, token: str) -> dict[str, Any]:
    reply = request(server, "GET", f"/receipt/{token}", json_=True)
    assert reply.status == 200, reply
    found: dict[str, Any] = reply.json()
    return found


def wait_until_ended(server: LiveServer, token: str, timeout: float = 10) -> dict[str, Any]:
    """The receipt once the chat's end is recorded.

    ``ended``/``stranger_left`` go out before the end reaches the log, so an erasure asked
    for at once may still meet "the chat has not ended yet".
    """
    deadline = time.monotonic() + timeout
    while True:
        shown = receipt_json(server, token)
        if shown["ended_at"] is not None:
            return shown
        assert time.monotonic() < deadline, f"the chat's end was not recorded: {shown}"
        time.sleep(0.05)


@dataclass
class Chat:
    first: ChatClient
    second: ChatClient
    matched: tuple[dict[str, Any], dict[str, Any]]

    @property
    def id(self) -> str:
        chat_id: str = self.matched[0]["chat"]
        return chat_id

    @property
    def receipts(self) -> tuple[str, str]:
        return self.matched[0]["receipt"], self.matched[1]["receipt"]

    def say(self, text: str) -> None:
        """`first` says `text` and it reaches `second`."""
        self.first.send("message", text=text)
        self.first.expect("sent")
        assert self.second.expect("message")["text"] == text

    def stop(self) -> None:
        """`first` ends the chat; both sides hear of it."""
        self.first.send("stop")
        assert self.first.expect("ended")["reason"] == "stopped"
        assert self.second.expect("stranger_left")["reason"] == "stopped"


StartChat = Callable[[LiveServer], Chat]


@pytest.fixture
def start_chat(new_ip: Callable[[], str]) -> Iterator[StartChat]:
    """Pair two fresh clients on a server; they are closed after the test."""
    with ExitStack() as stack:

        def start(server: LiveServer) -> Chat:
            first, second = (
                stack.enter_context(ChatClient(server.ws_url, forwarded_for=new_ip()))
                for _ in range(2)
            )
            first.join()
            second.join()
            chat = Chat(first, second, (first.expect("matched"), second.expect("matched")))
            ISSUED.extend(chat.receipts)
            return chat

        yield start


@pytest.fixture(scope="module")
def prompt_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server without a report window: an ended chat can be erased at once."""
    data_dir = tmp_path_factory.mktemp("prompt") / "data"
    env = {**TEST_SERVER_ENV, "LOGWARDEN_CHAT__REPORT_WINDOW": "0"}
    with serve_in_process(data_dir, env=env) as server:
        yield server


def logwarden(*args: str) -> subprocess.CompletedProcess[str]:
    """The `logwarden` command, as an operator runs it."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LOGWARDEN_")}
    return subprocess.run(
        [sys.executable, "-m", "logwarden", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environment,
    )


def show_session(server: LiveServer, session_id: str) -> subprocess.CompletedProcess[str]:
    return logwarden(
        "sessions",
        "show",
        session_id,
        "--reason",
        "test",
        "--json",
        "--data-dir",
        str(server.data_dir),
    )


class TestReceiptInMatched:
    def test_each_participant_gets_their_own_receipt(
        self, live_server: LiveServer, start_chat: StartChat
    ) -> None:
        """Both get a 43-character URL-safe token, not the same one, both naming the chat."""
        chat = start_chat(live_server)
        first, second = chat.receipts
        assert TOKEN.fullmatch(first), first
        assert TOKEN.fullmatch(second), second
        assert first != second
        assert chat.id not in (first, second)
        assert receipt_json(live_server, first) == receipt_json(live_server, second)

    def test_every_chat_gets_new_receipts(
        self, live_server: LiveServer, start_chat: StartChat
    ) -> None:
        """Two chats, even between the same two clients, never share a receipt."""
        chat = start_chat(live_server)
        chat.stop()
        chat.first.join()
        chat.second.join()
        again = (chat.first.expect("matched"), chat.second.expect("matched"))
        assert again[0]["chat"] != chat.id
        ISSUED.extend(m["receipt"] for m in again)
        assert len({*chat.receipts, again[0]["receipt"], again[1]["receipt"]}) == 4


class TestShow:
    def test_json_lists_what_is_kept_and_until_when(
        self, live_server: LiveServer, start_chat: StartChat
    ) -> None:
        """JSON names each kept item with its expiry; addresses go first, then text, then times."""
        chat = start_chat(live_server)
        chat.say("hello there")
        reply = request(live_server, "GET", f"/receipt/{chat.receipts[0]}", json_=True)
        assert reply.status == 200
        assert reply.headers["cache-control"] == "no-store"
        shown = reply.json()
        assert set(shown) == {
            "started_at",
            "ended_at",
            "reported",
            "held",
            "withheld",
            "erase_after",
            "kept",
        }
        assert shown["ended_at"] is None
        assert (shown["reported"], shown["held"], shown["erase_after"]) == (False, False, None)
        assert shown["withheld"] is False
        until = {item["what"]: item["until"] for item in shown["kept"]}
        assert set(until) == {KEPT_METADATA, KEPT_TEXT, KEPT_ADDRESSES}
        # Defaults: raw IP 7 days, message text 30, metadata 90.
        assert shown["started_at"] < until[KEPT_ADDRESSES] < until[KEPT_TEXT] < until[KEPT_METADATA]
        assert chat.id not in reply.body  # the receipt says what is kept, not which session

    def test_html_page_shows_the_same(self, live_server: LiveServer, start_chat: StartChat) -> None:
        """The page lists every kept item in a table, styled by the site, with an erase form."""
        chat = start_chat(live_server)
        token = chat.receipts[1]
        reply = request(live_server, "GET", f"/receipt/{token}")
        assert reply.status == 200
        assert reply.headers["content-type"].startswith("text/html")
        assert reply.headers["cache-control"] == "no-store"
        assert "default-src 'self'" in reply.headers["content-security-policy"]
        assert reply.headers["referrer-policy"] == "no-referrer"
        page = reply.body
        assert '<body class="receipt">' in page
        assert '<link rel="stylesheet" href="/static/style.css">' in page
        assert "<script" not in page and "style=" not in page  # nothing inline, for the CSP
        for item in receipt_json(live_server, token)["kept"]:
            assert f"<td>{item['what']}</td>" in page
        assert f'<form method="post" action="/receipt/{token}/erase">' in page
        assert page.count("<button") == 1

    def test_a_receipt_shows_only_its_own_chat(
        self, live_server: LiveServer, start_chat: StartChat
    ) -> None:
        """What happens to chat B (ended, erasure asked) does not show through A's receipt."""
        a = start_chat(live_server)
        b = start_chat(live_server)
        a_before = receipt_json(live_server, a.receipts[0])
        b.stop()
        wait_until_ended(live_server, b.receipts[0])
        assert request(live_server, "DELETE", f"/receipt/{b.receipts[0]}").status == 202

        shown_b = receipt_json(live_server, b.receipts[1])
        assert shown_b["ended_at"] is not None and shown_b["erase_after"] is not None
        assert receipt_json(live_server, a.receipts[1]) == a_before
        assert receipt_json(live_server, a.receipts[0])["ended_at"] is None
        page = request(live_server, "GET", f"/receipt/{a.receipts[0]}").body
        assert b.receipts[0] not in page and b.receipts[1] not in page
        assert "Erasure requested" not in page
        assert "Erasure requested" in request(live_server, "GET", f"/receipt/{b.receipts[1]}").body


class TestErasure:
    def test_refused_while_the_chat_is_on(
        self, live_server: LiveServer, start_chat: StartChat
    ) -> None:
        """A chat still going cannot be erased, by DELETE or by the form; nothing changes."""
        chat = start_chat(live_server)
        chat.say("still here")
        token = chat.receipts[0]
        deleted = request(live_server, "DELETE", f"/receipt/{token}")
        assert deleted.status == 409
        assert deleted.headers["cache-control"] == "no-store"
        assert deleted.json() == {
            "outcome": "refused",
            "reason": "the chat has not ended yet (if it just ended, try again in a moment)",
            "at": None,
        }
        posted = request(live_server, "POST", f"/receipt/{token}/erase")
        assert posted.status == 409
        assert "<h1>Not erased</h1>" in posted.body
        assert "The chat has not ended yet (if it just ended, try again in a moment)." in (
            posted.body
        )
        assert receipt_json(live_server, token)["erase_after"] is None
        chat.say("and still chatting")  # the chat itself went on untouched

    def test_scheduled_within_the_report_window(
        self, live_server: LiveServer, start_chat: StartChat
    ) -> None:
        """Just after the end, erasure waits for the other person's report window to close."""
        chat = start_chat(live_server)
        chat.say("bye")
        chat.stop()
        ended_at = wait_until_ended(live_server, chat.receipts[0])["ended_at"]

        deleted = request(live_server, "DELETE", f"/receipt/{chat.receipts[0]}")
        assert deleted.status == 202
        answer = deleted.json()
        assert answer["outcome"] == "scheduled"
        assert answer["at"] == ended_at + ERASABLE_AFTER_MS
        assert "can still report" in answer["reason"]

        shown = receipt_json(live_server, chat.receipts[1])  # the other receipt sees it too
        assert shown["erase_after"] == answer["at"]
        assert (
            "Erasure requested" in request(live_server, "GET", f"/receipt/{chat.receipts[1]}").body
        )
        posted = request(live_server, "POST", f"/receipt/{chat.receipts[1]}/erase")
        assert posted.status == 202
        assert "<h1>Erasure scheduled</h1>" in posted.body
        kept = show_session(live_server, chat.id)
        assert kept.returncode == 0, kept.stderr
        assert [m["text"] for m in json.loads(kept.stdout)["messages"]] == ["bye"]

    def test_a_report_in_the_window_overrides_a_scheduled_erasure(
        self, live_server: LiveServer, start_chat: StartChat
    ) -> None:
        """Erasing first and leaving does not stop the stranger from reporting: it is kept."""
        chat = start_chat(live_server)
        chat.say("something nasty")
        chat.stop()
        wait_until_ended(live_server, chat.receipts[0])
        assert request(live_server, "DELETE", f"/receipt/{chat.receipts[0]}").status == 202

        chat.second.send("report", reason="harassment", chat=chat.id)
        chat.second.expect("reported")
        deadline = time.monotonic() + 10
        while not (shown := receipt_json(live_server, chat.receipts[0]))["reported"]:
            assert time.monotonic() < deadline, shown
            time.sleep(0.05)
        again = request(live_server, "DELETE", f"/receipt/{chat.receipts[0]}")
        assert again.status == 409
        assert again.json()["outcome"] == "refused"
        assert "reported" in again.json()["reason"]
        assert show_session(live_server, chat.id).returncode == 0

    def test_a_reported_chat_is_refused_with_the_reason(
        self, live_server: LiveServer, start_chat: StartChat
    ) -> None:
        """Neither the reported nor the reporter can erase a reported chat; both learn why."""
        chat = start_chat(live_server)
        chat.say("buy cheap followers")
        chat.second.send("report", reason="spam", chat=chat.id)
        chat.second.expect("reported")
        chat.stop()
        shown = wait_until_ended(live_server, chat.receipts[0])
        assert shown["reported"] is True
        assert "reported" in request(live_server, "GET", f"/receipt/{chat.receipts[0]}").body

        now_ms = time.time() * 1000
        for token in chat.receipts:
            refused = request(live_server, "DELETE", f"/receipt/{token}")
            assert refused.status == 409
            answer = refused.json()
            assert answer["outcome"] == "refused"
            assert answer["reason"] == "it was reported, and reports are kept as evidence"
            assert answer["at"] > now_ms + 300 * 86_400_000  # kept in the reported class
        posted = request(live_server, "POST", f"/receipt/{chat.receipts[0]}/erase")
        assert posted.status == 409
        assert "It was reported, and reports are kept as evidence" in posted.body
        assert show_session(live_server, chat.id).returncode == 0

    def test_erased_at_once_after_the_window(
        self, prompt_server: LiveServer, start_chat: StartChat
    ) -> None:
        """With the window closed, the form erases the chat: both receipts and the log forget it."""
        chat = start_chat(prompt_server)
        chat.say("forget me")
        chat.stop()
        wait_until_ended(prompt_server, chat.receipts[0])
        before = show_session(prompt_server, chat.id)
        assert before.returncode == 0, before.stderr
        assert "forget me" in before.stdout

        posted = request(prompt_server, "POST", f"/receipt/{chat.receipts[0]}/erase")
        assert posted.status == 200
        assert "<h1>Erased</h1>" in posted.body
        assert "Everything about this chat has been destroyed" in posted.body

        never_issued = request(prompt_server, "GET", f"/receipt/{'A' * 43}")
        for token in chat.receipts:
            gone = request(prompt_server, "GET", f"/receipt/{token}")
            assert gone.status == 404
            assert gone.body == never_issued.body  # erased looks like never issued
            assert request(prompt_server, "DELETE", f"/receipt/{token}").status == 404
        after = show_session(prompt_server, chat.id)
        assert after.returncode == 1
        assert f"no session {chat.id!r}" in after.stderr
        listed = logwarden("sessions", "list", "--json", "--data-dir", str(prompt_server.data_dir))
        assert listed.returncode == 0, listed.stderr
        assert chat.id not in listed.stdout

    def test_delete_answers_in_json(self, prompt_server: LiveServer, start_chat: StartChat) -> None:
        """DELETE erases too, and says so in JSON with the time it was done."""
        chat = start_chat(prompt_server)
        chat.stop()
        ended_at = wait_until_ended(prompt_server, chat.receipts[1])["ended_at"]
        deleted = request(prompt_server, "DELETE", f"/receipt/{chat.receipts[1]}")
        assert deleted.status == 200
        answer = deleted.json()
        assert answer["outcome"] == "erased"
        assert answer["at"] >= ended_at
        assert request(prompt_server, "GET", f"/receipt/{chat.receipts[0]}").status == 404
        assert show_session(prompt_server, chat.id).returncode == 1


MALFORMED = {
    "too short": "A" * 42,
    "too long": "A" * 44,
    "bad character": "A" * 42 + "!",
    "base64 padding": "A" * 42 + "=",
    "dot dot": "%2e%2e",
    "dot dot slash": "..%2f..%2fetc%2fpasswd",
    "non-ascii": "%C3%A9" * 43,
    "nul": "A" * 42 + "%00",
    "10 KB": "A" * 10_240,
}


class TestMalformedTokens:
    @pytest.mark.parametrize("token", MALFORMED.values(), ids=MALFORMED.keys())
    def test_malformed_tokens_are_not_found(self, live_server: LiveServer, token: str) -> None:
        """Whatever the path holds, every receipt route answers 404 and the server stays well."""
        log_before = len(live_server.log_text())
        for method, path in (
            ("GET", f"/receipt/{token}"),
            ("POST", f"/receipt/{token}/erase"),
            ("DELETE", f"/receipt/{token}"),
        ):
            for json_ in (False, True):
                reply = request(live_server, method, path, json_=json_)
                assert reply.status == 404, (method, path[:60], reply)
                if "%2f" not in token:  # a slash in the token is no receipt route at all
                    assert NOT_FOUND in reply.body
        assert request(live_server, "GET", "/healthz").status == 200
        new_log = live_server.log_text()[log_before:]
        assert "Traceback" not in new_log and '" 500' not in new_log and "ERROR" not in new_log

    def test_a_changed_character_is_not_found(
        self, live_server: LiveServer, start_chat: StartChat
    ) -> None:
        """A well-formed token one character off a real one opens nothing."""
        token = start_chat(live_server).receipts[0]
        near = ("B" if token[0] != "B" else "C") + token[1:]
        assert request(live_server, "GET", f"/receipt/{token}").status == 200
        reply = request(live_server, "GET", f"/receipt/{near}", json_=True)
        assert reply.status == 404
        assert reply.headers["cache-control"] == "no-store"
        assert reply.json()["error"] == "not_found"


class TestServerLog:
    def test_no_token_reaches_the_server_log(
        self, live_server: LiveServer, prompt_server: LiveServer, start_chat: StartChat
    ) -> None:
        """Receipt paths are logged as /receipt/…, even mistyped; no token issued here is logged."""
        chat = start_chat(live_server)
        token = chat.receipts[0]
        redacted_before = live_server.log_text().count("/receipt/…")
        paths = (
            ("GET", f"/receipt/{token}"),
            ("GET", f"/receipt/{token}?x=1"),
            ("POST", f"/receipt/{token}/erase"),
            ("DELETE", f"/receipt/{token}"),
            ("GET", f"/receipt//{token}"),  # mistyped: a 404, but a live token all the same
            ("GET", f"/Receipt/{token}"),
        )
        for method, path in paths:
            request(live_server, method, path)
        deadline = time.monotonic() + 5  # the access log is written after the answer
        while live_server.log_text().count("/receipt/…") < redacted_before + len(paths):
            assert time.monotonic() < deadline, live_server.log_text()[-2000:]
            time.sleep(0.05)
        assert '"POST /receipt/…/erase HTTP/1.1" 409' in live_server.log_text()

        assert token in ISSUED  # with every token the tests before this one were given
        for server in (live_server, prompt_server):
            log = server.log_text()
            leaked = [t for t in ISSUED if t in log]
            assert leaked == [], f"{len(leaked)} receipt tokens in {server.log_path}"
