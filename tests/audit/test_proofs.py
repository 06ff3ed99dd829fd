"""Verifying inclusion and consistency proofs (RFC 9162 §2.1.3.2 and §2.1.4.2).

Every genuine proof verifies, for every leaf and every pair of sizes of many trees; any change
to a proof, a leaf, a root or an index fails with AuditVerificationError; malformed input is
refused with a message that says what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logwarden.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    NodeId,
    consistency_proof,
    consistency_proof_from,
    inclusion_proof,
    inclusion_proof_from,
    inclusion_proof_nodes,
    leaf_hash,
    node_hash,
    root,
    root_from,
)
from logwarden.audit.proofs import verify_consistency, verify_inclusion
from logwarden.errors import AuditVerificationError
from tests.audit.rfc6962 import VECTOR_LEAVES, VECTORS

# Hypothesis strategies. STYLE.md keeps shared ones in tests/strategies.py; these move there
# when a second module needs them.
leaf_data = st.lists(st.binary(max_size=12), min_size=1, max_size=150)


def leaves(n: int) -> list[bytes]:
    """n distinct leaf hashes."""
    return [leaf_hash(b"entry %d" % i) for i in range(n)]


def flip(h: bytes, bit: int) -> bytes:
    """h with one bit inverted."""
    changed = bytearray(h)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


class Stored:
    """A tree as the store will hold it: the perfect nodes reported while appending."""

    def __init__(self, hashes: Sequence[bytes]) -> None:
        self.nodes: dict[NodeId, bytes] = {}
        compact = CompactRange()
        compact.extend(hashes, on_node=self._keep)
        self.size = compact.size
        self.root = compact.root()

    def _keep(self, level: int, index: int, h: bytes) -> None:
        self.nodes[level, index] = h

    def hash_at(self, level: int, index: int) -> bytes:
        return self.nodes[level, index]

    def leaf(self, index: int) -> bytes:
        return self.nodes[0, index]

    def check_inclusion(self, index: int, size: int) -> None:
        verify_inclusion(
            leaf_hash=self.leaf(index),
            index=index,
            tree_size=size,
            proof=inclusion_proof_from(self.hash_at, index=index, size=size),
            root=root_from(self.hash_at, size),
        )

    def check_consistency(self, old_size: int, new_size: int) -> None:
        verify_consistency(
            old_size=old_size,
            new_size=new_size,
            old_root=root_from(self.hash_at, old_size),
            new_root=root_from(self.hash_at, new_size),
            proof=consistency_proof_from(self.hash_at, old_size=old_size, new_size=new_size),
        )


def route(index: int, size: int) -> tuple[bool, ...]:
    """For each proof element, whether it is a left sibling: the leaf's way to the root."""
    return tuple(nodes[0][1] << nodes[0][0] < index for nodes in inclusion_proof_nodes(index, size))


def fails(match: str | None = None) -> Any:
    return pytest.raises(AuditVerificationError, match=match)


class TestKnownAnswers:
    """The RFC 6962 reference test data, as published by transparency-dev/merkle."""

    @pytest.mark.parametrize("case", VECTORS["inclusion"], ids=lambda c: f"{c['leaf_index']}@")
    def test_inclusion(self, case: dict[str, Any]) -> None:
        """Each published inclusion proof verifies against the published root."""
        index, size = case["leaf_index"], case["tree_size"]
        verify_inclusion(
            leaf_hash=VECTOR_LEAVES[index],
            index=index,
            tree_size=size,
            proof=[bytes.fromhex(h) for h in case["proof"]],
            root=bytes.fromhex(VECTORS["roots"][size]),
        )

    @pytest.mark.parametrize("case", VECTORS["consistency"], ids=lambda c: f"{c['old_size']}->")
    def test_consistency(self, case: dict[str, Any]) -> None:
        """Each published consistency proof verifies between the published roots."""
        verify_consistency(
            old_size=case["old_size"],
            new_size=case["new_size"],
            old_root=bytes.fromhex(VECTORS["roots"][case["old_size"]]),
            new_root=bytes.fromhex(VECTORS["roots"][case["new_size"]]),
            proof=[bytes.fromhex(h) for h in case["proof"]],
        )

    def test_returns_none(self) -> None:
        """A verification that passes returns None: there is no boolean to forget."""
        d = VECTOR_LEAVES
        result = verify_inclusion(  # type: ignore[func-returns-value]
            leaf_hash=d[3], index=3, tree_size=8, proof=inclusion_proof(d, 3), root=root(d)
        )
        assert result is None


