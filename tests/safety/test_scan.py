"""`logwarden scan`: the safety engine outside the chat, in the stable format docs/safety.md
documents, with a clear error in place of any line it cannot read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.test_cli import logwarden


def scan(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logwarden", "scan", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class TestMessages:
    def test_one_json_object_per_line_in_the_documented_form(self) -> None:
        """Each input line gives one {"findings": [...]} line, spans into that line."""
        lines = ["call me at 415 555 0199", "I'm 5 minutes away", "mail name at example dot com"]
        result = scan(stdin="\n".join(lines) + "\n")
        assert result.returncode == 0, result.stderr
        out = [json.loads(line) for line in result.stdout.splitlines()]
        assert len(out) == 3
        (phone,) = out[0]["findings"]
        assert set(phone) == {"kind", "start", "end", "confidence", "reason"}
        assert phone["kind"] == "phone"
        assert lines[0][phone["start"] : phone["end"]] == "415 555 0199"
        assert out[1] == {"findings": []}
        assert [f["kind"] for f in out[2]["findings"]] == ["email"]

    def test_jsonl_input_reads_the_text_field(self, tmp_path: Path) -> None:
        """A .jsonl file is read as objects with a `text` field."""
        source = tmp_path / "export.jsonl"
        source.write_text(json.dumps({"text": "my ip is 192.0.2.7", "id": 1}) + "\n")
        result = logwarden("scan", str(source))
        assert result.returncode == 0, result.stderr
        assert [f["kind"] for f in json.loads(result.stdout)["findings"]] == ["ip"]

    def test_a_bad_line_is_named_and_the_rest_are_scanned(self) -> None:
        """A line that is not a JSON object with text gives an error object in its place, the
        others their findings, and the exit status is 1."""
        stdin = '{"text": "call 415 555 0199"}\nnot json\n[1]\n{"text": 5}\n{"text": "hi"}\n'
        result = scan("--jsonl", stdin=stdin)
        assert result.returncode == 1
        out = [json.loads(line) for line in result.stdout.splitlines()]
        assert out[0]["findings"][0]["kind"] == "phone"
        assert out[1] == {"error": "line 2: not JSON"}
        assert out[2] == {"error": "line 3: not a JSON object"}
        assert out[3] == {"error": 'line 4: no "text" string'}
        assert out[4] == {"findings": []}

    def test_hostile_bytes_are_read_not_fatal(self, tmp_path: Path) -> None:
        """Invalid UTF-8, NUL and control characters are scanned like any text."""
        source = tmp_path / "odd.txt"
        source.write_bytes(b"\xff\xfe call 415 555 0199 \x00\x1b[2J\n" + b"9" * 20_000 + b"\n")
        result = logwarden("scan", str(source))
        assert result.returncode == 0, result.stderr
        out = [json.loads(line) for line in result.stdout.splitlines()]
        assert out[0]["findings"][0]["kind"] == "phone"
        assert len(out) == 2


class TestConversations:
    def test_each_conversation_gets_its_score_level_flags_and_reasons(self) -> None:
        """`--conversations` prints score, level, flags (escalations only) and reasons."""
        grooming = {
            "messages": [
                ["a", "how old are you"],
                ["b", "im 13"],
                ["a", "dont tell your parents about me ok"],
                ["a", "add me on snap"],
            ]
        }
        benign = {"messages": [["a", "hi"], ["b", "hey, im 27, you?"], ["a", "30, nice"]]}
        stdin = json.dumps(grooming) + "\n" + json.dumps(benign) + "\n"
        result = scan("--conversations", stdin=stdin)
        assert result.returncode == 0, result.stderr
        first, second = (json.loads(line) for line in result.stdout.splitlines())
        assert set(first) == {"score", "level", "flags", "reasons"}
        assert first["level"] == "high" and {"minor", "grooming"} <= set(first["flags"])
        assert all(
            set(r) == {"message", "sender", "indicator", "phrase", "why"} for r in first["reasons"]
        )
        assert second["flags"] == [] and second["level"] == "low"

    def test_a_malformed_conversation_is_named(self) -> None:
        """A conversation whose messages are not [sender, text] pairs is an error line."""
        result = scan("--conversations", stdin='{"messages": [["a"]]}\n{"messages": 3}\n')
        assert result.returncode == 1
        out = [json.loads(line) for line in result.stdout.splitlines()]
        assert out == [
            {"error": "line 1: message 0 is not [sender, text] (two strings)"},
            {"error": 'line 2: no "messages" list'},
        ]
