"""pytest-gpo: test, gate and optimize LLM prompts as ordinary pytest suites.

The names in ``__all__`` are the public API: what scorer authors, model-client authors and
hook implementers import. Everything else lives in private-by-convention modules whose layout
may change (``docs/architecture.md``). The names load on first use, so ``import pytest_gpo``
and pytest's start-up stay light (no litellm, no torch, no Jinja2).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_PUBLIC: dict[str, str] = {
    # scorers: write your own (docs/scorers.md)
    "Scorer": "pytest_gpo.scorers.base",
    "ScoreResult": "pytest_gpo.scorers.base",
    "ScoreContext": "pytest_gpo.scorers.base",
    "ScorerRegistry": "pytest_gpo.scorers.base",
    "OptionScorer": "pytest_gpo.scorers.common",
    "quote": "pytest_gpo.scorers.common",
    # the data a scorer or a client sees
    "Case": "pytest_gpo.suites.model",
    "Request": "pytest_gpo.llm.types",
    "Completion": "pytest_gpo.llm.types",
    "ErrorKind": "pytest_gpo.llm.types",
    "Usage": "pytest_gpo.llm.types",
    # protocols a plugin may implement (pytest_gpo_make_client, embedders)
    "ModelClient": "pytest_gpo.llm.types",
    "Embedder": "pytest_gpo.llm.types",
    # what hooks receive
    "Settings": "pytest_gpo.settings",
    # errors a plugin may raise or catch
    "GpoError": "pytest_gpo.errors",
    "SuiteError": "pytest_gpo.errors",
    "ConfigError": "pytest_gpo.errors",
    "ScorerError": "pytest_gpo.errors",
}

__all__ = [
    "Case",
    "Completion",
    "ConfigError",
    "Embedder",
    "ErrorKind",
    "GpoError",
    "ModelClient",
    "OptionScorer",
    "Request",
    "ScoreContext",
    "ScoreResult",
    "Scorer",
    "ScorerError",
    "ScorerRegistry",
    "Settings",
    "SuiteError",
    "Usage",
    "__version__",
    "quote",
]

if TYPE_CHECKING:
    from pytest_gpo.errors import ConfigError, GpoError, ScorerError, SuiteError
    from pytest_gpo.llm.types import Completion, Embedder, ErrorKind, ModelClient, Request, Usage
    from pytest_gpo.scorers.base import ScoreContext, Scorer, ScoreResult, ScorerRegistry
    from pytest_gpo.scorers.common import OptionScorer, quote
    from pytest_gpo.settings import Settings
    from pytest_gpo.suites.model import Case


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_gpo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
