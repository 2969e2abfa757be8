"""End to end: the numbers of a run agree wherever they are shown, every case's full output is
available (report.json, ``--gpo-show-all``), and nothing points to a report that was not
written. Each test is a case a user reported (issue 11)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from openai_server import OpenAIServer


@pytest.fixture(autouse=True)
def _trust_api_base(monkeypatch: pytest.MonkeyPatch) -> None:
    """These suites reach the local test server through ``params.api_base``: the user trusts
    that key here, as a project would in its ini (docs/reliability.md#trust-model)."""
    monkeypatch.setenv("GPO_TRUSTED_PARAMS", "api_base")


pytest_plugins = ["pytester"]

CHATTY = "Route this support ticket.\n\nTicket: {{ ticket }}\n"
BARE = (
    "Route this support ticket to one team: billing, technical, account, shipping or other.\n"
    "Answer with only the category name.\n\nTicket: {{ ticket }}\n"
)
TICKETS = [
    ("inv-1000", "I was charged twice, please refund me", "billing"),
    ("crash-1", "The app crashes when I open settings", "technical"),
    ("ship-1", "My package never arrived, tracking shows nothing", "shipping"),
]


def _project(
    pytester: pytest.Pytester,
    body: str,
    *,
    prompt: str = CHATTY,
    cases: list[tuple[str, str, str]] | None = None,
    name: str = "s",
) -> None:
    pytester.makeini("[pytest]\ngpo_model = gpo-sim/task\n")
    (pytester.path / f"{name}.txt").write_text(prompt, encoding="utf-8")
    lines = [f"name: {name}", f"prompt: {name}.txt", "cases:"]
    for cid, ticket, expected in cases or TICKETS:
        lines.append(
            f"  - {{id: {cid}, vars: {{ticket: {json.dumps(ticket)}}}, expected: {expected}}}"
        )
    text = "\n".join(lines) + "\n" + body
    (pytester.path / f"{name}.gpo.yaml").write_text(text, encoding="utf-8")


def _json(pytester: pytest.Pytester, path: str = "out/report.json") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((pytester.path / path).read_text(encoding="utf-8"))
    return data


def _terminal_row(result: pytest.RunResult, suite: str) -> list[str]:
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if " pytest-gpo " in line)
    for line in lines[start:]:
        if re.match(rf"{re.escape(suite)}\s{{2,}}", line):
            return re.split(r"\s{2,}", line.strip())
    raise AssertionError(f"no row for {suite}:\n{result.stdout.str()}")


def _junit(pytester: pytest.Pytester) -> dict[str, str]:
    case = next(ET.parse(pytester.path / "out" / "junit.xml").getroot().iter("testcase"))
    return {p.get("name", ""): p.get("value", "") for p in case.iter("property")}


def _md_rows(markdown: str, first_header: str) -> list[dict[str, str]]:
    """Rows of the first markdown table whose header starts with ``first_header``."""
    lines = markdown.splitlines()
    for i, line in enumerate(lines):
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip("|"))]
        if line.startswith("|") and cells[0] == first_header:
            rows = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                values = [c.strip() for c in re.split(r"(?<!\\)\|", row.strip("|"))]
                rows.append(dict(zip(cells, values, strict=True)))
            return rows
    raise AssertionError(f"no table starting with {first_header!r}")


def test_pass_rate_suite_shows_one_score_and_real_case_scores(pytester: pytest.Pytester) -> None:
    """Issue: report.md said case inv-1000 `score 0.000` while its reason said `score 0.83`,
    and JUnit's gpo_score (the mean) disagreed with the terminal's (the pass rate)."""
    _project(
        pytester,
        "scorers: [{type: contains, all: [think, about, billing], ignore_case: true}]\n"
        "threshold: {pass_rate: 0.9}\n",
        cases=[
            ("inv-1000", TICKETS[1][1], "technical"),
            *TICKETS[1:],
            ("refund-1", *TICKETS[0][1:]),
        ],
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--gpo-report", "out/report.md", "--junitxml", "out/junit.xml"
    )
    assert result.ret == 1
    # one suite score: the pass rate, in the terminal as in JUnit (not JUnit's mean)
    row = _terminal_row(result, "s")
    assert row[1] == "0.250" == _junit(pytester)["gpo_score"]
    assert _junit(pytester)["gpo_metric"] == "pass_rate"
    # a case's score is its own score, the one its reason gives (not pass_rate's 1/0)
    markdown = (pytester.path / "out" / "report.md").read_text(encoding="utf-8")
    failing = {r["case"]: r for r in _md_rows(markdown, "case")}
    assert failing["inv-1000"]["score"] == "0.667"
    assert "score 0.67" in failing["inv-1000"]["reason"]
    suites = _md_rows(markdown, "suite")
    assert suites[0]["score"] == "0.250" and suites[0]["threshold"] == "0.900 (pass rate)"
    data = _json(pytester)["suites"][0]
    scores = {c["id"]: c["score"] for c in data["cases"]}
    assert scores["inv-1000"] == pytest.approx(2 / 3) and scores["refund-1"] == 1.0
    assert data["score"] == pytest.approx(1 / 4) and data["metric"] == "pass_rate"


