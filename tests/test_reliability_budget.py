"""Reliability, budgets: ``--gpo-max-calls`` and ``--gpo-max-cost`` are never exceeded.

Randomized runs (cases, repeats, concurrency, attempts, injected 429/500/hang faults, caps)
count the requests at the server: never more than the cap, also with many calls and retries in
flight. A run cut short by a cap errors with kind ``budget``; it is never scored as a failure.
The cost cap is checked on a priced model (``openai/gpt-4o-mini`` served by the local server):
what the server billed never exceeds it. See docs/reliability.md.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from openai_server import OpenAIServer

from pytest_gpo.evaluate import EvalOptions, evaluate
from pytest_gpo.llm.client import LiteLLMClient
from pytest_gpo.llm.loop import EventLoopRunner
from pytest_gpo.llm.setup import import_litellm
from pytest_gpo.results import SuiteRun
from pytest_gpo.scorers.registry import builtin_registry
from pytest_gpo.suites.load import load_suite
from pytest_gpo.suites.model import Suite


@pytest.fixture(autouse=True)
def _trust_api_base(monkeypatch: pytest.MonkeyPatch) -> None:
    """These suites reach the local test server through ``params.api_base``: the user trusts
    that key here, as a project would in its ini (docs/reliability.md#trust-model)."""
    monkeypatch.setenv("GPO_TRUSTED_PARAMS", "api_base")


pytest_plugins = ["pytester"]

# In-process pytester runs restore sys.modules afterwards: litellm imported inside one would be
# half-forgotten, and the next run's HTTP calls fail ("Connection error"). Importing it while
# collecting, before any run, keeps one copy for the whole test session.
import_litellm()


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-budget")


def last_word(body: dict[str, Any]) -> str:
    return str(body["messages"][-1]["content"]).split()[-1]


def make_suite(root: Path, n: int, api_base: str, params: str = "") -> Suite:
    root.mkdir(parents=True, exist_ok=True)
    (root / "p.txt").write_text("Say {{ word }}\n", encoding="utf-8")
    (root / "cases.jsonl").write_text(
        "".join(
            json.dumps({"id": f"c{i}", "vars": {"word": f"w{i}"}, "expected": f"w{i}"}) + "\n"
            for i in range(n)
        ),
        encoding="utf-8",
    )
    (root / "s.gpo.yaml").write_text(
        f"name: s_{root.name}\nprompt: p.txt\ncases: cases.jsonl\nthreshold: 0\n"
        f"params: {{api_base: '{api_base}'{params}}}\n",
        encoding="utf-8",
    )
    return load_suite(root / "s.gpo.yaml", builtin_registry(), trusted_params=("api_base",))


def run_capped(
    suite: Suite, model: str, repeat: int, **client_options: Any
) -> tuple[SuiteRun, LiteLLMClient]:
    client = LiteLLMClient(
        backoff_base=0.01, backoff_max=0.05, seed=0, cache_mode="off", **client_options
    )
    with EventLoopRunner(client) as runner:
        run = runner.run(evaluate(suite, client, EvalOptions(model=model, repeat=repeat)))
    return run, client


def test_randomized_call_caps_are_never_exceeded(tmp_path: Path) -> None:
    rng = random.Random(1234)
    bound = 0
    for trial in range(20):
        n, repeat = rng.randint(3, 30), rng.randint(1, 3)
        cap = rng.randint(0, n * repeat + 10)
        faults = {
            "429": rng.uniform(0, 0.3),
            "500": rng.uniform(0, 0.2),
            "hang": rng.choice([0.0, 0.03]),
        }
        with OpenAIServer(
            responder=last_word, fault_rates=faults, retry_after=0.01, hang_seconds=2, seed=trial
        ) as server:
            suite = make_suite(tmp_path / f"t{trial}", n, server.base_url)
            run, client = run_capped(
                suite,
                "openai/echo",
                repeat,
                max_calls=cap,
                concurrency=rng.randint(1, 32),
                max_attempts=rng.randint(1, 5),
                timeout=0.3,
            )
            assert server.chat_requests <= cap, (trial, server.chat_requests, cap)
            assert client.calls_made <= cap
            assert client.calls_made >= server.chat_requests
        if client.budget_exhausted:
            bound += 1
            assert run.errors and run.error_kind == "budget", trial
            budget_errors = [e for e in run.errors if "budget exhausted" in e]
            assert budget_errors and "--gpo-max-calls" in budget_errors[0]
        else:
            assert n * repeat <= cap, trial
    assert bound >= 5  # most trials were really capped


def gpt4o_mini_cost(prompt_tokens: int, completion_tokens: int) -> float:
    litellm = import_litellm()
    info = litellm.get_model_info("gpt-4o-mini")
    return float(
        prompt_tokens * info["input_cost_per_token"]
        + completion_tokens * info["output_cost_per_token"]
    )


def test_randomized_cost_caps_are_never_exceeded(tmp_path: Path) -> None:
    """A priced model: the cap holds on what the server billed (its reported usage)."""
    rng = random.Random(99)
    billed_runs = 0
    for trial in range(6):
        n = rng.randint(10, 40)
        cap = rng.uniform(0.2, 0.8) * n * 1e-6  # an answer costs about $0.9e-6: the cap binds
        with OpenAIServer(
            responder=last_word, fault_rates={"429": 0.2, "500": 0.1}, retry_after=0.01, seed=trial
        ) as server:
            suite = make_suite(tmp_path / f"c{trial}", n, server.base_url, ", max_tokens: 2")
            run, client = run_capped(
                suite,
                "openai/gpt-4o-mini",
                1,
                max_cost=cap,
                concurrency=rng.randint(1, 16),
                max_attempts=4,
                timeout=5,
            )
            billed = 0.0
            for body, fault in zip(server.bodies, server.faults_served, strict=True):
                if fault != "ok":
                    continue
                prompt = max(1, sum(len(str(m["content"]).split()) for m in body["messages"]))
                billed += gpt4o_mini_cost(prompt, len(last_word(body).split()))
        assert billed <= cap, (trial, billed, cap)
        assert client.cost_spent <= cap + 1e-12
        assert "openai/gpt-4o-mini" not in client.unpriced_models
        if client.budget_exhausted:
            billed_runs += 1
            assert run.error_kind == "budget" and "--gpo-max-cost" in run.errors[0]
    assert billed_runs >= 3


def test_call_cap_through_pytest_with_concurrency_and_retries(
    pytester: pytest.Pytester,
) -> None:
    with OpenAIServer(
        responder=last_word,
        fault_rates={"429": 0.25, "500": 0.15},
        retry_after=0.01,
        latency=0.01,
        seed=5,
    ) as server:
        pytester.makeini("[pytest]\ngpo_model = openai/echo\ngpo_timeout = 5\n")
        for name in ("a", "b", "c"):
            make_suite(pytester.path / name, 20, server.base_url)
            prompt = pytester.path / name / "p.txt"  # distinct requests: no shared answers
            prompt.write_text(f"{name}: " + prompt.read_text(encoding="utf-8"), encoding="utf-8")
        result = pytester.runpytest(
            "-p",
            "no:cacheprovider",
            "--gpo-max-calls",
            "37",
            "--gpo-concurrency",
            "16",
            "--gpo-update-baseline",
            "--gpo-report",
            ".gpo/report.md",
        )
        assert server.chat_requests <= 37
        assert server.chat_requests >= 30  # the budget was used, not refused up front
    out = result.stdout.str()
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors", 0) >= 2 and outcomes.get("failed", 0) == 0, outcomes
    assert "model-call budget (--gpo-max-calls / --gpo-max-cost) ran out" in out
    assert "INTERNALERROR" not in out and "Traceback" not in out
    report = json.loads((pytester.path / ".gpo" / "report.json").read_text(encoding="utf-8"))
    statuses = [s["status"] for s in report["suites"]]
    assert statuses.count("error") >= 2 and "below_threshold" not in statuses
    baseline = pytester.path / ".gpo" / "baseline.json"
    recorded = json.loads(baseline.read_text("utf-8"))["suites"] if baseline.exists() else {}
    assert len(recorded) + statuses.count("error") == 3  # a capped suite is never recorded


def test_cost_cap_outcome_does_not_depend_on_concurrency(tmp_path: Path) -> None:
    """BUG (pytest_gpo/client.py, not fixed here): a cost cap refuses calls it could afford.

    A call is refused as soon as ``spent + reserved + estimate`` exceeds the cap, where
    ``reserved`` holds the (pessimistic, ``max_tokens``-based) estimates of the calls in flight.
    It is not retried once those calls settle at their much smaller real cost, so the same
    suite under the same ``--gpo-max-cost`` completes with ``--gpo-concurrency 1`` and errors
    with a higher concurrency, with most of the budget unspent. Suggested fix: when the cap
    would be exceeded only because of reservations in flight, wait for them to settle and
    check again; refuse only when ``spent + estimate`` alone exceeds the cap.
    """
    outcomes = {}
    for concurrency in (1, 16):
        with OpenAIServer(responder=last_word) as server:
            suite = make_suite(
                tmp_path / f"k{concurrency}", 20, server.base_url, ", max_tokens: 20"
            )
            # 20 answers cost ~$18e-6 in all; one call's estimate is ~$14e-6
            run, client = run_capped(
                suite, "openai/gpt-4o-mini", 1, max_cost=6e-5, concurrency=concurrency, timeout=5
            )
        outcomes[concurrency] = (run.errors == [], client.cost_spent)
    assert outcomes[1][0], outcomes  # sequentially, the whole suite fits the cap
    assert outcomes[16][0], outcomes


def test_a_cost_cap_never_waits_on_a_float_residue() -> None:
    """Reservations added and released leave float residues (2.8e-17): a refused call must not
    wait for an in-flight call that does not exist (a run once hung here forever)."""
    import asyncio

    from pytest_gpo.llm.budget import Budget

    async def go() -> object:
        budget = Budget(max_calls=None, max_cost=0.5)
        held = [await budget.reserve("m", lambda e=e: e) for e in (0.1, 0.07, 0.13)]
        for reservation in held:  # three in flight, settled: the float sum keeps 2.8e-17
            assert not isinstance(reservation, str)
            budget.settle(reservation, 0.1, charge_estimate=False)
        return await asyncio.wait_for(budget.reserve("m", lambda: 0.3), timeout=5)

    outcome = asyncio.run(go())
    assert isinstance(outcome, str) and "cost budget exhausted" in outcome
