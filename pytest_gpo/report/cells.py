"""The cells the terminal table and the markdown suites table share, one function a column."""

from __future__ import annotations

from pytest_gpo.gate.messages import format_delta, format_score
from pytest_gpo.gate.verdict import GateVerdict


def threshold_text(v: GateVerdict) -> str:
    """The threshold, marked ``(pass rate)`` when that is the gated metric."""
    text = format_score(v.threshold)
    return f"{text} (pass rate)" if v.metric == "pass_rate" else text


def baseline_text(v: GateVerdict) -> str:
    """``0.950 (-0.055)``: the baseline's value on the common cases and the change since."""
    if not v.has_baseline:
        return "-"
    if v.baseline_value is None:
        return "no common cases"
    return f"{format_score(v.baseline_value)} ({format_delta(v.delta)})"


def cases_text(v: GateVerdict) -> str:
    """The number of cases, with cases added/removed since the baseline and repeats."""
    text = str(v.cases)
    if v.added or v.removed:
        text += f" (+{v.added} -{v.removed})"
    if v.repeats > 1:
        text += f" x{v.repeats}"
    return text


def flipped_text(v: GateVerdict) -> str:
    """``3 worse, 1 better`` against the baseline, or ``-`` without a comparison."""
    if not v.has_baseline or v.baseline_value is None:
        return "-"
    return f"{len(v.worse)} worse, {len(v.better)} better"


def count_text(n: int) -> str:
    """A count with thousands separators."""
    return f"{n:,}"
