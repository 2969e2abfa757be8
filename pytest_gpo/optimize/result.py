"""What an optimization run returns: the best prompt, the verdict, and the full record.

The optimizer never writes prompt files; the write-back module applies an accepted result
(:attr:`OptimizationResult.should_write`) and the report module renders it. Everything
serializes to plain JSON (``to_dict`` / ``from_dict``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_gpo.calls import Usage
from pytest_gpo.optimize.budget import VALID_STATUSES
from pytest_gpo.optimize.config import OptimizeConfig
from pytest_gpo.optimize.retrieval import TrajectoryEntry
from pytest_gpo.results import CaseResult

SPLIT_NAMES: tuple[str, ...] = ("train", "eval", "test")


@dataclass
class CandidateRecord:
    """One candidate of a step: words changed, status (``accepted``, ``duplicate`` or a
    rejection reason: a built-in one or a ``pytest_gpo_filter_candidate`` hook's), a detail
    text, and its eval score when it has one."""

    text: str
    words: int
    status: str
    detail: str = ""
    score: float | None = None

    @property
    def rejected(self) -> bool:
        """True when the candidate was rejected (never scored)."""
        return self.status not in VALID_STATUSES

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {
            "text": self.text,
            "words": self.words,
            "status": self.status,
            "detail": self.detail,
            "score": self.score,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CandidateRecord:
        """Inverse of :meth:`to_dict`."""
        score = d.get("score")
        return cls(
            text=str(d["text"]),
            words=int(d["words"]),
            status=str(d["status"]),
            detail=str(d.get("detail") or ""),
            score=None if score is None else float(score),
        )


@dataclass
class StepRecord:
    """One completed step: budget, batch, candidates, the chosen one, scores after the step.

    ``chosen`` indexes ``candidates`` (``None``: no valid candidate, the prompt stayed).
    ``retrieved`` are the eval scores of the trajectory prompts shown (current last).
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

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {
            "t": self.t,
            "budget": self.budget,
            "batch": list(self.batch),
            "candidates": [c.to_dict() for c in self.candidates],
            "chosen": self.chosen,
            "current_score": self.current_score,
            "best_score": self.best_score,
            "retrieved": list(self.retrieved),
            "reflection": self.reflection,
            "completions": self.completions,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StepRecord:
        """Inverse of :meth:`to_dict`."""
        budget = d.get("budget")
        chosen = d.get("chosen")
        return cls(
            t=int(d["t"]),
            budget=None if budget is None else int(budget),
            batch=[str(x) for x in d.get("batch", [])],
            candidates=[CandidateRecord.from_dict(c) for c in d.get("candidates", [])],
            chosen=None if chosen is None else int(chosen),
            current_score=float(d["current_score"]),
            best_score=float(d["best_score"]),
            retrieved=[float(x) for x in d.get("retrieved", [])],
            reflection=d.get("reflection"),
            completions=int(d.get("completions", 0)),
        )


@dataclass
class CaseOutcome:
    """A case's result under one prompt, as far as reports need it."""

    case_id: str
    score: float
    passed: bool
    output: str = ""
    expected: Any = None

    @classmethod
    def from_case_result(cls, case: CaseResult) -> CaseOutcome:
        """Condense a :class:`~pytest_gpo.results.CaseResult`."""
        return cls(case.case_id, case.score, case.passed, case.output, case.expected)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {
            "case_id": self.case_id,
            "score": self.score,
            "passed": self.passed,
            "output": self.output,
            "expected": self.expected,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CaseOutcome:
        """Inverse of :meth:`to_dict`."""
        return cls(
            case_id=str(d["case_id"]),
            score=float(d["score"]),
            passed=bool(d["passed"]),
            output=str(d.get("output") or ""),
            expected=d.get("expected"),
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

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {"before": self.before, "after": self.after}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SplitScore:
        """Inverse of :meth:`to_dict`."""
        b, a = d.get("before"), d.get("after")
        return cls(None if b is None else float(b), None if a is None else float(a))


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
    resumed_from: int | None = None
    embedding_seconds: float = 0.0
    paired_test: str | None = None
    paired_p: float | None = None

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
        total = Usage()
        total.merge(self.optimizer_usage)
        total.merge(self.task_usage)
        return total

    def flipped(self) -> list[Flip]:
        """Held-out cases whose pass/fail outcome changed, in test-split order."""
        after = {c.case_id: c for c in self.test_after}
        flips: list[Flip] = []
        for before in self.test_before:
            now = after.get(before.case_id)
            if now is not None and now.passed != before.passed:
                flips.append(Flip(before.case_id, before, now))
        return flips

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (the report's JSON and the lead's provenance record)."""
        return {
            "version": 1,
            "suite": self.suite,
            "initial_prompt": self.initial_prompt,
            "best_prompt": self.best_prompt,
            "accepted": self.accepted,
            "changed": self.changed,
            "reason": self.reason,
            "config": self.config.to_dict(),
            "seed": self.seed,
            "optimizer_model": self.optimizer_model,
            "task_model": self.task_model,
            "dataset_hash": self.dataset_hash,
            "scores": {k: v.to_dict() for k, v in self.scores.items()},
            "test_before": [c.to_dict() for c in self.test_before],
            "test_after": [c.to_dict() for c in self.test_after],
            "steps": [s.to_dict() for s in self.steps],
            "trajectory": [[e.prompt, e.score] for e in self.trajectory],
            "rejected": dict(self.rejected),
            "duplicates": self.duplicates,
            "usage": self.usage.to_dict(),
            "optimizer_usage": self.optimizer_usage.to_dict(),
            "task_usage": self.task_usage.to_dict(),
            "optimizer_requests": self.optimizer_requests,
            "reflection_requests": self.reflection_requests,
            "evaluations": self.evaluations,
            "split_sizes": dict(self.split_sizes),
            "total_steps": self.total_steps,
            "stopped_reason": self.stopped_reason,
            "resumed_from": self.resumed_from,
            "embedding_seconds": self.embedding_seconds,
            "paired_test": self.paired_test,
            "paired_p": self.paired_p,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OptimizationResult:
        """Inverse of :meth:`to_dict`."""
        resumed = d.get("resumed_from")
        paired_p = d.get("paired_p")
        return cls(
            suite=str(d["suite"]),
            initial_prompt=str(d["initial_prompt"]),
            best_prompt=str(d["best_prompt"]),
            accepted=bool(d["accepted"]),
            reason=str(d["reason"]),
            config=OptimizeConfig.from_dict(d.get("config") or {}),
            optimizer_model=str(d.get("optimizer_model") or ""),
            task_model=d.get("task_model"),
            dataset_hash=str(d.get("dataset_hash") or ""),
            scores={k: SplitScore.from_dict(v) for k, v in (d.get("scores") or {}).items()},
            test_before=[CaseOutcome.from_dict(c) for c in d.get("test_before", [])],
            test_after=[CaseOutcome.from_dict(c) for c in d.get("test_after", [])],
            steps=[StepRecord.from_dict(s) for s in d.get("steps", [])],
            trajectory=[TrajectoryEntry(str(p), float(s)) for p, s in d.get("trajectory", [])],
            rejected={str(k): int(v) for k, v in (d.get("rejected") or {}).items()},
            duplicates=int(d.get("duplicates", 0)),
            optimizer_usage=Usage.from_dict(d.get("optimizer_usage") or {}),
            task_usage=Usage.from_dict(d.get("task_usage") or {}),
            optimizer_requests=int(d.get("optimizer_requests", 0)),
            reflection_requests=int(d.get("reflection_requests", 0)),
            evaluations=int(d.get("evaluations", 0)),
            split_sizes={str(k): int(v) for k, v in (d.get("split_sizes") or {}).items()},
            total_steps=int(d.get("total_steps", 0)),
            stopped_reason=d.get("stopped_reason"),
            resumed_from=None if resumed is None else int(resumed),
            embedding_seconds=float(d.get("embedding_seconds", 0.0)),
            paired_test=d.get("paired_test"),
            paired_p=None if paired_p is None else float(paired_p),
        )
