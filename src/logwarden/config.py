"""Settings: defaults, then an optional TOML file, then ``LOGWARDEN_*`` variables, then flags.

Read once at start-up into a frozen ``Settings`` that is passed in explicitly; nothing reads
``os.environ`` afterwards. Nested keys use ``__`` in variable names:
``LOGWARDEN_CHAT__MAX_MESSAGE_CHARS=500`` is ``[chat] max_message_chars = 500``. List values
in variables are comma-separated. An unknown key or variable is an error, so a typo never
silently leaves a limit at its default.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from logwarden.errors import ConfigError

__all__ = [
    "AuditSettings",
    "ChatSettings",
    "RecorderSettings",
    "RetentionSettings",
    "SafetySettings",
    "Settings",
    "load_settings",
]

ENV_PREFIX = "LOGWARDEN_"
# Variables with the prefix that are not settings: where the file is, the test suite's switch,
# and who is acting (the CLI's --operator).
_NOT_SETTINGS = frozenset({"LOGWARDEN_CONFIG", "LOGWARDEN_REQUIRE_SERVICES", "LOGWARDEN_OPERATOR"})


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class ChatSettings(_Section):
    max_message_chars: int = Field(1000, ge=1, le=10_000)
    max_frame_bytes: int = Field(16 * 1024, ge=256)  # bytes; over this: error frame
    transport_max_bytes: int = Field(64 * 1024, ge=1024)  # bytes; over this: close 1009
    messages_per_second: float = Field(5.0, gt=0)
    message_burst: int = Field(10, ge=1)
    frames_per_second: float = Field(30.0, gt=0)  # every frame type counts here
    frame_burst: int = Field(60, ge=1)
    abuse_error_limit: int = Field(20, ge=1)  # errors within abuse_window before close 1008
    abuse_window: float = Field(10.0, gt=0)  # seconds
    max_interests: int = Field(10, ge=0, le=50)
    max_interest_chars: int = Field(32, ge=1, le=100)
    interest_fallback: float = Field(5.0, ge=0)  # seconds before interests give way to random
    heartbeat_interval: float = Field(15.0, gt=0)  # seconds between pings
    heartbeat_timeout: float = Field(45.0, gt=0)  # seconds of silence before a peer is dead
    report_window: float = Field(300.0, ge=0)  # seconds after a chat ends that it can be reported
    outbound_queue: int = Field(256, ge=8)  # frames queued for a client that is slow to read
    handshake_timeout: float = Field(10.0, gt=0)  # seconds to send a whole request head

    @model_validator(mode="after")
    def _consistent(self) -> ChatSettings:
        if self.heartbeat_timeout <= self.heartbeat_interval:
            raise ValueError("heartbeat_timeout must be longer than heartbeat_interval")
        if self.max_frame_bytes > self.transport_max_bytes:
            raise ValueError("max_frame_bytes must not exceed transport_max_bytes")
        return self


class RecorderSettings(_Section):
    commit_window_ms: float = Field(1.0, ge=0, le=100)  # wait this long for more to batch
    max_batch: int = Field(1024, ge=1)
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    # Record in a process beside the server's (recorder/process.py): the sealing and writing
    # then take nothing from the event loop's GIL. False: in the server's own process.
    process: bool = True


class RetentionSettings(_Section):
    session_days: int = Field(30, ge=1)  # message text of ordinary sessions
    raw_ip_days: int = Field(7, ge=1)
    metadata_days: int = Field(90, ge=1)  # IP pseudonyms and session times
    reported_days: int = Field(365, ge=1)  # the US REPORT Act's preservation period
    purge_interval_minutes: float = Field(60.0, gt=0, le=24 * 60)  # the server's purge schedule
    kek_rotation_days: int = Field(7, ge=1)  # at the latest; every purge that destroys rotates
    # Receipts say a chat is reported or held, and until when. False: one neutral answer
    # ("kept for safety or legal reasons"), for deployments that must not tip anyone off.
    receipts_disclose_preservation: bool = True


class SafetySettings(_Section):
    # Warn a sender before personal information leaves (docs/safety.md).
    warn_personal_info: bool = True
    # Score each conversation for grooming, sextortion, solicitation, harassment and a
    # disclosed minor, and act on the policy below.
    score_risk: bool = True
    risk_medium: float = Field(30.0, gt=0, lt=100)  # score points
    risk_high: float = Field(70.0, gt=0, le=100)
    end_chats: bool = True  # end a chat where the policy says (sextortion; a minor at high)
    # Score in a process of its own, beside the server's (safety/worker.py): the event loop
    # then only hands messages over. False: in the server's process.
    risk_process: bool = True
    safety_message: str | None = Field(None, min_length=1, max_length=1000)  # None: the default

    @model_validator(mode="after")
    def _ordered(self) -> SafetySettings:
        if self.risk_medium >= self.risk_high:
            raise ValueError("risk_medium must be below risk_high")
        return self


class AuditSettings(_Section):
    # A signed checkpoint at most this often while the log grows (Tessera checkpoints every
    # 10 s; we aim for a record to be covered within a second).
    checkpoint_interval_ms: int = Field(500, ge=10, le=60_000)  # ms
    checkpoint_file: Path | None = None  # each new checkpoint replaces this file's content
    checkpoint_url: str | None = None  # each new checkpoint is POSTed here, for a witness
    # The log's name in its checkpoints, chosen at `init` (default:
    # <hostname>/logwarden/<16 random hex digits>, so that no two logs share a name).
    origin: str | None = None


class Settings(_Section):
    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    # PostgreSQL instead of the SQLite file in data_dir: postgresql://user@host/db. A secret:
    # never printed (it may hold a password). The keys stay in data_dir either way.
    database_url: SecretStr | None = None
    # Origins allowed to open /ws besides the page's own, e.g. "https://chat.example.org".
    allowed_origins: list[str] = Field(default_factory=list)
    # Proxies whose X-Forwarded-For is believed (addresses or CIDR networks).
    trusted_proxies: list[str] = Field(default_factory=list)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    chat: ChatSettings = ChatSettings()
    recorder: RecorderSettings = RecorderSettings()
    retention: RetentionSettings = RetentionSettings()
    audit: AuditSettings = AuditSettings()
    safety: SafetySettings = SafetySettings()
    # Measurement only (bench/relay.py): relays without logging. Never set in production.
    unsafe_bench_no_log: bool = False

    _split = field_validator("allowed_origins", "trusted_proxies", mode="before")(_split_commas)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "logwarden.db"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"


def load_settings(
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str],
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings from defaults, ``config_file``, ``environ`` and ``overrides``.

    Later sources win. Raises ``ConfigError`` naming the key, the value and its source.
    """
    merged: dict[str, Any] = {}
    origin: dict[tuple[str, ...], str] = {}
    path = config_file or (
        Path(environ["LOGWARDEN_CONFIG"]) if "LOGWARDEN_CONFIG" in environ else None
    )
    if path is not None:
        _merge(merged, _read_toml(path), origin, source=str(path))
    _merge(merged, _env_tree(environ), origin, source="environment")
    _merge(merged, {k: v for k, v in (overrides or {}).items() if v is not None}, origin, "flags")
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin)) from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _env_tree(environ: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _NOT_SETTINGS:
            continue
        keys = name[len(ENV_PREFIX) :].lower().split("__")
        node = tree
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{name}: {key!r} is not a section")
            node = child
        node[keys[-1]] = value
    return tree


def _merge(
    into: dict[str, Any],
    new: Mapping[str, Any],
    origin: dict[tuple[str, ...], str],
    source: str,
    prefix: tuple[str, ...] = (),
) -> None:
    for key, value in new.items():
        where = (*prefix, key)
        if isinstance(value, Mapping) and isinstance(into.get(key, {}), dict):
            _merge(into.setdefault(key, {}), value, origin, source, where)
        else:
            into[key] = value
            origin[where] = source


def _describe(exc: ValidationError, origin: Mapping[tuple[str, ...], str]) -> str:
    lines = []
    for error in exc.errors():
        where = tuple(str(part) for part in error["loc"])
        key = ".".join(where)
        source = _source_of(where, origin)
        if error["type"] == "extra_forbidden":
            lines.append(f"unknown setting {key!r} (from {source})")
        else:
            value = "'**********'" if key == "database_url" else repr(error.get("input"))
            lines.append(f"setting {key!r} = {value} (from {source}): {error['msg']}")
    return "invalid configuration: " + "; ".join(lines)


def _source_of(where: tuple[str, ...], origin: Mapping[tuple[str, ...], str]) -> str:
    """Where a key (or, for a section, the keys inside it) came from."""
    for n in range(len(where), 0, -1):
        if where[:n] in origin:
            return origin[where[:n]]
    inside = sorted({source for key, source in origin.items() if key[: len(where)] == where})
    return " and ".join(inside) or "default"
