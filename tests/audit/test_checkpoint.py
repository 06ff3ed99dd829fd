"""Signed tree heads as C2SP checkpoints (signed notes): format, keys, verification, key file.

Known answers come from tests/vectors/checkpoint_external.json (the Go note package's and
transparency-dev's published keys and notes, a real sum.golang.org checkpoint, the C2SP example)
and tests/vectors/checkpoint_logwarden.json (our fixed-seed checkpoints).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from logwarden.audit.checkpoint import (
    MAX_NOTE_BYTES,
    MAX_SIGNATURES,
    Checkpoint,
    SigningKey,
    VerifierKey,
    load_signing_key,
    sign,
    sign_note,
    verify,
    verify_note,
    write_signing_key,
)
from logwarden.errors import AuditVerificationError, DataDirError

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
EXTERNAL: dict[str, Any] = json.loads((VECTORS / "checkpoint_external.json").read_text())
OURS: dict[str, Any] = json.loads((VECTORS / "checkpoint_logwarden.json").read_text())

ORIGIN = "logwarden.example/audit"
SEED = bytes(range(32))
ROOT = bytes(range(32, 64))
DASH = "\u2014"


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.from_seed(ORIGIN, seed=SEED)


@pytest.fixture
def other_key() -> SigningKey:
    return SigningKey.from_seed("witness.example/w1", seed=bytes(range(100, 132)))


def checkpoint(size: int = 7, root: bytes = ROOT) -> Checkpoint:
    return Checkpoint(ORIGIN, size, root)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def check(note: bytes, key: SigningKey, *, origin: str = ORIGIN) -> Checkpoint:
    return verify(note, verifier_key=key.verifier_key(), origin=origin)


def _signed(key: SigningKey, body: bytes) -> bytes:
    """A note whose (possibly malformed) body carries a valid signature by ``key``."""
    return sign_note(body, key)


def _sig_line(key: SigningKey, body: bytes) -> bytes:
    return sign_note(body, key)[len(body) + 1 :]


def _literal(message: str) -> str:
    return re.escape(message)


URLSAFE_ROOT = base64.urlsafe_b64encode(b"\xfb" * 32).decode()  # "-" and "_" for "+" and "/"
BODY = f"{ORIGIN}\n7\n{b64(ROOT)}\n".encode()


class TestCheckpointBody:
    def test_body_is_byte_exact(self) -> None:
        """The body is origin, decimal size, base64 root, each followed by one newline."""
        body = Checkpoint(ORIGIN, 7, ROOT).body()
        assert body == (
            b"logwarden.example/audit\n7\nICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=\n"
        )

    def test_empty_tree_and_extensions(self) -> None:
        """Size 0 is written as "0" and extension lines follow the root, one per line."""
        empty_root = hashlib.sha256(b"").digest()
        body = Checkpoint(ORIGIN, 0, empty_root, extensions=("a b", "c")).body()
        assert body == (
            b"logwarden.example/audit\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\na b\nc\n"
        )

    def test_parse_round_trips(self) -> None:
        """parse(body()) gives the same checkpoint back, extensions included."""
        original = Checkpoint(ORIGIN, 2**64 - 1, ROOT, extensions=("x",))
        assert Checkpoint.parse(original.body()) == original

    @pytest.mark.parametrize("entry", EXTERNAL["checkpoint_bodies"], ids=lambda e: e["origin"])
    def test_spec_example_body_parses(self, entry: dict[str, Any]) -> None:
        """The example body in the C2SP tlog-checkpoint spec parses to its stated fields."""
        parsed = Checkpoint.parse(entry["body"].encode())
        assert parsed.origin == entry["origin"]
        assert parsed.size == entry["size"]
        assert parsed.root_hash == base64.b64decode(entry["root_hash"])
        assert parsed.body() == entry["body"].encode()

    @pytest.mark.parametrize(
        ("args", "kwargs"),
        [
            (("", 1, ROOT), {}),
            (("a\nb", 1, ROOT), {}),
            (("a\tb", 1, ROOT), {}),
            ((ORIGIN, -1, ROOT), {}),
            ((ORIGIN, 2**64, ROOT), {}),
            ((ORIGIN, True, ROOT), {}),
            ((ORIGIN, 1, ROOT[:31]), {}),
            ((ORIGIN, 1, ROOT + b"\0"), {}),
            ((ORIGIN, 1, ROOT), {"extensions": ("",)}),
            ((ORIGIN, 1, ROOT), {"extensions": ("a\nb",)}),
            ((ORIGIN, 1, ROOT), {"extensions": ["a"]}),
        ],
    )
    def test_constructor_rejects_unwritable_fields(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """A checkpoint that could not be written and read back is refused at construction."""
        with pytest.raises(ValueError, match=r"origin|size|root_hash|extension"):
            Checkpoint(*args, **kwargs)

    def test_repr_shows_root_in_hex(self) -> None:
        """repr names every field and shows the root as hex."""
        assert ROOT.hex() in repr(checkpoint())


class TestKeys:
    def test_key_id_is_computed_as_the_spec_says(self, key: SigningKey) -> None:
        """Key ID = SHA-256(name || 0x0A || 0x01 || public key)[:4], big-endian."""
        public = Ed25519PrivateKey.from_private_bytes(SEED).public_key().public_bytes_raw()
        digest = hashlib.sha256(ORIGIN.encode() + b"\x0a\x01" + public).digest()
        assert key.public_key == public
        assert key.key_id == int.from_bytes(digest[:4], "big")
        assert f"{key.key_id:08x}" == OURS["key_id"]

    def test_verifier_key_string_format(self, key: SigningKey) -> None:
        """The verifier key is name+8 hex digits+base64(0x01 || public key)."""
        encoded = b64(bytes([0x01]) + key.public_key)
        expected = f"{ORIGIN}+{OURS['key_id']}+{encoded}"
        assert key.verifier_key() == expected == OURS["verifier"]

    @pytest.mark.parametrize("pair", EXTERNAL["key_pairs"], ids=lambda p: p["verifier"][:12])
    def test_published_key_pairs(self, pair: dict[str, str]) -> None:
        """Published PRIVATE+KEY strings give their published verifier keys and read back."""
        signing_key = SigningKey.from_private(pair["private"])
        assert signing_key.verifier_key() == pair["verifier"]
        assert signing_key.private_key_string() == pair["private"]
        assert str(VerifierKey.parse(pair["verifier"])) == pair["verifier"]

    def test_verifier_key_round_trips(self, key: SigningKey) -> None:
        """A verifier key string parses to its fields and prints back to the same string."""
        parsed = VerifierKey.parse(key.verifier_key())
        assert (parsed.name, parsed.key_id, parsed.public_key) == (
            key.name,
            key.key_id,
            key.public_key,
        )
        assert str(parsed) == key.verifier_key()
        assert parsed == key.verifier()

    def test_private_key_round_trips(self, key: SigningKey) -> None:
        """The PRIVATE+KEY string reads back to a key that signs identically."""
        again = SigningKey.from_private(key.private_key_string())
        assert again.verifier_key() == key.verifier_key()
        assert sign(checkpoint(), again) == sign(checkpoint(), key)

    def test_every_mangled_verifier_key_is_refused(self) -> None:
        """Every truncation and every single-character change of a verifier key fails."""
        good = EXTERNAL["key_pairs"][0]["verifier"]
        mangled = {good[:i] for i in range(len(good))} | {good[i:] for i in range(1, len(good))}
        mangled |= {good[:i] + chr(ord(good[i]) + 1) + good[i + 1 :] for i in range(len(good))}
        for text in mangled:
            with pytest.raises(AuditVerificationError, match="verifier key"):
                VerifierKey.parse(text)

    def test_every_mangled_private_key_is_refused(self) -> None:
        """Every truncation and every single-character change of a PRIVATE+KEY string fails."""
        good = EXTERNAL["key_pairs"][0]["private"]
        mangled = {good[:i] for i in range(len(good))} | {good[i:] for i in range(1, len(good))}
        mangled |= {good[:i] + chr(ord(good[i]) + 1) + good[i + 1 :] for i in range(len(good))}
        for text in mangled:
            with pytest.raises(ValueError):  # noqa: PT011 - the messages vary by mangling
                SigningKey.from_private(text)

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("no-plus-signs", "not of the form"),
            ("a b+00000000+AQ==", "space"),
            ("+00000000+AQ==", "empty"),
            ("name+0000000g+AQ==", "8 hexadecimal"),
            ("name+00000000+AQ", "base64"),
            ("name+00000000+BA==", "type 0x04"),
            ("name+00000000+AQID", "2 key bytes"),
        ],
    )
    def test_malformed_verifier_key_messages(self, text: str, message: str) -> None:
        """A malformed verifier key is refused with a message that says why."""
        with pytest.raises(AuditVerificationError, match=message):
            VerifierKey.parse(text)

    def test_verifier_key_with_wrong_id_names_both(self, key: SigningKey) -> None:
        """A key ID that does not match the key is refused, naming declared and computed IDs."""
        wrong = key.verifier_key().replace(OURS["key_id"], "00000000")
        with pytest.raises(AuditVerificationError, match=f"00000000.*{OURS['key_id']}"):
            VerifierKey.parse(wrong)

    @pytest.mark.parametrize(
        "name", ["", "a+b", "a b", "a\u2009b", "a\u00a0b", "a\tb", "a\nb", "a\x00b"]
    )
    def test_invalid_key_names_are_refused(self, name: str) -> None:
        """Key names must be non-empty, with no Unicode space, plus or control character."""
        with pytest.raises(ValueError, match="key name"):
            SigningKey.from_seed(name, seed=SEED)

    def test_seed_must_be_32_bytes(self) -> None:
        """An Ed25519 seed of any other length is refused."""
        with pytest.raises(ValueError, match="32 bytes"):
            SigningKey.from_seed(ORIGIN, seed=SEED[:31])

    def test_generate_gives_fresh_keys(self) -> None:
        """Two generated keys with the same name differ."""
        first, second = SigningKey.generate(ORIGIN), SigningKey.generate(ORIGIN)
        assert first.public_key != second.public_key
        assert first.name == second.name == ORIGIN

    def test_repr_never_shows_the_private_key(self, key: SigningKey) -> None:
        """repr and str of a signing key hold neither the seed nor the PRIVATE+KEY string."""
        secret = key.private_key_string()
        for shown in (repr(key), str(key), f"{key!r}"):
            assert secret not in shown
            assert secret.rsplit("+", 1)[1] not in shown
            assert SEED.hex() not in shown
            assert "PRIVATE" not in shown
        assert ORIGIN in repr(key)


class TestSignAndVerify:
    def test_round_trip(self, key: SigningKey) -> None:
        """A signed checkpoint verifies and gives back the checkpoint that was signed."""
        original = Checkpoint(ORIGIN, 12345, ROOT, extensions=("ext",))
        assert check(sign(original, key), key) == original

    def test_signed_note_is_byte_exact(self, key: SigningKey) -> None:
        """The note is body, blank line, em dash line with base64(key ID || Ed25519 signature)."""
        body = b"logwarden.example/audit\n7\nICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=\n"
        signature = Ed25519PrivateKey.from_private_bytes(SEED).sign(body)
        key_id = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + key.public_key).digest()[:4]
        expected = body + f"\n{DASH} {ORIGIN} {b64(key_id + signature)}\n".encode()
        assert sign(checkpoint(), key) == expected

    @pytest.mark.parametrize("entry", OURS["checkpoints"], ids=lambda e: str(e["size"]))
    def test_fixed_seed_vectors(self, key: SigningKey, entry: dict[str, Any]) -> None:
        """Our fixed-seed checkpoints sign to the stored notes and verify to their fields."""
        cp = Checkpoint(
            ORIGIN,
            entry["size"],
            bytes.fromhex(entry["root_hash"]),
            extensions=tuple(entry["extensions"]),
        )
        assert cp.body() == entry["body"].encode()
        assert sign(cp, key) == entry["note"].encode()
        assert verify(entry["note"].encode(), verifier_key=OURS["verifier"], origin=ORIGIN) == cp

    def test_go_note_package_sign_vector(self) -> None:
        """Signing the Go note package's example text with its key gives its exact output."""
        entry = EXTERNAL["signed_notes"][0]
        signing_key = SigningKey.from_private(entry["signer"])
        assert sign_note(entry["text"].encode(), signing_key) == entry["note"].encode()

    @pytest.mark.parametrize("entry", EXTERNAL["signed_notes"], ids=lambda e: e["verifier"][:9])
    def test_go_note_package_open_vectors(self, entry: dict[str, Any]) -> None:
        """The Go package's notes, one signed twice, verify under each key to their text."""
        text = verify_note(entry["note"].encode(), verifier_key=entry["verifier"])
        assert text == entry["text"].encode()

    @pytest.mark.parametrize("entry", EXTERNAL["checkpoints"], ids=lambda e: e["origin"])
    def test_sum_golang_org_checkpoint(self, entry: dict[str, Any]) -> None:
        """A real checkpoint of the Go checksum database verifies to its stated fields."""
        parsed = verify(
            entry["note"].encode(), verifier_key=entry["verifier"], origin=entry["origin"]
        )
        assert parsed.size == entry["size"]
        assert parsed.root_hash == base64.b64decode(entry["root_hash"])
        with pytest.raises(AuditVerificationError, match=r"origin is 'go\.sum database tree'"):
            verify(entry["note"].encode(), verifier_key=entry["verifier"], origin="go.sum")

    def test_a_note_that_is_not_a_checkpoint_fails_after_its_signature(self) -> None:
        """A validly signed note whose text is not a checkpoint fails on the size line."""
        entry = EXTERNAL["signed_notes"][0]
        with pytest.raises(AuditVerificationError, match="tree size"):
            verify(entry["note"].encode(), verifier_key=entry["verifier"], origin="x")

    def test_other_keys_signatures_are_ignored(
        self, key: SigningKey, other_key: SigningKey
    ) -> None:
        """A witness's signature line before or after ours is ignored; ours still counts."""
        body = checkpoint().body()
        ours = sign_note(body, key)[len(body) + 1 :]
        theirs = sign_note(body, other_key)[len(body) + 1 :]
        for lines in (theirs + ours, ours + theirs):
            assert check(body + b"\n" + lines, key) == checkpoint()
        garbage_sig = f"{DASH} witness.example/w2 {b64(bytes(68))}\n".encode()
        assert check(body + b"\n" + garbage_sig + ours, key) == checkpoint()

    def test_only_other_keys_signatures_fails(self, key: SigningKey, other_key: SigningKey) -> None:
        """A note signed only by another key fails, naming the key it wanted and who signed."""
        note = sign(checkpoint(), other_key)
        with pytest.raises(AuditVerificationError, match=r"no signature by key .*witness"):
            check(note, key)

    def test_same_name_other_key_fails(self, key: SigningKey) -> None:
        """A signature by a different key under our name is not ours: no signature by us."""
        impostor = SigningKey.from_seed(ORIGIN, seed=bytes(32))
        note = sign(checkpoint(), impostor)
        with pytest.raises(AuditVerificationError, match="no signature by key"):
            check(note, key)

    def test_our_key_id_under_another_name_is_not_ours(self, key: SigningKey) -> None:
        """A valid signature by our key under another name is ignored: it is not our key."""
        body = checkpoint().body()
        renamed = _sig_line(key, body).replace(ORIGIN.encode(), b"other.example")
        with pytest.raises(AuditVerificationError, match=r"no signature by key .*other.example"):
            check(body + b"\n" + renamed, key)
        assert check(body + b"\n" + renamed + _sig_line(key, body), key) == checkpoint()

    def test_malformed_verifier_key_fails_verify(self, key: SigningKey) -> None:
        """verify with a verifier key whose ID is wrong refuses before reading the note."""
        wrong = key.verifier_key().replace(OURS["key_id"], "00000000")
        with pytest.raises(AuditVerificationError, match="verifier key ID"):
            verify(sign(checkpoint(), key), verifier_key=wrong, origin=ORIGIN)

    def test_forged_line_with_our_key_id_fails(self, key: SigningKey) -> None:
        """A line with our name and key ID but another key's signature is a bad signature."""
        body = checkpoint().body()
        forged = Ed25519PrivateKey.from_private_bytes(bytes(32)).sign(body)
        line = f"{DASH} {ORIGIN} {b64(key.key_id.to_bytes(4, 'big') + forged)}\n"
        with pytest.raises(AuditVerificationError, match="does not verify"):
            check(body + b"\n" + line.encode(), key)

    def test_our_bad_signature_fails_even_beside_a_good_witness(
        self, key: SigningKey, other_key: SigningKey
    ) -> None:
        """Our line not verifying rejects the note whatever other lines say."""
        body = checkpoint().body()
        bad = f"{DASH} {ORIGIN} {b64(key.key_id.to_bytes(4, 'big') + bytes(64))}\n"
        witness = sign_note(body, other_key)[len(body) + 1 :]
        with pytest.raises(AuditVerificationError, match="does not verify"):
            check(body + b"\n" + witness + bad.encode(), key)

    def test_any_flipped_bit_fails(self, key: SigningKey) -> None:
        """Flipping any single bit anywhere in a signed checkpoint makes it fail."""
        note = sign(checkpoint(), key)
        for index in range(len(note)):
            for bit in range(8):
                flipped = bytearray(note)
                flipped[index] ^= 1 << bit
                with pytest.raises(AuditVerificationError):
                    check(bytes(flipped), key)

    def test_any_flipped_bit_in_the_decoded_signature_fails(self, key: SigningKey) -> None:
        """Flipping any bit of the key ID or signature bytes (re-encoded) makes it fail."""
        body = checkpoint().body()
        raw = key.key_id.to_bytes(4, "big") + Ed25519PrivateKey.from_private_bytes(SEED).sign(body)
        for index in range(len(raw)):
            for bit in range(8):
                flipped = bytearray(raw)
                flipped[index] ^= 1 << bit
                line = f"{DASH} {ORIGIN} {b64(bytes(flipped))}\n".encode()
                with pytest.raises(AuditVerificationError):
                    check(body + b"\n" + line, key)

    def test_verifier_key_object_is_accepted(self, key: SigningKey) -> None:
        """verify takes a parsed VerifierKey as well as its string."""
        note = sign(checkpoint(), key)
        assert verify(note, verifier_key=key.verifier(), origin=ORIGIN) == checkpoint()

    def test_sign_note_refuses_unreadable_text(self, key: SigningKey) -> None:
        """sign_note refuses text it could not read back: no final newline, control bytes."""
        for text in (b"abc", b"a\rb\n", b"\xff\n", b"a" * MAX_NOTE_BYTES + b"\n"):
            with pytest.raises(ValueError, match=r"newline|control|UTF-8|limit"):
                sign_note(text, key)


