"""``audit verify``: recompute the audit log from the store and hold the store to it.

Three layers, each naming what it finds (docs/audit.md):

1. The log itself. Every entry is read in order: its index must follow the last one (a gap
   is entries removed), its body must hash to its stored leaf hash and agree with its columns
   (else it was altered), and the tree recomputed from the bodies must give every stored node
   (an entry rewritten together with its leaf hash) and the root of every signed checkpoint
   (an entry rewritten with the nodes above it: the signature cannot be rewritten without the
   key). Each checkpoint's signature is checked, and consistency between consecutive ones.
2. The head. The log must reach as far as every checkpoint (else it was truncated), and the
   head's size and root must be the recomputed ones.
3. The rows. Each session's rows must be the ones its entries commit to: a row without an
   entry was inserted, a row that differs from its entry was altered (or swapped with
   another), and an entry without its row was deleted, unless a later entry records that
   retention or an erasure destroyed it.

Every entry but the recorder's bulk ones counts only if the log's key signed it, and an
entry that excuses missing rows or lifts a protection only if the log's own account of the
session allowed it (``ledger.py``). A gap in the log is named and stops the tree's
recomputation there: every loop goes by what is stored, never by a size or index an entry or
the head claims.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import chain
from typing import Any

from logwarden.audit import checkpoint as notes
from logwarden.audit import merkle
from logwarden.audit.entries import digest, metadata_commitment, parse_body
from logwarden.audit.ledger import Ledger, SessionState, retention_differences
from logwarden.audit.log import read_head
from logwarden.errors import AuditVerificationError, StoreError
from logwarden.store import AuditEntryRow, AuditHead, SessionRecord, Store
from logwarden.store._audit import NODE_STRIDE

__all__ = ["Problem", "Verification", "verify_log"]

_CHUNK = 10_000  # entries read per query
_SESSIONS_PER_READ = 200  # sessions whose rows and entries are read together
_UNBOUNDED = 1 << 62  # the log's size when its head is too damaged to say: read every entry


@dataclass(frozen=True, slots=True)
class Problem:
    """Something that does not match: ``entry`` is the first entry it concerns, if known;
    ``last`` the last, when the problem is somewhere in a range of entries."""

    entry: int | None
    what: str
    last: int | None = None

    def where(self) -> str:
        """For people: "at entry 5", "in entries 0..15", or "" when no entry is known."""
        if self.entry is None:
            return ""
        if self.last is None or self.last == self.entry:
            return f"at entry {self.entry}"
        return f"in entries {self.entry}..{self.last}"


@dataclass(slots=True)
class Verification:
    size: int = 0  # entries read
    checkpoints: int = 0  # signed checkpoints that verified and matched
    anchors: int = 0  # of them, checkpoints kept outside the database
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def first(self) -> Problem | None:
        """The problem at the lowest entry: where the log stopped being what was signed."""
        known = [p for p in self.problems if p.entry is not None]
        if known:
            return min(known, key=lambda p: p.entry or 0)
        return self.problems[0] if self.problems else None


@dataclass(frozen=True, slots=True)
class _Signed:
    where: str  # for people: which checkpoint this is
    checkpoint: notes.Checkpoint


def verify_log(
    store: Store,
    *,
    verifier: notes.VerifierKey,
    origin: str,
    anchors: Sequence[tuple[str, bytes]] = (),
    alarm: str | None = None,
) -> Verification:
    """Check the whole log and the rows it covers; the result lists every problem found.

    ``anchors`` are checkpoints kept outside the database, as (where, note): the signer's own
    (``keys/audit.last``) and any a witness kept. The database's checkpoints can be deleted
    or rolled back by whoever can write to it; these cannot, so the log must still reach and
    match each of them. ``alarm`` is what the signer recorded when it refused to sign
    (``keys/audit.alarm``): while it stands it is a problem, whatever else verifies.

    Every checkpoint's root is compared with the root recomputed from the entries at its
    size: all of them matching one recomputed tree is what makes them consistent with each
    other, a stronger check than a consistency proof read from the same database.

    Raises ``StoreError`` only if the store cannot be read at all.
    """
    result = Verification()
    if alarm is not None:
        result.problems.append(
            Problem(
                None,
                f"the signer stopped signing: {alarm}; it signs nothing until an operator "
                "clears the alarm (`logwarden audit clear-alarm --reason …`)",
            )
        )
    head = _read_head(store, result)
    signed = _signed_checkpoints(store, verifier, origin, anchors, head, result)
    # Entries appended after this are left to the next run.
    size = head.size if head is not None else _UNBOUNDED
    sessions = _Sessions(Ledger(verifier))
    tree, gap = _recompute(store, signed, sessions, result, size=size)
    if gap is None:
        _check_head(head, tree, signed, result)
    _check_rows(store, sessions, result)
    result.notes.extend(sessions.ledger.notes)
    return result


def _read_head(store: Store, result: Verification) -> AuditHead | None:
    try:
        return read_head(store)
    except AuditVerificationError as exc:
        result.problems.append(Problem(None, f"{exc}: it was altered"))
        return None


# -- 1. the log ---------------------------------------------------------------------------------


def _signed_checkpoints(
    store: Store,
    verifier: notes.VerifierKey,
    origin: str,
    anchors: Sequence[tuple[str, bytes]],
    head: AuditHead | None,
    result: Verification,
) -> list[_Signed]:
    found: dict[int, _Signed] = {}
    newest: notes.Checkpoint | None = None

    def add(where: str, checkpoint: notes.Checkpoint) -> None:
        known = found.get(checkpoint.size)
        if known is not None and known.checkpoint.root_hash != checkpoint.root_hash:
            # Two signed trees of one size: the key signed a fork. Nothing can be trusted.
            result.problems.append(
                Problem(
                    None,
                    f"{where} and {known.where} are both signed for size {checkpoint.size} "
                    "with different roots: the log was forked",
                )
            )
        found.setdefault(checkpoint.size, _Signed(where, checkpoint))

    for size, _at, note in store.audit_checkpoints():
        where = f"the checkpoint kept for size {size}"
        checkpoint = _open(note, verifier, origin, where, result)
        if checkpoint is None:
            continue
        if checkpoint.size != size:
            what = f"{where} is signed for size {checkpoint.size}: it was moved"
            result.problems.append(Problem(None, what))
            continue
        add(where, checkpoint)
    if head is not None and head.checkpoint is not None:
        newest = _open(head.checkpoint, verifier, origin, "the newest checkpoint", result)
        if newest is not None:
            add("the newest checkpoint", newest)
    for where, note in anchors:
        checkpoint = _open(note, verifier, origin, where, result)
        if checkpoint is not None:
            add(where, checkpoint)
            result.anchors += 1
    if head is not None:
        result.problems.extend(_check_newest(store, head, newest, list(found.values())))
    return [found[size] for size in sorted(found)]


def _check_newest(
    store: Store, head: AuditHead, newest: notes.Checkpoint | None, signed: list[_Signed]
) -> Iterator[Problem]:
    """The database's newest checkpoint must be the newest there is, and its marker (what
    saving compares with) its size: a marker ahead of it stops the signer's checkpoints from
    being saved, a checkpoint put back hides what was signed since."""
    marker = store.checkpoint_marker()
    if head.checkpoint is not None and newest is None:
        return  # it does not verify: named as replaced or forged already
    size = None if newest is None else newest.size
    if marker != size:
        yield Problem(
            None,
            f"the database's marker of its newest checkpoint says size {marker}, but that "
            f"checkpoint is of size {size}: the marker was altered",
        )
    later = max(signed, key=lambda s: s.checkpoint.size, default=None)
    if later is not None and (size is None or later.checkpoint.size > size):
        held = "no newest checkpoint" if size is None else f"a newest checkpoint of size {size}"
        yield Problem(
            None,
            f"the database holds {held}, but {later.where} was signed for size "
            f"{later.checkpoint.size}: the newest checkpoint was rolled back",
        )


def _open(
    note: bytes, verifier: notes.VerifierKey, origin: str, what: str, result: Verification
) -> notes.Checkpoint | None:
    try:
        return notes.verify(note, verifier_key=verifier, origin=origin)
    except AuditVerificationError as exc:
        result.problems.append(Problem(None, f"{what} does not verify ({exc}): replaced or forged"))
        return None


class _Sessions:
    """What the entries say about sessions, gathered while reading the log."""

    def __init__(self, ledger: Ledger) -> None:
        self.started: dict[str, int] = {}  # session id → index of its "session" entry
        # The indexes of each session's message entries: the index by session id leaves them
        # out (they are found through their rows, and a deleted row must still be missed).
        self.messages: dict[str, list[int]] = {}
        self.ledger = ledger  # retention: holds, reports, erasures, what was destroyed


def _entries(store: Store, size: int) -> Iterator[AuditEntryRow]:
    """The stored entries with indexes in ``[0, size)``, in order, gaps and all."""
    start = 0
    while start < size:
        rows = store.audit_entries(start, min(size, start + _CHUNK))
        if not rows:
            # A gap as long as a chunk: look for the next entry past it.
            rows = store.audit_entries(start + _CHUNK, size, limit=1)
            if not rows:
                return
        yield from rows
        start = rows[-1].idx + 1


def _recompute(
    store: Store, signed: list[_Signed], sessions: _Sessions, result: Verification, *, size: int
) -> tuple[merkle.CompactRange, int | None]:
    """The tree of the entries as stored, and where a gap stopped it (None if none).

    Past a gap nothing is comparable (every later index is off), so the tree stops there; the
    entries after it are still read one by one, for what each says."""
    tree = merkle.CompactRange()
    stored = store.audit_nodes()
    pending = list(signed)
    named: list[tuple[int, int]] = []  # ranges of entries a problem already names
    mismatched: list[tuple[int, int]] = []  # stored nodes that differ, named once all is read
    verdicts: dict[int, bool] = {}  # checkpoint size → whether its root matched
    gap: int | None = None

    def check_node(level: int, index: int, h: bytes) -> None:
        if not level or level % NODE_STRIDE:
            return
        first, last = index << level, ((index + 1) << level) - 1
        found = stored.get((level, index))
        if found == h or any(a <= last and first <= b for a, b in named):
            return  # a node over an entry already named says nothing new
        if found is None:
            what = f"the stored tree node over entries {first}..{last} is missing: deleted"
            result.problems.append(Problem(first, what, last))
        else:
            mismatched.append((first, last))
        named.append((first, last))

    for row in _entries(store, size):
        if gap is None and row.idx != tree.size:
            if row.idx < tree.size:  # cannot happen with a primary key; fail closed anyway
                result.problems.append(Problem(row.idx, f"entry {row.idx} appears twice"))
                continue
            gap = tree.size
            result.problems.append(
                Problem(
                    gap,
                    f"entries {gap}..{row.idx - 1} are missing: removed from the log (nothing "
                    "after them is compared with the checkpoints)",
                    row.idx - 1,
                )
            )
        if gap is None:
            pending = _check_roots(tree, pending, result, verdicts)
        leaf = _check_entry(row, sessions, result)
        if leaf is None:
            named.append((row.idx, row.idx))
            # Go on with the stored leaf hash: the nodes above are then checked against what
            # was stored, and an altered body is named once, at its entry.
            leaf = row.leaf_hash if _is_hash(row.leaf_hash) else merkle.EMPTY_ROOT
        if gap is None:
            tree.append(leaf, on_node=check_node)
    result.size = tree.size
    if gap is None:
        _check_roots(tree, pending, result, verdicts)
    for first, last in mismatched:
        clean_below = not any(a < first for a, _b in named if (a, _b) != (first, last))
        result.problems.append(_rewritten(first, last, verdicts, clean_below=clean_below))
    return tree, gap


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == merkle.HASH_SIZE


def _rewritten(first: int, last: int, verdicts: dict[int, bool], *, clean_below: bool) -> Problem:
    """A stored node over ``first..last`` differs from the entries under it: some entry there
    was rewritten with its leaf hash, or two were swapped. Checkpoints signed for sizes inside
    the range narrow it: one that matches clears the entries below it; one that does not,
    with everything below the range intact, puts the change below its size."""
    node = f"the stored tree node over entries {first}..{last}"
    low, high = first, last
    for size, matched in sorted(verdicts.items()):
        if matched and low < size <= last + 1:
            low = size
    if low > last:  # a checkpoint over the whole range matches: the entries are intact
        return Problem(
            first,
            f"{node} was altered: the entries under it match the checkpoint signed for size {low}",
            last,
        )
    if clean_below or low > first:
        failed = [size - 1 for size, ok in verdicts.items() if not ok and low < size <= last + 1]
        high = min(failed, default=last)
    node += " does not match the entries under it"
    if low == high:
        what = (
            f"entry {low} was altered (its body and leaf hash both): {node}, and the "
            "checkpoints signed inside it leave only this entry"
        )
    else:
        what = (
            f"one of entries {low}..{high} was altered, or entries there reordered (body and "
            f"leaf hash rewritten together): {node}"
        )
    return Problem(low, what, high)


def _check_entry(row: AuditEntryRow, sessions: _Sessions, result: Verification) -> bytes | None:
    """Check one entry on its own and hand it to the ledger; its leaf hash, or None if the
    entry itself is not what was appended (named)."""
    if not _well_typed(row):
        what = f"entry {row.idx}: a column of it is not of its type (text for bytes?): altered"
        result.problems.append(Problem(row.idx, what))
        return None
    leaf = merkle.leaf_hash(row.body)
    if leaf != row.leaf_hash:
        result.problems.append(
            Problem(
                row.idx, f"entry {row.idx} does not hash to its leaf hash: its body was altered"
            )
        )
        return None
    try:
        fields = parse_body(row.idx, row.body)
    except AuditVerificationError as exc:
        result.problems.append(Problem(row.idx, str(exc)))
        return None
    if (fields["kind"], fields["at"], fields.get("session")) != (row.kind, row.at, row.session_id):
        result.problems.append(
            Problem(row.idx, f"entry {row.idx}: its columns do not match its body: altered")
        )
        return None
    # Named, but the entry itself is intact: the tree above it is still checked.
    for problem in sessions.ledger.observe(row.idx, fields):
        result.problems.append(Problem(row.idx, problem))
    if row.idx not in sessions.ledger.void and isinstance(row.session_id, str):
        if row.kind == "message":
            sessions.messages.setdefault(row.session_id, []).append(row.idx)
        elif row.kind == "session":
            sessions.started.setdefault(row.session_id, row.idx)
    return leaf


def _well_typed(row: AuditEntryRow) -> bool:
    """SQLite keeps what it is given in any column: an entry's columns must be their types."""
    return (
        type(row.idx) is int
        and type(row.at) is int
        and isinstance(row.kind, str)
        and (row.session_id is None or isinstance(row.session_id, str))
        and isinstance(row.body, bytes)
        and isinstance(row.leaf_hash, bytes)
    )


