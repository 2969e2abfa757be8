"""The pull-request markdown of a report: verdict line, suites table, folded per-suite details.

The markdown is made to be read in a pull request comment or a CI step summary: a one-line
verdict first, one table of suites, then per-suite details folded in ``<details>`` blocks, then
the extra sections. tabulate does not escape markdown: every table cell goes through
:func:`md_cell` first.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote

from tabulate import tabulate

from pytest_gpo.gate.baseline import UPDATE_COMMAND
from pytest_gpo.gate.messages import (
    accept_hint,
    format_p,
    format_score,
    notes,
    outcome_word,
    short_note,
)
from pytest_gpo.gate.verdict import CaseChange
from pytest_gpo.report.cells import (
    NONE,
    baseline_text,
    cases_text,
    count_text,
    flipped_text,
    outcome_text,
    sample_text,
    score_text,
    threshold_text,
    usage_cells,
)
from pytest_gpo.report.controls import visible
from pytest_gpo.report.model import Report, SuiteReport
from pytest_gpo.results import CaseResult, SuiteRun, runs_rule

#: Rows a markdown case table shows before pointing to the JSON (PR comments max 65536 chars).
MAX_ROWS = 50

#: First line of the markdown: invisible when rendered, lets CI scripts find their own comment.
MARKER = "<!-- pytest-gpo report -->"

_STATUS_MD = {
    "pass": "✅ pass",
    "no_baseline": "✅ pass (no baseline)",
    "improved": "✅ improved",
    "below_threshold": "❌ below threshold",
    "regressed": "❌ regressed",
    "error": "⚠️ error",
    "invalid": "❌ invalid suite file",
    "not_run": "❌ not run",
}

# -- escaping --------------------------------------------------------------------------------

_MD_SPECIAL = str.maketrans(
    {
        "\\": "\\\\",
        "`": "\\`",
        "*": "\\*",
        "_": "\\_",
        "[": "\\[",
        "]": "\\]",
        "~": "\\~",
        "|": "\\|",
    }
)


def md_text(value: object) -> str:
    """Text that renders literally in markdown: HTML-escaped, markdown punctuation escaped."""
    text = html.escape(str(value), quote=False)
    return text.translate(_MD_SPECIAL)


def md_cell(value: object) -> str:
    """A table cell: :func:`md_text`, newlines as ``<br>``, never empty (tabulate pads)."""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    return "<br>".join(md_text(line) for line in text.split("\n"))


def html_text(value: object) -> str:
    """Text for inside an HTML element (``<summary>``): HTML-escaped only."""
    return html.escape(str(value), quote=False).replace("\n", " ")


def md_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub markdown table with every header and cell escaped."""
    return tabulate(
        [[md_cell(c) for c in row] for row in rows],
        headers=[md_cell(h) for h in headers],
        tablefmt="github",
        disable_numparse=True,
    )


def details(summary: str, body: str, *, open_: bool = False) -> str:
    """A folded ``<details>`` block; ``summary`` is plain text (escaped here), ``body`` markdown.

    The blank lines around the body are what lets GitHub render markdown (tables) inside.
    """
    tag = "<details open>" if open_ else "<details>"
    return f"{tag}<summary>{html_text(summary)}</summary>\n\n{body.strip()}\n\n</details>"


# -- suites ----------------------------------------------------------------------------------


def _more_rows(n: int, more: str) -> str:
    return f"\n\n… and {n} more cases ({more})."


def _got(c: CaseChange, case: CaseResult | None) -> str:
    """What a case got; for a repeated case every sample's output, pass or fail and score."""
    if case is not None and len(case.runs) > 1:
        return "\n".join(sample_text(r, 60) for r in case.runs)
    return c.got or NONE


def _case_table(
    s: SuiteReport, changes: Sequence[CaseChange], *, with_before: bool, max_rows: int, more: str
) -> str:
    by_id = s.run.by_id() if s.run is not None else {}
    outcomes = s.verdict.metric == "pass_rate"  # compared as pass/fail, scores shown beside
    repeated = any(c.runs > 1 for c in changes)
    headers = ["case"]
    if with_before:
        headers += ["before", "after"]
    if outcomes or not with_before:
        headers.append("score")
    if repeated:
        headers.append("runs")
    headers += ["expected", "got (every run)" if repeated else "got"]
    if not with_before:
        headers.append("reason")
    rows: list[list[str]] = []
    for c in changes[:max_rows]:
        row = [c.case_id]
        if with_before and outcomes:
            row += [outcome_word(c.before), outcome_word(c.after)]
        elif with_before:
            row += [format_score(c.before), format_score(c.after)]
        if outcomes or not with_before:
            row.append(format_score(c.after if c.score is None else c.score))
        if repeated:
            row.append(runs_rule(round(c.pass_rate * c.runs), c.runs, c.min_pass))
        row += [c.expected or NONE, _got(c, by_id.get(c.case_id))]
        if not with_before:
            row.append(c.reason or NONE)
        rows.append(row)
    table = md_table(headers, rows)
    if len(changes) > max_rows:
        table += _more_rows(len(changes) - max_rows, more)
    return table


