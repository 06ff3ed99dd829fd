"""Opening a session record: the decrypted transcript an administrator reads.

A value whose key retention has destroyed reads as ``None`` (the raw address after 7 days, the
text after 30); any other failure to open is a ``VaultError``: a tampered or misplaced value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from logwarden.errors import KeyDestroyedError
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
    reported_at: int | None
    held_at: int | None
    hold_reason: str | None
    interests: list[str] | None  # None: destroyed by retention
    participants: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    reports: list[dict[str, Any]]
    safety: list[dict[str, Any]]  # safety events: warnings and risk escalations (no text)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def open_transcript(record: SessionRecord, vault: Vault) -> Transcript:
    """Decrypt every sealed value of ``record`` that retention has not destroyed."""
    sid = record.session.id

    def unseal(token: bytes, label: str) -> str | None:
        try:
            return vault.open(token, session_id=sid, label=label).decode()
        except KeyDestroyedError:
            return None

    interests = unseal(record.session.interests_sealed, interests_label())
    addresses = {a.slot: unseal(a.ip_sealed, ip_label(a.slot)) for a in record.addresses}
    participants = [
        {"slot": p.slot, "ip_pseudonym": p.ip_pseudonym, "ip": addresses.get(p.slot)}
        for p in record.participants
    ]
    messages = [
        {
            "seq": m.seq,
            "slot": m.slot,
            "at": m.sent_at,
            "text": unseal(m.text_sealed, message_label(m.seq, m.slot, m.sent_at)),
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
            else unseal(r.comment_sealed, report_label(r.reporter_slot, r.created_at)),
        }
        for r in record.reports
    ]
    ended, state = record.ended, record.retention
    return Transcript(
        session_id=sid,
        started_at=record.session.started_at,
        ended_at=None if ended is None else ended.ended_at,
        end_reason=None if ended is None else ended.reason,
        ended_by=None if ended is None else ended.ended_by,
        reported_at=state.reported_at,
        held_at=state.held_at,
        hold_reason=state.hold_reason,
        interests=None if interests is None else json.loads(interests),
        participants=participants,
        messages=messages,
        reports=reports,
        safety=[
            {"kind": e.kind, "slot": e.slot, "at": e.at, **json.loads(e.detail)}
            for e in record.safety
        ],
    )
