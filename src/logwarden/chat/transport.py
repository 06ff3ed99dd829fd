"""uvicorn protocol classes with the limits a public chat server needs and uvicorn lacks.

Unstable: these subclass uvicorn's own protocols (h11 and the sans-I/O WebSocket one) and are
tested against the uvicorn version pyproject.toml admits; ``tests/chat/test_hostile.py`` fails
if an upgrade breaks them.

- ``handshake_limited_http(seconds)``: HTTP over h11, whose request head is capped at 16 KiB
  (httptools, uvicorn's default, accepts endless header lines into memory), and which closes
  a connection that has not sent a whole request head within ``seconds`` (slowloris).
- ``BackpressuredWebSocket``: stops reading from a client while its writes are blocked, so a
  client that sends pings but never reads cannot pile pongs up in our memory; and drops such
  a client outright when we close it, instead of waiting for buffer space that never comes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

__all__ = ["BackpressuredWebSocket", "handshake_limited_http"]


class BackpressuredWebSocket(WebSocketsSansIOProtocol):
    def pause_writing(self) -> None:
        super().pause_writing()
        # Every frame we read may make us write (a pong, an error); stop reading meanwhile.
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        if not self.read_paused:  # the parent pauses reading for its own reasons too
            self.transport.resume_reading()

    async def send(self, message: Any) -> None:
        if message["type"] == "websocket.close" and not self.writable.is_set():
            # The client is not reading: the close frame could never be written. Drop it.
            self.transport.abort()
            raise ClientDisconnected()
        await super().send(message)


def handshake_limited_http(seconds: float) -> type[H11Protocol]:
    """An h11 protocol class that gives a connection ``seconds`` to send its request head."""

    class HandshakeLimitedH11(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._deadline = self.loop.call_later(seconds, self._too_slow)

        def _too_slow(self) -> None:
            if self.cycle is None and not self.transport.is_closing():
                self.transport.close()

        def handle_websocket_upgrade(self, event: Any) -> None:
            self._cancel_deadline()
            super().handle_websocket_upgrade(event)

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_deadline()
            super().connection_lost(exc)

        def _cancel_deadline(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

    return HandshakeLimitedH11