def _repeats_table(run: SuiteRun, max_rows: int, more: str) -> str:
    cases = sorted(run.cases, key=lambda c: (c.pass_rate, c.score, c.case_id))
    rows = [
        [c.case_id, c.rule, f"{c.pass_rate:.0%}", outcome_text(c.passed), format_score(c.score)]
        for c in cases[:max_rows]
    ]
    table = md_table(["case", "runs", "pass rate", "verdict", "score"], rows)
    if len(cases) > max_rows:
        table += _more_rows(len(cases) - max_rows, more)
    return table


def _suite_has_details(s: SuiteReport) -> bool:
    v = s.verdict
    return bool(
        v.status not in ("pass", "no_baseline")
        or v.worse
        or v.better
        or v.failing
        or v.changed
        or v.added
        or v.removed
        or v.repeats > 1
    )


def _suite_markdown(s: SuiteReport, max_rows: int, more: str) -> str:
    v = s.verdict
    icon, _, label = _STATUS_MD.get(v.status, v.status).partition(" ")
    parts = [f"### {icon} {md_text(v.suite)}: {md_text(label)}"]
    lines = [f"- {md_text(n.strip())}" for n in notes(v)]
    if s.file and not s.scored:
        lines.append(f"- file: {md_text(s.file)}")
    if accept_hint(v):
        what = "If this change is intended, accept it" if v.status == "regressed" else "Record it"
        lines.append(f"- {what}: run `{UPDATE_COMMAND}` and commit the baseline file.")
    parts.append("\n".join(lines))
    if v.worse:
        parts.append(
            details(
                f"{len(v.worse)} case{'s' if len(v.worse) != 1 else ''} got worse",
                _case_table(s, v.worse, with_before=True, max_rows=max_rows, more=more),
                open_=v.status == "regressed",
            )
        )
    if v.better:
        parts.append(
            details(
                f"{len(v.better)} case{'s' if len(v.better) != 1 else ''} got better",
                _case_table(s, v.better, with_before=True, max_rows=max_rows, more=more),
            )
        )
    if v.failing:
        parts.append(
            details(
                f"{len(v.failing)} of {v.cases} cases failing",
                _case_table(s, v.failing, with_before=False, max_rows=max_rows, more=more),
                open_=v.status == "below_threshold",
            )
        )
    if v.repeats > 1 and s.run is not None:
        spread = f", suite score per sample {v.spread.text()}" if v.spread else ""
        parts.append(
            details(
                f"Repeats: {v.repeats} runs per case{spread}",
                _repeats_table(s.run, max_rows, more),
            )
        )
    return "\n\n".join(parts)


# -- the report ------------------------------------------------------------------------------


def render_markdown(
    report: Report,
    *,
    max_rows: int = MAX_ROWS,
    json_name: str | None = None,
    html_link: str | None = None,
) -> str:
    """The pull-request markdown: verdict line, suites table, folded details, extra sections.

    ``json_name`` is the JSON report written beside it (which holds every case); without one
    the markdown does not point to it. ``html_link`` is the HTML report's path relative to the
    markdown file, when one was written.
    """
    more = (
        f"every case is in {json_name}"
        if json_name
        else "not shown; --gpo-report PATH writes every case to a JSON report"
    )
    out = [MARKER, f"## {md_text(report.title)}", "", md_text(report.summary())]
    if html_link:
        target = quote(html_link.replace("\\", "/"))
        out += [
            "",
            f"Every case with its full output, filters and search: "
            f"[{md_text(html_link)}]({target}) (self-contained HTML report)",
        ]
    if report.suites:
        rows = []
        for s in report.suites:
            v = s.verdict
            rows.append(
                [
                    v.suite,
                    _STATUS_MD.get(v.status, v.status)
                    + (f" ({', '.join(v.changed)} changed)" if v.changed else "")
                    + (f" ({short_note(v)})" if short_note(v) else ""),
                    score_text(s),
                    threshold_text(s),
                    baseline_text(v),
                    format_p(v.p_value) if v.p_value is not None else "-",
                    cases_text(v),
                    flipped_text(v),
                    s.model or "-",
                ]
            )
        out += [
            "",
            md_table(
                [
                    "suite",
                    "verdict",
                    "score",
                    "threshold",
                    "baseline (Δ)",
                    "p",
                    "cases",
                    "flipped",
                    "model",
                ],
                rows,
            ),
        ]
        total = report.usage()
        usage_rows = [[s.name, s.model or NONE, *usage_cells(s)] for s in report.suites]
        out += [
            "",
            details(
                f"Model use: {count_text(total.calls)} calls, "
                f"{count_text(total.cache_hits)} cache hits, "
                f"{count_text(total.tokens)} tokens, cost {total.cost_text()}",
                md_table(["suite", "model", "calls", "cache hits", "tokens", "cost"], usage_rows),
            ),
        ]
        for s in report.suites:
            if _suite_has_details(s):
                out += ["", _suite_markdown(s, max_rows, more)]
    if report.meta:
        out += [
            "",
            details(
                "Run details",
                md_table(["key", "value"], [[k, _meta_value(v)] for k, v in report.meta.items()]),
            ),
        ]
    for section in report.sections:
        out += ["", f"## {md_text(section.title)}", "", section.markdown.strip()]
    # answers, reasons and prompts may hold ANSI escapes, NUL bytes or bidi overrides
    return visible("\n".join(out).rstrip() + "\n")


def _meta_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(x) for x in value)
    return str(value)
