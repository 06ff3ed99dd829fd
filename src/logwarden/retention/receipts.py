"""Receipt tokens: what a participant holds to see, and erase, what is kept about their chat.

A token is 256 random bits, URL-safe; the log keeps only its SHA-256, so the log (or a copy of
it) cannot be used to act on anyone's session.
"""

from __future__ import annotations

import hashlib
import re
import secrets

__all__ = ["is_well_formed", "new_receipt", "receipt_digest"]

_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


def new_receipt() -> tuple[str, str]:
    """A fresh (token, digest) pair."""
    token = secrets.token_urlsafe(32)
    return token, receipt_digest(token)


def receipt_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_well_formed(token: str) -> bool:
    return _TOKEN.fullmatch(token) is not None
