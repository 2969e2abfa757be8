"""LiteLLMClient through the real litellm HTTP path against the local OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai_server import Fault, OpenAIServer

from pytest_gpo import sim
from pytest_gpo.llm import providers
from pytest_gpo.llm.cache import FileCache
from pytest_gpo.llm.client import LiteLLMClient
from pytest_gpo.llm.faults import retry_after
from pytest_gpo.llm.loop import EventLoopRunner
from pytest_gpo.llm.pricing import estimate_cost
from pytest_gpo.llm.setup import import_litellm
from pytest_gpo.llm.types import Completion, ModelClient, Request

KEY = "sk-test"


@pytest.fixture
def runner() -> Iterator[EventLoopRunner]:
    with EventLoopRunner() as loop_runner:
        yield loop_runner


def make_client(runner: EventLoopRunner, **options: Any) -> LiteLLMClient:
    settings: dict[str, Any] = {
        "cache_mode": "off",
        "backoff_base": 0.01,
        "backoff_max": 0.05,
        "timeout": 2.0,
        "seed": 0,
    }
    settings.update(options)
    client = LiteLLMClient(**settings)
    runner.client = client
    return client


def request(
    server: OpenAIServer, text: str = "hello there", model: str = "openai/test-model", **kw: Any
) -> Request:
    params = {"api_base": server.base_url, "api_key": KEY, **kw.pop("params", {})}
    return Request(model=model, messages=({"role": "user", "content": text},), params=params, **kw)


def complete_all(
    runner: EventLoopRunner, client: LiteLLMClient, reqs: list[Request]
) -> list[Completion]:
    async def go() -> list[Completion]:
        return list(await asyncio.gather(*(client.complete(r) for r in reqs)))

    return runner.run(go())


def test_success_tokens_and_unknown_cost(
    runner: EventLoopRunner, openai_server: OpenAIServer
) -> None:
    client = make_client(runner)
    assert isinstance(client, ModelClient)
    got = runner.run(client.complete(request(openai_server)))
    assert got.ok and got.texts == ("echo: hello there",)
    assert (got.prompt_tokens, got.completion_tokens) == (2, 3)
    assert got.cost is None and got.attempts == 1 and not got.cached
    assert "openai/test-model" in client.unpriced_models
    assert client.usage.cost_unknown == 1 and client.usage.calls == 1
    body = openai_server.bodies[0]
    assert body["model"] == "test-model" and "n" not in body and "caching" not in body
    assert openai_server.headers_seen[0]["x-stainless-retry-count"] == "0"


def test_priced_model_has_a_cost(runner: EventLoopRunner, openai_server: OpenAIServer) -> None:
    client = make_client(runner)
    got = runner.run(client.complete(request(openai_server, model="openai/gpt-4o-mini")))
    assert got.ok and got.cost is not None and got.cost > 0
    assert client.cost_spent == got.cost == client.usage.cost


def test_litellm_pricing_logging_and_token_counting_stay_on(
    runner: EventLoopRunner, openai_server: OpenAIServer
) -> None:
    # No litellm switch saves CPU per call (see import_litellm), so none is flipped: every
    # choice is priced, a user's own litellm callback still sees our calls with their messages
    # (no 'no-log', no turn_off_message_logging), and the --gpo-max-cost estimate still counts
    # the prompt's tokens (no disable_token_counter).
    from litellm.integrations.custom_logger import CustomLogger

    litellm = import_litellm()
    logged: list[dict[str, Any]] = []

    class Recorder(CustomLogger):
        async def async_log_success_event(
            self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
        ) -> None:
            logged.append(kwargs)

    saved = list(litellm.callbacks)
    litellm.callbacks = [*saved, Recorder()]
    try:
        client = make_client(runner)
        got = runner.run(
            client.complete(
                request(openai_server, "count my words", model="openai/gpt-4o-mini", n=2)
            )
        )

        async def settle() -> None:
            for _ in range(100):
                if logged:
                    return
                await asyncio.sleep(0.02)

        runner.run(settle())
    finally:
        litellm.callbacks = saved
    assert got.ok and len(got.texts) == 2 and got.cost is not None and got.cost > 0
    assert client.unpriced_models == set()
    assert len(logged) == 1
    assert "count my words" in json.dumps(logged[0].get("messages"), default=str)
    assert logged[0]["standard_logging_object"]["response_cost"] == pytest.approx(got.cost)

    def estimate(text: str) -> float | None:
        req = request(openai_server, text, model="openai/gpt-4o-mini", params={"max_tokens": 1})
        return estimate_cost(litellm, req, client._kwargs(req))

    short, long = estimate("hi"), estimate("a much longer prompt " * 200)
    assert short is not None and long is not None and long > 10 * short


def test_cache_round_trip_holds_no_secret(
    runner: EventLoopRunner, openai_server: OpenAIServer, tmp_path: Path
) -> None:
    client = make_client(runner, cache=FileCache(tmp_path), cache_mode="rw")
    first = runner.run(client.complete(request(openai_server)))
    second = runner.run(client.complete(request(openai_server)))
    assert first.ok and not first.cached and first.attempts == 1
    assert second.cached and second.attempts == 0 and second.texts == first.texts
    assert openai_server.chat_requests == 1
    assert (client.usage.cache_hits, client.usage.cache_misses, client.usage.calls) == (1, 1, 1)
    stored = "".join(p.read_text() for p in tmp_path.rglob("*.json"))
    assert "echo: hello there" in stored
    for secret in (KEY, "Authorization", "Bearer", openai_server.base_url):
        assert secret not in stored


def test_retry_after_seconds_is_honoured(
    runner: EventLoopRunner, openai_server: OpenAIServer
) -> None:
    client = make_client(runner)
    openai_server.script(Fault("429", retry_after=0.4))
    got = runner.run(client.complete(request(openai_server)))
    assert got.ok and got.attempts == 2
    gap = openai_server.arrivals[1] - openai_server.arrivals[0]
    assert 0.4 <= gap < 1.0
    assert client.usage.retries == 1 and client.usage.calls == 2


def test_retry_after_header_forms() -> None:
    class Err(Exception):
        def __init__(self, headers: dict[str, str]) -> None:
            self.litellm_response_headers = headers

    in_3s = email.utils.formatdate(time.time() + 3, usegmt=True)
    assert retry_after(Err({"Retry-After": "2"})) == 2.0
    assert retry_after(Err({"retry-after-ms": "250"})) == 0.25
    date_wait = retry_after(Err({"retry-after": in_3s}))
    assert date_wait is not None and 1.5 < date_wait <= 3.0
    assert retry_after(Err({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert retry_after(Err({"retry-after": "soon"})) is None
    assert retry_after(Exception()) is None


def test_backoff_is_full_jitter_and_bounded(runner: EventLoopRunner) -> None:
    client = make_client(
        runner, backoff_base=0.5, backoff_max=3.0, retry_after_max=10.0, timeout=60.0
    )
    for attempt in range(1, 8):
        cap = min(3.0, 0.5 * 2 ** (attempt - 1))
        delays = [client._delay(attempt, None) for _ in range(200)]
        assert all(0.0 <= d <= cap for d in delays)
        assert max(delays) > cap / 2  # jitter spans the range
    assert 5.0 <= client._delay(1, 5.0) <= 5.5
    assert client._delay(1, 3600.0) <= 10.5
    # a Retry-After is honoured up to one attempt's timeout, never longer
    short = make_client(runner, backoff_base=0.5, retry_after_max=10.0, timeout=2.0)
    assert 2.0 <= short._delay(1, float("inf")) <= 2.5


@pytest.mark.parametrize("fault", ["500", "502", "503", "hang", "drop", "malformed"])
def test_transient_faults_are_retried(runner: EventLoopRunner, fault: str) -> None:
    with OpenAIServer(hang_seconds=10, retry_after=None) as server:
        # 1 s: long enough that a healthy request on a loaded machine is never cut short
        client = make_client(runner, timeout=1.0)
        server.script(fault, fault)
        got = runner.run(client.complete(request(server)))
        assert got.ok and got.attempts == 3, got.error
        assert server.chat_requests == 3
        assert server.faults_served == [fault, fault, "ok"]


def test_every_attempt_failing_is_an_error_and_not_cached(
    runner: EventLoopRunner, openai_server: OpenAIServer, tmp_path: Path
) -> None:
    client = make_client(runner, cache=FileCache(tmp_path), cache_mode="rw", max_attempts=4)
    openai_server.script(*["500"] * 4)
    got = runner.run(client.complete(request(openai_server)))
    assert not got.ok and got.error_kind == "provider" and got.attempts == 4
    assert "(after 4 attempts)" in (got.error or "")
    assert "server had an error" in (got.error or "")
    # litellm's and the OpenAI SDK's own retries are off: exactly our attempts reached the server.
    assert openai_server.chat_requests == 4
    assert not list(tmp_path.rglob("*.json"))
    assert (client.usage.errors, client.usage.calls, client.usage.retries) == (1, 4, 3)
    # The error was not cached: the next call goes to the server again and succeeds.
    again = runner.run(client.complete(request(openai_server)))
    assert again.ok and not again.cached and openai_server.chat_requests == 5


@pytest.mark.parametrize(
    ("status", "kind"), [("400", "provider"), ("401", "credentials"), ("404", "provider")]
)
def test_non_retryable_errors_fail_at_once(runner: EventLoopRunner, status: str, kind: str) -> None:
    with OpenAIServer(leak_key_in_errors=True) as server:
        client = make_client(runner)
        server.script(status)
        secret = "sk-proj-SECRET0123456789abcdef"
        got = runner.run(client.complete(request(server, params={"api_key": secret})))
        assert not got.ok and got.error_kind == kind and got.attempts == 1
        assert server.chat_requests == 1
        if kind == "provider":
            assert "(after 1 attempt)" in (got.error or "")
        assert server.headers_seen[0]["Authorization"] == f"Bearer {secret}"
        assert secret not in (got.error or "") and "SECRET" not in (got.error or "")
        assert all(secret not in json.dumps(body) for body in server.bodies)


def test_out_of_quota_429_is_not_retried(
    runner: EventLoopRunner, openai_server: OpenAIServer
) -> None:
    client = make_client(runner)
    openai_server.script("quota")
    got = runner.run(client.complete(request(openai_server)))
    assert got.error_kind == "provider" and got.attempts == 1
    assert "exceeded your current quota" in (got.error or "")


def test_unexpected_bug_is_an_error_not_a_crash(
    runner: EventLoopRunner, openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(runner)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("surprise")

    monkeypatch.setattr(client, "_read_response", broken)
    got = runner.run(client.complete(request(openai_server)))
    assert got.error_kind == "provider" and "internal error" in (got.error or "")
    assert "surprise" in (got.error or "")


def test_rate_limited_server_eventually_answers_everything(runner: EventLoopRunner) -> None:
    with OpenAIServer(rate_limit=10) as server:
        client = make_client(runner, concurrency=16, backoff_base=0.05, backoff_max=0.2)
        got = complete_all(runner, client, [request(server, f"q{i}") for i in range(16)])
        assert all(c.ok for c in got)
        assert "429" in server.faults_served
        assert client.usage.retries == server.faults_served.count("429")


def test_concurrency_cap_is_respected(runner: EventLoopRunner) -> None:
    with OpenAIServer(latency=0.05) as server:
        client = make_client(runner, concurrency=3)
        got = complete_all(runner, client, [request(server, f"q{i}") for i in range(12)])
        assert all(c.ok for c in got)
        assert server.peak_concurrency == 3


def test_sixty_four_calls_in_flight(runner: EventLoopRunner) -> None:
    # 1 s of latency: sending 64 requests costs litellm ~0.2-0.5 s of CPU on a loaded machine,
    # and every request must be in flight before the first answer comes back.
    with OpenAIServer(latency=1.0) as server:
        client = make_client(runner, concurrency=64, timeout=20.0)
        assert runner.run(client.complete(request(server, "warm-up"))).ok
        server.reset_counters()
        start = time.perf_counter()
        got = complete_all(runner, client, [request(server, f"q{i}") for i in range(64)])
        elapsed = time.perf_counter() - start
        assert all(c.ok for c in got)
        assert 60 <= server.peak_concurrency <= 64
        assert elapsed < 6.0  # one round trip, not 64 of them


def test_identical_requests_in_flight_are_coalesced(runner: EventLoopRunner) -> None:
    with OpenAIServer(latency=0.1) as server:
        client = make_client(runner)
        same = request(server)
        got = complete_all(runner, client, [same, same, request(server, "other")])
        assert server.chat_requests == 2
        assert got[0].texts == got[1].texts == ("echo: hello there",)
        assert [c.cached for c in got] == [False, True, False]
        assert [c.attempts for c in got] == [1, 0, 1]
        assert client.usage.calls == 2 and client.usage.cache_hits == 1
        assert client.usage.completion_tokens == 5  # the shared answer (3 tokens) is billed once


def test_replay_miss_makes_no_call_and_replay_hit_works(
    runner: EventLoopRunner, openai_server: OpenAIServer, tmp_path: Path
) -> None:
    replay = make_client(runner, cache=FileCache(tmp_path), cache_mode="replay")
    miss = runner.run(replay.complete(request(openai_server)))
    assert miss.error_kind == "cache_miss" and miss.attempts == 0
    assert "openai/test-model" in (miss.error or "")
    assert "run once with --gpo-cache rw to record" in (miss.error or "")
    assert openai_server.requests == 0
    # a miss in replay mode is a miss: the summary must not say "misses: 0"
    assert replay.usage.errors == 1 and replay.usage.cache_misses == 1 and replay.usage.calls == 0

    recorder = make_client(runner, cache=FileCache(tmp_path), cache_mode="rw")
    assert runner.run(recorder.complete(request(openai_server))).ok
    hit = runner.run(replay.complete(request(openai_server)))
    assert hit.ok and hit.cached and openai_server.requests == 1


def test_max_calls_is_never_exceeded_with_retries_in_flight(runner: EventLoopRunner) -> None:
    with OpenAIServer(latency=0.02, fault_rates={"500": 1.0}) as server:
        client = make_client(runner, concurrency=8, max_calls=7, max_attempts=6)
        got = complete_all(runner, client, [request(server, f"q{i}") for i in range(10)])
        assert server.chat_requests == 7 and client.calls_made == 7
        assert client.budget_exhausted
        kinds = [c.error_kind for c in got]
        assert set(kinds) <= {"budget", "provider"} and "budget" in kinds
        budget = next(c for c in got if c.error_kind == "budget")
        assert "call budget exhausted" in (budget.error or "")
        assert sum(c.attempts for c in got) == 7 == client.usage.calls


def test_max_calls_stops_successes_too(
    runner: EventLoopRunner, openai_server: OpenAIServer
) -> None:
    client = make_client(runner, concurrency=4, max_calls=3)
    got = complete_all(runner, client, [request(openai_server, f"q{i}") for i in range(8)])
    assert [c.ok for c in got].count(True) == 3 and openai_server.chat_requests == 3
    assert [c.error_kind for c in got].count("budget") == 5


def test_max_cost_is_never_exceeded(runner: EventLoopRunner, openai_server: OpenAIServer) -> None:
    client = make_client(runner, concurrency=4, max_cost=3e-5)
    reqs = [
        request(
            openai_server, f"question {i}", model="openai/gpt-4o-mini", params={"max_tokens": 20}
        )
        for i in range(12)
    ]
    got = complete_all(runner, client, reqs)
    ok = [c for c in got if c.ok]
    assert ok and len(ok) < len(got)
    assert client.cost_spent <= 3e-5 and client.budget_exhausted
    assert client.cost_spent == pytest.approx(sum(c.cost or 0.0 for c in ok))
    assert openai_server.chat_requests == len(ok)
    refused = next(c for c in got if c.error_kind == "budget")
    assert "cost budget exhausted" in (refused.error or "")


def test_max_cost_cannot_check_an_unpriced_model(
    runner: EventLoopRunner, openai_server: OpenAIServer
) -> None:
    client = make_client(runner, max_cost=1e-9)
    got = runner.run(client.complete(request(openai_server)))
    assert got.ok and got.cost is None
    assert client.unpriced_models == {"openai/test-model"} and not client.budget_exhausted


def test_n_native(runner: EventLoopRunner, openai_server: OpenAIServer) -> None:
    client = make_client(runner)
    got = runner.run(client.complete(request(openai_server, n=3)))
    assert got.ok and len(got.texts) == 3 and got.attempts == 1
    assert [b.get("n") for b in openai_server.bodies] == [3]


def test_n_fewer_choices_are_completed_by_further_calls(runner: EventLoopRunner) -> None:
    with OpenAIServer(max_choices=2) as server:
        client = make_client(runner)
        got = runner.run(client.complete(request(server, n=5)))
        assert got.ok and len(got.texts) == 5 and got.attempts == 3
        assert [b.get("n") for b in server.bodies] == [5, 3, None]


def test_n_rejected_falls_back_to_single_calls(runner: EventLoopRunner) -> None:
    with OpenAIServer(reject_n=True) as server:
        client = make_client(runner)
        got = runner.run(client.complete(request(server, n=3)))
        assert got.ok and len(got.texts) == 3 and got.attempts == 4
        assert [b.get("n") for b in server.bodies] == [3, None, None, None]


def test_never_more_completions_than_asked(runner: EventLoopRunner) -> None:
    with OpenAIServer(extra_choices=2) as server:
        client = make_client(runner)
        assert len(runner.run(client.complete(request(server, n=2))).texts) == 2
        assert len(runner.run(client.complete(request(server, n=1))).texts) == 1


def test_simulated_models_run_offline(runner: EventLoopRunner) -> None:
    sim.register()
    client = make_client(runner)
    sim_request = Request(
        model="gpo-sim/task",
        messages=({"role": "user", "content": "What is 2 + 3?"},),
        n=2,
    )
    got = runner.run(client.complete(sim_request))
    assert got.ok and len(got.texts) == 2 and got.cost == 0.0


def test_missing_simulator_is_a_clear_error(
    runner: EventLoopRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(litellm: Any) -> None:
        raise ModuleNotFoundError("No module named 'pytest_gpo.sim.provider'")

    monkeypatch.setattr(providers, "_PROVIDERS", {})
    providers.register_provider(sim.PROVIDER, missing)
    client = make_client(runner)
    got = runner.run(client.complete(Request(model="gpo-sim/task", messages=())))
    assert got.error_kind == "provider" and got.attempts == 0
    assert "pytest_gpo.sim.provider" in (got.error or "")


def test_cache_failures_do_not_fail_the_call(
    runner: EventLoopRunner, openai_server: OpenAIServer
) -> None:
    class BrokenCache:
        def get(self, key: str) -> dict[str, Any] | None:
            raise OSError("disk on fire")

        def put(self, key: str, entry: dict[str, Any]) -> None:
            raise OSError("disk on fire")

    client = make_client(runner, cache=BrokenCache(), cache_mode="rw")
    got = runner.run(client.complete(request(openai_server)))
    assert got.ok and len(client.cache_errors) == 2


def test_runner_runs_coroutines_and_closes_once(openai_server: OpenAIServer) -> None:
    loop_runner = EventLoopRunner()

    async def boom() -> None:
        raise ValueError("inside")

    async def add(a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b

    assert loop_runner.run(add(2, 3)) == 5
    with pytest.raises(ValueError, match="inside"):
        loop_runner.run(boom())
    loop_runner.close()
    loop_runner.close()
    assert loop_runner.closed and loop_runner.loop.is_closed()
    coro = add(1, 1)
    with pytest.raises(RuntimeError, match="closed"):
        loop_runner.run(coro)


@pytest.mark.slow
def test_runner_closes_cleanly_under_warnings_as_errors(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import asyncio, gc, sys
        sys.path.insert(0, {tests!r})
        from openai_server import OpenAIServer
        from pytest_gpo import sim
        from pytest_gpo.llm.types import Request
        from pytest_gpo.llm.client import LiteLLMClient
        from pytest_gpo.llm.loop import EventLoopRunner

        sim.register()

        with OpenAIServer(latency=0.01) as server:
            client = LiteLLMClient(concurrency=4, cache_mode="off")
            with EventLoopRunner(client) as runner:
                async def go():
                    reqs = [
                        Request(
                            model="openai/m",
                            messages=({{"role": "user", "content": f"q{{i}}"}},),
                            params={{"api_base": server.base_url, "api_key": "sk-test"}},
                        )
                        for i in range(8)
                    ]
                    return await asyncio.gather(*(client.complete(r) for r in reqs))
                assert all(c.ok for c in runner.run(go()))
                assert runner.run(client.complete(Request(model="gpo-sim/task",
                    messages=({{"role": "user", "content": "2 + 2"}},)))).ok
        gc.collect()
        print("clean")
        """
    ).format(tests=str(Path(__file__).parent))
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    noise = [
        line
        for line in proc.stderr.splitlines()
        if "Warning" in line or "unclosed" in line or "destroyed" in line or "Error" in line
    ]
    assert proc.returncode == 0 and proc.stdout.strip() == "clean", proc.stderr[-3000:]
    assert noise == [], proc.stderr[-3000:]


