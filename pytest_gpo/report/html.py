"""The self-contained HTML report: one file with every case, filters, search, diffs and charts.

The file opens from a CI artifact on an offline machine: no server, no network, no external
URL. Its content is the JSON report's data (:func:`pytest_gpo.report.json.report_json`, so
every number agrees with the other renderers), plus the texts the other renderers show (made by
:mod:`pytest_gpo.report.cells`), embedded as JSON in a ``<script type="application/json">``
block and drawn by the vanilla JavaScript in ``html_assets/``. The script puts every value into
the page as text (``textContent``), never as markup, and the embedded JSON has ``<``, ``>`` and
``&`` escaped, so no value can close the block. A Content-Security-Policy meta tag forbids every
fetch. Cases are drawn a page at a time, so a run with thousands of cases opens quickly.
"""

from __future__ import annotations

import difflib
import html
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from pytest_gpo.gate.messages import format_delta, format_p, format_score
from pytest_gpo.llm.types import Usage
from pytest_gpo.report.cells import (
    NONE,
    baseline_text,
    case_verdict_text,
    cases_text,
    flipped_text,
    score_text,
    threshold_text,
    usage_cells,
    value_text,
)
from pytest_gpo.report.json import finite_data, report_json
from pytest_gpo.report.model import Report, SuiteReport
from pytest_gpo.results import runs_rule

#: The page's Content-Security-Policy: inline script and style only, images from data: URLs.
CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"

#: Where the page's stylesheet and script live (package data).
ASSETS = "html_assets"

_SCRIPT_ESCAPES = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def embed_json(data: Any) -> str:
    """``data`` as JSON text that is safe inside a ``<script>`` element.

    ``<``, ``>`` and ``&`` become JSON escapes, so no value (``</script>``, ``<!--``) can end
    the element or change how the browser parses it; ``JSON.parse`` reads them back unchanged.
    """
    text = json.dumps(
        finite_data(data), ensure_ascii=False, default=str, allow_nan=False, separators=(",", ":")
    )
    return text.translate(_SCRIPT_ESCAPES)


def _asset(name: str) -> str:
    return resources.files("pytest_gpo.report").joinpath(ASSETS, name).read_text(encoding="utf-8")


def _suite_texts(s: SuiteReport) -> dict[str, str]:
    """The suite's numbers as the terminal and markdown tables show them."""
    v = s.verdict
    calls, hits, tokens, cost = usage_cells(s)
    return {
        "score": score_text(s),
        "threshold": threshold_text(s),
        "baseline": baseline_text(v),
        "p": format_p(v.p_value) if v.p_value is not None else NONE,
        "cases": cases_text(v),
        "flipped": flipped_text(v),
        "calls": calls,
        "cache_hits": hits,
        "tokens": tokens,
        "cost": cost,
    }


def _case_texts(s: SuiteReport) -> list[dict[str, Any]]:
    """Per case: its score and verdict texts, and how it moved against the baseline."""
    v = s.verdict
    moved = {c.case_id: ("worse", c) for c in v.worse}
    moved.update({c.case_id: ("better", c) for c in v.better})
    out = []
    for case in s.run.cases if s.run is not None else []:
        item: dict[str, Any] = {
            "score": "-" if case.errored else format_score(case.score),
            "verdict": case_verdict_text(case),
            "expected": value_text(case.expected),
        }
        if case.case_id in moved:
            way, change = moved[case.case_id]
            item["change"] = way
            item["change_text"] = (
                f"{way} than the baseline: {format_score(change.before, NONE)} → "
                f"{format_score(change.after)}"
            )
        out.append(item)
    return out


def word_diff(before: str, after: str) -> list[list[str]]:
    """A word-level diff as ``[op, text]`` pieces, op one of ``equal``, ``del``, ``ins``."""
    a, b = before.split(), after.split()
    out: list[list[str]] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out.append(["equal", " ".join(a[i1:i2])])
            continue
        if i2 > i1:
            out.append(["del", " ".join(a[i1:i2])])
        if j2 > j1:
            out.append(["ins", " ".join(b[j1:j2])])
    return out


def _outcome(o: Mapping[str, Any]) -> dict[str, Any]:
    runs = list(o.get("runs") or [])
    if not runs:  # an outcome recorded without its samples: its output is the one sample
        runs = [
            {
                "sample": 0,
                "output": o.get("output") or "",
                "score": o.get("score") or 0.0,
                "passed": bool(o.get("passed")),
                "reason": "",
                "error": None,
            }
        ]
    passes = sum(1 for r in runs if r.get("passed"))
    rule = runs_rule(passes, len(runs), int(o.get("min_pass") or 1)) if len(runs) > 1 else ""
    return {
        "passed": bool(o.get("passed")),
        "score": format_score(o.get("score")),
        "verdict": ("pass" if o.get("passed") else "fail") + (f": {rule}" if rule else ""),
        "output": o.get("output") or "",
        "samples": runs,
    }


