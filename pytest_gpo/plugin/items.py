"""pytest collection: a suite file is a ``pytest.File``, a suite is one ``pytest.Item``.

The item's ``setup`` runs the model calls, so a provider failure or a replay-cache miss shows
as a pytest *error* (E), while ``runtest`` applies the gate, so a prompt below its threshold or
regressed against the baseline shows as a *failure* (F). A suite file that cannot be loaded
becomes one failing item naming the file, key and fix: the other suites still run, and the
file has a record (status ``invalid``) in every report. Each item writes its report numbers
into its JUnit properties (:func:`pytest_gpo.report.junit.junit_properties`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_gpo.errors import GpoError
from pytest_gpo.llm.types import error_text
from pytest_gpo.plugin.stash import gpo_session
from pytest_gpo.report.controls import visible
from pytest_gpo.suites.model import Suite
from pytest_gpo.suites.paths import display, suite_stem

if TYPE_CHECKING:
    from pytest_gpo.gate.verdict import GateVerdict
    from pytest_gpo.plugin.session import GpoSession, SuiteRecord
    from pytest_gpo.results import SuiteRun


class SuiteFailed(Exception):
    """A suite ran but did not pass its gate; carries the readable failure text."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def set_junit_properties(item: pytest.Item, record: SuiteRecord) -> None:
    """Write the suite's report numbers into the item's JUnit properties (``gpo_*``)."""
    from pytest_gpo.plugin.finish import suite_report
    from pytest_gpo.report.junit import junit_properties

    report = suite_report(record)
    if report is None:
        return
    kept = [p for p in item.user_properties if not str(p[0]).startswith("gpo_")]
    item.user_properties[:] = [*kept, *junit_properties(report)]


class SuiteFile(pytest.File):
    """A ``*.gpo.yaml`` file: yields one :class:`SuiteItem`."""

    def collect(self) -> Iterator[pytest.Item]:
        """Load the suite; a bad file yields an item that fails with the load error.

        Every collected suite gets its record here, so a suite that never runs (``-x``) or
        cannot be loaded still has its line in the reports.
        """
        gs = gpo_session(self.config)
        try:
            suite = gs.load(self.path)
        except GpoError as exc:
            # escaped: pytest prints the item's name raw in its section headers
            name = visible(suite_stem(self.path))
            broken = BrokenSuiteItem.from_parent(self, name=name, error=exc)
            gs.record_invalid(broken.nodeid, broken.name, self.path, exc.render())
            yield broken
            return
        item = SuiteItem.from_parent(self, name=suite.name, suite=suite)
        gs.record(item.nodeid, suite)
        gs.suite_paths.setdefault(suite.name, []).append(self.path)
        yield item


