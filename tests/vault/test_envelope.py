"""The vault: sealing and opening session values, IP pseudonyms, and the key file.

Every Vault here stands on a real keystore in a temporary directory (tests/vault/conftest.py).
"""

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
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from logwarden.errors import DataDirError, KeyDestroyedError, LogwardenError, VaultError
from logwarden.vault import (
    ADDRESS,
    TEXT,
    KeyMaterial,
    KeyStore,
    NewDataKey,
    Vault,
    canonical_ip,
    create_key_file,
    load_key_file,
)
from logwarden.vault._aead import seal_at
from tests.vault.conftest import DAY, SESSION_CLASS, OpenKeyStore, scripted_random, session_keys

VECTORS = Path(__file__).resolve().parents[1] / "vectors"

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


def material(pseudonym: bytes = PSEUDONYM_KEY) -> KeyMaterial:
    return KeyMaterial(pseudonym_key=pseudonym)


@pytest.fixture
def vault(keystore: KeyStore) -> Vault:
    """A vault whose keystore holds both data keys of SESSION and OTHER_SESSION, both live."""
    vault = Vault(material(), keystore)
    vault.begin_sessions(session_keys(SESSION, OTHER_SESSION))
    return vault


@pytest.fixture
def reopened(keys_dir: Path, open_keystore: OpenKeyStore) -> Callable[[], Vault]:
    """Makes a vault over the same keys directory, as after a restart: no session is live."""
    return lambda: Vault(material(), open_keystore(keys_dir))


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

    def test_another_vault_with_the_same_keys_opens(
        self, token: bytes, reopened: Callable[[], Vault]
    ) -> None:
        """A token opens with a new Vault and keystore over the same keys dir (a restart)."""
        assert reopened().open(token, session_id=SESSION, label=LABEL) == b"hello, stranger"

    def test_opens_after_the_session_is_forgotten(self, vault: Vault, token: bytes) -> None:
        """A forgotten (ended) session's values open and seal with keys from the keystore."""
        vault.forget(SESSION)
        assert vault.open(token, session_id=SESSION, label=LABEL) == b"hello, stranger"
        again = vault.seal(b"later", session_id=SESSION, label="report:1:0")
        assert vault.open(again, session_id=SESSION, label="report:1:0") == b"later"

    def test_many_live_sessions(self, vault: Vault, token: bytes) -> None:
        """Values of thousands of live sessions all open, and the first session's still do."""
        sessions = [f"{n:032x}" for n in range(2000)]
        vault.begin_sessions(session_keys(*sessions))
        sealed = {s: vault.seal(s.encode(), session_id=s, label="interests") for s in sessions}
        assert all(
            vault.open(t, session_id=s, label="interests") == s.encode() for s, t in sealed.items()
        )
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

    def test_other_keystore(
        self, token: bytes, reference: str, tmp_path: Path, open_keystore: OpenKeyStore
    ) -> None:
        """A token does not open under another keystore's key for the same session."""
        other = Vault(material(), open_keystore(tmp_path / "other"))
        other.begin_sessions(session_keys(SESSION))
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


VECTOR_FIELDS = ("data_key", "session_id", "purpose", "label", "nonce", "plaintext", "aad", "token")


VaultHolding = Callable[..., Vault]


@pytest.fixture
def vault_holding(tmp_path: Path, open_keystore: OpenKeyStore) -> VaultHolding:
    """Makes a vault whose keystore holds a given data key as a session's key for a purpose.

    Called as ``vault_holding(data_key, session_id=..., purpose=...)``. The key goes in
    through a keystore whose randomness gives it as the first key made; the vault opens
    through a second, ordinary keystore over the same directory.
    """

    def make(data_key: bytes, *, session_id: str, purpose: str) -> Vault:
        keys_dir = tmp_path / f"keys-{data_key.hex()}"
        inserting = open_keystore(keys_dir, random_bytes=scripted_random(data_key))
        made = inserting.create_data_keys([NewDataKey(session_id, purpose, SESSION_CLASS, DAY)])
        assert made == [data_key]
        return Vault(material(), open_keystore(keys_dir))

    return make