def test_runner_close_closes_the_connections_of_its_loop(openai_server: OpenAIServer) -> None:
    from pytest_gpo.llm import connections

    litellm = import_litellm()
    assert isinstance(litellm.aclient_session, connections.LoopLocalClient)
    pools = litellm.aclient_session
    loop_runner = EventLoopRunner()
    client = LiteLLMClient(concurrency=4, cache_mode="off")
    loop_runner.client = client
    got = complete_all(loop_runner, client, [request(openai_server, f"q{i}") for i in range(6)])
    assert all(c.ok for c in got)
    loop = loop_runner.loop
    pool = pools._pools[loop]
    assert not pool.is_closed
    loop_runner.close()
    assert pool.is_closed and loop not in pools._pools
    # a later session (a new loop) gets fresh connections, never the closed ones
    with EventLoopRunner() as again:
        fresh = LiteLLMClient(concurrency=2, cache_mode="off")
        again.client = fresh
        assert all(c.ok for c in complete_all(again, fresh, [request(openai_server, "q9")]))


def test_a_users_own_litellm_session_is_left_to_them() -> None:
    from pytest_gpo.llm import connections

    class Fake:
        aclient_session: object = object()

    fake = Fake()
    mine = fake.aclient_session
    assert connections.install(fake) is None
    assert fake.aclient_session is mine


