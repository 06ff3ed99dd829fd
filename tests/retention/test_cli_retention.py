"""Retention from the operator's side: `logwarden purge`, `retention check` and
`sessions hold/release/flag` run as real commands on a data directory made by `logwarden init`
whose log holds chats recorded, through the real recorder, at chosen past times
(docs/retention.md).

The chats are recorded relative to today, because `sessions hold/release/flag` act at the
real time (they have no --as-of); the drills then look days ahead with --as-of. Every period
here keeps days of margin from its boundary, so the time of day of the run does not matter.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from logwarden.audit.entries import parse_body
from logwarden.retention.policy import DAY_MS, day_of
from logwarden.store import SqlStore
from tests.retention.conftest import (
    Chat,
    attach_deployment,
    files_under,
    open_store,
)
from tests.test_cli import logwarden

DESTROYED = "(destroyed: retention has passed)"

Backend = tuple[str, str | None]


# -- a data directory with a past ----------------------------------------------------------


def today() -> int:
    return day_of(time.time_ns() // 1_000_000)


def noon(day: int) -> int:
    return day * DAY_MS + DAY_MS // 2


def iso_day(day: int) -> str:
    """``2027-01-31`` for a day number: midnight UTC for --as-of."""
    return datetime.fromtimestamp(day * DAY_MS / 1000, tz=UTC).date().isoformat()


def cli_env(backend: Backend) -> dict[str, str]:
    """The environment that points the command at the backend's log."""
    name, url = backend
    return {} if name == "sqlite" else {"LOGWARDEN_DATABASE_URL": str(url)}


def init_data_dir(tmp_path: Path, env: dict[str, str] | None = None) -> Path:
    """A data directory made by `logwarden init`, as an operator makes one."""
    data_dir = tmp_path / "data"
    result = logwarden("init", "--data-dir", str(data_dir), env=env)
    assert result.returncode == 0, result.stderr
    assert "initialised" in result.stdout
    for name in ("vault.json", "kek.json", "keystore.db"):
        assert (data_dir / "keys" / name).exists(), name
    return data_dir


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data directory made by `logwarden init` (SQLite log), copied by each test."""
    return init_data_dir(tmp_path_factory.mktemp("template"))


@pytest.fixture
def data_dir(initialised: Path, tmp_path: Path) -> Path:
    """A fresh copy of the initialised data directory, modes kept."""
    copy = tmp_path / "data"
    shutil.copytree(initialised, copy)
    return copy


def log_store(backend: Backend, data_dir: Path) -> SqlStore:
    """The log `init` made: the SQLite file in the data directory, or the test PostgreSQL
    database, emptied (other tests share it)."""
    name, url = backend
    if name == "sqlite":
        path = data_dir / "logwarden.db"
        assert path.exists(), "`init` makes the SQLite log"
        return SqlStore.sqlite(path)
    return open_store(name, data_dir, url)


def run(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> CompletedProcess[str]:
    return logwarden(*args, "--data-dir", str(data_dir), env=env)


def show(data_dir: Path, chat: Chat, env: dict[str, str] | None = None) -> CompletedProcess[str]:
    return run(data_dir, "sessions", "show", chat.session_id, "--reason", "test", env=env)


def flat(text: str) -> str:
    """Output with box drawing and line wrapping undone, for messages Rich wraps in a box."""
    return " ".join(text.replace("│", " ").replace("╭", " ").replace("╰", " ").split())


def table_rows(stdout: str) -> list[list[str]]:
    """The body rows of a Rich table, as lists of cell texts."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in stdout.splitlines()
        if line.startswith("│")
    ]


def snapshot(data_dir: Path) -> dict[str, bytes]:
    return {str(path.relative_to(data_dir)): path.read_bytes() for path in files_under(data_dir)}


def assert_text_kept(result: CompletedProcess[str], chat: Chat) -> None:
    assert result.returncode == 0, result.stderr
    for text in chat.texts:
        assert text in result.stdout
    assert "shared interests: chess" in result.stdout


def assert_text_gone(result: CompletedProcess[str], chat: Chat) -> None:
    assert result.returncode == 0, result.stderr
    assert not any(text in result.stdout for text in chat.texts)
    assert "retention marker" not in result.stdout
    assert f"shared interests: {DESTROYED}" in result.stdout


# -- check, purge, check -------------------------------------------------------------------