def _check_roots(
    tree: merkle.CompactRange,
    pending: list[_Signed],
    result: Verification,
    verdicts: dict[int, bool],
) -> list[_Signed]:
    """Compare the root with every checkpoint of the tree's size; the ones still ahead."""
    while pending and pending[0].checkpoint.size <= tree.size:
        signed, pending = pending[0], pending[1:]
        size = signed.checkpoint.size
        if size < tree.size:
            continue  # only reachable after a gap; the gap is named
        verdicts[size] = signed.checkpoint.root_hash == tree.root()
        if verdicts[size]:
            result.checkpoints += 1
            continue
        intact = max((s for s, ok in verdicts.items() if ok and s < size), default=0)
        which = f"entry {intact}" if intact == size - 1 else f"one of entries {intact}..{size - 1}"
        since = f" (the checkpoint signed for size {intact} matches)" if intact else ""
        result.problems.append(
            Problem(
                None,
                f"the checkpoint signed for size {size} does not match the log's first {size} "
                f"entries: {which}{since} was altered, inserted or removed",
            )
        )
    return pending


# -- 2. the head, and consistency ---------------------------------------------------------------


def _check_head(
    head: AuditHead | None, tree: merkle.CompactRange, signed: list[_Signed], result: Verification
) -> None:
    if signed and signed[-1].checkpoint.size > tree.size:
        size = signed[-1].checkpoint.size
        result.problems.append(
            Problem(
                tree.size,
                f"a checkpoint was signed for {size} entries but the log holds {tree.size}: "
                f"entries {tree.size}..{size - 1} were removed (the log was truncated)",
            )
        )
    covered = signed[-1].checkpoint.size if signed else 0
    if covered < tree.size:
        result.notes.append(
            f"entries {covered}..{tree.size - 1} are not covered by a signed checkpoint yet "
            "(`logwarden audit checkpoint` signs one)"
        )
    if head is not None and (head.size != tree.size or head.root != tree.root()):
        result.problems.append(
            Problem(
                min(head.size, tree.size),
                f"the log's head says {head.size} entries, root {head.root.hex()[:16]}…; the "
                f"entries give {tree.size}, root {tree.root().hex()[:16]}…",
            )
        )


