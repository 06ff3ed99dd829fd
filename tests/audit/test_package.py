"""Verifiable transcripts: a package exported from the log proves its session offline, and any
change to it (a character, the order, a message more or less, the key, the archive itself) fails
with an ``AuditVerificationError`` that says what (docs/audit.md).

The package is exported once from a chat recorded by the real recorder; each test changes a copy
of its bytes. An attacker who edits transcript.json renders transcript.html again to match, so
that the JSON change is what the verifier must catch.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import hmac
import io
import json
import secrets
import sqlite3
import struct
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from logwarden.audit import checkpoint as notes
from logwarden.audit import merkle
from logwarden.audit.entries import canonical
from logwarden.audit.log import AuditLog
from logwarden.audit.package import build_package, render_html, verify_package
from logwarden.errors import AuditVerificationError, KeyDestroyedError, LogwardenError
from logwarden.retention.policy import DAY_MS
from logwarden.testing import serve_in_process
from logwarden.vault import Vault, load_key_file, text_commitment
from tests.conftest import TEST_SERVER_ENV
from tests.recorder.test_session_log import SCRIPT, run_scripted_chat
from tests.retention import conftest as retention
from tests.retention.conftest import AUDIT_SIGNER, T0, Deployment, open_deployment, open_store
from tests.test_cli import logwarden

# The retention tests' fixtures: a fresh deployment (keys, store, recorder) on each backend.
backend = retention.backend
deployment = retention.deployment

KEY = str(AUDIT_SIGNER.verifier())  # the log's key, as its operator publishes it
# Another key for the same origin: what someone without the log's key can sign with.
FORGER = notes.SigningKey.from_seed(AUDIT_SIGNER.name, seed=bytes(range(1, 33)))
TEXTS = [
    "hello, marker-alpha-7731",
    'caf\u00e9 <b>bold</b> & "quotes" \U0001f600',
    "<script>alert(1)</script>",
    "line one\nline two",
    "\u202eright-to-left and \x1b[2J",
    "the last one, marker-omega-0042",
]


# -- the package, exported once ------------------------------------------------------------------


@dataclass(frozen=True)
class Exported:
    data: bytes  # the package as written
    session_id: str
    unended: bytes  # a package of a session exported while it was still on


async def say(d: Deployment, session_id: str, seq: int, text: str) -> None:
    await d.recorder.message(
        session_id=session_id, seq=seq, slot=seq % 2, sent_at=d.clock.now_ms() + seq, text=text
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    """A chat of TEXTS, ended and exported; and another exported while still on."""
    data_dir = tmp_path_factory.mktemp("package") / "data"
    with open_deployment(data_dir, open_store("sqlite", data_dir, None)) as d:
        audit = AuditLog(d.store, signer=AUDIT_SIGNER, clock=d.clock)
        chat = d.chat(messages=0, end=False)
        for seq, text in enumerate(TEXTS, start=1):
            d.loop.run(say(d, chat.session_id, seq, text))
        d.loop.run(
            d.recorder.session_ended(
                session_id=chat.session_id,
                ended_at=d.clock.now_ms() + 100,
                reason="stopped",
                ended_by=1,
            )
        )
        on = d.chat(messages=2, end=False)

        def export(session_id: str) -> bytes:
            package = build_package(
                store=d.store,
                vault=d.vault,
                audit=audit,
                session_id=session_id,
                by="moderator-7",
                reason="case 42",
            )
            return package.to_zip()

        yield Exported(export(chat.session_id), chat.session_id, export(on.session_id))


def unpack(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def pack(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def document(data: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(unpack(data)["transcript.json"])
    return parsed


def with_document(data: bytes, doc: Any, *, rerender: bool = True) -> bytes:
    """The package with transcript.json replaced by ``doc`` (and the HTML rendered from it)."""
    members = unpack(data)
    members["transcript.json"] = json.dumps(doc, ensure_ascii=False, indent=2).encode()
    if rerender and isinstance(doc, dict):
        # Too broken to render (the attacker's problem, not the verifier's): keep the old.
        with contextlib.suppress(AttributeError, TypeError, UnicodeError):
            members["transcript.html"] = render_html(doc).encode()
    return pack(members)


def edited(data: bytes, change: Callable[[dict[str, Any]], object]) -> bytes:
    doc = document(data)
    change(doc)
    return with_document(data, doc)


def fails(data: bytes, match: str, *, key: str | None = None) -> AuditVerificationError:
    with pytest.raises(AuditVerificationError, match=match) as caught:
        verify_package(data, verifier_key=key)
    return caught.value


def content(doc: dict[str, Any]) -> list[Any]:
    """What a verified package vouches for: the session's times and end, and every message."""
    session = doc["session"]
    messages = [(m["seq"], m["slot"], m["at"], m["text"]) for m in doc["messages"]]
    return [
        session["id"],
        session["started_at"],
        session["ended_at"],
        session["end_reason"],
        messages,
    ]


class TestExported:
    def test_an_exported_package_verifies(self, exported: Exported) -> None:
        """The package as exported verifies against the log's key, complete, every message."""
        result = verify_package(exported.data, verifier_key=KEY)
        assert (result.session_id, result.messages, result.complete) == (
            exported.session_id,
            len(TEXTS),
            True,
        )
        assert result.warnings == []
        assert result.checkpoint.origin == AUDIT_SIGNER.name

    def test_the_package_holds_the_transcript(self, exported: Exported) -> None:
        """transcript.json holds every message's text, number and sender in order; the HTML
        escapes them."""
        doc = document(exported.data)
        assert [m["text"] for m in doc["messages"]] == TEXTS
        assert [m["seq"] for m in doc["messages"]] == list(range(1, len(TEXTS) + 1))
        html = unpack(exported.data)["transcript.html"].decode()
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert [m["slot"] for m in doc["messages"]] == [seq % 2 for seq in range(1, 7)]
        assert (doc["exported"]["by"], doc["exported"]["reason"]) == ("moderator-7", "case 42")

    def test_without_a_key_it_says_where_the_key_came_from(self, exported: Exported) -> None:
        """Without the operator's key the package's own is used, and the result says so."""
        result = verify_package(exported.data)
        assert any("came from the package itself" in w and KEY in w for w in result.warnings)

    def test_a_session_still_on_is_not_complete(self, exported: Exported) -> None:
        """A session exported while still on verifies, but not as complete, with a warning."""
        result = verify_package(exported.unended, verifier_key=KEY)
        assert (result.messages, result.complete) == (2, False)
        assert any("had not ended" in w for w in result.warnings)


# -- edits to the transcript ---------------------------------------------------------------------


def swap(items: list[Any], i: int, j: int) -> None:
    items[i], items[j] = items[j], items[i]


def one_character(text: str) -> str:
    return text[:3] + chr(ord(text[3]) ^ 1) + text[4:]


def renumbered(doc: dict[str, Any]) -> None:
    swap(doc["messages"], 1, 2)
    doc["messages"][1]["seq"], doc["messages"][2]["seq"] = 2, 3


