"""Reliability, cache keys and cache entries.

:meth:`pytest_gpo.llm.types.Request.cache_key` must change with everything that can change a
model's answer (model, messages, output parameters, sample index, n) and with nothing else
(dict order, transport parameters such as ``api_base``, ``api_key``, ``timeout``, headers).
A stored entry that is corrupt, truncated or belongs to another key is never returned: it is a
miss, and the next answer repairs it. See docs/reliability.md.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai_server import OpenAIServer

from pytest_gpo.llm.cache import FileCache, decode_entry, encode_entry
from pytest_gpo.llm.client import LiteLLMClient
from pytest_gpo.llm.loop import EventLoopRunner
from pytest_gpo.llm.types import TRANSPORT_PARAMS, Request, canonical_json

PROPERTY = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

#: Parameters that change what a model answers (a sample; any name not in TRANSPORT_PARAMS).
OUTPUT_PARAMS = [
    "temperature",
    "top_p",
    "max_tokens",
    "seed",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "response_format",
    "tools",
    "tool_choice",
    "reasoning_effort",
    "user",
    "logprobs",
    "top_k",
]

text = st.text(max_size=20)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
output_params = st.dictionaries(
    st.sampled_from(OUTPUT_PARAMS) | text.filter(lambda k: k not in TRANSPORT_PARAMS),
    json_value,
    max_size=4,
)
transport_params = st.dictionaries(
    st.sampled_from(sorted(TRANSPORT_PARAMS)),
    json_value | st.sampled_from(["http://127.0.0.1:1/v1", "sk-SECRET-123456", 30]),
    max_size=4,
)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant"]), "content": text}
)
request = st.builds(
    Request,
    model=st.sampled_from(["openai/gpt-4o-mini", "gpo-sim/task", "ollama/llama3"]) | text,
    messages=st.lists(message, min_size=1, max_size=3).map(tuple),
    params=output_params,
    sample=st.integers(0, 50),
    n=st.integers(1, 5),
)


def different(a: Any, b: Any) -> bool:
    return canonical_json(a) != canonical_json(b)


@st.composite
def changed(draw: st.DrawFn, req: Request) -> tuple[str, Request]:
    """One output-changing edit of ``req``: (what changed, the new request)."""
    kind = draw(
        st.sampled_from(
            [
                "model",
                "content",
                "role",
                "add_message",
                "drop_message",
                "message_field",
                "param_value",
                "add_param",
                "drop_param",
                "sample",
                "n",
            ]
        )
    )
    messages = [dict(m) for m in req.messages]
    params = dict(req.params)
    if kind == "model":
        model = draw(text.filter(lambda m: m != req.model))
        return kind, Request(model, req.messages, params, req.sample, req.n)
    if kind == "content":
        i = draw(st.integers(0, len(messages) - 1))
        messages[i]["content"] = draw(text.filter(lambda t: t != messages[i]["content"]))
    elif kind == "role":
        i = draw(st.integers(0, len(messages) - 1))
        messages[i]["role"] = draw(
            st.sampled_from(["system", "user", "assistant", "tool"]).filter(
                lambda r: r != messages[i]["role"]
            )
        )
    elif kind == "add_message":
        messages.insert(draw(st.integers(0, len(messages))), draw(message))
    elif kind == "drop_message":
        if len(messages) == 1:
            messages.append(draw(message))
        else:
            messages.pop(draw(st.integers(0, len(messages) - 1)))
    elif kind == "message_field":
        i = draw(st.integers(0, len(messages) - 1))
        messages[i]["name"] = draw(text)
    elif kind == "param_value" and params:
        name = draw(st.sampled_from(sorted(params)))
        params[name] = draw(json_value.filter(lambda v: different(v, params[name])))
    elif kind in ("add_param", "param_value"):
        name = draw(st.sampled_from(OUTPUT_PARAMS).filter(lambda k: k not in params))
        params[name] = draw(json_value)
    elif kind == "drop_param":
        if params:
            params.pop(draw(st.sampled_from(sorted(params))))
        else:
            params["temperature"] = 0
    elif kind == "sample":
        return kind, Request(
            req.model,
            req.messages,
            params,
            draw(st.integers(0, 50).filter(lambda s: s != req.sample)),
            req.n,
        )
    elif kind == "n":
        return kind, Request(
            req.model,
            req.messages,
            params,
            req.sample,
            draw(st.integers(1, 5).filter(lambda n: n != req.n)),
        )
    return kind, Request(req.model, tuple(messages), params, req.sample, req.n)


@PROPERTY
@given(st.data())
def test_every_output_changing_field_changes_the_key(data: st.DataObject) -> None:
    req = data.draw(request)
    kind, other = data.draw(changed(req))
    assert other.cache_key() != req.cache_key(), kind


@PROPERTY
@given(
    request,
    transport_params,
    st.randoms(use_true_random=False),
    st.sampled_from(["task", "judge", "optimizer"]),
)
def test_dict_order_transport_params_and_purpose_do_not_change_the_key(
    req: Request, transport: dict[str, Any], rnd: random.Random, purpose: str
) -> None:
    def shuffled(mapping: dict[str, Any]) -> dict[str, Any]:
        items = list(mapping.items())
        rnd.shuffle(items)
        return {k: shuffled(v) if isinstance(v, dict) else v for k, v in items}

    params = shuffled({**copy.deepcopy(dict(req.params)), **transport})
    messages = tuple(shuffled(dict(m)) for m in req.messages)
    other = Request(req.model, messages, params, req.sample, req.n, purpose=purpose)
    assert other.cache_key() == req.cache_key()
    assert len(req.cache_key()) == 64 and int(req.cache_key(), 16) >= 0
    # secrets never enter the key's input
    assert "sk-SECRET" not in canonical_json(other.output_params())


def test_mock_response_is_part_of_the_key() -> None:
    """BUG (pytest_gpo/calls.py, not fixed here): ``mock_response`` is in TRANSPORT_PARAMS.

    litellm answers a request with ``mock_response`` set with that very text, so it decides
    the output; leaving it out of the key serves the answer cached for one mock to another.
    Suggested fix: remove ``mock_response`` from ``TRANSPORT_PARAMS``.
    """
    messages = ({"role": "user", "content": "hi"},)
    a = Request("openai/x", messages, {"mock_response": "yes"})
    b = Request("openai/x", messages, {"mock_response": "no"})
    assert a.cache_key() != b.cache_key()


# -- corrupt entries ------------------------------------------------------------------------


def key_of(seed: str) -> str:
    return hashlib.sha256(seed.encode("utf-8")).hexdigest()


payloads = st.fixed_dictionaries(
    {
        "texts": st.lists(st.text(max_size=30), min_size=1, max_size=3),
        "prompt_tokens": st.integers(0, 10_000),
        "completion_tokens": st.integers(0, 10_000),
        "cost": st.none() | st.floats(0, 10, allow_nan=False),
        "model": st.sampled_from(["openai/gpt-4o-mini", "gpo-sim/task"]),
        "created": st.floats(0, 2e9, allow_nan=False),
    }
)


@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> tuple[str, bytes]:
    kind = draw(
        st.sampled_from(
            [
                "truncate",
                "flip",
                "insert",
                "delete",
                "garbage",
                "empty",
                "nul",
                "bom",
                "crlf",
                "other_key",
                "tamper",
            ]
        )
    )
    if kind == "truncate":
        return kind, data[: draw(st.integers(0, len(data) - 1))]
    if kind == "flip":
        at = draw(st.integers(0, len(data) - 1))
        bit = 1 << draw(st.integers(0, 7))
        return kind, data[:at] + bytes([data[at] ^ bit]) + data[at + 1 :]
    if kind == "insert":
        at = draw(st.integers(0, len(data)))
        return kind, data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:]
    if kind == "delete":
        at = draw(st.integers(0, len(data) - 1))
        return kind, data[:at] + data[at + draw(st.integers(1, 8)) :]
    if kind == "garbage":
        return kind, draw(st.binary(max_size=200))
    if kind == "empty":
        return kind, b""
    if kind == "nul":
        return kind, b"\x00" * len(data)
    if kind == "bom":
        return kind, b"\xef\xbb\xbf" + data
    if kind == "crlf":
        return kind, data.replace(b",", b",\r\n")
    if kind == "other_key":
        record = json.loads(data)
        record["key"] = key_of("someone else")
        return kind, json.dumps(record).encode()
    record = json.loads(data)
    record["payload"]["texts"] = ["tampered"]
    return kind, json.dumps(record).encode()


@PROPERTY
@given(payloads, st.data())
def test_a_damaged_entry_is_a_miss_never_returned(
    tmp_path: Path, payload: dict[str, Any], data: st.DataObject
) -> None:
    key = key_of(repr(payload))
    cache = FileCache(tmp_path)
    cache.put(key, payload)
    good = cache.path(key).read_bytes()
    assert cache.get(key) == payload
    kind, bad = data.draw(damaged(good))
    cache.path(key).write_bytes(bad)
    got = cache.get(key)
    # a damaged entry is a miss; only a harmless change (BOM, whitespace) may still decode,
    # and then to the very payload that was stored
    assert got is None or got == decode_entry(key, good), kind
    if kind in ("truncate", "garbage", "empty", "nul", "other_key", "tamper"):
        assert got is None, kind
    # the next write repairs the entry
    cache.put(key, payload)
    assert cache.get(key) == payload


def test_every_truncation_of_an_entry_is_a_miss(tmp_path: Path) -> None:
    payload = {
        "texts": ["billing", "ünïcödé 💥"],
        "prompt_tokens": 12,
        "completion_tokens": 3,
        "cost": 0.0001,
        "model": "openai/gpt-4o-mini",
        "created": 1.7e9,
    }
    key = key_of("truncate")
    data = encode_entry(key, payload)
    cache = FileCache(tmp_path)
    for length in range(len(data)):
        cache.path(key).parent.mkdir(parents=True, exist_ok=True)
        cache.path(key).write_bytes(data[:length])
        assert cache.get(key) is None, length
    cache.path(key).write_bytes(data)
    assert cache.get(key) == payload


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-cache")
    return "sk-test-cache"


@pytest.mark.parametrize("damage", ["truncate", "tamper", "garbage"])
def test_client_treats_a_damaged_entry_as_a_miss_and_repairs_it(
    tmp_path: Path, api_key: str, damage: str
) -> None:
    with OpenAIServer() as server, EventLoopRunner() as runner:
        cache = FileCache(tmp_path)
        client = LiteLLMClient(cache=cache, timeout=5, seed=0)
        runner.client = client
        req = Request(
            "openai/echo", ({"role": "user", "content": "hello"},), {"api_base": server.base_url}
        )
        first = runner.run(client.complete(req))
        assert first.ok and server.chat_requests == 1
        path = cache.path(req.cache_key())
        good = path.read_bytes()
        if damage == "truncate":
            path.write_bytes(good[: len(good) // 2])
        elif damage == "tamper":
            path.write_bytes(good.replace(b"echo: hello", b"echo: HACKED"))
        else:
            path.write_bytes(b"\x00garbage")
        second = runner.run(client.complete(req))
        assert second.ok and not second.cached and second.text == "echo: hello"
        assert server.chat_requests == 2
        third = runner.run(client.complete(req))
        assert third.cached and third.text == "echo: hello" and server.chat_requests == 2
        assert decode_entry(req.cache_key(), path.read_bytes()) is not None
