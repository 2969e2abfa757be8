"""What a model call costs: litellm's price of a response, and an upper estimate beforehand.

The litellm module is handed in; nothing here imports it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pytest_gpo.llm.types import Request

#: Output tokens assumed for the cost estimate when neither max_tokens nor the model says.
DEFAULT_OUTPUT_TOKENS = 4096

#: Whether litellm's price map knows a model, as first seen: a Router registers the models of
#: its deployments in that map with $0 prices, so later lookups cannot tell unknown from free.
_PRICE_KNOWN: dict[str, bool] = {}


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


def estimate_cost(
    litellm: Any, request: Request, kwargs: Mapping[str, Any], *, model: str | None = None
) -> float | None:
    """An upper estimate of one attempt's cost; None when the model's price is unknown.

    ``model`` names the priced model when it differs from the request's (a Router deployment).
    """
    model = model or request.model
    try:
        info = litellm.get_model_info(model=model)
    except Exception:
        return None
    input_price = info.get("input_cost_per_token")
    output_price = info.get("output_cost_per_token")
    if not isinstance(input_price, int | float) or not isinstance(output_price, int | float):
        return None
    try:
        prompt_tokens = int(litellm.token_counter(model=model, messages=kwargs["messages"]))
    except Exception:
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in request.messages) // 2 + 16
    limit = kwargs.get("max_completion_tokens") or kwargs.get("max_tokens")
    if not isinstance(limit, int) or limit <= 0:
        limit = info.get("max_output_tokens") or info.get("max_tokens") or DEFAULT_OUTPUT_TOKENS
    return float(prompt_tokens * input_price + int(limit) * max(1, request.n) * output_price)
