"""The GPO loop (GPO.md, "One run"): score, retrieve, budget, propose, check, evaluate, select.

:func:`optimize` runs one suite's prompt through ``T`` steps and returns an
:class:`~pytest_gpo.optimize.result.OptimizationResult`; it never writes prompt files and never
raises for a provider fault. A call cap (a completion or run with ``error_kind == "budget"``),
a provider error or ``should_stop()`` ends the run cleanly after the last completed step: the
best prompt so far is still scored on the held-out test and judged by the guard. With a
``checkpoint_dir`` every completed step is saved, and a rerun resumes after the last one
without re-scoring anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_gpo.errors import ConfigError
from pytest_gpo.llm.types import Embedder, ModelClient
from pytest_gpo.optimize.checkpoint import load_checkpoint
from pytest_gpo.optimize.config import OptimizeConfig
from pytest_gpo.optimize.context import Abort, CandidateFilter, EvaluateFn, RunContext, StopFn
from pytest_gpo.optimize.estimate import plan_run
from pytest_gpo.optimize.final import final_result, unscored_result
from pytest_gpo.optimize.progress import ProgressCallback, ProgressEvent
from pytest_gpo.optimize.repeat import repeat_runs
from pytest_gpo.optimize.result import OptimizationResult
from pytest_gpo.optimize.retrieval import TrajectoryEntry
from pytest_gpo.optimize.schedule import batch_for_step
from pytest_gpo.optimize.state import RunState
from pytest_gpo.optimize.step import run_step


async def _run(ctx: RunContext) -> OptimizationResult:
    """Start or resume, run the steps until done or stopped, then the final scoring."""
    resumed_from: int | None = None
    saved = (
        load_checkpoint(ctx.checkpoint_dir, ctx.fingerprint)
        if ctx.checkpoint_dir is not None
        else None
    )
    stopped: str | None = None
    if saved is not None:
        ctx.state = RunState.from_dict(saved)
        ctx.embedding_base = ctx.state.embedding_seconds
        resumed_from = ctx.state.t
        ctx.emit("resume", message=f"{ctx.state.evaluations} evaluations reused")
    else:
        ctx.state = RunState(
            t=0, current=TrajectoryEntry(ctx.initial, 0.0), trajectory=[], scores={}
        )
        train, eval_, test = ctx.splits.sizes()
        ctx.emit("start", message=f"cases: train {train}, eval {eval_}, test {test}")
        try:
            run = await ctx.evaluate(ctx.initial, ctx.splits.eval)
        except Abort as abort:
            return unscored_result(ctx, abort.reason)
        entry = TrajectoryEntry(ctx.initial, run.score)
        ctx.state.current = entry
        ctx.state.trajectory = [entry]
        ctx.state.scores = {ctx.initial: run.score}
        ctx.save()
    state = ctx.state
    for t in range(state.t + 1, ctx.total + 1):
        batch = batch_for_step(ctx.splits.train, t, ctx.config)
        stopped = ctx.stop_requested() or ctx.cap_reason(t, len(batch))
        if stopped:
            break
        try:
            step = await run_step(ctx, t, batch)
        except Abort as abort:
            stopped = abort.reason
            break
        state.steps.append(step)
        state.t = t
        ctx.save()
        ctx.emit("step", step=step)
    if stopped:
        ctx.emit("stop", message=stopped)
    result = await final_result(ctx, stopped, resumed_from)
    ctx.emit("final", message=result.reason)
    return result


async def optimize(
    *,
    suite_name: str,
    initial_prompt: str,
    case_ids: Sequence[str],
    expected_by_id: Mapping[str, Any],
    vars_by_id: Mapping[str, Mapping[str, Any]],
    evaluate: EvaluateFn,
    client: ModelClient,
    config: OptimizeConfig,
    optimizer_model: str | None = None,
    embedder: Embedder | None = None,
    progress: ProgressCallback | None = None,
    checkpoint_dir: str | Path | None = None,
    should_stop: StopFn | None = None,
    dataset_hash: str = "",
    repeats: int = 1,
    candidate_filter: CandidateFilter | None = None,
    split_by_id: Mapping[str, str] | None = None,
) -> OptimizationResult:
    """Optimize one suite's prompt with GPO (or the preset in ``config``).

    ``evaluate(prompt_text, case_ids)`` scores a prompt on cases (the plugin renders, calls the
    task model through its cache and scores). ``client`` serves the optimizer (and reflection)
    requests. ``optimizer_model`` wins over ``config.optimizer_model``. ``embedder`` is needed
    for relevance retrieval only. ``repeats`` is the suite's samples per case (used to keep
    enough of ``config.max_calls`` for the held-out test). ``candidate_filter(current,
    candidate)`` runs after the built-in checks; a returned reason rejects the candidate.
    ``checkpoint_dir`` is this run's directory (one run per directory; a checkpoint of other
    settings there is ignored and overwritten). Input errors (fewer than 3 cases, no
    optimizer model, relevance without an embedder, a broken template) raise
    :class:`~pytest_gpo.errors.GpoError` before any call; model faults never raise.
    ``split_by_id`` are the cases' predefined splits (all cases or none). With ``config.runs``
    above 1 the run is repeated on the same split (optimize/repeat.py).
    """
    model = optimizer_model or config.optimizer_model
    if not model:
        raise ConfigError(
            "no optimizer model to run GPO with",
            key="optimizer_model",
            fix="pass --gpo-optimizer-model, set GPO_OPTIMIZER_MODEL, or optimize.optimizer_model",
        )
    if config.retrieval == "relevance" and embedder is None:
        raise ConfigError(
            "relevance retrieval needs an embedder",
            key="optimize.retrieval",
            fix="install sentence-transformers, or set retrieval: recency",
        )
    plan = plan_run(case_ids, config, split_by_id)

    async def run_one(cfg: OptimizeConfig, where: Path | None) -> OptimizationResult:
        if config.runs > 1 and progress is not None:
            run = cfg.sampling_seed - config.sampling_seed + 1
            message = f"run {run}/{config.runs}, optimizer seed {cfg.sampling_seed}"
            progress(ProgressEvent("note", suite_name, 0, plan.total_steps, message=message))
        ctx = RunContext(
            suite_name=suite_name,
            initial_prompt=initial_prompt,
            plan=plan,
            expected_by_id=expected_by_id,
            vars_by_id=vars_by_id,
            evaluate=evaluate,
            client=client,
            optimizer_model=model,
            embedder=embedder,
            config=cfg,
            progress=progress,
            checkpoint_dir=where,
            should_stop=should_stop,
            dataset_hash=dataset_hash,
            repeats=repeats,
            candidate_filter=candidate_filter,
        )
        return await _run(ctx)

    where = None if checkpoint_dir is None else Path(checkpoint_dir)
    if config.runs > 1:
        return await repeat_runs(config, where, run_one)
    return await run_one(config, where)
