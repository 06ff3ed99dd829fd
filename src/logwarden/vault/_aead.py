"""Raw AEAD for the vault: AES-256-GCM with random 96-bit nonces. Unstable, vault-only.

A sealed token is ``version (1 byte) || nonce (12 bytes) || ciphertext || tag (16 bytes)``.
Nonces are random: a data key seals at most one session's values (a few thousand at most),
far below the 2**32 messages per key at which random 96-bit nonces start to risk a repeat.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from logwarden.errors import VaultError

TOKEN_VERSION = 1
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_BYTES = 32
_HEADER = bytes([TOKEN_VERSION])


def seal_at(key: AESGCM, plaintext: bytes, aad: bytes, nonce: bytes) -> bytes:
    """Seal with an explicit nonce (tests use fixed nonces to reproduce vectors)."""
    return _HEADER + nonce + key.encrypt(nonce, plaintext, _HEADER + aad)


def open_token(key: AESGCM, token: bytes, aad: bytes) -> bytes:
    """Open a token; every failure raises the same opaque ``VaultError``."""
    # The version byte is authenticated (it is part of the AAD), so a flipped version fails
    # the tag check exactly like a flipped ciphertext byte: one error for every failure.
    if len(token) < 1 + NONCE_BYTES + TAG_BYTES:
        raise VaultError("sealed value does not open")
    nonce = token[1 : 1 + NONCE_BYTES]
    try:
        return key.decrypt(nonce, token[1 + NONCE_BYTES :], token[:1] + aad)
    except InvalidTag:
        raise VaultError("sealed value does not open") from None


def keyed_digest(key: bytes, data: bytes) -> bytes:
    # Not the one-shot ``hmac.digest``: it releases the GIL on every call, and taking it back
    # from a busy thread waits up to the 5 ms switch interval. The recorder's thread makes one
    # per message and the event loop one per connection; ``hmac.new`` keeps the GIL.
    return hmac.new(key, data, hashlib.sha256).digest()
