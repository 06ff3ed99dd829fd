"""The Merkle tree core: RFC 9162 §2.1 hashing, proof generation and the compact range.

Generated roots and proofs are checked three ways: against published known answers
(tests/vectors/merkle_rfc6962.json), against hand computation with hashlib, and against a
reference written line by line from the RFC's recursive definitions of MTH, PATH and PROOF.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logwarden.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    NodeId,
    compact_nodes,
    consistency_proof,
    consistency_proof_from,
    consistency_proof_nodes,
    hash_nodes,
    inclusion_proof,
    inclusion_proof_from,
    inclusion_proof_nodes,
    leaf_hash,
    node_hash,
    root,
    root_from,
)
from tests.audit.rfc6962 import VECTOR_LEAVES, VECTORS


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaves(n: int) -> list[bytes]:
    """n distinct leaf hashes."""
    return [leaf_hash(b"entry %d" % i) for i in range(n)]


# -- The reference: RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1 transcribed, slices and all ----------


def _k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def rfc_mth(d: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes."""
    if len(d) == 0:
        return sha256(b"")
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return sha256(b"\x01" + rfc_mth(d[:k]) + rfc_mth(d[k:]))


def rfc_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n])."""
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*rfc_path(m, d[:k]), rfc_mth(d[k:])]
    return [*rfc_path(m - k, d[k:]), rfc_mth(d[:k])]


def rfc_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b)."""
    if m == len(d):
        return [] if b else [rfc_mth(d)]
    k = _k(len(d))
    if m <= k:
        return [*rfc_subproof(m, d[:k], b), rfc_mth(d[k:])]
    return [*rfc_subproof(m - k, d[k:], False), rfc_mth(d[:k])]


def rfc_proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) for 0 < m <= n."""
    return rfc_subproof(m, d, True)


class Recorder:
    """An ``on_node`` that keeps every perfect node, and a ``hash_at`` that reads them back."""

    def __init__(self) -> None:
        self.nodes: dict[NodeId, bytes] = {}
        self.reads = 0

    def __call__(self, level: int, index: int, h: bytes) -> None:
        assert (level, index) not in self.nodes, "a perfect node is reported once"
        self.nodes[level, index] = h

    def hash_at(self, level: int, index: int) -> bytes:
        self.reads += 1
        return self.nodes[level, index]


def stored(hashes: Sequence[bytes]) -> Recorder:
    """The perfect nodes a store would hold after appending these leaf hashes."""
    recorder = Recorder()
    CompactRange().extend(hashes, on_node=recorder)
    return recorder


# -- Tests ------------------------------------------------------------------------------------


class TestHashing:
    def test_empty_tree_hash(self) -> None:
        """The empty tree's hash is SHA-256 of no bytes, e3b0c442…b855."""
        assert EMPTY_ROOT.hex() == (
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )
        assert root([]) == EMPTY_ROOT
        assert CompactRange().root() == EMPTY_ROOT

    def test_leaf_hash_is_prefixed_with_zero(self) -> None:
        """A leaf hash is SHA-256(0x00 || data); the empty leaf's is 6e340b9c…a01d."""
        assert leaf_hash(b"") == sha256(b"\x00")
        assert leaf_hash(b"").hex() == (
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        )
        assert leaf_hash(b"abc") == sha256(b"\x00abc")

    def test_node_hash_is_prefixed_with_one(self) -> None:
        """A node hash is SHA-256(0x01 || left || right), and order matters."""
        left, right = sha256(b"l"), sha256(b"r")
        assert node_hash(left, right) == sha256(b"\x01" + left + right)
        assert node_hash(left, right) != node_hash(right, left)

    def test_domain_separation(self) -> None:
        """A leaf whose data is two hashes does not hash like the node over those hashes."""
        left, right = sha256(b"l"), sha256(b"r")
        assert leaf_hash(left + right) != node_hash(left, right)
        assert leaf_hash(b"\x01" + left + right) != node_hash(left, right)


