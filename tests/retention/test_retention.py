"""Retention classes on both backends: what can be read, day by day, through purges, reports,
holds, releases and erasures (docs/retention.md)."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import text

from logwarden.retention.policy import DAY_MS
from logwarden.retention.receipts import new_receipt
from tests.retention.conftest import (
    DAY0,
    ERASABLE_AFTER_MS,
    POLICY,
    REPORT_WINDOW_MS,
    T0,
    Deployment,
    day_start,
    retention_over,
)

TEXT_GONE = day_start(DAY0 + POLICY.session_days + 1)
ADDRESS_GONE = day_start(DAY0 + POLICY.raw_ip_days + 1)
METADATA_GONE = day_start(DAY0 + POLICY.metadata_days + 1)
REPORTED_GONE = day_start(DAY0 + POLICY.reported_days + 1)
EVERYTHING = {"text": True, "address": True, "metadata": True}


def purge_at(d: Deployment, ms: int) -> None:
    d.at(ms)
    d.retention.purge()
    assert d.retention.check() == [], "nothing may be kept past retention after a purge"


class TestOrdinarySession:
    def test_each_part_lives_exactly_its_class(self, deployment: Deployment) -> None:
        """Raw addresses go after 7 days, text after 30, metadata after 90: each kept through
        its last day and destroyed by the first purge after it."""
        d = deployment
        chat = d.chat()
        steps = [
            (ADDRESS_GONE - 1, EVERYTHING),
            (ADDRESS_GONE, {"text": True, "address": False, "metadata": True}),
            (TEXT_GONE - 1, {"text": True, "address": False, "metadata": True}),
            (TEXT_GONE, {"text": False, "address": False, "metadata": True}),
            (METADATA_GONE - 1, {"text": False, "address": False, "metadata": True}),
            (METADATA_GONE, {"text": False, "address": False, "metadata": False}),
        ]
        for when, expected in steps:
            purge_at(d, when)
            assert d.readable(chat.session_id) == expected, f"at {when - T0} ms"

    def test_text_is_exact_while_kept(self, deployment: Deployment) -> None:
        """What the recorder sealed reads back exactly through the key hierarchy."""
        d = deployment
        chat = d.chat(messages=4)
        purge_at(d, TEXT_GONE - 1)
        transcript = d.transcript(chat.session_id)
        assert transcript is not None
        assert [m["text"] for m in transcript.messages] == chat.texts
        assert transcript.interests == ["chess"]

    def test_pseudonyms_outlive_addresses(self, deployment: Deployment) -> None:
        """After the raw addresses are destroyed the pseudonyms still link the session."""
        d = deployment
        chat = d.chat()
        purge_at(d, ADDRESS_GONE)
        transcript = d.transcript(chat.session_id)
        assert transcript is not None
        assert all(p["ip"] is None for p in transcript.participants)
        assert all(len(p["ip_pseudonym"]) == 32 for p in transcript.participants)

    def test_purge_frees_rows_and_keys(self, deployment: Deployment) -> None:
        """Expiry deletes the rows along with the keys: counted in the purge summary."""
        d = deployment
        d.chat(messages=5)
        d.chat(messages=2)
        d.at(TEXT_GONE)
        summary = d.retention.purge()
        assert summary.messages_deleted == 7
        assert summary.addresses_deleted == 4
        assert summary.buckets_destroyed == {"raw_ip": 1, "session": 1}
        assert summary.data_keys_destroyed == 4
        assert summary.kek_rotated
        assert d.keystore.buckets() == []

    def test_sessions_of_later_days_are_untouched(self, deployment: Deployment) -> None:
        """A purge destroys the expired day and nothing of the next one."""
        d = deployment
        first = d.chat()
        d.at(T0 + DAY_MS)
        second = d.chat()
        purge_at(d, TEXT_GONE)
        assert not d.readable(first.session_id)["text"]
        assert d.readable(second.session_id)["text"]


class TestReported:
    def test_report_keeps_everything_for_the_reported_period(self, deployment: Deployment) -> None:
        """A reported session keeps its text and raw addresses for 365 days from the report,
        then loses them; its metadata goes with them."""
        d = deployment
        chat = d.chat(report=True)
        plain = d.chat()
        purge_at(d, TEXT_GONE)
        assert d.readable(chat.session_id) == EVERYTHING
        assert d.readable(plain.session_id)["text"] is False
        purge_at(d, REPORTED_GONE - 1)
        assert d.readable(chat.session_id) == EVERYTHING
        purge_at(d, REPORTED_GONE)
        assert d.readable(chat.session_id) == {"text": False, "address": False, "metadata": False}

    def test_report_rewraps_without_reencrypting(self, deployment: Deployment) -> None:
        """A report moves the session's keys to the reported bucket; the stored ciphertext is
        byte for byte what was written before."""
        d = deployment
        chat = d.chat(report=False, end=False)
        before = d.store.session(chat.session_id)
        assert before is not None
        d.loop.run(
            d.recorder.report(
                session_id=chat.session_id,
                reporter_slot=0,
                reason="spam",
                comment=None,
                created_at=d.clock.now_ms(),
            )
        )
        d.recorder.settle()
        after = d.store.session(chat.session_id)
        assert after is not None
        assert [m.text_sealed for m in after.messages] == [m.text_sealed for m in before.messages]
        assert d.keystore.locate(chat.session_id) == {
            "text": ("reported", DAY0),
            "address": ("reported", DAY0),
        }

    def test_messages_after_a_report_are_preserved(self, deployment: Deployment) -> None:
        """Messages sent after the report in the same chat are kept with it."""
        d = deployment
        chat = d.chat(messages=2, report=True, end=False)
        d.loop.run(d._message(chat.session_id, 3, d.clock.now_ms(), "after the report"))
        purge_at(d, TEXT_GONE)
        transcript = d.transcript(chat.session_id)
        assert transcript is not None
        assert [m["text"] for m in transcript.messages][-1] == "after the report"

    def test_flag_later_keeps_what_is_left(self, deployment: Deployment) -> None:
        """A safety flag on day 20 keeps the text (still there) but not the addresses
        (already past their 7 days): a flag never brings back what retention gave up."""
        d = deployment
        chat = d.chat()
        d.at(T0 + 20 * DAY_MS)  # no purge has run: the address key still exists
        assert d.retention.flag(chat.session_id) is not None
        purge_at(d, TEXT_GONE)
        assert d.readable(chat.session_id) == {"text": True, "address": False, "metadata": True}
        purge_at(d, day_start(DAY0 + 20 + POLICY.reported_days + 1))
        assert d.readable(chat.session_id)["metadata"] is False


class TestHold:
    def test_hold_keeps_everything_until_released(self, deployment: Deployment) -> None:
        """A held session outlives every class; release brings the normal expiry back, and
        what is past it is destroyed at once."""
        d = deployment
        chat = d.chat()
        assert d.retention.hold(chat.session_id, reason="case 2026-17") is not None
        purge_at(d, METADATA_GONE + 100 * DAY_MS)
        assert d.readable(chat.session_id) == EVERYTHING
        assert d.retention.release(chat.session_id, reason="order lifted") is not None
        assert d.readable(chat.session_id) == {"text": False, "address": False, "metadata": True}
        purge_at(d, d.clock.now_ms())
        assert d.readable(chat.session_id)["metadata"] is False

    def test_release_within_retention_restores_the_day_bucket(self, deployment: Deployment) -> None:
        """Held and released on day 3, the session expires exactly as if never held."""
        d = deployment
        chat = d.chat()
        d.retention.hold(chat.session_id, reason="review")
        d.at(T0 + 3 * DAY_MS)
        d.retention.release(chat.session_id, reason="order lifted")
        assert d.keystore.locate(chat.session_id) == {
            "text": ("session", DAY0),
            "address": ("raw_ip", DAY0),
        }
        purge_at(d, ADDRESS_GONE)
        assert d.readable(chat.session_id) == {"text": True, "address": False, "metadata": True}
        purge_at(d, TEXT_GONE)
        assert d.readable(chat.session_id)["text"] is False

    def test_release_of_reported_session_keeps_the_report_period(
        self, deployment: Deployment
    ) -> None:
        """A reported session released from a hold falls back to the reported class."""
        d = deployment
        chat = d.chat(report=True)
        d.retention.hold(chat.session_id, reason="order 12")
        purge_at(d, T0 + 100 * DAY_MS)
        d.retention.release(chat.session_id, reason="order lifted")
        purge_at(d, T0 + 101 * DAY_MS)
        assert d.readable(chat.session_id) == EVERYTHING
        purge_at(d, REPORTED_GONE)
        assert d.readable(chat.session_id)["text"] is False

    def test_messages_after_a_hold_from_elsewhere_are_kept(self, deployment: Deployment) -> None:
        """A hold placed by another process while the chat goes on: the recorder keeps writing
        to the day bucket, and the purge moves those rows before any day expires."""
        d = deployment
        chat = d.chat(messages=1, end=False)
        d.retention.hold(chat.session_id, reason="case 5")
        d.loop.run(d._message(chat.session_id, 2, d.clock.now_ms(), "after the hold"))
        purge_at(d, T0 + DAY_MS)
        purge_at(d, METADATA_GONE)
        transcript = d.transcript(chat.session_id)
        assert transcript is not None
        assert [m["text"] for m in transcript.messages] == [chat.texts[0], "after the hold"]

    def test_unknown_session(self, deployment: Deployment) -> None:
        """Holding, releasing or flagging a session that does not exist says so (None)."""
        r = deployment.retention
        assert r.hold("0" * 32, reason="x") is None
        assert r.release("0" * 32, reason="order lifted") is None
        assert r.flag("0" * 32) is None


class TestErasure:
    def test_after_the_window_erases_at_once(self, deployment: Deployment) -> None:
        """Once the report window has closed, a receipt erases its session immediately:
        keys, rows and the receipt itself."""
        d = deployment
        chat = d.chat()
        d.at(T0 + ERASABLE_AFTER_MS + 10)
        outcome = d.retention.erase(chat.receipts[0])
        assert outcome is not None and outcome.outcome == "erased"
        assert d.readable(chat.session_id)["metadata"] is False
        assert d.keystore.locate(chat.session_id) == {}
        assert d.retention.receipt(chat.receipts[1]) is None

    def test_within_the_window_is_scheduled(self, deployment: Deployment) -> None:
        """Asked within the other person's report window, erasure waits for it to close and
        is then carried out by the purge."""
        d = deployment
        chat = d.chat()
        outcome = d.retention.erase(chat.receipts[0])
        assert outcome is not None and outcome.outcome == "scheduled"
        assert outcome.at is not None and outcome.at > d.clock.now_ms()
        d.retention.purge()
        assert d.readable(chat.session_id) == EVERYTHING
        d.at(outcome.at)
        summary = d.retention.purge()
        assert summary.sessions_erased == 1
        assert d.readable(chat.session_id)["metadata"] is False

    def test_report_within_the_window_cancels_a_scheduled_erasure(
        self, deployment: Deployment
    ) -> None:
        """Someone who asks to erase a chat cannot take away the other person's report."""
        d = deployment
        chat = d.chat()
        d.retention.erase(chat.receipts[0])
        d.loop.run(
            d.recorder.report(
                session_id=chat.session_id,
                reporter_slot=1,
                reason="threats",
                comment=None,
                created_at=d.clock.now_ms() + 1,
            )
        )
        purge_at(d, T0 + REPORT_WINDOW_MS * 2)
        assert d.readable(chat.session_id) == EVERYTHING

    @pytest.mark.parametrize("kind", ["reported", "held", "ongoing"])
    def test_refused(self, deployment: Deployment, kind: str) -> None:
        """Reported, held or still running: refused, with the reason (and for a report, until
        when it is kept); nothing is destroyed."""
        d = deployment
        chat = d.chat(report=kind == "reported", end=kind != "ongoing")
        if kind == "held":
            d.retention.hold(chat.session_id, reason="case 9")
        d.at(T0 + ERASABLE_AFTER_MS + 10)
        outcome = d.retention.erase(chat.receipts[1])
        assert outcome is not None and outcome.outcome == "refused"
        assert {"reported": "reported", "held": "hold", "ongoing": "not ended"}[kind] in (
            outcome.reason
        )
        if kind == "reported":
            assert outcome.at == REPORTED_GONE
        assert d.readable(chat.session_id) == EVERYTHING

    @pytest.mark.parametrize("token", ["", "x", "A" * 42, "A" * 44, "A" * 42 + "!", "../" * 15])
    def test_unknown_or_malformed_token(self, deployment: Deployment, token: str) -> None:
        """A token that is not a receipt finds nothing and erases nothing."""
        d = deployment
        chat = d.chat()
        assert d.retention.receipt(token) is None
        assert d.retention.erase(token) is None
        assert d.readable(chat.session_id) == EVERYTHING

    def test_receipt_says_what_is_kept_until_when(self, deployment: Deployment) -> None:
        """The receipt lists metadata, text and addresses with their expiry times."""
        d = deployment
        chat = d.chat()
        receipt = d.retention.receipt(chat.receipts[0])
        assert receipt is not None
        assert [k.until for k in receipt.kept] == [METADATA_GONE, TEXT_GONE, ADDRESS_GONE]
        purge_at(d, ADDRESS_GONE)
        receipt = d.retention.receipt(chat.receipts[0])
        assert receipt is not None
        assert [k.until for k in receipt.kept] == [METADATA_GONE, TEXT_GONE]


