"""Verifying the audit log's Merkle proofs: RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2
(consistency).

The tree is the one ``merkle.py`` builds (RFC 9162 §2.1, the same as RFC 6962 §2.1 for
SHA-256): leaf hashes are SHA-256(0x00 || data), interior nodes SHA-256(0x01 || left || right),
the empty tree SHA-256(""). The verifiers below only ever hash interior nodes (prefix 0x01);
the caller hashes the leaf with ``merkle.leaf_hash``.

Each ``verify_*`` returns ``None`` or raises ``AuditVerificationError`` saying which check
failed, with the expected and computed values in hex: there is no boolean to forget to check.
Malformed input (a hash that is not 32 bytes, an index or size out of range, a proof of the
wrong length) is rejected before any hashing, with a message of its own.

A proof binds a leaf (or an old tree) to a root *for the tree size it is given*; it does not
bind the size. Two sizes can give a leaf the same route to the root (leaf 0 of a tree of 5 or
of 6), so sizes and roots must come together from a signed tree head, never from the party
that supplied the proof.
"""

from __future__ import annotations

from collections.abc import Sequence

from logwarden.audit.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    consistency_proof_nodes,
    inclusion_proof_nodes,
    node_hash,
)
from logwarden.errors import AuditVerificationError

__all__ = ["verify_consistency", "verify_inclusion"]


def _require_hash(what: str, name: str, value: object) -> None:
    if not isinstance(value, bytes):
        raise AuditVerificationError(
            f"{what}: {name} must be {HASH_SIZE} bytes, got {type(value).__name__}"
        )
    if len(value) != HASH_SIZE:
        raise AuditVerificationError(
            f"{what}: {name} must be {HASH_SIZE} bytes (SHA-256), got {len(value)} bytes"
        )


def _require_proof_hashes(what: str, proof: Sequence[bytes]) -> None:
    for i, h in enumerate(proof):
        _require_hash(what, f"proof[{i}]", h)


def _require_length(what: str, proof: Sequence[bytes], expected: int) -> None:
    if len(proof) != expected:
        raise AuditVerificationError(
            f"{what}: the proof must have {expected} hashes, got {len(proof)}"
        )


def _mismatch(what: str, name: str, *, expected: bytes, computed: bytes) -> None:
    if computed != expected:
        raise AuditVerificationError(
            f"{what}: {name} does not match: expected {expected.hex()}, computed {computed.hex()}"
        )


