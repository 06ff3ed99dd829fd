"""Parsing and validating client frames (docs/protocol.md), and encoding server frames."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logwarden.chat.protocol import (
    MAX_REPORT_COMMENT_CHARS,
    REPORT_REASONS,
    ClientFrame,
    Join,
    Limits,
    Next,
    Pong,
    Report,
    SendMessage,
    Stop,
    Typing,
    encode,
    parse_frame,
)
from logwarden.config import ChatSettings
from logwarden.errors import LogwardenError, ProtocolError

FULLWIDTH_CHESS = "\uff43\uff48\uff45\uff53\uff53"
PROTOCOL_DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

# The server's defaults, built the way the server builds them.
_DEFAULTS = ChatSettings()
LIMITS = Limits(
    max_frame_bytes=_DEFAULTS.max_frame_bytes,
    max_message_chars=_DEFAULTS.max_message_chars,
    max_interests=_DEFAULTS.max_interests,
    max_interest_chars=_DEFAULTS.max_interest_chars,
)
# Room for the deeply nested frames, which are far over the default frame limit.
ROOMY = Limits(
    max_frame_bytes=1_000_000,
    max_message_chars=LIMITS.max_message_chars,
    max_interests=LIMITS.max_interests,
    max_interest_chars=LIMITS.max_interest_chars,
)


def frame(**fields: Any) -> str:
    return json.dumps(fields)


def error_of(raw: str | bytes, limits: Limits = LIMITS) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        parse_frame(raw, limits)
    return info.value


def outcome(raw: str | bytes, limits: Limits = LIMITS) -> ClientFrame | ProtocolError:
    """The parsed frame, or the ProtocolError; any other exception propagates (and fails)."""
    try:
        return parse_frame(raw, limits)
    except ProtocolError as exc:
        return exc


def code_of(raw: str | bytes, limits: Limits = LIMITS) -> str:
    return error_of(raw, limits).code


class TestValidFrames:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ('{"type":"join"}', Join(())),
            ('{"type":"join","mode":"text","interests":["chess"]}', Join(("chess",))),
            ('{"type":"next"}', Next(None)),
            ('{"type":"next","interests":[]}', Next(())),
            ('{"type":"next","interests":["Jazz"]}', Next(("jazz",))),
            ('{"type":"message","text":"hi!"}', SendMessage("hi!")),
            ('{"type":"typing","active":true}', Typing(True)),
            ('{"type":"typing","active":false}', Typing(False)),
            ('{"type":"stop"}', Stop()),
            ('{"type":"pong"}', Pong()),
            ('{"type":"report","reason":"spam"}', Report("spam", None)),
        ],
    )
    def test_each_client_type_parses(self, raw: str, expected: ClientFrame) -> None:
        """Every client frame type of the protocol parses to its frame object."""
        assert parse_frame(raw, LIMITS) == expected

    def test_bytes_frames_parse_like_text(self) -> None:
        """A binary frame holding UTF-8 JSON parses exactly like the same text frame."""
        raw = '{"type":"message","text":"grüße 😀"}'
        assert parse_frame(raw.encode(), LIMITS) == parse_frame(raw, LIMITS)

    def test_unknown_fields_are_ignored(self) -> None:
        """Fields the protocol does not define (a client's correlation id) are ignored."""
        assert parse_frame('{"type":"stop","id":7,"x":{"y":[1]}}', LIMITS) == Stop()

    def test_message_text_is_trimmed(self) -> None:
        """Message text is stored without surrounding whitespace."""
        assert parse_frame(frame(type="message", text="  hello \n"), LIMITS) == SendMessage("hello")

    def test_escaped_surrogate_pair_is_one_character(self) -> None:
        """A JSON-escaped surrogate pair decodes to the one character it encodes."""
        assert parse_frame('{"type":"message","text":"\\ud83d\\ude00"}', LIMITS) == SendMessage(
            "\U0001f600"
        )


class TestFrameTooLarge:
    def test_text_over_limit(self) -> None:
        """A text frame over max_frame_bytes is refused before it is parsed."""
        raw = frame(type="message", text="a" * LIMITS.max_frame_bytes)
        assert code_of(raw) == "frame_too_large"

    def test_bytes_over_limit(self) -> None:
        """A binary frame over max_frame_bytes is refused, even when it is not UTF-8."""
        assert code_of(b"\xff" * (LIMITS.max_frame_bytes + 1)) == "frame_too_large"

    def test_text_is_measured_in_utf8_bytes(self) -> None:
        """Text frames are measured in UTF-8 bytes, not characters."""
        small = Limits(
            max_frame_bytes=64, max_message_chars=1000, max_interests=10, max_interest_chars=32
        )
        prefix = '{"type":"message","text":"'
        fits = prefix + "a" * (64 - len(prefix) - 2) + '"}'
        assert len(fits.encode()) == 64
        assert parse_frame(fits, small) == SendMessage("a" * (64 - len(prefix) - 2))
        two_byte = prefix + "é" * (64 - len(prefix) - 2) + '"}'  # as many chars, more bytes
        assert code_of(two_byte, small) == "frame_too_large"

    def test_frame_at_exact_limit_is_accepted(self) -> None:
        """A frame of exactly max_frame_bytes bytes is not too large."""
        raw = b'{"type":"stop","pad":"' + b"x" * 100 + b'"}'
        exact = Limits(
            max_frame_bytes=len(raw), max_message_chars=10, max_interests=1, max_interest_chars=1
        )
        assert parse_frame(raw, exact) == Stop()

    def test_message_names_size_and_limit(self) -> None:
        """The error message states the frame's size and the limit."""
        raw = b"x" * (LIMITS.max_frame_bytes + 5)
        message = error_of(raw).message
        assert str(LIMITS.max_frame_bytes + 5) in message
        assert str(LIMITS.max_frame_bytes) in message


class TestInvalidUtf8:
    @pytest.mark.parametrize(
        "raw",
        [
            b'{"type":"stop","x":"\xff"}',
            b"\xc0\xaf",  # overlong encoding of "/"
            b'{"type":"message","text":"\xed\xa0\x80"}',  # an encoded surrogate
            b'{"type":"message","text":"\xe2\x82"}',  # truncated sequence
        ],
    )
    def test_binary_frame_that_is_not_utf8(self, raw: bytes) -> None:
        """A binary frame that is not valid UTF-8 gives invalid_utf8."""
        assert code_of(raw) == "invalid_utf8"

    def test_escaped_lone_surrogate_in_text(self) -> None:
        """Message text with a JSON-escaped lone surrogate gives invalid_utf8."""
        assert code_of('{"type":"message","text":"hi \\ud800"}') == "invalid_utf8"

    def test_raw_lone_surrogate_in_text(self) -> None:
        """A text frame carrying an unescaped lone surrogate in the message gives invalid_utf8."""
        assert code_of('{"type":"message","text":"hi \ud800"}') == "invalid_utf8"

    def test_lone_surrogate_in_report_comment(self) -> None:
        """A report comment with a lone surrogate gives invalid_utf8."""
        raw = '{"type":"report","reason":"spam","comment":"\\udfff"}'
        assert code_of(raw) == "invalid_utf8"

    def test_message_names_the_field(self) -> None:
        """The invalid_utf8 message names the field holding the surrogate."""
        assert (
            '"comment"' in error_of('{"type":"report","reason":"spam","comment":"\\ud800"}').message
        )


class TestInvalidJson:
    @pytest.mark.parametrize(
        "raw",
        [
            "",
            "   ",
            "not json",
            '{"type":"stop"',
            "{'type':'stop'}",
            '{"type":"stop"}}',
            "\ufeff{}",
        ],
    )
    def test_not_json(self, raw: str) -> None:
        """Text that is not one JSON document gives invalid_json."""
        assert code_of(raw) == "invalid_json"

    @pytest.mark.parametrize(
        "raw", ["[" * 100_000, '{"a":' * 100_000, "[" * 100_000 + "]" * 100_000]
    )
    def test_nested_too_deep(self, raw: str) -> None:
        """JSON nested too deeply for the parser gives invalid_json, not a RecursionError."""
        error = error_of(raw, ROOMY)
        assert error.code == "invalid_json"

    def test_huge_integer_is_a_protocol_error(self) -> None:
        """An integer too long for Python's int conversion is ignored or refused, never a crash."""
        raw = '{"type":"stop","x":' + "1" * 5000 + "}"
        assert len(raw) < LIMITS.max_frame_bytes
        result = outcome(raw)
        if isinstance(result, ProtocolError):
            assert result.code == "invalid_json"
        else:
            assert result == Stop()


class TestInvalidFrame:
    @pytest.mark.parametrize("raw", ["[]", '["stop"]', "1", '"stop"', "null", "true", "NaN"])
    def test_not_an_object(self, raw: str) -> None:
        """JSON that is not an object gives invalid_frame."""
        assert code_of(raw) == "invalid_frame"

    @pytest.mark.parametrize(
        "raw",
        [
            "{}",
            '{"kind":"stop"}',
            '{"type":null}',
            '{"type":1}',
            '{"type":["stop"]}',
            '{"type":{}}',
        ],
    )
    def test_type_missing_or_not_a_string(self, raw: str) -> None:
        """An object without a string "type" gives invalid_frame."""
        assert code_of(raw) == "invalid_frame"


class TestUnknownType:
    @pytest.mark.parametrize("kind", ["", "hello", "JOIN", "Stop", "ping", "matched", "join "])
    def test_unknown_type(self, kind: str) -> None:
        """A "type" that is not one of the client types (compared exactly) gives unknown_type."""
        assert code_of(frame(type=kind)) == "unknown_type"

    def test_message_quotes_at_most_40_characters(self) -> None:
        """The unknown_type message quotes only the start of a long type."""
        message = error_of(frame(type="z" * 5000)).message
        assert "z" * 40 in message
        assert "z" * 41 not in message


class TestInvalidField:
    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"type": "join", "mode": "video"}, "mode"),
            ({"type": "join", "mode": None}, "mode"),
            ({"type": "join", "interests": "chess"}, "interests"),
            ({"type": "join", "interests": None}, "interests"),
            ({"type": "join", "interests": {"chess": True}}, "interests"),
            ({"type": "join", "interests": ["chess", 1]}, "interests"),
            ({"type": "next", "interests": "chess"}, "interests"),
            ({"type": "next", "interests": [["chess"]]}, "interests"),
            ({"type": "message"}, "text"),
            ({"type": "message", "text": None}, "text"),
            ({"type": "message", "text": 5}, "text"),
            ({"type": "message", "text": ["hi"]}, "text"),
            ({"type": "typing"}, "active"),
            ({"type": "typing", "active": "true"}, "active"),
            ({"type": "typing", "active": 1}, "active"),
            ({"type": "typing", "active": None}, "active"),
            ({"type": "report"}, "reason"),
            ({"type": "report", "reason": "rude"}, "reason"),
            ({"type": "report", "reason": "SPAM"}, "reason"),
            ({"type": "report", "reason": 3}, "reason"),
            ({"type": "report", "reason": "spam", "comment": 5}, "comment"),
            ({"type": "report", "reason": "spam", "comment": ["x"]}, "comment"),
        ],
    )
    def test_wrong_type_or_value(self, fields: dict[str, Any], field: str) -> None:
        """A field with the wrong type or value gives invalid_field, and the message names it."""
        error = error_of(json.dumps(fields))
        assert error.code == "invalid_field"
        assert field in error.message

    @pytest.mark.parametrize("reason", [[], ["spam"], {}, {"spam": 1}])
    def test_unhashable_report_reason(self, reason: object) -> None:
        """A report reason that is a list or an object gives invalid_field, not a TypeError."""
        error = error_of(json.dumps({"type": "report", "reason": reason}))
        assert error.code == "invalid_field"
        assert "reason" in error.message

    def test_report_comment_over_limit(self) -> None:
        """A report comment over 500 characters (after trimming) gives invalid_field."""
        raw = frame(type="report", reason="spam", comment="c" * (MAX_REPORT_COMMENT_CHARS + 1))
        error = error_of(raw)
        assert error.code == "invalid_field"
        assert "comment" in error.message


