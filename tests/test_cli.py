"""The `logwarden` command as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from logwarden import cli
from logwarden.testing import serve_in_process


def logwarden(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LOGWARDEN_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "logwarden", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environment,
    )


class TestInit:
    def test_init_creates_an_owner_only_data_dir(self, tmp_path: Path) -> None:
        """`init` makes the directory (0700), the key file (0600) and the database (0600)."""
        data_dir = tmp_path / "data"
        result = logwarden("init", "--data-dir", str(data_dir))
        assert result.returncode == 0, result.stderr
        assert "initialised" in result.stdout
        assert data_dir.stat().st_mode & 0o777 == 0o700
        assert (data_dir / "keys").stat().st_mode & 0o777 == 0o700
        assert (data_dir / "keys" / "vault.json").stat().st_mode & 0o777 == 0o600
        assert (data_dir / "logwarden.db").stat().st_mode & 0o777 == 0o600

    def test_init_twice_keeps_the_keys(self, tmp_path: Path) -> None:
        """Running `init` again changes nothing: replacing the key would orphan the log."""
        data_dir = tmp_path / "data"
        logwarden("init", "--data-dir", str(data_dir))
        key = (data_dir / "keys" / "vault.json").read_bytes()
        again = logwarden("init", "--data-dir", str(data_dir))
        assert again.returncode == 0
        assert "already initialised" in again.stdout
        assert (data_dir / "keys" / "vault.json").read_bytes() == key

    def test_data_dir_from_the_environment(self, tmp_path: Path) -> None:
        """`LOGWARDEN_DATA_DIR` works like `--data-dir`."""
        data_dir = tmp_path / "from-env"
        result = logwarden("init", env={"LOGWARDEN_DATA_DIR": str(data_dir)})
        assert result.returncode == 0, result.stderr
        assert (data_dir / "keys" / "vault.json").exists()

    def test_a_key_file_open_to_others_is_refused(self, tmp_path: Path) -> None:
        """A key file readable by other users stops the server with a message saying the fix."""
        data_dir = tmp_path / "data"
        logwarden("init", "--data-dir", str(data_dir))
        (data_dir / "keys" / "vault.json").chmod(0o644)
        result = logwarden("serve", "--data-dir", str(data_dir))
        assert result.returncode == 1
        assert "chmod 600" in result.stderr


class TestServe:
    def test_serve_initialises_and_serves_the_page(self, tmp_path: Path) -> None:
        """`serve` on a fresh directory initialises it and serves the page with the retention."""
        data_dir = tmp_path / "fresh"
        with serve_in_process(data_dir, env={"LOGWARDEN_RETENTION__SESSION_DAYS": "12"}) as server:
            with urllib.request.urlopen(server.url + "/") as response:  # noqa: S310 - loopback
                page = response.read().decode()
                headers = response.headers
            with urllib.request.urlopen(server.url + "/policy") as response:  # noqa: S310
                policy = response.read().decode()
        assert (data_dir / "keys" / "vault.json").exists()
        assert "12" in page and "{{" not in page
        assert "default-src 'self'" in headers["content-security-policy"]
        assert '"message_text":12' in policy

    def test_bad_configuration_is_a_clear_error(self, tmp_path: Path) -> None:
        """A bad value stops `serve` before it listens, naming the key, value and source."""
        result = logwarden(
            "serve",
            "--data-dir",
            str(tmp_path / "data"),
            env={"LOGWARDEN_CHAT__MAX_MESSAGE_CHARS": "many"},
        )
        assert result.returncode == 1
        assert "chat.max_message_chars" in result.stderr
        assert "'many'" in result.stderr and "environment" in result.stderr

    def test_config_file(self, tmp_path: Path) -> None:
        """A TOML file given with --config is read; an unknown key in it is named."""
        config = tmp_path / "logwarden.toml"
        config.write_text("[chat]\nmax_mesage_chars = 5\n")
        result = logwarden("serve", "--config", str(config), "--data-dir", str(tmp_path / "d"))
        assert result.returncode == 1
        assert "unknown setting 'chat.max_mesage_chars'" in result.stderr
        assert str(config) in result.stderr


class TestStoredValuesForPeople:
    """What the commands print of a stored row, whatever SQLite handed back for it: the store
    checks types, and the formatting does not rely on that."""

    @pytest.mark.parametrize(
        ("value", "shown"),
        [
            (1_764_061_200_000, "2025-11-25 09:00:00"),
            ("abc", "'abc'"),
            (b"A", "b'A'"),
            (1.5, "1.5"),
            (None, "None"),
            (10**20, str(10**20)),
            ("\x1b[2J", "'\\x1b[2J'"),
        ],
        ids=["time", "text", "bytes", "real", "null", "past-9999", "escape"],
    )
    def test_a_time_of_any_type_is_shown(self, value: object, shown: str) -> None:
        """`_when` and `_utc` show a time, and anything that is not one as it is (a TypeError
        for text or bytes before), with control characters inert."""
        assert cli._when(value) == shown
        assert cli._utc(value, seconds=True) == shown

    @pytest.mark.parametrize(
        ("value", "shown"),
        [
            ("message", "message"),
            (b"A", "b'A'"),
            (None, ""),
            (7, "7"),
            ("[bold]x\x1b", "[bold]x\\x1b"),
        ],
        ids=["text", "bytes", "null", "integer", "markup-and-escape"],
    )
    def test_a_cell_shows_any_value_as_text(self, value: object, shown: str) -> None:
        """A table cell takes any stored value (Rich could not render bytes), as plain text:
        no markup, no control character."""
        cell = cli._cell(value)
        assert cell.plain == shown and not cell.spans

    def test_a_key_too_long_for_a_path_is_taken_as_a_key(self) -> None:
        """`_key_text` with 300 characters and no "+": the text itself (OSError "File name too
        long" before)."""
        assert cli._key_text("k" * 300 + "\n") == "k" * 300
