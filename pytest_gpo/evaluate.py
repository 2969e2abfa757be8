"""Run a prompt over cases: render, call the model, score. Shared by the gate and the optimizer.

All case runs of a suite are started at once; the client's concurrency cap decides how many
calls are in flight, so a suite's wall time is close to ``ceil(calls / concurrency) x latency``.
Errors come back as data on each run; nothing here raises for a provider fault.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pytest_gpo.errors import GpoError
from pytest_gpo.llm.budget import BudgetRefused
from pytest_gpo.llm.replies import CUT_NOTE
from pytest_gpo.llm.types import (
    Completion,
    Embedder,
    ErrorKind,
    ModelClient,
    Request,
    Usage,
    valid_text,
)
from pytest_gpo.results import CaseResult, RunResult, SuiteRun
from pytest_gpo.scorers.base import ScoreContext, ScorerCallFailed, ScoreResult
from pytest_gpo.scorers.score_cache import ScoreCache, ScoreCacheMiss
from pytest_gpo.suites.model import Case, Suite
from pytest_gpo.templates.template import render


class CountingClient:
    """Wraps a client to add every completion (task and judge calls) to one :class:`Usage`."""

    def __init__(self, inner: ModelClient, usage: Usage) -> None:
        self.inner = inner
        self.usage = usage
        self.error_kinds: set[ErrorKind] = set()

    async def complete(self, request: Request) -> Completion:
        """Delegate, then count."""
        completion = await self.inner.complete(request)
        self.usage.add(completion)
        if completion.error_kind:
            self.error_kinds.add(completion.error_kind)
        return completion

    async def aclose(self) -> None:
        """The inner client is closed by its owner."""


@dataclass(frozen=True)
class EvalOptions:
    """How to run a suite: the resolved model, repeats and helpers for scorers.

    ``scores`` keeps expensive scores (semantic similarities) in the run's response cache.
    """

    model: str
    repeat: int = 1
    min_pass: int = 1
    judge_model: str | None = None
    embedder: Callable[[str | None], Embedder] | None = None
    scores: ScoreCache | None = None


def build_messages(suite: Suite, prompt_text: str, case: Case) -> tuple[dict[str, str], ...]:
    """The chat messages of one case: the fixed system message, then the rendered prompt."""
    user = valid_text(render(prompt_text, case.vars, where=str(suite.prompt_path), case=case.id))
    if suite.system:
        return ({"role": "system", "content": suite.system}, {"role": "user", "content": user})
    return ({"role": "user", "content": user},)


class NonFiniteScore(Exception):
    """A scorer returned NaN or an infinity: the case errors instead of being scored."""


async def _score(
    suite: Suite, output: str, case: Case, ctx: ScoreContext
) -> tuple[float, bool, str]:
    results: list[tuple[float, str, ScoreResult]] = []
    outcomes = await asyncio.gather(
        *(spec.scorer.score(output, case, ctx) for spec in suite.scorers), return_exceptions=True
    )
    for spec, outcome in zip(suite.scorers, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, Exception) or isinstance(
                outcome, ScoreCacheMiss | BudgetRefused | ScorerCallFailed
            ):
                raise outcome
            outcome = ScoreResult(0.0, False, f"scorer raised {type(outcome).__name__}: {outcome}")
        results.append((spec.weight, spec.label, outcome))
    for _, label, r in results:
        if not isinstance(r.score, int | float) or not math.isfinite(r.score):
            raise NonFiniteScore(
                f"scorer {label} returned the score {r.score!r}, not a finite number "
                f"({r.reason}); fix the scorer: a score must be a number from 0 to 1"
            )
    total = sum(w for w, _, _ in results)
    # a plugin scorer's NaN counts as 0 (min/max would pass it through as 1.0)
    score = sum(w * (min(1.0, r.score) if r.score > 0 else 0.0) for w, _, r in results) / total
    passed = all(r.passed for _, _, r in results)
    if len(results) == 1:
        reason = results[0][2].reason
    else:
        reason = "; ".join(f"{label}: {r.reason}" for _, label, r in results)
    return score, passed, reason


async def _run_one(
    suite: Suite,
    client: CountingClient,
    prompt_text: str,
    case: Case,
    sample: int,
    options: EvalOptions,
    scores: ScoreCache | None,
) -> RunResult:
    try:
        messages = build_messages(suite, prompt_text, case)
    except GpoError as exc:
        return RunResult(sample, "", 0.0, False, exc.message, error=exc.render())
    request = Request(
        model=options.model, messages=messages, params=suite.params, sample=sample, purpose="task"
    )
    completion = await client.complete(request)
    if not completion.ok:
        error = valid_text(completion.error or "")
        return RunResult(sample, "", 0.0, False, error, error=error)
    output = valid_text(completion.text)
    ctx = ScoreContext(
        client=client,
        embedder=options.embedder,
        suite_dir=suite.path.parent,
        prompt=messages[-1]["content"],
        judge_model=options.judge_model,
        sample=sample,
        scores=scores,
    )
    try:
        score, passed, reason = await _score(suite, output, case, ctx)
    except NonFiniteScore as exc:
        # never a pass or a fail: the case errors, so the suite errors and nothing is recorded
        client.error_kinds.add(ErrorKind.BAD_SCORE)
        return RunResult(sample, output, 0.0, False, str(exc), error=str(exc))
    except ScoreCacheMiss as exc:
        # like an answer missing in replay: an error of the case, reported as cache_miss
        client.error_kinds.add(ErrorKind.CACHE_MISS)
        return RunResult(sample, output, 0.0, False, str(exc), error=str(exc))
    except ScorerCallFailed as exc:
        # a judge's call failed: an error of the case (by the call's kind), not a 0 score
        try:
            client.error_kinds.add(ErrorKind(exc.kind or ErrorKind.PROVIDER))
        except ValueError:
            client.error_kinds.add(ErrorKind.PROVIDER)
        return RunResult(sample, output, 0.0, False, str(exc), error=str(exc))
    except BudgetRefused as exc:
        # an embedding call a cap refused: like a refused model call, an error, not a score
        client.error_kinds.add(ErrorKind.BUDGET)
        return RunResult(sample, output, 0.0, False, str(exc), error=str(exc))
    if completion.cut[:1] == (True,):
        # a runaway answer stopped by the output limit: said first, so a narrow column shows it
        reason = f"{CUT_NOTE}; {reason}" if reason else CUT_NOTE
    return RunResult(sample, output, score, passed, valid_text(reason))


async def evaluate(
    suite: Suite,
    client: ModelClient,
    options: EvalOptions,
    *,
    prompt_text: str | None = None,
    cases: Sequence[Case] | None = None,
) -> SuiteRun:
    """Run ``prompt_text`` (default: the suite's prompt) over ``cases`` (default: all).

    Each case runs ``options.repeat`` times with sample indices 0..N-1 (distinct cache keys);
    a case passes when at least ``options.min_pass`` runs pass.
    """
    text = suite.prompt_text if prompt_text is None else prompt_text
    selected = suite.cases if cases is None else cases
    counting = CountingClient(client, Usage())
    scores = options.scores.counting(counting.usage) if options.scores is not None else None
    jobs = [
        _run_one(suite, counting, text, case, sample, options, scores)
        for case in selected
        for sample in range(options.repeat)
    ]
    runs = await asyncio.gather(*jobs)
    results: list[CaseResult] = []
    errors: list[str] = []
    first_with: dict[str, tuple[str, int]] = {}
    for i, case in enumerate(selected):
        case_runs = list(runs[i * options.repeat : (i + 1) * options.repeat])
        for r in case_runs:
            if r.error:
                # one message per cause: a refused key or a replay miss repeats on every case
                earlier = first_with.setdefault(r.error, (case.id, r.sample))
                if earlier == (case.id, r.sample):
                    errors.append(f"case '{case.id}': {r.error}")
                elif earlier[0] == case.id:
                    errors.append(
                        f"case '{case.id}' sample {r.sample}: the same error as sample {earlier[1]}"
                    )
                else:
                    errors.append(f"case '{case.id}': the same error as case '{earlier[0]}'")
        results.append(
            CaseResult(
                case_id=case.id,
                vars=case.vars,
                expected=case.expected if case.has_expected else None,
                runs=case_runs,
                min_pass=options.min_pass,
            )
        )
    kind: ErrorKind | None = None
    if errors:
        # the most telling kind first: a refused key, a replay miss or a cap explains itself
        for candidate in (
            ErrorKind.CREDENTIALS,
            ErrorKind.CACHE_MISS,
            ErrorKind.BUDGET,
            ErrorKind.FILTERED,
            ErrorKind.EMPTY,
            ErrorKind.PROVIDER,
            ErrorKind.BAD_SCORE,
        ):
            if candidate in counting.error_kinds:
                kind = candidate
                break
        else:
            kind = ErrorKind.RENDER
    return SuiteRun(
        suite=suite.name,
        model=options.model,
        prompt_text=text,
        cases=results,
        usage=counting.usage,
        errors=errors,
        error_kind=kind,
    )
