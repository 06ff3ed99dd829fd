"""The ``logwarden`` command. The only place that prints or exits."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from logwarden.config import Settings, load_settings
from logwarden.errors import LogwardenError
from logwarden.store import SqlStore

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Anonymous stranger chat with a safe session log.",
)
sessions_app = typer.Typer(
    no_args_is_help=True, help="Read the session log (administrators, on the host)."
)
app.add_typer(sessions_app, name="sessions")
retention_app = typer.Typer(no_args_is_help=True, help="Check retention (docs/retention.md).")
app.add_typer(retention_app, name="retention")

out = Console(soft_wrap=True)  # a transcript line stays one line, also in a pipe
err = Console(stderr=True, soft_wrap=True)  # no wrapping inside paths and commands

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="LOGWARDEN_DATA_DIR",
        help="Data directory (database, keys).",
        show_default=False,
    ),
]
AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Act as if it were this time (ISO 8601, UTC unless it says otherwise), for drills "
        "on a copy of a data directory.",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", envvar="LOGWARDEN_CONFIG", help="TOML configuration file.", show_default=False
    ),
]


def _settings(config: Path | None, **overrides: Any) -> Settings:
    # LOGWARDEN_DATA_DIR reaches us both through typer's envvar and the environment; same value.
    return load_settings(config_file=config, environ=os.environ, overrides=overrides)


def _fail(exc: LogwardenError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc.diagnostics()}", highlight=False)
    return typer.Exit(code=1)


@app.command()
def init(data_dir: DataDirOption = None, config: ConfigOption = None) -> None:
    """Create the data directory, its key file and database (owner-only); safe to repeat."""
    from logwarden.datadir import initialise

    os.umask(0o077)
    try:
        settings = _settings(config, data_dir=data_dir)
        created = initialise(settings)
    except LogwardenError as exc:
        raise _fail(exc) from None
    verb = "initialised" if created else "already initialised"
    out.print(f"{verb}: {settings.data_dir.resolve()}", highlight=False)


@app.command()
def serve(
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on [default: 127.0.0.1].", show_default=False),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on [default: 8000].", show_default=False)
    ] = None,
) -> None:
    """Serve the chat page and the chat on HOST:PORT."""
    import uvicorn

    from logwarden.chat.app import create_app
    from logwarden.chat.transport import BackpressuredWebSocket, handshake_limited_http
    from logwarden.datadir import initialise, is_initialised, lock_for_serving
    from logwarden.logging_setup import log_config

    os.umask(0o077)  # everything the server creates (WAL, journal) is the owner's alone
    try:
        settings = _settings(config, data_dir=data_dir, host=host, port=port)
        if not is_initialised(settings):
            initialise(settings)
            err.print(f"initialised {settings.data_dir.resolve()}", highlight=False)
        lock_for_serving(settings)  # its descriptor stays open, and locked, until we exit
        application = create_app(settings)
        pseudonym = application.state.vault.pseudonym
    except LogwardenError as exc:
        raise _fail(exc) from None
    server = uvicorn.Server(
        uvicorn.Config(
            application,
            host=settings.host,
            port=settings.port,
            http=handshake_limited_http(settings.chat.handshake_timeout),
            ws=BackpressuredWebSocket,
            log_config=log_config(level=settings.log_level, pseudonym=pseudonym),
            proxy_headers=False,  # X-Forwarded-For is ours to judge (chat/addresses.py)
            server_header=False,
            ws_max_size=settings.chat.transport_max_bytes,
            ws_per_message_deflate=False,  # chat frames are small; compression only costs CPU
            timeout_graceful_shutdown=10,
        )
    )
    # Only uvicorn knows it is shutting down when it closes every connection with 1012; a
    # client can send 1012 too, so the chat asks rather than trusting the code.
    application.state.chat.is_shutting_down = lambda: server.should_exit
    if not settings.allowed_origins and settings.host not in ("127.0.0.1", "::1", "localhost"):
        err.print(
            "note: allowed_origins is empty, so browsers reach the chat only by IP address;"
            " list the page's public origin (e.g. https://chat.example.org) to serve it under"
            " a domain name (docs/protocol.md, Origin)",
            highlight=False,
        )
    # uvicorn's own "running on" line goes through the log filter, which masks every address.
    err.print(
        f"logwarden serving on http://{settings.host}:{settings.port}"
        f" (data in {settings.data_dir.resolve()})",
        highlight=False,
    )
    server.run()


@sessions_app.command("list")
def sessions_list(
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    limit: Annotated[int, typer.Option(min=1, help="How many sessions.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Recent sessions, newest first: metadata only, nothing decrypted."""
    try:
        store = _open_store(_settings(config, data_dir=data_dir))
        summaries = store.recent_sessions(limit=limit)
        store.close()
    except LogwardenError as exc:
        raise _fail(exc) from None
    if as_json:
        for s in summaries:
            print(json.dumps(_summary_dict(s)))
        return
    table = Table("session", "started (UTC)", "length", "ended", "messages", "reports")
    for s in summaries:
        duration = "ongoing" if s.ended_at is None else f"{(s.ended_at - s.started_at) / 1000:.1f}s"
        table.add_row(
            s.id,
            _utc(s.started_at, seconds=True),
            duration,
            s.end_reason or "",
            str(s.message_count),
            str(s.report_count),
        )
    # Wide enough for whole ids and times even in a pipe, where Rich would assume 80 columns.
    Console(width=max(out.width, 110)).print(table)


