"""Reliability, provider faults: a flaky provider changes nothing but the wall time.

The local OpenAI-compatible server injects rate limits (with ``Retry-After``), server errors,
hangs past the timeout, malformed bodies and dropped connections, through the real litellm HTTP
path. A suite that completes must give exactly the per-case outputs and scores of a fault-free
run; a call that fails on every attempt makes the suite an *error* (not a failure) and is
never cached. See docs/reliability.md.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai_server import Fault, OpenAIServer

from pytest_gpo.evaluate import EvalOptions, evaluate
from pytest_gpo.llm.cache import FileCache, decode_entry
from pytest_gpo.llm.client import LiteLLMClient
from pytest_gpo.llm.loop import EventLoopRunner
from pytest_gpo.llm.setup import import_litellm
from pytest_gpo.llm.types import Request
from pytest_gpo.results import SuiteRun
from pytest_gpo.scorers.registry import builtin_registry
from pytest_gpo.suites.load import load_suite


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

#: The fault mix of the issue: 20% 429 (Retry-After), 10% 500, 5% hangs, 2% malformed, 2% drops.
FAULTS = {"429": 0.20, "500": 0.10, "hang": 0.05, "malformed": 0.02, "drop": 0.02}
KEY = "sk-test-reliability"


def last_word(body: dict[str, Any]) -> str:
    """Deterministic answer: the last word of the user message."""
    return str(body["messages"][-1]["content"]).split()[-1]


def write_project(root: Path, n: int, api_base: str | None = None) -> Path:
    """A suite of ``n`` cases whose expected answers pass for two cases in three."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "say.txt").write_text("Repeat the last word: {{ word }}\n", encoding="utf-8")
    with open(root / "cases.jsonl", "w", encoding="utf-8") as handle:
        for i in range(n):
            expected = f"w{i}" if i % 3 else "nope"
            handle.write(
                json.dumps({"id": f"c{i}", "vars": {"word": f"w{i}"}, "expected": expected}) + "\n"
            )
    params = f"params: {{api_base: '{api_base}'}}\n" if api_base else ""
    suite = root / "say.gpo.yaml"
    suite.write_text(
        "name: say\nprompt: say.txt\ncases: cases.jsonl\nthreshold: 0.5\n" + params,
        encoding="utf-8",
    )
    return suite


def outcome(run: SuiteRun) -> list[tuple[str, list[str], float, bool]]:
    """Per case: id, outputs of every run, score, verdict."""
    return [(c.case_id, [r.output for r in c.runs], c.score, c.passed) for c in run.cases]


def run_direct(
    tmp: Path, server: OpenAIServer, label: str, n: int, timeout: float = 0.5
) -> tuple[SuiteRun, Path]:
    suite = load_suite(
        write_project(tmp / label, n, server.base_url),
        builtin_registry(),
        trusted_params=("api_base",),
    )
    cache_dir = tmp / label / "cache"
    client = LiteLLMClient(
        cache=FileCache(cache_dir),
        concurrency=64,
        timeout=timeout,
        max_attempts=20,
        backoff_base=0.01,
        backoff_max=0.05,
        seed=0,
    )
    with EventLoopRunner(client) as runner:
        run = runner.run(evaluate(suite, client, EvalOptions(model="openai/echo")))
    return run, cache_dir


def cached_texts(cache_dir: Path) -> dict[str, list[str]]:
    """Every entry of a file cache, decoded (a corrupt one would fail the test)."""
    out: dict[str, list[str]] = {}
    for path in cache_dir.rglob("*.json"):
        payload = decode_entry(path.stem, path.read_bytes())
        assert payload is not None, f"corrupt cache entry {path}"
        out[path.stem] = payload["texts"]
    return out


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The key litellm sends to the local server."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    yield KEY


def test_thousand_cases_under_faults_match_the_fault_free_run(tmp_path: Path, api_key: str) -> None:
    n = 1000
    with OpenAIServer(responder=last_word, latency=0.001) as clean_server:
        # The fault-free reference gets a generous timeout: on a loaded 2-core CI machine a burst
        # of 64 requests can take longer than the 0.5 s the faulty run needs to cut hangs short,
        # and a spurious retry here would make the "one request per case" check meaningless.
        clean, clean_cache = run_direct(tmp_path, clean_server, "clean", n, timeout=30.0)
        assert clean_server.chat_requests == n
    with OpenAIServer(
        responder=last_word,
        fault_rates=FAULTS,
        retry_after=0.01,
        hang_seconds=3,
        latency=0.001,
        seed=7,
    ) as faulty_server:
        faulty, faulty_cache = run_direct(tmp_path, faulty_server, "faulty", n)
        served = faulty_server.faults_served
    # the faults really happened, each kind many times
    for kind, rate in FAULTS.items():
        assert served.count(kind) >= n * rate / 3, (kind, served.count(kind))
    assert faulty.errors == [] and clean.errors == []
    assert outcome(faulty) == outcome(clean)
    assert faulty.score == clean.score and 0.5 < clean.score < 0.8
    # every answer cached exactly once, identical to the fault-free cache; no error was cached
    assert cached_texts(faulty_cache) == cached_texts(clean_cache)
    assert len(cached_texts(faulty_cache)) == n
    # retries were needed (counted by the client; the server may see a few more or fewer
    # requests than attempts: a dropped keep-alive connection can fail before it arrives)
    assert faulty.usage.retries > n * 0.2 and len(served) > n * 1.2


