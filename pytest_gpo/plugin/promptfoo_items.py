"""pytest collection of promptfoo configs: one :class:`SuiteItem` per prompt x provider.

Collected only with ini ``gpo_promptfoo = true`` (see :mod:`pytest_gpo.suites.promptfoo`). The
items are the same as a ``*.gpo.yaml`` suite's, so the gate, the baseline, the reports and
``--gpo-optimize`` treat an imported suite like any other.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_gpo.errors import GpoError
from pytest_gpo.plugin.items import BrokenSuiteItem, SuiteItem
from pytest_gpo.plugin.stash import gpo_session
from pytest_gpo.suites.paths import Confinement
from pytest_gpo.suites.promptfoo.names import config_stem


class PromptfooFile(pytest.File):
    """A ``promptfooconfig.yaml``: yields one :class:`SuiteItem` per prompt and provider."""

    def collect(self) -> Iterator[pytest.Item]:
        """Load the config; a bad config yields one item failing with the load error."""
        from pytest_gpo.suites.promptfoo.load import load_promptfoo

        gs = gpo_session(self.config)
        settings = gs.settings
        confinement = Confinement(settings.rootdir, settings.allowed_folders)
        try:
            suites = load_promptfoo(
                self.path, gs.registry, confinement, settings.trusted_params or ()
            )
        except GpoError as exc:
            name = config_stem(self.path, settings.rootdir)
            broken = BrokenSuiteItem.from_parent(self, name=name, error=exc)
            gs.record_invalid(broken.nodeid, broken.name, self.path, exc.render())
            yield broken
            return
        for suite in suites:
            item = SuiteItem.from_parent(self, name=suite.name, suite=suite)
            gs.record(item.nodeid, suite)
            yield item
