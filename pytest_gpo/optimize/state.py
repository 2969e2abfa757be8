"""What a run has done so far: saved after every completed step, so a rerun resumes there."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_gpo.llm.types import Usage
from pytest_gpo.optimize.result import StepRecord
from pytest_gpo.optimize.retrieval import TrajectoryEntry
from pytest_gpo.serial import from_data, to_data

#: The fields of a saved state (:meth:`RunState.to_dict`), every one always written.
FIELDS = frozenset(
    {
        "t",
        "current",
        "trajectory",
        "scores",
        "steps",
        "rejected",
        "duplicates",
        "optimizer_usage",
        "task_usage",
        "optimizer_requests",
        "reflection_requests",
        "evaluations",
        "embedding_seconds",
        "task_model",
        "partial",
    }
)
_COUNTS = ("t", "duplicates", "optimizer_requests", "reflection_requests", "evaluations")


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _pair(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and (_number(value[1]))
    )


def check_saved(d: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the first field of a saved state that is missing, extra or
    of the wrong type (a checkpoint edited by hand, or from another version)."""
    missing, extra = sorted(FIELDS - set(d)), sorted(set(d) - FIELDS)
    if missing or extra:
        raise ValueError(f"fields missing {missing} / unknown {extra}")
    for name in _COUNTS:
        if not _count(d[name]):
            raise ValueError(f"'{name}' must be a whole number >= 0, not {d[name]!r}")
    if not _number(d["embedding_seconds"]) or d["embedding_seconds"] < 0:
        raise ValueError("'embedding_seconds' must be a number >= 0")
    if not _pair(d["current"]):
        raise ValueError("'current' must be a [prompt, score] pair")
    for name in ("trajectory", "scores"):
        if not isinstance(d[name], list) or not d[name] or not all(map(_pair, d[name])):
            raise ValueError(f"'{name}' must be a non-empty list of [prompt, score] pairs")
    rejected = d["rejected"]
    if not isinstance(rejected, dict) or not all(map(_count, rejected.values())):
        raise ValueError("'rejected' must map reasons to counts")
    for name in ("optimizer_usage", "task_usage"):
        if not isinstance(d[name], dict):
            raise ValueError(f"'{name}' must be an object")
    if not isinstance(d["steps"], list):
        raise ValueError("'steps' must be a list")
    if d["task_model"] is not None and not isinstance(d["task_model"], str):
        raise ValueError("'task_model' must be a string or null")
    partial = d["partial"]
    if not isinstance(partial, list) or not all(
        isinstance(p, list)
        and len(p) == 2
        and isinstance(p[0], str)
        and isinstance(p[1], dict)
        and all(isinstance(k, str) and _number(v) and 0 <= v <= 1 for k, v in p[1].items())
        for p in partial
    ):
        raise ValueError("'partial' must be a list of [prompt, {case: score}] pairs")


@dataclass
class RunState:
    """Everything a resumed run needs; saved after every completed step."""

    t: int
    current: TrajectoryEntry
    trajectory: list[TrajectoryEntry]
    scores: dict[str, float]
    steps: list[StepRecord] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    optimizer_usage: Usage = field(default_factory=Usage)
    task_usage: Usage = field(default_factory=Usage)
    optimizer_requests: int = 0
    reflection_requests: int = 0
    evaluations: int = 0
    embedding_seconds: float = 0.0
    task_model: str | None = None
    #: eval case scores of candidates a race stopped early (a later race goes on from them)
    partial: dict[str, dict[str, float]] = field(default_factory=dict)

    def best(self) -> TrajectoryEntry:
        """Best by eval over the trajectory; the earliest wins ties (the initial prompt first)."""
        best = self.trajectory[0]
        for entry in self.trajectory[1:]:
            if entry.score > best.score:
                best = entry
        return best

    def check(self, total: int) -> None:
        """Raise ``ValueError`` when a restored state cannot be resumed (a step count outside
        ``0..total``, no trajectory, a score that is not a finite number, a value that would
        not save again as strict JSON)."""
        if not 0 <= self.t <= total:
            raise ValueError(f"step {self.t} is outside 0..{total}")
        if not self.trajectory:
            raise ValueError("its trajectory is empty")
        if len(self.steps) != self.t:
            raise ValueError(f"it records {len(self.steps)} step(s) for step {self.t}")
        numbers = [self.current.score, *(e.score for e in self.trajectory), *self.scores.values()]
        if not all(math.isfinite(x) for x in numbers):
            raise ValueError("a score is not a finite number")
        # it must save again: strict JSON (no NaN) of the types it is made of
        json.dumps(self.to_dict(), allow_nan=False)

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint's ``state``: its own format (scores as pairs: prompts are keys)."""
        return {
            "t": self.t,
            "current": list(self.current),
            "trajectory": [list(e) for e in self.trajectory],
            "scores": [[k, v] for k, v in self.scores.items()],
            "steps": to_data(self.steps),
            "rejected": dict(self.rejected),
            "duplicates": self.duplicates,
            "optimizer_usage": to_data(self.optimizer_usage),
            "task_usage": to_data(self.task_usage),
            "optimizer_requests": self.optimizer_requests,
            "reflection_requests": self.reflection_requests,
            "evaluations": self.evaluations,
            "embedding_seconds": self.embedding_seconds,
            "task_model": self.task_model,
            "partial": [[k, dict(v)] for k, v in self.partial.items()],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunState:
        """Inverse of :meth:`to_dict` (keys a checkpoint may lack get their defaults)."""
        return cls(
            t=int(d["t"]),
            current=TrajectoryEntry(str(d["current"][0]), float(d["current"][1])),
            trajectory=[TrajectoryEntry(str(p), float(s)) for p, s in d["trajectory"]],
            scores={str(p): float(s) for p, s in d["scores"]},
            steps=from_data(list[StepRecord], d.get("steps", [])),
            rejected=Counter({str(k): int(v) for k, v in (d.get("rejected") or {}).items()}),
            duplicates=int(d.get("duplicates", 0)),
            optimizer_usage=from_data(Usage, d.get("optimizer_usage") or {}),
            task_usage=from_data(Usage, d.get("task_usage") or {}),
            optimizer_requests=int(d.get("optimizer_requests", 0)),
            reflection_requests=int(d.get("reflection_requests", 0)),
            evaluations=int(d.get("evaluations", 0)),
            embedding_seconds=float(d.get("embedding_seconds", 0.0)),
            task_model=d.get("task_model"),
            partial={
                str(p): {str(k): float(v) for k, v in cases.items()}
                for p, cases in d.get("partial", [])
            },
        )