class TestEveryProofVerifies:
    def test_every_leaf_and_every_pair_up_to_64(self) -> None:
        """For every size 1..64, every leaf's proof and every (old, new) pair's proof verify."""
        tree = Stored(leaves(64))
        for new_size in range(1, 65):
            for index in range(new_size):
                tree.check_inclusion(index, new_size)
            for old_size in range(new_size + 1):
                tree.check_consistency(old_size, new_size)

    @pytest.mark.parametrize("n", [1000, 1023, 1024, 1025])
    def test_every_leaf_and_every_old_size_of_larger_trees(self, n: int) -> None:
        """Every leaf's proof, and the proof from every older size, verify."""
        tree = Stored(leaves(n))
        for index in range(n):
            tree.check_inclusion(index, n)
        for old_size in range(n + 1):
            tree.check_consistency(old_size, n)

    def test_a_tree_of_a_trillion_leaves(self) -> None:
        """Proofs built from O(log n) stored nodes verify in a tree of 2**40 + 12345 leaves.

        Every leaf is the same, so each level's perfect nodes share one hash and ``hash_at``
        is a table look-up: a real tree, just too regular for mutation tests.
        """
        per_level = [leaf_hash(b"same")]
        for _ in range(41):
            per_level.append(node_hash(per_level[-1], per_level[-1]))
        reads: list[tuple[int, int]] = []

        def hash_at(level: int, index: int) -> bytes:
            reads.append((level, index))
            return per_level[level]

        old_size, size = 2**39 + 7, 2**40 + 12345
        new_root = root_from(hash_at, size)
        for index in (0, 2**39 + 3, size - 1):
            reads.clear()
            proof = inclusion_proof_from(hash_at, index=index, size=size)
            assert len(reads) <= 2 * 41
            verify_inclusion(
                leaf_hash=per_level[0], index=index, tree_size=size, proof=proof, root=new_root
            )
        assert len(inclusion_proof_from(hash_at, index=0, size=size)) == 41
        verify_consistency(
            old_size=old_size,
            new_size=size,
            old_root=root_from(hash_at, old_size),
            new_root=new_root,
            proof=consistency_proof_from(hash_at, old_size=old_size, new_size=size),
        )


INCLUSION_CASES = [(0, 1), (0, 2), (5, 13), (12, 13), (6, 8), (1024, 1025)]


