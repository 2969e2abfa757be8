"""One definition of each number: suite score, case score, threshold, calls, cache hits,
tokens and cost are shown the same by the terminal, the markdown, the JSON, JUnit and HTML."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from test_report import make_suite

from pytest_gpo.gate.baseline import BaselineEntry
from pytest_gpo.gate.messages import failing_case_table, format_score
from pytest_gpo.gate.verdict import error_verdict, evaluate
from pytest_gpo.llm.types import Usage
from pytest_gpo.report.html import render_html
from pytest_gpo.report.json import report_json
from pytest_gpo.report.junit import junit_properties
from pytest_gpo.report.markdown import render_markdown
from pytest_gpo.report.model import Report, SuiteReport, build_report
from pytest_gpo.report.terminal import all_cases_lines, terminal_table
from pytest_gpo.results import CaseResult, RunResult, SuiteRun

SCORES = st.one_of(
    st.sampled_from([0.0, 0.25, 1 / 3, 0.5, 2 / 3, 0.8333, 1.0]),
    st.floats(0, 1, allow_nan=False),
)


@st.composite
def usages(draw: st.DrawFn) -> Usage:
    calls = draw(st.integers(0, 5000))
    return Usage(
        calls=calls,
        cache_hits=draw(st.integers(0, 5000)),
        cache_misses=calls,
        prompt_tokens=draw(st.integers(0, 10**6)),
        completion_tokens=draw(st.integers(0, 10**5)),
        cost=draw(st.sampled_from([0.0, 0.00004, 0.0123, 2.5])),
        cost_unknown=draw(st.sampled_from([0, 0, 3])),
    )


@st.composite
def cases(draw: st.DrawFn, ids: list[str], repeats: int) -> list[CaseResult]:
    out = []
    for cid in ids:
        runs = [
            RunResult(
                sample=i,
                output=draw(st.sampled_from(["billing", "179.99", "a\nb", "x | y"])),
                score=draw(SCORES),
                passed=draw(st.booleans()),
                reason=draw(st.sampled_from(["ok", "missing 'zebra' (2 of 3 found, score 0.67)"])),
            )
            for i in range(repeats)
        ]
        min_pass = draw(st.integers(1, repeats))
        out.append(CaseResult(cid, {"ticket": "t"}, "billing", runs, min_pass=min_pass))
    return out


@st.composite
def suite_reports(draw: st.DrawFn, name: str) -> SuiteReport:
    threshold = draw(st.sampled_from([0.0, 0.5, 0.75, 0.9, 1.0]))
    metric = draw(st.sampled_from(["mean", "pass_rate"]))
    kind = draw(st.sampled_from(["scored", "scored", "scored", "error", "invalid", "not_run"]))
    usage = draw(usages())
    if kind == "invalid":
        return SuiteReport(error_verdict(name, "bad YAML", status="invalid"), file=f"{name}.y")
    if kind in ("error", "not_run"):
        verdict = error_verdict(
            name, "no cached response", threshold=threshold, metric=metric, status=kind
        )
        return SuiteReport(verdict, requests=usage if kind == "error" else None)
    suite = make_suite(name, threshold=threshold, metric=metric)
    ids = [f"c{i}" for i in range(draw(st.integers(1, 6)))]
    repeats = draw(st.integers(1, 3))
    run = SuiteRun(name, "m", "p", draw(cases(ids, repeats)), usage=usage)
    baseline = None
    if draw(st.booleans()):
        before = SuiteRun(name, "m", "p", draw(cases(ids, repeats)))
        baseline = BaselineEntry.from_run(suite, before)
    return SuiteReport(evaluate(suite, run, baseline), run)


@st.composite
def reports(draw: st.DrawFn) -> Report:
    n = draw(st.integers(1, 4))
    return build_report([draw(suite_reports(f"s{i}")) for i in range(n)])


def _terminal_rows(report: Report) -> dict[str, list[str]]:
    lines = terminal_table(report).splitlines()[1:]
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines]
    return {r[0]: r for r in rows if r[0] != "total"}


def _markdown_tables(markdown: str) -> list[list[list[str]]]:
    found: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            current.append([c.strip() for c in re.split(r"(?<!\\)\|", line[1:-1])])
        elif current:
            found.append(current)
            current = []
    return found


def _numbers(report: Report) -> dict[str, dict[str, dict[str, str]]]:
    """Per renderer, per suite: the numbers it shows, as text."""
    terminal = {
        name: {
            "score": r[1],
            "threshold": r[2].removesuffix(" (pass rate)"),
            "calls": r[6],
            "cache hits": r[7],
            "tokens": r[8],
            "cost": r[9],
        }
        for name, r in _terminal_rows(report).items()
    }
    tables = _markdown_tables(render_markdown(report, json_name="report.json"))
    suites = {r[0]: r for r in tables[0][2:]}
    use = {r[0]: r for r in tables[1][2:]}
    markdown = {
        name: {
            "score": r[2],
            "threshold": r[3].removesuffix(" (pass rate)"),
            "calls": use[name][2],
            "cache hits": use[name][3],
            "tokens": use[name][4],
            "cost": html.unescape(use[name][5].replace("\\", "")),
        }
        for name, r in suites.items()
    }
    data = report_json(report)
    as_json = {
        s["suite"]: {
            "score": format_score(s["score"], "-"),
            "threshold": format_score(s["threshold"], "-"),
            "calls": f"{s['usage']['calls']:,}",
            "cache hits": f"{s['usage']['cache_hits']:,}",
            "tokens": f"{s['usage']['prompt_tokens'] + s['usage']['completion_tokens']:,}",
            "cost": s["cost_text"],
        }
        for s in data["suites"]
    }
    junit = {}
    for s in report.suites:
        p = dict(junit_properties(s))
        junit[s.name] = {
            "score": p["gpo_score"],
            "threshold": p["gpo_threshold"],
            "calls": p["gpo_calls"],
            "cache hits": p["gpo_cache_hits"],
            "tokens": p["gpo_tokens"],
            "cost": p["gpo_cost"],
        }
    page = render_html(report)
    block = re.search(r'<script type="application/json" id="gpo-data">(.*?)</script>', page, re.S)
    assert block is not None
    html_suites = json.loads(block.group(1))["suites"]
    as_html = {
        s["suite"]: {
            "score": s["texts"]["score"],
            "threshold": s["texts"]["threshold"].removesuffix(" (pass rate)"),
            "calls": s["texts"]["calls"],
            "cache hits": s["texts"]["cache_hits"],
            "tokens": s["texts"]["tokens"],
            "cost": s["texts"]["cost"],
        }
        for s in html_suites
    }
    return {
        "terminal": terminal,
        "markdown": markdown,
        "json": as_json,
        "junit": junit,
        "html": as_html,
    }


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(report=reports())
def test_the_five_renderers_show_the_same_suite_numbers(report: Report) -> None:
    seen = _numbers(report)
    assert seen["terminal"] == seen["markdown"] == seen["json"] == seen["junit"] == seen["html"]
    for s in report.suites:
        numbers = seen["json"][s.name]
        # the score is the gated metric's value, what the threshold is compared with
        expected = s.verdict.metric_value if s.scored else None
        assert numbers["score"] == format_score(expected, "-")
        if s.verdict.status != "invalid":
            assert numbers["threshold"] == format_score(s.verdict.threshold)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(report=reports())
def test_every_case_shows_the_same_score_and_rule_everywhere(report: Report) -> None:
    data = {s["suite"]: s for s in report_json(report)["suites"]}
    block = re.search(r'id="gpo-data">(.*?)</script>', render_html(report), re.S)
    assert block is not None
    in_html = {s["suite"]: s for s in json.loads(block.group(1))["suites"]}
    for s in report.suites:
        cases: list[dict[str, Any]] = data[s.name]["cases"]
        if s.run is None:
            assert cases == []
            continue
        assert [c["id"] for c in cases] == [c.case_id for c in s.run.cases]
        lines = all_cases_lines(s)
        html_cases = {c["id"]: c for c in in_html[s.name]["cases"]}
        for c in cases:
            score = format_score(c["score"])
            # the HTML shows the same score, every sample, and the rule of a repeated case
            shown_html = html_cases[c["id"]]
            assert shown_html["texts"]["score"] == score
            assert shown_html["samples"] == c["samples"]
            if c["runs"] > 1:
                assert c["rule"] in shown_html["texts"]["verdict"]
            assert c["score"] == sum(r["score"] for r in c["samples"]) / len(c["samples"])
            shown = [ln for ln in lines if ln.startswith(f"  {c['id']}: ")]
            assert len(shown) == 1 and shown[0].endswith(f", score {score}")
            if c["runs"] > 1:
                assert c["rule"] in shown[0]
            for r in c["samples"]:
                assert any(ln.startswith(f"    #{r['sample'] + 1} ") for ln in lines)
        if not s.verdict.failing:
            continue
        # a markdown row of a failing case shows that case's own score (never pass_rate's 1/0)
        # and, for a repeated case, the rule that decided it
        one = render_markdown(build_report([s]), json_name="report.json", max_rows=1000)
        table = next(t for t in _markdown_tables(one) if t[0][0] == "case" and "reason" in t[0])
        head = table[0]
        by_id = {c["id"]: c for c in cases}
        assert len(table) - 2 == len(s.verdict.failing)
        for row in table[2:]:
            assert row[head.index("score")] == format_score(by_id[row[0]]["score"])
            if "runs" in head:
                assert row[head.index("runs")] == by_id[row[0]]["rule"]


def test_the_failure_table_shows_each_run_and_the_rule_of_a_repeated_case() -> None:
    """The pytest failure text of a repeated case shows every run's output, the k-of-N rule and
    the case's own score, so it never contradicts the verdict."""
    runs = [
        RunResult(0, "179.99", 1.0, True, "ok"),
        RunResult(1, "180", 0.0, False, "wrong"),
        RunResult(2, "18", 0.0, False, "wrong"),
    ]
    case = CaseResult("headphones-1", {"item": "headphones"}, "179.99", runs, min_pass=2)
    table = failing_case_table(SuiteRun("s", "m", "p", [case]))
    lines = table.splitlines()
    assert lines[0].split() == ["case", "score", "runs", "vars", "expected", "got", "reason"]
    assert "headphones-1  0.333    passed 1/3 runs (needs 2)" in lines[2]
    assert lines[2].rstrip().endswith("#1 pass: 179.99  wrong")
    assert lines[3].strip() == "#2 fail: 180" and lines[4].strip() == "#3 fail: 18"
