"""`logwarden scan`: the safety engine outside the chat, in the stable format docs/safety.md
documents, with a clear error in place of any line it cannot read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


class TestInputAndOutput:
    def test_a_byte_order_mark_is_not_part_of_the_first_line(self, tmp_path: Path) -> None:
        """A UTF-8 BOM at the start of a file neither breaks JSONL nor shifts offsets."""
        jsonl = tmp_path / "export.jsonl"
        jsonl.write_bytes(b"\xef\xbb\xbf" + json.dumps({"text": "im 13"}).encode() + b"\n")
        text = tmp_path / "plain.txt"
        text.write_bytes(b"\xef\xbb\xbfim 13\n")
        for source in (jsonl, text):
            result = logwarden("scan", str(source))
            assert result.returncode == 0, result.stderr
            (finding,) = json.loads(result.stdout)["findings"]
            assert (finding["kind"], finding["start"], finding["end"]) == ("age", 3, 5)

    def test_only_lf_and_crlf_end_a_line(self) -> None:
        """A lone CR is text (offsets count it); LF and CR LF end lines."""
        result = scan(stdin="a\rim 13\r\nhi\n")
        assert result.returncode == 0, result.stderr
        first, second = (json.loads(line) for line in result.stdout.splitlines())
        assert [(f["kind"], f["start"], f["end"]) for f in first["findings"]] == [("age", 5, 7)]
        assert second == {"findings": []}

    def test_dash_is_standard_input(self) -> None:
        """`scan -` reads standard input, as without a file."""
        result = scan("-", stdin="call me at 415 555 0199\n")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["findings"][0]["kind"] == "phone"

    def test_the_jsonl_suffix_is_read_in_any_case(self, tmp_path: Path) -> None:
        """EXPORT.JSONL is JSONL too."""
        source = tmp_path / "EXPORT.JSONL"
        source.write_text(json.dumps({"text": "my ip is 192.0.2.7"}) + "\n")
        result = logwarden("scan", str(source))
        assert result.returncode == 0, result.stderr
        assert [f["kind"] for f in json.loads(result.stdout)["findings"]] == ["ip"]

    def test_a_huge_integer_is_no_text_not_a_python_error(self) -> None:
        """A 5,000-digit `text` is named as not a string; Python's int limit is not shown."""
        result = scan("--jsonl", stdin='{"text": ' + "9" * 5000 + "}\n")
        assert result.returncode == 1
        assert json.loads(result.stdout) == {"error": 'line 1: no "text" string'}
        assert "digits" not in result.stdout + result.stderr

    def test_a_missing_file_is_named(self, tmp_path: Path) -> None:
        """A file that cannot be read is a usage error naming it."""
        result = logwarden("scan", str(tmp_path / "missing.txt"))
        assert result.returncode == 2
        assert "cannot read" in result.stderr and "missing.txt" in result.stderr

    def test_a_reader_that_leaves_ends_it_quietly(self, tmp_path: Path) -> None:
        """Piped to `head -1`: the scan stops with status 141 (SIGPIPE) and says nothing."""
        source = tmp_path / "many.txt"
        source.write_text("hello there\n" * 50_000)  # far more output than a pipe holds
        process = subprocess.Popen(
            [sys.executable, "-m", "logwarden", "scan", str(source)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdout is not None and process.stderr is not None
        assert json.loads(process.stdout.readline()) == {"findings": []}
        process.stdout.close()
        stderr = process.stderr.read().decode()
        assert process.wait(timeout=60) == 141
        assert stderr == ""

    @pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
    def test_a_full_disk_is_a_write_error(self, tmp_path: Path) -> None:
        """Output that cannot be written (ENOSPC) is reported as such, status 1."""
        source = tmp_path / "some.txt"
        source.write_text("hello\n" * 1000)
        with open("/dev/full", "w") as full:
            result = subprocess.run(
                [sys.executable, "-m", "logwarden", "scan", str(source)],
                stdout=full,
                stderr=subprocess.PIPE,
                text=True,
                timeout=60,
                check=False,
            )
        assert result.returncode == 1
        assert "could not write the output" in result.stderr
        assert "Traceback" not in result.stderr and "cannot read" not in result.stderr

    def test_help_shows_its_brackets(self) -> None:
        """The help text keeps "[default: standard input]" and the conversation shape, which
        Rich markup would otherwise swallow."""
        result = logwarden("scan", "--help", env={"COLUMNS": "200", "TERM": "dumb"})
        assert result.returncode == 0, result.stderr
        assert "[default: standard input]" in result.stdout
        assert '{"messages": [[sender, text], ...]}' in result.stdout
