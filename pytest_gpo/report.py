"""Reports of a session: the terminal summary table, and markdown + JSON for pull requests.

The markdown is made to be read in a pull request comment or a CI step summary: a one-line
verdict first, one table of suites, then per-suite details folded in ``<details>`` blocks.
The JSON beside it carries the same facts for scripts. Other parts of the plugin (the
optimizer) add their own sections as :class:`Section` items ``(title, markdown, json)``.

tabulate does not escape markdown: every table cell goes through :func:`md_cell` first.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tabulate import tabulate

from pytest_gpo.calls import Usage
from pytest_gpo.errors import GpoError
from pytest_gpo.fsutil import atomic_write_text
from pytest_gpo.gate import (
    UPDATE_COMMAND,
    CaseChange,
    GateVerdict,
    accept_hint,
    format_delta,
    format_p,
    format_score,
    summarize,
)
from pytest_gpo.results import SuiteRun

#: Version of the JSON report's layout.
JSON_VERSION = 1

#: Rows a markdown case table shows before pointing to the JSON (PR comments max 65536 chars).
MAX_ROWS = 50

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"

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

_STATUS_TERM = {
    "pass": "PASS",
    "no_baseline": "PASS (no baseline)",
    "improved": "PASS improved",
    "below_threshold": "FAIL below threshold",
    "regressed": "FAIL regressed",
    "error": "ERROR",
}


class ReportError(GpoError):
    """A report file cannot be written."""


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


# -- model -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """An extra report section from another part of the plugin (e.g. the optimizer).

    ``markdown`` is trusted markdown placed under a ``## title`` heading; ``data`` is any
    JSON-able value stored under ``sections[i].data`` in the JSON report.
    """

    title: str
    markdown: str
    data: Any = None


SectionLike = Section | tuple[str, str, Any]


def as_section(item: SectionLike) -> Section:
    """A :class:`Section` from a section or a ``(title, markdown, json)`` tuple."""
    if isinstance(item, Section):
        return item
    title, markdown, data = item
    return Section(title=str(title), markdown=str(markdown), data=data)


@dataclass(frozen=True)
class SuiteReport:
    """One suite in a report: its gate verdict and the run it judged (if there was one)."""

    verdict: GateVerdict
    run: SuiteRun | None = None

    @classmethod
    def from_dicts(
        cls, verdict: Mapping[str, Any], run: Mapping[str, Any] | None = None
    ) -> SuiteReport:
        """From the JSON forms of a verdict and a run (as xdist workers send them home)."""
        return cls(GateVerdict.from_dict(verdict), SuiteRun.from_dict(run) if run else None)

    @property
    def name(self) -> str:
        """The suite's name."""
        return self.verdict.suite

    @property
    def model(self) -> str:
        """The model the suite ran on."""
        return (self.run.model if self.run is not None else "") or self.verdict.model

    @property
    def usage(self) -> Usage:
        """Model use of this suite's run."""
        return self.run.usage if self.run is not None else Usage()


@dataclass
class Report:
    """Everything one session reports: suites in order, extra sections and free metadata.

    ``meta`` is shown as a small table and stored in the JSON (e.g. cache mode, baseline path,
    plugin version); keep it JSON-able.
    """

    suites: list[SuiteReport] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    title: str = "pytest-gpo"
    #: replaces the gate's one-line verdict (e.g. an optimization run's outcome)
    headline: str | None = None

    @property
    def verdicts(self) -> list[GateVerdict]:
        """The suites' verdicts, in order."""
        return [s.verdict for s in self.suites]

    @property
    def passed(self) -> bool:
        """True when no suite failed or errored."""
        return all(v.passed for v in self.verdicts)

    def summary(self) -> str:
        """The one-line verdict (:func:`pytest_gpo.gate.summarize`), or :attr:`headline`."""
        return self.headline if self.headline else summarize(self.verdicts)

    def usage(self) -> Usage:
        """Model use over all suites."""
        total = Usage()
        for s in self.suites:
            total.merge(s.usage)
        return total

    def add_section(self, item: SectionLike) -> None:
        """Append an extra section (``Section`` or ``(title, markdown, json)``)."""
        self.sections.append(as_section(item))


