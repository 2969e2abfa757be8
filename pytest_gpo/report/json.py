"""The JSON report: the markdown report's facts for scripts (summary, totals, suites, sections).

Its layout is versioned (:data:`JSON_VERSION`). Every collected suite is listed, with its
``score`` (the gated metric's value), ``metric`` and ``threshold`` as the other renderers show
them, and every case in full: vars, expected, and each sample's whole output, score, verdict and
reason. A suite's ``verdict`` is the verdict's data with the verdict's ``notes`` and failure
``message`` lines in words; it leaves out the fields only the xdist transfer needs. Keys are
only ever added to the layout of version 1.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from pytest_gpo.gate.messages import message_lines, notes
from pytest_gpo.gate.verdict import GateVerdict
from pytest_gpo.report.model import Report, SuiteReport
from pytest_gpo.results import CaseResult
from pytest_gpo.serial import to_data

#: Version of the JSON report's layout.
JSON_VERSION = 1

#: Verdict fields that cross from xdist workers but are not part of the report's layout
#: (the notes and message, which the report does carry, are made from it). The error's kind
#: (``credentials``, ``cache_miss``, ``empty_answer``, ...) stays: scripts read it.
_TRANSFER_ONLY = ("error_count",)


def finite_data(value: Any) -> Any:
    """``value`` with every number that is not finite as ``None``, so it is strict JSON.

    pytest-gpo puts no such number into a report; this keeps one from a plugin's report hook
    (or a bug) from making the whole file unreadable to a strict parser: it reads as unknown.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: finite_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_data(v) for v in value]
    return value


def report_text(payload: Mapping[str, Any]) -> str:
    """The JSON report's text: strict JSON (no NaN or Infinity), two-space indent."""
    return (
        json.dumps(finite_data(payload), indent=2, ensure_ascii=False, default=str, allow_nan=False)
        + "\n"
    )


def verdict_json(v: GateVerdict) -> dict[str, Any]:
    """A suite's ``verdict`` in the JSON report: its data, then its notes and message lines."""
    data: dict[str, Any] = to_data(v)
    for key in _TRANSFER_ONLY:
        del data[key]
    data["notes"] = notes(v)
    data["message"] = message_lines(v, "every case is under this suite's cases")
    return data


def case_json(c: CaseResult) -> dict[str, Any]:
    """A case in full: its numbers, the k-of-N rule, and every sample's whole output."""
    return {
        "id": c.case_id,
        "vars": to_data(dict(c.vars)),
        "expected": to_data(c.expected),
        # a case no run could answer has no score (an error, not a 0)
        "score": None if c.errored else c.score,
        "passed": c.passed,
        "passes": c.passes,
        "runs": len(c.runs),
        "pass_rate": c.pass_rate,
        "min_pass": c.min_pass,
        "rule": c.rule,
        "reason": c.reason,
        "error": c.error,
        "samples": [to_data(r) for r in c.runs],
    }


def _suite_json(s: SuiteReport) -> dict[str, Any]:
    cases = s.run.cases if s.run is not None else []
    return {
        "suite": s.name,
        "file": s.file,
        "model": s.model,
        "passed": s.verdict.passed,
        "status": s.verdict.status,
        "score": s.score,
        "metric": s.verdict.metric,
        "threshold": s.threshold,
        "verdict": verdict_json(s.verdict),
        "usage": to_data(s.usage),
        "cost_text": s.usage.cost_text(),
        "cases": [case_json(c) for c in cases],
    }


def report_json(report: Report) -> dict[str, Any]:
    """The JSON report: summary, totals, per-suite verdicts and cases, extra sections."""
    verdicts = report.verdicts
    total = report.usage()
    return {
        "version": JSON_VERSION,
        "title": report.title,
        "passed": report.passed,
        "exit_status": report.exit_status,
        "summary": report.summary(),
        "meta": dict(report.meta),
        "totals": {
            "suites": len(verdicts),
            "passed": sum(1 for v in verdicts if v.passed),
            "failed": sum(
                1 for v in verdicts if not v.passed and v.status not in ("error", "not_run")
            ),
            "errored": sum(1 for v in verdicts if v.status == "error"),
            "invalid": sum(1 for v in verdicts if v.status == "invalid"),
            "not_run": sum(1 for v in verdicts if v.status == "not_run"),
            "improved": sum(1 for v in verdicts if v.status == "improved"),
            "regressed": sum(1 for v in verdicts if v.status == "regressed"),
            "usage": to_data(total),
            "cost_text": total.cost_text(),
        },
        "suites": [_suite_json(s) for s in report.suites],
        "sections": [{"title": x.title, "data": x.data} for x in report.sections],
    }
