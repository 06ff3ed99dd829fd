"""Helpers for testing logwarden and the clients and bots built on it.

``serve_in_process`` starts a real server (``python -m logwarden serve``) on a free port in its
own process and waits until it answers; ``ChatClient`` is a small synchronous protocol client.
Nothing here is a fake: the server is the product, the client speaks real WebSocket.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from logwarden.vault import KeyStore, Vault, load_key_file

__all__ = ["ChatClient", "LiveServer", "free_port", "reading_vault", "serve_in_process"]


@contextlib.contextmanager
def reading_vault(data_dir: Path) -> Iterator[Vault]:
    """A vault over a data directory's keys, for reading what a server logged."""
    keystore = KeyStore(data_dir / "keys")
    try:
        yield Vault(load_key_file(data_dir / "keys"), keystore)
    finally:
        keystore.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, as an init system would; SIGKILL if it does not exit in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def serve_in_process(
    data_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    startup_timeout: float = 20,
) -> Iterator[LiveServer]:
    """Run ``logwarden serve`` on a free port until the block ends."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"{data_dir.name}-server-{port}.log"
    command = [
        sys.executable,
        "-m",
        "logwarden",
        "serve",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
    ]
    if config_file is not None:
        command += ["--config", str(config_file)]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LOGWARDEN_")}
    environment.update(env or {})
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            command, stdout=log_file, stderr=subprocess.STDOUT, env=environment
        )
    server = LiveServer(process=process, port=port, data_dir=data_dir, log_path=log_path)
    try:
        _wait_until_up(server, startup_timeout)
        yield server
    finally:
        server.stop()


def _wait_until_up(server: LiveServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"server exited with {server.process.returncode}:\n{server.log_text()}"
            )
        health = server.url + "/healthz"
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(health, timeout=1) as response,  # noqa: S310 - our own loopback URL
        ):
            if response.status == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"server did not start within {timeout}s:\n{server.log_text()}")


class ChatClient:
    """A synchronous protocol client: send frames, receive them as dicts.

    ``recv`` answers heartbeat pings by itself and skips them, unless ``answer_pings`` is off
    (to play a client that has gone silent).
    """

    def __init__(
        self,
        url: str,
        *,
        forwarded_for: str | None = None,
        origin: str | None = None,
        answer_pings: bool = True,
        timeout: float = 10,
    ) -> None:
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
        self._resources = contextlib.ExitStack()
        self.connection: ClientConnection = self._resources.enter_context(
            connect(
                url,
                additional_headers=headers,
                origin=origin,  # type: ignore[arg-type]  # websockets types it as a NewType of str
                open_timeout=timeout,
                max_size=2**22,
                max_queue=4096,  # frames buffered unread; tests pipeline many before reading
            )
        )
        self.answer_pings = answer_pings
        self.hello = self.recv()
        assert self.hello["type"] == "hello", self.hello

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._resources.close()

    def send(self, kind: str, **fields: Any) -> None:
        self.connection.send(json.dumps({"type": kind, **fields}))

    def send_raw(self, data: str | bytes) -> None:
        self.connection.send(data)

    def recv(self, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            frame: dict[str, Any] = json.loads(
                self.connection.recv(timeout=max(0.0, deadline - time.monotonic()))
            )
            if frame["type"] != "ping":
                return frame
            if self.answer_pings:
                self.send("pong")

    def expect(self, kind: str, timeout: float = 10) -> dict[str, Any]:
        """The next frame, which must be of type ``kind``."""
        frame = self.recv(timeout)
        if frame["type"] != kind:
            raise AssertionError(f"expected a {kind!r} frame, got {frame}")
        return frame

    def join(self, interests: list[str] | None = None) -> dict[str, Any]:
        self.send("join", **({"interests": interests} if interests is not None else {}))
        return self.expect("waiting")
