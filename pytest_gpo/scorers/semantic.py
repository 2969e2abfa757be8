"""The ``semantic`` scorer: cosine similarity of output and ``expected`` embeddings.

The embedding stack (sentence-transformers/torch or litellm) is imported on the first score,
never when this module is imported.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pytest_gpo.errors import ScorerError
from pytest_gpo.llm.embeddings import (
    DEFAULT_ALIASES,
    cosine,
    get_embedder,
    is_local_spec,
    require_local_embeddings,
)
from pytest_gpo.llm.types import Embedder
from pytest_gpo.scorers.base import ScoreContext, ScoreResult
from pytest_gpo.scorers.common import OptionScorer, as_text, quote, result, versus
from pytest_gpo.suites.model import Case


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

    def _embedder(self, ctx: ScoreContext) -> Embedder:
        spec = self.model_spec(ctx.suite_dir)
        if ctx.embedder is not None:
            return ctx.embedder(spec)
        return get_embedder(spec)

    async def score(self, output: str, case: Case, ctx: ScoreContext) -> ScoreResult:
        """The cosine similarity, clamped to 0..1; passed when it reaches ``min``."""
        missing = self.missing_expected(case)
        if missing is not None:
            return missing
        expected = as_text(case.expected)
        try:
            embedder = self._embedder(ctx)
            a, b = await asyncio.to_thread(embedder.embed, [output, expected])
        except ScorerError as exc:
            if exc.path is None and self.where:
                raise self.fail(exc.message, key=exc.key, fix=exc.fix) from exc
            raise
        except Exception as exc:
            return result(
                0.0,
                False,
                f"embedding failed ({self.model or 'default model'}): {type(exc).__name__}: {exc}"[
                    :500
                ],
            )
        similarity = max(cosine(a, b), 0.0)
        passed = similarity >= self.min
        reason = f"similarity {versus(similarity, self.min)}"
        if not passed:
            reason += f" to expected {quote(expected)}; got {quote(output)}"
        return result(similarity, passed, reason)
