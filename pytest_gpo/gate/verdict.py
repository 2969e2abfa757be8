"""The CI gate: a suite's verdict from its threshold and its committed baseline.

Two checks, both from the suite file's settings:

* **threshold**: the suite fails when its metric (``mean`` case score, or ``pass_rate``, the
  fraction of cases passing k of N runs) is below ``threshold``;
* **regression**: with a baseline, the suite fails when, on the cases both runs share, the
  metric dropped by more than ``tolerance`` *and* an exact one-sided paired test
  (:mod:`pytest_gpo.stats`) says the drop is unlikely to be noise (``p < alpha``). One flipped
  case out of 200 does not fail; a consistent drop does. With ``max_drop``, a drop of more
  than that fails too, significant or not.

Both sides of the comparison are stored scores (:func:`~pytest_gpo.gate.baseline.case_score`):
the current run goes through the same rounding the baseline entry was made with, two scores one
stored digit apart are a tie, and every sum is exact (``math.fsum``). So the verdict is a
function of the per-case outcomes only: an unchanged run compares equal to its own baseline,
whatever its scores and whatever order its results arrived in. When a drop beyond
``tolerance`` is not significant because too few cases moved for the exact test to tell
(``unseen_drop``), the verdict says so and how many cases it would take
(:func:`~pytest_gpo.stats.cases_needed`).

The result is data (:class:`GateVerdict`): the plugin turns it into a pass or a failure, and
:mod:`pytest_gpo.gate.messages` and the report put it into words. Nothing here raises for a bad
run; a run that could not be completed (provider failure, replay cache miss) gets the ``error``
status, never ``regressed``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from pytest_gpo.gate.baseline import (
    SCORE_TIE,
    BaselineCase,
    BaselineEntry,
    case_score,
    mean,
    stored_score,
)
from pytest_gpo.gate.excerpt import excerpt, got_excerpt
from pytest_gpo.llm.types import ErrorKind
from pytest_gpo.results import CaseResult, SuiteRun
from pytest_gpo.stats import Spread, cases_needed, paired_test, spread
from pytest_gpo.suites.model import Suite, ThresholdMetric

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
    """What the gate needs from a suite: threshold, metric, tolerance, alpha, max_drop and
    identities."""

    threshold: float
    metric: ThresholdMetric = "mean"
    tolerance: float = 0.0
    alpha: float = 0.05
    prompt_sha256: str = ""
    scorer_config_hash: str = ""
    max_drop: float | None = None

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
            max_drop=suite.max_drop,
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
    ``p_better`` for a rise). ``cases_needed`` is the fewest cases that must get worse, none
    better, for the paired test to see a drop at ``alpha``; ``unseen_drop`` is set when the
    metric fell by more than ``tolerance`` but fewer cases than that got worse, so the test
    could not tell the drop from noise. ``max_drop`` is the suite's absolute floor (``None``:
    none). An errored verdict keeps its run's first error, the kind of error and how many
    there were. :mod:`pytest_gpo.gate.messages` puts a verdict into words.
    """

    suite: str
    passed: bool
    status: Status
    metric: ThresholdMetric
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
    max_drop: float | None = None
    cases_needed: int | None = None
    unseen_drop: bool = False


def _case_value(case: CaseResult, metric: str) -> float:
    """The gated value of a current case, as the baseline would store it."""
    if metric == "pass_rate":
        return 1.0 if case.passed else 0.0
    return case_score(case)


def _baseline_value(case: BaselineCase, metric: str) -> float:
    if metric == "pass_rate":
        return 1.0 if case.passed else 0.0
    return stored_score(case.score)


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
    return [mean(v) for _, v in sorted(by_sample.items()) if v]


def evaluate(suite: Suite, run: SuiteRun, baseline: BaselineEntry | None) -> GateVerdict:
    """The gate verdict of ``run`` of ``suite`` against its baseline entry (if any)."""
    return evaluate_settings(GateSettings.from_suite(suite), run, baseline)


def error_verdict(
    suite: str,
    error: str,
    *,
    kind: ErrorKind | None = None,
    threshold: float = 0.0,
    metric: ThresholdMetric = "mean",
    model: str = "",
    status: Literal["error", "invalid", "not_run"] = "error",
    cases: int = 0,
) -> GateVerdict:
    """The verdict of a suite that could not be scored at all (no usable run).

    ``kind`` is the run's ``error_kind`` (``provider``, ``cache_miss``, ``budget``); ``status``
    says why there are no scores (see :data:`UNSCORED`); ``cases`` is the suite's number of
    cases (none were scored).
    """
    run = SuiteRun(
        suite=suite, model=model, prompt_text="", cases=[], errors=[error], error_kind=kind
    )
    v = evaluate_settings(GateSettings(threshold=threshold, metric=metric), run, None)
    v.status = status
    v.cases = cases
    return v


