"""The Redis response cache against a real redis-server started for these tests.

The server runs as a subprocess on a free port of 127.0.0.1 with persistence off, and is
stopped afterwards. Without a ``redis-server`` binary the tests skip, saying so.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai_server import OpenAIServer
from redis_server import free_port, redis_server

from pytest_gpo.llm.cache import RedisCache, encode_entry, open_cache
from pytest_gpo.llm.client import LiteLLMClient
from pytest_gpo.llm.loop import EventLoopRunner
from pytest_gpo.llm.types import Request

pytest_plugins = ["pytester"]

redis = pytest.importorskip("redis", reason="redis-py is not installed (pip install redis)")

PREFIX = "pytest-gpo:response:"


def key_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def entry(text: str = "hello", **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "texts": [text],
        "prompt_tokens": 3,
        "completion_tokens": 5,
        "cost": None,
        "model": "openai/test",
        "created": 1700000000.0,
    }
    data.update(extra)
    return data


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A private redis-server on 127.0.0.1 for this module, without persistence."""
    with redis_server() as (_, url):
        yield url


@pytest.fixture
def raw(redis_url: str) -> Iterator[Any]:
    """A plain redis-py client on a flushed database."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def test_round_trip_and_ttl(redis_url: str, raw: Any) -> None:
    cache = RedisCache(redis_url, ttl=120)
    try:
        key = key_of("a")
        assert cache.get(key) is None
        cache.put(key, entry("first"))
        assert cache.get(key) == entry("first")
        cache.put(key, entry("second"))
        assert cache.get(key) == entry("second")
        assert 0 < raw.ttl(PREFIX + key) <= 120
        assert raw.dbsize() == 1
    finally:
        cache.close()


def test_open_cache_with_url_uses_redis(redis_url: str, raw: Any) -> None:
    cache = open_cache(redis_url)
    assert isinstance(cache, RedisCache)
    cache.put(key_of("b"), entry())
    assert raw.exists(PREFIX + key_of("b"))
    assert isinstance(cache, RedisCache)
    cache.close()


@pytest.mark.parametrize(
    "damage",
    ["truncated", "not-json", "bad-checksum", "other-key", "binary"],
)
def test_corrupt_entry_is_a_miss_and_is_removed(redis_url: str, raw: Any, damage: str) -> None:
    cache = RedisCache(redis_url)
    key = key_of("c")
    good = encode_entry(key, entry())
    bad = {
        "truncated": good[:-7],
        "not-json": b"{nope",
        "bad-checksum": good.replace(b'"hello"', b'"HELLO"'),
        "other-key": encode_entry(key_of("elsewhere"), entry()),
        "binary": b"\xff\xfe\x00garbage",
    }[damage]
    raw.set(PREFIX + key, bad)
    assert cache.get(key) is None
    assert not raw.exists(PREFIX + key)
    cache.put(key, entry())
    assert cache.get(key) == entry()
    cache.close()


def _worker(url: str, worker: int, keys: int) -> list[str]:
    cache = RedisCache(url)
    problems = []
    for i in range(keys):
        shared = key_of(f"shared-{i}")
        own = key_of(f"own-{worker}-{i}")
        cache.put(shared, entry(f"shared {i}"))
        cache.put(own, entry(f"own {worker} {i}"))
        got = cache.get(shared)
        if got is None or got["texts"] != [f"shared {i}"]:
            problems.append(f"worker {worker}: shared {i} read back as {got}")
    cache.close()
    return problems


@pytest.mark.slow
def test_several_processes_share_one_cache(redis_url: str, raw: Any) -> None:
    workers, keys = 4, 50
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers) as pool:
        results = pool.starmap(_worker, [(redis_url, w, keys) for w in range(workers)])
    assert [p for r in results for p in r] == []
    cache = RedisCache(redis_url)
    for i in range(keys):
        assert cache.get(key_of(f"shared-{i}")) == entry(f"shared {i}")
        for w in range(workers):
            assert cache.get(key_of(f"own-{w}-{i}")) == entry(f"own {w} {i}")
    assert raw.dbsize() == keys * (workers + 1)
    cache.close()


def test_client_reads_redis_off_the_event_loop(
    redis_url: str, raw: Any, openai_server: OpenAIServer
) -> None:
    """Answers round-trip through Redis; a second client (another runner) makes no calls."""
    cache = RedisCache(redis_url)
    read_on: set[str] = set()

    class Recording(RedisCache):
        def get(self, key: str) -> dict[str, Any] | None:
            read_on.add(threading.current_thread().name)
            return super().get(key)

    def requests() -> list[Request]:
        return [
            Request(
                model="openai/test-model",
                messages=({"role": "user", "content": f"question {i}"},),
                params={"api_base": openai_server.base_url, "api_key": "sk-test"},
            )
            for i in range(20)
        ]

    async def go(client: LiteLLMClient) -> list[str]:
        done = await asyncio.gather(*(client.complete(r) for r in requests()))
        return [c.text for c in done]

    with EventLoopRunner() as runner:
        first = LiteLLMClient(cache=cache, concurrency=8)
        runner.client = first
        texts = runner.run(go(first))
        assert openai_server.chat_requests == 20
        second = LiteLLMClient(cache=Recording(redis_url), concurrency=8)
        assert runner.run(go(second)) == texts
        runner.run(second.aclose())
    assert openai_server.chat_requests == 20
    assert second.usage.cache_hits == 20 and second.usage.calls == 0
    assert read_on and "pytest-gpo-event-loop" not in read_on
    assert raw.dbsize() == 20
    cache.close()


@pytest.mark.slow
def test_pytest_runs_share_the_redis_cache(
    pytester: pytest.Pytester, redis_url: str, raw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two pytest processes (two CI runners) with gpo_cache_url: the second makes no calls."""
    with OpenAIServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        pytester.makeini(
            f"[pytest]\ngpo_model = openai/echo\ngpo_cache_url = {redis_url}\n"
            "gpo_trusted_params = api_base\n"
        )
        (pytester.path / "p.txt").write_text("Say {{ word }}\n", encoding="utf-8")
        cases = [{"id": f"c{i}", "vars": {"word": f"w{i}"}, "expected": f"w{i}"} for i in range(6)]
        suite = {
            "name": "echo",
            "prompt": "p.txt",
            "params": {"api_base": server.base_url},
            "cases": cases,
            "scorers": [{"type": "contains"}],
            "threshold": 1.0,
        }
        (pytester.path / "echo.gpo.yaml").write_text(json.dumps(suite), encoding="utf-8")
        first = pytester.runpytest_subprocess("-p", "no:cacheprovider")
        first.assert_outcomes(passed=1)
        assert server.chat_requests == 6
        assert raw.dbsize() == 6
        # no file cache was written: the URL replaces the directory
        assert not (pytester.path / ".gpo" / "cache").exists()
        second = pytester.runpytest_subprocess("-p", "no:cacheprovider")
        second.assert_outcomes(passed=1)
        assert server.chat_requests == 6
        second.stdout.fnmatch_lines(["*model calls: 0, cache hits: 6*"])
        replay = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--gpo-cache", "replay")
        replay.assert_outcomes(passed=1)
        assert server.chat_requests == 6


