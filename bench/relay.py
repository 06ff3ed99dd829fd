"""Relay benchmark: what the session log costs a live chat server.

Run from the repository root::

    .venv/bin/python bench/relay.py                # the full run (500 pairs, 20 s)
    .venv/bin/python bench/relay.py --quick        # a check that it works (50 pairs, 5 s)

Three measurements, each against a real server (``python -m logwarden serve``, started by
``logwarden.testing.serve_in_process``) in its own process, with the load generator in another
process (this script again, with ``--client``: many ``websockets`` connections in one event
loop). Every scenario runs with the session log ON and OFF (``LOGWARDEN_UNSAFE_BENCH_NO_LOG``)
back to back in the same invocation, each on a fresh data directory, because the machine this
runs on is shared and noisy: only side-by-side figures are comparable.

(a) latency    N pairs, each side sending one message a second, spread over the second; the
               time from the sender's ``send`` to the stranger's receipt of ``message``,
               measured in the load generator with ``time.perf_counter`` (one clock), for
               the messages sent after ``--warmup`` seconds of the same sending.
(b) throughput the same pairs sending as fast as the server takes them: each sender keeps
               ``--window`` messages unacknowledged and sends the next on every ``sent``.
(c) memory     the server's RSS with no connections, then with K connections that received
               ``hello`` (idle), that ``join``-ed and wait, and that chat in pairs.

Senders say everyday chat lines of ``--message-chars`` characters (``--text chat``, nothing
the safety engine warns about), or ``--text digits``: a 17-digit float and x's, the
message of the benchmark before the safety engine read every message, and its detector's
costliest common case. Each receipt is matched to its send time in order, per sender.

Clients come from 127.0.0.1, which the server trusts as a proxy, and each presents its own
documentation address (RFC 5737, then RFC 3849) in ``X-Forwarded-For``. Every pair joins with
its own interest and the interest fallback is an hour, so each client is paired with its own
partner in the load generator and never with a stranger of another process.

Also measured, to explain the figures: the server's CPU per thread (psutil), and with
``perf`` on the PATH every fsync of the server and its duration (``perf trace``), which gives
the group commit's batch size. ``--py-spy DIR`` profiles the server during each measured
window; ``--server-env KEY=VALUE`` tries another server setting on every run.

Exit status: 0 when every floor is met; 1 when the benchmark itself failed (a pair not matched
in time, a lost message, a server error frame, a crashed process) or the server's source
changed while it ran (the repository is shared); 2 when it ran but missed a floor. Results go
to ``bench/results/`` (git-ignored) as JSON, with the commit and a hash of the server's code.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import hashlib
import ipaddress
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import psutil
import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

import logwarden
from logwarden.testing import LiveServer, serve_in_process

Mode = Literal["latency", "throughput", "memory"]
MessageText = Literal["chat", "digits"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
LATENCY_P99_FLOOR_MS = 25.0  # with the log on
THROUGHPUT_RATIO_FLOOR = 0.70  # log on / log off

# Raised far above any rate the benchmark reaches, so the limits never drop a frame: the
# benchmark measures the relay, not the rate limiter. Every run uses the same values.
BENCH_LIMITS = {
    "LOGWARDEN_CHAT__MESSAGES_PER_SECOND": "1000000",
    "LOGWARDEN_CHAT__MESSAGE_BURST": "1000000",
    "LOGWARDEN_CHAT__FRAMES_PER_SECOND": "1000000",
    "LOGWARDEN_CHAT__FRAME_BURST": "1000000",
}
SERVER_ENV = {
    "LOGWARDEN_TRUSTED_PROXIES": "127.0.0.1",
    # Pairs meet by a private interest; an hour of fallback keeps them from meeting anyone else.
    "LOGWARDEN_CHAT__INTEREST_FALLBACK": "3600",
    **BENCH_LIMITS,
}
NO_LOG_ENV = {"LOGWARDEN_UNSAFE_BENCH_NO_LOG": "1"}

_V4_DOC_NETS = ("192.0.2", "198.51.100", "203.0.113")  # RFC 5737
_V6_DOC_NET = int(ipaddress.IPv6Address("2001:db8::"))  # RFC 3849
_PONG = '{"type":"pong"}'


class BenchError(Exception):
    """The benchmark could not measure what it set out to; the message says why."""


def forwarded_for(index: int) -> str:
    """A documentation address of its own for client ``index``: 762 IPv4, then IPv6.

    The IPv6 ones share one /64, which the server treats as one network only for report
    blocks; the benchmark reports no one.
    """
    net, host = divmod(index, 254)
    if net < len(_V4_DOC_NETS):
        return f"{_V4_DOC_NETS[net]}.{host + 1}"
    return str(ipaddress.IPv6Address(_V6_DOC_NET + index))


def raise_open_files_limit(needed: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards ``needed`` (children inherit it); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


# ---------------------------------------------------------------------------------------------
# The load generator (``--client``): one process, one event loop, many connections.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientSpec:
    """What one load-generator process does; sent to it as JSON on its stdin."""

    url: str
    mode: Mode
    first_pair: int  # global index of this process's first pair
    pairs: int
    total_pairs: int  # over all load-generator processes, for spreading sends over a second
    seconds: float
    warmup: float  # seconds sent before the measured window
    window: int  # unacknowledged messages per sender, throughput only
    message_chars: int
    text: MessageText
    connect_concurrency: int
    setup_timeout: float  # seconds, for each of: connect, join/match, every stage
    drain_timeout: float  # seconds to wait for in-flight messages after sending stops


# What the senders say, in turn (``--text chat``): everyday chat lines written for the
# benchmark, a few with the numbers chat has (times, scores, levels), none with anything the
# safety engine warns about, so every message is relayed. The safety engine reads every
# message, so what they say is part of what is measured: ``--text digits`` sends the old
# message instead, a float of 17 digits and x's, the detector's costliest common case.
CHAT_LINES = (
    "hey how are you doing today",
    "not bad, just got back from school lol",
    "what kind of music do you like",
    "mostly rock and some old jazz, you?",
    "i play minecraft a lot, built a castle last week",
    "nice, do you play with friends or alone",
    "we lost 3-2 in overtime, so annoying",
    "brb 5 minutes, dinner is ready",
    "ok im back. what were we talking about",
    "the weather here is terrible, rain all day",
    "have you seen that new space movie yet",
    "no but my brother says the ending is great",
    "i hit level 30 in the game yesterday haha",
    "what do you want to study later",
    "maybe biology or something with animals",
    "cool, i like drawing more than anything",
)


def message_texts(kind: MessageText, chars: int) -> Callable[[int], str]:
    """The text of the n-th message, about ``chars`` characters long."""
    if kind == "digits":
        padding = "x" * max(0, chars - 20)
        return lambda _n: f"{time.perf_counter()!r} {padding}"
    following = CHAT_LINES[1:] + CHAT_LINES[:1]
    texts = tuple(
        f"{line} {after}"[:chars].rstrip()
        for line, after in zip(CHAT_LINES, following, strict=True)
    )
    return lambda n: texts[n % len(texts)]


class Peer:
    """One connection of the load generator."""

    __slots__ = ("flags", "index", "sent_at", "ws")

    def __init__(self, index: int, ws: ClientConnection) -> None:
        self.index = index  # global client index; pair = index // 2, partner = index ^ 1
        self.ws = ws
        self.flags = {kind: asyncio.Event() for kind in ("hello", "waiting", "matched", "ended")}
        # When each message not yet received by the partner was sent: the server relays one
        # sender's messages in order, so the partner's n-th receipt is the n-th of these.
        self.sent_at: collections.deque[float] = collections.deque()


# ``waiting`` before ``matched`` and ``stranger_left`` at the end need nothing done.
_EXPECTED_FRAMES = frozenset(
    {"hello", "waiting", "matched", "message", "sent", "ping", "error", "stranger_left"}
)


@dataclass
class Tally:
    sent: int = 0
    received: int = 0
    acked: int = 0
    relayed_in_window: int = 0  # throughput: ``message`` frames received inside the window
    acked_in_window: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    # latency scenario: second of sending -> [messages, worst ms, over the floor]
    timeline: dict[int, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    unexpected_closes: int = 0
    frames: int = 0  # every frame received, for diagnosing a server that went quiet
    # Frames a relay of plain messages never expects (``warning``, ``safety``, ``ended``...):
    # each one explains a message that was held back or a chat that was ended.
    surprises: Counter[str] = field(default_factory=Counter)


class LoadGenerator:
    def __init__(self, spec: ClientSpec, commands: asyncio.StreamReader) -> None:
        self.spec = spec
        self.commands = commands
        self.peers: list[Peer] = []
        self.by_index: dict[int, Peer] = {}
        self.readers: list[asyncio.Task[None]] = []
        self.tally = Tally()
        self.closing = False
        self.throughput = False
        self.t_end = 0.0  # stop sending at this perf_counter time
        self.window = (0.0, 0.0)  # perf_counter interval in which receipts are counted
        self.texts = message_texts(spec.text, spec.message_chars)

    # -- the run, stage by stage -----------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        try:
            await self._connect_all()
            await self._wait_all("hello", "received hello")
            emit("connected", connections=len(self.peers))
            if self.spec.mode == "memory":
                await self._memory_stages()
            else:
                await self._join_pairs()
                emit("matched")
                await self._command("go")
                if self.spec.mode == "latency":
                    await self._paced()
                else:
                    await self._saturated()
                await self._drain()
            return self._result()
        finally:
            await self._close_all()

    async def _memory_stages(self) -> None:
        emit("stage", stage="idle")
        await self._command("next")
        for peer in self.peers:  # a private interest each: everyone waits
            await peer.ws.send(_join(f"w{peer.index}"))
        await self._wait_all("waiting", "got waiting")
        emit("stage", stage="waiting")
        await self._command("next")
        for peer in self.peers:
            await peer.ws.send('{"type":"stop"}')
        await self._wait_all("ended", "got ended")
        await self._join_pairs()
        emit("stage", stage="chatting")
        await self._command("next")

    async def _connect_all(self) -> None:
        gate = asyncio.Semaphore(self.spec.connect_concurrency)
        first = 2 * self.spec.first_pair

        async def open_one(index: int) -> Peer:
            async with gate:
                ws = await connect(
                    self.spec.url,
                    additional_headers={"X-Forwarded-For": forwarded_for(index)},
                    open_timeout=self.spec.setup_timeout,
                    close_timeout=5,
                    ping_interval=None,  # the server's pings are the protocol's heartbeat
                    compression=None,  # the server does not deflate either
                    max_queue=1024,
                )
            peer = Peer(index, ws)
            self.readers.append(asyncio.create_task(self._read(peer)))
            return peer

        tasks = [asyncio.create_task(open_one(first + i)) for i in range(2 * self.spec.pairs)]
        try:
            async with asyncio.timeout(self.spec.setup_timeout):
                self.peers = list(await asyncio.gather(*tasks))
                self.by_index = {peer.index: peer for peer in self.peers}
        except TimeoutError:
            self.peers = _cancel_and_collect(tasks)  # closed again by ``run``
            raise BenchError(
                f"only {len(self.peers)} of {len(tasks)} connections opened within "
                f"{self.spec.setup_timeout:g}s"
            ) from None
        except BaseException:
            self.peers = _cancel_and_collect(tasks)
            raise

    async def _join_pairs(self) -> None:
        for peer in self.peers:
            peer.flags["matched"].clear()
            await peer.ws.send(_join(f"pair{peer.index // 2}"))
        await self._wait_all("matched", "were matched")

    async def _wait_all(self, flag: str, what: str) -> None:
        try:
            async with asyncio.timeout(self.spec.setup_timeout):
                for peer in self.peers:
                    await peer.flags[flag].wait()
        except TimeoutError:
            done = sum(peer.flags[flag].is_set() for peer in self.peers)
            raise BenchError(
                f"only {done} of {len(self.peers)} connections {what} within "
                f"{self.spec.setup_timeout:g}s ({self.tally.frames} frames received in all, "
                f"{self.tally.unexpected_closes} connections closed by the server); "
                f"errors from the server: {dict(self.tally.errors) or 'none'}"
            ) from None
        self._check_health()

    async def _command(self, expected: str) -> None:
        try:
            async with asyncio.timeout(self.spec.setup_timeout + 600):
                line = (await self.commands.readline()).decode().strip()
        except TimeoutError:
            raise BenchError(f"no {expected!r} from the orchestrator") from None
        if line != expected:
            raise BenchError(f"expected {expected!r} from the orchestrator, got {line!r}")

    # -- (a) latency: one message a second per sender, spread over the second ---------------

    async def _paced(self) -> None:
        # Sending starts ``warmup`` seconds before the measured window, as in (b): the first
        # seconds after the connections open are not the steady state (the server's first
        # full garbage collection of them comes then, 100-140 ms on the benchmark machine).
        t0 = time.perf_counter()
        start = t0 + self.spec.warmup
        self.t_end = start + self.spec.seconds
        self.window = (start, self.t_end)
        senders = 2 * self.spec.total_pairs
        tasks = [
            asyncio.create_task(self._send_every_second(peer, t0 + peer.index / senders))
            for peer in self.peers
        ]
        try:
            await asyncio.sleep(max(0.0, start - time.perf_counter()))
            emit("measure_start")
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
        emit("measure_end")

    async def _send_every_second(self, peer: Peer, first: float) -> None:
        at = first
        while at < self.t_end:
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            await self._send_message(peer)
            at += 1.0  # from the schedule, not from now: lateness does not accumulate

    # -- (b) throughput: a window of unacknowledged messages per sender ----------------------

    async def _saturated(self) -> None:
        t0 = time.perf_counter()
        start = t0 + self.spec.warmup
        self.t_end = start + self.spec.seconds
        self.window = (start, self.t_end)
        self.throughput = True
        for _ in range(self.spec.window):
            for peer in self.peers:
                await self._send_message(peer)
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        emit("measure_start")
        await asyncio.sleep(max(0.0, self.t_end - time.perf_counter()))
        emit("measure_end")

    # -- frames ------------------------------------------------------------------------------

    async def _send_message(self, peer: Peer) -> None:
        text = self.texts(self.tally.sent)
        peer.sent_at.append(time.perf_counter())
        await peer.ws.send(json.dumps({"type": "message", "text": text}))
        self.tally.sent += 1

    async def _read(self, peer: Peer) -> None:
        memory = self.spec.mode == "memory"  # where ``stop`` is sent and ``ended`` expected
        try:
            async for raw in peer.ws:
                self.tally.frames += 1
                frame = json.loads(raw)
                kind = frame["type"]
                if kind == "message":
                    self._on_message(self.by_index[peer.index ^ 1].sent_at.popleft())
                elif kind == "sent":
                    await self._on_sent(peer)
                elif kind == "ping":
                    await peer.ws.send(_PONG)
                elif kind == "error":
                    self.tally.errors[str(frame.get("code"))] += 1
                elif kind in peer.flags:
                    peer.flags[kind].set()
                if kind not in _EXPECTED_FRAMES and not (kind == "ended" and memory):
                    self.tally.surprises[kind] += 1
        except ConnectionClosed:
            pass
        if not self.closing:
            self.tally.unexpected_closes += 1

    def _on_message(self, sent_at: float) -> None:
        now = time.perf_counter()
        self.tally.received += 1
        start, end = self.window
        if self.throughput:
            if start <= now < end:
                self.tally.relayed_in_window += 1
                self.tally.latencies_ms.append((now - sent_at) * 1000)
        elif sent_at >= start:  # sent inside the window (a late one may stamp after it)
            latency = (now - sent_at) * 1000
            self.tally.latencies_ms.append(latency)
            bucket = max(0, min(int(sent_at - start), int(end - start) - 1))
            second = self.tally.timeline.setdefault(bucket, [0, 0.0, 0])
            second[0] += 1
            second[1] = max(second[1], latency)
            second[2] += latency >= LATENCY_P99_FLOOR_MS

    async def _on_sent(self, peer: Peer) -> None:
        self.tally.acked += 1
        if not self.throughput:
            return
        now = time.perf_counter()
        start, end = self.window
        if start <= now < end:
            self.tally.acked_in_window += 1
        if now < self.t_end and not self.closing:
            await self._send_message(peer)

    # -- the end -----------------------------------------------------------------------------

    async def _drain(self) -> None:
        deadline = time.perf_counter() + self.spec.drain_timeout
        while time.perf_counter() < deadline:
            if self.tally.received >= self.tally.sent and self.tally.acked >= self.tally.sent:
                break
            await asyncio.sleep(0.05)
        self._check_health()
        lost = self.tally.sent - self.tally.received
        if lost or self.tally.acked < self.tally.sent:
            raise BenchError(
                f"{lost} of {self.tally.sent} messages never reached the stranger and "
                f"{self.tally.sent - self.tally.acked} were never acknowledged within "
                f"{self.spec.drain_timeout:.0f}s of the end"
            )

    def _check_health(self) -> None:
        if self.tally.errors:
            raise BenchError(f"the server answered with error frames: {dict(self.tally.errors)}")
        if self.tally.unexpected_closes:
            raise BenchError(f"the server closed {self.tally.unexpected_closes} connections")
        if self.tally.surprises:
            raise BenchError(f"the server sent unexpected frames: {dict(self.tally.surprises)}")

    def _result(self) -> dict[str, Any]:
        t = self.tally
        return {
            "connections": len(self.peers),
            "sent": t.sent,
            "received": t.received,
            "acked": t.acked,
            "relayed_in_window": t.relayed_in_window,
            "acked_in_window": t.acked_in_window,
            "latencies_ms": [round(x, 4) for x in t.latencies_ms],
            "timeline": {str(k): v for k, v in sorted(t.timeline.items())},
        }

    async def _close_all(self) -> None:
        self.closing = True
        closes = [asyncio.create_task(peer.ws.close()) for peer in self.peers]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(15):
                await asyncio.gather(*closes, return_exceptions=True)
        for task in [*closes, *self.readers]:
            task.cancel()
        await asyncio.gather(*closes, *self.readers, return_exceptions=True)


def _cancel_and_collect(tasks: Sequence[asyncio.Task[Peer]]) -> list[Peer]:
    """Cancel what is still connecting; the peers that did connect."""
    for task in tasks:
        task.cancel()
    return [t.result() for t in tasks if t.done() and not t.cancelled() and not t.exception()]


def _join(interest: str) -> str:
    return json.dumps({"type": "join", "interests": [interest]})


def emit(event: str, **fields: Any) -> None:
    """One line to the orchestrator."""
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


async def client_main() -> int:
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader(limit=2**20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    spec = ClientSpec(**json.loads(await commands.readline()))
    raise_open_files_limit(4 * spec.pairs + 256)
    try:
        result = await LoadGenerator(spec, commands).run()
    except BenchError as exc:
        emit("error", message=str(exc))
        return 1
    except Exception as exc:  # a refused connection, a protocol error: say so, then fail
        emit("error", message=f"{type(exc).__name__}: {exc}")
        raise
    emit("result", **result)
    return 0


# ---------------------------------------------------------------------------------------------
# The orchestrator: servers, load-generator processes, measurements and the report.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    pairs: int
    seconds: float
    warmup: float
    window: int
    message_chars: int
    text: MessageText
    idle_connections: int
    repeat: int
    client_procs: int
    scenarios: tuple[Mode, ...]
    setup_timeout: float
    drain_timeout: float
    connect_concurrency: int
    settle: float
    perf: bool
    py_spy: Path | None
    py_spy_gil: bool
    server_env: dict[str, str]
    keep: bool
    out: Path | None


class ClientProcess:
    """A load-generator process and its line protocol (JSON events out, commands in)."""

    def __init__(self, process: asyncio.subprocess.Process, stderr_path: Path) -> None:
        self.process = process
        self.stderr_path = stderr_path
        self.ps = psutil.Process(process.pid)

    @classmethod
    async def start(cls, spec: ClientSpec, stderr_path: Path) -> ClientProcess:
        with stderr_path.open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(Path(__file__).resolve()),
                "--client",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                limit=2**28,  # the result line carries every latency sample
            )
        client = cls(process, stderr_path)
        client.send(json.dumps(asdict(spec)))
        return client

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")

    async def expect(self, event: str, timeout: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                line = await self.process.stdout.readline()
        except TimeoutError:
            raise BenchError(
                f"load generator sent no {event!r} within {timeout:.0f}s{self._stderr_tail()}"
            ) from None
        if not line:
            code = await self.process.wait()
            raise BenchError(
                f"load generator exited ({code}) before {event!r}{self._stderr_tail()}"
            )
        message: dict[str, Any] = json.loads(line)
        if message["event"] == "error":
            raise BenchError(f"load generator: {message['message']}")
        if message["event"] != event:
            raise BenchError(f"load generator sent {message['event']!r}, expected {event!r}")
        return message

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    async def finish(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            try:
                async with asyncio.timeout(30):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    def _stderr_tail(self) -> str:
        with contextlib.suppress(OSError):
            tail = self.stderr_path.read_text(errors="replace")[-2000:].strip()
            if tail:
                return f"; its stderr ends with:\n{tail}"
        return ""


@dataclass(frozen=True)
class CpuSnapshot:
    at: float
    server_main: float  # seconds of CPU, the event-loop thread
    server_other: float  # the other threads (the group commit's, when it is in the server)
    server_children: float  # its child processes: the session log's writer, the risk scorer
    clients: float
    # Context switches of the server's event-loop thread: (voluntary, involuntary). A thread
    # that waits for the GIL or the other thread switches voluntarily.
    switches: tuple[int, int]


class CpuWatch:
    def __init__(self, server: LiveServer, clients: Sequence[ClientProcess]) -> None:
        self.server = psutil.Process(server.process.pid)
        self.clients = clients

    def snapshot(self) -> CpuSnapshot:
        main = other = 0.0
        for thread in self.server.threads():
            busy = float(thread.user_time + thread.system_time)
            if thread.id == self.server.pid:
                main += busy
            else:
                other += busy
        children = 0.0
        for child in self.server.children(recursive=True):
            with contextlib.suppress(psutil.Error):  # one that ended meanwhile
                times = child.cpu_times()
                children += times.user + times.system
        clients = sum(c.cpu_seconds() for c in self.clients)
        return CpuSnapshot(time.perf_counter(), main, other, children, clients, self._switches())

    def _switches(self) -> tuple[int, int]:
        counts = {"voluntary_ctxt_switches": 0, "nonvoluntary_ctxt_switches": 0}
        status = Path(f"/proc/{self.server.pid}/task/{self.server.pid}/status")
        with contextlib.suppress(OSError):
            for line in status.read_text().splitlines():
                name, _, value = line.partition(":")
                if name in counts:
                    counts[name] = int(value)
        return counts["voluntary_ctxt_switches"], counts["nonvoluntary_ctxt_switches"]

    @staticmethod
    def usage(start: CpuSnapshot, end: CpuSnapshot) -> dict[str, float]:
        """Percent of one core over the interval."""
        span = end.at - start.at

        def pct(a: float, b: float) -> float:
            return round(100 * (b - a) / span, 1)

        return {
            "server_event_loop_pct": pct(start.server_main, end.server_main),
            "server_other_threads_pct": pct(start.server_other, end.server_other),
            "server_children_pct": pct(start.server_children, end.server_children),
            "client_pct": pct(start.clients, end.clients),
            "loop_voluntary_switches": end.switches[0] - start.switches[0],
            "loop_involuntary_switches": end.switches[1] - start.switches[1],
        }


class Sidecar:
    """A tool attached to the server for the measured window only; stopped with SIGINT."""

    def __init__(self, command: Sequence[str]) -> None:
        self.command = command
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        if shutil.which(self.command[0]) is None:
            progress(f"  ({self.command[0]} not found: skipped)")
            return
        self.process = await asyncio.create_subprocess_exec(
            *self.command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )

    async def stop(self) -> str | None:
        """What the tool wrote to stderr; None if it did not run or did not stop in time."""
        if self.process is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGINT)
        try:
            async with asyncio.timeout(30):
                _, err = await self.process.communicate()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            return None
        return err.decode(errors="replace")


_SYNC_LINE = re.compile(r"\(\s*([0-9.]+) ms\): .*?\b(?:fdatasync|fsync)\(")


def sync_tracer(pid: int, out: Path) -> Sidecar:
    """Every fsync/fdatasync of the server and of its child processes (the session log's
    writer is one) and how long it took: ``perf trace`` (tracepoints, no ptrace, so the
    server is not slowed the way strace would slow it)."""
    pids = [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
    return Sidecar(
        ["perf", "trace", "-e", "fdatasync,fsync", "-p", ",".join(map(str, pids)), "-o", str(out)]
    )


def parse_syncs(out: Path) -> dict[str, Any] | None:
    try:
        text = out.read_text(errors="replace")
    except OSError:
        return None
    durations = sorted(float(m.group(1)) for m in _SYNC_LINE.finditer(text))
    return {
        "count": len(durations),
        "p50_ms": round(percentile(durations, 50), 3) if durations else None,
        "p99_ms": round(percentile(durations, 99), 3) if durations else None,
        "max_ms": round(durations[-1], 3) if durations else None,
        "total_ms": round(sum(durations), 1),
    }


def profiler(pid: int, out: Path, *, gil_only: bool) -> Sidecar:
    """py-spy, sampling without pausing the server, as collapsed stacks per thread."""
    py_spy = Path(sys.executable).parent / "py-spy"
    command = [
        str(py_spy) if py_spy.exists() else "py-spy",
        "record",
        "--pid",
        str(pid),
        "--nonblocking",
        "--threads",
        "--rate",
        "250",
        "--format",
        "raw",
        "--output",
        str(out),
        *(["--gil"] if gil_only else ["--idle"]),
    ]
    return Sidecar(command)


class Orchestrator:
    def __init__(self, options: Options, root: Path) -> None:
        self.options = options
        self.root = root
        self.runs = 0

    @contextlib.contextmanager
    def server(self, name: str, *, log_on: bool) -> Iterator[LiveServer]:
        self.runs += 1
        data_dir = self.root / f"{self.runs:02d}-{name}-{'on' if log_on else 'off'}" / "data"
        env = {**SERVER_ENV, **self.options.server_env, **({} if log_on else NO_LOG_ENV)}
        with serve_in_process(data_dir, env=env, startup_timeout=30) as server:
            try:
                yield server
            except BenchError as exc:
                raise BenchError(f"{exc}\n{_describe(server)}") from None
            finally:
                if server.process.poll() is not None:
                    raise BenchError(f"the server exited during {name}: {_describe(server)}")

    async def start_clients(
        self, server: LiveServer, mode: Mode, *, pairs: int, run_dir: Path
    ) -> list[ClientProcess]:
        o = self.options
        procs = 1 if mode == "memory" else o.client_procs
        share, extra = divmod(pairs, procs)
        clients: list[ClientProcess] = []
        first = 0
        for i in range(procs):
            mine = share + (1 if i < extra else 0)
            spec = ClientSpec(
                url=server.ws_url,
                mode=mode,
                first_pair=first,
                pairs=mine,
                total_pairs=pairs,
                seconds=o.seconds,
                warmup=o.warmup,
                window=o.window,
                message_chars=o.message_chars,
                text=o.text,
                connect_concurrency=o.connect_concurrency,
                setup_timeout=o.setup_timeout,
                drain_timeout=o.drain_timeout,
            )
            clients.append(await ClientProcess.start(spec, run_dir / f"client-{i}.stderr"))
            first += mine
        return clients

    async def relay_run(self, mode: Mode, *, log_on: bool) -> dict[str, Any]:
        o = self.options
        with self.server(mode, log_on=log_on) as server:
            clients = await self.start_clients(
                server, mode, pairs=o.pairs, run_dir=server.data_dir.parent
            )
            try:
                return await self._drive(server, clients, mode, log_on=log_on)
            finally:
                for client in clients:
                    client.kill()

    async def _drive(
        self, server: LiveServer, clients: list[ClientProcess], mode: Mode, *, log_on: bool
    ) -> dict[str, Any]:
        o = self.options
        setup = 2 * o.setup_timeout + 30
        for client in clients:
            await client.expect("connected", setup)
        for client in clients:
            await client.expect("matched", setup)
        watch = CpuWatch(server, clients)
        pid = server.process.pid
        trace = server.data_dir.parent / "fsyncs.txt"
        sidecars = [sync_tracer(pid, trace)] if o.perf else []
        if o.py_spy is not None:
            name = f"{self.runs:02d}-{mode}-log-{'on' if log_on else 'off'}.txt"
            sidecars.append(profiler(pid, o.py_spy / name, gil_only=o.py_spy_gil))
        for client in clients:
            client.send("go")
        await clients[0].expect("measure_start", o.warmup + 30)
        for sidecar in sidecars:
            await sidecar.start()
        cpu_start = watch.snapshot()
        await clients[0].expect("measure_end", o.seconds + 60)
        cpu_end = watch.snapshot()
        outputs = [await sidecar.stop() for sidecar in sidecars]
        syncs = parse_syncs(trace) if o.perf and outputs[0] is not None else None
        results = []
        for i, client in enumerate(clients):
            if i:
                await client.expect("measure_start", 30)
                await client.expect("measure_end", 30)
            results.append(await client.expect("result", o.drain_timeout + 60))
            await client.finish()
        return summarise_relay(
            mode,
            log_on=log_on,
            results=results,
            seconds=o.seconds,
            cpu=CpuWatch.usage(cpu_start, cpu_end),
            syncs=syncs,
        )

    async def memory_run(self) -> dict[str, Any]:
        o = self.options
        k = o.idle_connections
        with self.server("memory", log_on=True) as server:
            run_dir = server.data_dir.parent
            # Warm up: lazy imports and first-use allocations are not a connection's cost.
            warm = await self.start_clients(server, "memory", pairs=5, run_dir=run_dir)
            try:
                await warm[0].expect("connected", o.setup_timeout + 30)
                for stage in ("idle", "waiting", "chatting"):
                    await warm[0].expect("stage", o.setup_timeout + 30)
                    if stage != "chatting":
                        warm[0].send("next")
                warm[0].send("next")
                await warm[0].expect("result", 60)
                await warm[0].finish()
            finally:
                warm[0].kill()
            ps = psutil.Process(server.process.pid)
            await asyncio.sleep(o.settle)
            rss = {"none": int(ps.memory_info().rss)}
            clients = await self.start_clients(server, "memory", pairs=k // 2, run_dir=run_dir)
            try:
                await clients[0].expect("connected", o.setup_timeout + 30)
                for stage in ("idle", "waiting", "chatting"):
                    await clients[0].expect("stage", o.setup_timeout + 30)
                    await asyncio.sleep(o.settle)
                    rss[stage] = int(ps.memory_info().rss)
                    clients[0].send("next")
                await clients[0].expect("result", 60)
                await clients[0].finish()
            finally:
                clients[0].kill()
        connections = 2 * (k // 2)
        per_conn = {
            stage: round((rss[stage] - rss["none"]) / connections / 1024, 2)
            for stage in ("idle", "waiting", "chatting")
        }
        return {
            "scenario": "memory",
            "log": "on",
            "connections": connections,
            "rss_bytes": rss,
            "kib_per_connection": per_conn,
        }

    async def run_all(self) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = []
        for mode in ("latency", "throughput"):
            if mode not in self.options.scenarios:
                continue
            for repeat in range(self.options.repeat):
                # ON, OFF, then OFF, ON: a drift in the machine's load hits both alike.
                order = (True, False) if repeat % 2 == 0 else (False, True)
                for log_on in order:
                    progress(f"{mode}: log {'ON' if log_on else 'OFF'} (round {repeat + 1})")
                    run = await self.relay_run(mode, log_on=log_on)
                    run["round"] = repeat + 1
                    progress("  " + one_line(run))
                    runs.append(run)
        if "memory" in self.options.scenarios:
            progress(f"memory: {self.options.idle_connections} connections")
            run = await self.memory_run()
            progress("  " + one_line(run))
            runs.append(run)
        return runs


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted data."""
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def summarise_relay(
    mode: Mode,
    *,
    log_on: bool,
    results: Sequence[dict[str, Any]],
    seconds: float,
    cpu: dict[str, float],
    syncs: dict[str, Any] | None,
) -> dict[str, Any]:
    latencies = sorted(x for r in results for x in r["latencies_ms"])
    run: dict[str, Any] = {
        "scenario": mode,
        "log": "on" if log_on else "off",
        "connections": sum(r["connections"] for r in results),
        "sent": sum(r["sent"] for r in results),
        "received": sum(r["received"] for r in results),
        "latency_ms": {
            "count": len(latencies),
            "p50": round(percentile(latencies, 50), 2),
            "p90": round(percentile(latencies, 90), 2),
            "p99": round(percentile(latencies, 99), 2),
            "max": round(latencies[-1], 2) if latencies else None,
        },
        "cpu": cpu,
        "syncs": syncs,
    }
    # Messages handled in the measured window: acknowledged ones for throughput, every sample
    # for latency (all were sent inside the window).
    handled = len(latencies)
    if mode == "throughput":
        relayed = sum(r["relayed_in_window"] for r in results)
        handled = sum(r["acked_in_window"] for r in results)
        run["relayed_per_second"] = round(relayed / seconds, 1)
        run["acked_per_second"] = round(handled / seconds, 1)
    if handled:
        busy_pct = sum(cpu[k] for k in ("server_event_loop_pct", "server_other_threads_pct"))
        busy_ms = (busy_pct + cpu["server_children_pct"]) * seconds * 10
        run["server_cpu_us_per_message"] = round(busy_ms * 1000 / handled, 1)
        switches = cpu["loop_voluntary_switches"] + cpu["loop_involuntary_switches"]
        run["loop_switches_per_message"] = round(switches / handled, 2)
        if log_on and syncs and syncs["count"]:
            run["messages_per_sync"] = round(handled / syncs["count"], 1)
    if mode == "latency":
        run["timeline"] = merge_timelines([r["timeline"] for r in results])
    return run


