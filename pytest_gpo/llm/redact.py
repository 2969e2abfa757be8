"""Secrets out of error texts: what a provider says is reported, never a key it echoed."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from pytest_gpo.llm.types import SECRET_PARAMS, Request

_MAX_ERROR_CHARS = 1000
_SECRET_PATTERNS = (
    (re.compile(r"\bsk-[A-Za-z0-9_\-*]{6,}"), "sk-***"),
    (re.compile(r"(?i)\b(bearer\s+|api[_-]?key[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"), r"\1***"),
)


def _secrets(params: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for name in SECRET_PARAMS:
        value = params.get(name)
        if isinstance(value, Mapping):
            found.extend(str(v) for v in value.values())
        elif value:
            found.append(str(value))
    for name, value in os.environ.items():
        if value and name.endswith(("_API_KEY", "_KEY", "_TOKEN", "_SECRET")):
            found.append(value)
    return sorted({s for s in found if len(s) >= 6}, key=len, reverse=True)


def scrub(text: str) -> str:
    """``text`` without ``*_KEY``-style environment values and key-like strings."""
    for name, value in os.environ.items():
        if len(value) >= 6 and name.endswith(("_API_KEY", "_KEY", "_TOKEN", "_SECRET")):
            text = text.replace(value, "***")
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


#: litellm's own loggers: releases 1.80 to at least 1.100 log every call's keyword arguments,
#: ``api_key`` included, at DEBUG (so into ``--log-file``, captured logs and JUnit).
LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")


class SecretFilter(logging.Filter):
    """Takes secrets out of litellm's log records before any handler formats them."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message (and exception text) without secrets; keep it."""
        try:
            message = record.getMessage()
        except Exception:
            return True
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        return True


SECRET_FILTER = SecretFilter()


def redact(message: str, request: Request) -> str:
    """The message without secrets (request params, ``*_KEY`` env vars, key-like strings)."""
    for secret in _secrets(request.params):
        message = message.replace(secret, "***")
    for pattern, replacement in _SECRET_PATTERNS:
        message = pattern.sub(replacement, message)
    message = " ".join(message.split())
    if len(message) > _MAX_ERROR_CHARS:
        message = message[: _MAX_ERROR_CHARS - 3] + "..."
    return message
