"""The session log's writer in a process of its own (``[recorder] process``, the default).

The recorder seals every message, builds its audit entry and writes it: about 14 us of Python
a message (docs/BENCHMARKS.md), which in the server's process competes for the one GIL with
the event loop that relays the chat, and cost the chat a third of its throughput.
``RecorderProcess`` runs the ``Recorder`` in a child process instead. The loop hands each
record over and goes on; once per loop iteration the records go to the child over a socket
pair, one write for all of them, and the child answers with the outcome of each as its group
commits come back. A record's future resolves on that answer, after its commit, exactly as
with the recorder in the server: nothing is relayed that the log does not hold.

If the child dies, the records it had not answered fail (their senders get
``log_unavailable``, and nothing of them is relayed) and a new child starts; records that come
while it starts fail too, rather than wait. A chat that was live goes on: the new child reads
its session back from the store (``Recorder._live_day``). If the server dies, the child writes
what it was given and exits.

Frames (``logwarden._frames``) go between this process and the child it started, on a private
socket pair: no one else can write to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.config
import multiprocessing
import signal
import socket
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

from logwarden._frames import Outbox, frame, read_frame
from logwarden.clock import SystemClock
from logwarden.config import Settings
from logwarden.errors import StoreError

__all__ = ["RecorderProcess"]

log = logging.getLogger("logwarden.recorder")

_RESTART_DELAYS = (0.1, 0.5, 2.0, 5.0)  # s: waits before restarting a child that died, in turn
_STABLE = 60.0  # s: a child that lived this long starts the delays afresh when it dies
_CLOSE_TIMEOUT = 30.0  # s: for the child to write what it holds and stop


class RecorderProcess:
    """The ``SessionLog`` of a server whose recorder runs in a child process."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._loop: asyncio.AbstractEventLoop | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._running: asyncio.Task[None] | None = None
        # Records for the child, sent once a loop iteration while a child is up.
        self._outbox = Outbox()
        self._waiting: dict[int, asyncio.Future[None]] = {}  # record number → its future
        self._numbers = 0
        self._up = False  # a child is connected and takes records
        # A child died and the next is not up yet: records fail at once rather than wait.
        self._restarting = False
        self._closing = False
        self._started_at = 0.0
        self._restarts = 0

    # -- the SessionLog -----------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._running = loop.create_task(self._run())

    async def started(self) -> None:
        """Return once the first child takes records (they are queued until then).

        Raises ``StoreError`` if it could not start: a server must not open without its log.
        """
        while not (self._up or self._restarting or self._closing):
            await asyncio.sleep(0.01)
        if not self._up:
            raise StoreError("the session log's writer process could not start (see above)")

    def close(self) -> None:
        """Kept for the ``SessionLog`` protocol: ``aclose`` is the one that waits."""
        self._closing = True

    async def aclose(self) -> None:
        """Let the child write everything it was given, answer it, and stop."""
        self._closing = True
        if self._up and self._writer is not None:
            self._outbox.flush()
            self._writer.write(frame([("close",)]))
        if self._running is not None:
            # The child answers what it holds and exits; then the loop of _run ends.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._running), _CLOSE_TIMEOUT)
            self._running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._running
        self._fail_waiting("the session log is shut down")
        await asyncio.to_thread(self._stop_child)

    async def session_started(
        self,
        *,
        session_id: str,
        started_at: int,
        interests: Sequence[str],
        addresses: tuple[str, str],
        pseudonyms: tuple[str, str],
        block_keys: tuple[str, str],
        receipts: tuple[str, str],
    ) -> None:
        await self._submit(
            "session_started",
            session_id=session_id,
            started_at=started_at,
            interests=tuple(interests),
            addresses=addresses,
            pseudonyms=pseudonyms,
            block_keys=block_keys,
            receipts=receipts,
        )

    def message(
        self, *, session_id: str, seq: int, slot: int, sent_at: int, text: str
    ) -> asyncio.Future[None]:
        return self._submit(
            "message", session_id=session_id, seq=seq, slot=slot, sent_at=sent_at, text=text
        )

    async def session_ended(
        self, *, session_id: str, ended_at: int, reason: str, ended_by: int | None
    ) -> None:
        await self._submit(
            "session_ended",
            session_id=session_id,
            ended_at=ended_at,
            reason=reason,
            ended_by=ended_by,
        )

    async def report(
        self,
        *,
        session_id: str,
        reporter_slot: int,
        reason: str,
        comment: str | None,
        created_at: int,
    ) -> None:
        await self._submit(
            "report",
            session_id=session_id,
            reporter_slot=reporter_slot,
            reason=reason,
            comment=comment,
            created_at=created_at,
        )

    def safety_event(
        self,
        *,
        session_id: str,
        slot: int | None,
        at: int,
        kind: str,
        detail: dict[str, object],
        preserve: bool = False,
    ) -> asyncio.Future[None]:
        return self._submit(
            "safety_event",
            session_id=session_id,
            slot=slot,
            at=at,
            kind=kind,
            detail=detail,
            preserve=preserve,
        )

    # -- records out, answers in ----------------------------------------------------------

    def _submit(self, method: str, **fields: Any) -> asyncio.Future[None]:
        assert self._loop is not None, "start() first"
        future = self._loop.create_future()
        if self._closing or self._restarting:
            what = "shutting down" if self._closing else "its writer process is restarting"
            future.set_exception(StoreError(f"the session log is not accepting records ({what})"))
            return future
        self._numbers += 1
        self._waiting[self._numbers] = future
        self._outbox.add((self._numbers, method, fields))
        return future

    def _answered(self, answers: list[tuple[int, str | None]]) -> None:
        for number, error in answers:
            future = self._waiting.pop(number, None)
            if future is None or future.done():
                continue  # its waiter went away
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(StoreError(error))

    # -- the child ----------------------------------------------------------------------

    async def _run(self) -> None:
        """Start the child, relay its answers, and start another when it dies."""
        while not self._closing:
            try:
                await self._serve_one()
            except Exception:  # a child that cannot even start: try again after a while
                log.exception("the session log's writer process failed")
            self._up = False
            if self._closing:
                return
            self._restarting = True
            self._fail_waiting("the session log's writer process stopped")
            await asyncio.sleep(self._next_delay())

    async def _serve_one(self) -> None:
        ours, theirs = socket.socketpair()
        context = multiprocessing.get_context("spawn")  # no copy of the server's state
        self._process = context.Process(
            target=_child, args=(theirs, self._settings), name="logwarden-recorder", daemon=True
        )
        await asyncio.to_thread(self._process.start)
        theirs.close()
        reader, self._writer = await asyncio.open_connection(sock=ours)
        try:
            # The child says it is ready once its recorder is: records are taken from then on.
            if await read_frame(reader) != [("ready",)]:
                raise StoreError("the session log's writer process did not start")
            self._up, self._restarting = True, False
            self._started_at = time.monotonic()
            self._outbox.writer = self._writer
            self._outbox.flush()  # what came while it started
            while True:
                self._answered(await read_frame(reader))
        except (asyncio.IncompleteReadError, ConnectionError):
            if not self._closing:
                log.error("the session log's writer process stopped; starting another")
        finally:
            self._up = False
            self._outbox.writer = None
            self._writer.close()
            await asyncio.to_thread(self._stop_child)

    def _next_delay(self) -> float:
        if time.monotonic() - self._started_at > _STABLE:
            self._restarts = 0
        delay = _RESTART_DELAYS[min(self._restarts, len(_RESTART_DELAYS) - 1)]
        self._restarts += 1
        return delay

    def _fail_waiting(self, reason: str) -> None:
        waiting, self._waiting = self._waiting, {}
        self._outbox.items.clear()
        for future in waiting.values():
            if not future.done():
                future.set_exception(StoreError(reason))

    def _stop_child(self) -> None:
        process = self._process
        if process is None:
            return
        process.join(_CLOSE_TIMEOUT if self._closing else 1.0)
        if process.is_alive():
            process.kill()
            process.join()


