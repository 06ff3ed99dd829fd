"""Signed tree heads as C2SP checkpoints: a signed note whose text is a Merkle tree head.

The format is the one transparency-log tooling and witnesses already read, so an outside
witness can keep our tree heads without knowing anything about logwarden:

- c2sp.org/tlog-checkpoint: the note text is the origin line, the tree size (ASCII decimal,
  no leading zeros unless it is ``0``), the base64 root hash of the RFC 6962 / RFC 9162 tree
  (32 bytes, SHA-256), then optional non-empty extension lines; every line ends in ``\\n``.
- c2sp.org/signed-note: the text, a blank line, then one or more signature lines
  ``— <key name> <base64(4-byte key ID || signature)>\\n`` (em dash U+2014, space). Ed25519 is
  signature type ``0x01`` and its key ID is
  ``SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]``, big-endian.
- Key strings as golang.org/x/mod/sumdb/note writes them: the verifier key we hand to witnesses
  is ``<name>+<8 hex digits of key ID>+<base64(0x01 || public key)>`` and the private key we
  store is ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || 32-byte seed)>``.

A checkpoint carries no timestamp: the C2SP format has none, and freshness comes from witnesses.
Witness cosignatures (c2sp.org/tlog-cosignature, type ``0x04``, which do carry a timestamp) are
out of scope here; ``verify`` ignores them as it ignores every signature by another key.

``verify`` checks authenticity first and only then reads the text, field by field, and fails
closed: every way a note can be wrong raises ``AuditVerificationError`` with a message that
names the check and, where there is one, the expected and the found value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from logwarden._fsutil import fsync_dir
from logwarden.errors import AuditVerificationError, DataDirError

__all__ = [
    "MAX_NOTE_BYTES",
    "MAX_NOTE_FILE_BYTES",
    "MAX_SIGNATURES",
    "Checkpoint",
    "SigningKey",
    "VerifierKey",
    "load_signing_key",
    "read_note_file",
    "sign",
    "sign_message",
    "sign_note",
    "verify",
    "verify_message",
    "verify_note",
    "write_signing_key",
]

MAX_NOTE_BYTES = 1 << 20  # 1 MiB: the spec asks verifiers to bound a note's size
# 64 KiB: a checkpoint file holds one note of a few hundred bytes (a few KiB with witness
# cosignatures); anything longer is not one, and /dev/zero must not be read to the end.
MAX_NOTE_FILE_BYTES = 64 << 10
MAX_SIGNATURES = 100  # signature lines per note; the spec requires accepting at least 16
HASH_BYTES = 32  # SHA-256 root hash
ED25519 = 0x01  # signed-note signature type byte for Ed25519
SEED_BYTES = 32
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
MAX_TREE_SIZE = (1 << 64) - 1  # tree_size is a uint64 in RFC 6962 / RFC 9162
MAX_KEY_FILE_BYTES = 4096

_EM_DASH_SPACE = "\u2014 "
_PRIVATE_PREFIX = "PRIVATE+KEY+"
# Control characters the signed-note spec forbids: everything below U+0020 except newline.
_FORBIDDEN_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")
_TREE_SIZE = re.compile("0|[1-9][0-9]*", re.ASCII)
_KEY_ID_HEX = re.compile("[0-9a-fA-F]{8}", re.ASCII)


# -- checkpoint text -----------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Checkpoint:
    """A tree head: the log's origin, its size in leaves and its RFC 9162 root hash.

    The constructor raises ``ValueError`` for fields that cannot be written as a checkpoint
    (an empty origin, a size outside uint64, a root that is not 32 bytes, an empty extension
    line, a control character anywhere).
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = field(default=(), kw_only=True)

    def __post_init__(self) -> None:
        problem = _field_problem(self.origin, self.size, self.root_hash, self.extensions)
        if problem is not None:
            raise ValueError(problem)

    def __repr__(self) -> str:
        return (
            f"Checkpoint(origin={self.origin!r}, size={self.size}, "
            f"root_hash={self.root_hash.hex()}, extensions={self.extensions!r})"
        )

    def body(self) -> bytes:
        """The note text: one line per field, each ending in a newline."""
        lines = [self.origin, str(self.size), _b64(self.root_hash), *self.extensions]
        return "".join(f"{line}\n" for line in lines).encode()

    @classmethod
    def parse(cls, body: bytes) -> Checkpoint:
        """Read a checkpoint's note text field by field.

        This reads text only; it proves nothing about who wrote it. Use ``verify`` for notes.

        Raises:
            AuditVerificationError: naming the first field that is malformed.
        """
        text = _decode_note_text(body, what="checkpoint body")
        if not text.endswith("\n"):
            raise AuditVerificationError("checkpoint body does not end in a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise AuditVerificationError(
                f"checkpoint body has {len(lines)} line(s); it needs at least 3 "
                "(origin, tree size, root hash)"
            )
        origin, size_line, root_line, *extensions = lines
        if not origin:
            raise AuditVerificationError("checkpoint origin line is empty")
        size = _parse_tree_size(size_line)
        root_hash = _parse_root_hash(root_line)
        for number, line in enumerate(extensions, start=4):
            if not line:
                raise AuditVerificationError(
                    f"checkpoint line {number} is empty; extension lines must not be"
                )
        return cls(origin, size, root_hash, extensions=tuple(extensions))


