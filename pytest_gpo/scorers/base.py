"""The scorer protocol, its result type and the registry that plugins extend.

A scorer turns (output, case) into a :class:`ScoreResult`: a score in 0..1, a pass flag and a
reason a human can read. Scorers are built once per suite from their YAML mapping; a bad
configuration raises :class:`~pytest_gpo.errors.ScorerError` at collection time, naming the key.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_gpo.errors import ScorerError
from pytest_gpo.llm.types import Embedder, ModelClient
from pytest_gpo.suites.model import Case

if TYPE_CHECKING:
    from pytest_gpo.scorers.score_cache import ScoreCache


class ScorerCallFailed(Exception):
    """A model call a scorer needs (a judge's) failed: the case errors, as when the task
    model's call fails, instead of failing with a score of 0."""

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class ScoreResult:
    """A scorer's verdict on one output. ``score`` is in 0..1."""

    score: float
    passed: bool
    reason: str


@dataclass
class ScoreContext:
    """What a scorer may need besides the output and the case.

    ``client`` sends judge calls (same cache, retries and accounting as task calls).
    ``embedder`` returns a (shared, lazily loaded) embedder for a model spec; ``None`` means
    the default local all-MiniLM-L6-v2. ``prompt`` is the rendered user message of this case.
    ``scores`` keeps expensive scores in the run's response cache and cache mode (a scorer
    asks it before computing; ``None``: compute every time); see
    :class:`~pytest_gpo.scorers.score_cache.ScoreCache`.
    """

    client: ModelClient | None = None
    embedder: Callable[[str | None], Embedder] | None = None
    suite_dir: Path = field(default_factory=Path.cwd)
    prompt: str = ""
    judge_model: str | None = None
    sample: int = 0
    scores: ScoreCache | None = None


class Scorer(ABC):
    """Base class of scorers. Subclasses set ``type_name`` and implement :meth:`score`.

    ``options`` is the scorer's YAML mapping without ``type`` and ``weight``. Subclasses
    validate it in ``__init__`` and raise :class:`ScorerError` (use :meth:`fail`).
    """

    type_name: ClassVar[str] = ""
    #: True when the scorer compares with ``expected``: a case without it is a load error.
    needs_expected: ClassVar[bool] = True

    def __init__(self, options: Mapping[str, Any], *, where: str = "") -> None:
        self.options = dict(options)
        self.where = where

    def fail(self, message: str, *, key: str | None = None, fix: str | None = None) -> ScorerError:
        """A :class:`ScorerError` located at this scorer's config (raise it)."""
        return ScorerError(message, path=self.where or None, key=key, fix=fix)

    def requires_expected(self) -> bool:
        """Whether cases must carry ``expected`` (may depend on the options)."""
        return self.needs_expected

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this scorer's behaviour (hashed into the baseline)."""
        return {"type": self.type_name, **self.options}

    @abstractmethod
    async def score(self, output: str, case: Case, ctx: ScoreContext) -> ScoreResult:
        """Score one output of one case."""


ScorerFactory = Callable[[Mapping[str, Any], str], Scorer]


class ScorerRegistry:
    """Maps a scorer ``type`` name to a factory ``(options, where) -> Scorer``."""

    def __init__(self) -> None:
        self._factories: dict[str, ScorerFactory] = {}

    def register(self, name: str, factory: ScorerFactory | type[Scorer]) -> None:
        """Add a scorer type (a later registration of the same name replaces it)."""
        if isinstance(factory, type):
            cls = factory

            def make(options: Mapping[str, Any], where: str) -> Scorer:
                scorer: Scorer = cls(options, where=where)
                return scorer

            self._factories[name] = make
        else:
            self._factories[name] = factory

    def names(self) -> list[str]:
        """Registered type names, sorted."""
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def create(self, name: str, options: Mapping[str, Any], *, where: str) -> Scorer:
        """Build a scorer; an unknown name is a :class:`ScorerError` with a suggestion."""
        if name not in self._factories:
            import difflib

            close = difflib.get_close_matches(name, self.names(), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ScorerError(
                f"unknown scorer type '{name}'",
                path=where or None,
                key="scorers",
                fix=hint + "known types: " + ", ".join(self.names()),
            )
        scorer: Scorer = self._factories[name](options, where)
        return scorer
