"""Secrets out of every text pytest-gpo shows or writes: errors, log records, reports.

What counts as a secret: the values of key and header parameters of a request (and of the
Router file's deployments), every environment variable named like a key (``*_API_KEY``,
``*_KEY``, ``*_TOKEN``, ``*_SECRET``, ``*_PASSWORD``, in any case, ``API_KEY`` alone too),
the user-info (``user:password@``) and query string of any URL (``redis://:pw@host``,
``http://host/v1?code=...``), and anything shaped like ``sk-...``, ``Bearer ...``,
``Basic ...`` or ``api_key=...``/``password: ...``. Each becomes ``***``.
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import functools
import html
import logging
import os
import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from pytest_gpo.invisible import without_invisible
from pytest_gpo.llm.types import SECRET_PARAMS, Request

_MAX_ERROR_CHARS = 1000
#: Secrets shorter than this are not replaced as plain text (they would match everywhere).
_MIN_SECRET = 6
_SECRET_PATTERNS = (
    # URL user-info: scheme://user:password@host (any scheme: http, redis, rediss, unix)
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@'\"<>]+@"), r"\1***@"),
    # URL query strings: everything after '?' up to whitespace, a quote or a bracket
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s?#'\"<>]*)\?[^\s'\"<>)\]]*"), r"\1?***"),
    (re.compile(r"\bsk-[A-Za-z0-9_\-*]{6,}"), "sk-***"),
    (
        re.compile(
            r"(?i)\b(bearer\s+|basic\s+|"
            r"(?:api[_-]?key|password|passwd|secret|access[_-]?token|auth[_-]?token)"
            r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"
        ),
        r"\1***",
    ),
)
_SECRET_SUFFIXES = ("_API_KEY", "_APIKEY", "_KEY", "_TOKEN", "_SECRET", "_PASSWORD", "_PASS")
_SECRET_NAMES = frozenset({"API_KEY", "APIKEY", "KEY", "TOKEN", "SECRET", "PASSWORD"})
_URL_NAMES = ("_URL", "_URI", "_BASE", "_ENDPOINT", "_HOST")

#: Secrets seen in trusted configuration this run (request keys, headers, Router keys).
_KNOWN: set[str] = set()
_KNOWN_LOCK = threading.Lock()


def secret_env_name(name: str) -> bool:
    """Whether an environment variable's name says it holds a secret (any letter case)."""
    upper = name.upper()
    return upper in _SECRET_NAMES or upper.endswith(_SECRET_SUFFIXES)


def url_secrets(url: str) -> list[str]:
    """The password, user name and query values of a URL (what must never be shown)."""
    try:
        parts = urlsplit(url.strip())
        found = [parts.password or "", parts.username or ""]
        found += [value for _, value in parse_qsl(parts.query, keep_blank_values=True)]
    except ValueError:
        return []
    return [s for s in found if len(s) >= _MIN_SECRET]


def remember(values: Iterable[Any]) -> None:
    """Add secrets from trusted configuration (a key, a header value, a URL with user-info)."""
    found: list[str] = []
    for value in values:
        if isinstance(value, Mapping):
            found.extend(str(v) for v in value.values())
        elif isinstance(value, str) and "://" in value:
            found.extend(url_secrets(value))
        elif value:
            found.append(str(value))
    with _KNOWN_LOCK:
        _KNOWN.update(s for s in found if len(s) >= _MIN_SECRET)


def remember_params(params: Mapping[str, Any]) -> None:
    """Remember the secrets of request parameters: keys, headers, user-info and query values."""
    values: list[Any] = [params.get(name) for name in SECRET_PARAMS]
    values += [v for k, v in params.items() if isinstance(v, str) and "://" in v]
    values += [v for k, v in params.items() if secret_env_name(str(k)) and isinstance(v, str)]
    remember(values)


def _env_secrets() -> list[str]:
    found: list[str] = []
    for name, value in os.environ.items():
        if not value:
            continue
        if secret_env_name(name):
            found.append(value)
        elif "://" in value and name.upper().endswith(_URL_NAMES):
            found.extend(url_secrets(value))
    return found