# -- the child's side ---------------------------------------------------------------------


def _child(sock: socket.socket, settings: Settings) -> None:
    """The writer process: record what comes in, answer each record once it is durable."""
    # The server decides when this process stops (it says so, or it is gone): a Ctrl-C or a
    # SIGTERM sent to the whole process group must not end it before it has written what the
    # server handed it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    asyncio.run(_record(sock, settings))


async def _record(sock: socket.socket, settings: Settings) -> None:
    from logwarden.datadir import (
        open_audit,
        open_keystore,
        open_recorder,
        open_retention,
        open_store,
        open_vault,
    )
    from logwarden.logging_setup import log_config

    clock = SystemClock()
    keystore = open_keystore(settings)
    vault = open_vault(settings, keystore)
    # The server's own logging: no raw IP address in any record (logging_setup.py).
    logging.config.dictConfig(log_config(level=settings.log_level, pseudonym=vault.pseudonym))
    store = open_store(settings)
    audit = open_audit(settings, store=store, clock=clock)
    retention = open_retention(settings, store=store, keystore=keystore, audit=audit, clock=clock)
    recorder = open_recorder(settings, store=store, vault=vault, retention=retention, audit=audit)
    recorder.start(asyncio.get_running_loop())
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(frame([("ready",)]))
    answers = Outbox()
    answers.writer = writer
    pending: set[asyncio.Future[None]] = set()
    try:
        while True:
            try:
                records = await read_frame(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                break  # the server is gone: write what it gave us, then stop
            if records == [("close",)]:
                break
            for number, method, fields in records:
                outcome = asyncio.ensure_future(getattr(recorder, method)(**fields))
                pending.add(outcome)
                outcome.add_done_callback(pending.discard)
                outcome.add_done_callback(partial(_answer, answers, number))
        if pending:
            await asyncio.wait(pending)
        answers.flush()
        with contextlib.suppress(ConnectionError):
            await writer.drain()
    finally:
        await asyncio.to_thread(recorder.close)
        writer.close()
        store.close()
        keystore.close()


def _answer(answers: Outbox, number: int, outcome: asyncio.Future[None]) -> None:
    """Send record ``number``'s outcome: None once it is durable, else why it is not."""
    error = outcome.exception()
    answers.add((number, None if error is None else str(error)))
