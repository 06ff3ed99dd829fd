"""Verifiable transcripts: a package anyone can check offline (docs/audit.md).

A package is a zip file holding:

- ``transcript.json``: the session's messages in the clear, each with its audit entry (the
  leaf's body, its index, its inclusion proof), the session's and end's entries likewise, the
  session's audit salt, and who exported it;
- ``transcript.html``: the same for people, rendered from the JSON (the verifier renders it
  again and compares, so an edit there fails too);
- ``checkpoint``: the signed checkpoint every proof leads to;
- ``audit.pub``: the log's verifier key (compare it with the one the operator publishes).

``verify_package`` checks, in order: the archive's layout (``archive``: one that every zip
reader reads alike) and the sizes its members declare; the checkpoint's signature; that
transcript.json holds exactly the format's fields, no more; every entry's inclusion in the
checkpoint; that each entry is the session's; that each message's text, number, sender and
time are the ones its entry commits to; and that the numbers run 1..n with ``n`` the count the
end entry records, so no message can be edited, reordered, added or dropped. Nothing in a
package is left unverified, so nothing unverified can ride along in it.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import struct
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from logwarden.audit import archive, merkle
from logwarden.audit import checkpoint as notes
from logwarden.audit.entries import entry, parse_body
from logwarden.audit.log import AuditLog
from logwarden.audit.proofs import verify_inclusion
from logwarden.errors import AuditVerificationError, KeyDestroyedError
from logwarden.store import AuditEntryRow, Store
from logwarden.transcripts import open_transcript
from logwarden.vault import Vault, text_commitment

__all__ = [
    "PackageEntry",
    "PackageMessage",
    "TranscriptPackage",
    "VerifiedTranscript",
    "build_package",
    "verify_package",
]

FORMAT = "logwarden-transcript/1"
_MEMBERS = ("transcript.json", "transcript.html", "checkpoint", "audit.pub")

# How much a package may hold (docs/audit.md). Each member's declared size is held to its
# limit before anything is inflated, and inflating stops at it whatever a header says.
MAX_TRANSCRIPT_BYTES = 32 << 20  # transcript.json, whatever the log: over 10,000 messages
# Below that, by the checkpoint's size: a package holds no more messages than the log has
# entries, and one message at the 10,000-character limit, every character escaped (6 bytes
# in JSON), with its entry and a 64-hash proof takes under 96 KiB.
_TRANSCRIPT_BASE_BYTES = 256 << 10
_TRANSCRIPT_BYTES_PER_ENTRY = 96 << 10
MAX_KEY_BYTES = 4096  # audit.pub: one line
MAX_CHECKPOINT_BYTES = notes.MAX_NOTE_FILE_BYTES  # as for a checkpoint file
# The whole file: both big members at their largest, barely compressed.
MAX_PACKAGE_BYTES = 2 * MAX_TRANSCRIPT_BYTES + (1 << 20)
# transcript.html renders the JSON's strings escaped, one character as up to 6 bytes
# ("&#x27;"), without the proofs; it must be exactly the rendering, checked once the JSON is.
_HTML_BYTES_PER_JSON_BYTE = 6
_HTML_BASE_BYTES = 64 << 10
# Parsed JSON costs 30 to 60 bytes of memory per value however short its text, so `[{},{},…]`
# takes twenty times its size. A transcript's values average over 60 bytes of JSON each
# (hashes, proofs, entry bodies): JSON denser than one value per 24 bytes is refused unread.
_BYTES_PER_VALUE = 24
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)

# The format's fields, each level exactly: an unknown field is content nobody verified.
_DOCUMENT_FIELDS = frozenset({"format", "session", "audit_salt", "messages", "exported"})
_SESSION_FIELDS = frozenset({"id", "started_at", "ended_at", "end_reason", "entry", "end_entry"})
_MESSAGE_FIELDS = frozenset({"seq", "slot", "at", "text", "entry"})
_EXPORTED_FIELDS = frozenset({"at", "by", "reason", "entry"})
_ENTRY_FIELDS = frozenset({"index", "body", "proof"})


def transcript_limit(entries: int) -> int:
    """The most transcript.json may hold when its proofs lead to a checkpoint of ``entries``."""
    return min(MAX_TRANSCRIPT_BYTES, _TRANSCRIPT_BASE_BYTES + _TRANSCRIPT_BYTES_PER_ENTRY * entries)


@dataclass(frozen=True, slots=True)
class PackageEntry:
    index: int
    body: bytes
    proof: list[bytes]

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "body": self.body.decode("ascii"),
            "proof": [h.hex() for h in self.proof],
        }


@dataclass(frozen=True, slots=True)
class PackageMessage:
    seq: int
    slot: int
    at: int
    text: str
    entry: PackageEntry


@dataclass(frozen=True, slots=True)
class TranscriptPackage:
    """Everything a package holds, before it is written."""

    session_id: str
    started_at: int
    ended_at: int | None
    end_reason: str | None
    salt: bytes
    messages: list[PackageMessage]
    session_entry: PackageEntry
    end_entry: PackageEntry | None
    checkpoint: bytes
    checkpoint_size: int
    verifier_key: str
    exported_at: int
    exported_by: str
    reason: str
    export_entry: PackageEntry

    def transcript_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "session": {
                "id": self.session_id,
                "started_at": self.started_at,
                "ended_at": self.ended_at,
                "end_reason": self.end_reason,
                "entry": self.session_entry.as_json(),
                "end_entry": None if self.end_entry is None else self.end_entry.as_json(),
            },
            "audit_salt": self.salt.hex(),
            "messages": [
                {
                    "seq": m.seq,
                    "slot": m.slot,
                    "at": m.at,
                    "text": m.text,
                    "entry": m.entry.as_json(),
                }
                for m in self.messages
            ],
            "exported": {
                "at": self.exported_at,
                "by": self.exported_by,
                "reason": self.reason,
                "entry": self.export_entry.as_json(),
            },
        }

    def to_zip(self) -> bytes:
        """The package, in the one layout ``verify_package`` accepts; raises
        ``AuditVerificationError`` if it would be larger than a package may be."""
        document = self.transcript_json()
        text = json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True).encode()
        limit = transcript_limit(self.checkpoint_size)
        if len(text) > limit:
            raise AuditVerificationError(
                f"the transcript takes {len(text)} bytes as JSON, more than a package may hold "
                f"({limit}): it is too long to export as one package"
            )
        files = [
            ("transcript.json", text),
            ("transcript.html", render_html(document).encode()),
            ("checkpoint", self.checkpoint),
            ("audit.pub", (self.verifier_key + "\n").encode()),
        ]
        data = archive.write(files, at_ms=self.exported_at)
        if len(data) > MAX_PACKAGE_BYTES:
            raise AuditVerificationError(
                f"the package would take {len(data)} bytes, more than a package may "
                f"({MAX_PACKAGE_BYTES}): it is too long to export as one package"
            )
        return data


@dataclass(slots=True)
class VerifiedTranscript:
    """What a package proved: the session, its messages, and the checkpoint they lead to."""

    session_id: str
    messages: int
    complete: bool  # the end entry is in the package: no message can be missing at the end
    checkpoint: notes.Checkpoint
    key: str  # the verifier key the checkpoint verified with
    # The key was given (the operator's published one), not taken from the package: without
    # it, a package re-signed by anyone with a key of their own verifies just as well.
    signer_known: bool = False
    warnings: list[str] = field(default_factory=list)


def verify_package(data: bytes, *, verifier_key: str | None = None) -> VerifiedTranscript:
    """Check a package offline; raise ``AuditVerificationError`` saying what does not hold.

    ``verifier_key`` is the log's key as its operator publishes it; without it, the package's
    own ``audit.pub`` is used and the result says so (``signer_known`` is False): that proves
    the package is self-consistent, not who signed it (anyone can sign a log of their own).
    """
    try:
        return _verify_package(data, verifier_key)
    except AuditVerificationError:
        raise
    # A hostile package must get a verdict, not a traceback: whatever the archive or JSON
    # layer raises on input built to break it (a damaged deflate stream, nesting 100,000
    # deep, a 5,000-digit number, a lone surrogate) means "does not verify".
    except (
        struct.error,
        zlib.error,
        NotImplementedError,
        RuntimeError,
        RecursionError,
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        OverflowError,
        EOFError,
    ) as exc:
        raise AuditVerificationError(
            f"the package is malformed ({exc.__class__.__name__}: {str(exc)[:200]})"
        ) from None


def _verify_package(data: bytes, verifier_key: str | None) -> VerifiedTranscript:
    # 1. The archive: its layout, its four members, and the sizes they declare; nothing is
    # inflated yet.
    members = _members(data)
    # 2. The small parts, which bound the rest: the key, and the checkpoint it signed.
    packaged_key = _packaged_key(archive.read(data, members["audit.pub"], limit=MAX_KEY_BYTES))
    key = verifier_key.strip() if verifier_key is not None else packaged_key
    try:
        verifier = notes.VerifierKey.parse(key)
    except (ValueError, AuditVerificationError) as exc:
        raise AuditVerificationError(f"the verifier key is malformed: {exc}") from None
    note = archive.read(data, members["checkpoint"], limit=MAX_CHECKPOINT_BYTES)
    checkpoint = notes.verify(note, verifier_key=verifier, origin=verifier.name)
    result = VerifiedTranscript(
        session_id="",
        messages=0,
        complete=False,
        checkpoint=checkpoint,
        key=key,
        signer_known=verifier_key is not None,
    )
    if verifier_key is None:
        result.warnings.append(
            "the key came from the package itself: compare it with the key the log's operator "
            f"publishes ({key})"
        )
    elif packaged_key != key:
        result.warnings.append("the package's audit.pub is not the key given; it was not used")
    # 3. transcript.json, no larger than the checkpoint's log can account for; its entries
    # included in the checkpoint, and the session's.
    limit = transcript_limit(checkpoint.size)
    document = _document(archive.read(data, members["transcript.json"], limit=limit))
    _check_document(document, checkpoint, result)
    # 4. The readable copy says what the JSON says: it is exactly the rendering, so its size
    # is known before it is inflated.
    rendered = render_html(document).encode()
    html = members["transcript.html"]
    if html.size != len(rendered) or archive.read(data, html, limit=len(rendered)) != rendered:
        raise AuditVerificationError(
            "transcript.html is not the rendering of transcript.json: it was edited"
        )
    return result


def _members(data: bytes) -> dict[str, archive.Member]:
    """The package's members by name, once its layout is canonical, it holds exactly the four
    members, and none declares more than a package's can hold."""
    if len(data) > MAX_PACKAGE_BYTES:
        raise AuditVerificationError(
            f"the file holds more than {MAX_PACKAGE_BYTES} bytes, more than any package: not one"
        )
    found = archive.members(data)
    names = [member.name for member in found]
    if sorted(names) != sorted(_MEMBERS):
        raise AuditVerificationError(
            f"a package holds exactly {', '.join(_MEMBERS)}, once each; this one holds "
            f"{', '.join(names)}"
        )
    members = {member.name: member for member in found}
    transcript = members["transcript.json"].size
    limits = {
        "audit.pub": MAX_KEY_BYTES,
        "checkpoint": MAX_CHECKPOINT_BYTES,
        "transcript.json": MAX_TRANSCRIPT_BYTES,
        "transcript.html": _HTML_BASE_BYTES + _HTML_BYTES_PER_JSON_BYTE * transcript,
    }
    for name, limit in limits.items():
        archive.check_size(members[name], limit)
    return members


