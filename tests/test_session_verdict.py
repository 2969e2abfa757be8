"""One verdict for the whole session: every collected suite file (valid, failing, invalid,
errored, not run) is in the terminal summary, report.md, report.json, the GitHub step summary
and the JUnit XML, and the reports' ``passed`` is pytest's exit status."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest_plugins = ["pytester"]

PASS_PROMPT = (
    "Route this support ticket to one team: billing, technical, account, shipping or other.\n"
    "Answer with only the category name.\n\nTicket: {{ ticket }}\n"
)
FAIL_PROMPT = "Route this support ticket.\n\nTicket: {{ ticket }}\n"
CASES = (
    "cases:\n"
    '  - {id: refund-1, vars: {ticket: "I was charged twice, please refund me"}, '
    "expected: billing}\n"
    '  - {id: crash-1, vars: {ticket: "The app crashes when I open settings"}, '
    "expected: technical}\n"
    "scorers: [{type: exact, ignore_case: true}]\n"
)

#: Terminal verdict words per status (what the summary table's verdict column starts with).
TERMINAL = {
    "no_baseline": "PASS",
    "below_threshold": "FAIL below threshold",
    "invalid": "FAIL invalid suite file",
    "error": "ERROR",
    "not_run": "FAIL not run",
}

#: Ways a suite file can be invalid (each a file that fails to load, with its own error).
INVALID = {
    "yaml": "name: [broken\n",
    "key": "name: {name}\nprompt: prompts/pass.txt\nbogus_key: 1\n" + CASES,
    "prompt": "name: {name}\nprompt: prompts/missing.txt\n" + CASES,
    "scorer": "name: {name}\nprompt: prompts/pass.txt\n"
    + CASES.replace("type: exact", "type: nosuchscorer"),
}


@dataclass(frozen=True)
class Mix:
    """A generated project: suites that pass, fail, are invalid, or miss the replay cache."""

    passing: int
    failing: int
    invalid: tuple[str, ...]
    errors: int

    def write(self, root: Path) -> dict[str, str]:
        """Write the suite files; returns file name -> the status each must get."""
        for old in root.glob("*.gpo.yaml"):
            old.unlink()
        expected: dict[str, str] = {}

        def suite(name: str, prompt: str, threshold: float = 0.75) -> None:
            text = f"name: {name}\nprompt: prompts/{prompt}.txt\n{CASES}threshold: {threshold}\n"
            (root / f"{name}.gpo.yaml").write_text(text, encoding="utf-8")

        for i in range(self.passing):
            suite(f"pass{i}", "pass")
            expected[f"pass{i}.gpo.yaml"] = "no_baseline"
        for i in range(self.failing):
            suite(f"fail{i}", "fail")
            expected[f"fail{i}.gpo.yaml"] = "below_threshold"
        for i, kind in enumerate(self.invalid):
            name = f"bad{i}"
            (root / f"{name}.gpo.yaml").write_text(INVALID[kind].replace("{name}", name), "utf-8")
            expected[f"{name}.gpo.yaml"] = "invalid"
        for i in range(self.errors):
            # a prompt never recorded: a replay-cache miss, an error of that suite only
            (root / "prompts" / f"new{i}.txt").write_text(
                f"Uncached wording {i}.\n\nTicket: {{{{ ticket }}}}\n", encoding="utf-8"
            )
            suite(f"err{i}", f"new{i}", threshold=0.6)
            expected[f"err{i}.gpo.yaml"] = "error"
        return expected


@pytest.fixture
def recorded(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project whose cache holds the answers of the passing and the failing prompt."""
    pytester.makeini("[pytest]\ngpo_model = gpo-sim/task\n")
    prompts = pytester.path / "prompts"
    prompts.mkdir()
    (prompts / "pass.txt").write_text(PASS_PROMPT, encoding="utf-8")
    (prompts / "fail.txt").write_text(FAIL_PROMPT, encoding="utf-8")
    Mix(1, 1, (), 0).write(pytester.path)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1, failed=1)
    return pytester


def _suite_rows(markdown: str) -> dict[str, list[str]]:
    """The suites table of a markdown report: suite name -> its cells."""
    for block in re.split(r"\n\s*\n", markdown):
        lines = [ln for ln in block.splitlines() if ln.startswith("|")]
        if lines and lines[0].startswith("| suite ") and "verdict" in lines[0]:
            rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]
            return {r[0].replace("\\_", "_"): r for r in rows}
    raise AssertionError("no suites table in the markdown")


