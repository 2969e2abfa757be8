"""Small fakes shared by the optimizer tests: a scripted optimizer client, a table-driven
evaluator and a bag-of-words embedder. No litellm, no network, no model files."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from pytest_gpo.llm.types import Completion, Request, Usage
from pytest_gpo.results import CaseResult, RunResult, SuiteRun


class ScriptedClient:
    """Answers optimizer requests from a script: ``replies(request, index) -> texts``.

    ``budget_after`` makes every call after that many return ``error_kind="budget"``.
    Reflection requests get ``reflection_text``.
    """

    def __init__(
        self,
        replies: Callable[[Request, int], Sequence[str]],
        *,
        budget_after: int | None = None,
        reflection_text: str = "The prompt should ask for one word.",
        error_at: int | None = None,
    ) -> None:
        self.replies = replies
        self.budget_after = budget_after
        self.reflection_text = reflection_text
        self.error_at = error_at
        self.requests: list[Request] = []
        self.usage = Usage()
        self.optimizer_index = 0

    async def complete(self, request: Request) -> Completion:
        self.requests.append(request)
        if self.budget_after is not None and len(self.requests) > self.budget_after:
            c = Completion(error="max calls (3) reached", error_kind="budget")
            self.usage.add(c)
            return c
        if self.error_at is not None and len(self.requests) == self.error_at:
            c = Completion(error="HTTP 500 from provider", error_kind="provider", attempts=3)
            self.usage.add(c)
            return c
        if request.purpose == "reflection":
            texts: Sequence[str] = [self.reflection_text]
        else:
            texts = self.replies(request, self.optimizer_index)
            self.optimizer_index += 1
        c = Completion(
            texts=tuple(texts), prompt_tokens=100, completion_tokens=20, cost=0.001, attempts=1
        )
        self.usage.add(c)
        return c

    async def aclose(self) -> None:
        return None

    @property
    def purposes(self) -> list[str]:
        return [r.purpose for r in self.requests]


def steps_script(
    steps: Sequence[Sequence[str]], *, ignore_n: bool = False
) -> Callable[[Request, int], Sequence[str]]:
    """Replies per step (the request's sample index is the step with seed 0); later steps
    repeat the last entry. ``ignore_n`` plays a provider returning more than ``n``."""

    def replies(request: Request, index: int) -> Sequence[str]:
        texts = steps[min(request.sample - 1, len(steps) - 1)]
        wrapped = [f"Sure.\n<START>{t}<END>" for t in texts]
        return wrapped if ignore_n else wrapped[: request.n]

    return replies


@dataclass
class TableEvaluator:
    """Scores a prompt from tables: ``eval_scores`` for eval and train cases, ``test_scores``
    for test cases (default: the eval table). Unknown prompts score ``default``."""

    eval_scores: Mapping[str, float]
    test_ids: frozenset[str] = frozenset()
    test_scores: Mapping[str, float] | None = None
    default: float = 0.1
    fail_on: Mapping[str, str] = field(default_factory=dict)
    shared_usage: Usage | None = None
    calls: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    async def __call__(self, prompt: str, case_ids: Sequence[str]) -> SuiteRun:
        self.calls.append((prompt, tuple(case_ids)))
        usage = Usage()
        if prompt in self.fail_on:
            kind = self.fail_on[prompt]
            return SuiteRun(
                suite="s",
                model="task/model",
                prompt_text=prompt,
                cases=[],
                usage=usage,
                errors=[f"case 'c0': {kind} error"],
                error_kind=kind,
            )
        cases = []
        for cid in case_ids:
            table = self.eval_scores
            if cid in self.test_ids and self.test_scores is not None:
                table = self.test_scores
            score = table.get(prompt, self.default)
            passed = score >= 0.5
            task_call = Completion(texts=("x",), prompt_tokens=10, completion_tokens=1, attempts=1)
            usage.add(task_call)
            if self.shared_usage is not None:
                self.shared_usage.add(task_call)
            cases.append(
                CaseResult(
                    case_id=cid,
                    vars={"q": cid},
                    expected="yes",
                    runs=[RunResult(0, f"out-{cid}", score, passed, "ok" if passed else "no")],
                )
            )
        return SuiteRun("s", "task/model", prompt, cases, usage=usage)

    def prompts_evaluated(self) -> list[str]:
        return [p for p, _ in self.calls]


class BagOfWordsEmbedder:
    """Hashing bag-of-words vectors, normalized; counts the texts it embedded."""

    name = "bow"

    def __init__(self, dims: int = 64) -> None:
        self.dims = dims
        self.embedded: list[str] = []

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        rows = []
        for text in texts:
            self.embedded.append(text)
            v = [0.0] * self.dims
            for word in text.lower().split():
                h = int(hashlib.sha256(word.encode()).hexdigest(), 16)
                v[h % self.dims] += 1.0
            n = math.sqrt(sum(x * x for x in v)) or 1.0
            rows.append([x / n for x in v])
        return rows
