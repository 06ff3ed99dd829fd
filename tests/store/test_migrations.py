"""The schema migrations: the migrated schema is schema.py's, on both backends, and opening a
log migrates it once and only once."""

from __future__ import annotations

import secrets
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from logwarden.errors import StoreError
from logwarden.store import SessionRow, SqlStore, WriteBatch, schema
from logwarden.store._partitions import is_partition
from logwarden.store.migrations import config
from tests.conftest import POSTGRES_ADMIN_URL

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "src" / "logwarden" / "store" / "migrations"
T0 = 1_764_061_200_000  # ms since the epoch
SESSION = "0123456789abcdef0123456789abcdef"
HEAD = ScriptDirectory.from_config(config()).get_current_head()


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL database of its own, empty: not even the tables (dropped after)."""
    name = f"logwarden_migrations_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            yield postgres_url.rsplit("/", 1)[0] + "/" + name
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(kind, location) of an empty database: a file path, or a postgresql:// URL."""
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "logwarden.db")
    return "postgres", request.getfixturevalue("fresh_postgres_url")


def open_store(kind: str, location: str) -> SqlStore:
    return SqlStore.sqlite(Path(location)) if kind == "sqlite" else SqlStore.postgres(location)


def engine_url(kind: str, location: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{location}"
    return location.replace("postgresql://", "postgresql+psycopg://", 1)


def version_rows(kind: str, location: str) -> list[tuple[str, ...]]:
    """The rows of alembic_version."""
    engine = create_engine(engine_url(kind, location))
    try:
        with engine.connect() as conn:
            return [
                tuple(row) for row in conn.execute(text("SELECT version_num FROM alembic_version"))
            ]
    finally:
        engine.dispose()


class TestBaseline:
    def test_matches_schema(self, backend: tuple[str, str]) -> None:
        """Autogenerate finds no difference between the migrated database and schema.py."""
        open_store(*backend).close()
        engine = create_engine(engine_url(*backend))
        try:
            with engine.connect() as conn:
                context = MigrationContext.configure(
                    conn,
                    opts={
                        # Partitions of messages are made at run time, so they are not in
                        # schema.py; autogenerate would call them tables to drop. Partitioning
                        # itself it does not compare: TestPartitioning checks it.
                        "include_name": lambda name, type_, _parents: (
                            not (type_ == "table" and is_partition(name))
                        ),
                        "compare_type": True,
                        "compare_server_default": True,
                    },
                )
                assert compare_metadata(context, schema.metadata) == []
        finally:
            engine.dispose()

    def test_downgrade_and_upgrade_again(self, backend: tuple[str, str]) -> None:
        """Downgrading to the audit log's revision removes what came after, and upgrading
        again restores it; downgrading the audit log itself away is refused."""
        open_store(*backend).close()
        engine = create_engine(engine_url(*backend))
        try:
            cfg = config()
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.downgrade(cfg, "0002")
            with engine.connect() as conn:
                left = set(conn.dialect.get_table_names(conn))
            assert "safety_events" not in left and "audit_entries" in left
            with (
                pytest.raises(NotImplementedError, match="cannot be downgraded"),
                engine.begin() as conn,
            ):
                cfg.attributes["connection"] = conn
                command.downgrade(cfg, "base")
        finally:
            engine.dispose()
        open_store(*backend).close()


class TestOpening:
    def test_opening_again_changes_nothing(self, backend: tuple[str, str]) -> None:
        """A second open finds the head revision, migrates nothing and loses nothing."""
        store = open_store(*backend)
        store.write(WriteBatch(sessions=[SessionRow(SESSION, T0, T0 // 86_400_000, b"sealed")]))
        store.close()
        again = open_store(*backend)
        try:
            assert [s.id for s in again.recent_sessions(limit=10)] == [SESSION]
        finally:
            again.close()
        assert version_rows(*backend) == [(HEAD,)]

    def test_concurrent_first_opens(self, backend: tuple[str, str]) -> None:
        """Openers of a new log at once (each with its own connection, as processes would be)
        make its tables once, without error."""
        with ThreadPoolExecutor(4) as pool:
            stores = list(pool.map(lambda _: open_store(*backend), range(4)))
        for store in stores:
            store.close()
        assert version_rows(*backend) == [(HEAD,)]

    def test_concurrent_opens_of_different_logs(self, tmp_path: Path) -> None:
        """Threads of one process migrating different logs at once do not mix them up."""
        paths = [tmp_path / f"log{n}.db" for n in range(4)]
        with ThreadPoolExecutor(4) as pool:
            stores = list(pool.map(SqlStore.sqlite, paths))
        for store, path in zip(stores, paths, strict=True):
            store.close()
            assert version_rows("sqlite", str(path)) == [(HEAD,)]

    def test_log_from_before_migrations(self, tmp_path: Path) -> None:
        """A log made before migrations existed is refused with a StoreError saying so."""
        path = tmp_path / "old.db"
        engine = create_engine(f"sqlite:///{path}")
        schema.metadata.create_all(engine)
        engine.dispose()
        with pytest.raises(StoreError, match="before schema migrations"):
            SqlStore.sqlite(path)


class TestPartitioning:
    def test_messages_by_range_of_bucket(self, fresh_postgres_url: str) -> None:
        """On PostgreSQL messages is partitioned by range of bucket, with the PRESERVED
        partition for bucket 0 only."""
        SqlStore.postgres(fresh_postgres_url).close()
        with psycopg.connect(fresh_postgres_url) as db:
            key = db.execute("SELECT pg_get_partkeydef('messages'::regclass)").fetchone()
            bounds = db.execute(
                "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)"
                " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'messages'::regclass"
            ).fetchall()
        assert key == ("RANGE (bucket)",)
        assert bounds == [("messages_preserved", "FOR VALUES FROM (0) TO (1)")]


class TestPackaging:
    def test_migrations_ship_in_the_wheel(self) -> None:
        """Every file of the migrations is in the wheel: a module of a package, or named by
        pyproject's package-data."""
        pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
        globs = pyproject["tool"]["setuptools"]["package-data"]["logwarden"]
        package_root = ROOT / "src" / "logwarden"
        files = [p for p in MIGRATIONS.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        assert {p.name for p in files} >= {
            "env.py",
            "script.py.mako",
            "0001_baseline.py",
            "0002_audit_log.py",
            "0003_safety_events.py",
        }
        for path in files:
            is_module = path.suffix == ".py" and (path.parent / "__init__.py").exists()
            relative = path.relative_to(package_root)
            assert is_module or any(relative.match(glob) for glob in globs), relative
