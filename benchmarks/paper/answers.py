"""Final-answer extraction for ``word_sorting``, used through pytest-gpo's ``python`` scorer.

A chain of thought ends with its answer; the harness copies this file next to each
``word_sorting`` suite (``{type: python, function: "answers.py:sorted_words"}``).
"""

from __future__ import annotations

import re
from typing import Any

_MARKER = re.compile(r"(?:answer is|answer:|sorted:|sorted list is|sorted list:)", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9'&-]+")


def final_answer(output: str) -> str:
    """The text after the last answer marker (``answer is``, ``Answer:``, ``Sorted:``, ...),
    up to the end of its line; without a marker, the last non-empty line."""
    marks = list(_MARKER.finditer(output))
    if marks:
        rest = output[marks[-1].end() :].strip()
        return rest.splitlines()[0] if rest else ""
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def sorted_words(output: str, expected: Any) -> tuple[bool, str]:
    """Pass when the final answer's words, in order, are the expected sorted words
    (case, commas, quotes and a final full stop ignored)."""
    got = _WORD.findall(final_answer(output).lower())
    want = _WORD.findall(str(expected).lower())
    if got == want:
        return True, "sorted words match"
    return False, f"expected {' '.join(want)!r}, final answer {' '.join(got)[:200]!r}"
