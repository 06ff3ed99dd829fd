"""The audit log: append entries, sign checkpoints, publish them (docs/audit.md).

The recorder appends its entries inside its own group commit (``WriteBatch.audit``); every
other part (retention, the CLI, the console) makes its entries with ``AuditLog.entry`` and
appends them through ``AuditLog.append`` or with a change of the store's, each one
transaction. The store serialises appends, across processes.

Every entry but the recorder's bulk (sessions, messages, ends) is signed with the log's key by
its maker (``authority.py``): ``AuditLog.entry`` and ``append`` sign, and the recorder signs its
reports and safety events with ``AuditLog.sign``.

A checkpoint (a signed tree head) is the C2SP tlog-checkpoint of the log's size and root,
signed with the log's Ed25519 key as a signed note. The server signs one at most every
``checkpoint_interval_ms`` while the log grows; each is saved as the log's newest (the store
keeps one a ``history_ms`` in its history, whichever process signs), kept in the anchor file,
and handed to the publishers (a file, a URL) that let an outside witness keep them, whether or
not the database took it.

The signer signs the tree it computes itself: the last checkpoint's tree (its own, in memory,
or the stored one shown to give that checkpoint's root) extended with the leaf hashes of the
entries' bodies since. When the log does not extend the last checkpoint, it refuses, and the
refusal stands: it writes an alarm beside its key (``keys/audit.alarm``) and signs nothing
until an operator clears it with a reason (``clear_alarm``, itself an entry of the log).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
import threading
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from logwarden._fsutil import fsync_dir
from logwarden.audit import checkpoint as notes
from logwarden.audit import entries, merkle
from logwarden.audit.authority import sign_entry
from logwarden.clock import Clock
from logwarden.errors import AuditVerificationError
from logwarden.store import AuditHead, AuditRecord, Store

__all__ = [
    "AuditLog",
    "Publisher",
    "Signed",
    "file_publisher",
    "newest_checkpoint",
    "read_alarm",
    "read_head",
    "url_publisher",
    "write_if_newer",
]

log = logging.getLogger("logwarden.audit")

Publisher = Callable[[bytes], None]

HISTORY_MS = 60_000  # ms: at most one checkpoint a minute goes into the stored history
_CHUNK = 10_000  # entries read per query when the signer hashes the bodies it signs
_MAX_ALARM_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Signed:
    """A checkpoint that verified with the log's key: what it says, its note, where it was."""

    checkpoint: notes.Checkpoint
    note: bytes
    where: str


def read_head(store: Store) -> AuditHead:
    """The store's audit head.

    Raises:
        AuditVerificationError: if its frontier (the hashes the next append extends) does not
            fit its size: the head row was altered.
        StoreError: if it cannot be read.
    """
    try:
        return store.audit_head()
    except ValueError as exc:  # merkle.CompactRange refusing the stored hashes
        raise AuditVerificationError(
            f"the audit log's head is damaged: its frontier does not fit its size ({exc})"
        ) from None


def newest_checkpoint(
    store: Store,
    *,
    verifier: notes.VerifierKey,
    anchor_path: Path | None = None,
    known: Signed | None = None,
) -> Signed | None:
    """The newest checkpoint signed with ``verifier`` among ``known``, the anchor file and the
    database's newest; None if there is none. Read-only: nothing is signed or saved.

    A database checkpoint that does not verify is passed over (``audit verify`` names it).

    Raises:
        AuditVerificationError: if the anchor file holds no checkpoint of this log.
    """
    return _candidates(store, verifier, anchor_path, known)[0]


def _candidates(
    store: Store, verifier: notes.VerifierKey, anchor_path: Path | None, known: Signed | None
) -> tuple[Signed | None, Signed | None, AuditHead]:
    """The newest checkpoint known (``known``, the anchor file, the database's), the
    database's own if it verifies, and the head it was read with.

    The anchor file is read before the head: a checkpoint another process saved and then
    anchored is then in the head read after it."""
    anchor = _read_anchor(anchor_path, verifier)
    head = read_head(store)
    stored = None if head.checkpoint is None else _open(head.checkpoint, verifier, "the database")
    found = [c for c in (known, anchor, stored) if c is not None]
    newest = max(found, key=lambda c: c.checkpoint.size) if found else None
    return newest, stored, head


