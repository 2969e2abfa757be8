"""No answer is made of nothing: replies without an answer are never cached, scored or baselined.

The local server serves the bad shapes of a 200 reply (``content: null`` or ``""``, a tool call
and no text, ``finish_reason: content_filter``, ``choices: []``, an ``error`` object in a 200
body) through the real litellm HTTP path. The transient ones are retried within
``--gpo-max-attempts``; each is reported by its :class:`~pytest_gpo.llm.types.ErrorKind`, and a
suite that gets one errors (E) naming the kind instead of failing.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai_server import REPLY_SHAPES, Fault, OpenAIServer

from pytest_gpo.llm.cache import FileCache, decode_entry
from pytest_gpo.llm.client import LiteLLMClient
from pytest_gpo.llm.loop import EventLoopRunner
from pytest_gpo.llm.setup import import_litellm
from pytest_gpo.llm.types import ErrorKind, Request


@pytest.fixture(autouse=True)
def _trust_api_base(monkeypatch: pytest.MonkeyPatch) -> None:
    """These suites reach the local test server through ``params.api_base``: the user trusts
    that key here, as a project would in its ini (docs/reliability.md#trust-model)."""
    monkeypatch.setenv("GPO_TRUSTED_PARAMS", "api_base")


pytest_plugins = ["pytester"]

# see tests/test_reliability_faults.py: one litellm for the whole session, imported before any
# in-process pytester run
import_litellm()

KEY = "sk-test-empty"

#: What each bad shape is reported as, and whether another attempt may bring an answer.
SHAPES: dict[str, tuple[ErrorKind, bool]] = {
    "null_content": (ErrorKind.EMPTY, True),
    "empty_content": (ErrorKind.EMPTY, True),
    "blank_content": (ErrorKind.EMPTY, True),
    "no_choices": (ErrorKind.EMPTY, True),
    "error_body": (ErrorKind.PROVIDER, True),
    "tool_calls": (ErrorKind.EMPTY, False),
    "content_filter": (ErrorKind.FILTERED, False),
}
TRANSIENT = sorted(s for s, (_, retry) in SHAPES.items() if retry)
FINAL = sorted(s for s, (_, retry) in SHAPES.items() if not retry)


def test_every_reply_shape_of_the_server_is_covered() -> None:
    assert set(SHAPES) == REPLY_SHAPES


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


@pytest.fixture
def runner() -> Iterator[EventLoopRunner]:
    with EventLoopRunner() as loop_runner:
        yield loop_runner


def make_client(runner: EventLoopRunner, cache_dir: Path, max_attempts: int) -> LiteLLMClient:
    client = LiteLLMClient(
        cache=FileCache(cache_dir),
        max_attempts=max_attempts,
        backoff_base=0.001,
        backoff_max=0.002,
        timeout=5,
        seed=0,
    )
    runner.client = client
    return client


def ask(server: OpenAIServer, text: str) -> Request:
    return Request(
        model="openai/echo",
        messages=({"role": "user", "content": text},),
        params={"api_base": server.base_url, "api_key": KEY},
    )


def cached_texts(cache_dir: Path) -> list[list[str]]:
    out = []
    for path in sorted(cache_dir.rglob("*.json")):
        payload = decode_entry(path.stem, path.read_bytes())
        assert payload is not None
        out.append(payload["texts"])
    return out


@pytest.mark.parametrize("shape", TRANSIENT)
def test_one_bad_reply_then_answers_is_retried_and_the_answer_cached(
    server: OpenAIServer, runner: EventLoopRunner, tmp_path: Path, shape: str
) -> None:
    server.reset_counters()
    server.script(shape)
    client = make_client(runner, tmp_path, max_attempts=3)
    got = runner.run(client.complete(ask(server, "hello")))
    assert got.ok and got.texts == ("echo: hello",) and got.attempts == 2, got.error
    assert server.chat_requests == 2 and server.faults_served == [shape, "ok"]
    assert cached_texts(tmp_path) == [["echo: hello"]]
    assert client.usage.calls == 2 and client.usage.retries == 1


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_bad_reply_on_every_attempt_is_an_error_of_its_kind_and_never_cached(
    server: OpenAIServer, runner: EventLoopRunner, tmp_path: Path, shape: str
) -> None:
    kind, transient = SHAPES[shape]
    server.reset_counters()
    server.script(*[shape] * 3)
    client = make_client(runner, tmp_path, max_attempts=3)
    got = runner.run(client.complete(ask(server, "hello")))
    assert not got.ok and got.error_kind == kind and got.texts == ()
    assert got.attempts == server.chat_requests == (3 if transient else 1)
    assert list(tmp_path.rglob("*.json")) == []
    server._script.clear()


def test_a_good_choice_among_bad_ones_is_kept_and_the_rest_asked_again(
    runner: EventLoopRunner, tmp_path: Path
) -> None:
    class OneEmptyChoice(OpenAIServer):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        async def _chat(self, request: Any) -> Any:
            self.calls += 1
            if self.calls == 1:
                from aiohttp import web

                choices = [
                    {"index": 0, "message": {"role": "assistant", "content": "one"}},
                    {"index": 1, "message": {"role": "assistant", "content": None}},
                ]
                return web.json_response(
                    {"id": "x", "object": "chat.completion", "choices": choices}
                )
            return await super()._chat(request)

    with OneEmptyChoice() as srv:
        client = make_client(runner, tmp_path, max_attempts=2)
        request = Request(
            model="openai/echo",
            messages=({"role": "user", "content": "two"},),
            params={"api_base": srv.base_url, "api_key": KEY},
            n=2,
        )
        got = runner.run(client.complete(request))
    assert got.ok and got.texts == ("one", "echo: two")
    assert all(t for t in got.texts)


def expected_outcome(script: list[str], max_attempts: int) -> tuple[str | None, int]:
    """The client's contract for a script of replies: (error kind or None, attempts made)."""
    for attempt in range(1, max_attempts + 1):
        shape = script[attempt - 1] if attempt <= len(script) else "ok"
        if shape == "ok":
            return None, attempt
        kind, transient = SHAPES[shape]
        if not transient or attempt == max_attempts:
            return str(kind), attempt
    raise AssertionError("unreachable")


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    script=st.lists(st.sampled_from([*SHAPES, "ok"]), max_size=5),
    max_attempts=st.integers(min_value=1, max_value=4),
)
def test_property_nothing_but_the_real_answer_is_ever_returned_or_cached(
    server: OpenAIServer, runner: EventLoopRunner, script: list[str], max_attempts: int
) -> None:
    """Whatever mix of bad replies comes back: the completion is the real answer or an error of
    the right kind, after exactly the attempts the retry policy allows; only a real answer is
    cached, and each attempt is one request."""
    server.reset_counters()
    server._script.clear()
    server.script(*script)
    with tempfile.TemporaryDirectory() as tmp:
        cache_dir = Path(tmp)
        client = make_client(runner, cache_dir, max_attempts)
        got = runner.run(client.complete(ask(server, "the question")))
        kind, attempts = expected_outcome(script, max_attempts)
        assert got.attempts == attempts == server.chat_requests
        if kind is None:
            assert got.ok and got.texts == ("echo: the question",)
            assert cached_texts(cache_dir) == [["echo: the question"]]
        else:
            assert not got.ok and got.error_kind == kind and got.texts == ()
            assert cached_texts(cache_dir) == []
    server._script.clear()