def _field_problem(
    origin: str, size: int, root_hash: bytes, extensions: Sequence[str]
) -> str | None:
    if not isinstance(origin, str) or not origin:
        return "origin must be a non-empty string"
    if "\n" in origin or _FORBIDDEN_CONTROL.search(origin):
        return "origin must not contain a newline or control character"
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_TREE_SIZE:
        return f"size must be an integer from 0 to {MAX_TREE_SIZE}, not {size!r}"
    if not isinstance(root_hash, bytes) or len(root_hash) != HASH_BYTES:
        return f"root_hash must be {HASH_BYTES} bytes"
    if not isinstance(extensions, tuple):
        return "extensions must be a tuple of strings"
    for line in extensions:
        if not isinstance(line, str) or not line:
            return "extension lines must be non-empty strings"
        if "\n" in line or _FORBIDDEN_CONTROL.search(line):
            return "extension lines must not contain a newline or control character"
    return None


def _parse_tree_size(line: str) -> int:
    # ASCII digits only: int() would also take Arabic-Indic digits, "+5", " 5" or "1_000".
    if not _TREE_SIZE.fullmatch(line):
        raise AuditVerificationError(
            f"checkpoint tree size {line[:40]!r} is not a decimal number without leading zeros"
        )
    # 20 digits hold any uint64; checking the length first keeps int() off huge strings.
    if len(line) > len(str(MAX_TREE_SIZE)) or int(line) > MAX_TREE_SIZE:
        raise AuditVerificationError(f"checkpoint tree size {line[:40]} does not fit in 64 bits")
    return int(line)


def _parse_root_hash(line: str) -> bytes:
    root = _strict_b64decode(line)
    if root is None:
        raise AuditVerificationError(
            f"checkpoint root hash {line[:60]!r} is not canonical standard base64"
        )
    if len(root) != HASH_BYTES:
        raise AuditVerificationError(
            f"checkpoint root hash is {len(root)} bytes, expected {HASH_BYTES}"
        )
    return root


