"""The plugin's per-run state on the pytest config, built only when a hook needs it.

Import-light on purpose: ``pytest --help`` and runs that collect no suite never import the
session, the suite model, Jinja2 or PyYAML.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_gpo.settings import Settings

if TYPE_CHECKING:
    from pytest_gpo.plugin.session import GpoSession

SETTINGS_KEY = pytest.StashKey[Settings]()
SESSION_KEY = pytest.StashKey["GpoSession"]()
#: The xdist controller's shared budget file (see :mod:`pytest_gpo.llm.ledger`).
BUDGET_FILE_KEY = pytest.StashKey[str]()
#: promptfoo configs seen while ``gpo_promptfoo`` is off (named once in the summary).
SKIPPED_PROMPTFOO_KEY = pytest.StashKey[list[str]]()
#: Node ids pytest reported on: kept from the first report, before any suite made the session
#: (under xdist the controller builds its session only when a worker's results arrive).
REPORTED_KEY = pytest.StashKey[set[str]]()
#: Its path in every worker's ``workerinput``.
BUDGET_FILE_INPUT = "gpo_budget_file"


def has_session(config: pytest.Config) -> bool:
    """Whether a :class:`GpoSession` was built in this process (a suite was collected)."""
    return SESSION_KEY in config.stash


def gpo_session(config: pytest.Config) -> GpoSession:
    """The :class:`GpoSession` of a pytest run, built on first use from the resolved settings."""
    session = config.stash.get(SESSION_KEY, None)
    if session is None:
        from pytest_gpo.plugin.session import GpoSession

        workerinput = getattr(config, "workerinput", None) or {}
        session = GpoSession(
            settings=config.stash[SETTINGS_KEY],
            hook=config.hook,
            budget_file=workerinput.get(BUDGET_FILE_INPUT),
        )
        config.stash[SESSION_KEY] = session
    return session
