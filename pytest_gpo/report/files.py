"""Writing a report: the markdown and JSON files beside each other, and the CI step summary."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_gpo.errors import GpoError
from pytest_gpo.fsutil import atomic_write_text
from pytest_gpo.report.html import render_html
from pytest_gpo.report.json import report_json, report_text
from pytest_gpo.report.markdown import MAX_ROWS, render_markdown
from pytest_gpo.report.model import Report, SectionLike, SuiteReport, build_report

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


class ReportError(GpoError):
    """A report file cannot be written."""


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
    html: Path | None = None,
) -> WrittenReports:
    """Write the markdown report at ``path`` and the JSON beside it; append the step summary.

    ``sections`` and ``meta`` are added to the report. The files are replaced atomically.
    The step summary is appended when ``GITHUB_STEP_SUMMARY`` is set in ``env`` (default
    ``os.environ``); failing to append it is reported in the result, not raised.
    ``json_hook`` may inspect or extend the JSON dict before it is written (the
    ``pytest_gpo_report`` hook). ``html`` is an HTML report already written (see
    :func:`write_html_report`): the markdown links it by its path relative to the markdown.
    """
    rep = report if isinstance(report, Report) else build_report(report)
    for item in sections:
        rep.add_section(item)
    if meta:
        rep.meta.update(meta)
    md_path, json_path = report_paths(path)
    link = None
    if html is not None:
        link = os.path.relpath(html.absolute(), md_path.absolute().parent)
    markdown = render_markdown(rep, max_rows=max_rows, json_name=json_path.name, html_link=link)
    payload = report_json(rep)
    if json_hook is not None:
        json_hook(payload)
    data = report_text(payload)
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


def write_html_report(path: str | Path, report: Report) -> Path:
    """Write the self-contained HTML report at ``path`` (replaced atomically); returns it.

    Raises :class:`ReportError` naming the path when it cannot be written.
    """
    target = Path(path)
    try:
        atomic_write_text(target, render_html(report))
    except OSError as exc:
        raise ReportError(
            f"cannot write the HTML report: {exc}",
            path=target,
            fix="choose a writable path with --gpo-html (ini gpo_html)",
        ) from exc
    return target