# -- 3. the rows --------------------------------------------------------------------------------


def _check_rows(store: Store, sessions: _Sessions, result: Verification) -> None:
    # Entries appended while we read are in the log (the next run recomputes them); entries
    # outside [0, size) were never in the tree, so nothing about a row may rest on them.
    try:
        size = read_head(store).size
    except AuditVerificationError:
        size = result.size  # named already; the entries read are all there is to go by
    outside = store.audit_entries(-(1 << 63), 0, limit=1) + store.audit_entries(
        size, (1 << 63) - 1, limit=1
    )
    for row in outside:
        result.problems.append(
            Problem(None, f"an entry is stored at index {row.idx}, outside the log: inserted")
        )
    try:
        in_store = set(store.session_ids())
    except StoreError as exc:  # SQLite keeps bytes in a text column; no session of ours has one
        result.problems.append(Problem(None, f"a session row was inserted: {exc}"))
        in_store = set(store.session_ids(well_typed_only=True))  # the others are still checked
    for session_id in sorted(set(sessions.started) - in_store):
        state = sessions.ledger.state(session_id)
        if not state.deleted:
            index = sessions.started[session_id]
            result.problems.append(_missing_session(session_id, index, state))
    ordered = sorted(in_store)
    for start in range(0, len(ordered), _SESSIONS_PER_READ):
        chunk = ordered[start : start + _SESSIONS_PER_READ]
        _check_sessions(store, chunk, sessions, result, size)
        for session_id in chunk:  # checked: their message entries' indexes are not needed
            sessions.messages.pop(session_id, None)


