"""`pytest --gpo-optimize` end to end: write-back, exit status, CI policy, dry run, stale guard,
caps, selection, the report, and the real litellm HTTP path against a local server."""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
from openai_server import OpenAIServer

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parent / "fixtures" / "support_desk"


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One response cache for the module: later runs of the same optimization are cache hits."""
    return tmp_path_factory.mktemp("gpo-cache")


@pytest.fixture
def router_project(pytester: pytest.Pytester, shared_cache: Path) -> pytest.Pytester:
    """The example project's ticket router suite on the simulated models."""
    (pytester.path / "suites").mkdir()
    (pytester.path / "prompts").mkdir()
    shutil.copy(EXAMPLE / "prompts" / "router.txt", pytester.path / "prompts" / "router.txt")
    for name in ("ticket_router.gpo.yaml", "tickets.jsonl"):
        shutil.copy(EXAMPLE / "suites" / name, pytester.path / "suites" / name)
    pytester.makeini(
        textwrap.dedent(f"""
        [pytest]
        gpo_model = gpo-sim/task
        gpo_optimizer_model = gpo-sim/optimizer
        gpo_cache_dir = {shared_cache}
    """)
    )
    return pytester


def prompt_of(pytester: pytest.Pytester) -> str:
    return (pytester.path / "prompts" / "router.txt").read_text(encoding="utf-8")


def report_json(pytester: pytest.Pytester) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (pytester.path / ".gpo" / "report.json").read_text(encoding="utf-8")
    )
    return data


