"""A price for any model: declared in the ini file or on the command line, never in a suite.

With a declared price the cost of an unpriced (local, private, routed) model is computed and
``--gpo-max-cost`` holds for it; without one the cost is "unknown", never ``$0.0000``. Bad
prices are a usage error naming where they came from.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai_server import OpenAIServer

from pytest_gpo.errors import ConfigError
from pytest_gpo.llm.client import LiteLLMClient
from pytest_gpo.llm.loop import EventLoopRunner
from pytest_gpo.llm.pricing import ModelPrice, declared_price, parse_prices
from pytest_gpo.llm.setup import import_litellm
from pytest_gpo.llm.types import Completion, ErrorKind, Request, Usage
from pytest_gpo.settings import resolve


@pytest.fixture(autouse=True)
def _trust_api_base(monkeypatch: pytest.MonkeyPatch) -> None:
    """These suites reach the local test server through ``params.api_base``: the user trusts
    that key here, as a project would in its ini (docs/reliability.md#trust-model)."""
    monkeypatch.setenv("GPO_TRUSTED_PARAMS", "api_base")


pytest_plugins = ["pytester"]

import_litellm()

KEY = "sk-test-prices"


# -- parsing and validation ----------------------------------------------------------------


def test_ini_lines_command_line_and_wildcards() -> None:
    prices = parse_prices(
        "\n  openai/local = 0.2 0.6\n  # a comment\n  ollama/* = 0, 0\n  gpt-4o-mini=$1,2\n"
    )
    assert prices == {
        "openai/local": ModelPrice(0.2, 0.6),
        "ollama/*": ModelPrice(0.0, 0.0),
        "gpt-4o-mini": ModelPrice(1.0, 2.0),
    }
    assert parse_prices("a=1,2;b = 3 4") == {"a": ModelPrice(1, 2), "b": ModelPrice(3, 4)}
    assert declared_price(prices, "ollama/llama3:8b") == ModelPrice(0, 0)
    assert declared_price(prices, "openai/local") == ModelPrice(0.2, 0.6)
    assert declared_price(prices, "openai/other") is None
    assert declared_price({"openai/*": ModelPrice(9, 9), "openai/x": ModelPrice(1, 1)}, "openai/x")
    assert declared_price(None, "x") is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("openai/x = nan 1", "input price of 'openai/x' must be a finite number >= 0, got 'nan'"),
        ("openai/x = 1 inf", "output price of 'openai/x' must be a finite number >= 0"),
        ("openai/x = -1 1", "input price of 'openai/x' must be a finite number >= 0, got '-1'"),
        ("openai/x = cheap 1", "got 'cheap'"),
        ("openai/x = 1", "price of 'openai/x' needs two numbers"),
        ("openai/x = 1 2 3", "needs two numbers"),
        ("openai/x 1 2", "is not MODEL = INPUT OUTPUT"),
        ("= 1 2", "is not MODEL = INPUT OUTPUT"),
        ("a = 1 2; a = 3 4", "the price of 'a' is declared twice"),
        ("# only a comment", "no price declared"),
        ("openai/x = 1e400 1", "must be a finite number"),
    ],
)
def test_bad_prices_are_refused_naming_the_model(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        parse_prices(text)
    assert says in str(info.value)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_.:-]{0,12}(/[a-z0-9_.:*-]{1,12})?", fullmatch=True),
        st.tuples(
            st.floats(min_value=0, max_value=1e6, allow_nan=False),
            st.floats(min_value=0, max_value=1e6, allow_nan=False),
        ),
        min_size=1,
        max_size=5,
    ),
    st.sampled_from(["\n", ";"]),
    st.sampled_from([" = {} {}", "={},{}", " = {}, {}"]),
)
def test_property_declared_prices_read_back_exactly(
    declared: dict[str, tuple[float, float]], sep: str, form: str
) -> None:
    text = sep.join(m + form.format(repr(i), repr(o)) for m, (i, o) in declared.items())
    assert parse_prices(text) == {m: ModelPrice(i, o) for m, (i, o) in declared.items()}


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).filter(
            lambda v: not math.isfinite(v) or v < 0
        ),
        st.sampled_from(["nan", "inf", "-inf", "-0.5", "1e999", "NaN", "x"]),
    ),
    st.booleans(),
)
def test_property_no_bad_number_is_ever_accepted(bad: float | str, as_input: bool) -> None:
    raw = repr(bad) if isinstance(bad, float) else bad
    pair = (raw, "1") if as_input else ("1", raw)
    with pytest.raises(ValueError, match="must be a finite number >= 0"):
        parse_prices(f"openai/x = {pair[0]} {pair[1]}")