class TestMessageText:
    def test_over_limit(self) -> None:
        """Text of max_message_chars + 1 characters gives message_too_long."""
        raw = frame(type="message", text="a" * (LIMITS.max_message_chars + 1))
        error = error_of(raw)
        assert error.code == "message_too_long"
        assert str(LIMITS.max_message_chars) in error.message

    def test_at_limit(self) -> None:
        """Text of exactly max_message_chars characters is accepted."""
        text = "a" * LIMITS.max_message_chars
        assert parse_frame(frame(type="message", text=text), LIMITS) == SendMessage(text)

    def test_limit_counts_after_trimming(self) -> None:
        """Surrounding whitespace does not count towards the limit."""
        text = "a" * LIMITS.max_message_chars
        raw = frame(type="message", text=f"   {text}\n\n")
        assert parse_frame(raw, LIMITS) == SendMessage(text)

    def test_limit_counts_characters_not_bytes(self) -> None:
        """The limit is in characters: multi-byte characters count once."""
        text = "ü" * LIMITS.max_message_chars
        assert parse_frame(frame(type="message", text=text), LIMITS) == SendMessage(text)

    @pytest.mark.parametrize("text", ["", " ", "\n\t \r", "\u3000", "\u00a0\u2003"])
    def test_whitespace_only_is_empty(self, text: str) -> None:
        """Text that is empty after trimming gives empty_message."""
        assert code_of(frame(type="message", text=text)) == "empty_message"


