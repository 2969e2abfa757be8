"""The terminal summary: one line of verdict, then a plain-text table with a row per suite."""

from __future__ import annotations

from collections.abc import Sequence

from tabulate import tabulate

from pytest_gpo.gate.messages import format_p, format_score, short_note
from pytest_gpo.llm.types import Usage
from pytest_gpo.report.cells import baseline_text, cases_text, count_text, threshold_text
from pytest_gpo.report.model import Report, SuiteReport

_STATUS_TERM = {
    "pass": "PASS",
    "no_baseline": "PASS (no baseline)",
    "improved": "PASS improved",
    "below_threshold": "FAIL below threshold",
    "regressed": "FAIL regressed",
    "error": "ERROR",
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
        score = format_score(v.metric_value) if v.status != "error" else "-"
        u = s.usage
        rows.append(
            [
                v.suite,
                score,
                threshold_text(v),
                baseline_text(v),
                verdict,
                cases_text(v),
                count_text(u.calls),
                count_text(u.cache_hits),
                count_text(u.tokens),
                u.cost_text(),
            ]
        )
    if len(items) > 1:
        total = Usage()
        for s in items:
            total.merge(s.usage)
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
    return tabulate(rows, headers=headers, tablefmt="plain", disable_numparse=True)


def terminal_lines(report: Report) -> list[str]:
    """The summary line, then the table, as lines for ``terminalreporter.write_line``."""
    if not report.suites:
        return [report.summary()]
    return [report.summary(), "", *terminal_table(report).splitlines()]
