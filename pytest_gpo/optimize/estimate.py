"""Pre-flight plan of a run: the splits, the number of steps and the most calls it can make.

The plugin prints :meth:`Estimate.summary` before the first call. Task-call counts are upper
bounds: rejected and duplicate candidates and cached responses make the real count lower.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pytest_gpo.optimize.config import OptimizeConfig
from pytest_gpo.optimize.schedule import total_steps
from pytest_gpo.optimize.splits import Splits, predefined_splits, split_cases

#: At most this many prompts tied on eval at the end are scored on train to break the tie.
TIE_BREAK_MAX = 4


@dataclass(frozen=True)
class RunPlan:
    """The splits of a suite's cases and the number of steps of its run."""

    splits: Splits
    total_steps: int


def plan_run(
    case_ids: Sequence[str],
    config: OptimizeConfig,
    split_by_id: Mapping[str, str] | None = None,
) -> RunPlan:
    """Split the cases and count the steps (raises ``SuiteError`` for fewer than 3 cases).

    ``split_by_id`` (the cases' predefined ``split`` fields) wins over the hash split.
    """
    if split_by_id:
        splits = predefined_splits(case_ids, split_by_id)
    else:
        splits = split_cases(case_ids, config.splits, config.seed)
    return RunPlan(
        splits=splits,
        total_steps=total_steps(config, len(splits.train)),
    )


@dataclass(frozen=True)
class Estimate:
    """Upper bounds of the model calls of one run.

    ``optimizer_calls`` are requests to the optimizer model (one a step, each asking for
    ``completions / steps`` completions) and ``reflection_calls`` the APO/PE2 reflection
    requests. ``task_calls_max`` counts task-model calls of every evaluation: the initial
    prompt on eval, ``candidates x |eval|`` a step (plus the train batch for reflection), and
    the final scoring of the initial and best prompts on test and train.
    """

    steps: int
    optimizer_calls: int
    reflection_calls: int
    completions: int
    task_calls_initial: int
    task_calls_per_step: int
    task_calls_final: int

    @property
    def task_calls_max(self) -> int:
        """Most task-model calls the run can make."""
        return (
            self.task_calls_initial + self.steps * self.task_calls_per_step + self.task_calls_final
        )

    @property
    def total_calls_max(self) -> int:
        """Most calls of any kind the run can make."""
        return self.optimizer_calls + self.reflection_calls + self.task_calls_max

    def summary(self) -> str:
        """One line for the terminal, e.g. before the first call."""
        parts = [f"{self.steps} steps", f"{self.optimizer_calls} optimizer calls"]
        if self.reflection_calls:
            parts.append(f"{self.reflection_calls} reflection calls")
        parts.append(f"<= {self.task_calls_max} task calls")
        return (
            ", ".join(parts)
            + f" (<= {self.total_calls_max} in all, fewer with the cache and deduplication)"
        )


def estimate_calls(
    config: OptimizeConfig,
    n_eval: int,
    n_test: int,
    n_train: int,
    total: int,
    *,
    repeats: int = 1,
) -> Estimate:
    """Upper bounds of the calls of a run with these split sizes and ``total`` steps.

    ``repeats`` is the suite's samples per case (each case evaluation is that many calls).
    ``config.runs`` repeats multiply everything; prompts tied on eval at the end are scored on
    train to break the tie (at most ``TIE_BREAK_MAX`` of them).
    """
    batch = min(config.batch_size, n_train) if config.reflection else 0
    runs = config.runs
    return Estimate(
        steps=total * runs,
        optimizer_calls=total * runs,
        reflection_calls=total * runs if config.reflection else 0,
        completions=total * runs * config.candidates,
        task_calls_initial=n_eval * repeats * runs,
        task_calls_per_step=(config.candidates * n_eval + batch) * repeats,
        task_calls_final=(2 * n_test + (1 + TIE_BREAK_MAX) * n_train) * repeats * runs,
    )