class TestVectors:
    """tests/vectors/vault_seal.json: tokens sealed under known data keys with fixed nonces."""

    @json_parametrize(VECTOR_FIELDS, "vault_seal.json")
    def test_seal_at_reproduces_token(
        self,
        data_key: str,
        session_id: str,
        purpose: str,
        label: str,
        nonce: str,
        plaintext: str,
        aad: str,
        token: str,
    ) -> None:
        """seal_at with the data key and a fixed nonce gives the recorded token."""
        key = AESGCM(bytes.fromhex(data_key))
        sealed = seal_at(key, bytes.fromhex(plaintext), bytes.fromhex(aad), bytes.fromhex(nonce))
        assert sealed.hex() == token

    @json_parametrize(VECTOR_FIELDS, "vault_seal.json")
    def test_token_matches_the_primitives(
        self,
        data_key: str,
        session_id: str,
        purpose: str,
        label: str,
        nonce: str,
        plaintext: str,
        aad: str,
        token: str,
    ) -> None:
        """The token is version || nonce || AES-256-GCM under the data key, bound to session
        and label; ``ip:`` labels use the address key, all others the text key."""
        raw = bytes.fromhex(token)
        assert raw[:1] == b"\x01"
        assert raw[1:13] == bytes.fromhex(nonce)
        associated = b"\x01" + bytes.fromhex(aad)
        opened = AESGCM(bytes.fromhex(data_key)).decrypt(raw[1:13], raw[13:], associated)
        assert opened == bytes.fromhex(plaintext)
        assert bytes.fromhex(aad) == (
            b"logwarden/v1\x00" + session_id.encode() + b"\x00" + label.encode()
        )
        assert purpose == (ADDRESS if label.startswith("ip:") else TEXT)

    def test_a_session_has_one_key_per_purpose(self) -> None:
        """Within the file, each session and purpose has one key, and purposes differ."""
        entries = json.loads((VECTORS / "vault_seal.json").read_text())
        keys: dict[tuple[str, str], set[str]] = {}
        for entry in entries:
            keys.setdefault((entry["session_id"], entry["purpose"]), set()).add(entry["data_key"])
        assert all(len(found) == 1 for found in keys.values())
        assert len({found.pop() for found in keys.values()}) == len(keys)
        assert {purpose for _, purpose in keys} == {TEXT, ADDRESS}

    @json_parametrize(
        ("data_key", "session_id", "purpose", "label", "plaintext", "token"), "vault_seal.json"
    )
    def test_vault_opens_vector(
        self,
        vault_holding: VaultHolding,
        data_key: str,
        session_id: str,
        purpose: str,
        label: str,
        plaintext: str,
        token: str,
    ) -> None:
        """A Vault whose keystore holds the data key opens the recorded token to its plaintext."""
        vault = vault_holding(bytes.fromhex(data_key), session_id=session_id, purpose=purpose)
        opened = vault.open(bytes.fromhex(token), session_id=session_id, label=label)
        assert opened == bytes.fromhex(plaintext)

    @json_parametrize(("data_key", "session_id", "purpose", "label", "token"), "vault_seal.json")
    def test_vector_does_not_open_elsewhere(
        self,
        vault_holding: VaultHolding,
        data_key: str,
        session_id: str,
        purpose: str,
        label: str,
        token: str,
    ) -> None:
        """A recorded token does not open under another label, nor under another key."""
        vault = vault_holding(bytes.fromhex(data_key), session_id=session_id, purpose=purpose)
        with pytest.raises(VaultError):
            vault.open(bytes.fromhex(token), session_id=session_id, label=label + "x")
        other = vault_holding(bytes(range(1, 33)), session_id=session_id, purpose=purpose)
        with pytest.raises(VaultError) as info:
            other.open(bytes.fromhex(token), session_id=session_id, label=label)
        assert not isinstance(info.value, KeyDestroyedError)


