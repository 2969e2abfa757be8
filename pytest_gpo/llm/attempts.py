"""One provider call's outcome (:class:`Attempts`) and what a reply brought."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_gpo.llm import replies
from pytest_gpo.llm.costs import Costs
from pytest_gpo.llm.redact import scrub_answer
from pytest_gpo.llm.types import ErrorKind, Request


@dataclass
class Attempts:
    """The outcome of one provider call made with retries (possibly several attempts)."""

    texts: tuple[str, ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    attempts: int = 0
    error: str | None = None
    error_kind: ErrorKind | None = None
    rejected_n: bool = False
    #: the reply held no answer, and another attempt may bring one
    retryable: bool = False
    #: per text, cut at max_tokens (``finish_reason: length``)
    cut: tuple[bool, ...] = ()


def read_response(
    costs: Costs, litellm: Any, request: Request, response: Any, router: Any = None
) -> Attempts:
    """What one provider reply brought: its answers (or why none), tokens and cost."""
    answers, bad = replies.answers(response, request.n, request.model)
    # a provider echoing a key (hostile, or shown it) must not carry it into the cache,
    # scores, reports or a candidate prompt written to a file
    texts = [scrub_answer(a.text, request.params) for a in answers]
    usage = getattr(response, "usage", None)
    prompt_tokens = _int(getattr(usage, "prompt_tokens", 0))
    completion_tokens = _int(getattr(usage, "completion_tokens", 0))
    cost = costs.of_response(litellm, request, response, router, prompt_tokens, completion_tokens)
    if not texts:
        assert bad is not None
        return Attempts(
            error=bad.message,
            error_kind=bad.kind,
            retryable=bad.retryable,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=cost,
        )
    return Attempts(
        texts=tuple(texts),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost=cost,
        cut=tuple(a.cut for a in answers),
    )


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0
