"""Glue between the plugin session and :func:`~pytest_gpo.optimize.loop.optimize`.

:func:`optimize_suite` resolves a suite's GPO settings (suite ``optimize:`` mapping, then the
session's ``--gpo-*`` values), prints the pre-flight estimate, and runs the loop on the
session's event loop with the session's client, cache and embedder. It returns the result;
writing the prompt back is the write-back module's job. No pytest import here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_gpo.errors import ConfigError, GpoError, SuiteError
from pytest_gpo.llm.types import Embedder, canonical_json
from pytest_gpo.optimize.config import OptimizeConfig
from pytest_gpo.optimize.context import CandidateFilter
from pytest_gpo.optimize.estimate import Estimate, estimate_calls, plan_run
from pytest_gpo.optimize.loop import optimize
from pytest_gpo.optimize.progress import ProgressEvent, format_progress
from pytest_gpo.optimize.result import OptimizationResult
from pytest_gpo.results import SuiteRun

if TYPE_CHECKING:
    from pytest_gpo.plugin.session import GpoSession
    from pytest_gpo.settings import Settings
    from pytest_gpo.suites.model import Suite

#: Where run directories (checkpoints) live, relative to the rootdir.
RUNS_DIR = ".gpo/runs"


def suite_config(suite: Suite, settings: Settings) -> OptimizeConfig:
    """The suite's ``optimize:`` settings with the session's ``--gpo-*`` values on top.

    ``--gpo-seed`` counts only when it was set somewhere (its default 0 must not override a
    suite's own seed).
    """
    sources = settings.sources or {}
    overrides: dict[str, Any] = {
        "preset": settings.preset,
        "steps": settings.steps,
        "candidates": settings.candidates,
        "max_calls": settings.max_calls,
        "max_cost": settings.max_cost,
        # optimizer requests (E)
        "optimizer_params": settings.optimizer_params,
        "embedding_model": settings.embedding_model,
    }
    if sources.get("seed", "default") != "default":
        overrides["seed"] = settings.seed
    return suite.optimize.with_overrides(overrides, where=suite.path)


def run_key(suite: Suite, config: OptimizeConfig, optimizer_model: str, task_model: str) -> str:
    """12 hex digits naming a run: prompt, settings, cases, scorers, system message, models."""
    payload = {
        "prompt": suite.prompt_text,
        "config": config.fingerprint_dict(),
        "dataset": suite.dataset_hash(),
        "scorers": suite.scorer_config_hash(),
        "system": suite.system,
        "params": dict(suite.params),
        "optimizer_model": optimizer_model,
        "task_model": task_model,
    }
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()[:12]


def run_dir(rootdir: Path, suite: Suite, key: str) -> Path:
    """``<rootdir>/.gpo/runs/<suite>-<key>/`` (the suite name made safe for a path)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", suite.name).strip("._") or "suite"
    return rootdir / RUNS_DIR / f"{safe}-{key}"


def suite_estimate(suite: Suite, config: OptimizeConfig, repeats: int = 1) -> Estimate:
    """Upper bounds of the calls optimizing this suite can make."""
    plan = plan_run([c.id for c in suite.cases], config, split_map(suite))
    train, eval_, test = plan.splits.sizes()
    return estimate_calls(config, eval_, test, train, plan.total_steps, repeats=repeats)


def split_map(suite: Suite) -> dict[str, str] | None:
    """The cases' predefined splits (``split:`` on every case), or ``None`` to split by hash."""
    if not suite.cases or suite.cases[0].split is None:
        return None
    return {c.id: c.split for c in suite.cases if c.split is not None}


def _hook_filter(session: GpoSession, suite: Suite) -> CandidateFilter | None:
    hook = session.hook
    if hook is None or not hasattr(hook, "pytest_gpo_filter_candidate"):
        return None

    def candidate_filter(current: str, candidate: str) -> str | None:
        answers: Sequence[Any] = hook.pytest_gpo_filter_candidate(
            suite_name=suite.name, current=current, candidate=candidate
        )
        for answer in answers or ():
            if answer:
                return str(answer)
        return None

    return candidate_filter


def optimize_suite(
    session: GpoSession,
    suite: Suite,
    progress: Callable[[str], None],
    on_run_dir: Callable[[Path], None] | None = None,
) -> OptimizationResult:
    """Optimize one suite's prompt (blocking, on the session's event loop).

    ``on_run_dir`` is told the run directory (where the checkpoint goes) before the first call.

    Raises :class:`~pytest_gpo.errors.GpoError` for settings that cannot work (no optimizer
    model, fewer than 3 cases, a bad ``optimize:`` key); model faults end the run cleanly and
    are described in the result.
    """
    from pytest_gpo.evaluate import evaluate

    settings = session.settings
    config = suite_config(suite, settings)
    optimizer_model = session.optimizer_model_for(suite)
    options = session.eval_options(suite)
    try:
        estimate = suite_estimate(suite, config, options.repeat)
    except SuiteError as exc:
        if exc.path is not None:
            raise
        raise SuiteError(
            exc.message, path=suite.path, key=exc.key, case=exc.case, fix=exc.fix
        ) from None
    progress(f"{suite.name}: preset {config.preset}, at most {estimate.summary()}")

    cases = {c.id: c for c in suite.cases}
    client = session.client

    async def evaluate_prompt(prompt: str, case_ids: Sequence[str]) -> SuiteRun:
        return await evaluate(
            suite, client, options, prompt_text=prompt, cases=[cases[i] for i in case_ids]
        )

    embedder: Embedder | None = None
    if config.retrieval == "relevance":
        from pytest_gpo.llm.embeddings import require_local_embeddings, sentence_embedder

        try:
            require_local_embeddings(default_model=config.embedding_model is None)
        except GpoError as exc:
            raise ConfigError(
                exc.message + " (preset " + config.preset + " retrieves by relevance)",
                path=suite.path,
                key="optimize.preset",
                fix="pip install 'pytest-gpo[semantic]' (install torch first for a CPU-only "
                "build), or retrieve without embeddings: optimize: {retrieval: recency} in the "
                "suite, or a preset that needs none (--gpo-preset ape, opro or pe2)",
            ) from None
        embedder = sentence_embedder(config.embedding_model)
        if config.embedding_model is not None:
            try:  # a model that cannot load fails here, naming the setting, not at step 1
                embedder.embed([suite.prompt_text])
            except GpoError as exc:
                raise ConfigError(
                    exc.message, path=suite.path, key="optimize.embedding_model", fix=exc.fix
                ) from None

    def on_event(event: ProgressEvent) -> None:
        progress(format_progress(event))

    key = run_key(suite, config, optimizer_model, options.model)
    where = run_dir(settings.rootdir, suite, key)
    if on_run_dir is not None:
        on_run_dir(where)
    return session.runner.run(
        optimize(
            suite_name=suite.name,
            initial_prompt=suite.prompt_text,
            case_ids=[c.id for c in suite.cases],
            expected_by_id={c.id: (c.expected if c.has_expected else None) for c in suite.cases},
            vars_by_id={c.id: c.vars for c in suite.cases},
            evaluate=evaluate_prompt,
            client=client,
            config=config,
            optimizer_model=optimizer_model,
            embedder=embedder,
            progress=on_event,
            checkpoint_dir=where,
            dataset_hash=suite.dataset_hash(),
            repeats=options.repeat,
            candidate_filter=_hook_filter(session, suite),
            split_by_id=split_map(suite),
            system=suite.system,
            concurrency=settings.concurrency,
        )
    )


def nothing_done_error(settings: Settings, result: OptimizationResult, repeats: int) -> str | None:
    """Why a call or cost cap left an optimization unable to run a single step (not even to
    score its initial prompt, or not the first step after it): the cap, the calls it needs at
    least, the fix; or why steps ran but the held-out test could not be scored; ``None``
    otherwise. An optimization that did nothing is never a green 'prompt kept'."""
    test = result.scores.get("test")
    unjudged = bool(result.steps) and (test is None or test.before is None)
    if unjudged:
        # steps ran, but no held-out verdict (under xdist the workers share one cap): the
        # calls bought nothing that could be written, which must not pass as 'prompt kept'
        return (
            f"optimization ran {len(result.steps)} step(s) but could not score the held-out "
            f"test, so nothing can be written: {result.reason.removeprefix('not accepted: ')}; "
            "fix: raise --gpo-max-calls / --gpo-max-cost (under pytest-xdist the workers "
            "share it), select fewer suites (-k), or check the provider"
        )
    if result.stopped_kind != "budget" or result.steps:
        return None
    caps = []
    if settings.max_calls is not None:
        caps.append(f"--gpo-max-calls {settings.max_calls}")
    if settings.max_cost is not None:
        caps.append(f"--gpo-max-cost {settings.max_cost:g}")
    cap = f"({' / '.join(caps) or 'the call budget'}, shared by every suite of the run)"
    fix = "fix: raise --gpo-max-calls / --gpo-max-cost or select fewer suites (-k)"
    if result.trajectory:
        return (
            f"optimization could not run a step within the run's cap {cap}: the initial prompt "
            f"was scored, then {result.stopped_reason}; {fix}"
        )
    n_eval = result.split_sizes.get("eval", 0)
    return (
        f"optimization could not score the initial prompt within the run's cap {cap}: it needs "
        f"at least {n_eval * repeats} calls (the eval split, {n_eval} cases x {repeats} "
        f"repeat(s)) before a step can run, and more for the steps and the held-out test "
        f"({result.stopped_reason}); {fix}"
    )