class TestPurgeDrill:
    def test_check_lists_purge_destroys_check_is_clean(
        self, backend: Backend, tmp_path: Path, initialised: Path
    ) -> None:
        """`retention check --as-of` lists what a drill day finds kept too long and exits 1;
        `purge --as-of` destroys exactly that and says so in its table; the same check then
        finds nothing and exits 0. The old chat keeps its pseudonyms but not its text, the
        recent one keeps its text but not its addresses (both backends; the keys stay in the
        data directory either way)."""
        env = cli_env(backend)
        if env:  # `init` with the PostgreSQL URL migrates that database
            # Emptied first: `init` refuses new keys beside a log that has sessions.
            open_store("postgres", tmp_path, backend[1]).close()
            data_dir = init_data_dir(tmp_path, env)
        else:
            data_dir = tmp_path / "data"
            shutil.copytree(initialised, data_dir)
        day = today()
        with attach_deployment(data_dir, log_store(backend, data_dir), at=noon(day - 10)) as d:
            old = d.chat()
            d.at(noon(day - 1))
            recent = d.chat()
        if backend[0] == "postgres":
            assert not (data_dir / "logwarden.db").exists(), "the log is in PostgreSQL"
        # Old text expires after day - 10 + 30, recent text after day - 1 + 30; the addresses
        # of both after 7 days, metadata after 90.
        drill = iso_day(day + 25)

        before = run(data_dir, "retention", "check", "--as-of", drill, env=env)
        assert before.returncode == 1, before.stderr
        findings = {(cls, what): count for cls, what, count in table_rows(before.stdout)}
        assert findings == {
            ("session", f"bucket key session:{day - 10} (1 data keys) not destroyed"): "1",
            ("raw_ip", f"bucket key raw_ip:{day - 10} (1 data keys) not destroyed"): "1",
            ("raw_ip", f"bucket key raw_ip:{day - 1} (1 data keys) not destroyed"): "1",
            ("session", "message rows past retention"): "3",
            ("raw_ip", "address rows past retention"): "4",
            ("kek", "key-encryption key overdue for rotation"): "1",
        }

        purge = run(data_dir, "purge", "--as-of", drill, env=env)
        assert purge.returncode == 0, purge.stderr
        assert f"purge as of {drill}T00:00:00.000Z" in purge.stdout
        assert dict(table_rows(purge.stdout)) == {
            "bucket keys (raw_ip)": "2",
            "bucket keys (session)": "1",
            "data keys": "3",
            "message rows": "3",
            "address rows": "4",
            "sessions (metadata)": "0",
            "sessions erased on request": "0",
            "key-encryption key rotated": "yes",
        }

        after = run(data_dir, "retention", "check", "--as-of", drill, env=env)
        assert after.returncode == 0, after.stdout
        assert "nothing is kept past its retention" in after.stdout

        gone = show(data_dir, old, env)
        assert_text_gone(gone, old)
        for address in old.addresses:
            assert address not in gone.stdout
        assert gone.stdout.count(DESTROYED) == 3  # interests and both addresses
        for pseudonym in old.pseudonyms:
            assert pseudonym in gone.stdout

        kept = show(data_dir, recent, env)
        assert_text_kept(kept, recent)
        for address in recent.addresses:
            assert address not in kept.stdout
        for pseudonym in recent.pseudonyms:
            assert pseudonym in kept.stdout

    def test_show_keeps_each_participant_on_one_line_in_a_pipe(self, data_dir: Path) -> None:
        """Piped (no terminal, COLUMNS unset: Rich assumes 80), `sessions show` still prints a
        participant whose address is destroyed on one line with its pseudonym, so that `grep`
        or a saved transcript finds them together (it used to wrap at 80 columns)."""
        with attach_deployment(
            data_dir, log_store(("sqlite", None), data_dir), at=noon(today() - 10)
        ) as d:
            chat = d.chat()
        assert run(data_dir, "purge").returncode == 0  # the addresses expired 2 days ago
        result = run(
            data_dir, "sessions", "show", chat.session_id, "--reason", "test", env={"COLUMNS": "80"}
        )
        assert result.returncode == 0, result.stderr
        assert f"{DESTROYED} (pseudonym {chat.pseudonyms[0]})" in flat(result.stdout)
        lines = result.stdout.splitlines()
        assert f"A: {DESTROYED}  (pseudonym {chat.pseudonyms[0]})" in lines, lines

    def test_a_second_purge_finds_nothing_more(self, data_dir: Path) -> None:
        """Purging again at the same time destroys nothing and does not rotate the key again."""
        day = today()
        with attach_deployment(
            data_dir, log_store(("sqlite", None), data_dir), at=noon(day - 10)
        ) as d:
            d.chat()
        drill = iso_day(day + 25)
        first = run(data_dir, "purge", "--as-of", drill)
        assert first.returncode == 0, first.stderr
        assert dict(table_rows(first.stdout))["data keys"] == "2"
        again = run(data_dir, "purge", "--as-of", drill)
        assert again.returncode == 0, again.stderr
        rows = dict(table_rows(again.stdout))
        assert not any(label.startswith("bucket keys") for label in rows)
        assert rows["data keys"] == rows["message rows"] == rows["address rows"] == "0"
        assert rows["key-encryption key rotated"] == "no"