class TestInclusionTampering:
    @pytest.mark.parametrize(("index", "size"), INCLUSION_CASES)
    def test_every_bit_of_every_proof_element(self, index: int, size: int) -> None:
        """Flipping any single bit of any proof element fails with a root mismatch."""
        d = leaves(size)
        proof, r = inclusion_proof(d, index), root(d)
        for i in range(len(proof)):
            for bit in range(256):
                bad = [*proof[:i], flip(proof[i], bit), *proof[i + 1 :]]
                with fails("root does not match"):
                    verify_inclusion(
                        leaf_hash=d[index], index=index, tree_size=size, proof=bad, root=r
                    )

    @pytest.mark.parametrize(("index", "size"), INCLUSION_CASES)
    def test_every_bit_of_the_leaf(self, index: int, size: int) -> None:
        """Flipping any bit of the leaf hash fails; the message gives the expected root and the
        root of the tree that leaf would make."""
        d = leaves(size)
        proof, r = inclusion_proof(d, index), root(d)
        for bit in range(256):
            bad = flip(d[index], bit)
            computed = root([*d[:index], bad, *d[index + 1 :]])
            with fails(f"expected {r.hex()}, computed {computed.hex()}"):
                verify_inclusion(leaf_hash=bad, index=index, tree_size=size, proof=proof, root=r)

    @pytest.mark.parametrize(("index", "size"), INCLUSION_CASES)
    def test_every_bit_of_the_root(self, index: int, size: int) -> None:
        """Flipping any bit of the root fails, and the message shows the true root as computed."""
        d = leaves(size)
        proof, r = inclusion_proof(d, index), root(d)
        for bit in range(256):
            bad = flip(r, bit)
            with fails(f"expected {bad.hex()}, computed {r.hex()}"):
                verify_inclusion(
                    leaf_hash=d[index], index=index, tree_size=size, proof=proof, root=bad
                )

    @pytest.mark.parametrize("size", range(2, 34))
    def test_every_other_index(self, size: int) -> None:
        """A proof checked at any other index of the same tree fails."""
        d = leaves(size)
        r = root(d)
        for index in range(size):
            proof = inclusion_proof(d, index)
            for other in range(size):
                if other != index:
                    with fails():
                        verify_inclusion(
                            leaf_hash=d[index], index=other, tree_size=size, proof=proof, root=r
                        )

    @pytest.mark.parametrize("size", range(1, 34))
    def test_other_tree_sizes(self, size: int) -> None:
        """A proof checked at another tree size fails exactly when that size gives the leaf
        another route to the root.

        A size with the same route passes: the proof cannot tell leaf 0 of 5 from leaf 0 of 6.
        That is why the size must come from the signed tree head along with the root.
        """
        d = leaves(size)
        r = root(d)
        for index in range(size):
            proof = inclusion_proof(d, index)
            for other in range(index + 1, 2 * size + 2):
                if other == size:
                    continue
                if route(index, other) == route(index, size):
                    verify_inclusion(
                        leaf_hash=d[index], index=index, tree_size=other, proof=proof, root=r
                    )
                else:
                    with fails():
                        verify_inclusion(
                            leaf_hash=d[index], index=index, tree_size=other, proof=proof, root=r
                        )

    def test_same_route_example(self) -> None:
        """Leaf 0 of a tree of 5 has the same route as in a tree of 6, so the proof passes."""
        assert route(0, 5) == route(0, 6) == (False, False, False)
        assert route(4, 5) != route(4, 6)

    @pytest.mark.parametrize(("index", "size"), INCLUSION_CASES)
    def test_truncated_and_extended(self, index: int, size: int) -> None:
        """A proof missing its first or last hash, or with one added at either end, fails."""
        d = leaves(size)
        proof, r = inclusion_proof(d, index), root(d)
        n = len(proof)
        changed = [[*proof, d[0]], [d[0], *proof]]
        if proof:
            changed += [proof[1:], proof[:-1]]
        for bad in changed:
            with fails(f"the proof must have {n} hashes, got {len(bad)}"):
                verify_inclusion(leaf_hash=d[index], index=index, tree_size=size, proof=bad, root=r)

    def test_swapped_elements(self) -> None:
        """A proof with two of its hashes swapped fails."""
        d = leaves(13)
        proof, r = inclusion_proof(d, 5), root(d)
        for i in range(len(proof) - 1):
            bad = [*proof[:i], proof[i + 1], proof[i], *proof[i + 2 :]]
            with fails("root does not match"):
                verify_inclusion(leaf_hash=d[5], index=5, tree_size=13, proof=bad, root=r)


CONSISTENCY_CASES = [(1, 2), (2, 5), (4, 8), (5, 13), (6, 7), (7, 8), (512, 1025)]


