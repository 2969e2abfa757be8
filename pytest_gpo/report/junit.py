"""The JUnit XML properties of a suite (``--junitxml``): the report's numbers, as its cells.

pytest writes an item's ``user_properties`` into its ``<testcase>``; the plugin sets them from
:func:`junit_properties`, so a CI dashboard reading the XML sees the numbers the terminal, the
markdown and the JSON show, in the same text.
"""

from __future__ import annotations

from pytest_gpo.gate.excerpt import excerpt
from pytest_gpo.report.cells import (
    case_count_text,
    score_text,
    threshold_value_text,
    usage_cells,
)
from pytest_gpo.report.model import SuiteReport

#: The property names, in order (every one starts with ``gpo_``).
PROPERTY_NAMES = (
    "gpo_verdict",
    "gpo_score",
    "gpo_metric",
    "gpo_threshold",
    "gpo_cases",
    "gpo_calls",
    "gpo_cache_hits",
    "gpo_tokens",
    "gpo_cost",
)


def junit_properties(s: SuiteReport) -> list[tuple[str, str]]:
    """``(name, value)`` pairs for a suite's ``<testcase>``: verdict, score, metric, threshold,
    cases, calls, cache hits, tokens and cost; the file and the error when there is one."""
    v = s.verdict
    values = [
        v.status,
        score_text(s),
        v.metric,
        threshold_value_text(s),
        case_count_text(v),
        *usage_cells(s),
    ]
    props = list(zip(PROPERTY_NAMES, values, strict=True))
    if s.file:
        props.append(("gpo_file", s.file))
    if v.error:
        props.append(("gpo_error", excerpt(v.error, 500)))
    return props