# -- --as-of -------------------------------------------------------------------------------


class TestAsOf:
    def test_dates_and_times_are_accepted_as_the_instant_they_name(self, data_dir: Path) -> None:
        """A date is midnight UTC, a time with Z is UTC and a time with an offset is converted:
        the purge's title names each in UTC, and the check at the same time accepts it."""
        for given, meant in [
            ("2027-01-31", "2027-01-31T00:00:00.000Z"),
            ("2027-01-31T12:00:00Z", "2027-01-31T12:00:00.000Z"),
            ("2027-01-31T12:00:00+02:00", "2027-01-31T10:00:00.000Z"),
        ]:
            purge = run(data_dir, "purge", "--as-of", given)
            assert purge.returncode == 0, purge.stderr
            assert f"purge as of {meant}" in purge.stdout
            check = run(data_dir, "retention", "check", "--as-of", given)
            assert check.returncode == 0, (given, check.stdout, check.stderr)

    def test_bad_times_are_refused_before_anything_is_opened(self, data_dir: Path) -> None:
        """`yesterday`, a thirteenth month and an empty value are usage errors (exit 2) whose
        message names --as-of and the value; not a byte of the data directory changes, and the
        60-day-old chat, whose text any purge from now on would destroy, is still readable."""
        with attach_deployment(
            data_dir, log_store(("sqlite", None), data_dir), at=noon(today() - 60)
        ) as d:
            chat = d.chat()
        files = snapshot(data_dir)
        attempts = [("purge", bad) for bad in ("yesterday", "2027-13-01", "")]
        attempts.append(("retention check", "yesterday"))
        for command, bad in attempts:
            result = run(data_dir, *command.split(), "--as-of", bad)
            message = flat(result.stderr)
            assert result.returncode == 2, (command, bad, result.stdout, result.stderr)
            assert "--as-of" in message and repr(bad) in message, message
            assert "ISO 8601" in message
            assert "Traceback" not in result.stderr
            assert result.stdout == ""
        assert snapshot(data_dir) == files
        assert_text_kept(show(data_dir, chat), chat)

    @pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
    def test_times_outside_the_calendar_are_refused(self, data_dir: Path, moment: str) -> None:
        """A time that parses but is outside datetime's years once moved to UTC is refused like
        any other bad --as-of (exit 2), before anything is opened. (It used to run the purge,
        destroying everything at year 10000, then crash with a traceback printing the title.)"""
        with attach_deployment(
            data_dir, log_store(("sqlite", None), data_dir), at=noon(today() - 1)
        ) as d:
            chat = d.chat()
        files = snapshot(data_dir)
        result = run(data_dir, "purge", "--as-of", moment)
        assert result.returncode == 2, result.stderr[-400:]
        message = flat(result.stderr)
        assert "--as-of" in message and repr(moment) in message, message
        assert "Traceback" not in result.stderr
        assert snapshot(data_dir) == files
        assert_text_kept(show(data_dir, chat), chat)


# -- hold, release, flag -------------------------------------------------------------------