class TestInterests:
    def parse(self, interests: list[str], limits: Limits = LIMITS) -> tuple[str, ...]:
        result = parse_frame(frame(type="join", interests=interests), limits)
        assert isinstance(result, Join)
        return result.interests

    def test_case_and_width_variants_are_one_interest(self) -> None:
        """ "Chess", "CHESS" and fullwidth "chess" (U+FF43...) normalise to one interest."""
        assert self.parse(["Chess", "CHESS", FULLWIDTH_CHESS]) == ("chess",)

    def test_casefold_not_just_lower(self) -> None:
        """Interests are case-folded, so "Straße" and "STRASSE" meet."""
        assert self.parse(["Straße", "STRASSE"]) == ("strasse",)

    @pytest.mark.parametrize(
        "invisible", ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\x00"]
    )
    def test_invisible_characters_are_dropped(self, invisible: str) -> None:
        """Zero-width and control characters inside an interest are dropped."""
        assert self.parse([f"ch{invisible}ess", "chess"]) == ("chess",)

    def test_whitespace_is_collapsed(self) -> None:
        """Whitespace inside an interest is trimmed and collapsed to single spaces."""
        assert self.parse(["  jazz \t  music "]) == ("jazz music",)

    def test_duplicates_are_dropped_keeping_first_order(self) -> None:
        """Duplicates are dropped and the first occurrence keeps its place."""
        assert self.parse(["jazz", "chess", "JAZZ", "go", "Chess"]) == ("jazz", "chess", "go")

    def test_at_most_max_interests(self) -> None:
        """max_interests interests are accepted; one more gives invalid_field."""
        names = [f"topic {i}" for i in range(LIMITS.max_interests + 1)]
        assert len(self.parse(names[:-1])) == LIMITS.max_interests
        assert code_of(frame(type="join", interests=names)) == "invalid_field"

    def test_length_limit(self) -> None:
        """An interest of max_interest_chars is accepted; one character more is invalid_field."""
        longest = "a" * LIMITS.max_interest_chars
        assert self.parse([longest]) == (longest,)
        error = error_of(frame(type="join", interests=[longest + "a"]))
        assert error.code == "invalid_field"
        assert str(LIMITS.max_interest_chars) in error.message

    def test_length_is_measured_after_normalising(self) -> None:
        """Padding and fullwidth letters do not count against the length limit."""
        longest = "a" * LIMITS.max_interest_chars
        assert self.parse(["   " + longest + "   "]) == (longest,)
        assert self.parse(["\uff41" * LIMITS.max_interest_chars]) == (longest,)

    @pytest.mark.parametrize("empty", ["", "   ", "\u200b", "\u200b \u200d"])
    def test_empty_interest_is_invalid(self, empty: str) -> None:
        """An interest that is empty after normalising gives invalid_field."""
        assert code_of(frame(type="join", interests=["chess", empty])) == "invalid_field"

    def test_next_interests_are_normalised_too(self) -> None:
        """The interests of a next frame are normalised like those of a join."""
        assert parse_frame(
            frame(type="next", interests=["CHESS", FULLWIDTH_CHESS]), LIMITS
        ) == Next(("chess",))