class TestConsistencyTampering:
    @pytest.mark.parametrize(("old", "new"), CONSISTENCY_CASES)
    def test_every_bit_of_every_proof_element(self, old: int, new: int) -> None:
        """Flipping any single bit of any proof element fails."""
        d = leaves(new)
        proof, old_root, new_root = consistency_proof(d, old), root(d[:old]), root(d)
        for i in range(len(proof)):
            for bit in range(256):
                bad = [*proof[:i], flip(proof[i], bit), *proof[i + 1 :]]
                with fails("root does not match"):
                    verify_consistency(
                        old_size=old, new_size=new, old_root=old_root, new_root=new_root, proof=bad
                    )

    @pytest.mark.parametrize(("old", "new"), CONSISTENCY_CASES)
    def test_every_bit_of_either_root(self, old: int, new: int) -> None:
        """Flipping any bit of the old or the new root fails, naming the root that differs."""
        d = leaves(new)
        proof, old_root, new_root = consistency_proof(d, old), root(d[:old]), root(d)
        for bit in range(256):
            with fails("root does not match"):
                verify_consistency(
                    old_size=old,
                    new_size=new,
                    old_root=flip(old_root, bit),
                    new_root=new_root,
                    proof=proof,
                )
            with fails(f"new root does not match: expected {flip(new_root, bit).hex()}"):
                verify_consistency(
                    old_size=old,
                    new_size=new,
                    old_root=old_root,
                    new_root=flip(new_root, bit),
                    proof=proof,
                )

    @pytest.mark.parametrize(("old", "new"), CONSISTENCY_CASES)
    def test_truncated_and_extended(self, old: int, new: int) -> None:
        """A proof missing its first or last hash, or with one added at either end, fails."""
        d = leaves(new)
        proof, old_root, new_root = consistency_proof(d, old), root(d[:old]), root(d)
        n = len(proof)
        for bad in ([*proof, d[0]], [old_root, *proof], proof[1:], proof[:-1]):
            expected = "the proof is empty" if not bad else f"must have {n} hashes, got {len(bad)}"
            with fails(expected):
                verify_consistency(
                    old_size=old, new_size=new, old_root=old_root, new_root=new_root, proof=bad
                )

    @pytest.mark.parametrize(("old", "new"), CONSISTENCY_CASES)
    def test_rewritten_history(self, old: int, new: int) -> None:
        """A new tree in which any old leaf was changed is not consistent with the old root.

        The message names the root that fails. When the old size is a power of two the proof
        omits the old root (RFC step 2 puts the verifier's own in its place), so the old root
        cannot differ and the new root does: the proof rebuilds the genuine new tree.
        """
        d = leaves(new)
        old_root = root(d[:old])
        for j in {0, old // 2, old - 1}:
            rewritten = [*d[:j], leaf_hash(b"rewritten"), *d[j + 1 :]]
            if old & (old - 1) == 0:
                expected, computed, which = root(rewritten), root(d), "new"
            else:
                expected, computed, which = old_root, root(rewritten[:old]), "old"
            with fails(
                f"{which} root does not match: expected {expected.hex()}, computed {computed.hex()}"
            ):
                verify_consistency(
                    old_size=old,
                    new_size=new,
                    old_root=old_root,
                    new_root=root(rewritten),
                    proof=consistency_proof(rewritten, old),
                )

    @pytest.mark.parametrize(("old", "new"), [(5, 13), (6, 8), (2, 5)])
    def test_sizes_that_need_another_proof_length(self, old: int, new: int) -> None:
        """Sizes moved so that the proof would need another number of hashes fail."""
        d = leaves(2 * new)
        proof, old_root, new_root = consistency_proof(d[:new], old), root(d[:old]), root(d[:new])
        tried = 0
        for other_old, other_new in [(old - 1, new), (old + 1, new), (old, 2 * new), (1, new)]:
            if len(consistency_proof(d[:other_new], other_old)) == len(proof):
                continue
            tried += 1
            with fails("the proof must have"):
                verify_consistency(
                    old_size=other_old,
                    new_size=other_new,
                    old_root=old_root,
                    new_root=new_root,
                    proof=proof,
                )
        assert tried


H = bytes(range(32))


class TestMalformedInclusion:
    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"leaf_hash": bytes(31)}, "leaf hash must be 32 bytes (SHA-256), got 31 bytes"),
            ({"leaf_hash": H.hex()}, "leaf hash must be 32 bytes, got str"),
            ({"root": bytes(33)}, "root must be 32 bytes (SHA-256), got 33 bytes"),
            ({"proof": [H, b"", H]}, "proof[1] must be 32 bytes (SHA-256), got 0 bytes"),
            ({"index": 8}, "leaf 8 of a tree of size 8: the index must be in [0, 8)"),
            ({"index": 9}, "the index must be in [0, 8)"),
            ({"index": -1}, "the index must be in [0, 8)"),
            ({"tree_size": 0, "index": 0}, "the index must be in [0, 0)"),
            ({"tree_size": -3, "index": 0}, "the index must be in [0, 0)"),
            ({"proof": [H, H]}, "the proof must have 3 hashes, got 2"),
            ({"proof": [H, H, H, H]}, "the proof must have 3 hashes, got 4"),
            ({"index": 0, "tree_size": 1}, "the proof must have 0 hashes, got 3"),
        ],
    )
    def test_refused(self, changes: dict[str, Any], message: str) -> None:
        """Malformed input is refused with a message that says what is wrong."""
        arguments: dict[str, Any] = {
            "leaf_hash": H,
            "index": 3,
            "tree_size": 8,
            "proof": [H, H, H],
            "root": H,
        }
        with fails(re.escape(message)):
            verify_inclusion(**(arguments | changes))

    def test_single_leaf_tree(self) -> None:
        """In a tree of one leaf the proof is empty and the root is the leaf hash itself."""
        verify_inclusion(leaf_hash=H, index=0, tree_size=1, proof=[], root=H)
        with fails(f"expected {EMPTY_ROOT.hex()}, computed {H.hex()}"):
            verify_inclusion(leaf_hash=H, index=0, tree_size=1, proof=[], root=EMPTY_ROOT)


