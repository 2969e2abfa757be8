"""The litellm implementation of :class:`~pytest_gpo.llm.types.ModelClient`.

:class:`LiteLLMClient` answers a :class:`~pytest_gpo.llm.types.Request` from the response cache,
from an identical request already in flight, or from the provider through
``litellm.acompletion``, and never raises for provider faults: every failure comes back as a
:class:`~pytest_gpo.llm.types.Completion` carrying its error. It owns the retry policy (litellm's
and the OpenAI SDK's retries are switched off; faults are read by :mod:`~pytest_gpo.llm.faults`),
caps in-flight calls with a semaphore and enforces the hard budgets of
:mod:`~pytest_gpo.llm.budget`. Models a :mod:`~pytest_gpo.llm.router` Router names go through it.

litellm is imported on the first call (:func:`~pytest_gpo.llm.setup.import_litellm`), never
when this module is imported.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pytest_gpo.errors import ConfigError
from pytest_gpo.llm import credentials, limits, local, providers
from pytest_gpo.llm.attempts import Attempts, read_response
from pytest_gpo.llm.budget import Budget
from pytest_gpo.llm.cache import ResponseCache, cache_entry, cached_completion
from pytest_gpo.llm.costs import Costs, plus
from pytest_gpo.llm.deadlines import (
    call_deadline,
    call_kwargs,
    clamp_timeout,
    deadline_kwargs,
    past_deadline,
)
from pytest_gpo.llm.faults import Fault, backoff_delay, classify
from pytest_gpo.llm.ledger import FileLedger
from pytest_gpo.llm.pricing import ModelPrice
from pytest_gpo.llm.redact import redact
from pytest_gpo.llm.router import Routing
from pytest_gpo.llm.setup import import_litellm
from pytest_gpo.llm.types import (
    CACHE_MODES,
    CacheMode,
    Completion,
    ErrorKind,
    Request,
    Usage,
)


class LiteLLMClient:
    """A :class:`~pytest_gpo.llm.types.ModelClient` on litellm with cache, retries and budgets.

    ``cache_mode``: ``rw`` reads and writes the cache, ``replay`` only reads it and never calls
    a provider (a miss is an error), ``off`` ignores it. ``concurrency`` caps provider calls in
    flight. ``timeout`` is per attempt, in seconds: a request's own ``timeout`` param can only
    shorten it. ``deadline`` bounds one provider call's attempts and the waits between them
    (default :func:`~pytest_gpo.llm.deadlines.call_deadline`). Retries use exponential backoff
    with full jitter between ``backoff_base`` and ``backoff_max`` seconds, or the provider's
    ``Retry-After`` (up to ``retry_after_max`` and to ``timeout``); a wait that would end past
    the deadline ends the call instead.

    ``max_calls`` caps provider attempts, retries included; ``max_cost`` caps dollars spent.
    Both are hard: a slot (and a conservative cost estimate) is reserved before every attempt,
    so calls and retries in flight can never overshoot (see :class:`~pytest_gpo.llm.budget.Budget`).
    A model without a known price cannot be checked against ``max_cost``; it is recorded in
    :attr:`unpriced_models` so the caller can warn. Cache hits and answers shared with an
    identical request in flight cost nothing. ``budget_file`` shares the caps with other
    processes (xdist workers; see :mod:`~pytest_gpo.llm.ledger`).

    ``router_config`` is a YAML/JSON file of litellm Router settings (or the settings as a
    mapping; see :func:`~pytest_gpo.llm.router.load_router_config`). Requests for a model the
    Router names go through it, so several deployments or API keys share the load; other models
    are called directly. Models of a custom provider (:mod:`~pytest_gpo.llm.providers`) are
    set up before their first call. ``prices`` declares the price of models litellm cannot
    price (see :func:`~pytest_gpo.llm.pricing.parse_prices`); it wins over litellm's.

    A reply made of nothing (:mod:`~pytest_gpo.llm.replies`) is an error, retried when it may
    be a glitch; a refused key (:mod:`~pytest_gpo.llm.credentials`) is never retried and not
    sent again in this run.
    """

    def __init__(
        self,
        *,
        cache: ResponseCache | None = None,
        cache_mode: CacheMode = "rw",
        concurrency: int = 8,
        timeout: float = 60.0,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        retry_after_max: float = 120.0,
        deadline: float | None = None,
        max_calls: int | None = None,
        max_cost: float | None = None,
        seed: int | None = None,
        router_config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        prices: Mapping[str, ModelPrice] | None = None,
        budget_file: str | os.PathLike[str] | None = None,
        default_max_tokens: int | None = None,
        retry_local_timeouts: bool = True,
    ) -> None:
        if cache_mode not in CACHE_MODES:
            raise ValueError(f"cache_mode must be one of {CACHE_MODES}, got {cache_mode!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        if not timeout > 0 or timeout == float("inf"):
            raise ValueError(f"timeout must be a finite number > 0, got {timeout}")
        if deadline is not None and not 0 < deadline < float("inf"):
            raise ValueError(f"deadline must be a finite number > 0, got {deadline}")
        #: The call and cost caps, and what was spent against them.
        ledger = FileLedger(budget_file) if budget_file is not None else None
        self.budget = Budget(max_calls, max_cost, ledger)
        self.cache = cache
        self.cache_mode: CacheMode = cache_mode
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        #: Seconds one provider call may take in all, attempts and waits included.
        self.deadline = deadline if deadline is not None else call_deadline(timeout, max_attempts)
        #: ``max_tokens`` sent when a request sets no output limit (see :mod:`.limits`).
        self.default_max_tokens = default_max_tokens
        #: False: a timeout against a server on this machine is final (see :mod:`.local`).
        self.retry_local_timeouts = retry_local_timeouts
        #: Counters of every completion returned (see :class:`~pytest_gpo.llm.types.Usage`).
        self.usage = Usage()
        self._routing = Routing(router_config) if router_config is not None else None
        #: What calls cost: declared prices (see :func:`~pytest_gpo.llm.pricing.parse_prices`)
        #: first, then the Router's, then litellm's.
        self.costs = Costs(prices, self._routing)
        #: Models without a known or declared price: their cost is unknown and unchecked.
        self.unpriced_models: set[str] = self.costs.unpriced
        #: Keys refused in this run: not sent again.
        self._refused = credentials.RefusedKeys()
        #: Cache read/write failures (the run goes on without the cache entry).
        self.cache_errors: list[str] = []
        self._random = random.Random(seed)
        self._semaphore: asyncio.Semaphore | None = None
        self._inflight: dict[str, asyncio.Task[Completion]] = {}
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"LiteLLMClient(cache_mode={self.cache_mode!r}, concurrency={self.concurrency}, "
            f"calls_made={self.calls_made}, cost_spent={self.cost_spent:.6f})"
        )

    @property
    def calls_made(self) -> int:
        """Provider attempts made so far (retries included); never exceeds ``max_calls``."""
        return self.budget.calls_made

    @property
    def cost_spent(self) -> float:
        """Dollars spent on attempts whose price is known (timeouts count their estimate)."""
        return self.budget.cost_spent

    @property
    def budget_exhausted(self) -> bool:
        """True once a request was refused because a budget cap was reached."""
        return self.budget.exhausted

    # -- public API ----------------------------------------------------------------------------

    async def complete(self, request: Request) -> Completion:
        """Answer ``request`` from the cache, an identical call in flight, or the provider.

        Never raises for provider faults, cache misses in replay mode or budget caps: the
        returned completion carries ``error`` and ``error_kind`` instead. Every completion
        returned is added to :attr:`usage`.
        """
        completion = await self._complete(request)
        self.usage.add(completion)
        return completion

    async def aclose(self) -> None:
        """Cancel requests still in flight; the client answers no more requests afterwards."""
        self._closed = True
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._inflight.clear()
        if self._routing is not None:
            self._routing.close()

    # -- the pipeline ----------------------------------------------------------------------------

    async def _complete(self, request: Request) -> Completion:
        if self._closed:
            return Completion(error="the model client is closed", error_kind=ErrorKind.PROVIDER)
        key = request.cache_key()
        task = self._inflight.get(key)
        if task is None and self.cache_mode != "off":
            hit = await self._cache_lookup(key, request)
            if hit is not None:
                return hit
            # An identical request may have started its call while this one read the cache.
            task = self._inflight.get(key)
        if task is not None:
            shared = await asyncio.shield(task)
            return replace(shared, cached=shared.ok, attempts=0)
        if self.cache_mode == "replay":
            return Completion(
                error=(
                    f"no cached response for model '{request.model}' and this request "
                    "(--gpo-cache replay makes no model calls); "
                    "run once with --gpo-cache rw to record it"
                ),
                error_kind=ErrorKind.CACHE_MISS,
            )
        task = asyncio.ensure_future(self._fetch_and_store(key, request))
        self._inflight[key] = task
        task.add_done_callback(functools.partial(self._forget, key))
        return await asyncio.shield(task)

    def _forget(self, key: str, task: asyncio.Task[Completion]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]

    async def _cache_lookup(self, key: str, request: Request) -> Completion | None:
        if self.cache is not None and getattr(self.cache, "remote", False):
            # A network round trip (Redis) must not stall every other request on the loop.
            return await asyncio.to_thread(self._cache_get, key, request)
        # A local file read is faster than the hop to a worker thread.
        return self._cache_get(key, request)

    def _cache_get(self, key: str, request: Request) -> Completion | None:
        if self.cache is None:
            return None
        try:
            entry = self.cache.get(key)
        except Exception as exc:
            self.cache_errors.append(f"cache read failed: {type(exc).__name__}: {exc}")
            return None
        if entry is None or not limits.entry_usable(entry, request, self.default_max_tokens):
            return None
        return cached_completion(entry, request.n)

    async def _fetch_and_store(self, key: str, request: Request) -> Completion:
        try:
            completion = await self._fetch(request)
        except Exception as exc:
            # A bug must not take the session down with it: report it on this request only.
            message = redact(
                f"internal error in the model client: {type(exc).__name__}: {exc}", request
            )
            return Completion(error=message, error_kind=ErrorKind.PROVIDER)
        if completion.ok and self.cache is not None and self.cache_mode == "rw":
            cut = limits.entry_fields(completion.cut, request, self.default_max_tokens)
            entry = cache_entry(completion, request.model, cut)
            try:
                # fsync costs milliseconds: keep it off the event loop.
                await asyncio.to_thread(self.cache.put, key, entry)
            except Exception as exc:
                self.cache_errors.append(f"cache write failed: {type(exc).__name__}: {exc}")
        return completion

    async def _fetch(self, request: Request) -> Completion:
        """Collect ``request.n`` completions, with further calls when a provider gives fewer."""
        problem = providers.prepare(import_litellm(), request.model)
        if problem is not None:
            return Completion(error=problem, error_kind=ErrorKind.PROVIDER)
        texts: list[str] = []
        cut: list[bool] = []
        prompt_tokens = completion_tokens = attempts = 0
        cost: float | None = 0.0
        use_n = True
        while len(texts) < request.n:
            want = request.n - len(texts)
            if texts or not use_n:
                # Distinct sample indices, so a seeded model gives fresh samples, not repeats.
                sub = replace(
                    request,
                    sample=request.sample * request.n + len(texts),
                    n=want if use_n else 1,
                )
            else:
                sub = request
            outcome = await self._call_with_retries(sub)
            attempts += outcome.attempts
            cost = plus(cost, outcome.cost)
            if outcome.error is not None:
                if outcome.rejected_n and use_n and sub.n > 1:
                    use_n = False
                    continue
                return Completion(
                    error=outcome.error,
                    error_kind=outcome.error_kind,
                    attempts=attempts,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    cost=cost,
                )
            texts.extend(outcome.texts[:want])
            cut.extend((outcome.cut or (False,) * len(outcome.texts))[:want])
            prompt_tokens += outcome.prompt_tokens
            completion_tokens += outcome.completion_tokens
        return Completion(
            texts=tuple(texts),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=cost,
            attempts=attempts,
            cut=tuple(cut) if any(cut) else (),
        )

    async def _call_with_retries(self, request: Request) -> Attempts:
        """One provider call (``request.n`` choices) with the retry policy and budget checks."""
        litellm = import_litellm()
        try:
            kwargs = self._kwargs(request)
            router = None
            if self._routing is not None:
                router = self._routing.router_for(litellm, request.model)
        except ConfigError as exc:
            return Attempts(error=redact(exc.render(), request), error_kind=ErrorKind.PROVIDER)
        except Exception as exc:
            message = redact(f"cannot prepare the call: {type(exc).__name__}: {exc}", request)
            return Attempts(error=message, error_kind=ErrorKind.PROVIDER)
        who = credentials.identity(request, router is not None)
        loop = asyncio.get_running_loop()
        # the deadline counts attempts and waits, not the queue for a concurrency slot
        left = self.deadline
        attempts = 0
        last_error = ""
        last_kind = ErrorKind.PROVIDER
        # what the attempts so far cost (None: unknown); an error is not free by default
        spent: float | None = 0.0
        while True:
            async with self._get_semaphore():
                refused = self._refused.get(who)
                if refused is not None:
                    # the key failed for an earlier request: sending it again cannot help
                    return Attempts(
                        attempts=attempts,
                        error=refused,
                        error_kind=ErrorKind.CREDENTIALS,
                        cost=spent,
                    )
                reservation = await self.budget.reserve(
                    request.model,
                    functools.partial(self.costs.estimate, litellm, request, kwargs, router),
                )
                if isinstance(reservation, str):
                    refusal = reservation
                    if last_error:
                        refusal += f"; last provider error: {last_error}"
                    return Attempts(
                        attempts=attempts, error=refusal, error_kind=ErrorKind.BUDGET, cost=spent
                    )
                attempts += 1
                kwargs = deadline_kwargs(kwargs, left)
                started = loop.time()
                try:
                    response = await self._send(litellm, kwargs, router)
                except asyncio.CancelledError:
                    self.budget.settle(reservation, None, charge_estimate=True)
                    # interrupted (Ctrl-C, a stopped run): the requests were sent all the same
                    self._count_interrupted(attempts, plus(spent, reservation.cost))
                    raise
                except Exception as exc:
                    left -= loop.time() - started
                    fault = classify(litellm, exc, kwargs)
                    if not self.retry_local_timeouts:
                        local.hold_timeout(fault, kwargs)
                    self.budget.settle(
                        reservation,
                        None,
                        charge_estimate=fault.may_be_billed and not fault.not_sent,
                        sent=not fault.not_sent,
                    )
                    if fault.not_sent:
                        attempts -= 1  # refused before sending: no request reached a provider
                    last_error = redact(fault.message, request)
                    last_kind = ErrorKind.PROVIDER
                    # a refused request is not billed; one that timed out may be
                    priced = not fault.may_be_billed and self.costs.priced(litellm, request, router)
                    spent = plus(spent, 0.0 if priced else None)
                    if fault.credentials:
                        source = self._routing.source if router and self._routing else None
                        refusal = self._refused.refuse(
                            litellm,
                            request,
                            who,
                            last_error,
                            missing=fault.missing_key,
                            router=source,
                        )
                        return Attempts(
                            attempts=attempts,
                            error=refusal,
                            error_kind=ErrorKind.CREDENTIALS,
                            cost=spent,
                        )
                else:
                    left -= loop.time() - started
                    outcome = self._read_response(litellm, request, response, router)
                    self.budget.settle(
                        reservation, outcome.cost, charge_estimate=outcome.cost is None
                    )
                    outcome.attempts = attempts
                    outcome.cost = spent = plus(spent, outcome.cost)
                    if outcome.error is None or not outcome.retryable:
                        return outcome
                    # an answer made of nothing (null content, no choices): ask again
                    fault = Fault(True, None, outcome.error or "")
                    last_error = outcome.error or ""
                    last_kind = outcome.error_kind or ErrorKind.EMPTY
            if not fault.retryable or attempts >= self.max_attempts:
                noun = "attempt" if attempts == 1 else "attempts"
                return Attempts(
                    attempts=attempts,
                    error=f"{last_error} (after {attempts} {noun})",
                    error_kind=last_kind,
                    rejected_n=fault.rejected_n,
                    cost=spent,
                )
            delay = self._delay(attempts, fault.retry_after)
            if delay >= left:
                # the wait (a provider's Retry-After) would end past the call's deadline
                waited = "" if fault.retry_after is None else f"; it asked to wait {delay:.0f} s"
                return Attempts(
                    attempts=attempts,
                    error=past_deadline(last_error + waited, attempts, self.deadline),
                    error_kind=last_kind,
                    cost=spent,
                )
            # Sleep outside the semaphore: a backing-off request must not hold a slot.
            await asyncio.sleep(delay)
            left -= delay

    # -- pieces ----------------------------------------------------------------------------------

    def _count_interrupted(self, attempts: int, cost: float | None) -> None:
        """Count the attempts of a call cancelled in flight: no completion will count them."""
        self.usage.calls += attempts
        self.usage.retries += max(0, attempts - 1)
        self.usage.errors += 1
        if cost is None:
            self.usage.cost_unknown += 1
        else:
            self.usage.cost += cost

    def _get_semaphore(self) -> asyncio.Semaphore:
        # Created on first use so that it binds to the loop the client runs on.
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.concurrency)
        return self._semaphore

    def _kwargs(self, request: Request) -> dict[str, Any]:
        kwargs = call_kwargs(request, self.timeout)
        kwargs.update(limits.limit_kwargs(request, self.default_max_tokens))
        return kwargs

    async def _send(self, litellm: Any, kwargs: dict[str, Any], router: Any = None) -> Any:
        limit = clamp_timeout(kwargs.get("timeout"), self.timeout)
        send = litellm.acompletion if router is None else router.acompletion
        # A safety net in case a provider path ignores its timeout (litellm's own fires first).
        async with asyncio.timeout(limit * 1.5 + 1.0):
            return await send(**kwargs)

    def _read_response(
        self, litellm: Any, request: Request, response: Any, router: Any = None
    ) -> Attempts:
        return read_response(self.costs, litellm, request, response, router)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        return backoff_delay(
            self._random,
            attempt,
            retry_after,
            base=self.backoff_base,
            cap=self.backoff_max,
            # a provider cannot make one wait longer than an attempt may take
            retry_after_max=min(self.retry_after_max, self.timeout),
        )