def _resolve(cli: dict[str, object], ini: dict[str, str], env: dict[str, str]) -> object:
    return resolve(
        rootdir=Path("."), cli=cli, ini=lambda key: ini.get(key, ""), env=env, ini_source="tox.ini"
    )


def test_settings_take_prices_from_each_trusted_place_and_name_a_bad_one() -> None:
    from_ini = _resolve({}, {"gpo_prices": "\nopenai/a = 1 2\nopenai/b = 3 4"}, {})
    assert from_ini.prices == {"openai/a": ModelPrice(1, 2), "openai/b": ModelPrice(3, 4)}  # type: ignore[attr-defined]
    from_env = _resolve({}, {}, {"GPO_PRICES": "openai/a=5,6"})
    assert from_env.prices == {"openai/a": ModelPrice(5, 6)}  # type: ignore[attr-defined]
    from_cli = _resolve({"prices": "openai/c=7,8"}, {"gpo_prices": "openai/a = 1 2"}, {})
    assert from_cli.prices == {"openai/c": ModelPrice(7, 8)}  # type: ignore[attr-defined]
    assert _resolve({}, {}, {}).prices is None  # type: ignore[attr-defined]
    for cli, ini, env, where in (
        ({"prices": "openai/x=nan,1"}, {}, {}, "--gpo-price"),
        ({}, {}, {"GPO_PRICES": "openai/x=-1,1"}, "environment variable GPO_PRICES"),
        ({}, {"gpo_prices": "\nopenai/x = 1 inf"}, {}, "tox.ini key gpo_prices"),
    ):
        with pytest.raises(ConfigError) as info:
            _resolve(cli, ini, env)
        text = info.value.render()
        assert where in text and "'openai/x'" in text and "finite number >= 0" in text


# -- cost text: unknown is never $0 ----------------------------------------------------------


