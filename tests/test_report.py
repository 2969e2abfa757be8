"""Reports: verdict line, tables and escaping, details blocks, JSON beside, step summary."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pytest_gpo.gate.baseline import BaselineEntry
from pytest_gpo.gate.verdict import GateVerdict, error_verdict, evaluate
from pytest_gpo.llm.types import Usage
from pytest_gpo.report.files import ReportError, report_paths, write_reports
from pytest_gpo.report.json import report_json
from pytest_gpo.report.markdown import details, md_cell, md_table, render_markdown
from pytest_gpo.report.model import Section, SuiteReport, build_report
from pytest_gpo.report.terminal import terminal_lines, terminal_table
from pytest_gpo.results import CaseResult, RunResult, SuiteRun
from pytest_gpo.serial import from_data, to_data
from pytest_gpo.suites.model import Suite


def make_suite(name: str, *, threshold: float = 0.5, metric: str = "mean") -> Suite:
    return Suite(
        name=name,
        path=Path(f"{name}.gpo.yaml"),
        prompt_path=Path(f"{name}.txt"),
        prompt_text="p",
        prompt_bytes=b"p",
        system=None,
        model=None,
        params={},
        cases=(),
        scorers=(),
        threshold=threshold,
        threshold_metric=metric,
    )


def case(
    cid: str,
    *scores: float,
    expected: object = "billing",
    output: str = "refund",
    min_pass: int = 1,
) -> CaseResult:
    runs = [
        RunResult(
            sample=i,
            output="billing" if s >= 0.5 else output,
            score=s,
            passed=s >= 0.5,
            reason="ok" if s >= 0.5 else "mismatch",
        )
        for i, s in enumerate(scores or (1.0,))
    ]
    return CaseResult(case_id=cid, vars={}, expected=expected, runs=runs, min_pass=min_pass)


def run_of(name: str, cases: list[CaseResult], **usage: float) -> SuiteRun:
    return SuiteRun(
        suite=name,
        model="openai/gpt-4o-mini",
        prompt_text="p",
        cases=cases,
        usage=from_data(Usage, usage),
    )


def passing(name: str, n: int = 5) -> SuiteReport:
    suite = make_suite(name)
    run = run_of(
        name,
        [case(f"c{i}") for i in range(n)],
        calls=n,
        cache_hits=1,
        prompt_tokens=100,
        completion_tokens=20,
        cost=0.001,
    )
    return SuiteReport(evaluate(suite, run, BaselineEntry.from_run(suite, run)), run)


def regressed(name: str = "router", *, worse_case: CaseResult | None = None) -> SuiteReport:
    suite = make_suite(name)
    base = run_of(name, [case(f"c{i:02d}") for i in range(20)])
    now_cases = [case(f"c{i:02d}", 0.0) for i in range(9)] + [
        case(f"c{i:02d}") for i in range(9, 20)
    ]
    if worse_case is not None:
        base.cases.append(case(worse_case.case_id))
        now_cases.append(worse_case)
    now = run_of(
        name,
        now_cases,
        calls=20,
        cache_hits=0,
        prompt_tokens=2000,
        completion_tokens=100,
        cost=0.02,
    )
    v = evaluate(suite, now, BaselineEntry.from_run(suite, base))
    assert v.status == "regressed"
    return SuiteReport(v, now)


def split_row(line: str) -> list[str]:
    """Cells of a markdown table row, honouring ``\\|`` escapes."""
    assert line.startswith("|") and line.endswith("|"), line
    return [c.strip() for c in re.split(r"(?<!\\)\|", line[1:-1])]


def tables(markdown: str) -> list[list[list[str]]]:
    found: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in markdown.splitlines():
        if line.startswith("|"):
            current.append(split_row(line))
        elif current:
            found.append(current)
            current = []
    if current:
        found.append(current)
    return found


def test_all_passed_verdict_line_on_top() -> None:
    md = render_markdown(build_report([passing("a"), passing("b"), passing("c")]))
    lines = md.splitlines()
    assert lines[:4] == ["<!-- pytest-gpo report -->", "## pytest-gpo", "", "✅ 3 suites passed"]
    assert "<details>" in md  # model use is folded
    assert "### " not in md  # nothing to detail for plain passes


def test_failure_verdict_line_names_the_regression() -> None:
    md = render_markdown(build_report([passing("a"), regressed("router"), passing("c")]))
    top = md.splitlines()[3]
    assert top.startswith("❌ 1 of 3 suites failed: router regressed (1.000 → 0.550, p=")
    assert "### ❌ router: regressed" in md
    assert "<details open><summary>9 cases got worse</summary>\n\n|" in md
    assert "`pytest --gpo-update-baseline`" in md
    assert md.count("<details") == md.count("</details>")


def test_suite_table_has_every_column() -> None:
    md = render_markdown(build_report([regressed("router"), passing("b")]))
    main = tables(md)[0]
    assert main[0] == [
        "suite",
        "verdict",
        "score",
        "threshold",
        "baseline (Δ)",
        "p",
        "cases",
        "flipped",
        "model",
    ]
    router = main[2]
    assert router[0] == "router" and router[1] == "❌ regressed"
    assert router[2] == "0.550" and router[4] == "1.000 (-0.450)"
    assert router[7] == "9 worse, 0 better" and router[8] == "openai/gpt-4o-mini"


def test_cells_are_escaped() -> None:
    assert md_cell("a|b") == "a\\|b"
    assert md_cell("x\ny\r\nz") == "x<br>y<br>z"
    assert md_cell("use `rm`") == "use \\`rm\\`"
    assert md_cell("<script>&") == "&lt;script&gt;&amp;"
    assert md_cell("a_b*c*") == "a\\_b\\*c\\*"
    assert md_cell("back\\slash") == "back\\\\slash"


def test_hostile_case_content_keeps_the_table_shape() -> None:
    nasty = case(
        "id|with|pipes",
        0.0,
        expected="line1\nline2 | `code` <b>bold</b>",
        output="got | this\n`x` </details> <script>",
    )
    md = render_markdown(build_report([regressed(worse_case=nasty)]))
    for table in tables(md):
        widths = {len(row) for row in table}
        assert len(widths) == 1, table
    assert "id\\|with\\|pipes" in md
    assert "</details> <script>" not in md  # cannot close our details block or inject html
    assert "&lt;/details&gt; &lt;script&gt;" in md
    assert "\\`x\\`" in md
    worse_rows = [row for t in tables(md) for row in t if row[0] == "id\\|with\\|pipes"]
    assert worse_rows and "line1\\\\nline2 \\| \\`code\\` &lt;b&gt;bold&lt;/b&gt;" in worse_rows[0]


def test_details_helper_escapes_summary_and_leaves_blank_lines() -> None:
    block = details("a <b> & c", "| x |\n|---|\n| 1 |")
    assert block == (
        "<details><summary>a &lt;b&gt; &amp; c</summary>\n\n| x |\n|---|\n| 1 |\n\n</details>"
    )
    assert details("s", "body", open_=True).startswith("<details open>")


def test_md_table_is_github_format_without_number_parsing() -> None:
    table = md_table(["a", "b"], [["0.500", "x|y"]])
    assert table.splitlines()[1].startswith("|--")
    assert "0.500" in table and "x\\|y" in table


def test_long_case_lists_are_truncated() -> None:
    suite = make_suite("big")
    base = run_of("big", [case(f"c{i:03d}") for i in range(120)])
    now = run_of("big", [case(f"c{i:03d}", 0.0) for i in range(120)])
    rep = build_report([(evaluate(suite, now, BaselineEntry.from_run(suite, base)), now)])
    md = render_markdown(rep, max_rows=10, json_name="report.json")
    assert "… and 110 more cases (every case is in report.json)." in md
    assert len(report_json(rep)["suites"][0]["verdict"]["worse"]) == 120
    assert len(report_json(rep)["suites"][0]["cases"]) == 120
    # without a JSON report beside it, the markdown does not send the reader to one
    alone = render_markdown(rep, max_rows=10)
    assert "JSON report" in alone and "report.json" not in alone and "see the" not in alone


def test_repeats_show_pass_rate_and_spread() -> None:
    suite = make_suite("flaky", threshold=0.4, metric="pass_rate")
    run = run_of(
        "flaky", [case("a", 1.0, 1.0, 0.0, min_pass=2), case("b", 0.0, 1.0, 0.0, min_pass=2)]
    )
    md = render_markdown(build_report([(evaluate(suite, run, None), run)]))
    assert "Repeats: 3 runs per case, suite score per sample 0.500 ± 0.500" in md
    rows = {t[0][0]: t for t in tables(md)}
    repeats = next(t for t in tables(md) if t[0][:3] == ["case", "runs", "pass rate"])
    assert repeats[2] == ["b", "passed 1/3 runs (needs 2)", "33%", "fail", "0.333"]
    assert repeats[3] == ["a", "passed 2/3 runs (needs 2)", "67%", "pass", "0.667"]
    assert rows  # the main table is there too
    assert "2 x3" in md  # cases column notes the repeats


def test_error_suite_is_not_called_a_regression() -> None:
    suite = make_suite("sum")
    run = run_of("sum", [case("a")])
    run.error_kind, run.errors = "cache_miss", ["no cached response for case a"]
    md = render_markdown(build_report([(evaluate(suite, run, None), run), passing("b")]))
    assert md.splitlines()[3] == (
        "❌ 1 of 2 suites errored: sum errored (no cached response for case a)"
    )
    assert "### ⚠️ sum: error" in md
    assert "not a prompt regression" in md


def test_extra_sections_and_meta() -> None:
    rep = build_report(
        [passing("a")],
        [("Optimization", "| step | score |\n|---|---|\n| 1 | 0.9 |", {"steps": [1]})],
        meta={"cache": "replay", "seed": 7},
    )
    rep.add_section(Section("Second", "*text*", None))
    md = render_markdown(rep)
    assert "## Optimization\n\n| step | score |\n|---|---|\n| 1 | 0.9 |" in md
    assert md.index("## Optimization") < md.index("## Second")
    assert "<details><summary>Run details</summary>" in md
    data = report_json(rep)
    assert data["sections"] == [
        {"title": "Optimization", "data": {"steps": [1]}},
        {"title": "Second", "data": None},
    ]
    assert data["meta"] == {"cache": "replay", "seed": 7}


def test_json_report_content() -> None:
    rep = build_report([regressed("router"), passing("b")])
    data = json.loads(json.dumps(report_json(rep)))
    assert data["passed"] is False
    assert data["summary"].startswith("❌ 1 of 2 suites failed")
    assert data["totals"]["suites"] == 2 and data["totals"]["regressed"] == 1
    assert data["totals"]["usage"]["calls"] == 25
    router = data["suites"][0]
    assert router["status"] == "regressed"
    assert router["verdict"]["p_value"] == pytest.approx(2.0**-9)
    assert router["verdict"]["worse"][0]["case_id"] == "c00"
    assert router["verdict"]["delta"] == pytest.approx(-0.45)
    assert router["score"] == router["verdict"]["metric_value"] and router["threshold"] == 0.5
    assert router["cases"][0] == {
        "id": "c00",
        "vars": {},
        "expected": "billing",
        "score": 0.0,
        "passed": False,
        "passes": 0,
        "runs": 1,
        "pass_rate": 0.0,
        "min_pass": 1,
        "rule": "passed 0/1 runs (needs 1)",
        "reason": "mismatch",
        "error": None,
        "samples": [
            {
                "sample": 0,
                "output": "refund",
                "score": 0.0,
                "passed": False,
                "reason": "mismatch",
                "error": None,
            }
        ],
    }
    # every case is there, the passing ones too
    assert len(router["cases"]) == 20 and sum(c["passed"] for c in router["cases"]) == 11
    assert router["usage"]["prompt_tokens"] == 2000 and router["cost_text"] == "$0.0200"


@pytest.mark.parametrize(
    ("given", "md", "js"),
    [
        ("report.md", "report.md", "report.json"),
        ("out/r.markdown", "out/r.markdown", "out/r.json"),
        ("report", "report", "report.json"),
        ("report.json", "report.md", "report.json"),
    ],
)
def test_report_paths(given: str, md: str, js: str) -> None:
    assert report_paths(given) == (Path(md), Path(js))


def test_write_reports_writes_markdown_and_json_beside(tmp_path: Path) -> None:
    target = tmp_path / ".gpo" / "report.md"
    written = write_reports(
        target,
        [regressed("router")],
        [("Opt", "body", {"k": 1})],
        meta={"cache": "replay"},
        env={},
    )
    assert written.markdown == target and written.json == tmp_path / ".gpo" / "report.json"
    assert written.step_summary is None
    md = target.read_text(encoding="utf-8")
    assert md.splitlines()[3].startswith("❌ 1 of 1 suite failed: router regressed")
    assert "## Opt" in md and md.endswith("\n")
    data = json.loads(written.json.read_text(encoding="utf-8"))
    assert data["suites"][0]["suite"] == "router" and data["meta"] == {"cache": "replay"}
    assert data["sections"] == [{"title": "Opt", "data": {"k": 1}}]


def test_step_summary_is_appended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text("# earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    written = write_reports(tmp_path / "r.md", [passing("a")])
    assert written.step_summary == summary
    text = summary.read_text(encoding="utf-8")
    assert text.startswith(
        "# earlier step\n<!-- pytest-gpo report -->\n## pytest-gpo\n\n✅ 1 suite"
    )
    write_reports(tmp_path / "r.md", [passing("a")])
    assert summary.read_text(encoding="utf-8").count("## pytest-gpo") == 2
    write_reports(tmp_path / "r.md", [passing("a")], step_summary=False)
    assert summary.read_text(encoding="utf-8").count("## pytest-gpo") == 2


def test_step_summary_failure_is_reported_not_raised(tmp_path: Path) -> None:
    written = write_reports(
        tmp_path / "r.md",
        [passing("a")],
        env={"GITHUB_STEP_SUMMARY": str(tmp_path / "missing" / "s.md")},
    )
    assert written.step_summary is None
    assert written.step_summary_error and "GITHUB_STEP_SUMMARY" in written.step_summary_error
    assert (tmp_path / "r.md").exists()


def test_unwritable_report_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "r.md").mkdir()
    with pytest.raises(ReportError, match="cannot write the report") as info:
        write_reports(tmp_path / "r.md", [passing("a")], env={})
    assert "--gpo-report" in str(info.value)


def test_terminal_table_lists_every_suite_with_totals() -> None:
    rep = build_report([regressed("router"), passing("b")])
    table = terminal_table(rep)
    lines = table.splitlines()
    assert lines[0].split() == [
        "suite",
        "score",
        "threshold",
        "baseline",
        "(delta)",
        "verdict",
        "cases",
        "calls",
        "cache",
        "hits",
        "tokens",
        "cost",
    ]
    assert "|" not in table and "---" not in table  # plain format
    router = lines[1]
    assert router.startswith("router") and "FAIL regressed p=0.00195" in router
    assert "1.000 (-0.450)" in router and "2,100" in router and "$0.0200" in router
    assert lines[2].startswith("b ") and "PASS" in lines[2]
    assert lines[3].split()[:2] == ["total", "25"]  # 20 + 5 cases
    assert terminal_lines(rep)[0].startswith("❌ 1 of 2 suites failed")
    assert terminal_lines(build_report([])) == ["⚪ no prompt suites were run"]


def test_terminal_table_notes_changes() -> None:
    suite = make_suite("a")
    run = run_of("a", [case("x")])
    stale = BaselineEntry(
        "0" * 64,
        "other/model",
        suite.scorer_config_hash(),
        BaselineEntry.from_run(suite, run).cases,
    )
    v: GateVerdict = evaluate(suite, run, stale)
    table = terminal_table([SuiteReport(v, run)])
    assert "[prompt/model changed]" in table
    assert "total" not in table  # one suite, no total row


def test_report_from_worker_dicts_and_without_a_run(tmp_path: Path) -> None:
    reg = regressed("router")
    assert reg.run is not None
    again = SuiteReport(
        from_data(GateVerdict, to_data(reg.verdict)), from_data(SuiteRun, to_data(reg.run))
    )
    assert again.verdict == reg.verdict and again.usage == reg.usage
    broken = SuiteReport(
        error_verdict("sum", "no cached response", kind="cache_miss", model="openai/gpt-4o-mini")
    )
    rep = build_report([again, broken])
    md = render_markdown(rep)
    assert "❌ 1 of 2 suites failed, 1 errored" in md
    assert report_json(rep)["suites"][1]["cases"] == []
    assert "sum" in terminal_table(rep)

    seen: list[str] = []

    def hook(payload: dict[str, Any]) -> None:
        seen.append(payload["summary"])
        payload["extra"] = {"from": "a plugin"}

    written = write_reports(tmp_path / "r.md", rep, env={}, json_hook=hook)
    assert seen and json.loads(written.json.read_text())["extra"] == {"from": "a plugin"}


def test_the_json_verdict_keeps_the_error_kind_for_scripts() -> None:
    from pytest_gpo.gate.verdict import error_verdict
    from pytest_gpo.llm.types import ErrorKind
    from pytest_gpo.report.json import verdict_json

    v = error_verdict(
        "s", "check the environment variable OPENAI_API_KEY", kind=ErrorKind.CREDENTIALS
    )
    data = json.loads(json.dumps(verdict_json(v)))
    assert data["status"] == "error" and data["error_kind"] == "credentials"
