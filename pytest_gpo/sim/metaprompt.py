"""Reading what pytest-gpo sends ``gpo-sim/optimizer``: a meta-prompt or a reflection request.

The current prompt (verbatim between the lines ``<current_prompt>`` and ``</current_prompt>``,
the last such block), the edit budget sentence, the ``Suggestion: "..."`` lines of a
``<feedback>`` block, and the task examples (``Input: <Prompt>`` blocks with ``Output:``,
``Model output:`` and ``Expected output:`` lines) with the pool sentences they call for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pytest_gpo.optimize.markers import BUDGET_SENTENCE, CURRENT_CLOSE, CURRENT_OPEN
from pytest_gpo.sim.task import EMAIL, REFUND_WORDS, router_hits

_BUDGET_RE = re.compile(
    re.escape(BUDGET_SENTENCE).replace(re.escape("{n}"), r"(\d+)"), re.IGNORECASE
)
_SUGGESTION = re.compile(r'Suggestion:\s*"([^"\n]+)"')
_FEEDBACK = re.compile(r"<feedback>(.*?)</feedback>", re.DOTALL)


def read_current_prompt(text: str) -> str | None:
    """The prompt of the last ``<current_prompt>`` block of a meta-prompt, verbatim."""
    close = text.rfind("\n" + CURRENT_CLOSE)
    if close < 0:
        return None
    open_ = text.rfind(CURRENT_OPEN + "\n", 0, close + 1)
    if open_ < 0:
        return None
    return text[open_ + len(CURRENT_OPEN) + 1 : close]


def read_budget(text: str) -> int | None:
    """N of the budget sentence, or ``None`` when the meta-prompt sets no budget."""
    m = _BUDGET_RE.search(text)
    return int(m.group(1)) if m else None


def read_suggestions(text: str) -> list[str]:
    """The ``Suggestion: "..."`` sentences of the request's ``<feedback>`` block, if any."""
    feedback = _FEEDBACK.search(text)
    return _SUGGESTION.findall(feedback.group(1)) if feedback else []


# Task examples ---------------------------------------------------------------------------------

_EXAMPLE_START = re.compile(r"^Input: <Prompt>[ \t]*$", re.MULTILINE)
_OUTPUT_LINE = re.compile(r"^(Model output|Expected output|Output):[ \t]*(.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Example:
    """A task example of a meta-prompt or reflection request."""

    text: str
    output: str | None
    expected: str | None


def read_examples(text: str) -> list[Example]:
    """The task examples (``Input: <Prompt>`` blocks) with their output lines."""
    starts = [m.end() for m in _EXAMPLE_START.finditer(text)]
    examples: list[Example] = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        chunk = text[start:end]
        found = {m.group(1): (m.group(2).strip(), m.start()) for m in _OUTPUT_LINE.finditer(chunk)}
        if not found:
            continue
        first = min(position for _, position in found.values())
        output = found.get("Model output", (None, 0))[0]
        expected = (found.get("Expected output") or found.get("Output") or (None, 0))[0]
        examples.append(Example(chunk[:first], output, expected))
    return examples


def example_hints(task: str, example: Example) -> list[str]:
    """Helpful pool sentences that a task example calls for (what its expected output shows)."""
    expected = (example.expected or "").strip().strip('"')
    out: list[str] = []
    if task == "routing":
        label = expected.lower()
        if label == "billing" and REFUND_WORDS.search(example.text):
            out.append("Refunds and charges always go to billing.")
        elif label == "other":
            out.append("If no category fits, answer other.")
        elif len({h.label for h in router_hits(example.text, True)}) > 1:
            out += [
                "Focus on the customer's main request.",
                "Think about what the customer needs help with.",
            ]
    elif task == "extraction":
        try:
            want = json.loads(expected)
        except ValueError:
            return out
        if not isinstance(want, Mapping):
            return out
        email = want.get("email")
        shown = EMAIL.search(example.text)
        if isinstance(email, str) and shown and shown.group() != email:
            out.append("Lowercase the email address.")
        order = want.get("order_id")
        if isinstance(order, str) and order not in example.text:
            out.append("Order IDs look like ORD-12345.")
        if None in want.values():
            out.append("Use null for missing fields.")
        name = want.get("name")
        if isinstance(name, str) and " " in name:
            out.append("Give the customer's full name.")
    return out
