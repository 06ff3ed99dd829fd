"""Conversation risk scored beside the chat server, in a process of its own.

Scoring is a third of the event loop's work per message (docs/BENCHMARKS.md), and the loop
shares one GIL with the session log's writer thread: every microsecond it spends is one the
writer may wait for, and the chat's latency is that wait. ``RiskWorker`` takes scoring out of
the process. The loop hands each relayed message to ``observe`` and goes on; once per loop
iteration the batch goes to the worker over a socket pair, one write for all of them, made
the way the loop writes to its clients. The worker keeps one ``ConversationRisk`` per
session and answers only with the assessments that changed; ``on_change(session_id,
assessment)`` runs on the loop when one arrives, a millisecond or so after the message was
relayed (never before: scoring never held a message back).

If the worker dies, the chat goes on: the loss is logged and scoring continues in the server's
own process, each session starting afresh from its next message. ``inline=True`` scores there
from the start (``[safety] risk_process = false``).

Frames are a 4-byte length and a pickle (``logwarden._frames``), between this process and the
child it started, on a private socket pair: no one else can write to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import socket
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from logwarden._frames import Outbox, frame, read_frame, read_frame_blocking
from logwarden.safety.scoring import Assessment, ConversationRisk, RiskPolicy

__all__ = ["RiskWorker"]

log = logging.getLogger("logwarden.safety")

_PARTICIPANTS = ("0", "1")  # the chat's two slots: either can be the one at risk


class _Kind(NamedTuple):
    """A finding as the scorer reads it: its kind only (age, contact details)."""

    kind: str


# (session id, its new assessment, the seq in the chat of each message its reasons name)
OnChange = Callable[[str, Assessment, dict[int, int]], None]
OnDone = Callable[[str], None]  # the session's last answer has come


class RiskWorker:
    def __init__(
        self, policy: RiskPolicy, on_change: OnChange, on_done: OnDone, *, inline: bool = False
    ) -> None:
        self._policy = policy
        self._on_change = on_change
        self._on_done = on_done
        self._inline: dict[str, _Scored] | None = {} if inline else None
        self._outbox = Outbox()  # events for the worker process
        self._closed = False
        self._process: multiprocessing.process.BaseProcess | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None
        self._synced: dict[int, asyncio.Future[None]] = {}
        self._syncs = 0

    async def start(self) -> None:
        """Start the worker process (unless inline)."""
        if self._inline is not None:
            return
        ours, theirs = socket.socketpair()
        context = multiprocessing.get_context("spawn")  # no copy of the server's state
        self._process = context.Process(
            target=_serve, args=(theirs, self._policy), name="logwarden-risk", daemon=True
        )
        self._process.start()
        theirs.close()
        reader, self._writer = await asyncio.open_connection(sock=ours)
        self._reading = asyncio.get_running_loop().create_task(self._read(reader))
        self._outbox.writer = self._writer
        self._outbox.flush()  # what was observed while it started

    def observe(
        self, session_id: str, seq: int, sender: str, text: str, kinds: Sequence[str]
    ) -> None:
        """Score message ``seq`` of ``session_id``, relayed (``kinds``: its PII findings')."""
        if self._closed:
            return
        if self._inline is not None:
            self._score_inline(session_id, seq, sender, text, kinds)
            return
        self._outbox.add(("m", session_id, seq, sender, text, tuple(kinds)))

    def forget(self, session_id: str) -> None:
        """The session has ended: after what was observed of it, drop its state."""
        if self._closed:
            return
        if self._inline is not None:
            self._inline.pop(session_id, None)
            self._on_done(session_id)
            return
        self._outbox.add(("end", session_id))

    async def settle(self) -> None:
        """Wait until everything observed so far has been answered (and acted on)."""
        if self._inline is not None or self._writer is None:
            return  # scored as it came
        self._syncs += 1
        token = self._syncs
        done = self._synced[token] = asyncio.get_running_loop().create_future()
        self._outbox.add(("sync", token))
        await done

    async def close(self, timeout: float = 5.0) -> None:
        """Wait until everything observed has been scored and acted on, then stop."""
        if self._inline is None and self._writer is not None:
            with contextlib.suppress(TimeoutError, ConnectionError):
                await asyncio.wait_for(self.settle(), timeout)
        self._closed = True
        if self._writer is not None:
            self._writer.close()
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading
        if self._process is not None:
            await asyncio.to_thread(self._process.join, timeout)
            if self._process.is_alive():
                self._process.kill()

    # -- the worker's side of the socket ---------------------------------------------------

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                for answer in await read_frame(reader):
                    self._dispatch(answer)
        except (asyncio.IncompleteReadError, ConnectionError):
            self._died()

    def _dispatch(self, answer: tuple[Any, ...]) -> None:
        if answer[0] == "synced":
            done = self._synced.pop(answer[1], None)
            if done is not None and not done.done():
                done.set_result(None)
            return
        try:
            if answer[0] == "ended":
                self._on_done(answer[1])
            else:
                self._on_change(answer[1], answer[2], answer[3])
        except Exception:  # one session's action must not stop everyone's scoring
            log.exception("acting on the risk of session %s failed", answer[1])

    def _died(self) -> None:
        """The worker is gone: score here from now on, with what was never sent."""
        if self._closed:
            return  # we closed it
        log.error("the risk scorer's process stopped; scoring in the server from now on")
        self._inline = {}
        self._outbox.writer = None
        pending, self._outbox.items = self._outbox.items, []
        for event in pending:
            if event[0] == "m":
                self._score_inline(*event[1:])
            elif event[0] == "end":
                self._on_done(event[1])
        for done in self._synced.values():
            if not done.done():
                done.set_result(None)

    def _score_inline(
        self, session_id: str, seq: int, sender: str, text: str, kinds: Sequence[str]
    ) -> None:
        assert self._inline is not None
        scored = self._inline.get(session_id)
        if scored is None:
            scored = self._inline[session_id] = _Scored(self._policy)
        answer = scored.observe(session_id, seq, sender, text, kinds)
        if answer is not None:
            self._dispatch(answer)


class _Scored:
    """One session's scorer, and the seq in the chat of each message it has read."""

    __slots__ = ("risk", "seqs")

    def __init__(self, policy: RiskPolicy) -> None:
        self.risk = ConversationRisk(policy, participants=_PARTICIPANTS)
        self.seqs: list[int] = []

    def observe(
        self, session_id: str, seq: int, sender: str, text: str, kinds: Sequence[str]
    ) -> tuple[Any, ...] | None:
        """The answer for the loop if the assessment changed, else None."""
        self.seqs.append(seq)
        before = self.risk.assessment
        after = self.risk.observe(sender, text, [_Kind(kind) for kind in kinds])
        if after is before:
            return None
        seqs = {reason.index: self.seqs[reason.index] for reason in after.reasons}
        return ("a", session_id, after, seqs)


def _serve(sock: socket.socket, policy: RiskPolicy) -> None:
    """The worker process: score what comes in, answer with what changed, until EOF."""
    sessions: dict[str, _Scored] = {}
    with sock, sock.makefile("rb") as incoming:
        while (events := read_frame_blocking(incoming)) is not None:
            answers: list[tuple[Any, ...]] = []
            for event in events:
                if event[0] == "m":
                    session_id = event[1]
                    scored = sessions.get(session_id)
                    if scored is None:
                        scored = sessions[session_id] = _Scored(policy)
                    answer = scored.observe(*event[1:])
                    if answer is not None:
                        answers.append(answer)
                elif event[0] == "end":
                    sessions.pop(event[1], None)
                    answers.append(("ended", event[1]))
                else:  # "sync": everything before it is answered
                    answers.append(("synced", event[1]))
            if answers:
                sock.sendall(frame(answers))