def _check_sessions(
    store: Store, chunk: list[str], sessions: _Sessions, result: Verification, size: int
) -> None:
    """The rows of these sessions against their entries, read together."""
    try:
        records = {r.session.id: r for r in store.sessions(chunk)}
        entries = _entries_of(store, list(records.values()), sessions)
    except _MALFORMED:
        # A row of another type stops the reading of them all: read each session on its own,
        # so that the malformed one is named and the others are still checked.
        for session_id in chunk:
            check = partial(_check_session_rows, store, session_id, sessions, result, size)
            _guarded(session_id, result, check)
        return
    for session_id in chunk:
        record = records.get(session_id)
        if record is not None:  # else deleted since the list was read
            check = partial(_check_record, record, entries[session_id], sessions, result, size)
            _guarded(session_id, result, check)


# Rows of the wrong type (text where bytes belong, JSON that is not JSON) are tampering too,
# and must be reported, not crash the check.
_MALFORMED = (TypeError, ValueError, KeyError, AttributeError, RecursionError, StoreError)


def _guarded(session_id: str, result: Verification, check: Callable[[], None]) -> None:
    try:
        check()
    except _MALFORMED as exc:
        result.problems.append(
            Problem(None, f"session {session_id}: a row is malformed ({exc.__class__.__name__})")
        )


