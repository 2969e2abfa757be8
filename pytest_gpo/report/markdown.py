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

from tabulate import tabulate

from pytest_gpo.gate.baseline import UPDATE_COMMAND
from pytest_gpo.gate.messages import accept_hint, format_p, format_score, notes, short_note
from pytest_gpo.gate.verdict import CaseChange
from pytest_gpo.report.cells import (
    baseline_text,
    cases_text,
    count_text,
    flipped_text,
    threshold_text,
)
from pytest_gpo.report.model import Report, SuiteReport
from pytest_gpo.results import SuiteRun

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


def _case_table(changes: Sequence[CaseChange], *, with_before: bool, max_rows: int) -> str:
    repeated = any(c.runs > 1 for c in changes)
    headers = ["case"]
    headers += ["before", "after"] if with_before else ["score"]
    if repeated:
        headers.append("passed runs")
    headers += ["expected", "got"]
    if not with_before:
        headers.append("reason")
    rows: list[list[str]] = []
    for c in changes[:max_rows]:
        row = [c.case_id]
        row += (
            [format_score(c.before), format_score(c.after)]
            if with_before
            else [format_score(c.after)]
        )
        if repeated:
            row.append(f"{round(c.pass_rate * c.runs)}/{c.runs}")
        row += [c.expected or "-", c.got or "-"]
        if not with_before:
            row.append(c.reason or "-")
        rows.append(row)
    table = md_table(headers, rows)
    if len(changes) > max_rows:
        table += f"\n\n… and {len(changes) - max_rows} more cases (see the JSON report)."
    return table


def _repeats_table(run: SuiteRun, max_rows: int) -> str:
    cases = sorted(run.cases, key=lambda c: (c.pass_rate, c.score, c.case_id))
    rows = [
        [
            c.case_id,
            f"{c.passes}/{len(c.runs)}",
            f"{c.pass_rate:.0%}",
            f"{c.min_pass} of {len(c.runs)}",
            "pass" if c.passed else "fail",
            format_score(c.score),
        ]
        for c in cases[:max_rows]
    ]
    table = md_table(["case", "passed runs", "pass rate", "needs", "verdict", "mean score"], rows)
    if len(cases) > max_rows:
        table += f"\n\n… and {len(cases) - max_rows} more cases (see the JSON report)."
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


def _suite_markdown(s: SuiteReport, max_rows: int) -> str:
    v = s.verdict
    icon, _, label = _STATUS_MD.get(v.status, v.status).partition(" ")
    parts = [f"### {icon} {md_text(v.suite)}: {md_text(label)}"]
    lines = [f"- {md_text(n.strip())}" for n in notes(v)]
    if accept_hint(v):
        what = "If this change is intended, accept it" if v.status == "regressed" else "Record it"
        lines.append(f"- {what}: run `{UPDATE_COMMAND}` and commit the baseline file.")
    parts.append("\n".join(lines))
    if v.worse:
        parts.append(
            details(
                f"{len(v.worse)} case{'s' if len(v.worse) != 1 else ''} got worse",
                _case_table(v.worse, with_before=True, max_rows=max_rows),
                open_=v.status == "regressed",
            )
        )
    if v.better:
        parts.append(
            details(
                f"{len(v.better)} case{'s' if len(v.better) != 1 else ''} got better",
                _case_table(v.better, with_before=True, max_rows=max_rows),
            )
        )
    if v.failing:
        parts.append(
            details(
                f"{len(v.failing)} of {v.cases} cases failing",
                _case_table(v.failing, with_before=False, max_rows=max_rows),
                open_=v.status == "below_threshold",
            )
        )
    if v.repeats > 1 and s.run is not None:
        spread = f", suite score per sample {v.spread.text()}" if v.spread else ""
        parts.append(
            details(f"Repeats: {v.repeats} runs per case{spread}", _repeats_table(s.run, max_rows))
        )
    return "\n\n".join(parts)


# -- the report ------------------------------------------------------------------------------


def render_markdown(report: Report, *, max_rows: int = MAX_ROWS) -> str:
    """The pull-request markdown: verdict line, suites table, folded details, extra sections."""
    out = [MARKER, f"## {md_text(report.title)}", "", md_text(report.summary())]
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
                    format_score(v.metric_value) if v.status != "error" else "-",
                    threshold_text(v),
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
        usage_rows = [
            [
                s.name,
                s.model or "-",
                count_text(s.usage.calls),
                count_text(s.usage.cache_hits),
                count_text(s.usage.tokens),
                s.usage.cost_text(),
            ]
            for s in report.suites
        ]
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
                out += ["", _suite_markdown(s, max_rows)]
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
    return "\n".join(out).rstrip() + "\n"


def _meta_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(x) for x in value)
    return str(value)
