"""The self-contained HTML report (``--gpo-html``), opened in a real headless Chromium.

What a user would notice: the file opens from disk with no console error and no network; every
case is there; each filter (failed, errored, changed against the baseline, flipped by an
optimization) shows exactly the cases it names; search finds a case by its output; an
optimization shows its prompt diff, the per-step chart and before/after outputs; a hostile
model answer is shown as text, never run. The browser tests need Debian's ``chromium``: without
it they fail under CI (``CI`` set) and skip, saying so, elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chromium import Chromium, chromium_binary
from hypothesis import given, settings
from hypothesis import strategies as st
from openai_server import OpenAIServer

from pytest_gpo.gate.verdict import error_verdict
from pytest_gpo.report.html import CSP, embed_json, render_html
from pytest_gpo.report.model import SuiteReport, build_report
from pytest_gpo.results import CaseResult, RunResult, SuiteRun

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parent / "fixtures" / "support_desk"
HOSTILE = "<img src=x onerror=alert(1)></script>\u202eexe.txt"
READY = "document.documentElement.dataset.ready === '1'"
#: read at import: the suite's autouse fixture removes CI from each test's environment
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
DATA_BLOCK = re.compile(r'<script type="application/json" id="gpo-data">(.*?)</script>', re.S)


# -- the file itself (no browser) ----------------------------------------------------------------


def _report_with(output: str, case_id: str = "c1") -> str:
    run = SuiteRun(
        "s",
        "m",
        "p",
        [
            CaseResult(
                case_id, {"ticket": output}, output, [RunResult(0, output, 0.0, False, output)]
            )
        ],
    )
    verdict = error_verdict("s", "boom", threshold=0.5)
    return render_html(build_report([SuiteReport(verdict, run)]))


def test_no_external_reference_and_a_strict_csp() -> None:
    """Nothing in the page can fetch anything: no URL outside the data, a CSP forbidding it."""
    url = "https://evil.example/x.js"
    page = _report_with(f'{url} <script src="{url}"></script> http://evil.example/')
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in page
    assert CSP == (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"
    )
    match = DATA_BLOCK.search(page)
    assert match is not None
    outside = page[: match.start(1)] + page[match.end(1) :]
    assert "http://" not in outside and "https://" not in outside
    assert not re.search(r"\b(src|href)\s*=\s*(?![\"']?(data:|#))", outside, re.I)
    # the user's URLs are in the data only, as escaped JSON text, never as markup
    assert "https://evil.example/x.js \\u003cscript src=" in match.group(1)
    assert json.loads(match.group(1))["suites"][0]["cases"][0]["samples"][0]["output"].startswith(
        url
    )


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(text=st.text(alphabet=st.sampled_from("<>&/!-'\"`\\ \n\u2028scriptSCRIPT"), max_size=40))
def test_embedded_data_cannot_leave_its_script_block(text: str) -> None:
    block = embed_json({"output": text, "list": [text]})
    assert "<" not in block and ">" not in block
    assert json.loads(block) == {"output": text, "list": [text]}


def test_hostile_ids_and_titles_are_escaped_in_the_markup() -> None:
    page = _report_with(HOSTILE, case_id=HOSTILE)
    match = DATA_BLOCK.search(page)
    assert match is not None
    assert "<img" not in page.lower()
    assert page.lower().count("</script>") == 2  # the data block's and the script's own


# -- the browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    """One headless Chromium for the module."""
    if chromium_binary() is None:
        why = (
            "chromium is not installed: the HTML report's browser tests need Debian's chromium "
            "(apt-get install -y chromium; .ci/run installs it)"
        )
        if IN_CI:
            pytest.fail(why)
        pytest.skip(why + "; skipped because CI is not set")
    with Chromium(tmp_path_factory.mktemp("chromium") / "profile") as b:
        yield b


def _copy_project(pytester: pytest.Pytester, suites: list[str]) -> None:
    (pytester.path / "suites").mkdir()
    shutil.copytree(EXAMPLE / "prompts", pytester.path / "prompts")
    for name in suites:
        shutil.copy(EXAMPLE / "suites" / name, pytester.path / "suites" / name)


def _shown(browser: Chromium) -> list[str]:
    """(suite, case) of each case on the current page."""
    shown: list[str] = browser.evaluate(
        "Array.from(document.querySelectorAll('#case-list .case'))"
        ".map(e => e.dataset.suite + '/' + e.dataset.case)"
    )
    return shown


def _click_filter(browser: Chromium, name: str) -> int:
    browser.evaluate(f"document.getElementById('filter-{name}').click()")
    assert browser.evaluate(f"document.getElementById('filter-{name}').className") == "active"
    return int(browser.evaluate("document.getElementById('case-count').dataset.matching"))


def _search(browser: Chromium, text: str) -> int:
    browser.evaluate(
        "(() => { const s = document.getElementById('search'); "
        f"s.value = {json.dumps(text)}; s.dispatchEvent(new Event('input')); }})()"
    )
    # the search runs 120 ms after the last keystroke
    browser.evaluate("new Promise(r => setTimeout(r, 300))")
    return int(browser.evaluate("document.getElementById('case-count').dataset.matching"))


def _gate_project(pytester: pytest.Pytester, server: OpenAIServer) -> None:
    """The frozen project, its baseline recorded and then edited (one case better, one worse),
    plus a suite on the local server whose answers are hostile HTML and a provider error."""
    names = ["ticket_router.gpo.yaml", "tickets.jsonl", "order_total.gpo.yaml", "order_totals.csv"]
    _copy_project(pytester, [*names, "contact_extraction.gpo.yaml", "contact_emails.yaml"])
    pytester.makeini(
        "[pytest]\ngpo_model = gpo-sim/task\ngpo_optimizer_model = gpo-sim/optimizer\n"
        "gpo_html = out/every case.html\ngpo_cache = off\ngpo_trusted_params = api_base\n"
    )
    pytester.runpytest("-p", "no:cacheprovider", "--gpo-update-baseline").assert_outcomes(passed=3)
    path = pytester.path / ".gpo" / "baseline.json"
    baseline = json.loads(path.read_text(encoding="utf-8"))
    cases = baseline["suites"]["ticket_router"]["cases"]
    passing = next(cid for cid, c in sorted(cases.items()) if c["passed"])
    failing = next(cid for cid, c in sorted(cases.items()) if not c["passed"])
    cases[passing] = {"passed": False, "score": 0.0}  # now better than the baseline
    cases[failing] = {"passed": True, "score": 1.0}  # now worse
    path.write_text(json.dumps(baseline), encoding="utf-8")
    (pytester.path / "prompts" / "echo.txt").write_text("{{ ticket }}\n", encoding="utf-8")
    suite = {
        "name": "echo_answers",
        "prompt": "../prompts/echo.txt",
        "model": "openai/echo",
        "params": {"api_base": server.base_url},
        "cases": [
            {"id": "hostile-answer", "vars": {"ticket": HOSTILE}, "expected": "echo: " + HOSTILE},
            {"id": "provider-error", "vars": {"ticket": "b"}, "expected": "echo: b"},
        ],
        "scorers": [{"type": "exact"}],
        "threshold": 0.0,
    }
    (pytester.path / "suites" / "echo.gpo.yaml").write_text(json.dumps(suite), encoding="utf-8")


def test_gate_report_renders_filters_searches_and_escapes(
    pytester: pytest.Pytester,
    browser: Chromium,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with OpenAIServer() as server:
        _gate_project(pytester, server)
        server.script("ok", "400")  # the second echo case gets a provider error
        result = pytester.runpytest(
            "-p", "no:cacheprovider", "--gpo-report", "out/report.md", "--gpo-max-attempts", "1",
            "--gpo-concurrency", "1",
        )  # fmt: skip
    out = result.stdout.str()
    html_path = pytester.path / "out" / "every case.html"
    assert "HTML report: out/every case.html" in out, out
    md = (pytester.path / "out" / "report.md").read_text(encoding="utf-8")
    assert "[every case.html](every%20case.html)" in md
    data = json.loads((pytester.path / "out" / "report.json").read_text(encoding="utf-8"))
    suites = {s["suite"]: s for s in data["suites"]}
    every = [(s["suite"], c) for s in data["suites"] for c in s["cases"]]
    echo = {c["id"]: c for c in suites["echo_answers"]["cases"]}
    hostile = echo["hostile-answer"]["samples"][0]["output"]
    assert hostile.strip() == "echo: " + HOSTILE
    assert echo["provider-error"]["samples"][0]["error"], "the scripted fault was not served"

    browser.open(html_path.as_uri(), ready=READY)
    assert browser.errors() == []
    assert browser.evaluate("document.querySelectorAll('#case-list .case').length") == 100
    assert _click_filter(browser, "all") == len(every) > 100
    # the cases are drawn 100 at a time: the next page holds the rest
    browser.evaluate("Array.from(document.querySelectorAll('.pager button')).pop().click()")
    assert _shown(browser) == [f"{s}/{c['id']}" for s, c in every[100:]]

    def expect(filter_name: str, chosen: list[tuple[str, dict[str, Any]]]) -> None:
        assert _click_filter(browser, filter_name) == len(chosen) > 0, filter_name
        assert sorted(_shown(browser)) == sorted(f"{s}/{c['id']}" for s, c in chosen)

    expect("failed", [(s, c) for s, c in every if not c["passed"]][:100])
    expect(
        "errored", [(s, c) for s, c in every if c["error"] or any(r["error"] for r in c["samples"])]
    )
    moved = {c["case_id"] for c in suites["ticket_router"]["verdict"]["worse"]} | {
        c["case_id"] for c in suites["ticket_router"]["verdict"]["better"]
    }
    assert len(moved) == 2
    expect("changed", [(s, c) for s, c in every if s == "ticket_router" and c["id"] in moved])
    assert _click_filter(browser, "flipped") == 0  # no optimization in this run
    assert browser.evaluate("document.querySelector('#case-list .empty').textContent") == (
        "No case matches."
    )

    # search looks into outputs, and the hostile answer is text, never markup
    _click_filter(browser, "all")
    assert _search(browser, "onerror=alert") == 1
    assert _shown(browser) == ["echo_answers/hostile-answer"]
    assert browser.evaluate("document.querySelectorAll('img, #case-list script').length") == 0
    outputs = browser.evaluate(
        "Array.from(document.querySelectorAll('#case-list pre.output')).map(e => e.textContent)"
    )
    # shown as text, the bidi override as a visible escape (it would reorder the page)
    assert outputs == [hostile.replace("\u202e", "\\u202e")]
    assert _search(browser, "charged twice") >= 1
    assert _search(browser, "no such text anywhere") == 0
    assert _search(browser, "") == len(every)
    notes = browser.evaluate(
        "Array.from(document.querySelectorAll('details.notes pre')).map(e => e.textContent)"
    )
    assert notes, "a failing suite shows its notes"
    for text in notes:  # each note once (the message already holds the notes)
        lines = [line for line in text.splitlines() if line.strip()]
        assert len(lines) == len(set(lines)), text
    assert browser.dialogs() == [] and browser.errors() == []
    shot = browser.screenshot(tmp_path_factory.mktemp("screens") / "gate.png")
    assert shot.stat().st_size > 10_000


def test_optimization_report_shows_the_diff_chart_and_flipped_cases(
    pytester: pytest.Pytester,
    browser: Chromium,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    _copy_project(pytester, ["ticket_router.gpo.yaml", "tickets.jsonl"])
    pytester.makeini(
        textwrap.dedent("""
        [pytest]
        gpo_model = gpo-sim/task
        gpo_optimizer_model = gpo-sim/optimizer
    """)
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--gpo-optimize", "--gpo-dry-run")
    out = result.stdout.str()
    # optimizing writes the HTML beside the markdown report by default
    assert "HTML report: .gpo/report.html" in out, out
    md = (pytester.path / ".gpo" / "report.md").read_text(encoding="utf-8")
    assert "[report.html](report.html)" in md
    data = json.loads((pytester.path / ".gpo" / "report.json").read_text(encoding="utf-8"))
    opt = data["sections"][0]["data"]["ticket_router"]
    assert opt["diff"] and opt["flipped"]

    browser.open((pytester.path / ".gpo" / "report.html").as_uri(), ready=READY)
    assert browser.errors() == [] and browser.dialogs() == []
    # the prompt diff: the unified diff's lines and the word-level changes
    added = browser.evaluate(
        "Array.from(document.querySelectorAll('pre.diff span.add')).map(e => e.textContent)"
    )
    assert added and all(line.startswith("+") for line in added)
    assert browser.evaluate("document.querySelectorAll('.words ins, .words del').length") > 0
    assert (
        browser.evaluate("document.querySelectorAll('pre.prompt')[1].textContent")
        == (opt["best_prompt"])
    )
    # the chart: two lines, one point per step and the start, a title
    assert browser.evaluate("document.querySelectorAll('svg.chart polyline').length") == 2
    points = len(opt["steps"]) + 1
    assert browser.evaluate("document.querySelectorAll('svg.chart circle').length") == 2 * points
    assert "eval score per step" in browser.evaluate(
        "document.querySelector('svg.chart title').textContent"
    )
    # the flipped filter shows the held-out cases whose outcome changed, before and after
    flipped = sorted(f"ticket_router (GPO held-out test)/{f['case_id']}" for f in opt["flipped"])
    assert _click_filter(browser, "flipped") == len(flipped)
    assert sorted(_shown(browser)) == flipped
    first = opt["flipped"][0]
    sides = browser.evaluate(
        "Array.from(document.querySelectorAll('#case-list .case')[0]"
        ".querySelectorAll('.sides pre.output')).map(e => e.textContent)"
    )
    assert sides == [r["output"] for r in first["before"]["runs"] + first["after"]["runs"]]
    assert _click_filter(browser, "all") == len(opt["test_before"])
    assert _click_filter(browser, "changed") == 0  # a baseline comparison is not a flip
    assert browser.errors() == []
    browser.screenshot(tmp_path_factory.mktemp("screens") / "optimize.png", full_page=True)


def test_unwritable_html_path_is_a_clear_error_and_the_summary_still_prints(
    pytester: pytest.Pytester,
) -> None:
    _copy_project(pytester, ["ticket_router.gpo.yaml", "tickets.jsonl"])
    pytester.makeini("[pytest]\ngpo_model = gpo-sim/task\n")
    (pytester.path / "blocker").write_text("a file, not a folder", encoding="utf-8")
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--gpo-html", "blocker/r.html", "--gpo-report", "r.md"
    )
    out = result.stdout.str()
    assert result.ret == 1, out
    assert re.search(r"ERROR: .*blocker.*cannot write the HTML report", out), out
    assert "--gpo-html" in out  # the fix names the option
    assert "ticket_router" in out and "model calls:" in out  # the summary is still printed
    assert not re.search(r"^HTML report:", out, re.M)
    md = (pytester.path / "r.md").read_text(encoding="utf-8")
    assert "r.html)" not in md  # the markdown links only a file that was written
    data = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    # pytest exits 1, so no report may say the run passed
    assert data["passed"] is False and data["exit_status"] == 1
    assert "HTML report could not be written" in data["summary"] and "✅" not in md.splitlines()[3]
