"""Frames of the chat protocol (docs/protocol.md): parsing, validation, construction.

Pure functions, no I/O: the server calls ``parse_frame`` on every raw frame and gets a
``ClientFrame`` or a ``ProtocolError`` with the stable code the client will see.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from logwarden.errors import ProtocolError

__all__ = [
    "PROTOCOL_VERSION",
    "REPORT_REASONS",
    "ClientFrame",
    "Join",
    "Next",
    "Pong",
    "Report",
    "SendMessage",
    "State",
    "Stop",
    "Typing",
    "encode",
    "parse_frame",
]

PROTOCOL_VERSION = 1
REPORT_REASONS = frozenset(
    {"harassment", "hate", "sexual_content", "minor_safety", "threats", "spam", "other"}
)
MAX_REPORT_COMMENT_CHARS = 500
MAX_CHAT_ID_CHARS = 64


class State(Enum):
    IDLE = "idle"
    WAITING = "waiting"
    CHATTING = "chatting"


@dataclass(frozen=True, slots=True)
class Join:
    interests: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Next:
    interests: tuple[str, ...] | None  # None: the previous join's


@dataclass(frozen=True, slots=True)
class SendMessage:
    text: str
    confirm: bool = False  # send it although the server warned about personal information


@dataclass(frozen=True, slots=True)
class Cancel:
    """Drop the message the server warned about."""


@dataclass(frozen=True, slots=True)
class Typing:
    active: bool


@dataclass(frozen=True, slots=True)
class Stop:
    pass


@dataclass(frozen=True, slots=True)
class Report:
    reason: str
    comment: str | None
    chat: str | None = None  # the `chat` of `matched`; without it, the current or last chat


@dataclass(frozen=True, slots=True)
class Pong:
    pass


ClientFrame = Join | Next | SendMessage | Cancel | Typing | Stop | Report | Pong


@dataclass(frozen=True, slots=True)
class Limits:
    max_frame_bytes: int
    max_message_chars: int
    max_interests: int
    max_interest_chars: int


def parse_frame(raw: str | bytes, limits: Limits) -> ClientFrame:
    """Decode and validate one client frame; raises ``ProtocolError`` with a stable code."""
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    if size > limits.max_frame_bytes:
        raise ProtocolError(
            "frame_too_large",
            f"frame of {size} bytes is over the limit of {limits.max_frame_bytes}",
        )
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(
                "invalid_utf8", f"frame is not valid UTF-8 (byte {exc.start})"
            ) from None
    try:
        document = json.loads(raw)
    except RecursionError:
        raise ProtocolError("invalid_json", "frame is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ProtocolError(
            "invalid_json", f"frame is not valid JSON: {exc.msg} at {exc.pos}"
        ) from None
    except ValueError:  # an integer literal longer than sys.get_int_max_str_digits()
        raise ProtocolError("invalid_json", "frame holds a number too long to read") from None
    if not isinstance(document, dict):
        raise ProtocolError("invalid_frame", "frame must be a JSON object")
    kind = document.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("invalid_frame", 'frame needs a string field "type"')
    parser = _PARSERS.get(kind)
    if parser is None:
        raise ProtocolError("unknown_type", f"unknown frame type {kind[:40]!r}")
    try:
        return parser(document, limits)
    except ProtocolError as exc:
        exc.frame_type = kind
        raise


def frame_type(frame: ClientFrame) -> str:
    """The protocol name of a parsed frame's type."""
    return _TYPE_NAMES[type(frame)]


def encode(kind: str, **fields: Any) -> str:
    """One server frame as JSON text."""
    return json.dumps({"type": kind, **fields}, ensure_ascii=False, separators=(",", ":"))


def _parse_join(document: dict[str, Any], limits: Limits) -> Join:
    mode = document.get("mode", "text")
    if mode != "text":
        raise ProtocolError("invalid_field", '"mode" must be "text" (the only mode in protocol 1)')
    return Join(_interests(document.get("interests", []), limits))


def _parse_next(document: dict[str, Any], limits: Limits) -> Next:
    if "interests" not in document:
        return Next(None)
    return Next(_interests(document["interests"], limits))