# -- end to end: the suite errors naming the kind; nothing reaches the cache or the baseline --

POISON = "w3"


class BadForOneCase(OpenAIServer):
    """Answers the last word, except that case ``w3`` always gets the bad reply ``shape``."""

    def __init__(self, shape: str) -> None:
        super().__init__(responder=lambda body: str(body["messages"][-1]["content"]).split()[-1])
        self.shape = shape

    async def _enter(self, request: Any) -> tuple[dict[str, Any] | None, Fault | None]:
        body, fault = await super()._enter(request)
        if body is not None and str(body["messages"][-1]["content"]).split()[-1] == POISON:
            return body, Fault(self.shape)
        return body, fault


def write_project(root: Path, api_base: str, n: int = 8) -> None:
    (root / "say.txt").write_text("Repeat the last word: {{ word }}\n", encoding="utf-8")
    cases = "\n".join(f"  - {{id: c{i}, vars: {{word: w{i}}}, expected: w{i}}}" for i in range(n))
    (root / "say.gpo.yaml").write_text(
        f"name: say\nprompt: say.txt\nthreshold: 0.5\nparams: {{api_base: '{api_base}'}}\n"
        f"cases:\n{cases}\n",
        encoding="utf-8",
    )


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return KEY


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_case_always_answered_with_nothing_errors_the_suite_by_kind(
    pytester: pytest.Pytester, api_key: str, shape: str
) -> None:
    kind, transient = SHAPES[shape]
    pytester.makeini("[pytest]\ngpo_model = openai/echo\ngpo_timeout = 5\n")
    with BadForOneCase(shape) as server:
        write_project(pytester.path, server.base_url)
        result = pytester.runpytest(
            "-p",
            "no:cacheprovider",
            "--gpo-max-attempts",
            "3",
            "--gpo-update-baseline",
            "--gpo-report",
            ".gpo/report.md",
        )
        # an error (E) naming the kind, not a failure of the prompt
        result.assert_outcomes(errors=1)
        out = result.stdout.str()
        assert kind.text in out
        assert "case 'c3'" in out
        assert "below threshold" not in out and "Traceback" not in out
        assert "INTERNALERROR" not in out
        assert server.chat_requests == 7 + (3 if transient else 1)
    report = json.loads((pytester.path / ".gpo" / "report.json").read_text("utf-8"))
    assert report["suites"][0]["status"] == "error"
    assert not (pytester.path / ".gpo" / "baseline.json").exists()
    cache = pytester.path / ".gpo" / "cache"
    texts = cached_texts(cache)
    assert len(texts) == 7 and all(t and t[0] for t in texts) and [POISON] not in texts
    # replay makes no call and does not replay a failure: the bad case is a cache miss
    with OpenAIServer() as untouched:
        write_project(pytester.path, untouched.base_url)
        replay = pytester.runpytest("-p", "no:cacheprovider", "--gpo-cache", "replay")
        replay.assert_outcomes(errors=1)
        assert untouched.chat_requests == 0
    replayed = replay.stdout.str()
    assert ErrorKind.CACHE_MISS.text in replayed and "case 'c3'" in replayed
    assert kind.text not in replayed


