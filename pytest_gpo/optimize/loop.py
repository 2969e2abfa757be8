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
from pytest_gpo.optimize.checkpoint import bad_state, ignored_message, read_checkpoint
from pytest_gpo.optimize.config import OptimizeConfig
from pytest_gpo.optimize.context import Abort, CandidateFilter, EvaluateFn, RunContext, StopFn
from pytest_gpo.optimize.estimate import plan_run
from pytest_gpo.optimize.final import final_result, unscored_result
from pytest_gpo.optimize.progress import ProgressCallback, ProgressEvent
from pytest_gpo.optimize.repeat import repeat_runs
from pytest_gpo.optimize.result import OptimizationResult
from pytest_gpo.optimize.retrieval import TrajectoryEntry
from pytest_gpo.optimize.schedule import batch_for_step
from pytest_gpo.optimize.state import RunState, check_saved
from pytest_gpo.optimize.step import run_step


async def _run(ctx: RunContext) -> OptimizationResult:
    """Start or resume, run the steps until done or stopped, then the final scoring."""
    resumed_from: int | None = None
    saved: dict[str, Any] | None = None
    problem: str | None = None
    if ctx.checkpoint_dir is not None:
        saved, problem = read_checkpoint(ctx.checkpoint_dir, ctx.fingerprint)
    restored: RunState | None = None
    if saved is not None:
        try:
            check_saved(saved)
            candidate = RunState.from_dict(saved)
            candidate.check(ctx.total)
            restored = candidate
        except Exception as exc:  # a hand-edited or foreign checkpoint is data, not a crash
            problem = bad_state(exc)
    stopped: str | None = None
    stopped_kind: str | None = None
    if restored is not None:
        ctx.state = restored
        ctx.embedding_base = ctx.state.embedding_seconds
        resumed_from = ctx.state.t
        ctx.emit("resume", message=f"{ctx.state.evaluations} evaluations reused")
    else:
        ctx.state = RunState(
            t=0, current=TrajectoryEntry(ctx.initial, 0.0), trajectory=[], scores={}
        )
        if problem is not None and ctx.checkpoint_dir is not None:
            ctx.emit("note", message=ignored_message(ctx.checkpoint_dir, problem))
        train, eval_, test = ctx.splits.sizes()
        ctx.emit("start", message=f"cases: train {train}, eval {eval_}, test {test}")
        try:
            run = await ctx.evaluate(ctx.initial, ctx.splits.eval)
        except Abort as abort:
            unscored = unscored_result(ctx, abort.reason)
            unscored.stopped_kind = abort.kind
            return unscored
        entry = TrajectoryEntry(ctx.initial, run.score)
        ctx.state.current = entry
        ctx.state.trajectory = [entry]
        ctx.state.scores = {ctx.initial: run.score}
        ctx.save()
    state = ctx.state
    for t in range(state.t + 1, ctx.total + 1):
        batch = batch_for_step(ctx.splits.train, t, ctx.config)
        stopped = ctx.stop_requested()
        if not stopped and (stopped := ctx.cap_reason(t, len(batch))):
            stopped_kind = "budget"  # a cap ended the run, as a capped call would
        if stopped:
            break
        try:
            step = await run_step(ctx, t, batch)
        except Abort as abort:
            stopped, stopped_kind = abort.reason, abort.kind
            break
        state.steps.append(step)
        state.t = t
        ctx.save()
        ctx.emit("step", step=step)
    if stopped:
        ctx.emit("stop", message=stopped)
    result = await final_result(ctx, stopped, resumed_from)
    result.stopped_kind = stopped_kind
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
    system: str | None = None,
    concurrency: int = 8,
) -> OptimizationResult:
    """Optimize one suite's prompt with GPO (or the preset in ``config``).

    ``evaluate(prompt_text, case_ids)`` scores a prompt on cases (the plugin renders, calls the
    task model through its cache and scores). ``client`` serves the optimizer (and reflection)
    requests. ``optimizer_model`` wins over ``config.optimizer_model``. ``embedder`` is needed
    for relevance retrieval only. ``repeats`` is the suite's samples per case (used to keep
    enough of ``config.max_calls`` for the held-out test). ``candidate_filter(current,
    candidate)`` runs after the built-in checks; a returned reason rejects the candidate.
    ``checkpoint_dir`` is this run's directory (one run per directory; a checkpoint of other
    settings there is ignored and overwritten). ``system`` is the task model's system message
    (shown to the optimizer read-only); ``concurrency`` the calls the task model's client runs at
    once (a racing round scores that many). Input errors (fewer than 3 cases, no
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
            system=system,
            concurrency=concurrency,
        )
        return await _run(ctx)

    where = None if checkpoint_dir is None else Path(checkpoint_dir)
    if config.runs > 1:
        return await repeat_runs(config, where, run_one)
    return await run_one(config, where)
