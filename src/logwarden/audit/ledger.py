"""The log's own account of retention: which destructions it records were allowed.

``audit verify`` reads the log in order and hands every entry about retention to a ``Ledger``.
The ledger keeps, per session, what the entries say so far (its day, its first report or
preserving flag, its hold, its erasure request) and judges each authorising entry
(``authority.AUTHORISING``) when it comes:

1. It must carry the log's signature (else it is forged: anyone with the database can append).
2. A ``release`` lifts a hold only if it names the session's latest hold entry (a signed
   release copied from an earlier hold cannot lift a later one).
3. A ``shred`` or ``delete`` must be due by the retention the log shows, judged with the
   policy the entry records (the one the purge applied): a held session is not destroyed; a
   session reported while its data was still kept keeps it in the reported class; an erasure
   needs its (signed) request, due, and no report or hold. A shred of a day's rows with the
   day's bucket key (``"keys": "bucket"``) needs a ``keys`` entry that destroyed that bucket.
4. A ``keys`` entry destroys only buckets whose class has expired, never the hold bucket.
5. A report, flag or safety event dated before its session began counts for nothing (the
   recorder's entries are unsigned; back-dated, one would start the reported class in the past).

This is what stops a database-only attacker who clears a hold or a report in the store and
lets the genuine purge destroy the session and sign its deletion: the signature is good, but
the log itself shows the session was still protected (docs/audit.md, "Authorising entries").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from logwarden.audit import checkpoint as notes
from logwarden.audit.authority import AUTHORISING, check_signature
from logwarden.errors import AuditVerificationError
from logwarden.retention.policy import (
    HOLD,
    METADATA,
    RAW_IP,
    REPORTED,
    SESSION,
    RetentionPolicy,
    day_of,
)

__all__ = ["Ledger", "SessionState"]

# What a shred names, and the class that keeps it when nothing protects the session.
_ORDINARY = {"messages": SESSION, "addresses": RAW_IP}


@dataclass(frozen=True, slots=True)
class _Event:
    index: int
    at: int
    kind: str  # "preserve", "hold", "release"


@dataclass(slots=True)
class SessionState:
    """What the entries read so far say about one session's retention."""

    # The first report, flag or preserving safety event (by index) and its time: what starts
    # the reported class. A later entry dated earlier does not move it back.
    reported_at: int | None = None
    reported_entry: int | None = None
    # The times of all of them: the store keeps the earliest of the first transaction that
    # had any (the first entry's batch), which the entries alone cannot delimit.
    reported_times: set[int] = field(default_factory=set)

    def reported_as(self, reported_at: int | None) -> bool:
        """Whether a store's ``reported_at`` is one the entries allow: none without a report;
        else the time of one of them, no later than the first's (the store takes the
        earliest of the first batch that reported, and keeps it)."""
        if self.reported_at is None:
            return reported_at is None
        return reported_at in self.reported_times and reported_at <= self.reported_at

    held_at: int | None = None  # the hold in force
    hold_entry: int | None = None  # the latest hold
    hold_changed: int | None = None  # the latest hold or release that counted
    erase_after: int | None = None  # the latest signed erasure request
    erasure_entry: int | None = None
    events: list[_Event] = field(default_factory=list)  # what moved its keys, in order
    destroyed: set[str] = field(default_factory=set)  # "messages", "addresses"
    deleted: bool = False
    rejected_deletes: list[int] = field(default_factory=list)

    @property
    def held(self) -> bool:
        return self.held_at is not None


