"""What a model call costs: litellm's price of a response, and an upper estimate beforehand.

A price declared by the user (:class:`ModelPrice`, from ``gpo_prices`` / ``--gpo-price``) wins
over litellm's: it prices local, private and routed models litellm does not know. The litellm
module is handed in; nothing here imports it.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_gpo.llm.types import Request, canonical_json

#: Output tokens assumed for the cost estimate when neither max_tokens nor the model says.
DEFAULT_OUTPUT_TOKENS = 4096

#: Whether litellm's price map knows a model, as first seen: a Router registers the models of
#: its deployments in that map with $0 prices, so later lookups cannot tell unknown from free.
_PRICE_KNOWN: dict[str, bool] = {}


@dataclass(frozen=True)
class ModelPrice:
    """A declared price: US dollars per million input (prompt) and output (completion) tokens."""

    input_per_mtok: float
    output_per_mtok: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Dollars for these token counts."""
        return (
            prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok
        ) / 1e6


_ENTRY_SPLIT = re.compile(r"[;\n]")
_NUMBER_SPLIT = re.compile(r"[\s,]+")


def parse_prices(text: str) -> dict[str, ModelPrice]:
    """Declared prices from ``MODEL = INPUT OUTPUT`` entries (USD per million tokens).

    Entries are separated by new lines or ``;``; the two numbers by a comma or spaces
    (``openai/local=0.5,1.5``). ``MODEL`` is the name suites use (a Router's ``model_name``)
    and may hold ``*`` wildcards (``ollama/* = 0 0``). Lines starting with ``#`` are comments.
    A bad entry is a ValueError naming it; both prices must be finite numbers >= 0.
    """
    prices: dict[str, ModelPrice] = {}
    for raw in _ENTRY_SPLIT.split(text):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        model, equals, numbers = entry.rpartition("=")
        model = model.strip()
        if not equals or not model:
            raise ValueError(
                f"entry {entry!r} is not MODEL = INPUT OUTPUT (USD per million tokens)"
            )
        parts = [p for p in _NUMBER_SPLIT.split(numbers.strip()) if p]
        if len(parts) != 2:
            raise ValueError(
                f"price of '{model}' needs two numbers, input and output USD per million "
                f"tokens, got {numbers.strip()!r}"
            )
        values = []
        for side, part in zip(("input", "output"), parts, strict=True):
            try:
                value = float(part.lstrip("$"))
            except ValueError:
                value = math.nan
            if not math.isfinite(value) or value < 0:
                raise ValueError(
                    f"{side} price of '{model}' must be a finite number >= 0, got {part!r}"
                )
            values.append(value)
        if model in prices:
            raise ValueError(f"the price of '{model}' is declared twice")
        prices[model] = ModelPrice(values[0], values[1])
    if not prices:
        raise ValueError("no price declared: write MODEL = INPUT OUTPUT (USD per million tokens)")
    return prices


def price_params(params: Mapping[str, Any]) -> list[str]:
    """The request parameters that would set litellm's price of a call (``input_cost_per_token``,
    ``base_model``, ...): prices come from trusted settings only, never from a request."""
    return sorted(k for k in params if "cost" in k.lower() or k == "base_model")


def declared_price(prices: Mapping[str, ModelPrice] | None, model: str) -> ModelPrice | None:
    """The declared price of ``model``: its own entry, else the first wildcard entry matching."""
    if not prices:
        return None
    price = prices.get(model)
    if price is not None:
        return price
    for pattern, candidate in prices.items():
        if "*" in pattern and fnmatch.fnmatchcase(model, pattern):
            return candidate
    return None


def price_known(litellm: Any, model: str) -> bool:
    """True when litellm's price map has a per-token price for ``model`` (as first seen)."""
    known = _PRICE_KNOWN.get(model)
    if known is None:
        try:
            info = litellm.get_model_info(model=model)
        except Exception:
            known = False
        else:
            known = (
                info.get("input_cost_per_token") is not None
                or info.get("output_cost_per_token") is not None
            )
        _PRICE_KNOWN[model] = known
    return known


