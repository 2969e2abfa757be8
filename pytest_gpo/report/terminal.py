"""The terminal summary: one line of verdict, a plain-text table with a row per suite, and
with ``--gpo-show-all`` every case of every suite in full."""

from __future__ import annotations

from collections.abc import Sequence

from tabulate import tabulate

from pytest_gpo.gate.messages import format_p, format_score, short_note
from pytest_gpo.llm.types import Usage
from pytest_gpo.report.cells import (
    baseline_text,
    case_verdict_text,
    cases_text,
    count_text,
    sample_text,
    score_text,
    threshold_text,
    usage_cells,
    value_text,
)
from pytest_gpo.report.controls import visible
from pytest_gpo.report.model import Report, SuiteReport

_STATUS_TERM = {
    "pass": "PASS",
    "no_baseline": "PASS (no baseline)",
    "improved": "PASS improved",
    "below_threshold": "FAIL below threshold",
    "regressed": "FAIL regressed",
    "error": "ERROR",
    "invalid": "FAIL invalid suite file",
    "not_run": "FAIL not run",
}


def terminal_table(suites: Report | Sequence[SuiteReport]) -> str:
    """The plain-text table the plugin prints in ``pytest_terminal_summary``, one row a suite.

    Columns: suite, score, threshold, baseline (delta), verdict, cases, model calls, cache
    hits, tokens, cost; a total row when there are several suites.
    """
    items = suites.suites if isinstance(suites, Report) else list(suites)
    headers = [
        "suite",
        "score",
        "threshold",
        "baseline (delta)",
        "verdict",
        "cases",
        "calls",
        "cache hits",
        "tokens",
        "cost",
    ]
    rows: list[list[str]] = []
    for s in items:
        v = s.verdict
        verdict = _STATUS_TERM.get(v.status, v.status)
        if "regressed" in v.failures or v.status == "improved":
            verdict += f" p={format_p(v.p_value)}"
        if v.changed:
            verdict += f" [{'/'.join(v.changed)} changed]"
        note = short_note(v)
        if note:
            verdict += f" ({note})"
        rows.append(
            [
                v.suite,
                score_text(s),
                threshold_text(s),
                baseline_text(v),
                verdict,
                cases_text(v),
                *usage_cells(s),
            ]
        )
    if len(items) > 1:
        total = Usage.combined(*(s.usage for s in items))
        cases = sum(s.verdict.cases for s in items)
        rows.append(
            [
                "total",
                "",
                "",
                "",
                "",
                str(cases),
                count_text(total.calls),
                count_text(total.cache_hits),
                count_text(total.tokens),
                total.cost_text(),
            ]
        )
    # escaped before tabulate measures the columns (an ESC is zero-width on a terminal)
    rows = [[visible(cell) for cell in row] for row in rows]
    return tabulate(rows, headers=headers, tablefmt="plain", disable_numparse=True)


def terminal_lines(report: Report, *, show_all: bool = False) -> list[str]:
    """The summary line, then the table, as lines for ``terminalreporter.write_line``; with
    ``show_all``, then every case of every suite (:func:`all_cases_lines`)."""
    if not report.suites:
        return [report.summary()]
    lines = [report.summary(), "", *terminal_table(report).splitlines()]
    if show_all:
        for s in report.suites:
            lines += ["", *all_cases_lines(s)]
    return [visible(line) for line in lines]


def _indented(label: str, text: str, indent: str) -> list[str]:
    """``label: text`` with every further line of ``text`` indented under it, nothing cut."""
    first, *rest = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [f"{indent}{label}{first}", *(f"{indent}  {line}" for line in rest)]


def all_cases_lines(s: SuiteReport) -> list[str]:
    """Every case of a suite, untruncated: vars, expected, every sample's full output, its
    score, verdict and reason, and the k-of-N rule of a repeated case."""
    v = s.verdict
    head = f"{v.suite}: {_STATUS_TERM.get(v.status, v.status)}, score {score_text(s)}"
    if s.file:
        head += f" ({s.file})"
    if s.run is None:
        lines = [f"{head}: no cases were scored"]
        return lines + (_indented("", v.error, "  ") if v.error else [])
    lines = [f"{head}, every case:"]  # terminal_lines escapes control characters
    for c in s.run.cases:
        score = "-" if c.errored else format_score(c.score)
        lines.append(f"  {c.case_id}: {case_verdict_text(c)}, score {score}")
        for key, value in c.vars.items():
            lines += _indented(f"var {key}: ", value_text(value), "    ")
        lines += _indented("expected: ", value_text(c.expected), "    ")
        for r in c.runs:
            lines += _indented("", sample_text(r), "    ")
            lines += _indented("reason: ", r.reason, "      ")
    return lines
