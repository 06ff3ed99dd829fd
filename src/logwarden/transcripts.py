"""Opening a session record: the decrypted transcript an administrator reads."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from logwarden.recorder.recorder import interests_label, ip_label, message_label, report_label
from logwarden.store import SessionRecord
from logwarden.vault import Vault

__all__ = ["Transcript", "open_transcript"]


@dataclass(frozen=True)
class Transcript:
    session_id: str
    started_at: int
    ended_at: int | None
    end_reason: str | None
    ended_by: int | None
    interests: list[str]
    participants: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    reports: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def open_transcript(record: SessionRecord, vault: Vault) -> Transcript:
    """Decrypt every sealed value of ``record``; ``VaultError`` if any fails to open."""
    sid = record.session.id
    interests = json.loads(
        vault.open(record.session.interests_sealed, session_id=sid, label=interests_label())
    )
    participants = [
        {
            "slot": p.slot,
            "ip_pseudonym": p.ip_pseudonym,
            "ip": vault.open(p.ip_sealed, session_id=sid, label=ip_label(p.slot)).decode(),
        }
        for p in record.participants
    ]
    messages = [
        {
            "seq": m.seq,
            "slot": m.slot,
            "at": m.sent_at,
            "text": vault.open(
                m.text_sealed, session_id=sid, label=message_label(m.seq, m.slot, m.sent_at)
            ).decode(),
        }
        for m in record.messages
    ]
    reports = [
        {
            "reporter_slot": r.reporter_slot,
            "reason": r.reason,
            "at": r.created_at,
            "comment": None
            if r.comment_sealed is None
            else vault.open(
                r.comment_sealed, session_id=sid, label=report_label(r.reporter_slot, r.created_at)
            ).decode(),
        }
        for r in record.reports
    ]
    ended = record.ended
    return Transcript(
        session_id=sid,
        started_at=record.session.started_at,
        ended_at=None if ended is None else ended.ended_at,
        end_reason=None if ended is None else ended.reason,
        ended_by=None if ended is None else ended.ended_by,
        interests=interests,
        participants=participants,
        messages=messages,
        reports=reports,
    )
