"""The vault's recipes: seal and open values of a session, and pseudonymise IP addresses.

Code outside ``logwarden.vault`` uses only ``Vault``. Every sealed value is bound to its
session and to a label naming what it is (``msg:17``, ``ip:0``), through the AEAD's associated
data: a ciphertext moved to another session or another message does not open.

Each session has two random data keys from the keystore (keystore.py): one for its addresses
(labels ``ip:*``) and one for everything else. The keys of live sessions are kept in memory
between ``begin_sessions`` and ``forget``; any other use fetches them from the keystore, so a
key destroyed by the purge is gone from this process too.
"""

from __future__ import annotations

import ipaddress
import os
import threading
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from logwarden.errors import KeyDestroyedError
from logwarden.vault._aead import NONCE_BYTES, keyed_digest, open_token, seal_at
from logwarden.vault.keys import KeyMaterial
from logwarden.vault.keystore import ADDRESS, TEXT, KeyStore, NewDataKey

__all__ = ["Vault", "canonical_ip", "text_commitment"]

_AAD_PREFIX = b"logwarden/v1\x00"
_PSEUDONYM_INFO = b"logwarden ip pseudonym v1\x00"
_NETWORK_INFO = b"logwarden ipv6 /64 pseudonym v1\x00"
_NONCES_PER_DRAW = 256
_AUDIT_SALT_INFO = b"logwarden audit salt v1\x00"


def canonical_ip(address: str) -> bytes:
    """The packed form of an IP address; IPv4-mapped IPv6 counts as the IPv4 address."""
    return _parse_ip(address).packed


def _parse_ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class Vault:
    """Seals session values under the session's data keys, kept in the keystore."""

    def __init__(self, material: KeyMaterial, keystore: KeyStore) -> None:
        self._material = material
        self._keystore = keystore
        self._live: dict[tuple[str, str], AESGCM] = {}  # (session id, purpose) of live sessions
        self._salts: dict[str, bytes] = {}  # audit salts of live sessions
        self._nonces = b""  # random bytes drawn ahead, NONCE_BYTES per seal
        self._next_nonce = 0
        self._lock = threading.Lock()  # the recorder thread and the event loop both seal

    def seal(self, plaintext: bytes, *, session_id: str, label: str) -> bytes:
        """Encrypt ``plaintext`` for ``session_id``; ``label`` says what it is."""
        return seal_at(
            self._session_key(session_id, label), plaintext, _aad(session_id, label), self._nonce()
        )

    def _nonce(self) -> bytes:
        # Drawn from os.urandom in bulk: one system call per 256 seals instead of one each.
        # The recorder seals on its own thread, and every os.urandom call hands the GIL to the
        # busy event loop and waits to get it back, which cost the chat a fifth of its
        # throughput (bench/relay.py). Each nonce is still 96 fresh random bits used once.
        with self._lock:
            start = self._next_nonce
            if start == len(self._nonces):
                self._nonces, start = os.urandom(NONCE_BYTES * _NONCES_PER_DRAW), 0
            self._next_nonce = start + NONCE_BYTES
            return self._nonces[start : start + NONCE_BYTES]

    def open(self, token: bytes, *, session_id: str, label: str) -> bytes:
        """Decrypt a value sealed with the same session and label; else ``VaultError``
        (``KeyDestroyedError`` if its key is gone: shredded by retention or erasure)."""
        return open_token(self._session_key(session_id, label), token, _aad(session_id, label))

    def pseudonym(self, address: str) -> str:
        """A keyed pseudonym (HMAC-SHA256, 128 bits, hex) of an IP address.

        The same address always gives the same pseudonym, so bans and reports link sessions
        without keeping the address; without the key it cannot be reversed by trying all
        2**32 IPv4 addresses, which a bare hash could.
        """
        return self._keyed_pseudonym(_PSEUDONYM_INFO + canonical_ip(address))

    def network_pseudonym(self, address: str) -> str:
        """The pseudonym of the network an address stands for, for blocking.

        An IPv4 address stands for itself. An IPv6 address stands for its /64: one subscriber
        line or device gets a whole /64 and picks new addresses in it at will (privacy
        addresses rotate daily), so a block on one address would not hold.
        """
        ip = _parse_ip(address)
        if ip.version == 4:
            return self._keyed_pseudonym(_PSEUDONYM_INFO + ip.packed)
        return self._keyed_pseudonym(_NETWORK_INFO + ip.packed[:8])  # the /64 prefix

    def _keyed_pseudonym(self, data: bytes) -> str:
        return keyed_digest(self._material.pseudonym_key, data)[:16].hex()

    def begin_sessions(self, wanted: Sequence[NewDataKey]) -> None:
        """Make these data keys (durable in the keystore on return) and keep them in memory."""
        keys = self._keystore.create_data_keys(wanted)
        with self._lock:
            for new, key in zip(wanted, keys, strict=True):
                self._live[new.session_id, new.purpose] = AESGCM(key)
                if new.purpose == TEXT:
                    self._salts[new.session_id] = _audit_salt(key)

    def forget(self, session_id: str) -> None:
        """Drop a session's keys from memory (it has ended); later uses go to the keystore."""
        with self._lock:
            self._live.pop((session_id, TEXT), None)
            self._live.pop((session_id, ADDRESS), None)
            self._salts.pop(session_id, None)

    def audit_salt(self, session_id: str) -> bytes:
        """The session's audit salt: the key of the audit log's commitments to its text.

        Derived from the session's text key, so it is destroyed with it: after that, the
        commitments in the audit log cannot be tested against guesses (docs/audit.md). An
        exported transcript carries it, so that anyone can check its text offline; it opens
        nothing. Raises ``KeyDestroyedError`` once the text key is gone.
        """
        with self._lock:
            salt = self._salts.get(session_id)
        if salt is not None:
            return salt
        raw = self._keystore.data_key(session_id, TEXT)
        if raw is None:
            raise KeyDestroyedError(f"the text key of session {session_id} does not exist")
        return _audit_salt(raw)

    def text_commitment(self, text: bytes, *, session_id: str, seq: int) -> bytes:
        """HMAC-SHA256 under the session's audit salt of a message's number and text."""
        return text_commitment(self.audit_salt(session_id), text, seq=seq)

    def _session_key(self, session_id: str, label: str) -> AESGCM:
        purpose = ADDRESS if label.startswith("ip:") else TEXT
        with self._lock:
            key = self._live.get((session_id, purpose))
        if key is not None:
            return key
        raw = self._keystore.data_key(session_id, purpose)
        if raw is None:
            raise KeyDestroyedError(f"the {purpose} key of session {session_id} does not exist")
        return AESGCM(raw)


def _audit_salt(text_key: bytes) -> bytes:
    # A one-way derivation (HMAC as a PRF): the salt reveals nothing of the key it came from.
    return keyed_digest(text_key, _AUDIT_SALT_INFO)


def text_commitment(salt: bytes, text: bytes, *, seq: int) -> bytes:
    """The audit log's commitment to message ``seq``'s text: HMAC-SHA256(salt, seq || LF ||
    text). The number makes two equal messages' commitments differ."""
    return keyed_digest(salt, b"%d\n" % seq + text)


def _aad(session_id: str, label: str) -> bytes:
    return _AAD_PREFIX + session_id.encode() + b"\x00" + label.encode()
