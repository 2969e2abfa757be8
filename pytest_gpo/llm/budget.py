"""Hard caps on provider attempts and dollars, held before every attempt.

A call slot (and, under a cost cap, a conservative cost estimate) is reserved before each
attempt and settled when it ends, so calls and retries in flight can never overshoot a cap.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Reservation:
    """Budget held for one attempt while it is in flight."""

    #: the cost estimate held (None: no cost cap, or the model has no known price)
    cost: float | None


class Budget:
    """``max_calls`` caps provider attempts, retries included; ``max_cost`` caps dollars.

    None means no cap. Cache hits and answers shared with an identical request in flight never
    reach the budget: they cost nothing.
    """

    def __init__(self, max_calls: int | None = None, max_cost: float | None = None) -> None:
        if max_calls is not None and max_calls < 0:
            raise ValueError(f"max_calls must be >= 0, got {max_calls}")
        if max_cost is not None and max_cost < 0:
            raise ValueError(f"max_cost must be >= 0, got {max_cost}")
        self.max_calls = max_calls
        self.max_cost = max_cost
        #: Provider attempts made so far (retries included); never exceeds ``max_calls``.
        self.calls_made = 0
        #: Dollars spent on attempts whose price is known (timeouts count their estimate).
        self.cost_spent = 0.0
        #: True once a request was refused because a cap was reached.
        self.exhausted = False
        self._reserved_cost = 0.0
        # priced reservations in flight: waiting depends on this count, never on the float sum
        # (adding and removing estimates leaves residues like 2.8e-17 that would wait forever)
        self._priced_in_flight = 0
        self._cost_refusal = False
        # set whenever an in-flight reservation settles (created on the client's loop)
        self._settled: asyncio.Event | None = None

    async def reserve(self, model: str, estimate: Callable[[], float | None]) -> Reservation | str:
        """Hold a call slot and a cost estimate for one attempt at ``model``, or say why not.

        ``estimate()`` is asked only under a cost cap (None: the price is unknown, and the
        attempt goes ahead unchecked). A cost refusal caused by calls still in flight waits for
        them: they hold pessimistic estimates (the full output limit) and most cost less, so
        refusing at once would make the outcome of a run depend on its concurrency.
        """
        while True:
            reservation = self._reserve(model, estimate)
            waiting = self._cost_refusal and self._priced_in_flight > 0
            if not (isinstance(reservation, str) and waiting):
                if isinstance(reservation, str):
                    self.exhausted = True
                return reservation
            if self._settled is None:
                self._settled = asyncio.Event()
            self._settled.clear()
            await self._settled.wait()

    def _reserve(self, model: str, estimate: Callable[[], float | None]) -> Reservation | str:
        self._cost_refusal = False
        if self.max_calls is not None and self.calls_made >= self.max_calls:
            return (
                f"call budget exhausted: {self.calls_made} of --gpo-max-calls {self.max_calls} "
                f"provider calls made; model '{model}' not called"
            )
        cost: float | None = None
        if self.max_cost is not None:
            cost = estimate()
            if cost is not None and self.cost_spent + self._reserved_cost + cost > self.max_cost:
                self._cost_refusal = True
                return (
                    f"cost budget exhausted: ${self.cost_spent:.4f} spent and "
                    f"${self._reserved_cost:.4f} in flight of --gpo-max-cost ${self.max_cost:.4f}; "
                    f"the next call to '{model}' may cost up to ${cost:.4f} "
                    "(set max_tokens to tighten this estimate)"
                )
            if cost is not None:
                self._reserved_cost += cost
                self._priced_in_flight += 1
        self.calls_made += 1
        return Reservation(cost=cost)

    def settle(
        self,
        reservation: Reservation,
        actual: float | None,
        *,
        charge_estimate: bool,
        sent: bool = True,
    ) -> None:
        """Release ``reservation`` and charge what the attempt cost.

        ``actual`` is the known cost (None: unknown); with ``charge_estimate`` an unknown cost
        is charged at the estimate held, because the provider may bill an attempt we could not
        price (a timeout still generates). An attempt that never left the process (``sent``
        false: the client refused it, e.g. for a missing key) gives its call back.
        """
        if not sent:
            self.calls_made -= 1
        if reservation.cost is not None:
            self._priced_in_flight -= 1
            self._reserved_cost = (
                max(0.0, self._reserved_cost - reservation.cost) if self._priced_in_flight else 0.0
            )
            if self._settled is not None:
                self._settled.set()
        if actual is not None:
            self.cost_spent += actual
        elif charge_estimate and reservation.cost is not None:
            self.cost_spent += reservation.cost
