"""`logwarden audit clear-alarm` and the signer's alarm from the operator's side: a refusal
to sign stops every later command from signing, `audit verify` names it, and only an
operator who gives a reason clears it, on the record (review 7, A2)."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

from logwarden.audit.entries import parse_body
from logwarden.clock import SystemClock
from logwarden.config import load_settings
from logwarden.datadir import open_audit, open_store
from tests.test_cli import logwarden


def clean(result: object) -> str:
    text = getattr(result, "stdout", "") + getattr(result, "stderr", "")
    return " ".join(text.replace("│", " ").split())


def record_reads(data_dir: Path, n: int) -> None:
    """``n`` entries made and signed with the data directory's own key, then a checkpoint:
    what `sessions show` leaves behind."""
    settings = load_settings(config_file=None, environ={}, overrides={"data_dir": data_dir})
    store = open_store(settings)
    try:
        audit = open_audit(settings, store=store, clock=SystemClock())
        now = int(time.time() * 1000)
        audit.append(
            [
                audit.entry("read", at=now, by="tester", what="transcript", reason=f"case {i}")
                for i in range(n)
            ]
        )
        assert audit.checkpoint() is not None
    finally:
        store.close()


def test_an_alarm_stops_signing_until_an_operator_clears_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert logwarden("init", "--data-dir", str(data_dir)).returncode == 0
    record_reads(data_dir, 3)
    backup = tmp_path / "logwarden.db.copy"
    shutil.copy2(data_dir / "logwarden.db", backup)
    with sqlite3.connect(data_dir / "logwarden.db") as db:  # the last entry cut off
        db.execute("DELETE FROM audit_entries WHERE idx = 2")
    db.close()

    refused = logwarden("audit", "checkpoint", "--data-dir", str(data_dir))
    assert refused.returncode == 1
    assert "does not extend checkpoint 3" in clean(refused)
    assert (data_dir / "keys" / "audit.alarm").exists()

    shutil.copy2(backup, data_dir / "logwarden.db")  # put back: still no signing
    again = logwarden("audit", "checkpoint", "--data-dir", str(data_dir))
    assert again.returncode == 1 and "signing is stopped" in clean(again)
    verified = logwarden("audit", "verify", "--data-dir", str(data_dir))
    assert verified.returncode == 1
    assert "the signer stopped signing" in clean(verified)

    unexplained = logwarden("audit", "clear-alarm", "--data-dir", str(data_dir))
    assert unexplained.returncode == 2 and "--reason" in clean(unexplained)
    cleared = logwarden(
        "audit",
        "clear-alarm",
        "--reason",
        "ticket 12: log restored from the backup",
        "--operator",
        "carol",
        "--data-dir",
        str(data_dir),
    )
    assert cleared.returncode == 0, clean(cleared)
    assert "the signer signs again" in cleared.stdout
    assert not (data_dir / "keys" / "audit.alarm").exists()
    verified = logwarden("audit", "verify", "--data-dir", str(data_dir))
    assert verified.returncode == 0, clean(verified)
    assert "carol let the signer sign again" in clean(verified)
    with sqlite3.connect(data_dir / "logwarden.db") as db:
        index, body = db.execute(
            "SELECT idx, body FROM audit_entries WHERE kind = 'resume'"
        ).fetchone()
    db.close()
    resumed = parse_body(index, body)
    assert resumed["by"] == "carol"
    assert resumed["reason"] == "ticket 12: log restored from the backup"
    assert "does not extend checkpoint 3" in resumed["alarm"]["reason"]
