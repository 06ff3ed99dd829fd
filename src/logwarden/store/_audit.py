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

from collections.abc import Callable, Sequence
from typing import NamedTuple

from sqlalchemy import Connection, select, update

from logwarden.audit import merkle
from logwarden.errors import StoreError
from logwarden.store import schema
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


def append(conn: Connection, records: Sequence[AuditRecord], insert: InsertRows) -> int:
    """Append ``records`` in the open transaction; returns the index of the first."""
    new_size, frontier = conn.execute(
        update(_head)
        .where(_head.c.id == 1)
        .values(size=_head.c.size + len(records))
        .returning(_head.c.size, _head.c.frontier)
    ).one()
    first: int = new_size - len(records)
    tree = merkle.CompactRange.from_hashes(first, _split_hashes(frontier))
    nodes: list[AuditNodeRow] = []

    def keep(level: int, index: int, h: bytes) -> None:
        if level and not level % NODE_STRIDE:
            nodes.append(AuditNodeRow(level, index, h))

    rows = []
    for offset, record in enumerate(records):
        leaf = merkle.leaf_hash(record.body)
        tree.append(leaf, on_node=keep)
        rows.append(AuditEntryRow(first + offset, *record, leaf))
    insert(conn, rows)
    if nodes:
        insert(conn, nodes)
    conn.execute(update(_head).where(_head.c.id == 1).values(frontier=b"".join(tree.hashes)))
    return first


def head(conn: Connection) -> AuditHead:
    size, frontier, checkpoint = conn.execute(
        select(_head.c.size, _head.c.frontier, _head.c.checkpoint).where(_head.c.id == 1)
    ).one()
    tree = merkle.CompactRange.from_hashes(size, _split_hashes(frontier))
    return AuditHead(size=size, root=tree.root(), checkpoint=checkpoint)


def _split_hashes(frontier: bytes) -> list[bytes]:
    size = merkle.HASH_SIZE
    return [frontier[i : i + size] for i in range(0, len(frontier), size)]


def node_reader(conn: Connection) -> merkle.NodeReader:
    """``hash_at(level, index)`` over the stored nodes and entries, for proofs and roots.

    Raises ``StoreError`` if something it needs is not stored (the log was cut short).
    """
    cache: dict[tuple[int, int], bytes] = {}

    def hash_at(level: int, index: int) -> bytes:
        found = cache.get((level, index))
        if found is None:
            found = cache[level, index] = _perfect(conn, level, index)
        return found

    return hash_at


def _perfect(conn: Connection, level: int, index: int) -> bytes:
    base = level - level % NODE_STRIDE
    span = 1 << (level - base)
    first = index * span
    if base == 0:
        query = (
            select(_entries.c.leaf_hash)
            .where(_entries.c.idx.between(first, first + span - 1))
            .order_by(_entries.c.idx)
        )
    else:
        query = (
            select(_nodes.c.hash)
            .where(_nodes.c.level == base, _nodes.c.idx.between(first, first + span - 1))
            .order_by(_nodes.c.idx)
        )
    layer: list[bytes] = list(conn.scalars(query))
    if len(layer) != span:
        raise StoreError(
            f"the audit log is missing data under node ({level}, {index}): "
            f"{len(layer)} of {span} hashes at level {base}"
        )
    while len(layer) > 1:
        layer = [merkle.node_hash(layer[i], layer[i + 1]) for i in range(0, len(layer), 2)]
    return layer[0]
