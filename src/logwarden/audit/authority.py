"""Entries that excuse missing data or lift a protection carry the log's signature.

A ``delete`` or ``shred`` entry is what tells ``audit verify`` that rows are gone on purpose;
a ``release`` lifts a legal hold, an ``erasure`` lets the purge erase a chat, ``keys`` and
``kek`` record key destructions. Anyone who can write to the database can append an entry
(the store takes any well-formed one), so if such an entry were accepted on its word, a
database-only attacker could delete evidence and append the excuse for it.

So these kinds (``AUTHORISING``) are signed with the log's Ed25519 key, the one that signs its
checkpoints (``keys/audit.key``, never in the database), when ``AuditLog`` makes them. The
signature is the body's ``sig`` field: ``base64(4-byte key ID || Ed25519 signature)`` over
``CONTEXT || the canonical body without sig``. It is in the body, so the leaf commits to it and
an auditor can check it from what ``audit show`` prints and the published verifier key.

The recorder's entries (sessions, messages, reports, ends, safety events) are not signed: they
add evidence, they never excuse its absence, and the recorder writes them at the chat's rate.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from logwarden.audit import checkpoint as notes
from logwarden.audit.entries import canonical
from logwarden.errors import AuditVerificationError
from logwarden.store import AuditRecord

__all__ = ["AUTHORISING", "CONTEXT", "SIGNATURE_FIELD", "check_signature", "sign_entry"]

AUTHORISING = frozenset({"delete", "shred", "release", "erasure", "keys", "kek"})
SIGNATURE_FIELD = "sig"
# Separates these signatures from the checkpoints' (notes.sign_message explains how).
CONTEXT = b"logwarden/audit-entry/v1\n"


def sign_entry(record: AuditRecord, key: notes.SigningKey) -> AuditRecord:
    """``record`` with the log's signature in its body; other kinds come back unchanged.

    Raises:
        ValueError: if the record is already signed (a body is signed once, by its maker).
    """
    if record.kind not in AUTHORISING:
        return record
    fields = json.loads(record.body)
    if SIGNATURE_FIELD in fields:
        raise ValueError(f"this {record.kind} entry is already signed")
    signature = notes.sign_message(record.body, key, context=CONTEXT)
    fields[SIGNATURE_FIELD] = base64.b64encode(signature).decode("ascii")
    return record._replace(body=canonical(fields))


def check_signature(fields: dict[str, Any], verifier: notes.VerifierKey) -> None:
    """Check the signature of an authorising entry's fields (as ``parse_body`` read them).

    Raises:
        AuditVerificationError: saying whether it is missing, malformed or does not verify.
    """
    encoded = fields.get(SIGNATURE_FIELD)
    if encoded is None:
        raise AuditVerificationError("it is not signed")
    try:
        signature = base64.b64decode(encoded, validate=True) if isinstance(encoded, str) else b""
    except (binascii.Error, ValueError):
        signature = b""
    if not signature:
        raise AuditVerificationError("its signature is not base64")
    unsigned = {name: value for name, value in fields.items() if name != SIGNATURE_FIELD}
    notes.verify_message(canonical(unsigned), signature, verifier_key=verifier, context=CONTEXT)