def test_errored_suite_shows_its_own_threshold(pytester: pytest.Pytester) -> None:
    """Issue: errored suites showed `threshold 0.000`."""
    _project(pytester, "scorers: [{type: exact}]\nthreshold: 0.6\n")
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--gpo-cache",
        "replay",
        "--gpo-report",
        "out/report.md",
        "--junitxml",
        "out/junit.xml",
    )
    result.assert_outcomes(errors=1)
    assert _terminal_row(result, "s")[1:3] == ["-", "0.600"]
    assert _json(pytester)["suites"][0]["threshold"] == 0.6
    assert _junit(pytester)["gpo_threshold"] == "0.600"
    assert _junit(pytester)["gpo_verdict"] == "error"
    markdown = (pytester.path / "out" / "report.md").read_text(encoding="utf-8")
    assert _md_rows(markdown, "suite")[0]["threshold"] == "0.600"


def test_repeated_cases_show_every_sample_and_the_rule_that_decided(
    pytester: pytest.Pytester,
) -> None:
    """Issue: a repeated case showed one output, which contradicted its k-of-N verdict."""
    cases = [
        (f"c{i}", f"I was charged twice for order {i}, refund me", "billing") for i in range(8)
    ]
    _project(
        pytester,
        "scorers: [{type: exact, ignore_case: true}]\nthreshold: 0\nrepeat: 3\n"
        "params: {temperature: 5}\n",
        prompt=BARE,
        cases=cases,
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--gpo-report", "out/report.md", "--gpo-show-all"
    )
    assert result.ret == 0
    data = _json(pytester)["suites"][0]["cases"]
    mixed = [c for c in data if 0 < c["passes"] < 3]
    assert mixed, "the simulated model at temperature 5 should disagree with itself"
    out = result.stdout.str()
    for c in mixed:
        assert len(c["samples"]) == 3 and c["rule"] == f"passed {c['passes']}/3 runs (needs 2)"
        verdict = "pass" if c["passed"] else "fail"
        assert f"  {c['id']}: {verdict}: {c['rule']}, score {c['score']:.3f}" in out
        for r in c["samples"]:
            word = "pass" if r["passed"] else "fail"
            assert f"    #{r['sample'] + 1} {word} {r['score']:.3f}: {r['output']}" in out
    markdown = (pytester.path / "out" / "report.md").read_text(encoding="utf-8")
    failing = {r["case"]: r for r in _md_rows(markdown, "case") if "got (every run)" in r}
    for c in (c for c in mixed if not c["passed"]):
        cell = failing[c["id"]]["got (every run)"]
        assert cell.count("<br>") == 2 and failing[c["id"]]["runs"] == c["rule"]