def build_report(
    suites: Iterable[SuiteReport | tuple[GateVerdict, SuiteRun]],
    sections: Iterable[SectionLike] = (),
    *,
    meta: Mapping[str, Any] | None = None,
) -> Report:
    """A :class:`Report` from ``(verdict, run)`` pairs and extra sections."""
    items = [s if isinstance(s, SuiteReport) else SuiteReport(*s) for s in suites]
    return Report(suites=items, sections=[as_section(x) for x in sections], meta=dict(meta or {}))


# -- shared formatting -----------------------------------------------------------------------


def _threshold_text(v: GateVerdict) -> str:
    text = format_score(v.threshold)
    return f"{text} (pass rate)" if v.metric == "pass_rate" else text


def _baseline_text(v: GateVerdict) -> str:
    if not v.has_baseline:
        return "-"
    if v.baseline_value is None:
        return "no common cases"
    return f"{format_score(v.baseline_value)} ({format_delta(v.delta)})"


def _cases_text(v: GateVerdict) -> str:
    text = str(v.cases)
    if v.added or v.removed:
        text += f" (+{v.added} -{v.removed})"
    if v.repeats > 1:
        text += f" x{v.repeats}"
    return text


def _flipped_text(v: GateVerdict) -> str:
    if not v.has_baseline or v.baseline_value is None:
        return "-"
    return f"{len(v.worse)} worse, {len(v.better)} better"


def _int(n: int) -> str:
    return f"{n:,}"


# -- terminal --------------------------------------------------------------------------------


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
        if v.status in ("regressed", "improved"):
            verdict += f" p={format_p(v.p_value)}"
        if v.changed:
            verdict += f" [{'/'.join(v.changed)} changed]"
        score = format_score(v.metric_value) if v.status != "error" else "-"
        u = s.usage
        rows.append(
            [
                v.suite,
                score,
                _threshold_text(v),
                _baseline_text(v),
                verdict,
                _cases_text(v),
                _int(u.calls),
                _int(u.cache_hits),
                _int(u.tokens),
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
                _int(total.calls),
                _int(total.cache_hits),
                _int(total.tokens),
                total.cost_text(),
            ]
        )
    return tabulate(rows, headers=headers, tablefmt="plain", disable_numparse=True)


def terminal_lines(report: Report) -> list[str]:
    """The summary line, then the table, as lines for ``terminalreporter.write_line``."""
    if not report.suites:
        return [report.summary()]
    return [report.summary(), "", *terminal_table(report).splitlines()]