class Ledger:
    """Feed it every readable entry in index order (``observe``); it names what is not allowed."""

    def __init__(self, verifier: notes.VerifierKey) -> None:
        self._verifier = verifier
        # session id → (its day, its start), from its session entry
        self._sessions: dict[str, tuple[int, int]] = {}
        self._states: dict[str, SessionState] = {}  # only sessions with retention entries
        self._buckets: set[str] = set()  # bucket ids a valid keys entry destroyed

    def state(self, session_id: str) -> SessionState:
        """What the log says about the session's retention (a blank state if nothing)."""
        return self._states.get(session_id) or SessionState()

    def observe(self, index: int, fields: dict[str, Any]) -> str | None:
        """Take in one entry; the problem with it, if any, for people."""
        kind, sid = fields["kind"], fields.get("session")
        if kind == "message":
            return None  # the bulk of the log, and nothing to do with retention
        if kind == "session" and isinstance(sid, str) and type(fields.get("day")) is int:
            self._sessions.setdefault(sid, (fields["day"], fields["at"]))
            return None
        if kind in AUTHORISING:
            try:
                check_signature(fields, self._verifier)
            except AuditVerificationError as exc:
                if kind == "delete" and isinstance(sid, str):
                    self._state(sid).rejected_deletes.append(index)
                return f"entry {index} ({_describe(kind, sid, fields)}): {exc}: forged"
        problem = self._judge(index, kind, sid, fields)
        if problem is not None and kind == "delete" and isinstance(sid, str):
            self._state(sid).rejected_deletes.append(index)
        return problem

    def _state(self, session_id: str) -> SessionState:
        return self._states.setdefault(session_id, SessionState())

    def _judge(self, index: int, kind: str, sid: Any, fields: dict[str, Any]) -> str | None:
        if kind == "keys":
            return self._keys(index, fields)
        if kind not in _SESSION_KINDS or (kind == "safety" and not _preserves(fields)):
            return None  # reads, exports, ends, warnings, key rotations: nothing to judge
        if not isinstance(sid, str):
            return f"entry {index} ({kind}) names no session"
        state, at = self._state(sid), fields["at"]
        match kind:
            case "report" | "flag" | "safety":
                return self._preserve(state, index, kind, sid, at)
            case "hold":
                state.held_at, state.hold_entry, state.hold_changed = at, index, index
                state.events.append(_Event(index, at, "hold"))
            case "release":
                return self._release(state, index, sid, fields)
            case "erasure":
                until = fields.get("until")
                if type(until) is not int:
                    return f"entry {index} ({_describe(kind, sid)}): it says no time"
                state.erase_after, state.erasure_entry = until, index
            case _:  # shred, delete
                if sid not in self._sessions:
                    what = _describe(kind, sid, fields)
                    return f"entry {index} ({what}): the log never recorded that session"
                return self._destruction(state, index, sid, fields)
        return None

    def _preserve(
        self, state: SessionState, index: int, kind: str, sid: str, at: int
    ) -> str | None:
        # Reports and safety events are the recorder's, unsigned: anyone with the database
        # can append one. Dated before the session began, one would start the reported class
        # (and its expiry) in the past; it counts for nothing, and is named.
        start = self._sessions.get(sid, (0, at))[1]
        if at < start:
            return (
                f"entry {index} ({_describe(kind, sid)}) is dated before the session began "
                f"({_utc(at)}, before {_utc(start)}): back-dated, it counts for nothing"
            )
        if state.reported_entry is None:
            state.reported_entry, state.reported_at = index, at
        state.reported_times.add(at)
        state.events.append(_Event(index, at, "preserve"))
        return None

    @staticmethod
    def _release(state: SessionState, index: int, sid: str, fields: dict[str, Any]) -> str | None:
        if not state.held:
            return None  # releasing a session that is not held changes nothing
        named = fields.get("hold")
        if named != state.hold_entry:
            return (
                f"entry {index} (release of session {sid}) releases the hold of entry {named}, "
                f"but the hold in force is entry {state.hold_entry}: a release copied from an "
                "earlier hold (replayed); the hold stands"
            )
        state.held_at, state.hold_changed = None, index
        state.events.append(_Event(index, fields["at"], "release"))
        return None

    def _destruction(
        self, state: SessionState, index: int, sid: str, fields: dict[str, Any]
    ) -> str | None:
        what = _describe(fields["kind"], sid, fields)
        try:
            policy = RetentionPolicy.from_periods(fields.get("policy"))
        except ValueError as exc:
            return f"entry {index} ({what}): {exc}"
        day, at, why = self._sessions[sid][0], fields["at"], fields.get("why")
        if fields["kind"] == "delete":
            problem = (
                _erased(state, at)
                if why == "erased"
                else _expired_session(state, policy, day, at)
                if why == "expired"
                else f"no retention rule destroys for the reason {why!r}"
            )
            state.deleted = state.deleted or problem is None
        else:
            problem = self._shred(state, policy, day, at, fields)
        if problem is not None:
            return f"entry {index} ({what}) was not due: {problem}"
        return None

    def _shred(
        self,
        state: SessionState,
        policy: RetentionPolicy,
        day: int,
        at: int,
        fields: dict[str, Any],
    ) -> str | None:
        items = fields.get("what")
        if fields.get("why") != "expired" or not isinstance(items, list) or not items:
            return "a shred destroys messages or addresses whose retention expired"
        for item in items:
            if item not in _ORDINARY:
                return f"nothing called {item!r} is shredded"
            kept = _kept(state, policy, day, at, item)
            if kept is not None:
                return f"its {item} are {kept}"
            bucket = f"{_ORDINARY[item]}:{day}"
            if fields.get("keys") == "bucket" and bucket not in self._buckets:
                return f"no keys entry before it destroyed the bucket of its {item} ({bucket})"
        state.destroyed.update(items)
        return None

    def _keys(self, index: int, fields: dict[str, Any]) -> str | None:
        try:
            policy = RetentionPolicy.from_periods(fields.get("policy"))
            buckets = [_bucket(item) for item in fields.get("buckets") or []]
        except ValueError as exc:
            return f"entry {index} (keys): {exc}"
        for bucket_id, cls, day in buckets:
            expires = policy.expires_at(cls, day)
            if expires is None or expires > fields["at"]:
                until = "a release" if expires is None else _utc(expires)
                return (
                    f"entry {index} (keys) destroyed bucket {bucket_id} before its time: its "
                    f"{cls} class keeps it until {until}"
                )
        self._buckets.update(bucket_id for bucket_id, _cls, _day in buckets)
        return None