# -- keys ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifierKey:
    """A public key as signed notes name it: the string ``<name>+<hex key ID>+<base64 key>``.

    ``str(key)`` gives that string back, byte for byte, for the lowercase hex we write.
    """

    name: str
    key_id: int
    public_key: bytes

    def __post_init__(self) -> None:
        problem = _name_problem(self.name)
        if problem is not None:
            raise ValueError(f"key name {self.name!r} {problem}")
        if not isinstance(self.public_key, bytes) or len(self.public_key) != PUBLIC_KEY_BYTES:
            raise ValueError(f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes")
        if self.key_id != _key_id(self.name, self.public_key):
            raise ValueError("key_id does not match the name and public key")

    def __str__(self) -> str:
        encoded = _b64(bytes([ED25519]) + self.public_key)
        return f"{self.name}+{self.key_id:08x}+{encoded}"

    @classmethod
    def from_public_key(cls, name: str, public_key: bytes) -> VerifierKey:
        """The verifier key of an Ed25519 public key; raises ``ValueError`` if either is bad."""
        if len(public_key) != PUBLIC_KEY_BYTES:
            raise ValueError(f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes")
        return cls(name, _key_id(name, bytes(public_key)), bytes(public_key))

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        """Read a verifier key string.

        Raises:
            AuditVerificationError: if it is malformed, of another signature type, or its key
                ID does not match its name and key.
        """
        try:
            name, declared, public = _split_key_string(text, key_bytes=PUBLIC_KEY_BYTES)
        except ValueError as exc:
            raise AuditVerificationError(f"verifier key {exc}") from None
        computed = _key_id(name, public)
        if declared != computed:
            raise AuditVerificationError(
                f"verifier key ID is {declared:08x}, but its name and key give {computed:08x}"
            )
        return cls(name, computed, public)


class SigningKey:
    """The log's Ed25519 signing key and the name its signature lines carry.

    The name should be the log's origin (the spec recommends it). ``repr`` never shows the
    key; ``private_key_string`` does, so only the key file should ever hold its result.
    """

    __slots__ = ("_private", "_seed", "_verifier")

    def __init__(self, name: str, seed: bytes) -> None:
        problem = _name_problem(name)
        if problem is not None:
            raise ValueError(f"key name {name!r} {problem}")
        if len(seed) != SEED_BYTES:
            raise ValueError(f"an Ed25519 seed is {SEED_BYTES} bytes")
        self._seed = bytes(seed)
        self._private = Ed25519PrivateKey.from_private_bytes(self._seed)
        public = self._private.public_key().public_bytes_raw()
        self._verifier = VerifierKey(name, _key_id(name, public), public)

    @classmethod
    def generate(cls, name: str) -> SigningKey:
        """A new random key for ``name``."""
        return cls.from_seed(name, seed=os.urandom(SEED_BYTES))

    @classmethod
    def from_seed(cls, name: str, *, seed: bytes) -> SigningKey:
        """The key whose RFC 8032 32-byte private seed is ``seed`` (for tests and vectors)."""
        return cls(name, seed)

    @classmethod
    def from_private(cls, text: str) -> SigningKey:
        """Read a ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>`` string.

        Raises:
            ValueError: if it is malformed or its key ID does not match the key. The message
                never contains the key.
        """
        if not text.startswith(_PRIVATE_PREFIX):
            raise ValueError("not a PRIVATE+KEY+<name>+<hex key ID>+<base64 key> string")
        try:
            name, declared, seed = _split_key_string(
                text[len(_PRIVATE_PREFIX) :], key_bytes=SEED_BYTES
            )
        except ValueError as exc:
            raise ValueError(f"private key {exc}") from None
        signing_key = cls(name, seed)
        # The ID names the public key, so it can only be checked once that is derived.
        if declared != signing_key.key_id:
            raise ValueError(
                f"private key ID is {declared:08x}, but the key's is {signing_key.key_id:08x}"
            )
        return signing_key

    @property
    def name(self) -> str:
        return self._verifier.name

    @property
    def key_id(self) -> int:
        return self._verifier.key_id

    @property
    def public_key(self) -> bytes:
        return self._verifier.public_key

    def verifier(self) -> VerifierKey:
        return self._verifier

    def verifier_key(self) -> str:
        """The public verifier key string to give to witnesses and auditors."""
        return str(self._verifier)

    def private_key_string(self) -> str:
        """The secret ``PRIVATE+KEY+…`` string: for the key file and nothing else."""
        encoded = _b64(bytes([ED25519]) + self._seed)
        return f"{_PRIVATE_PREFIX}{self.name}+{self.key_id:08x}+{encoded}"

    def _sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def __repr__(self) -> str:  # never the seed, not even in a traceback
        return f"SigningKey(name={self.name!r}, key_id={self.key_id:08x})"


def _split_key_string(text: str, *, key_bytes: int) -> tuple[str, int, bytes]:
    """Read ``<name>+<hex key ID>+<base64(0x01 || key)>``; the ``ValueError`` says what is
    wrong and never repeats the key."""
    parts = text.split("+", 2)  # names hold no "+", base64 may
    if len(parts) != 3:
        raise ValueError("is not of the form <name>+<hex key ID>+<base64 key>")
    name, key_id_hex, encoded = parts
    problem = _name_problem(name)
    if problem is not None:
        raise ValueError(f"name {name[:80]!r} {problem}")
    if not _KEY_ID_HEX.fullmatch(key_id_hex):
        raise ValueError(f"ID {key_id_hex[:20]!r} is not 8 hexadecimal digits")
    key = _strict_b64decode(encoded)
    if not key:
        raise ValueError("is not canonical standard base64")
    if key[0] != ED25519:
        raise ValueError(f"has signature type 0x{key[0]:02x}; only Ed25519 (0x01) is supported")
    if len(key) != 1 + key_bytes:
        raise ValueError(f"holds {len(key) - 1} key bytes, expected {key_bytes}")
    return name, int(key_id_hex, 16), key[1:]


def _key_id(name: str, public_key: bytes) -> int:
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _name_problem(name: str) -> str | None:
    # signed-note: key names are non-empty and contain no Unicode space and no "+".
    if not name:
        return "is empty"
    if "+" in name:
        return "contains '+'"
    if any(ch.isspace() or ch < " " for ch in name):
        return "contains a space or control character"
    return None


# -- signing -------------------------------------------------------------------------------


def sign(checkpoint: Checkpoint, key: SigningKey) -> bytes:
    """The signed note of ``checkpoint``: its body, a blank line and one signature line."""
    return sign_note(checkpoint.body(), key)


def sign_note(text: bytes, key: SigningKey) -> bytes:
    """Sign any note text (UTF-8, lines ending in newline); ``sign`` is this for checkpoints.

    Raises:
        ValueError: if ``text`` could not be read back as a signed note.
    """
    try:
        _decode_note_text(text, what="note text")
    except AuditVerificationError as exc:
        raise ValueError(str(exc)) from None
    if not text.endswith(b"\n"):
        raise ValueError("note text must end in a newline")
    signature = key.key_id.to_bytes(4, "big") + key._sign(text)
    return text + f"\n{_EM_DASH_SPACE}{key.name} {_b64(signature)}\n".encode()


def sign_message(message: bytes, key: SigningKey, *, context: bytes) -> bytes:
    """A detached signature over ``context || message``: the 4-byte key ID, then Ed25519's 64
    bytes (the layout of a signed note's signature).

    For things the log's key vouches for that are not checkpoints (audit entries that destroy
    data, ``authority.py``). ``context`` separates them from notes and from each other: it
    must be a non-empty ``logwarden/...`` label ending in a newline, and ``message`` must not
    end in one, so the signed bytes can never be a note's text (which ends in a newline).

    Raises:
        ValueError: for a context or message that breaks those rules.
    """
    _require_context(context, message)
    return key.key_id.to_bytes(4, "big") + key._sign(context + message)


def verify_message(
    message: bytes, signature: bytes, *, verifier_key: VerifierKey, context: bytes
) -> None:
    """Check a ``sign_message`` signature by ``verifier_key``.

    Raises:
        AuditVerificationError: naming what is wrong (length, key ID, signature).
    """
    _require_context(context, message)
    if len(signature) != 4 + SIGNATURE_BYTES:
        raise AuditVerificationError(
            f"the signature is {len(signature)} bytes, expected {4 + SIGNATURE_BYTES} "
            "(key ID and Ed25519)"
        )
    key_id = int.from_bytes(signature[:4], "big")
    if key_id != verifier_key.key_id:
        raise AuditVerificationError(
            f"signed by key ID {key_id:08x}, not the log's {verifier_key.key_id:08x}"
        )
    try:
        Ed25519PublicKey.from_public_bytes(verifier_key.public_key).verify(
            signature[4:], context + message
        )
    except InvalidSignature:
        raise AuditVerificationError(
            f"the signature by key {verifier_key.name}+{verifier_key.key_id:08x} does not verify"
        ) from None


def _require_context(context: bytes, message: bytes) -> None:
    if not context.startswith(b"logwarden/") or not context.endswith(b"\n"):
        raise ValueError("a signing context is a logwarden/... label ending in a newline")
    if message.endswith(b"\n"):
        raise ValueError("a signed message must not end in a newline (it would read as a note)")


# -- verifying -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _SignatureLine:
    number: int  # 1-based, among the signature lines
    name: str
    key_id: int
    signature: bytes


def verify_note(note_text: bytes, *, verifier_key: str | VerifierKey) -> bytes:
    """Check that ``note_text`` is a well-formed signed note signed by ``verifier_key``.

    Signatures by any other key (another name, or the same name with another key ID) are
    ignored, as the spec requires; a line by this key that does not verify rejects the note.
    Stricter than the spec, and than Go's ``note.Open``, which drops repeats: a second line by
    this key, a malformed signature line by any key, or non-canonical base64 also reject it.

    Returns:
        The note text that the signature covers (with its final newline).

    Raises:
        AuditVerificationError: naming what is wrong.
    """
    # 1. The key first: without a usable key nothing below can succeed.
    key = verifier_key if isinstance(verifier_key, VerifierKey) else VerifierKey.parse(verifier_key)
    # 2. Bound the work before reading anything.
    if len(note_text) > MAX_NOTE_BYTES:
        raise AuditVerificationError(
            f"note is {len(note_text)} bytes, over the limit of {MAX_NOTE_BYTES}"
        )
    # 3. UTF-8, no control characters but newline, ending in a newline.
    note = _decode_note_text(note_text, what="note")
    if not note.endswith("\n"):
        raise AuditVerificationError("note does not end in a newline")
    # 4. The text ends at the last blank line; signature lines follow it.
    split = note.rfind("\n\n")
    if split < 0:
        raise AuditVerificationError(
            "note has no blank line between its text and its signature lines"
        )
    text, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise AuditVerificationError("note has no signature lines after its blank line")
    # 5. Every signature line well formed, whoever signed it.
    lines = _parse_signature_lines(block)
    # 6. Exactly one line by this key (name and key ID both), and it verifies.
    ours = [line for line in lines if line.name == key.name and line.key_id == key.key_id]
    if not ours:
        raise AuditVerificationError(
            f"note has no signature by key {key.name}+{key.key_id:08x} "
            f"(signed by: {_describe_signers(lines)})"
        )
    if len(ours) > 1:
        raise AuditVerificationError(
            f"note has {len(ours)} signature lines by key {key.name}+{key.key_id:08x}; expected one"
        )
    _check_signature(key, text.encode(), ours[0])
    return text.encode()


def verify(note_text: bytes, *, verifier_key: str | VerifierKey, origin: str) -> Checkpoint:
    """Verify a signed checkpoint from the log ``origin`` and return what it says.

    Steps, each failing closed: the note is well formed and bounded, this key signed it (others'
    signatures are ignored), its text is a checkpoint field by field, and the origin line is
    ``origin``. A tree size or root is only read once the signature is known to be good.

    Raises:
        AuditVerificationError: naming the check that failed.
    """
    text = verify_note(note_text, verifier_key=verifier_key)
    checkpoint = Checkpoint.parse(text)
    if checkpoint.origin != origin:
        raise AuditVerificationError(
            f"checkpoint origin is {checkpoint.origin[:200]!r}, expected {origin!r}"
        )
    return checkpoint


def _parse_signature_lines(block: str) -> list[_SignatureLine]:
    raw_lines = block[:-1].split("\n")
    if len(raw_lines) > MAX_SIGNATURES:
        raise AuditVerificationError(
            f"note has {len(raw_lines)} signature lines, over the limit of {MAX_SIGNATURES}"
        )
    return [_parse_signature_line(number, raw) for number, raw in enumerate(raw_lines, start=1)]


def _parse_signature_line(number: int, raw: str) -> _SignatureLine:
    where = f"signature line {number}"
    if not raw.startswith(_EM_DASH_SPACE):
        raise AuditVerificationError(
            f"{where} does not start with an em dash (U+2014) and a space: {raw[:40]!r}"
        )
    name, space, encoded = raw[len(_EM_DASH_SPACE) :].partition(" ")
    if not space:
        raise AuditVerificationError(f"{where} has no space between key name and signature")
    problem = _name_problem(name)
    if problem is not None:
        raise AuditVerificationError(f"{where}: key name {name[:80]!r} {problem}")
    decoded = _strict_b64decode(encoded)
    if decoded is None:
        raise AuditVerificationError(f"{where}: signature is not canonical standard base64")
    if len(decoded) < 5:
        raise AuditVerificationError(
            f"{where}: signature is {len(decoded)} bytes; it needs a 4-byte key ID and more"
        )
    return _SignatureLine(number, name, int.from_bytes(decoded[:4], "big"), decoded[4:])


def _check_signature(key: VerifierKey, text: bytes, line: _SignatureLine) -> None:
    where = f"signature line {line.number} by key {key.name}+{key.key_id:08x}"
    if len(line.signature) != SIGNATURE_BYTES:
        raise AuditVerificationError(
            f"{where} is {len(line.signature)} bytes, expected {SIGNATURE_BYTES} (Ed25519)"
        )
    try:
        Ed25519PublicKey.from_public_bytes(key.public_key).verify(line.signature, text)
    except InvalidSignature:
        raise AuditVerificationError(f"{where} does not verify over the note text") from None


def _describe_signers(lines: Sequence[_SignatureLine]) -> str:
    shown = [f"{line.name[:64]}+{line.key_id:08x}" for line in lines[:5]]
    more = f" and {len(lines) - 5} more" if len(lines) > 5 else ""
    return ", ".join(shown) + more


# -- checkpoint files ----------------------------------------------------------------------


def read_note_file(path: Path) -> bytes:
    """The content of a file that should hold one signed checkpoint, read up to
    ``MAX_NOTE_FILE_BYTES``.

    Raises:
        OSError: if it cannot be read (missing, a directory, no permission).
        AuditVerificationError: if it is larger than a checkpoint can be.
    """
    with path.open("rb") as f:
        content = f.read(MAX_NOTE_FILE_BYTES + 1)
    if len(content) > MAX_NOTE_FILE_BYTES:
        raise AuditVerificationError(
            f"{path} holds more than {MAX_NOTE_FILE_BYTES // 1024} KiB: not a checkpoint"
        )
    return content


# -- the key file --------------------------------------------------------------------------


def write_signing_key(path: Path, key: SigningKey) -> None:
    """Write ``key`` to a new owner-only (0600) file at ``path``; never replace one.

    Raises:
        DataDirError: if a file (or anything) is already at ``path``.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        # O_EXCL: an existing key is never replaced, and a symlink at path is not followed.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise DataDirError(
            f"a signing key file already exists at {path}; refusing to replace it"
        ) from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)  # exactly 0600, whatever the umask
        f.write(key.private_key_string() + "\n")
        f.flush()
        os.fsync(f.fileno())
    fsync_dir(path.parent)


def load_signing_key(path: Path) -> SigningKey:
    """Read the key file ``write_signing_key`` wrote.

    Raises:
        DataDirError: if it is missing, not a regular file, readable or writable by group or
            others, or malformed. The message never contains the key.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise DataDirError(f"no signing key file at {path}") from None
    try:
        # fstat the file we opened, not the path, so the check and the read see the same file.
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise DataDirError(f"signing key file {path} is not a regular file")
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise DataDirError(
                f"signing key file {path} is accessible to other users "
                f"(mode {stat.S_IMODE(mode):o}); run `chmod 600 {path}`"
            )
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as f:
        content = f.read(MAX_KEY_FILE_BYTES + 1)
    try:
        if len(content) > MAX_KEY_FILE_BYTES:
            raise ValueError("too long")
        text = content.decode("ascii")
        text = text.removesuffix("\n")
        return SigningKey.from_private(text)
    except ValueError as exc:  # UnicodeDecodeError is a ValueError; messages hold no key
        reason = "not ASCII" if isinstance(exc, UnicodeDecodeError) else str(exc)
        raise DataDirError(f"signing key file {path} is malformed ({reason})") from None


# -- encoding helpers ----------------------------------------------------------------------


def _decode_note_text(data: bytes, *, what: str) -> str:
    if len(data) > MAX_NOTE_BYTES:
        raise AuditVerificationError(
            f"{what} is {len(data)} bytes, over the limit of {MAX_NOTE_BYTES}"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AuditVerificationError(f"{what} is not valid UTF-8 (byte {exc.start})") from None
    control = _FORBIDDEN_CONTROL.search(text)
    if control is not None:
        raise AuditVerificationError(
            f"{what} contains control character U+{ord(control.group()):04X} "
            f"at character {control.start()}"
        )
    return text


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _strict_b64decode(text: str) -> bytes | None:
    """Standard base64 with padding, and only its one canonical spelling; ``None`` if not.

    Python (like Go's StdEncoding) accepts set bits in the unused tail of the last character,
    so two strings would decode to the same bytes; re-encoding rules those out.
    """
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded if _b64(decoded) == text else None
