"""What a session reports, as data: suites with their verdicts and runs, extra sections, meta.

:mod:`pytest_gpo.report.terminal`, :mod:`pytest_gpo.report.markdown` and
:mod:`pytest_gpo.report.json` render a :class:`Report`; other parts of the plugin (the
optimizer) add their own sections as :class:`Section` items ``(title, markdown, json)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_gpo.gate.messages import summarize
from pytest_gpo.gate.verdict import UNSCORED, GateVerdict
from pytest_gpo.llm.types import Usage
from pytest_gpo.results import SuiteRun


@dataclass(frozen=True)
class Section:
    """An extra report section from another part of the plugin (e.g. the optimizer).

    ``markdown`` is trusted markdown placed under a ``## title`` heading; ``data`` is any
    JSON-able value stored under ``sections[i].data`` in the JSON report.
    """

    title: str
    markdown: str
    data: Any = None


SectionLike = Section | tuple[str, str, Any]

#: Why pytest exits with a status other than 0 although every suite passed.
EXIT_TEXT = {
    1: "other tests failed",
    2: "the session was interrupted",
    3: "internal error",
    4: "usage error",
    5: "no tests were collected",
}


def as_section(item: SectionLike) -> Section:
    """A :class:`Section` from a section or a ``(title, markdown, json)`` tuple."""
    if isinstance(item, Section):
        return item
    title, markdown, data = item
    return Section(title=str(title), markdown=str(markdown), data=data)


@dataclass(frozen=True)
class SuiteReport:
    """One suite in a report: its gate verdict and the run it judged (if there was one).

    The numbers every renderer shows are defined here, once: :attr:`score`, :attr:`threshold`
    and :attr:`usage` (calls, cache hits, tokens, cost); a case's score is
    :attr:`pytest_gpo.results.CaseResult.score` and its k-of-N rule
    :attr:`pytest_gpo.results.CaseResult.rule`.
    """

    verdict: GateVerdict
    run: SuiteRun | None = None
    #: the suite file (as shown to the user), when known
    file: str = ""
    #: the model requests this suite really sent in this session (default: its run's usage)
    requests: Usage | None = None

    @property
    def name(self) -> str:
        """The suite's name."""
        return self.verdict.suite

    @property
    def model(self) -> str:
        """The model the suite ran on."""
        return (self.run.model if self.run is not None else "") or self.verdict.model

    @property
    def usage(self) -> Usage:
        """The model requests of this suite in this session (:attr:`requests`, else its run's)."""
        if self.requests is not None:
            return self.requests
        return self.run.usage if self.run is not None else Usage()

    @property
    def scored(self) -> bool:
        """False for a suite with no scores: errored, invalid or not run."""
        return self.verdict.status not in UNSCORED

    @property
    def score(self) -> float | None:
        """The suite's score: the value of its gated metric (mean case score, or pass rate),
        the number its threshold is compared with; ``None`` when the suite has no scores."""
        return self.verdict.metric_value if self.scored else None

    @property
    def threshold(self) -> float | None:
        """The suite's threshold (on its metric); ``None`` for a file that could not be loaded."""
        return None if self.verdict.status == "invalid" else self.verdict.threshold


@dataclass
class Report:
    """Everything one session reports: suites in order, extra sections and free metadata.

    ``meta`` is shown as a small table and stored in the JSON (e.g. cache mode, baseline path,
    plugin version); keep it JSON-able.
    """

    suites: list[SuiteReport] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    title: str = "pytest-gpo"
    #: replaces the gate's one-line verdict (e.g. an optimization run's outcome)
    headline: str | None = None
    #: pytest's exit status for the session, when the report is made at its end
    exit_status: int | None = None
    #: why pytest exits with that status, when the plugin knows better than :data:`EXIT_TEXT`
    exit_reason: str | None = None

    @property
    def verdicts(self) -> list[GateVerdict]:
        """The suites' verdicts, in order."""
        return [s.verdict for s in self.suites]

    @property
    def passed(self) -> bool:
        """True when no suite failed, errored, was invalid or not run, and pytest exits 0."""
        return all(v.passed for v in self.verdicts) and not self.exit_status

    def summary(self) -> str:
        """The one-line verdict (:func:`pytest_gpo.gate.messages.summarize`), or the headline;
        when the suites passed but pytest does not exit 0, it says so."""
        line = self.headline if self.headline else summarize(self.verdicts)
        if self.exit_status and all(v.passed for v in self.verdicts):
            why = self.exit_reason or EXIT_TEXT.get(self.exit_status, "see the pytest output")
            # the line is green only when pytest exits 0 (docs/ci.md)
            line = "❌ " + line.removeprefix("✅ ") + f" (pytest exits {self.exit_status}: {why})"
        return line

    def usage(self) -> Usage:
        """Model use over all suites."""
        return Usage.combined(*(s.usage for s in self.suites))

    def add_section(self, item: SectionLike) -> None:
        """Append an extra section (``Section`` or ``(title, markdown, json)``)."""
        self.sections.append(as_section(item))


def build_report(
    suites: Iterable[SuiteReport | tuple[GateVerdict, SuiteRun]],
    sections: Iterable[SectionLike] = (),
    *,
    meta: Mapping[str, Any] | None = None,
) -> Report:
    """A :class:`Report` from ``(verdict, run)`` pairs and extra sections."""
    items = [s if isinstance(s, SuiteReport) else SuiteReport(*s) for s in suites]
    return Report(suites=items, sections=[as_section(x) for x in sections], meta=dict(meta or {}))