class TestKnownAnswers:
    """The RFC 6962 reference test data, as published by transparency-dev/merkle."""

    @pytest.mark.parametrize("size", range(len(VECTORS["roots"])))
    def test_roots(self, size: int) -> None:
        """The root of the first n reference leaves is the published root for size n."""
        assert root(VECTOR_LEAVES[:size]).hex() == VECTORS["roots"][size]

    @pytest.mark.parametrize("case", VECTORS["inclusion"], ids=lambda c: f"{c['leaf_index']}@")
    def test_inclusion_proofs(self, case: dict[str, Any]) -> None:
        """Each inclusion proof is the published one."""
        proof = inclusion_proof(VECTOR_LEAVES[: case["tree_size"]], case["leaf_index"])
        assert [h.hex() for h in proof] == case["proof"]

    @pytest.mark.parametrize("case", VECTORS["consistency"], ids=lambda c: f"{c['old_size']}->")
    def test_consistency_proofs(self, case: dict[str, Any]) -> None:
        """Each consistency proof is the published one."""
        proof = consistency_proof(VECTOR_LEAVES[: case["new_size"]], case["old_size"])
        assert [h.hex() for h in proof] == case["proof"]

    def test_three_leaves_by_hand(self) -> None:
        """A tree of three leaves is H(1 | H(1 | a | b) | c): the split is at 2, not 1.5."""
        a, b, c = (sha256(b"\x00" + d) for d in (b"a", b"b", b"c"))
        ab = sha256(b"\x01" + a + b)
        assert root([a, b, c]) == sha256(b"\x01" + ab + c)
        assert inclusion_proof([a, b, c], 0) == [b, c]
        assert inclusion_proof([a, b, c], 2) == [ab]
        assert consistency_proof([a, b, c], 2) == [c]
        assert consistency_proof([a, b, c], 1) == [b, c]

    def test_seven_leaves_by_hand(self) -> None:
        """A tree of seven leaves splits 4 | 3 and then 2 | 1 on the right border."""
        d = [sha256(b"\x00" + bytes([i])) for i in range(7)]
        h01, h23, h45 = (sha256(b"\x01" + d[i] + d[i + 1]) for i in (0, 2, 4))
        h03 = sha256(b"\x01" + h01 + h23)
        h46 = sha256(b"\x01" + h45 + d[6])
        assert root(d) == sha256(b"\x01" + h03 + h46)
        assert inclusion_proof(d, 6) == [h45, h03]
        assert inclusion_proof(d, 5) == [d[4], d[6], h03]
        assert consistency_proof(d, 4) == [h46]
        assert consistency_proof(d, 5) == [d[4], d[5], d[6], h03]


class TestAgainstTheRfcDefinitions:
    @pytest.mark.parametrize("n", range(65))
    def test_root(self, n: int) -> None:
        """root() is MTH for every size up to 64."""
        assert root(leaves(n)) == rfc_mth(leaves(n))

    @pytest.mark.parametrize("n", range(1, 65))
    def test_inclusion_proofs(self, n: int) -> None:
        """The inclusion proof of every leaf is PATH, and its length is what the nodes say."""
        d = leaves(n)
        for m in range(n):
            assert inclusion_proof(d, m) == rfc_path(m, d)
            assert len(inclusion_proof_nodes(m, n)) == len(rfc_path(m, d))

    @pytest.mark.parametrize("n", range(1, 65))
    def test_consistency_proofs(self, n: int) -> None:
        """The consistency proof from every smaller size is PROOF (empty from size 0)."""
        d = leaves(n)
        assert consistency_proof(d, 0) == []
        for m in range(1, n + 1):
            assert consistency_proof(d, m) == rfc_proof(m, d)
            assert len(consistency_proof_nodes(m, n)) == len(rfc_proof(m, d))