def _parse_message(document: dict[str, Any], limits: Limits) -> SendMessage:
    text = _text(document, "text")
    text = text.strip()
    if not text:
        raise ProtocolError("empty_message", "message is empty")
    if len(text) > limits.max_message_chars:
        raise ProtocolError(
            "message_too_long",
            f"message of {len(text)} characters is over the limit of {limits.max_message_chars}",
        )
    confirm = document.get("confirm", False)
    if not isinstance(confirm, bool):
        raise ProtocolError("invalid_field", '"confirm" must be true or false')
    return SendMessage(text, confirm)


def _parse_cancel(_document: dict[str, Any], _limits: Limits) -> Cancel:
    return Cancel()


def _parse_typing(document: dict[str, Any], _limits: Limits) -> Typing:
    active = document.get("active")
    if not isinstance(active, bool):
        raise ProtocolError("invalid_field", '"active" must be true or false')
    return Typing(active)


def _parse_stop(_document: dict[str, Any], _limits: Limits) -> Stop:
    return Stop()


def _parse_pong(_document: dict[str, Any], _limits: Limits) -> Pong:
    return Pong()


def _parse_report(document: dict[str, Any], _limits: Limits) -> Report:
    reason = document.get("reason")
    if not isinstance(reason, str) or reason not in REPORT_REASONS:
        raise ProtocolError(
            "invalid_field", f'"reason" must be one of: {", ".join(sorted(REPORT_REASONS))}'
        )
    chat = None
    if document.get("chat") is not None:
        chat = _text(document, "chat")
        if len(chat) > MAX_CHAT_ID_CHARS:
            raise ProtocolError("invalid_field", '"chat" is not a chat id')
    if document.get("comment") is None:
        return Report(reason, None, chat)
    comment = _text(document, "comment").strip()
    if len(comment) > MAX_REPORT_COMMENT_CHARS:
        raise ProtocolError(
            "invalid_field", f'"comment" is over {MAX_REPORT_COMMENT_CHARS} characters'
        )
    return Report(reason, comment or None, chat)


def _text(document: dict[str, Any], field: str) -> str:
    value = document.get(field)
    if not isinstance(value, str):
        raise ProtocolError("invalid_field", f'"{field}" must be a string')
    try:
        # JSON may escape lone surrogates ("\ud800"): valid JSON, but no valid UTF-8 exists for
        # them, and the log must never hold text it cannot encode.
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ProtocolError("invalid_utf8", f'"{field}" contains unpaired surrogates') from None
    return value


def _interests(value: Any, limits: Limits) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ProtocolError("invalid_field", '"interests" must be a list of strings')
    if len(value) > limits.max_interests:
        raise ProtocolError("invalid_field", f"at most {limits.max_interests} interests")
    seen: dict[str, None] = {}
    for item in value:
        if not isinstance(item, str):
            raise ProtocolError("invalid_field", '"interests" must be a list of strings')
        interest = _normalise_interest(item)
        if not interest or len(interest) > limits.max_interest_chars:
            raise ProtocolError(
                "invalid_field",
                f"each interest must be 1 to {limits.max_interest_chars} characters",
            )
        seen[interest] = None
    return tuple(seen)


def _normalise_interest(item: str) -> str:
    # NFKC and casefold so "Chess", "CHESS" and fullwidth fullwidth letters meet; control and
    # format characters (zero-width joiners and the like) are dropped, whitespace collapsed.
    text = unicodedata.normalize("NFKC", item).casefold()
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    return " ".join(text.split())


_PARSERS: dict[str, Callable[[dict[str, Any], Limits], ClientFrame]] = {
    "join": _parse_join,
    "next": _parse_next,
    "message": _parse_message,
    "cancel": _parse_cancel,
    "typing": _parse_typing,
    "stop": _parse_stop,
    "report": _parse_report,
    "pong": _parse_pong,
}

_TYPE_NAMES: dict[type, str] = {
    Join: "join",
    Next: "next",
    SendMessage: "message",
    Cancel: "cancel",
    Typing: "typing",
    Stop: "stop",
    Report: "report",
    Pong: "pong",
}
