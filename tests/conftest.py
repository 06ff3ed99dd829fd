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
