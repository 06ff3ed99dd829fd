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

__all__ = ["frame", "read_frame", "read_frame_blocking"]

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
