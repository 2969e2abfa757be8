"""Credentials fail fast: a missing key, a 401 or a 403 is never retried, and says what to check.

Against the local server (which counts requests and can accept only some keys), through the
real litellm path: at most one request per case, one message per suite naming the environment
variable, the suite's ``api_key`` or the Router settings to check, and the suite errors (E)
with kind ``credentials``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai_server import OpenAIServer

from pytest_gpo.llm import credentials
from pytest_gpo.llm.cache import FileCache
from pytest_gpo.llm.client import LiteLLMClient
from pytest_gpo.llm.faults import classify
from pytest_gpo.llm.loop import EventLoopRunner
from pytest_gpo.llm.setup import import_litellm
from pytest_gpo.llm.types import ErrorKind, Request


@pytest.fixture(autouse=True)
def _trust_api_base(monkeypatch: pytest.MonkeyPatch) -> None:
    """These suites reach the local test server through ``params.api_base``: the user trusts
    that key here, as a project would in its ini (docs/reliability.md#trust-model)."""
    monkeypatch.setenv("GPO_TRUSTED_PARAMS", "api_base")


pytest_plugins = ["pytester"]

litellm = import_litellm()

GOOD = "sk-good-credentials-1"
WRONG = "sk-wrong-credentials-2"
CASES = 26


@pytest.fixture
def runner() -> Iterator[EventLoopRunner]:
    with EventLoopRunner() as loop_runner:
        yield loop_runner


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_ADMIN_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def client_for(runner: EventLoopRunner, tmp_path: Path, **options: object) -> LiteLLMClient:
    client = LiteLLMClient(
        cache=FileCache(tmp_path / "cache"),
        backoff_base=0.001,
        backoff_max=0.002,
        timeout=5,
        seed=0,
        **options,  # type: ignore[arg-type]
    )
    runner.client = client
    return client


def requests_for(server: OpenAIServer, key: str | None, n: int = CASES) -> list[Request]:
    params = {"api_base": server.base_url, **({"api_key": key} if key else {})}
    return [
        Request(
            model="openai/echo",
            messages=({"role": "user", "content": f"case {i}"},),
            params=params,
        )
        for i in range(n)
    ]


def complete_all(runner: EventLoopRunner, client: LiteLLMClient, reqs: list[Request]) -> list:
    import asyncio

    async def go() -> list:
        return list(await asyncio.gather(*(client.complete(r) for r in reqs)))

    return runner.run(go())


def test_a_missing_key_is_not_retried_and_names_the_variable(
    runner: EventLoopRunner, tmp_path: Path, no_key: None
) -> None:
    with OpenAIServer() as server:
        client = client_for(runner, tmp_path)
        started = time.monotonic()
        got = complete_all(runner, client, requests_for(server, None))
        elapsed = time.monotonic() - started
        assert server.chat_requests == 0  # the SDK refuses to send without a key
    assert all(not c.ok and c.error_kind == ErrorKind.CREDENTIALS for c in got)
    # nothing left the process, so no call is counted, and none is retried
    assert client.usage.calls == 0 and client.usage.retries == 0
    assert client.budget.calls_made == 0
    assert all(c.attempts == 0 for c in got)
    message = got[0].error or ""
    assert "no API key was found for model 'openai/echo'" in message
    assert "check the environment variable OPENAI_API_KEY (not set)" in message
    assert len({c.error for c in got}) == 1  # one message, whichever case shows it
    assert elapsed < 5
    assert not list((tmp_path / "cache").rglob("*.json"))


@pytest.mark.parametrize("status", ["401", "403"])
def test_a_refused_key_is_one_request_at_most_per_case_and_names_the_variable(
    runner: EventLoopRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: str
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", WRONG)
    with OpenAIServer(fault_rates={status: 1.0}) as server:
        client = client_for(runner, tmp_path, concurrency=4)
        got = complete_all(runner, client, requests_for(server, None))
        assert 1 <= server.chat_requests <= 4  # the ones in flight before the first refusal
        assert server.chat_requests == client.usage.calls
    assert all(c.error_kind == ErrorKind.CREDENTIALS for c in got)
    assert client.usage.retries == 0 and all(c.attempts <= 1 for c in got)
    message = got[0].error or ""
    assert "the provider refused the credentials for model 'openai/echo'" in message
    assert "OPENAI_API_KEY (set)" in message and WRONG not in message


def test_a_refused_suite_key_names_the_suite_params(
    runner: EventLoopRunner, tmp_path: Path
) -> None:
    with OpenAIServer(api_keys=[GOOD]) as server:
        client = client_for(runner, tmp_path, concurrency=1)
        bad = complete_all(runner, client, requests_for(server, WRONG, n=5))
        assert server.chat_requests == 1
        assert all("check the api_key in the suite's params" in (c.error or "") for c in bad)
        # another key (or endpoint) is another identity: it is still tried, and works
        good = complete_all(runner, client, requests_for(server, GOOD, n=3))
        assert all(c.ok for c in good) and server.chat_requests == 4


def test_a_refused_router_key_names_the_router_settings(
    runner: EventLoopRunner, tmp_path: Path
) -> None:
    with OpenAIServer(api_keys=[GOOD]) as server:
        settings = tmp_path / "router.yaml"
        settings.write_text(
            "model_list:\n"
            "  - model_name: team-model\n"
            "    litellm_params:\n"
            f"      model: openai/echo\n      api_base: {server.base_url}\n"
            f"      api_key: {WRONG}\n",
            encoding="utf-8",
        )
        client = client_for(runner, tmp_path, router_config=settings, concurrency=1)
        request = Request(model="team-model", messages=({"role": "user", "content": "hi"},))
        got = complete_all(runner, client, [request, request])
        assert server.chat_requests == 1
    assert got[0].error_kind == ErrorKind.CREDENTIALS
    assert f"in the Router settings ({settings})" in (got[0].error or "")
    assert WRONG not in (got[0].error or "")


def test_key_variables_per_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GROQ_API_KEY", "WEIRDCO_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert credentials.key_variables(litellm, "openai/anything") == ["OPENAI_API_KEY"]
    assert credentials.key_variables(litellm, "gpt-4o-mini") == ["OPENAI_API_KEY"]
    assert credentials.key_variables(litellm, "anthropic/claude-3-haiku-20240307") == [
        "ANTHROPIC_API_KEY"
    ]
    monkeypatch.setenv("GROQ_API_KEY", "set-but-refused")
    # a key that is set is not "missing": the provider's own variable is still named
    assert credentials.key_variables(litellm, "groq/llama3") == ["GROQ_API_KEY"]
    assert credentials.key_variables(litellm, "weirdco/model") == ["WEIRDCO_API_KEY"]


def test_missing_key_messages_of_every_release_are_credentials() -> None:
    class InternalServerError(Exception):
        status_code = 500

    for text in (
        "Missing credentials. Please pass an `api_key`, or set the `OPENAI_API_KEY` variable.",
        "The api_key client option must be set either by passing api_key to the client or by "
        "setting the OPENAI_API_KEY environment variable",
        "Missing Anthropic API Key - A call is being made to anthropic but no key is set",
    ):
        fault = classify(litellm, InternalServerError(text), {})
        assert fault.credentials and fault.missing_key and not fault.retryable, text
        assert fault.not_sent, text  # refused before sending: not counted as a call

    class AuthenticationError(Exception):
        status_code = 401

    answered = classify(litellm, AuthenticationError("Missing API key in the request"), {})
    assert answered.missing_key and not answered.not_sent  # the server answered: a real call
    fault = classify(litellm, InternalServerError("The server had an error"), {})
    assert fault.retryable and not fault.credentials


# -- end to end ---------------------------------------------------------------------------


def write_project(root: Path, api_base: str, n: int = CASES) -> None:
    (root / "say.txt").write_text("Repeat: {{ word }}\n", encoding="utf-8")
    cases = "\n".join(f"  - {{id: c{i}, vars: {{word: w{i}}}, expected: w{i}}}" for i in range(n))
    (root / "say.gpo.yaml").write_text(
        f"name: say\nprompt: say.txt\nparams: {{api_base: '{api_base}'}}\ncases:\n{cases}\n",
        encoding="utf-8",
    )


def test_a_missing_key_errors_the_suite_at_once_with_one_message(
    pytester: pytest.Pytester, no_key: None
) -> None:
    pytester.makeini("[pytest]\ngpo_model = openai/echo\n")
    with OpenAIServer() as server:
        write_project(pytester.path, server.base_url)
        started = time.monotonic()
        result = pytester.runpytest("-p", "no:cacheprovider", "--gpo-update-baseline")
        elapsed = time.monotonic() - started
        assert server.chat_requests == 0
        shown = pytester.runpytest(
            "-p", "no:cacheprovider", "--gpo-show-all", "--gpo-report", "out/r.md"
        )
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert ErrorKind.CREDENTIALS.text in out and "failed after every retry" not in out
    assert out.count("check the environment variable OPENAI_API_KEY (not set)") == 1
    assert "the same error as case 'c0'" in out
    assert "Traceback" not in out and "INTERNALERROR" not in out
    assert elapsed < 10  # today: 156 attempts and 18 s
    assert "model calls: 0," in out  # the server received none
    # a case no call could answer has no score: an error, never a 0.000 failure
    assert "  c0: error, score -" in shown.stdout.str()
    data = json.loads((pytester.path / "out" / "r.json").read_text(encoding="utf-8"))
    cases = data["suites"][0]["cases"]
    assert cases and all(c["score"] is None and c["error"] for c in cases)
    assert not (pytester.path / ".gpo" / "baseline.json").exists()


def test_a_refused_key_errors_the_suite_with_one_request_per_case_at_most(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", WRONG)
    pytester.makeini("[pytest]\ngpo_model = openai/echo\n")
    with OpenAIServer(api_keys=[GOOD]) as server:
        write_project(pytester.path, server.base_url)
        result = pytester.runpytest("-p", "no:cacheprovider")
        assert 1 <= server.chat_requests <= 8  # default concurrency: those already in flight
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert out.count("OPENAI_API_KEY (set)") == 1
    assert "Incorrect API key provided" in out and WRONG not in out
