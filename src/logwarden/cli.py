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
from rich.text import Text

from logwarden.config import Settings, load_settings
from logwarden.errors import AuditVerificationError, LogwardenError
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
audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit log (docs/audit.md).")
app.add_typer(audit_app, name="audit")

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
OperatorOption = Annotated[
    str | None,
    typer.Option(
        "--operator",
        envvar="LOGWARDEN_OPERATOR",
        help="Who is acting, for the audit log [default: your user name].",
        show_default=False,
    ),
]
ReasonOption = Annotated[
    str,
    typer.Option(
        "--reason",
        help="Why (a case or ticket reference); kept in the audit log forever, so no personal "
        "data.",
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
    from logwarden.datadir import initialise, lock_for_serving
    from logwarden.logging_setup import log_config

    os.umask(0o077)  # everything the server creates (WAL, journal) is the owner's alone
    try:
        settings = _settings(config, data_dir=data_dir, host=host, port=port)
        # Idempotent: also adds what a data directory made by an earlier version lacks (the
        # audit log's signing key).
        if initialise(settings):
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
            _cell(s.id),
            _utc(s.started_at, seconds=True),
            duration,
            _cell(s.end_reason),
            str(s.message_count),
            str(s.report_count),
        )
    # Wide enough for whole ids and times even in a pipe, where Rich would assume 80 columns.
    Console(width=max(out.width, 110)).print(table)


@sessions_app.command("show")
def sessions_show(
    session_id: Annotated[str, typer.Argument(help="Session id, from `sessions list`.")],
    reason: ReasonOption,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    operator: OperatorOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="The transcript as JSON.")] = False,
) -> None:
    """The decrypted transcript of one session. The read is recorded in the audit log (who,
    which session, why) before anything is decrypted."""
    from logwarden.audit.entries import entry
    from logwarden.clock import SystemClock
    from logwarden.datadir import open_audit, open_keystore, open_vault
    from logwarden.transcripts import open_transcript

    reason, who = _reason(reason), _operator(operator)
    try:
        settings = _settings(config, data_dir=data_dir)
        store = _open_store(settings)
        try:
            record = store.session(session_id)
            if record is None:
                err.print(f"[bold red]error:[/] no session {session_id!r}", highlight=False)
                raise typer.Exit(code=1)
            audit = open_audit(settings, store=store, clock=SystemClock())
            read = entry(
                "read",
                at=audit.now_ms(),
                session_id=session_id,
                by=who,
                what="transcript",
                reason=reason,
            )
            audit.append([read])
            audit.checkpoint()
        finally:
            store.close()
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
    for event in transcript.safety:
        when = _utc(event["at"])
        if event["kind"] == "warning":
            kinds = ", ".join(event.get("kinds", []))
            line = f"safety: {slot_name.get(event['slot'], '?')} was warned at {when} ({kinds}): "
            out.print(line + str(event.get("decision")), markup=False, highlight=False)
        else:
            flags = ", ".join(event.get("flags", [])) or "no flags"
            level, score = event.get("level"), event.get("score")
            out.print(
                f"safety: risk {level} at {when}, score {score} ({flags})",
                markup=False,
                highlight=False,
            )
            for why in event.get("reasons", []):
                who = slot_name.get(int(why.get("sender", -1)), "?")
                out.print(
                    f"  message {why.get('message')} by {who}: {why.get('why')}",
                    markup=False,
                    highlight=False,
                )


@sessions_app.command("hold")
def sessions_hold(
    session_id: Annotated[str, typer.Argument(help="Session id.")],
    reason: ReasonOption,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    operator: OperatorOption = None,
) -> None:
    """Place a legal hold: everything of the session is kept until released."""
    reason, who = _reason(reason), _operator(operator)
    with _retention(config, data_dir, None) as retention:
        state = retention.hold(session_id, reason=reason, by=who)
    _require_session(state, session_id)
    out.print(f"held {session_id}", highlight=False)


@sessions_app.command("release")
def sessions_release(
    session_id: Annotated[str, typer.Argument(help="Session id.")],
    reason: ReasonOption,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    operator: OperatorOption = None,
) -> None:
    """Release a legal hold: the session's own retention applies again (what has expired
    meanwhile is destroyed now). The release is recorded with who and why."""
    reason, who = _reason(reason), _operator(operator)
    with _retention(config, data_dir, None) as retention:
        state = retention.release(session_id, reason=reason, by=who)
    _require_session(state, session_id)
    out.print(f"released {session_id}", highlight=False)


