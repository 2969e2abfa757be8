"""JUnit testcases for suites that were collected but never ran (``-x``, ``--maxfail``, Ctrl-C).

pytest writes a ``<testcase>`` only for an item that reported, so a suite stopped by ``-x``
would be missing from the XML while the terminal, ``report.md`` and ``report.json`` list it as
not run. Before pytest's JUnit writer finishes, each such suite is handed to it as a skipped
testcase carrying the same ``gpo_*`` properties, so every report names every collected suite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_gpo.plugin.stash import REPORTED_KEY

if TYPE_CHECKING:
    from pytest_gpo.plugin.session import GpoSession


def _not_run_reason(session: pytest.Session) -> str:
    stopped = session.shouldstop or session.shouldfail
    if isinstance(stopped, str) and stopped:
        return f"not run: the session stopped early ({stopped})"
    return "not run: the session ended before this suite ran"


def add_not_run_testcases(session: pytest.Session, gs: GpoSession) -> int:
    """Add a ``<testcase>`` for every suite pytest's writer has none for (skipped when never
    run, failed for a file that is no suite); the number added."""
    from _pytest.junitxml import xml_key
    from _pytest.reports import TestReport

    xml = session.config.stash.get(xml_key, None)
    if xml is None:
        return 0
    from pytest_gpo.plugin.finish import suite_report
    from pytest_gpo.report.junit import junit_properties

    reason = _not_run_reason(session)
    written = session.config.stash.get(REPORTED_KEY, set())
    added = 0
    for record in list(gs.records.values()):
        if record.nodeid in written or record.optimization is not None:
            continue
        report = suite_report(record)
        if report is None:
            continue
        props = junit_properties(report)
        where = record.path or record.nodeid
        steps: tuple[tuple[str, str, Any], ...]
        if record.invalid:
            # a file that is no suite fails wherever it is listed, run or not
            steps = (("call", "failed", f"invalid suite: {record.invalid}"),)
        else:
            steps = (("setup", "skipped", (where, 0, reason)),)
        for when, outcome, longrepr in (*steps, ("teardown", "passed", None)):
            xml.pytest_runtest_logreport(
                TestReport(
                    nodeid=record.nodeid,
                    location=(where, None, record.name),
                    keywords={},
                    outcome=outcome,
                    longrepr=longrepr,
                    when=when,
                    user_properties=props,
                )
            )
        added += 1
    return added
