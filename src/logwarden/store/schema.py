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
    text,
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
    # The key of the audit log's commitments to this session's pseudonyms and receipts
    # (docs/audit.md): deleted with the row, after which those commitments reveal nothing.
    Column("audit_salt", LargeBinary),
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
    Column("entry", BigInteger),  # its audit entry's index (docs/audit.md)
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

safety_events = Table(
    "safety_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(32), ForeignKey("sessions.id"), nullable=False),
    Column("slot", SmallInteger),  # whose message it concerns, if one person's
    Column("at", BigInteger, nullable=False),
    # "warning": personal information found in a message, and what the sender did;
    # "risk": the conversation's assessment when it escalated (docs/safety.md).
    Column("kind", String(16), nullable=False),
    # JSON: kinds found and the decision, or score, level, flags and reasons. Never message
    # text or the values found: this is not sealed.
    Column("detail", String(20_000), nullable=False),
    Index("ix_safety_events_session_id", "session_id"),
)

# -- The audit log (docs/audit.md) ------------------------------------------------------------
# Append-only: rows are inserted, never updated or deleted (audit_head excepted, the one row
# that says how far the log goes). ``audit verify`` recomputes everything from audit_entries;
# the other tables make appends and proofs cheap, and are checked against it.

audit_entries = Table(
    "audit_entries",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),  # the leaf index
    Column("at", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("session_id", String(32)),  # not a foreign key: entries outlive their sessions
    Column("body", LargeBinary, nullable=False),  # the leaf's data: canonical JSON
    # SHA-256(0x00 || body): kept so that ``audit verify`` names an altered entry exactly
    # (an attacker who rewrites it too is caught by the nodes above, then by the checkpoints).
    Column("leaf_hash", LargeBinary, nullable=False),
    # Message entries, nearly all of the log, are found through their row's ``entry``: indexing
    # them by their random session ids would write a scattered index page per message and
    # made appends three times slower on SQLite (bench/audit.py).
    Index(
        "ix_audit_entries_session_id",
        "session_id",
        sqlite_where=text("kind <> 'message'"),
        postgresql_where=text("kind <> 'message'"),
    ),
)

audit_nodes = Table(
    "audit_nodes",
    metadata,
    # Perfect nodes at every fourth level (4, 8, ...): a proof computes the others from at
    # most 8 stored hashes, and the table holds one row per 15 leaves.
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary, nullable=False),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),  # always 1
    Column("size", BigInteger, nullable=False),
    Column("frontier", LargeBinary, nullable=False),  # the compact range's hashes, concatenated
    Column("checkpoint", LargeBinary),  # the newest signed checkpoint (a signed note)
    Column("checkpoint_size", BigInteger),  # its tree size: a checkpoint only moves forward
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    # Signed checkpoints kept as history: at most one a minute (the newest is in audit_head).
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("at", BigInteger, nullable=False),
    Column("note", LargeBinary, nullable=False),
)