class TestGenerationRejects:
    @pytest.mark.parametrize(("index", "size"), [(0, 0), (3, 3), (-1, 3)])
    def test_index_outside_the_tree(self, index: int, size: int) -> None:
        """No inclusion proof exists for a leaf outside [0, size)."""
        with pytest.raises(ValueError, match=f"leaf {index} is not in a tree of size {size}"):
            inclusion_proof(leaves(size), index)

    @pytest.mark.parametrize(("old", "new"), [(4, 3), (-1, 3)])
    def test_old_size_outside_the_tree(self, old: int, new: int) -> None:
        """No consistency proof exists from a size larger than the tree, or negative."""
        with pytest.raises(ValueError, match=f"from size {old} to size {new}"):
            consistency_proof(leaves(new), old)

    def test_leaf_hash_of_the_wrong_length(self) -> None:
        """A leaf hash that is not 32 bytes is refused, not hashed into the tree."""
        with pytest.raises(ValueError, match="leaf hash is 31 bytes, not 32"):
            root([bytes(31)])

    def test_stored_node_of_the_wrong_length(self) -> None:
        """A stored node that is not 32 bytes is refused when a proof is built from it."""
        with pytest.raises(ValueError, match=r"stored node \(0, 1\) is 33 bytes"):
            inclusion_proof_from(lambda level, index: bytes(33), index=0, size=2)


class TestCompactNodes:
    @pytest.mark.parametrize(
        ("begin", "end", "nodes"),
        [
            (0, 0, []),
            (0, 1, [(0, 0)]),
            (0, 6, [(2, 0), (1, 2)]),
            (0, 21, [(4, 0), (2, 4), (0, 20)]),
            (2, 9, [(1, 1), (2, 1), (0, 8)]),
            (12, 16, [(2, 3)]),
        ],
    )
    def test_examples(self, begin: int, end: int, nodes: list[NodeId]) -> None:
        """The fewest perfect nodes covering a range, as in the compact-range literature."""
        assert compact_nodes(begin, end) == nodes

    @given(st.integers(0, 5000), st.integers(0, 5000))
    def test_cover_exactly(self, begin: int, length: int) -> None:
        """The nodes are aligned, adjacent and cover exactly [begin, end)."""
        position = begin
        for level, index in compact_nodes(begin, begin + length):
            assert index << level == position
            position += 1 << level
        assert position == begin + length


class TestCompactRange:
    def test_root_after_every_append(self) -> None:
        """After each of 130 appends the root is MTH of the leaves so far."""
        d = leaves(130)
        compact = CompactRange()
        for n in range(1, 131):
            compact.append(d[n - 1])
            assert compact.size == n
            assert compact.root() == rfc_mth(d[:n])
            assert len(compact.hashes) == bin(n).count("1")

    def test_reports_every_perfect_node_once(self) -> None:
        """Appending 100 leaves reports each perfect node once, with its subtree's MTH."""
        d = leaves(100)
        recorder = stored(d)
        expected = {
            (level, index)
            for level in range(7)
            for index in range(100 >> level)  # perfect nodes whose last leaf is in
        }
        assert set(recorder.nodes) == expected
        for (level, index), h in recorder.nodes.items():
            assert h == rfc_mth(d[index << level : (index + 1) << level])

    def test_node_hashing_is_linear(self) -> None:
        """n appends hash n - 1 interior nodes in all: the count of non-leaf perfect nodes."""
        recorder = stored(leaves(1000))
        assert sum(1 for level, _ in recorder.nodes if level > 0) == 1000 - bin(1000).count("1")

    def test_restores_from_hashes(self) -> None:
        """A range rebuilt from its size and hashes carries on exactly like the original."""
        d = leaves(45)
        original = CompactRange()
        original.extend(d[:37])
        restored = CompactRange.from_hashes(original.size, original.hashes)
        original.extend(d[37:])
        restored.extend(d[37:])
        assert restored.root() == original.root() == rfc_mth(d)
        assert repr(restored) == f"CompactRange(size=45, root={rfc_mth(d).hex()})"

    def test_restores_from_stored_nodes(self) -> None:
        """A range read back from stored perfect nodes has the same hashes and nodes."""
        recorder = stored(leaves(77))
        original = CompactRange()
        original.extend(leaves(77))
        restored = CompactRange.from_nodes(recorder.hash_at, 77)
        assert restored.hashes == original.hashes
        assert restored.nodes == [(6, 0), (3, 8), (2, 18), (0, 76)]

    @pytest.mark.parametrize(("size", "count"), [(5, 1), (5, 3), (4, 0), (0, 1)])
    def test_from_hashes_needs_one_hash_per_set_bit(self, size: int, count: int) -> None:
        """A size and a number of hashes that do not fit each other are refused."""
        with pytest.raises(ValueError, match=f"got {count} hashes"):
            CompactRange.from_hashes(size, [bytes(32)] * count)

    def test_from_hashes_refuses_bad_input(self) -> None:
        """A negative size, or a hash that is not 32 bytes, is refused."""
        with pytest.raises(ValueError, match="cannot have -1 leaves"):
            CompactRange.from_hashes(-1, [])
        with pytest.raises(ValueError, match="hash 1 is 4 bytes"):
            CompactRange.from_hashes(3, [bytes(32), bytes(4)])

    @settings(max_examples=50)
    @given(st.lists(st.binary(max_size=8), max_size=80))
    def test_root_matches_root_after_every_append(self, data: list[bytes]) -> None:
        """For any leaves, the incremental root equals root() of the prefix after each append."""
        hashes = [leaf_hash(item) for item in data]
        compact = CompactRange()
        for n, h in enumerate(hashes, start=1):
            compact.append(h)
            assert compact.root() == root(hashes[:n])


