"""Retrieving the update direction: earlier prompts of the trajectory shown with their scores.

``relevance`` (GPO) keeps the k-1 earlier prompts most similar to the current one by cosine
similarity of sentence embeddings, listed in ascending similarity; ``recency`` the k-1 latest
(oldest first); ``importance`` the k-1 best-scoring (lowest score first, as OPRO lists them);
``none`` nothing. Every list ends with the current prompt. Earlier prompts are distinct texts
other than the current one; a text visited twice keeps its latest position.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import NamedTuple

from pytest_gpo.llm.types import Embedder


class TrajectoryEntry(NamedTuple):
    """A prompt of the optimization trajectory with its eval score (0..1)."""

    prompt: str
    score: float


class EmbeddingMemo:
    """Embeds each distinct text once per run and remembers the vectors (and the time spent)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.vectors: dict[str, list[float]] = {}
        self.seconds = 0.0
        self.embedded = 0

    def get(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors of ``texts`` in order, embedding the unseen ones in one batch."""
        missing = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        if missing:
            started = time.perf_counter()
            rows = self.embedder.embed(missing)
            self.seconds += time.perf_counter() - started
            if len(rows) != len(missing):
                raise ValueError(f"embedder returned {len(rows)} vectors for {len(missing)} texts")
            for text, row in zip(missing, rows, strict=True):
                self.vectors[text] = _normalized([float(x) for x in row])
            self.embedded += len(missing)
        return [self.vectors[t] for t in texts]


def _normalized(vector: list[float]) -> list[float]:
    norm = math.sqrt(math.fsum(x * x for x in vector))
    return [x / norm for x in vector] if norm > 0 else vector


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Dot product of two normalized vectors."""
    return math.fsum(x * y for x, y in zip(a, b, strict=True))


def _earlier(trajectory: Sequence[TrajectoryEntry], current: str) -> list[TrajectoryEntry]:
    latest: dict[str, TrajectoryEntry] = {}
    for entry in trajectory:
        if entry.prompt != current:
            latest.pop(entry.prompt, None)
            latest[entry.prompt] = entry
    return list(latest.values())


def retrieve(
    trajectory: Sequence[TrajectoryEntry],
    current: TrajectoryEntry,
    k: int,
    mode: str,
    embedder: Embedder | EmbeddingMemo | None = None,
) -> list[TrajectoryEntry]:
    """The ``k`` trajectory prompts to show, ending with ``current``.

    ``embedder`` is needed for ``relevance`` only; pass an :class:`EmbeddingMemo` to embed each
    distinct prompt once over a whole run.
    """
    earlier = _earlier(trajectory, current.prompt)
    want = max(0, k - 1)
    if mode == "none" or want == 0 or not earlier:
        return [current]
    if mode == "recency":
        return [*earlier[-want:], current]
    if mode == "importance":
        ranked = sorted(range(len(earlier)), key=lambda i: (earlier[i].score, i))
        return [*(earlier[i] for i in ranked[-want:]), current]
    if mode != "relevance":
        raise ValueError(f"unknown retrieval mode {mode!r}")
    if embedder is None:
        raise ValueError("relevance retrieval needs an embedder")
    memo = embedder if isinstance(embedder, EmbeddingMemo) else EmbeddingMemo(embedder)
    vectors = memo.get([current.prompt, *(e.prompt for e in earlier)])
    similarity = [cosine(vectors[0], v) for v in vectors[1:]]
    # ties go to the later prompt: it is nearer in the trajectory
    ranked = sorted(range(len(earlier)), key=lambda i: (similarity[i], i))
    return [*(earlier[i] for i in ranked[-want:]), current]