def added_at_the_end(doc: dict[str, Any]) -> None:
    extra = copy.deepcopy(doc["messages"][-1])
    extra["seq"] += 1
    extra["text"] = "one more"
    doc["messages"].append(extra)


def proof_flipped(doc: dict[str, Any]) -> None:
    proof = doc["messages"][0]["entry"]["proof"]
    proof[0] = ("0" if proof[0][0] != "0" else "1") + proof[0][1:]


def body_edited(doc: dict[str, Any]) -> None:
    entry = doc["messages"][0]["entry"]
    entry["body"] = entry["body"].replace('"slot":1', '"slot":0')
    doc["messages"][0]["slot"] = 0


EDITS: dict[str, tuple[Callable[[dict[str, Any]], object], str]] = {
    "one character of a text": (
        lambda d: d["messages"][1].update(text=one_character(d["messages"][1]["text"])),
        r"message 2: its text is not the text the log committed to: it was edited",
    ),
    "a character added": (
        lambda d: d["messages"][5].update(text=d["messages"][5]["text"] + " "),
        r"message 6: its text is not the text",
    ),
    "two messages reordered": (
        lambda d: swap(d["messages"], 1, 2),
        r"message 2 is numbered 3 \(its entry: 3\): messages were reordered, added or dropped",
    ),
    "two messages reordered and renumbered": (
        renumbered,
        r"message 2 is numbered 2 \(its entry: 3\)",
    ),
    "two texts swapped": (
        lambda d: [
            d["messages"][1].update(text=TEXTS[2]),
            d["messages"][2].update(text=TEXTS[1]),
        ],
        r"message 2: its text is not the text",
    ),
    "the last message dropped": (
        lambda d: d["messages"].pop(),
        r"the export recorded 6 messages; the package holds 5: messages were dropped or added",
    ),
    "a middle message dropped": (
        lambda d: d["messages"].pop(2),
        r"message 3 is numbered 4",
    ),
    "the first message dropped": (
        lambda d: d["messages"].pop(0),
        r"message 1 is numbered 2",
    ),
    "a message added at the end": (added_at_the_end, r"message 7 is numbered 7 \(its entry: 6\)"),
    "a message repeated": (
        lambda d: d["messages"].insert(1, copy.deepcopy(d["messages"][0])),
        r"message 2 is numbered 1",
    ),
    "a number changed": (
        lambda d: d["messages"][3].update(seq=5),
        r"message 4 is numbered 5 \(its entry: 4\)",
    ),
    "a sender changed": (
        lambda d: d["messages"][0].update(slot=1 - d["messages"][0]["slot"]),
        r"message 1: its sender or time differs from its entry",
    ),
    "a time changed": (
        lambda d: d["messages"][4].update(at=d["messages"][4]["at"] + 1),
        r"message 5: its sender or time differs from its entry",
    ),
    "the salt changed": (
        lambda d: d.update(audit_salt=secrets.token_hex(32)),
        r"message 1: its text is not the text",
    ),
    "a proof byte flipped": (proof_flipped, r"message 1's entry \(entry \d+\) is not in the log"),
    "an entry's body edited": (body_edited, r"message 1's entry \(entry \d+\) is not in the log"),
    "an entry's index changed": (
        lambda d: d["messages"][0]["entry"].update(index=d["messages"][0]["entry"]["index"] + 1),
        r"message 1's entry \(entry \d+\) is not in the log",
    ),
    "an entry moved past the checkpoint": (
        lambda d: d["messages"][0]["entry"].update(index=10**6),
        r"message 1's entry has index 1000000, outside the checkpoint",
    ),
    "another message's entry": (
        lambda d: d["messages"][0].update(entry=d["messages"][2]["entry"]),
        r"message 1 is numbered 1 \(its entry: 3\)",
    ),
    "the session id changed": (
        lambda d: d["session"].update(id="f" * 32),
        r"the session's entry is not this session's start",
    ),
    "the start time changed": (
        lambda d: d["session"].update(started_at=d["session"]["started_at"] - 1000),
        r"the start time differs from the session's entry",
    ),
    "the end time changed": (
        lambda d: d["session"].update(ended_at=d["session"]["ended_at"] + 1),
        r"the end time or reason differs from the session's end entry",
    ),
    "the end reason changed": (
        lambda d: d["session"].update(end_reason="reported"),
        r"the end time or reason differs",
    ),
    "the end entry replaced by the start": (
        lambda d: d["session"].update(end_entry=d["session"]["entry"]),
        r"the end entry is not this session's end",
    ),
    "the session entry replaced by a message's": (
        lambda d: d["session"].update(entry=d["messages"][0]["entry"]),
        r"the session's entry is not this session's start",
    ),
    "another format": (
        lambda d: d.update(format="logwarden-transcript/2"),
        r"transcript.json is not a logwarden-transcript/1 document",
    ),
}


class TestEdits:
    @pytest.mark.parametrize("edit", list(EDITS))
    def test_an_edit_fails_saying_what(self, exported: Exported, edit: str) -> None:
        """Each edit to transcript.json (the HTML rendered again to match) fails, and the
        message says what does not hold."""
        change, message = EDITS[edit]
        fails(edited(exported.data, change), message, key=KEY)

    def test_an_edit_to_the_html_alone_fails(self, exported: Exported) -> None:
        """transcript.html edited (a character of a message), the JSON left alone: fails."""
        members = unpack(exported.data)
        html = members["transcript.html"].decode()
        assert html.count("marker-alpha-7731") == 1
        members["transcript.html"] = html.replace("marker-alpha-7731", "marker-alpha-7732").encode()
        fails(
            pack(members), r"transcript.html is not the rendering of transcript.json: it was edited"
        )

    def test_the_json_edited_without_the_html_fails(self, exported: Exported) -> None:
        """An edit to the JSON that is not rendered into the HTML again fails either way."""
        doc = document(exported.data)
        doc["messages"][0]["text"] = one_character(doc["messages"][0]["text"])
        fails(with_document(exported.data, doc, rerender=False), r"message 1: its text")

    def test_the_end_entry_removed_with_the_last_message_fails(self, exported: Exported) -> None:
        """An ended session's end entry removed, so that its last message can be dropped: the
        end the package still states is not proven, and it fails."""

        def change(doc: dict[str, Any]) -> None:
            doc["messages"].pop()
            doc["session"]["end_entry"] = None

        fails(edited(exported.data, change), r"dropped or added", key=KEY)

    def test_the_end_entry_removed_with_the_end_fails(self, exported: Exported) -> None:
        """An ended session's end entry removed: the end the package still states is not
        proven, and it fails."""

        def change(doc: dict[str, Any]) -> None:
            doc["session"]["end_entry"] = None

        fails(edited(exported.data, change), r"holds no end entry", key=KEY)

    def test_a_key_given_twice_fails(self, exported: Exported) -> None:
        """A message whose "text" is given twice (tools disagree on which one counts) fails."""
        members = unpack(exported.data)
        raw = members["transcript.json"].decode()
        first = json.dumps(document(exported.data)["messages"][0]["text"], ensure_ascii=False)
        members["transcript.json"] = raw.replace(
            f'"text": {first}', f'"text": "I never said that", "text": {first}', 1
        ).encode()
        fails(pack(members), r"twice", key=KEY)

    def test_the_exporter_edited_fails(self, exported: Exported) -> None:
        """Who exported the package and why, as the HTML shows them, cannot be changed."""
        fails(
            edited(exported.data, lambda d: d["exported"].update(by="someone-else")),
            r"export",
            key=KEY,
        )


