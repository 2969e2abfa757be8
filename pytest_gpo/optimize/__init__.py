"""GPO: gradient-inspired prompt optimization (arXiv 2402.17564).

The plugin calls :func:`optimize` once per suite with an ``evaluate`` callback, the model
client and an injected embedder, and gets an :class:`OptimizationResult` back; this package
never writes prompt files and never imports pytest. :func:`plan_run` and
:func:`estimate_calls` give the pre-flight numbers, :mod:`~pytest_gpo.optimize.report` renders
results. Importing it is cheap: litellm, torch and sentence-transformers are never imported here.

The names below load their submodule on first use (PEP 562), so validating a suite's
``optimize:`` settings at collection imports the settings module only, not the optimizer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_gpo.optimize.budget import (
        REJECTION_TEXT,
        REJECTIONS,
        VALID_STATUSES,
        CandidateCheck,
        check_candidate,
        word_edit_distance,
    )
    from pytest_gpo.optimize.config import OptimizeConfig
    from pytest_gpo.optimize.estimate import Estimate, RunPlan, estimate_calls, plan_run
    from pytest_gpo.optimize.guard import Verdict, held_out_verdict
    from pytest_gpo.optimize.loop import CandidateFilter, EvaluateFn, StopFn, optimize
    from pytest_gpo.optimize.metaprompt import (
        TaskExample,
        build_meta_prompt,
        build_reflection_prompt,
    )
    from pytest_gpo.optimize.presets import PRESET_DESCRIPTIONS, PRESETS
    from pytest_gpo.optimize.progress import ProgressCallback, ProgressEvent, format_progress
    from pytest_gpo.optimize.proposer import parse_reply
    from pytest_gpo.optimize.report import (
        optimize_json,
        optimize_markdown,
        optimize_terminal_lines,
    )
    from pytest_gpo.optimize.result import (
        CandidateRecord,
        CaseOutcome,
        Flip,
        OptimizationResult,
        SplitScore,
        StepRecord,
    )
    from pytest_gpo.optimize.retrieval import EmbeddingMemo, TrajectoryEntry, retrieve
    from pytest_gpo.optimize.schedule import (
        batch_for_step,
        edit_budget,
        steps_per_epoch,
        total_steps,
    )
    from pytest_gpo.optimize.splits import Splits, split_cases

#: exported name -> the submodule that defines it
_EXPORTS: dict[str, str] = {
    "REJECTION_TEXT": "pytest_gpo.optimize.budget",
    "REJECTIONS": "pytest_gpo.optimize.budget",
    "VALID_STATUSES": "pytest_gpo.optimize.budget",
    "CandidateCheck": "pytest_gpo.optimize.budget",
    "check_candidate": "pytest_gpo.optimize.budget",
    "word_edit_distance": "pytest_gpo.optimize.budget",
    "OptimizeConfig": "pytest_gpo.optimize.config",
    "Estimate": "pytest_gpo.optimize.estimate",
    "RunPlan": "pytest_gpo.optimize.estimate",
    "estimate_calls": "pytest_gpo.optimize.estimate",
    "plan_run": "pytest_gpo.optimize.estimate",
    "Verdict": "pytest_gpo.optimize.guard",
    "held_out_verdict": "pytest_gpo.optimize.guard",
    "CandidateFilter": "pytest_gpo.optimize.loop",
    "EvaluateFn": "pytest_gpo.optimize.loop",
    "StopFn": "pytest_gpo.optimize.loop",
    "optimize": "pytest_gpo.optimize.loop",
    "TaskExample": "pytest_gpo.optimize.metaprompt",
    "build_meta_prompt": "pytest_gpo.optimize.metaprompt",
    "build_reflection_prompt": "pytest_gpo.optimize.metaprompt",
    "PRESET_DESCRIPTIONS": "pytest_gpo.optimize.presets",
    "PRESETS": "pytest_gpo.optimize.presets",
    "ProgressCallback": "pytest_gpo.optimize.progress",
    "ProgressEvent": "pytest_gpo.optimize.progress",
    "format_progress": "pytest_gpo.optimize.progress",
    "parse_reply": "pytest_gpo.optimize.proposer",
    "optimize_json": "pytest_gpo.optimize.report",
    "optimize_markdown": "pytest_gpo.optimize.report",
    "optimize_terminal_lines": "pytest_gpo.optimize.report",
    "CandidateRecord": "pytest_gpo.optimize.result",
    "CaseOutcome": "pytest_gpo.optimize.result",
    "Flip": "pytest_gpo.optimize.result",
    "OptimizationResult": "pytest_gpo.optimize.result",
    "SplitScore": "pytest_gpo.optimize.result",
    "StepRecord": "pytest_gpo.optimize.result",
    "EmbeddingMemo": "pytest_gpo.optimize.retrieval",
    "TrajectoryEntry": "pytest_gpo.optimize.retrieval",
    "retrieve": "pytest_gpo.optimize.retrieval",
    "batch_for_step": "pytest_gpo.optimize.schedule",
    "edit_budget": "pytest_gpo.optimize.schedule",
    "steps_per_epoch": "pytest_gpo.optimize.schedule",
    "total_steps": "pytest_gpo.optimize.schedule",
    "Splits": "pytest_gpo.optimize.splits",
    "split_cases": "pytest_gpo.optimize.splits",
}

__all__ = [
    "PRESETS",
    "PRESET_DESCRIPTIONS",
    "REJECTIONS",
    "REJECTION_TEXT",
    "VALID_STATUSES",
    "CandidateCheck",
    "CandidateFilter",
    "CandidateRecord",
    "CaseOutcome",
    "EmbeddingMemo",
    "Estimate",
    "EvaluateFn",
    "Flip",
    "OptimizationResult",
    "OptimizeConfig",
    "ProgressCallback",
    "ProgressEvent",
    "RunPlan",
    "SplitScore",
    "Splits",
    "StepRecord",
    "StopFn",
    "TaskExample",
    "TrajectoryEntry",
    "Verdict",
    "batch_for_step",
    "build_meta_prompt",
    "build_reflection_prompt",
    "check_candidate",
    "edit_budget",
    "estimate_calls",
    "format_progress",
    "held_out_verdict",
    "optimize",
    "optimize_json",
    "optimize_markdown",
    "optimize_terminal_lines",
    "parse_reply",
    "plan_run",
    "retrieve",
    "split_cases",
    "steps_per_epoch",
    "total_steps",
    "word_edit_distance",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