def response_cost(litellm: Any, response: Any) -> float | None:
    """The response's cost in dollars, or None when the model has no known price."""
    hidden = getattr(response, "_hidden_params", None)
    # litellm already priced the response while logging it. When it found no price (None),
    # asking again fails the same way after ~0.25 ms of lookups: trust its answer either way.
    if isinstance(hidden, dict) and "response_cost" in hidden:
        known = hidden["response_cost"]
        if isinstance(known, int | float) and not isinstance(known, bool) and known >= 0:
            return float(known)
        return None
    try:
        cost = litellm.completion_cost(completion_response=response)
    except Exception:
        return None
    if isinstance(cost, int | float) and not isinstance(cost, bool) and math.isfinite(cost):
        return float(cost)
    return None


#: Tokens a chat format may add per message (role markers, separators) and per request.
_TOKENS_PER_MESSAGE = 4
_TOKENS_PER_REQUEST = 4


def prompt_token_bound(messages: Any) -> int:
    """The most prompt tokens a provider can honestly bill for ``messages``.

    A byte-level BPE token is at least one byte of UTF-8, so a message's text cannot make more
    tokens than it has bytes; the chat format adds a few per message. A tokenizer's own count
    is an estimate that another tokenizer (the provider's) may exceed: this bound is not.
    """
    total = _TOKENS_PER_REQUEST
    for message in messages or ():
        total += _TOKENS_PER_MESSAGE
        if isinstance(message, Mapping):
            for value in message.values():
                text = value if isinstance(value, str) else canonical_json(value)
                total += len(text.encode("utf-8", "surrogatepass"))
    return total


#: Request keywords a provider does not bill as prompt text (transport, pytest-gpo's own).
_UNBILLED = frozenset(
    {
        "model",
        "messages",
        "timeout",
        "request_timeout",
        "stream_timeout",
        "num_retries",
        "max_retries",
        "caching",
        "api_base",
        "base_url",
        "api_key",
        "api_version",
        "organization",
        "extra_headers",
        "headers",
        "metadata",
        "n",
    }
)


def param_token_bound(kwargs: Mapping[str, Any]) -> int:
    """The most prompt tokens the request's other parameters can add: ``tools``,
    ``functions``, a ``response_format`` schema or a ``prediction`` are billed as prompt text,
    at most one token per byte of their JSON."""
    total = 0
    for name, value in kwargs.items():
        if name in _UNBILLED or not isinstance(value, str | list | tuple | Mapping):
            continue
        text = value if isinstance(value, str) else canonical_json(value)
        total += len(text.encode("utf-8", "surrogatepass"))
    return total


def estimate_cost(
    litellm: Any,
    request: Request,
    kwargs: Mapping[str, Any],
    *,
    model: str | None = None,
    price: ModelPrice | None = None,
) -> float | None:
    """The worst-case cost of one attempt; None when the model's price is unknown.

    Prompt tokens are bounded by :func:`prompt_token_bound`, output tokens by ``max_tokens``
    (else the model's output limit, else :data:`DEFAULT_OUTPUT_TOKENS`) times ``n``.

    ``model`` names the priced model when it differs from the request's (a Router deployment);
    a declared ``price`` wins over litellm's.
    """
    model = model or request.model
    try:
        info = litellm.get_model_info(model=model)
    except Exception:
        if price is None:
            return None
        info = {}
    if price is not None:
        input_price: Any = price.input_per_mtok / 1e6
        output_price: Any = price.output_per_mtok / 1e6
    else:
        input_price = info.get("input_cost_per_token")
        output_price = info.get("output_cost_per_token")
    if not isinstance(input_price, int | float) or not isinstance(output_price, int | float):
        return None
    prompt_tokens = prompt_token_bound(kwargs["messages"]) + param_token_bound(kwargs)
    limit = kwargs.get("max_completion_tokens") or kwargs.get("max_tokens")
    if not isinstance(limit, int) or limit <= 0:
        limit = info.get("max_output_tokens") or info.get("max_tokens") or DEFAULT_OUTPUT_TOKENS
    return float(prompt_tokens * input_price + int(limit) * max(1, request.n) * output_price)