@sessions_app.command("show")
def sessions_show(
    session_id: Annotated[str, typer.Argument(help="Session id, from `sessions list`.")],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="The transcript as JSON.")] = False,
) -> None:
    """The decrypted transcript of one session."""
    from logwarden.datadir import open_keystore, open_vault
    from logwarden.transcripts import open_transcript

    try:
        settings = _settings(config, data_dir=data_dir)
        store = _open_store(settings)
        record = store.session(session_id)
        store.close()
        if record is None:
            err.print(f"[bold red]error:[/] no session {session_id!r}", highlight=False)
            raise typer.Exit(code=1)
        keystore = open_keystore(settings)
        try:
            transcript = open_transcript(record, open_vault(settings, keystore))
        finally:
            keystore.close()
    except LogwardenError as exc:
        raise _fail(exc) from None
    if as_json:
        print(json.dumps(transcript.as_dict(), ensure_ascii=False, indent=2))
        return
    slot_name = {0: "A", 1: "B"}
    out.print(f"[bold]session {transcript.session_id}[/]", highlight=False)
    ended = (
        "ongoing"
        if transcript.ended_at is None
        else f"{_utc(transcript.ended_at)} ({transcript.end_reason})"
    )
    out.print(f"started {_utc(transcript.started_at)}, ended {ended}", highlight=False)
    if transcript.held_at is not None:
        out.print(
            f"held since {_utc(transcript.held_at)}: {_inert(transcript.hold_reason or '')}",
            markup=False,
            highlight=False,
        )
    if transcript.reported_at is not None:
        out.print(f"reported class since {_utc(transcript.reported_at)}", highlight=False)
    interests = (
        _DESTROYED
        if transcript.interests is None
        else ", ".join(transcript.interests) or "(random match)"
    )
    out.print(f"shared interests: {_inert(interests)}", markup=False, highlight=False)
    for p in transcript.participants:
        out.print(
            f"{slot_name[p['slot']]}: {p['ip'] or _DESTROYED}  (pseudonym {p['ip_pseudonym']})",
            markup=False,
            highlight=False,
        )
    for m in transcript.messages:
        out.print(
            f"{_utc(m['at'])}  {slot_name[m['slot']]}: ",
            end="",
            highlight=False,
        )
        out.print(_inert(m["text"] or _DESTROYED), markup=False, highlight=False)
    for r in transcript.reports:
        out.print(
            f"report by {slot_name[r['reporter_slot']]} at {_utc(r['at'])}: {r['reason']}",
            highlight=False,
        )
        if r["comment"]:
            out.print(f"  {_inert(r['comment'])}", markup=False, highlight=False)


