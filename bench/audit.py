"""Audit-log benchmark: appends, proofs, ``audit verify`` and checkpoint latency (issue 6).

Run from the repository root::

    .venv/bin/python bench/audit.py                   # the full run, SQLite and PostgreSQL
    .venv/bin/python bench/audit.py --quick           # a check that it works
    .venv/bin/python bench/audit.py --backend sqlite  # one backend

For each backend (SQLite, and PostgreSQL if it is reachable at ``--postgres``):

(1) appends      ``--leaves`` message entries (1M) appended to a fresh log in batches of 1,024
                 (the recorder's ``max_batch``, what it commits under load); after (2), another
                 ``--small-batch-leaves`` (a tenth as many) onto the same log in batches of 32
                 (a lightly loaded recorder), so at the size reached. Each batch is one
                 ``store.write(WriteBatch(audit=...))``, the transaction the recorder's group
                 commit opens; the entries are the recorder's own (``message_entry`` of a row
                 with random sealed bytes of a 60-character text and a random 32-byte text
                 commitment), built before the clock starts. The time is the writes' alone:
                 leaf hashes, perfect nodes, the INSERTs, the head row and the commit (fsync).
(2) proofs       on the same log, at 1M leaves: ``--proofs`` inclusion proofs of random leaves
                 against the head (``store.audit_proof``, then ``proofs.verify_inclusion``),
                 and as many consistency proofs between random sizes (``audit_consistency``,
                 then ``verify_consistency``), each timed on its own (wall clock, and the
                 verifications also in CPU time of the thread, which a shared machine's
                 preemptions do not inflate; each verification starts after a 1 ms sleep, see
                 ``SETTLE_S``); their sizes.
(3) verify       a log of ``--leaves`` entries built through the real recording path (the
                 ``Recorder``'s group commit, the vault, the keystore, the store): ``--sessions``
                 sessions, each with its start, ``leaves / sessions - 2`` messages and its end,
                 and a signed checkpoint (``AuditLog.checkpoint``) after the starts, after every
                 tenth of the messages and at the end, all kept in the history. Then the time of
                 ``verify_log``: every entry re-hashed and parsed, the tree recomputed against
                 the stored nodes and every checkpoint, the checkpoints' signatures and
                 consistency, and every session's rows against its entries.
(4) checkpoints  a real server (``logwarden serve`` via ``serve_in_process``, its own process)
                 with ``[audit] checkpoint_file`` in the benchmark's temporary directory, and a
                 load generator in another process (this script with ``--client``):
                 ``--latency-pairs`` pairs of ``ChatClient`` connections, both sides sending
                 ``--latency-rate`` messages a second each for ``--latency-seconds``, while a
                 thread polls the checkpoint file every ``--poll-ms``. A message's commit time
                 is when its sender received ``sent``; each checkpoint's time is when the poller
                 first saw it. Once the server has stopped, each message is found in the log
                 (its entry's index, by chat and seq), and its latency is the time of the first
                 checkpoint whose size is larger than that index, minus its commit time. Both
                 times are ``time.time()`` in the load generator.

Floors (issue 6): at least 50,000 appends/s in the recorder's batches; an inclusion proof
verifies in under 1 ms (p99); a record is covered by a signed checkpoint within 1 s of its
commit (p99). Exit status 0 when met, 2 when missed, 1 on an error. Prints a table and one JSON
line; the full results go to ``bench/results/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import hashlib
import itertools
import json
import os
import platform
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

import logwarden
from logwarden.audit import merkle
from logwarden.audit.checkpoint import SigningKey
from logwarden.audit.log import AuditLog
from logwarden.audit.proofs import verify_consistency, verify_inclusion
from logwarden.audit.verify import verify_log
from logwarden.clock import FakeClock
from logwarden.errors import AuditVerificationError
from logwarden.recorder import Recorder
from logwarden.recorder.recorder import message_entry
from logwarden.retention import Retention, RetentionPolicy
from logwarden.store import MessageRow, SqlStore, WriteBatch
from logwarden.testing import ChatClient, serve_in_process
from logwarden.vault import KeyStore, Vault, create_key_file
from logwarden.vault.keys import load_key_file

RESULTS_DIR = Path(__file__).resolve().parent / "results"
APPENDS_FLOOR = 50_000  # appends/s, in the recorder's batches of 1,024
VERIFY_FLOOR_MS = 1.0  # an inclusion proof's verification, p99
CHECKPOINT_P99_FLOOR_S = 1.0  # commit -> a signed checkpoint that covers it, p99
T0 = 1_764_072_000_000  # noon UTC, 2025-11-25: the recorded times (the build's clock)
DAY = T0 // 86_400_000
TEXT_CHARS = 60
SEALED_BYTES = 1 + 12 + TEXT_CHARS + 16  # a sealed 60-byte text: version, nonce, tag
BIG_BATCH = 1024  # the recorder's max_batch
IN_FLIGHT = 8192  # messages handed to the recorder before waiting for them
# s: a pause before each timed verification. A CPU-bound loop is preempted whenever its time
# slice ends and another tenant waits (4 ms here), which would put the scheduler, not the
# verifier, into the p99 of a 0.1 ms call; a task that has just slept is rarely preempted.
SETTLE_S = 0.001
POLICY = RetentionPolicy(session_days=30, raw_ip_days=7, metadata_days=90, reported_days=365)
ORIGIN = "bench.example/logwarden"

# Raised so that no benchmark message is rate-limited (bench/relay.py does the same).
SERVER_ENV = {
    "LOGWARDEN_TRUSTED_PROXIES": "127.0.0.1",
    "LOGWARDEN_CHAT__INTEREST_FALLBACK": "3600",  # s: pairs meet by their own interest only
    "LOGWARDEN_CHAT__MESSAGES_PER_SECOND": "1000000",
    "LOGWARDEN_CHAT__MESSAGE_BURST": "1000000",
    "LOGWARDEN_CHAT__FRAMES_PER_SECOND": "1000000",
    "LOGWARDEN_CHAT__FRAME_BURST": "1000000",
}


class BenchError(Exception):
    """The benchmark could not measure what it set out to; the message says why."""


@dataclass(frozen=True)
class Options:
    leaves: int
    small_batch: int
    small_batch_leaves: int
    proofs: int
    sessions: int
    latency_pairs: int
    latency_rate: float  # messages per second per sender
    latency_seconds: float
    poll_ms: float
    checkpoint_interval_ms: int | None  # None: the server's default
    seed: int
    postgres: str
    backends: tuple[str, ...]
    parts: tuple[str, ...]


# -- databases -------------------------------------------------------------------------------


class Backend:
    """Fresh databases of one kind, each with a data directory holding real keys."""

    def __init__(self, name: str, admin_url: str) -> None:
        self.name = name
        self._admin_url = admin_url

    @contextmanager
    def fresh(self) -> Iterator[tuple[Path, SqlStore]]:
        """(data dir with keys/, store)."""
        with tempfile.TemporaryDirectory(prefix="logwarden-audit-") as tmp:
            data_dir = Path(tmp)
            keys_dir = data_dir / "keys"
            keys_dir.mkdir(mode=0o700)
            create_key_file(keys_dir)
            KeyStore.create(keys_dir, now_ms=T0)
            if self.name == "sqlite":
                store = SqlStore.sqlite(data_dir / "logwarden.db")
                try:
                    yield data_dir, store
                finally:
                    store.close()
                return
            with self.database() as url:
                store = SqlStore.postgres(url)
                try:
                    yield data_dir, store
                finally:
                    store.close()

    @contextmanager
    def database(self) -> Iterator[str]:
        """A new, empty PostgreSQL database (its URL), dropped afterwards."""
        name = f"logwarden_bench_{secrets.token_hex(5)}"
        with psycopg.connect(self._admin_url, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        try:
            yield self._admin_url.rsplit("/", 1)[0] + "/" + name
        finally:
            with psycopg.connect(self._admin_url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def postgres_reachable(url: str) -> str | None:
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        return str(exc).strip()
    return None


# -- figures ---------------------------------------------------------------------------------


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted data."""
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def spread(seconds: Sequence[float], *, unit: float = 1000.0) -> dict[str, float]:
    """p50, p99, max and mean of durations in seconds, in ms (or ``unit`` per second)."""
    ordered = sorted(seconds)
    return {
        "count": len(ordered),
        "p50": round(percentile(ordered, 50) * unit, 4),
        "p99": round(percentile(ordered, 99) * unit, 4),
        "max": round(ordered[-1] * unit, 4),
        "mean": round(statistics.fmean(ordered) * unit, 4),
    }