def _entries_of(
    store: Store, records: list[SessionRecord], sessions: _Sessions
) -> dict[str, list[AuditEntryRow]]:
    """Each session's entries, read together: those the session index finds (every kind but
    message), the message entries its rows name, and those the log's first pass found for it:
    a few queries for all of them."""
    ids = [r.session.id for r in records]
    named = {r.session.id: [m.entry for m in r.messages if m.entry is not None] for r in records}
    listed = {sid: sessions.messages.get(sid, []) for sid in ids}
    wanted = [*chain.from_iterable(named.values()), *chain.from_iterable(listed.values())]
    at = {e.idx: e for e in store.audit_entries_at(wanted)}
    found: dict[str, list[AuditEntryRow]] = {sid: [] for sid in ids}
    for entry in store.audit_entries_about(ids):
        if entry.session_id in found:
            found[entry.session_id].append(entry)
    for sid in ids:
        from_rows = [at[i] for i in named[sid] if i in at and at[i].kind == "message"]
        found[sid] += from_rows + [at[i] for i in listed[sid] if i in at]
    return found


def _check_session_rows(
    store: Store, session_id: str, sessions: _Sessions, result: Verification, size: int
) -> None:
    """One session's rows against its entries, read on its own."""
    record = store.session(session_id)
    if record is None:
        return  # deleted since the list was read
    found = _entries_of(store, [record], sessions)[session_id]
    _check_record(record, found, sessions, result, size)