def verify_inclusion(
    *, leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``tree_size`` leaves whose root
    is ``root``, by the algorithm of RFC 9162 §2.1.3.2.

    Args:
        leaf_hash: ``merkle.leaf_hash`` of the entry (32 bytes).
        index: the leaf's 0-based position.
        tree_size: the number of leaves, from the same signed tree head as ``root``.
        proof: the inclusion path, bottom-up, as ``merkle.inclusion_proof`` gives it.
        root: the tree's root hash (32 bytes).

    Raises:
        AuditVerificationError: a hash is not 32 bytes, ``index`` is not in ``[0, tree_size)``,
            the proof has the wrong number of hashes, or the proof leads to another root (the
            message gives the expected and the computed root).
    """
    what = f"inclusion proof for leaf {index} of a tree of size {tree_size}"
    _require_hash(what, "leaf hash", leaf_hash)
    _require_hash(what, "root", root)
    _require_proof_hashes(what, proof)

    # 1. If leaf_index is greater than or equal to tree_size, fail. (A negative index or size
    #    is not expressible in the RFC's unsigned integers; it fails here too.)
    if index < 0 or index >= tree_size:
        raise AuditVerificationError(f"{what}: the index must be in [0, {max(tree_size, 0)})")
    # Not an RFC step: a proof of the wrong length would fail at 4a or 5 below; checking its
    # length first lets the message say what is wrong with it.
    _require_length(what, proof, len(inclusion_proof_nodes(index, tree_size)))

    # 2. Set fn to leaf_index and sn to tree_size - 1.
    fn, sn = index, tree_size - 1
    # 3. Set r to hash.
    r = leaf_hash
    # 4. For each value p in the inclusion_path array:
    for p in proof:
        # a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            raise AuditVerificationError(f"{what}: the proof is longer than the path to the root")
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn & 1 or fn == sn:
            #  i. Set r to HASH(0x01 || p || r).
            r = node_hash(p, r)
            #  ii. If LSB(fn) is not set, then right-shift both fn and sn equally until either
            #      LSB(fn) is set or fn is 0.
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        # Otherwise:
        else:
            #  i. Set r to HASH(0x01 || r || p).
            r = node_hash(r, p)
        # c. Finally, right-shift both fn and sn one time.
        fn, sn = fn >> 1, sn >> 1

    # 5. Compare sn to 0. Compare r against the root_hash. If sn is equal to 0 and r and the
    #    root_hash are equal, then the log has proven the inclusion of hash. Otherwise, fail.
    if sn != 0:
        raise AuditVerificationError(f"{what}: the proof ends below the root")
    _mismatch(what, "root", expected=root, computed=r)


def verify_consistency(
    *, old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``old_size`` leaves with root ``old_root`` is a prefix of the tree
    of ``new_size`` leaves with root ``new_root``, by the algorithm of RFC 9162 §2.1.4.2.

    The RFC's algorithm needs ``0 < old_size < new_size``. The two cases it leaves out are
    settled here with an empty proof:

    - equal sizes: consistent exactly when the roots are equal;
    - ``old_size`` 0: the empty tree is a prefix of every tree, so the only check is that
      ``old_root`` is the empty-tree hash; nothing is proven about ``new_root``.

    Args:
        old_size: leaves in the older tree head.
        new_size: leaves in the newer tree head.
        old_root: root hash of the older tree head (32 bytes).
        new_root: root hash of the newer tree head (32 bytes).
        proof: the consistency path, as ``merkle.consistency_proof`` gives it.

    Raises:
        AuditVerificationError: a hash is not 32 bytes, a size is negative, ``old_size`` is
            larger than ``new_size``, the proof has the wrong number of hashes (any hashes at
            all for equal sizes or from the empty tree), or either root does not match what
            the proof computes (the message gives both values).
    """
    what = f"consistency proof from size {old_size} to size {new_size}"
    _require_hash(what, "old root", old_root)
    _require_hash(what, "new root", new_root)
    _require_proof_hashes(what, proof)
    if old_size < 0 or new_size < 0:
        raise AuditVerificationError(f"{what}: tree sizes cannot be negative")
    if old_size > new_size:
        raise AuditVerificationError(
            f"{what}: the old tree is larger than the new one, and a log only grows"
        )
    if old_size == 0:
        _require_length(what, proof, 0)
        _mismatch(
            what, "old root (size 0 is the empty tree)", expected=old_root, computed=EMPTY_ROOT
        )
        return
    if old_size == new_size:
        _require_length(what, proof, 0)
        _mismatch(
            what, "new root (equal sizes need equal roots)", expected=new_root, computed=old_root
        )
        return

    # From here 0 < first < second, as the RFC requires; first = old_size, second = new_size.
    # 1. If consistency_path is an empty array, stop and fail the proof verification.
    if not proof:
        raise AuditVerificationError(f"{what}: the proof is empty, and the sizes differ")
    # Not an RFC step: a proof of the wrong length would fail at 6a or 7 below; checking its
    # length first lets the message say what is wrong with it.
    _require_length(what, proof, len(consistency_proof_nodes(old_size, new_size)))
    path = list(proof)
    # 2. If first is an exact power of 2, then prepend first_hash to the consistency_path array.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # 3. Set fn to first - 1 and sn to second - 1.
    fn, sn = old_size - 1, new_size - 1
    # 4. If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is not set.
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    # 5. Set both fr and sr to the first value in the consistency_path array.
    fr = sr = path[0]
    # 6. For each subsequent value c in the consistency_path array:
    for c in path[1:]:
        # a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            raise AuditVerificationError(f"{what}: the proof is longer than the path to the root")
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn & 1 or fn == sn:
            #  i. Set fr to HASH(0x01 || c || fr).
            fr = node_hash(c, fr)
            #  ii. Set sr to HASH(0x01 || c || sr).
            sr = node_hash(c, sr)
            #  iii. If LSB(fn) is not set, then right-shift both fn and sn equally until
            #       either LSB(fn) is set or fn is 0.
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        # Otherwise:
        else:
            #  i. Set sr to HASH(0x01 || sr || c).
            sr = node_hash(sr, c)
        # c. Finally, right-shift both fn and sn one time.
        fn, sn = fn >> 1, sn >> 1

    # 7. Verify that the fr calculated is equal to the first_hash supplied, that the sr
    #    calculated is equal to the second_hash supplied, and that sn is 0.
    if sn != 0:
        raise AuditVerificationError(f"{what}: the proof ends below the root")
    _mismatch(what, "old root", expected=old_root, computed=fr)
    _mismatch(what, "new root", expected=new_root, computed=sr)