class TestHoldReleaseFlag:
    def test_a_hold_outlives_every_period_until_released(self, data_dir: Path) -> None:
        """A held chat stays whole (text and addresses) through a purge 500 days ahead, past
        every class, while an unheld chat of the same day is gone; the check agrees. Released,
        its own periods apply again: the same purge then destroys it."""
        day = today()
        with attach_deployment(
            data_dir, log_store(("sqlite", None), data_dir), at=noon(day - 1)
        ) as d:
            held = d.chat()
            other = d.chat()
        hold = run(data_dir, "sessions", "hold", held.session_id, "--reason", "case 1")
        assert hold.returncode == 0, hold.stderr
        assert f"held {held.session_id}" in hold.stdout
        assert ": case 1" in show(data_dir, held).stdout.split("held since ", 1)[1]

        far = iso_day(day + 500)
        purge = run(data_dir, "purge", "--as-of", far)
        assert purge.returncode == 0, purge.stderr
        assert dict(table_rows(purge.stdout))["sessions (metadata)"] == "1"
        kept = show(data_dir, held)
        assert_text_kept(kept, held)
        for address in held.addresses:
            assert address in kept.stdout
        unheld = show(data_dir, other)
        assert unheld.returncode == 1
        assert f"no session {other.session_id!r}" in unheld.stderr
        check = run(data_dir, "retention", "check", "--as-of", far)
        assert check.returncode == 0, check.stdout

        release = run(data_dir, "sessions", "release", held.session_id, "--reason", "order lifted")
        assert release.returncode == 0, release.stderr
        assert f"released {held.session_id}" in release.stdout
        # Nothing of it has expired yet at the real time of the release.
        released = show(data_dir, held)
        assert_text_kept(released, held)
        assert "held since" not in released.stdout
        assert run(data_dir, "retention", "check", "--as-of", far).returncode == 1
        assert run(data_dir, "purge", "--as-of", far).returncode == 0
        gone = show(data_dir, held)
        assert gone.returncode == 1
        assert "no session" in gone.stderr

    def test_release_destroys_what_expired_during_the_hold(self, data_dir: Path) -> None:
        """A chat held 35 days ago, before any of it expired, is whole until released; the
        release itself (no purge) destroys its text and addresses, which expired meanwhile,
        and leaves the metadata, which has not. The check then lists the hold bucket as
        waiting for a new key until a purge re-keys it."""
        day = today()
        with attach_deployment(
            data_dir, log_store(("sqlite", None), data_dir), at=noon(day - 40)
        ) as d:
            chat = d.chat()
            d.at(noon(day - 35))
            assert d.retention.hold(chat.session_id, reason="order 7") is not None
        assert run(data_dir, "purge").returncode == 0
        held = show(data_dir, chat)
        assert_text_kept(held, chat)
        assert all(address in held.stdout for address in chat.addresses)

        release = run(
            data_dir, "sessions", "release", chat.session_id, "--reason", "order 7 lifted"
        )
        assert release.returncode == 0, release.stderr
        released = show(data_dir, chat)
        assert_text_gone(released, chat)
        assert not any(address in released.stdout for address in chat.addresses)
        assert all(pseudonym in released.stdout for pseudonym in chat.pseudonyms)
        # The hold bucket lives on but lost two data keys: it waits for a new key until the
        # next purge, so that an earlier copy of the keystore cannot open them through it.
        waiting = run(data_dir, "retention", "check")
        assert waiting.returncode == 1, waiting.stdout
        assert [row[0] for row in table_rows(waiting.stdout) if row[0]] == ["keys"]
        assert "wait for a new" in flat(waiting.stdout)
        assert run(data_dir, "purge").returncode == 0
        check = run(data_dir, "retention", "check")
        assert check.returncode == 0, check.stdout

    def test_flag_keeps_the_chat_in_the_reported_class(self, data_dir: Path) -> None:
        """`sessions flag` moves the chat to the reported class from today: `sessions show`
        says so, and a purge 60 days ahead, past the 30 days of text, keeps its text and
        addresses while an unflagged chat of the same day loses them."""
        day = today()
        with attach_deployment(
            data_dir, log_store(("sqlite", None), data_dir), at=noon(day - 1)
        ) as d:
            flagged = d.chat()
            other = d.chat()
        flag = run(data_dir, "sessions", "flag", flagged.session_id)
        assert flag.returncode == 0, flag.stderr
        assert f"flagged {flagged.session_id}: kept in the reported class" in flag.stdout
        shown = show(data_dir, flagged)
        since = datetime.fromisoformat(shown.stdout.split("reported class since ", 1)[1].split()[0])
        assert abs(since.timestamp() * 1000 - time.time() * 1000) < 5 * 60_000
        assert "reported class since" not in show(data_dir, other).stdout

        drill = iso_day(day + 60)
        assert run(data_dir, "purge", "--as-of", drill).returncode == 0
        kept = show(data_dir, flagged)
        assert_text_kept(kept, flagged)
        assert all(address in kept.stdout for address in flagged.addresses)
        assert_text_gone(show(data_dir, other), other)
        assert run(data_dir, "retention", "check", "--as-of", drill).returncode == 0

    @pytest.mark.parametrize(
        "command",
        [
            ("sessions", "hold", "--reason", "case 1"),
            ("sessions", "release", "--reason", "order lifted"),
            ("sessions", "flag"),
            ("sessions", "show", "--reason", "test"),
        ],
    )
    def test_unknown_session_is_an_error(self, data_dir: Path, command: tuple[str, ...]) -> None:
        """Naming a session the log does not hold fails with "no session" and exit 1."""
        unknown = "f" * 32
        result = run(data_dir, *command[:2], unknown, *command[2:])
        assert result.returncode == 1, result.stdout
        assert f"no session {unknown!r}" in result.stderr
        assert result.stdout == ""

    def test_a_hold_needs_a_reason_of_1_to_500_characters(self, data_dir: Path) -> None:
        """An empty, blank or 501-character --reason is a usage error (exit 2) and places no
        hold; 500 characters are enough."""
        with attach_deployment(
            data_dir, log_store(("sqlite", None), data_dir), at=noon(today() - 1)
        ) as d:
            chat = d.chat()
        for reason in ("", "   ", "x" * 501):
            result = run(data_dir, "sessions", "hold", chat.session_id, "--reason", reason)
            assert result.returncode == 2, (len(reason), result.stdout)
            assert "--reason must be 1 to 500 printable characters" in result.stderr
        assert "held since" not in show(data_dir, chat).stdout
        longest = run(data_dir, "sessions", "hold", chat.session_id, "--reason", "x" * 500)
        assert longest.returncode == 0, longest.stderr
        assert "held since" in show(data_dir, chat).stdout

    def test_a_release_needs_a_reason_and_records_it(self, data_dir: Path) -> None:
        """`sessions release` without --reason is a usage error and releases nothing; with
        one, the release entry records it and who released (review 7, B2)."""
        with attach_deployment(
            data_dir, log_store(("sqlite", None), data_dir), at=noon(today() - 1)
        ) as d:
            chat = d.chat()
            assert d.retention.hold(chat.session_id, reason="order 7") is not None
        bare = run(data_dir, "sessions", "release", chat.session_id)
        assert bare.returncode == 2 and "--reason" in flat(bare.stderr)
        assert "held since" in show(data_dir, chat).stdout
        released = run(
            data_dir,
            "sessions",
            "release",
            chat.session_id,
            "--reason",
            "order 7 lifted",
            "--operator",
            "carol",
        )
        assert released.returncode == 0, released.stderr
        fields = entries_of(data_dir, "release")[-1]
        assert (fields["reason"], fields["by"]) == ("order 7 lifted", "carol")


