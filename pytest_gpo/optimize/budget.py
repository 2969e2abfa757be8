"""Enforcing the edit budget and the template's variables on candidate prompts.

The paper only *asks* the optimizer to stay within N changed words; this project measures it
(word-level Levenshtein distance with rapidfuzz) and rejects a candidate over budget, one that
drops or invents a template variable, or one that does not compile. Rejected candidates are
counted and never scored, so they cost no task-model calls.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from typing import Literal

from rapidfuzz.distance import Levenshtein

from pytest_gpo.errors import SuiteError
from pytest_gpo.templates.template import check_syntax, template_variables

CandidateStatus = Literal[
    "accepted",
    "duplicate",
    "empty",
    "unchanged",
    "template_error",
    "dropped_variable",
    "invented_variable",
    "over_budget",
]

#: Statuses that reject a candidate (it is never scored). ``duplicate`` is not among them:
#: a candidate already scored is valid and reuses its score.
REJECTIONS: tuple[str, ...] = (
    "empty",
    "unchanged",
    "template_error",
    "dropped_variable",
    "invented_variable",
    "over_budget",
)

#: Statuses of candidates that may be scored; any other status is a rejection reason.
VALID_STATUSES: tuple[str, ...] = ("accepted", "duplicate")

#: What each rejection means, for reports.
REJECTION_TEXT: dict[str, str] = {
    "empty": "empty reply",
    "unchanged": "same as the current prompt",
    "template_error": "not a valid Jinja2 template",
    "dropped_variable": "dropped a template variable",
    "invented_variable": "used a variable the cases do not have",
    "over_budget": "changed more words than the budget allows",
}


def word_edit_distance(a: str, b: str) -> int:
    """Words inserted, deleted or substituted to turn ``a`` into ``b`` (whitespace-split)."""
    return int(Levenshtein.distance(a.split(), b.split()))


@dataclass(frozen=True)
class CandidateCheck:
    """The verdict on one candidate: its status, the words it changed, and a detail text."""

    status: CandidateStatus
    words: int
    detail: str = ""

    @property
    def rejected(self) -> bool:
        """True when the candidate must not be scored."""
        return self.status not in VALID_STATUSES


def check_candidate(
    candidate: str,
    current: str,
    allowed: int | None,
    variables: frozenset[str],
    scored: Container[str] = (),
) -> CandidateCheck:
    """Check a parsed candidate against the current prompt.

    ``allowed`` is the step's word budget (``None``: unlimited; exactly ``allowed`` changed
    words is within budget). ``variables`` are the template variables every prompt must use,
    no more and no fewer. ``scored`` holds prompt texts already scored: a valid candidate
    among them is a ``duplicate``.
    """
    words = word_edit_distance(current, candidate)
    if not candidate.strip():
        return CandidateCheck("empty", words)
    if candidate == current:
        return CandidateCheck("unchanged", 0)
    error = check_syntax(candidate)
    if error is not None:
        return CandidateCheck("template_error", words, error)
    try:
        used = template_variables(candidate)
    except SuiteError as exc:
        return CandidateCheck("template_error", words, exc.message)
    dropped = variables - used
    if dropped:
        return CandidateCheck("dropped_variable", words, ", ".join(sorted(dropped)))
    invented = used - variables
    if invented:
        return CandidateCheck("invented_variable", words, ", ".join(sorted(invented)))
    if allowed is not None and words > allowed:
        return CandidateCheck("over_budget", words, f"{words} > {allowed} words")
    if candidate in scored:
        return CandidateCheck("duplicate", words)
    return CandidateCheck("accepted", words)