@sessions_app.command("flag")
def sessions_flag(
    session_id: Annotated[str, typer.Argument(help="Session id.")],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    operator: OperatorOption = None,
    reason: Annotated[
        str | None, typer.Option(help="Why; kept in the audit log.", show_default=False)
    ] = None,
) -> None:
    """Move a session to the reported class, as a report or a safety flag does."""
    why = None if reason is None else _reason(reason)
    with _retention(config, data_dir, None) as retention:
        state = retention.flag(session_id, by=_operator(operator), reason=why)
    _require_session(state, session_id)
    out.print(f"flagged {session_id}: kept in the reported class", highlight=False)


@app.command()
def purge(
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    as_of: AsOfOption = None,
    operator: OperatorOption = None,
) -> None:
    """Destroy every key whose retention has passed, then the rows they sealed. Each
    destruction is recorded with who ran the purge and when it really happened: a purge
    --as-of ahead of now is named by `audit verify` as a drill (run drills on a copy)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn

    who = _operator(operator)
    with (
        _retention(config, data_dir, as_of) as retention,
        Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err) as bar,
    ):
        task = bar.add_task("purging", total=None)
        summary = retention.purge(progress=lambda step: bar.update(task, description=step), by=who)
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


@app.command()
def scan(
    source: Annotated[
        Path | None,
        typer.Argument(
            # "\[" is a bracket: Typer reads help as Rich markup, where "[default: …]" is a tag.
            help="A file of messages, one per line, or - \\[default: standard input].",
            show_default=False,
        ),
    ] = None,
    jsonl: Annotated[
        bool,
        typer.Option(
            "--jsonl",
            help="Lines are JSON objects with a `text` field (the default for a file whose "
            "name ends in .jsonl, in any case).",
        ),
    ] = False,
    conversations: Annotated[
        bool,
        typer.Option(
            "--conversations",
            help='Lines are conversations, {"messages": \\[\\[sender, text], ...]}: print each '
            "one's risk score, level, flags and reasons.",
        ),
    ] = False,
) -> None:
    """Run the safety engine outside the chat: one JSON object out per line in (docs/safety.md).

    A line that cannot be read gives {"error": ...} in its place, and the exit status is 1.

    Lines end at LF or CR LF (a lone CR is part of the text); a UTF-8 byte order mark at the
    start is ignored."""
    from logwarden.safety import PiiDetector

    path = None if source is None or str(source) == "-" else source
    as_json = jsonl or conversations or (path is not None and path.suffix.lower() == ".jsonl")
    try:
        failed = _scan_lines(
            _input_lines(path), PiiDetector(), conversations=conversations, as_json=as_json
        )
    except _InputError as exc:
        name = "standard input" if path is None else str(path)
        raise typer.BadParameter(f"cannot read {name}: {exc.reason}") from None
    except BrokenPipeError:
        # The reader left (`| head -1`): end quietly, with the status a shell reports for a
        # command SIGPIPE ended (128 + 13), as other Unix tools do.
        _discard_stdout()
        raise typer.Exit(code=141) from None
    except OSError as exc:
        _discard_stdout()
        err.print(
            f"[bold red]error:[/] could not write the output: {exc.strerror}", highlight=False
        )
        raise typer.Exit(code=1) from None
    if failed:
        raise typer.Exit(code=1)


class _InputError(Exception):
    """Reading the input failed; an ``OSError`` from here is the output's."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _scan_lines(lines: Iterator[str], detector: Any, *, conversations: bool, as_json: bool) -> bool:
    """Write one JSON object per line read; True if a line could not be read."""
    import sys

    from logwarden.safety import score_conversation

    failed = False
    write = sys.stdout.write
    for number, line in enumerate(lines, start=1):
        try:
            if conversations:
                messages = _conversation(line)
                result = score_conversation(messages, detector=detector.detect).as_json()
            else:
                text = _message_text(line) if as_json else line
                result = {"findings": [f.as_json() for f in detector.detect(text)]}
        except ValueError as exc:
            failed = True
            result = {"error": f"line {number}: {exc}"}
        # ASCII escapes: a lone surrogate in a sender's name must not stop the output.
        write(json.dumps(result) + "\n")
    sys.stdout.flush()  # a write error must show here, not in the interpreter's exit
    return failed


