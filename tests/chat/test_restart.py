"""What the chat remembers across a restart: reports keep the two people apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from logwarden.testing import ChatClient, serve_in_process
from tests.conftest import TEST_SERVER_ENV

REPORTER, REPORTED, NEWCOMER = "192.0.2.151", "192.0.2.152", "192.0.2.153"


class TestReportsSurviveRestart:
    def test_reported_pair_stays_apart_after_a_restart(self, tmp_path: Path) -> None:
        """A report blocks the pair by IP pseudonym, and the block is read back at start-up."""
        data_dir = tmp_path / "data"
        with serve_in_process(data_dir, env=TEST_SERVER_ENV) as server:
            with (
                ChatClient(server.ws_url, forwarded_for=REPORTER) as a,
                ChatClient(server.ws_url, forwarded_for=REPORTED) as b,
            ):
                a.join()
                b.join()
                a.expect("matched")
                a.send("report", reason="threats")
                a.expect("reported")

        with serve_in_process(data_dir, env=TEST_SERVER_ENV) as server:
            with (
                ChatClient(server.ws_url, forwarded_for=REPORTER) as a,
                ChatClient(server.ws_url, forwarded_for=REPORTED) as b,
            ):
                a.join()
                b.join()
                with pytest.raises(TimeoutError):
                    a.recv(timeout=1.0)
                with ChatClient(server.ws_url, forwarded_for=NEWCOMER) as c:
                    c.join()
                    c.expect("matched")
                    a.expect("matched")  # the reporter waited longest