def session_id(n: int) -> str:
    return f"{n:032x}"


# -- (1) appends -----------------------------------------------------------------------------


def message_rows(first: int, count: int, *, sessions: int) -> list[tuple[MessageRow, bytes]]:
    """Leaves ``first`` onwards as the recorder's messages: round-robin over ``sessions``
    sessions, random sealed bytes, a random 32-byte text commitment each."""
    rows = []
    for n in range(first, first + count):
        seq = n // sessions + 1
        row = MessageRow(
            session_id(n % sessions), seq, DAY, seq % 2, T0 + n, os.urandom(SEALED_BYTES)
        )
        rows.append((row, os.urandom(32)))
    return rows


def appends(store: SqlStore, *, leaves: int, batch: int, sessions: int) -> dict[str, Any]:
    """Append ``leaves`` message entries in transactions of ``batch`` onto the log as it
    is; time the writes."""
    start = store.audit_head().size
    write_s = build_s = 0.0
    tenth = max(1, leaves // 10)
    segments: list[float] = []  # seconds of writing per tenth of the leaves
    done = 0
    while done < leaves:
        n = min(batch, leaves - done)
        rows = message_rows(start + done, n, sessions=sessions)
        t0 = time.perf_counter()
        records = [message_entry(row, commitment) for row, commitment in rows]
        t1 = time.perf_counter()
        store.write(WriteBatch(audit=records))
        t2 = time.perf_counter()
        build_s += t1 - t0
        write_s += t2 - t1
        if done // tenth == len(segments):
            segments.append(0.0)
        segments[-1] += t2 - t1
        done += n
    size = store.audit_head().size
    if size != start + leaves:
        raise BenchError(f"appended {leaves} entries to {start} but the log holds {size}")
    return {
        "batch": batch,
        "from_size": start,
        "leaves": leaves,
        "seconds": round(write_s, 3),
        "appends_per_s": round(leaves / write_s),
        "first_tenth_per_s": round(tenth / segments[0]),
        "last_tenth_per_s": round((leaves - tenth * (len(segments) - 1)) / segments[-1]),
        "entry_build_us": round(build_s / leaves * 1e6, 2),
        "body_bytes": len(records[-1].body),
    }


# -- (2) proofs ------------------------------------------------------------------------------


def proofs(store: SqlStore, *, count: int, seed: int) -> dict[str, Any]:
    """Inclusion and consistency proofs at the head: made, verified, sized."""
    head = store.audit_head()
    size, root = head.size, head.root
    rng = random.Random(seed)
    made: list[float] = []
    checked: list[float] = []
    checked_cpu: list[float] = []
    lengths: list[int] = []
    for _ in range(count):
        index = rng.randrange(size)
        leaf = merkle.leaf_hash(store.audit_entries(index, index + 1)[0].body)
        t0 = time.perf_counter()
        proof = store.audit_proof(index=index, size=size)
        made.append(time.perf_counter() - t0)
        time.sleep(SETTLE_S)
        t1, c1 = time.perf_counter(), time.thread_time()
        verify_inclusion(leaf_hash=leaf, index=index, tree_size=size, proof=proof, root=root)
        t2, c2 = time.perf_counter(), time.thread_time()
        checked.append(t2 - t1)
        checked_cpu.append(c2 - c1)
        lengths.append(len(proof))
    _expect_failure(leaf, index, size, proof, root)

    c_made: list[float] = []
    c_checked: list[float] = []
    c_checked_cpu: list[float] = []
    c_lengths: list[int] = []
    roots: list[float] = []
    for _ in range(count):
        old = rng.randrange(1, size)
        new = rng.randrange(old + 1, size + 1)
        t0 = time.perf_counter()
        old_root = store.audit_root(old)
        roots.append(time.perf_counter() - t0)
        new_root = root if new == size else store.audit_root(new)
        t0 = time.perf_counter()
        path = store.audit_consistency(old_size=old, new_size=new)
        c_made.append(time.perf_counter() - t0)
        time.sleep(SETTLE_S)
        t1, c1 = time.perf_counter(), time.thread_time()
        verify_consistency(
            old_size=old, new_size=new, old_root=old_root, new_root=new_root, proof=path
        )
        t2, c2 = time.perf_counter(), time.thread_time()
        c_checked.append(t2 - t1)
        c_checked_cpu.append(c2 - c1)
        c_lengths.append(len(path))
    return {
        "tree_size": size,
        "inclusion": {
            "make_ms": spread(made),
            "verify_ms": spread(checked),
            "verify_cpu_ms": spread(checked_cpu),
            "hashes": _sizes(lengths),
        },
        "consistency": {
            "make_ms": spread(c_made),
            "verify_ms": spread(c_checked),
            "verify_cpu_ms": spread(c_checked_cpu),
            "hashes": _sizes(c_lengths),
        },
        "root_at_size_ms": spread(roots),
    }


def _sizes(lengths: Sequence[int]) -> dict[str, float]:
    return {
        "min": min(lengths),
        "median": statistics.median(lengths),
        "max": max(lengths),
        "max_bytes": max(lengths) * merkle.HASH_SIZE,
    }


def _expect_failure(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> None:
    """A proof with one bit flipped must fail: the timings are of a verifier that checks."""
    bad = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
    try:
        verify_inclusion(leaf_hash=leaf, index=index, tree_size=size, proof=bad, root=root)
    except AuditVerificationError:
        return
    raise BenchError("an inclusion proof with a flipped bit verified")


# -- (3) a log built by the recorder, and audit verify -------------------------------------------


def retention_for(store: SqlStore, keystore: KeyStore, audit: AuditLog) -> Retention:
    clock = FakeClock(T0)
    return Retention(
        store=store,
        keystore=keystore,
        audit=audit,
        policy=POLICY,
        clock=clock,
        report_window_ms=300_000,
        kek_rotation_days=7,
    )


async def record_log(
    recorder: Recorder, audit: AuditLog, *, leaves: int, sessions: int
) -> list[float]:
    """Each session's start, its messages (round-robin over the sessions) and its end, with a
    checkpoint after the starts, after every tenth of the messages, and at the end."""
    per_session = leaves // sessions - 2
    signing: list[float] = []

    async def checkpoint() -> None:
        t0 = time.perf_counter()
        if await asyncio.to_thread(audit.checkpoint) is None:
            raise BenchError("a checkpoint was due but the log had not grown")
        signing.append(time.perf_counter() - t0)

    await asyncio.gather(
        *(
            recorder.session_started(
                session_id=session_id(n),
                started_at=T0,
                interests=["chess"],
                addresses=(f"192.0.2.{n % 250 + 1}", f"2001:db8::{n:x}"),
                pseudonyms=("a" * 32, "b" * 32),
                block_keys=("a" * 32, "b" * 32),
                receipts=(secrets.token_hex(32), secrets.token_hex(32)),
            )
            for n in range(sessions)
        )
    )
    await checkpoint()
    text = "x" * TEXT_CHARS
    every = max(1, per_session // 10)
    in_flight: list[asyncio.Future[None]] = []
    for seq in range(1, per_session + 1):
        for n in range(sessions):
            in_flight.append(
                recorder.message(
                    session_id=session_id(n), seq=seq, slot=seq % 2, sent_at=T0 + seq, text=text
                )
            )
            if len(in_flight) >= IN_FLIGHT:
                await asyncio.gather(*in_flight)
                in_flight.clear()
        if seq % every == 0 or seq == per_session:
            await asyncio.gather(*in_flight)
            in_flight.clear()
            await checkpoint()
    await asyncio.gather(
        *(
            recorder.session_ended(
                session_id=session_id(n),
                ended_at=T0 + per_session + 1,
                reason="stopped",
                ended_by=0,
            )
            for n in range(sessions)
        )
    )
    await checkpoint()
    return signing


def build_and_verify(backend: Backend, o: Options) -> dict[str, Any]:
    with backend.fresh() as (data_dir, store):
        keystore = KeyStore(data_dir / "keys")
        vault = Vault(load_key_file(data_dir / "keys"), keystore)
        # history_ms=0: every checkpoint is kept, so verify checks each and their consistency.
        audit = AuditLog(
            store, signer=SigningKey.generate(ORIGIN), clock=FakeClock(T0), history_ms=0
        )
        recorder = Recorder(
            store=store,
            vault=vault,
            retention=retention_for(store, keystore, audit),
            audit=audit,
            window=0.001,
            max_batch=BIG_BATCH,
        )

        async def build() -> tuple[float, list[float]]:
            recorder.start(asyncio.get_running_loop())
            t0 = time.perf_counter()
            signing = await record_log(recorder, audit, leaves=o.leaves, sessions=o.sessions)
            return time.perf_counter() - t0, signing

        try:
            build_s, signing = asyncio.run(build())
        finally:
            recorder.close()
        size = store.audit_head().size
        t0 = time.perf_counter()
        result = verify_log(store, verifier=audit.verifier, origin=audit.origin)
        verify_s = time.perf_counter() - t0
        keystore.close()
    if not result.ok:
        raise BenchError(f"audit verify found problems in an untouched log: {result.problems[:3]}")
    if result.size != size:
        raise BenchError(f"audit verify read {result.size} entries of {size}")
    return {
        "leaves": size,
        "sessions": o.sessions,
        "messages": o.sessions * (o.leaves // o.sessions - 2),
        "build_seconds": round(build_s, 2),
        "build_leaves_per_s": round(size / build_s),
        "checkpoints_signed": len(signing),
        "checkpoint_sign_ms": spread(signing),
        "verify_seconds": round(verify_s, 2),
        "verify_leaves_per_s": round(size / verify_s),
        "checkpoints_verified": result.checkpoints,
        "notes": result.notes,
    }


# -- (4) checkpoint latency: the load generator (``--client``) --------------------------------


@dataclass(frozen=True)
class ClientSpec:
    """What the load-generator process does; sent to it as JSON on its stdin."""

    url: str
    pairs: int
    rate: float  # messages per second, per sender
    seconds: float
    checkpoint_file: str
    poll_ms: float
    tail_seconds: float  # polling goes on this long after the last acknowledgement
    drain_seconds: float  # how long to wait for acknowledgements after sending stops


def _address(index: int) -> str:
    net, host = divmod(index, 254)
    return f"{('192.0.2', '198.51.100', '203.0.113')[net]}.{host + 1}"  # RFC 5737


def poll_checkpoints(
    path: Path, *, period: float, stop: threading.Event, seen: list[tuple[int, float]]
) -> None:
    """Note the size of each new checkpoint in ``path`` and when it was first seen."""
    last: tuple[int, int] | None = None
    size = -1
    while not stop.is_set():
        try:
            st = os.stat(path)
        except FileNotFoundError:
            stop.wait(period)
            continue
        key = (st.st_ino, st.st_mtime_ns)  # the publisher replaces the file: a new inode
        if key != last:
            at = time.time()
            last = key
            lines = path.read_bytes().split(b"\n")
            new = int(lines[1])
            if new > size:
                seen.append((new, at))
                size = new
        stop.wait(period)


class Sender:
    """One side of a pair: sends on a steady schedule and notes when each ``sent`` arrives."""

    def __init__(self, client: ChatClient, chat: str, acks: list[tuple[str, int, float]]) -> None:
        self.client = client
        self.chat = chat
        self.acks = acks
        self.sent = 0
        self.acked = 0
        self.errors: Counter[str] = Counter()

    def run(self, *, first: float, period: float, end: float, drain: float) -> None:
        """Send at ``first``, ``first + period``, ... until ``end`` (monotonic), then wait up
        to ``drain`` seconds for the last acknowledgements."""
        due = first
        text = "x" * TEXT_CHARS
        while True:
            now = time.monotonic()
            if due < end and now >= due:
                self.client.send("message", text=text)
                self.sent += 1
                due += period  # from the schedule: lateness does not accumulate
                continue
            if due >= end and self.acked + sum(self.errors.values()) >= self.sent:
                return
            if due >= end and now > end + drain:
                raise BenchError(f"{self.sent - self.acked} messages never acknowledged")
            wait = due - now if due < end else end + drain - now
            try:
                frame = self.client.recv(timeout=max(0.0, wait))
            except TimeoutError:
                continue
            if frame["type"] == "sent":
                self.acks.append((self.chat, int(frame["seq"]), time.time()))
                self.acked += 1
            elif frame["type"] == "error":
                self.errors[str(frame.get("code"))] += 1
            # ``message`` from the stranger: nothing to do.


def pair_up(spec: ClientSpec) -> list[tuple[ChatClient, str]]:
    """Connect ``2 * pairs`` clients and match each pair by its own interest."""
    joined: list[tuple[ChatClient, str]] = []
    for k in range(spec.pairs):
        a = ChatClient(spec.url, forwarded_for=_address(2 * k))
        b = ChatClient(spec.url, forwarded_for=_address(2 * k + 1))
        a.join([f"pair{k}"])
        b.join([f"pair{k}"])
        chat = a.expect("matched")["chat"]
        if b.expect("matched")["chat"] != chat:
            raise BenchError(f"pair {k} was not matched with itself")
        joined += [(a, chat), (b, chat)]
    return joined


def client_main() -> int:
    spec = ClientSpec(**json.loads(sys.stdin.readline()))
    clients = pair_up(spec)
    acks: list[tuple[str, int, float]] = []
    seen: list[tuple[int, float]] = []
    stop = threading.Event()
    poller = threading.Thread(
        target=poll_checkpoints,
        args=(Path(spec.checkpoint_file),),
        kwargs={"period": spec.poll_ms / 1000, "stop": stop, "seen": seen},
        daemon=True,
    )
    poller.start()
    senders = [Sender(client, chat, acks) for client, chat in clients]
    period = 1 / spec.rate
    start = time.monotonic() + 0.5
    end = start + spec.seconds
    threads = [
        threading.Thread(
            target=sender.run,
            kwargs={
                # Start times spread over one period, so the load is steady.
                "first": start + period * i / len(senders),
                "period": period,
                "end": end,
                "drain": spec.drain_seconds,
            },
        )
        for i, sender in enumerate(senders)
    ]
    started = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    time.sleep(spec.tail_seconds)
    stop.set()
    poller.join()
    for client, _chat in clients:
        client.close()
    errors: Counter[str] = Counter()
    for sender in senders:
        errors.update(sender.errors)
    result = {
        "started": started,
        "sent": sum(s.sent for s in senders),
        "acks": acks,
        "checkpoints": seen,
        "errors": dict(errors),
    }
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


# -- (4) checkpoint latency: the orchestrator --------------------------------------------------


def checkpoint_latency(backend: Backend, o: Options) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="logwarden-audit-serve-") as tmp:
        root = Path(tmp)
        published = root / "checkpoint.txt"
        env = {**SERVER_ENV, "LOGWARDEN_AUDIT__CHECKPOINT_FILE": str(published)}
        if o.checkpoint_interval_ms is not None:
            env["LOGWARDEN_AUDIT__CHECKPOINT_INTERVAL_MS"] = str(o.checkpoint_interval_ms)
        if backend.name == "sqlite":
            return _latency_run(root, env, o, url=None)
        with backend.database() as url:
            return _latency_run(root, {**env, "LOGWARDEN_DATABASE_URL": url}, o, url=url)


def _latency_run(root: Path, env: dict[str, str], o: Options, *, url: str | None) -> dict[str, Any]:
    data_dir = root / "data"
    spec = ClientSpec(
        url="",
        pairs=o.latency_pairs,
        rate=o.latency_rate,
        seconds=o.latency_seconds,
        checkpoint_file=env["LOGWARDEN_AUDIT__CHECKPOINT_FILE"],
        poll_ms=o.poll_ms,
        tail_seconds=2.0,
        drain_seconds=15.0,
    )
    with serve_in_process(data_dir, env=env, startup_timeout=60) as server:
        spec = ClientSpec(**{**asdict(spec), "url": server.ws_url})
        load = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--client"],
            input=json.dumps(asdict(spec)) + "\n",
            capture_output=True,
            text=True,
            timeout=o.latency_seconds + 120,
            check=False,
        )
        if load.returncode != 0:
            raise BenchError(
                f"the load generator failed ({load.returncode}):\n{load.stderr[-3000:]}"
            )
        if server.process.poll() is not None:
            raise BenchError(f"the server exited during the run:\n{server.log_text()[-3000:]}")
    # The server has stopped (and signed its last checkpoint): read where each message went.
    store = SqlStore.sqlite(data_dir / "logwarden.db") if url is None else SqlStore.postgres(url)
    try:
        entries = store.audit_entries(0, 1 << 62)
    finally:
        store.close()
    return latencies(json.loads(load.stdout), entries_index(entries), o)


def entries_index(entries: Sequence[Any]) -> dict[tuple[str, int], int]:
    """(chat, seq) -> the index of that message's entry."""
    found = {}
    for row in entries:
        if row.kind == "message":
            fields = json.loads(row.body)
            found[fields["session"], fields["seq"]] = row.idx
    return found


def latencies(
    load: dict[str, Any], index_of: dict[tuple[str, int], int], o: Options
) -> dict[str, Any]:
    sizes = [size for size, _at in load["checkpoints"]]
    seen_at = [at for _size, at in load["checkpoints"]]
    waits: list[float] = []
    uncovered = missing = 0
    for chat, seq, acked_at in load["acks"]:
        index = index_of.get((chat, seq))
        if index is None:
            missing += 1
            continue
        first = bisect.bisect_right(sizes, index)  # the first checkpoint with size > index
        if first == len(sizes):
            uncovered += 1
            continue
        waits.append(seen_at[first] - acked_at)
    if missing or uncovered or load["errors"] or not waits:
        raise BenchError(
            f"of {len(load['acks'])} acknowledged messages, {missing} have no audit entry and "
            f"{uncovered} were never covered by a checkpoint seen; error frames: {load['errors']}"
        )
    gaps = [b - a for a, b in itertools.pairwise(seen_at)]
    return {
        "pairs": o.latency_pairs,
        "rate_per_sender": o.latency_rate,
        "messages": len(waits),
        "messages_per_s": round(len(waits) / o.latency_seconds, 1),
        "latency_s": spread(waits, unit=1.0),
        "negative": sum(1 for w in waits if w < 0),
        "checkpoints_seen": len(sizes),
        "checkpoint_gap_s": spread(gaps, unit=1.0) if gaps else None,
    }


# -- the run ---------------------------------------------------------------------------------


def run_backend(backend: Backend, o: Options) -> dict[str, Any]:
    result: dict[str, Any] = {}
    name = backend.name
    if "appends" in o.parts or "proofs" in o.parts:
        with backend.fresh() as (_data_dir, store):
            big = appends(store, leaves=o.leaves, batch=BIG_BATCH, sessions=o.sessions)
            result["appends"] = [big]
            say(
                f"{name}: {big['appends_per_s']:,} appends/s in batches of {BIG_BATCH} "
                f"({o.leaves:,} leaves; first tenth {big['first_tenth_per_s']:,}/s, last "
                f"{big['last_tenth_per_s']:,}/s; building an entry {big['entry_build_us']} us)"
            )
            if "proofs" in o.parts:
                result["proofs"] = proofs(store, count=o.proofs, seed=o.seed)
                p = result["proofs"]
                say(
                    f"{name}: inclusion make p50 {p['inclusion']['make_ms']['p50']} ms, verify "
                    f"p99 {p['inclusion']['verify_ms']['p99']} ms; consistency make p50 "
                    f"{p['consistency']['make_ms']['p50']} ms"
                )
            if "appends" in o.parts and o.small_batch_leaves:
                small = appends(
                    store, leaves=o.small_batch_leaves, batch=o.small_batch, sessions=o.sessions
                )
                result["appends"].append(small)
                say(
                    f"{name}: {small['appends_per_s']:,} appends/s in batches of "
                    f"{o.small_batch} (from {small['from_size']:,} leaves)"
                )
    if "verify" in o.parts:
        result["verify"] = build_and_verify(backend, o)
        v = result["verify"]
        say(
            f"{name}: built {v['leaves']:,} leaves through the recorder in "
            f"{v['build_seconds']} s; audit verify {v['verify_seconds']} s"
        )
    if "latency" in o.parts:
        result["checkpoint_latency"] = checkpoint_latency(backend, o)
        c = result["checkpoint_latency"]["latency_s"]
        say(f"{name}: checkpoint latency p50 {c['p50']} s, p99 {c['p99']} s")
    return result


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def floors(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name, r in results.items():
        for run in r.get("appends", []):
            if run["batch"] == BIG_BATCH:
                rate = run["appends_per_s"]
                found[f"{name}_appends_per_s"] = {
                    "value": rate,
                    "floor": f">= {APPENDS_FLOOR}",
                    "met": rate >= APPENDS_FLOOR,
                }
        if "proofs" in r:
            p99 = r["proofs"]["inclusion"]["verify_ms"]["p99"]
            found[f"{name}_inclusion_verify_p99_ms"] = {
                "value": p99,
                "floor": f"< {VERIFY_FLOOR_MS}",
                "met": p99 < VERIFY_FLOOR_MS,
            }
        if "checkpoint_latency" in r:
            p99 = r["checkpoint_latency"]["latency_s"]["p99"]
            found[f"{name}_checkpoint_latency_p99_s"] = {
                "value": p99,
                "floor": f"< {CHECKPOINT_P99_FLOOR_S}",
                "met": p99 < CHECKPOINT_P99_FLOOR_S,
            }
    return found


def table(results: dict[str, Any], o: Options) -> str:
    names = list(results)
    rows: list[tuple[str, list[str], str]] = []

    def row(label: str, floor: str, get: Any) -> None:
        cells = []
        for name in names:
            try:
                cells.append(get(results[name]))
            except (KeyError, IndexError, StopIteration):
                cells.append("-")
        rows.append((label, cells, floor))

    def ms(d: dict[str, float]) -> str:
        return f"{d['p50']:.3f} / {d['p99']:.3f}"

    def appended(batch: int) -> Any:
        return lambda r: (
            f"{next(a for a in r['appends'] if a['batch'] == batch)['appends_per_s']:,}"
        )

    row(f"appends/s, batches of {BIG_BATCH}", f">= {APPENDS_FLOOR:,}", appended(BIG_BATCH))
    row(
        f"  the last tenth (to {o.leaves:,})",
        "",
        lambda r: f"{r['appends'][0]['last_tenth_per_s']:,}",
    )
    row(f"appends/s, batches of {o.small_batch} (then)", "", appended(o.small_batch))
    row("inclusion proof: make p50 / p99 ms", "", lambda r: ms(r["proofs"]["inclusion"]["make_ms"]))
    row(
        "inclusion proof: verify p50 / p99 ms",
        f"p99 < {VERIFY_FLOOR_MS:g} ms",
        lambda r: ms(r["proofs"]["inclusion"]["verify_ms"]),
    )
    row(
        "  in CPU time, p50 / p99 ms",
        "",
        lambda r: ms(r["proofs"]["inclusion"]["verify_cpu_ms"]),
    )
    row(
        "inclusion proof: hashes (bytes), max",
        "",
        lambda r: "{max} ({max_bytes} B)".format(**r["proofs"]["inclusion"]["hashes"]),
    )
    row(
        "consistency proof: make p50 / p99 ms",
        "",
        lambda r: ms(r["proofs"]["consistency"]["make_ms"]),
    )
    row(
        "consistency proof: verify p50 / p99 ms",
        "",
        lambda r: ms(r["proofs"]["consistency"]["verify_ms"]),
    )
    row(
        "consistency proof: hashes (bytes), max",
        "",
        lambda r: "{max} ({max_bytes} B)".format(**r["proofs"]["consistency"]["hashes"]),
    )
    row(
        "log built by the recorder, leaves/s",
        "",
        lambda r: f"{r['verify']['build_leaves_per_s']:,}",
    )
    row(
        "checkpoint signing p50 / p99 ms",
        "",
        lambda r: ms(r["verify"]["checkpoint_sign_ms"]),
    )
    row("audit verify, s", "", lambda r: f"{r['verify']['verify_seconds']:.1f}")
    row(
        "checkpoint latency p50 / p99 s",
        f"p99 < {CHECKPOINT_P99_FLOOR_S:g} s",
        lambda r: "{p50:.3f} / {p99:.3f}".format(**r["checkpoint_latency"]["latency_s"]),
    )
    row(
        "  gap between checkpoints p50 / max s",
        "",
        lambda r: "{p50:.3f} / {max:.3f}".format(**r["checkpoint_latency"]["checkpoint_gap_s"]),
    )
    width = max(len(label) for label, _, _ in rows) + 2
    header = f"{'':<{width}}" + "".join(f"{n:>18}" for n in names) + f"{'floor':>18}"
    lines = [header, "-" * len(header)]
    for label, cells, floor in rows:
        if all(cell == "-" for cell in cells):
            continue  # a part not run
        lines.append(f"{label:<{width}}" + "".join(f"{c:>18}" for c in cells) + f"{floor:>18}")
    return "\n".join(lines)


def code_version() -> dict[str, Any]:
    """The commit, what is uncommitted in src/, and a hash of the package's files."""
    package = Path(logwarden.__file__).resolve().parent
    files = {
        str(path.relative_to(package)): hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        for path in sorted(package.rglob("*.py"))
    }
    version: dict[str, Any] = {"package": str(package), "files": files}
    try:
        git = ["git", "-C", str(package)]
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "."], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return version
    version["commit"] = head.stdout.strip()
    version["uncommitted"] = [line[3:] for line in dirty.stdout.splitlines()]
    return version


def parse_options(argv: Sequence[str]) -> tuple[Options, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes: a check that it runs")
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--small-batch", type=int, default=32)
    parser.add_argument(
        "--small-batch-leaves",
        type=int,
        help="leaves appended in small batches after the big ones [a tenth of --leaves]",
    )
    parser.add_argument("--proofs", type=int, default=1000, help="of each kind")
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--latency-pairs", type=int, default=20)
    parser.add_argument("--latency-rate", type=float, default=10.0, help="msg/s per sender")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--poll-ms", type=float, default=2.0, help="checkpoint file polling")
    parser.add_argument(
        "--checkpoint-interval-ms", type=int, help="the server's [audit] checkpoint_interval_ms"
    )
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--parts", default="appends,proofs,verify,latency", help="comma-separated subset"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("LOGWARDEN_TEST_POSTGRES", "postgresql://127.0.0.1:5432/test"),
        help="an admin URL; the benchmark creates and drops its own databases",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.leaves, args.sessions, args.proofs = 100_000, 1_000, 200
        args.latency_pairs, args.latency_seconds = 5, 5.0
    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    unknown = set(parts) - {"appends", "proofs", "verify", "latency"}
    if unknown or not parts:
        parser.error(f"--parts: unknown {sorted(unknown)}")
    if args.leaves < 3 * args.sessions or args.sessions < 1:
        parser.error("--leaves must be at least 3 per session (start, a message, end)")
    if not 1 <= args.latency_pairs <= 381 or args.latency_rate <= 0:
        parser.error("--latency-pairs in 1..381 (one documentation address each), rate > 0")
    backends: tuple[str, ...] = (
        ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    )
    if "postgres" in backends and (why := postgres_reachable(args.postgres)):
        say(f"PostgreSQL is not reachable ({why}); SQLite only")
        backends = tuple(b for b in backends if b != "postgres")
    small = args.leaves // 10 if args.small_batch_leaves is None else args.small_batch_leaves
    return Options(
        leaves=args.leaves,
        small_batch=args.small_batch,
        small_batch_leaves=small,
        proofs=args.proofs,
        sessions=args.sessions,
        latency_pairs=args.latency_pairs,
        latency_rate=args.latency_rate,
        latency_seconds=args.latency_seconds,
        poll_ms=args.poll_ms,
        checkpoint_interval_ms=args.checkpoint_interval_ms,
        seed=args.seed,
        postgres=args.postgres,
        backends=backends,
        parts=parts,
    ), args.out


def main(argv: Sequence[str]) -> int:
    if list(argv) == ["--client"]:
        return client_main()
    o, out = parse_options(argv)
    started = datetime.now(UTC)
    before = code_version()
    results: dict[str, Any] = {}
    try:
        for name in o.backends:
            results[name] = run_backend(Backend(name, o.postgres), o)
    except BenchError as exc:
        print(f"audit benchmark failed: {exc}", file=sys.stderr)
        return 1
    after = code_version()
    met = floors(results)
    print(
        f"\nAudit log benchmark: {o.leaves:,} leaves, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, commit {before.get('commit', '?')} "
        f"({before['package']})\n"
    )
    print(table(results, o))
    print()
    for key, floor in met.items():
        verdict = "MET" if floor["met"] else "NOT MET"
        print(f"floor {key}: {floor['value']} (needs {floor['floor']}): {verdict}")
    changed = sorted(
        path
        for path in before["files"].keys() | after["files"].keys()
        if before["files"].get(path) != after["files"].get(path)
    )
    code = {k: v for k, v in before.items() if k != "files"}
    summary = {"options": asdict(o), "code": code, "results": results, "floors": met}
    print(json.dumps(summary, separators=(",", ":")))
    RESULTS_DIR.mkdir(exist_ok=True)
    out = out or RESULTS_DIR / f"audit-{started:%Y%m%dT%H%M%SZ}.json"
    document = {
        "benchmark": "bench/audit.py",
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "platform": platform.platform(),
        "code_changed_during_run": changed,
        **summary,
    }
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"results: {out}", file=sys.stderr)
    if changed:
        say(f"source files changed while the benchmark ran (the runs may mix versions): {changed}")
    return 0 if all(f["met"] for f in met.values()) else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
