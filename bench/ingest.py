"""Ingest benchmark: what recording costs against the database's own limit, and purge time.

Run from the repository root::

    .venv/bin/python bench/ingest.py                # the full run
    .venv/bin/python bench/ingest.py --quick        # a check that it works

For each backend (SQLite, and PostgreSQL if it is reachable at ``--postgres``):

(a) ingest   ``--messages`` messages of ``--text-bytes`` bytes over ``--sessions`` sessions
             through the whole recording path: the real ``Recorder`` (group commit on its own
             thread, 1 ms window, batches of up to 1024), the vault (AES-256-GCM under each
             session's data key from the keystore, keys made durably at each session start)
             and the store. Against it, the limit: a plain insert of the same number of rows of
             the same size into a plain table of the same database, in transactions of the
             same size the recorder committed (measured), written as the store writes: a
             driver-level multi-row INSERT on SQLite, binary COPY on PostgreSQL. The two
             alternate, ``--rounds`` times, each on a fresh database, because the machine is
             shared and noisy: only the ratio of figures taken side by side means anything.
(b) purge    ``--purge-messages`` expired messages (1M) over 10,000 sessions of one day,
             written straight into a fresh database with real keys in a real keystore; then
             the time of ``Retention.purge()`` at the day the text expires: bucket keys
             destroyed, the keystore's WAL emptied, the key-encryption key rotated, the rows
             deleted (SQLite) or the day's partition dropped (PostgreSQL).

Floors (issue 4): the full path at least 40% of the plain insert on SQLite; the purge of 1M
expired messages under 5 s. Exit status 0 when met, 2 when missed, 1 on an error. Results go
to ``bench/results/`` (git-ignored) as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any

import psycopg

from logwarden.audit.checkpoint import SigningKey
from logwarden.audit.log import AuditLog
from logwarden.clock import FakeClock
from logwarden.recorder import Recorder
from logwarden.retention import Retention, RetentionPolicy
from logwarden.retention.policy import DAY_MS, RAW_IP, SESSION
from logwarden.store import SqlStore
from logwarden.vault import ADDRESS, TEXT, KeyStore, NewDataKey, Vault, create_key_file
from logwarden.vault.keys import load_key_file

RESULTS_DIR = Path(__file__).resolve().parent / "results"
RATIO_FLOOR = 0.40  # full path / plain insert, SQLite
PURGE_FLOOR_S = 5.0  # for 1M expired messages
T0 = 1_764_072_000_000  # noon UTC
POLICY = RetentionPolicy(session_days=30, raw_ip_days=7, metadata_days=90, reported_days=365)
ROWS_PER_STATEMENT = 500
PLAIN_TABLE = (
    "CREATE TABLE plain_messages (session_id VARCHAR(32) NOT NULL, seq INTEGER NOT NULL, "
    "bucket INTEGER NOT NULL, slot SMALLINT NOT NULL, sent_at BIGINT NOT NULL, "
    "text_sealed {blob} NOT NULL, PRIMARY KEY (session_id, seq))"
)
PLAIN_COPY = (
    "COPY plain_messages (session_id, seq, bucket, slot, sent_at, text_sealed) "
    "FROM STDIN (FORMAT BINARY)"
)


@dataclass(frozen=True)
class Options:
    messages: int
    sessions: int
    text_bytes: int
    rounds: int
    purge_messages: int
    postgres: str
    backends: tuple[str, ...]


# -- databases -----------------------------------------------------------------------------


class Backend:
    """Fresh databases of one kind, each with its data directory for keys."""

    def __init__(self, name: str, admin_url: str) -> None:
        self.name = name
        self._admin_url = admin_url
        self._made: list[str] = []

    @contextmanager
    def fresh(self) -> Iterator[tuple[Path, SqlStore, Callable[[], Any]]]:
        """(data dir, store, a new raw DB-API connection to the same database)."""
        with tempfile.TemporaryDirectory(prefix="logwarden-ingest-") as tmp:
            data_dir = Path(tmp)
            keys_dir = data_dir / "keys"
            keys_dir.mkdir(mode=0o700)
            create_key_file(keys_dir)
            KeyStore.create(keys_dir, now_ms=T0)
            if self.name == "sqlite":
                path = data_dir / "logwarden.db"
                store = SqlStore.sqlite(path)
                yield data_dir, store, lambda: _sqlite_connection(path)
                store.close()
                return
            name = f"logwarden_bench_{secrets.token_hex(5)}"
            with psycopg.connect(self._admin_url, autocommit=True) as admin:
                admin.execute(f"CREATE DATABASE {name}")
            url = self._admin_url.rsplit("/", 1)[0] + "/" + name
            try:
                store = SqlStore.postgres(url)
                yield data_dir, store, lambda: psycopg.connect(url)
                store.close()
            finally:
                with psycopg.connect(self._admin_url, autocommit=True) as admin:
                    admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _sqlite_connection(path: Path) -> sqlite3.Connection:
    # The store's own settings: WAL, synchronous FULL, secure_delete.
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "secure_delete=ON"):
        db.execute(f"PRAGMA {pragma}")
    return db


def postgres_reachable(url: str) -> str | None:
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        return str(exc).strip()
    return None


# -- (a) ingest ----------------------------------------------------------------------------


def session_id(n: int) -> str:
    return f"{n:032x}"


async def record_all(recorder: Recorder, o: Options) -> None:
    """Start every session, then send every message, keeping many in flight at once."""
    per_session = o.messages // o.sessions
    text = "x" * o.text_bytes
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
            for n in range(o.sessions)
        )
    )
    in_flight: list[asyncio.Future[None]] = []
    for seq in range(1, per_session + 1):
        for n in range(o.sessions):
            in_flight.append(
                recorder.message(
                    session_id=session_id(n), seq=seq, slot=seq % 2, sent_at=T0 + seq, text=text
                )
            )
        if len(in_flight) >= 8192:
            await asyncio.gather(*in_flight)
            in_flight.clear()
    await asyncio.gather(*in_flight)


def retention_at(
    now_ms: int, *, store: SqlStore, keystore: KeyStore, audit: AuditLog | None = None
) -> Retention:
    """The retention service with the default periods, its clock standing at ``now_ms``."""
    clock = FakeClock(now_ms)
    return Retention(
        store=store,
        keystore=keystore,
        audit=audit or audit_log(store, clock),
        policy=POLICY,
        clock=clock,
        report_window_ms=300_000,
        kek_rotation_days=7,
    )


def audit_log(store: SqlStore, clock: FakeClock) -> AuditLog:
    return AuditLog(store, signer=SigningKey.generate("bench.example/logwarden"), clock=clock)


def full_path(backend: Backend, o: Options) -> dict[str, float]:
    with backend.fresh() as (data_dir, store, _connect):
        keystore = KeyStore(data_dir / "keys")
        vault = Vault(load_key_file(data_dir / "keys"), keystore)
        audit = audit_log(store, FakeClock(T0))
        retention = retention_at(T0, store=store, keystore=keystore, audit=audit)
        recorder = Recorder(
            store=store,
            vault=vault,
            retention=retention,
            audit=audit,
            window=0.001,
            max_batch=1024,
        )
        batches: list[int] = []
        write = store.write

        def counting_write(batch: Any) -> None:
            batches.append(len(batch.messages))
            write(batch)

        store.write = counting_write  # type: ignore[method-assign]

        async def run() -> float:
            recorder.start(asyncio.get_running_loop())
            started = time.perf_counter()
            await record_all(recorder, o)
            return time.perf_counter() - started

        try:
            seconds = asyncio.run(run())
        finally:
            recorder.close()
            keystore.close()
        messages = (o.messages // o.sessions) * o.sessions
        message_batches = [b for b in batches if b]
        return {
            "seconds": seconds,
            "messages_per_s": messages / seconds,
            "mean_batch": statistics.fmean(message_batches),
        }


def plain_insert(backend: Backend, o: Options, batch: int) -> dict[str, float]:
    """The same rows, of the same size, in transactions of ``batch`` rows: the limit."""
    sealed = os.urandom(1 + 12 + o.text_bytes + 16)  # a sealed token's size
    per_session = o.messages // o.sessions
    rows = [
        (session_id(n), seq, T0 // DAY_MS, seq % 2, T0 + seq, sealed)
        for seq in range(1, per_session + 1)
        for n in range(o.sessions)
    ]
    with backend.fresh() as (_data_dir, _store, connect):
        db = connect()
        mark = "?" if backend.name == "sqlite" else "%s"
        blob = "BLOB" if backend.name == "sqlite" else "BYTEA"
        db.execute(PLAIN_TABLE.format(blob=blob))
        if backend.name != "sqlite":
            db.commit()
        head = (
            "INSERT INTO plain_messages (session_id, seq, bucket, slot, sent_at, text_sealed) "
            "VALUES "
        )
        one = "(" + ", ".join([mark] * 6) + ")"
        started = time.perf_counter()
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            if backend.name == "sqlite":
                db.execute("BEGIN")
            if backend.name == "sqlite":
                for at in range(0, len(chunk), ROWS_PER_STATEMENT):
                    part = chunk[at : at + ROWS_PER_STATEMENT]
                    sql = head + ", ".join([one] * len(part))
                    db.execute(sql, tuple(chain.from_iterable(part)))
            else:  # binary COPY, as the store writes on PostgreSQL
                with db.cursor() as cursor, cursor.copy(PLAIN_COPY) as copy:
                    copy.set_types(["text", "int4", "int4", "int2", "int8", "bytea"])
                    for row in chunk:
                        copy.write_row(row)
            db.execute("COMMIT") if backend.name == "sqlite" else db.commit()
        seconds = time.perf_counter() - started
        db.close()
    return {"seconds": seconds, "messages_per_s": len(rows) / seconds}


# -- (b) purge -----------------------------------------------------------------------------


def purge(backend: Backend, o: Options) -> dict[str, Any]:
    """Write ``purge_messages`` expired messages with real keys, then time the purge."""
    sessions = 10_000
    per_session = o.purge_messages // sessions
    day = T0 // DAY_MS
    with backend.fresh() as (data_dir, store, connect):
        keystore = KeyStore(data_dir / "keys")
        wanted = [
            NewDataKey(session_id(n), purpose, cls, day)
            for n in range(sessions)
            for purpose, cls in ((TEXT, SESSION), (ADDRESS, RAW_IP))
        ]
        keystore.create_data_keys(wanted)
        fill_started = time.perf_counter()
        fill(backend.name, connect, sessions, per_session, day, o.text_bytes)
        fill_seconds = time.perf_counter() - fill_started
        expiry = (day + POLICY.session_days + 1) * DAY_MS
        retention = retention_at(expiry, store=store, keystore=keystore)
        started = time.perf_counter()
        summary = retention.purge()
        seconds = time.perf_counter() - started
        left = retention.check()
        keystore.close()
    if summary.messages_deleted != sessions * per_session:
        raise SystemExit(
            f"purge deleted {summary.messages_deleted} messages, not {sessions * per_session}"
        )
    return {
        "messages": sessions * per_session,
        "seconds": seconds,
        "fill_seconds": fill_seconds,
        "data_keys_destroyed": summary.data_keys_destroyed,
        "buckets_destroyed": summary.buckets_destroyed,
        "findings_after": [f.what for f in left],
    }


def fill(
    name: str, connect: Callable[[], Any], sessions: int, per_session: int, day: int, size: int
) -> None:
    """Sessions, participants, addresses and messages of one day, straight into the tables."""
    db = connect()
    mark = "?" if name == "sqlite" else "%s"
    sealed = os.urandom(1 + 12 + size + 16)
    at = day * DAY_MS + 1000

    def insert(table: str, columns: str, rows: list[tuple[Any, ...]]) -> None:
        width = len(rows[0])
        one = "(" + ", ".join([mark] * width) + ")"
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            part = rows[start : start + ROWS_PER_STATEMENT]
            db.execute(
                f"INSERT INTO {table} ({columns}) VALUES "  # noqa: S608 - our names, no input
                + ", ".join([one] * len(part)),
                tuple(chain.from_iterable(part)),
            )

    if name == "sqlite":
        db.execute("PRAGMA synchronous=OFF")  # filling is not what is measured
        db.execute("BEGIN")
    elif name == "postgres":
        db.execute(
            f"CREATE TABLE IF NOT EXISTS messages_d{day} PARTITION OF messages "
            f"FOR VALUES FROM ({day}) TO ({day + 1})"
        )
    ids = [session_id(n) for n in range(sessions)]
    insert("sessions", "id, started_at, day, interests_sealed", [(s, at, day, sealed) for s in ids])
    insert(
        "participants",
        "session_id, slot, ip_pseudonym, block_key",
        [(s, slot, "a" * 32, "a" * 32) for s in ids for slot in (0, 1)],
    )
    insert(
        "addresses",
        "session_id, slot, bucket, ip_sealed",
        [(s, slot, day, sealed) for s in ids for slot in (0, 1)],
    )
    for n, s in enumerate(ids):
        insert(
            "messages",
            "session_id, seq, bucket, slot, sent_at, text_sealed",
            [(s, seq, day, seq % 2, at + seq, sealed) for seq in range(1, per_session + 1)],
        )
        if name != "sqlite" and n % 500 == 499:
            db.commit()
    if name == "sqlite":
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        db.commit()
        db.execute("ANALYZE")
        db.commit()
    db.close()


# -- the run ---------------------------------------------------------------------------------


def run(o: Options) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in o.backends:
        backend = Backend(name, o.postgres)
        rounds: list[dict[str, Any]] = []
        ratios: list[float] = []
        for round_ in range(o.rounds):
            full = full_path(backend, o)
            plain = plain_insert(backend, o, batch=round(full["mean_batch"]))
            ratio = full["messages_per_s"] / plain["messages_per_s"]
            rounds.append({"full": full, "plain": plain, "ratio": ratio})
            ratios.append(ratio)
            print(
                f"{name} round {round_ + 1}: full path {full['messages_per_s']:,.0f} msg/s "
                f"(batches of {full['mean_batch']:.0f}), plain insert "
                f"{plain['messages_per_s']:,.0f} rows/s, ratio {ratio:.3f}",
                flush=True,
            )
        purged = purge(backend, o)
        print(
            f"{name} purge: {purged['messages']:,} expired messages in {purged['seconds']:.2f} s "
            f"(filled in {purged['fill_seconds']:.1f} s); left after: {purged['findings_after']}",
            flush=True,
        )
        results[name] = {
            "rounds": rounds,
            "ratio_median": statistics.median(ratios),
            "purge": purged,
        }
    return results


def floors_met(results: dict[str, Any]) -> list[str]:
    missed = []
    sqlite = results.get("sqlite")
    if sqlite and sqlite["ratio_median"] < RATIO_FLOOR:
        missed.append(f"SQLite ratio {sqlite['ratio_median']:.3f} < {RATIO_FLOOR}")
    for name, result in results.items():
        purged = result["purge"]
        if purged["messages"] >= 1_000_000 and purged["seconds"] >= PURGE_FLOOR_S:
            missed.append(f"{name} purge {purged['seconds']:.2f} s >= {PURGE_FLOOR_S} s")
        if purged["findings_after"]:
            missed.append(f"{name}: retention check after the purge: {purged['findings_after']}")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a check that it runs")
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--sessions", type=int, default=1_000)
    parser.add_argument("--text-bytes", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--purge-messages", type=int, default=1_000_000)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgres"])
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "LOGWARDEN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
        ),
        help="an admin URL; the benchmark creates and drops its own databases",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.messages, args.sessions, args.rounds, args.purge_messages = 20_000, 200, 1, 100_000
    backends = tuple(args.backend or ["sqlite", "postgres"])
    if "postgres" in backends and (why := postgres_reachable(args.postgres)):
        print(f"PostgreSQL is not reachable ({why}); SQLite only", file=sys.stderr)
        backends = tuple(b for b in backends if b != "postgres")
    options = Options(
        messages=args.messages,
        sessions=args.sessions,
        text_bytes=args.text_bytes,
        rounds=args.rounds,
        purge_messages=args.purge_messages,
        postgres=args.postgres,
        backends=backends,
    )
    results = run(options)
    missed = floors_met(results)
    RESULTS_DIR.mkdir(exist_ok=True)
    out = args.out or RESULTS_DIR / f"ingest-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(
        json.dumps({"options": options.__dict__, "results": results, "missed": missed}, indent=2)
    )
    print(f"results: {out}")
    for line in missed:
        print(f"FLOOR MISSED: {line}")
    return 2 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