_SESSION_KINDS = frozenset(
    {"report", "flag", "safety", "hold", "release", "erasure", "shred", "delete"}
)


def _kept(state: SessionState, policy: RetentionPolicy, day: int, at: int, item: str) -> str | None:
    """Why ``item`` of the session is still kept at ``at``, or None if its time has come.

    Follows the keys as retention moves them: a report moves them to the reported class and a
    hold to the hold bucket, each only if their bucket has not expired yet (nothing brings
    back what retention has given up); a release moves them back.
    """
    expires: int | None = policy.expires_at(_ORDINARY[item], day)
    reported_at, held = None, False
    for event in state.events:
        if event.kind == "preserve":
            if reported_at is None:  # the first starts the reported class
                reported_at = event.at
        else:
            held = event.kind == "hold"
        if expires is not None and expires <= event.at:
            continue  # given up before this event: it stays given up
        expires = (
            None
            if held
            else policy.expires_at(REPORTED, day_of(reported_at))
            if reported_at is not None
            else policy.expires_at(_ORDINARY[item], day)
        )
    if expires is None:
        return f"under the legal hold of entry {state.hold_entry}"
    if expires > at:
        kept = (
            f"reported (entry {state.reported_entry}): the reported class keeps them"
            if state.reported_entry is not None and reported_at is not None
            else f"kept by the {_ORDINARY[item]} class"
        )
        return f"{kept} until {_utc(expires)}"
    return None


def _expired_session(state: SessionState, policy: RetentionPolicy, day: int, at: int) -> str | None:
    """Why the session's rows must still be kept at ``at``: a hold, or its metadata or
    reported class; None if both have expired (the purge's ``expired_sessions``)."""
    if state.held:
        return f"the session is under the legal hold of entry {state.hold_entry}"
    ends = [(_expires(policy, METADATA, day), f"its {METADATA} class")]
    if state.reported_at is not None:
        reported = _expires(policy, REPORTED, day_of(state.reported_at))
        ends.append((reported, f"its report (entry {state.reported_entry})"))
    expires, by = max(ends)
    if expires > at:
        return f"{by} keeps it until {_utc(expires)}"
    return None


def _expires(policy: RetentionPolicy, cls: str, day: int) -> int:
    expires = policy.expires_at(cls, day)
    assert expires is not None, "only the hold class never expires"
    return expires


def _erased(state: SessionState, at: int) -> str | None:
    """Why an erasure at ``at`` may not happen, or None (the purge's ``pending_erasures``)."""
    if state.erase_after is None:
        return "no signed erasure request precedes it"
    if state.erase_after > at:
        return f"the erasure request (entry {state.erasure_entry}) is for {_utc(state.erase_after)}"
    if state.held:
        return f"the session is under the legal hold of entry {state.hold_entry}"
    if state.reported_at is not None:
        return f"the session was reported (entry {state.reported_entry}), which cancels erasure"
    return None


def _bucket(item: Any) -> tuple[str, str, int]:
    if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
        raise ValueError("buckets are [bucket id, data keys] pairs")
    cls, _, day = item[0].partition(":")
    if cls == HOLD:
        raise ValueError(f"bucket {item[0]} is the hold bucket, which only a release empties")
    if cls not in (SESSION, RAW_IP, METADATA, REPORTED) or not day.isdigit():
        raise ValueError(f"{item[0]!r} is not a bucket of a retention class")
    return item[0], cls, int(day)


def _preserves(fields: dict[str, Any]) -> bool:
    detail = fields.get("detail")
    return isinstance(detail, dict) and detail.get("preserve") is True


def _describe(kind: str, sid: Any, fields: dict[str, Any] | None = None) -> str:
    """ "shred messages of session 1f…", "delete of session 1f…", "keys"."""
    what = fields.get("what") if fields is not None else None
    items = " and ".join(map(str, what)) if isinstance(what, list) and what else ""
    target = f" of session {sid}" if isinstance(sid, str) else ""
    return " ".join(part for part in (kind, items) if part) + target


def _utc(ms: int) -> str:
    try:
        moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return f"{ms} ms"
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