def evaluate_settings(
    settings: GateSettings, run: SuiteRun, baseline: BaselineEntry | None
) -> GateVerdict:
    """:func:`evaluate` with explicit settings (for callers without a :class:`Suite`)."""
    metric: ThresholdMetric = "pass_rate" if settings.metric == "pass_rate" else "mean"
    scores = [case_score(c) for c in run.cases]
    pass_rate = mean(1.0 if c.passed else 0.0 for c in run.cases)
    score = mean(scores)
    value = pass_rate if metric == "pass_rate" else score
    repeats = max((len(c.runs) for c in run.cases), default=1)
    v = GateVerdict(
        suite=run.suite,
        passed=True,
        status="pass",
        metric=metric,
        score=score if math.isfinite(score) else 0.0,
        pass_rate=pass_rate,
        metric_value=value if math.isfinite(value) else 0.0,
        threshold=settings.threshold,
        tolerance=settings.tolerance,
        alpha=settings.alpha,
        cases=len(run.cases),
        model=run.model,
        has_baseline=baseline is not None,
        repeats=repeats,
        max_drop=settings.max_drop,
    )
    if run.error_kind or run.errors:
        return _errored(v, run)
    bad = next((c for c, x in zip(run.cases, scores, strict=True) if not math.isfinite(x)), None)
    if bad is not None:
        return _errored(
            v,
            run,
            f"case '{bad.case_id}' has a score that is not a number ({bad.score!r}): a scorer "
            "or a scorer weight gave it; a score must be a finite number in 0..1",
        )
    if repeats > 1:
        v.spread = spread(sample_scores(run))

    failing = [c for c in run.cases if not c.passed]
    v.failing = sorted(
        (_change(c, None, _case_value(c, metric)) for c in failing),
        key=lambda ch: (ch.after, ch.case_id),
    )
    below = value < settings.threshold - EPSILON
    regressed = improved = dropped = False
    if baseline is not None:
        regressed, improved, dropped = _compare(v, settings, run, baseline)

    if regressed:
        v.failures.append("regressed")
    if dropped:
        v.failures.append("max_drop")
    if below:
        v.failures.append("below_threshold")
    if regressed or dropped:
        v.status = "regressed"
    elif below:
        v.status = "below_threshold"
    elif improved:
        v.status = "improved"
    elif baseline is None:
        v.status = "no_baseline"
    v.passed = v.status not in FAILING
    return v


def _errored(v: GateVerdict, run: SuiteRun, error: str | None = None) -> GateVerdict:
    v.status = "error"
    v.passed = False
    v.failures = ["error"]
    v.error = error or (run.errors[0] if run.errors else str(run.error_kind))
    v.error_kind = run.error_kind
    v.error_count = max(1, len(run.errors)) if error else len(run.errors)
    return v


def _compare(
    v: GateVerdict, settings: GateSettings, run: SuiteRun, baseline: BaselineEntry
) -> tuple[bool, bool, bool]:
    """Fill the baseline comparison into ``v``; returns (regressed, improved, dropped).

    ``dropped``: the metric fell by more than ``max_drop``. Per-case values are stored scores;
    a case moved when its value changed by more than :data:`SCORE_TIE`, and ``delta`` is the
    mean of the moves (ties count as no move), so an unchanged run has ``delta == 0`` exactly.
    """
    metric = v.metric
    current = run.by_id()
    common = sorted(cid for cid in current if cid in baseline.cases)
    v.common = len(common)
    v.added = sum(1 for cid in current if cid not in baseline.cases)
    v.removed = sum(1 for cid in baseline.cases if cid not in current)
    if baseline.prompt_sha256 != settings.prompt_sha256:
        v.changed.append("prompt")
    if baseline.model != run.model:
        v.changed.append("model")
    if baseline.scorer_config_hash != settings.scorer_config_hash:
        v.changed.append("scorers")
    if 0 < settings.alpha <= 1:
        v.cases_needed = cases_needed(settings.alpha)
    if not common:
        return False, False, False

    before = [_baseline_value(baseline.cases[cid], metric) for cid in common]
    after = [_case_value(current[cid], metric) for cid in common]
    moves = [a - b if abs(a - b) > SCORE_TIE else 0.0 for b, a in zip(before, after, strict=True)]
    test = paired_test(before, after, epsilon=SCORE_TIE)
    v.baseline_value = mean(before)
    v.current_value = mean(after)
    v.delta = mean(moves)
    v.test = test.name
    v.p_worse = test.p_worse
    v.p_better = test.p_better
    v.p_value = test.p_better if v.delta > EPSILON else test.p_worse

    changes = [_change(current[cid], b, a) for cid, b, a in zip(common, before, after, strict=True)]
    v.worse = sorted(
        (c for c, d in zip(changes, moves, strict=True) if d < 0),
        key=lambda c: (c.after - (c.before or 0.0), c.case_id),
    )
    v.better = sorted(
        (c for c, d in zip(changes, moves, strict=True) if d > 0),
        key=lambda c: (-(c.after - (c.before or 0.0)), c.case_id),
    )
    drop = v.delta < -settings.tolerance - EPSILON
    regressed = drop and test.p_worse < settings.alpha
    improved = v.delta > settings.tolerance + EPSILON and test.p_better < settings.alpha
    dropped = settings.max_drop is not None and v.delta < -settings.max_drop - EPSILON
    # every drop past tolerance that the test cannot call is flagged, whether too few cases
    # moved or cases moved both ways (6 worse and 3 better hide a 0.25 drop at p=0.25)
    v.unseen_drop = drop and not regressed
    return regressed, improved, dropped
