"""One-line excerpts of case values, as verdicts store them and messages show them.

A verdict keeps excerpts, not whole outputs (:class:`pytest_gpo.gate.verdict.CaseChange`), so
what crosses from xdist workers and lands in the JSON report stays small and one line per value.
"""

from __future__ import annotations

from typing import Any

from pytest_gpo.llm.types import canonical_json
from pytest_gpo.results import CaseResult

#: Length of the expected/got excerpts in messages and reports.
EXCERPT_CHARS = 80


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """A one-line excerpt: strings as they are, other values as JSON; newlines shown as ``\\n``."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else canonical_json(value)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n").replace("\t", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def got_excerpt(case: CaseResult) -> str:
    """What a case got: its error, else the output of its first failing run, else its output."""
    if case.error:
        return "error: " + excerpt(case.error)
    for run in case.runs:
        if not run.passed:
            return excerpt(run.output)
    return excerpt(case.output)
