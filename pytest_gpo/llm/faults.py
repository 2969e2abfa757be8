"""Provider faults: whether another attempt may help, how long to wait, and why it failed.

litellm's exception classes are looked up by name on the module handed in, so nothing here
imports litellm.
"""

from __future__ import annotations

import email.utils
import random
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: HTTP statuses worth another attempt: throttling, timeouts and server-side faults.
RETRYABLE_STATUS: frozenset[int] = frozenset(
    {408, 409, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 529}
)

#: litellm exception classes that are always transient (looked up by name: lazy import).
_RETRYABLE_NAMES = (
    "RateLimitError",
    "Timeout",
    "APIConnectionError",
    "InternalServerError",
    "ServiceUnavailableError",
    "BadGatewayError",
)

#: litellm exception classes that another attempt cannot fix.
_FATAL_NAMES = (
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "UnprocessableEntityError",
    "ContextWindowExceededError",
    "ContentPolicyViolationError",
    "UnsupportedParamsError",
    "BudgetExceededError",
)

#: Raised by a Router when every deployment of a model is cooling down: wait, then retry.
_ROUTER_BUSY_NAMES = ("RouterRateLimitError", "RouterRateLimitErrorBasic")

#: litellm exception classes for a key that is missing, wrong, or not allowed to use the model.
_CREDENTIAL_NAMES = ("AuthenticationError", "PermissionDeniedError")

#: HTTP statuses of refused credentials: no other attempt can succeed with the same key.
_CREDENTIAL_STATUS = frozenset({401, 403})

#: How SDKs word a key that was never given (litellm raises some of these as internal errors).
_MISSING_KEY_RE = re.compile(
    r"missing credentials"
    r"|missing [\w ]{0,40}api[ _-]?key"
    r"|api[ _-]?key client option must be set"
    r"|no api[ _-]?key"
    r"|api[ _-]?key (is )?(not set|missing|required|not provided|not found)",
    re.IGNORECASE,
)

#: Where litellm raises an error it found in the body of an HTTP 200 reply.
_REPLY_READERS = frozenset({"convert_to_model_response_object"})

#: A 429 that no wait will fix (OpenAI's ``insufficient_quota``: the account is out of credit).
_QUOTA_RE = re.compile(r"insufficient_quota|exceeded your current quota", re.IGNORECASE)


@dataclass
class Fault:
    """What one failed attempt means for the next."""

    #: another attempt may succeed
    retryable: bool
    #: seconds the provider asked us to wait (None: it did not say)
    retry_after: float | None
    #: the provider's message (not yet redacted)
    message: str
    #: the provider may have billed the attempt (it timed out while generating)
    may_be_billed: bool = False
    #: the provider refused the ``n`` parameter: ask for one completion per call instead
    rejected_n: bool = False
    #: the key is missing, wrong or not allowed to use the model: no attempt can succeed
    credentials: bool = False
    #: ... because no key was given at all
    missing_key: bool = False
    #: the provider answered HTTP 200 with an error in the body (transient unless it says so)
    from_reply: bool = False


def _litellm_classes(litellm: Any, names: Iterable[str]) -> tuple[type[BaseException], ...]:
    found = (getattr(litellm, name, None) for name in names)
    return tuple(cls for cls in found if isinstance(cls, type))


