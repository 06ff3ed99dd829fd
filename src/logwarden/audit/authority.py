"""Every entry but the recorder's bulk ones carries the log's signature.

Anyone who can write to the database can append an entry (the store takes any well-formed
one), so an entry believed on its word lets a database-only attacker excuse what they destroy
(a ``delete``), lift a protection (a ``release``), make a chat erasable (an ``erasure``), frame
an operator (a ``read`` by someone who never read) or move a session into the reported class
early (a ``flag`` dated at its start).

So every kind in ``entries.SIGNED`` is signed with the log's Ed25519 key, the one that signs
its checkpoints (``keys/audit.key``, never in the database), by whoever makes it: ``AuditLog``
for retention and the CLI, the recorder (with the same key) for reports and safety events.
The signature is the body's ``sig`` field: ``base64(4-byte key ID || Ed25519 signature)`` over
``CONTEXT || the canonical body without sig``; the body also says when it was signed
(``made``, the signer's clock), which an ``--as-of`` drill cannot move. It is in the body, so
the leaf commits to it and an auditor can check it from what ``audit show`` prints and the
published verifier key.

The recorder's bulk (``entries.BULK``: sessions, messages, ends) is not signed: one signature
per message would cost the chat its rate. Those entries add evidence and are held to their
rows; they never excuse the absence of anything.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from logwarden.audit import checkpoint as notes
from logwarden.audit.entries import SIGNED, canonical
from logwarden.errors import AuditVerificationError
from logwarden.store import AuditRecord

__all__ = ["CONTEXT", "MADE_FIELD", "SIGNATURE_FIELD", "check_signature", "sign_entry"]

SIGNATURE_FIELD = "sig"
MADE_FIELD = "made"
# Separates these signatures from the checkpoints' (notes.sign_message explains how).
CONTEXT = b"logwarden/audit-entry/v1\n"


def sign_entry(record: AuditRecord, key: notes.SigningKey, *, made: int) -> AuditRecord:
    """``record`` signed with the log's key at ``made`` (ms, the signer's clock); records of
    the bulk kinds, and records signed already, come back unchanged."""
    if record.kind not in SIGNED:
        return record
    fields = json.loads(record.body)
    if SIGNATURE_FIELD in fields:
        return record  # signed once, by its maker
    fields[MADE_FIELD] = made
    signature = notes.sign_message(canonical(fields), key, context=CONTEXT)
    fields[SIGNATURE_FIELD] = base64.b64encode(signature).decode("ascii")
    return record._replace(body=canonical(fields))


def check_signature(fields: dict[str, Any], verifier: notes.VerifierKey) -> None:
    """Check the signature of a signed entry's fields (as ``parse_body`` read them).

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