class TestReport:
    @pytest.mark.parametrize("reason", sorted(REPORT_REASONS))
    def test_each_reason_is_accepted(self, reason: str) -> None:
        """Each documented report reason is accepted."""
        assert parse_frame(frame(type="report", reason=reason), LIMITS) == Report(reason, None)

    def test_reasons_match_the_protocol_document(self) -> None:
        """The accepted reasons are exactly those listed in docs/protocol.md."""
        row = next(
            line for line in PROTOCOL_DOC.read_text().splitlines() if line.startswith("| `report`")
        )
        documented = set(re.findall(r"`(\w+)`", row.split("one of", 1)[1].split(";")[0]))
        assert documented == REPORT_REASONS

    def test_comment_is_trimmed(self) -> None:
        """A comment is kept without surrounding whitespace."""
        raw = frame(type="report", reason="threats", comment="  said they know where I live ")
        assert parse_frame(raw, LIMITS) == Report("threats", "said they know where I live")

    @pytest.mark.parametrize("comment", [None, "", "   "])
    def test_empty_comment_is_none(self, comment: str | None) -> None:
        """A missing, null or blank comment is recorded as no comment."""
        raw = frame(type="report", reason="other", comment=comment)
        assert parse_frame(raw, LIMITS) == Report("other", None)

    def test_comment_at_limit(self) -> None:
        """A comment of exactly 500 characters is accepted."""
        comment = "c" * MAX_REPORT_COMMENT_CHARS
        raw = frame(type="report", reason="spam", comment=comment)
        assert parse_frame(raw, LIMITS) == Report("spam", comment)


