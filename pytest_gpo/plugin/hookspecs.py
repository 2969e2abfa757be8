"""pytest-gpo's own hooks, for conftest.py files and plugins.

Implement them like any pytest hook (a function of that name in a conftest.py or a plugin).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_gpo.llm.types import ModelClient
    from pytest_gpo.scorers.base import ScorerRegistry
    from pytest_gpo.settings import Settings


def pytest_gpo_register_scorers(registry: ScorerRegistry) -> None:
    """Register scorer types: ``registry.register("mytype", MyScorer)``.

    Called once per session, after the built-in scorers are registered (so a plugin can
    replace one by registering the same name).
    """


@pytest.hookspec(firstresult=True)
def pytest_gpo_make_client(settings: Settings) -> ModelClient | None:
    """Return a :class:`~pytest_gpo.llm.types.ModelClient` to use instead of the litellm client.

    The first non-None result wins. The client must honour the ModelClient protocol:
    errors come back as data, never as exceptions.
    """


def pytest_gpo_filter_candidate(suite_name: str, current: str, candidate: str) -> str | None:
    """Return a reason to reject an optimizer candidate prompt, or None to keep it.

    Runs after the built-in checks (edit budget, template variables); a rejected candidate is
    counted under the returned reason and never scored.
    """


def pytest_gpo_report(report: dict[str, Any]) -> None:
    """Inspect or extend the JSON report (a dict) before it is written."""
