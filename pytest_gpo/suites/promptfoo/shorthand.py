"""promptfoo's CSV test columns: ``__expected`` shorthands and the other ``__`` columns."""

from __future__ import annotations

import json
import re
from typing import Any

from pytest_gpo.errors import SuiteError
from pytest_gpo.suites.promptfoo.asserts import SUPPORTED_TYPES

#: Shorthand types promptfoo knows that pytest-gpo does not map: written as assertions of that
#: type, so loading fails naming it (never read as an expected text).
UNMAPPED_TYPES = (
    "javascript",
    "fn",
    "eval",
    "python",
    "file",
    "contains-json",
    "is-sql",
    "is-xml",
    "contains-xml",
    "is-valid-openai-tools-call",
    "is-valid-openai-function-call",
    "rouge-n",
    "bleu",
    "gleu",
    "meteor",
    "answer-relevance",
    "context-faithfulness",
    "context-recall",
    "context-relevance",
    "factuality",
    "model-graded-closedqa",
    "model-graded-factuality",
    "g-eval",
    "moderation",
    "perplexity",
    "perplexity-score",
    "latency",
    "cost",
    "webhook",
    "classifier",
    "select-best",
    "max-score",
    "is-refusal",
    "contains-sql",
    "word-count",
    "is-html",
    "contains-html",
    "finish-reason",
    "trace-span-count",
    "trace-span-duration",
    "trace-error-spans",
    "tool-call-f1",
    "guardrails",
    "pi",
    "ruby",
    "conversation-relevance",
    "search-rubric",
)
_SHORTHAND = re.compile(r"^(?P<type>(?:not-)?[a-z][a-z0-9-]*)(?:\((?P<n>[0-9]*\.?[0-9]+)\))?:")
_BARE = re.compile(r"^(?P<type>(?:not-)?[a-z][a-z0-9-]*)(?:\((?P<n>[0-9]*\.?[0-9]+)\))?$")


def _known(kind: str) -> bool:
    base = kind[4:] if kind.startswith("not-") else kind
    return base in SUPPORTED_TYPES or base in UNMAPPED_TYPES or base == "grade"


#: ``__`` columns that carry nothing pytest-gpo acts on.
IGNORED_COLUMNS = ("__metadata", "__metric")


def assertion_from_text(text: str) -> dict[str, Any]:
    """``contains:Paris`` -> ``{type: contains, value: Paris}``; plain text -> ``equals``."""
    stripped = text.strip()
    if stripped in ("is-json", "not-is-json"):
        return {"type": stripped}
    if stripped.startswith(("javascript:", "fn:", "eval:", "python:", "file://")):
        return {"type": stripped.split(":", 1)[0]}
    bare = _BARE.match(stripped)
    if bare is not None and _known(bare.group("type")):
        # a type with no value (``is-xml``, ``cost(0.1)``): an assertion, never expected text
        out_bare: dict[str, Any] = {"type": bare.group("type")}
        if bare.group("n") is not None:
            out_bare["threshold"] = float(bare.group("n"))
        return out_bare
    match = _SHORTHAND.match(stripped)
    if match is None:
        return {"type": "equals", "value": text}
    kind = match.group("type")
    base = kind[4:] if kind.startswith("not-") else kind
    if base == "grade":
        kind, base = kind.replace("grade", "llm-rubric"), "llm-rubric"
    if base not in SUPPORTED_TYPES and base not in UNMAPPED_TYPES:
        return {"type": "equals", "value": text}
    out: dict[str, Any] = {"type": kind}
    value = stripped[match.end() :]
    if base == "is-json" and value.strip():
        try:
            out["value"] = json.loads(value)
        except ValueError:
            out["value"] = value
    elif value or base != "is-json":
        out["value"] = value
    if match.group("n") is not None:
        number = float(match.group("n"))
        out["threshold"] = int(number) if number.is_integer() and base == "levenshtein" else number
    return out


def test_from_row(row: dict[str, str], *, where: str, source: str) -> dict[str, Any]:
    """A CSV row as a promptfoo test: plain columns are vars, ``__expected*`` assertions."""
    test: dict[str, Any] = {"vars": {}, "assert": []}
    for column, cell in row.items():
        if not column.startswith("__"):
            test["vars"][column] = cell
        elif column.startswith("__expected"):
            if cell.strip():
                test["assert"].append(assertion_from_text(cell))
        elif column == "__description":
            if cell.strip():
                test["description"] = cell.strip()
        elif column == "__threshold":
            try:
                test["threshold"] = float(cell)
            except ValueError:
                raise SuiteError(
                    f"__threshold must be a number, got {cell!r} ({source})",
                    path=where,
                    key="tests",
                    fix="write a number from 0 to 1",
                ) from None
        elif not column.startswith(IGNORED_COLUMNS):
            raise SuiteError(
                f"unsupported CSV column '{column}' ({source})",
                path=where,
                key="tests",
                fix="pytest-gpo reads __expected, __expectedN, __description, __threshold and "
                "__metadata columns (see docs/promptfoo.md)",
            )
    return test