def _discard_stdout() -> None:
    """Point standard output at /dev/null, so that the interpreter's last flush of what is
    still buffered neither fails again nor prints a traceback."""
    import sys

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _input_lines(source: Path | None) -> Iterator[str]:
    """The lines of ``source`` (standard input if None), without their line ends.

    Only LF and CR LF end a line (opened with LF as the newline, nothing else ends one): a
    lone CR is part of the text, as in a message that contained one. "utf-8-sig" drops a byte
    order mark at the start, which would otherwise make line 1 no JSON and shift its offsets
    by one; errors="replace" makes a stray byte a character the detector skips, not a crash."""
    import sys

    try:
        stream = (
            open(source, encoding="utf-8-sig", errors="replace", newline="\n")  # noqa: SIM115 - closed below
            if source is not None
            else open(  # noqa: SIM115 - closed below
                sys.stdin.fileno(),
                encoding="utf-8-sig",
                errors="replace",
                newline="\n",
                closefd=False,
            )
        )
        with stream:
            for line in stream:
                line = line.removesuffix("\n")
                yield line.removesuffix("\r")
    except OSError as exc:
        raise _InputError(exc.strerror or str(exc)) from None


def _message_text(line: str) -> str:
    document = _json_object(line)
    text = document.get("text")
    if not isinstance(text, str):
        raise ValueError('no "text" string')
    return text


def _conversation(line: str) -> list[tuple[str, str]]:
    document = _json_object(line)
    messages = document.get("messages")
    if not isinstance(messages, list):
        raise ValueError('no "messages" list')
    pairs = []
    for n, item in enumerate(messages):
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not all(isinstance(part, str) for part in item)
        ):
            raise ValueError(f"message {n} is not [sender, text] (two strings)")
        pairs.append((item[0], item[1]))
    return pairs


def _json_object(line: str) -> dict[str, Any]:
    try:
        document = json.loads(line, parse_int=_json_int)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        raise ValueError("not JSON") from None
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    return document


_INT_DIGITS = 4_000  # below Python's limit on converting decimal text to int (4,300 digits)


def _json_int(digits: str) -> int | float:
    """A JSON integer; one too long for ``int`` becomes a float (inf), never an error that
    names Python's internals: it is a number either way, and no text."""
    return int(digits) if len(digits) <= _INT_DIGITS else float(digits)


KeyOption = Annotated[
    str | None,
    typer.Option(
        "--key",
        help="The log's verifier key (as in audit.pub), or a file holding it [default: the data "
        "directory's].",
        show_default=False,
    ),
]

# Exit status of verify-transcript for a package that holds together but whose signer is not
# known: it proves nothing about who signed it (docs/audit.md).
UNKNOWN_SIGNER = 3