class TestMalformedNotes:
    """Every malformation fails closed with a message naming it."""

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (f"{ORIGIN}\nfive\n{b64(ROOT)}\n", "tree size 'five' is not a decimal"),
            (f"{ORIGIN}\n-1\n{b64(ROOT)}\n", "tree size '-1' is not a decimal"),
            (f"{ORIGIN}\n+7\n{b64(ROOT)}\n", "not a decimal number"),
            (f"{ORIGIN}\n 7\n{b64(ROOT)}\n", "not a decimal number"),
            (f"{ORIGIN}\n7 \n{b64(ROOT)}\n", "not a decimal number"),
            (f"{ORIGIN}\n0x7\n{b64(ROOT)}\n", "not a decimal number"),
            (f"{ORIGIN}\n\u0667\n{b64(ROOT)}\n", "not a decimal number"),  # Arabic-Indic 7
            (f"{ORIGIN}\n1_000\n{b64(ROOT)}\n", "not a decimal number"),
            (f"{ORIGIN}\n\n{b64(ROOT)}\n", "not a decimal number"),
            (f"{ORIGIN}\n07\n{b64(ROOT)}\n", "'07' is not a decimal number without leading zeros"),
            (f"{ORIGIN}\n00\n{b64(ROOT)}\n", "without leading zeros"),
            (f"{ORIGIN}\n{2**64}\n{b64(ROOT)}\n", "does not fit in 64 bits"),
            (f"{ORIGIN}\n{'9' * 30}\n{b64(ROOT)}\n", "does not fit in 64 bits"),
            (f"{ORIGIN}\n{'9' * 5000}\n{b64(ROOT)}\n", "does not fit in 64 bits"),
            (f"{ORIGIN}\n7\n{b64(ROOT[:31])}\n", "root hash is 31 bytes, expected 32"),
            (f"{ORIGIN}\n7\n{b64(ROOT + b'!')}\n", "root hash is 33 bytes, expected 32"),
            (f"{ORIGIN}\n7\n{b64(ROOT).rstrip('=')}\n", "not canonical standard base64"),
            (f"{ORIGIN}\n7\n{b64(ROOT)[:-2]}9=\n", "not canonical standard base64"),
            (f"{ORIGIN}\n7\n{ROOT.hex()}\n", "root hash is 48 bytes, expected 32"),
            (f"{ORIGIN}\n7\n{URLSAFE_ROOT}\n", "not canonical standard base64"),
            (f"{ORIGIN}\n7\n", "has 2 line(s); it needs at least 3"),
            (f"\n7\n{b64(ROOT)}\n", "origin line is empty"),
            (f"{ORIGIN}\n7\n{b64(ROOT)}\n\next\n", "line 4 is empty"),
            (f"{ORIGIN}\n7\n{b64(ROOT)}\n\n", "line 4 is empty"),
        ],
    )
    def test_malformed_body_under_a_valid_signature(
        self, key: SigningKey, body: str, message: str
    ) -> None:
        """A body that is not a checkpoint fails on its first bad field, even when signed."""
        with pytest.raises(AuditVerificationError, match=_literal(message)):
            check(_signed(key, body.encode()), key)
        with pytest.raises(AuditVerificationError, match=_literal(message)):
            Checkpoint.parse(body.encode())

    def test_wrong_origin(self, key: SigningKey) -> None:
        """A checkpoint from another origin fails, naming the found and expected origins."""
        note = sign(Checkpoint("other.example/log", 7, ROOT), key)
        with pytest.raises(
            AuditVerificationError, match=r"origin is 'other.example/log', expected 'logwarden"
        ):
            check(note, key)

    def test_origin_comparison_is_exact(self, key: SigningKey) -> None:
        """An origin differing by case or a trailing space fails."""
        for origin in (ORIGIN.upper(), ORIGIN + " "):
            with pytest.raises(AuditVerificationError, match="origin is"):
                check(sign(checkpoint(), key), key, origin=origin)

    @pytest.mark.parametrize(
        ("make", "message"),
        [
            (lambda k: BODY + _sig_line(k, BODY), "no blank line between"),
            (lambda k: BODY + b"\n", "no signature lines after its blank line"),
            (lambda k: BODY, "no blank line"),
            (lambda k: _signed(k, BODY)[:-1], "does not end in a newline"),
            (lambda k: _signed(k, BODY) + b"Unexpected line.\n", "line 2 does not start"),
            (lambda k: _signed(k, BODY) + b"\n", "no signature lines after its blank line"),
            (
                lambda k: _signed(k, BODY).replace("\u2014 ".encode(), b"- "),
                "does not start with an em dash",
            ),
            (
                lambda k: _signed(k, BODY).replace(f"\u2014 {ORIGIN} ".encode(), b"\xe2\x80\x94"),
                "does not start with an em dash",
            ),
            (
                lambda k: _signed(k, BODY).replace(f"{ORIGIN} ".encode(), ORIGIN.encode()),
                "no space between key name and signature",
            ),
            (
                lambda k: _signed(k, BODY).replace(f"{ORIGIN} ".encode(), b"a+b "),
                "key name 'a+b' contains '+'",
            ),
            (
                lambda k: _signed(k, BODY).replace(f"{ORIGIN} ".encode(), b"a  "),
                "not canonical standard base64",
            ),
            (lambda k: BODY + f"\n{DASH} {ORIGIN} !!!!\n".encode(), "not canonical standard"),
            (lambda k: BODY + f"\n{DASH} {ORIGIN} \n".encode(), "needs a 4-byte key ID"),
            (lambda k: BODY + f"\n{DASH} {ORIGIN} AAAAAA==\n".encode(), "needs a 4-byte key ID"),
            (lambda k: _signed(k, BODY)[:-5] + b"==\n", "not canonical standard base64"),
            (
                lambda k: (
                    BODY
                    + f"\n{DASH} {ORIGIN} {b64(k.key_id.to_bytes(4, 'big') + bytes(63))}\n".encode()
                ),
                "is 63 bytes, expected 64",
            ),
            (lambda k: _signed(k, BODY) + _sig_line(k, BODY), "2 signature lines by key"),
            (lambda k: b"\xff" + _signed(k, BODY), "not valid UTF-8 (byte 0)"),
            (lambda k: _signed(k, BODY)[:-2] + b"\xc3\n", "not valid UTF-8"),
            (lambda k: _signed(k, BODY).replace(b"\n", b"\r\n"), "control character U+000D"),
            (lambda k: b"\t" + _signed(k, BODY), "control character U+0009 at character 0"),
            (lambda k: _signed(k, BODY) + b"\x00", "control character U+0000"),
            (lambda k: _signed(k, BODY).replace(b"7\n", b"7\x0b\n", 1), "control character U+000B"),
            (
                lambda k: _signed(k, BODY) + b"x" * (MAX_NOTE_BYTES - len(_signed(k, BODY)) + 1),
                f"over the limit of {MAX_NOTE_BYTES}",
            ),
            (
                lambda k: _signed(k, BODY) + b"\n".join([b"\xe2\x80\x94 w AAAAAAA="] * 100) + b"\n",
                f"101 signature lines, over the limit of {MAX_SIGNATURES}",
            ),
        ],
    )
    def test_malformed_note(self, key: SigningKey, make: Any, message: str) -> None:
        """Each malformed note fails with the message for its fault."""
        with pytest.raises(AuditVerificationError, match=_literal(message)):
            check(make(key), key)

    def test_note_at_the_size_limit_is_read(self, key: SigningKey) -> None:
        """A note of exactly the limit is read (and here fails only for its content)."""
        note = _signed(key, BODY)
        padded = note + b"x" * (MAX_NOTE_BYTES - len(note) - 1) + b"\n"
        assert len(padded) == MAX_NOTE_BYTES
        with pytest.raises(AuditVerificationError, match="does not start with an em dash"):
            check(padded, key)

    def test_a_hundred_signature_lines_are_accepted(self, key: SigningKey) -> None:
        """The spec requires accepting at least 16 signatures; 99 others plus ours pass."""
        body = checkpoint().body()
        witnesses = b"".join(
            _sig_line(SigningKey.from_seed(f"w{i}.example", seed=bytes([i]) * 32), body)
            for i in range(MAX_SIGNATURES - 1)
        )
        assert check(body + b"\n" + witnesses + _sig_line(key, body), key) == checkpoint()

    def test_checkpoint_parse_needs_a_final_newline(self) -> None:
        """A body whose last line has no newline is refused."""
        with pytest.raises(AuditVerificationError, match="does not end in a newline"):
            Checkpoint.parse(BODY[:-1])