class TestErrorCodesAreDocumented:
    CODES = (
        "frame_too_large",
        "invalid_utf8",
        "invalid_json",
        "invalid_frame",
        "unknown_type",
        "invalid_field",
        "message_too_long",
        "empty_message",
    )

    @pytest.mark.parametrize("code", CODES)
    def test_code_is_in_the_error_table(self, code: str) -> None:
        """Every code parse_frame produces appears in the error table of docs/protocol.md."""
        assert f"| `{code}` |" in PROTOCOL_DOC.read_text()

    def test_protocol_error_is_a_logwarden_error(self) -> None:
        """ProtocolError carries its code and message and derives from LogwardenError."""
        error = error_of("[]")
        assert isinstance(error, LogwardenError)
        assert str(error) == error.message


class TestEncode:
    def test_compact_json_with_type_first(self) -> None:
        """A server frame is compact JSON with "type" first and the fields after it."""
        assert (
            encode("sent", seq=1, at=1764061200123) == '{"type":"sent","seq":1,"at":1764061200123}'
        )

    def test_no_fields(self) -> None:
        """A frame without fields is just its type."""
        assert encode("ping") == '{"type":"ping"}'

    def test_non_ascii_is_kept_literally(self) -> None:
        """Non-ASCII text is written as is, not as \\u escapes."""
        encoded = encode("message", text="grüße 😀", seq=2, at=0)
        assert "grüße 😀" in encoded
        assert json.loads(encoded) == {"type": "message", "text": "grüße 😀", "seq": 2, "at": 0}

    def test_nested_fields(self) -> None:
        """Lists and objects are encoded as JSON."""
        encoded = encode("hello", protocol=1, limits={"max_message_chars": 1000}, tags=["a"])
        assert json.loads(encoded) == {
            "type": "hello",
            "protocol": 1,
            "limits": {"max_message_chars": 1000},
            "tags": ["a"],
        }