@audit_app.command("verify")
def audit_verify(
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    key: KeyOption = None,
    checkpoints: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint",
            help="A checkpoint kept outside the database (a witness's copy); repeatable. The "
            "log must reach and match each.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Recompute the audit log from the store, check every signed checkpoint and the rows it
    covers; name the first entry that does not match. Exits 1 if anything does not."""
    from logwarden.audit.log import read_alarm
    from logwarden.audit.verify import verify_log
    from logwarden.datadir import AUDIT_ALARM_FILE, AUDIT_ANCHOR_FILE

    try:
        settings = _settings(config, data_dir=data_dir)
        verifier = _verifier_key(settings, key)
        # Read before the database: a checkpoint signed meanwhile is then in the database too.
        anchor = settings.keys_dir / AUDIT_ANCHOR_FILE
        notes_read = [(anchor, _read_note(anchor, missing_ok=True))]
        notes_read += [(path, _read_note(path)) for path in checkpoints or []]
        anchors = [(str(path), note) for path, note in notes_read if note is not None]
        alarm = read_alarm(settings.keys_dir / AUDIT_ALARM_FILE)
        store = _open_store(settings)
        try:
            result = verify_log(
                store, verifier=verifier, origin=verifier.name, anchors=anchors, alarm=alarm
            )
        finally:
            store.close()
    except LogwardenError as exc:
        raise _fail(exc) from None
    out.print(f"verifier key: {verifier}", highlight=False)
    for note in result.notes:
        out.print(f"note: {note}", highlight=False)
    if result.ok:
        out.print(
            f"audit log verified: {result.size} entries, {result.checkpoints} signed checkpoints "
            f"match ({result.anchors} kept outside the database), every row matches its entry",
            highlight=False,
        )
        return
    first = result.first()
    assert first is not None
    err.print(f"[bold red]audit log does NOT verify[/] ({len(result.problems)} problems)")
    where = first.where()
    err.print(f"first{' ' + where if where else ''}: {first.what}", markup=False, highlight=False)
    for problem in result.problems:
        if problem is not first:
            out.print(f"- {problem.what}", markup=False, highlight=False)
    raise typer.Exit(code=1)


def _read_note(path: Path, *, missing_ok: bool = False) -> bytes | None:
    """A checkpoint file's content (at most 64 KiB); a usage error if it cannot be read."""
    from logwarden.audit import checkpoint as notes

    try:
        return notes.read_note_file(path)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise typer.BadParameter(f"no checkpoint file {path}") from None
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}") from None


@audit_app.command("tail")
def audit_tail(
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    count: Annotated[int, typer.Option("-n", "--count", min=1, help="How many entries.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One entry per line, as stored.")] = False,
) -> None:
    """The newest entries of the audit log, oldest first."""
    from logwarden.audit.log import read_head

    try:
        store = _open_store(_settings(config, data_dir=data_dir))
        try:
            size = read_head(store).size
            rows = store.audit_entries(max(0, size - count), size)
        finally:
            store.close()
    except LogwardenError as exc:
        raise _fail(exc) from None
    entries = [(row, _entry_fields(row.body)) for row in rows]
    for row, fields in entries:
        if fields is None:
            err.print(
                f"warning: entry {row.idx} is not an audit entry (its body is not a JSON object):"
                " it was altered; run `logwarden audit verify`",
                highlight=False,
            )
    if as_json:
        for row, fields in entries:
            shown = {"entry": fields} if fields is not None else {"unreadable": _raw(row.body)}
            print(json.dumps({"index": row.idx, **shown}))
        return
    table = Table("entry", "time (UTC)", "kind", "session", "details")
    for row, fields in entries:
        details = (
            f"(not an audit entry: {_raw(row.body)})"
            if fields is None
            else ", ".join(
                f"{k}={v}" for k, v in sorted(fields.items()) if k not in {"kind", "at", "session"}
            )
        )
        table.add_row(
            str(row.idx), _when(row.at), _cell(row.kind), _cell(row.session_id), _cell(details)
        )
    Console(width=max(out.width, 140)).print(table)


def _entry_fields(body: bytes) -> dict[str, Any] | None:
    """An entry's fields for people, or None if its body is not a JSON object (altered)."""
    try:
        fields = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return fields if isinstance(fields, dict) else None


def _raw(body: bytes, limit: int = 200) -> str:
    return body[:limit].decode("ascii", "backslashreplace") + ("…" if len(body) > limit else "")


def _when(ms: object) -> str:
    """A stored time for people, to the second; as it is when it is not a time (an altered
    row)."""
    return _utc(ms, seconds=True)


def _cell(value: object) -> Text:
    """A stored value in a table cell, whatever its type (SQLite stores any type in any
    column), with no markup and no control character acting on the terminal."""
    if value is None:
        return Text("")
    return Text(_inert(value if isinstance(value, str) else repr(value)))


