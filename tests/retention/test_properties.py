"""Property: over random sequences of chats, reports, flags, holds, releases, erasures, clock
jumps and purges, each part of each session is readable exactly when a model of the retention
rules (docs/retention.md) says it is, on both backends; and `audit verify`, which judges every
destruction by the log's own account of retention, finds each one due."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logwarden.audit.verify import verify_log
from logwarden.retention.policy import DAY_MS, HOLD, RAW_IP, REPORTED, SESSION, day_of
from tests.retention.conftest import (
    AUDIT_SIGNER,
    ERASABLE_AFTER_MS,
    POLICY,
    Chat,
    Deployment,
    open_deployment,
    open_store,
)

Bucket = tuple[str, int]


@dataclass
class Model:
    """One session as the rules see it."""

    chat: Chat
    ended_at: int
    text: Bucket | None
    address: Bucket | None
    reported_at: int | None = None
    held: bool = False
    erase_after: int | None = None
    metadata: bool = True

    def expired(self, bucket: Bucket, now: int) -> bool:
        expires = POLICY.expires_at(*bucket)
        return expires is not None and expires <= now

    def targets(self) -> tuple[Bucket, Bucket]:
        day = day_of(self.chat.started_at)
        if self.held:
            return (HOLD, 0), (HOLD, 0)
        if self.reported_at is not None:
            reported = (REPORTED, day_of(self.reported_at))
            return reported, reported
        return (SESSION, day), (RAW_IP, day)

    def apply(self, now: int) -> None:
        text_target, address_target = self.targets()
        self.text = self._move(self.text, text_target, now)
        self.address = self._move(self.address, address_target, now)

    def _move(self, current: Bucket | None, target: Bucket, now: int) -> Bucket | None:
        if current is None or self.expired(current, now) or self.expired(target, now):
            return None
        return target

    def shred(self) -> None:
        self.text = self.address = None
        self.metadata = False

    def purge(self, now: int) -> None:
        if not self.metadata:
            return
        if self.reported_at is not None or self.held:
            self.apply(now)
        if self.erase_after is not None and self.erase_after <= now and not self.preserved:
            self.shred()
            return
        if self.text is not None and self.expired(self.text, now):
            self.text = None
        if self.address is not None and self.expired(self.address, now):
            self.address = None
        if not self.held:
            day = day_of(self.chat.started_at)
            ends = [(day + POLICY.metadata_days + 1) * DAY_MS]
            if self.reported_at is not None:
                ends.append((day_of(self.reported_at) + POLICY.reported_days + 1) * DAY_MS)
            if max(ends) <= now:
                self.shred()

    @property
    def preserved(self) -> bool:
        return self.held or self.reported_at is not None

    def readable(self) -> dict[str, bool]:
        return {
            "text": self.metadata and self.text is not None,
            "address": self.metadata and self.address is not None,
            "metadata": self.metadata,
        }


operations = st.lists(
    st.one_of(
        st.tuples(st.just("chat"), st.booleans()),
        st.tuples(st.just("advance"), st.integers(min_value=1, max_value=400 * 24)),  # hours
        st.tuples(st.just("purge")),
        st.tuples(st.sampled_from(["flag", "hold", "release", "erase"]), st.integers(0, 7)),
    ),
    min_size=1,
    max_size=25,
)


def run(d: Deployment, program: list[tuple[object, ...]]) -> None:
    models: list[Model] = []
    for step in program:
        now = d.clock.now_ms()
        match step:
            case ("chat", report):
                chat = d.chat(messages=1, report=bool(report))
                day = day_of(chat.started_at)
                model = Model(chat, chat.started_at + 3, (SESSION, day), (RAW_IP, day))
                if report:
                    model.reported_at = chat.started_at + 2
                    model.apply(d.clock.now_ms())
                models.append(model)
            case ("advance", hours):
                d.clock.advance(seconds=int(hours) * 3600)  # type: ignore[call-overload]
            case ("purge",):
                d.retention.purge()
                for model in models:
                    model.purge(now)
                assert d.retention.check() == []
            case (action, index) if models:
                model = models[int(index) % len(models)]  # type: ignore[call-overload]
                act(d, model, str(action), now)
        for model in models:
            assert d.readable(model.chat.session_id) == model.readable(), (step, model)
    verified = verify_log(d.store, verifier=AUDIT_SIGNER.verifier(), origin=AUDIT_SIGNER.name)
    assert verified.ok, [problem.what for problem in verified.problems]


def act(d: Deployment, model: Model, action: str, now: int) -> None:
    sid = model.chat.session_id
    if action == "erase":
        outcome = d.retention.erase(model.chat.receipts[0])
        if not model.metadata:
            assert outcome is None
        elif model.preserved:
            assert outcome is not None and outcome.outcome == "refused"
        elif now < model.ended_at + ERASABLE_AFTER_MS:
            assert outcome is not None and outcome.outcome == "scheduled"
            model.erase_after = model.ended_at + ERASABLE_AFTER_MS
        else:
            assert outcome is not None and outcome.outcome == "erased"
            model.shred()
        return
    result = {
        "flag": d.retention.flag,
        "hold": lambda s: d.retention.hold(s, reason="case"),
        "release": lambda s: d.retention.release(s, reason="case closed"),
    }[action](sid)
    assert (result is not None) == model.metadata
    if not model.metadata:
        return
    if action == "flag" and model.reported_at is None:
        model.reported_at = now
    model.held = {"hold": True, "release": False}.get(action, model.held)
    model.apply(now)


@pytest.mark.parametrize("backend_name", ["sqlite", "postgres"])
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(program=operations)
def test_readable_exactly_while_kept(
    request: pytest.FixtureRequest, backend_name: str, program: list[tuple[object, ...]]
) -> None:
    """Whatever happens, each part is readable exactly when the rules say it must be kept."""
    url = request.getfixturevalue("postgres_url") if backend_name == "postgres" else None
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        with open_deployment(data_dir, open_store(backend_name, data_dir, url)) as d:
            run(d, program)
