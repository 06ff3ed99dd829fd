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
    "BULK",
    "KINDS",
    "MAX_BODY",
    "SIGNED",
    "digest",
    "entry",
    "metadata_commitment",
    "parse_body",
    "schema_problem",
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
    "resume": "an operator let the signer sign again after it had refused (an alarm)",
}

# The recorder's bulk: one entry per chat or message, written at the chat's rate, never signed.
# Every other kind is signed with the log's key by whoever makes it (``authority.py``).
BULK = frozenset({"session", "message", "end"})
SIGNED = frozenset(KINDS) - BULK

# No entry logwarden writes comes near this; a body past it is refused before it is parsed (a
# 48 MiB body of ``{}`` took 1.4 GB to parse).
MAX_BODY = 64 * 1024


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
    data = canonical(body)
    if len(data) > MAX_BODY:
        raise ValueError(f"a {kind} entry of {len(data)} bytes is over {MAX_BODY} bytes")
    return AuditRecord(at, kind, session_id, data)


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
    """An entry's fields; ``AuditVerificationError`` if the body is not a canonical entry (or
    is over ``MAX_BODY``: it is not parsed then)."""
    if len(body) > MAX_BODY:
        raise AuditVerificationError(
            f"entry {index}: its body is {len(body)} bytes, over the {MAX_BODY} an entry may "
            "hold: not an entry logwarden writes"
        )
    try:
        fields = json.loads(body)
    except (ValueError, RecursionError):  # bad UTF-8 or JSON, a 5,000-digit number, nesting
        raise AuditVerificationError(f"entry {index}: its body is not JSON") from None
    if not isinstance(fields, dict) or fields.get("kind") not in KINDS:
        raise AuditVerificationError(f"entry {index}: not an audit entry (no known kind)")
    if type(fields.get("at")) is not int or canonical(fields) != body:
        raise AuditVerificationError(f"entry {index}: its body is not in canonical form")
    return fields


# -- what each kind holds ------------------------------------------------------------------------


def _int(value: object) -> bool:
    return type(value) is int  # not a bool


def _str(value: object) -> bool:
    return isinstance(value, str)


def _maybe(check: Any) -> Any:
    return lambda value: value is None or check(value)


def _list(value: object) -> bool:
    return isinstance(value, list)


def _dict(value: object) -> bool:
    return isinstance(value, dict)


_SIGNATURE = {"made": _int, "sig": _str}  # authority.py: when it was signed, and the signature
_SESSION = {"session": _str}
_BY = {"by": _str}
_DESTROYED = {**_SESSION, **_BY, "policy": _dict}

# kind → {field: check} for every field besides kind and at; no other field may appear.
_FIELDS: dict[str, dict[str, Any]] = {
    "session": {
        **_SESSION,
        "day": _int,
        "interests": _maybe(_str),
        "addresses": _list,
        "people": _str,
        "receipts": _str,
    },
    "message": {**_SESSION, "seq": _int, "slot": _int, "sealed": _str, "text": _str},
    "end": {**_SESSION, "reason": _str, "by": _maybe(_int), "messages": _int},
    "report": {**_SESSION, "slot": _int, "reason": _str, "comment": _maybe(_str)},
    "safety": {**_SESSION, "slot": _maybe(_int), "event": _str, "detail": _dict},
    "flag": {**_SESSION, **_BY, "reason": _maybe(_str)},
    "hold": {**_SESSION, **_BY, "reason": _str},
    "release": {**_SESSION, **_BY, "hold": _maybe(_int), "reason": _str},
    "erasure": {**_SESSION, "until": _int, "end": _int, "window": _int},
    "shred": {**_DESTROYED, "what": _list, "why": _str, "keys": _str},
    "delete": {**_DESTROYED, "why": _str},
    "keys": {**_BY, "buckets": _list, "policy": _dict},
    "kek": {**_BY},
    "read": {**_SESSION, **_BY, "what": _str, "reason": _str},
    "export": {**_SESSION, **_BY, "reason": _str, "messages": _int},
    "resume": {**_BY, "reason": _str, "alarm": _dict},
}
# Fields a kind may leave out: a read names a session when it reads one.
_OPTIONAL = {"read": frozenset({"session"})}
# kind → (every field's check, signature included; the fields it must have). Worked out once:
# ``audit verify`` asks this of every entry, a million messages included.
_SHAPES = {
    kind: (
        (checks := fields | (_SIGNATURE if kind in SIGNED else {})),
        frozenset(checks) - _OPTIONAL.get(kind, frozenset()),
    )
    for kind, fields in _FIELDS.items()
}


def schema_problem(fields: dict[str, Any]) -> str | None:
    """What is wrong with an entry's fields (as ``parse_body`` read them) for its kind: a
    field missing, of the wrong type, or one its kind does not have; None if nothing.

    Checked by ``audit verify`` on every entry: a body logwarden did not write counts for
    nothing, however it got into the log."""
    kind = fields["kind"]
    checks, required = _SHAPES[kind]
    for name, value in fields.items():
        check = checks.get(name)
        if check is None:
            if name not in ("kind", "at"):
                return f"a {kind} entry has no field {name!r}"
        elif not check(value):
            return f"the field {name!r} of a {kind} entry is malformed"
    missing = required.difference(fields)
    if missing:
        return f"a {kind} entry needs the field {min(missing)!r}"
    return None