class TestProofsFromStoredNodes:
    @pytest.mark.parametrize("n", [1, 2, 3, 64, 1000, 1023, 1024, 1025])
    def test_same_as_from_the_list(self, n: int) -> None:
        """Roots and proofs built from stored nodes equal those built from every leaf."""
        d = leaves(n)
        recorder = stored(d)
        for m in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            assert root_from(recorder.hash_at, m) == root(d[:m])
            assert consistency_proof_from(
                recorder.hash_at, old_size=m, new_size=n
            ) == consistency_proof(d, m)
            if m < n:
                assert inclusion_proof_from(recorder.hash_at, index=m, size=n) == (
                    inclusion_proof(d, m)
                )

    def test_older_tree_sizes_read_the_same_nodes(self) -> None:
        """Perfect nodes never change: nodes stored at size 1025 serve a tree of size 700."""
        d = leaves(1025)
        recorder = stored(d)
        assert root_from(recorder.hash_at, 700) == rfc_mth(d[:700])
        assert inclusion_proof_from(recorder.hash_at, index=699, size=700) == rfc_path(699, d[:700])

    def test_hash_nodes_folds_from_the_right(self) -> None:
        """Adjacent perfect nodes hash as H(a, H(b, c)), the right border of an RFC tree."""
        recorder = stored(leaves(7))
        a, b, c = (recorder.nodes[node] for node in [(2, 0), (1, 2), (0, 6)])
        assert hash_nodes(recorder.hash_at, [(2, 0), (1, 2), (0, 6)]) == node_hash(
            a, node_hash(b, c)
        )
        with pytest.raises(ValueError, match="no nodes to hash"):
            hash_nodes(recorder.hash_at, [])

    def test_logarithmic_reads(self) -> None:
        """A proof in a tree of 1025 leaves reads a few dozen stored nodes, not a thousand."""
        recorder = stored(leaves(1025))
        for index in range(1025):
            recorder.reads = 0
            inclusion_proof_from(recorder.hash_at, index=index, size=1025)
            assert recorder.reads <= 2 * 11
        for old_size in range(1, 1025):
            recorder.reads = 0
            consistency_proof_from(recorder.hash_at, old_size=old_size, new_size=1025)
            assert recorder.reads <= 2 * 11
