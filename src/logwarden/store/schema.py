"""The tables of the session log (SQLAlchemy Core), shared by every backend.

Columns ending in ``_sealed`` hold vault tokens (AES-256-GCM); nothing here is plaintext
message text or a raw address. Times are ms since the epoch, UTC; days are whole UTC days since
the epoch (``ms // 86_400_000``).

Retention (docs/retention.md) shapes these tables:

- ``bucket`` on ``messages`` and ``addresses`` is the UTC day the session started, the day whose
  key bucket seals them, so expiry deletes whole days (on PostgreSQL ``messages`` is
  partitioned by it and expiry drops partitions). ``bucket = 0`` (``PRESERVED``) holds the rows
  of reported or held sessions, which leave their day's expiry.
- ``sessions.reported_at`` and ``sessions.held_at`` are the retention state; the keystore
  follows them (a preserved session's keys are re-wrapped, never its data re-encrypted).
- Raw addresses have their own table because their class (7 days) is shorter than the text's.
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

PRESERVED = 0  # the bucket of reported and held sessions' rows

metadata = MetaData()

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("started_at", BigInteger, nullable=False),
    Column("day", Integer, nullable=False),  # started_at's UTC day
    Column("interests_sealed", LargeBinary, nullable=False),
    Column("ended_at", BigInteger),
    Column("end_reason", String(32)),
    Column("ended_by", SmallInteger),
    Column("reported_at", BigInteger),  # first report or safety flag: the reported class
    Column("held_at", BigInteger),  # legal hold, until released
    Column("hold_reason", String(500)),
    Column("erase_after", BigInteger),  # erasure asked for; done once the report window closes
    Index("ix_sessions_started_at", "started_at"),
    Index("ix_sessions_day", "day"),
)

participants = Table(
    "participants",
    metadata,
    Column("session_id", String(32), ForeignKey("sessions.id"), primary_key=True),
    Column("slot", SmallInteger, primary_key=True),
    Column("ip_pseudonym", String(32), nullable=False),
    # The pseudonym of the address's network (itself for IPv4, its /64 for IPv6): blocks.
    Column("block_key", String(32), nullable=False),
    Index("ix_participants_ip_pseudonym", "ip_pseudonym"),
)

addresses = Table(
    "addresses",
    metadata,
    Column("session_id", String(32), ForeignKey("sessions.id"), primary_key=True),
    Column("slot", SmallInteger, primary_key=True),
    Column("bucket", Integer, nullable=False),
    Column("ip_sealed", LargeBinary, nullable=False),
    Index("ix_addresses_bucket", "bucket"),
)

messages = Table(
    "messages",
    metadata,
    Column("session_id", String(32), ForeignKey("sessions.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    # Part of the key because PostgreSQL requires a partitioned table's key to include the
    # partition column; (session_id, seq) is unique all the same, the recorder numbers them.
    Column("bucket", Integer, primary_key=True),
    Column("slot", SmallInteger, nullable=False),
    Column("sent_at", BigInteger, nullable=False),
    Column("text_sealed", LargeBinary, nullable=False),
    Index("ix_messages_bucket", "bucket"),
    postgresql_partition_by="RANGE (bucket)",
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

receipts = Table(
    "receipts",
    metadata,
    # SHA-256 of the token, hex: the token itself is never stored, so a copy of the log
    # cannot be used to erase or inspect sessions.
    Column("token_digest", String(64), primary_key=True),
    Column("session_id", String(32), ForeignKey("sessions.id"), nullable=False),
    Column("slot", SmallInteger, nullable=False),
    Column("issued_at", BigInteger, nullable=False),
    Index("ix_receipts_session_id", "session_id"),
)