def _read_anchor(path: Path | None, verifier: notes.VerifierKey) -> Signed | None:
    if path is None:
        return None
    try:
        note = notes.read_note_file(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuditVerificationError(f"cannot read {path}: {exc.strerror}") from None
    signed = _open(note, verifier, str(path))
    if signed is None:
        raise AuditVerificationError(f"{path} does not hold a checkpoint signed by this log's key")
    return signed


def _open(note: bytes, verifier: notes.VerifierKey, where: str) -> Signed | None:
    try:
        checkpoint = notes.verify(note, verifier_key=verifier, origin=verifier.name)
    except AuditVerificationError:
        return None
    return Signed(checkpoint, note, where)


class AuditLog:
    """Appends to the audit log in ``store`` and signs its entries and checkpoints with
    ``signer``.

    The signer is the log's own first witness: it remembers the last checkpoint it signed
    (``anchor_path``, under ``keys/``, apart from the database) and signs a new head only if
    the log extends it, computing the new tree from the entries' bodies. Someone who rewrites
    or truncates the log in the database therefore cannot get it signed: ``checkpoint``
    refuses, raises the alarm (``alarm_path``) and signs nothing more until it is cleared.

    ``clock`` dates what this log makes: the ``made`` time of each signature, the alarm, the
    checkpoints' history. Give it the real clock even when the caller acts as of another time
    (``purge --as-of``): ``made`` is how a drill on the live log is told apart.
    """

    def __init__(
        self,
        store: Store,
        *,
        signer: notes.SigningKey,
        clock: Clock,
        publishers: Sequence[Publisher] = (),
        history_ms: int = HISTORY_MS,
        anchor_path: Path | None = None,
        alarm_path: Path | None = None,
    ) -> None:
        self._store = store
        self._signer = signer
        self._clock = clock
        self._publishers = tuple(publishers)
        self._history_ms = history_ms
        self._anchor_path = anchor_path
        self._alarm_path = alarm_path
        self._alarm: str | None = None  # the alarm, without a file to keep it in
        self._alarm_said: str | None = None  # the alarm last logged
        self._anchor: Signed | None = None  # the newest checkpoint this process signed
        # The tree of the last checkpoint this process signed or checked, from the bodies.
        self._tree: merkle.CompactRange | None = None
        self._complaint: str | None = None  # the last problem with the database's checkpoint
        self._signing = threading.Lock()

    @property
    def origin(self) -> str:
        """The log's name: the first line of its checkpoints, and its key's name."""
        return self._signer.name

    @property
    def verifier(self) -> notes.VerifierKey:
        return self._signer.verifier()

    def now_ms(self) -> int:
        return self._clock.now_ms()

    def entry(
        self, kind: str, *, at: int, session_id: str | None = None, **fields: Any
    ) -> AuditRecord:
        """An entry of ``kind`` (``entries.entry``), signed if its kind is: what every part
        but the recorder's bulk appends, on its own (``append``) or with a change of the
        store's (a flag, a hold, an erasure request)."""
        return self.sign(entries.entry(kind, at=at, session_id=session_id, **fields))

    def sign(self, record: AuditRecord) -> AuditRecord:
        """``record`` signed with the log's key, dated now, if its kind is signed
        (``entries.SIGNED``) and it is not signed yet."""
        return sign_entry(record, self._signer, made=self._clock.now_ms())

    def append(self, records: Sequence[AuditRecord]) -> int:
        """Append entries (one transaction), signing those that must be; returns the index of
        the first."""
        return self._store.append_audit([self.sign(record) for record in records])

    def newest(self) -> Signed | None:
        """The newest checkpoint signed with the log's key that this process, the anchor file
        or the database knows, once the log is shown to extend it; None for an empty log.

        Raises:
            AuditVerificationError: if the log does not extend it (rewritten or truncated).
        """
        with self._locked():
            newest, _stored, head = _candidates(
                self._store, self.verifier, self._anchor_path, self._anchor
            )
            if newest is not None:
                self._tree_at(newest, head)
        return newest

    def checkpoint(self) -> bytes | None:
        """Sign the log's head if it has grown since the last checkpoint, save and publish it;
        return the note (None if there was nothing new).

        The note is published whether or not the database took it: a marker there must not
        be able to silence the witnesses. A database checkpoint that is not the newest signed
        is logged as an error (``audit verify`` names it too). The anchor file's lock is held
        throughout, so that two processes never sign two trees of one size.

        Raises ``AuditVerificationError`` if the log does not extend the last checkpoint
        signed (it was rewritten or truncated), raising the alarm, or if the alarm stands:
        nothing is signed then. Publishers' failures are logged, never raised.
        """
        with self._signing, self._locked():
            self._require_no_alarm()
            try:
                last, stored, head = _candidates(
                    self._store, self.verifier, self._anchor_path, self._anchor
                )
                self._complain(head, stored, last)
                tree = self._tree_at(last, head)
            except AuditVerificationError as exc:
                raise self._raise_alarm(f"refusing to sign: {exc}") from None
            if tree.size == 0 or (last is not None and tree.size == last.checkpoint.size):
                return None
            signed = notes.Checkpoint(self.origin, tree.size, tree.root())
            note = notes.sign(signed, self._signer)
            self._store.save_checkpoint(
                size=tree.size, at=self._clock.now_ms(), note=note, history_ms=self._history_ms
            )
            self._remember(Signed(signed, note, "this signer"), tree)
        for publish in self._publishers:
            try:
                publish(note)
            except Exception as exc:  # a witness being away must not stop the log
                log.warning("could not publish checkpoint %d: %s", tree.size, exc)
        return note

    # -- the alarm ----------------------------------------------------------------------------

    def alarm(self) -> str | None:
        """The standing alarm, for people; None if there is none."""
        if self._alarm_path is None:
            return self._alarm
        return read_alarm(self._alarm_path)

    def clear_alarm(self, *, by: str, reason: str) -> int:
        """Let the signer sign again: record who and why (a ``resume`` entry, with the alarm
        it clears), then remove the alarm. Returns the entry's index.

        Raises:
            AuditVerificationError: if there is no alarm to clear.
        """
        with self._signing, self._locked():
            said = self.alarm()
            if said is None:
                raise AuditVerificationError("the signer has raised no alarm: nothing to clear")
            recorded = _alarm_fields(self._alarm_path) if self._alarm_path else {"reason": said}
            index = self.append(
                [self.entry("resume", at=self.now_ms(), by=by, reason=reason, alarm=recorded)]
            )
            self._alarm = self._alarm_said = None
            if self._alarm_path is not None:
                self._alarm_path.unlink(missing_ok=True)
                fsync_dir(self._alarm_path.parent)
            return index

    def _require_no_alarm(self) -> None:
        said = self.alarm()
        if said is None:
            return
        if said != self._alarm_said:  # once per alarm: the server tries every half second
            log.error("the audit signer stopped signing: %s", said)
            self._alarm_said = said
        raise AuditVerificationError(
            f"signing is stopped: {said}; run `logwarden audit verify`, then clear the alarm "
            "with `logwarden audit clear-alarm --reason …`"
        )

    def _raise_alarm(self, reason: str) -> AuditVerificationError:
        """Record a refusal to sign where it outlives this process (the first one stands)."""
        record = {"at": self._clock.now_ms(), "reason": reason}
        if self._alarm_path is None:
            self._alarm = self._alarm or _describe_alarm(record)
        elif not self._alarm_path.exists():
            _replace_file(self._alarm_path, json.dumps(record, sort_keys=True).encode() + b"\n")
        said = self.alarm() or reason
        log.error("the audit signer stopped signing: %s", said)
        self._alarm_said = said
        return AuditVerificationError(
            f"{reason} (the alarm is raised: nothing is signed until an operator clears it "
            "with `logwarden audit clear-alarm --reason …`)"
        )

    # -- the tree the signer signs ----------------------------------------------------------

    def _tree_at(self, last: Signed | None, head: AuditHead) -> merkle.CompactRange:
        """The tree of the log's ``head.size`` entries: the last checkpoint's tree, extended
        with the leaf hashes of the bodies since; it must be the head's.

        Raises ``AuditVerificationError`` (why, for the alarm) if the log does not extend
        ``last``: shorter, an entry missing, or a tree that is not the checkpoint's or the
        head's."""
        if last is None:
            base = merkle.CompactRange()
        else:
            base = self._checkpointed(last.checkpoint, head.size)
        tree = self._extend(base, head.size, signed=base.size)
        if tree.root() != head.root:
            raise AuditVerificationError(
                f"the audit log's head (root {head.root.hex()[:16]}…) is not the tree of its "
                f"{head.size} entries' bodies (root {tree.root().hex()[:16]}…): its head, or an "
                f"entry after checkpoint {base.size}, was altered (run `logwarden audit verify`)"
            )
        return tree

    def _checkpointed(self, checkpoint: notes.Checkpoint, size: int) -> merkle.CompactRange:
        """The tree of the first ``checkpoint.size`` entries of a log of ``size``, shown to give
        the checkpoint's root: this process's own tree extended, or (a process that has none)
        the stored nodes'."""
        signed = checkpoint.size
        said = f"the audit log of {size} entries does not extend checkpoint {signed}"
        if size < signed:
            raise AuditVerificationError(f"{said}: it was truncated (run `logwarden audit verify`)")
        mine = self._tree
        if mine is not None and mine.size <= signed:
            tree = self._extend(mine, signed, signed=signed)
        else:
            try:
                tree = self._store.audit_range(signed)
            except ValueError as exc:  # a hash it needs is not stored, or not a hash
                raise AuditVerificationError(
                    f"{said}: the stored tree under it cannot be read ({exc}); it was "
                    "rewritten (run `logwarden audit verify`)"
                ) from None
        if tree.root() != checkpoint.root_hash:
            raise AuditVerificationError(
                f"{said}: its first {signed} entries do not give that checkpoint's root; it was "
                "rewritten (run `logwarden audit verify`)"
            )
        if mine is None or tree.size > mine.size:
            self._tree = tree  # shown to be a signed tree: the next checkpoint starts here
        return tree

    def _extend(self, tree: merkle.CompactRange, size: int, *, signed: int) -> merkle.CompactRange:
        """A copy of ``tree`` extended to ``size`` with the leaf hashes of the stored bodies
        (never the stored leaf hashes: those are the database's word). Reads only what is
        stored: a missing entry ends it."""
        grown = merkle.CompactRange.from_hashes(tree.size, tree.hashes)
        while grown.size < size:
            start = grown.size
            rows = self._store.audit_bodies(start, min(size, start + _CHUNK))
            for expected, (idx, body) in enumerate(rows, start=start):
                if idx != expected or not isinstance(body, bytes):
                    break
                grown.append(merkle.leaf_hash(body))
            if grown.size == start or grown.size < start + len(rows):
                raise AuditVerificationError(
                    f"the audit log of {size} entries does not extend checkpoint {signed}: "
                    f"entry {grown.size} is missing or altered (run `logwarden audit verify`)"
                )
        return grown

    # -- after signing --------------------------------------------------------------------

    def _complain(self, head: AuditHead, stored: Signed | None, last: Signed | None) -> None:
        """Log, once per change, a database checkpoint that is not the newest signed one."""
        complaint = None
        if head.checkpoint is not None and stored is None:
            complaint = "does not verify with the log's key: it was replaced"
        elif last is not None and (stored is None or stored.checkpoint.size < last.checkpoint.size):
            size = "none" if stored is None else f"size {stored.checkpoint.size}"
            complaint = (
                f"is {size}, older than checkpoint {last.checkpoint.size} signed before: it was "
                "rolled back"
            )
        else:
            marker = self._store.checkpoint_marker()
            if stored is not None and marker != stored.checkpoint.size:
                complaint = (
                    f"is of size {stored.checkpoint.size} but its marker says {marker}: the "
                    "marker was altered"
                )
        if complaint is not None and complaint != self._complaint:
            log.error(
                "the database's newest audit checkpoint %s (run `logwarden audit verify`); "
                "checkpoints are still signed and published",
                complaint,
            )
        self._complaint = complaint

    def _remember(self, signed: Signed, tree: merkle.CompactRange) -> None:
        if self._anchor is None or signed.checkpoint.size > self._anchor.checkpoint.size:
            self._anchor = signed
            self._tree = tree
        if self._anchor_path is not None:
            _write_if_newer(self._anchor_path, signed.note, verifier=self.verifier)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The anchor file's lock (across processes), if there is an anchor file."""
        if self._anchor_path is None:
            yield
            return
        with _locked(self._anchor_path):
            yield


def read_alarm(path: Path) -> str | None:
    """The alarm the signer raised at ``path``, for people; None if there is none. An alarm
    file that cannot be read is an alarm too."""
    try:
        fields = _alarm_fields(path)
    except FileNotFoundError:
        return None
    return _describe_alarm(fields)


def _alarm_fields(path: Path) -> dict[str, Any]:
    """The alarm file's fields (``{"reason": …}`` saying why, if it is not one)."""
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_ALARM_BYTES + 1)
    except FileNotFoundError:
        raise
    except OSError as exc:
        return {"reason": f"{path} cannot be read ({exc.strerror})"}
    try:
        fields = json.loads(data) if len(data) <= _MAX_ALARM_BYTES else None
    except (ValueError, RecursionError):
        fields = None
    if not isinstance(fields, dict) or not isinstance(fields.get("reason"), str):
        return {"reason": f"{path} is not an alarm the signer wrote (altered)"}
    return fields


