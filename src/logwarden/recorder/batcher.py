"""Group commit: one writer thread drains a queue into one transaction per batch.

The event loop hands items to ``submit`` and awaits the returned future; the writer thread
takes everything queued (up to ``max_batch``), waits up to ``window`` seconds for more, writes
it all in one transaction and resolves every waiter at once. Under load the batch grows by
itself while the previous commit's fsync runs, so the commit cost is shared by many items.
See docs/recorder.md.
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
log = logging.getLogger("logwarden.recorder")

_STOP = object()


class GroupCommitter(Generic[Item]):
    def __init__(
        self,
        write: Callable[[Sequence[Item]], None],
        *,
        window: float,
        max_batch: int,
        name: str = "logwarden-group-commit",
    ) -> None:
        self._write = write
        self._window = window  # seconds
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[Item, asyncio.Future[None]] | object] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread.start()

    def submit(self, item: Item) -> asyncio.Future[None]:
        """Queue ``item``; the future resolves once it is durably written (or fails)."""
        if self._closed or self._loop is None:
            raise StoreError("the session log is not accepting records (shutting down)")
        future = self._loop.create_future()
        self._queue.put((item, future))
        return future

    def close(self) -> None:
        """Write everything already queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = self._collect()
            if batch:
                self._commit(batch)

    def _collect(self) -> tuple[list[tuple[Item, asyncio.Future[None]]], bool]:
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch = [first]
        stopping = self._take_queued(batch)
        if not stopping and len(batch) < self._max_batch and self._window > 0:
            # One sleep for the window, then whatever came: not a wake-up per record, since
            # each wake-up must win the GIL back from the busy event loop (up to the 5 ms
            # switch interval), and the records of the batch would wait for every one.
            time.sleep(self._window)
            stopping = self._take_queued(batch)
        return batch, stopping  # type: ignore[return-value]  # entries are (item, future)

    def _take_queued(self, batch: list[object]) -> bool:
        """Move what is queued now into ``batch``, up to the batch size; True at ``_STOP``."""
        while len(batch) < self._max_batch:
            try:
                entry = self._queue.get_nowait()
            except queue.Empty:
                return False
            if entry is _STOP:
                return True
            batch.append(entry)
        return False

    def _commit(self, batch: list[tuple[Item, asyncio.Future[None]]]) -> None:
        items = [item for item, _ in batch]
        try:
            self._write(items)
            outcomes: list[BaseException | None] = [None] * len(batch)
        except Exception as exc:
            log.warning(
                "group commit of %d records failed (%s); retrying one by one", len(batch), exc
            )
            outcomes = [self._write_alone(item) for item in items]
        assert self._loop is not None
        self._loop.call_soon_threadsafe(_resolve, [f for _, f in batch], outcomes)

    def _write_alone(self, item: Item) -> BaseException | None:
        # One bad record (a bug, a constraint) must not cost the other records of its batch.
        try:
            self._write([item])
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
