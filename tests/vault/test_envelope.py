"""The vault: sealing and opening session values, IP pseudonyms, and the key file."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from logwarden.errors import DataDirError, LogwardenError, VaultError
from logwarden.vault import KeyMaterial, Vault, canonical_ip, create_key_file, load_key_file
from logwarden.vault._aead import derive_key, seal_at

VECTORS = Path(__file__).resolve().parents[1] / "vectors"

MASTER = bytes(range(32))
PSEUDONYM_KEY = bytes(range(32, 64))
SESSION = "0123456789abcdef0123456789abcdef"
OTHER_SESSION = "fedcba9876543210fedcba9876543210"
LABEL = "msg:1:0:1764061200123"


def json_parametrize(keys: tuple[str, ...], filename: str) -> pytest.MarkDecorator:
    """Parametrize over the entries of a JSON vector file (as pyca's tests/test_fernet.py)."""
    entries = json.loads((VECTORS / filename).read_text())
    return pytest.mark.parametrize(
        keys, [tuple(entry[key] for key in keys) for entry in entries], ids=range(len(entries))
    )


def material(master: bytes = MASTER, pseudonym: bytes = PSEUDONYM_KEY) -> KeyMaterial:
    return KeyMaterial(master_key=master, pseudonym_key=pseudonym)


@pytest.fixture
def vault() -> Vault:
    return Vault(material())


@pytest.fixture
def token(vault: Vault) -> bytes:
    return vault.seal(b"hello, stranger", session_id=SESSION, label=LABEL)


def opening_error(open_: Callable[[], Any]) -> VaultError:
    with pytest.raises(VaultError) as info:
        open_()
    return info.value


class TestSealOpen:
    @pytest.mark.parametrize(
        "plaintext", [b"", b"hi!", "grüße 😀".encode(), bytes(range(256)), b"x" * 10_000]
    )
    def test_round_trip(self, vault: Vault, plaintext: bytes) -> None:
        """A sealed value opens to the same bytes with the same session and label."""
        sealed = vault.seal(plaintext, session_id=SESSION, label=LABEL)
        assert vault.open(sealed, session_id=SESSION, label=LABEL) == plaintext

    def test_token_layout(self, vault: Vault) -> None:
        """A token is version 1, a 12-byte nonce, the ciphertext and a 16-byte tag."""
        sealed = vault.seal(b"12345", session_id=SESSION, label=LABEL)
        assert sealed[0] == 1
        assert len(sealed) == 1 + 12 + 5 + 16

    def test_plaintext_is_not_in_the_token(self, vault: Vault) -> None:
        """The plaintext does not appear in the token."""
        plaintext = b"my phone number is 555-0100"
        assert plaintext not in vault.seal(plaintext, session_id=SESSION, label=LABEL)

    def test_nonces_differ(self, vault: Vault) -> None:
        """Two seals of the same plaintext use different nonces and give different tokens."""
        first = vault.seal(b"same", session_id=SESSION, label=LABEL)
        second = vault.seal(b"same", session_id=SESSION, label=LABEL)
        assert first[1:13] != second[1:13]
        assert first != second

    def test_nonces_stay_unique_across_draws(self, vault: Vault) -> None:
        """Nonces drawn in bulk are each used once, across many refills of the pool."""
        tokens = [vault.seal(b"x", session_id=SESSION, label=LABEL) for _ in range(2000)]
        nonces = {token[1:13] for token in tokens}
        assert len(nonces) == 2000
        assert all(vault.open(t, session_id=SESSION, label=LABEL) == b"x" for t in tokens)

    def test_another_vault_with_the_same_keys_opens(self, token: bytes) -> None:
        """A token opens with a new Vault over the same key material (after a restart)."""
        assert Vault(material()).open(token, session_id=SESSION, label=LABEL) == b"hello, stranger"

    def test_opens_after_the_key_cache_is_cleared(self, vault: Vault, token: bytes) -> None:
        """Tokens still open after thousands of other sessions have been sealed."""
        for n in range(4100):
            vault.seal(b"", session_id=f"{n:032x}", label="interests")
        assert vault.open(token, session_id=SESSION, label=LABEL) == b"hello, stranger"


class TestOpeningFails:
    """Every way a token can fail to open raises the same opaque VaultError."""

    @pytest.fixture
    def reference(self, vault: Vault) -> str:
        return str(opening_error(lambda: vault.open(b"", session_id=SESSION, label=LABEL)))

    def test_reference_message_is_opaque(self, reference: str) -> None:
        """The message does not say what was wrong."""
        assert not re.search(r"tag|nonce|version|label|session|key|length|short", reference, re.I)

    def test_other_session(self, vault: Vault, token: bytes, reference: str) -> None:
        """A token does not open for another session."""
        error = opening_error(lambda: vault.open(token, session_id=OTHER_SESSION, label=LABEL))
        assert str(error) == reference

    @pytest.mark.parametrize(
        "label", ["msg:2:0:1764061200123", "msg:1:1:1764061200123", "msg:1:0:1764061200124", ""]
    )
    def test_other_label(self, vault: Vault, token: bytes, reference: str, label: str) -> None:
        """A token does not open under another label (renumbered, re-attributed or re-timed)."""
        error = opening_error(lambda: vault.open(token, session_id=SESSION, label=label))
        assert str(error) == reference

    def test_other_master_key(self, token: bytes, reference: str) -> None:
        """A token does not open under another master key."""
        other = Vault(material(master=bytes(32)))
        error = opening_error(lambda: other.open(token, session_id=SESSION, label=LABEL))
        assert str(error) == reference

    def test_flipped_byte_anywhere(self, vault: Vault, token: bytes, reference: str) -> None:
        """Flipping any bit pattern in any byte (version, nonce, ciphertext, tag) fails alike."""
        for position in range(len(token)):
            for mask in (0x01, 0x80, 0xFF):
                tampered = bytearray(token)
                tampered[position] ^= mask
                error = opening_error(
                    lambda t=bytes(tampered): vault.open(t, session_id=SESSION, label=LABEL)
                )
                assert str(error) == reference, f"byte {position} mask {mask:#x}"

    def test_truncated(self, vault: Vault, token: bytes, reference: str) -> None:
        """Every truncation of a token fails alike, however short."""
        for length in range(len(token)):
            error = opening_error(
                lambda t=token[:length]: vault.open(t, session_id=SESSION, label=LABEL)
            )
            assert str(error) == reference, f"length {length}"

    def test_extended(self, vault: Vault, token: bytes, reference: str) -> None:
        """A token with bytes appended fails alike."""
        error = opening_error(lambda: vault.open(token + b"\x00", session_id=SESSION, label=LABEL))
        assert str(error) == reference

    def test_swapped_between_sessions(self, vault: Vault, reference: str) -> None:
        """A token moved from one session's row to another's does not open there."""
        mine = vault.seal(b"mine", session_id=SESSION, label="ip:0")
        error = opening_error(lambda: vault.open(mine, session_id=OTHER_SESSION, label="ip:0"))
        assert str(error) == reference

    def test_error_carries_no_cause(self, vault: Vault, token: bytes) -> None:
        """The error hides the underlying exception, so a traceback is no oracle either."""
        error = opening_error(lambda: vault.open(token, session_id=OTHER_SESSION, label=LABEL))
        assert error.__cause__ is None
        assert error.__suppress_context__
        assert isinstance(error, LogwardenError)


class TestVectors:
    @json_parametrize(
        ("master_key", "session_id", "label", "nonce", "plaintext", "info", "aad", "token"),
        "vault_seal.json",
    )
    def test_seal_at_reproduces_token(
        self,
        master_key: str,
        session_id: str,
        label: str,
        nonce: str,
        plaintext: str,
        info: str,
        aad: str,
        token: str,
    ) -> None:
        """seal_at with the derived session key and a fixed nonce gives the recorded token."""
        key = derive_key(bytes.fromhex(master_key), bytes.fromhex(info))
        sealed = seal_at(key, bytes.fromhex(plaintext), bytes.fromhex(aad), bytes.fromhex(nonce))
        assert sealed.hex() == token

    @json_parametrize(
        ("master_key", "session_id", "label", "nonce", "plaintext", "info", "aad", "token"),
        "vault_seal.json",
    )
    def test_token_matches_the_primitives(
        self,
        master_key: str,
        session_id: str,
        label: str,
        nonce: str,
        plaintext: str,
        info: str,
        aad: str,
        token: str,
    ) -> None:
        """The token is version || nonce || AES-256-GCM under HKDF-SHA256 of the master key."""
        data_key = HKDF(algorithm=SHA256(), length=32, salt=None, info=bytes.fromhex(info)).derive(
            bytes.fromhex(master_key)
        )
        raw = bytes.fromhex(token)
        assert raw[:1] == b"\x01"
        assert raw[1:13] == bytes.fromhex(nonce)
        associated = b"\x01" + bytes.fromhex(aad)
        assert AESGCM(data_key).decrypt(raw[1:13], raw[13:], associated) == bytes.fromhex(plaintext)
        assert bytes.fromhex(info) == b"logwarden session data key v1\x00" + session_id.encode()
        assert bytes.fromhex(aad) == (
            b"logwarden/v1\x00" + session_id.encode() + b"\x00" + label.encode()
        )

    @json_parametrize(
        ("master_key", "session_id", "label", "plaintext", "token"), "vault_seal.json"
    )
    def test_vault_opens_vector(
        self, master_key: str, session_id: str, label: str, plaintext: str, token: str
    ) -> None:
        """The public Vault opens every recorded token to its plaintext."""
        vault = Vault(material(master=bytes.fromhex(master_key)))
        opened = vault.open(bytes.fromhex(token), session_id=session_id, label=label)
        assert opened == bytes.fromhex(plaintext)

    @json_parametrize(("master_key", "session_id", "label", "token"), "vault_seal.json")
    def test_vector_does_not_open_elsewhere(
        self, master_key: str, session_id: str, label: str, token: str
    ) -> None:
        """A recorded token does not open under another label."""
        vault = Vault(material(master=bytes.fromhex(master_key)))
        with pytest.raises(VaultError):
            vault.open(bytes.fromhex(token), session_id=session_id, label=label + "x")


class TestNetworkPseudonym:
    def test_ipv4_stands_for_itself(self, vault: Vault) -> None:
        """An IPv4 address's network pseudonym is its own pseudonym (mapped form included)."""
        assert vault.network_pseudonym("192.0.2.1") == vault.pseudonym("192.0.2.1")
        assert vault.network_pseudonym("::ffff:192.0.2.1") == vault.pseudonym("192.0.2.1")
        assert vault.network_pseudonym("192.0.2.2") != vault.network_pseudonym("192.0.2.1")

    def test_ipv6_stands_for_its_64(self, vault: Vault) -> None:
        """Addresses in one IPv6 /64 share a network pseudonym; another /64 does not."""
        same = vault.network_pseudonym("2001:db8:0:1::1")
        assert vault.network_pseudonym("2001:db8:0:1:ffff:1234:5678:9abc") == same
        assert vault.network_pseudonym("2001:db8:0:2::1") != same
        assert vault.pseudonym("2001:db8:0:1::1") != same  # not the address's own pseudonym


class TestPseudonym:
    def test_stable(self, vault: Vault) -> None:
        """The same address always gives the same pseudonym, also from a new Vault."""
        assert vault.pseudonym("192.0.2.1") == vault.pseudonym("192.0.2.1")
        assert vault.pseudonym("192.0.2.1") == Vault(material()).pseudonym("192.0.2.1")

    def test_format(self, vault: Vault) -> None:
        """A pseudonym is 32 lowercase hex characters (128 bits)."""
        assert re.fullmatch(r"[0-9a-f]{32}", vault.pseudonym("192.0.2.1"))
        assert re.fullmatch(r"[0-9a-f]{32}", vault.pseudonym("2001:db8::1"))

    def test_is_keyed(self, vault: Vault) -> None:
        """Another pseudonym key gives another pseudonym, so it is not a bare hash."""
        other = Vault(material(pseudonym=bytes(32)))
        assert vault.pseudonym("192.0.2.1") != other.pseudonym("192.0.2.1")

    def test_known_answer(self, vault: Vault) -> None:
        """The pseudonym is HMAC-SHA256 over a labelled packed address, cut to 16 bytes."""
        expected = hmac.new(
            PSEUDONYM_KEY, b"logwarden ip pseudonym v1\x00" + bytes([192, 0, 2, 1]), hashlib.sha256
        ).digest()[:16]
        assert vault.pseudonym("192.0.2.1") == expected.hex()

    def test_addresses_differ(self, vault: Vault) -> None:
        """Different addresses give different pseudonyms."""
        addresses = [f"192.0.2.{n}" for n in range(1, 50)] + [f"2001:db8::{n:x}" for n in range(50)]
        assert len({vault.pseudonym(a) for a in addresses}) == len(addresses)

    def test_ipv4_mapped_ipv6_is_the_ipv4_address(self, vault: Vault) -> None:
        """ "::ffff:192.0.2.1" (a dual-stack socket's view) has the pseudonym of 192.0.2.1."""
        assert vault.pseudonym("::ffff:192.0.2.1") == vault.pseudonym("192.0.2.1")
        assert canonical_ip("::ffff:192.0.2.1") == canonical_ip("192.0.2.1")

    def test_ipv6_spellings_are_one_address(self, vault: Vault) -> None:
        """Different spellings of one IPv6 address give one pseudonym."""
        assert vault.pseudonym("2001:DB8:0:0:0:0:0:1") == vault.pseudonym("2001:db8::1")

    def test_ipv4_is_not_its_ipv6_compatible_form(self, vault: Vault) -> None:
        """Only the mapped form is folded: an unrelated IPv6 address stays distinct."""
        assert vault.pseudonym("2001:db8::c000:201") != vault.pseudonym("192.0.2.1")


class TestKeyFile:
    def test_creates_private_file_in_private_dir(self, tmp_path: Path) -> None:
        """The key file is created 0600 in a directory created 0700."""
        keys_dir = tmp_path / "data" / "keys"
        path = create_key_file(keys_dir)
        assert path.parent == keys_dir
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700

    def test_round_trip(self, tmp_path: Path) -> None:
        """The keys written are the keys loaded: the first 32 bytes master, the rest pseudonym."""
        random_bytes = bytes(range(64))
        create_key_file(tmp_path, random_bytes=random_bytes)
        loaded = load_key_file(tmp_path)
        assert loaded.master_key == random_bytes[:32]
        assert loaded.pseudonym_key == random_bytes[32:]

    def test_fresh_keys_are_random(self, tmp_path: Path) -> None:
        """Two new key files hold different keys."""
        create_key_file(tmp_path / "a")
        create_key_file(tmp_path / "b")
        assert load_key_file(tmp_path / "a") != load_key_file(tmp_path / "b")

    def test_refuses_to_overwrite(self, tmp_path: Path) -> None:
        """An existing key file is never replaced."""
        path = create_key_file(tmp_path, random_bytes=bytes(64))
        before = path.read_bytes()
        with pytest.raises(FileExistsError):
            create_key_file(tmp_path, random_bytes=bytes(range(64)))
        assert path.read_bytes() == before

    def test_wrong_amount_of_randomness(self, tmp_path: Path) -> None:
        """create_key_file needs exactly 64 random bytes and writes nothing otherwise."""
        with pytest.raises(ValueError, match="64"):
            create_key_file(tmp_path, random_bytes=bytes(32))
        assert not (tmp_path / "vault.json").exists()

    def test_missing(self, tmp_path: Path) -> None:
        """A missing key file is a DataDirError that says how to create one."""
        with pytest.raises(DataDirError, match="logwarden init"):
            load_key_file(tmp_path / "keys")

    @pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o620, 0o602, 0o610, 0o601])
    def test_rejects_group_or_other_access(self, tmp_path: Path, mode: int) -> None:
        """A key file other users can touch is refused, with the chmod that fixes it."""
        path = create_key_file(tmp_path)
        os.chmod(path, mode)
        with pytest.raises(DataDirError) as info:
            load_key_file(tmp_path)
        assert "chmod 600" in str(info.value)
        assert f"{mode:o}" in str(info.value)

    @pytest.mark.parametrize("mode", [0o600, 0o400])
    def test_accepts_owner_only(self, tmp_path: Path, mode: int) -> None:
        """Owner-only modes are accepted."""
        path = create_key_file(tmp_path, random_bytes=bytes(64))
        os.chmod(path, mode)
        assert load_key_file(tmp_path).master_key == bytes(32)