class TestMalformedConsistency:
    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"old_root": bytes(31)}, "old root must be 32 bytes (SHA-256), got 31 bytes"),
            ({"new_root": bytearray(32)}, "new root must be 32 bytes, got bytearray"),
            ({"proof": [H, H[:16], H]}, "proof[1] must be 32 bytes (SHA-256), got 16 bytes"),
            ({"old_size": 9}, "from size 9 to size 8: the old tree is larger than the new one"),
            ({"old_size": -1}, "tree sizes cannot be negative"),
            ({"old_size": 0}, "the proof must have 0 hashes, got 3"),
            ({"old_size": 8}, "the proof must have 0 hashes, got 3"),
            ({"proof": []}, "the proof is empty, and the sizes differ"),
            ({"proof": [H, H]}, "the proof must have 3 hashes, got 2"),
            ({"proof": [H, H, H, H]}, "the proof must have 3 hashes, got 4"),
            (
                {"old_size": 0, "proof": []},
                f"old root (size 0 is the empty tree) does not match: expected {H.hex()}, "
                f"computed {EMPTY_ROOT.hex()}",
            ),
            (
                {"old_size": 8, "proof": [], "new_root": EMPTY_ROOT},
                f"new root (equal sizes need equal roots) does not match: "
                f"expected {EMPTY_ROOT.hex()}, computed {H.hex()}",
            ),
        ],
    )
    def test_refused(self, changes: dict[str, Any], message: str) -> None:
        """Malformed input is refused with a message that says what is wrong."""
        arguments: dict[str, Any] = {
            "old_size": 6,
            "new_size": 8,
            "old_root": H,
            "new_root": H,
            "proof": [H, H, H],
        }
        with fails(re.escape(message)):
            verify_consistency(**(arguments | changes))

    def test_from_the_empty_tree(self) -> None:
        """From the empty tree an empty proof suffices: every tree extends it."""
        verify_consistency(old_size=0, new_size=5, old_root=EMPTY_ROOT, new_root=H, proof=[])
        verify_consistency(
            old_size=0, new_size=0, old_root=EMPTY_ROOT, new_root=EMPTY_ROOT, proof=[]
        )

    def test_equal_sizes(self) -> None:
        """Between equal sizes an empty proof suffices when the roots are equal."""
        verify_consistency(old_size=8, new_size=8, old_root=H, new_root=H, proof=[])


