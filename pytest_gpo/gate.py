"""The CI gate: a suite's verdict from its threshold and its committed baseline.

Two checks, both from the suite file's settings:

* **threshold**: the suite fails when its metric (``mean`` case score, or ``pass_rate``, the
  fraction of cases passing k of N runs) is below ``threshold``;
* **regression**: with a baseline, the suite fails when, on the cases both runs share, the
  metric dropped by more than ``tolerance`` *and* an exact one-sided paired test
  (:mod:`pytest_gpo.stats`) says the drop is unlikely to be noise (``p < alpha``). One flipped
  case out of 200 does not fail; a consistent drop does.

The result is data (:class:`GateVerdict`): the plugin turns it into a pass or a failure and the
report renders it. Nothing here raises for a bad run; a run that could not be completed
(provider failure, replay cache miss) gets the ``error`` status, never ``regressed``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pytest_gpo.baseline import BaselineCase, BaselineEntry
from pytest_gpo.calls import canonical_json
from pytest_gpo.paths import display
from pytest_gpo.results import CaseResult, SuiteRun
from pytest_gpo.stats import Spread, paired_test, spread
from pytest_gpo.suite import Suite

Status = Literal["pass", "below_threshold", "regressed", "improved", "no_baseline", "error"]

#: Statuses that fail the suite.
FAILING: frozenset[str] = frozenset({"below_threshold", "regressed", "error"})

#: How the verdict tells a user to accept a change (and its baseline) as the new reference.
UPDATE_COMMAND = "pytest --gpo-update-baseline"

#: Float slack for comparing scores with thresholds (means of 0/1 scores are exact fractions,
#: but means of judge scores carry rounding).
EPSILON = 1e-9

#: How many cases a verdict's message lists before "and N more".
MESSAGE_CASES = 10

#: Length of the expected/got excerpts in messages and reports.
EXCERPT_CHARS = 80


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """A one-line excerpt: strings as they are, other values as JSON; newlines shown as ``\\n``."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else canonical_json(value)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n").replace("\t", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_p(p: float | None) -> str:
    """``0.5``, ``0.0193``, ``3.9e-04``: three significant digits, tiny ones in e-notation."""
    if p is None:
        return "n/a"
    if p >= 0.001:
        return f"{p:.3g}"
    return f"{p:.1e}"


def format_score(x: float | None) -> str:
    """A score with three decimals, or ``n/a``."""
    return "n/a" if x is None else f"{x:.3f}"


def format_delta(x: float | None) -> str:
    """A signed difference with three decimals, or ``n/a``."""
    return "n/a" if x is None else f"{x:+.3f}"


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
    value of the gated metric (case score, or 1/0 for passed under ``pass_rate``). ``runs`` and
    ``pass_rate`` describe the current repeats.
    """

    case_id: str
    before: float | None
    after: float
    expected: str
    got: str
    reason: str = ""
    pass_rate: float = 1.0
    runs: int = 1

    @property
    def delta(self) -> float | None:
        """``after - before``, or ``None`` when there is no baseline value."""
        return None if self.before is None else self.after - self.before

    def line(self) -> str:
        """One readable line: ``id: before → after  expected: '…'  got: '…'``."""
        value = (
            format_score(self.after)
            if self.before is None
            else f"{format_score(self.before)} → {format_score(self.after)}"
        )
        parts = [f"{self.case_id}: {value}"]
        if self.runs > 1:
            parts.append(f"passed {round(self.pass_rate * self.runs)}/{self.runs} runs")
        if self.expected:
            parts.append(f"expected: '{self.expected}'")
        parts.append(f"got: '{self.got}'")
        if self.reason and self.before is None:
            parts.append(f"({self.reason})")
        return "  ".join(parts)


@dataclass
class GateVerdict:
    """A suite's gate verdict, as data.

    ``status`` is the most important outcome (``error`` > ``regressed`` > ``below_threshold`` >
    ``improved`` > ``no_baseline``/``pass``); ``failures`` lists every failed check.
    ``metric_value`` is the full run's metric (what the threshold sees); ``baseline_value``,
    ``current_value`` and ``delta`` are on the cases common to both runs. ``p_value`` is the
    one-sided p-value in the direction the metric moved (``p_worse`` for a drop or no change,
    ``p_better`` for a rise).
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
    #: the verdict in a few lines, without case lists or hints (reports render those as tables)
    notes: list[str] = field(default_factory=list)
    #: everything a failure message shows: notes, the cases that matter, how to accept
    message: list[str] = field(default_factory=list)

    @property
    def metric_label(self) -> str:
        """``mean score`` or ``pass rate``."""
        return "pass rate" if self.metric == "pass_rate" else "mean score"

    def headline(self) -> str:
        """A short verdict for summaries: ``router regressed (0.920 → 0.810, p=0.003)``."""
        if self.status == "error":
            return f"{self.suite} errored ({excerpt(self.error or 'run failed', 60)})"
        if self.status == "regressed":
            return (
                f"{self.suite} regressed ({format_score(self.baseline_value)} → "
                f"{format_score(self.current_value)}, p={format_p(self.p_worse)})"
            )
        if self.status == "below_threshold":
            return (
                f"{self.suite} below threshold ({format_score(self.metric_value)} < "
                f"{format_score(self.threshold)})"
            )
        if self.status == "improved":
            return (
                f"{self.suite} improved ({format_score(self.baseline_value)} → "
                f"{format_score(self.current_value)}, p={format_p(self.p_better)})"
            )
        if self.status == "no_baseline":
            return f"{self.suite} passed without a baseline ({format_score(self.metric_value)})"
        return f"{self.suite} passed ({format_score(self.metric_value)})"

    def failure_text(self, suite: Suite | None = None, run: SuiteRun | None = None) -> str:
        """The text a failing suite shows in pytest (no traceback): headline, then the message.

        ``suite`` adds the suite file's path to the headline; ``run`` is accepted for callers
        that have it and is not needed (the verdict carries what it shows).
        """
        where = f" ({display(suite.path)})" if suite is not None else ""
        lines = [self.headline() + where]
        if run is None or self.status != "below_threshold":
            return "\n".join([*lines, *self.message])
        # a table of the failing cases, as in the terminal of a failed unit test
        listed = set(_case_lines(self))
        lines += [m for m in self.message if m not in listed]
        lines.append(failing_case_table(run))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (the JSON report's per-suite verdict)."""
        data = asdict(self)
        data["spread"] = asdict(self.spread) if self.spread is not None else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateVerdict:
        """Inverse of :meth:`to_dict` (what crosses from xdist workers to the controller)."""
        d = dict(data)
        for key in ("worse", "better", "failing"):
            d[key] = [CaseChange(**c) for c in d.get(key) or []]
        d["spread"] = Spread(**d["spread"]) if d.get("spread") else None
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def _case_value(case: CaseResult, metric: str) -> float:
    if metric == "pass_rate":
        return 1.0 if case.passed else 0.0
    return case.score


def _baseline_value(case: BaselineCase, metric: str) -> float:
    if metric == "pass_rate":
        return 1.0 if case.passed else 0.0
    return float(case.score)


def _got(case: CaseResult) -> str:
    if case.error:
        return "error: " + excerpt(case.error)
    for run in case.runs:
        if not run.passed:
            return excerpt(run.output)
    return excerpt(case.output)


def _change(case: CaseResult, before: float | None, after: float) -> CaseChange:
    return CaseChange(
        case_id=case.case_id,
        before=before,
        after=after,
        expected=excerpt(case.expected),
        got=_got(case),
        reason=excerpt(case.reason, 120),
        pass_rate=case.pass_rate,
        runs=len(case.runs),
    )


def sample_scores(run: SuiteRun) -> list[float]:
    """The suite's score per repeat sample: for each sample index, the mean over cases."""
    by_sample: dict[int, list[float]] = {}
    for case in run.cases:
        for r in case.runs:
            by_sample.setdefault(r.sample, []).append(r.score)
    return [sum(v) / len(v) for _, v in sorted(by_sample.items()) if v]


def _listed(title: str, changes: Sequence[CaseChange], limit: int = MESSAGE_CASES) -> list[str]:
    if not changes:
        return []
    lines = [f"{title}:"]
    lines += [f"  {c.line()}" for c in changes[:limit]]
    if len(changes) > limit:
        lines.append(f"  … and {len(changes) - limit} more (see the report)")
    return lines


def evaluate(suite: Suite, run: SuiteRun, baseline: BaselineEntry | None) -> GateVerdict:
    """The gate verdict of ``run`` of ``suite`` against its baseline entry (if any)."""
    return evaluate_settings(GateSettings.from_suite(suite), run, baseline)


#: The name the session uses for :func:`evaluate`.
evaluate_gate = evaluate


def error_verdict(
    suite: str,
    error: str,
    *,
    kind: str | None = None,
    threshold: float = 0.0,
    metric: str = "mean",
    model: str = "",
) -> GateVerdict:
    """The verdict of a suite that could not be scored at all (no usable run).

    ``kind`` is the run's ``error_kind`` (``provider``, ``cache_miss``, ``budget``).
    """
    run = SuiteRun(
        suite=suite, model=model, prompt_text="", cases=[], errors=[error], error_kind=kind
    )
    return evaluate_settings(GateSettings(threshold=threshold, metric=metric), run, None)


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
    v.notes = _notes(v, below=below)
    v.message = v.notes + _case_lines(v)
    hint = accept_hint(v)
    if hint:
        v.message.append(hint)
    return v


def _errored(v: GateVerdict, run: SuiteRun) -> GateVerdict:
    kind = run.error_kind or "error"
    first = run.errors[0] if run.errors else kind
    v.status = "error"
    v.passed = False
    v.failures = ["error"]
    v.error = first
    what = {
        "cache_miss": "a response was missing from the replay cache",
        "provider": "the model provider failed on every attempt",
        "budget": "the call budget (--gpo-max-calls / --gpo-max-cost) ran out",
    }.get(kind, "the suite could not be run")
    v.notes = [
        f"error: {what}; this is not a prompt regression and the gate was not evaluated",
        f"  {excerpt(first, 200)}",
    ]
    if len(run.errors) > 1:
        v.notes.append(f"  … and {len(run.errors) - 1} more errors")
    if kind == "cache_miss":
        v.notes.append(
            "fix: run the suite once with `--gpo-cache rw` against the model and commit the cache"
        )
    v.message = list(v.notes)
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


def _comparison_line(v: GateVerdict) -> str:
    tol = f", tolerance {v.tolerance:g}" if v.tolerance else ""
    return (
        f"{v.metric_label} {format_score(v.baseline_value)} → {format_score(v.current_value)} "
        f"on {v.common} common cases (Δ {format_delta(v.delta)}{tol}); "
        f"{len(v.worse)} worse, {len(v.better)} better"
    )


def _notes(v: GateVerdict, *, below: bool) -> list[str]:
    lines: list[str] = []
    m = v.metric_label
    threshold_text = (
        f"{m} {format_score(v.metric_value)} "
        f"{'<' if below else '≥'} threshold {format_score(v.threshold)}"
    )
    if v.status == "regressed":
        lines.append(
            f"regressed against the baseline: {_comparison_line(v)}; "
            f"{v.test} p={format_p(v.p_worse)} < alpha {v.alpha:g}"
        )
        if below:
            lines.append(f"also below threshold: {threshold_text}")
    elif v.status == "below_threshold":
        passed_count = v.cases - len(v.failing)
        lines.append(f"below threshold: {threshold_text} ({passed_count} of {v.cases} passed)")
    elif v.status == "improved":
        lines.append(
            f"improved on the baseline: {_comparison_line(v)}; "
            f"{v.test} p={format_p(v.p_better)} < alpha {v.alpha:g}"
        )
        lines.append(threshold_text)
    elif v.status == "no_baseline":
        lines.append(f"passed: {threshold_text}; no baseline recorded for this suite")
    else:
        lines.append(f"passed: {threshold_text}")

    if v.has_baseline and v.status not in ("regressed", "improved"):
        if v.common == 0:
            lines.append("baseline: no cases in common with the baseline, nothing to compare")
        else:
            lines.append(f"baseline: {_comparison_line(v)}; {_noise_note(v)}")
    if v.changed:
        lines.append(f"changed since the baseline: {', '.join(v.changed)}")
    elif v.status == "regressed":
        lines.append(
            "prompt, model and scorers are unchanged since the baseline: the drop comes from "
            "the model's outputs (sampling or a provider-side model update)"
        )
    if v.added or v.removed:
        lines.append(
            f"cases since the baseline: {v.added} added, {v.removed} removed "
            f"(only the {v.common} common cases are compared)"
        )
    if v.repeats > 1:
        spread_text = f"; suite score per sample {v.spread.text()}" if v.spread else ""
        lines.append(f"repeats: {v.repeats} runs per case{spread_text}")
    return lines


def _vars_excerpt(vars: Mapping[str, Any], limit: int = 40) -> str:
    text = ", ".join(f"{k}={v}" for k, v in vars.items())
    return excerpt(text, limit)


def failing_case_table(run: SuiteRun, limit: int = MESSAGE_CASES * 2) -> str:
    """A plain-text table of the failing cases: id, vars excerpt, expected, got, reason."""
    from tabulate import tabulate

    failing = [c for c in run.cases if not c.passed]
    rows = [
        [
            c.case_id,
            _vars_excerpt(c.vars),
            excerpt(c.expected, 30),
            excerpt(_got(c), 40),
            excerpt(c.reason, 50),
        ]
        for c in failing[:limit]
    ]
    table = tabulate(rows, headers=["case", "vars", "expected", "got", "reason"], tablefmt="simple")
    if len(failing) > limit:
        table += f"\n… and {len(failing) - limit} more failing cases (see the report)"
    return table


def _case_lines(v: GateVerdict) -> list[str]:
    if v.status == "regressed":
        return _listed("cases that got worse", v.worse)
    if v.status == "below_threshold":
        return _listed("failing cases", v.failing)
    return []


def accept_hint(v: GateVerdict) -> str | None:
    """How to accept the verdict's scores as the new baseline, when that is the next step."""
    if v.status == "regressed":
        return (
            f"if this change is intended, accept it: `{UPDATE_COMMAND}` "
            "and commit the baseline file"
        )
    if v.status == "improved":
        return f"record the improvement: `{UPDATE_COMMAND}` and commit the baseline file"
    if v.status == "no_baseline":
        return f"record one: `{UPDATE_COMMAND}` and commit the baseline file"
    return None


def _noise_note(v: GateVerdict) -> str:
    if v.delta is None:
        return ""
    if v.delta < -v.tolerance - EPSILON:
        return f"the drop is not significant ({v.test} p={format_p(v.p_worse)} ≥ alpha {v.alpha:g})"
    if v.delta < -EPSILON:
        return f"the drop is within tolerance (p={format_p(v.p_worse)})"
    if v.delta > EPSILON:
        return f"the rise is not significant (p={format_p(v.p_better)})"
    return "no change"


def summarize(verdicts: Mapping[str, GateVerdict] | Sequence[GateVerdict]) -> str:
    """One line over many verdicts: ``❌ 1 of 3 suites failed: …`` or ``✅ 3 suites passed``."""
    items = list(verdicts.values()) if isinstance(verdicts, Mapping) else list(verdicts)
    n = len(items)
    if n == 0:
        return "⚪ no prompt suites were run"
    bad = [v for v in items if not v.passed]
    noun = "suite" if n == 1 else "suites"
    if not bad:
        improved = [v for v in items if v.status == "improved"]
        tail = f" ({len(improved)} improved)" if improved else ""
        return f"✅ {n} {noun} passed{tail}" if n > 1 else f"✅ 1 suite passed{tail}"
    errored = sum(1 for v in bad if v.status == "error")
    failed = len(bad) - errored
    parts = []
    if failed:
        parts.append(f"{failed} of {n} {noun} failed")
    if errored:
        parts.append(f"{errored} of {n} {noun} errored" if not failed else f"{errored} errored")
    return f"❌ {', '.join(parts)}: " + "; ".join(v.headline() for v in bad)