class TestKeysByLabel:
    """``ip:`` labels are sealed under the session's address key, all others under its text key."""

    @pytest.mark.parametrize(
        ("label", "purpose"),
        [
            ("ip:0", ADDRESS),
            ("ip:1", ADDRESS),
            ("ip:", ADDRESS),
            ("interests", TEXT),
            (LABEL, TEXT),
            ("report:1:1764061300000", TEXT),
            ("ip", TEXT),
            ("xip:0", TEXT),
            ("IP:0", TEXT),
        ],
    )
    def test_label_chooses_the_key(
        self, vault: Vault, keystore: KeyStore, label: str, purpose: str
    ) -> None:
        """A sealed value opens with plain AES-GCM under the key its label names, not the other."""
        sealed = vault.seal(b"value", session_id=SESSION, label=label)
        aad = b"\x01logwarden/v1\x00" + SESSION.encode() + b"\x00" + label.encode()
        other = TEXT if purpose == ADDRESS else ADDRESS
        right, wrong = keystore.data_key(SESSION, purpose), keystore.data_key(SESSION, other)
        assert right is not None and wrong is not None
        assert AESGCM(right).decrypt(sealed[1:13], sealed[13:], aad) == b"value"
        with pytest.raises(InvalidTag):
            AESGCM(wrong).decrypt(sealed[1:13], sealed[13:], aad)

    def test_destroying_the_address_key_keeps_the_text(
        self, vault: Vault, keystore: KeyStore
    ) -> None:
        """With only its address key destroyed, a session's addresses are gone, its text not."""
        address = vault.seal(b"192.0.2.1", session_id=SESSION, label="ip:0")
        text = vault.seal(b"hello", session_id=SESSION, label=LABEL)
        vault.forget(SESSION)
        keystore.destroy_data_keys([SESSION], purpose=ADDRESS)
        with pytest.raises(KeyDestroyedError):
            vault.open(address, session_id=SESSION, label="ip:0")
        assert vault.open(text, session_id=SESSION, label=LABEL) == b"hello"