class TestKeyFile:
    @pytest.fixture(params=[0o000, 0o022, 0o277])
    def umask(self, request: pytest.FixtureRequest) -> Iterator[int]:
        """Run under several umasks, so only our code decides the file's mode."""
        old = os.umask(request.param)
        try:
            yield request.param
        finally:
            os.umask(old)

    def test_written_file_is_0600_and_loads(
        self, tmp_path: Path, key: SigningKey, umask: int
    ) -> None:
        """The key file is mode 0600 whatever the umask, and loads to the same key."""
        path = tmp_path / "checkpoint.key"
        write_signing_key(path, key)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_text() == key.private_key_string() + "\n"
        assert load_signing_key(path).verifier_key() == key.verifier_key()

    def test_refuses_to_overwrite(self, tmp_path: Path, key: SigningKey) -> None:
        """An existing key file is never replaced."""
        path = tmp_path / "checkpoint.key"
        write_signing_key(path, key)
        before = path.read_bytes()
        with pytest.raises(DataDirError, match="already exists"):
            write_signing_key(path, SigningKey.generate(ORIGIN))
        assert path.read_bytes() == before

    def test_refuses_to_write_through_a_symlink(self, tmp_path: Path, key: SigningKey) -> None:
        """A symlink at the key path (even dangling) is not followed."""
        target = tmp_path / "elsewhere"
        path = tmp_path / "checkpoint.key"
        path.symlink_to(target)
        with pytest.raises(DataDirError, match="already exists"):
            write_signing_key(path, key)
        assert not target.exists()

    @pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o610])
    def test_refuses_an_open_file(self, tmp_path: Path, key: SigningKey, mode: int) -> None:
        """A key file any group or other user can access is refused, naming the fix."""
        path = tmp_path / "checkpoint.key"
        write_signing_key(path, key)
        path.chmod(mode)
        with pytest.raises(DataDirError, match=f"mode {mode:o}.*chmod 600"):
            load_signing_key(path)

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing key file is a DataDirError naming the path."""
        with pytest.raises(DataDirError, match="no signing key file"):
            load_signing_key(tmp_path / "absent.key")

    def test_directory_is_refused(self, tmp_path: Path) -> None:
        """A directory at the key path is refused as not a regular file."""
        path = tmp_path / "dir.key"
        path.mkdir(mode=0o700)
        with pytest.raises(DataDirError, match="not a regular file"):
            load_signing_key(path)

    @pytest.mark.parametrize(
        "mutate",
        [
            lambda s: "",
            lambda s: "\n",
            lambda s: s[len("PRIVATE+KEY+") :],  # the verifier-key shape, without the prefix
            lambda s: s.replace("+b80231fe+", "+b80231ff+"),  # key ID of another key
            lambda s: s[:-1] + "A",  # a different seed under the same ID
            lambda s: s + "\n\n",
            lambda s: s + "\nsecond line",
            lambda s: " " + s,
            lambda s: s.replace("PRIVATE+KEY", "private+key"),
            lambda s: s + "é",
            lambda s: s + "x" * 5000,
            lambda s: s.replace("+AQ", "+Ag"),  # signature type 0x02
        ],
    )
    def test_malformed_content(self, tmp_path: Path, key: SigningKey, mutate: Any) -> None:
        """Malformed content is a DataDirError whose message holds none of the key."""
        path = tmp_path / "checkpoint.key"
        secret = key.private_key_string()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(mutate(secret))
        with pytest.raises(DataDirError, match="malformed") as caught:
            load_signing_key(path)
        seed_b64 = secret.rsplit("+", 1)[1]
        assert seed_b64[4:] not in str(caught.value)
        assert SEED.hex() not in str(caught.value)

    def test_file_without_final_newline_loads(self, tmp_path: Path, key: SigningKey) -> None:
        """A key file holding the PRIVATE+KEY string with no newline (as Go writes it) loads."""
        path = tmp_path / "checkpoint.key"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key.private_key_string())
        assert load_signing_key(path).verifier_key() == key.verifier_key()
