"""Safety events: personal-information warnings and their outcome, and risk assessments; and
the tree size of the audit log's newest checkpoint, so that it only ever moves forward.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Operations are written out here, never read from schema.metadata: a revision keeps doing what
it did when it was written.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "safety_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id"), nullable=False),
        sa.Column("slot", sa.SmallInteger),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(20_000), nullable=False),
    )
    op.create_index("ix_safety_events_session_id", "safety_events", ["session_id"])
    op.add_column("audit_head", sa.Column("checkpoint_size", sa.BigInteger))


def downgrade() -> None:
    op.drop_column("audit_head", "checkpoint_size")
    op.drop_table("safety_events")
