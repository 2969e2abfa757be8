"""The end of a run: the best prompt against the initial one on the held-out test, the result.

The held-out verdict (:func:`~pytest_gpo.optimize.guard.held_out_verdict`) decides whether the
best prompt by eval is accepted; train scores are added for the report when the caps allow.
When no step ran (a cap or a stop before step 1), the best prompt is the initial one and
nothing is scored: there is nothing to compare, and the calls are left to the run's next suite.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from pytest_gpo.optimize.budget import REJECTIONS
from pytest_gpo.optimize.context import Abort, RunContext
from pytest_gpo.optimize.guard import held_out_verdict
from pytest_gpo.optimize.result import CaseOutcome, OptimizationResult, SplitScore
from pytest_gpo.optimize.select import select_best
from pytest_gpo.results import SuiteRun


def _ordered_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """Rejection counts, built-in reasons in their fixed order, then plugin reasons by name."""
    ordered = {k: counts[k] for k in REJECTIONS if counts.get(k)}
    ordered.update({k: v for k, v in sorted(counts.items()) if k not in ordered and v})
    return ordered


async def final_result(
    ctx: RunContext, stopped: str | None, resumed_from: int | None
) -> OptimizationResult:
    """Score the initial and the best prompt on test, judge the rewrite, build the result.

    ``stopped`` is why the steps ended early (``None``: all ran); a failed call here ends in a
    result that is not accepted, never in an exception.
    """
    assert ctx.state is not None
    st = ctx.state
    selection = await select_best(ctx)
    best = selection.best
    changed = best.prompt != ctx.initial
    scores = {
        "train": SplitScore(),
        "eval": SplitScore(st.scores.get(ctx.initial), best.score),
        "test": SplitScore(),
    }
    test_before: list[CaseOutcome] = []
    test_after: list[CaseOutcome] = []
    verdict_reason: str
    accepted = False
    paired_name: str | None = None
    paired_p: float | None = None
    # no step ran (a cap or a stop before step 1): nothing to compare, no call is spent
    no_step = not st.steps and not changed
    if no_step:
        verdict_reason = f"not accepted: no step could run ({stopped or 'no step ran'})"
    else:
        try:
            prompts = [ctx.initial, best.prompt] if changed else [ctx.initial]
            runs = await asyncio.gather(
                *(ctx.evaluate(p, ctx.splits.test) for p in prompts), return_exceptions=True
            )
            for outcome in runs:
                if isinstance(outcome, BaseException):
                    raise outcome
            before_run = runs[0]
            after_run = runs[-1]
            assert isinstance(before_run, SuiteRun) and isinstance(after_run, SuiteRun)
            test_before = [CaseOutcome.from_case_result(c) for c in before_run.cases]
            test_after = [CaseOutcome.from_case_result(c) for c in after_run.cases]
            scores["test"] = SplitScore(before_run.score, after_run.score)
            after_by_id = after_run.by_id()
            paired = [
                (c.score, after_by_id[c.case_id].score)
                for c in before_run.cases
                if c.case_id in after_by_id
            ]
            verdict = held_out_verdict(
                changed=changed,
                eval_before=scores["eval"].before or 0.0,
                test_before=[b for b, _ in paired],
                test_after=[a for _, a in paired],
                min_gain=ctx.config.min_gain,
                use_paired_test=ctx.config.use_paired_test,
                alpha=ctx.config.alpha,
            )
            accepted, verdict_reason = verdict.accepted, verdict.reason
            paired_name, paired_p = verdict.test_name, verdict.p_value
        except Abort as abort:
            verdict_reason = f"not accepted: the held-out test could not be scored ({abort.reason})"
            stopped = stopped or abort.reason
    known = selection.train
    if ctx.initial in known and best.prompt in known:
        scores["train"] = SplitScore(known[ctx.initial], known[best.prompt])
    elif not no_step and not ctx.budget_hit and ctx.train_affordable():
        prompts = [ctx.initial, best.prompt] if changed else [ctx.initial]
        train_runs = await asyncio.gather(
            *(_train_score(ctx, p, known) for p in prompts), return_exceptions=True
        )
        first, last = train_runs[0], train_runs[-1]
        # train scores only inform the report: a failure here leaves them unknown
        if isinstance(first, float) and isinstance(last, float):
            scores["train"] = SplitScore(first, last)
    return OptimizationResult(
        suite=ctx.suite,
        initial_prompt=ctx.initial,
        best_prompt=best.prompt,
        accepted=accepted,
        reason=verdict_reason,
        config=ctx.config,
        optimizer_model=ctx.model,
        task_model=st.task_model,
        dataset_hash=ctx.dataset_hash,
        scores=scores,
        test_before=test_before,
        test_after=test_after,
        steps=list(st.steps),
        trajectory=list(st.trajectory),
        rejected=_ordered_counts(st.rejected),
        duplicates=st.duplicates,
        optimizer_usage=st.optimizer_usage,
        task_usage=st.task_usage,
        optimizer_requests=st.optimizer_requests,
        reflection_requests=st.reflection_requests,
        evaluations=st.evaluations,
        split_sizes=dict(zip(("train", "eval", "test"), ctx.splits.sizes(), strict=True)),
        total_steps=ctx.total,
        stopped_reason=stopped,
        resumed_from=resumed_from,
        embedding_seconds=ctx.embedding_seconds(),
        paired_test=paired_name,
        paired_p=paired_p,
        selection_note=selection.note,
    )


async def _train_score(ctx: RunContext, prompt: str, known: Mapping[str, float]) -> float:
    if prompt in known:
        return known[prompt]
    run = await ctx.evaluate(prompt, ctx.splits.train)
    return run.score


def unscored_result(ctx: RunContext, reason: str) -> OptimizationResult:
    """The result of a run whose initial prompt could not be scored on eval (``reason``)."""
    assert ctx.state is not None
    st = ctx.state
    ctx.emit("stop", message=reason)
    return OptimizationResult(
        suite=ctx.suite,
        initial_prompt=ctx.initial,
        best_prompt=ctx.initial,
        accepted=False,
        reason=f"not accepted: the initial prompt could not be scored on eval ({reason})",
        config=ctx.config,
        optimizer_model=ctx.model,
        task_model=st.task_model,
        dataset_hash=ctx.dataset_hash,
        scores={k: SplitScore() for k in ("train", "eval", "test")},
        optimizer_usage=st.optimizer_usage,
        task_usage=st.task_usage,
        evaluations=st.evaluations,
        split_sizes=dict(zip(("train", "eval", "test"), ctx.splits.sizes(), strict=True)),
        total_steps=ctx.total,
        stopped_reason=reason,
    )
