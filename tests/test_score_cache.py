"""Semantic scores cached like answers: modes, keys, the cached-equals-fresh property, and a
fully cached run that loads no embedding model (issue 11, "a replayed run is free")."""

from __future__ import annotations

import asyncio
import json
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_gpo.llm.cache import FileCache, encode_entry
from pytest_gpo.llm.types import Usage
from pytest_gpo.scorers.base import ScoreContext, ScoreResult
from pytest_gpo.scorers.registry import builtin_registry
from pytest_gpo.scorers.score_cache import ScoreCache, ScoreCacheMiss, score_key
from pytest_gpo.scorers.semantic import SemanticScorer
from pytest_gpo.suites.model import Case

pytest_plugins = ["pytester"]

REGISTRY = builtin_registry()


def vector(text: str) -> list[float]:
    """A deterministic signed vector per text: similar texts are close, some point away."""
    out = [0.0] * 6
    for char in text:
        for k in range(6):
            out[k] += ((ord(char) * (k + 7)) % 11) - 5
    return out


class FakeEmbedder:
    """Vectors from :func:`vector`; counts the texts it was asked to embed."""

    name = "fake"

    def __init__(self) -> None:
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts.extend(texts)
        return [vector(t) for t in texts]


class NoEmbedder:
    """An embedder that must never be used (a cached score needs none)."""

    name = "none"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        raise AssertionError(f"embedded {list(texts)!r} although the score was cached")


def semantic(**options: Any) -> SemanticScorer:
    scorer = REGISTRY.create("semantic", options, where="suite.gpo.yaml")
    assert isinstance(scorer, SemanticScorer)
    return scorer


def score(
    scorer: SemanticScorer, output: str, expected: str, embedder: Any, scores: ScoreCache | None
) -> ScoreResult:
    ctx = ScoreContext(embedder=lambda spec: embedder, scores=scores)
    case = Case(id="c1", vars={}, expected=expected, has_expected=True)
    return asyncio.run(scorer.score(output, case, ctx))


def compute(value: float, calls: list[int]) -> Any:
    async def run() -> float:
        calls.append(1)
        return value

    return run


# -- the cache and its modes ------------------------------------------------------------------


def test_rw_computes_once_then_reads_and_counts(tmp_path: Path) -> None:
    usage = Usage()
    cache = ScoreCache(FileCache(tmp_path), "rw").counting(usage)
    calls: list[int] = []
    parts = {"model": "m", "output": "a", "expected": "b"}
    assert asyncio.run(cache.score("semantic", parts, compute(0.25, calls))) == 0.25
    assert asyncio.run(cache.score("semantic", parts, compute(0.9, calls))) == 0.25
    assert calls == [1]
    assert (usage.cache_hits, usage.cache_misses, usage.calls) == (1, 1, 0)
    stored = FileCache(tmp_path).get(score_key("semantic", parts))
    assert (
        stored is not None
        and stored["score"] == 0.25
        and set(stored)
        == {
            "score",
            "model",
            "created",
        }
    )


def test_replay_reads_and_a_miss_is_an_error_that_computes_nothing(tmp_path: Path) -> None:
    ScoreCache(FileCache(tmp_path), "rw")
    calls: list[int] = []
    parts = {"output": "a"}
    asyncio.run(ScoreCache(FileCache(tmp_path), "rw").score("s", parts, compute(0.5, calls)))
    replay = ScoreCache(FileCache(tmp_path), "replay")
    assert asyncio.run(replay.score("s", parts, compute(0.0, calls))) == 0.5
    with pytest.raises(ScoreCacheMiss, match="--gpo-cache rw"):
        asyncio.run(replay.score("s", {"output": "other"}, compute(0.0, calls)))
    assert calls == [1]


def test_off_never_reads_or_writes(tmp_path: Path) -> None:
    calls: list[int] = []
    off = ScoreCache(FileCache(tmp_path), "off")
    for _ in range(2):
        asyncio.run(off.score("s", {"x": 1}, compute(0.5, calls)))
    assert calls == [1, 1] and not any(tmp_path.iterdir())


