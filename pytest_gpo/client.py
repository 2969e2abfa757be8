"""The litellm implementation of :class:`~pytest_gpo.calls.ModelClient`.

:class:`LiteLLMClient` answers a :class:`~pytest_gpo.calls.Request` from the response cache,
from an identical request already in flight, or from the provider through
``litellm.acompletion``, and never raises for provider faults: every failure comes back as a
:class:`~pytest_gpo.calls.Completion` carrying its error. It owns the retry policy (litellm's
and the OpenAI SDK's retries are switched off), caps in-flight calls with a semaphore and
enforces hard budgets on calls and cost. With ``router_config`` (litellm Router settings:
several deployments or keys behind one model name) calls to the models it names go through
``litellm.Router.acompletion``, with the Router's own retries and cache turned off.

:class:`EventLoopRunner` holds the one event loop a pytest session uses for all its async calls.

litellm is imported on first use (:func:`import_litellm`), never when this module is imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import gc
import importlib
import inspect
import json
import math
import os
import random
import re
import sys
import threading
import time
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, replace
from types import ModuleType, TracebackType
from typing import Any, Literal, TypeVar

from pytest_gpo.cache import ResponseCache
from pytest_gpo.calls import SECRET_PARAMS, Completion, Request, Usage, valid_text
from pytest_gpo.errors import ConfigError

CacheMode = Literal["rw", "replay", "off"]

#: The accepted values of ``cache_mode`` (and of ``--gpo-cache``).
CACHE_MODES: tuple[str, ...] = ("rw", "replay", "off")

#: Models under this prefix are the offline simulated models of :mod:`pytest_gpo.sim`.
SIM_PREFIX = "gpo-sim/"

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

#: Request params that the client sets itself and never takes from a suite.
_OWNED_PARAMS = frozenset({"n", "stream", "num_retries", "max_retries", "caching", "model"})

#: Router settings pytest-gpo owns: its retry policy and response cache replace the Router's.
ROUTER_FORCED: Mapping[str, Any] = {"num_retries": 0, "cache_responses": False}

#: Sections of a litellm proxy config that are not Router settings.
_PROXY_ONLY_KEYS = ("litellm_settings", "general_settings", "environment_variables")

#: Raised by a Router when every deployment of a model is cooling down: wait, then retry.
_ROUTER_BUSY_NAMES = ("RouterRateLimitError", "RouterRateLimitErrorBasic")

#: Output tokens assumed for the cost estimate when neither max_tokens nor the model says.
DEFAULT_OUTPUT_TOKENS = 4096

#: A 429 that no wait will fix (OpenAI's ``insufficient_quota``: the account is out of credit).
_QUOTA_RE = re.compile(r"insufficient_quota|exceeded your current quota", re.IGNORECASE)

_MAX_ERROR_CHARS = 1000
_SECRET_PATTERNS = (
    (re.compile(r"\bsk-[A-Za-z0-9_\-*]{6,}"), "sk-***"),
    (re.compile(r"(?i)\b(bearer\s+|api[_-]?key[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"), r"\1***"),
)

T = TypeVar("T")


@functools.cache
def import_litellm() -> Any:
    """Import litellm once, configured for pytest-gpo.

    The local price map is used (the import would otherwise fetch one from the internet) and
    debug banners are off. Callbacks a user configured are left alone; litellm has none of its
    own by default, and its response cache is bypassed per call (``caching=False``).

    No other litellm setting is changed, on purpose: none of its public settings or call
    kwargs lowers its CPU per call (~2.5-3 ms), and several would hide our calls from a user's
    own callbacks or zero the cost estimate (measured in docs/performance.md, section 1).
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    # litellm's import leaves ~300,000 long-lived objects that every full garbage collection
    # walks again: ~0.3 ms per model call at 300 calls/s. Freezing them (after a cheap young
    # collection) keeps them out of the collector's work; they live until exit anyway.
    gc.collect(1)
    gc.freeze()
    litellm.suppress_debug_info = True
    # OpenAI-compatible calls use connections this project owns and closes (connections.py).
    from pytest_gpo import connections

    connections.install(litellm)
    # Older releases phone home unless told not to; current ones have no such attribute.
    litellm.telemetry = False
    return litellm