def _pytest_project(pytester: pytest.Pytester, base_url: str, cache_dir: str, n: int) -> None:
    pytester.makeini(
        "[pytest]\ngpo_model = openai/echo\ngpo_timeout = 0.5\ngpo_concurrency = 32\n"
        f"gpo_max_attempts = 20\ngpo_cache_dir = {cache_dir}\n"
        # the test server on 127.0.0.1 stands in for a remote provider whose hangs are transient
        "gpo_retry_local_timeouts = true\n"
    )
    write_project(pytester.path, n, base_url)


def _report_cases(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    data = json.loads((pytester.path / ".gpo" / "report.json").read_text(encoding="utf-8"))
    cases: list[dict[str, Any]] = data["suites"][0]["cases"]
    return cases


def test_two_hundred_cases_under_faults_through_pytest(
    pytester: pytest.Pytester, api_key: str
) -> None:
    """The settings path (--gpo-timeout, --gpo-max-attempts, default backoff) end to end."""
    n = 200
    with OpenAIServer(responder=last_word, latency=0.001) as clean_server:
        _pytest_project(pytester, clean_server.base_url, ".gpo/clean-cache", n)
        result = pytester.runpytest("-p", "no:cacheprovider", "--gpo-report", ".gpo/report.md")
        result.assert_outcomes(passed=1)
        clean_cases = _report_cases(pytester)
    with OpenAIServer(
        responder=last_word,
        fault_rates=FAULTS,
        retry_after=0.01,
        hang_seconds=3,
        latency=0.001,
        seed=11,
    ) as server:
        _pytest_project(pytester, server.base_url, ".gpo/faulty-cache", n)
        result = pytester.runpytest("-p", "no:cacheprovider", "--gpo-report", ".gpo/report.md")
        result.assert_outcomes(passed=1)
        assert server.chat_requests > n
        assert {"429", "500", "hang"} <= set(server.faults_served)
    assert _report_cases(pytester) == clean_cases
    assert len(clean_cases) == n
    clean_texts = cached_texts(pytester.path / ".gpo" / "clean-cache")
    assert cached_texts(pytester.path / ".gpo" / "faulty-cache") == clean_texts
    assert len(clean_texts) == n
    assert "INTERNALERROR" not in result.stdout.str()


POISON = "w13"


class PoisonServer(OpenAIServer):
    """Answers like the plain server, except that one case always gets a 500 (every attempt)."""

    async def _enter(self, request: Any) -> tuple[dict[str, Any] | None, Fault | None]:
        body, fault = await super()._enter(request)
        if body is not None and last_word(body) == POISON:
            return body, Fault("500")
        return body, fault


def test_call_failing_every_attempt_errors_the_suite_and_is_never_cached(
    pytester: pytest.Pytester, api_key: str
) -> None:
    with PoisonServer(responder=last_word) as server:
        pytester.makeini("[pytest]\ngpo_model = openai/echo\ngpo_timeout = 2\n")
        write_project(pytester.path, 20, server.base_url)
        result = pytester.runpytest(
            "-p",
            "no:cacheprovider",
            "--gpo-max-attempts",
            "3",
            "--gpo-update-baseline",
            "--gpo-report",
            ".gpo/report.md",
        )
        # an error (E), not a failure (F): the prompt is not to blame
        result.assert_outcomes(errors=1)
        out = result.stdout.str()
        assert "model calls failed after every retry" in out
        assert "case 'c13'" in out and "after 3 attempts" in out
        assert "The server had an error while processing" in out  # the provider's words
        assert "below threshold" not in out and "regressed" not in out
        assert "Traceback" not in out and "INTERNALERROR" not in out
        assert server.chat_requests == 19 + 3
        report = json.loads((pytester.path / ".gpo" / "report.json").read_text("utf-8"))
        assert report["suites"][0]["status"] == "error"
        # the baseline is never written from an incomplete run
        assert not (pytester.path / ".gpo" / "baseline.json").exists()
    cache = pytester.path / ".gpo" / "cache"
    texts = cached_texts(cache)
    assert len(texts) == 19 and [POISON] not in texts.values()
    # replay: the 19 good answers are there, the failed one is a miss (it was never cached)
    replay = pytester.runpytest("-p", "no:cacheprovider", "--gpo-cache", "replay")
    replay.assert_outcomes(errors=1)
    replay.stdout.fnmatch_lines(["*responses missing from the cache*", "*case 'c13'*"])
    assert replay.stdout.str().count("  case 'c") == 1
    # the provider recovers: only the missing answer is fetched and the suite passes
    with OpenAIServer(responder=last_word) as healthy:
        write_project(pytester.path, 20, healthy.base_url)
        again = pytester.runpytest("-p", "no:cacheprovider")
        again.assert_outcomes(passed=1)
        assert healthy.chat_requests == 1
    assert len(cached_texts(cache)) == 20


@pytest.mark.parametrize("fault", ["400", "401", "404", "quota"])
def test_request_errors_are_not_retried_and_never_cached(
    tmp_path: Path, api_key: str, fault: str
) -> None:
    with OpenAIServer(faults=[fault]) as server, EventLoopRunner() as runner:
        client = LiteLLMClient(cache=FileCache(tmp_path), backoff_base=0.01, timeout=2, seed=0)
        runner.client = client
        request = Request(
            model="openai/echo",
            messages=({"role": "user", "content": "hello"},),
            params={"api_base": server.base_url},
        )
        first = runner.run(client.complete(request))
        kind = "credentials" if fault == "401" else "provider"
        assert not first.ok and first.error_kind == kind and first.attempts == 1
        assert list(tmp_path.rglob("*.json")) == []
        if fault == "401":
            # a refused key is not sent again in this run; the next run tries it again
            again = runner.run(client.complete(request))
            assert again.error_kind == "credentials" and again.attempts == 0
            assert server.chat_requests == 1
            client = LiteLLMClient(cache=FileCache(tmp_path), backoff_base=0.01, timeout=2)
            runner.client = client
        second = runner.run(client.complete(request))
        assert second.ok and not second.cached and server.chat_requests == 2
        assert len(list(tmp_path.rglob("*.json"))) == 1


def test_client_caches_an_answer_holding_a_lone_surrogate(tmp_path: Path, api_key: str) -> None:
    """BUG (pytest_gpo/client.py, not fixed here): JSON may carry half a surrogate pair.

    ``"\\ud83d"`` is valid JSON (a provider cutting an emoji at ``max_tokens``); Python decodes
    it into a ``str`` that cannot be encoded as UTF-8, so ``FileCache.put`` fails and the
    client records a cache error: the answer is never cached, and ``--gpo-cache replay`` then
    misses it in CI. The same text inside a prompt makes ``Request.cache_key`` raise. Suggested
    fix: replace lone surrogates with U+FFFD when reading a response (as
    ``pytest_gpo.evaluate.valid_text`` does for outputs).
    """
    with OpenAIServer(responder=lambda body: "cut emoji \ud83d") as server:
        with EventLoopRunner() as runner:
            client = LiteLLMClient(cache=FileCache(tmp_path), timeout=2, seed=0)
            runner.client = client
            request = Request(
                model="openai/echo",
                messages=({"role": "user", "content": "hello"},),
                params={"api_base": server.base_url},
            )
            first = runner.run(client.complete(request))
            assert first.ok
            second = runner.run(client.complete(request))
        assert client.cache_errors == []
        assert second.cached and server.chat_requests == 1


def test_lone_surrogate_in_an_output_does_not_break_the_run(
    pytester: pytest.Pytester, api_key: str
) -> None:
    """The gate, the report, JUnit XML and the baseline survive invalid Unicode in an answer."""
    with OpenAIServer(responder=lambda body: "cut emoji \ud83d") as server:
        pytester.makeini("[pytest]\ngpo_model = openai/echo\n")
        write_project(pytester.path, 3, server.base_url)
        (pytester.path / "say.gpo.yaml").write_text(
            textwrap.dedent(f"""\
                name: say
                prompt: say.txt
                cases: cases.jsonl
                threshold: 0
                params: {{api_base: '{server.base_url}'}}
            """),
            encoding="utf-8",
        )
        result = pytester.runpytest(
            "-p",
            "no:cacheprovider",
            "--gpo-report",
            ".gpo/report.md",
            "--junitxml",
            "j.xml",
            "--gpo-update-baseline",
        )
    result.assert_outcomes(passed=1)
    assert "INTERNALERROR" not in result.stdout.str()
    report = json.loads((pytester.path / ".gpo" / "report.json").read_text(encoding="utf-8"))
    assert report["suites"][0]["status"] == "no_baseline" or report["suites"][0]["passed"]
    assert (pytester.path / ".gpo" / "baseline.json").is_file()