class BrokenSuiteItem(pytest.Item):
    """Stands for a suite file that could not be loaded; fails with the reason."""

    def __init__(self, *, error: GpoError, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        """Fail with the load error."""
        gs = gpo_session(self.config)
        record = gs.records.get(self.nodeid) or gs.record_invalid(
            self.nodeid, self.name, self.path, self.error.render()
        )
        set_junit_properties(self, record)
        raise self.error

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        """The error text, no traceback."""
        if isinstance(excinfo.value, GpoError):
            from pytest_gpo.report.controls import visible

            return "invalid suite: " + visible(excinfo.value.render())
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        """Where to point the user."""
        return self.path, None, f"gpo suite file {self.path.name}"


class SuiteItem(pytest.Item):
    """One prompt suite: scored in ``setup``, gated in ``runtest``."""

    def __init__(self, *, suite: Suite, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.run: SuiteRun | None = None
        self.verdict: GateVerdict | None = None
        self.add_marker("gpo")

    @property
    def gs(self) -> GpoSession:
        """The plugin session."""
        return gpo_session(self.config)

    def setup(self) -> None:
        """Run the model calls: score the suite, or with --gpo-optimize optimize its prompt (an
        optimization that cannot run is an error, E, like a suite that cannot be scored)."""
        gs = self.gs
        record = gs.record(self.nodeid, self.suite)
        duplicate = gs.duplicate_name_error(self.suite)
        if duplicate is not None:  # collection is complete: every file with the name is known
            record.error = duplicate.render()
            set_junit_properties(self, record)
            pytest.fail(record.error, pytrace=False)
        if self.config.option.setuponly:
            return
        if gs.settings.optimize:
            self._optimize()
            return
        before = gs.usage_now()
        gs.running = (record, before)
        try:
            record.model = gs.model_for(self.suite)
            run = gs.run_suite(self.suite)
        except GpoError as exc:
            record.error = exc.render()
        except Exception as exc:  # a bug: pytest shows it, the reports list the suite
            record.error = f"internal error: {type(exc).__name__}: {exc}"
            raise
        finally:
            record.usage = gs.usage_since(before)
        if record.error:
            set_junit_properties(self, record)
            # raised outside the except block so pytest shows no chained exception
            pytest.fail(record.error, pytrace=False)
        record.run = run
        self.run = run
        gs.note_unpriced(record)
        if not run.errors:
            from pytest_gpo.gate.baseline import BaselineEntry

            record.gate_entry = BaselineEntry.from_run(self.suite, run)
        if run.errors:
            head = error_text(run.error_kind)
            shown = "\n".join("  " + e for e in run.errors[:5])
            more = f"\n  ... and {len(run.errors) - 5} more" if len(run.errors) > 5 else ""
            record.error = f"{head} ({len(run.errors)} of {len(run.cases)} case runs)"
            set_junit_properties(self, record)
            pytest.fail(
                f"suite '{self.suite.name}' could not be scored: {head}\n{shown}{more}",
                pytrace=False,
            )

    def runtest(self) -> None:
        """Gate the run (with --gpo-optimize, setup optimized the prompt: nothing to gate)."""
        gs = self.gs
        if gs.settings.optimize:
            return
        assert self.run is not None
        record = gs.record(self.nodeid, self.suite)
        try:
            verdict = gs.gate(self.suite, self.run)
        except GpoError as exc:  # an unreadable baseline file
            record.error = exc.render()
            set_junit_properties(self, record)
            raise SuiteFailed(record.error) from None
        self.verdict = verdict
        record.verdict = verdict
        set_junit_properties(self, record)
        if not verdict.passed:
            from pytest_gpo.gate.messages import failure_text

            more = gs.more_cases_hint()
            raise SuiteFailed(failure_text(verdict, self.suite, self.run, more))

    def _sharing_the_prompt(self) -> list[str]:
        """The selected suites of this session that also read this suite's prompt file: as
        their prompt, or as a system message (this suite's own too)."""
        mine = _same_file_key(self.suite.prompt_path)
        found: set[str] = set()
        for item in self.session.items:
            if not isinstance(item, SuiteItem):
                continue
            other = item.suite
            same_prompt = _same_file_key(other.prompt_path) == mine
            if item is not self and other.name != self.suite.name and same_prompt:
                found.add(other.name)
            if other.system_path is not None and _same_file_key(other.system_path) == mine:
                found.add(f"{other.name} (its system message)")
        return sorted(found)

    def _optimize(self) -> None:
        from pytest_gpo.plugin.optimize_driver import nothing_done_error, optimize_suite

        gs = self.gs
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capture = self.config.pluginmanager.get_plugin("capturemanager")

        def progress(line: str) -> None:
            if reporter is None:
                return
            # live progress must bypass output capture, which is active while an item runs
            if capture is not None:
                with capture.global_and_fixture_disabled():
                    reporter.write_line(f"[gpo] {line}")
            else:
                reporter.write_line(f"[gpo] {line}")

        record = gs.record(self.nodeid, self.suite)
        shared = self._sharing_the_prompt()
        if shared:
            # refused before any call: write-back would refuse the file anyway (writeback.py)
            fix = (
                "give the prompt and the system message a file each"
                if f"{self.suite.name} (its system message)" in shared
                else "optimize one of them by its file: pytest "
                f"{display(Path(self.suite.path))} --gpo-optimize"
            )
            record.error = (
                f"optimization not started: {display(self.suite.prompt_path)} is also read by "
                f"{', '.join(shared)} in this run (as a prompt or a system message); a rewrite "
                f"judged on {self.suite.name}'s held-out cases alone could change them, so it "
                f"would not be written; fix: {fix}"
            )
            set_junit_properties(self, record)
            pytest.fail(record.error, pytrace=False)
        before = gs.usage_now()
        gs.running = (record, before)
        try:
            result = optimize_suite(
                gs, self.suite, progress, lambda where: setattr(record, "run_dir", str(where))
            )
        except GpoError as exc:
            record.error = "optimization could not run: " + exc.render()
        except Exception as exc:  # a bug: pytest shows it, the reports list the suite
            record.error = f"internal error: {type(exc).__name__}: {exc}"
            raise
        finally:
            record.usage = gs.usage_since(before)
        if not record.error and result.stopped_kind not in (None, "budget") and not result.steps:
            # every call failed before a step could run: an error, as in a gated run
            record.error = f"optimization failed before its first step: {result.stopped_reason}"
        if not record.error:
            # an optimization that did nothing writable: an error, never a green 'prompt kept'
            record.error = nothing_done_error(
                gs.settings, result, gs.eval_options(self.suite).repeat
            )
        if record.error:
            set_junit_properties(self, record)
            # raised outside the except block so pytest shows no chained exception
            pytest.fail(record.error, pytrace=False)
        record.optimization = result
        gs.note_unpriced(record)
        record.model = gs.model_for(self.suite)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        """A table of failing cases and the score against the threshold, no traceback."""
        from pytest_gpo.report.controls import visible  # answers may hold ANSI escapes

        if isinstance(excinfo.value, SuiteFailed):
            return visible(excinfo.value.text)
        if isinstance(excinfo.value, pytest.fail.Exception):  # a setup error's message
            return visible(excinfo.value.msg or "")
        if isinstance(excinfo.value, GpoError):
            return visible(excinfo.value.render())
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        """Location shown in reports."""
        return self.path, None, f"gpo suite {self.suite.name}"


def _same_file_key(path: Path) -> tuple[int, int] | str:
    """What makes two paths one file: device and inode (symlinks and hard links too), or the
    resolved path when the file cannot be read."""
    try:
        info = path.stat()
    except OSError:
        return str(path.resolve())
    return (info.st_dev, info.st_ino)
