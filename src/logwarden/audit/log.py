"""The audit log: append entries, sign checkpoints, publish them (docs/audit.md).

The recorder appends its entries inside its own group commit (``WriteBatch.audit``); every
other part (retention, the CLI, the console) appends through ``AuditLog.append``, each call
one transaction. The store serialises appends, across processes.

Entries that destroy data or lift a protection are signed with the log's key as they are
appended (``authority.py``).

A checkpoint (a signed tree head) is the C2SP tlog-checkpoint of the log's size and root,
signed with the log's Ed25519 key as a signed note. The server signs one at most every
``checkpoint_interval_ms`` while the log grows; each is saved as the log's newest (the store
keeps one a ``history_ms`` in its history, whichever process signs), kept in the anchor file,
and handed to the publishers (a file, a URL) that let an outside witness keep them, whether or
not the database took it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
import threading
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from logwarden._fsutil import fsync_dir
from logwarden.audit import checkpoint as notes
from logwarden.audit.authority import sign_entry
from logwarden.audit.proofs import verify_consistency
from logwarden.clock import Clock
from logwarden.errors import AuditVerificationError, StoreError
from logwarden.store import AuditHead, AuditRecord, Store

__all__ = [
    "AuditLog",
    "Publisher",
    "Signed",
    "file_publisher",
    "newest_checkpoint",
    "read_head",
    "url_publisher",
    "write_if_newer",
]

log = logging.getLogger("logwarden.audit")

Publisher = Callable[[bytes], None]

HISTORY_MS = 60_000  # ms: at most one checkpoint a minute goes into the stored history


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
    candidates = [known, _read_anchor(anchor_path, verifier)]  # the anchor before the head
    stored = read_head(store).checkpoint
    if stored is not None:
        candidates.append(_open(stored, verifier, where="the database"))
    found = [c for c in candidates if c is not None]
    return max(found, key=lambda c: c.checkpoint.size) if found else None


def _read_anchor(path: Path | None, verifier: notes.VerifierKey) -> Signed | None:
    if path is None:
        return None
    try:
        note = notes.read_note_file(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuditVerificationError(f"cannot read {path}: {exc.strerror}") from None
    signed = _open(note, verifier, where=str(path))
    if signed is None:
        raise AuditVerificationError(f"{path} does not hold a checkpoint signed by this log's key")
    return signed


def _open(note: bytes, verifier: notes.VerifierKey, *, where: str) -> Signed | None:
    try:
        checkpoint = notes.verify(note, verifier_key=verifier, origin=verifier.name)
    except AuditVerificationError:
        return None
    return Signed(checkpoint, note, where)


class AuditLog:
    """Appends to the audit log in ``store`` and signs its checkpoints with ``signer``.

    The signer is the log's own first witness: it remembers the last checkpoint it signed
    (``anchor_path``, under ``keys/``, apart from the database) and signs a new head only if
    a consistency proof shows that the head extends it. Someone who rewrites or truncates the
    log in the database therefore cannot get it signed; ``checkpoint`` refuses, loudly.

    Entries that destroy data or lift a protection are signed with the same key as they are
    appended (``authority.py``): the database alone cannot make them.
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
    ) -> None:
        self._store = store
        self._signer = signer
        self._clock = clock
        self._publishers = tuple(publishers)
        self._history_ms = history_ms
        self._anchor_path = anchor_path
        self._anchor: Signed | None = None  # the newest checkpoint this process signed
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

    def authorise(self, record: AuditRecord) -> AuditRecord:
        """``record`` signed with the log's key if it is of a kind that must be
        (``authority.AUTHORISING``), for entries that go into the store with a change of its
        own (a release, an erasure request); ``append`` does this itself."""
        return sign_entry(record, self._signer)

    def append(self, records: Sequence[AuditRecord]) -> int:
        """Append entries (one transaction), signing those that must be; returns the index of
        the first."""
        return self._store.append_audit([self.authorise(record) for record in records])

    def newest(self) -> Signed | None:
        """The newest checkpoint signed with the log's key that this process, the anchor file
        or the database knows, once the log is shown to extend it; None for an empty log.

        Raises:
            AuditVerificationError: if the log does not extend it (rewritten or truncated).
        """
        newest = newest_checkpoint(
            self._store, verifier=self.verifier, anchor_path=self._anchor_path, known=self._anchor
        )
        if newest is not None:
            head = read_head(self._store)
            self._extends(newest.checkpoint, head.size, head.root, doing="cannot vouch for it")
        return newest

    def checkpoint(self) -> bytes | None:
        """Sign the log's head if it has grown since the last checkpoint, save and publish it;
        return the note (None if there was nothing new).

        The note is published whether or not the database took it: a marker there must not
        be able to silence the witnesses. A database checkpoint that is not the newest signed
        is logged as an error (``audit verify`` names it too).

        Raises ``AuditVerificationError`` if the head does not extend the last checkpoint
        signed (the log was rewritten or truncated): nothing is signed then. Publishers'
        failures are logged, never raised.
        """
        with self._signing:
            # The anchor file before the head: a checkpoint another process saved and then
            # anchored is then in the head read after it (no false alarm of a roll-back).
            anchor = _read_anchor(self._anchor_path, self.verifier)
            head = read_head(self._store)
            stored = (
                None
                if head.checkpoint is None
                else _open(head.checkpoint, self.verifier, where="the database")
            )
            known = [c for c in (self._anchor, anchor, stored) if c is not None]
            last = max(known, key=lambda c: c.checkpoint.size) if known else None
            self._complain(head, stored, last)
            if last is not None:
                if not self._extends(last.checkpoint, head.size, head.root):
                    return None
            elif head.size == 0:
                return None
            signed = notes.Checkpoint(self.origin, head.size, head.root)
            note = notes.sign(signed, self._signer)
            at = self._clock.now_ms()
            self._store.save_checkpoint(
                size=head.size, at=at, note=note, history_ms=self._history_ms
            )
            self._remember(Signed(signed, note, "this signer"))
        for publish in self._publishers:
            try:
                publish(note)
            except Exception as exc:  # a witness being away must not stop the log
                log.warning("could not publish checkpoint %d: %s", head.size, exc)
        return note

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

    def _extends(
        self, anchor: notes.Checkpoint, size: int, root: bytes, *, doing: str = "refusing to sign"
    ) -> bool:
        """True if the head has grown from ``anchor``; False if it is ``anchor``'s tree;
        ``AuditVerificationError`` (starting with ``doing``) if it is not an extension of it."""
        if size == anchor.size and root == anchor.root_hash:
            return False
        if size <= anchor.size:
            raise AuditVerificationError(
                f"{doing}: the audit log holds {size} entries with root "
                f"{root.hex()[:16]}…, but checkpoint {anchor.size} was signed: the log was "
                "rewritten or truncated (run `logwarden audit verify`)"
            )
        try:
            proof = self._store.audit_consistency(old_size=anchor.size, new_size=size)
            verify_consistency(
                old_size=anchor.size,
                new_size=size,
                old_root=anchor.root_hash,
                new_root=root,
                proof=proof,
            )
        except (AuditVerificationError, ValueError, StoreError) as exc:
            raise AuditVerificationError(
                f"{doing}: the audit log of {size} entries does not extend checkpoint "
                f"{anchor.size} ({exc}); it was rewritten (run `logwarden audit verify`)"
            ) from None
        return True

    def _remember(self, signed: Signed) -> None:
        if self._anchor is None or signed.checkpoint.size > self._anchor.checkpoint.size:
            self._anchor = signed
        if self._anchor_path is not None:
            write_if_newer(self._anchor_path, signed.note, verifier=self.verifier)


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
    size = notes.Checkpoint.parse(note.split(b"\n\n", 1)[0] + b"\n").size
    with _locked(path):
        try:
            current = _open(notes.read_note_file(path), verifier, where=str(path))
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