def _usage_row(name: str, value: Any) -> list[str]:
    """One model's row of an optimization's usage table: calls, cache hits, tokens, cost."""
    known = {
        f: value[f] for f in Usage.__dataclass_fields__ if isinstance(value, Mapping) and f in value
    }
    u = Usage(**known)
    return [name, f"{u.calls:,}", f"{u.cache_hits:,}", f"{u.tokens:,}", u.cost_text()]


def _optimization(data: Mapping[str, Any]) -> dict[str, Any]:
    """One optimization (its JSON): the prompt diff, the step chart and the held-out cases."""
    before = str(data.get("initial_prompt") or "")
    after = str(data.get("best_prompt") or "")
    trajectory = data.get("trajectory") or []
    steps = data.get("steps") or []
    # a trajectory entry is ``[prompt, eval score]``; the first is the initial prompt
    start = trajectory[0][1] if trajectory else None
    chart = []
    if start is not None:
        chart.append({"t": 0, "current": start, "best": start})
        chart += [
            {"t": s["t"], "current": s["current_score"], "best": s["best_score"]} for s in steps
        ]
    after_by_id = {c["case_id"]: c for c in data.get("test_after") or []}
    cases = []
    for b in data.get("test_before") or []:
        a = after_by_id.get(b["case_id"])
        if a is None:
            continue
        cases.append(
            {
                "id": b["case_id"],
                "expected": value_text(b.get("expected")),
                "before": _outcome(b),
                "after": _outcome(a),
                "flipped": bool(a.get("passed")) != bool(b.get("passed")),
            }
        )
    scores = []
    for split in ("train", "eval", "test"):
        sc = (data.get("scores") or {}).get(split) or {}
        b, a = sc.get("before"), sc.get("after")
        gain = a - b if a is not None and b is not None else None
        scores.append(
            {
                "split": f"{split} (held out)" if split == "test" else split,
                "cases": str((data.get("split_sizes") or {}).get(split, "")),
                "before": format_score(b, "–"),
                "after": format_score(a, "–"),
                "change": format_delta(gain, "–"),
            }
        )
    return {
        "suite": data.get("suite", ""),
        "accepted": bool(data.get("should_write")),
        "reason": data.get("reason", ""),
        "stopped": data.get("stopped_reason"),
        "before": before,
        "after": after,
        "diff": data.get("diff") or "",
        "words": word_diff(before, after) if before != after else [],
        "words_changed": data.get("words_changed", 0),
        "scores": scores,
        "usage": [
            _usage_row("optimizer", data.get("optimizer_usage")),
            _usage_row("task", data.get("task_usage")),
            _usage_row("total", data.get("usage")),
        ],
        "chart": chart,
        "cases": cases,
    }


def _is_optimization(value: Any) -> bool:
    return isinstance(value, Mapping) and {"initial_prompt", "best_prompt", "test_before"} <= set(
        value
    )


def html_data(report: Report) -> dict[str, Any]:
    """The data the page draws: the JSON report, each suite's and case's texts as the other
    renderers show them, and each optimization's diff, chart and before/after cases."""
    data = report_json(report)
    for s, item in zip(report.suites, data["suites"], strict=True):
        item["texts"] = _suite_texts(s)
        for case, texts in zip(item["cases"], _case_texts(s), strict=True):
            case["texts"] = texts
    total = report.usage()
    data["totals"]["texts"] = {
        "calls": f"{total.calls:,}",
        "cache_hits": f"{total.cache_hits:,}",
        "tokens": f"{total.tokens:,}",
        "cost": total.cost_text(),
    }
    optimizations = []
    others = []
    for section in report.sections:
        found = section.data if isinstance(section.data, Mapping) else {}
        opts = [v for v in found.values() if _is_optimization(v)]
        if opts:
            optimizations += [_optimization(v) for v in opts]
        else:
            others.append({"title": section.title, "text": section.markdown})
    data["optimizations"] = optimizations
    data["sections"] = others
    return data


def render_html(report: Report) -> str:
    """The whole HTML file for ``report`` (no external reference of any kind)."""
    title = html.escape(report.title)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="generator" content="pytest-gpo">',
            '<link rel="icon" href="data:,">',
            f"<title>{title}</title>",
            f"<style>\n{_asset('report.css')}</style>",
            "</head>",
            "<body>",
            f'<header><h1>{title}</h1><p id="summary">{html.escape(report.summary())}</p></header>',
            '<svg id="gpo-svg" width="0" height="0" aria-hidden="true"></svg>',
            '<main id="app"><noscript>This report needs JavaScript to show its cases; '
            "the same data is in the JSON report.</noscript></main>",
            f'<script type="application/json" id="gpo-data">{embed_json(html_data(report))}'
            "</script>",
            f"<script>\n{_asset('report.js')}</script>",
            "</body>",
            "</html>",
            "",
        ]
    )
