"""Hard caps on provider attempts and dollars, held before every attempt.

A call slot (and, under a cost cap, a worst-case cost estimate) is reserved before each
attempt and settled with the actual cost when it ends, so calls and retries in flight can
never overshoot a cap, and a call is only sent while what is left of the budget covers its
worst case. The counts live in a :class:`~pytest_gpo.llm.ledger.Ledger`: this process's
memory, or a file every pytest-xdist worker shares, so a cap is the run's, not each worker's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_gpo.llm.ledger import Ledger, MemoryLedger

#: How often a reservation refused for calls in flight in *other* processes looks again.
_SHARED_POLL_SECONDS = 0.05


class BudgetRefused(Exception):
    """A call outside the model client (an embedding) was refused by a cap: an error of kind
    ``budget`` for the case, never a failed score."""


@dataclass
class Reservation:
    """Budget held for one attempt while it is in flight."""

    #: the cost estimate held (None: no cost cap, or the model has no known price)
    cost: float | None


class Budget:
    """``max_calls`` caps provider attempts, retries included; ``max_cost`` caps dollars.

    None means no cap. Cache hits and answers shared with an identical request in flight never
    reach the budget: they cost nothing. ``ledger`` is where the counts live (default: this
    process only; a :class:`~pytest_gpo.llm.ledger.FileLedger` shares them across processes).
    """

    def __init__(
        self,
        max_calls: int | None = None,
        max_cost: float | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        if max_calls is not None and max_calls < 0:
            raise ValueError(f"max_calls must be >= 0, got {max_calls}")
        if max_cost is not None and max_cost < 0:
            raise ValueError(f"max_cost must be >= 0, got {max_cost}")
        self.max_calls = max_calls
        self.max_cost = max_cost
        self.ledger: Ledger = ledger or MemoryLedger()
        #: Provider attempts this budget let through (retries included).
        self.calls_made = 0
        #: Dollars spent on attempts whose price is known (timeouts count their estimate).
        self.cost_spent = 0.0
        #: True once a request was refused because a cap was reached.
        self.exhausted = False
        self._owner = f"{os.getpid()}:{id(self)}"
        # set whenever an in-flight reservation settles (created on the client's loop)
        self._settled: asyncio.Event | None = None

    async def reserve(self, model: str, estimate: Callable[[], float | None]) -> Reservation | str:
        """Hold a call slot and a cost estimate for one attempt at ``model``, or say why not.

        ``estimate()`` is asked only under a cost cap (None: the price is unknown, and the
        attempt goes ahead unchecked). A cost refusal caused by calls still in flight waits for
        them: they hold pessimistic estimates (the full output limit) and most cost less, so
        refusing at once would make the outcome of a run depend on its concurrency.
        """
        cost = estimate() if self.max_cost is not None else None
        while True:
            reservation, waiting = self.ledger.update(lambda s: self._reserve(s, model, cost))
            if not (isinstance(reservation, str) and waiting):
                if isinstance(reservation, str):
                    self.exhausted = True
                else:
                    self.calls_made += 1
                return reservation
            if self._settled is None:
                self._settled = asyncio.Event()
            self._settled.clear()
            # another process's settlement is not signalled here: look again shortly
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), _SHARED_POLL_SECONDS)

    def reserve_now(self, model: str, cost: float | None) -> Reservation | str:
        """:meth:`reserve` without waiting (for synchronous callers such as embeddings)."""
        cost = cost if self.max_cost is not None else None
        reservation, _ = self.ledger.update(lambda s: self._reserve(s, model, cost))
        if isinstance(reservation, str):
            self.exhausted = True
        else:
            self.calls_made += 1
        return reservation

    def _reserve(
        self, state: dict[str, Any], model: str, cost: float | None
    ) -> tuple[Reservation | str, bool]:
        calls = int(state["calls"])
        if self.max_calls is not None and calls >= self.max_calls:
            return (
                f"call budget exhausted: {calls} of --gpo-max-calls {self.max_calls} "
                f"provider calls made; model '{model}' not called"
            ), False
        inflight = state["inflight"]
        if self.max_cost is not None and cost is not None:
            spent = float(state["spent"])
            held = sum(float(v[1]) for v in inflight.values())
            if spent + held + cost > self.max_cost:
                waiting = any(int(v[0]) > 0 for v in inflight.values())
                return (
                    f"cost budget exhausted: ${spent:.4f} spent and ${held:.4f} in flight of "
                    f"--gpo-max-cost ${self.max_cost:.4f}; the next call to '{model}' may cost "
                    f"up to ${cost:.4f} (set max_tokens to tighten this estimate)"
                ), waiting
        state["calls"] = calls + 1
        if cost is not None:
            count, held_here = inflight.get(self._owner, (0, 0.0))
            inflight[self._owner] = [int(count) + 1, float(held_here) + cost]
        return Reservation(cost=cost), False

    def _release(self, state: dict[str, Any], reservation: Reservation) -> None:
        if reservation.cost is None:
            return
        inflight = state["inflight"]
        count, held = inflight.get(self._owner, (1, reservation.cost))
        if int(count) <= 1:
            # no float residue: nothing of this owner is in flight any more
            inflight.pop(self._owner, None)
        else:
            inflight[self._owner] = [int(count) - 1, max(0.0, float(held) - reservation.cost)]

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
        charge = 0.0
        if actual is not None:
            charge = actual
        elif charge_estimate and reservation.cost is not None:
            charge = reservation.cost

        def change(state: dict[str, Any]) -> None:
            self._release(state, reservation)
            state["spent"] = float(state["spent"]) + charge
            if not sent:
                state["calls"] = max(0, int(state["calls"]) - 1)

        self.ledger.update(change)
        self.cost_spent += charge
        if self._settled is not None and reservation.cost is not None:
            with contextlib.suppress(RuntimeError):  # settled off the loop (a thread)
                self._settled.set()