def _check_record(
    record: SessionRecord,
    found: list[AuditEntryRow],
    sessions: _Sessions,
    result: Verification,
    size: int,
) -> None:
    session_id = record.session.id
    # Entries outside the tree, and those that count for nothing, hold no row to anything.
    void = sessions.ledger.void
    unique = {e.idx: e for e in found if 0 <= e.idx < size and e.idx not in void}
    entries = [unique[idx] for idx in sorted(unique)]
    if not entries:
        # Fail closed: a session's start time is the attacker's to write, so "older than
        # the log" cannot excuse it (a log upgraded from before the audit log says so too).
        result.problems.append(
            Problem(
                None,
                f"session {session_id} has no audit entry: it was inserted (or recorded "
                "before this log had an audit log)",
            )
        )
        return
    _check_session(record, _readable(entries), sessions.ledger.state(session_id), result)


def _missing_session(session_id: str, index: int, state: SessionState) -> Problem:
    said = f"session {session_id} (entry {index}) is missing from the store"
    if state.rejected_deletes:
        entries = ", ".join(str(i) for i in state.rejected_deletes)
        what = f"{said}, and the only entries that record its deletion ({entries}) are not valid"
        return Problem(index, what)
    return Problem(index, f"{said}, and no entry records its deletion")


def _readable(entries: list[AuditEntryRow]) -> list[tuple[int, dict[str, Any]]]:
    """The entries whose bodies read; the others are named by the first layer already."""
    readable = []
    for e in entries:
        try:
            readable.append((e.idx, parse_body(e.idx, e.body)))
        except AuditVerificationError:
            continue
    return readable


