"""Frames between the server and a child process it started: a 4-byte length and a pickle.

Unstable, internal. Only for a private socket pair made by the parent, so nothing but our own
child writes to it (hence the pickle). Used by the risk scorer's process (safety/worker.py)
and the session log's writer process (recorder/process.py).
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from typing import Any

__all__ = ["Outbox", "frame", "read_frame", "read_frame_blocking"]

_LENGTH = struct.Struct("!I")


def frame(items: list[Any]) -> bytes:
    """One frame holding ``items``."""
    body = pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader) -> list[Any]:
    """The next frame's items; ``asyncio.IncompleteReadError`` at the end of the stream."""
    size = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))[0]
    items: list[Any] = pickle.loads(await reader.readexactly(size))  # noqa: S301 - our child
    return items


def read_frame_blocking(incoming: Any) -> list[Any] | None:
    """The next frame's items from a binary file, or None at its end."""
    header = incoming.read(_LENGTH.size)
    if len(header) != _LENGTH.size:
        return None
    items: list[Any] = pickle.loads(incoming.read(_LENGTH.unpack(header)[0]))  # noqa: S301
    return items


class Outbox:
    """Items for the other side, written as one frame once per event-loop iteration: what
    each item costs the loop is an append, and the system call is shared by all that came in
    the iteration. Items wait while ``writer`` is None (the other side is not up yet).

    Unbounded on purpose: its users' items are bounded by the chat's own back-pressure (the
    log's records), by a reader far faster than the writer (the risk scorer), or by the
    records taken (their answers).
    """

    def __init__(self) -> None:
        self.writer: asyncio.StreamWriter | None = None
        self.items: list[Any] = []
        self._flushing = False

    def add(self, item: Any) -> None:
        self.items.append(item)
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Write what is waiting now (it is written at the end of the iteration anyway)."""
        self._flushing = False
        if self.items and self.writer is not None and not self.writer.is_closing():
            items, self.items = self.items, []
            self.writer.write(frame(items))