def _secrets(params: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for name in SECRET_PARAMS:
        value = params.get(name)
        if isinstance(value, Mapping):
            found.extend(str(v) for v in value.values())
        elif value:
            found.append(str(value))
    for value in params.values():
        if isinstance(value, str) and "://" in value:
            found.extend(url_secrets(value))
    found.extend(_env_secrets())
    with _KNOWN_LOCK:
        found.extend(_KNOWN)
    return sorted({s for s in found if len(s) >= _MIN_SECRET}, key=len, reverse=True)


def scrub(text: str, params: Mapping[str, Any] | None = None) -> str:
    """``text`` without secrets (see the module docstring); ``params``: a request's too."""
    for secret in _secrets(params or {}):
        if secret in text:
            text = text.replace(secret, "***")
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _base64_cores(secret: bytes) -> list[str]:
    """The base64 characters that encode only ``secret``'s bits, at each of the 3 byte
    alignments it can have inside a longer encoded text (standard and URL-safe alphabets)."""
    cores: list[str] = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + secret + b"\0" * 3).decode()
        start = -(-8 * shift // 6)
        end = 8 * (shift + len(secret)) // 6
        core = encoded[start:end]
        cores += [core, core.replace("+", "-").replace("/", "_")]
    return cores


@functools.lru_cache(maxsize=256)
def secret_forms(secret: str) -> tuple[str, ...]:
    """``secret`` and the forms a model can trivially write it in: reversed, rot13,
    percent-encoded, hex (of the value, its reverse and its upper case), base64 at any
    alignment (of the same three); for a long secret the same of its first and last two
    thirds. The longest first."""
    parts = [secret]
    if len(secret) >= 16:
        cut = max(12, 2 * len(secret) // 3)
        parts += [secret[:cut], secret[-cut:]]
    forms: set[str] = set()
    for part in parts:
        for value in (part, part[::-1], part.upper()):
            raw = value.encode("utf-8", errors="surrogatepass")
            forms.update({value, raw.hex(), *_base64_cores(raw)})
        forms.update({codecs.encode(part, "rot13"), quote(part, safe="")})
    return tuple(sorted((f for f in forms if len(f) >= _MIN_SECRET), key=len, reverse=True))


_BACKSLASH = re.compile(
    r"\\(?:x([0-9A-Fa-f]{2})|u\{([0-9A-Fa-f]{1,6})\}|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8}))"
)
_HEX_RUN = re.compile(r"(?:(?:0[xX])?[0-9A-Fa-f]{2}[^0-9A-Za-z]{0,3}){6,}")


def _unescape(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        code = int(next(g for g in match.groups() if g is not None), 16)
        return chr(code) if code < 0x110000 and not 0xD800 <= code < 0xE000 else ""

    return _BACKSLASH.sub(one, text)


def _hex_runs(text: str) -> str:
    """The text that every run of hex bytes in ``text`` decodes to (``73 6b``, ``0x73,0x6b``,
    ``736b``), one run a line."""
    out = []
    for match in _HEX_RUN.finditer(text):
        digits = re.sub(r"0[xX]|[^0-9A-Fa-f]", "", match.group())
        for start in (0, 1):  # a run may start in the middle of a byte
            chunk = digits[start:]
            chunk = chunk[: len(chunk) // 2 * 2]
            with contextlib.suppress(ValueError):
                out.append(bytes.fromhex(chunk).decode("utf-8", errors="replace"))
    return "\n".join(out)


_ASCII_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def readings(text: str) -> list[str]:
    """``text`` as a reader or a decoder could read it: without invisible characters, in
    compatibility form (full-width letters), with percent, HTML and backslash escapes decoded
    (three times, in any mix), and what its hex runs decode to; each also without whitespace
    (a base64 text broken into lines)."""
    if text.isascii():  # the common case, fast: only controls can be invisible there
        plain = _ASCII_CONTROLS.sub("", text)
    else:
        plain = unicodedata.normalize("NFKC", without_invisible(text))
    found = {text, plain}
    decoded = plain
    if any(mark in plain for mark in "%&\\"):
        for _ in range(3):
            decoded = _unescape(html.unescape(unquote(decoded)))
        found.add(decoded)
    for source in {plain, decoded}:
        if _HEX_RUN.search(source):
            found.add(_hex_runs(source))
    return list(found) + ["".join(t.split()) for t in found]


def holds_secret(text: str, params: Mapping[str, Any] | None = None) -> bool:
    """Whether any reading of ``text`` (:func:`readings`) holds a form of a known secret."""
    secrets = _secrets(params or {})
    return bool(secrets) and _readable(text, tuple(secrets))


def _readable(text: str, secrets: tuple[str, ...]) -> bool:
    pattern = _forms_pattern(secrets)
    return any(pattern.search(r) for r in readings(text))


@functools.lru_cache(maxsize=64)
def _forms_pattern(secrets: tuple[str, ...]) -> re.Pattern[str]:
    """One case-insensitive pattern for every form of every secret (the longest first)."""
    forms = sorted({f for s in secrets for f in secret_forms(s)}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, forms)), re.IGNORECASE)


#: What an answer is replaced with when a secret can be read out of it but not cut out of it.
WITHHELD = "*** (answer withheld: a secret could be read out of it)"


def scrub_answer(text: str, params: Mapping[str, Any] | None = None) -> str:
    """A model's answer without the *values* of known secrets (a request's keys, secret
    environment variables, remembered configuration): each form of :func:`secret_forms` is
    replaced by ``***`` where it stands (any letter case); an answer from which one can still
    be read (:func:`readings`: escapes in any mix, invisible characters inside it, hex with
    any separators, full-width letters, line breaks) is withheld whole (:data:`WITHHELD`).
    Shapes such as ``sk-...`` or ``password: ...`` stay, because in an answer they may be the
    data a task asks for."""
    secrets = _secrets(params or {})
    if not secrets:
        return text
    known = tuple(secrets)
    text = _forms_pattern(known).sub("***", text)
    return WITHHELD if _readable(text, known) else text


#: litellm's own loggers: releases 1.80 to at least 1.100 log every call's keyword arguments,
#: ``api_key`` included, at DEBUG (so into ``--log-file``, captured logs and JUnit).
LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")


class SecretFilter(logging.Filter):
    """Takes secrets out of log records before any handler formats them."""

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
_FACTORY_LOCK = threading.Lock()
_factory_installed = False


def install_log_redaction() -> None:
    """Scrub every log record made in this process from now on (idempotent).

    Filters on named loggers miss their children (``openai._base_client``, ``httpx``'s
    request lines carrying a URL with its query string): a record factory sees every record
    of every logger, before any handler (pytest's capture, ``--log-file``, JUnit) formats it.
    """
    global _factory_installed
    with _FACTORY_LOCK:
        if _factory_installed:
            return
        make = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = make(*args, **kwargs)
            SECRET_FILTER.filter(record)
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True


def redact(message: str, request: Request) -> str:
    """The message without secrets, on one line of at most 1,000 characters."""
    message = scrub(message, request.params)
    message = " ".join(message.split())
    if len(message) > _MAX_ERROR_CHARS:
        message = message[: _MAX_ERROR_CHARS - 3] + "..."
    return message
