"""litellm Router settings (``gpo_router``): several deployments behind one model name.

Two local OpenAI-compatible servers stand for two deployments (or two API keys) of one model.
The client sends calls for the names the Router knows through ``Router.acompletion``; its own
retries, caps and cache still apply, and the Router's retries are off.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai_server import OpenAIServer

from pytest_gpo.errors import ConfigError
from pytest_gpo.llm.client import LiteLLMClient
from pytest_gpo.llm.faults import classify
from pytest_gpo.llm.loop import EventLoopRunner
from pytest_gpo.llm.router import ROUTER_FORCED, load_router_config
from pytest_gpo.llm.setup import import_litellm
from pytest_gpo.llm.types import Completion, Request
from pytest_gpo.settings import resolve

pytest_plugins = ["pytester"]

MODEL = "team-model"


@pytest.fixture
def deployments() -> Iterator[tuple[OpenAIServer, OpenAIServer]]:
    with OpenAIServer(retry_after=0.05) as a, OpenAIServer(retry_after=0.05) as b:
        yield a, b


def router_file(tmp_path: Path, *servers: OpenAIServer, **settings: Any) -> Path:
    """A YAML router file: one deployment per server under MODEL, plus Router settings."""
    lines = ["model_list:"]
    for i, server in enumerate(servers):
        lines += [
            f"  - model_name: {MODEL}",
            "    litellm_params:",
            f"      model: openai/deployment-{i}",
            f"      api_base: {server.base_url}",
            f"      api_key: sk-key-{i}-not-secret",
        ]
    if settings:
        lines.append("router_settings:")
        lines += [f"  {k}: {json.dumps(v)}" for k, v in settings.items()]
    path = tmp_path / "router.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def ask(runner: EventLoopRunner, client: LiteLLMClient, count: int, **kw: Any) -> list[Completion]:
    model = kw.pop("model", MODEL)
    params = kw.pop("params", {})

    async def go() -> list[Completion]:
        return list(
            await asyncio.gather(
                *(
                    client.complete(
                        Request(
                            model=model,
                            messages=({"role": "user", "content": f"question {i}"},),
                            params=params,
                        )
                    )
                    for i in range(count)
                )
            )
        )

    return runner.run(go())


def make(runner: EventLoopRunner, **options: Any) -> LiteLLMClient:
    settings: dict[str, Any] = {
        "cache_mode": "off",
        "backoff_base": 0.01,
        "backoff_max": 0.05,
        "timeout": 5.0,
        "seed": 0,
    }
    settings.update(options)
    client = LiteLLMClient(**settings)
    runner.client = client
    return client


def test_calls_spread_over_both_deployments(
    tmp_path: Path, deployments: tuple[OpenAIServer, OpenAIServer]
) -> None:
    a, b = deployments
    path = router_file(tmp_path, a, b, routing_strategy="simple-shuffle")
    with EventLoopRunner() as runner:
        client = make(runner, router_config=str(path), concurrency=8)
        got = ask(runner, client, 60)
    assert all(c.ok for c in got)
    assert [c.text for c in got] == [f"echo: question {i}" for i in range(60)]
    assert a.chat_requests + b.chat_requests == 60
    assert a.chat_requests >= 10 and b.chat_requests >= 10
    # each deployment got its own key, and the Router's alias never reached the server
    assert {h["Authorization"] for h in a.headers_seen} == {"Bearer sk-key-0-not-secret"}
    assert {h["Authorization"] for h in b.headers_seen} == {"Bearer sk-key-1-not-secret"}
    assert {body["model"] for body in a.bodies} == {"deployment-0"}
    # an unknown model's deployment is priced at $0.00 by the Router: that reads as unknown
    assert all(c.cost is None for c in got)
    assert MODEL in client.unpriced_models


def test_our_retries_apply_and_the_routers_are_off(
    tmp_path: Path, deployments: tuple[OpenAIServer, OpenAIServer]
) -> None:
    a, b = deployments
    a.script("429", "500")
    b.script("503")
    # num_retries in the file is overridden: the Router must not retry on its own
    path = router_file(tmp_path, a, b, num_retries=5, disable_cooldowns=True)
    with EventLoopRunner() as runner:
        client = make(runner, router_config=path, concurrency=1)
        got = ask(runner, client, 4)
    assert all(c.ok for c in got)
    # the Router picks deployments at random, so how many scripted faults were served varies
    # (a deployment asked once never serves its second): count what the servers really served
    faults = sum(k != "ok" for k in a.faults_served + b.faults_served)
    assert 1 <= faults <= 3
    assert a.chat_requests + b.chat_requests == 4 + faults
    assert client.usage.retries == faults and client.usage.calls == 4 + faults


def test_call_cap_counts_routed_attempts(
    tmp_path: Path, deployments: tuple[OpenAIServer, OpenAIServer]
) -> None:
    a, b = deployments
    with EventLoopRunner() as runner:
        client = make(runner, router_config=router_file(tmp_path, a, b), max_calls=5)
        got = ask(runner, client, 8)
    assert sum(c.ok for c in got) == 5
    assert {c.error_kind for c in got if not c.ok} == {"budget"}
    assert a.chat_requests + b.chat_requests == 5


def test_other_models_are_called_directly(
    tmp_path: Path, deployments: tuple[OpenAIServer, OpenAIServer]
) -> None:
    a, b = deployments
    with OpenAIServer() as direct, EventLoopRunner() as runner:
        client = make(runner, router_config=router_file(tmp_path, a, b))
        got = ask(
            runner,
            client,
            3,
            model="openai/elsewhere",
            params={"api_base": direct.base_url, "api_key": "sk-direct"},
        )
        assert all(c.ok for c in got)
        assert direct.chat_requests == 3
    assert a.chat_requests == b.chat_requests == 0


def test_wildcard_model_names_route(tmp_path: Path, openai_server: OpenAIServer) -> None:
    config = {
        "model_list": [
            {
                "model_name": "openai/*",
                "litellm_params": {
                    "model": "openai/*",
                    "api_base": openai_server.base_url,
                    "api_key": "sk-wild",
                },
            },
        ]
    }
    with EventLoopRunner() as runner:
        client = make(runner, router_config=config)
        got = ask(runner, client, 2, model="openai/anything")
    assert all(c.ok for c in got), [c.error for c in got]
    assert openai_server.chat_requests == 2


def test_cache_is_shared_across_deployments(
    tmp_path: Path, deployments: tuple[OpenAIServer, OpenAIServer]
) -> None:
    from pytest_gpo.llm.cache import FileCache

    a, b = deployments
    cache = FileCache(tmp_path / "cache")
    path = router_file(tmp_path, a, b)
    with EventLoopRunner() as runner:
        first = make(runner, router_config=path, cache=cache, cache_mode="rw")
        ask(runner, first, 10)
        runner.run(first.aclose())
        second = make(runner, router_config=path, cache=cache, cache_mode="rw")
        again = ask(runner, second, 10)
    assert all(c.cached for c in again)
    assert a.chat_requests + b.chat_requests == 10


def test_router_busy_is_retried_after_its_cooldown() -> None:
    litellm = import_litellm()
    from litellm.types.router import RouterRateLimitError

    exc = RouterRateLimitError(
        model=MODEL, cooldown_time=2.5, enable_pre_call_checks=False, cooldown_list=["x"]
    )
    fault = classify(litellm, exc, {"model": MODEL})
    assert fault.retryable and fault.retry_after == 2.5


def test_forced_settings_are_router_arguments() -> None:
    litellm = import_litellm()
    accepted = inspect.signature(litellm.Router).parameters
    assert set(ROUTER_FORCED) <= set(accepted)


@pytest.mark.parametrize(
    ("text", "suffix", "message"),
    [
        ("model_list: [", ".yaml", "cannot parse"),
        ('{"model_list": [}', ".json", "cannot parse"),
        ("- just a list\n", ".yaml", "must be a mapping"),
        ("routing_strategy: simple-shuffle\n", ".yaml", "model_list must be a non-empty list"),
        ("model_list:\n  - {model_name: m}\n", ".yaml", "model_list[0]"),
        (
            "model_list:\n  - {model_name: m, litellm_params: {model: openai/x}}\n"
            "litellm_settings: {drop_params: true}\n",
            ".yaml",
            "litellm proxy setting",
        ),
        (
            "model_list:\n  - {model_name: m, litellm_params: {model: openai/x}}\n"
            "router_settings: [1]\n",
            ".yaml",
            "router_settings must be a mapping",
        ),
    ],
)
def test_bad_router_files_name_the_file(
    tmp_path: Path, text: str, suffix: str, message: str
) -> None:
    path = tmp_path / f"router{suffix}"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        LiteLLMClient(router_config=path)
    assert message in info.value.render()
    assert str(path) in info.value.render()


def test_missing_router_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the router settings file"):
        load_router_config(tmp_path / "nope.yaml")


def test_proxy_layout_and_top_level_settings_merge(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(
        "model_list:\n  - {model_name: m, litellm_params: {model: openai/x}}\n"
        "router_settings: {routing_strategy: least-busy, cooldown_time: 3}\n"
        "cooldown_time: 7\n",
        encoding="utf-8",
    )
    kwargs = load_router_config(path)
    assert kwargs["routing_strategy"] == "least-busy"
    assert kwargs["cooldown_time"] == 7
    assert kwargs["model_list"][0]["model_name"] == "m"


def test_unknown_router_setting_is_an_error_of_the_call(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    path = router_file(tmp_path, openai_server, routing_strateg="simple-shuffle")
    with EventLoopRunner() as runner:
        client = make(runner, router_config=path)
        (got,) = ask(runner, client, 1)
    assert not got.ok and got.error_kind == "provider"
    assert "not litellm Router settings: routing_strateg" in (got.error or "")
    assert str(path) in (got.error or "")
    assert openai_server.chat_requests == 0


def test_setting_resolves_relative_to_the_rootdir(tmp_path: Path) -> None:
    ini = {"gpo_router": "ci/router.yaml"}
    settings = resolve(rootdir=tmp_path, cli={}, ini=lambda k: ini.get(k, ""), env={})
    assert settings.router_path == tmp_path / "ci" / "router.yaml"
    env = resolve(rootdir=tmp_path, cli={}, ini=lambda k: "", env={"GPO_ROUTER": "/etc/r.yaml"})
    assert env.router_path == Path("/etc/r.yaml")
    assert resolve(rootdir=tmp_path, cli={}, ini=lambda k: "", env={}).router_path is None


@pytest.mark.slow
def test_pytest_run_with_gpo_router(
    pytester: pytest.Pytester, deployments: tuple[OpenAIServer, OpenAIServer]
) -> None:
    a, b = deployments
    router_file(pytester.path, a, b)
    pytester.makeini(f"[pytest]\ngpo_model = {MODEL}\ngpo_router = router.yaml\n")
    (pytester.path / "p.txt").write_text("Say {{ word }}\n", encoding="utf-8")
    suite = {
        "name": "echo",
        "prompt": "p.txt",
        "cases": [
            {"id": f"c{i}", "vars": {"word": f"w{i}"}, "expected": f"w{i}"} for i in range(30)
        ],
        "scorers": [{"type": "contains"}],
        "threshold": 1.0,
    }
    (pytester.path / "echo.gpo.yaml").write_text(json.dumps(suite), encoding="utf-8")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--gpo-cache", "off")
    result.assert_outcomes(passed=1)
    assert a.chat_requests + b.chat_requests == 30
    assert a.chat_requests > 0 and b.chat_requests > 0
    assert "sk-key-0-not-secret" not in result.stdout.str()
