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

import logging
import os
import threading
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from logwarden._fsutil import fsync_dir
from logwarden.audit import checkpoint as notes
from logwarden.clock import Clock
from logwarden.store import AuditRecord, Store

__all__ = ["AuditLog", "Publisher", "file_publisher", "url_publisher"]

log = logging.getLogger("logwarden.audit")

Publisher = Callable[[bytes], None]

HISTORY_MS = 60_000  # ms: at most one checkpoint a minute goes into the stored history


class AuditLog:
    """Appends to the audit log in ``store`` and signs its checkpoints with ``signer``."""

    def __init__(
        self,
        store: Store,
        *,
        signer: notes.SigningKey,
        clock: Clock,
        publishers: Sequence[Publisher] = (),
        history_ms: int = HISTORY_MS,
    ) -> None:
        self._store = store
        self._signer = signer
        self._clock = clock
        self._publishers = tuple(publishers)
        self._history_ms = history_ms
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
        """Sign the log's head if it has grown since the newest checkpoint; return the note
        (None if there was nothing new). Publishers' failures are logged, never raised."""
        with self._signing:
            head = self._store.audit_head()
            if head.checkpoint is not None and self._size_of(head.checkpoint) == head.size:
                return None
            if head.size == 0 and head.checkpoint is None:
                return None
            at = self._clock.now_ms()
            note = notes.sign(notes.Checkpoint(self.origin, head.size, head.root), self._signer)
            keep = self._kept_at is None or at - self._kept_at >= self._history_ms
            self._store.save_checkpoint(size=head.size, at=at, note=note, keep=keep)
            if keep:
                self._kept_at = at
        for publish in self._publishers:
            try:
                publish(note)
            except Exception as exc:  # a witness being away must not stop the log
                log.warning("could not publish checkpoint %d: %s", head.size, exc)
        return note

    def _size_of(self, note: bytes) -> int | None:
        try:
            return notes.verify(note, verifier_key=self.verifier, origin=self.origin).size
        except Exception:  # a replaced head checkpoint: sign a good one over it
            return None


def file_publisher(path: Path) -> Publisher:
    """Write each checkpoint to ``path``, replacing the last one atomically."""

    def publish(note: bytes) -> None:
        partial = path.with_name(path.name + ".partial")
        with open(partial, "wb") as out:
            out.write(note)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
        fsync_dir(path.parent)

    return publish


def url_publisher(url: str, *, timeout: float = 5.0) -> Publisher:
    """POST each checkpoint (``text/plain``) to ``url``, for a witness to keep."""
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"checkpoint_url must be an http(s) URL, not {url!r}")

    def publish(note: bytes) -> None:
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            url, data=note, method="POST", headers={"Content-Type": "text/plain; charset=utf-8"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            response.read()

    return publish
