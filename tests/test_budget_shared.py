"""Caps that hold: reservations cover the worst case a provider can honestly bill, actual spend
is checked after every call, and under pytest-xdist the workers share one budget (a cap is the
run's, not each worker's). See docs/reliability.md#budgets.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from openai_server import OpenAIServer, default_responder

from pytest_gpo.llm.budget import Budget
from pytest_gpo.llm.client import LiteLLMClient
from pytest_gpo.llm.ledger import FileLedger, new_shared_ledger, remove_shared_ledger
from pytest_gpo.llm.loop import EventLoopRunner
from pytest_gpo.llm.pricing import ModelPrice, param_token_bound, prompt_token_bound
from pytest_gpo.llm.setup import import_litellm
from pytest_gpo.llm.types import Request

pytest_plugins = ["pytester"]

import_litellm()

PRICE = ModelPrice(1000.0, 1000.0)  # $0.001 a token: a few calls reach a cap of cents


def content_bytes(body: dict[str, Any]) -> int:
    """The most prompt tokens an honest provider can report: one per byte of text."""
    return sum(len(str(m.get("content", "")).encode("utf-8")) for m in body["messages"])


def billed(bodies: list[dict[str, Any]]) -> float:
    """What the server billed: the prompt tokens it reported and the words it answered."""
    return sum(
        PRICE.cost(content_bytes(b), len(default_responder(b).split()))
        for b in bodies
        if "messages" in b
    )


def test_the_prompt_bound_is_never_below_a_real_tokenizers_count() -> None:
    litellm = import_litellm()
    for text in ("hi", "a much longer prompt " * 50, "ünïcödé ✓ 漢字 🙂" * 20, " ".join("x" * 30)):
        messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
        counted = litellm.token_counter(model="gpt-4o-mini", messages=messages)
        assert prompt_token_bound(messages) >= counted


def test_tools_and_schemas_are_in_the_prompt_bound() -> None:
    """A suite's tools (allowed params) are billed as prompt text: a 200 KB tool description
    must be reserved, not only the messages (a breaker spent 6x the cap with one)."""
    litellm = import_litellm()
    tool = {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "look it up " * 20_000,
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        },
    }
    messages = [{"role": "user", "content": "hi"}]
    kwargs = {"model": "gpt-4o-mini", "messages": messages, "tools": [tool], "max_tokens": 5}
    counted = litellm.token_counter(model="gpt-4o-mini", messages=messages, tools=[tool])
    bound = prompt_token_bound(messages) + param_token_bound(kwargs)
    assert bound >= counted and param_token_bound(kwargs) > 200_000
    assert param_token_bound({"model": "m", "messages": messages, "timeout": 5}) == 0


def test_a_provider_counting_more_prompt_tokens_cannot_push_spend_over_the_cap() -> None:
    """The server reports one prompt token per byte (4x what a tokenizer estimates): with 32
    calls in flight at once, what it billed still stays under the cap."""
    cap = 0.25
    with (
        OpenAIServer(prompt_tokens=content_bytes, latency=0.05) as server,
        EventLoopRunner() as runner,
    ):
        client = LiteLLMClient(
            cache_mode="off",
            concurrency=32,
            max_cost=cap,
            prices={"openai/priced": PRICE},
            seed=0,
        )
        runner.client = client
        requests = [
            Request(
                model="openai/priced",
                messages=({"role": "user", "content": f"please repeat the word w{i}"},),
                params={"api_base": server.base_url, "api_key": "sk-test", "max_tokens": 5},
            )
            for i in range(64)
        ]

        async def go() -> list[Any]:
            return list(await asyncio.gather(*(client.complete(r) for r in requests)))

        done = runner.run(go())
    spent = billed(server.bodies)
    answered = [c for c in done if c.ok]
    assert answered and len(answered) < len(requests)
    assert client.cost_spent <= cap
    assert spent <= cap + 1e-9, spent
    assert client.cost_spent == pytest.approx(spent)
    assert any(c.error and "cost budget exhausted" in c.error for c in done)


def test_a_dead_workers_reservations_do_not_block_the_others(tmp_path: Path) -> None:
    path = new_shared_ledger()
    try:
        dead = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            text=True,
            capture_output=True,
            check=True,
        )
        state = json.loads(path.read_text())
        state["inflight"][f"{dead.stdout.strip()}:1"] = [3, 0.9]
        path.write_text(json.dumps(state))
        budget = Budget(max_cost=1.0, ledger=FileLedger(path))
        reservation = asyncio.run(asyncio.wait_for(budget.reserve("m", lambda: 0.5), 5))
        assert not isinstance(reservation, str)
        budget.settle(reservation, 0.4, charge_estimate=False)
        other = Budget(max_cost=1.0, ledger=FileLedger(path))
        assert isinstance(other.reserve_now("m", 0.7), str)  # 0.4 spent + 0.7 > 1.0
        assert json.loads(path.read_text())["spent"] == pytest.approx(0.4)
    finally:
        remove_shared_ledger(path)
    assert not path.exists() and not path.parent.exists()


def write_project(root: Path, api_base: str, suites: int, cases: int) -> None:
    (root / "p.txt").write_text("Say {{ word }}\n", encoding="utf-8")
    (root / "pytest.ini").write_text(
        "[pytest]\ngpo_model = openai/priced\ngpo_cache = off\ngpo_trusted_params = api_base\n"
        "gpo_concurrency = 4\n",
        encoding="utf-8",
    )
    for s in range(suites):
        rows = "\n".join(
            f"  - {{id: c{i}, vars: {{word: s{s}w{i}}}, expected: s{s}w{i}}}" for i in range(cases)
        )
        (root / f"s{s}.gpo.yaml").write_text(
            f"name: s{s}\nprompt: p.txt\nthreshold: 0\n"
            f"params: {{api_base: '{api_base}', max_tokens: 5}}\ncases:\n{rows}\n",
            encoding="utf-8",
        )


def run_xdist(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPO_", "OPENAI_"))}
    env.pop("CI", None)
    env.update(OPENAI_API_KEY="sk-test-xdist", LITELLM_LOCAL_MODEL_COST_MAP="True")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--gpo-report", "r.md", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("workers", ["2", "4"])
def test_xdist_workers_share_one_call_cap(tmp_path: Path, workers: str) -> None:
    with OpenAIServer(latency=0.05) as server:
        write_project(tmp_path, server.base_url, suites=4, cases=6)
        proc = run_xdist(tmp_path, "-n", workers, "--gpo-max-calls", "5")
        requests = server.chat_requests
    assert requests == 5, (requests, proc.stdout[-3000:])
    assert "call budget exhausted" in proc.stdout


def test_xdist_workers_share_one_cost_cap(tmp_path: Path) -> None:
    cap = 0.1
    with OpenAIServer(prompt_tokens=content_bytes, latency=0.05) as server:
        write_project(tmp_path, server.base_url, suites=4, cases=6)
        proc = run_xdist(
            tmp_path,
            "-n",
            "4",
            "--gpo-price",
            "openai/priced=1000,1000",
            "--gpo-max-cost",
            str(cap),
        )
        bodies = list(server.bodies)
    spent = billed(bodies)
    report = json.loads((tmp_path / "r.json").read_text("utf-8"))
    assert 0 < len(bodies) < 24, proc.stdout[-3000:]
    assert spent <= cap + 1e-9, spent
    assert "cost budget exhausted" in proc.stdout
    assert report["totals"]["usage"]["cost"] == pytest.approx(spent)


def test_embedding_calls_of_a_semantic_scorer_count_against_the_call_cap(tmp_path: Path) -> None:
    """6 answers, each scored by a litellm embedding model: 12 calls uncapped; with
    --gpo-max-calls 8 the server sees 8 in all, embeddings included, and the suite errors."""
    with OpenAIServer() as server:
        (tmp_path / "p.txt").write_text("Say {{ word }}\n", encoding="utf-8")
        (tmp_path / "pytest.ini").write_text(
            "[pytest]\ngpo_model = openai/echo\ngpo_cache = off\n", encoding="utf-8"
        )
        rows = "\n".join(
            f"  - {{id: c{i}, vars: {{word: w{i}}}, expected: w{i}}}" for i in range(6)
        )
        (tmp_path / "s.gpo.yaml").write_text(
            "name: s\nprompt: p.txt\nthreshold: 0\n"
            "scorers: [{type: semantic, model: openai/text-embedding-3-small, min: 0}]\n"
            f"cases:\n{rows}\n",
            encoding="utf-8",
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GPO_", "OPENAI_"))}
        env.pop("CI", None)
        env.update(
            OPENAI_API_KEY="sk-test-embed",
            OPENAI_BASE_URL=server.base_url,
            LITELLM_LOCAL_MODEL_COST_MAP="True",
        )
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--gpo-max-calls", "8"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        chat, embeddings = server.chat_requests, server.embedding_requests
    assert chat == 6 and embeddings >= 1, proc.stdout[-3000:]
    assert chat + embeddings == 8, (chat, embeddings)
    # a refused embedding is an error of the suite (kind budget), never a failed score
    assert proc.returncode == 1 and "1 error" in proc.stdout, proc.stdout[-3000:]
    assert "call budget exhausted" in proc.stdout
