"""``runs: N``: the same optimization repeated on one split with optimizer seeds s, s+1, ...

Each run has its own checkpoint directory (``run-1``, ``run-2``, ... under the suite's run
directory). The result written back is the best run's: highest eval score of its chosen
prompt, ties by its train score, then the earliest run. Every run's figures are kept in
:attr:`~pytest_gpo.optimize.result.OptimizationResult.runs` for the report's mean and spread.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_gpo.optimize.config import OptimizeConfig
from pytest_gpo.optimize.result import OptimizationResult, RunSummary

#: ``run_one(config, checkpoint_dir)``: one complete run with these settings.
RunOne = Callable[[OptimizeConfig, Path | None], Awaitable[OptimizationResult]]


def summarize(result: OptimizationResult, run: int) -> RunSummary:
    """One run's figures for the report."""
    return RunSummary(
        run=run,
        optimizer_seed=result.config.sampling_seed,
        eval_best=result.scores["eval"].after if "eval" in result.scores else None,
        train_best=result.scores["train"].after if "train" in result.scores else None,
        test_before=result.scores["test"].before if "test" in result.scores else None,
        test_after=result.scores["test"].after if "test" in result.scores else None,
        accepted=result.accepted,
        changed=result.changed,
        steps=result.steps_completed,
        calls_saved=result.calls_saved,
    )


def best_run(runs: Sequence[RunSummary]) -> int:
    """Index of the run to write back: best eval, ties by train, then the earliest."""

    def key(i: int) -> tuple[float, float, int]:
        r = runs[i]
        return (
            -(r.eval_best if r.eval_best is not None else -1.0),
            -(r.train_best if r.train_best is not None else -1.0),
            i,
        )

    return min(range(len(runs)), key=key)


@dataclass(frozen=True)
class Spread:
    """Mean, sample standard deviation (n - 1; 0 for one run), min and max of some scores."""

    n: int
    mean: float
    std: float
    low: float
    high: float

    def text(self) -> str:
        """E.g. ``0.812 ± 0.031 (sample std, 5 runs; min 0.780, max 0.850)``."""
        return (
            f"{self.mean:.3f} ± {self.std:.3f} (sample std, {self.n} runs; "
            f"min {self.low:.3f}, max {self.high:.3f})"
        )


def spread(values: Sequence[float | None]) -> Spread | None:
    """The spread of the known ``values`` (``None`` when none is known)."""
    known = [v for v in values if v is not None and math.isfinite(v)]
    if not known:
        return None
    std = statistics.stdev(known) if len(known) > 1 else 0.0
    return Spread(len(known), statistics.fmean(known), std, min(known), max(known))


async def repeat_runs(
    config: OptimizeConfig, checkpoint_dir: Path | None, run_one: RunOne
) -> OptimizationResult:
    """Run ``config.runs`` optimizations (optimizer seeds ``sampling_seed + i``) and return
    the best run's result, holding every run's summary."""
    base = config.sampling_seed
    results: list[OptimizationResult] = []
    for i in range(config.runs):
        cfg = config.replace(optimizer_seed=base + i, runs=1)
        where = None if checkpoint_dir is None else checkpoint_dir / f"run-{i + 1}"
        results.append(await run_one(cfg, where))
    summaries = [summarize(r, i + 1) for i, r in enumerate(results)]
    chosen = best_run(summaries)
    result = dataclasses.replace(
        results[chosen],
        config=config.replace(optimizer_seed=base + chosen),
        runs=summaries,
        chosen_run=chosen + 1,
    )
    return result
