"""The tables of the session log (SQLAlchemy Core), shared by every backend.

Columns ending in ``_sealed`` hold vault tokens (AES-256-GCM); nothing here is plaintext
message text or a raw address. Times are ms since the epoch, UTC.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
)

metadata = MetaData()

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("started_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger),
    Column("end_reason", String(32)),
    Column("ended_by", SmallInteger),
    Column("interests_sealed", LargeBinary, nullable=False),
    Index("ix_sessions_started_at", "started_at"),
)

participants = Table(
    "participants",
    metadata,
    Column("session_id", String(32), ForeignKey("sessions.id"), primary_key=True),
    Column("slot", SmallInteger, primary_key=True),
    Column("ip_pseudonym", String(32), nullable=False),
    Column("ip_sealed", LargeBinary, nullable=False),
    # The pseudonym of the address's network (itself for IPv4, its /64 for IPv6): blocks.
    Column("block_key", String(32), nullable=False),
    Index("ix_participants_ip_pseudonym", "ip_pseudonym"),
)

messages = Table(
    "messages",
    metadata,
    Column("session_id", String(32), ForeignKey("sessions.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("slot", SmallInteger, nullable=False),
    Column("sent_at", BigInteger, nullable=False),
    Column("text_sealed", LargeBinary, nullable=False),
)

reports = Table(
    "reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(32), ForeignKey("sessions.id"), nullable=False),
    Column("reporter_slot", SmallInteger, nullable=False),
    Column("reason", String(32), nullable=False),
    Column("comment_sealed", LargeBinary),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_reports_session_id", "session_id"),
)
