"""One pytester test per command-line option and ini key not covered in test_plugin.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openai_server import OpenAIServer
from test_plugin import CHATTY_PROMPT, write_suite


@pytest.fixture(autouse=True)
def _trust_api_base(monkeypatch: pytest.MonkeyPatch) -> None:
    """These suites reach the local test server through ``params.api_base``: the user trusts
    that key here, as a project would in its ini (docs/reliability.md#trust-model)."""
    monkeypatch.setenv("GPO_TRUSTED_PARAMS", "api_base")


pytest_plugins = ["pytester"]


@pytest.fixture
def sim_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(
        "[pytest]\ngpo_model = gpo-sim/task\ngpo_optimizer_model = gpo-sim/optimizer\n"
    )
    return pytester


def report(pytester: pytest.Pytester, name: str = "report") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((pytester.path / ".gpo" / f"{name}.json").read_text())
    return data


def cache_files(pytester: pytest.Pytester) -> list[Path]:
    return [p for p in (pytester.path / ".gpo" / "cache").rglob("*.json") if p.is_file()]


def test_repeat_runs_each_case_n_times_with_distinct_cache_entries(
    sim_project: pytest.Pytester,
) -> None:
    write_suite(sim_project, extra="params: {temperature: 1.0}\n")
    result = sim_project.runpytest(
        "-p", "no:cacheprovider", "--gpo-repeat", "3", "--gpo-report", ".gpo/report.md"
    )
    result.stdout.fnmatch_lines(["*router*4 x3*"])
    assert len(cache_files(sim_project)) == 12
    cases = report(sim_project)["suites"][0]["cases"]
    assert all(c["runs"] == 3 for c in cases)
    again = sim_project.runpytest("-p", "no:cacheprovider", "--gpo-repeat", "3")
    again.stdout.fnmatch_lines(["model calls: 0, cache hits: 12*"])


def test_concurrency_caps_calls_in_flight(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    with OpenAIServer(latency=0.05) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        pytester.makeini("[pytest]\ngpo_model = openai/m\n")
        cases = [(f"c{i}", f"ticket {i}", "x") for i in range(12)]
        write_suite(
            pytester,
            cases=cases,
            threshold=0.0,
            extra=f"params: {{api_base: '{server.base_url}'}}\n",
        )
        pytester.runpytest("-p", "no:cacheprovider", "--gpo-concurrency", "3")
        assert server.chat_requests == 12
        assert 1 < server.peak_concurrency <= 3


def test_judge_model_option(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    def responder(body: dict[str, Any]) -> str:
        if body["model"] == "judge":
            return json.dumps({"score": 9, "reason": "routes correctly"})
        return "billing"

    with OpenAIServer(responder=responder) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        pytester.makeini("[pytest]\ngpo_model = openai/task\n")
        write_suite(pytester, threshold=0.8)
        suite = pytester.path / "router.gpo.yaml"
        suite.write_text(
            suite.read_text().replace(
                "[{type: exact, ignore_case: true}]", "[{type: judge, rubric: 'Is it routed?'}]"
            )
        )
        result = pytester.runpytest("-p", "no:cacheprovider", "--gpo-judge-model", "openai/judge")
        result.assert_outcomes(passed=1)
        judged = [b for b in server.bodies if b["model"] == "judge"]
        assert len(judged) == 4 and judged[0]["temperature"] == 0
        # judge calls are counted with the suite's model use
        result.stdout.fnmatch_lines(["model calls: 8,*"])


def test_baseline_ini_key_moves_the_file(sim_project: pytest.Pytester) -> None:
    sim_project.makeini("[pytest]\ngpo_model = gpo-sim/task\ngpo_baseline = gates/base.json\n")
    write_suite(sim_project)
    sim_project.runpytest("-p", "no:cacheprovider", "--gpo-update-baseline")
    assert (sim_project.path / "gates" / "base.json").is_file()
    assert not (sim_project.path / ".gpo" / "baseline.json").exists()


def test_cache_dir_ini_key(sim_project: pytest.Pytester, tmp_path: Path) -> None:
    sim_project.makeini(f"[pytest]\ngpo_model = gpo-sim/task\ngpo_cache_dir = {tmp_path}/c\n")
    write_suite(sim_project)
    sim_project.runpytest("-p", "no:cacheprovider")
    assert len(list((tmp_path / "c").rglob("*.json"))) == 4


def _optimize_data(pytester: pytest.Pytester) -> dict[str, Any]:
    data: dict[str, Any] = report(pytester)["sections"][0]["data"]["router"]
    return data


def _optimizable(pytester: pytest.Pytester) -> None:
    cases = [
        (f"c{i}", t, e)
        for i, (t, e) in enumerate(
            [
                ("I was charged twice on my invoice", "billing"),
                ("The app crashes on start", "technical"),
                ("I can't reset my password", "account"),
                ("My package never arrived", "shipping"),
            ]
            * 3
        )
    ]
    write_suite(pytester, prompt=CHATTY_PROMPT, cases=cases, threshold=0.0)


@pytest.mark.parametrize(
    ("args", "check"),
    [
        (
            ["--gpo-steps", "2", "--gpo-candidates", "3"],
            lambda d: d["total_steps"] == 2 and d["config"]["candidates"] == 3,
        ),
        (
            ["--gpo-preset", "ape", "--gpo-steps", "1"],
            lambda d: d["config"]["preset"] == "ape" and d["config"]["retrieval"] == "none",
        ),
        (
            ["--gpo-preset", "pe2", "--gpo-steps", "1"],
            lambda d: d["reflection_requests"] == 1 and d["config"]["schedule"] == "fixed",
        ),
        (["--gpo-seed", "7", "--gpo-steps", "1"], lambda d: d["seed"] == 7),
    ],
    ids=["steps-candidates", "preset-ape", "preset-pe2", "seed"],
)
def test_optimize_options(sim_project: pytest.Pytester, args: list[str], check: Any) -> None:
    _optimizable(sim_project)
    sim_project.runpytest("-p", "no:cacheprovider", "--gpo-optimize", "--gpo-dry-run", *args)
    assert check(_optimize_data(sim_project))


def test_seed_changes_the_splits(sim_project: pytest.Pytester) -> None:
    _optimizable(sim_project)
    splits = []
    for seed in ("1", "2"):
        sim_project.runpytest(
            "-p",
            "no:cacheprovider",
            "--gpo-optimize",
            "--gpo-dry-run",
            "--gpo-steps",
            "1",
            "--gpo-seed",
            seed,
        )
        data = _optimize_data(sim_project)
        splits.append(sorted(c["case_id"] for c in data["test_before"]))
    assert splits[0] != splits[1]


def test_max_cost_cap_makes_the_suite_error_not_fail(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    with OpenAIServer(responder=lambda body: "billing") as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        # a priced model name (litellm knows gpt-4o-mini's price) served by the local server
        pytester.makeini("[pytest]\ngpo_model = openai/gpt-4o-mini\n")
        write_suite(pytester, extra=f"params: {{api_base: '{server.base_url}', max_tokens: 5}}\n")
        result = pytester.runpytest(
            "-p", "no:cacheprovider", "--gpo-max-cost", "0.0000001", "--gpo-concurrency", "1"
        )
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*budget*"])
        assert server.chat_requests == 0


def test_timeout_option_is_applied(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    with OpenAIServer(fault_rates={"hang": 1.0}, hang_seconds=30) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        # the test server on 127.0.0.1 stands in for a remote provider: retry its timeouts
        pytester.makeini("[pytest]\ngpo_model = openai/m\ngpo_retry_local_timeouts = true\n")
        write_suite(
            pytester, cases=[("c1", "x", "y")], extra=f"params: {{api_base: '{server.base_url}'}}\n"
        )
        result = pytester.runpytest(
            "-p", "no:cacheprovider", "--gpo-timeout", "0.3", "--gpo-max-attempts", "2"
        )
        result.assert_outcomes(errors=1)
        assert server.chat_requests == 2
        # without the option each attempt would wait the default 60 s
        assert result.duration < 15


def test_help_lists_every_option(pytester: pytest.Pytester) -> None:
    from pytest_gpo.settings import OPTIONS

    result = pytester.runpytest("--help")
    text = result.stdout.str()
    missing = [o.flag for o in OPTIONS if o.flag and o.flag not in text]
    missing += [o.ini for o in OPTIONS if o.ini and o.ini not in text]
    assert not missing


def test_unknown_optimize_key_is_a_load_error(sim_project: pytest.Pytester) -> None:
    write_suite(sim_project, extra="optimize: {stepz: 3}\n")
    result = sim_project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*key 'optimize.stepz': unknown optimize setting*", "*fix: did you mean 'steps'?*"]
    )


def test_cost_cap_on_an_unpriced_model_is_reported(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    with OpenAIServer(responder=lambda body: "billing") as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        pytester.makeini("[pytest]\ngpo_model = openai/no-price-known\n")
        write_suite(pytester, threshold=0.0, extra=f"params: {{api_base: '{server.base_url}'}}\n")
        result = pytester.runpytest("-p", "no:cacheprovider", "--gpo-max-cost", "1")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(
            [
                "WARNING: --gpo-max-cost could not be checked for model(s) "
                "without a known price: openai/no-price-known"
            ]
        )


def test_unreachable_shared_cache_is_reported_not_fatal(sim_project: pytest.Pytester) -> None:
    pytest.importorskip("redis")
    # nothing listens on port 1 of the loopback: every cache read and write fails
    sim_project.makeini(
        "[pytest]\ngpo_model = gpo-sim/task\ngpo_cache_url = redis://127.0.0.1:1/0\n"
    )
    write_suite(sim_project)
    result = sim_project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    # three refused connections trip the circuit breaker: one warning, no cache after that
    result.stdout.fnmatch_lines(
        [
            "WARNING: the Redis response cache redis://127.0.0.1:1/0 failed 3 times within 60s "
            "*; the rest of the run used no cache*"
        ]
    )


@pytest.mark.parametrize("value", ["max_tokens=0", "max_tokens=-5", "n=3", "temperature=9"])
def test_a_bad_optimizer_params_value_is_a_usage_error_naming_its_source(value: str) -> None:
    """Never blamed on a suite file: the flag, variable or ini key that set it is named."""
    from pytest_gpo.errors import ConfigError
    from pytest_gpo.settings import resolve

    with pytest.raises(ConfigError) as err:
        resolve(rootdir=Path("."), cli={"optimizer_params": value}, ini=lambda k: None)
    assert "--gpo-optimizer-params" in err.value.render()
    with pytest.raises(ConfigError) as err:
        resolve(
            rootdir=Path("."),
            cli={},
            ini=lambda k: value if k == "gpo_optimizer_params" else None,
            ini_source="pytest.ini",
        )
    assert "pytest.ini key gpo_optimizer_params" in err.value.render()


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("suites/classify.gpo.yaml", True),
        ("classify.gpo.yaml", True),
        ("existing_dir", True),  # exists (a folder of suites given without a slash)
        ("tests/x.gpo.yaml::s", True),
        ("bogus", False),
    ],
)
def test_a_path_after_gpo_optimize_gets_a_hint(
    sim_project: pytest.Pytester, value: str, hint: bool
) -> None:
    """``pytest --gpo-optimize suites/x.gpo.yaml``: argparse takes the path as the option's
    value; the usage error says how to write it."""
    (sim_project.path / "existing_dir").mkdir()
    result = sim_project.runpytest("-p", "no:cacheprovider", "--gpo-optimize", value)
    err = result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"--gpo-optimize: bad value '{value}': must be one of auto, write" in err, err
    text = "(put paths before --gpo-optimize, or write --gpo-optimize=auto PATH)"
    assert (text in err) is hint, err
