"""Time bounds of a model call: per attempt (``--gpo-timeout``) and per call (the deadline).

A data file may shorten an attempt (its ``timeout`` param) but never lengthen it. A provider's
``Retry-After`` is honoured up to ``--gpo-timeout``. A call's attempts and the waits between
them all fit in one deadline (:func:`call_deadline`): each attempt may take ``--gpo-timeout``,
and the waits together as long again. Time queued for a concurrency slot is not counted: it is
the run's pace, not the provider's.
"""

from __future__ import annotations

from typing import Any

from pytest_gpo.errors import ConfigError
from pytest_gpo.llm import pricing, providers
from pytest_gpo.llm.redact import remember_params
from pytest_gpo.llm.trust import check_model_name
from pytest_gpo.llm.types import Request

#: Request params that bound an attempt's time: clamped to the client's ``timeout``.
TIMEOUT_PARAMS = ("timeout", "request_timeout", "stream_timeout")

#: Request params that the client sets itself and never takes from a suite.
_OWNED_PARAMS = frozenset({"n", "stream", "num_retries", "max_retries", "caching", "model"})


def call_deadline(timeout: float, max_attempts: int) -> float:
    """Seconds one call may take in all: ``2 x timeout x max_attempts``."""
    return 2.0 * timeout * max_attempts


def clamp_timeout(value: Any, limit: float) -> float:
    """A timeout no longer than ``limit`` (a missing, odd or non-positive value is ``limit``)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return limit
    return min(float(value), limit)


def deadline_kwargs(kwargs: dict[str, Any], left: float) -> dict[str, Any]:
    """``kwargs`` with every timeout cut to the ``left`` seconds of the call's deadline."""
    cut = dict(kwargs)
    for name in TIMEOUT_PARAMS:
        if name in cut:
            cut[name] = min(cut[name], left)
    return cut


def past_deadline(last_error: str, attempts: int, deadline: float) -> str:
    """The error of a call stopped by its deadline (``last_error``: what the provider said)."""
    noun = "attempt" if attempts == 1 else "attempts"
    return (
        f"{last_error} (after {attempts} {noun}; the call's deadline of {deadline:g} s, "
        "2 x --gpo-timeout x --gpo-max-attempts, leaves no time for another)"
    )


def call_kwargs(request: Request, timeout: float) -> dict[str, Any]:
    """litellm's keyword arguments for ``request``: its params with timeouts clamped to
    ``timeout``, pytest-gpo's own settings (no litellm retries or cache), never a price."""
    check_model_name(request.model)  # no endpoint hidden in a model name
    priced = pricing.price_params(request.params)
    if priced:
        # litellm would bill at that price: a suite file could make any model look free
        raise ConfigError(
            "a request cannot set the model's price",
            key=f"params.{priced[0]}",
            fix="declare prices in the ini key gpo_prices or with --gpo-price",
        )
    remember_params(request.params)  # litellm logs its kwargs: keep the values out
    params = {k: v for k, v in request.params.items() if k not in _OWNED_PARAMS}
    kwargs: dict[str, Any] = {
        "model": request.model,
        "messages": [dict(m) for m in request.messages],
    }
    kwargs.update(params)
    # a request's timeout can shorten an attempt, never lengthen it past --gpo-timeout
    for name in TIMEOUT_PARAMS:
        if name in kwargs or name == "timeout":
            kwargs[name] = clamp_timeout(kwargs.get(name), timeout)
    if request.n > 1:
        kwargs["n"] = request.n
    kwargs.update(providers.request_kwargs(request))
    kwargs["num_retries"] = 0
    kwargs["max_retries"] = 0
    kwargs["caching"] = False
    return kwargs
