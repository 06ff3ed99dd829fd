"""Group commit: items submitted from the event loop are written in batches by one thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from logwarden.errors import StoreError
from logwarden.recorder.batcher import GroupCommitter
from logwarden.store import MessageRow, ParticipantRow, SessionRow, SqlStore, WriteBatch

Item = TypeVar("Item")
T0 = 1_764_061_200_000
DAY = T0 // 86_400_000
WINDOW = 0.005  # seconds


class ListWriter:
    """A real write function: records each batch, refusing the items in ``refuse``."""

    def __init__(self, refuse: Callable[[int], BaseException | None] = lambda item: None) -> None:
        self.batches: list[list[int]] = []
        self.written: list[int] = []
        self.threads: set[str] = set()
        self._refuse = refuse

    def __call__(self, items: Sequence[int]) -> None:
        self.threads.add(threading.current_thread().name)
        for item in items:
            error = self._refuse(item)
            if error is not None:
                raise error
        self.batches.append(list(items))
        self.written.extend(items)


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


@contextmanager
def committing(
    write: Callable[[Sequence[Item]], None], *, window: float = WINDOW, max_batch: int = 1024
) -> Iterator[GroupCommitter[Item, list[Item]]]:
    committer = GroupCommitter.writing(
        write, window=window, max_batch=max_batch, name="test-commit"
    )
    committer.start(asyncio.get_running_loop())
    try:
        yield committer
    finally:
        committer.close()


class TestBatching:
    def test_many_items_in_fewer_batches(self) -> None:
        """Items submitted together are written in fewer batches than items, in order."""
        writer = ListWriter()

        async def scenario() -> None:
            with committing(writer) as committer:
                futures = [committer.submit(n) for n in range(200)]
                await asyncio.gather(*futures)

        run(scenario)
        assert writer.written == list(range(200))
        assert len(writer.batches) < 200

    def test_future_resolves_after_its_item_is_written(self) -> None:
        """Every future resolves only once its item is in a written batch."""
        writer = ListWriter()
        written_when_resolved: dict[int, bool] = {}

        async def scenario() -> None:
            with committing(writer) as committer:
                futures = []
                for n in range(100):
                    future = committer.submit(n)
                    future.add_done_callback(
                        lambda _, n=n: written_when_resolved.__setitem__(n, n in writer.written)
                    )
                    futures.append(future)
                    if n % 10 == 0:
                        await asyncio.sleep(0)  # let some batches go in between
                await asyncio.gather(*futures)

        run(scenario)
        assert written_when_resolved == dict.fromkeys(range(100), True)

    def test_futures_wait_for_the_write(self) -> None:
        """A future is not resolved while its write is still running."""
        release = threading.Event()
        started = threading.Event()

        def slow_write(items: Sequence[int]) -> None:
            started.set()
            release.wait(timeout=5)

        async def scenario() -> None:
            with committing(slow_write) as committer:
                future = committer.submit(1)
                await asyncio.get_running_loop().run_in_executor(None, started.wait, 5)
                await asyncio.sleep(0.02)
                assert not future.done()
                release.set()
                await asyncio.wait_for(future, timeout=5)

        run(scenario)

    def test_max_batch(self) -> None:
        """No batch holds more than ``max_batch`` items."""
        writer = ListWriter()

        async def scenario() -> None:
            with committing(writer, max_batch=7) as committer:
                await asyncio.gather(*(committer.submit(n) for n in range(50)))

        run(scenario)
        assert writer.written == list(range(50))
        assert max(len(batch) for batch in writer.batches) <= 7
        assert len(writer.batches) >= 8

    def test_writes_on_its_own_thread(self) -> None:
        """The write function runs on the committer's thread, not the event loop's."""
        writer = ListWriter()

        async def scenario() -> None:
            with committing(writer) as committer:
                await committer.submit(1)

        run(scenario)
        assert writer.threads == {"test-commit"}

    def test_abandoned_future_does_not_disturb_others(self) -> None:
        """A waiter that went away (cancelled future) is skipped; the rest still resolve."""
        writer = ListWriter()

        async def scenario() -> None:
            with committing(writer, window=0.05) as committer:
                gone = committer.submit(0)
                gone.cancel()
                await asyncio.gather(*(committer.submit(n) for n in range(1, 10)))

        run(scenario)
        assert writer.written == list(range(10))  # the item itself was still written


class TestFailures:
    def test_bad_item_fails_only_its_own_future(self) -> None:
        """An item whose write raises fails its own future; the others of its batch succeed."""
        writer = ListWriter(lambda n: ValueError(f"cannot write {n}") if n == 13 else None)

        async def scenario() -> list[object]:
            with committing(writer, window=0.05) as committer:
                futures = [committer.submit(n) for n in range(30)]
                return await asyncio.gather(*futures, return_exceptions=True)

        outcomes = asyncio.run(scenario())
        assert isinstance(outcomes[13], StoreError)
        assert "cannot write 13" in str(outcomes[13])
        assert [o for i, o in enumerate(outcomes) if i != 13] == [None] * 29
        assert sorted(writer.written) == [n for n in range(30) if n != 13]

    def test_store_error_is_passed_on(self) -> None:
        """A StoreError from the write reaches the waiter as is."""
        error = StoreError("could not write to the session log: disk full")
        writer = ListWriter(lambda n: error if n == 2 else None)

        async def scenario() -> None:
            with committing(writer) as committer:
                futures = [committer.submit(n) for n in range(5)]
                with pytest.raises(StoreError) as info:
                    await futures[2]
                assert info.value is error
                await asyncio.gather(*futures[:2], *futures[3:])

        run(scenario)

    def test_write_that_always_fails(self) -> None:
        """When every write fails, every future fails with a StoreError."""
        writer = ListWriter(lambda n: OSError("disk gone"))

        async def scenario() -> list[object]:
            with committing(writer) as committer:
                futures = [committer.submit(n) for n in range(5)]
                return await asyncio.gather(*futures, return_exceptions=True)

        outcomes = asyncio.run(scenario())
        assert all(isinstance(o, StoreError) for o in outcomes)
        assert writer.written == []

    def test_keeps_working_after_a_failure(self) -> None:
        """After a failed item, later submissions are written normally."""
        writer = ListWriter(lambda n: ValueError("no") if n == 0 else None)

        async def scenario() -> None:
            with committing(writer) as committer:
                with pytest.raises(StoreError):
                    await committer.submit(0)
                await asyncio.gather(*(committer.submit(n) for n in range(1, 4)))

        run(scenario)
        assert writer.written == [1, 2, 3]


class TestPipelining:
    def test_next_batch_is_prepared_while_one_is_written(self) -> None:
        """The next batch's preparation runs while the batch before it is being written."""
        prepared: list[list[int]] = []
        second_prepared = threading.Event()
        overlapped: list[bool] = []

        def prepare(items: Sequence[int], batch: list[int] | None) -> list[int]:
            prepared.append(list(items))
            if 1 in items:
                second_prepared.set()
            return [*(batch or []), *items]

        def write(batch: list[int]) -> None:
            if batch[0] == 0:  # the first batch's write waits for the second's preparation
                overlapped.append(second_prepared.wait(timeout=5))

        async def scenario() -> None:
            committer = GroupCommitter(prepare, write, window=0, max_batch=1, name="pipeline")
            committer.start(asyncio.get_running_loop())
            try:
                await asyncio.gather(committer.submit(0), committer.submit(1))
            finally:
                committer.close()

        run(scenario)
        assert overlapped == [True]
        assert prepared == [[0], [1]]

    def test_a_batch_grows_while_the_one_before_is_written(self) -> None:
        """What arrives during a write joins the next batch, prepared as it comes, and the
        next batch is written once, whole."""
        release = threading.Event()
        writes: list[list[int]] = []
        chunks: list[list[int]] = []

        def prepare(items: Sequence[int], batch: list[int] | None) -> list[int]:
            chunks.append(list(items))
            return [*(batch or []), *items]

        def write(batch: list[int]) -> None:
            if batch == [0]:
                release.wait(timeout=5)
            writes.append(batch)

        async def scenario() -> None:
            committer = GroupCommitter(prepare, write, window=0, max_batch=100)
            committer.start(asyncio.get_running_loop())
            try:
                first = committer.submit(0)
                await asyncio.sleep(0.05)  # batch [0] is being written, and waits
                later = []
                for n in range(1, 31):
                    later.append(committer.submit(n))
                    if n % 10 == 0:
                        await asyncio.sleep(0.01)  # the waiting batch prepares what came
                release.set()
                await asyncio.gather(first, *later)
            finally:
                committer.close()

        run(scenario)
        assert writes == [[0], list(range(1, 31))]
        assert len(chunks) > 2  # [0], then the next batch in several pieces

    def test_slow_writes_keep_queue_order(self) -> None:
        """However long each write takes, batches are prepared and written in queue order."""
        prepared: list[int] = []
        written: list[int] = []

        def prepare(items: Sequence[int], batch: list[int] | None) -> list[int]:
            prepared.extend(items)
            return [*(batch or []), *items]

        def write(batch: list[int]) -> None:
            time.sleep(0.002 * (batch[0] % 3))  # uneven: a later write may be quicker
            written.extend(batch)

        async def scenario() -> None:
            committer = GroupCommitter(prepare, write, window=0, max_batch=3)
            committer.start(asyncio.get_running_loop())
            try:
                for start in range(0, 120, 6):
                    await asyncio.gather(*(committer.submit(n) for n in range(start, start + 6)))
            finally:
                committer.close()

        run(scenario)
        assert prepared == list(range(120))
        assert written == list(range(120))

    def test_failed_preparation_fails_only_its_item(self) -> None:
        """A batch whose preparation raises is prepared and written again item by item."""
        written: list[int] = []

        def prepare(items: Sequence[int], batch: list[int] | None) -> list[int]:
            if 7 in items:
                raise ValueError("cannot seal 7")
            return [*(batch or []), *items]

        async def scenario() -> list[object]:
            committer = GroupCommitter(prepare, written.extend, window=0.05, max_batch=16)
            committer.start(asyncio.get_running_loop())
            try:
                return await asyncio.gather(
                    *(committer.submit(n) for n in range(12)), return_exceptions=True
                )
            finally:
                committer.close()

        outcomes = asyncio.run(scenario())
        assert isinstance(outcomes[7], StoreError)
        assert "cannot seal 7" in str(outcomes[7])
        assert [o for i, o in enumerate(outcomes) if i != 7] == [None] * 11
        assert written == [n for n in range(12) if n != 7]


