"""`--gpo-optimize` runs that stop early: Ctrl-C writes no prompt file, and a call cap too
small to run a step ends the suite as an error (E) without spending calls on the held-out test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest
from router_suites import router_project

pytest_plugins = ["pytester"]


@pytest.fixture
def two_suites(pytester: pytest.Pytester) -> pytest.Pytester:
    """The ticket router suite twice (``first_router`` runs first), each with its own prompt
    file, two steps of four candidates, on the simulated models without a response cache."""
    prompts = {"first_router": "prompts/first.txt", "ticket_router": "prompts/router.txt"}
    return router_project(pytester, prompts, cache="off")


def _prompts(project: pytest.Pytester) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in (project.path / "prompts").iterdir()}


def _report(project: pytest.Pytester) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((project.path / ".gpo" / "report.json").read_text("utf-8"))
    return data


def _interrupted(project: pytest.Pytester, presses: int) -> tuple[int, str]:
    """``pytest --gpo-optimize`` in a subprocess, sent ``presses`` SIGINTs 0.3 s apart while
    the second suite's first candidate is held on the event loop: (exit status, output)."""
    project.makeconftest(
        textwrap.dedent("""
        import time
        from pathlib import Path

        def pytest_gpo_filter_candidate(suite_name, current, candidate):
            if suite_name == "ticket_router" and not Path("started").exists():
                Path("started").touch()
                time.sleep(6)  # on the event loop: the SIGINTs arrive meanwhile
            return None
    """)
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--gpo-optimize"],
        cwd=project.path,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while not (project.path / "started").exists() and time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        assert (project.path / "started").exists()
        for press in range(presses):
            if press:
                time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=120)[0].decode("utf-8", "replace")
    finally:
        proc.kill()
    return proc.returncode, out


def test_ctrl_c_writes_no_prompt_file_and_the_rerun_resumes(two_suites: pytest.Pytester) -> None:
    """A real SIGINT while the second suite optimizes: the first suite's accepted prompt is not
    written (its checkpoint is kept), pytest exits 2 and nothing says it exits 1; the
    interrupted suite's line says its checkpoint exists and the next run resumes from it."""
    before = _prompts(two_suites)
    returncode, out = _interrupted(two_suites, presses=1)
    assert returncode == pytest.ExitCode.INTERRUPTED, out
    assert _prompts(two_suites) == before, out
    assert "rewritten" not in out and "exits 1" not in out, out
    assert (
        "first_router: not written: the run was interrupted (rerun to resume: finished suites "
        "are kept in their checkpoints)" in out
    ), out
    assert "ticket_router" in out and "the next run resumes from it" in out, out
    report = _report(two_suites)
    assert "not written: the run was interrupted" in report["summary"], report["summary"]
    (interrupted,) = [s for s in report["suites"] if s["suite"] == "ticket_router"]
    assert interrupted["status"] == "not_run"
    assert "the next run resumes from it" in json.dumps(interrupted), interrupted
    markdown = (two_suites.path / ".gpo" / "report.md").read_text(encoding="utf-8")
    assert "not written: the run was interrupted" in markdown
    # the rerun resumes the finished suite from its checkpoint instead of starting afresh
    (two_suites.path / "conftest.py").unlink()
    rerun = two_suites.runpytest("-p", "no:cacheprovider", "--gpo-optimize", "-k", "first")
    assert "resumed after step 2 from its checkpoint" in rerun.stdout.str(), rerun.stdout.str()


def _optimization(project: pytest.Pytester, suite: str) -> dict[str, Any]:
    data: dict[str, Any] = _report(project)["sections"][0]["data"][suite]
    return data


def test_a_cap_that_allows_no_step_is_an_error_and_scores_no_held_out_test(
    two_suites: pytest.Pytester,
) -> None:
    """--gpo-max-calls 30: the first suite scores its initial prompt on eval (19 calls) and
    cannot afford step 1. It spends nothing on the held-out test (there is nothing to compare)
    and is an error naming the cap and the fix: an optimization that did nothing is never a
    green 'prompt kept'."""
    before = _prompts(two_suites)
    result = two_suites.runpytest(
        "-p", "no:cacheprovider", "--gpo-optimize", "--gpo-max-calls", "30", "-k", "first"
    )
    out = result.stdout.str()
    result.assert_outcomes(errors=1, deselected=1)
    assert "optimization could not run a step within the run's cap (--gpo-max-calls 30" in out
    assert "the initial prompt was scored, then stopped before step 1: " in out
    assert "the call cap (30, 19 used)" in out
    assert "fix: raise --gpo-max-calls / --gpo-max-cost or select fewer suites (-k)" in out
    assert _prompts(two_suites) == before
    report = _report(two_suites)
    assert report["passed"] is False and report["totals"]["usage"]["calls"] == 19, out


