"""The audit log's tables: appends and proofs on one connection (``SqlStore`` calls these).

The tree is ``audit/merkle.py``'s; this module only decides what is stored. Each entry keeps
its leaf hash (level 0), and of the other perfect nodes only those at every
``NODE_STRIDE``-th level are stored: a proof computes any other
node from at most ``2**(NODE_STRIDE - 1)`` stored hashes below it, and the table holds about
one row per 15 entries instead of one per entry, which keeps appends cheap for the recorder.

Appends serialise on the head row: the first statement increments its size, which locks the
row (PostgreSQL) or the database (SQLite) until commit, so two processes never take the same
index, and the frontier read back is the one this transaction extends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from sqlalchemy import Connection, select, tuple_

from logwarden.audit import merkle
from logwarden.errors import StoreError
from logwarden.store import schema
from logwarden.store._driver import execute
from logwarden.store.base import AuditEntryRow, AuditHead, AuditRecord

NODE_STRIDE = 4

_head = schema.audit_head
_nodes = schema.audit_nodes
_entries = schema.audit_entries


class AuditNodeRow(NamedTuple):
    level: int
    idx: int
    hash: bytes


InsertRows = Callable[[Connection, Sequence[NamedTuple]], None]


# The statements on the head, with ``?`` for the driver's placeholder.
_CLAIM = "UPDATE audit_head SET size = ?, frontier = ? WHERE id = 1 AND size = ?"
_GROW = "UPDATE audit_head SET size = size + ? WHERE id = 1 RETURNING size, frontier"
_SET_FRONTIER = "UPDATE audit_head SET frontier = ? WHERE id = 1"


class Tip(NamedTuple):
    """The head as an append left it: the log's size and its frontier (``CompactRange``)."""

    size: int
    frontier: bytes


def append(
    conn: Connection,
    records: Sequence[AuditRecord],
    insert: InsertRows,
    *,
    mark: str,
    tip: Tip | None = None,
) -> Tip:
    """Append ``records`` in the open transaction; returns the head after them (the first
    record's index is its size less their number).

    ``tip`` is the head this process's last append left: if nobody has appended since, the
    head is moved in one statement instead of two (the recorder's case, in every group commit).
    ``mark`` is the driver's placeholder (``?`` or ``%s``): the statements on the head are
    written out, since building and compiling them with SQLAlchemy cost more than running them.
    """
    leaves = [merkle.leaf_hash(record.body) for record in records]
    grown = None
    if tip is not None:
        grown = _grow(tip, leaves)
        claimed = execute(
            conn, _CLAIM.replace("?", mark), (grown.tip.size, grown.tip.frontier, tip.size)
        ).rowcount
        if claimed != 1:
            grown = None  # another writer appended since: read the head it left
    if grown is None:
        # The first statement takes the head's lock, so the frontier read is the one extended.
        [(size, frontier)] = execute(conn, _GROW.replace("?", mark), (len(records),)).fetchall()
        grown = _grow(Tip(size - len(records), frontier), leaves)
        execute(conn, _SET_FRONTIER.replace("?", mark), (grown.tip.frontier,))
    first = grown.tip.size - len(records)
    insert(
        conn,
        [
            AuditEntryRow(first + offset, *record, leaf)
            for offset, (record, leaf) in enumerate(zip(records, leaves, strict=True))
        ],
    )
    if grown.nodes:
        insert(conn, grown.nodes)
    return grown.tip


class _Grown(NamedTuple):
    tip: Tip
    nodes: list[AuditNodeRow]  # the perfect nodes completed, of the levels that are stored


def _grow(tip: Tip, leaves: Sequence[bytes]) -> _Grown:
    tree = merkle.CompactRange.from_hashes(tip.size, _split_hashes(tip.frontier))
    nodes: list[AuditNodeRow] = []

    def keep(level: int, index: int, h: bytes) -> None:
        if level and not level % NODE_STRIDE:
            nodes.append(AuditNodeRow(level, index, h))

    for leaf in leaves:
        tree.append(leaf, on_node=keep)
    return _Grown(Tip(tip.size + len(leaves), b"".join(tree.hashes)), nodes)


def head(conn: Connection) -> AuditHead:
    size, frontier, checkpoint = conn.execute(
        select(_head.c.size, _head.c.frontier, _head.c.checkpoint).where(_head.c.id == 1)
    ).one()
    tree = merkle.CompactRange.from_hashes(size, _split_hashes(frontier))
    return AuditHead(size=size, root=tree.root(), checkpoint=checkpoint)


def _split_hashes(frontier: bytes) -> list[bytes]:
    size = merkle.HASH_SIZE
    return [frontier[i : i + size] for i in range(0, len(frontier), size)]


def node_reader(conn: Connection, wanted: Iterable[merkle.NodeId]) -> merkle.NodeReader:
    """``hash_at(level, index)`` for the perfect nodes ``wanted`` (a proof's or a root's), all
    read at once: one query on the entries and one on the stored nodes, however many nodes.

    Raises ``StoreError`` if something they need is not stored (the log was cut short).
    """
    spans: dict[
        merkle.NodeId, tuple[int, int, int]
    ] = {}  # (level, index) -> (the stored level below it, its first index there, count)
    for level, index in set(wanted):
        base = level - level % NODE_STRIDE
        span = 1 << (level - base)
        spans[level, index] = (base, index * span, span)
    stored = _stored_hashes(conn, spans.values())
    hashes: dict[merkle.NodeId, bytes] = {}
    for (level, index), (base, first, span) in spans.items():
        layer = [stored.get((base, i)) for i in range(first, first + span)]
        found = [h for h in layer if h is not None]
        if len(found) != span:
            raise StoreError(
                f"the audit log is missing data under node ({level}, {index}): "
                f"{len(found)} of {span} hashes at level {base}"
            )
        while len(found) > 1:
            found = [merkle.node_hash(found[i], found[i + 1]) for i in range(0, len(found), 2)]
        hashes[level, index] = found[0]
    return lambda level, index: hashes[level, index]


def _stored_hashes(
    conn: Connection, ranges: Iterable[tuple[int, int, int]]
) -> dict[tuple[int, int], bytes]:
    """The stored hashes of every (level, first, count) range: leaf hashes at level 0.

    Asked for by key (a few hundred at most), so that each query is one cached statement.
    """
    leaves: set[int] = set()
    nodes: set[tuple[int, int]] = set()
    for level, first, count in ranges:
        if level == 0:
            leaves.update(range(first, first + count))
        else:
            nodes.update((level, i) for i in range(first, first + count))
    stored: dict[tuple[int, int], bytes] = {}
    if leaves:
        query = select(_entries.c.idx, _entries.c.leaf_hash).where(_entries.c.idx.in_(leaves))
        stored.update(((0, row.idx), row.leaf_hash) for row in conn.execute(query))
    if nodes:
        key = tuple_(_nodes.c.level, _nodes.c.idx)
        query = select(_nodes.c.level, _nodes.c.idx, _nodes.c.hash).where(key.in_(nodes))
        stored.update(((row.level, row.idx), row.hash) for row in conn.execute(query))
    return stored