class TestDrillsOnTheLiveLog:
    def test_a_purge_records_who_ran_it_and_when(self, data_dir: Path) -> None:
        """A purge records its operator, and the real time its destructions were made beside
        the time it acts as of; one as of a year ahead, run on the live data directory, is
        named by `audit verify` as a drill (review 7, B1)."""
        far = today() + 400
        before = time.time_ns() // 1_000_000
        drill = run(data_dir, "purge", "--as-of", iso_day(far), "--operator", "alice")
        assert drill.returncode == 0, drill.stderr
        rotated = entries_of(data_dir, "kek")[-1]
        assert rotated["by"] == "alice"
        assert rotated["at"] == far * DAY_MS
        assert before <= rotated["made"] <= time.time_ns() // 1_000_000
        verified = run(data_dir, "audit", "verify")
        assert verified.returncode == 1
        assert "dated ahead of when it was made" in flat(verified.stdout + verified.stderr)


def entries_of(data_dir: Path, kind: str) -> list[dict[str, object]]:
    store = SqlStore.sqlite(data_dir / "logwarden.db")
    try:
        rows = store.audit_entries(0, 1 << 62)
    finally:
        store.close()
    return [parse_body(row.idx, row.body) for row in rows if row.kind == kind]


# -- not a data directory ------------------------------------------------------------------


class TestNotInitialised:
    @pytest.mark.parametrize(
        "command", [("purge",), ("retention", "check"), ("sessions", "flag", "f" * 32)]
    )
    def test_commands_refuse_a_directory_that_is_not_initialised(
        self, tmp_path: Path, command: tuple[str, ...]
    ) -> None:
        """On a missing or empty directory the retention commands say it is not initialised,
        name `logwarden init`, exit 1, and create nothing."""
        missing = tmp_path / "missing"
        empty = tmp_path / "empty"
        empty.mkdir()
        for data_dir in (missing, empty):
            result = run(data_dir, *command)
            assert result.returncode == 1, result.stdout
            message = flat(result.stderr)
            assert "is not an initialised data directory" in message
            assert "logwarden init" in message
            assert "Traceback" not in result.stderr
        assert not missing.exists()
        assert list(empty.iterdir()) == []