# -- values of the wrong type --------------------------------------------------------------------


def at_path(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


WRONG_TYPES = [
    (("session",), []),
    (("session",), "session"),
    (("session", "id"), 1),
    (("session", "entry"), None),
    (("session", "entry"), []),
    (("session", "entry", "index"), "0"),
    (("session", "entry", "index"), None),
    (("session", "entry", "body"), {"kind": "session"}),
    (("session", "entry", "body"), "not json"),
    (("session", "entry", "body"), "caf\u00e9"),
    (("session", "entry", "proof"), "00"),
    (("session", "entry", "proof"), [1]),
    (("session", "entry", "proof"), ["zz"]),
    (("session", "end_entry"), []),
    (("session", "end_entry"), 7),
    (("audit_salt",), None),
    (("audit_salt",), "not hex"),
    (("audit_salt",), 5),
    (("messages",), {}),
    (("messages",), "all of them"),
    (("messages",), None),
    (("messages", 0), None),
    (("messages", 0), ["seq", 1]),
    (("messages", 0), "message"),
    (("messages", 0, "text"), None),
    (("messages", 0, "text"), 1),
    (("messages", 0, "text"), ["hello"]),
    (("messages", 0, "seq"), "1"),
    (("messages", 0, "seq"), None),
    (("messages", 0, "seq"), 1.5),
    (("messages", 0, "slot"), "A"),
    (("messages", 0, "at"), "now"),
    (("messages", 0, "entry"), None),
    (("messages", 0, "entry"), "entry"),
    (("messages", 0, "entry", "proof"), None),
    (("messages", 0, "entry", "proof"), {"0": "ab"}),
    (("messages", 0, "entry", "index"), -1),
    (("messages", 0, "entry", "index"), 1.0),
]


# transcript.json made from the exported document; the exception each raises today.
HOSTILE: dict[str, Callable[[dict[str, Any]], bytes]] = {
    "nested-too-deep-RecursionError": lambda _doc: b"[" * 100_000 + b"]" * 100_000,
    "huge-integer-ValueError": lambda _doc: b'{"format": ' + b"9" * 5000 + b"}",
    "exported-not-an-object-AttributeError": (
        lambda doc: json.dumps({**doc, "exported": "x"}).encode()
    ),
    "lone-surrogate-UnicodeEncodeError": (
        lambda doc: json.dumps({**doc, "exported": {"by": "\ud800"}}).encode()
    ),
}


class TestMalformed:
    @pytest.mark.parametrize(
        ("path", "value"),
        WRONG_TYPES,
        ids=[f"{'.'.join(map(str, p))}={v!r}" for p, v in WRONG_TYPES],
    )
    def test_a_value_of_the_wrong_type_fails(
        self, exported: Exported, path: tuple[Any, ...], value: Any
    ) -> None:
        """A value replaced by one of another type fails with an AuditVerificationError."""
        doc = document(exported.data)
        at_path(doc, path[:-1])[path[-1]] = value
        fails(with_document(exported.data, doc), r".")

    @pytest.mark.parametrize(
        "key", ["format", "session", "audit_salt", "messages"], ids=lambda k: f"no {k}"
    )
    def test_a_missing_field_fails(self, exported: Exported, key: str) -> None:
        """A top-level field removed fails."""
        doc = document(exported.data)
        del doc[key]
        fails(with_document(exported.data, doc), r".")

    @pytest.mark.parametrize("doc", [[], "transcript", 1, None], ids=repr)
    def test_a_document_that_is_not_an_object_fails(self, exported: Exported, doc: Any) -> None:
        """transcript.json holding an array, a string, a number or null fails."""
        fails(with_document(exported.data, doc), r"is not a logwarden-transcript/1 document")

    @pytest.mark.parametrize(
        "raw", [b"", b"{", b"\xff\xfe{}", b'{"format": "logwarden-transcript/1",}'], ids=repr
    )
    def test_malformed_json_fails(self, exported: Exported, raw: bytes) -> None:
        """transcript.json that is not JSON (or not UTF-8) fails."""
        members = unpack(exported.data)
        members["transcript.json"] = raw
        fails(pack(members), r"transcript.json is not JSON")

    @pytest.mark.parametrize(
        ("path", "convert"),
        [
            (("messages", 0, "seq"), bool),
            (("messages", 0, "seq"), float),
            (("messages", 1, "slot"), bool),
            (("messages", 0, "at"), float),
            (("session", "started_at"), float),
        ],
        ids=["seq=true", "seq=1.0", "slot=false", "at=float", "started_at=float"],
    )
    def test_a_number_of_another_type_fails(
        self, exported: Exported, path: tuple[Any, ...], convert: Callable[[int], Any]
    ) -> None:
        """A committed integer given as a boolean or a float (equal in Python) fails."""
        doc = document(exported.data)
        parent = at_path(doc, path[:-1])
        value = convert(parent[path[-1]])
        assert value == parent[path[-1]] and type(value) is not int
        parent[path[-1]] = value
        fails(with_document(exported.data, doc), r".", key=KEY)

    @pytest.mark.parametrize("hostile", list(HOSTILE))
    def test_hostile_json_fails_cleanly(self, exported: Exported, hostile: str) -> None:
        """JSON nested past the recursion limit, an integer past Python's digit limit, a
        non-object where the HTML reads an object, a lone surrogate: each fails with an
        AuditVerificationError."""
        members = unpack(exported.data)
        members["transcript.json"] = HOSTILE[hostile](document(exported.data))
        fails(pack(members), r".", key=KEY)


# -- any change at all -------------------------------------------------------------------------


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON value: dict keys and list indexes, depth first."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def nudge(value: Any, data: st.DataObject) -> Any:
    """A small change of the same type: one character, one unit, one bit of a boolean."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + data.draw(st.sampled_from([-1, 1, 2**31]))
    if isinstance(value, str) and value:
        at = data.draw(st.integers(0, len(value) - 1))
        return value[:at] + data.draw(st.characters(exclude_characters=value[at])) + value[at + 1 :]
    return data.draw(json_values)


def mutate(doc: dict[str, Any], data: st.DataObject) -> None:
    """One change anywhere in ``doc``: a value nudged or replaced, a field or item removed,
    one added."""
    path = data.draw(st.sampled_from(list(paths(doc))[1:]), label="path")
    parent, key = at_path(doc, path[:-1]), path[-1]
    operation = data.draw(st.sampled_from(["nudge", "replace", "delete", "insert"]), label="op")
    if operation == "nudge":
        parent[key] = nudge(parent[key], data)
    elif operation == "replace":
        parent[key] = data.draw(json_values, label="value")
    elif operation == "delete":
        del parent[key]
    elif isinstance(parent, list):
        parent.insert(key, data.draw(json_values, label="value"))
    else:
        parent[data.draw(st.text(max_size=8), label="key")] = data.draw(json_values, label="value")


class TestAnyChange:
    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def test_any_change_fails_or_changes_nothing_proven(
        self, exported: Exported, data: st.DataObject
    ) -> None:
        """Any one change to transcript.json (the HTML rendered to match) either fails with an
        AuditVerificationError or leaves the session and every message as they were."""
        original = document(exported.data)
        doc = copy.deepcopy(original)
        mutate(doc, data)
        # A known bug, pinned by TestMalformed::test_hostile_json_fails_cleanly: an "exported"
        # that is not an object crashes the HTML rendering.
        assume(not doc.get("exported") or isinstance(doc["exported"], dict))
        try:
            verify_package(with_document(exported.data, doc), verifier_key=KEY)
        except AuditVerificationError:
            return
        assert content(doc) == content(original)


# -- the other members, and the archive ------------------------------------------------------------


def forge(data: bytes, change: Callable[[dict[str, Any]], object]) -> bytes:
    """What someone without the log's key can make: the transcript changed, each message's
    text committed again under the package's own salt, the entries put in a log of their own
    with fresh proofs, and its checkpoint signed by FORGER, whose key goes in audit.pub."""
    members, doc = unpack(data), document(data)
    change(doc)
    salt = bytes.fromhex(doc["audit_salt"])
    for message in doc["messages"]:
        fields = json.loads(message["entry"]["body"])
        fields["text"] = text_commitment(salt, message["text"].encode(), seq=fields["seq"]).hex()
        message["entry"]["body"] = canonical(fields).decode()
    entries = [doc["session"]["entry"], *(m["entry"] for m in doc["messages"])]
    entries.append(doc["session"]["end_entry"])
    entries.append(doc["exported"]["entry"])
    leaves = [merkle.leaf_hash(e["body"].encode()) for e in entries]
    for index, entry in enumerate(entries):
        entry["index"] = index
        entry["proof"] = [h.hex() for h in merkle.inclusion_proof(leaves, index)]
    checkpoint = notes.Checkpoint(AUDIT_SIGNER.name, len(leaves), merkle.root(leaves))
    members["transcript.json"] = json.dumps(doc, ensure_ascii=False, indent=2).encode()
    members["transcript.html"] = render_html(doc).encode()
    members["checkpoint"] = notes.sign(checkpoint, FORGER)
    members["audit.pub"] = FORGER.verifier_key().encode() + b"\n"
    return pack(members)


def edit_second(doc: dict[str, Any]) -> None:
    doc["messages"][1]["text"] = "I never said this"


class TestKeys:
    def test_a_checkpoint_signed_by_another_key_fails(self, exported: Exported) -> None:
        """The checkpoint replaced by one another key signed for the same tree: fails with the
        operator's key and with the package's own."""
        members = unpack(exported.data)
        signed = verify_package(exported.data, verifier_key=KEY).checkpoint
        members["checkpoint"] = notes.sign(signed, FORGER)
        for key in (KEY, None):
            fails(pack(members), r"note has no signature by key", key=key)

    def test_a_flipped_checkpoint_fails(self, exported: Exported) -> None:
        """One character of the checkpoint's root line changed: its signature fails."""
        members = unpack(exported.data)
        lines = members["checkpoint"].split(b"\n")
        lines[2] = (b"A" if lines[2][:1] != b"A" else b"B") + lines[2][1:]
        members["checkpoint"] = b"\n".join(lines)
        fails(pack(members), r"signature", key=KEY)

    def test_a_forged_log_fails_against_the_operators_key(self, exported: Exported) -> None:
        """A message rewritten and the whole proof forged under another key: fails against
        the key the operator publishes."""
        fails(forge(exported.data, edit_second), r"note has no signature by key", key=KEY)

    def test_a_forged_log_names_its_own_key(self, exported: Exported) -> None:
        """Checked only against the package's own key, the forgery verifies, as any log
        anyone signs does; the result then warns and names that key, which is not the
        operator's."""
        result = verify_package(forge(exported.data, edit_second))
        assert result.key == FORGER.verifier_key() != KEY
        assert any("came from the package itself" in w for w in result.warnings)

    def test_the_forger_checks_out(self, exported: Exported) -> None:
        """The forgery helper itself makes a package that verifies under its key, so the
        failure above is the key's, not a broken forgery's."""
        forged = forge(exported.data, lambda _doc: None)
        result = verify_package(forged, verifier_key=FORGER.verifier_key())
        assert result.complete and result.messages == len(TEXTS)

    @pytest.mark.parametrize("key", ["", "not a key", KEY.replace("+", "-", 1), KEY[:-4]])
    def test_a_malformed_key_fails(self, exported: Exported, key: str) -> None:
        """A malformed verifier key fails with an AuditVerificationError."""
        fails(exported.data, r"key", key=key)

    def test_a_malformed_packaged_key_fails(self, exported: Exported) -> None:
        """A package whose audit.pub is not a key fails when no key is given."""
        members = unpack(exported.data)
        members["audit.pub"] = b"\xff\xfe not a key\n"
        fails(pack(members), r"key")


def patch_member(
    data: bytes, name: str, *, flags: int = 0, method: int | None = None, size: int | None = None
) -> bytes:
    """The archive with ``name``'s headers (local and central) changed: general-purpose flag
    bits set, the compression method or the uncompressed size replaced."""
    raw = bytearray(data)
    encoded = name.encode()
    # (signature, offset of flags, of method, of uncompressed size, of name length, of name)
    for signature, flag_at, method_at, size_at, length_at, name_at in (
        (b"PK\x03\x04", 6, 8, 22, 26, 30),
        (b"PK\x01\x02", 8, 10, 24, 28, 46),
    ):
        start = 0
        while (start := raw.find(signature, start)) >= 0:
            (length,) = struct.unpack_from("<H", raw, start + length_at)
            if raw[start + name_at : start + name_at + length] == encoded:
                (old,) = struct.unpack_from("<H", raw, start + flag_at)
                struct.pack_into("<H", raw, start + flag_at, old | flags)
                if method is not None:
                    struct.pack_into("<H", raw, start + method_at, method)
                if size is not None:
                    struct.pack_into("<I", raw, start + size_at, size)
            start += 4
    return bytes(raw)


class TestArchive:
    def test_an_extra_member_fails(self, exported: Exported) -> None:
        """A fifth file added to the package fails, naming what it holds."""
        members = unpack(exported.data)
        members["notes.txt"] = b"trust me"
        fails(pack(members), r"a package holds exactly .*; this one holds .*notes.txt")

    def test_a_missing_member_fails(self, exported: Exported) -> None:
        """A package without its checkpoint fails."""
        members = unpack(exported.data)
        del members["checkpoint"]
        fails(pack(members), r"a package holds exactly")

    def test_a_repeated_member_fails(self, exported: Exported) -> None:
        """A second transcript.json in the archive (which one would a reader show?) fails."""
        members = unpack(exported.data)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, value in members.items():
                archive.writestr(name, value)
            with pytest.warns(UserWarning, match="Duplicate name"):
                archive.writestr("transcript.json", b"{}")
        fails(buffer.getvalue(), r"a package holds exactly")

    @pytest.mark.parametrize(
        "data",
        [b"", b"transcript", b"PK\x03\x04" + bytes(40), secrets.token_bytes(300)],
        ids=["empty", "text", "a-zip-header-only", "random"],
    )
    def test_a_file_that_is_not_a_zip_fails(self, data: bytes) -> None:
        """Bytes that are not a zip archive fail."""
        fails(data, r"not a transcript package \(not a zip file\)")

    def test_a_truncated_package_fails(self, exported: Exported) -> None:
        """A package cut short (a partial download) fails."""
        fails(exported.data[: len(exported.data) // 2], r"not a zip file")

    def test_an_oversized_member_fails_before_it_is_read(self, exported: Exported) -> None:
        """A member that says it is over the bound fails without being inflated."""
        oversized = patch_member(exported.data, "transcript.html", size=(64 << 20) + 1)
        fails(oversized, rf"transcript.html is too large \({(64 << 20) + 1} bytes; at most")

    @pytest.mark.parametrize(
        "damage",
        ["inflate", "crc", "lying-size", "method", "encrypted"],
    )
    def test_a_damaged_member_fails_cleanly(self, exported: Exported, damage: str) -> None:
        """A member whose data does not inflate, does not match its CRC or its declared size,
        uses an unknown method or says it is encrypted: an AuditVerificationError."""
        members = unpack(exported.data)
        if damage == "inflate":
            raw = bytearray(pack(members))
            at = raw.find(b"transcript.json") + len("transcript.json") + 10
            raw[at] ^= 0xFF
            data = bytes(raw)
        elif damage == "crc":
            raw = bytearray(pack(members, compression=zipfile.ZIP_STORED))
            at = raw.find(b'"format"')
            raw[at + 2] ^= 0x01
            data = bytes(raw)
        elif damage == "lying-size":  # a zip bomb's trick: the header says small
            data = patch_member(pack(members), "transcript.json", size=100)
        elif damage == "method":
            data = patch_member(pack(members), "transcript.json", method=99)
        else:
            data = patch_member(pack(members), "transcript.json", flags=0x1)
        fails(data, r".", key=KEY)


# -- the format's fields, exactly ---------------------------------------------------------------

# Where a field nobody verified could ride along, and how the failure names the place.
UNKNOWN_FIELD_AT: list[tuple[tuple[Any, ...], str]] = [
    ((), "at its top level"),
    (("session",), "in session"),
    (("session", "entry"), "in the session's entry"),
    (("session", "end_entry"), "in the end entry"),
    (("messages", 0), "in message 1"),
    (("messages", 3, "entry"), "in message 4's entry"),
    (("exported",), "in exported"),
    (("exported", "entry"), "in the export entry"),
]


class TestExactFormat:
    @pytest.mark.parametrize(
        ("path", "where"), UNKNOWN_FIELD_AT, ids=[w for _, w in UNKNOWN_FIELD_AT]
    )
    def test_a_field_the_format_does_not_have_fails(
        self, exported: Exported, path: tuple[Any, ...], where: str
    ) -> None:
        """A field added anywhere (the HTML rendered again to match) fails, naming the field
        and where it is: nothing in it is verified, yet a reader would take it as part of a
        verified transcript."""
        doc = document(exported.data)
        at_path(doc, path)["moderator_note"] = "forged: B threatened A"
        fails(
            with_document(exported.data, doc),
            rf"has a field the format does not, 'moderator_note' {where}: nothing outside",
            key=KEY,
        )

    def test_the_reviewers_forgery_fails(self, exported: Exported) -> None:
        """The review's forge1: a translation of a message, who reported, a moderator's note,
        the HTML rendered again: it verified (exit 0) before; now it fails."""

        def forge(doc: dict[str, Any]) -> None:
            doc["messages"][0]["translation"] = "Forged: I know where you live"
            doc["session"]["reported_by"] = "forged: the other person"
            doc["moderator_note"] = "forged: B threatened A"

        fails(edited(exported.data, forge), r"'moderator_note' at its top level", key=KEY)

    @pytest.mark.parametrize(
        ("path", "field"),
        [(("messages", 2), "slot"), (("session",), "end_reason"), (("exported",), "reason")],
        ids=["message-slot", "end_reason", "export-reason"],
    )
    def test_a_missing_field_is_named(
        self, exported: Exported, path: tuple[Any, ...], field: str
    ) -> None:
        """A field removed from a nested object fails, naming it."""
        doc = document(exported.data)
        del at_path(doc, path)[field]
        fails(with_document(exported.data, doc), rf"lacks the field '{field}'", key=KEY)

    @pytest.mark.parametrize(
        "content",
        [f"{KEY}\nnote: signed by the moderator\n", f"{KEY}\n\n", f"  {KEY}\n", KEY],
        ids=["a second line", "a blank line", "indented", "no newline"],
    )
    def test_audit_pub_holds_one_key_line_and_nothing_else(
        self, exported: Exported, content: str
    ) -> None:
        """audit.pub with more than the key's one line, even when --key is given and the key
        it holds is the right one: it fails."""
        members = unpack(exported.data)
        members["audit.pub"] = content.encode()
        fails(pack(members), r"audit.pub", key=KEY)


# -- the archive's layout ----------------------------------------------------------------------


@dataclass
class Raw:
    """One member as a zip writer lays it out: what follows its local header, and fields."""

    name: str
    content: bytes
    data: bytes  # stored or deflated
    method: int = zipfile.ZIP_DEFLATED
    flags: int = 0
    version: int = 20
    extra: bytes = b""
    mode: int = 0o100644


def raw_members(data: bytes) -> list[Raw]:
    """The package's members, in its order, each deflated as a writer would."""
    found = []
    for name, content in unpack(data).items():
        deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        found.append(Raw(name, content, deflater.compress(content) + deflater.flush()))
    return found


def build(
    members: list[Raw],
    *,
    prefix: bytes = b"",
    gaps: dict[int, bytes] | None = None,
    before_directory: bytes = b"",
    order: list[int] | None = None,
    comment: bytes = b"",
    after: bytes = b"",
) -> bytes:
    """A zip of ``members`` whose offsets all point where the bytes are (the attacker fixes
    them up), with bytes added before the first member, after member ``i`` (``gaps``) or
    before the directory, the directory in another ``order``, a comment, or bytes after it."""
    out, offsets, headers = bytearray(prefix), [], []
    for index, m in enumerate(members):
        name = m.name.encode()
        fields = (m.version, m.flags, m.method, 0, 0x21, zlib.crc32(m.content), len(m.data))
        fields += (len(m.content), len(name), len(m.extra))
        offsets.append(len(out))
        headers.append(fields)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields) + name + m.extra + m.data
        out += (gaps or {}).get(index, b"")
    out += before_directory
    directory_at = len(out)
    for index in order or range(len(members)):
        m, name = members[index], members[index].name.encode()
        out += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            (3 << 8) | 20,
            *headers[index],
            0,
            0,
            0,
            m.mode << 16,
            offsets[index],
        )
        out += name + m.extra
    size = len(out) - directory_at
    out += struct.pack("<IHHHHI", 0x06054B50, 0, 0, len(members), len(members), size)
    out += struct.pack("<IH", directory_at, len(comment)) + comment + after
    return bytes(out)


def unseekable_zip(members: dict[str, bytes]) -> bytes:
    """What zipfile writes to a pipe: each member followed by a data descriptor."""

    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.written = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            self.written += data
            return len(data)

    pipe = Pipe()
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED) as archive:  # type: ignore[arg-type]
        for name, content in members.items():
            archive.writestr(name, content)
    return bytes(pipe.written)