def test_unreachable_redis_is_reported_not_fatal(openai_server: OpenAIServer) -> None:
    """A cache that cannot be read is a miss with a recorded error; the call still happens."""
    cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0")
    with EventLoopRunner() as runner:
        client = LiteLLMClient(cache=cache, concurrency=2)
        runner.client = client
        got = runner.run(
            client.complete(
                Request(
                    model="openai/test-model",
                    messages=({"role": "user", "content": "hi"},),
                    params={"api_base": openai_server.base_url, "api_key": "sk-test"},
                )
            )
        )
    assert got.ok and openai_server.chat_requests == 1
    assert any("cache read failed" in e for e in client.cache_errors)
    assert any("cache write failed" in e for e in client.cache_errors)
    cache.close()


def test_fixture_leaves_no_files(redis_url: str, tmp_path: Path) -> None:
    # --save '' and --appendonly no: the server writes nothing into the working directory
    assert not list(Path.cwd().glob("dump.rdb"))
    assert not list(Path.cwd().glob("appendonly*"))


def test_without_redis_py_the_error_is_one_line_and_hides_the_password(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No traceback: pytest would print the url argument, password included, beside it."""
    import sys

    monkeypatch.setitem(sys.modules, "redis", None)  # as on an install without the extra
    secret = "sk-SENTINEL-REDISPW"
    pytester.makeini(
        f"[pytest]\ngpo_model = gpo-sim/task\ngpo_cache_url = redis://:{secret}@127.0.0.1:1/0\n"
    )
    (pytester.path / "p.txt").write_text("Route: {{ t }}", encoding="utf-8")
    (pytester.path / "s.gpo.yaml").write_text(
        "prompt: p.txt\nthreshold: 0\ncases: [{vars: {t: a}, expected: billing}]\n",
        encoding="utf-8",
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--junitxml", "j.xml")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret != 0
    assert "needs redis-py" in out and "pytest-gpo[redis]" in out
    assert secret not in out and "Traceback" not in out
    assert secret not in (pytester.path / "j.xml").read_text(encoding="utf-8")
