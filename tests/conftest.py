"""Shared fixtures: the local OpenAI-compatible server and environment isolation."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

# Process-wide, never undone by a test's monkeypatch: litellm re-reads this in a background
# refresh long after import, and without it tries to fetch a price list from the internet.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

# litellm imports the importlib_metadata backport, which deletes the stdlib's
# PathFinder.find_distributions and puts its own finder on sys.meta_path. In-process pytester
# runs restore sys.meta_path afterwards, dropping that finder and leaving no way to find any
# distribution. Importing the backport here, before any snapshot, keeps its finder in place.
with contextlib.suppress(ImportError):
    import importlib_metadata  # noqa: F401


from openai_server import OpenAIServer, openai_server  # noqa: F401  (fixture re-export)

# Frozen copies of example projects: data read by tests, never suites of this test run.
collect_ignore = ["fixtures"]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests never see the developer's model settings or CI flags."""
    for name in [*(n for n in os.environ if n.startswith("GPO_")), "CI", "GITHUB_STEP_SUMMARY"]:
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture(scope="session")
def _heavy_stack() -> None:
    """litellm and the embedding stack (numpy, torch, sentence-transformers), imported once.

    In-process pytester runs drop from ``sys.modules`` whatever was first imported inside them,
    and a C extension cannot be loaded twice in one process ("cannot load module more than
    once", "bad call flags" on the next import). Imported here, outside any run, they stay.
    """
    import numpy  # noqa: F401
    import sentence_transformers  # noqa: F401
    import torch  # noqa: F401

    from pytest_gpo.llm.setup import import_litellm

    import_litellm()


@pytest.fixture(autouse=True)
def _heavy_stack_before_pytester(request: pytest.FixtureRequest) -> None:
    """Every test that may run pytest in-process gets the heavy modules loaded first."""
    if "pytester" in request.fixturenames:
        request.getfixturevalue("_heavy_stack")