# -- markdown --------------------------------------------------------------------------------


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
    notes = [f"- {md_text(n.strip())}" for n in v.notes]
    if accept_hint(v):
        what = "If this change is intended, accept it" if v.status == "regressed" else "Record it"
        notes.append(f"- {what}: run `{UPDATE_COMMAND}` and commit the baseline file.")
    parts.append("\n".join(notes))
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
                    + (f" ({', '.join(v.changed)} changed)" if v.changed else ""),
                    format_score(v.metric_value) if v.status != "error" else "-",
                    _threshold_text(v),
                    _baseline_text(v),
                    format_p(v.p_value) if v.p_value is not None else "-",
                    _cases_text(v),
                    _flipped_text(v),
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
                _int(s.usage.calls),
                _int(s.usage.cache_hits),
                _int(s.usage.tokens),
                s.usage.cost_text(),
            ]
            for s in report.suites
        ]
        out += [
            "",
            details(
                f"Model use: {_int(total.calls)} calls, {_int(total.cache_hits)} cache hits, "
                f"{_int(total.tokens)} tokens, cost {total.cost_text()}",
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


# -- JSON ------------------------------------------------------------------------------------


def _suite_json(s: SuiteReport) -> dict[str, Any]:
    cases = s.run.cases if s.run is not None else []
    return {
        "suite": s.name,
        "model": s.model,
        "passed": s.verdict.passed,
        "status": s.verdict.status,
        "verdict": s.verdict.to_dict(),
        "usage": s.usage.to_dict(),
        "cost_text": s.usage.cost_text(),
        "cases": [
            {
                "id": c.case_id,
                "score": c.score,
                "passed": c.passed,
                "passes": c.passes,
                "runs": len(c.runs),
                "pass_rate": c.pass_rate,
                "min_pass": c.min_pass,
                "error": c.error,
            }
            for c in cases
        ],
    }


def report_json(report: Report) -> dict[str, Any]:
    """The JSON report: summary, totals, per-suite verdicts and cases, extra sections."""
    verdicts = report.verdicts
    total = report.usage()
    return {
        "version": JSON_VERSION,
        "title": report.title,
        "passed": report.passed,
        "summary": report.summary(),
        "meta": dict(report.meta),
        "totals": {
            "suites": len(verdicts),
            "passed": sum(1 for v in verdicts if v.passed),
            "failed": sum(1 for v in verdicts if not v.passed and v.status != "error"),
            "errored": sum(1 for v in verdicts if v.status == "error"),
            "improved": sum(1 for v in verdicts if v.status == "improved"),
            "regressed": sum(1 for v in verdicts if v.status == "regressed"),
            "usage": total.to_dict(),
            "cost_text": total.cost_text(),
        },
        "suites": [_suite_json(s) for s in report.suites],
        "sections": [{"title": x.title, "data": x.data} for x in report.sections],
    }


# -- files -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrittenReports:
    """Where the reports went; ``step_summary_error`` says why the step summary was not."""

    markdown: Path
    json: Path
    step_summary: Path | None = None
    step_summary_error: str | None = None


def report_paths(path: str | Path) -> tuple[Path, Path]:
    """(markdown, json) paths for ``--gpo-report PATH``: ``report.md`` → ``report.json``.

    A PATH ending in ``.json`` gets the markdown beside it as ``.md``.
    """
    p = Path(path)
    if p.suffix.lower() == ".json":
        return p.with_suffix(".md"), p
    return p, (p.with_suffix(".json") if p.suffix else p.with_name(p.name + ".json"))


def append_step_summary(markdown: str, env: Mapping[str, str] | None = None) -> Path | None:
    """Append ``markdown`` to ``$GITHUB_STEP_SUMMARY`` when it is set; returns that path.

    Raises ``OSError`` when the file cannot be written.
    """
    target = (os.environ if env is None else env).get(STEP_SUMMARY_ENV)
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8", newline="\n") as fh:
        fh.write(markdown if markdown.endswith("\n") else markdown + "\n")
        fh.write("\n")
    return path


def write_reports(
    path: str | Path,
    report: Report | Sequence[SuiteReport],
    sections: Iterable[SectionLike] = (),
    *,
    meta: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    step_summary: bool = True,
    max_rows: int = MAX_ROWS,
    json_hook: Callable[[dict[str, Any]], None] | None = None,
) -> WrittenReports:
    """Write the markdown report at ``path`` and the JSON beside it; append the step summary.

    ``sections`` and ``meta`` are added to the report. The files are replaced atomically.
    The step summary is appended when ``GITHUB_STEP_SUMMARY`` is set in ``env`` (default
    ``os.environ``); failing to append it is reported in the result, not raised.
    ``json_hook`` may inspect or extend the JSON dict before it is written (the
    ``pytest_gpo_report`` hook).
    """
    rep = report if isinstance(report, Report) else build_report(report)
    for item in sections:
        rep.add_section(item)
    if meta:
        rep.meta.update(meta)
    md_path, json_path = report_paths(path)
    markdown = render_markdown(rep, max_rows=max_rows)
    payload = report_json(rep)
    if json_hook is not None:
        json_hook(payload)
    data = json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n"
    for target, text in ((md_path, markdown), (json_path, data)):
        try:
            atomic_write_text(target, text)
        except OSError as exc:
            raise ReportError(
                f"cannot write the report: {exc}",
                path=target,
                fix="choose a writable path with --gpo-report",
            ) from exc
    summary_path: Path | None = None
    summary_error: str | None = None
    if step_summary:
        try:
            summary_path = append_step_summary(markdown, env)
        except OSError as exc:
            summary_error = f"cannot append to ${STEP_SUMMARY_ENV}: {exc}"
    return WrittenReports(md_path, json_path, summary_path, summary_error)
