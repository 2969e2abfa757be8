"""The registry of built-in scorers, which plugins extend through a hook.

Importing this module imports every built-in scorer module, none of which imports litellm,
torch or sentence-transformers: those load on the first judge call or embedding.
"""

from __future__ import annotations

from pytest_gpo.scorers.base import Scorer, ScorerRegistry
from pytest_gpo.scorers.choice import ChoiceScorer
from pytest_gpo.scorers.fuzzy import FuzzyScorer
from pytest_gpo.scorers.json_scorer import JsonScorer
from pytest_gpo.scorers.judge import JudgeScorer
from pytest_gpo.scorers.number import NumberScorer
from pytest_gpo.scorers.python_scorer import PythonScorer
from pytest_gpo.scorers.semantic import SemanticScorer
from pytest_gpo.scorers.text import ContainsScorer, ExactScorer, RegexScorer

#: The built-in scorer classes, keyed by their ``type`` name.
BUILTIN_SCORERS: dict[str, type[Scorer]] = {
    cls.type_name: cls
    for cls in (
        ExactScorer,
        ContainsScorer,
        RegexScorer,
        ChoiceScorer,
        NumberScorer,
        FuzzyScorer,
        SemanticScorer,
        JsonScorer,
        JudgeScorer,
        PythonScorer,
    )
}


def builtin_registry() -> ScorerRegistry:
    """A fresh registry holding every built-in scorer (plugins then add theirs)."""
    registry = ScorerRegistry()
    for name, cls in BUILTIN_SCORERS.items():
        registry.register(name, cls)
    return registry
