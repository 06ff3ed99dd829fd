"""The server's own logs carry no raw IP address (each becomes its pseudonym) and no receipt.

Our code logs pseudonyms and session ids only; this filter is the safety net for everything
else that logs (uvicorn's access and error logs name the client address), applied to every
record before any handler formats it.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable
from typing import Any

__all__ = ["IPRedactingFilter", "log_config"]

# Candidates only; each is confirmed by ``ipaddress`` before it is replaced, so times like
# "12:30:45" or version numbers stay as they are.
_IP_CANDIDATE = re.compile(
    r"(?<![\w.:])(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}"
    r"(?:\d{1,3}(?:\.\d{1,3}){3})?)(?!\w|\.\d)"
)


# Receipt tokens travel in URL paths (GET /receipt/{token}); whoever reads the access log
# must not be able to use them. A mistyped path (/receipt//{token}, /Receipt/{token}) is a 404
# but still carries a live token, so it is redacted too.
_RECEIPT_PATH = re.compile(r"/receipt/+[^\s\"?/]+", re.IGNORECASE)


class IPRedactingFilter(logging.Filter):
    def __init__(self, pseudonym: Callable[[str], str]) -> None:
        super().__init__()
        self._pseudonym = pseudonym

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        # A traceback can name an address or a path too (an exception message, a scope's repr).
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        return True

    def _redact(self, text: str) -> str:
        return _IP_CANDIDATE.sub(self._replace, _RECEIPT_PATH.sub("/receipt/…", text))

    def _replace(self, match: re.Match[str]) -> str:
        text = match.group(0)
        try:
            ipaddress.ip_address(text)
        except ValueError:
            return text
        return "ip:" + self._pseudonym(text)[:12]


def log_config(*, level: str, pseudonym: Callable[[str], str]) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server, uvicorn's loggers included."""
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "plain",
        "filters": ["redact_ips"],
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact_ips": {"()": IPRedactingFilter, "pseudonym": pseudonym}},
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        },
        "handlers": {"stderr": handler},
        "loggers": {
            "logwarden": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }
