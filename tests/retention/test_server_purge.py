"""The running server purges on its own: once at start-up, then every
`retention.purge_interval_minutes` (`_purge_on_schedule` in chat/app.py), without touching
what is still within retention, live chats included (docs/retention.md, Purge)."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from logwarden.clock import FakeClock
from logwarden.config import load_settings
from logwarden.datadir import initialise
from logwarden.retention.policy import day_of
from logwarden.store import SqlStore
from logwarden.testing import ChatClient, LiveServer, reading_vault, serve_in_process
from logwarden.transcripts import Transcript, open_transcript
from logwarden.vault import KeyStore
from tests.conftest import TEST_SERVER_ENV
from tests.retention.conftest import attach_deployment
from tests.retention.test_cli_retention import noon
from tests.test_cli import logwarden

LIVE_ADDRESSES = ("192.0.2.211", "192.0.2.212")
RELEASED = (  # the release destroyed the keys and rows; the purge deletes the metadata
    "logwarden.retention: purge: 0 bucket keys and 0 data keys destroyed, 0 messages, "
    "0 addresses and 1 sessions deleted, 0 erasures"
)
PURGE_LINE = re.compile(r"logwarden\.retention: purge: .*")


def locate(data_dir: Path, session_id: str) -> dict[str, tuple[str, int]]:
    """Where the keystore on disk wraps the session's data keys, as another process sees it."""
    keystore = KeyStore(data_dir / "keys")
    try:
        return keystore.locate(session_id)
    finally:
        keystore.close()


def transcript(data_dir: Path, session_id: str) -> Transcript | None:
    """What an administrator reads now, beside the running server."""
    store = SqlStore.sqlite(data_dir / "logwarden.db")
    try:
        record = store.session(session_id)
        if record is None:
            return None
        with reading_vault(data_dir) as vault:
            return open_transcript(record, vault)
    finally:
        store.close()


def purges(server: LiveServer) -> list[str]:
    return PURGE_LINE.findall(server.log_text())


def wait_for(what: str, condition: Callable[[], bool], *, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.05)