def test_failures_and_non_finite_scores_are_never_stored(tmp_path: Path) -> None:
    cache = ScoreCache(FileCache(tmp_path), "rw")

    async def broken() -> float:
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError):
        asyncio.run(cache.score("s", {"x": 1}, broken))
    asyncio.run(cache.score("s", {"x": 2}, compute(float("nan"), [])))
    assert not any(tmp_path.rglob("*.json"))


def test_a_broken_store_is_a_warning_not_a_failure() -> None:
    class Broken:
        remote = False

        def get(self, key: str) -> dict[str, Any] | None:
            raise OSError("disk on fire")

        def put(self, key: str, entry: dict[str, Any]) -> None:
            raise OSError("disk on fire")

    cache = ScoreCache(Broken(), "rw")
    assert asyncio.run(cache.score("s", {}, compute(0.5, []))) == 0.5
    assert [e.split(":")[0] for e in cache.errors] == [
        "score cache read failed",
        "score cache write failed",
    ]


def test_score_entries_refuse_anything_but_a_finite_score() -> None:
    key = "ab" * 32
    for bad in (
        {"score": float("inf")},
        {"score": True},
        {"score": 0.5, "api_key": "sk-x"},
        {"score": 0.5, "texts": ["x"]},
    ):
        with pytest.raises(ValueError):
            encode_entry(key, bad)


def test_keys_cover_every_part_and_hash_lone_surrogates() -> None:
    base = {"rule": 1, "model": "m", "output": "a", "expected": "b"}
    keys = {score_key("semantic", base)}
    for name, value in (("rule", 2), ("model", "n"), ("output", "b"), ("expected", "a")):
        keys.add(score_key("semantic", {**base, name: value}))
    keys.add(score_key("semantic", {**base, "output": "b", "expected": "a"}))
    keys.add(score_key("other", base))
    assert len(keys) == 7
    assert len(score_key("semantic", {**base, "expected": "half \ud83d"})) == 64


def test_the_key_names_the_resolved_model_never_min(tmp_path: Path) -> None:
    (tmp_path / "models" / "mini").mkdir(parents=True)
    assert semantic().cache_model(tmp_path).startswith("local:default@")
    assert semantic(model="default").cache_model(tmp_path) == semantic().cache_model(tmp_path)
    folder = semantic(model="models/mini").cache_model(tmp_path)
    assert folder == "local:" + str((tmp_path / "models" / "mini").resolve())
    assert semantic(model="openai/x").cache_model(tmp_path) == "openai/x"
    # a different min reads the same entry: recorded with one, replayed with another
    store = FileCache(tmp_path / "cache")
    strict = score(semantic(min=0.99), "abc", "abd", FakeEmbedder(), ScoreCache(store, "rw"))
    loose = score(semantic(min=0.1), "abc", "abd", NoEmbedder(), ScoreCache(store, "replay"))
    assert strict.score == loose.score and not strict.passed and loose.passed


# -- the property: a cached score is the fresh score ---------------------------------------------

texts = st.text(max_size=24)
mins = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(output=texts, expected=texts, min_a=mins, min_b=mins, other=texts)
def test_cached_scores_equal_fresh_ones(
    output: str, expected: str, min_a: float, min_b: float, other: str
) -> None:
    """For any texts and any two ``min``: recorded with one, replayed with the other, the score,
    verdict and reason equal a fresh computation with the other; no embedder runs on replay;
    another text is a miss."""
    with tempfile.TemporaryDirectory() as directory:
        store = FileCache(directory)
        fresh_a = score(semantic(min=min_a), output, expected, FakeEmbedder(), None)
        recorded = score(semantic(min=min_a), output, expected, FakeEmbedder(), ScoreCache(store))
        assert recorded == fresh_a
        for mode in ("rw", "replay"):
            cache = ScoreCache(store, mode)  # type: ignore[arg-type]
            fresh_b = score(semantic(min=min_b), output, expected, FakeEmbedder(), None)
            assert score(semantic(min=min_b), output, expected, NoEmbedder(), cache) == fresh_b
        if other != expected:
            with pytest.raises(ScoreCacheMiss):
                score(semantic(), output, other, NoEmbedder(), ScoreCache(store, "replay"))