def test_more_cases_point_only_to_what_exists(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue: "see the report" was printed when no report had been written."""
    cases = [(f"c{i:02d}", f"The app crashes on screen {i}", "technical") for i in range(55)]
    _project(pytester, "scorers: [{type: exact}]\nthreshold: 0.5\n", cases=cases)
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    bare = pytester.runpytest("-p", "no:cacheprovider")
    assert bare.ret == 1
    out = bare.stdout.str()
    assert "see the report" not in out and "report.json" not in out
    assert "… and 35 more failing cases (--gpo-show-all lists every case" in out
    step = summary.read_text(encoding="utf-8")
    assert "… and 5 more cases (not shown; --gpo-report PATH writes every case" in step
    assert "see the" not in step
    with_report = pytester.runpytest("-p", "no:cacheprovider", "--gpo-report", "out/r.md")
    assert "… and 35 more failing cases (every case is in out/r.json)" in with_report.stdout.str()
    assert len(_json(pytester, "out/r.json")["suites"][0]["cases"]) == 55
    markdown = (pytester.path / "out" / "r.md").read_text(encoding="utf-8")
    assert "… and 5 more cases (every case is in r.json)." in markdown


def _long_answer(body: dict[str, Any]) -> str:
    ticket = body["messages"][-1]["content"]
    return "line one of a long answer\n" + ("word " * 60) + "\n" + ticket[-20:]


def test_show_all_prints_every_case_untruncated_from_any_setting(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    with OpenAIServer(responder=_long_answer) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        _project(
            pytester,
            f"scorers: [{{type: contains, value: 'line one'}}]\nthreshold: 0\n"
            f"model: openai/long\nparams: {{api_base: '{server.base_url}'}}\n",
        )
        plain = pytester.runpytest("-p", "no:cacheprovider")
        assert plain.ret == 0 and "every case:" not in plain.stdout.str()
        for args, env, ini in (
            (["--gpo-show-all"], None, None),
            ([], "true", None),
            ([], None, "gpo_show_all = yes"),
        ):
            if env is None:
                monkeypatch.delenv("GPO_SHOW_ALL", raising=False)
            else:
                monkeypatch.setenv("GPO_SHOW_ALL", env)
            extra = f"\n{ini}" if ini else ""
            pytester.makeini(f"[pytest]\ngpo_model = gpo-sim/task{extra}\n")
            result = pytester.runpytest("-p", "no:cacheprovider", *args)
            assert result.ret == 0
            out = result.stdout.str()
            assert "s: PASS (no baseline), score 1.000 (s.gpo.yaml), every case:" in out
            for cid, ticket, expected in TICKETS:
                assert f"  {cid}: pass, score 1.000" in out
                assert f"    var ticket: {ticket}" in out and f"    expected: {expected}" in out
            assert out.count("    #1 pass 1.000: line one of a long answer") == 3
            assert out.count("      " + "word " * 59 + "word") == 3  # the whole line, not cut
    monkeypatch.setenv("GPO_SHOW_ALL", "maybe")
    bad = pytester.runpytest("-p", "no:cacheprovider")
    assert bad.ret == 4
    assert "GPO_SHOW_ALL: bad value 'maybe': must be true or false" in bad.stderr.str()


LABELS = {"refund": "billing", "crash": "technical", "password": "account", "package": "shipping"}


def _router(body: dict[str, Any]) -> str:
    """Task model: bare label only when told to; optimizer: adds that instruction."""
    content = body["messages"][-1]["content"]
    if body["model"] == "optimizer":
        current = content.split("<current_prompt>\n", 1)[1].split("\n</current_prompt>", 1)[0]
        return f"<START>{current}\nAnswer with only the category name.<END>"
    label = next((v for k, v in LABELS.items() if k in content.lower()), "other")
    return label if "only the category" in content else f"I think it is {label}."


def test_resumed_optimization_counts_only_requests_sent_in_this_session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue: a resumed optimization printed `model calls: 621 … misses: 621` while the
    server received 0 requests."""
    with OpenAIServer(responder=_router) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        (pytester.path / "prompt.txt").write_text(CHATTY)
        words = ["refund", "crash", "password", "package"]
        cases = "\n".join(
            f"  - {{id: t{i}, vars: {{ticket: 'my {w} issue {i}'}}, expected: {LABELS[w]}}}"
            for i, w in enumerate(words * 3)
        )
        (pytester.path / "r.gpo.yaml").write_text(
            f"name: r\nprompt: prompt.txt\nthreshold: 0\noptimize: {{steps: 2, candidates: 2}}\n"
            f"cases:\n{cases}\n"
        )
        pytester.makeini(
            "[pytest]\ngpo_model = openai/task\ngpo_optimizer_model = openai/optimizer\n"
        )
        args = ("-p", "no:cacheprovider", "--gpo-optimize", "--gpo-dry-run")
        first = pytester.runpytest(*args)
        assert first.ret == 0, first.stdout.str()
        sent = server.chat_requests
        assert sent > 0
        first.stdout.fnmatch_lines([f"model calls: {sent}, *"])
        again = pytester.runpytest(*args)
        assert again.ret == 0, again.stdout.str()
        assert server.chat_requests == sent  # everything came from the checkpoint and cache
        again.stdout.fnmatch_lines(
            ["model calls: 0, cache hits: *, misses: 0, *(requests sent in this session)"]
        )
        again.stdout.fnmatch_lines(
            ["*resumed after step 2 from its checkpoint; this session sent 0 calls*"]
        )
        markdown = (pytester.path / ".gpo" / "report.md").read_text(encoding="utf-8")
        row = next(r for r in _md_rows(markdown, "model") if r["model"] == "sent in this session")
        assert row["provider calls"] == "0" and row["requests"] == "resumed after step 2"