def _check_session(
    record: SessionRecord,
    entries: list[tuple[int, dict[str, Any]]],
    state: SessionState,
    result: Verification,
) -> None:
    sid = record.session.id
    problems = result.problems
    by_kind: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for index, fields in entries:
        by_kind.setdefault(fields["kind"], []).append((index, fields))
    started = by_kind.get("session")
    if not started:
        problems.append(Problem(None, f"session {sid} has no session entry: it was inserted"))
        return
    start_index, start = started[0]
    # What valid entries record as destroyed; a forged or premature one excuses nothing.
    destroyed = state.destroyed | ({"messages", "addresses"} if state.deleted else set())
    problems.extend(_compare_start(record, start_index, start, destroyed))
    problems.extend(_compare_messages(record, by_kind.get("message", []), destroyed))
    problems.extend(_compare_end(record, by_kind.get("end", [])))
    problems.extend(_compare_reports(record, by_kind.get("report", [])))
    problems.extend(_compare_state(record, state))
    problems.extend(_compare_safety(record, by_kind.get("safety", [])))
    problems.extend(_restored(record, state))


def _compare_start(
    record: SessionRecord, index: int, start: dict[str, Any], destroyed: set[str]
) -> Iterator[Problem]:
    row, sid = record.session, record.session.id
    if (start.get("at"), start.get("day")) != (row.started_at, row.day):
        yield Problem(index, f"session {sid}: its start time or day differs from entry {index}")
    if start.get("interests") != digest(row.interests_sealed):
        yield Problem(index, f"session {sid}: its interests differ from entry {index}")
    salt = row.audit_salt or b""
    people = [(p.slot, p.ip_pseudonym, p.block_key) for p in record.participants]
    if start.get("people") != metadata_commitment(salt, people):
        yield Problem(
            index, f"session {sid}: its participants (IP pseudonyms) differ from entry {index}"
        )
    # Receipts go only with their session: none may be missing, added or moved.
    receipts = [(r.slot, r.token_digest) for r in record.receipts]
    if start.get("receipts") != metadata_commitment(salt, receipts):
        yield Problem(index, f"session {sid}: its receipts differ from entry {index}")
    committed = start.get("addresses") or []
    slots = [address.slot for address in record.addresses]
    if len(set(slots)) != len(slots) or len(slots) > len(committed):
        yield Problem(index, f"session {sid}: it has address rows entry {index} never committed")
    for address in record.addresses:
        if not 0 <= address.slot < len(committed) or committed[address.slot] != digest(
            address.ip_sealed
        ):
            yield Problem(
                index,
                f"session {sid}: the address of slot {address.slot} differs from entry {index}",
            )
    if len(record.addresses) < len(committed) and "addresses" not in destroyed:
        yield Problem(
            index,
            f"session {sid}: address rows committed in entry {index} are missing, and no entry "
            "records their destruction",
        )


def _compare_messages(
    record: SessionRecord, entries: list[tuple[int, dict[str, Any]]], destroyed: set[str]
) -> Iterator[Problem]:
    sid = record.session.id
    committed = {fields.get("seq"): (index, fields) for index, fields in entries}
    for message in record.messages:
        found = committed.pop(message.seq, None)
        if found is None:
            yield Problem(None, f"message {sid}#{message.seq} has no audit entry: it was inserted")
            continue
        index, fields = found
        if fields.get("sealed") != digest(message.text_sealed):
            yield Problem(
                index,
                f"message {sid}#{message.seq} differs from entry {index}: its text (ciphertext) "
                "was altered or swapped",
            )
        elif (fields.get("slot"), fields.get("at")) != (message.slot, message.sent_at):
            yield Problem(
                index, f"message {sid}#{message.seq}: its sender or time differs from entry {index}"
            )
    if committed and "messages" not in destroyed:
        seq, (index, _fields) = min(committed.items(), key=lambda item: item[1][0])
        yield Problem(
            index,
            f"message {sid}#{seq} (entry {index}) is missing from the store, and no entry records "
            f"its destruction ({len(committed)} messages missing in all)",
        )


