"""`audit verify` naming what it finds precisely, on small logs made for it (both backends):
an entry rewritten with its leaf hash is named by the range its stored node covers, narrowed by
the checkpoints signed inside that range; two entries swapped are named as reordered there."""

from __future__ import annotations

from typing import Any

import pytest

from logwarden.audit import checkpoint as notes
from logwarden.audit import merkle
from logwarden.audit.entries import entry
from logwarden.audit.log import AuditLog
from logwarden.audit.verify import Verification, verify_log
from logwarden.clock import FakeClock
from logwarden.store import AuditRecord, SqlStore, schema

SIGNER = notes.SigningKey.from_seed("log.example/verify-test", seed=bytes(range(32)))
T0 = 1_795_000_000_000


def records(n: int, *, start: int = 0) -> list[AuditRecord]:
    """Ends of sessions (the recorder's, unsigned): a rewrite of one is the tree's to name. A
    signed entry rewritten is named forged as well (``test_a_rewritten_signed_entry…``)."""
    return [
        entry("end", at=T0 + i, session_id=f"{i:032x}", reason=f"r{i}", by=None, messages=0)
        for i in range(start, start + n)
    ]


def build(store: SqlStore, *, size: int, signed: list[int]) -> None:
    """``size`` entries, with a checkpoint signed (and kept) at each of ``signed``."""
    audit = AuditLog(store, signer=SIGNER, clock=FakeClock(T0), history_ms=0)
    done = 0
    for upto in [*sorted(signed), size]:
        if upto > done:
            audit.append(records(upto - done, start=done))
            done = upto
        audit.checkpoint()


def rows(store: SqlStore, *indexes: int) -> dict[int, dict[str, Any]]:
    e = schema.audit_entries
    with store._engine.connect() as conn:
        found = conn.execute(e.select().where(e.c.idx.in_(indexes)))
        return {row.idx: dict(row._mapping) for row in found}


def put(store: SqlStore, index: int, row: dict[str, Any]) -> None:
    """Store ``row`` (its columns but idx) as entry ``index``, as an attacker would."""
    e = schema.audit_entries
    values = {k: v for k, v in row.items() if k != "idx"}
    with store._engine.begin() as conn:
        conn.execute(e.update().where(e.c.idx == index).values(**values))


def rewrite(store: SqlStore, index: int) -> None:
    """Entry ``index``'s reason changed, its leaf hash recomputed to match."""
    row = rows(store, index)[index]
    body = row["body"].replace(f'"reason":"r{index}"'.encode(), b'"reason":"changed"')
    assert body != row["body"]
    put(store, index, {**row, "body": body, "leaf_hash": merkle.leaf_hash(body)})


def verify(store: SqlStore) -> Verification:
    return verify_log(store, verifier=SIGNER.verifier(), origin=SIGNER.name)


def first_problem(result: Verification) -> Any:
    assert not result.ok, "the rewrite went unnoticed"
    first = result.first()
    assert first is not None
    return first


class TestRewrittenEntries:
    def test_a_rewritten_entry_is_named_by_its_range(self, store: SqlStore) -> None:
        """Entry 14 rewritten with its leaf hash, no checkpoint inside its node's range: the
        first problem names the range 0..15, not entry 0."""
        build(store, size=20, signed=[20])
        rewrite(store, 14)
        first = first_problem(verify(store))
        assert first.where() == "in entries 0..15"
        assert (first.entry, first.last) == (0, 15)
        assert "one of entries 0..15 was altered" in first.what

    def test_checkpoints_inside_the_range_pin_the_entry_down(self, store: SqlStore) -> None:
        """Checkpoints of sizes 14 and 15 inside the range: the one of 14 matches, the one of
        15 does not, so the entry rewritten is 14, and it is named alone."""
        build(store, size=20, signed=[14, 15, 20])
        rewrite(store, 14)
        first = first_problem(verify(store))
        assert first.where() == "at entry 14"
        assert first.what.startswith("entry 14 was altered (its body and leaf hash both)")

    def test_a_matching_checkpoint_clears_the_entries_below_it(self, store: SqlStore) -> None:
        """A checkpoint of size 10 that matches: the change is among 10..15."""
        build(store, size=20, signed=[10, 20])
        rewrite(store, 14)
        first = first_problem(verify(store))
        assert first.where() == "in entries 10..15"
        assert "one of entries 10..15" in first.what

    def test_two_swapped_entries_are_named_within_the_range(self, store: SqlStore) -> None:
        """Entries 2 and 3 swapped, each with its own leaf hash and columns (so each entry on
        its own is intact): named as altered or reordered within 0..15."""
        build(store, size=20, signed=[20])
        found = rows(store, 2, 3)
        put(store, 2, found[3])
        put(store, 3, found[2])
        result = verify(store)
        first = first_problem(result)
        assert first.where() == "in entries 0..15"
        assert "reordered" in first.what
        assert all("does not hash" not in p.what for p in result.problems)


def test_a_rewritten_signed_entry_is_named_forged_too(store: SqlStore) -> None:
    """A signed entry (a read) rewritten with its leaf hash: its signature no longer
    verifies, so besides the tree's problem it is named forged and counts for nothing."""
    audit = AuditLog(store, signer=SIGNER, clock=FakeClock(T0), history_ms=0)
    audit.append(records(14))
    audit.append([entry("read", at=T0, by="alice", what="transcript", reason="r14")])
    audit.append(records(5, start=15))
    audit.checkpoint()
    rewrite(store, 14)
    result = verify(store)
    assert any(p.entry == 14 and "does not verify: forged" in p.what for p in result.problems), [
        p.what for p in result.problems
    ]
    assert "one of entries 0..15 was altered" in first_problem(result).what


@pytest.mark.parametrize("size", [1, 15, 16, 17, 40])
def test_an_untouched_log_verifies(store: SqlStore, size: int) -> None:
    """The logs these tests make verify as made, so each failure above is the rewrite's."""
    build(store, size=size, signed=[size])
    result = verify(store)
    assert result.ok, [p.what for p in result.problems]


class TestRewrittenNodes:
    def test_a_rewritten_node_over_intact_entries_is_named_as_the_node(
        self, store: SqlStore
    ) -> None:
        """The stored node over entries 0..15 replaced, the entries untouched: the checkpoint
        of size 16 still matches, so the node is named altered, not the entries."""
        build(store, size=20, signed=[16, 20])
        n = schema.audit_nodes
        with store._engine.begin() as conn:
            conn.execute(n.update().where(n.c.level == 4, n.c.idx == 0).values(hash=bytes(32)))
        result = verify(store)
        first = first_problem(result)
        assert first.what == (
            "the stored tree node over entries 0..15 was altered: the entries under it match "
            "the checkpoint signed for size 16"
        )
        assert result.checkpoints == 2
