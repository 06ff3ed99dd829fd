"""What the audit log says: one builder per kind of entry, and how an entry is read back.

An entry's body is the leaf's data: canonical JSON (keys sorted, no spaces, ASCII), so that
anyone can recompute its leaf hash from the text ``audit show`` prints. Every body has
``kind`` and ``at`` (ms since the epoch, UTC); entries about a session have ``session``.

Nothing in a body is personal data or a value an attacker could test guesses against
(docs/audit.md):

- sealed values (message text, addresses, interests, report comments) appear as the SHA-256
  of their ciphertext, which is random-looking and opens nothing without its key;
- a message's text appears also as an HMAC under the session's *audit salt*, derived from the
  session's text key and destroyed with it, so a transcript can be proven offline while the
  key lives, and nothing can be learnt from the commitment once it is gone;
- pseudonyms and receipt digests appear as HMACs under a random salt kept in the session's
  row and deleted with it.

The entries are permanent. Times, session ids, message counts, report reasons (categories),
operators' names and the reasons they give are kept in the clear, forever: that is what an
audit trail is for, and why a reason must not carry personal data.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any

from logwarden.errors import AuditVerificationError
from logwarden.store import AuditRecord

__all__ = [
    "KINDS",
    "digest",
    "entry",
    "metadata_commitment",
    "parse_body",
    "sha256_hex",
]

# Every kind of entry, and what it records.
KINDS = {
    "session": "a session started (its record committed)",
    "message": "a message committed",
    "end": "a session ended",
    "report": "a participant reported the session",
    "safety": "the safety engine warned a sender, or escalated the conversation's risk",
    "flag": "a session moved to the reported class by an operator or the safety engine",
    "hold": "a legal hold placed",
    "release": "a legal hold released",
    "erasure": "a participant asked for their session to be erased",
    "shred": "rows of a session destroyed by retention (their keys destroyed first)",
    "delete": "a session deleted: erased, or past every retention class",
    "keys": "key buckets destroyed by the purge",
    "kek": "the key-encryption key rotated",
    "read": "a person read a session",
    "export": "a person exported a session's transcript",
}


_GIL_HELD_BYTES = 2047


def canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def entry(kind: str, *, at: int, session_id: str | None = None, **fields: Any) -> AuditRecord:
    """An entry of ``kind`` with these fields (JSON values), ready to append."""
    if kind not in KINDS:
        raise ValueError(f"unknown audit entry kind {kind!r}")
    body: dict[str, Any] = {"kind": kind, "at": at, **fields}
    if session_id is not None:
        body["session"] = session_id
    return AuditRecord(at, kind, session_id, canonical(body))


def digest(value: bytes | None) -> str | None:
    """SHA-256 of a sealed value (its ciphertext), hex; None stays None."""
    return None if value is None else sha256_hex(value)


def sha256_hex(data: bytes) -> str:
    # Fed in pieces that hashlib hashes without releasing the GIL (it releases it for 2,048
    # bytes and more): the recorder's thread hashes every message, and each release costs a
    # hand-over to the busy event loop of up to the 5 ms switch interval.
    hasher = hashlib.sha256()
    for start in range(0, len(data), _GIL_HELD_BYTES):
        hasher.update(data[start : start + _GIL_HELD_BYTES])
    return hasher.hexdigest()


def metadata_commitment(salt: bytes, values: Sequence[Sequence[object]]) -> str:
    """HMAC-SHA256 under a session's metadata salt of rows of values (pseudonyms, receipts)."""
    return hmac.new(salt, canonical({"rows": [list(v) for v in values]}), "sha256").hexdigest()


def parse_body(index: int, body: bytes) -> dict[str, Any]:
    """An entry's fields; ``AuditVerificationError`` if the body is not a canonical entry."""
    try:
        fields = json.loads(body)
    except (ValueError, RecursionError):  # bad UTF-8 or JSON, a 5,000-digit number, nesting
        raise AuditVerificationError(f"entry {index}: its body is not JSON") from None
    if not isinstance(fields, dict) or fields.get("kind") not in KINDS:
        raise AuditVerificationError(f"entry {index}: not an audit entry (no known kind)")
    if type(fields.get("at")) is not int or canonical(fields) != body:
        raise AuditVerificationError(f"entry {index}: its body is not in canonical form")
    return fields