def one_line(run: dict[str, Any]) -> str:
    if run["scenario"] == "memory":
        per = run["kib_per_connection"]
        return (
            f"RSS {run['rss_bytes']['none'] / 2**20:.1f} MiB empty; per connection: "
            f"idle {per['idle']} KiB, waiting {per['waiting']} KiB, chatting {per['chatting']} KiB"
        )
    lat = run["latency_ms"]
    text = f"p50 {lat['p50']} ms, p99 {lat['p99']} ms, max {lat['max']} ms (n={lat['count']})"
    if run["scenario"] == "throughput":
        text = f"{run['relayed_per_second']:.0f} msg/s relayed; " + text
    cpu = run["cpu"]
    return (
        f"{text}; CPU server loop {cpu['server_event_loop_pct']}% + other threads "
        f"{cpu['server_other_threads_pct']}% + child processes {cpu['server_children_pct']}%, "
        f"load generator {cpu['client_pct']}%"
        + (
            f"; {run['syncs']['count']} fsyncs (p50 {run['syncs']['p50_ms']} ms, "
            f"p99 {run['syncs']['p99_ms']} ms, max {run['syncs']['max_ms']} ms)"
            if run["syncs"] and run["syncs"]["count"]
            else ""
        )
        + (f"; {worst_second(run['timeline'])}" if "timeline" in run else "")
        + (
            f"; server CPU {run['server_cpu_us_per_message']} us/msg, "
            f"{run['loop_switches_per_message']} loop context switches/msg"
            if "server_cpu_us_per_message" in run
            else ""
        )
    )