@pytest.mark.parametrize("shape", TRANSIENT)
def test_one_bad_reply_in_a_suite_is_retried_and_the_suite_passes(
    pytester: pytest.Pytester, api_key: str, shape: str
) -> None:
    pytester.makeini("[pytest]\ngpo_model = openai/echo\ngpo_timeout = 5\ngpo_concurrency = 1\n")
    responder = lambda body: str(body["messages"][-1]["content"]).split()[-1]  # noqa: E731
    with OpenAIServer(responder=responder, faults=[shape]) as server:
        write_project(pytester.path, server.base_url)
        result = pytester.runpytest("-p", "no:cacheprovider", "--gpo-update-baseline")
        result.assert_outcomes(passed=1)
        assert server.chat_requests == 9
    texts = cached_texts(pytester.path / ".gpo" / "cache")
    assert sorted(t[0] for t in texts) == [f"w{i}" for i in range(8)]
    baseline = json.loads((pytester.path / ".gpo" / "baseline.json").read_text("utf-8"))
    assert "say" in json.dumps(baseline)
    with OpenAIServer() as untouched:
        write_project(pytester.path, untouched.base_url)
        replay = pytester.runpytest("-p", "no:cacheprovider", "--gpo-cache", "replay")
        replay.assert_outcomes(passed=1)
        assert untouched.chat_requests == 0
