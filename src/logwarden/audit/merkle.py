"""The Merkle tree of the audit log: hashing and proof generation (pure, no I/O).

The tree is the one of RFC 9162 (Certificate Transparency v2.0) §2.1, which for SHA-256 is
also the tree of RFC 6962 §2.1::

    empty tree   MTH({})    = SHA-256()                            (SHA-256 of no bytes)
    leaf         MTH({d})   = SHA-256(0x00 || d)
    node         MTH(D[n])  = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))

where ``k`` is the largest power of two smaller than ``n``. The one-byte prefixes are the
domain separation: a leaf hash and an interior-node hash are computed over inputs that differ
in their first byte, so no leaf can be passed off as a subtree (or a subtree as a leaf) to
forge a second preimage of a root. Proofs are PATH (§2.1.3.1, inclusion) and PROOF/SUBPROOF
(§2.1.4.1, consistency), listed bottom-up as the RFC defines them. ``proofs.py`` verifies them.

Perfect nodes
    Node ``(level, index)`` is the root of the perfect subtree over the ``2**level`` leaves
    ``[index * 2**level, (index + 1) * 2**level)``. Once its last leaf is appended its hash
    never changes, whatever the tree size, so a store can write it once and keep it. Every
    other node of a tree (those on the right border of a tree whose size is not a power of
    two) is *ephemeral*: it changes as leaves are appended, and is never stored.

The compact range (the log's "frontier")
    ``CompactRange`` is the state of an append-only log of ``n`` leaves in ``popcount(n)``
    hashes: the perfect subtrees covering ``[0, n)``, one per set bit of ``n``, largest (left)
    first. Because MTH splits at the largest power of two, the root is the right fold of those
    hashes, ``H(p1, H(p2, ... H(pk-1, pk)))``: O(log n). Appending a leaf pushes its hash and
    merges equal-sized neighbours (as a binary counter carries), so ``n`` appends cost
    ``n - popcount(n)`` node hashes in all: O(1) amortised, O(log n) at worst. Each merge
    completes a perfect node, and ``append`` reports every new perfect node (leaves included,
    at level 0) to an optional ``on_node(level, index, hash)`` so the store can persist it in
    the same transaction.

Proofs from stored nodes
    Every element of an inclusion or consistency proof is the MTH of one RFC subtree: either a
    perfect node, or the ephemeral right-border subtree, whose hash is the right fold of at most
    ``log2(n)`` perfect nodes. ``inclusion_proof_nodes`` and ``consistency_proof_nodes`` say
    which perfect nodes each element needs (so a store can fetch them all in one query), and
    ``inclusion_proof_from``/``consistency_proof_from``/``root_from`` build the proof or root
    from a ``hash_at(level, index)`` callback over stored nodes: O(log n) look-ups and hashes,
    whatever the tree size, with no list of leaves in memory.

    The list-based ``root``, ``inclusion_proof`` and ``consistency_proof`` take every leaf hash
    and do O(n) hashing per call. They are for tests, tools and small trees.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "LEAF_PREFIX",
    "NODE_PREFIX",
    "CompactRange",
    "NodeId",
    "NodeReader",
    "NodeVisitor",
    "compact_nodes",
    "consistency_proof",
    "consistency_proof_from",
    "consistency_proof_nodes",
    "hash_nodes",
    "inclusion_proof",
    "inclusion_proof_from",
    "inclusion_proof_nodes",
    "leaf_hash",
    "node_hash",
    "root",
    "root_from",
]

HASH_SIZE = 32  # SHA-256, in bytes
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()  # MTH({}): the hash of the empty string

NodeId = tuple[int, int]
"""A perfect node, as ``(level, index)``: level 0 holds the leaves."""

NodeReader = Callable[[int, int], bytes]
"""``hash_at(level, index)``: the stored hash of a perfect node."""

NodeVisitor = Callable[[int, int, bytes], None]
"""``on_node(level, index, hash)``: told of each perfect node as an append completes it."""


def leaf_hash(data: bytes) -> bytes:
    """The hash of a leaf: SHA-256(0x00 || data)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The RFC's k for n >= 2: the largest power of two smaller than n."""
    return 1 << ((n - 1).bit_length() - 1)