def _packaged_key(raw: bytes) -> str:
    """audit.pub: one line holding a verifier key, as the export writes it, and nothing else."""
    text = raw.decode("ascii", "replace")
    key = text.removesuffix("\n")
    try:
        notes.VerifierKey.parse(key)
    except (ValueError, AuditVerificationError) as exc:
        raise AuditVerificationError(f"audit.pub is not a verifier key: {exc}") from None
    if text != key + "\n":
        raise AuditVerificationError("audit.pub holds more than one verifier key line")
    return key


def _document(raw: bytes) -> dict[str, Any]:
    """transcript.json parsed, once it is UTF-8 and no denser in values than a transcript."""
    values = _values(raw)
    if values > len(raw) // _BYTES_PER_VALUE + 64:
        raise AuditVerificationError(
            f"transcript.json holds {values} values in {len(raw)} bytes, far more than a "
            "transcript has: refused before it is parsed"
        )
    try:
        document = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AuditVerificationError(f"transcript.json is not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise AuditVerificationError(f"transcript.json is not a {FORMAT} document")
    return document


def _values(raw: bytes) -> int:
    """How many values JSON text holds, about (one per separator or container outside its
    strings): counted without parsing it."""
    bare = _JSON_STRING.sub(b"", raw)
    return bare.count(b",") + bare.count(b"[") + bare.count(b"{")


def _fields(value: Any, expected: frozenset[str], where: str) -> dict[str, Any]:
    """``value``, an object with exactly the ``expected`` fields: a field more is content no
    proof covers, which a reader would take as verified."""
    if not isinstance(value, dict):
        raise AuditVerificationError(f"transcript.json is malformed: {where} is not an object")
    unknown, missing = sorted(set(value) - expected), sorted(expected - set(value))
    if unknown:
        raise AuditVerificationError(
            f"transcript.json has a field the format does not, {unknown[0][:60]!r} {where}: "
            "nothing outside the format is verified, so a package holding it does not verify"
        )
    if missing:
        raise AuditVerificationError(f"transcript.json lacks the field {missing[0]!r} {where}")
    return value


def _check_document(
    document: dict[str, Any], checkpoint: notes.Checkpoint, result: VerifiedTranscript
) -> None:
    _fields(document, _DOCUMENT_FIELDS, "at its top level")
    session = _fields(document["session"], _SESSION_FIELDS, "in session")
    try:
        session_id = _str(session["id"])
        salt = bytes.fromhex(_str(document["audit_salt"]))
        messages = document["messages"]
        if not isinstance(messages, list):
            raise TypeError("messages is not a list")
        start = _included(session["entry"], checkpoint, "the session's entry")
        end = (
            None
            if session.get("end_entry") is None
            else _included(session["end_entry"], checkpoint, "the end entry")
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise AuditVerificationError(f"transcript.json is malformed: {exc}") from None
    result.session_id = session_id
    if start.get("kind") != "session" or start.get("session") != session_id:
        raise AuditVerificationError("the session's entry is not this session's start")
    if not _same(start.get("at"), session.get("started_at")):
        raise AuditVerificationError("the start time differs from the session's entry")
    for position, message in enumerate(messages, start=1):
        _check_message(position, message, session_id, salt, checkpoint)
    result.messages = len(messages)
    exported_count = _check_export(document.get("exported"), session_id, checkpoint)
    if _is_int(exported_count) and exported_count != len(messages):
        raise AuditVerificationError(
            f"the export recorded {exported_count} messages; the package holds {len(messages)}: "
            "messages were dropped or added"
        )
    if end is None:
        if session.get("ended_at") is not None or session.get("end_reason") is not None:
            raise AuditVerificationError(
                "the package says the session ended but holds no end entry to prove it"
            )
        result.warnings.append(
            "the session had not ended when it was exported: later messages may exist"
        )
        return
    if end.get("kind") != "end" or end.get("session") != session_id:
        raise AuditVerificationError("the end entry is not this session's end")
    if not (
        _same(end.get("at"), session.get("ended_at"))
        and _same(end.get("reason"), session.get("end_reason"))
    ):
        raise AuditVerificationError("the end time or reason differs from the session's end entry")
    counted = end.get("messages")
    if _is_int(counted) and counted != len(messages):
        raise AuditVerificationError(
            f"the log recorded {counted} messages in this session; the package holds "
            f"{len(messages)}: messages were dropped or added"
        )
    result.complete = _is_int(counted)
    if not result.complete:
        result.warnings.append("the log did not record how many messages the session had")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A key given twice reads as its last value here but as its first in other tools: one
    # package, two transcripts. Refuse it.
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise AuditVerificationError("transcript.json gives a key twice")
    return dict(pairs)


def _check_export(exported: Any, session_id: str, checkpoint: notes.Checkpoint) -> Any:
    """Who exported the transcript, when and why, as its own entry proves."""
    if not isinstance(exported, dict):
        raise AuditVerificationError("the package does not say who exported it")
    _fields(exported, _EXPORTED_FIELDS, "in exported")
    fields = _included(exported.get("entry"), checkpoint, "the export entry")
    if fields.get("kind") != "export" or fields.get("session") != session_id:
        raise AuditVerificationError("the export entry is not an export of this session")
    for name in ("at", "by", "reason"):
        if not _same(fields.get(name), exported.get(name)):
            raise AuditVerificationError(
                f"who exported the transcript, when or why differs from the export entry ({name})"
            )
    return fields.get("messages")


def _check_message(
    position: int, message: Any, session_id: str, salt: bytes, checkpoint: notes.Checkpoint
) -> None:
    if not isinstance(message, dict):
        raise AuditVerificationError(f"message {position} is not an object")
    _fields(message, _MESSAGE_FIELDS, f"in message {position}")
    seq, slot, at, text = (message.get(k) for k in ("seq", "slot", "at", "text"))
    if not (_is_int(seq) and _is_int(slot) and _is_int(at) and isinstance(text, str)):
        raise AuditVerificationError(
            f"message {position} needs integer seq, slot and at and a text string"
        )
    fields = _included(message.get("entry"), checkpoint, f"message {position}'s entry")
    if fields.get("kind") != "message" or fields.get("session") != session_id:
        raise AuditVerificationError(f"message {position}'s entry is not a message of this session")
    if seq != position or fields.get("seq") != position:
        raise AuditVerificationError(
            f"message {position} is numbered {seq} (its entry: {fields.get('seq')}): messages "
            "were reordered, added or dropped"
        )
    if (fields.get("slot"), fields.get("at")) != (slot, at):
        raise AuditVerificationError(
            f"message {position}: its sender or time differs from its entry"
        )
    expected = text_commitment(salt, text.encode(), seq=seq).hex()
    if fields.get("text") != expected:
        raise AuditVerificationError(
            f"message {position}: its text is not the text the log committed to: it was edited"
        )


def _included(packaged: Any, checkpoint: notes.Checkpoint, what: str) -> dict[str, Any]:
    """The fields of a packaged entry, once its inclusion in the checkpoint is proven."""
    if not isinstance(packaged, dict) or not isinstance(packaged.get("proof"), list):
        raise AuditVerificationError(f"{what} is malformed (no index, body and proof)")
    _fields(packaged, _ENTRY_FIELDS, f"in {what}")
    index: Any = packaged.get("index")
    body = _str(packaged.get("body")).encode("ascii")
    proof = [bytes.fromhex(_str(h)) for h in packaged["proof"]]
    if not _is_int(index) or not 0 <= index < checkpoint.size:
        raise AuditVerificationError(f"{what} has index {index!r}, outside the checkpoint")
    try:
        verify_inclusion(
            leaf_hash=merkle.leaf_hash(body),
            index=index,
            tree_size=checkpoint.size,
            proof=proof,
            root=checkpoint.root_hash,
        )
    except AuditVerificationError as exc:
        raise AuditVerificationError(f"{what} (entry {index}) is not in the log: {exc}") from None
    return parse_body(index, body)


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same type: 1, 1.0 and true are three different things here."""
    return type(a) is type(b) and a == b


def _is_int(value: Any) -> bool:
    """An integer, and not a bool: JSON's true is not 1 here, nor 1.0."""
    return type(value) is int


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


# -- the readable copy ------------------------------------------------------------------------


def render_html(document: dict[str, Any]) -> str:
    """The transcript for people: every value escaped, no script, no remote resource."""
    session = _mapping(document.get("session"))
    exported = _mapping(document.get("exported"))
    rows = "\n".join(
        f"<tr><td>{_h(m.get('seq'))}</td><td>{_h(_time(m.get('at')))}</td>"
        f"<td>{'AB'[m['slot']] if m.get('slot') in (0, 1) else _h(m.get('slot'))}</td>"
        f"<td class=text>{_h(m.get('text'))}</td></tr>"
        for m in document.get("messages") or []
        if isinstance(m, dict)
    )
    digest = hashlib.sha256(
        json.dumps(document, sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Transcript of session {_h(session.get("id"))}</title>
<style>body{{font:15px/1.5 system-ui,sans-serif;margin:2em;max-width:60em}}
table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:.3em;
text-align:left;vertical-align:top}}.text{{white-space:pre-wrap;word-break:break-word}}</style>
</head><body>
<h1>Transcript of session {_h(session.get("id"))}</h1>
<p>Started {_h(_time(session.get("started_at")))}; ended {_h(_time(session.get("ended_at")))}
({_h(session.get("end_reason"))}). Exported {_h(_time(exported.get("at")))} by
{_h(exported.get("by"))}: {_h(exported.get("reason"))}.</p>
<p>Check this package with <code>logwarden verify-transcript</code>: it proves every message
below against the log's signed checkpoint. This page is a rendering of transcript.json
(SHA-256 of its content: {digest}).</p>
<table><thead><tr><th>#</th><th>time (UTC)</th><th>from</th><th>message</th></tr></thead>
<tbody>
{rows}
</tbody></table>
</body></html>
"""


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _h(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _time(ms: Any) -> str:
    if not isinstance(ms, int) or isinstance(ms, bool):
        return ""
    try:
        moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return str(ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- making one ---------------------------------------------------------------------------------


def build_package(
    *, store: Store, vault: Vault, audit: AuditLog, session_id: str, by: str, reason: str
) -> TranscriptPackage:
    """Export a session: record the export in the audit log, sign a checkpoint that covers
    it, and gather the transcript with the proofs of its entries.

    Raises ``AuditVerificationError`` if the session is unknown, its text is destroyed, or
    its entries are not all in the log; ``StoreError``/``VaultError`` as reading does.
    """
    record = store.session(session_id)
    if record is None:
        raise AuditVerificationError(f"no session {session_id!r}")
    transcript = open_transcript(record, vault)
    try:
        salt = vault.audit_salt(session_id)
    except KeyDestroyedError:
        salt = None
    if salt is None or any(m["text"] is None for m in transcript.messages):
        raise AuditVerificationError(
            f"session {session_id}'s text is destroyed (retention): nothing to export"
        )
    now = audit.now_ms()
    exported = entry(
        "export",
        at=now,
        session_id=session_id,
        by=by,
        reason=reason,
        messages=len(transcript.messages),
    )
    export_index = audit.append([exported])
    audit.checkpoint()
    # The signer's newest, not the database's word for it: that may have been rolled back.
    newest = audit.newest()
    if newest is None or newest.checkpoint.size <= export_index:
        raise AuditVerificationError("no signed checkpoint covers the export entry")
    note, signed = newest.note, newest.checkpoint
    entries = [e for e in store.audit_entries_of(session_id) if e.idx < signed.size]

    def packaged(index: int, body: bytes) -> PackageEntry:
        return PackageEntry(index, body, store.audit_proof(index=index, size=signed.size))

    by_seq = {
        json.loads(e.body)["seq"]: packaged(e.idx, e.body) for e in entries if e.kind == "message"
    }
    starts = [packaged(e.idx, e.body) for e in entries if e.kind == "session"]
    ends = [packaged(e.idx, e.body) for e in entries if e.kind == "end"]
    if not starts:
        raise AuditVerificationError(f"session {session_id} has no entry in the audit log")
    messages = []
    for m in transcript.messages:
        if m["seq"] not in by_seq:
            raise AuditVerificationError(f"message {m['seq']} has no entry in the audit log")
        messages.append(PackageMessage(m["seq"], m["slot"], m["at"], m["text"], by_seq[m["seq"]]))
    return TranscriptPackage(
        session_id=session_id,
        started_at=transcript.started_at,
        ended_at=transcript.ended_at,
        end_reason=transcript.end_reason,
        salt=salt,
        messages=messages,
        session_entry=starts[0],
        end_entry=ends[0] if ends else None,  # the first counts, as for `audit verify`
        checkpoint=note,
        checkpoint_size=signed.size,
        verifier_key=str(audit.verifier),
        exported_at=now,
        exported_by=by,
        reason=reason,
        export_entry=packaged(export_index, _body_of(entries, export_index)),
    )


def _body_of(entries: list[AuditEntryRow], index: int) -> bytes:
    for e in entries:
        if e.idx == index:
            return e.body
    raise AuditVerificationError(f"entry {index} is not covered by the checkpoint")