def test_a_cap_too_small_to_score_the_initial_prompt_is_an_error(
    two_suites: pytest.Pytester,
) -> None:
    """--gpo-max-calls 17 with two suites of 19 eval cases: neither can score its initial
    prompt, so both are errors (E) naming the cap, the calls needed and the fix; pytest exits
    non-zero and the reports say the same."""
    before = _prompts(two_suites)
    result = two_suites.runpytest(
        "-p", "no:cacheprovider", "--gpo-optimize", "--gpo-max-calls", "17"
    )
    out = result.stdout.str()
    result.assert_outcomes(errors=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED and "passed" not in out.splitlines()[-1]
    assert out.count("optimization could not score the initial prompt within the run's cap") == 2
    assert "--gpo-max-calls 17" in out and "at least 19 calls (the eval split, 19 cases x 1" in out
    assert "fix: raise --gpo-max-calls / --gpo-max-cost or select fewer suites (-k)" in out
    assert _prompts(two_suites) == before
    report = _report(two_suites)
    assert report["passed"] is False
    assert [s["status"] for s in report["suites"]] == ["error", "error"]
    assert all("at least 19 calls" in json.dumps(s) for s in report["suites"])
    markdown = (two_suites.path / ".gpo" / "report.md").read_text(encoding="utf-8")
    assert "at least 19 calls" in markdown


def test_a_cap_reached_after_some_steps_still_passes(two_suites: pytest.Pytester) -> None:
    """Documented behaviour kept: a cap that stops the run after step 1 keeps the best prompt
    so far, scores it on the held-out test (steps ran) and passes."""
    result = two_suites.runpytest(
        "-p",
        "no:cacheprovider",
        "--gpo-optimize",
        "--gpo-dry-run",
        "-k",
        "first",
        "--gpo-max-calls",
        "160",
    )
    result.assert_outcomes(passed=1, deselected=1)
    opt = _optimization(two_suites, "first_router")
    assert len(opt["steps"]) == 1 and opt["stopped_reason"], opt["stopped_reason"]
    assert opt["scores"]["test"]["before"] is not None


def test_steps_whose_held_out_test_the_shared_cap_cannot_pay_are_errors_under_xdist(
    two_suites: pytest.Pytester,
) -> None:
    """-n 2 with --gpo-max-calls 200: each worker plans to keep calls for its held-out test,
    but the cap is shared (264 calls would be needed) and the other worker spends them. A
    suite whose steps ran without a held-out verdict can write nothing: an error, never a
    green 'prompt kept' (which suite it hits depends on the workers' timing)."""
    pytest.importorskip("xdist")
    result = two_suites.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        "xdist",
        "-n",
        "2",
        "--gpo-optimize",
        "--gpo-dry-run",
        "--gpo-max-calls",
        "200",
    )
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    assert "error" in out.splitlines()[-1]
    assert "so nothing can be written" in out or "could not run a step" in out
    assert "prompt kept (not accepted: the held-out test could not be scored" not in out
    assert _report(two_suites)["passed"] is False


def test_a_second_ctrl_c_while_the_run_finishes_is_held(two_suites: pytest.Pytester) -> None:
    """A tester pressed Ctrl-C twice, 0.3 s apart: the second broke pytest's own handling of
    the first (exit 130 and a traceback) and left a report saying exit 0. It is now held with
    a note, and pytest exits 2 with reports that say 2."""
    returncode, out = _interrupted(two_suites, presses=2)
    assert returncode == pytest.ExitCode.INTERRUPTED, out
    assert "pytest-gpo: finishing the reports; press Ctrl-C again to abandon them" in out, out
    report = _report(two_suites)
    assert report["exit_status"] == 2 and report["passed"] is False