def _fold_right(hashes: Sequence[bytes]) -> bytes:
    """H(h0, H(h1, ... H(h[-2], h[-1]))): the MTH of adjacent subtrees, largest first."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def _require_hash(what: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ValueError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


# -- Which perfect nodes make up a range, a root, a proof -------------------------------------


def compact_nodes(begin: int, end: int) -> list[NodeId]:
    """The fewest perfect nodes that cover exactly the leaves ``[begin, end)``, left to right.

    For ``[0, n)`` these are the nodes a ``CompactRange`` of size ``n`` holds. Raises
    ``ValueError`` unless ``0 <= begin <= end``.
    """
    if not 0 <= begin <= end:
        raise ValueError(f"not a range of leaves: [{begin}, {end})")
    nodes = []
    while begin < end:
        # The biggest node that starts at `begin` (aligned to it) and does not pass `end`.
        level = (end - begin).bit_length() - 1
        if begin:
            level = min(level, (begin & -begin).bit_length() - 1)
        nodes.append((level, begin >> level))
        begin += 1 << level
    return nodes


def inclusion_proof_nodes(index: int, size: int) -> list[tuple[NodeId, ...]]:
    """The perfect nodes behind each element of PATH(index, D[size]) (RFC 9162 §2.1.3.1).

    Element ``i`` of the proof is ``hash_nodes(hash_at, result[i])``. The proof has
    ``len(result)`` elements. Raises ``ValueError`` unless ``0 <= index < size``.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    elements = []
    begin, end = 0, size
    # Walk PATH's recursion from the root down; each step adds the MTH of the other half.
    while end - begin > 1:
        mid = begin + _split(end - begin)
        if index < mid:
            elements.append(compact_nodes(mid, end))
            end = mid
        else:
            elements.append(compact_nodes(begin, mid))
            begin = mid
    # The recursion appends on the way back up, so the leaf's sibling comes first.
    return [tuple(nodes) for nodes in reversed(elements)]


def consistency_proof_nodes(old_size: int, new_size: int) -> list[tuple[NodeId, ...]]:
    """The perfect nodes behind each element of PROOF(old_size, D[new_size]) (RFC 9162 §2.1.4.1).

    Empty when ``old_size`` is 0 or equals ``new_size``: there is nothing to prove. Raises
    ``ValueError`` unless ``0 <= old_size <= new_size``.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    elements = []
    begin, end, m, whole_old_tree = 0, new_size, old_size, True
    # SUBPROOF(m, D[begin:end], b) until m covers the whole subtree.
    while m != end - begin:
        k = _split(end - begin)
        if m <= k:
            elements.append(compact_nodes(begin + k, end))
            end = begin + k
        else:
            elements.append(compact_nodes(begin, begin + k))
            begin, m, whole_old_tree = begin + k, m - k, False
    if not whole_old_tree:
        # SUBPROOF(m, D[m], false) = {MTH(D[m])}: a subtree of the old tree the verifier
        # cannot know by itself. When it is the whole old tree (b true) the verifier has it.
        elements.append(compact_nodes(begin, end))
    return [tuple(nodes) for nodes in reversed(elements)]


# -- Hashes from stored perfect nodes ---------------------------------------------------------


def hash_nodes(hash_at: NodeReader, nodes: Sequence[NodeId]) -> bytes:
    """The MTH of adjacent perfect nodes (largest first) read through ``hash_at``.

    Raises ``ValueError`` if ``nodes`` is empty or a stored hash is not 32 bytes.
    """
    if not nodes:
        raise ValueError("no nodes to hash")
    hashes = []
    for level, index in nodes:
        h = hash_at(level, index)
        _require_hash(f"stored node ({level}, {index})", h)
        hashes.append(h)
    return _fold_right(hashes)


def root_from(hash_at: NodeReader, size: int) -> bytes:
    """MTH of the first ``size`` leaves, from at most log2(size) + 1 stored perfect nodes."""
    if size == 0:
        return EMPTY_ROOT
    return hash_nodes(hash_at, compact_nodes(0, size))


def inclusion_proof_from(hash_at: NodeReader, *, index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]) built from stored perfect nodes. Raises ``ValueError`` as
    ``inclusion_proof_nodes`` does."""
    return [hash_nodes(hash_at, nodes) for nodes in inclusion_proof_nodes(index, size)]


def consistency_proof_from(hash_at: NodeReader, *, old_size: int, new_size: int) -> list[bytes]:
    """PROOF(old_size, D[new_size]) built from stored perfect nodes. Raises ``ValueError`` as
    ``consistency_proof_nodes`` does."""
    return [hash_nodes(hash_at, nodes) for nodes in consistency_proof_nodes(old_size, new_size)]


# -- The same from a list of leaf hashes ------------------------------------------------------


