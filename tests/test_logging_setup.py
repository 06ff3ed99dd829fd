"""The server's log filter replaces every IP address with its pseudonym."""

from __future__ import annotations

import logging

import pytest

from logwarden.logging_setup import IPRedactingFilter


def fake_pseudonym(address: str) -> str:
    return "p" * 32 if ":" in address else "q" * 32


def redact(message: str, *args: object) -> str:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, message, args or None, None)
    assert IPRedactingFilter(fake_pseudonym).filter(record)
    return record.getMessage()


class TestIPRedactingFilter:
    @pytest.mark.parametrize(
        ("message", "expected"),
        [
            ("192.0.2.7:51234 - GET /", "ip:qqqqqqqqqqqq:51234 - GET /"),
            ("peer 2001:db8::1 joined", "peer ip:pppppppppppp joined"),
            ("mapped ::ffff:192.0.2.1 too", "mapped ip:pppppppppppp too"),
            ("full 2001:0db8:0000:0000:0000:0000:0000:0001.", "full ip:pppppppppppp."),
        ],
    )
    def test_addresses_are_replaced(self, message: str, expected: str) -> None:
        """IPv4 (with port), IPv6 and IPv4-mapped addresses become pseudonyms."""
        assert redact(message) == expected

    def test_addresses_in_arguments_are_replaced(self) -> None:
        """Addresses passed as %-arguments (as uvicorn logs them) are replaced too."""
        assert redact('%s - "WebSocket %s" [accepted]', "192.0.2.9:4000", "/ws") == (
            'ip:qqqqqqqqqqqq:4000 - "WebSocket /ws" [accepted]'
        )

    @pytest.mark.parametrize(
        "message",
        [
            "started at 12:30:45",
            "version 1.2.3.4.5 is out",
            "ratio 999.1.1.1 is no address",
            "session 4f2a9c0d1e7b3a6f",
            "took 3.25 ms",
        ],
    )
    def test_non_addresses_are_left_alone(self, message: str) -> None:
        """Times, versions, ids and numbers that are not valid addresses stay as they are."""
        assert redact(message) == message
