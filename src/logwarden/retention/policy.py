"""Retention classes and when each record expires (docs/retention.md).

Periods count whole UTC days. A record of day ``d`` in a class of ``P`` days is kept through
day ``d + P`` and destroyed by the first purge from the start of day ``d + P + 1``: kept at least
``P`` full days, and at most one day more (plus the purge interval). Day-granular keys are what
make expiry cost one key destruction per day instead of one per record.
"""

from __future__ import annotations

from dataclasses import dataclass

from logwarden.config import RetentionSettings
from logwarden.store import RetentionState

__all__ = [
    "DAY_MS",
    "HOLD",
    "METADATA",
    "RAW_IP",
    "REPORTED",
    "SESSION",
    "RetentionPolicy",
    "day_of",
]

DAY_MS = 86_400_000

SESSION = "session"  # message text, interests and report comments of ordinary sessions
RAW_IP = "raw_ip"  # participants' raw addresses
METADATA = "metadata"  # pseudonyms, times, end reasons: the rows themselves, not keys
REPORTED = "reported"  # everything of a reported or flagged session, from the report's day
HOLD = "hold"  # everything of a held session, until released
HOLD_DAY = 0  # the one hold bucket


def day_of(ms: int) -> int:
    return ms // DAY_MS


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    session_days: int
    raw_ip_days: int
    metadata_days: int
    reported_days: int

    @classmethod
    def from_settings(cls, settings: RetentionSettings) -> RetentionPolicy:
        return cls(
            session_days=settings.session_days,
            raw_ip_days=settings.raw_ip_days,
            metadata_days=settings.metadata_days,
            reported_days=settings.reported_days,
        )

    def periods(self) -> dict[str, int]:
        """Each class's period in days, as destruction entries record the policy they applied
        (``audit verify`` judges each destruction by it)."""
        return {
            SESSION: self.session_days,
            RAW_IP: self.raw_ip_days,
            METADATA: self.metadata_days,
            REPORTED: self.reported_days,
        }

    @classmethod
    def from_periods(cls, periods: object) -> RetentionPolicy:
        """The policy a destruction entry records; ``ValueError`` if it is not one."""
        if not isinstance(periods, dict) or set(periods) != {SESSION, RAW_IP, METADATA, REPORTED}:
            raise ValueError("the policy must give the days of session, raw_ip, metadata, reported")
        if any(type(days) is not int or days < 0 for days in periods.values()):
            raise ValueError("the policy's periods must be whole days, 0 or more")
        return cls(
            session_days=periods[SESSION],
            raw_ip_days=periods[RAW_IP],
            metadata_days=periods[METADATA],
            reported_days=periods[REPORTED],
        )

    def days(self, cls: str) -> int | None:
        """The period of a class in days; ``None`` for a hold (until released)."""
        return self.periods().get(cls)

    def expires_at(self, cls: str, day: int) -> int | None:
        """When the records of ``day`` in ``cls`` expire (ms); ``None`` while held."""
        period = self.days(cls)
        return None if period is None else (day + period + 1) * DAY_MS

    def last_expired_day(self, cls: str, now_ms: int) -> int:
        """The latest day whose records of ``cls`` have expired at ``now_ms``."""
        period = self.days(cls)
        assert period is not None, "a hold never expires"
        return day_of(now_ms) - period - 1

    def text_bucket(self, state: RetentionState) -> tuple[str, int]:
        """The (class, day) bucket that should wrap a session's text key."""
        return self._bucket(state, SESSION)

    def address_bucket(self, state: RetentionState) -> tuple[str, int]:
        """The bucket for its address key: 7 days unless reported or held, which keep them."""
        return self._bucket(state, RAW_IP)

    def _bucket(self, state: RetentionState, ordinary: str) -> tuple[str, int]:
        if state.held_at is not None:
            return HOLD, HOLD_DAY
        if state.reported_at is not None:
            return REPORTED, day_of(state.reported_at)
        return ordinary, state.day

    def metadata_expires_at(self, state: RetentionState) -> int | None:
        """When the session's rows go: the later of its metadata and reported periods."""
        if state.held_at is not None:
            return None
        ends = [(state.day + self.metadata_days + 1) * DAY_MS]
        if state.reported_at is not None:
            ends.append((day_of(state.reported_at) + self.reported_days + 1) * DAY_MS)
        return max(ends)
