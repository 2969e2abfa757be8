"""Results of running a prompt over cases: per run, per case, per suite.

These cross every boundary after the model calls (gate, optimizer, report, xdist), so they
serialize to plain JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_gpo.llm.types import ErrorKind, Usage


def runs_rule(passes: int, runs: int, min_pass: int) -> str:
    """The k-of-N rule that decides a repeated case, in words: ``passed 1/3 runs (needs 2)``."""
    return f"passed {passes}/{runs} runs (needs {min_pass})"


@dataclass
class RunResult:
    """One sample of one case: the output and its combined, weighted score."""

    sample: int
    output: str
    score: float
    passed: bool
    reason: str
    error: str | None = None


@dataclass
class CaseResult:
    """A case over its N runs: mean score, and passed when at least ``min_pass`` runs passed."""

    case_id: str
    vars: Mapping[str, Any]
    expected: Any
    runs: list[RunResult]
    min_pass: int = 1

    @property
    def score(self) -> float:
        """Mean score over the runs."""
        return sum(r.score for r in self.runs) / len(self.runs) if self.runs else 0.0

    @property
    def passes(self) -> int:
        """How many runs passed."""
        return sum(1 for r in self.runs if r.passed)

    @property
    def passed(self) -> bool:
        """At least ``min_pass`` of the runs passed (k of N)."""
        return self.passes >= self.min_pass

    @property
    def pass_rate(self) -> float:
        """Fraction of runs that passed."""
        return self.passes / len(self.runs) if self.runs else 0.0

    @property
    def rule(self) -> str:
        """The k-of-N rule that decided this case (:func:`runs_rule`)."""
        return runs_rule(self.passes, len(self.runs), self.min_pass)

    @property
    def shown_run(self) -> RunResult | None:
        """The run that speaks for the case: the first whose outcome is the case's own (a
        passing case is never shown with a failing sample's output or reason)."""
        passed = self.passed
        return next(
            (r for r in self.runs if r.passed == passed), self.runs[0] if self.runs else None
        )

    @property
    def output(self) -> str:
        """The output of :attr:`shown_run` (what reports show beside the verdict)."""
        run = self.shown_run
        return run.output if run is not None else ""

    @property
    def reason(self) -> str:
        """The reason of :attr:`shown_run`: a failing case's first failing sample, a passing
        case's first passing one."""
        run = self.shown_run
        return run.reason if run is not None else ""

    @property
    def errored(self) -> bool:
        """True when no run produced an answer to score (every run errored): no score."""
        return bool(self.runs) and all(r.error for r in self.runs)

    @property
    def error(self) -> str | None:
        """The first run error, if any run could not be completed."""
        for r in self.runs:
            if r.error:
                return r.error
        return None


@dataclass
class SuiteRun:
    """A prompt's run over a set of cases, with the model use it cost."""

    suite: str
    model: str
    prompt_text: str
    cases: list[CaseResult]
    usage: Usage = field(default_factory=Usage)
    errors: list[str] = field(default_factory=list)
    error_kind: ErrorKind | None = None

    @property
    def score(self) -> float:
        """Mean case score (0 for no cases)."""
        return sum(c.score for c in self.cases) / len(self.cases) if self.cases else 0.0

    @property
    def pass_rate(self) -> float:
        """Fraction of cases that passed."""
        return sum(1 for c in self.cases if c.passed) / len(self.cases) if self.cases else 0.0

    def by_id(self) -> dict[str, CaseResult]:
        """Case results keyed by case id."""
        return {c.case_id: c for c in self.cases}
