"""A Redis that stalls (SIGSTOP) or vanishes costs seconds, not minutes, and errors no suite.

Each test starts its own redis-server on 127.0.0.1 (with a password, to check it is never
shown) and stops it afterwards; the stalled server is resumed before it is stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from openai_server import OpenAIServer
from redis_server import redis_server

from pytest_gpo.llm.cache import RedisCache


@pytest.fixture(autouse=True)
def _trust_api_base(monkeypatch: pytest.MonkeyPatch) -> None:
    """These suites reach the local test server through ``params.api_base``: the user trusts
    that key here, as a project would in its ini (docs/reliability.md#trust-model)."""
    monkeypatch.setenv("GPO_TRUSTED_PARAMS", "api_base")


pytest_plugins = ["pytester"]

redis = pytest.importorskip("redis", reason="redis-py is not installed (pip install redis)")

PASSWORD = "redis-pass-7f3k"


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str

    def stall(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)


@pytest.fixture
def server() -> Iterator[Server]:
    with redis_server(PASSWORD) as (proc, url):
        yield Server(proc, url)


KEY = "ab" * 32


def test_a_stalled_redis_trips_the_breaker_and_later_calls_are_instant(server: Server) -> None:
    cache = RedisCache(server.url, timeout=0.5)
    cache.put(KEY, {"texts": ["hi"], "model": "m", "created": 1.0})
    assert cache.get(KEY) is not None
    server.stall()
    failures = 0
    started = time.monotonic()
    for _ in range(cache.max_failures):
        try:
            cache.get(KEY)
        except redis.RedisError:
            failures += 1
    # the last of the three failures trips the breaker instead of raising
    assert failures == cache.max_failures - 1
    assert cache.tripped
    assert time.monotonic() - started < cache.max_failures * 0.5 + 3
    quick = time.monotonic()
    for _ in range(100):
        assert cache.get(KEY) is None
        cache.put(KEY, {"texts": ["x"], "model": "m", "created": 1.0})
    assert time.monotonic() - quick < 0.5
    assert cache.warning is not None
    assert "failed 3 times" in cache.warning and "used no cache" in cache.warning
    assert PASSWORD not in cache.warning and "***@127.0.0.1" in cache.warning
    assert PASSWORD not in repr(cache)
    cache.close()


def test_failures_spread_beyond_the_window_do_not_trip(server: Server) -> None:
    cache = RedisCache(server.url, timeout=0.3, window=0.01)
    server.stall()
    for _ in range(4):
        with pytest.raises(redis.RedisError):
            cache.get(KEY)
        time.sleep(0.02)
    assert not cache.tripped
    server.resume()
    assert cache.get(KEY) is None  # a plain miss once Redis answers again
    cache.close()


def _project(pytester: pytest.Pytester, url: str, base_url: str, cases: int) -> None:
    pytester.makeini(f"[pytest]\ngpo_model = openai/echo\ngpo_cache_url = {url}\n")
    (pytester.path / "p.txt").write_text("Say {{ word }}\n", encoding="utf-8")
    for name in ("one", "two"):
        suite = {
            "name": name,
            "prompt": "p.txt",
            "params": {"api_base": base_url},
            "cases": [
                {"id": f"c{i}", "vars": {"word": f"{name}{i}"}, "expected": f"{name}{i}"}
                for i in range(cases)
            ],
            "scorers": [{"type": "contains"}],
            "threshold": 1.0,
        }
        (pytester.path / f"{name}.gpo.yaml").write_text(json.dumps(suite), encoding="utf-8")


def test_pytest_with_a_stalled_redis_finishes_in_bounded_time_with_one_warning(
    pytester: pytest.Pytester, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's case: a cached run, then Redis is SIGSTOPped. The second run still passes
    every suite (answers fetched again), within seconds, and says once that Redis was dropped."""
    with OpenAIServer() as api:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        _project(pytester, server.url, api.base_url, cases=20)
        warm = pytester.runpytest_subprocess("-p", "no:cacheprovider")
        warm.assert_outcomes(passed=2)
        assert api.chat_requests == 40
        server.stall()
        started = time.monotonic()
        stalled = pytester.runpytest_subprocess("-p", "no:cacheprovider")
        took = time.monotonic() - started
        stalled.assert_outcomes(passed=2)
        out = stalled.stdout.str() + stalled.stderr.str()
        warnings = [line for line in out.splitlines() if "Redis response cache" in line]
        assert len(warnings) == 1, out
        assert "used no cache" in warnings[0] and "***@127.0.0.1" in warnings[0]
        assert PASSWORD not in out
        assert "Traceback" not in out and "INTERNALERROR" not in out
        # 40 answers at 2 s per stalled call would be 80 s without the breaker
        assert took < 30, took
