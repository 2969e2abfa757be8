"""Data types that cross the model-call boundary: requests, completions, usage, protocols.

No heavy imports here: this module is imported at plugin start-up. The litellm implementation
of :class:`ModelClient` lives in :mod:`pytest_gpo.llm.client` and is imported lazily.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable


class ErrorKind(StrEnum):
    """Why a model call or a run produced no answer (its value is what reports and JSON show)."""

    #: the provider failed on every attempt
    PROVIDER = "provider"
    #: ``--gpo-cache replay`` needed an answer that is not in the cache
    CACHE_MISS = "cache_miss"
    #: ``--gpo-max-calls`` / ``--gpo-max-cost`` would have been exceeded
    BUDGET = "budget"
    #: the prompt template could not be rendered for a case
    RENDER = "render"
    #: the provider refused or was not given the credentials (API key) for the model
    CREDENTIALS = "credentials"
    #: the reply held no answer: null or empty content, only tool calls, or no choices
    EMPTY = "empty_answer"
    #: the provider's content filter withheld the answer (``finish_reason: content_filter``)
    FILTERED = "filtered"
    #: a scorer returned a score that is not a finite number (NaN, infinity)
    BAD_SCORE = "bad_score"

    @property
    def text(self) -> str:
        """What happened, in the words every report and message uses."""
        return _ERROR_TEXT[self]


_ERROR_TEXT: dict[ErrorKind, str] = {
    ErrorKind.PROVIDER: "model calls failed after every retry",
    ErrorKind.CACHE_MISS: "responses missing from the cache (replay mode)",
    ErrorKind.BUDGET: "the model-call budget (--gpo-max-calls / --gpo-max-cost) ran out",
    ErrorKind.RENDER: "the prompt could not be rendered",
    ErrorKind.CREDENTIALS: "the API key was missing or refused",
    ErrorKind.EMPTY: "the model returned an empty answer",
    ErrorKind.FILTERED: "the provider's content filter withheld the answer",
    ErrorKind.BAD_SCORE: "a scorer returned a score that is not a finite number",
}


def error_text(kind: str | None) -> str:
    """The user text of an error kind (a kind this version does not know: a generic text)."""
    try:
        return ErrorKind(kind or "").text
    except ValueError:
        return "cases could not be run"


#: The modes of the response cache (``--gpo-cache``): read and write, read only, ignore.
CacheMode = Literal["rw", "replay", "off"]
CACHE_MODES: tuple[CacheMode, ...] = ("rw", "replay", "off")

#: Request parameters that choose *where* and *how* a call is sent, not *what* comes back.
#: They are left out of the cache key (and secrets never reach the cache or any report).
TRANSPORT_PARAMS: frozenset[str] = frozenset(
    {
        "api_base",
        "base_url",
        "api_key",
        "api_version",
        "organization",
        "timeout",
        "request_timeout",
        "stream_timeout",
        "extra_headers",
        "headers",
        "num_retries",
        "max_retries",
        "metadata",
    }
)

#: Parameters whose values are secrets: never written anywhere.
SECRET_PARAMS: frozenset[str] = frozenset({"api_key", "extra_headers", "headers"})

Message = Mapping[str, str]


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no insignificant whitespace: equal values, equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def valid_text(text: str) -> str:
    """``text`` with lone UTF-16 surrogates replaced by U+FFFD.

    JSON can carry them (``"\\ud83d"``: half an emoji, cut by ``max_tokens``); Python keeps
    them in ``str`` but cannot encode them, so one would break hashing, caching and every
    report downstream.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


@dataclass(frozen=True)
class Request:
    """One model call as the plugin sees it.

    ``sample`` distinguishes repeats of the same request (repeat runs, optimizer candidates):
    it is part of the cache key so that N repeats keep N cached answers. ``n`` asks for several
    completions in one call where the provider supports it.
    """

    model: str
    messages: tuple[Message, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    sample: int = 0
    n: int = 1
    purpose: str = "task"

    def output_params(self) -> dict[str, Any]:
        """The parameters that can change the output (everything but transport settings)."""
        return {k: v for k, v in self.params.items() if k not in TRANSPORT_PARAMS}

    def cache_key(self) -> str:
        """sha256 of the canonical request: model, messages, output params, sample index, n."""
        payload = {
            "v": 1,
            "model": self.model,
            "messages": [dict(m) for m in self.messages],
            "params": self.output_params(),
            "sample": self.sample,
            "n": self.n,
        }
        return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Completion:
    """The outcome of a :class:`Request`: texts, or an error carried as data.

    ``cached`` is true for answers served from the response cache or shared with an identical
    request already in flight; those are not billed again. ``cost`` is ``None`` when the
    provider's price is unknown.
    """

    texts: tuple[str, ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    cached: bool = False
    attempts: int = 0
    error: str | None = None
    error_kind: ErrorKind | None = None
    #: per text, True when the model stopped at its output limit (``finish_reason: length``)
    cut: tuple[bool, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the call produced texts."""
        return self.error is None

    @property
    def text(self) -> str:
        """The first completion text ('' when there is none)."""
        return self.texts[0] if self.texts else ""


@dataclass
class Usage:
    """Counters of model use; added up per suite, per session and across xdist workers."""

    calls: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cost_unknown: int = 0
    retries: int = 0
    errors: int = 0

    def add(self, completion: Completion) -> None:
        """Count one completion the caller received.

        Tokens count answers only; cost counts every attempt sent, failed ones included (a
        failed call to a model without a known price makes the cost unknown, not $0).
        """
        if completion.cached:
            self.cache_hits += 1
        else:  # a replay-mode miss too: the answer was not in the cache
            self.cache_misses += 1
        self.calls += completion.attempts
        self.retries += max(0, completion.attempts - 1)
        if completion.error is not None:
            self.errors += 1
        if completion.cached or completion.attempts == 0:
            return
        if completion.error is None:
            self.prompt_tokens += completion.prompt_tokens
            self.completion_tokens += completion.completion_tokens
        if completion.cost is None:
            self.cost_unknown += 1
        else:
            self.cost += completion.cost

    def merge(self, other: Usage) -> None:
        """Add another counter set into this one."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def combined(cls, *parts: Usage) -> Usage:
        """A new :class:`Usage` adding up ``parts``."""
        total = cls()
        for part in parts:
            total.merge(part)
        return total

    def cost_text(self) -> str:
        """Cost for display: ``$0.0123``, ``$0.0123 + unknown``, ``unknown`` or ``$0``.

        ``$0`` only when no call was sent; a model without a known price is never shown as
        ``$0.0000``, and a small known cost never rounds down to it (``<$0.0001``).
        """
        if self.cost_unknown and not self.cost:
            return "unknown"
        if not self.calls and not self.cost:
            return "$0"
        text = "<$0.0001" if 0 < self.cost < 0.00005 else f"${self.cost:.4f}"
        return text + " + unknown" if self.cost_unknown else text


@runtime_checkable
class ModelClient(Protocol):
    """Sends requests to models. Never raises for provider faults: errors come back as data."""

    usage: Usage

    async def complete(self, request: Request) -> Completion:
        """Answer one request (from the cache, an identical call in flight, or the provider)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalized vectors (rows), so a dot product is the cosine."""

    name: str

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed texts, one normalized vector per text, in order."""
        ...
