"""Embedders: the real local model (loaded once), litellm over HTTP, sharing, lazy imports."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai_server import OpenAIServer

from pytest_gpo.errors import ScorerError
from pytest_gpo.llm import embeddings
from pytest_gpo.llm.embeddings import (
    LiteLLMEmbedder,
    LocalEmbedder,
    cosine,
    get_embedder,
    is_local_spec,
    normalize,
    spec_key,
)
from pytest_gpo.scorers.base import ScoreContext
from pytest_gpo.scorers.registry import builtin_registry
from pytest_gpo.suites.model import Case

HEAVY = ("torch", "sentence_transformers", "litellm", "transformers")


def test_registry_import_does_not_load_heavy_modules() -> None:
    code = (
        "import json, sys\n"
        "import pytest_gpo.scorers.registry as r\n"
        "import pytest_gpo.llm.embeddings\n"
        "reg = r.builtin_registry()\n"
        "reg.create('semantic', {'model': 'openai/x'}, where='s')\n"
        "reg.create('judge', {'rubric': 'polite'}, where='s')\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(done.stdout) == []


def test_cosine_and_normalize() -> None:
    assert cosine([1.0, 0.0], [0.0, 2.0]) == 0.0
    assert cosine([1.0, 1.0], [2.0, 2.0]) == pytest.approx(1.0)
    assert cosine([0.0, 0.0], [1.0, 0.0]) == 0.0
    with pytest.raises(ValueError, match="differ in length"):
        cosine([1.0], [1.0, 2.0])
    assert normalize([3.0, 4.0]) == [0.6, 0.8]
    assert normalize([0.0, 0.0]) == [0.0, 0.0]


def test_spec_resolution(tmp_path: Path) -> None:
    assert spec_key(None) == spec_key("") == spec_key("all-MiniLM-L6-v2") == "local:default"
    assert spec_key("sentence-transformers/all-MiniLM-L6-v2") == "local:default"
    assert spec_key("openai/text-embedding-3-small") == "openai/text-embedding-3-small"
    assert spec_key(str(tmp_path)) == f"local:{tmp_path.resolve()}"
    assert is_local_spec("./models/x") and is_local_spec("~/m") and is_local_spec(str(tmp_path))
    assert not is_local_spec("openai/text-embedding-3-small")


@pytest.fixture
def fresh_embedders() -> Iterator[None]:
    embeddings.clear_embedders()
    yield
    embeddings.clear_embedders()


def test_get_embedder_shares_one_instance_per_spec(fresh_embedders: None) -> None:
    results: list[object] = []
    barrier = threading.Barrier(8)

    def grab() -> None:
        barrier.wait()
        results.append(get_embedder("openai/text-embedding-3-small"))

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(r) for r in results}) == 1
    first = results[0]
    assert isinstance(first, LiteLLMEmbedder)
    assert first.name == "openai/text-embedding-3-small"
    assert get_embedder(None) is get_embedder("default")
    assert isinstance(get_embedder(None), LocalEmbedder)
    assert get_embedder(None) is not first


def test_local_embedder_missing_folder(tmp_path: Path) -> None:
    embedder = LocalEmbedder(tmp_path / "nope")
    with pytest.raises(ScorerError) as info:
        embedder.embed(["x"])
    assert info.value.key == "model"
    assert "no sentence-transformers model folder" in info.value.message


# -- litellm over the local OpenAI-compatible server ---------------------------------------


def test_litellm_embedder_http_normalized_and_memoized(openai_server: OpenAIServer) -> None:
    embedder = LiteLLMEmbedder(
        "openai/text-embedding-3-small", api_base=openai_server.base_url, api_key="sk-test"
    )
    vectors = embedder.embed(["alpha", "beta", "alpha"])
    assert len(vectors) == 3 and vectors[0] == vectors[2]
    assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-6) for v in vectors)
    assert openai_server.embedding_requests == 1
    assert openai_server.bodies[-1]["input"] == ["alpha", "beta"]
    assert embedder.embed(["beta", "alpha"]) == [vectors[1], vectors[0]]
    assert openai_server.embedding_requests == 1
    assert embedder.embedded_texts == 2 and embedder.memo_size == 2


def test_litellm_embedder_retries_then_raises(openai_server: OpenAIServer) -> None:
    embedder = LiteLLMEmbedder(
        "openai/text-embedding-3-small",
        api_base=openai_server.base_url,
        api_key="sk-test",
        retries=1,
    )
    openai_server.script("500")
    assert len(embedder.embed(["gamma"])) == 1
    assert openai_server.embedding_requests == 2
    openai_server.script("400")
    with pytest.raises(Exception, match=r"400|BadRequest"):
        embedder.embed(["delta"])
    assert openai_server.embedding_requests == 3


def test_semantic_scorer_through_litellm(openai_server: OpenAIServer) -> None:
    model = "openai/text-embedding-3-small"
    embedder = LiteLLMEmbedder(model, api_base=openai_server.base_url, api_key="sk-test")
    scorer = builtin_registry().create("semantic", {"model": model, "min": 0.5}, where="s")
    ctx = ScoreContext(embedder=lambda spec: embedder)
    same = asyncio.run(scorer.score("refund", Case("c", {}, "refund", True), ctx))
    assert same.score == pytest.approx(1.0) and same.passed


# -- the real local model (loaded once for this module) -------------------------------------


@pytest.fixture(scope="module")
def local_model() -> Iterator[LocalEmbedder]:
    embeddings.clear_embedders()
    embedder = get_embedder(None)
    assert isinstance(embedder, LocalEmbedder)
    embedder.load()
    yield embedder
    embeddings.clear_embedders()


@pytest.mark.slow
def test_local_model_paraphrase_is_closer(local_model: LocalEmbedder) -> None:
    anchor, paraphrase, unrelated = local_model.embed(
        [
            "How do I reset my password?",
            "What are the steps to change my password?",
            "The weather in Paris is sunny today.",
        ]
    )
    assert len(anchor) == 384
    assert math.isclose(sum(x * x for x in anchor), 1.0, rel_tol=1e-4)
    assert cosine(anchor, paraphrase) > 0.6
    assert cosine(anchor, paraphrase) > cosine(anchor, unrelated) + 0.4
    assert local_model.load_seconds is not None and local_model.load_seconds > 0


@pytest.mark.slow
def test_local_model_memo(local_model: LocalEmbedder) -> None:
    before = local_model.embedded_texts
    local_model.embed(["memo check one", "memo check two"])
    local_model.embed(["memo check two", "memo check one", "memo check one"])
    assert local_model.embedded_texts == before + 2


@pytest.mark.slow
def test_semantic_scorer_with_default_model(local_model: LocalEmbedder) -> None:
    scorer = builtin_registry().create("semantic", {"min": 0.6}, where="s")
    expected = Case("c", {}, "You can reset your password from the login page.", True)
    good = asyncio.run(
        scorer.score("Use the login page to reset your password.", expected, ScoreContext())
    )
    bad = asyncio.run(scorer.score("Our office opens at nine.", expected, ScoreContext()))
    assert good.passed and good.score > bad.score
    assert not bad.passed and "to expected 'You can reset" in bad.reason