def receipt_request(server: LiveServer, token: str, method: str = "GET") -> int:
    """The status of a receipt request (JSON), as the receipt holder's client makes it."""
    request = urllib.request.Request(  # noqa: S310 - our own loopback URL
        f"{server.url}/receipt/{token}", method=method, headers={"Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            json.loads(response.read())
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def live_chat(server: LiveServer, addresses: tuple[str, str], text: str) -> tuple[str, str]:
    """A chat through the running server, one message, stopped: its id and a receipt."""
    with (
        ChatClient(server.ws_url, forwarded_for=addresses[0]) as a,
        ChatClient(server.ws_url, forwarded_for=addresses[1]) as b,
    ):
        a.join()
        b.join()
        matched = a.expect("matched")
        b.expect("matched")
        a.send("message", text=text)
        a.expect("sent")
        assert b.expect("message")["text"] == text
        a.send("stop")
        a.expect("ended")
        b.expect("stranger_left")
    return matched["chat"], matched["receipt"]


class TestServerPurge:
    def test_the_server_purges_at_start_up(self, tmp_path: Path) -> None:
        """A chat recorded 400 days ago is gone, rows and keys, within seconds of the server
        starting, long before the first scheduled purge (an hour); a chat from 20 days ago
        loses its addresses but keeps its text. The log has the purge summary with the exact
        counts, once, and neither a receipt token nor an address."""
        data_dir = tmp_path / "data"
        day = day_of(time.time_ns() // 1_000_000)
        long_ago, weeks_ago = noon(day - 400), noon(day - 20)
        settings = load_settings(environ={}, overrides={"data_dir": data_dir})
        initialise(settings, clock=FakeClock(long_ago))  # a deployment that old
        with attach_deployment(
            data_dir, SqlStore.sqlite(data_dir / "logwarden.db"), at=long_ago
        ) as d:
            old = d.chat()
            d.at(weeks_ago)
            recent = d.chat()
        assert locate(data_dir, old.session_id) == {
            "text": ("session", day - 400),
            "address": ("raw_ip", day - 400),
        }
        assert locate(data_dir, recent.session_id) == {
            "text": ("session", day - 20),
            "address": ("raw_ip", day - 20),
        }

        env = {**TEST_SERVER_ENV, "LOGWARDEN_RETENTION__PURGE_INTERVAL_MINUTES": "60"}
        with serve_in_process(data_dir, env=env) as server:
            wait_for(
                "the old session gone",
                lambda: (
                    transcript(data_dir, old.session_id) is None
                    and locate(data_dir, old.session_id) == {}
                ),
            )
            wait_for("a purge summary in the log", lambda: bool(purges(server)))
            # Old: 2 bucket keys (its day's session and raw_ip), 2 data keys, 3 messages,
            # 2 addresses, its metadata; 20 days ago: 1 bucket key (raw_ip), 1 data key,
            # 2 addresses.
            assert purges(server) == [
                "logwarden.retention: purge: 3 bucket keys and 3 data keys destroyed, "
                "3 messages, 4 addresses and 1 sessions deleted, 0 erasures"
            ]
            assert receipt_request(server, old.receipts[0]) == 404
            assert receipt_request(server, recent.receipts[0]) == 200

            kept = transcript(data_dir, recent.session_id)
            assert kept is not None
            assert [m["text"] for m in kept.messages] == recent.texts
            assert kept.interests == ["chess"]
            assert [p["ip"] for p in kept.participants] == [None, None]
            assert [p["ip_pseudonym"] for p in kept.participants] == list(recent.pseudonyms)
            assert locate(data_dir, recent.session_id) == {"text": ("session", day - 20)}
            time.sleep(0.3)
            assert len(purges(server)) == 1, "one purge at start-up, the next in an hour"
            log = server.log_text()

        for secret in [*old.receipts, *recent.receipts, *old.addresses, *recent.addresses]:
            assert secret not in log, secret
        assert "/receipt/…" in log, "the receipt requests were logged, redacted"

    def test_scheduled_purges_finish_a_release_and_keep_live_chats(self, tmp_path: Path) -> None:
        """With a purge every 0.6 s the running server keeps purging. A chat held since 400
        days ago survives the start-up purge whole; `logwarden sessions release`, run beside the
        server, destroys its keys at once, and a scheduled purge then deletes its expired
        metadata. A chat made through the server stays whole and readable through those
        purges, and the log names no receipt token or address."""
        data_dir = tmp_path / "data"
        day = day_of(time.time_ns() // 1_000_000)
        long_ago = noon(day - 400)
        initialise(
            load_settings(environ={}, overrides={"data_dir": data_dir}), clock=FakeClock(long_ago)
        )
        with attach_deployment(
            data_dir, SqlStore.sqlite(data_dir / "logwarden.db"), at=long_ago
        ) as d:
            held = d.chat()
            d.at(long_ago + 3_600_000)
            assert d.retention.hold(held.session_id, reason="order 7") is not None

        env = {**TEST_SERVER_ENV, "LOGWARDEN_RETENTION__PURGE_INTERVAL_MINUTES": "0.01"}
        with serve_in_process(data_dir, env=env) as server:
            wait_for("two purges", lambda: len(purges(server)) >= 2)
            whole = transcript(data_dir, held.session_id)
            assert whole is not None
            assert [m["text"] for m in whole.messages] == held.texts
            assert [p["ip"] for p in whole.participants] == list(held.addresses)
            assert set(locate(data_dir, held.session_id)) == {"text", "address"}

            kept_id, kept_receipt = live_chat(server, LIVE_ADDRESSES, "kept through the purge")

            before = len(purges(server))
            release = logwarden(
                "sessions",
                "release",
                held.session_id,
                "--reason",
                "order 3 lifted",
                "--data-dir",
                str(data_dir),
            )
            assert release.returncode == 0, release.stderr
            assert locate(data_dir, held.session_id) == {}, "the release destroys the keys"
            wait_for(
                "the released session's metadata deleted by a scheduled purge",
                lambda: transcript(data_dir, held.session_id) is None,
            )
            wait_for("its purge in the log", lambda: RELEASED in purges(server))
            assert purges(server).index(RELEASED) >= before
            # At start-up only the two day buckets the hold emptied were due.
            assert purges(server)[0] == (
                "logwarden.retention: purge: 2 bucket keys and 0 data keys destroyed, "
                "0 messages, 0 addresses and 0 sessions deleted, 0 erasures"
            )
            assert receipt_request(server, held.receipts[0]) == 404

            done = len(purges(server))
            wait_for("two more scheduled purges", lambda: len(purges(server)) >= done + 2)
            assert receipt_request(server, kept_receipt) == 200
            live = transcript(data_dir, kept_id)
            assert live is not None
            assert [m["text"] for m in live.messages] == ["kept through the purge"]
            assert sorted(p["ip"] for p in live.participants) == sorted(LIVE_ADDRESSES)
            assert set(locate(data_dir, kept_id)) == {"text", "address"}
            log = server.log_text()

        for secret in [kept_receipt, *held.receipts, *LIVE_ADDRESSES, *held.addresses]:
            assert secret not in log, secret
        assert "/receipt/…" in log, "the receipt requests were logged, redacted"
