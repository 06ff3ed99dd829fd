"""Settings: defaults, then a TOML file, then LOGWARDEN_* variables, then flags."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from logwarden.config import Settings, load_settings
from logwarden.errors import ConfigError, LogwardenError


def write_toml(tmp_path: Path, text: str, name: str = "logwarden.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def config_error(**kwargs: object) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(**kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, LogwardenError)
    return str(info.value)


class TestDefaults:
    def test_no_sources_gives_defaults(self) -> None:
        """Without a file, variables or flags, every setting has its default."""
        settings = load_settings(environ={})
        assert settings == Settings()
        assert settings.chat.max_message_chars == 1000
        assert settings.chat.max_frame_bytes == 16 * 1024
        assert settings.port == 8000
        assert settings.host == "127.0.0.1"
        assert settings.data_dir == Path("data")
        assert settings.trusted_proxies == []
        assert settings.allowed_origins == []

    def test_derived_paths(self) -> None:
        """The database and the key directory live in the data directory."""
        settings = load_settings(environ={}, overrides={"data_dir": Path("/srv/lw")})
        assert settings.sqlite_path == Path("/srv/lw/logwarden.db")
        assert settings.keys_dir == Path("/srv/lw/keys")

    def test_settings_are_frozen(self) -> None:
        """Loaded settings cannot be changed afterwards."""
        settings = load_settings(environ={})
        with pytest.raises(ValidationError):
            settings.port = 1  # type: ignore[misc]
        with pytest.raises(ValidationError):
            settings.chat.max_message_chars = 5  # type: ignore[misc]

    def test_unrelated_variables_are_ignored(self) -> None:
        """Variables without the LOGWARDEN_ prefix, and the non-setting ones, are ignored."""
        environ = {
            "HOME": "/root",
            "PORT": "1",
            "LOGWARDENPORT": "2",
            "logwarden_port": "3",
            "LOGWARDEN_REQUIRE_SERVICES": "1",
        }
        assert load_settings(environ=environ).port == 8000


class TestFile:
    def test_values_from_toml(self, tmp_path: Path) -> None:
        """Values in the TOML file, top level and in sections, override the defaults."""
        path = write_toml(
            tmp_path,
            'port = 9000\nallowed_origins = ["https://chat.example"]\n'
            "[chat]\nmax_message_chars = 500\ninterest_fallback = 2.5\n"
            '[recorder]\nsqlite_synchronous = "NORMAL"\n',
        )
        settings = load_settings(config_file=path, environ={})
        assert settings.port == 9000
        assert settings.allowed_origins == ["https://chat.example"]
        assert settings.chat.max_message_chars == 500
        assert settings.chat.interest_fallback == 2.5
        assert settings.chat.max_interests == 10  # untouched keys keep their defaults
        assert settings.recorder.sqlite_synchronous == "NORMAL"

    def test_file_named_by_variable(self, tmp_path: Path) -> None:
        """LOGWARDEN_CONFIG names the file when no file is passed."""
        path = write_toml(tmp_path, "port = 9001\n")
        assert load_settings(environ={"LOGWARDEN_CONFIG": str(path)}).port == 9001

    def test_file_argument_wins_over_variable(self, tmp_path: Path) -> None:
        """An explicit config_file is read instead of the one LOGWARDEN_CONFIG names."""
        given = write_toml(tmp_path, "port = 9002\n", "given.toml")
        named = write_toml(tmp_path, "port = 9003\n", "named.toml")
        settings = load_settings(config_file=given, environ={"LOGWARDEN_CONFIG": str(named)})
        assert settings.port == 9002

    def test_missing_file(self, tmp_path: Path) -> None:
        """A config file that does not exist is a ConfigError naming it."""
        path = tmp_path / "nope.toml"
        message = config_error(config_file=path, environ={})
        assert str(path) in message

    def test_directory_instead_of_file(self, tmp_path: Path) -> None:
        """A directory given as the config file is a ConfigError naming it."""
        message = config_error(config_file=tmp_path, environ={})
        assert str(tmp_path) in message

    def test_path_that_cannot_be_opened(self, tmp_path: Path) -> None:
        """A config path that cannot be opened (its parent is a file) is a ConfigError naming it."""
        path = write_toml(tmp_path, "port = 1\n") / "nested.toml"
        message = config_error(config_file=path, environ={})
        assert str(path) in message

    @pytest.mark.parametrize(
        "text", ["port = ", "[chat\nmax_message_chars = 1", "port = 1\nport = 2\n", "= 3"]
    )
    def test_invalid_toml(self, tmp_path: Path, text: str) -> None:
        """A file that is not valid TOML is a ConfigError naming the file."""
        path = write_toml(tmp_path, text)
        message = config_error(config_file=path, environ={})
        assert str(path) in message
        assert "TOML" in message

    def test_file_not_utf8(self, tmp_path: Path) -> None:
        """A file that is not UTF-8 is a ConfigError naming the file, not a UnicodeDecodeError."""
        path = tmp_path / "latin1.toml"
        path.write_bytes('host = "café"\n'.encode("latin-1"))
        message = config_error(config_file=path, environ={})
        assert str(path) in message


class TestEnvironment:
    def test_nested_variable(self) -> None:
        """LOGWARDEN_CHAT__MAX_MESSAGE_CHARS sets [chat] max_message_chars, cast to int."""
        environ = {"LOGWARDEN_CHAT__MAX_MESSAGE_CHARS": "500"}
        assert load_settings(environ=environ).chat.max_message_chars == 500

    def test_top_level_and_typed_values(self) -> None:
        """Variables are cast to each setting's type."""
        environ = {
            "LOGWARDEN_PORT": "9100",
            "LOGWARDEN_DATA_DIR": "/srv/lw",
            "LOGWARDEN_UNSAFE_BENCH_NO_LOG": "false",
            "LOGWARDEN_CHAT__ABUSE_WINDOW": "2.5",
            "LOGWARDEN_LOG_LEVEL": "debug",
        }
        settings = load_settings(environ=environ)
        assert settings.port == 9100
        assert settings.data_dir == Path("/srv/lw")
        assert settings.unsafe_bench_no_log is False
        assert settings.chat.abuse_window == 2.5
        assert settings.log_level == "debug"

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("127.0.0.1", ["127.0.0.1"]),
            ("127.0.0.1,192.0.2.0/24", ["127.0.0.1", "192.0.2.0/24"]),
            (" 127.0.0.1 , 2001:db8::/32 ,, ", ["127.0.0.1", "2001:db8::/32"]),
            ("", []),
        ],
    )
    def test_comma_separated_lists(self, value: str, expected: list[str]) -> None:
        """List settings are comma-separated in variables, trimmed, empty items dropped."""
        settings = load_settings(
            environ={"LOGWARDEN_TRUSTED_PROXIES": value, "LOGWARDEN_ALLOWED_ORIGINS": value}
        )
        assert settings.trusted_proxies == expected
        assert settings.allowed_origins == expected

    def test_names_are_case_insensitive_after_the_prefix(self) -> None:
        """The part after LOGWARDEN_ may be written in any case."""
        assert load_settings(environ={"LOGWARDEN_chat__Max_Message_Chars": "7"}).chat == (
            load_settings(environ={"LOGWARDEN_CHAT__MAX_MESSAGE_CHARS": "7"}).chat
        )

    def test_environ_is_the_only_environment_read(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Only the environ mapping passed in is read, not os.environ."""
        monkeypatch.setenv("LOGWARDEN_PORT", "1234")
        assert load_settings(environ={}).port == 8000


class TestPrecedence:
    def test_flags_over_environment_over_file_over_default(self, tmp_path: Path) -> None:
        """Each later source overrides the earlier ones, key by key."""
        path = write_toml(tmp_path, 'port = 1001\nhost = "192.0.2.1"\nlog_level = "error"\n')
        environ = {"LOGWARDEN_PORT": "1002", "LOGWARDEN_HOST": "192.0.2.2"}
        settings = load_settings(config_file=path, environ=environ, overrides={"port": 1003})
        assert settings.port == 1003  # flag
        assert settings.host == "192.0.2.2"  # environment
        assert settings.log_level == "error"  # file
        assert settings.data_dir == Path("data")  # default

    def test_environment_over_file_within_a_section(self, tmp_path: Path) -> None:
        """A variable overrides one key of a section without dropping the file's other keys."""
        path = write_toml(tmp_path, "[chat]\nmax_message_chars = 500\nmax_interests = 3\n")
        environ = {"LOGWARDEN_CHAT__MAX_MESSAGE_CHARS": "600"}
        settings = load_settings(config_file=path, environ=environ)
        assert settings.chat.max_message_chars == 600
        assert settings.chat.max_interests == 3

    def test_flag_none_means_not_given(self, tmp_path: Path) -> None:
        """A flag passed as None does not override the other sources."""
        settings = load_settings(
            environ={"LOGWARDEN_PORT": "1002"}, overrides={"port": None, "host": None}
        )
        assert settings.port == 1002
        assert settings.host == "127.0.0.1"

    def test_environment_list_replaces_file_list(self, tmp_path: Path) -> None:
        """A list in a variable replaces the file's list rather than extending it."""
        path = write_toml(tmp_path, 'trusted_proxies = ["192.0.2.1", "192.0.2.2"]\n')
        environ = {"LOGWARDEN_TRUSTED_PROXIES": "192.0.2.3"}
        settings = load_settings(config_file=path, environ=environ)
        assert settings.trusted_proxies == ["192.0.2.3"]


class TestUnknownKeys:
    def test_unknown_key_in_file(self, tmp_path: Path) -> None:
        """An unknown key in the file is a ConfigError naming the key and the file."""
        path = write_toml(tmp_path, "[chat]\nmax_mesage_chars = 5\n")
        message = config_error(config_file=path, environ={})
        assert "chat.max_mesage_chars" in message
        assert str(path) in message

    def test_unknown_top_level_key_in_file(self, tmp_path: Path) -> None:
        """An unknown top-level key in the file is named with the file."""
        path = write_toml(tmp_path, "prot = 8000\n")
        message = config_error(config_file=path, environ={})
        assert "'prot'" in message
        assert str(path) in message

    def test_unknown_section_in_file(self, tmp_path: Path) -> None:
        """An unknown section in the file is named with the file."""
        path = write_toml(tmp_path, "[chatt]\nmax_message_chars = 5\n")
        message = config_error(config_file=path, environ={})
        assert "chatt" in message
        assert str(path) in message

    def test_unknown_variable(self) -> None:
        """An unknown LOGWARDEN_ variable is a ConfigError naming the key and the environment."""
        message = config_error(environ={"LOGWARDEN_CHAT__MAX_MESAGE_CHARS": "5"})
        assert "chat.max_mesage_chars" in message
        assert "environment" in message

    def test_unknown_top_level_variable(self) -> None:
        """A misspelt top-level variable is refused too."""
        message = config_error(environ={"LOGWARDEN_PROT": "8000"})
        assert "'prot'" in message
        assert "environment" in message

    def test_variable_below_a_plain_value(self) -> None:
        """A variable that nests under a non-section key is a ConfigError."""
        config_error(environ={"LOGWARDEN_PORT__X": "1"})

    def test_every_problem_is_reported(self, tmp_path: Path) -> None:
        """All invalid keys are reported at once, each with its source."""
        path = write_toml(tmp_path, "bogus = 1\n")
        message = config_error(config_file=path, environ={"LOGWARDEN_CHAT__NOPE": "1"})
        assert "bogus" in message
        assert "chat.nope" in message
        assert str(path) in message
        assert "environment" in message


class TestBadValues:
    def test_bad_value_in_variable(self) -> None:
        """A value that does not fit is a ConfigError naming key, value and source."""
        message = config_error(environ={"LOGWARDEN_CHAT__MAX_MESSAGE_CHARS": "lots"})
        assert "chat.max_message_chars" in message
        assert "'lots'" in message
        assert "environment" in message

    def test_bad_value_in_file(self, tmp_path: Path) -> None:
        """A bad value in the file names the file as its source."""
        path = write_toml(tmp_path, "[chat]\nmax_message_chars = 0\n")
        message = config_error(config_file=path, environ={})
        assert "chat.max_message_chars" in message
        assert "0" in message
        assert str(path) in message

    def test_bad_value_in_flags(self) -> None:
        """A bad flag value names the flags as its source."""
        message = config_error(environ={}, overrides={"port": 70000})
        assert "'port'" in message
        assert "70000" in message
        assert "flags" in message

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("LOGWARDEN_PORT", "-1"),
            ("LOGWARDEN_PORT", "65536"),
            ("LOGWARDEN_CHAT__MAX_MESSAGE_CHARS", "10001"),
            ("LOGWARDEN_CHAT__MAX_FRAME_BYTES", "255"),
            ("LOGWARDEN_CHAT__MESSAGES_PER_SECOND", "0"),
            ("LOGWARDEN_LOG_LEVEL", "verbose"),
            ("LOGWARDEN_RECORDER__SQLITE_SYNCHRONOUS", "OFF"),
            ("LOGWARDEN_RECORDER__COMMIT_WINDOW_MS", "101"),
            ("LOGWARDEN_RETENTION__SESSION_DAYS", "0"),
            ("LOGWARDEN_CHAT__MAX_MESSAGE_CHARS", ""),
        ],
    )
    def test_out_of_range(self, name: str, value: str) -> None:
        """Values outside a setting's range are refused with the value quoted."""
        message = config_error(environ={name: value})
        assert repr(value) in message
        assert "environment" in message

    def test_later_source_fixes_earlier_bad_value(self, tmp_path: Path) -> None:
        """Only the final value is validated: a variable can correct a bad file value."""
        path = write_toml(tmp_path, "port = 99999\n")
        settings = load_settings(config_file=path, environ={"LOGWARDEN_PORT": "8080"})
        assert settings.port == 8080


class TestDatabaseUrl:
    def test_database_url_is_never_shown(self) -> None:
        """The database URL (it may hold a password) is masked in the settings' repr."""
        settings = load_settings(
            environ={"LOGWARDEN_DATABASE_URL": "postgresql://lw:hunter2@db.example/lw"}
        )
        assert settings.database_url is not None
        assert settings.database_url.get_secret_value().endswith("@db.example/lw")
        assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)

    def test_default_is_sqlite(self) -> None:
        """Without a database URL the log is the SQLite file in the data directory."""
        assert load_settings(environ={}).database_url is None
