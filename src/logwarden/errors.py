"""The errors logwarden raises.

Every error derives from one base class, so a caller can catch all of ours at once::

    LogwardenError
    ├── ConfigError       bad configuration: names the key, the value and where it came from
    ├── ProtocolError     a client frame that breaks docs/protocol.md: carries a stable code
    ├── StoreError        the session log could not be read or written
    ├── VaultError        a key is missing or a sealed value does not open (deliberately opaque)
    │   └── KeyDestroyedError   the value's key was shredded by retention or erasure
    ├── DataDirError      the data directory is missing, half-made or has unsafe permissions
    └── AuditVerificationError  a proof, tree head or signature does not verify: says what

Only ``cli.py`` and the ASGI handlers turn these into output, exit codes or error frames.
"""

from __future__ import annotations

__all__ = [
    "AuditVerificationError",
    "ConfigError",
    "DataDirError",
    "KeyDestroyedError",
    "LogwardenError",
    "ProtocolError",
    "StoreError",
    "VaultError",
]


class LogwardenError(Exception):
    """Base class of every error logwarden raises on purpose."""

    def diagnostics(self) -> str:
        """Text for a person: what went wrong and, where we know it, what to do."""
        return str(self)


class ConfigError(LogwardenError):
    """The configuration is invalid; the message names the key and the offending value."""


class ProtocolError(LogwardenError):
    """A client frame that breaks the protocol.

    ``code`` is the stable machine-readable code of docs/protocol.md; the message is for people.
    """

    def __init__(self, code: str, message: str, *, frame_type: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.frame_type = frame_type  # the type of the frame this answers, when known


class StoreError(LogwardenError):
    """The session log could not be read or written."""


class VaultError(LogwardenError):
    """A key is missing or a sealed value does not open.

    Opening failures are deliberately opaque: the message never says whether the tag, the
    version or the associated data was wrong, so the error is no oracle.
    """


class KeyDestroyedError(VaultError):
    """The key a value was sealed under no longer exists: retention or erasure shredded it."""


class DataDirError(LogwardenError):
    """The data directory is missing, only partly initialised, or unsafe."""


class AuditVerificationError(LogwardenError):
    """A Merkle proof, tree head, checkpoint or signature does not verify.

    The message says which check failed and gives the expected and computed values, so an
    auditor can tell a flipped bit from a missing entry.
    """