def hidden_entries(data: bytes) -> bytes:
    """The review's forge2: a forged transcript's local entries (and no directory entries)
    between the genuine members and the central directory, which a reader going front to back
    meets after the genuine ones."""
    doc = document(data)
    doc["messages"][0]["text"] = "FORGED: send me your address or else"
    forged = pack(
        {
            "transcript.json": json.dumps(doc, ensure_ascii=False, indent=2).encode(),
            "transcript.html": render_html(doc).encode(),
        },
        compression=zipfile.ZIP_STORED,
    )
    (directory_at,) = struct.unpack_from("<I", forged, len(forged) - 6)
    return forged[:directory_at]


def with_local_size(data: bytes, name: str, size: int) -> bytes:
    """The archive with ``name``'s local header (only) declaring another uncompressed size."""
    raw = bytearray(data)
    at = raw.find(b"PK\x03\x04")
    while at >= 0:
        (length,) = struct.unpack_from("<H", raw, at + 26)
        if raw[at + 30 : at + 30 + length] == name.encode():
            struct.pack_into("<I", raw, at + 22, size)
            return bytes(raw)
        at = raw.find(b"PK\x03\x04", at + 4)
    raise AssertionError(name)


def trailing_after_stream(members: list[Raw], index: int) -> list[Raw]:
    """Member ``index``'s data with bytes after its deflate stream (counted in its sizes)."""
    changed = list(members)
    m = changed[index]
    changed[index] = Raw(m.name, m.content, m.data + b"PK\x03\x04 hidden member")
    return changed