def _list_reader(leaf_hashes: Sequence[bytes]) -> NodeReader:
    """A ``hash_at`` that computes each perfect node from the leaves: O(2**level) hashes."""

    def hash_at(level: int, index: int) -> bytes:
        layer = list(leaf_hashes[index << level : (index + 1) << level])
        while len(layer) > 1:
            layer = [node_hash(layer[i], layer[i + 1]) for i in range(0, len(layer), 2)]
        return layer[0]

    return hash_at


def root(leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH of the leaves (RFC 9162 §2.1.1), given their leaf hashes; ``EMPTY_ROOT`` for none.

    Raises ``ValueError`` if a leaf hash is not 32 bytes.
    """
    tree = CompactRange()
    tree.extend(leaf_hashes)
    return tree.root()


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) for the tree of these ``n`` leaf hashes (RFC 9162 §2.1.3.1).

    Raises ``ValueError`` unless ``0 <= index < n``.
    """
    return inclusion_proof_from(_list_reader(leaf_hashes), index=index, size=len(leaf_hashes))


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(old_size, D[n]) from the tree of the first ``old_size`` leaves to the tree of all
    ``n`` (RFC 9162 §2.1.4.1). Raises ``ValueError`` unless ``0 <= old_size <= n``."""
    return consistency_proof_from(
        _list_reader(leaf_hashes), old_size=old_size, new_size=len(leaf_hashes)
    )


# -- The append-only frontier -----------------------------------------------------------------


class CompactRange:
    """The perfect subtrees covering leaves ``[0, size)``: an append-only log's whole state.

    Holds one hash per set bit of ``size``. ``append`` is O(1) amortised hashing and
    ``root()`` is O(log size); see the module docstring.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        """An empty range: the log before its first leaf."""
        self._size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def from_hashes(cls, size: int, hashes: Sequence[bytes]) -> CompactRange:
        """The range of ``size`` leaves with these perfect-node hashes, largest first.

        Raises ``ValueError`` if the number of hashes is not the number of set bits of
        ``size``, or a hash is not 32 bytes.
        """
        if size < 0:
            raise ValueError(f"a range cannot have {size} leaves")
        if len(hashes) != size.bit_count():
            raise ValueError(
                f"a range of {size} leaves has {size.bit_count()} perfect subtrees, "
                f"got {len(hashes)} hashes"
            )
        for i, h in enumerate(hashes):
            _require_hash(f"hash {i}", h)
        compact = cls()
        compact._size = size
        compact._hashes = list(hashes)
        return compact

    @classmethod
    def from_nodes(cls, hash_at: NodeReader, size: int) -> CompactRange:
        """The range of ``size`` leaves read back from stored perfect nodes (a restart)."""
        nodes = compact_nodes(0, size)
        return cls.from_hashes(size, [hash_at(level, index) for level, index in nodes])

    @property
    def size(self) -> int:
        """The number of leaves covered."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The perfect-subtree hashes, largest (leftmost) first: what a store persists."""
        return tuple(self._hashes)

    @property
    def nodes(self) -> list[NodeId]:
        """The ``(level, index)`` of each hash in ``hashes``."""
        return compact_nodes(0, self._size)

    def append(self, leaf_hash: bytes, *, on_node: NodeVisitor | None = None) -> None:
        """Add one leaf (its leaf hash, not its data) at index ``size``.

        ``on_node(level, index, hash)`` is told of every perfect node this completes: the
        leaf itself at level 0, then each parent its arrival completes. Raises ``ValueError``
        if ``leaf_hash`` is not 32 bytes.
        """
        _require_hash("leaf hash", leaf_hash)
        h, level, index = leaf_hash, 0, self._size
        if on_node is not None:
            on_node(level, index, h)
        # A node at an odd index is a right child: its left sibling is the last hash we hold,
        # and together they complete their parent (the carry of a binary counter).
        while index & 1:
            h = node_hash(self._hashes.pop(), h)
            level, index = level + 1, index >> 1
            if on_node is not None:
                on_node(level, index, h)
        self._hashes.append(h)
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes], *, on_node: NodeVisitor | None = None) -> None:
        """``append`` each leaf hash in turn."""
        for h in leaf_hashes:
            self.append(h, on_node=on_node)

    def root(self) -> bytes:
        """MTH of the leaves so far: ``EMPTY_ROOT`` for none."""
        return _fold_right(self._hashes) if self._hashes else EMPTY_ROOT

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()})"
