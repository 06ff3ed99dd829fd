"""The same chat, logged in PostgreSQL: exact transcript, and nothing readable in its files."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from logwarden.store import SqlStore
from logwarden.testing import reading_vault, serve_in_process
from logwarden.transcripts import open_transcript
from tests.conftest import TEST_SERVER_ENV
from tests.recorder.test_session_log import ALICE_IP, BOB_IP, SCRIPT, needles, run_scripted_chat


class TestPostgresLog:
    def test_scripted_chat_logged_in_postgres(self, tmp_path: Path, postgres_url: str) -> None:
        """With LOGWARDEN_DATABASE_URL the log is in PostgreSQL, exact and sealed."""
        data_dir = tmp_path / "data"
        env = {**TEST_SERVER_ENV, "LOGWARDEN_DATABASE_URL": postgres_url}
        with serve_in_process(data_dir, env=env) as server:
            run_scripted_chat(server)
        assert not (data_dir / "logwarden.db").exists()  # the keys stay, the log moved
        store = SqlStore.postgres(postgres_url)
        try:
            [summary] = store.recent_sessions(limit=5)
            record = store.session(summary.id)
            assert record is not None
        finally:
            store.close()
        with reading_vault(data_dir) as vault:
            transcript = open_transcript(record, vault)
        assert [(m["slot"], m["text"]) for m in transcript.messages] == SCRIPT
        assert [p["ip"] for p in transcript.participants] == [ALICE_IP, BOB_IP]
        assert postgres_url.rsplit("/", 1)[1] not in server.log_text()  # no URL in the log

        # The server's own files: the table files of this database and the WAL, after a
        # checkpoint has written every page out.
        with psycopg.connect(postgres_url, autocommit=True) as db:
            db.execute("CHECKPOINT")
            root = Path(db.execute("SHOW data_directory").fetchone()[0])  # type: ignore[index]
            oid = db.execute(
                "SELECT oid FROM pg_database WHERE datname = current_database()"
            ).fetchone()[0]  # type: ignore[index]
        files = [p for d in (root / "base" / str(oid), root / "pg_wal") for p in d.rglob("*")]
        try:
            contents = [(p, p.read_bytes()) for p in files if p.is_file()]
        except PermissionError:
            pytest.skip("PostgreSQL's data directory is not readable by this user")
        assert contents
        for path, data in contents:
            for what, needle in needles().items():
                if what.startswith("packed"):
                    continue  # 4 or 16 bytes recur by chance in gigabytes of WAL
                assert needle not in data, f"{what} found in {path}"