def altered(members: list[Raw], index: int, **fields: Any) -> list[Raw]:
    changed = list(members)
    changed[index] = dataclasses.replace(changed[index], **fields)
    return changed


# Each layout that Python's zipfile read as the genuine package, and what the failure names.
LAYOUTS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "a prefix, offsets fixed": (
        lambda d: build(raw_members(d), prefix=b"MZ" + bytes(98)),
        r"100 bytes come before the first member \(transcript.json\)",
    ),
    "a prefix, offsets as they were": (
        lambda d: b"#!/bin/sh\n" + d,
        r"the central directory does not end where the end record begins",
    ),
    "a gap between members": (
        lambda d: build(raw_members(d), gaps={0: bytes(16)}),
        r"transcript.html is at offset \d+, not right after the member before it",
    ),
    "entries hidden before the directory (forge2)": (
        lambda d: build(raw_members(d), before_directory=hidden_entries(d)),
        r"\d+ bytes lie between the last member and the central directory",
    ),
    "the directory in another order": (
        lambda d: build(raw_members(d), order=[1, 0, 2, 3]),
        r"the central directory lists transcript.html first, but the file does not start",
    ),
    "an archive comment": (
        lambda d: build(raw_members(d), comment=b"moderator: B threatened A"),
        r"the archive has a comment",
    ),
    "bytes after the end record": (
        lambda d: d + b"moderator: B threatened A",
        r"the archive has a comment or bytes after its end record",
    ),
    "data descriptors": (
        lambda d: unseekable_zip(unpack(d)),
        r"transcript.json uses a data descriptor",
    ),
    "an extra field": (
        lambda d: build(altered(raw_members(d), 1, extra=b"\xfe\xca\x04\x00note")),
        r"transcript.html carries an extra field",
    ),
    "a local header that differs": (
        lambda d: with_local_size(d, "checkpoint", 1),
        r"checkpoint's local header differs from its central directory entry",
    ),
    "bytes after a member's deflate stream": (
        lambda d: build(trailing_after_stream(raw_members(d), 1)),
        r"\d+ bytes follow the end of transcript.html's compressed stream",
    ),
    "a member that is a link": (
        lambda d: build(altered(raw_members(d), 1, mode=0o120777)),
        r"transcript.html is not a plain file",
    ),
    "ZIP64's version": (
        lambda d: build(altered(raw_members(d), 0, version=45)),
        r"transcript.json needs zip version 4.5",
    ),
}


