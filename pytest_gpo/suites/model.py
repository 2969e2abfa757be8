"""The data of a loaded suite: its cases, its scorers and the suite itself (no I/O here)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pytest_gpo.llm.types import canonical_json
from pytest_gpo.optimize.config import OptimizeConfig

if TYPE_CHECKING:  # scorers.base imports this module for Case
    from pytest_gpo.scorers.base import Scorer


#: What a suite's threshold is compared with: the mean case score or the fraction that passed.
ThresholdMetric = Literal["mean", "pass_rate"]
THRESHOLD_METRICS: tuple[ThresholdMetric, ...] = ("mean", "pass_rate")
#: Each metric in the words every message and report uses.
METRIC_TEXT: dict[str, str] = {"mean": "mean score", "pass_rate": "pass rate"}


@dataclass(frozen=True)
class Case:
    """One case of a suite: the variables a prompt is rendered with, and the expected answer.

    ``id`` is stable across runs: given in the data, or derived from the content (vars and
    expected), so results and baselines can be compared run to run. ``source`` says where the
    case was read (``cases.jsonl:12``) for error messages. ``split`` is the case's predefined
    optimization split (``train``, ``eval`` or ``test``), or ``None`` to split by hash.
    """

    id: str
    vars: Mapping[str, Any]
    expected: Any = None
    has_expected: bool = False
    source: str = ""
    split: str | None = None


def derive_case_id(vars: Mapping[str, Any], expected: Any, has_expected: bool) -> str:
    """A content-derived id: ``c-`` + 10 hex digits of the sha256 of vars and expected."""
    payload = {"vars": dict(vars), "expected": expected if has_expected else None}
    digest = hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()
    return "c-" + digest[:10]


#: Largest scorer weight: weights are relative, and a sum of weights must stay finite.
MAX_WEIGHT = 1_000_000


@dataclass(frozen=True)
class ScorerSpec:
    """A configured scorer with its weight in the suite's combined score.

    ``weight`` must be a finite number in ``(0, MAX_WEIGHT]``: an infinite weight turns every
    combined score into NaN (``inf / inf``), which would pass a suite that fails.
    """

    scorer: Scorer
    weight: float = 1.0
    label: str = ""

    def __post_init__(self) -> None:
        weight = self.weight
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise TypeError(f"scorer weight must be a number, got {weight!r}")
        if not (math.isfinite(weight) and 0 < weight <= MAX_WEIGHT):
            raise ValueError(f"scorer weight must be a finite number in (0, {MAX_WEIGHT}]")


@dataclass(frozen=True)
class Suite:
    """A loaded, validated suite.

    ``prompt_text`` is the template source as read from ``prompt_path``; ``prompt_bytes`` is
    the exact file content (the write-back guard compares against it). ``optimize`` holds the
    suite's validated ``optimize:`` settings (command-line values are applied on top with
    :meth:`~pytest_gpo.optimize.config.OptimizeConfig.with_overrides`).
    """

    name: str
    path: Path
    prompt_path: Path
    prompt_text: str
    prompt_bytes: bytes
    system: str | None
    model: str | None
    params: Mapping[str, Any]
    cases: tuple[Case, ...]
    scorers: tuple[ScorerSpec, ...]
    threshold: float
    threshold_metric: ThresholdMetric = "mean"
    tolerance: float = 0.0
    alpha: float = 0.05
    repeat: int | None = None
    min_pass: int | None = None
    max_drop: float | None = None
    optimize: OptimizeConfig = field(default_factory=OptimizeConfig)
    #: the file ``system`` was read from (None: written in the suite file, or none)
    system_path: Path | None = None

    @property
    def prompt_sha256(self) -> str:
        """sha256 of the prompt file's bytes."""
        return hashlib.sha256(self.prompt_bytes).hexdigest()

    def scorer_config_hash(self) -> str:
        """sha256 of the scorer configuration (type, options, weight), order-sensitive."""
        cfg = [{"w": s.weight, **s.scorer.fingerprint()} for s in self.scorers]
        return hashlib.sha256(canonical_json(cfg).encode("utf-8")).hexdigest()

    def dataset_hash(self) -> str:
        """sha256 of the cases (ids, vars, expected): provenance for reports."""
        data = [
            {"id": c.id, "vars": dict(c.vars), "expected": c.expected if c.has_expected else None}
            for c in self.cases
        ]
        return hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()
