"""The cells every renderer shares, one function a number: terminal, markdown, JSON and JUnit.

Each number has one definition (:class:`~pytest_gpo.report.model.SuiteReport` for a suite,
:class:`~pytest_gpo.results.CaseResult` for a case) and one text, made here, so the terminal
table, the markdown report, the JSON report and the JUnit properties never disagree.
"""

from __future__ import annotations

from pytest_gpo.gate.excerpt import excerpt
from pytest_gpo.gate.messages import format_delta, format_score
from pytest_gpo.gate.verdict import GateVerdict
from pytest_gpo.llm.types import canonical_json
from pytest_gpo.report.model import SuiteReport
from pytest_gpo.results import CaseResult, RunResult

#: What a number that does not exist is shown as.
NONE = "-"


def score_text(s: SuiteReport) -> str:
    """The suite's score (its gated metric's value), or ``-`` for a suite with no scores."""
    return format_score(s.score, NONE)


def threshold_value_text(s: SuiteReport) -> str:
    """The threshold as a number, or ``-`` when unknown (a file that could not be loaded)."""
    return format_score(s.threshold, NONE)


def threshold_text(s: SuiteReport) -> str:
    """The threshold, marked ``(pass rate)`` when that is the gated metric."""
    text = threshold_value_text(s)
    return (
        f"{text} (pass rate)"
        if s.verdict.metric == "pass_rate" and s.threshold is not None
        else text
    )


def baseline_text(v: GateVerdict) -> str:
    """``0.950 (-0.055)``: the baseline's value on the common cases and the change since."""
    if not v.has_baseline:
        return NONE
    if v.baseline_value is None:
        return "no common cases"
    return f"{format_score(v.baseline_value)} ({format_delta(v.delta)})"


def case_count_text(v: GateVerdict) -> str:
    """The suite's number of cases (``-`` for a file that is not a valid suite: it has none)."""
    return "-" if v.status == "invalid" else str(v.cases)


def cases_text(v: GateVerdict) -> str:
    """The number of cases, with cases added/removed since the baseline and repeats."""
    text = case_count_text(v)
    if v.added or v.removed:
        text += f" (+{v.added} -{v.removed})"
    if v.repeats > 1:
        text += f" x{v.repeats}"
    return text


def flipped_text(v: GateVerdict) -> str:
    """``3 worse, 1 better`` against the baseline, or ``-`` without a comparison."""
    if not v.has_baseline or v.baseline_value is None:
        return NONE
    return f"{len(v.worse)} worse, {len(v.better)} better"


def count_text(n: int) -> str:
    """A count with thousands separators."""
    return f"{n:,}"


def usage_cells(s: SuiteReport) -> list[str]:
    """Calls, cache hits, tokens and cost of a suite, as every table shows them."""
    u = s.usage
    return [count_text(u.calls), count_text(u.cache_hits), count_text(u.tokens), u.cost_text()]


def outcome_text(passed: bool) -> str:
    """``pass`` or ``fail``."""
    return "pass" if passed else "fail"


def case_verdict_text(c: CaseResult) -> str:
    """``fail``, or for a repeated case the rule that decided it: ``fail: passed 1/3 runs
    (needs 2)``."""
    if c.errored:
        return "error"
    word = outcome_text(c.passed)
    return f"{word}: {c.rule}" if len(c.runs) > 1 else word


def value_text(value: object) -> str:
    """A case value in full: strings as they are, other values as JSON, no value as ``-``."""
    if value is None:
        return NONE
    return value if isinstance(value, str) else canonical_json(value)


def sample_text(r: RunResult, limit: int | None = None) -> str:
    """One sample of a case: ``#2 fail 0.500: output`` (``limit``: a one-line excerpt)."""
    output = ("error: " + r.error) if r.error else r.output
    shown = output if limit is None else excerpt(output, limit)
    return f"#{r.sample + 1} {outcome_text(r.passed)} {format_score(r.score)}: {shown}"