def test_optimize_writes_back_reports_and_exits_1(router_project: pytest.Pytester) -> None:
    before = prompt_of(router_project)
    result = router_project.runpytest("-p", "no:cacheprovider", "--gpo-optimize")
    assert result.ret == 1, result.stdout.str()
    out = result.stdout.str()
    # the pre-flight estimate, then one progress line per step, then the summary
    assert re.search(r"\[gpo\] ticket_router: preset gpo, at most 6 steps", out)
    assert "step 6/6" in out
    result.stdout.fnmatch_lines(
        ["*ticket_router*router.txt rewritten*", "*1 prompt file(s) rewritten*re-run pytest*"]
    )
    after = prompt_of(router_project)
    assert after != before and "{{ ticket }}" in after and after.endswith("\n")
    md = (router_project.path / ".gpo" / "report.md").read_text(encoding="utf-8")
    assert "```diff" in md and "xychart-beta" in md and "words used / allowed" in md
    opt = report_json(router_project)["sections"][0]["data"]["ticket_router"]
    assert opt["accepted"] is True and opt["best_prompt"].strip() == after.strip()
    assert opt["scores"]["test"]["after"] > opt["scores"]["test"]["before"]
    # the rewritten prompt passes the gate, and a second optimize run has nothing to write
    router_project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_ci_refuses_to_write_unless_forced(
    router_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    before = prompt_of(router_project)
    result = router_project.runpytest("-p", "no:cacheprovider", "--gpo-optimize")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*not written: CI is set; pass --gpo-optimize=write*"])
    assert prompt_of(router_project) == before
    forced = router_project.runpytest("-p", "no:cacheprovider", "--gpo-optimize=write")
    assert forced.ret == 1 and prompt_of(router_project) != before


def test_dry_run_writes_only_the_report(router_project: pytest.Pytester) -> None:
    before = prompt_of(router_project)
    result = router_project.runpytest("-p", "no:cacheprovider", "--gpo-optimize", "--gpo-dry-run")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*would be rewritten (--gpo-dry-run: not written)*"])
    assert prompt_of(router_project) == before
    assert (router_project.path / ".gpo" / "report.md").is_file()


def test_file_edited_during_the_run_is_not_clobbered(router_project: pytest.Pytester) -> None:
    router_project.makeconftest(
        textwrap.dedent("""
        from pathlib import Path
        edited = []

        def pytest_gpo_filter_candidate(suite_name, current, candidate):
            if not edited:
                path = Path("prompts/router.txt")
                path.write_text(path.read_text() + "Edited by hand.\\n")
                edited.append(True)
            return None
    """)
    )
    result = router_project.runpytest("-p", "no:cacheprovider", "--gpo-optimize")
    result.stdout.fnmatch_lines(["*changed while the optimizer ran: not written*"])
    assert prompt_of(router_project).endswith("Edited by hand.\n")
    assert result.ret == 0


def test_call_cap_stops_cleanly_and_is_never_exceeded(router_project: pytest.Pytester) -> None:
    result = router_project.runpytest(
        "-p", "no:cacheprovider", "--gpo-optimize", "--gpo-max-calls", "250", "--gpo-cache", "off"
    )
    out = result.stdout.str()
    assert "INTERNALERROR" not in out and "Traceback" not in out
    opt = report_json(router_project)["sections"][0]["data"]["ticket_router"]
    assert opt["usage"]["calls"] <= 250 and opt["steps"]
    assert opt["stopped_reason"]


def test_k_selects_the_suites_to_optimize(router_project: pytest.Pytester) -> None:
    other = router_project.path / "suites" / "other.gpo.yaml"
    other.write_text(
        (router_project.path / "suites" / "ticket_router.gpo.yaml")
        .read_text()
        .replace("name: ticket_router", "name: other_router")
    )
    result = router_project.runpytest(
        "-p", "no:cacheprovider", "--gpo-optimize", "--gpo-dry-run", "-k", "other_router"
    )
    result.assert_outcomes(passed=1, deselected=1)
    data = report_json(router_project)["sections"][0]["data"]
    assert list(data) == ["other_router"]


LABELS = {"refund": "billing", "crash": "technical", "password": "account", "package": "shipping"}


def _http_model(body: dict[str, Any]) -> str:
    """Task model: bare label only when told to; optimizer: adds that instruction."""
    content = body["messages"][-1]["content"]
    if body["model"] == "optimizer":
        current = content.split("<current_prompt>\n", 1)[1].split("\n</current_prompt>", 1)[0]
        return f"<START>{current}\nAnswer with only the category name.<END>"
    label = next((v for k, v in LABELS.items() if k in content.lower()), "other")
    return label if "only the category" in content else f"I think it is {label}."


def test_optimize_through_the_real_http_path(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    with OpenAIServer(responder=_http_model) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        (pytester.path / "prompt.txt").write_text("Route this ticket.\n\nTicket: {{ ticket }}\n")
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
        result = pytester.runpytest("-p", "no:cacheprovider", "--gpo-optimize")
        assert result.ret == 1, result.stdout.str()
        text = (pytester.path / "prompt.txt").read_text()
        assert text.startswith("Route this ticket.\n\nTicket: {{ ticket }}\n")
        assert text.endswith("\nAnswer with only the category name.\n")
        optimizer_calls = [b for b in server.bodies if b.get("model") == "optimizer"]
        assert optimizer_calls and all(b.get("n", 1) <= 2 for b in optimizer_calls)
        assert optimizer_calls[0].get("temperature") == 1.0


def test_optimize_under_xdist_writes_on_the_controller(router_project: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    second = router_project.path / "suites" / "second.gpo.yaml"
    second.write_text(
        (router_project.path / "suites" / "ticket_router.gpo.yaml")
        .read_text()
        .replace("name: ticket_router", "name: second_router")
        .replace("../prompts/router.txt", "../prompts/router2.txt")
    )
    shutil.copy(
        router_project.path / "prompts" / "router.txt",
        router_project.path / "prompts" / "router2.txt",
    )
    before = prompt_of(router_project)
    result = router_project.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--gpo-optimize"
    )
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*2 prompt file(s) rewritten*"])
    assert prompt_of(router_project) != before
    rewritten = (router_project.path / "prompts" / "router2.txt").read_text()
    assert rewritten == prompt_of(router_project)  # same suite content, same seed: same result
    data = report_json(router_project)["sections"][0]["data"]
    assert sorted(data) == ["second_router", "ticket_router"]
