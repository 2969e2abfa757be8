"""Suite model: what a ``*.gpo.yaml`` file says, loaded and validated (no pytest import).

Loading is strict: unknown keys, missing files, cases missing a template variable and bad
scorer options are :class:`~pytest_gpo.errors.SuiteError` s naming the file, the key or the
case and the fix, raised at collection time so a bad suite never costs a model call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_gpo.calls import canonical_json
from pytest_gpo.case import Case
from pytest_gpo.scorers.base import Scorer

SUITE_SUFFIXES = (".gpo.yaml", ".gpo.yml")


@dataclass(frozen=True)
class ScorerSpec:
    """A configured scorer with its weight in the suite's combined score."""

    scorer: Scorer
    weight: float = 1.0
    label: str = ""


@dataclass(frozen=True)
class Suite:
    """A loaded, validated suite.

    ``prompt_text`` is the template source as read from ``prompt_path``; ``prompt_bytes`` is
    the exact file content (the write-back guard compares against it).
    """

    name: str
    path: Path
    prompt_path: Path
    prompt_text: str
    prompt_bytes: bytes
    prompt_encoding: str
    system: str | None
    model: str | None
    params: Mapping[str, Any]
    cases: tuple[Case, ...]
    scorers: tuple[ScorerSpec, ...]
    threshold: float
    threshold_metric: str = "mean"  # "mean" | "pass_rate"
    tolerance: float = 0.0
    alpha: float = 0.05
    repeat: int | None = None
    min_pass: int | None = None
    optimize: Mapping[str, Any] = field(default_factory=dict)
    template_vars: frozenset[str] = frozenset()
    judge_model: str | None = None

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
