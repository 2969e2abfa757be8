"""The CI gate: a suite's verdict from its threshold and its committed baseline.

Two checks, both from the suite file's settings:

* **threshold**: the suite fails when its metric (``mean`` case score, or ``pass_rate``, the
  fraction of cases passing k of N runs) is below ``threshold``;
* **regression**: with a baseline, the suite fails when, on the cases both runs share, the
  metric dropped by more than ``tolerance`` *and* an exact one-sided paired test
  (:mod:`pytest_gpo.stats`) says the drop is unlikely to be noise (``p < alpha``). One flipped
  case out of 200 does not fail; a consistent drop does.

The result is data (:class:`GateVerdict`): the plugin turns it into a pass or a failure, and
:mod:`pytest_gpo.gate.messages` and the report put it into words. Nothing here raises for a bad
run; a run that could not be completed (provider failure, replay cache miss) gets the ``error``
status, never ``regressed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pytest_gpo.gate.baseline import BaselineCase, BaselineEntry
from pytest_gpo.gate.excerpt import excerpt, got_excerpt
from pytest_gpo.llm.types import ErrorKind
from pytest_gpo.results import CaseResult, SuiteRun
from pytest_gpo.stats import Spread, paired_test, spread
from pytest_gpo.suites.model import Suite

Status = Literal[
    "pass", "below_threshold", "regressed", "improved", "no_baseline", "error", "invalid", "not_run"
]

#: Statuses that fail the suite (``invalid``: the suite file could not be loaded; ``not_run``:
#: collected but never run, e.g. after ``-x`` stopped the session).
FAILING: frozenset[str] = frozenset({"below_threshold", "regressed", "error", "invalid", "not_run"})

#: Statuses of a suite that has no scores at all.
UNSCORED: frozenset[str] = frozenset({"error", "invalid", "not_run"})

#: Float slack for comparing scores with thresholds (means of 0/1 scores are exact fractions,
#: but means of judge scores carry rounding).
EPSILON = 1e-9


@dataclass(frozen=True)
class GateSettings:
    """What the gate needs from a suite: threshold, metric, tolerance, alpha and identities."""

    threshold: float
    metric: str = "mean"
    tolerance: float = 0.0
    alpha: float = 0.05
    prompt_sha256: str = ""
    scorer_config_hash: str = ""

    @classmethod
    def from_suite(cls, suite: Suite) -> GateSettings:
        """The gate settings of a loaded suite."""
        return cls(
            threshold=suite.threshold,
            metric=suite.threshold_metric,
            tolerance=suite.tolerance,
            alpha=suite.alpha,
            prompt_sha256=suite.prompt_sha256,
            scorer_config_hash=suite.scorer_config_hash(),
        )


@dataclass(frozen=True)
class CaseChange:
    """A case worth showing: one that moved against the baseline, or one that failed.

    ``before`` is the baseline value (``None`` for a plain failing case), ``after`` the current
    value of the gated metric (case score, or 1/0 for passed under ``pass_rate``). ``score`` is
    the case's own score (mean over its runs) whatever the metric. ``runs``, ``pass_rate`` and
    ``min_pass`` describe the current repeats (k of N). ``expected``, ``got`` and ``reason``
    are one-line excerpts (:mod:`pytest_gpo.gate.excerpt`).
    """

    case_id: str
    before: float | None
    after: float
    expected: str
    got: str
    reason: str = ""
    pass_rate: float = 1.0
    runs: int = 1
    score: float | None = None
    min_pass: int = 1

    @property
    def delta(self) -> float | None:
        """``after - before``, or ``None`` when there is no baseline value."""
        return None if self.before is None else self.after - self.before


@dataclass
class GateVerdict:
    """A suite's gate verdict, as data.

    ``status`` is the most important outcome (``error`` > ``regressed`` > ``below_threshold`` >
    ``improved`` > ``no_baseline``/``pass``); ``failures`` lists every failed check.
    ``metric_value`` is the full run's metric (what the threshold sees); ``baseline_value``,
    ``current_value`` and ``delta`` are on the cases common to both runs. ``p_value`` is the
    one-sided p-value in the direction the metric moved (``p_worse`` for a drop or no change,
    ``p_better`` for a rise). An errored verdict keeps its run's first error, the kind of
    error and how many there were. :mod:`pytest_gpo.gate.messages` puts a verdict into words.
    """

    suite: str
    passed: bool
    status: Status
    metric: str
    score: float
    pass_rate: float
    metric_value: float
    threshold: float
    tolerance: float = 0.0
    alpha: float = 0.05
    cases: int = 0
    model: str = ""
    has_baseline: bool = False
    baseline_value: float | None = None
    current_value: float | None = None
    delta: float | None = None
    p_value: float | None = None
    p_worse: float | None = None
    p_better: float | None = None
    test: str | None = None
    common: int = 0
    added: int = 0
    removed: int = 0
    worse: list[CaseChange] = field(default_factory=list)
    better: list[CaseChange] = field(default_factory=list)
    failing: list[CaseChange] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    repeats: int = 1
    spread: Spread | None = None
    error: str | None = None
    error_kind: ErrorKind | None = None
    error_count: int = 0


def _case_value(case: CaseResult, metric: str) -> float:
    if metric == "pass_rate":
        return 1.0 if case.passed else 0.0
    return case.score


def _baseline_value(case: BaselineCase, metric: str) -> float:
    if metric == "pass_rate":
        return 1.0 if case.passed else 0.0
    return float(case.score)


def _change(case: CaseResult, before: float | None, after: float) -> CaseChange:
    return CaseChange(
        case_id=case.case_id,
        before=before,
        after=after,
        expected=excerpt(case.expected),
        got=got_excerpt(case),
        reason=excerpt(case.reason, 120),
        pass_rate=case.pass_rate,
        runs=len(case.runs),
        score=case.score,
        min_pass=case.min_pass,
    )


def sample_scores(run: SuiteRun) -> list[float]:
    """The suite's score per repeat sample: for each sample index, the mean over cases."""
    by_sample: dict[int, list[float]] = {}
    for case in run.cases:
        for r in case.runs:
            by_sample.setdefault(r.sample, []).append(r.score)
    return [sum(v) / len(v) for _, v in sorted(by_sample.items()) if v]


