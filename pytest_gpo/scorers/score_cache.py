"""Scores kept in the response cache like answers, so a replayed run recomputes nothing.

The ``semantic`` scorer's similarity costs an embedding model (torch and seconds of loading) or
an embedding call. :class:`ScoreCache` keeps such a number in the run's response cache
(:mod:`pytest_gpo.llm.cache`: the same directory or Redis, the same entry format and checksum),
keyed by everything the number depends on, and follows the run's cache mode: ``rw`` reads and
writes, ``replay`` only reads (a missing score raises :class:`ScoreCacheMiss`, which the run
reports as a ``cache_miss`` error of the case), ``off`` neither.

A score read from the cache counts as a cache hit of the suite, a computed one as a miss,
exactly like answers; a failed computation is never stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pytest_gpo.llm.cache import ResponseCache
from pytest_gpo.llm.types import CacheMode, Usage, canonical_json

#: Version of the key layout (not of any scorer's rule: scorers put theirs in the parts).
KEY_VERSION = 1


class ScoreCacheMiss(Exception):
    """``--gpo-cache replay`` needed a score that is not in the cache (nothing is computed)."""


def score_key(scorer: str, parts: Mapping[str, Any]) -> str:
    """sha256 of the scorer's name and the parts its score depends on (canonical JSON)."""
    payload = {"v": KEY_VERSION, "kind": "score", "scorer": scorer, "parts": dict(parts)}
    # an expected text read from JSON may hold a lone surrogate: hash it, never fail on it
    data = canonical_json(payload).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


@dataclass
class ScoreCache:
    """Get-or-compute for expensive scores, in the run's response cache and cache mode.

    ``store`` ``None`` (or mode ``off``) computes every score. ``usage``, when set, counts
    hits and misses (see :meth:`counting`). ``errors`` collects cache read and write failures
    (the score is then computed, or not stored); copies made by :meth:`counting` share it.
    """

    store: ResponseCache | None = None
    mode: CacheMode = "rw"
    usage: Usage | None = None
    errors: list[str] = field(default_factory=list)

    def counting(self, usage: Usage) -> ScoreCache:
        """The same cache, counting its hits and misses into ``usage`` (one suite's run)."""
        return replace(self, usage=usage)

    async def score(
        self,
        scorer: str,
        parts: Mapping[str, Any],
        compute: Callable[[], Awaitable[float]],
        *,
        label: str = "",
    ) -> float:
        """The cached score for ``parts``, else ``compute()`` (stored in ``rw`` mode).

        Raises :class:`ScoreCacheMiss` in ``replay`` mode when the score is not cached;
        whatever ``compute`` raises propagates (and nothing is stored). ``label`` names what
        is stored (the model), for a person reading the cache.
        """
        if self.store is None or self.mode == "off":
            return await self._computed(compute)
        key = score_key(scorer, parts)
        cached = await self._read(key)
        if cached is not None:
            if self.usage is not None:
                self.usage.cache_hits += 1
            return cached
        if self.mode == "replay":
            raise ScoreCacheMiss(
                f"no cached {scorer} score for this output (--gpo-cache replay computes no "
                "scores); run once with --gpo-cache rw to record it"
            )
        value = await self._computed(compute)
        if math.isfinite(value):
            await self._write(key, {"score": value, "model": label or scorer})
        return value

    async def _computed(self, compute: Callable[[], Awaitable[float]]) -> float:
        value = float(await compute())
        if self.usage is not None:
            self.usage.cache_misses += 1
        return value

    async def _read(self, key: str) -> float | None:
        store = self.store
        assert store is not None
        try:
            if getattr(store, "remote", False):
                entry = await asyncio.to_thread(store.get, key)
            else:
                # a local file read is faster than the hop to a worker thread
                entry = store.get(key)
        except Exception as exc:
            self.errors.append(f"score cache read failed: {type(exc).__name__}: {exc}")
            return None
        value = None if entry is None else entry.get("score")
        if not isinstance(value, float) or not math.isfinite(value):
            return None
        return value

    async def _write(self, key: str, entry: dict[str, Any]) -> None:
        store = self.store
        assert store is not None
        try:
            # fsync costs milliseconds: keep it off the event loop
            await asyncio.to_thread(store.put, key, entry)
        except Exception as exc:
            self.errors.append(f"score cache write failed: {type(exc).__name__}: {exc}")