def _key_document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "format": "logwarden-keys/1",
        "master_key": base64.b64encode(bytes(32)).decode(),
        "pseudonym_key": base64.b64encode(bytes(32)).decode(),
    }
    document.update(changes)
    return {k: v for k, v in document.items() if v is not ...}


class TestMalformedKeyFile:
    @pytest.mark.parametrize(
        "content",
        [
            b"",
            b"not json",
            b'{"format": "logwarden-keys/1"',
            b"[]",
            b'"logwarden-keys/1"',
            b"null",
            b"\xff\xfe{}",  # not UTF-8
        ],
        ids=["empty", "text", "truncated", "list", "string", "null", "not-utf8"],
    )
    def test_not_a_key_document(self, tmp_path: Path, content: bytes) -> None:
        """A file that is not a JSON key document is a DataDirError."""
        self.write(tmp_path, content)
        with pytest.raises(DataDirError, match="malformed"):
            load_key_file(tmp_path)

    @pytest.mark.parametrize(
        "changes",
        [
            {"format": "logwarden-keys/2"},
            {"format": ...},
            {"master_key": ...},
            {"pseudonym_key": ...},
            {"master_key": base64.b64encode(bytes(31)).decode()},
            {"pseudonym_key": base64.b64encode(bytes(33)).decode()},
            {"master_key": "not base64!"},
            {"master_key": 12345},
            {"master_key": None},
            {"pseudonym_key": ["AAAA"]},
            {"master_key": "ÄÄÄÄ"},
        ],
        ids=lambda changes: ",".join(f"{k}={v!r}" for k, v in changes.items()),
    )
    def test_wrong_field(self, tmp_path: Path, changes: dict[str, Any]) -> None:
        """A wrong format, a missing key, bad base64 or a wrong key length is a DataDirError."""
        self.write(tmp_path, json.dumps(_key_document(**changes)).encode())
        with pytest.raises(DataDirError, match="malformed"):
            load_key_file(tmp_path)

    def test_message_does_not_show_key_bytes(self, tmp_path: Path) -> None:
        """The error for a wrong key length does not repeat the key."""
        short = base64.b64encode(b"k" * 31).decode()
        self.write(tmp_path, json.dumps(_key_document(master_key=short)).encode())
        with pytest.raises(DataDirError) as info:
            load_key_file(tmp_path)
        assert short not in str(info.value)

    @staticmethod
    def write(keys_dir: Path, content: bytes) -> None:
        path = keys_dir / "vault.json"
        path.write_bytes(content)
        os.chmod(path, 0o600)


class TestKeyMaterialRepr:
    def test_repr_hides_keys(self) -> None:
        """Neither repr nor str of key material shows any form of the keys."""
        keys = KeyMaterial(master_key=b"M" * 32, pseudonym_key=b"P" * 32)
        for text in (repr(keys), str(keys), f"{keys}", repr([keys]), repr({"k": keys})):
            assert "MMMM" not in text
            assert "PPPP" not in text
            assert (b"M" * 4).hex() not in text
            assert base64.b64encode(b"M" * 32).decode()[:8] not in text

    def test_loaded_material_repr_hides_keys(self, tmp_path: Path) -> None:
        """Key material loaded from a file does not show its keys in repr."""
        create_key_file(tmp_path, random_bytes=bytes(range(64)))
        loaded = load_key_file(tmp_path)
        assert loaded.master_key.hex() not in repr(loaded)
        assert repr(loaded.master_key) not in repr(loaded)
        assert "KeyMaterial" in repr(loaded)