@sessions_app.command("hold")
def sessions_hold(
    session_id: Annotated[str, typer.Argument(help="Session id.")],
    reason: Annotated[str, typer.Option(help="Why (a case or order reference).")],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Place a legal hold: everything of the session is kept until released."""
    reason = reason.strip()
    if not reason or len(reason) > 500:
        err.print("[bold red]error:[/] --reason must be 1 to 500 characters", highlight=False)
        raise typer.Exit(code=2)
    with _retention(config, data_dir, None) as retention:
        state = retention.hold(session_id, reason=reason)
    _require_session(state, session_id)
    out.print(f"held {session_id}", highlight=False)


@sessions_app.command("release")
def sessions_release(
    session_id: Annotated[str, typer.Argument(help="Session id.")],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Release a legal hold: the session's own retention applies again (what has expired
    meanwhile is destroyed now)."""
    with _retention(config, data_dir, None) as retention:
        state = retention.release(session_id)
    _require_session(state, session_id)
    out.print(f"released {session_id}", highlight=False)


@sessions_app.command("flag")
def sessions_flag(
    session_id: Annotated[str, typer.Argument(help="Session id.")],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Move a session to the reported class, as a report or a safety flag does."""
    with _retention(config, data_dir, None) as retention:
        state = retention.flag(session_id)
    _require_session(state, session_id)
    out.print(f"flagged {session_id}: kept in the reported class", highlight=False)


@app.command()
def purge(
    data_dir: DataDirOption = None, config: ConfigOption = None, as_of: AsOfOption = None
) -> None:
    """Destroy every key whose retention has passed, then the rows they sealed."""
    from rich.progress import Progress, SpinnerColumn, TextColumn

    with (
        _retention(config, data_dir, as_of) as retention,
        Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err) as bar,
    ):
        task = bar.add_task("purging", total=None)
        summary = retention.purge(progress=lambda step: bar.update(task, description=step))
    table = Table("destroyed or deleted", "count", title=f"purge as of {_utc(summary.as_of)}")
    for cls, count in sorted(summary.buckets_destroyed.items()):
        table.add_row(f"bucket keys ({cls})", str(count))
    table.add_row("data keys", str(summary.data_keys_destroyed))
    table.add_row("message rows", str(summary.messages_deleted))
    table.add_row("address rows", str(summary.addresses_deleted))
    table.add_row("sessions (metadata)", str(summary.sessions_deleted))
    table.add_row("sessions erased on request", str(summary.sessions_erased))
    table.add_row("key-encryption key rotated", "yes" if summary.kek_rotated else "no")
    out.print(table)
    if not summary.wal_truncated:
        err.print(
            "warning: a reader kept a WAL (keystore or log) from being emptied; the next purge "
            "empties it",
            highlight=False,
        )


@retention_app.command("check")
def retention_check(
    data_dir: DataDirOption = None, config: ConfigOption = None, as_of: AsOfOption = None
) -> None:
    """List, per class, anything kept past its retention and any key that should be gone.
    Exits 1 if there is any."""
    with _retention(config, data_dir, as_of) as retention:
        findings = retention.check()
    if not findings:
        out.print("retention check: nothing is kept past its retention", highlight=False)
        return
    table = Table("class", "finding", "count", title="kept past retention")
    for finding in findings:
        table.add_row(finding.cls, finding.what, str(finding.count))
    out.print(table)
    raise typer.Exit(code=1)


@contextmanager
def _retention(config: Path | None, data_dir: Path | None, as_of: str | None) -> Iterator[Any]:
    """The data directory's retention service, at ``as_of`` or now; errors end the command."""
    from logwarden.clock import FakeClock, SystemClock
    from logwarden.datadir import open_keystore, open_retention

    try:
        settings = _settings(config, data_dir=data_dir)
        clock = SystemClock() if as_of is None else FakeClock(_parse_time(as_of))
        store = _open_store(settings)
        keystore = open_keystore(settings)
        try:
            yield open_retention(settings, store=store, keystore=keystore, clock=clock)
        finally:
            keystore.close()
            store.close()
    except LogwardenError as exc:
        raise _fail(exc) from None


def _parse_time(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO 8601 time (e.g. 2027-01-31 or 2027-01-31T12:00:00Z)",
            param_hint="--as-of",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment.astimezone(UTC)  # years 1 and 9999 with an offset fall outside the calendar
    except OverflowError:
        raise typer.BadParameter(f"{text!r} is out of range", param_hint="--as-of") from None
    return round(moment.timestamp() * 1000)


def _require_session(state: object, session_id: str) -> None:
    if state is None:
        err.print(f"[bold red]error:[/] no session {session_id!r}", highlight=False)
        raise typer.Exit(code=1)


def _open_store(settings: Settings) -> SqlStore:
    from logwarden.datadir import is_initialised, open_store
    from logwarden.errors import DataDirError

    if not is_initialised(settings) or (
        settings.database_url is None and not settings.sqlite_path.exists()
    ):
        raise DataDirError(
            f"{settings.data_dir} is not an initialised data directory (run `logwarden init`)"
        )
    return open_store(settings)


def _summary_dict(summary: Any) -> dict[str, Any]:
    return {field: getattr(summary, field) for field in summary.__slots__}


_DESTROYED = "(destroyed: retention has passed)"

# Control characters (ESC starts terminal escape sequences) and bidirectional overrides in a
# stranger's text must not act on the administrator's terminal: show them as escapes instead.
_INERT = {
    code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    for code in [*range(0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
    if chr(code) not in "\n\t"
}


def _inert(text: str) -> str:
    return text.translate(_INERT)


def _utc(ms: int, *, seconds: bool = False) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    if seconds:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def main() -> None:
    app()
