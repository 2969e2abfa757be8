"""Errors, not tracebacks: unwritable places, duplicate suite names and control characters.

Every test runs pytest end to end (pytester, in a subprocess) on a small project answered by
the local OpenAI-compatible server, and checks what a user sees: one error line naming the
path, the summary and the other reports still written, and the exit status. Paths are made
unwritable by putting a regular file where a folder must be, which also holds for root
(permission bits do not stop root).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai_server import OpenAIServer


@pytest.fixture(autouse=True)
def _trust_api_base(monkeypatch: pytest.MonkeyPatch) -> None:
    """These suites reach the local test server through ``params.api_base``: the user trusts
    that key here, as a project would in its ini (docs/reliability.md#trust-model)."""
    monkeypatch.setenv("GPO_TRUSTED_PARAMS", "api_base")


pytest_plugins = ["pytester"]

#: An answer a model might give, or a prompt injection might provoke.
HOSTILE = (
    "ok \x1b[2J\x1b[31mRED\x1b[0m \x1b]8;;http://evil.example/\x07link\x1b]8;;\x07 "
    "nul\x00byte bell\x07 cr\roverwrite \x9b31m c1 \u202eevil\u202c del\x7f"
)
RAW = ["\x1b", "\x00", "\x07", "\x9b", "\u202e", "\x7f", "\r"]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIServer]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with OpenAIServer() as server:
        yield server


def _suite(path: Path, base_url: str, *, name: str | None = None, expected: str = "w") -> None:
    suite: dict[str, Any] = {
        "prompt": "p.txt",
        "params": {"api_base": base_url},
        "cases": [{"id": f"c{i}", "vars": {"word": f"w{i}"}, "expected": expected} for i in (1, 2)],
        "scorers": [{"type": "contains"}],
        "threshold": 1.0,
    }
    if name is not None:
        suite["name"] = name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(suite), encoding="utf-8")
    (path.parent / "p.txt").write_text("Say {{ word }}\n", encoding="utf-8")


def _project(pytester: pytest.Pytester, api: OpenAIServer, ini: str = "") -> None:
    pytester.makeini(f"[pytest]\ngpo_model = openai/echo\n{ini}")
    _suite(pytester.path / "good.gpo.yaml", api.base_url)


def _clean(result: pytest.RunResult) -> str:
    out = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in out and "INTERNALERROR" not in out, out
    return out


def test_unwritable_baseline_is_one_error_and_the_reports_are_still_written(
    pytester: pytest.Pytester, api: OpenAIServer
) -> None:
    (pytester.path / "blocker").write_text("a file where the baseline's folder should be")
    _project(pytester, api, "gpo_baseline = blocker/baseline.json\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--gpo-update-baseline", "--gpo-report", "out/report.md"
    )
    out = _clean(result)
    assert result.ret == 1  # the suite passed, but the write asked for failed
    result.assert_outcomes(passed=1)
    errors = [line for line in out.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1 and "cannot write the baseline file" in errors[0], out
    assert "blocker/baseline.json" in errors[0] and "fix:" in out
    assert "good " in out and "PASS" in out  # the summary table
    report = json.loads((pytester.path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["exit_status"] == 1 and report["passed"] is False
    assert "could not be written" in report["summary"]
    assert (pytester.path / "out" / "report.md").is_file()


def test_unwritable_report_is_one_error_and_the_baseline_is_still_written(
    pytester: pytest.Pytester, api: OpenAIServer
) -> None:
    (pytester.path / "blocker").write_text("not a folder")
    _project(pytester, api)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--gpo-update-baseline", "--gpo-report", "blocker/report.md"
    )
    out = _clean(result)
    assert result.ret == 1
    assert "cannot write the report" in out and "blocker/report.md" in out
    assert "--gpo-report" in out  # the fix
    assert "baseline updated for 1 suite(s)" in out
    assert (pytester.path / ".gpo" / "baseline.json").is_file()


def test_unwritable_cache_folder_warns_and_the_run_passes(
    pytester: pytest.Pytester, api: OpenAIServer
) -> None:
    (pytester.path / "blocker").write_text("not a folder")
    _project(pytester, api, "gpo_cache_dir = blocker/cache\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    out = _clean(result)
    assert result.ret == 0
    result.assert_outcomes(passed=1)
    assert "WARNING: the response cache failed" in out and "cache write failed" in out
    assert "blocker/cache" in out and "fix: make the cache location writable" in out


def test_duplicate_suite_names_are_an_error_on_both_files_naming_both(
    pytester: pytest.Pytester, api: OpenAIServer
) -> None:
    _project(pytester, api)
    _suite(pytester.path / "a" / "router.gpo.yaml", api.base_url)
    _suite(pytester.path / "b" / "router.gpo.yaml", api.base_url)  # same default name
    _suite(pytester.path / "c" / "other.gpo.yaml", api.base_url, name="router")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--gpo-update-baseline")
    out = _clean(result)
    result.assert_outcomes(passed=1, errors=3)
    listed = "(a/router.gpo.yaml, b/router.gpo.yaml, c/other.gpo.yaml)"
    for where in ("a/router.gpo.yaml", "b/router.gpo.yaml", "c/other.gpo.yaml"):
        # each file's own error, naming every file with the name
        assert f"{where}, key 'name': suite name 'router' is used by 3 suite files {listed}" in out
    assert "baseline NOT updated for router" in out
    baseline = pytester.path / ".gpo" / "baseline.json"
    assert list(json.loads(baseline.read_text(encoding="utf-8"))["suites"]) == ["good"]


def test_control_characters_in_answers_are_escaped_in_terminal_markdown_and_junit(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with OpenAIServer(responder=lambda request: HOSTILE) as server:
        pytester.makeini("[pytest]\ngpo_model = openai/echo\n")
        _suite(pytester.path / "hostile.gpo.yaml", server.base_url, expected="never said")
        result = pytester.runpytest_subprocess(
            "-p",
            "no:cacheprovider",
            "--gpo-report",
            "report.md",
            "--junitxml",
            "junit.xml",
            "--gpo-show-all",
        )
    out = _clean(result)
    result.assert_outcomes(failed=1)
    for ch in RAW:
        assert ch not in out, repr(ch)
    assert "\\x1b[2J" in out and "\\x00" in out and "\\u202e" in out
    markdown = (pytester.path / "report.md").read_text(encoding="utf-8")
    for ch in RAW:
        assert ch not in markdown, repr(ch)
    assert "\\x00" in markdown
    # JSON keeps the exact text (JSON escapes it)
    report = json.loads((pytester.path / "report.json").read_text(encoding="utf-8"))
    outputs = [r["output"] for s in report["suites"] for c in s["cases"] for r in c["samples"]]
    assert HOSTILE in outputs
    # JUnit XML stays valid XML
    tree = ET.parse(pytester.path / "junit.xml")
    text = ET.tostring(tree.getroot(), encoding="unicode")
    assert "\x1b" not in text and "\x00" not in text