class TestLifecycle:
    def test_close_writes_what_was_queued(self) -> None:
        """close() returns only after everything queued before it has been written."""
        writer = ListWriter()

        async def scenario() -> None:
            committer = GroupCommitter.writing(writer, window=0.05, max_batch=8)
            committer.start(asyncio.get_running_loop())
            futures = [committer.submit(n) for n in range(100)]
            committer.close()
            assert writer.written == list(range(100))
            await asyncio.wait_for(asyncio.gather(*futures), timeout=5)

        run(scenario)

    def test_submit_after_close_raises(self) -> None:
        """submit after close raises StoreError rather than queue an item that is never written."""

        async def scenario() -> None:
            committer: GroupCommitter[int, list[int]] = GroupCommitter.writing(
                ListWriter(), window=0, max_batch=1
            )
            committer.start(asyncio.get_running_loop())
            committer.close()
            with pytest.raises(StoreError):
                committer.submit(1)

        run(scenario)

    def test_submit_before_start_raises(self) -> None:
        """submit before start raises StoreError."""
        committer: GroupCommitter[int, list[int]] = GroupCommitter.writing(
            ListWriter(), window=0, max_batch=1
        )
        with pytest.raises(StoreError):
            committer.submit(1)
        committer.close()

    def test_close_twice(self) -> None:
        """A second close does nothing."""
        writer = ListWriter()

        async def scenario() -> None:
            committer = GroupCommitter.writing(writer, window=0, max_batch=4)
            committer.start(asyncio.get_running_loop())
            await committer.submit(1)
            committer.close()
            committer.close()

        run(scenario)
        assert writer.written == [1]

    def test_thread_stops_on_close(self) -> None:
        """After close, the writer thread has exited."""

        async def scenario() -> None:
            committer = GroupCommitter.writing(
                ListWriter(), window=0, max_batch=4, name="test-stops"
            )
            committer.start(asyncio.get_running_loop())
            await committer.submit(1)
            committer.close()

        run(scenario)
        assert "test-stops" not in {t.name for t in threading.enumerate()}


