"""What must never happen even when something around retention goes wrong: a keystore or a log
that failed to mount, a second server on the same data directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from logwarden.config import load_settings
from logwarden.datadir import initialise
from logwarden.errors import DataDirError
from logwarden.testing import ChatClient, free_port, serve_in_process
from tests.conftest import TEST_SERVER_ENV
from tests.retention.conftest import DAY0, POLICY, Deployment, day_start


def message_count(d: Deployment, session_id: str) -> int:
    record = d.store.session(session_id)
    assert record is not None
    return len(record.messages)


def test_a_missing_key_never_deletes_a_preserved_session(deployment: Deployment) -> None:
    """A reported session whose keys cannot be found (a keystore restored from the wrong
    backup, say) keeps every row through purges: absence is not proof of expiry."""
    d = deployment
    chat = d.chat(messages=3, report=True)
    d.keystore.destroy_data_keys([chat.session_id])  # the keys are not there any more
    d.at(day_start(DAY0 + POLICY.session_days + 2))
    d.retention.purge()
    assert message_count(d, chat.session_id) == 3
    record = d.store.session(chat.session_id)
    assert record is not None and len(record.addresses) == 2


def test_keys_under_hold_survive_a_log_without_their_session(deployment: Deployment) -> None:
    """If the log does not have a held session (a log that failed to mount, an empty
    database), the purge leaves its keys alone and the check says so."""
    d = deployment
    chat = d.chat(messages=2)
    d.retention.hold(chat.session_id, reason="case 77")
    d.store.delete_sessions([chat.session_id])  # the log lost it
    d.retention.purge()
    assert d.keystore.locate(chat.session_id) == {"text": ("hold", 0), "address": ("hold", 0)}
    assert any("hold" in f.what for f in d.retention.check())


def test_init_refuses_new_keys_for_a_log_that_has_sessions(tmp_path: Path) -> None:
    """Keys missing beside an existing log: `init` (and so `serve`) refuses to make new keys,
    which would make the log unreadable and its preserved sessions look expired."""
    settings = load_settings(environ={}, overrides={"data_dir": tmp_path / "data"})
    # A session in the log, written by a real server.
    with serve_in_process(settings.data_dir, env=TEST_SERVER_ENV) as server:
        a = ChatClient(server.ws_url, forwarded_for="192.0.2.91")
        b = ChatClient(server.ws_url, forwarded_for="192.0.2.92")
        with a, b:
            a.join()
            b.join()
            a.expect("matched")
            b.expect("matched")
    shutil.move(settings.keys_dir, tmp_path / "keys-elsewhere")
    with pytest.raises(DataDirError, match="refusing to make new keys"):
        initialise(settings)
    assert not settings.keys_dir.exists()


def test_a_second_server_on_the_same_data_directory_is_refused(tmp_path: Path) -> None:
    """A second `serve` on a data directory in use exits with a clear error and does not end
    the running server's live chats."""
    data_dir = tmp_path / "data"
    with serve_in_process(data_dir, env=TEST_SERVER_ENV) as server:
        a = ChatClient(server.ws_url, forwarded_for="192.0.2.93")
        b = ChatClient(server.ws_url, forwarded_for="192.0.2.94")
        with a, b:
            a.join()
            b.join()
            a.expect("matched")
            b.expect("matched")
            second = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "logwarden",
                    "serve",
                    "--data-dir",
                    str(data_dir),
                    "--port",
                    str(free_port()),
                ],
                capture_output=True,
                text=True,
                timeout=60,
                env={**os.environ, **TEST_SERVER_ENV},
                check=False,
            )
            assert second.returncode == 1
            assert "another `logwarden serve` is using" in second.stderr
            a.send("message", text="still chatting")
            assert b.expect("message")["text"] == "still chatting"