def merge_timelines(timelines: Sequence[dict[str, list[float]]]) -> list[dict[str, Any]]:
    merged: dict[int, list[float]] = {}
    for timeline in timelines:
        for key, (count, worst, over) in timeline.items():
            into = merged.setdefault(int(key), [0, 0.0, 0])
            into[0] += count
            into[1] = max(into[1], worst)
            into[2] += over
    return [
        {"second": k, "count": int(v[0]), "max_ms": round(v[1], 2), "over_floor": int(v[2])}
        for k, v in sorted(merged.items())
    ]


def worst_second(timeline: Sequence[dict[str, Any]]) -> str:
    if not timeline:
        return "no samples"
    worst = max(timeline, key=lambda t: t["max_ms"])
    slow = sum(1 for t in timeline if t["over_floor"])
    return (
        f"worst second #{worst['second']}: max {worst['max_ms']} ms, {worst['over_floor']} of "
        f"{worst['count']} over {LATENCY_P99_FLOOR_MS:g} ms; {slow} of {len(timeline)} seconds "
        f"had any"
    )


def median_of(runs: Sequence[dict[str, Any]], get: Callable[[dict[str, Any]], float]) -> float:
    return float(statistics.median(get(run) for run in runs))


def _median_latency(runs: Sequence[dict[str, Any]], q: str) -> float:
    return median_of(runs, lambda r: float(r["latency_ms"][q]))


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Medians over rounds, the on/off ratios and the floors."""
    by = {
        (s, log): [r for r in runs if r["scenario"] == s and r["log"] == log]
        for s in ("latency", "throughput")
        for log in ("on", "off")
    }
    summary: dict[str, Any] = {}
    floors: dict[str, Any] = {}
    if by["latency", "on"] and by["latency", "off"]:
        summary["latency_ms"] = {
            log: {q: _median_latency(by["latency", log], q) for q in ("p50", "p90", "p99", "max")}
            for log in ("on", "off")
        }
        p99 = summary["latency_ms"]["on"]["p99"]
        floors["latency_p99_log_on_ms"] = {
            "value": p99,
            "floor": f"< {LATENCY_P99_FLOOR_MS}",
            "met": p99 < LATENCY_P99_FLOOR_MS,
        }
    if by["throughput", "on"] and by["throughput", "off"]:
        on = by["throughput", "on"]
        off = by["throughput", "off"]
        rate_on = median_of(on, lambda r: r["relayed_per_second"])
        rate_off = median_of(off, lambda r: r["relayed_per_second"])
        ratio = rate_on / rate_off if rate_off else 0.0
        summary["throughput"] = {
            "relayed_per_second": {"on": rate_on, "off": rate_off},
            "ratio_on_off": round(ratio, 3),
            "ratio_per_round": [
                round(a["relayed_per_second"] / b["relayed_per_second"], 3)
                for a, b in zip(on, off, strict=True)
            ],
        }
        floors["throughput_ratio_on_off"] = {
            "value": round(ratio, 3),
            "floor": f">= {THROUGHPUT_RATIO_FLOOR}",
            "met": ratio >= THROUGHPUT_RATIO_FLOOR,
        }
    memory = [r for r in runs if r["scenario"] == "memory"]
    if memory:
        summary["memory_kib_per_connection"] = memory[-1]["kib_per_connection"]
    summary["floors"] = floors
    return summary


def report(runs: Sequence[dict[str, Any]], summary: dict[str, Any], options: Options) -> str:
    lines = [
        "",
        f"Relay benchmark: {options.pairs} pairs ({2 * options.pairs} connections), "
        f"{options.seconds:g} s per run, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "Per-connection limits raised for every run: "
        + ", ".join(
            f"{k.removeprefix('LOGWARDEN_CHAT__').lower()}={v}" for k, v in BENCH_LIMITS.items()
        ),
        "",
    ]
    relay = [r for r in runs if r["scenario"] != "memory"]
    if relay:
        header = (
            f"{'run':<16}{'log':<5}{'msg/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}"
            f"{'max ms':>9}{'count':>9}{'loop%':>7}{'thr%':>6}{'kids%':>6}{'gen%':>6}"
            f"{'us/msg':>8}"
            f"{'fsyncs':>8}{'msg/fsync':>10}"
        )
        lines += [header, "-" * len(header)]
        for r in relay:
            lat = r["latency_ms"]
            rate = f"{r['relayed_per_second']:.0f}" if "relayed_per_second" in r else "-"
            cpu = r["cpu"]
            lines.append(
                f"{r['scenario'] + ' #' + str(r['round']):<16}{r['log']:<5}{rate:>9}"
                f"{lat['p50']:>9.2f}{lat['p90']:>9.2f}{lat['p99']:>9.2f}{lat['max']:>9.2f}"
                f"{lat['count']:>9}{cpu['server_event_loop_pct']:>7.0f}"
                f"{cpu['server_other_threads_pct']:>6.0f}{cpu['server_children_pct']:>6.0f}"
                f"{cpu['client_pct']:>6.0f}"
                f"{r.get('server_cpu_us_per_message', '-'):>8}"
                f"{r['syncs']['count'] if r['syncs'] else '-':>8}"
                f"{r.get('messages_per_sync', '-'):>10}"
            )
        lines += [
            "loop% / thr% / kids%: server event-loop thread / its other threads / its child"
            " processes (the session log's writer, the risk scorer), gen%: load generator, in"
            " percent of one core; us/msg: CPU of the server and its children per message;",
            "fsyncs: fsync+fdatasync calls of the server in the window (perf trace), msg/fsync:"
            " messages logged per sync, about the group-commit batch size.",
            "",
        ]
    if "latency_ms" in summary:
        on, off = summary["latency_ms"]["on"], summary["latency_ms"]["off"]
        lines.append(
            f"latency (median of rounds)  log ON p50 {on['p50']:.2f} ms  p99 {on['p99']:.2f} ms"
            f"  |  log OFF p50 {off['p50']:.2f} ms  p99 {off['p99']:.2f} ms"
        )
    if "throughput" in summary:
        t = summary["throughput"]
        lines.append(
            f"throughput (median)         log ON {t['relayed_per_second']['on']:.0f} msg/s  |"
            f"  log OFF {t['relayed_per_second']['off']:.0f} msg/s  |  ratio on/off "
            f"{t['ratio_on_off']:.3f} (per round: {t['ratio_per_round']})"
        )
    if "memory_kib_per_connection" in summary:
        m = summary["memory_kib_per_connection"]
        lines.append(
            f"memory per connection       idle {m['idle']} KiB  |  waiting {m['waiting']} KiB"
            f"  |  chatting {m['chatting']} KiB  ({options.idle_connections} connections)"
        )
    lines.append("")
    for name, floor in summary["floors"].items():
        verdict = "MET" if floor["met"] else "NOT MET"
        lines.append(f"floor {name}: {floor['value']} (needs {floor['floor']}): {verdict}")
    return "\n".join(lines)


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def parse_options(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pairs", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured start of a run")
    parser.add_argument("--window", type=int, default=8, help="unacknowledged messages per sender")
    parser.add_argument("--message-chars", type=int, default=64)
    parser.add_argument(
        "--text",
        choices=["chat", "digits"],
        default="chat",
        help="what senders say: everyday chat lines, or a 17-digit float and x's",
    )
    parser.add_argument("--idle-connections", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1, help="rounds of ON/OFF per scenario")
    parser.add_argument("--client-procs", type=int, default=1, help="load-generator processes")
    parser.add_argument(
        "--scenarios", default="latency,throughput,memory", help="comma-separated subset"
    )
    parser.add_argument("--setup-timeout", type=float, default=60.0)
    parser.add_argument("--drain-timeout", type=float, default=15.0)
    parser.add_argument("--connect-concurrency", type=int, default=64)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before reading RSS")
    parser.add_argument("--no-perf", action="store_true", help="do not trace fsyncs with perf")
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="DIR",
        help="profile the server during each measured window (perturbs the figures)",
    )
    parser.add_argument("--py-spy-gil", action="store_true", help="sample the GIL holder only")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra server environment for every run, for experiments (repeatable)",
    )
    parser.add_argument("--keep", action="store_true", help="keep data dirs and server logs")
    parser.add_argument("--out", type=Path, help="JSON results file")
    parser.add_argument("--quick", action="store_true", help="50 pairs, 5 s: does it work?")
    args = parser.parse_args(argv)
    if args.quick:
        args.pairs, args.seconds, args.warmup, args.idle_connections = 50, 5.0, 1.0, 100
    scenarios = tuple(s.strip() for s in args.scenarios.split(",") if s.strip())
    unknown = set(scenarios) - {"latency", "throughput", "memory"}
    if unknown or not scenarios:
        parser.error(f"--scenarios: unknown {sorted(unknown)}")
    if args.pairs < 1 or args.seconds <= 0 or args.window < 1 or args.idle_connections < 2:
        parser.error("--pairs, --seconds, --window and --idle-connections must be positive")
    if args.message_chars < 20 or args.client_procs < 1 or args.repeat < 1:
        parser.error("--message-chars >= 20, --client-procs >= 1, --repeat >= 1")
    server_env = dict(item.split("=", 1) for item in args.server_env if "=" in item)
    if len(server_env) != len(args.server_env):
        parser.error("--server-env takes KEY=VALUE")
    if args.py_spy is not None:
        args.py_spy.mkdir(parents=True, exist_ok=True)
    return Options(
        pairs=args.pairs,
        seconds=args.seconds,
        warmup=args.warmup,
        window=args.window,
        message_chars=args.message_chars,
        text=args.text,
        idle_connections=args.idle_connections,
        repeat=args.repeat,
        client_procs=args.client_procs,
        scenarios=scenarios,
        setup_timeout=args.setup_timeout,
        drain_timeout=args.drain_timeout,
        connect_concurrency=args.connect_concurrency,
        settle=args.settle,
        perf=not args.no_perf,
        py_spy=args.py_spy,
        py_spy_gil=args.py_spy_gil,
        server_env=server_env,
        keep=args.keep,
        out=args.out,
    )


def source_version() -> dict[str, Any]:
    """Which server code is measured: the commit, and a hash of the package's files as they are
    (the repository may be worked on while the benchmark runs)."""
    package = Path(logwarden.__file__).resolve().parent
    files = {
        str(path.relative_to(package)): hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        for path in sorted(package.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
    version: dict[str, Any] = {"package": str(package), "sha256": digest, "files": files}
    git = shutil.which("git")
    if git is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            head = subprocess.run(
                [git, "rev-parse", "--short", "HEAD"],
                cwd=package,
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            )
            dirty = subprocess.run(
                [git, "status", "--porcelain", "--", "."],
                cwd=package,
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            )
            version["commit"] = head.stdout.strip()
            version["uncommitted_changes"] = bool(dirty.stdout.strip())
    return version


def _describe(server: LiveServer) -> str:
    code = server.process.poll()
    state = "running" if code is None else f"exited with {code}"
    tail = "\n".join(server.log_text().splitlines()[-15:])
    return f"server pid {server.process.pid} on port {server.port}, {state}; its log ends:\n{tail}"


async def orchestrate(options: Options) -> int:
    needed = 4 * max(options.pairs, options.idle_connections) + 256
    limit = raise_open_files_limit(needed)
    if limit < needed:
        raise BenchError(f"open-files limit is {limit}, need about {needed} (ulimit -n)")
    started = datetime.now(UTC)
    version = source_version()
    root = Path(tempfile.mkdtemp(prefix="logwarden-bench-"))
    try:
        runs = await Orchestrator(options, root).run_all()
    finally:
        if options.keep:
            progress(f"data dirs and server logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    summary = summarise(runs)
    version_after = source_version()
    changed = sorted(
        name
        for name in version["files"].keys() | version_after["files"].keys()
        if version["files"].get(name) != version_after["files"].get(name)
    )
    print(report(runs, summary, options))
    out = options.out or RESULTS_DIR / f"relay-{started:%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "bench/relay.py",
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "python": sys.version,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "server_source": {k: v for k, v in version.items() if k != "files"},
        "server_source_changed_during_run": changed,
        "settings": {
            **{k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
            "extra_server_env": options.server_env,
            "server_env": {**SERVER_ENV, **options.server_env},
            "log_off_env": NO_LOG_ENV,
            "open_files_limit": limit,
        },
        "summary": summary,
        "runs": runs,
    }
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nresults written to {out}")
    if changed:
        print(
            f"the server's source changed while the benchmark ran ({', '.join(changed)} in "
            f"{version['package']}): the runs may mix versions; run it again",
            file=sys.stderr,
        )
        return 1
    return 0 if all(f["met"] for f in summary["floors"].values()) else 2


def main(argv: Sequence[str]) -> int:
    if list(argv) == ["--client"]:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(client_main())
    options = parse_options(argv)
    try:
        return asyncio.run(orchestrate(options))
    except BenchError as exc:
        print(f"relay benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("relay benchmark interrupted", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