def test_importing_the_client_does_not_import_litellm() -> None:
    code = (
        "import sys, pytest_gpo.llm.client, pytest_gpo.llm.cache; "
        "assert 'litellm' not in sys.modules and 'redis' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_server_embeddings_and_fault_script(openai_server: OpenAIServer) -> None:
    def post(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        req = urllib.request.Request(
            openai_server.base_url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": "Bearer sk-test"},
        )
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    status, body = post("/embeddings", {"model": "m", "input": ["a", "b"]})
    assert status == 200 and [d["index"] for d in body["data"]] == [0, 1]
    assert abs(sum(x * x for x in body["data"][0]["embedding"]) - 1.0) < 1e-9
    openai_server.script(Fault("429", retry_after=7), "ok", "404")
    status, body = post("/chat/completions", {"model": "m", "messages": []})
    assert status == 429 and body["error"]["code"] == "rate_limit_exceeded"
    assert post("/chat/completions", {"model": "m", "messages": []})[0] == 200
    assert post("/chat/completions", {"model": "m", "messages": []})[0] == 404
    assert openai_server.faults_served == ["ok", "429", "ok", "404"]
    assert openai_server.embedding_requests == 1 and openai_server.chat_requests == 3


def test_a_call_interrupted_in_flight_is_still_counted(runner: EventLoopRunner) -> None:
    """Ctrl-C while a request is out: the server got it, so the usage counts it."""
    import asyncio

    with OpenAIServer(latency=5.0) as server:
        client = make_client(runner, timeout=30.0)

        async def go() -> None:
            task = asyncio.ensure_future(client.complete(request(server)))
            for _ in range(200):  # bounded: until the request reached the server
                if server.chat_requests:
                    break
                await asyncio.sleep(0.02)
            task.cancel()  # what the session does on Ctrl-C: cancel, then close the client
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await client.aclose()

        runner.run(go())
        assert server.chat_requests == 1
    assert client.usage.calls == 1 and client.budget.calls_made == 1