# -- properties -------------------------------------------------------------------------------

_any_char = st.characters() | st.characters(categories=["Cs"])  # lone surrogates included
_any_text = st.text(_any_char, max_size=40)
_json_scalar = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _any_text
)
_json_value = st.recursive(
    _json_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_any_text, inner, max_size=4),
    max_leaves=10,
)
_frames = st.fixed_dictionaries(
    {"type": st.sampled_from(["join", "next", "message", "typing", "stop", "report", "pong"])},
    optional={
        "mode": st.just("text") | _json_value,
        "interests": st.lists(_any_text, max_size=12) | _json_value,
        "text": _any_text | _json_value,
        "active": st.booleans() | _json_value,
        "reason": st.sampled_from(sorted(REPORT_REASONS)) | _json_value,
        "comment": _any_text | _json_value,
    },
)


@st.composite
def _serialised_frames(draw: st.DrawFn) -> str | bytes:
    document = draw(_frames)
    text = json.dumps(document, ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()):
        return text
    return text.encode("utf-8", "surrogatepass")  # encoded surrogates are invalid UTF-8


def _check(raw: str | bytes) -> None:
    parsed = outcome(raw)
    if isinstance(parsed, ProtocolError):
        assert parsed.code in TestErrorCodesAreDocumented.CODES
        return
    if isinstance(parsed, SendMessage):
        assert parsed.text.encode("utf-8")
        assert parsed.text == parsed.text.strip()
        assert 1 <= len(parsed.text) <= LIMITS.max_message_chars
    elif isinstance(parsed, Join | Next) and parsed.interests is not None:
        assert len(parsed.interests) <= LIMITS.max_interests
        assert len(set(parsed.interests)) == len(parsed.interests)
        for interest in parsed.interests:
            interest.encode("utf-8")
            assert 1 <= len(interest) <= LIMITS.max_interest_chars
    elif isinstance(parsed, Report):
        assert parsed.reason in REPORT_REASONS
        if parsed.comment is not None:
            parsed.comment.encode("utf-8")


class TestProperties:
    @settings(max_examples=300, deadline=None)
    @given(raw=st.text(_any_char) | st.binary())
    def test_arbitrary_input_gives_frame_or_protocol_error(self, raw: str | bytes) -> None:
        """Any text or bytes give a frame or a ProtocolError with a documented code."""
        _check(raw)

    @settings(max_examples=500, deadline=None)
    @given(raw=_serialised_frames())
    def test_frame_shaped_input_gives_frame_or_protocol_error(self, raw: str | bytes) -> None:
        """Any JSON object with a client type gives a valid frame or a ProtocolError."""
        _check(raw)

    @settings(max_examples=200, deadline=None)
    @given(text=_any_text)
    def test_encoded_message_round_trips(self, text: str) -> None:
        """A message frame built with encode parses back to its trimmed text, or is refused."""
        raw = encode("message", text=text)
        _check(raw)
        trimmed = text.strip()
        encodable = trimmed.encode("utf-8", "surrogatepass").decode("utf-8", "replace") == trimmed
        if trimmed and encodable:
            assert parse_frame(raw, LIMITS) == SendMessage(trimmed)
