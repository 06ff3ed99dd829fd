"""What an outside witness needs to hold the log to its checkpoints (docs/audit.md).

A witness keeps checkpoints (from ``checkpoint_file``, ``checkpoint_url`` or evidence packages)
and later asks whether a newer one extends an older one. With the data directory, the proof
comes from the store (``local_consistency``); without it, the operator hands over a proof file
(``audit prove-consistency``) that the witness checks with the published key alone
(``read_proof``, then ``check_consistency``). Every message says which checkpoint, OLD or NEW,
or which side, the log or the checkpoints, does not hold.
"""

from __future__ import annotations

import json
from typing import Any

from logwarden.audit import checkpoint as notes
from logwarden.audit.log import read_head
from logwarden.audit.proofs import verify_consistency
from logwarden.errors import AuditVerificationError
from logwarden.store import Store

__all__ = [
    "PROOF_FORMAT",
    "check_consistency",
    "local_consistency",
    "proof_document",
    "read_proof",
]

PROOF_FORMAT = "logwarden-consistency/1"
MAX_PROOF_BYTES = 64 << 10  # 64 KiB: a proof holds at most 2 * 64 hashes, about 9 KB


def check_consistency(
    old: notes.Checkpoint, new: notes.Checkpoint, proof: list[bytes], *, source: str
) -> None:
    """Check that ``new`` extends ``old`` by ``proof`` (RFC 9162 §2.1.4.2).

    Raises:
        AuditVerificationError: saying that NEW does not extend OLD by the proof ``source``
            gave, and why.
    """
    if old.size > new.size:
        raise AuditVerificationError(
            f"OLD has {old.size} entries, more than NEW's {new.size}: NEW cannot extend it"
        )
    try:
        verify_consistency(
            old_size=old.size,
            new_size=new.size,
            old_root=old.root_hash,
            new_root=new.root_hash,
            proof=proof,
        )
    except AuditVerificationError as exc:
        raise AuditVerificationError(
            f"NEW does not extend OLD by the proof {source} gave ({exc})"
        ) from None


def local_consistency(store: Store, old: notes.Checkpoint, new: notes.Checkpoint) -> list[bytes]:
    """The consistency proof from ``old`` to ``new`` out of the local log, once checked.

    Raises:
        AuditVerificationError: if the local log does not lead from OLD to NEW, saying which
            of them its entries do not give (the local store was rewritten, or a checkpoint is
            not this log's).
    """
    if old.size > new.size:
        check_consistency(old, new, [], source="nobody")  # names the sizes
    held = read_head(store).size
    if new.size > held:
        raise AuditVerificationError(
            f"NEW covers {new.size} entries but the local log holds {held}: the local log was "
            "truncated, or NEW is not this log's"
        )
    proof = store.audit_consistency(old_size=old.size, new_size=new.size)
    try:
        check_consistency(old, new, proof, source="the local log")
    except AuditVerificationError:
        differ = [
            f"its first {c.size} entries do not give {name}'s root"
            for name, c in (("OLD", old), ("NEW", new))
            if c.size and store.audit_root(c.size) != c.root_hash
        ]
        raise AuditVerificationError(
            f"the local log does not lead from OLD to NEW ({'; '.join(differ) or 'no proof'}):"
            " the local store was rewritten, or a checkpoint is not this log's"
        ) from None
    return proof


def proof_document(old: notes.Checkpoint, new: notes.Checkpoint, proof: list[bytes]) -> bytes:
    """The proof file ``audit prove-consistency`` writes (JSON)."""
    document = {
        "format": PROOF_FORMAT,
        "origin": new.origin,
        "old_size": old.size,
        "new_size": new.size,
        "proof": [h.hex() for h in proof],
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def read_proof(data: bytes, *, old: notes.Checkpoint, new: notes.Checkpoint) -> list[bytes]:
    """The hashes of a proof file, once it is shown to be the proof between these two.

    The sizes in the file are only checked against the signed checkpoints' (a proof binds
    roots only for the sizes it is verified with, and those come from the signatures).

    Raises:
        AuditVerificationError: naming what is wrong with the file.
    """
    if len(data) > MAX_PROOF_BYTES:
        raise AuditVerificationError(f"the proof file is over {MAX_PROOF_BYTES // 1024} KiB")
    try:
        document: Any = json.loads(data)
    except (ValueError, RecursionError):
        raise AuditVerificationError("the proof file is not JSON") from None
    if not isinstance(document, dict) or document.get("format") != PROOF_FORMAT:
        raise AuditVerificationError(f"the proof file is not a {PROOF_FORMAT} document")
    said = (document.get("origin"), document.get("old_size"), document.get("new_size"))
    if said != (new.origin, old.size, new.size):
        raise AuditVerificationError(
            f"the proof file is for {said[0]!r} from size {said[1]} to {said[2]}; OLD and NEW "
            f"are {new.origin!r} sizes {old.size} and {new.size}"
        )
    hashes = document.get("proof")
    if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
        raise AuditVerificationError("the proof file's proof is not a list of hex hashes")
    try:
        return [bytes.fromhex(h) for h in hashes]
    except ValueError:
        raise AuditVerificationError("the proof file's proof is not a list of hex hashes") from None