# -- end to end: a fully cached run loads no embedding model -----------------------------------

CASES = [("refund-1", "billing"), ("crash-1", "technical"), ("pwd-1", "account")]

FAKE_EMBEDDER_CONFTEST = """
import pytest_gpo.llm.embeddings as embeddings

class Fake:
    name = "fake"
    def embed(self, texts):
        return [[float(len(t)), float(sum(map(ord, t)) % 97), 1.0] for t in texts]

def pytest_configure(config):
    embeddings._EMBEDDERS["local:default"] = Fake()
"""

HEAVY_CONFTEST = """
import sys
def pytest_sessionfinish(session):
    heavy = [m for m in ("torch", "sentence_transformers", "litellm") if m in sys.modules]
    print("HEAVY-MODULES:", heavy)
"""


def write_suite(pytester: pytest.Pytester, scorers: str) -> None:
    (pytester.path / "p.txt").write_text("Route: {{ ticket }}\n", encoding="utf-8")
    cases = "\n".join(
        f"  - {{id: {cid}, vars: {{ticket: {cid}}}, expected: {label}}}" for cid, label in CASES
    )
    pytester.path.joinpath("router.gpo.yaml").write_text(
        f"name: router\nprompt: p.txt\ncases:\n{cases}\nscorers: {scorers}\nthreshold: 0.0\n",
        encoding="utf-8",
    )


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\ngpo_model = gpo-sim/task\n")
    return pytester


def run(pytester: pytest.Pytester, conftest: str, *args: str) -> pytest.RunResult:
    pytester.makeconftest(conftest)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", *args)


def test_fully_cached_semantic_run_loads_no_embedding_model(project: pytest.Pytester) -> None:
    """Recorded once (with a stand-in embedder), the run is replayed in rw and replay mode,
    with another ``min`` too: the real model is never needed, so torch is never imported."""
    write_suite(project, "[{type: semantic, min: 0.5}]")
    first = run(project, FAKE_EMBEDDER_CONFTEST)
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(["model calls: 3, cache hits: 0, misses: 3*"])
    for mode in ("rw", "replay"):
        again = run(project, HEAVY_CONFTEST, "--gpo-cache", mode)
        again.assert_outcomes(passed=1)
        again.stdout.fnmatch_lines(["*HEAVY-MODULES: []*"])
        again.stdout.fnmatch_lines(["model calls: 0, cache hits: 3, misses: 0*"])
    write_suite(project, "[{type: semantic, min: 0.9}]")
    stricter = run(project, HEAVY_CONFTEST, "--gpo-cache", "replay")
    stricter.stdout.fnmatch_lines(["model calls: 0, cache hits: 3, misses: 0*"])
    stricter.stdout.fnmatch_lines(["*HEAVY-MODULES: []*"])
    assert "INTERNALERROR" not in stricter.stdout.str()


def test_replay_with_a_missing_score_is_an_error_naming_the_case(
    project: pytest.Pytester,
) -> None:
    write_suite(project, "[{type: exact}]")
    run(project, HEAVY_CONFTEST).assert_outcomes(passed=1)
    write_suite(project, "[{type: exact}, {type: semantic}]")
    replay = run(project, HEAVY_CONFTEST, "--gpo-cache", "replay", "--gpo-report", "report.md")
    replay.assert_outcomes(errors=1)
    out = replay.stdout.str()
    assert "INTERNALERROR" not in out and "Traceback" not in out
    assert "case 'refund-1'" in out and "no cached semantic score" in out, out
    replay.stdout.fnmatch_lines(["*HEAVY-MODULES: []*"])
    report = json.loads((project.path / "report.json").read_text(encoding="utf-8"))
    assert "cache_miss" in json.dumps(report), textwrap.shorten(json.dumps(report), 2000)
    assert replay.ret != 0