@audit_app.command("show")
def audit_show(
    index: Annotated[int, typer.Argument(min=0, help="Entry number, from `audit tail`.")],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """One entry: its body (the leaf's data), leaf hash, and its inclusion proof in the newest
    signed checkpoint, checked. Exits 1 if the entry is not the one the checkpoint includes."""
    from logwarden.audit import merkle
    from logwarden.audit.log import newest_checkpoint, read_head
    from logwarden.audit.proofs import verify_inclusion
    from logwarden.datadir import AUDIT_ANCHOR_FILE

    try:
        settings = _settings(config, data_dir=data_dir)
        verifier = _verifier_key(settings, None)
        store = _open_store(settings)
        try:
            head = read_head(store)
            if index >= head.size:  # also keeps huge numbers away from the database
                raise AuditVerificationError(f"no entry {index} (the log has {head.size})")
            rows = store.audit_entries(index, index + 1)
            if not rows:
                raise AuditVerificationError(
                    f"entry {index} is missing from the store: it was removed (run "
                    "`logwarden audit verify`)"
                )
            anchor = settings.keys_dir / AUDIT_ANCHOR_FILE
            signed = newest_checkpoint(store, verifier=verifier, anchor_path=anchor)
            covers = signed is not None and index < signed.checkpoint.size
            proof = (
                store.audit_proof(index=index, size=signed.checkpoint.size)
                if signed is not None and covers
                else []
            )
        finally:
            store.close()
    except LogwardenError as exc:
        raise _fail(exc) from None
    row = rows[0]
    leaf = merkle.leaf_hash(row.body)
    out.print(f"entry {row.idx}, {_when(row.at)}", highlight=False)
    out.print(_inert(_raw(row.body, limit=1 << 20)), markup=False, highlight=False)
    out.print(f"leaf hash {leaf.hex()}", highlight=False)
    if signed is None or not covers:
        out.print("not yet covered by a signed checkpoint", highlight=False)
        return
    checkpoint = signed.checkpoint
    out.print(
        f"included in checkpoint of size {checkpoint.size}, root {checkpoint.root_hash.hex()}; "
        "proof:",
        highlight=False,
    )
    for h in proof:
        out.print(f"  {h.hex()}", highlight=False)
    try:
        verify_inclusion(
            leaf_hash=leaf,
            index=index,
            tree_size=checkpoint.size,
            proof=proof,
            root=checkpoint.root_hash,
        )
    except AuditVerificationError as exc:
        err.print(
            f"[bold red]entry {index} does NOT match the signed checkpoint of size "
            f"{checkpoint.size}:[/] the entry shown, or the log under it, was altered "
            f"(run `logwarden audit verify`): {_inert(str(exc))}",
            highlight=False,
        )
        raise typer.Exit(code=1) from None
    out.print(
        f"the proof verifies: this is entry {index} of the checkpoint of size {checkpoint.size}",
        highlight=False,
    )


@audit_app.command("checkpoint")
def audit_checkpoint(
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Also write it to this file.")
    ] = None,
) -> None:
    """Sign a checkpoint of the log now (if it grew) and print the newest one, once it is
    shown to be signed with the log's key and extended by the log."""
    from logwarden.clock import SystemClock
    from logwarden.datadir import open_audit

    if output is not None:
        _require_writable(output)
    try:
        settings = _settings(config, data_dir=data_dir)
        store = _open_store(settings)
        try:
            audit = open_audit(settings, store=store, clock=SystemClock())
            audit.checkpoint()
            newest = audit.newest()
        finally:
            store.close()
    except LogwardenError as exc:
        raise _fail(exc) from None
    if newest is None:
        err.print("the audit log is empty: nothing to sign yet")
        raise typer.Exit(code=1)
    if output is not None:
        _write_output(output, newest.note)
    print(newest.note.decode(), end="")


def _require_writable(path: Path) -> None:
    """A usage error now, before anything is done, for an output path that cannot be a file."""
    if path.is_dir():
        raise typer.BadParameter(f"{path} is a directory", param_hint="--output")
    if not path.parent.is_dir():
        raise typer.BadParameter(f"{path.parent} is not a directory", param_hint="--output")