def assert_canonical(data: bytes) -> None:
    """``data`` is in the one layout a package has, as zipfile (not our reader) sees it."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        assert archive.comment == b""
        assert archive.testzip() is None  # every member inflates to its CRC
    position = 0
    for info in infos:
        assert info.header_offset == position, info.filename
        assert (info.flag_bits, info.extra, info.comment) == (0, b"", b"")
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert info.external_attr >> 16 == 0o100644
        position += 30 + len(info.filename) + info.compress_size
    directory = len(data) - 22 - position
    assert directory == sum(46 + len(info.filename) for info in infos)
    assert [info.filename for info in infos] == [
        "transcript.json",
        "transcript.html",
        "checkpoint",
        "audit.pub",
    ]


class TestLayout:
    def test_the_export_is_in_the_canonical_layout(self, exported: Exported) -> None:
        """As zipfile reads it: the first member at offset 0, each right after the one before,
        the directory right after the last, its end record the file's last 22 bytes; no
        comment, extra field, flag, or descriptor; plain files."""
        assert_canonical(exported.data)

    def test_the_builder_makes_packages_that_verify(self, exported: Exported) -> None:
        """The layouts below are the package rebuilt with one change: rebuilt with none, it
        verifies, so each failure is the change's."""
        rebuilt = build(raw_members(exported.data))
        assert verify_package(rebuilt, verifier_key=KEY).messages == len(TEXTS)

    @pytest.mark.parametrize("layout", list(LAYOUTS))
    def test_another_layout_fails_saying_what(self, exported: Exported, layout: str) -> None:
        """Each way of laying out the genuine members that readers may read differently
        (Python's zipfile read each as the genuine package) fails, naming what is wrong."""
        make, message = LAYOUTS[layout]
        data = make(exported.data)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:  # zipfile reads the genuine one
            assert archive.read("transcript.json") == unpack(exported.data)["transcript.json"]
        fails(data, message, key=KEY)


# -- limits: nothing inflated past what the package can hold --------------------------------------


def peak_memory(work: Callable[[], object]) -> int:
    """The most memory Python allocated while ``work`` ran, in bytes."""
    tracemalloc.start()
    try:
        with contextlib.suppress(AuditVerificationError):
            work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