def _junit(path: Path) -> dict[str, dict[str, str]]:
    """testcase file -> its gpo_* properties."""
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        props = {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
        out[props.get("gpo_file", case.get("classname", ""))] = props
    return out


def check_one_verdict(
    project: pytest.Pytester,
    result: pytest.RunResult,
    expected: dict[str, str],
    summary: Path | None = None,
) -> dict[str, Any]:
    """Every renderer lists exactly the collected files, each with its status, and says
    ``passed`` exactly when pytest exits 0."""
    names = {f.removesuffix(".gpo.yaml") for f in expected}
    ok = result.ret == 0
    assert ok == all(s == "no_baseline" for s in expected.values()), result.stdout.str()
    data = json.loads((project.path / "out" / "report.json").read_text(encoding="utf-8"))
    assert {s["file"]: s["status"] for s in data["suites"]} == expected
    assert data["passed"] is ok and data["exit_status"] == int(result.ret)
    assert data["totals"]["suites"] == len(expected)
    assert data["totals"]["invalid"] == sum(s == "invalid" for s in expected.values())
    markdown = (project.path / "out" / "report.md").read_text(encoding="utf-8")
    rows = _suite_rows(markdown)
    assert set(rows) == names
    status_of = {f.removesuffix(".gpo.yaml"): s for f, s in expected.items()}
    assert all(rows[n][1].startswith("✅") == (status_of[n] == "no_baseline") for n in names)
    headline = markdown.splitlines()[3]
    assert headline.startswith("✅") == ok, headline
    if summary is not None:
        assert markdown in summary.read_text(encoding="utf-8")
    junit = _junit(project.path / "out" / "junit.xml")
    assert {f: p["gpo_verdict"] for f, p in junit.items()} == expected
    # a file that is no suite has no cases to count; any other suite shows its own
    cases = {f: p["gpo_cases"] for f, p in junit.items()}
    assert all((c == "-") == (expected[f] == "invalid") for f, c in cases.items()), cases
    out = result.stdout.str()
    table = out[out.index("== pytest-gpo ==") :]
    assert table.splitlines()[1].startswith("✅") == ok
    for name in names:
        row = re.search(rf"^{name}\s+(\S+)\s+(.+?)\s{{2,}}", table, re.M)
        assert row is not None, (name, table)
        assert TERMINAL[status_of[name]] in table.splitlines()[table.count("\n", 0, row.start())]
    return data


def _run(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    return project.runpytest(
        "-p",
        "no:cacheprovider",
        "--gpo-report",
        "out/report.md",
        "--junitxml",
        "out/junit.xml",
        *args,
    )


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    mix=st.builds(
        Mix,
        passing=st.integers(0, 2),
        failing=st.integers(0, 2),
        invalid=st.lists(st.sampled_from(sorted(INVALID)), max_size=3).map(tuple),
        errors=st.integers(0, 2),
    ).filter(lambda m: m.passing + m.failing + len(m.invalid) + m.errors > 0)
)
def test_every_suite_file_is_in_every_report_and_passed_is_the_exit_status(
    recorded: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mix: Mix
) -> None:
    summary = recorded.path / "step_summary.md"
    summary.write_text("", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    expected = mix.write(recorded.path)
    result = _run(recorded, "--gpo-cache", "replay")
    check_one_verdict(recorded, result, expected, summary)


def test_seven_invalid_and_four_valid_suites_fail_in_every_report(
    recorded: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's case: pytest exits 1, and no report says "4 suites passed"."""
    summary = recorded.path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    expected = Mix(4, 0, ("yaml", "key", "prompt", "scorer", "yaml", "key", "prompt"), 0).write(
        recorded.path
    )
    result = _run(recorded)
    assert result.ret == 1
    data = check_one_verdict(recorded, result, expected, summary)
    assert data["summary"].startswith("❌ 7 of 11 suites failed")
    bad = next(s for s in data["suites"] if s["file"] == "bad0.gpo.yaml")
    assert "malformed YAML" in bad["verdict"]["error"] and bad["threshold"] is None
    junit = _junit(recorded.path / "out" / "junit.xml")
    assert "unknown key 'bogus_key'" in junit["bad1.gpo.yaml"]["gpo_error"]


def test_records_of_every_suite_cross_from_xdist_workers(recorded: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    expected = Mix(2, 1, ("yaml", "key"), 1).write(recorded.path)
    result = recorded.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        "xdist",
        "-n",
        "2",
        "--gpo-cache",
        "replay",
        "--gpo-report",
        "out/report.md",
        "--junitxml",
        "out/junit.xml",
    )
    assert result.ret == 1
    check_one_verdict(recorded, result, expected)
    # one testcase a suite file: the first reports reach the controller before its session
    # exists, and they must not come back as "not run" duplicates
    cases = [
        (c.get("classname"), c.get("name"))
        for c in ET.parse(recorded.path / "out" / "junit.xml").getroot().iter("testcase")
    ]
    assert len(cases) == len(set(cases)) == len(expected), cases


def test_suites_a_stopped_session_never_ran_are_listed_as_not_run(
    recorded: pytest.Pytester,
) -> None:
    Mix(0, 0, (), 0).write(recorded.path)  # no suites from the recording
    for name, prompt in (("a_fail", "fail"), ("b_pass", "pass"), ("c_pass", "pass")):
        body = f"name: {name}\nprompt: prompts/{prompt}.txt\n{CASES}threshold: 0.75\n"
        (recorded.path / f"{name}.gpo.yaml").write_text(body, encoding="utf-8")
    (recorded.path / "d_bad.gpo.yaml").write_text(INVALID["yaml"], encoding="utf-8")
    result = _run(recorded, "-x")
    assert result.ret == 1
    expected = {
        "a_fail.gpo.yaml": "below_threshold",
        "b_pass.gpo.yaml": "not_run",
        "c_pass.gpo.yaml": "not_run",
        "d_bad.gpo.yaml": "invalid",
    }
    data = check_one_verdict(recorded, result, expected)
    junit = ET.parse(recorded.path / "out" / "junit.xml").getroot()
    skipped = [c for c in junit.iter("testcase") if c.find("skipped") is not None]
    assert len(skipped) == 2
    assert all("stopped early" in c.find("skipped").get("message", "") for c in skipped)  # type: ignore[union-attr]
    failed = {c.get("name") for c in junit.iter("testcase") if c.find("failure") is not None}
    assert failed == {"a_fail", "d_bad"}  # the file that is no suite fails though not run
    assert data["passed"] is False and data["totals"]["not_run"] == 2
    assert data["summary"].startswith("❌ 2 of 4 suites failed, 2 not run")
    b_pass = next(s for s in data["suites"] if s["suite"] == "b_pass")
    assert b_pass["threshold"] == 0.75 and b_pass["score"] is None
    assert b_pass["verdict"]["cases"] == 2  # its cases, though none was scored
    table = result.stdout.str().split("== pytest-gpo ==")[1]
    assert re.search(r"^b_pass .*FAIL not run\s+2\s", table, re.M), table


def test_deselected_suites_are_not_in_the_reports_and_collect_only_writes_none(
    recorded: pytest.Pytester,
) -> None:
    expected = Mix(2, 1, ("yaml",), 0).write(recorded.path)
    result = _run(recorded, "-k", "pass0 or bad0")
    assert result.ret == 1
    data = json.loads((recorded.path / "out" / "report.json").read_text())
    assert {s["file"] for s in data["suites"]} == {"pass0.gpo.yaml", "bad0.gpo.yaml"}
    assert len(expected) == 4
    (recorded.path / "out" / "report.json").unlink()
    collect = _run(recorded, "--collect-only")
    assert collect.ret == 0 and not (recorded.path / "out" / "report.json").exists()
    assert "pytest-gpo" not in collect.stdout.str()


def test_suites_pass_but_another_test_fails_the_reports_do_not_say_passed(
    recorded: pytest.Pytester,
) -> None:
    Mix(1, 0, (), 0).write(recorded.path)
    recorded.makepyfile(test_other="def test_other():\n    assert False\n")
    result = _run(recorded)
    assert result.ret == 1
    data = json.loads((recorded.path / "out" / "report.json").read_text())
    assert data["passed"] is False and data["suites"][0]["passed"] is True
    assert "pytest exits 1: other tests failed" in data["summary"]
    assert data["summary"].startswith("❌") and "✅" not in data["summary"]
    markdown = (recorded.path / "out" / "report.md").read_text(encoding="utf-8")
    assert "pytest exits 1" in markdown.splitlines()[3]


def test_ctrl_c_while_a_request_is_out_still_counts_it(pytester: pytest.Pytester) -> None:
    """The server got the request before the interrupt: every report counts it as sent."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from openai_server import OpenAIServer

    with OpenAIServer(latency=30.0) as server:
        pytester.makeini(
            "[pytest]\ngpo_model = openai/slow\ngpo_cache = off\ngpo_trusted_params = api_base\n"
        )
        (pytester.path / "p.txt").write_text("Say {{ w }}", encoding="utf-8")
        (pytester.path / "slow.gpo.yaml").write_text(
            f"prompt: p.txt\nparams: {{api_base: '{server.base_url}'}}\nthreshold: 0\n"
            "cases: [{id: c0, vars: {w: a}, expected: a}]\n",
            encoding="utf-8",
        )
        env = {**os.environ, "OPENAI_API_KEY": "sk-test-interrupt"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--gpo-report", "out/r.md"],
            cwd=pytester.path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while not server.chat_requests and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.chat_requests == 1
            proc.send_signal(signal.SIGINT)
            out = proc.communicate(timeout=60)[0].decode("utf-8", "replace")
        finally:
            proc.kill()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    data = json.loads((pytester.path / "out" / "r.json").read_text(encoding="utf-8"))
    assert data["suites"][0]["usage"]["calls"] == 1, out
    assert "model calls: 1," in out
