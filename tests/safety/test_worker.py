"""The risk scorer in a process of its own (src/logwarden/safety/worker.py): it answers what
the scorer in the server's process would, names messages by their seq, says when a session is
done, and when it dies the server scores in its own process from then on."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from logwarden.safety.scoring import Assessment, RiskPolicy
from logwarden.safety.worker import RiskWorker

THREAT = "send me $200 or ill show everyone your pics"
SMALL_TALK = ("hi how are you", "good thanks, you?", "making pasta tonight")


class Answers:
    def __init__(self) -> None:
        self.changes: list[tuple[str, Assessment, dict[int, int]]] = []
        self.done: list[str] = []

    def on_change(self, session_id: str, assessment: Assessment, seqs: dict[int, int]) -> None:
        self.changes.append((session_id, assessment, seqs))

    def on_done(self, session_id: str) -> None:
        self.done.append(session_id)


def run(test: Callable[[RiskWorker, Answers], Coroutine[Any, Any, None]], inline: bool) -> None:
    async def main() -> None:
        answers = Answers()
        worker = RiskWorker(RiskPolicy(), answers.on_change, answers.on_done, inline=inline)
        await worker.start()
        try:
            await test(worker, answers)
        finally:
            await worker.close()

    asyncio.run(main())


@pytest.mark.parametrize("inline", [False, True], ids=["process", "inline"])
class TestRiskWorker:
    def test_a_threat_and_demand_is_answered_with_seqs(self, inline: bool) -> None:
        """Sextortion in the third message: one answer for that session, high, its reasons
        naming the message by its seq in the chat (7), not by its place in the scorer."""

        async def test(worker: RiskWorker, answers: Answers) -> None:
            for seq, text in zip((3, 5), SMALL_TALK, strict=False):
                worker.observe("s1", seq, "0", text, [])
            worker.observe("s2", 1, "1", "hello", [])
            worker.observe("s1", 7, "0", THREAT, [])
            await worker.settle()
            assert [(sid, a.level, a.flags) for sid, a, _ in answers.changes] == [
                ("s1", "high", ("sextortion",))
            ]
            _sid, assessment, seqs = answers.changes[0]
            assert {seqs[reason.index] for reason in assessment.reasons} == {7}

        run(test, inline)

    def test_a_stated_age_counts_through_its_finding_kind(self, inline: bool) -> None:
        async def test(worker: RiskWorker, answers: Answers) -> None:
            worker.observe("s1", 1, "1", "im 13", ["age"])
            await worker.settle()
            assert [a.flags for _, a, _ in answers.changes] == [("minor",)]

        run(test, inline)

    def test_a_forgotten_session_is_done_and_starts_afresh(self, inline: bool) -> None:
        async def test(worker: RiskWorker, answers: Answers) -> None:
            worker.observe("s1", 1, "0", "ill show everyone your pics", [])
            worker.forget("s1")
            worker.observe("s1", 1, "0", "send me $200", [])  # a new scorer: no threat known
            await worker.settle()
            assert answers.done == ["s1"]
            assert all("sextortion" not in a.flags for _, a, _ in answers.changes)

        run(test, inline)


def test_when_the_process_dies_scoring_goes_on_in_the_server() -> None:
    """The worker is killed: nothing raises, and the next messages are scored in this process
    (the sessions start afresh)."""

    async def test(worker: RiskWorker, answers: Answers) -> None:
        worker.observe("s1", 1, "0", "hello", [])
        await worker.settle()
        assert worker._process is not None and worker._process.pid != os.getpid()
        os.kill(worker._process.pid, signal.SIGKILL)
        await asyncio.to_thread(worker._process.join, 10)
        for _ in range(100):  # the loop sees the socket close
            if worker._inline is not None:
                break
            await asyncio.sleep(0.05)
        assert worker._inline is not None
        worker.observe("s1", 2, "0", THREAT, [])
        assert [(sid, a.flags) for sid, a, _ in answers.changes] == [("s1", ("sextortion",))]

    run(test, inline=False)
