"""The trust model: a suite file is data, so its ``params`` may shape an answer but never choose
where a request goes, which key it carries, what it costs or how long it may take, unless the
user allows a key in a trusted place (``gpo_trusted_params``, ``GPO_TRUSTED_PARAMS``,
``--gpo-trusted-params``). Timeouts are clamped to ``--gpo-timeout``; a ``Retry-After`` never
holds a call past its deadline. See docs/reliability.md#trust-model.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai_server import Fault, OpenAIServer

from pytest_gpo.errors import SuiteError
from pytest_gpo.llm.client import LiteLLMClient
from pytest_gpo.llm.loop import EventLoopRunner
from pytest_gpo.llm.setup import import_litellm
from pytest_gpo.llm.trust import SAFE_PARAMS, parse_trusted_params, untrusted_params
from pytest_gpo.llm.types import Request
from pytest_gpo.scorers.registry import builtin_registry
from pytest_gpo.suites.load import load_suite

pytest_plugins = ["pytester"]

# see test_reliability_budget.py: one litellm copy for the in-process pytester runs
import_litellm()

#: Keys that route, authenticate, price, fake the answer, lengthen a call or send data to a
#: third party: each refused in a suite file unless trusted.
ROUTING_KEYS = (
    "api_base",
    "base_url",
    "api_key",
    "api_version",
    "organization",
    "headers",
    "extra_headers",
    "extra_body",
    "mock_response",
    "mock_timeout",
    "custom_llm_provider",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_region_name",
    "aws_bedrock_runtime_endpoint",
    "vertex_project",
    "vertex_credentials",
    "azure_ad_token",
    "langfuse_host",
    "s3_endpoint_url",
    "metadata",
    "service_tier",
    "fallbacks",
    "model_list",
    "callbacks",
    "success_callback",
    "ssl_verify",
    "num_retries",
    "max_retries",
    "input_cost_per_token",
    "output_cost_per_token",
    "base_model",
)


def write_suite(root: Path, params: str, name: str = "s") -> Path:
    (root / "p.txt").write_text("Say {{ word }}\n", encoding="utf-8")
    path = root / f"{name}.gpo.yaml"
    path.write_text(
        f"name: {name}\nprompt: p.txt\nthreshold: 0\nparams: {params}\n"
        "cases:\n  - {id: c0, vars: {word: w0}, expected: w0}\n",
        encoding="utf-8",
    )
    return path


def test_every_routing_key_is_refused_naming_file_key_and_fix(tmp_path: Path) -> None:
    for key in ROUTING_KEYS:
        path = write_suite(tmp_path, f"{{temperature: 0, {key}: 'x'}}")
        with pytest.raises(SuiteError) as info:
            load_suite(path, builtin_registry())
        text = info.value.render()
        assert "s.gpo.yaml" in text and f"params.{key}" in text, text
        if "cost" in key or key == "base_model":
            assert "gpo_prices" in text
        else:
            assert f"gpo_trusted_params = {key}" in text and "OPENAI_BASE_URL" in text


def test_no_litellm_internal_parameter_is_safe() -> None:
    """litellm's own keyword arguments (over 400: endpoints, keys, loggers, prices) are all
    outside the allowlist; only the timeouts, which the client clamps, are shared."""
    from litellm.types.utils import all_litellm_params

    assert len(all_litellm_params) > 100
    assert SAFE_PARAMS & set(all_litellm_params) <= {"timeout", "request_timeout", "stream_timeout"}
    assert untrusted_params(dict.fromkeys(all_litellm_params), trusted=()) == sorted(
        set(all_litellm_params) - SAFE_PARAMS
    )


def test_safe_and_trusted_keys_load_and_prices_never_do(tmp_path: Path) -> None:
    safe = "{temperature: 0, max_tokens: 5, top_p: 1, seed: 3, stop: ['x'], timeout: 100000}"
    assert load_suite(write_suite(tmp_path, safe), builtin_registry()).params["timeout"] == 100000
    trusted = write_suite(tmp_path, "{api_base: 'http://127.0.0.1:1/v1', extra_headers: {A: b}}")
    suite = load_suite(trusted, builtin_registry(), trusted_params={"api_base", "extra_headers"})
    assert suite.params["api_base"] == "http://127.0.0.1:1/v1"
    with pytest.raises(SuiteError, match=r"params\.extra_headers"):
        load_suite(trusted, builtin_registry(), trusted_params={"api_base"})
    priced = write_suite(tmp_path, "{input_cost_per_token: 0}")
    with pytest.raises(SuiteError, match="cannot set the model's price"):
        load_suite(priced, builtin_registry(), trusted_params={"input_cost_per_token"})
    with pytest.raises(ValueError, match="sets a price"):
        parse_trusted_params("api_base output_cost_per_token")
    assert parse_trusted_params("api_base, api_key\n extra_headers") == {
        "api_base",
        "api_key",
        "extra_headers",
    }


def test_end_to_end_a_suite_cannot_redirect_the_key_unless_trusted(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-trust-test-key")
    with OpenAIServer() as server:
        pytester.makeini("[pytest]\ngpo_model = openai/echo\ngpo_cache = off\n")
        write_suite(pytester.path, f"{{api_base: '{server.base_url}'}}", name="redirect")
        (pytester.path / "fine.gpo.yaml").write_text(
            "name: fine\nprompt: p.txt\nmodel: gpo-sim/task\nthreshold: 0\n"
            "cases:\n  - {id: c0, vars: {word: w0}, expected: w0}\n",
            encoding="utf-8",
        )
        refused = pytester.runpytest("-p", "no:cacheprovider")
        refused.assert_outcomes(passed=1, failed=1)
        out = refused.stdout.str()
        assert "key 'params.api_base'" in out and "gpo_trusted_params = api_base" in out
        assert "Traceback" not in out
        assert server.chat_requests == 0
        for how in (["--gpo-trusted-params", "api_base"], ["-o", "gpo_trusted_params=api_base"]):
            allowed = pytester.runpytest("-p", "no:cacheprovider", *how)
            allowed.assert_outcomes(passed=2)
        assert server.chat_requests == 2
        bad = pytester.runpytest("-p", "no:cacheprovider", "--gpo-trusted-params", "base_model")
        assert bad.ret == pytest.ExitCode.USAGE_ERROR
        assert "--gpo-trusted-params" in bad.stderr.str() and "gpo_prices" in bad.stderr.str()


@pytest.mark.parametrize(
    "where",
    [
        "model: 'oobabooga/{url}/chat/completions'\n",
        "scorers: [{{type: judge, rubric: good, model: 'oobabooga/{url}/chat/completions'}}]\n",
        "model: 'huggingface/{url}'\n",
    ],
)
def test_a_model_name_cannot_carry_an_endpoint(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """litellm reads some providers' server from the model name: a suite file must not be
    able to send a request (or an answer to grade) to a host it names that way."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-trust-test-key")
    with OpenAIServer() as attacker:
        pytester.makeini("[pytest]\ngpo_model = gpo-sim/task\ngpo_cache = off\n")
        (pytester.path / "p.txt").write_text("Say {{ word }}", encoding="utf-8")
        (pytester.path / "s.gpo.yaml").write_text(
            "prompt: p.txt\nthreshold: 0\ncases: [{id: c0, vars: {word: w0}, expected: w0}]\n"
            + where.format(url=attacker.base_url),
            encoding="utf-8",
        )
        result = pytester.runpytest("-p", "no:cacheprovider")
        assert attacker.requests == 0
    out = result.stdout.str()
    assert result.ret != 0 and "names an endpoint (a URL)" in out, out
    assert "Traceback" not in out