def _sim_module() -> ModuleType:
    # Resolved at run time so that the client works before (and without) the simulator module.
    return importlib.import_module("pytest_gpo.sim")


@dataclass
class _Attempts:
    """The outcome of one provider call made with retries (possibly several attempts)."""

    texts: tuple[str, ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    attempts: int = 0
    error: str | None = None
    error_kind: str | None = None
    rejected_n: bool = False


@dataclass
class _Reservation:
    """Budget held for one attempt while it is in flight."""

    cost: float | None


class LiteLLMClient:
    """A :class:`~pytest_gpo.calls.ModelClient` on litellm with cache, retries and budgets.

    ``cache_mode``: ``rw`` reads and writes the cache, ``replay`` only reads it and never calls
    a provider (a miss is an error), ``off`` ignores it. ``concurrency`` caps provider calls in
    flight. ``timeout`` is per attempt, in seconds (a request's own ``timeout`` param wins).
    Retries use exponential backoff with full jitter between ``backoff_base`` and
    ``backoff_max`` seconds, or the provider's ``Retry-After`` (up to ``retry_after_max``).

    ``max_calls`` caps provider attempts, retries included; ``max_cost`` caps dollars spent.
    Both are hard: a slot (and a conservative cost estimate) is reserved before every attempt,
    so calls and retries in flight can never overshoot. A model without a known price cannot be
    checked against ``max_cost``; it is recorded in :attr:`unpriced_models` so the caller can
    warn. Cache hits and answers shared with an identical request in flight cost nothing.

    ``router_config`` is a YAML/JSON file of litellm Router settings (or the settings as a
    mapping; see :func:`load_router_config`). Requests for a model the Router names go through
    it, so several deployments or API keys share the load; other models are called directly.
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
        max_calls: int | None = None,
        max_cost: float | None = None,
        seed: int | None = None,
        router_config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    ) -> None:
        if cache_mode not in CACHE_MODES:
            raise ValueError(f"cache_mode must be one of {CACHE_MODES}, got {cache_mode!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if max_calls is not None and max_calls < 0:
            raise ValueError(f"max_calls must be >= 0, got {max_calls}")
        if max_cost is not None and max_cost < 0:
            raise ValueError(f"max_cost must be >= 0, got {max_cost}")
        self.cache = cache
        self.cache_mode: CacheMode = cache_mode
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self.max_calls = max_calls
        self.max_cost = max_cost
        #: Counters of every completion returned (see :class:`~pytest_gpo.calls.Usage`).
        self.usage = Usage()
        #: Provider attempts made so far (retries included); never exceeds ``max_calls``.
        self.calls_made = 0
        #: Dollars spent on attempts whose price is known (timeouts count their estimate).
        self.cost_spent = 0.0
        #: True once a request was refused because a budget cap was reached.
        self.budget_exhausted = False
        #: Models whose price litellm does not know: their cost is unknown and unchecked.
        self.unpriced_models: set[str] = set()
        #: Cache read/write failures (the run goes on without the cache entry).
        self.cache_errors: list[str] = []
        self._random = random.Random(seed)
        self._semaphore: asyncio.Semaphore | None = None
        self._inflight: dict[str, asyncio.Task[Completion]] = {}
        self._reserved_cost = 0.0
        self._cost_refusal = False
        # set whenever an in-flight reservation settles (created on the client's loop)
        self._settled: asyncio.Event | None = None
        self._closed = False
        self._router_source = "router settings"
        self._router_kwargs: dict[str, Any] | None = None
        if router_config is not None:
            if not isinstance(router_config, Mapping):
                self._router_source = os.fspath(router_config)
            self._router_kwargs = load_router_config(router_config)
        self._router: Any = None
        self._router_priced: dict[str, bool] = {}

    def __repr__(self) -> str:
        return (
            f"LiteLLMClient(cache_mode={self.cache_mode!r}, concurrency={self.concurrency}, "
            f"calls_made={self.calls_made}, cost_spent={self.cost_spent:.6f})"
        )

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
        if self._router is not None:
            # unhooks the callbacks a Router registers in litellm's global lists
            # retire() since litellm 1.110; discard() before (deprecated since)
            retire = getattr(self._router, "retire", None) or self._router.discard
            with contextlib.suppress(Exception):
                retire()
            self._router = None

    # -- the pipeline ----------------------------------------------------------------------------

    async def _complete(self, request: Request) -> Completion:
        if self._closed:
            return Completion(error="the model client is closed", error_kind="provider")
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
                error_kind="cache_miss",
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
        if entry is None:
            return None
        texts = entry.get("texts")
        if not isinstance(texts, list) or len(texts) != request.n:
            return None
        cost = entry.get("cost")
        return Completion(
            texts=tuple(str(t) for t in texts),
            prompt_tokens=int(entry.get("prompt_tokens") or 0),
            completion_tokens=int(entry.get("completion_tokens") or 0),
            cost=float(cost) if isinstance(cost, int | float) else None,
            cached=True,
            attempts=0,
        )

    async def _fetch_and_store(self, key: str, request: Request) -> Completion:
        try:
            completion = await self._fetch(request)
        except Exception as exc:
            # A bug must not take the session down with it: report it on this request only.
            message = _redact(
                f"internal error in the model client: {type(exc).__name__}: {exc}", request
            )
            return Completion(error=message, error_kind="provider")
        if completion.ok and self.cache is not None and self.cache_mode == "rw":
            entry = {
                "texts": list(completion.texts),
                "prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens,
                "cost": completion.cost,
                "model": request.model,
                "created": time.time(),
            }
            try:
                # fsync costs milliseconds: keep it off the event loop.
                await asyncio.to_thread(self.cache.put, key, entry)
            except Exception as exc:
                self.cache_errors.append(f"cache write failed: {type(exc).__name__}: {exc}")
        return completion

    async def _fetch(self, request: Request) -> Completion:
        """Collect ``request.n`` completions, with further calls when a provider gives fewer."""
        import_litellm()
        if request.model.startswith(SIM_PREFIX):
            problem = _prepare_sim()
            if problem is not None:
                return Completion(error=problem, error_kind="provider")
        texts: list[str] = []
        prompt_tokens = completion_tokens = attempts = 0
        cost: float | None = 0.0
        use_n = True
        while len(texts) < request.n:
            want = request.n - len(texts)
            if texts or not use_n:
                # Distinct sample indices, so a simulated model gives fresh samples, not repeats.
                sub = replace(
                    request,
                    sample=request.sample * request.n + len(texts),
                    n=want if use_n else 1,
                )
            else:
                sub = request
            outcome = await self._call_with_retries(sub)
            attempts += outcome.attempts
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
                    cost=cost if texts else None,
                )
            texts.extend(outcome.texts[:want])
            prompt_tokens += outcome.prompt_tokens
            completion_tokens += outcome.completion_tokens
            cost = None if cost is None or outcome.cost is None else cost + outcome.cost
        return Completion(
            texts=tuple(texts),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=cost,
            attempts=attempts,
        )

    async def _call_with_retries(self, request: Request) -> _Attempts:
        """One provider call (``request.n`` choices) with the retry policy and budget checks."""
        litellm = import_litellm()
        try:
            kwargs = self._kwargs(request)
            router = self._router_for(litellm, request.model)
        except ConfigError as exc:
            return _Attempts(error=_redact(exc.render(), request), error_kind="provider")
        except Exception as exc:
            message = _redact(f"cannot prepare the call: {type(exc).__name__}: {exc}", request)
            return _Attempts(error=message, error_kind="provider")
        attempts = 0
        last_error = ""
        while True:
            async with self._get_semaphore():
                reservation = await self._reserve_when_settled(litellm, request, kwargs, router)
                if isinstance(reservation, str):
                    self.budget_exhausted = True
                    refusal = reservation
                    if last_error:
                        refusal += f"; last provider error: {last_error}"
                    return _Attempts(attempts=attempts, error=refusal, error_kind="budget")
                attempts += 1
                try:
                    response = await self._send(litellm, kwargs, router)
                except asyncio.CancelledError:
                    self._settle(reservation, None, charge_estimate=True)
                    raise
                except Exception as exc:
                    fault = _classify(litellm, exc, kwargs)
                    self._settle(reservation, None, charge_estimate=fault.may_be_billed)
                    last_error = _redact(fault.message, request)
                else:
                    outcome = self._read_response(litellm, request, response, router)
                    self._settle(reservation, outcome.cost, charge_estimate=outcome.cost is None)
                    outcome.attempts = attempts
                    return outcome
            if not fault.retryable or attempts >= self.max_attempts:
                noun = "attempt" if attempts == 1 else "attempts"
                return _Attempts(
                    attempts=attempts,
                    error=f"{last_error} (after {attempts} {noun})",
                    error_kind="provider",
                    rejected_n=fault.rejected_n,
                )
            # Sleep outside the semaphore: a backing-off request must not hold a slot.
            await asyncio.sleep(self._delay(attempts, fault.retry_after))

    # -- pieces ----------------------------------------------------------------------------------

    def _get_semaphore(self) -> asyncio.Semaphore:
        # Created on first use so that it binds to the loop the client runs on.
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.concurrency)
        return self._semaphore

    def _kwargs(self, request: Request) -> dict[str, Any]:
        params = {k: v for k, v in request.params.items() if k not in _OWNED_PARAMS}
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": [dict(m) for m in request.messages],
            "timeout": self.timeout,
        }
        kwargs.update(params)
        if request.n > 1:
            kwargs["n"] = request.n
        if request.model.startswith(SIM_PREFIX):
            kwargs.update(_sim_module().extra_kwargs(request))
        kwargs["num_retries"] = 0
        kwargs["max_retries"] = 0
        kwargs["caching"] = False
        return kwargs

    async def _send(self, litellm: Any, kwargs: dict[str, Any], router: Any = None) -> Any:
        timeout = kwargs.get("timeout")
        limit = float(timeout) if isinstance(timeout, int | float) else self.timeout
        send = litellm.acompletion if router is None else router.acompletion
        # A safety net in case a provider path ignores its timeout (litellm's own fires first).
        async with asyncio.timeout(limit * 1.5 + 1.0):
            return await send(**kwargs)

    # -- the litellm Router ------------------------------------------------------------------------

    def _router_for(self, litellm: Any, model: str) -> Any:
        """The Router when it serves ``model`` (by name or wildcard pattern), else None."""
        if self._router_kwargs is None:
            return None
        names = {str(d["model_name"]) for d in self._router_kwargs["model_list"]}
        if model not in names and not any("*" in name for name in names):
            return None
        if model in names or any(_wildcard_match(name, model) for name in names if "*" in name):
            return self._get_router(litellm)
        return None

    def _get_router(self, litellm: Any) -> Any:
        if self._router is None:
            assert self._router_kwargs is not None
            settings = {**self._router_kwargs, **ROUTER_FORCED}
            accepted = inspect.signature(litellm.Router).parameters
            unknown = sorted(set(settings) - set(accepted))
            if unknown:
                raise ConfigError(
                    f"not litellm Router settings: {', '.join(unknown)}",
                    path=self._router_source,
                    fix="keep model_list and Router arguments (routing_strategy, "
                    "cooldown_time, ...); see https://docs.litellm.ai/docs/routing",
                )
            for deployment in settings["model_list"]:
                # Must run first: building a Router registers its models at $0 in litellm's map.
                _price_known(litellm, str(deployment["litellm_params"]["model"]))
            try:
                self._router = litellm.Router(**settings)
            except Exception as exc:
                raise ConfigError(
                    f"litellm could not build a Router: {type(exc).__name__}: {exc}",
                    path=self._router_source,
                    fix="check model_list and the Router settings",
                ) from None
        return self._router

    def _router_cost(self, litellm: Any, router: Any, response: Any) -> float | None:
        """The cost of a routed response; None when its deployment's model has no price.

        A Router prices a deployment of an unknown model at $0.00 (it registers the
        deployment with empty prices), which must read as unknown, not as free.
        """
        cost = _response_cost(litellm, response)
        hidden = getattr(response, "_hidden_params", None)
        if cost is None or not isinstance(hidden, dict):
            return cost
        model_id = str(hidden.get("model_id") or "")
        priced = self._router_priced.get(model_id)
        if priced is None:
            priced = _deployment_priced(litellm, self._router_kwargs, hidden)
            self._router_priced[model_id] = priced
        return cost if priced else None

    def _read_response(
        self, litellm: Any, request: Request, response: Any, router: Any = None
    ) -> _Attempts:
        choices = list(getattr(response, "choices", None) or [])
        texts = []
        for choice in choices[: request.n]:
            message = getattr(choice, "message", None)
            content = getattr(message, "content", None)
            # half a surrogate pair (an emoji cut by max_tokens) would make the answer uncacheable
            texts.append(valid_text(content) if isinstance(content, str) else "")
        usage = getattr(response, "usage", None)
        prompt_tokens = _int(getattr(usage, "prompt_tokens", 0))
        completion_tokens = _int(getattr(usage, "completion_tokens", 0))
        if router is None:
            cost = _response_cost(litellm, response)
        else:
            cost = self._router_cost(litellm, router, response)
        if cost is None:
            self.unpriced_models.add(request.model)
        if not texts:
            return _Attempts(
                error=f"model '{request.model}' returned no choices",
                error_kind="provider",
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cost=cost,
            )
        return _Attempts(
            texts=tuple(texts),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=cost,
        )

    async def _reserve_when_settled(
        self, litellm: Any, request: Request, kwargs: Mapping[str, Any], router: Any = None
    ) -> _Reservation | str:
        """:meth:`_reserve`, but a cost refusal caused by calls still in flight waits for them.

        In-flight calls hold pessimistic estimates (the full output limit); most cost less.
        Refusing at once would make the outcome of a run depend on its concurrency.
        """
        while True:
            reservation = self._reserve(litellm, request, kwargs, router)
            if not (isinstance(reservation, str) and self._cost_refusal and self._reserved_cost):
                return reservation
            if self._settled is None:
                self._settled = asyncio.Event()
            self._settled.clear()
            await self._settled.wait()

    def _reserve(
        self, litellm: Any, request: Request, kwargs: Mapping[str, Any], router: Any = None
    ) -> _Reservation | str:
        """Hold a call slot and a cost estimate for one attempt, or say why not."""
        self._cost_refusal = False
        if self.max_calls is not None and self.calls_made >= self.max_calls:
            return (
                f"call budget exhausted: {self.calls_made} of --gpo-max-calls {self.max_calls} "
                f"provider calls made; model '{request.model}' not called"
            )
        estimate: float | None = None
        if self.max_cost is not None:
            estimate = self._estimate(litellm, request, kwargs, router)
            if estimate is None:
                self.unpriced_models.add(request.model)
            elif self.cost_spent + self._reserved_cost + estimate > self.max_cost:
                self._cost_refusal = True
                return (
                    f"cost budget exhausted: ${self.cost_spent:.4f} spent and "
                    f"${self._reserved_cost:.4f} in flight of --gpo-max-cost ${self.max_cost:.4f}; "
                    f"the next call to '{request.model}' may cost up to ${estimate:.4f} "
                    "(set max_tokens to tighten this estimate)"
                )
            else:
                self._reserved_cost += estimate
        self.calls_made += 1
        return _Reservation(cost=estimate)

    def _estimate(
        self, litellm: Any, request: Request, kwargs: Mapping[str, Any], router: Any
    ) -> float | None:
        if router is None or self._router_kwargs is None:
            return _estimate_cost(litellm, request, kwargs)
        # The dearest deployment the Router may pick for this name; unknown if any is unpriced.
        models = [
            str(d["litellm_params"]["model"])
            for d in self._router_kwargs["model_list"]
            if d["model_name"] == request.model
        ]
        estimates = [
            _estimate_cost(litellm, request, kwargs, model=m) if _price_known(litellm, m) else None
            for m in models
        ]
        if not estimates or any(e is None for e in estimates):
            return None
        return max(e for e in estimates if e is not None)

    def _settle(
        self, reservation: _Reservation, actual: float | None, *, charge_estimate: bool
    ) -> None:
        if reservation.cost is not None:
            self._reserved_cost = max(0.0, self._reserved_cost - reservation.cost)
            if self._settled is not None:
                self._settled.set()
        if actual is not None:
            self.cost_spent += actual
        elif charge_estimate and reservation.cost is not None:
            # The provider may bill an attempt we could not price (a timeout still generates).
            self.cost_spent += reservation.cost

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            jitter = self._random.uniform(0.0, min(self.backoff_base, 1.0))
            return min(retry_after, self.retry_after_max) + jitter
        cap = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return self._random.uniform(0.0, cap)


# -- helpers ---------------------------------------------------------------------------------------


def _prepare_sim() -> str | None:
    """Register the simulated provider; a message when that is impossible."""
    try:
        sim = _sim_module()
    except ImportError as exc:
        return (
            f"the offline simulated models ({SIM_PREFIX}...) need the module pytest_gpo.sim, "
            f"which cannot be imported: {exc}"
        )
    try:
        sim.register()
    except Exception as exc:
        return f"registering the simulated models failed: {type(exc).__name__}: {exc}"
    return None


def load_router_config(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """litellm Router settings from a YAML or JSON file (or a mapping), checked.

    The file holds ``model_list`` (deployments: ``model_name`` and ``litellm_params`` with at
    least ``model``) and Router arguments (``routing_strategy``, ``cooldown_time``, ...), either
    at the top level or under ``router_settings`` as in a litellm proxy config. Values such as
    ``api_key: os.environ/OPENAI_API_KEY`` are resolved by litellm. Returns the keyword
    arguments for ``litellm.Router``; a problem is a :class:`~pytest_gpo.errors.ConfigError`
    naming the file and key. litellm is not imported here.
    """
    where = "router settings" if isinstance(source, Mapping) else os.fspath(source)
    fix = "see docs/models.md, 'Several deployments or keys: the litellm Router'"
    if isinstance(source, Mapping):
        data: Any = dict(source)
    else:
        try:
            with open(source, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the router settings file: {exc.strerror or exc}",
                path=where,
                fix="set gpo_router / GPO_ROUTER to an existing YAML or JSON file",
            ) from None
        import yaml

        try:
            data = json.loads(text) if where.endswith(".json") else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise ConfigError(
                f"cannot parse the router settings: {exc}", path=where, fix=fix
            ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            "router settings must be a mapping with a model_list", path=where, fix=fix
        )
    for key in _PROXY_ONLY_KEYS:
        if key in data:
            raise ConfigError(
                f"'{key}' is a litellm proxy setting, not a Router setting",
                path=where,
                key=key,
                fix="keep only model_list and router_settings (or Router arguments)",
            )
    settings = data.pop("router_settings", None) or {}
    if not isinstance(settings, dict):
        raise ConfigError(
            "router_settings must be a mapping", path=where, key="router_settings", fix=fix
        )
    kwargs: dict[str, Any] = {**settings, **data}
    deployments = kwargs.get("model_list")
    if not isinstance(deployments, list) or not deployments:
        raise ConfigError(
            "model_list must be a non-empty list of deployments",
            path=where,
            key="model_list",
            fix=fix,
        )
    for i, deployment in enumerate(deployments):
        params = deployment.get("litellm_params") if isinstance(deployment, dict) else None
        if (
            not isinstance(deployment, dict)
            or not isinstance(deployment.get("model_name"), str)
            or not isinstance(params, dict)
            or not isinstance(params.get("model"), str)
        ):
            raise ConfigError(
                "a deployment needs model_name (the name suites use) and "
                "litellm_params.model (the provider's model)",
                path=where,
                key=f"model_list[{i}]",
                fix="e.g. {model_name: gpt-4o-mini, litellm_params: {model: openai/gpt-4o-mini,"
                " api_key: os.environ/OPENAI_API_KEY_2}}",
            )
    return kwargs


def _wildcard_match(pattern: str, model: str) -> bool:
    """Whether a Router ``model_name`` with ``*`` wildcards serves ``model`` (litellm's rule)."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, model) is not None


def _deployment_priced(
    litellm: Any, router_kwargs: Mapping[str, Any] | None, hidden: Mapping[str, Any]
) -> bool:
    """True when litellm knows a price for the deployment behind a routed response.

    Read from the Router settings this client was given, not from the Router's internals
    (whose accessors litellm renames between releases).
    """
    model = str(hidden.get("litellm_model_name") or "")
    custom = ("input_cost_per_token", "output_cost_per_token", "input_cost_per_second")
    for deployment in (router_kwargs or {}).get("model_list", []):
        params = deployment.get("litellm_params") or {}
        if str(params.get("model")) == model and any(params.get(name) for name in custom):
            return True
    return bool(model) and _price_known(litellm, model)


#: Whether litellm's price map knows a model, as first seen: a Router registers the models of
#: its deployments in that map with $0 prices, so later lookups cannot tell unknown from free.
_PRICE_KNOWN: dict[str, bool] = {}


def _price_known(litellm: Any, model: str) -> bool:
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


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _response_cost(litellm: Any, response: Any) -> float | None:
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


def _estimate_cost(
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


@dataclass
class _Fault:
    retryable: bool
    retry_after: float | None
    message: str
    may_be_billed: bool = False
    rejected_n: bool = False


def _litellm_classes(litellm: Any, names: Iterable[str]) -> tuple[type[BaseException], ...]:
    found = (getattr(litellm, name, None) for name in names)
    return tuple(cls for cls in found if isinstance(cls, type))


def _classify(litellm: Any, exc: BaseException, kwargs: Mapping[str, Any]) -> _Fault:
    """Whether another attempt may help, how long the provider asked us to wait, and why."""
    message = str(exc).strip() or type(exc).__name__
    status = getattr(exc, "status_code", None)
    if isinstance(exc, TimeoutError):
        limit = kwargs.get("timeout")
        return _Fault(True, None, f"model call timed out after {limit} s", may_be_billed=True)
    if type(exc).__name__ in _ROUTER_BUSY_NAMES:
        # Every deployment is cooling down after failures; its cooldown is the wait to honour.
        cooldown = getattr(exc, "cooldown_time", None)
        wait = float(cooldown) if isinstance(cooldown, int | float) and cooldown >= 0 else None
        return _Fault(True, wait, message)
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
    return _Fault(
        retryable,
        _retry_after(exc) if retryable else None,
        message,
        may_be_billed=is_timeout,
        rejected_n=bool(rejected_n),
    )


def _retry_after(exc: BaseException) -> float | None:
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


def _redact(message: str, request: Request) -> str:
    """The message without secrets (request params, ``*_KEY`` env vars, key-like strings)."""
    for secret in _secrets(request.params):
        message = message.replace(secret, "***")
    for pattern, replacement in _SECRET_PATTERNS:
        message = pattern.sub(replacement, message)
    message = " ".join(message.split())
    if len(message) > _MAX_ERROR_CHARS:
        message = message[: _MAX_ERROR_CHARS - 3] + "..."
    return message


# -- the session's event loop ----------------------------------------------------------------------


class EventLoopRunner:
    """One asyncio event loop for a whole pytest session, run in a background thread.

    ``run(coro)`` runs a coroutine to completion on that loop from synchronous code (any
    thread but the loop's own). ``close()`` closes the attached client, litellm's cached HTTP
    clients and the loop, leaving no unclosed sockets behind (clean under ``-W error``).
    """

    def __init__(self, client: LiteLLMClient | None = None) -> None:
        #: The client closed by :meth:`close` (anything with ``async aclose()``).
        self.client: Any = client
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._serve, name="pytest-gpo-event-loop", daemon=True
        )
        self._closed = False
        self._thread.start()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The session's event loop."""
        return self._loop

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._closed

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the session loop and return its result (or raise its exception)."""
        if self._closed:
            coro.close()
            raise RuntimeError("EventLoopRunner is closed")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("EventLoopRunner.run() called from its own loop: await instead")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def close(self) -> None:
        """Close the client, litellm's HTTP clients for this loop, then the loop itself."""
        if self._closed:
            return
        self._closed = True
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=60)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=60)
            if not self._loop.is_running():
                self._loop.close()

    def __enter__(self) -> EventLoopRunner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def _shutdown(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.aclose()
        if "litellm" in sys.modules:
            from pytest_gpo import connections

            await connections.close_loop_pool()
        current = asyncio.current_task()
        others = [task for task in asyncio.all_tasks() if task is not current]
        for task in others:
            task.cancel()
        if others:
            await asyncio.gather(*others, return_exceptions=True)
        await self._loop.shutdown_asyncgens()
        await self._loop.shutdown_default_executor()
