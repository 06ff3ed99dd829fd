"""The log's own account of each session: what counts, and which destructions were allowed.

``audit verify`` reads the log in order and hands every readable entry to a ``Ledger``; the
retention service asks it for one session's account before it destroys anything of it
(``account``). The ledger keeps, per session, what the entries say so far (its start, its end,
its first report or preserving flag, its hold, its erasure request) and judges each entry as
it comes:

1. An entry of a signed kind (``entries.SIGNED``: all but sessions, messages and ends) must
   carry the log's signature, and every entry must have its kind's fields (``entries.
   schema_problem``); one that does not is void: named, and it counts for nothing.
2. A signed entry dated more than ``DRIFT_MS`` after it was signed (``made``) is named: an
   ``--as-of`` drill run on the live log. Its destructions are judged at the time they were
   made, not the time they claim.
3. A session has one session entry and one end; a second of either is named inserted and
   void. An end dated before the session's own entries is back-dated and void.
4. A ``release`` lifts a hold only if it names the session's latest hold entry.
5. An ``erasure`` request names the session's end entry and the report window it waited for,
   and is due no earlier than that end plus that window.
6. A ``shred`` or ``delete`` must be due by the retention the log shows, judged with the
   policy the entry records (the one the purge applied), except that the reported class is
   judged by the longest reported period recorded before it: evidence already kept is not
   given up by shortening the policy. A held session is not destroyed; an erasure needs its
   request, due, and no report or hold; a shred of a day's rows with the day's bucket key
   (``"keys": "bucket"``) needs a ``keys`` entry that destroyed that bucket.
7. A ``keys`` entry destroys only buckets whose class has expired, never the hold bucket.
8. A report, flag or safety event dated before its session began counts for nothing.

A shortened period of an ordinary class is a note: shortening what is kept about everyone is
the operator's call, and it is on the record (docs/audit.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from logwarden.audit import checkpoint as notes
from logwarden.audit.authority import check_signature
from logwarden.audit.entries import SIGNED, parse_body, schema_problem
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
from logwarden.store import AuditEntryRow, RetentionState

__all__ = [
    "DRIFT_MS",
    "Account",
    "Ledger",
    "SessionState",
    "account",
    "retention_differences",
]

# How far apart the clocks that date entries may be (the chat's, the CLI's, the signer's; an
# NTP step): closer than this, an entry dated after it was signed, or an end dated before its
# session's messages, is not named.
DRIFT_MS = 60_000

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
    hold_reason: str | None = None  # its reason
    hold_entry: int | None = None  # the latest hold
    hold_changed: int | None = None  # the latest hold or release that counted
    erase_after: int | None = None  # the latest valid erasure request
    erasure_entry: int | None = None
    events: list[_Event] = field(default_factory=list)  # what moved its keys, in order
    destroyed: set[str] = field(default_factory=set)  # "messages", "addresses"
    deleted: bool = False
    # The valid shred or delete entries, by what they destroyed ("session" for a delete).
    destroyed_by: dict[str, int] = field(default_factory=dict)
    rejected_deletes: list[int] = field(default_factory=list)

    @property
    def held(self) -> bool:
        return self.held_at is not None


class Ledger:
    """Feed it every readable entry in index order (``observe``); it names what is not allowed.

    ``void`` holds the entries that count for nothing (forged, malformed, inserted, back-dated):
    the rows are held to the other entries only. ``notes`` are what is worth saying but is not
    a problem (a shortened policy, signing resumed after an alarm).
    """

    def __init__(self, verifier: notes.VerifierKey) -> None:
        self._verifier = verifier
        # session id → (its day, its start), from its session entry
        self._sessions: dict[str, tuple[int, int]] = {}
        self._ends: dict[str, tuple[int, int]] = {}  # session id → (index, at) of its end
        self._said: dict[str, int] = {}  # session id → the latest time of its messages
        self._states: dict[str, SessionState] = {}  # only sessions with retention entries
        self._buckets: set[str] = set()  # bucket ids a valid keys entry destroyed
        # class → (days, index): the longest period a valid destruction recorded so far
        self._longest: dict[str, tuple[int, int]] = {}
        self._shortened: set[tuple[str, int]] = set()  # (class, days) already noted
        self.void: set[int] = set()
        self.notes: list[str] = []

    def state(self, session_id: str) -> SessionState:
        """What the log says about the session's retention (a blank state if nothing)."""
        return self._states.get(session_id) or SessionState()

    def end_of(self, session_id: str) -> tuple[int, int] | None:
        """(index, time) of the session's end entry, the first that counts; None if none."""
        return self._ends.get(session_id)

    def observe(self, index: int, fields: dict[str, Any]) -> list[str]:
        """Take in one entry (as ``parse_body`` read it); its problems, for people."""
        kind, sid = fields["kind"], fields.get("session")
        void, judged = self._admit(index, kind, fields), None
        if void is not None:
            self.void.add(index)
            found = [void]
        else:
            ahead = self._dated_ahead(index, kind, fields)
            judged = self._judge(index, kind, sid, fields)
            found = [p for p in (ahead, judged) if p is not None]
        if kind == "delete" and isinstance(sid, str) and (void is not None or judged is not None):
            self._state(sid).rejected_deletes.append(index)
        return found

    def _admit(self, index: int, kind: str, fields: dict[str, Any]) -> str | None:
        """Why the entry counts for nothing (forged, or not an entry logwarden writes)."""
        if kind in SIGNED:
            try:
                check_signature(fields, self._verifier)
            except AuditVerificationError as exc:
                return f"entry {index} ({_describe(kind, fields)}): {exc}: forged"
        shape = schema_problem(fields)
        if shape is not None:
            return (
                f"entry {index} ({_describe(kind, fields)}): {shape}: not an entry logwarden writes"
            )
        return None

    @staticmethod
    def _dated_ahead(index: int, kind: str, fields: dict[str, Any]) -> str | None:
        made = fields.get("made")
        if kind not in SIGNED or not isinstance(made, int) or fields["at"] <= made + DRIFT_MS:
            return None
        return (
            f"entry {index} ({_describe(kind, fields)}) is dated {_utc(fields['at'])} but was "
            f"signed at {_utc(made)}: dated ahead of when it was made (an `--as-of` drill run "
            "on the live log; drills belong on a copy of the data directory)"
        )

    def _state(self, session_id: str) -> SessionState:
        return self._states.setdefault(session_id, SessionState())

    def _judge(self, index: int, kind: str, sid: Any, fields: dict[str, Any]) -> str | None:
        at = fields["at"]
        match kind:
            case "message":
                self._said[sid] = max(at, self._said.get(sid, at))
            case "session":
                return self._start(index, sid, fields)
            case "end":
                return self._end(index, sid, at)
            case "keys":
                return self._keys(index, fields)
            case "resume":
                self.notes.append(
                    f"entry {index}: {fields['by']} let the signer sign again at {_utc(at)} "
                    f"({fields['reason']}); it had stopped: {_alarm_reason(fields['alarm'])}"
                )
            case "report" | "flag":
                return self._preserve(self._state(sid), index, kind, sid, at)
            case "safety" if _preserves(fields):
                return self._preserve(self._state(sid), index, kind, sid, at)
            case "hold":
                state = self._state(sid)
                state.held_at, state.hold_reason = at, fields["reason"]
                state.hold_entry = state.hold_changed = index
                state.events.append(_Event(index, at, "hold"))
            case "release":
                return self._release(self._state(sid), index, sid, fields)
            case "erasure":
                return self._erasure(self._state(sid), index, sid, fields)
            case "shred" | "delete":
                if sid not in self._sessions:
                    what = _describe(kind, fields)
                    return f"entry {index} ({what}): the log never recorded that session"
                return self._destruction(self._state(sid), index, sid, fields)
        return None  # reads, exports, warnings, key rotations: nothing to judge

    def _start(self, index: int, sid: str, fields: dict[str, Any]) -> str | None:
        if sid in self._sessions:
            self.void.add(index)
            return f"entry {index} is a second session entry for session {sid}: inserted"
        self._sessions[sid] = (fields["day"], fields["at"])
        return None

    def _end(self, index: int, sid: str, at: int) -> str | None:
        """The first end of a session is its end; another is inserted (the recorder ends a
        session once), and an end dated before the session's own entries is back-dated:
        it would open the window in which a chat may be erased early."""
        if sid in self._ends:
            self.void.add(index)
            first = self._ends[sid][0]
            return (
                f"entry {index} is a second end of session {sid} (its end is entry {first}): "
                "inserted"
            )
        latest = max(self._said.get(sid, at), self._sessions.get(sid, (0, at))[1])
        if at + DRIFT_MS < latest:
            self.void.add(index)
            return (
                f"entry {index} (end of session {sid}) is dated {_utc(at)}, before the "
                f"session's own entries ({_utc(latest)}): back-dated, it counts for nothing"
            )
        self._ends[sid] = (index, at)
        return None

    def _preserve(
        self, state: SessionState, index: int, kind: str, sid: str, at: int
    ) -> str | None:
        # Dated before the session began, one would start the reported class (and its
        # expiry) in the past; it counts for nothing, and is named.
        start = self._sessions.get(sid, (0, at))[1]
        if at < start:
            self.void.add(index)
            return (
                f"entry {index} ({kind} of session {sid}) is dated before the session began "
                f"({_utc(at)}, before {_utc(start)}): back-dated, it counts for nothing"
            )
        if state.reported_entry is None:
            state.reported_entry, state.reported_at = index, at
        state.reported_times.add(at)
        state.events.append(_Event(index, at, "preserve"))
        return None

    def _release(
        self, state: SessionState, index: int, sid: str, fields: dict[str, Any]
    ) -> str | None:
        if not state.held:
            return None  # releasing a session that is not held changes nothing
        named = fields["hold"]
        if named != state.hold_entry:
            self.void.add(index)
            return (
                f"entry {index} (release of session {sid}) releases the hold of entry {named}, "
                f"but the hold in force is entry {state.hold_entry}: a release copied from an "
                "earlier hold (replayed); the hold stands"
            )
        state.held_at, state.hold_reason, state.hold_changed = None, None, index
        state.events.append(_Event(index, fields["at"], "release"))
        return None

    def _erasure(
        self, state: SessionState, index: int, sid: str, fields: dict[str, Any]
    ) -> str | None:
        """A request counts if it waits for the report window after the session's end: the
        one it names, which must be the end the log recorded first."""
        said = f"entry {index} (erasure of session {sid})"
        end = self._ends.get(sid)
        problem = None
        if end is None:
            problem = f"{said}: no end of the session precedes it (a chat is erased once over)"
        elif fields["end"] != end[0]:
            problem = (
                f"{said} names end entry {fields['end']}, but the session's end is entry {end[0]}"
            )
        elif fields["window"] < 0 or fields["until"] < end[1] + fields["window"]:
            problem = (
                f"{said} is due at {_utc(fields['until'])}, before the report window of "
                f"{fields['window']} ms after the session's end (entry {end[0]}, {_utc(end[1])}) "
                "closes"
            )
        if problem is not None:
            self.void.add(index)
            return f"{problem}: it counts for nothing"
        state.erase_after, state.erasure_entry = fields["until"], index
        return None

    def _policy(self, index: int, fields: dict[str, Any]) -> tuple[RetentionPolicy, str]:
        """The policy a destruction is judged by, and what to say of it if it is not the one
        it recorded: the recorded one, with the reported class at the longest period recorded
        before it. Notes every period shorter than one recorded before; remembers the longest.

        Raises ``ValueError`` if the entry records no policy."""
        recorded = RetentionPolicy.from_periods(fields["policy"])
        periods = recorded.periods()
        for cls, days in periods.items():
            longest = self._longest.get(cls)
            if longest is not None and days < longest[0] and (cls, days) not in self._shortened:
                self._shortened.add((cls, days))
                self.notes.append(
                    f"entry {index} applies a retention policy shorter than entry {longest[1]}'s: "
                    f"{cls} {longest[0]} → {days} days"
                    + (
                        " (evidence already reported is judged by the longer)"
                        if cls == REPORTED
                        else ""
                    )
                )
        kept = self._longest.get(REPORTED)
        for cls, days in periods.items():
            if cls not in self._longest or days > self._longest[cls][0]:
                self._longest[cls] = (days, index)
        if kept is None or kept[0] <= recorded.reported_days:
            return recorded, ""
        said = (
            f" (judged by the reported period of {kept[0]} days recorded at entry {kept[1]}; "
            f"this entry applied {recorded.reported_days})"
        )
        return dataclasses.replace(recorded, reported_days=kept[0]), said

    def _destruction(
        self, state: SessionState, index: int, sid: str, fields: dict[str, Any]
    ) -> str | None:
        what = _describe(fields["kind"], fields)
        try:
            policy, judged_by = self._policy(index, fields)
        except ValueError as exc:
            return f"entry {index} ({what}): {exc}"
        # Judged at the time it was made: a drill dated ahead destroyed what was due then.
        day, at, why = self._sessions[sid][0], _when_made(fields), fields["why"]
        if fields["kind"] == "delete":
            problem = (
                _erased(state, at)
                if why == "erased"
                else _expired_session(state, policy, day, at)
                if why == "expired"
                else f"no retention rule destroys for the reason {why!r}"
            )
            if problem is None:
                state.deleted = True
                state.destroyed_by.setdefault("session", index)
        else:
            problem = self._shred(state, policy, day, at, fields, index)
        if problem is not None:
            return f"entry {index} ({what}) was not due: {problem}{judged_by}"
        return None

    def _shred(
        self,
        state: SessionState,
        policy: RetentionPolicy,
        day: int,
        at: int,
        fields: dict[str, Any],
        index: int,
    ) -> str | None:
        items = fields["what"]
        if fields["why"] != "expired" or not items:
            return "a shred destroys messages or addresses whose retention expired"
        for item in items:
            if item not in _ORDINARY:
                return f"nothing called {item!r} is shredded"
            kept = _kept(state, policy, day, at, item)
            if kept is not None:
                return f"its {item} are {kept}"
            bucket = f"{_ORDINARY[item]}:{day}"
            if fields["keys"] == "bucket" and bucket not in self._buckets:
                return f"no keys entry before it destroyed the bucket of its {item} ({bucket})"
        state.destroyed.update(items)
        for item in items:
            state.destroyed_by.setdefault(item, index)
        return None

    def _keys(self, index: int, fields: dict[str, Any]) -> str | None:
        try:
            policy, judged_by = self._policy(index, fields)
            buckets = [_bucket(item) for item in fields["buckets"]]
        except ValueError as exc:
            return f"entry {index} (keys): {exc}"
        at = _when_made(fields)
        for bucket_id, cls, day in buckets:
            expires = policy.expires_at(cls, day)
            if expires is None or expires > at:
                until = "a release" if expires is None else _utc(expires)
                return (
                    f"entry {index} (keys) destroyed bucket {bucket_id} before its time: its "
                    f"{cls} class keeps it until {until}{judged_by}"
                )
        self._buckets.update(bucket_id for bucket_id, _cls, _day in buckets)
        return None


