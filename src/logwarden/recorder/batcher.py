"""Group commit: a queue drained into one transaction per batch, by two worker threads.

The event loop hands items to ``submit`` and awaits the returned future. A worker takes
everything queued (up to ``max_batch``), waits up to ``window`` seconds for more, prepares the
batch (``prepare``: the recorder seals and builds the rows) and writes it in one transaction,
then resolves every waiter at once. Under load the batch grows by itself while the previous
commit runs, so the commit cost is shared by many items. See docs/recorder.md.

Two workers take turns so that preparing one batch overlaps writing the one before it: the
write is mostly the database's own work, which runs without the GIL (SQLite's B-tree inserts
and its fsync), and the preparation is Python, which needs it. The gain is small: side by side on
bench/ingest.py (SQLite, three runs each, alternating) one worker recorded 8,300 to 9,600
messages a second and two 9,100 to 9,900, about 6% more, as large as the noise between runs
(docs/BENCHMARKS.md). While one worker writes, the other takes what is queued, prepares it, and
goes on taking and preparing what comes until the write is done: its batch is as large as one
thread's would be (everything that came during the write), and mostly prepared when due.
Batches are still taken, prepared and written in queue order, one at a time each. At low load
this costs nothing: the worker that takes a record writes it too, with no hand-over between
threads.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from logwarden.errors import StoreError

__all__ = ["GroupCommitter"]

Item = TypeVar("Item")
Prepared = TypeVar("Prepared")
log = logging.getLogger("logwarden.recorder")

_STOP = object()
_WORKERS = 2  # one prepares while the other writes; a third would only wait for its turn
_GATHER_INTERVAL = 0.001  # s: how often a batch waiting for its turn prepares what came, at least


class GroupCommitter(Generic[Item, Prepared]):
    """Commits submitted items in batches.

    ``prepare(items, prepared)`` prepares more items of a batch: into ``prepared``, what it
    returned for the batch's earlier items, or from nothing (None). ``write(prepared)`` writes
    a whole batch in one transaction. Batches are prepared and written in queue order, one at
    a time each, and a batch keeps gathering (and preparing) what is queued until the batch
    before it is written, so it is as large as with one thread. ``writing(write, ...)`` is the
    committer of items that need no preparation.
    """

    def __init__(
        self,
        prepare: Callable[[Sequence[Item], Prepared | None], Prepared],
        write: Callable[[Prepared], None],
        *,
        window: float,
        max_batch: int,
        name: str = "logwarden-group-commit",
    ) -> None:
        self._prepare = prepare
        self._write = write
        self._window = window  # seconds
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[Item, asyncio.Future[None]] | object] = (
            queue.SimpleQueue()
        )
        self._threads = [
            threading.Thread(target=self._run, name=name, daemon=True) for _ in range(_WORKERS)
        ]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        # Taking a batch from the queue and preparing it: one worker at a time, in queue order.
        self._taking = threading.Lock()
        self._taken = 0  # batches taken so far, under _taking: a batch's turn to be written
        self._stopped = False  # the stop sentinel was taken, under _taking
        # prepare() never runs twice at once: a failed batch's items are prepared again one by
        # one, beside the other worker's next batch.
        self._preparing = threading.Lock()
        self._turn = threading.Condition()
        self._written = 0  # batches written so far, under _turn

    @classmethod
    def writing(
        cls, write: Callable[[Sequence[Item]], None], *, window: float, max_batch: int, **kw: str
    ) -> GroupCommitter[Item, list[Item]]:
        """The committer of a ``write(items)`` that needs no preparation."""
        committer: GroupCommitter[Item, list[Item]] = GroupCommitter(
            lambda items, batch: [*(batch or ()), *items],
            write,
            window=window,
            max_batch=max_batch,
            **kw,
        )
        return committer

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for thread in self._threads:
            thread.start()

    def submit(self, item: Item) -> asyncio.Future[None]:
        """Queue ``item``; the future resolves once it is durably written (or fails)."""
        if self._closed or self._loop is None:
            raise StoreError("the session log is not accepting records (shutting down)")
        future = self._loop.create_future()
        self._queue.put((item, future))
        return future

    def close(self) -> None:
        """Write everything already queued, then stop the threads."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        for thread in self._threads:
            if thread.is_alive():
                thread.join()

    def _run(self) -> None:
        while True:
            with self._taking:
                if self._stopped:
                    return
                batch, self._stopped = self._collect()
                if not batch:
                    continue
                turn, self._taken = self._taken, self._taken + 1
                prepared = self._gather(batch, turn)
            try:
                self._commit(batch, prepared)
            finally:
                with self._turn:
                    self._written += 1
                    self._turn.notify_all()

    def _gather(
        self, batch: list[tuple[Item, asyncio.Future[None]]], turn: int
    ) -> Prepared | Exception:
        """Prepare ``batch``, and go on taking and preparing what is queued until it is the
        batch's turn to be written: while the batch before it is written, this one grows as
        it would behind a single thread, and most of it is prepared by the time it is due."""
        prepared = self._attempt(batch, None)
        while True:
            with self._turn:
                due = self._turn.wait_for(
                    lambda: self._written == turn,
                    timeout=self._window or _GATHER_INTERVAL,
                )
            if not self._stopped and len(batch) < self._max_batch:
                more: list[tuple[Item, asyncio.Future[None]]] = []
                self._stopped = self._take_queued(more, self._max_batch - len(batch))
                if more:
                    batch += more
                    if not isinstance(prepared, Exception):
                        prepared = self._attempt(more, prepared)
            if due:
                return prepared

    def _collect(self) -> tuple[list[tuple[Item, asyncio.Future[None]]], bool]:
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch: list[tuple[Item, asyncio.Future[None]]] = [first]  # type: ignore[list-item]
        stopping = self._take_queued(batch, self._max_batch - 1)
        if not stopping and len(batch) < self._max_batch and self._window > 0:
            # One sleep for the window, then whatever came: not a wake-up per record, since
            # each wake-up must win the GIL back from the busy event loop (up to the 5 ms
            # switch interval), and the records of the batch would wait for every one.
            time.sleep(self._window)
            stopping = self._take_queued(batch, self._max_batch - len(batch))
        return batch, stopping

    def _take_queued(self, into: list[tuple[Item, asyncio.Future[None]]], room: int) -> bool:
        """Move up to ``room`` records queued now into ``into``; True at ``_STOP``."""
        for _ in range(room):
            try:
                entry = self._queue.get_nowait()
            except queue.Empty:
                return False
            if entry is _STOP:
                return True
            into.append(entry)  # type: ignore[arg-type]  # anything else is (item, future)
        return False

    def _attempt(
        self, batch: list[tuple[Item, asyncio.Future[None]]], prepared: Prepared | None
    ) -> Prepared | Exception:
        try:
            with self._preparing:
                return self._prepare([item for item, _ in batch], prepared)
        except Exception as exc:  # the batch is written item by item instead
            return exc

    def _commit(
        self, batch: list[tuple[Item, asyncio.Future[None]]], prepared: Prepared | Exception
    ) -> None:
        try:
            if isinstance(prepared, Exception):
                raise prepared
            self._write(prepared)
            outcomes: list[BaseException | None] = [None] * len(batch)
        except Exception as exc:
            log.warning(
                "group commit of %d records failed (%s); retrying one by one", len(batch), exc
            )
            outcomes = [self._write_alone(item) for item, _ in batch]
        assert self._loop is not None
        self._loop.call_soon_threadsafe(_resolve, [f for _, f in batch], outcomes)

    def _write_alone(self, item: Item) -> BaseException | None:
        # One bad record (a bug, a constraint) must not cost the other records of its batch.
        try:
            with self._preparing:
                prepared = self._prepare([item], None)
            self._write(prepared)
        except Exception as exc:
            log.error("a record could not be written: %s", exc)
            return exc if isinstance(exc, StoreError) else StoreError(str(exc))
        return None


def _resolve(futures: list[asyncio.Future[None]], outcomes: list[BaseException | None]) -> None:
    for future, outcome in zip(futures, outcomes, strict=True):
        if future.done():  # the waiter went away (its client disconnected)
            continue
        if outcome is None:
            future.set_result(None)
        else:
            future.set_exception(outcome)
