"""Fixtures shared by the audit log's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from logwarden.store import SqlStore
from tests.conftest import empty_postgres_log


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    """An empty log on each backend."""
    if request.param == "sqlite":
        store = SqlStore.sqlite(tmp_path / "logwarden.db")
    else:
        url = request.getfixturevalue("postgres_url")
        store = SqlStore.postgres(url)
        empty_postgres_log(url)
    yield store
    store.close()