@dataclass(frozen=True, slots=True)
class Account:
    """The log's own account of one session, from its entries alone."""

    state: SessionState
    start: dict[str, Any] | None  # the fields of its session entry
    end: tuple[int, int] | None  # (index, time) of its end entry


def account(
    entries: Iterable[AuditEntryRow], session_id: str, *, verifier: notes.VerifierKey
) -> Account:
    """What ``entries`` (a session's, in order, as ``Store.audit_entries_of`` reads them) say
    about it, each checked as ``audit verify`` checks it: what retention must go by before it
    destroys anything, rather than the store's columns, which anyone with the database can set.

    Entries whose body is not the session's, or does not read, are passed over. A ``keys``
    entry is not a session's, so a shred of a day bucket cannot be judged here; that does not
    bear on what is kept now (a hold, a report, an erasure request, the end)."""
    ledger = Ledger(verifier)
    start = None
    for row in entries:
        try:
            fields = parse_body(row.idx, row.body)
        except AuditVerificationError:
            continue
        if fields.get("session") != session_id:
            continue
        ledger.observe(row.idx, fields)
        if fields["kind"] == "session" and start is None and row.idx not in ledger.void:
            start = fields
    return Account(ledger.state(session_id), start, ledger.end_of(session_id))


def retention_differences(row: RetentionState, state: SessionState) -> list[tuple[int | None, str]]:
    """Where a session's retention columns differ from what its entries say, as (the entry
    concerned, what): a cleared or back-dated report, a cleared hold or a changed hold reason,
    an erasure nobody asked for. Each would let the purge destroy evidence, or erase a chat
    nobody asked to erase."""
    sid, found = row.session_id, []
    if not state.reported_as(row.reported_at):
        found.append(
            (
                state.reported_entry,
                f"session {sid}: reported since {row.reported_at} in the store, the entries say "
                f"{state.reported_at}",
            )
        )
    if row.held_at != state.held_at:
        found.append(
            (
                state.hold_changed,
                f"session {sid}: held since {row.held_at} in the store, the entries say "
                f"{state.held_at}",
            )
        )
    elif row.hold_reason != state.hold_reason:
        found.append(
            (
                state.hold_entry,
                f"session {sid}: its hold's reason in the store is not the one entry "
                f"{state.hold_entry} records",
            )
        )
    if row.erase_after != state.erase_after:
        found.append(
            (
                state.erasure_entry,
                f"session {sid}: an erasure is due at {row.erase_after} in the store, the "
                f"entries say {state.erase_after}",
            )
        )
    return found


def _when_made(fields: dict[str, Any]) -> int:
    """When a signed entry's act happened: its date, or when it was signed if that is earlier
    (an ``--as-of`` drill dates its destructions ahead of their signing)."""
    at: int = fields["at"]
    made = fields.get("made")
    return min(at, made) if isinstance(made, int) else at


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
        return "no signed erasure request that counts precedes it"
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


def _alarm_reason(alarm: dict[str, Any]) -> str:
    reason = alarm.get("reason")
    return reason if isinstance(reason, str) else "(no reason recorded)"


def _describe(kind: str, fields: dict[str, Any]) -> str:
    """ "shred messages of session 1f…", "delete of session 1f…", "keys"."""
    sid, what = fields.get("session"), fields.get("what")
    items = " and ".join(map(str, what)) if isinstance(what, list) and what else ""
    target = f" of session {sid}" if isinstance(sid, str) else ""
    return " ".join(part for part in (kind, items) if part) + target


def _utc(ms: int) -> str:
    try:
        moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return f"{ms} ms"
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