class TestProperties:
    @settings(max_examples=100)
    @given(data=leaf_data, choice=st.data())
    def test_inclusion_verifies_and_any_bit_flip_fails(
        self, data: list[bytes], choice: st.DataObject
    ) -> None:
        """For any leaves and index the proof verifies; one flipped bit anywhere fails."""
        d = [leaf_hash(item) for item in data]
        index = choice.draw(st.integers(0, len(d) - 1), label="index")
        proof, r = inclusion_proof(d, index), root(d)
        verify_inclusion(leaf_hash=d[index], index=index, tree_size=len(d), proof=proof, root=r)

        values: dict[str, Any] = {"leaf_hash": d[index], "root": r, "proof": proof}
        target = choice.draw(st.integers(0, len(proof) + 1), label="target")
        bit = choice.draw(st.integers(0, 255), label="bit")
        if target == len(proof):
            values["leaf_hash"] = flip(d[index], bit)
        elif target == len(proof) + 1:
            values["root"] = flip(r, bit)
        else:
            values["proof"] = [*proof[:target], flip(proof[target], bit), *proof[target + 1 :]]
        with fails("root does not match"):
            verify_inclusion(index=index, tree_size=len(d), **values)

    @settings(max_examples=100)
    @given(data=leaf_data, choice=st.data())
    def test_changed_leaf_data_fails(self, data: list[bytes], choice: st.DataObject) -> None:
        """Any change to the data of the proven leaf breaks its proof."""
        d = [leaf_hash(item) for item in data]
        index = choice.draw(st.integers(0, len(d) - 1), label="index")
        other = choice.draw(st.binary(max_size=12).filter(lambda b: b != data[index]))
        with fails("root does not match"):
            verify_inclusion(
                leaf_hash=leaf_hash(other),
                index=index,
                tree_size=len(d),
                proof=inclusion_proof(d, index),
                root=root(d),
            )

    @settings(max_examples=100)
    @given(data=leaf_data, choice=st.data())
    def test_consistency_verifies_and_any_bit_flip_fails(
        self, data: list[bytes], choice: st.DataObject
    ) -> None:
        """For any leaves and older size the proof verifies; one flipped bit in the proof or in
        a root it binds fails (from size 0 only the old root is bound)."""
        d = [leaf_hash(item) for item in data]
        old = choice.draw(st.integers(0, len(d)), label="old size")
        proof, old_root, new_root = consistency_proof(d, old), root(d[:old]), root(d)
        values: dict[str, Any] = {"old_root": old_root, "new_root": new_root, "proof": proof}
        verify_consistency(old_size=old, new_size=len(d), **values)

        roots_bound = 1 if old == 0 else 2
        target = choice.draw(st.integers(0, len(proof) + roots_bound - 1), label="target")
        bit = choice.draw(st.integers(0, 255), label="bit")
        if target == len(proof):
            values["old_root"] = flip(old_root, bit)
        elif target == len(proof) + 1:
            values["new_root"] = flip(new_root, bit)
        else:
            values["proof"] = [*proof[:target], flip(proof[target], bit), *proof[target + 1 :]]
        with fails("root .*does not match"):
            verify_consistency(old_size=old, new_size=len(d), **values)

    @settings(max_examples=100)
    @given(data=leaf_data, choice=st.data())
    def test_rewritten_old_leaf_fails(self, data: list[bytes], choice: st.DataObject) -> None:
        """Changing any leaf of the old tree makes the new tree inconsistent with the old root."""
        d = [leaf_hash(item) for item in data]
        old = choice.draw(st.integers(1, len(d)), label="old size")
        j = choice.draw(st.integers(0, old - 1), label="changed leaf")
        other = choice.draw(st.binary(max_size=12).filter(lambda b: b != data[j]))
        rewritten = [*d[:j], leaf_hash(other), *d[j + 1 :]]
        with fails("root .*does not match"):
            verify_consistency(
                old_size=old,
                new_size=len(d),
                old_root=root(d[:old]),
                new_root=root(rewritten),
                proof=consistency_proof(rewritten, old),
            )