def classify(litellm: Any, exc: BaseException, kwargs: Mapping[str, Any]) -> Fault:
    """Whether another attempt may help, how long the provider asked us to wait, and why."""
    message = str(exc).strip() or type(exc).__name__
    status = getattr(exc, "status_code", None)
    status = _status(status)
    missing = _MISSING_KEY_RE.search(message) is not None
    if (
        missing
        or isinstance(exc, _litellm_classes(litellm, _CREDENTIAL_NAMES))
        or status in _CREDENTIAL_STATUS
    ):
        return Fault(False, None, message, credentials=True, missing_key=missing)
    reply_error = _raised_from_reply(exc)
    if reply_error is not None:
        # An error object inside a 200 reply: litellm maps its code to an exception class (a
        # body without a code becomes a 422). Only a code that says "your request is wrong"
        # is final; anything else is the provider's hiccup and worth another attempt. The code
        # is read where the body was read: litellm 1.80 raises its mapped exception as a 400.
        status = _status(getattr(reply_error, "status_code", None))
        final = (
            isinstance(status, int)
            and 400 <= status < 500
            and status != 422
            and status not in RETRYABLE_STATUS
        )
        said = f"the provider answered HTTP 200 with an error in the body: {message}"
        return Fault(not final, None, said, from_reply=True)
    if isinstance(exc, TimeoutError):
        limit = kwargs.get("timeout")
        return Fault(True, None, f"model call timed out after {limit} s", may_be_billed=True)
    if type(exc).__name__ in _ROUTER_BUSY_NAMES:
        # Every deployment is cooling down after failures; its cooldown is the wait to honour.
        cooldown = getattr(exc, "cooldown_time", None)
        wait = float(cooldown) if isinstance(cooldown, int | float) and cooldown >= 0 else None
        return Fault(True, wait, message)
    timeout_cls = getattr(litellm, "Timeout", None)
    is_timeout = isinstance(timeout_cls, type) and isinstance(exc, timeout_cls)
    if isinstance(exc, _litellm_classes(litellm, _FATAL_NAMES)) or _QUOTA_RE.search(message):
        retryable = False
    elif is_timeout or isinstance(exc, (OSError, *_litellm_classes(litellm, _RETRYABLE_NAMES))):
        retryable = True
    elif isinstance(status, int):
        retryable = status in RETRYABLE_STATUS or status >= 500
    else:
        retryable = False
    rejected_n = (
        not retryable
        and "n" in kwargs
        and (
            type(exc).__name__ == "UnsupportedParamsError"
            or re.search(r"(?i)(\bn\b|'n'|\"n\"|\bparameter n\b|number of choices)", message)
            is not None
        )
    )
    return Fault(
        retryable,
        retry_after(exc) if retryable else None,
        message,
        may_be_billed=is_timeout,
        rejected_n=bool(rejected_n),
    )


def _status(value: Any) -> int | None:
    """An HTTP status as an int (litellm passes a 200 body's error code through: '503')."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _raised_from_reply(exc: BaseException) -> BaseException | None:
    """The exception litellm raised while reading a reply body (None: ``exc`` is not one).

    litellm turns an ``error`` object inside an HTTP 200 reply into an exception whose class
    follows the object's ``code``; only where it was raised tells it from a real 4xx.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 8:
        seen.add(id(current))
        tb = current.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_name in _REPLY_READERS:
                return current
            tb = tb.tb_next
        current = current.__cause__ or current.__context__
    return None


def retry_after(exc: BaseException) -> float | None:
    """Seconds from a ``Retry-After`` (seconds or HTTP date) or ``retry-after-ms`` header."""
    for headers in _header_sources(exc):
        try:
            millis = headers.get("retry-after-ms")
            if millis is not None:
                return max(0.0, float(millis) / 1000.0)
            value = headers.get("retry-after")
        except Exception:
            continue
        if value is None:
            continue
        text = str(value).strip()
        try:
            return max(0.0, float(text))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            continue
        return max(0.0, when.timestamp() - time.time())
    return None


def _header_sources(exc: BaseException) -> list[Any]:
    sources: list[Any] = []
    for candidate in (
        getattr(exc, "litellm_response_headers", None),
        getattr(exc, "headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
    ):
        if candidate is None or not hasattr(candidate, "get"):
            continue
        if isinstance(candidate, Mapping) and not hasattr(candidate, "get_list"):
            candidate = {str(k).lower(): v for k, v in candidate.items()}
        sources.append(candidate)
    return sources


def backoff_delay(
    rng: random.Random,
    attempt: int,
    retry_after: float | None,
    *,
    base: float,
    cap: float,
    retry_after_max: float,
) -> float:
    """Seconds to wait before attempt ``attempt + 1``.

    The provider's ``Retry-After`` (at most ``retry_after_max``, plus a little jitter) when it
    gave one, else exponential backoff with full jitter: uniform in
    ``[0, min(cap, base * 2 ** (attempt - 1))]``.
    """
    if retry_after is not None:
        jitter = rng.uniform(0.0, min(base, 1.0))
        return min(retry_after, retry_after_max) + jitter
    return rng.uniform(0.0, min(cap, base * (2 ** (attempt - 1))))
