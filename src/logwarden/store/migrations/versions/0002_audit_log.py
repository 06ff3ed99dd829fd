"""The audit log: entries (the Merkle tree's leaves), stored perfect nodes, the head, and the
history of signed checkpoints; and each session's audit salt.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Operations are written out here, never read from schema.metadata: a revision keeps doing what
it did when it was written.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sessions", sa.Column("audit_salt", sa.LargeBinary))
    op.create_table(
        "audit_entries",
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("session_id", sa.String(32)),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_audit_entries_session_id", "audit_entries", ["session_id"])
    op.create_table(
        "audit_nodes",
        sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary, nullable=False),
    )
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("frontier", sa.LargeBinary, nullable=False),
        sa.Column("checkpoint", sa.LargeBinary),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("note", sa.LargeBinary, nullable=False),
    )
    # The empty log: appends only ever update this row, so there is no race to create it.
    op.bulk_insert(head, [{"id": 1, "size": 0, "frontier": b""}])


def downgrade() -> None:
    # Dropping the audit log would destroy the evidence it exists to keep: refuse.
    raise NotImplementedError("the audit log cannot be downgraded away; restore a backup instead")
