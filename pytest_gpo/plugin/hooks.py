"""pytest entry point: hooks only, each delegating to the session (:mod:`.session`).

Importing this module is cheap: no litellm, no torch, and not even the suite model, Jinja2 or
PyYAML, which load when the first suite file is collected (``pytest --help`` and runs without
suites never pay for them). litellm and torch load on the first model call or semantic score.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_gpo.errors import GpoError
from pytest_gpo.plugin import hookspecs
from pytest_gpo.plugin.interrupts import InterruptHold
from pytest_gpo.plugin.stash import (
    BUDGET_FILE_INPUT,
    BUDGET_FILE_KEY,
    REPORTED_KEY,
    SETTINGS_KEY,
    SKIPPED_PROMPTFOO_KEY,
    gpo_session,
    has_session,
)
from pytest_gpo.settings import OPTIONS, resolve
from pytest_gpo.suites.paths import is_suite_file
from pytest_gpo.suites.promptfoo.names import is_promptfoo_file

WORKER_KEY = "gpo_records"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register pytest-gpo's own hooks (see :mod:`pytest_gpo.plugin.hookspecs`)."""
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--gpo-*`` options and ``gpo_*`` ini keys, declared once in :data:`OPTIONS`."""
    group = parser.getgroup("gpo", "prompt suites (pytest-gpo)")
    for opt in OPTIONS:
        if opt.flag:
            env = f" [env {opt.env}]" if opt.env else ""
            ini = f" [ini {opt.ini}]" if opt.ini else ""
            if opt.default is False:  # an on/off switch
                group.addoption(
                    opt.flag,
                    action="store_true",
                    default=False,
                    dest=f"gpo_{opt.name}",
                    help=opt.help + env + ini,
                )
            elif opt.name == "optimize":
                group.addoption(
                    opt.flag,
                    nargs="?",
                    const="auto",
                    default=None,
                    dest="gpo_optimize",
                    metavar=opt.metavar,
                    help=opt.help,
                )
            else:
                group.addoption(
                    opt.flag,
                    default=None,
                    dest=f"gpo_{opt.name}",
                    metavar=opt.metavar,
                    help=opt.help + env + ini,
                )
        if opt.ini:
            # "" (unset), never the option's default: an ini key that is not in the file must
            # not count as set there (a suite's own optimize: {seed: 3} would lose to it)
            parser.addini(opt.ini, help=opt.help, default="")


def pytest_configure(config: pytest.Config) -> None:
    """Resolve the settings (a bad value is a usage error naming its source)."""
    config.addinivalue_line("markers", "gpo: a pytest-gpo prompt suite")
    # litellm's harmless pydantic serializer warning: as an ini filter for each test's own
    # warning filters, and directly for the rest of the session (litellm logs a call in the
    # background, possibly between tests).
    from pytest_gpo.llm.setup import LITELLM_WARNINGS, ignore_litellm_warnings

    for message in LITELLM_WARNINGS:
        config.addinivalue_line("filterwarnings", f"ignore:{message}:UserWarning")
    ignore_litellm_warnings()
    cli = {opt.name: config.getoption(f"gpo_{opt.name}", None) for opt in OPTIONS if opt.flag}
    ini_name = config.inipath.name if config.inipath else "ini"
    try:
        settings = resolve(
            rootdir=Path(config.rootpath), cli=cli, ini=config.getini, ini_source=ini_name
        )
    except GpoError as exc:
        raise pytest.UsageError(exc.render()) from None
    # The session itself is built on first use (stash.gpo_session), keeping --help light.
    config.stash[SETTINGS_KEY] = settings
    config.pluginmanager.register(_ReportedSuites(config), "gpo-reported-suites")
    config.pluginmanager.register(InterruptHold(config), "gpo-interrupt-hold")


class _ReportedSuites:
    """Remembers the suites pytest reported on: the others get a JUnit testcase at the end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Note ``report``'s node id (in the config: the session may not exist yet)."""
        self.config.stash.setdefault(REPORTED_KEY, set()).add(report.nodeid)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Collect ``*.gpo.yaml`` / ``*.gpo.yml`` files."""
    if is_suite_file(file_path):
        from pytest_gpo.plugin.items import SuiteFile

        return SuiteFile.from_parent(parent, path=file_path)
    if is_promptfoo_file(file_path):
        if _promptfoo_on(parent.config):
            from pytest_gpo.plugin.promptfoo_items import PromptfooFile

            return PromptfooFile.from_parent(parent, path=file_path)
        seen = parent.config.stash.setdefault(SKIPPED_PROMPTFOO_KEY, [])
        seen.append(str(file_path))
    return None


def _promptfoo_on(config: pytest.Config) -> bool:
    """ini ``gpo_promptfoo``: collect promptfoo configs too."""
    settings = config.stash.get(SETTINGS_KEY, None)
    return settings is not None and settings.promptfoo


def pytest_deselected(items: list[pytest.Item]) -> None:
    """A suite deselected (``-k``, ``-m``, ``--lf``) is not part of the session's verdict."""
    if not items or not has_session(items[0].config):
        return
    gs = gpo_session(items[0].config)
    for item in items:
        gs.records.pop(item.nodeid, None)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _runs_tests(config: pytest.Config) -> bool:
    """False for --collect-only, --setup-only and --setup-plan: no suite runs, nothing to report."""
    option = config.option
    return not any(
        getattr(option, name, False) for name in ("collectonly", "setuponly", "setupplan")
    )


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: merge the records a worker sends home."""
    payload = getattr(node, "workeroutput", {}).get(WORKER_KEY)
    if not payload:
        return
    from pytest_gpo.plugin.session import merge_record, records_from_json

    gs = gpo_session(node.config)
    for record in records_from_json(payload):
        merge_record(gs.records, record)


@pytest.hookimpl(tryfirst=True, specname="pytest_sessionfinish")
def pytest_sessionfinish_junit_not_run(session: pytest.Session, exitstatus: int) -> None:
    """Before pytest's JUnit writer finishes: a testcase for each suite that never ran."""
    config = session.config
    if not has_session(config) or _is_worker(config) or not _runs_tests(config):
        return
    from pytest_gpo.plugin.junit_notrun import add_not_run_testcases

    add_not_run_testcases(session, gpo_session(config))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: every worker counts calls and cost in one shared budget file."""
    settings = node.config.stash[SETTINGS_KEY]
    if settings.max_calls is None and settings.max_cost is None:
        return
    path = node.config.stash.get(BUDGET_FILE_KEY, None)
    if path is None:
        from pytest_gpo.llm.ledger import new_shared_ledger

        path = str(new_shared_ledger())
        node.config.stash[BUDGET_FILE_KEY] = path
    node.workerinput[BUDGET_FILE_INPUT] = path


def pytest_unconfigure(config: pytest.Config) -> None:
    """xdist controller: remove the shared budget file."""
    path = config.stash.get(BUDGET_FILE_KEY, None)
    if path is not None:
        from pytest_gpo.llm.ledger import remove_shared_ledger

        remove_shared_ledger(path)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Workers send records home; the controller (or a single process) finishes the run."""
    config = session.config
    if not has_session(config):  # no suite was collected here, and none reported by a worker
        return
    gs = gpo_session(config)
    if not _runs_tests(config):
        gs.close()
        return
    if _is_worker(config):
        from pytest_gpo.plugin.session import records_to_json

        payload = records_to_json(gs.records.values())
        config.workeroutput[WORKER_KEY] = payload  # type: ignore[attr-defined]
        gs.close()
        return
    from pytest_gpo.plugin.finish import finish_session

    if int(exitstatus) == pytest.ExitCode.INTERRUPTED:
        gs.settle_interrupted()  # requests in flight were sent: count them before reporting
    status = finish_session(gs, int(exitstatus))
    if status is not None:
        session.exitstatus = status
    gs.close()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """The summary table of every suite, and what was written."""
    skipped = config.stash.get(SKIPPED_PROMPTFOO_KEY, [])
    if skipped and not _is_worker(config):
        terminalreporter.write_line(
            f"pytest-gpo: {len(skipped)} promptfoo config(s) not collected "
            f"({Path(skipped[0]).name}...); set gpo_promptfoo = true in the ini to run them "
            "(docs/promptfoo.md)"
        )
    if not has_session(config) or _is_worker(config) or not _runs_tests(config):
        return
    gs = gpo_session(config)
    if not gs.records and not gs.warnings:
        return
    from pytest_gpo.plugin.finish import summary_lines

    terminalreporter.section("pytest-gpo")
    for line in summary_lines(gs):
        terminalreporter.write_line(line)