def _write_output(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        err.print(f"[bold red]error:[/] cannot write {path}: {exc.strerror}", highlight=False)
        raise typer.Exit(code=1) from None


@audit_app.command("clear-alarm")
def audit_clear_alarm(
    reason: ReasonOption,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    operator: OperatorOption = None,
) -> None:
    """Let the signer sign again after it refused (keys/audit.alarm): run `audit verify` and
    find out why first. The clearing is recorded in the log (who, why, the alarm), and a
    checkpoint is signed if the log now extends the last one; if not, the alarm is raised
    again."""
    from logwarden.clock import SystemClock
    from logwarden.datadir import open_audit

    reason, who = _reason(reason), _operator(operator)
    try:
        settings = _settings(config, data_dir=data_dir)
        store = _open_store(settings)
        try:
            audit = open_audit(settings, store=store, clock=SystemClock())
            said = audit.alarm()
            index = audit.clear_alarm(by=who, reason=reason)
            out.print(f"cleared ({said}); recorded as entry {index}", highlight=False)
            audit.checkpoint()
        finally:
            store.close()
    except LogwardenError as exc:
        raise _fail(exc) from None
    out.print("the signer signs again", highlight=False)


@audit_app.command("key")
def audit_key(data_dir: DataDirOption = None, config: ConfigOption = None) -> None:
    """The log's verifier key, for witnesses and for `verify-transcript --key`."""
    try:
        print(_verifier_key(_settings(config, data_dir=data_dir), None))
    except LogwardenError as exc:
        raise _fail(exc) from None


OldCheckpoint = Annotated[Path, typer.Argument(help="An older signed checkpoint (a file).")]
NewCheckpoint = Annotated[Path, typer.Argument(help="A newer signed checkpoint (a file).")]


@audit_app.command("check-consistency")
def audit_check_consistency(
    old: OldCheckpoint,
    new: NewCheckpoint,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    key: KeyOption = None,
    proof_file: Annotated[
        Path | None,
        typer.Option(
            "--proof",
            help="A proof from `audit prove-consistency`: check without the data directory "
            "(give --key).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Prove that NEW extends OLD: both signed by the log, and a consistency proof between
    them (the local log's, or --proof's) verifies. Exits 1 if not."""
    from logwarden.audit.witness import check_consistency, local_consistency, read_proof

    try:
        settings = _settings(config, data_dir=data_dir)
        verifier = _verifier_key(settings, key)
        a, b = _signed_pair(old, new, verifier)
        if proof_file is None:
            store = _open_store(settings)
            try:
                proof = local_consistency(store, a, b)
            finally:
                store.close()
        else:
            proof = read_proof(_read_proof_file(proof_file), old=a, new=b)
            check_consistency(a, b, proof, source=str(proof_file))
    except LogwardenError as exc:
        raise _fail(exc) from None
    out.print(
        f"consistent: the log of {b.size} entries extends the log of {a.size} "
        f"({len(proof)}-hash proof)",
        highlight=False,
    )


@audit_app.command("prove-consistency")
def audit_prove_consistency(
    old: OldCheckpoint,
    new: NewCheckpoint,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the proof.")],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    key: KeyOption = None,
) -> None:
    """Write the consistency proof from OLD to NEW out of the local log, for a witness to check
    with `audit check-consistency OLD NEW --proof FILE` and no data directory."""
    from logwarden.audit.witness import local_consistency, proof_document

    _require_writable(output)
    try:
        settings = _settings(config, data_dir=data_dir)
        verifier = _verifier_key(settings, key)
        a, b = _signed_pair(old, new, verifier)
        store = _open_store(settings)
        try:
            proof = local_consistency(store, a, b)
        finally:
            store.close()
    except LogwardenError as exc:
        raise _fail(exc) from None
    _write_output(output, proof_document(a, b, proof))
    out.print(
        f"wrote {output}: the {len(proof)}-hash proof that the log of {b.size} entries extends "
        f"the log of {a.size}",
        highlight=False,
    )


def _signed_pair(old: Path, new: Path, verifier: Any) -> tuple[Any, Any]:
    """OLD's and NEW's checkpoints, each verified with the log's key; the error names which
    one does not verify."""
    from logwarden.audit import checkpoint as notes

    signed = []
    for name, path in (("OLD", old), ("NEW", new)):
        note = _read_note(path)
        assert note is not None
        try:
            signed.append(notes.verify(note, verifier_key=verifier, origin=verifier.name))
        except AuditVerificationError as exc:
            raise AuditVerificationError(f"{name} ({path}) does not verify: {exc}") from None
    return signed[0], signed[1]


def _read_proof_file(path: Path) -> bytes:
    from logwarden.audit.witness import MAX_PROOF_BYTES

    try:
        with path.open("rb") as f:
            return f.read(MAX_PROOF_BYTES + 1)
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot read {path}: {exc.strerror}", param_hint="--proof"
        ) from None


@app.command("export-transcript")
def export_transcript(
    session_id: Annotated[str, typer.Argument(help="Session id.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the package.")],
    reason: ReasonOption,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    operator: OperatorOption = None,
) -> None:
    """Write a verifiable transcript package (a zip: the transcript as JSON and HTML, inclusion
    proofs, the signed checkpoint, the log's key). The export is recorded in the audit log."""
    reason, who = _reason(reason), _operator(operator)
    # The file first, made here and now: an export that cannot be written is not recorded.
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise typer.BadParameter(f"{output} exists; not replacing it") from None
    except OSError as exc:
        raise typer.BadParameter(f"cannot create {output}: {exc.strerror}") from None
    written = False
    try:
        with os.fdopen(fd, "wb") as package_file:
            package = _export(session_id, config, data_dir, who=who, reason=reason)
            data = _package_bytes(package)
            try:
                package_file.write(data)
                package_file.flush()
                os.fsync(package_file.fileno())
            except OSError as exc:
                # The transcript was read: its export entry stays, as it should.
                err.print(
                    f"[bold red]error:[/] could not write {output}: {exc.strerror} (the export "
                    "is recorded in the audit log)",
                    highlight=False,
                )
                raise typer.Exit(code=1) from None
        written = True
    finally:
        if not written:
            output.unlink(missing_ok=True)  # ours: made empty above
    out.print(
        f"wrote {output}: {len(package.messages)} messages, proven against the signed "
        f"checkpoint of {package.checkpoint_size} entries",
        highlight=False,
    )


def _package_bytes(package: Any) -> bytes:
    """The package's zip; too large to be one ends the command (the export stays recorded:
    the transcript was read)."""
    try:
        data: bytes = package.to_zip()
    except LogwardenError as exc:
        err.print(
            f"[bold red]error:[/] {_inert(str(exc))} (the export is recorded in the audit log)",
            highlight=False,
        )
        raise typer.Exit(code=1) from None
    return data


def _export(
    session_id: str, config: Path | None, data_dir: Path | None, *, who: str, reason: str
) -> Any:
    """Build the package of ``session_id``, recording the export; errors end the command."""
    from logwarden.audit.package import build_package
    from logwarden.clock import SystemClock
    from logwarden.datadir import open_audit, open_keystore, open_vault

    try:
        settings = _settings(config, data_dir=data_dir)
        store = _open_store(settings)
        keystore = open_keystore(settings)
        try:
            return build_package(
                store=store,
                vault=open_vault(settings, keystore),
                audit=open_audit(settings, store=store, clock=SystemClock()),
                session_id=session_id,
                by=who,
                reason=reason,
            )
        finally:
            keystore.close()
            store.close()
    except LogwardenError as exc:
        raise _fail(exc) from None


@app.command("verify-transcript")
def verify_transcript(
    package: Annotated[Path, typer.Argument(help="A package from `export-transcript`.")],
    key: KeyOption = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar="LOGWARDEN_DATA_DIR",
            help="Check with this data directory's key (audit.pub) when no --key is given.",
            show_default=False,
        ),
    ] = None,
    trust_package_key: Annotated[
        bool,
        typer.Option(
            "--trust-package-key",
            help="With neither --key nor --data-dir, accept the key the package carries (exit "
            "0 instead of 3); it says nothing about who signed.",
        ),
    ] = False,
) -> None:
    """Check a package offline: any edited, reordered, added or dropped message fails, with
    the reason. Exits 1 if it does not verify, 3 if it holds together but its signer is not
    known (no --key or --data-dir: the package's own key was used)."""
    from logwarden.audit.package import MAX_PACKAGE_BYTES, verify_package
    from logwarden.datadir import AUDIT_PUBLIC_FILE

    try:
        with package.open("rb") as f:
            # No further than a package can be: /dev/zero or a huge file is refused, not read.
            data = f.read(MAX_PACKAGE_BYTES + 1)
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {package}: {exc.strerror}") from None
    if key is None and data_dir is not None:
        key = str(data_dir / AUDIT_PUBLIC_FILE)
        if not _is_file(Path(key)):
            raise typer.BadParameter(f"no verifier key at {key}", param_hint="--data-dir")
    try:
        result = verify_package(data, verifier_key=None if key is None else _key_text(key))
    except AuditVerificationError as exc:
        err.print(f"[bold red]transcript does NOT verify:[/] {_inert(str(exc))}", highlight=False)
        raise typer.Exit(code=1) from None
    for warning in result.warnings:
        err.print(f"warning: {warning}", markup=False, highlight=False)
    said = (
        f"session {result.session_id}, {result.messages} messages"
        f"{'' if result.complete else ' (not known to be complete)'}, included in the "
        f"checkpoint of {result.checkpoint.size} entries signed by {result.checkpoint.origin}"
    )
    if result.signer_known:
        out.print(f"transcript verified: {said}", highlight=False)
        return
    out.print(f"transcript holds together, signer unknown: {said}", highlight=False)
    if trust_package_key:
        err.print("warning: --trust-package-key: the signer was not checked", highlight=False)
        return
    err.print(
        "[bold red]unverified signer:[/] the package was checked with the key it carries, which "
        "anyone can make; give --key with the key the log's operator publishes (or "
        "--trust-package-key to accept it)",
        highlight=False,
    )
    raise typer.Exit(code=UNKNOWN_SIGNER)


def _key_text(key: str) -> str:
    """--key: the content of the file it names, or else the key itself."""
    path = Path(key)
    if "+" in key or not _is_file(path):
        return key.strip()
    try:
        with path.open("rb") as f:  # a key is one short line; read no more than a key file
            return f.read(4096).decode("ascii", errors="replace").strip()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {key}: {exc.strerror}", param_hint="--key") from None


def _is_file(path: Path) -> bool:
    """Whether ``path`` is a file; False for a string no file can be named (a key of over 255
    characters makes is_file() raise "File name too long")."""
    try:
        return path.is_file()
    except OSError:
        return False


def _verifier_key(settings: Settings, key: str | None) -> Any:
    from logwarden.audit import checkpoint as notes
    from logwarden.datadir import AUDIT_PUBLIC_FILE

    text = _key_text(key) if key is not None else None
    if text is None:
        public = settings.data_dir / AUDIT_PUBLIC_FILE
        try:
            text = public.read_text(encoding="ascii").strip()
        except OSError:
            raise AuditVerificationError(
                f"no verifier key at {public} (run `logwarden init`, or pass --key)"
            ) from None
    try:
        return notes.VerifierKey.parse(text)
    except ValueError as exc:
        raise AuditVerificationError(f"the verifier key is malformed: {exc}") from None


@contextmanager
def _retention(config: Path | None, data_dir: Path | None, as_of: str | None) -> Iterator[Any]:
    """The data directory's retention service, at ``as_of`` or now; errors end the command."""
    from logwarden.clock import FakeClock, SystemClock
    from logwarden.datadir import open_audit, open_keystore, open_retention

    try:
        settings = _settings(config, data_dir=data_dir)
        clock = SystemClock() if as_of is None else FakeClock(_parse_time(as_of))
        store = _open_store(settings)
        keystore = open_keystore(settings)
        try:
            # The audit log keeps the real clock: its signatures say when each entry was
            # really made, which is how `audit verify` tells a drill from a purge that was due.
            audit = open_audit(settings, store=store, clock=SystemClock())
            yield open_retention(settings, store=store, keystore=keystore, audit=audit, clock=clock)
            audit.checkpoint()  # what this command recorded is covered before it returns
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


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason or len(reason) > 500 or not reason.isprintable():
        err.print(
            "[bold red]error:[/] --reason must be 1 to 500 printable characters", highlight=False
        )
        raise typer.Exit(code=2)
    return reason


def _operator(operator: str | None) -> str:
    import getpass

    who = (operator or getpass.getuser()).strip()
    if not who or len(who) > 100 or not who.isprintable():
        err.print(
            "[bold red]error:[/] --operator must be 1 to 100 printable characters", highlight=False
        )
        raise typer.Exit(code=2)
    return who


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


def _utc(ms: object, *, seconds: bool = False) -> str:
    """A time in ms since the epoch, in UTC; a value that is not one (a changed row: text,
    bytes, a year past 9999) is shown as it is rather than stopping the command."""
    if type(ms) is not int:
        return _inert(repr(ms))[:80]
    try:
        moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return str(ms)
    if seconds:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def main() -> None:
    app()