def _compare_end(
    record: SessionRecord, entries: list[tuple[int, dict[str, Any]]]
) -> Iterator[Problem]:
    sid, ended = record.session.id, record.ended
    if ended is None:
        if entries:
            yield Problem(
                entries[0][0],
                f"session {sid}: entry {entries[0][0]} ended it, the store says it is on",
            )
        return
    if not entries:
        yield Problem(None, f"session {sid}: the store says it ended, no entry records it")
        return
    index, fields = entries[0]  # the first end counts; a second one is void (ledger.py)
    if (fields.get("at"), fields.get("reason"), fields.get("by")) != (
        ended.ended_at,
        ended.reason,
        ended.ended_by,
    ):
        yield Problem(index, f"session {sid}: its end differs from entry {index}")


def _compare_reports(
    record: SessionRecord, entries: list[tuple[int, dict[str, Any]]]
) -> Iterator[Problem]:
    sid = record.session.id
    for n, (report, (index, fields)) in enumerate(zip(record.reports, entries, strict=False)):
        if (fields.get("slot"), fields.get("reason"), fields.get("at"), fields.get("comment")) != (
            report.reporter_slot,
            report.reason,
            report.created_at,
            digest(report.comment_sealed),
        ):
            yield Problem(index, f"session {sid}: report {n + 1} differs from entry {index}")
    if len(record.reports) > len(entries):
        yield Problem(None, f"session {sid}: a report has no audit entry: it was inserted")
    elif len(record.reports) < len(entries):
        index = entries[len(record.reports)][0]
        yield Problem(
            index, f"session {sid}: the report of entry {index} is missing from the store"
        )


def _compare_safety(
    record: SessionRecord, entries: list[tuple[int, dict[str, Any]]]
) -> Iterator[Problem]:
    """Each safety event row is the one its entry records, in order."""
    sid = record.session.id
    for n, (event, (index, fields)) in enumerate(zip(record.safety, entries, strict=False)):
        recorded = (fields.get("event"), fields.get("at"), fields.get("slot"))
        if (event.kind, event.at, event.slot) != recorded or (
            json.loads(event.detail) != fields.get("detail")
        ):
            yield Problem(index, f"session {sid}: safety event {n + 1} differs from entry {index}")
    if len(record.safety) > len(entries):
        yield Problem(None, f"session {sid}: a safety event has no audit entry: it was inserted")
    elif len(record.safety) < len(entries):
        index = entries[len(record.safety)][0]
        yield Problem(index, f"session {sid}: the safety event of entry {index} is missing")


def _compare_state(record: SessionRecord, state: SessionState) -> Iterator[Problem]:
    """The retention columns must be what the entries say (the ledger's account): a report,
    flag or preserving safety event sets ``reported_at`` (the first one's time, or an earlier
    one's written with it), a hold ``held_at`` and ``hold_reason`` until a valid release, a
    valid erasure request ``erase_after``."""
    for index, what in retention_differences(record.retention, state):
        yield Problem(index, what)


def _restored(record: SessionRecord, state: SessionState) -> Iterator[Problem]:
    """Rows that a valid entry records as destroyed must be gone: rows back from a copy of
    the store bring back what retention gave up (and a purge cut short between its entry and
    its deletion leaves them until the next purge finishes it)."""
    sid, why = record.session.id, "restored from a copy, or a purge cut short"
    if state.deleted:
        deleted = state.destroyed_by["session"]
        yield Problem(
            deleted, f"session {sid} is in the store, but entry {deleted} deleted it: {why}"
        )
        return
    for item, rows in (("messages", record.messages), ("addresses", record.addresses)):
        index = state.destroyed_by.get(item)
        if rows and index is not None:
            yield Problem(
                index,
                f"session {sid}: its {item} are in the store, but entry {index} "
                f"destroyed them: {why}",
            )