class TestSessions:
    def test_begin_sessions_is_durable(self, vault: Vault, reopened: Callable[[], Vault]) -> None:
        """Keys made by begin_sessions are in the keystore on return, for another process."""
        vault.begin_sessions(session_keys("a" * 32))
        sealed = vault.seal(b"x", session_id="a" * 32, label="ip:0")
        assert reopened().open(sealed, session_id="a" * 32, label="ip:0") == b"x"

    def test_unknown_session(self, vault: Vault) -> None:
        """A session whose keys were never made can neither seal nor open: KeyDestroyedError."""
        with pytest.raises(KeyDestroyedError):
            vault.seal(b"x", session_id="b" * 32, label=LABEL)
        with pytest.raises(KeyDestroyedError):
            vault.open(b"\x01" + bytes(40), session_id="b" * 32, label="ip:0")

    def test_destroyed_session_does_not_open(
        self, vault: Vault, keystore: KeyStore, token: bytes, reopened: Callable[[], Vault]
    ) -> None:
        """Once its keys are destroyed, an ended session's values raise KeyDestroyedError."""
        vault.forget(SESSION)
        keystore.destroy_data_keys([SESSION])
        error = opening_error(lambda: vault.open(token, session_id=SESSION, label=LABEL))
        assert isinstance(error, KeyDestroyedError)
        with pytest.raises(KeyDestroyedError):
            reopened().open(token, session_id=SESSION, label=LABEL)

    def test_destroyed_bucket_takes_its_sessions(
        self, vault: Vault, keystore: KeyStore, token: bytes
    ) -> None:
        """Destroying the bucket of a day's sessions shreds their values, and no others'."""
        vault.begin_sessions(session_keys("c" * 32, day=DAY + 1))
        later = vault.seal(b"tomorrow", session_id="c" * 32, label=LABEL)
        for session_id in (SESSION, OTHER_SESSION, "c" * 32):
            vault.forget(session_id)
        keystore.destroy_buckets([f"{SESSION_CLASS}:{DAY}"])
        with pytest.raises(KeyDestroyedError):
            vault.open(token, session_id=SESSION, label=LABEL)
        assert vault.open(later, session_id="c" * 32, label=LABEL) == b"tomorrow"

    def test_begin_twice_fails_and_keeps_the_keys(self, vault: Vault, token: bytes) -> None:
        """Beginning a session whose keys exist fails, and its values still open."""
        with pytest.raises(VaultError):
            vault.begin_sessions(session_keys(SESSION))
        assert vault.open(token, session_id=SESSION, label=LABEL) == b"hello, stranger"
        vault.forget(SESSION)
        assert vault.open(token, session_id=SESSION, label=LABEL) == b"hello, stranger"

    def test_forget_unknown_session(self, vault: Vault) -> None:
        """Forgetting a session that was never begun (or twice) does nothing."""
        vault.forget("d" * 32)
        vault.forget(SESSION)
        vault.forget(SESSION)
        assert (
            vault.open(
                vault.seal(b"x", session_id=SESSION, label=LABEL), session_id=SESSION, label=LABEL
            )
            == b"x"
        )


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
    def test_stable(self, vault: Vault, tmp_path: Path, open_keystore: OpenKeyStore) -> None:
        """The same address always gives the same pseudonym, also from a Vault over other keys."""
        assert vault.pseudonym("192.0.2.1") == vault.pseudonym("192.0.2.1")
        other = Vault(material(), open_keystore(tmp_path / "other"))
        assert vault.pseudonym("192.0.2.1") == other.pseudonym("192.0.2.1")

    def test_format(self, vault: Vault) -> None:
        """A pseudonym is 32 lowercase hex characters (128 bits)."""
        assert re.fullmatch(r"[0-9a-f]{32}", vault.pseudonym("192.0.2.1"))
        assert re.fullmatch(r"[0-9a-f]{32}", vault.pseudonym("2001:db8::1"))

    def test_is_keyed(self, vault: Vault, keystore: KeyStore) -> None:
        """Another pseudonym key gives another pseudonym, so it is not a bare hash."""
        other = Vault(material(pseudonym=bytes(32)), keystore)
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
        """The 32 random bytes written are the pseudonym key loaded."""
        create_key_file(tmp_path, random_bytes=PSEUDONYM_KEY)
        assert load_key_file(tmp_path).pseudonym_key == PSEUDONYM_KEY

    def test_holds_only_the_pseudonym_key(self, tmp_path: Path) -> None:
        """vault.json is format 2 with the pseudonym key alone: no master key any more."""
        path = create_key_file(tmp_path, random_bytes=PSEUDONYM_KEY)
        document = json.loads(path.read_bytes())
        assert document == {
            "format": "logwarden-keys/2",
            "pseudonym_key": base64.b64encode(PSEUDONYM_KEY).decode(),
        }

    def test_fresh_keys_are_random(self, tmp_path: Path) -> None:
        """Two new key files hold different keys."""
        create_key_file(tmp_path / "a")
        create_key_file(tmp_path / "b")
        first, second = load_key_file(tmp_path / "a"), load_key_file(tmp_path / "b")
        assert first.pseudonym_key != second.pseudonym_key

    def test_refuses_to_overwrite(self, tmp_path: Path) -> None:
        """An existing key file is never replaced."""
        path = create_key_file(tmp_path, random_bytes=bytes(32))
        before = path.read_bytes()
        with pytest.raises(FileExistsError):
            create_key_file(tmp_path, random_bytes=PSEUDONYM_KEY)
        assert path.read_bytes() == before

    @pytest.mark.parametrize("size", [0, 31, 33, 64])
    def test_wrong_amount_of_randomness(self, tmp_path: Path, size: int) -> None:
        """create_key_file needs exactly 32 random bytes and writes nothing otherwise."""
        with pytest.raises(ValueError, match="32"):
            create_key_file(tmp_path, random_bytes=bytes(size))
        assert not (tmp_path / "vault.json").exists()

    def test_missing(self, tmp_path: Path) -> None:
        """A missing key file is a DataDirError that says how to create one."""
        with pytest.raises(DataDirError, match="logwarden init"):
            load_key_file(tmp_path / "keys")

    @pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o620, 0o602, 0o610, 0o601])
    def test_rejects_group_or_other_access(self, tmp_path: Path, mode: int) -> None:
        """A key file other users can touch is refused, with the chmod that fixes it."""
        path = create_key_file(tmp_path, random_bytes=PSEUDONYM_KEY)
        os.chmod(path, mode)
        with pytest.raises(DataDirError) as info:
            load_key_file(tmp_path)
        assert "chmod 600" in str(info.value)
        assert f"{mode:o}" in str(info.value)
        assert base64.b64encode(PSEUDONYM_KEY).decode()[:16] not in str(info.value)

    @pytest.mark.parametrize("mode", [0o600, 0o400])
    def test_accepts_owner_only(self, tmp_path: Path, mode: int) -> None:
        """Owner-only modes are accepted."""
        path = create_key_file(tmp_path, random_bytes=PSEUDONYM_KEY)
        os.chmod(path, mode)
        assert load_key_file(tmp_path).pseudonym_key == PSEUDONYM_KEY