def _describe_alarm(fields: dict[str, Any]) -> str:
    at = fields.get("at")
    when = ""
    if type(at) is int:
        with contextlib.suppress(OverflowError, OSError, ValueError):
            moment = datetime.fromtimestamp(at / 1000, tz=UTC)
            when = f" at {moment.isoformat(timespec='seconds').replace('+00:00', 'Z')}"
    return f"the signer raised an alarm{when}: {fields['reason']}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock for writing ``path`` (``flock`` on ``.<name>.lock`` beside it):
    the server and a CLI command may both write one."""
    fd = os.open(path.parent / f".{path.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_if_newer(path: Path, note: bytes, *, verifier: notes.VerifierKey) -> bool:
    """Replace ``path`` with the checkpoint ``note`` unless it holds a checkpoint of this log
    (signed with ``verifier``) for as many entries or more; True if it wrote.

    Two signers may finish in either order, and a witness's copy must never go back to a
    smaller tree: what is there is kept when it is as new. Anything else there (another
    log's, a damaged file, nothing) is replaced.
    """
    with _locked(path):
        return _write_if_newer(path, note, verifier=verifier)


def _write_if_newer(path: Path, note: bytes, *, verifier: notes.VerifierKey) -> bool:
    """``write_if_newer`` with ``path``'s lock held by the caller."""
    size = notes.Checkpoint.parse(note.split(b"\n\n", 1)[0] + b"\n").size
    try:
        current = _open(notes.read_note_file(path), verifier, str(path))
    except (FileNotFoundError, AuditVerificationError):
        current = None
    if current is not None and current.checkpoint.size >= size:
        return False
    _replace_file(path, note)
    return True


def _replace_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, through a temporary file of this writer's own (the
    server and a CLI command may write at once)."""
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise
    fsync_dir(path.parent)


def file_publisher(path: Path, *, verifier: notes.VerifierKey) -> Publisher:
    """Write each checkpoint to ``path``, replacing the last one atomically, never with an
    older one (``write_if_newer``)."""

    def publish(note: bytes) -> None:
        write_if_newer(path, note, verifier=verifier)

    return publish


def url_publisher(url: str, *, timeout: float = 5.0) -> Publisher:
    """POST checkpoints (``text/plain``) to ``url``, for a witness to keep.

    Posting happens on a thread of its own, newest checkpoint only: a witness that is slow or
    away must not hold up the next checkpoint (the server signs every half second), and once
    it is back it needs only the newest, which extends all the others.
    """
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"checkpoint_url must be an http(s) URL, not {url!r}")
    waiting: list[bytes] = []  # at most one: the newest not yet posted
    ready = threading.Condition()

    def post(note: bytes) -> None:
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            url, data=note, method="POST", headers={"Content-Type": "text/plain; charset=utf-8"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            response.read()

    def run() -> None:
        while True:
            with ready:
                ready.wait_for(lambda: bool(waiting))
                note = waiting.pop()
            try:
                post(note)
            except Exception as exc:  # the next checkpoint tries again
                log.warning("could not post a checkpoint to the witness: %s", exc)

    poster = threading.Thread(target=run, name="checkpoint-witness", daemon=True)

    def publish(note: bytes) -> None:
        with ready:
            waiting[:] = [note]
            ready.notify()
            if not poster.is_alive():
                poster.start()

    return publish