class TestLimits:
    def test_a_dense_transcript_is_refused_before_it_is_parsed(self, exported: Exported) -> None:
        """transcript.json of `{},` as long as the log allows (half a million objects parsed,
        twenty times its size in memory), in a package that otherwise holds together: refused
        without being parsed, using a few times its size in memory."""
        size = verify_package(exported.data, verifier_key=KEY).checkpoint.size
        members = unpack(exported.data)
        bomb = b"[" + b"{}," * (((256 << 10) + (96 << 10) * size) // 3 - 1) + b"{}]"
        members["transcript.json"] = bomb
        data = pack(members)
        fails(data, r"transcript.json holds \d+ values in \d+ bytes, far more than a transcript")
        assert peak_memory(lambda: verify_package(data)) < 4 * len(bomb)

    def test_the_checkpoint_is_checked_before_the_transcript_is_inflated(
        self, exported: Exported
    ) -> None:
        """A bomb under a checkpoint that does not verify: the checkpoint fails first, and
        the 16 MiB transcript is never inflated."""
        members = unpack(exported.data)
        members["transcript.json"] = bytes(16 << 20)
        members["checkpoint"] = b"not a checkpoint\n"
        data = pack(members)
        assert len(data) < 64 << 10
        fails(data, r"checkpoint|note|signature", key=KEY)
        assert peak_memory(lambda: verify_package(data, verifier_key=KEY)) < 1 << 20

    def test_a_transcript_larger_than_its_log_can_hold_fails(self, exported: Exported) -> None:
        """transcript.json padded (with spaces, still the same JSON) past what a log of the
        checkpoint's size can account for: refused before it is inflated."""
        size = verify_package(exported.data, verifier_key=KEY).checkpoint.size
        members = unpack(exported.data)
        members["transcript.json"] += b" " * ((256 << 10) + (96 << 10) * size)
        fails(pack(members), r"transcript.json is too large \(\d+ bytes; at most \d+", key=KEY)

    def test_a_member_inflating_past_its_declared_size_stops_there(
        self, exported: Exported
    ) -> None:
        """A checkpoint that declares 200 bytes but inflates to 32 MiB: inflating stops just
        past 200, and it fails."""
        members = unpack(exported.data)
        members["checkpoint"] = bytes(32 << 20)
        data = patch_member(pack(members), "checkpoint", size=200)
        fails(data, r"checkpoint inflates to more than the 200 bytes its header declares")
        assert peak_memory(lambda: verify_package(data)) < 1 << 20


# -- after retention -----------------------------------------------------------------------------


class TestShredded:
    def test_after_the_purge_the_leaves_reveal_nothing(self, deployment: Deployment) -> None:
        """Once retention destroys a session's text (30 days), its message entries hold no
        plaintext, no bare hash of it, and nothing keyed by a salt anyone still has: the salt
        is gone from the keys and from the log, so no guess can be tested against them."""
        d = deployment
        chat = d.chat(messages=4)
        salt = d.vault.audit_salt(chat.session_id)
        d.at((T0 // DAY_MS + 32) * DAY_MS)
        d.retention.purge()
        record = d.store.session(chat.session_id)
        assert record is not None and not record.messages  # the rows went
        reader = Vault(load_key_file(d.data_dir / "keys"), d.keystore)
        with pytest.raises(KeyDestroyedError):
            reader.audit_salt(chat.session_id)
        every = d.store.audit_entries(0, d.store.audit_head().size)
        entries = [e for e in every if e.session_id == chat.session_id and e.kind == "message"]
        assert [json.loads(e.body)["seq"] for e in entries] == [1, 2, 3, 4]
        for entry, text in zip(entries, chat.texts, strict=True):
            fields = json.loads(entry.body)
            raw = text.encode()
            assert raw not in entry.body and json.dumps(text).encode() not in entry.body
            numbered = b"%d\n" % fields["seq"] + raw
            unkeyed = {hashlib.sha256(value).hexdigest() for value in (raw, numbered)} | {
                hmac.new(b"", value, "sha256").hexdigest() for value in (raw, numbered)
            }
            assert {fields["text"], fields["sealed"]}.isdisjoint(unkeyed)
            # It commits to the text, but only under the salt that was destroyed.
            assert fields["text"] == text_commitment(salt, raw, seq=fields["seq"]).hex()
        everything = d.store.audit_entries(0, 1 << 62)
        assert not any(salt in e.body or salt.hex().encode() in e.body for e in everything)

    def test_the_salt_is_nowhere_on_disk(self, tmp_path: Path) -> None:
        """After the purge the session's audit salt is in no file of the data directory (the
        SQLite log, the keystore, the key file), in any encoding."""
        data_dir = tmp_path / "data"
        with open_deployment(data_dir, open_store("sqlite", data_dir, None)) as d:
            chat = d.chat(messages=3)
            salt = d.vault.audit_salt(chat.session_id)
            d.at((T0 // DAY_MS + 32) * DAY_MS)
            d.retention.purge()
        forms = [salt, salt.hex().encode(), salt.hex().upper().encode()]
        for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
            content = path.read_bytes()
            assert not any(form in content for form in forms), path

    def test_a_package_exported_before_still_verifies(self, deployment: Deployment) -> None:
        """A package exported while the text lived verifies offline after the purge: it
        carries everything it needs."""
        d = deployment
        chat = d.chat(messages=3)
        audit = AuditLog(d.store, signer=AUDIT_SIGNER, clock=d.clock)
        package = build_package(
            store=d.store,
            vault=d.vault,
            audit=audit,
            session_id=chat.session_id,
            by="m",
            reason="r",
        ).to_zip()
        d.at((T0 // DAY_MS + 32) * DAY_MS)
        d.retention.purge()
        result = verify_package(package, verifier_key=KEY)
        assert (result.session_id, result.messages, result.complete) == (chat.session_id, 3, True)

    def test_exporting_a_shredded_session_fails(self, deployment: Deployment) -> None:
        """Exporting after the purge fails with an error that says the text is gone."""
        d = deployment
        chat = d.chat(messages=3)
        audit = AuditLog(d.store, signer=AUDIT_SIGNER, clock=d.clock)
        d.at((T0 // DAY_MS + 32) * DAY_MS)
        d.retention.purge()
        with pytest.raises(LogwardenError, match=r"destroyed|does not exist"):
            build_package(
                store=d.store,
                vault=d.vault,
                audit=audit,
                session_id=chat.session_id,
                by="m",
                reason="r",
            )

    def test_exporting_a_shredded_session_records_nothing(self, deployment: Deployment) -> None:
        """Exporting after the purge raises the documented AuditVerificationError before any
        export is recorded in the log."""
        d = deployment
        chat = d.chat(messages=3)
        audit = AuditLog(d.store, signer=AUDIT_SIGNER, clock=d.clock)
        d.at((T0 // DAY_MS + 32) * DAY_MS)
        d.retention.purge()
        size = d.store.audit_head().size
        with pytest.raises(AuditVerificationError, match=r"destroyed"):
            build_package(
                store=d.store,
                vault=d.vault,
                audit=audit,
                session_id=chat.session_id,
                by="m",
                reason="r",
            )
        assert d.store.audit_head().size == size

    def test_exporting_an_unknown_session_fails(self, deployment: Deployment) -> None:
        """Exporting a session that does not exist (or was deleted) fails."""
        audit = AuditLog(deployment.store, signer=AUDIT_SIGNER, clock=deployment.clock)
        with pytest.raises(AuditVerificationError, match=r"no session"):
            build_package(
                store=deployment.store,
                vault=deployment.vault,
                audit=audit,
                session_id="0" * 32,
                by="m",
                reason="r",
            )


# -- the commands --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A data directory whose server hosted the scripted chat, stopped since; its session."""
    data_dir = tmp_path_factory.mktemp("served") / "data"
    with serve_in_process(data_dir, env=TEST_SERVER_ENV) as server:
        run_scripted_chat(server)
    with sqlite3.connect(data_dir / "logwarden.db") as db:
        (session_id,) = db.execute("SELECT id FROM sessions").fetchone()
    db.close()
    return data_dir, session_id


@pytest.fixture(scope="module")
def package_file(served: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session exported with `logwarden export-transcript`."""
    data_dir, session_id = served
    path = tmp_path_factory.mktemp("export") / "transcript.zip"
    result = logwarden(
        "export-transcript",
        session_id,
        "-o",
        str(path),
        "--reason",
        "case 42",
        "--operator",
        "moderator-7",
        "--data-dir",
        str(data_dir),
    )
    assert result.returncode == 0, result.stderr
    assert f"{len(SCRIPT)} messages" in result.stdout
    return path


def flat(text: str) -> str:
    return " ".join(text.split())


class TestCommands:
    def test_an_exported_package_verifies(
        self, served: tuple[Path, str], package_file: Path
    ) -> None:
        """`verify-transcript --key` with the data directory's audit.pub: exit 0, complete."""
        data_dir, session_id = served
        result = logwarden(
            "verify-transcript", str(package_file), "--key", str(data_dir / "audit.pub")
        )
        assert result.returncode == 0, result.stderr
        assert (
            f"transcript verified: session {session_id}, {len(SCRIPT)} messages, included"
            in flat(result.stdout)
        )
        assert "warning" not in result.stderr
        doc = document(package_file.read_bytes())
        assert [(m["slot"], m["text"]) for m in doc["messages"]] == SCRIPT
        assert (doc["exported"]["by"], doc["exported"]["reason"]) == ("moderator-7", "case 42")

    def test_an_edited_package_does_not_verify(self, package_file: Path, tmp_path: Path) -> None:
        """One character of a message changed: exit 1, 'does NOT verify' and why."""
        edit = edited(
            package_file.read_bytes(),
            lambda d: d["messages"][2].update(text=one_character(d["messages"][2]["text"])),
        )
        path = tmp_path / "edited.zip"
        path.write_bytes(edit)
        result = logwarden("verify-transcript", str(path))
        assert result.returncode == 1, result.stdout
        assert (
            "transcript does NOT verify: message 3: its text is not the text the log committed to"
            in flat(result.stderr)
        )

    def test_the_exported_file_is_in_the_canonical_layout(self, package_file: Path) -> None:
        """The file `export-transcript` writes has the one layout a package may have."""
        assert_canonical(package_file.read_bytes())

    def test_a_package_with_a_field_more_does_not_verify(
        self, served: tuple[Path, str], package_file: Path, tmp_path: Path
    ) -> None:
        """The review's forge1 through the command: a moderator's note and a translation
        added, the HTML rendered to match, checked with the operator's key: exit 1 (it was 0),
        naming the field."""
        data_dir, _ = served

        def forge(doc: dict[str, Any]) -> None:
            doc["messages"][0]["translation"] = "Forged: I know where you live"
            doc["moderator_note"] = "forged: B threatened A"

        path = tmp_path / "forged1.zip"
        path.write_bytes(edited(package_file.read_bytes(), forge))
        result = logwarden("verify-transcript", str(path), "--data-dir", str(data_dir))
        assert result.returncode == 1, result.stdout
        assert "'moderator_note' at its top level" in flat(result.stderr)

    def test_an_endless_file_is_refused_unread(self) -> None:
        """`verify-transcript /dev/zero`: it reads no further than a package can be (no
        MemoryError), and says it is not one."""
        result = logwarden("verify-transcript", "/dev/zero")
        assert "Traceback" not in result.stderr, result.stderr
        assert result.returncode == 1
        assert "bytes, more than any package: not one" in flat(result.stderr)

    def test_a_long_key_is_a_malformed_key(self, package_file: Path) -> None:
        """A --key of 300 characters without "+" (so perhaps a path, too long to be one):
        'malformed', not OSError "File name too long"."""
        result = logwarden("verify-transcript", str(package_file), "--key", "k" * 300)
        assert "Traceback" not in result.stderr, result.stderr
        assert result.returncode == 1
        assert "the verifier key is malformed" in flat(result.stderr)


class TestSignerTrust:
    """The exit status says whether the signer was checked: 0 only against a key the operator
    publishes (--key, or --data-dir's), 3 for a package checked with its own key alone."""

    def test_without_a_key_the_signer_is_unknown(self, package_file: Path) -> None:
        """No --key and no --data-dir: the package holds together, exit 3, 'signer unknown'."""
        result = logwarden("verify-transcript", str(package_file))
        assert result.returncode == 3, result.stdout + result.stderr
        assert "signer unknown" in result.stdout
        assert "unverified signer" in flat(result.stderr)

    def test_the_data_directorys_key_is_trusted(
        self, served: tuple[Path, str], package_file: Path
    ) -> None:
        """--data-dir (or LOGWARDEN_DATA_DIR) gives the operator's key: exit 0."""
        data_dir, _ = served
        for args, env in (
            (["--data-dir", str(data_dir)], None),
            ([], {"LOGWARDEN_DATA_DIR": str(data_dir)}),
        ):
            result = logwarden("verify-transcript", str(package_file), *args, env=env)
            assert result.returncode == 0, result.stderr
            assert "transcript verified" in result.stdout

    def test_a_package_re_signed_with_its_own_key_is_not_verified(
        self, served: tuple[Path, str], package_file: Path, tmp_path: Path
    ) -> None:
        """A message rewritten and the package re-signed by a key of the forger's own: exit 3
        without a key (not 0, as before), 1 against the operator's key, and 0 only when the
        package's key is trusted explicitly."""
        data_dir, _ = served
        forged = tmp_path / "forged.zip"
        forged.write_bytes(forge(package_file.read_bytes(), edit_second))
        assert logwarden("verify-transcript", str(forged)).returncode == 3
        operator = logwarden("verify-transcript", str(forged), "--data-dir", str(data_dir))
        assert operator.returncode == 1
        assert "does NOT verify" in operator.stderr
        trusted = logwarden("verify-transcript", str(forged), "--trust-package-key")
        assert trusted.returncode == 0
        assert "the signer was not checked" in trusted.stderr