def _key_document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "format": "logwarden-keys/2",
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
            b'{"format": "logwarden-keys/2"',
            b"[]",
            b'"logwarden-keys/2"',
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
            {"format": "logwarden-keys/3"},
            {"format": "logwarden-kek/1"},
            {"format": ...},
            {"pseudonym_key": ...},
            {"pseudonym_key": base64.b64encode(bytes(31)).decode()},
            {"pseudonym_key": base64.b64encode(bytes(33)).decode()},
            {"pseudonym_key": "not base64!"},
            {"pseudonym_key": 12345},
            {"pseudonym_key": None},
            {"pseudonym_key": ["AAAA"]},
            {"pseudonym_key": "ÄÄÄÄ"},
        ],
        ids=lambda changes: ",".join(f"{k}={v!r}" for k, v in changes.items()),
    )
    def test_wrong_field(self, tmp_path: Path, changes: dict[str, Any]) -> None:
        """A wrong format, a missing key, bad base64 or a wrong key length is a DataDirError."""
        self.write(tmp_path, json.dumps(_key_document(**changes)).encode())
        with pytest.raises(DataDirError, match="malformed"):
            load_key_file(tmp_path)

    def test_refuses_format_1(self, tmp_path: Path) -> None:
        """A pre-release key file (master key, format 1) is refused with what to do about it."""
        master = base64.b64encode(b"M" * 32).decode()
        self.write(
            tmp_path,
            json.dumps(_key_document(format="logwarden-keys/1", master_key=master)).encode(),
        )
        with pytest.raises(DataDirError) as info:
            load_key_file(tmp_path)
        message = str(info.value)
        assert "pre-release" in message
        assert "logwarden init" in message
        assert str(tmp_path / "vault.json") in message
        assert master[:16] not in message

    def test_message_does_not_show_key_bytes(self, tmp_path: Path) -> None:
        """The error for a wrong key length does not repeat the key."""
        short = base64.b64encode(b"k" * 31).decode()
        self.write(tmp_path, json.dumps(_key_document(pseudonym_key=short)).encode())
        with pytest.raises(DataDirError) as info:
            load_key_file(tmp_path)
        assert short[:16] not in str(info.value)

    @staticmethod
    def write(keys_dir: Path, content: bytes) -> None:
        path = keys_dir / "vault.json"
        path.write_bytes(content)
        os.chmod(path, 0o600)


class TestKeyMaterialRepr:
    def test_repr_hides_keys(self) -> None:
        """Neither repr nor str of key material shows any form of the key."""
        keys = KeyMaterial(pseudonym_key=b"P" * 32)
        for text in (repr(keys), str(keys), f"{keys}", repr([keys]), repr({"k": keys})):
            assert "PPPP" not in text
            assert (b"P" * 4).hex() not in text
            assert base64.b64encode(b"P" * 32).decode()[:8] not in text

    def test_loaded_material_repr_hides_keys(self, tmp_path: Path) -> None:
        """Key material loaded from a file does not show its key in repr."""
        create_key_file(tmp_path, random_bytes=PSEUDONYM_KEY)
        loaded = load_key_file(tmp_path)
        assert loaded.pseudonym_key.hex() not in repr(loaded)
        assert repr(loaded.pseudonym_key) not in repr(loaded)
        assert "KeyMaterial" in repr(loaded)