def evaluate(suite: Suite, run: SuiteRun, baseline: BaselineEntry | None) -> GateVerdict:
    """The gate verdict of ``run`` of ``suite`` against its baseline entry (if any)."""
    return evaluate_settings(GateSettings.from_suite(suite), run, baseline)


def error_verdict(
    suite: str,
    error: str,
    *,
    kind: ErrorKind | None = None,
    threshold: float = 0.0,
    metric: str = "mean",
    model: str = "",
    status: Literal["error", "invalid", "not_run"] = "error",
) -> GateVerdict:
    """The verdict of a suite that could not be scored at all (no usable run).

    ``kind`` is the run's ``error_kind`` (``provider``, ``cache_miss``, ``budget``); ``status``
    says why there are no scores (see :data:`UNSCORED`).
    """
    run = SuiteRun(
        suite=suite, model=model, prompt_text="", cases=[], errors=[error], error_kind=kind
    )
    v = evaluate_settings(GateSettings(threshold=threshold, metric=metric), run, None)
    v.status = status
    return v


def evaluate_settings(
    settings: GateSettings, run: SuiteRun, baseline: BaselineEntry | None
) -> GateVerdict:
    """:func:`evaluate` with explicit settings (for callers without a :class:`Suite`)."""
    metric = "pass_rate" if settings.metric == "pass_rate" else "mean"
    value = run.pass_rate if metric == "pass_rate" else run.score
    repeats = max((len(c.runs) for c in run.cases), default=1)
    v = GateVerdict(
        suite=run.suite,
        passed=True,
        status="pass",
        metric=metric,
        score=run.score,
        pass_rate=run.pass_rate,
        metric_value=value,
        threshold=settings.threshold,
        tolerance=settings.tolerance,
        alpha=settings.alpha,
        cases=len(run.cases),
        model=run.model,
        has_baseline=baseline is not None,
        repeats=repeats,
        spread=spread(sample_scores(run)) if repeats > 1 else None,
    )
    if run.error_kind or run.errors:
        return _errored(v, run)

    failing = [c for c in run.cases if not c.passed]
    v.failing = sorted(
        (_change(c, None, _case_value(c, metric)) for c in failing),
        key=lambda ch: (ch.after, ch.case_id),
    )
    below = value < settings.threshold - EPSILON
    regressed = improved = False
    if baseline is not None:
        regressed, improved = _compare(v, settings, run, baseline)

    if regressed:
        v.failures.append("regressed")
    if below:
        v.failures.append("below_threshold")
    if regressed:
        v.status = "regressed"
    elif below:
        v.status = "below_threshold"
    elif improved:
        v.status = "improved"
    elif baseline is None:
        v.status = "no_baseline"
    v.passed = v.status not in FAILING
    return v


def _errored(v: GateVerdict, run: SuiteRun) -> GateVerdict:
    v.status = "error"
    v.passed = False
    v.failures = ["error"]
    v.error = run.errors[0] if run.errors else str(run.error_kind)
    v.error_kind = run.error_kind
    v.error_count = len(run.errors)
    return v


def _compare(
    v: GateVerdict, settings: GateSettings, run: SuiteRun, baseline: BaselineEntry
) -> tuple[bool, bool]:
    """Fill the baseline comparison into ``v``; returns (regressed, improved)."""
    metric = v.metric
    current = run.by_id()
    common = [cid for cid in current if cid in baseline.cases]
    v.common = len(common)
    v.added = sum(1 for cid in current if cid not in baseline.cases)
    v.removed = sum(1 for cid in baseline.cases if cid not in current)
    if baseline.prompt_sha256 != settings.prompt_sha256:
        v.changed.append("prompt")
    if baseline.model != run.model:
        v.changed.append("model")
    if baseline.scorer_config_hash != settings.scorer_config_hash:
        v.changed.append("scorers")
    if not common:
        return False, False

    before = [_baseline_value(baseline.cases[cid], metric) for cid in common]
    after = [_case_value(current[cid], metric) for cid in common]
    test = paired_test(before, after)
    v.baseline_value = sum(before) / len(before)
    v.current_value = sum(after) / len(after)
    v.delta = v.current_value - v.baseline_value
    v.test = test.name
    v.p_worse = test.p_worse
    v.p_better = test.p_better
    v.p_value = test.p_better if v.delta > EPSILON else test.p_worse

    changes = [_change(current[cid], b, a) for cid, b, a in zip(common, before, after, strict=True)]
    v.worse = sorted(
        (c for c in changes if c.after < (c.before or 0.0) - EPSILON),
        key=lambda c: (c.after - (c.before or 0.0), c.case_id),
    )
    v.better = sorted(
        (c for c in changes if c.after > (c.before or 0.0) + EPSILON),
        key=lambda c: (-(c.after - (c.before or 0.0)), c.case_id),
    )
    regressed = v.delta < -settings.tolerance - EPSILON and test.p_worse < settings.alpha
    improved = v.delta > settings.tolerance + EPSILON and test.p_better < settings.alpha
    return regressed, improved
