"""What one client's calls cost: a declared price first, then the Router's, then litellm's.

A model with none of the three has an unknown cost (None), recorded in :attr:`Costs.unpriced`
so the run can say that ``--gpo-max-cost`` could not be checked for it; an unknown cost is
never shown as ``$0``. litellm is handed in; nothing here imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_gpo.llm import pricing
from pytest_gpo.llm.pricing import ModelPrice
from pytest_gpo.llm.router import Routing
from pytest_gpo.llm.types import Request


class Costs:
    """Prices the calls of one client. ``router`` arguments are the litellm Router that served
    the call (None: called directly)."""

    def __init__(
        self, prices: Mapping[str, ModelPrice] | None, routing: Routing | None = None
    ) -> None:
        #: Declared prices (USD per million tokens); they win over litellm's.
        self.prices: dict[str, ModelPrice] = dict(prices or {})
        #: Models without a known or declared price: their cost is unknown and unchecked.
        self.unpriced: set[str] = set()
        self._routing = routing

    def of_response(
        self,
        litellm: Any,
        request: Request,
        response: Any,
        router: Any,
        prompt_tokens: int,
        completion_tokens: int,
    ) -> float | None:
        """The cost of one reply (None: unknown)."""
        price = pricing.declared_price(self.prices, request.model)
        if price is not None:
            cost: float | None = price.cost(prompt_tokens, completion_tokens)
        elif router is None or self._routing is None:
            cost = pricing.response_cost(litellm, response)
        else:
            cost = self._routing.cost(litellm, response)
        if cost is None:
            self.unpriced.add(request.model)
        return cost

    def estimate(
        self, litellm: Any, request: Request, kwargs: Mapping[str, Any], router: Any
    ) -> float | None:
        """An upper estimate of one attempt's cost (None: unknown, and recorded as unpriced)."""
        price = pricing.declared_price(self.prices, request.model)
        if price is not None:
            estimate = pricing.estimate_cost(litellm, request, kwargs, price=price)
        elif router is None or self._routing is None:
            estimate = pricing.estimate_cost(litellm, request, kwargs)
        else:
            estimate = self._routing.estimate_cost(litellm, request, kwargs)
        if estimate is None:
            self.unpriced.add(request.model)
        return estimate

    def priced(self, litellm: Any, request: Request, router: Any) -> bool:
        """Whether the model's price is known (declared, litellm's, or every deployment's)."""
        if pricing.declared_price(self.prices, request.model) is not None:
            return True
        if router is not None and self._routing is not None:
            return self._routing.priced(litellm, request.model)
        return pricing.price_known(litellm, request.model)


def plus(total: float | None, cost: float | None) -> float | None:
    """A sum of costs that stays unknown (None) once any part is unknown."""
    return None if total is None or cost is None else total + cost
