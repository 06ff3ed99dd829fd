"""Shared fixtures: real servers on free ports, in their own processes."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from logwarden.testing import LiveServer, serve_in_process

REQUIRE_SERVICES = os.environ.get("LOGWARDEN_REQUIRE_SERVICES") == "1"

# Every test client comes from 127.0.0.1; the test servers trust it as a proxy so that each
# client can present its own documentation address (192.0.2.0/24) in X-Forwarded-For.
TEST_SERVER_ENV = {
    "LOGWARDEN_TRUSTED_PROXIES": "127.0.0.1",
    "LOGWARDEN_CHAT__INTEREST_FALLBACK": "0.5",
}

_addresses = itertools.count(1)


@pytest.fixture
def new_ip() -> Callable[[], str]:
    """A function returning a fresh documentation address: 192.0.2.x, then 2001:db8::x."""

    def make() -> str:
        n = next(_addresses)
        return f"192.0.2.{n}" if n < 255 else f"2001:db8::{n:x}"

    return make


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real server per test module, with the test settings above."""
    data_dir: Path = tmp_path_factory.mktemp("server") / "data"
    with serve_in_process(data_dir, env=TEST_SERVER_ENV) as server:
        yield server


# PostgreSQL for the store tests: a database of their own on the local server, dropped after.
POSTGRES_ADMIN_URL = os.environ.get(
    "LOGWARDEN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database, or a skip (a failure in CI) if none."""
    import secrets

    import psycopg

    name = f"logwarden_test_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    with admin:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def empty_postgres_log(url: str) -> None:
    """Empty every table of the log in the test database, the audit log with them."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        db.execute(
            "TRUNCATE receipts, reports, messages, addresses, participants, sessions, "
            "audit_entries, audit_nodes, audit_checkpoints RESTART IDENTITY CASCADE"
        )
        db.execute(
            "UPDATE audit_head SET size = 0, frontier = ''::bytea, checkpoint = NULL, "
            "checkpoint_size = NULL"
        )
