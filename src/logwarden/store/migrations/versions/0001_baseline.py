"""Baseline: the session log with retention (day buckets, preserved rows, receipts).

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Operations are written out here, never read from schema.metadata: a revision keeps doing what
it did when it was written.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("interests_sealed", sa.LargeBinary, nullable=False),
        sa.Column("ended_at", sa.BigInteger),
        sa.Column("end_reason", sa.String(32)),
        sa.Column("ended_by", sa.SmallInteger),
        sa.Column("reported_at", sa.BigInteger),
        sa.Column("held_at", sa.BigInteger),
        sa.Column("hold_reason", sa.String(500)),
        sa.Column("erase_after", sa.BigInteger),
    )
    op.create_index("ix_sessions_started_at", "sessions", ["started_at"])
    op.create_index("ix_sessions_day", "sessions", ["day"])

    op.create_table(
        "participants",
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id"), primary_key=True),
        sa.Column("slot", sa.SmallInteger, primary_key=True),
        sa.Column("ip_pseudonym", sa.String(32), nullable=False),
        sa.Column("block_key", sa.String(32), nullable=False),
    )
    op.create_index("ix_participants_ip_pseudonym", "participants", ["ip_pseudonym"])

    op.create_table(
        "addresses",
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id"), primary_key=True),
        sa.Column("slot", sa.SmallInteger, primary_key=True),
        sa.Column("bucket", sa.Integer, nullable=False),
        sa.Column("ip_sealed", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_addresses_bucket", "addresses", ["bucket"])

    op.create_table(
        "messages",
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("bucket", sa.Integer, primary_key=True),
        sa.Column("slot", sa.SmallInteger, nullable=False),
        sa.Column("sent_at", sa.BigInteger, nullable=False),
        sa.Column("text_sealed", sa.LargeBinary, nullable=False),
        postgresql_partition_by="RANGE (bucket)",
    )
    op.create_index("ix_messages_bucket", "messages", ["bucket"])
    if op.get_context().dialect.name == "postgresql":
        # The preserved rows' partition (bucket 0). Day partitions are made as days come;
        # there is no DEFAULT partition, so a row for a day without one fails loudly.
        op.execute(
            "CREATE TABLE messages_preserved PARTITION OF messages FOR VALUES FROM (0) TO (1)"
        )

    op.create_table(
        "reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id"), nullable=False),
        sa.Column("reporter_slot", sa.SmallInteger, nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("comment_sealed", sa.LargeBinary),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_reports_session_id", "reports", ["session_id"])

    op.create_table(
        "receipts",
        sa.Column("token_digest", sa.String(64), primary_key=True),
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id"), nullable=False),
        sa.Column("slot", sa.SmallInteger, nullable=False),
        sa.Column("issued_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_receipts_session_id", "receipts", ["session_id"])


def downgrade() -> None:
    # Dropping ``messages`` drops its partitions with it.
    for table in ("receipts", "reports", "messages", "addresses", "participants", "sessions"):
        op.drop_table(table)
