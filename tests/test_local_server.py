"""Against a server like llama.cpp's: runaway answers, ignored ``n``, timeouts that stack.

:class:`~llama_like_server.LlamaLikeServer` answers one request at a time, ignores ``n``, has no
output limit of its own and keeps generating after the client went away, like the real
llama-cpp-python server (``tests/test_llama_server.py`` checks the real one, opt-in). Suites
reach it the trusted way, ``OPENAI_BASE_URL`` in the environment.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llama_like_server import LlamaLikeServer

from pytest_gpo.llm import limits
from pytest_gpo.llm.client import LiteLLMClient
from pytest_gpo.llm.faults import Fault, classify
from pytest_gpo.llm.local import hold_timeout, loopback_host
from pytest_gpo.llm.loop import EventLoopRunner
from pytest_gpo.llm.pricing import ModelPrice
from pytest_gpo.llm.setup import import_litellm
from pytest_gpo.llm.types import Request

pytest_plugins = ["pytester"]

import_litellm()

CUT = "answer cut at max_tokens (finish_reason: length)"


def write_project(root: Path, params: str = "{temperature: 0}", cases: int = 3) -> None:
    (root / "say.txt").write_text("Say {{ word }}.\n", encoding="utf-8")
    lines = "".join(
        f"  - {{id: c{i}, vars: {{word: w{i}}}, expected: w{i}}}\n" for i in range(cases)
    )
    (root / "say.gpo.yaml").write_text(
        f"name: say\nprompt: say.txt\nthreshold: 0.5\nparams: {params}\n"
        f"scorers: [{{type: exact}}]\ncases:\n{lines}",
        encoding="utf-8",
    )


def word(body: dict[str, Any]) -> str:
    """The word the case asks for ("Say w1." -> "w1"), then whatever the server rambles on."""
    return str(body["messages"][-1]["content"]).split()[-1].rstrip(".")


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch) -> Iterator[LlamaLikeServer]:
    """A runaway llama-like server, reached through ``OPENAI_BASE_URL``."""
    with LlamaLikeServer(answer_tokens=None, tokens_per_second=4000, responder=word) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "dummy")
        yield server


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "--gpo-report", ".gpo/report.md", *args)


def case_reasons(root: Path) -> list[str]:
    report = json.loads((root / ".gpo" / "report.json").read_text("utf-8"))
    return [case["reason"] for suite in report["suites"] for case in suite["cases"]]


def test_a_runaway_answer_stops_at_the_default_limit_and_every_report_says_so(
    pytester: pytest.Pytester, local: LlamaLikeServer
) -> None:
    pytester.makeini("[pytest]\ngpo_model = openai/llama\ngpo_default_max_tokens = 40\n")
    write_project(pytester.path)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    # the server was asked for at most 40 tokens and generated no more
    assert [b.get("max_tokens") for b in local.bodies] == [40, 40, 40]
    assert local.generated_tokens == 120
    assert CUT in result.stdout.str()
    assert all(reason.startswith(CUT) for reason in case_reasons(pytester.path))
    markdown = (pytester.path / ".gpo" / "report.md").read_text("utf-8")
    assert CUT in markdown.replace("\\_", "_")  # markdown escapes underscores


def test_the_suite_max_tokens_wins_and_zero_sends_no_default(
    pytester: pytest.Pytester, local: LlamaLikeServer
) -> None:
    pytester.makeini("[pytest]\ngpo_model = openai/llama\n")
    write_project(pytester.path, params="{temperature: 0, max_tokens: 5}", cases=1)
    run(pytester, "--gpo-cache", "off")
    write_project(pytester.path, cases=1)
    run(pytester, "--gpo-cache", "off")
    local.answer_tokens = 3
    run(pytester, "--gpo-cache", "off", "--gpo-default-max-tokens", "0")
    assert [b.get("max_tokens") for b in local.bodies] == [5, limits.DEFAULT_MAX_TOKENS, None]


def test_a_cut_answer_is_replayed_only_under_the_limit_that_cut_it(
    pytester: pytest.Pytester, local: LlamaLikeServer
) -> None:
    pytester.makeini("[pytest]\ngpo_model = openai/llama\n")
    write_project(pytester.path, cases=2)
    run(pytester, "--gpo-default-max-tokens", "30")
    assert local.chat_requests == 2
    again = run(pytester, "--gpo-default-max-tokens", "30")
    assert local.chat_requests == 2, "same limit: served from the cache"
    assert CUT in again.stdout.str()
    run(pytester, "--gpo-default-max-tokens", "50")
    assert local.chat_requests == 4, "another limit would cut elsewhere: asked again"
    replay = run(pytester, "--gpo-cache", "replay", "--gpo-default-max-tokens", "60")
    replay.assert_outcomes(errors=1)
    assert "cache_miss" in json.dumps(json.loads((pytester.path / ".gpo/report.json").read_text()))


def test_an_answer_that_ended_on_its_own_is_replayed_under_any_limit(
    pytester: pytest.Pytester, local: LlamaLikeServer
) -> None:
    local.answer_tokens = 1
    pytester.makeini("[pytest]\ngpo_model = openai/llama\n")
    write_project(pytester.path, cases=2)
    run(pytester).assert_outcomes(passed=1)
    for limit in ("30", "0", "5000"):
        replay = run(pytester, "--gpo-cache", "replay", "--gpo-default-max-tokens", limit)
        replay.assert_outcomes(passed=1)
    assert local.chat_requests == 2


def test_a_timeout_against_a_local_server_is_not_retried(
    pytester: pytest.Pytester, local: LlamaLikeServer
) -> None:
    local.tokens_per_second = 100  # 600 tokens: 6 s, twice the timeout
    pytester.makeini(
        "[pytest]\ngpo_model = openai/llama\ngpo_default_max_tokens = 600\ngpo_timeout = 3\n"
    )
    write_project(pytester.path, cases=1)
    result = run(pytester)
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert f"not retried: the local server at 127.0.0.1:{local.port}" in out
    assert local.chat_requests == 1, "a retry would have queued behind the abandoned answer"
    # the server finished the answer nobody waited for: what a retry would have stacked on
    assert local.wait_idle(15)
    assert local.abandoned == 1


def test_a_server_that_ignores_n_is_asked_again_for_the_missing_choices() -> None:
    with LlamaLikeServer(answer_tokens=2) as server, EventLoopRunner() as runner:
        client = LiteLLMClient(timeout=10, default_max_tokens=64)
        runner.client = client
        request = Request(
            model="openai/llama",
            messages=({"role": "user", "content": "candidates please"},),
            params={"api_base": server.base_url, "api_key": "dummy"},
            n=3,
            purpose="optimizer",
        )
        got = runner.run(client.complete(request))
    assert got.ok and len(got.texts) == 3
    assert got.attempts == 3
    assert [b.get("n") for b in server.bodies] == [3, 2, None]
    assert server.peak_generating == 1


@pytest.mark.parametrize(
    ("kwargs", "env", "host"),
    [
        ({"model": "openai/x", "api_base": "http://127.0.0.1:8080/v1"}, {}, "127.0.0.1:8080"),
        ({"model": "openai/x", "api_base": "http://localhost:11434"}, {}, "localhost:11434"),
        ({"model": "openai/x", "base_url": "http://[::1]:8000/v1"}, {}, "[::1]:8000"),
        ({"model": "openai/x"}, {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}, "127.0.0.1:9"),
        ({"model": "ollama/llama3.1"}, {}, "localhost:11434"),
        ({"model": "ollama/llama3.1"}, {"OLLAMA_API_BASE": "http://gpu-box:11434"}, None),
        ({"model": "openai/gpt-4o-mini"}, {}, None),
        ({"model": "openai/x", "api_base": "https://api.example.com/v1"}, {}, None),
        ({"model": "openai/x", "api_base": "http://10.0.0.5:8000/v1"}, {}, None),
        ({"model": "gpo-sim/task"}, {}, None),
    ],
)
def test_which_servers_are_local(kwargs: dict[str, str], env: dict[str, str], host: str) -> None:
    assert loopback_host(kwargs, env) == host


def held(exc: BaseException, kwargs: dict[str, Any]) -> Fault:
    fault = classify(import_litellm(), exc, kwargs)
    hold_timeout(fault, kwargs)
    return fault


def test_only_a_timeout_against_a_local_server_is_held(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    remote = held(TimeoutError(), {"model": "openai/x", "timeout": 5})
    assert remote.retryable and remote.may_be_billed
    on_loopback = {"model": "openai/x", "timeout": 5, "api_base": "http://127.0.0.1:1"}
    local = held(TimeoutError(), on_loopback)
    assert not local.retryable and "not retried" in local.message
    # a refused connection to a local server (not yet started) is still worth another attempt
    assert held(ConnectionRefusedError(), on_loopback).retryable
    assert held(OSError("reset"), on_loopback).retryable


def test_retry_local_timeouts_restores_the_retries(
    pytester: pytest.Pytester, local: LlamaLikeServer
) -> None:
    local.tokens_per_second = 200  # 400 tokens: 2 s, twice the timeout
    pytester.makeini(
        "[pytest]\ngpo_model = openai/llama\ngpo_default_max_tokens = 400\ngpo_timeout = 1\n"
        "gpo_max_attempts = 2\n"
    )
    write_project(pytester.path, cases=1)
    run(pytester, "--gpo-retry-local-timeouts").assert_outcomes(errors=1)
    # the retry queued behind the abandoned answer: two generations of work for one case
    assert local.chat_requests == 2
    assert local.wait_idle(15)
    assert local.abandoned == 2


def test_the_cost_estimate_holds_the_default_limit() -> None:
    price = {"openai/llama": ModelPrice(0.0, 1_000_000.0)}  # $1 per output token
    client = LiteLLMClient(prices=price, default_max_tokens=40)
    request = Request("openai/llama", ({"role": "user", "content": "hi"},))
    kwargs = client._kwargs(request)
    assert kwargs["max_tokens"] == 40
    estimate = client.costs.estimate(import_litellm(), request, kwargs, None)
    assert estimate is not None and 40.0 <= estimate < 41.0
    own = Request("openai/llama", ({"role": "user", "content": "hi"},), {"max_tokens": 7})
    assert client._kwargs(own)["max_tokens"] == 7
