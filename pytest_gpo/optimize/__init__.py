"""GPO: gradient-inspired prompt optimization (arXiv 2402.17564).

The plugin calls :func:`optimize` once per suite with an ``evaluate`` callback, the model
client and an injected embedder, and gets an :class:`OptimizationResult` back; this package
never writes prompt files and never imports pytest. :func:`plan_run` and
:func:`estimate_calls` give the pre-flight numbers, :mod:`~pytest_gpo.optimize.report` renders
results. Importing it is cheap: litellm, torch and sentence-transformers are never imported here.
"""

from __future__ import annotations

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
