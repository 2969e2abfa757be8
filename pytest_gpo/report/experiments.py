"""The report's parts about experiments and selection: racing savings, how the best prompt was
chosen, and the repeats of ``runs: N`` with their mean and spread.

Used by :mod:`pytest_gpo.report.optimization` for the markdown section, the JSON record and
the terminal summary.
"""

from __future__ import annotations

from typing import Any

from pytest_gpo.gate.messages import format_score
from pytest_gpo.optimize.repeat import spread
from pytest_gpo.optimize.result import OptimizationResult

_MISSING = "–"


def racing_text(result: OptimizationResult) -> str | None:
    """E.g. ``racing (on): 412 of 1,024 task calls saved scoring candidates on eval (40.2%),
    45.8 a step``; ``None`` when nothing was scored in the steps."""
    full = result.eval_calls_full
    if not result.steps or full <= 0:
        return None
    saved = result.calls_saved
    per_step = saved / len(result.steps)
    return (
        f"racing ({result.config.racing}): {saved:,} of {full:,} task calls saved scoring "
        f"candidates on eval ({saved / full:.1%}), {per_step:.1f} a step"
    )


def runs_text(result: OptimizationResult) -> str | None:
    """The held-out score of the ``runs: N`` repeats as mean ± sample std (min, max)."""
    if not result.runs:
        return None
    held_out = spread([r.test_after for r in result.runs])
    if held_out is None:
        return f"{len(result.runs)} runs; no held-out score"
    return (
        f"held-out (test) score of each run's best prompt: {held_out.text()}; "
        f"run {result.chosen_run} is the one written back (best eval, ties by train)"
    )


def experiment_markdown(result: OptimizationResult, table: Any) -> list[str]:
    """Markdown lines: the selection note, racing savings and the runs table.

    ``table(headers, rows)`` renders a table (the report's own helper).
    """
    out: list[str] = []
    if result.selection_note:
        out += [f"Selection: {result.selection_note}.", ""]
    racing = racing_text(result)
    if racing:
        out += [f"Racing: {racing.split(': ', 1)[1]} (mode `{result.config.racing}`).", ""]
    if result.runs:
        rows = [
            [
                str(r.run) + (" ✔" if r.run == result.chosen_run else ""),
                str(r.optimizer_seed),
                format_score(r.eval_best, _MISSING),
                format_score(r.train_best, _MISSING),
                format_score(r.test_before, _MISSING),
                format_score(r.test_after, _MISSING),
                "yes" if r.accepted and r.changed else "no",
                str(r.calls_saved),
            ]
            for r in result.runs
        ]
        headers = [
            "run",
            "optimizer seed",
            "best eval",
            "its train",
            "test before",
            "test after",
            "accepted",
            "calls saved",
        ]
        out += ["#### Runs", "", table(headers, rows), "", f"{runs_text(result)}.", ""]
    return out


def experiment_json(result: OptimizationResult) -> dict[str, Any]:
    """Extra JSON fields: calls saved per step and in all, the held-out spread of the runs."""
    data: dict[str, Any] = {
        "calls_saved": result.calls_saved,
        "eval_calls_full": result.eval_calls_full,
        "calls_saved_per_step": [s.calls_saved for s in result.steps],
    }
    held_out = spread([r.test_after for r in result.runs]) if result.runs else None
    if held_out is not None:
        data["runs_test"] = {
            "n": held_out.n,
            "mean": held_out.mean,
            "std": held_out.std,
            "std_kind": "sample (n - 1)",
            "min": held_out.low,
            "max": held_out.high,
        }
    return data


def experiment_terminal_lines(result: OptimizationResult) -> list[str]:
    """Short lines for the terminal summary."""
    lines: list[str] = []
    racing = racing_text(result)
    if racing:
        lines.append(f"  {racing}")
    if result.selection_note:
        lines.append(f"  selection: {result.selection_note}")
    runs = runs_text(result)
    if runs:
        lines.append(f"  runs: {runs}")
    return lines
