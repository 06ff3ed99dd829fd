"""The audit log: append entries, sign checkpoints, publish them (docs/audit.md).

The recorder appends its entries inside its own group commit (``WriteBatch.audit``); every
other part (retention, the CLI, the console) appends through ``AuditLog.append``, each call
one transaction. The store serialises appends, across processes.

A checkpoint (a signed tree head) is the C2SP tlog-checkpoint of the log's size and root,
signed with the log's Ed25519 key as a signed note. The server signs one at most every
``checkpoint_interval_ms`` while the log grows; each is saved as the log's newest, kept in the
history at most once a ``history_ms``, and handed to the publishers (a file, a URL) that let an
outside witness keep them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from logwarden._fsutil import fsync_dir
from logwarden.audit import checkpoint as notes
from logwarden.audit.proofs import verify_consistency
from logwarden.clock import Clock
from logwarden.errors import AuditVerificationError, StoreError
from logwarden.store import AuditRecord, Store

__all__ = ["AuditLog", "Publisher", "file_publisher", "url_publisher"]

log = logging.getLogger("logwarden.audit")

Publisher = Callable[[bytes], None]

HISTORY_MS = 60_000  # ms: at most one checkpoint a minute goes into the stored history


class AuditLog:
    """Appends to the audit log in ``store`` and signs its checkpoints with ``signer``.

    The signer is the log's own first witness: it remembers the last checkpoint it signed
    (``anchor_path``, under ``keys/``, apart from the database) and signs a new head only if
    a consistency proof shows that the head extends it. Someone who rewrites or truncates the
    log in the database therefore cannot get it signed; ``checkpoint`` refuses, loudly.
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
        self._anchor: notes.Checkpoint | None = None  # the last checkpoint this process signed
        self._kept_at: int | None = None  # when this process last added to the history
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

    def append(self, records: Sequence[AuditRecord]) -> int:
        """Append entries (one transaction); returns the index of the first."""
        return self._store.append_audit(records)

    def checkpoint(self) -> bytes | None:
        """Sign the log's head if it has grown since the last checkpoint; return the note
        (None if there was nothing new).

        Raises ``AuditVerificationError`` if the head does not extend the last checkpoint
        signed (the log was rewritten or truncated): nothing is signed then. Publishers'
        failures are logged, never raised.
        """
        with self._signing:
            head = self._store.audit_head()
            anchor = self._last_signed(head.checkpoint)
            if anchor is not None:
                if not self._extends(anchor, head.size, head.root):
                    return None
            elif head.size == 0:
                return None
            at = self._clock.now_ms()
            signed = notes.Checkpoint(self.origin, head.size, head.root)
            note = notes.sign(signed, self._signer)
            keep = self._kept_at is None or at - self._kept_at >= self._history_ms
            saved = self._store.save_checkpoint(size=head.size, at=at, note=note, keep=keep)
            self._remember(signed, note)
            if not saved:
                return None  # another process saved one as large meanwhile; it publishes
            if keep:
                self._kept_at = at
        for publish in self._publishers:
            try:
                publish(note)
            except Exception as exc:  # a witness being away must not stop the log
                log.warning("could not publish checkpoint %d: %s", head.size, exc)
        return note

    def _extends(self, anchor: notes.Checkpoint, size: int, root: bytes) -> bool:
        """True if the head has grown from ``anchor``; False if it is ``anchor``'s tree;
        ``AuditVerificationError`` if it is not an extension of it."""
        if size == anchor.size and root == anchor.root_hash:
            return False
        if size <= anchor.size:
            raise AuditVerificationError(
                f"refusing to sign: the audit log holds {size} entries with root "
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
                f"refusing to sign: the audit log of {size} entries does not extend checkpoint "
                f"{anchor.size} ({exc}); it was rewritten (run `logwarden audit verify`)"
            ) from None
        return True

    def _last_signed(self, stored: bytes | None) -> notes.Checkpoint | None:
        """The newest checkpoint signed: this process's, the anchor file's, or (with neither)
        the database's, if it verifies."""
        candidates = [self._anchor, self._read_anchor(), self._open(stored)]
        known = [c for c in candidates if c is not None]
        return max(known, key=lambda c: c.size) if known else None

    def _read_anchor(self) -> notes.Checkpoint | None:
        if self._anchor_path is None:
            return None
        try:
            note = self._anchor_path.read_bytes()
        except FileNotFoundError:
            return None
        signed = self._open(note)
        if signed is None:
            raise AuditVerificationError(
                f"{self._anchor_path} does not hold a checkpoint signed by this log's key"
            )
        return signed

    def _open(self, note: bytes | None) -> notes.Checkpoint | None:
        if note is None:
            return None
        try:
            return notes.verify(note, verifier_key=self.verifier, origin=self.origin)
        except AuditVerificationError:
            return None  # a replaced checkpoint in the database: the anchor decides

    def _remember(self, signed: notes.Checkpoint, note: bytes) -> None:
        if self._anchor is None or signed.size > self._anchor.size:
            self._anchor = signed
        if self._anchor_path is not None:
            _replace_file(self._anchor_path, note)


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


def file_publisher(path: Path) -> Publisher:
    """Write each checkpoint to ``path``, replacing the last one atomically."""

    def publish(note: bytes) -> None:
        _replace_file(path, note)

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
