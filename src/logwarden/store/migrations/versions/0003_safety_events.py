"""Safety events: personal-information warnings and their outcome, and risk assessments; the
tree size of the audit log's newest checkpoint, so that it only ever moves forward; each
message's audit entry, and the session index of audit entries for the other kinds only.

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
    op.add_column("messages", sa.Column("entry", sa.BigInteger))
    op.drop_index("ix_audit_entries_session_id", table_name="audit_entries")
    op.create_index(
        "ix_audit_entries_session_id",
        "audit_entries",
        ["session_id"],
        sqlite_where=sa.text("kind <> 'message'"),
        postgresql_where=sa.text("kind <> 'message'"),
    )


def downgrade() -> None:
    op.drop_index("ix_audit_entries_session_id", table_name="audit_entries")
    op.create_index("ix_audit_entries_session_id", "audit_entries", ["session_id"])
    op.drop_column("messages", "entry")
    op.drop_column("audit_head", "checkpoint_size")
    op.drop_table("safety_events")