class TestErasureGoesByTheLog:
    """A database-only attacker who inserts a receipt of their own, or moves the session's end
    back, must not get a chat erased inside the other person's report window (review 7, A1):
    the receipt must be one the session's entry committed to, and the window runs from the
    session's end entry."""

    @staticmethod
    def tamper(d: Deployment, statement: str, **params: object) -> None:
        with d.store._engine.begin() as conn:
            conn.execute(text(statement), params)

    def test_an_inserted_receipt_erases_nothing(
        self, deployment: Deployment, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A receipt row inserted for a chat that just ended, its end moved an hour back:
        the receipt is unknown, nothing is erased, and the other person can still report."""
        d = deployment
        chat = d.chat()
        token, digest = new_receipt()
        self.tamper(
            d,
            "INSERT INTO receipts (token_digest, session_id, slot, issued_at) "
            "VALUES (:digest, :s, 0, :t)",
            digest=digest,
            s=chat.session_id,
            t=d.clock.now_ms(),
        )
        self.tamper(
            d, "UPDATE sessions SET ended_at = ended_at - 3600000 WHERE id = :s", s=chat.session_id
        )
        assert d.retention.erase(token) is None
        assert "is not among those its audit entry committed to" in caplog.text
        assert d.readable(chat.session_id) == EVERYTHING
        assert d.retention.erase(chat.receipts[0]) is None  # its receipts are not the log's

    def test_the_window_runs_from_the_end_entry(self, deployment: Deployment) -> None:
        """The abuser's own receipt, the session's end moved an hour back in the store: the
        erasure is only scheduled, for the window after the end the log recorded, and the
        report that comes within it cancels it."""
        d = deployment
        chat = d.chat(messages=2)
        ended_at = chat.started_at + 2 + 2  # Deployment.chat ends it then
        self.tamper(
            d, "UPDATE sessions SET ended_at = ended_at - 3600000 WHERE id = :s", s=chat.session_id
        )
        outcome = d.retention.erase(chat.receipts[0])
        assert outcome is not None and outcome.outcome == "scheduled"
        assert outcome.at == ended_at + ERASABLE_AFTER_MS
        d.loop.run(
            d.recorder.report(
                session_id=chat.session_id,
                reporter_slot=1,
                reason="threats",
                comment=None,
                created_at=d.clock.now_ms() + 1,
            )
        )
        d.recorder.settle()
        d.at(ended_at + ERASABLE_AFTER_MS + 1)
        d.retention.purge()
        assert d.readable(chat.session_id) == EVERYTHING

    def test_the_erasure_records_the_end_and_the_window(self, deployment: Deployment) -> None:
        """The signed request names the end entry it waited from and the window."""
        d = deployment
        chat = d.chat()
        outcome = d.retention.erase(chat.receipts[0])
        assert outcome is not None and outcome.outcome == "scheduled"
        kinds = {e.kind: e for e in d.store.audit_entries_of(chat.session_id)}
        asked = json.loads(kinds["erasure"].body)
        assert asked["end"] == kinds["end"].idx
        assert asked["window"] == ERASABLE_AFTER_MS
        assert asked["until"] == json.loads(kinds["end"].body)["at"] + ERASABLE_AFTER_MS

    def test_a_cleared_report_is_not_erased(
        self, deployment: Deployment, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A report cleared in the store: the log still shows it, and nothing is erased."""
        d = deployment
        chat = d.chat(report=True)
        self.tamper(d, "UPDATE sessions SET reported_at = NULL WHERE id = :s", s=chat.session_id)
        d.at(T0 + ERASABLE_AFTER_MS + 10)
        outcome = d.retention.erase(chat.receipts[0])
        assert outcome is not None and outcome.outcome == "refused"
        assert "does not match the audit log" in outcome.reason
        assert "not destroying anything" in caplog.text
        assert d.readable(chat.session_id) == EVERYTHING


class TestUndisclosedPreservation:
    @pytest.mark.parametrize("kind", ["reported", "held"])
    def test_receipts_give_one_neutral_answer(self, deployment: Deployment, kind: str) -> None:
        """With receipts_disclose_preservation off, a reported and a held chat look the same
        to a receipt holder: kept, no reason, no date; erasure refused neutrally."""
        d = deployment
        neutral = retention_over(d.store, d.keystore, d.clock, disclose=False)
        chat = d.chat(report=kind == "reported")
        if kind == "held":
            d.retention.hold(chat.session_id, reason="order 3")
        d.at(T0 + ERASABLE_AFTER_MS + 10)
        receipt = neutral.receipt(chat.receipts[0])
        assert receipt is not None
        assert (receipt.reported, receipt.held, receipt.withheld) == (False, False, True)
        assert all(k.until is None for k in receipt.kept)
        outcome = neutral.erase(chat.receipts[0])
        assert outcome is not None
        assert (outcome.outcome, outcome.at) == ("refused", None)
        assert "report" not in outcome.reason and "hold" not in outcome.reason
        assert d.readable(chat.session_id) == EVERYTHING

    def test_ordinary_chats_are_unaffected(self, deployment: Deployment) -> None:
        """An ordinary chat's receipt gives its dates as usual in the neutral mode."""
        d = deployment
        neutral = retention_over(d.store, d.keystore, d.clock, disclose=False)
        chat = d.chat()
        receipt = neutral.receipt(chat.receipts[0])
        assert receipt is not None and not receipt.withheld
        assert [k.until for k in receipt.kept] == [METADATA_GONE, TEXT_GONE, ADDRESS_GONE]


class TestCheck:
    def test_reports_what_a_missed_purge_left(self, deployment: Deployment) -> None:
        """Without a purge, the check names each class kept past its time and the keys."""
        d = deployment
        d.chat()
        d.at(METADATA_GONE)
        classes = {f.cls for f in d.retention.check()}
        assert {"session", "raw_ip", "metadata"} <= classes

    def test_reports_a_reported_session_whose_key_was_not_moved(
        self, deployment: Deployment
    ) -> None:
        """A reported session whose key still sits in its day bucket (a crash between the
        report and the re-wrap) is named; the next purge moves it instead of destroying it."""
        d = deployment
        chat = d.chat()
        d.store.mark_reported(chat.session_id, at=d.clock.now_ms())
        findings = d.retention.check()
        assert any(chat.session_id in f.what for f in findings)
        purge_at(d, T0 + DAY_MS)
        assert d.keystore.locate(chat.session_id)["text"] == ("reported", DAY0)
        purge_at(d, TEXT_GONE)
        assert d.readable(chat.session_id) == EVERYTHING


class TestRecorderFailures:
    def test_a_bad_record_does_not_cost_a_session_start_its_keys(
        self, deployment: Deployment
    ) -> None:
        """A session start committed beside a bad record (a message for a session never
        started): the group commit fails and is retried record by record; the start still
        gets its keys once, and its chat is recorded and readable."""
        d = deployment

        async def start_beside_a_bad_message() -> list[BaseException | None]:
            started = d.recorder.session_started(
                session_id="ab" * 16,
                started_at=d.clock.now_ms(),
                interests=[],
                addresses=("192.0.2.201", "192.0.2.202"),
                pseudonyms=("c" * 32, "d" * 32),
                block_keys=("c" * 32, "d" * 32),
                receipts=("e" * 64, "f" * 64),
            )
            bad = d.recorder.message(
                session_id="cd" * 16, seq=1, slot=0, sent_at=d.clock.now_ms(), text="lost"
            )
            results = await asyncio.gather(started, bad, return_exceptions=True)
            return [r if isinstance(r, BaseException) else None for r in results]

        outcomes = d.loop.run(start_beside_a_bad_message())
        assert outcomes[0] is None
        assert outcomes[1] is not None
        d.loop.run(d._message("ab" * 16, 1, d.clock.now_ms(), "still recorded"))
        transcript = d.transcript("ab" * 16)
        assert transcript is not None
        assert [m["text"] for m in transcript.messages] == ["still recorded"]
        assert set(d.keystore.locate("ab" * 16)) == {"text", "address"}