completions = st.one_of(
    # answered from the cache or shared with a call in flight: nothing sent
    st.builds(Completion, texts=st.just(("answer",)), cached=st.just(True)),
    # sent: an answer or an error after 1-3 attempts, or refused before any attempt
    st.builds(
        Completion,
        texts=st.just(("answer",)),
        cost=st.one_of(st.none(), st.floats(min_value=0, max_value=1, allow_nan=False)),
        attempts=st.integers(min_value=0, max_value=3),
        error=st.sampled_from([None, None, "boom"]),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(completions, max_size=8))
def test_property_cost_text_is_unknown_whenever_a_sent_call_had_no_price(
    received: list[Completion],
) -> None:
    usage = Usage()
    for completion in received:
        usage.add(completion)
    sent = [c for c in received if not c.cached and c.attempts > 0]
    text = usage.cost_text()
    if any(c.cost is None for c in sent):
        assert "unknown" in text
    else:
        assert "unknown" not in text
    if not sent:
        assert text == "$0"
    known = sum(c.cost for c in sent if c.cost is not None)
    if known > 0:
        assert text not in ("$0", "$0.0000", "unknown")
    # merged across workers, the text is the same as counted in one process
    halves = Usage(), Usage()
    for i, completion in enumerate(received):
        halves[i % 2].add(completion)
    halves[0].merge(halves[1])
    assert halves[0].cost_text() == text


# -- the client: cost and the cost cap for a declared model -----------------------------------


@pytest.fixture
def runner() -> Iterator[EventLoopRunner]:
    with EventLoopRunner() as loop_runner:
        yield loop_runner


def ask(server: OpenAIServer, model: str, text: str = "one two three") -> Request:
    return Request(
        model=model,
        messages=({"role": "user", "content": text},),
        params={"api_base": server.base_url, "api_key": KEY, "max_tokens": 10},
    )


def test_a_declared_price_prices_an_unknown_model(
    runner: EventLoopRunner, openai_server: OpenAIServer
) -> None:
    client = LiteLLMClient(cache_mode="off", prices=parse_prices("openai/local = 2 4"))
    runner.client = client
    got = runner.run(client.complete(ask(openai_server, "openai/local")))
    assert got.ok and got.cost is not None
    assert got.cost == pytest.approx((got.prompt_tokens * 2 + got.completion_tokens * 4) / 1e6)
    assert client.cost_spent == pytest.approx(got.cost) and client.unpriced_models == set()
    assert client.usage.cost_text() == f"${got.cost:.4f}" or client.usage.cost_text() == "<$0.0001"


def test_a_declared_price_wins_over_litellms(
    runner: EventLoopRunner, openai_server: OpenAIServer
) -> None:
    client = LiteLLMClient(cache_mode="off", prices={"openai/gpt-4o-mini": ModelPrice(0, 0)})
    runner.client = client
    got = runner.run(client.complete(ask(openai_server, "openai/gpt-4o-mini")))
    assert got.cost == 0.0


def test_without_a_price_the_cost_is_unknown_even_when_every_call_failed(
    runner: EventLoopRunner, openai_server: OpenAIServer
) -> None:
    client = LiteLLMClient(cache_mode="off", max_attempts=2, backoff_base=0.001)
    runner.client = client
    openai_server.script("500", "500")
    got = runner.run(client.complete(ask(openai_server, "openai/local")))
    assert not got.ok and client.usage.calls == 2
    assert client.usage.cost_text() == "unknown"
    # a priced model's refused attempts cost nothing, and say so
    priced = LiteLLMClient(cache_mode="off", max_attempts=2, backoff_base=0.001)
    runner.client = priced
    openai_server.script("500", "500")
    runner.run(priced.complete(ask(openai_server, "openai/gpt-4o-mini")))
    assert priced.usage.cost_text() == "$0.0000"


def test_the_cost_cap_holds_for_a_declared_model(
    runner: EventLoopRunner, openai_server: OpenAIServer
) -> None:
    # about 3 prompt tokens and at most 10 output tokens at $1,000 per million: ~$0.013 a call
    client = LiteLLMClient(
        cache_mode="off",
        concurrency=4,
        max_cost=0.05,
        prices=parse_prices("openai/local = 1000 1000"),
    )
    runner.client = client

    async def go() -> list[Completion]:
        reqs = [ask(openai_server, "openai/local", f"q {i}") for i in range(20)]
        return list(await asyncio.gather(*(client.complete(r) for r in reqs)))

    got = runner.run(go())
    answered = [c for c in got if c.ok]
    refused = [c for c in got if c.error_kind == ErrorKind.BUDGET]
    assert answered and refused and len(answered) + len(refused) == 20
    assert client.cost_spent <= 0.05
    assert openai_server.chat_requests == len(answered)
    assert client.unpriced_models == set()


# -- end to end --------------------------------------------------------------------------------


def write_project(root: Path, api_base: str, n: int = 6, extra: str = "") -> None:
    (root / "say.txt").write_text("Repeat: {{ word }}\n", encoding="utf-8")
    cases = "\n".join(
        f"  - {{id: c{i}, vars: {{word: w{i}}}, expected: 'Repeat: w{i}'}}" for i in range(n)
    )
    (root / "say.gpo.yaml").write_text(
        f"name: say\nprompt: say.txt\nthreshold: 0\nparams: {{api_base: '{api_base}'{extra}}}\n"
        f"cases:\n{cases}\n",
        encoding="utf-8",
    )


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return KEY


def _cost_texts(pytester: pytest.Pytester) -> tuple[str, str]:
    data = json.loads((pytester.path / "report.json").read_text("utf-8"))
    return data["suites"][0]["cost_text"], data["totals"]["cost_text"]


def test_an_ini_price_gives_the_cost_everywhere_and_none_shows_unknown(
    pytester: pytest.Pytester, api_key: str
) -> None:
    with OpenAIServer() as server:
        write_project(pytester.path, server.base_url)
        pytester.makeini("[pytest]\ngpo_model = openai/local\ngpo_cache = off\n")
        unpriced = pytester.runpytest("-p", "no:cacheprovider", "--gpo-report", "report.md")
        unpriced.assert_outcomes(passed=1)
        out = unpriced.stdout.str()
        assert "cost: unknown" in out and "$0.0000" not in out
        assert _cost_texts(pytester) == ("unknown", "unknown")
        pytester.makeini(
            "[pytest]\ngpo_model = openai/local\ngpo_cache = off\n"
            "gpo_prices =\n    openai/local = 1000 2000\n    other/* = 0 0\n"
        )
        priced = pytester.runpytest("-p", "no:cacheprovider", "--gpo-report", "report.md")
        priced.assert_outcomes(passed=1)
    out = priced.stdout.str()
    assert "cost: unknown" not in out and "could not be checked" not in out
    suite_text, total_text = _cost_texts(pytester)
    assert suite_text == total_text and suite_text.startswith("$") and suite_text != "$0.0000"
    assert f"cost: {total_text}" in out
    assert total_text in (pytester.path / "report.md").read_text("utf-8")


def test_a_command_line_price_makes_the_cost_cap_hold(
    pytester: pytest.Pytester, api_key: str
) -> None:
    with OpenAIServer() as server:
        write_project(pytester.path, server.base_url, n=20, extra=", max_tokens: 5")
        pytester.makeini("[pytest]\ngpo_model = openai/local\ngpo_cache = off\n")
        # ~$0.0004 a call, estimated at up to ~$0.0015 beforehand: a handful fit in $0.004
        result = pytester.runpytest(
            "-p",
            "no:cacheprovider",
            "--gpo-price",
            "openai/local=100,100",
            "--gpo-max-cost",
            "0.004",
            "-o",
            "gpo_concurrency=1",
        )
        result.assert_outcomes(errors=1)
        out = result.stdout.str()
        assert "cost budget exhausted" in out, out
        assert "could not be checked" not in out
        assert 0 < server.chat_requests < 20


def test_a_bad_price_is_a_usage_error_naming_where_it_came_from(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\ngpo_prices =\n    openai/local = 1 -2\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "gpo_prices" in err and "output price of 'openai/local'" in err
    result = pytester.runpytest("-p", "no:cacheprovider", "--gpo-price", "openai/x=nan,1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--gpo-price" in result.stderr.str() and "'openai/x'" in result.stderr.str()


def test_a_suite_file_cannot_declare_a_price(pytester: pytest.Pytester, api_key: str) -> None:
    pytester.makeini("[pytest]\ngpo_model = openai/gpt-4o-mini\ngpo_max_cost = 0.0001\n")
    with OpenAIServer() as server:
        write_project(pytester.path, server.base_url)
        suite = pytester.path / "say.gpo.yaml"
        text = suite.read_text("utf-8")
        suite.write_text(text + "prices: {openai/gpt-4o-mini: [0, 0]}\n", encoding="utf-8")
        result = pytester.runpytest("-p", "no:cacheprovider")
        result.assert_outcomes(failed=1)
        assert "unknown key 'prices'" in result.stdout.str()
        # litellm's own per-call pricing params would bill a priced model at $0: refused
        suite.write_text(
            text.replace("params: {", "params: {input_cost_per_token: 0, "), encoding="utf-8"
        )
        result = pytester.runpytest("-p", "no:cacheprovider")
        result.assert_outcomes(failed=1)
        out = result.stdout.str()
        assert "key 'params.input_cost_per_token'" in out
        assert "a suite file cannot set the model's price" in out
        assert "gpo_prices" in out
        assert server.chat_requests == 0