# -- with the real SQLite store --------------------------------------------------------------

SESSION = "0123456789abcdef0123456789abcdef"


def merge(batches: Sequence[WriteBatch]) -> WriteBatch:
    merged = WriteBatch()
    for batch in batches:
        merged.sessions += batch.sessions
        merged.participants += batch.participants
        merged.messages += batch.messages
        merged.reports += batch.reports
        merged.ends += batch.ends
    return merged


def message(seq: int, text: bytes | None = None) -> WriteBatch:
    return WriteBatch(
        messages=[MessageRow(SESSION, seq, DAY, seq % 2, T0 + seq, text or b"sealed %d" % seq)]
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    store = SqlStore.sqlite(tmp_path / "logwarden.db")
    yield store
    store.close()


class TestWithSqlStore:
    def start_session(self) -> WriteBatch:
        return WriteBatch(
            sessions=[SessionRow(SESSION, T0, DAY, b"sealed interests")],
            participants=[
                ParticipantRow(SESSION, 0, "a" * 32, "a" * 32),
                ParticipantRow(SESSION, 1, "b" * 32, "b" * 32),
            ],
        )

    def test_each_message_is_in_the_log_when_its_future_resolves(self, store: SqlStore) -> None:
        """As each future completes, its message can already be read from the database."""
        batches: list[int] = []

        def write(items: Sequence[WriteBatch]) -> None:
            batches.append(len(items))
            store.write(merge(items))

        async def scenario() -> None:
            with committing(write) as committer:
                await committer.submit(self.start_session())
                pending = {committer.submit(message(seq)): seq for seq in range(1, 101)}
                for done in asyncio.as_completed(list(pending)):
                    await done
                record = store.session(SESSION)
                assert record is not None
                assert [m.seq for m in record.messages] == list(range(1, 101))

        run(scenario)
        assert len(batches) < 101

    def test_durable_before_resolution(self, store: SqlStore) -> None:
        """When a message's future resolves, a reader on the loop sees that message."""
        seen: dict[int, bool] = {}

        def check(seq: int) -> Callable[[asyncio.Future[None]], None]:
            def callback(_: asyncio.Future[None]) -> None:
                record = store.session(SESSION)
                seen[seq] = record is not None and seq in {m.seq for m in record.messages}

            return callback

        async def scenario() -> None:
            with committing(lambda items: store.write(merge(items))) as committer:
                await committer.submit(self.start_session())
                futures = []
                for seq in range(1, 31):
                    future = committer.submit(message(seq))
                    future.add_done_callback(check(seq))
                    futures.append(future)
                await asyncio.gather(*futures)

        run(scenario)
        assert seen == dict.fromkeys(range(1, 31), True)

    def test_constraint_violation_fails_only_its_item(self, store: SqlStore) -> None:
        """A duplicate message seq fails its own future; the rest of its batch is written."""

        async def scenario() -> list[object]:
            with committing(lambda items: store.write(merge(items)), window=0.05) as committer:
                await committer.submit(self.start_session())
                futures = [committer.submit(message(seq)) for seq in range(1, 11)]
                futures.insert(5, committer.submit(message(3, b"duplicate")))
                futures += [committer.submit(message(seq)) for seq in range(11, 16)]
                return await asyncio.gather(*futures, return_exceptions=True)

        outcomes = asyncio.run(scenario())
        assert isinstance(outcomes[5], StoreError)
        assert outcomes[:5] + outcomes[6:] == [None] * 15
        record = store.session(SESSION)
        assert record is not None
        assert [m.seq for m in record.messages] == list(range(1, 16))
        assert record.messages[2].text_sealed == b"sealed 3"
