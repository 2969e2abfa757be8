"""What an optimization run returns: the best prompt, the verdict, and the full record.

The optimizer never writes prompt files; the write-back module applies an accepted result
(:attr:`OptimizationResult.should_write`) and the report module renders it. Everything
serializes to plain JSON (``to_dict`` / ``from_dict``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_gpo.llm.types import Usage
from pytest_gpo.optimize.budget import VALID_STATUSES
from pytest_gpo.optimize.config import OptimizeConfig
from pytest_gpo.optimize.retrieval import TrajectoryEntry
from pytest_gpo.results import CaseResult, RunResult


@dataclass
class CandidateRecord:
    """One candidate of a step: words changed, status (``accepted``, ``duplicate`` or a
    rejection reason: a built-in one or a ``pytest_gpo_filter_candidate`` hook's), a detail
    text, and its eval score when it has one. A candidate the race stopped early
    (optimize/race.py) has no ``score``: ``partial_score`` is its mean on the
    ``dropped_after`` eval cases it was scored on."""

    text: str
    words: int
    status: str
    detail: str = ""
    score: float | None = None
    partial_score: float | None = None
    dropped_after: int | None = None

    @property
    def rejected(self) -> bool:
        """True when the candidate was rejected (never scored)."""
        return self.status not in VALID_STATUSES


@dataclass
class StepRecord:
    """One completed step: budget, batch, candidates, the chosen one, scores after the step.

    ``chosen`` indexes ``candidates`` (``None``: no valid candidate, the prompt stayed).
    ``retrieved`` are the eval scores of the trajectory prompts shown (current last).
    ``eval_calls`` are the task calls made scoring the step's new candidates on eval (cache
    hits included) and ``eval_calls_full`` what scoring each on all of eval would take: the
    difference is what racing saved.
    """

    t: int
    budget: int | None
    batch: list[str]
    candidates: list[CandidateRecord]
    chosen: int | None
    current_score: float
    best_score: float
    retrieved: list[float] = field(default_factory=list)
    reflection: str | None = None
    completions: int = 0
    eval_calls: int = 0
    eval_calls_full: int = 0

    @property
    def calls_saved(self) -> int:
        """Task calls racing saved in this step against scoring every new candidate fully."""
        return self.eval_calls_full - self.eval_calls

    #: what the step did besides the usual (reflection skipped, a shortened request)
    notes: list[str] = field(default_factory=list)

    @property
    def valid(self) -> int:
        """Candidates that passed the checks (new or duplicate)."""
        return sum(1 for c in self.candidates if not c.rejected)

    @property
    def rejected(self) -> int:
        """Candidates rejected by the checks."""
        return sum(1 for c in self.candidates if c.rejected)

    @property
    def chosen_candidate(self) -> CandidateRecord | None:
        """The candidate that became the current prompt."""
        return None if self.chosen is None else self.candidates[self.chosen]


@dataclass
class CaseOutcome:
    """A case's result under one prompt, as far as reports need it: ``runs`` holds every
    sample (``passed`` is k of N of them, ``min_pass`` the k)."""

    case_id: str
    score: float
    passed: bool
    output: str = ""
    expected: Any = None
    runs: list[RunResult] = field(default_factory=list)
    min_pass: int = 1

    @classmethod
    def from_case_result(cls, case: CaseResult) -> CaseOutcome:
        """Condense a :class:`~pytest_gpo.results.CaseResult`."""
        return cls(
            case.case_id,
            case.score,
            case.passed,
            case.output,
            case.expected,
            list(case.runs),
            case.min_pass,
        )


@dataclass
class Flip:
    """A held-out case whose pass/fail outcome changed between the initial and best prompt."""

    case_id: str
    before: CaseOutcome
    after: CaseOutcome

    @property
    def fixed(self) -> bool:
        """True when the case failed before and passes now."""
        return self.after.passed and not self.before.passed


@dataclass
class SplitScore:
    """Mean score of the initial (``before``) and best (``after``) prompt on one split."""

    before: float | None = None
    after: float | None = None

    @property
    def gain(self) -> float | None:
        """``after - before`` when both are known."""
        if self.before is None or self.after is None:
            return None
        return self.after - self.before


@dataclass
class RunSummary:
    """One of the ``runs: N`` repeats on the same split (optimizer seed ``seed + i``)."""

    run: int
    optimizer_seed: int
    eval_best: float | None
    train_best: float | None
    test_before: float | None
    test_after: float | None
    accepted: bool
    changed: bool
    steps: int
    calls_saved: int = 0


@dataclass
class OptimizationResult:
    """The outcome of optimizing one suite's prompt.

    ``accepted`` means the best prompt differs from the initial one and passed the held-out
    guard; :attr:`should_write` is what the write-back module checks. ``reason`` says why in a
    sentence. ``stopped_reason`` is set when the run ended before its last step (call cap,
    ``should_stop``, a provider error). ``optimizer_usage`` counts optimizer and reflection
    completions, ``task_usage`` the task-model (and judge) calls of every evaluation.
    """

    suite: str
    initial_prompt: str
    best_prompt: str
    accepted: bool
    reason: str
    config: OptimizeConfig
    optimizer_model: str
    task_model: str | None = None
    dataset_hash: str = ""
    scores: dict[str, SplitScore] = field(default_factory=dict)
    test_before: list[CaseOutcome] = field(default_factory=list)
    test_after: list[CaseOutcome] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    trajectory: list[TrajectoryEntry] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    optimizer_usage: Usage = field(default_factory=Usage)
    task_usage: Usage = field(default_factory=Usage)
    optimizer_requests: int = 0
    reflection_requests: int = 0
    evaluations: int = 0
    split_sizes: dict[str, int] = field(default_factory=dict)
    total_steps: int = 0
    stopped_reason: str | None = None
    #: the error kind when a failed call ended the run (``provider``, ``credentials``, ...)
    stopped_kind: str | None = None
    resumed_from: int | None = None
    embedding_seconds: float = 0.0
    paired_test: str | None = None
    paired_p: float | None = None
    selection_note: str | None = None
    runs: list[RunSummary] = field(default_factory=list)
    chosen_run: int | None = None

    @property
    def calls_saved(self) -> int:
        """Task calls racing saved over all steps (against scoring every new candidate fully)."""
        return sum(s.calls_saved for s in self.steps)

    @property
    def eval_calls_full(self) -> int:
        """Task calls scoring every step's new candidates on all of eval would have taken."""
        return sum(s.eval_calls_full for s in self.steps)

    @property
    def seed(self) -> int:
        """The run's seed (splits, batches, optimizer sample indices)."""
        return self.config.seed

    @property
    def changed(self) -> bool:
        """True when the best prompt differs from the initial one."""
        return self.best_prompt != self.initial_prompt

    @property
    def should_write(self) -> bool:
        """True when the write-back should apply :attr:`best_prompt`."""
        return self.accepted and self.changed

    @property
    def steps_completed(self) -> int:
        """Steps that ran to the end."""
        return len(self.steps)

    @property
    def usage(self) -> Usage:
        """Optimizer and task usage added up."""
        return Usage.combined(self.optimizer_usage, self.task_usage)

    def flipped(self) -> list[Flip]:
        """Held-out cases whose pass/fail outcome changed, in test-split order."""
        after = {c.case_id: c for c in self.test_after}
        flips: list[Flip] = []
        for before in self.test_before:
            now = after.get(before.case_id)
            if now is not None and now.passed != before.passed:
                flips.append(Flip(before.case_id, before, now))
        return flips