def test_a_suite_timeout_cannot_lengthen_an_attempt(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-trust-test-key")
    with OpenAIServer(fault_rates={"hang": 1.0}, hang_seconds=30) as server:
        pytester.makeini("[pytest]\ngpo_model = openai/echo\ngpo_trusted_params = api_base\n")
        write_suite(pytester.path, f"{{api_base: '{server.base_url}', timeout: 100000}}")
        started = time.monotonic()
        result = pytester.runpytest(
            "-p", "no:cacheprovider", "--gpo-timeout", "2", "--gpo-max-attempts", "2"
        )
        elapsed = time.monotonic() - started
    result.assert_outcomes(errors=1)
    assert 1 <= server.chat_requests <= 2
    # the suite's 100000 s would wait out the hang fault's 30 s
    assert elapsed < 20, elapsed


@pytest.mark.parametrize("retry_after", ["inf", "999999", "1e400", "86400"])
def test_retry_after_never_holds_a_call_past_its_deadline(retry_after: str) -> None:
    """A 429 asking to wait forever: each wait is at most one attempt's timeout, and the call
    with every attempt and wait ends within its deadline (2 x timeout x attempts)."""
    with (
        OpenAIServer(retry_after=retry_after, fault_rates={"429": 1.0}) as server,
        EventLoopRunner() as runner,
    ):
        client = LiteLLMClient(cache_mode="off", timeout=0.5, max_attempts=3, seed=0)
        runner.client = client
        request = Request(
            model="openai/echo",
            messages=({"role": "user", "content": "hi"},),
            params={"api_base": server.base_url, "api_key": "sk-test", "timeout": 1e9},
        )
        started = time.monotonic()
        got = runner.run(client.complete(request))
        elapsed = time.monotonic() - started
    assert client.deadline == 3.0
    # (on a loaded machine an attempt may time out before the server sees it)
    assert not got.ok and 1 <= server.chat_requests <= got.attempts <= 3
    assert elapsed < client.deadline + 1.0, elapsed


def test_hangs_and_long_retry_afters_together_stay_within_the_deadline() -> None:
    with OpenAIServer(hang_seconds=20) as server:
        server.script("hang", Fault("429", retry_after="inf"), "hang", "hang", "hang")
        with EventLoopRunner() as runner:
            client = LiteLLMClient(cache_mode="off", timeout=0.5, max_attempts=5, seed=0)
            runner.client = client
            request = Request(
                model="openai/echo",
                messages=({"role": "user", "content": "hi"},),
                params={"api_base": server.base_url, "api_key": "sk-test"},
            )
            started = time.monotonic()
            got = runner.run(client.complete(request))
            elapsed = time.monotonic() - started
    assert not got.ok
    assert elapsed < client.deadline + 1.5, (elapsed, got.error)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    st.one_of(
        st.sampled_from(sorted(SAFE_PARAMS)),
        st.sampled_from(ROUTING_KEYS),
        st.from_regex(r"[a-z_][a-z0-9_]{0,30}", fullmatch=True),
    ),
    st.frozensets(st.sampled_from(["api_base", "api_key", "num_ctx", "extra_headers"])),
)
def test_a_key_passes_exactly_when_it_is_safe_or_trusted_and_never_a_price(
    key: str, trusted: frozenset[str]
) -> None:
    refused = bool(untrusted_params({key: 1}, trusted))
    priced = "cost" in key or key == "base_model"
    allowed = (key in SAFE_PARAMS or key in trusted) and key not in ("n", "stream")
    assert refused == (priced or not allowed)


_PART = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.:", min_size=1, max_size=20)


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(
    provider=_PART,
    name=_PART,
    scheme=st.sampled_from(["http", "https", "HTTP", "ws", "file", "redis"]),
    host=st.sampled_from(["127.0.0.1:8801", "evil.example", "[::1]", "host/v1/chat"]),
)
def test_a_model_name_is_refused_exactly_when_it_carries_an_endpoint(
    provider: str, name: str, scheme: str, host: str
) -> None:
    """Plain provider/model names pass; the same with an endpoint anywhere in them never."""
    from pytest_gpo.errors import ConfigError
    from pytest_gpo.llm.trust import check_model_name

    check_model_name(f"{provider}/{name}")  # e.g. openai/gpt-4o-mini, ollama/llama3:8b
    for bad in (
        f"{provider}/{scheme}://{host}",
        f"{provider}/{name}/{scheme}://{host}",
        f"{scheme}://{host}/{name}",
        f"{provider}/{name} {host}",
    ):
        with pytest.raises(ConfigError):
            check_model_name(bad)
