"""Enforcing the edit budget and the template's variables on candidate prompts.

The paper only *asks* the optimizer to stay within N changed words; this project measures it
(word-level Levenshtein distance with rapidfuzz) and rejects a candidate over budget, one that
drops or invents a template variable, or one that does not compile. Rejected candidates are
counted and never scored, so they cost no task-model calls.

**Layout counts** (:func:`edit_distance`): a prompt is read as its words and the whitespace
runs between them, where a run that is exactly one space is the normal gap and not a token;
every other run (a line break, a blank line, two spaces, a tab, a no-break space) is a token
of its own, and so are whitespace at the start and the end. The distance is the Levenshtein
distance of these token lists. So a whitespace-only rewrite is never free (each changed gap
costs 1), no candidate is ever cheaper than its word-level distance, and plain word edits in
ordinary sentences cost exactly what they did.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from rapidfuzz.distance import Levenshtein

from pytest_gpo.errors import SuiteError
from pytest_gpo.invisible import invisible
from pytest_gpo.optimize.variables import check_shown
from pytest_gpo.templates.template import check_syntax, template_variables

CandidateStatus = Literal[
    "accepted",
    "duplicate",
    "no_markers",
    "empty",
    "unchanged",
    "template_error",
    "dropped_variable",
    "invented_variable",
    "over_budget",
    "hidden_characters",
]

#: Statuses that reject a candidate (it is never scored). ``duplicate`` is not among them:
#: a candidate already scored is valid and reuses its score.
REJECTIONS: tuple[str, ...] = (
    "no_markers",
    "empty",
    "unchanged",
    "template_error",
    "dropped_variable",
    "invented_variable",
    "over_budget",
    "hidden_characters",
)

#: Statuses of candidates that may be scored; any other status is a rejection reason.
VALID_STATUSES: tuple[str, ...] = ("accepted", "duplicate")

#: What each rejection means, for reports.
REJECTION_TEXT: dict[str, str] = {
    "no_markers": "reply without <START>/<END> around a prompt",
    "empty": "empty reply",
    "unchanged": "same as the current prompt",
    "template_error": "not a valid Jinja2 template",
    "dropped_variable": "dropped a template variable or no longer shows it in full",
    "invented_variable": "used a variable the cases do not have",
    "over_budget": "changed more words than the budget allows",
    "hidden_characters": "added invisible or control characters (zero-width, bidi, escapes)",
}


def hidden_characters(candidate: str, current: str) -> str | None:
    """The invisible characters (:mod:`pytest_gpo.invisible`) ``candidate`` adds to
    ``current`` (one more of a kind the current prompt holds counts too: a stray U+200B must
    not license twenty), or None. They hide words from the edit measure (a sentence joined by
    U+200B is one "word") and text from a reviewer."""
    have = Counter(ch for ch in current if invisible(ch))
    added = Counter(ch for ch in candidate if invisible(ch)) - have
    if not added:
        return None
    shown = [
        f"U+{ord(ch):04X} {unicodedata.name(ch, '(' + unicodedata.category(ch) + ')')} x{n}"
        for ch, n in added.most_common(3)
    ]
    more = f" and {len(added) - 3} more" if len(added) > 3 else ""
    return ", ".join(shown) + more


def word_edit_distance(a: str, b: str) -> int:
    """Words inserted, deleted or substituted to turn ``a`` into ``b`` (whitespace-split)."""
    return int(Levenshtein.distance(a.split(), b.split()))


_LAYOUT = re.compile(r"\s+")


def layout_tokens(text: str) -> list[str]:
    """Words and layout of ``text`` (see the module docstring): single spaces are dropped."""
    tokens: list[str] = []
    position = 0
    for gap in _LAYOUT.finditer(text):
        if gap.start() > position:
            tokens.append(text[position : gap.start()])
        edge = gap.start() == 0 or gap.end() == len(text)
        if edge or gap.group() != " ":
            # a distinct prefix so a gap never equals a word
            tokens.append(("^" if gap.start() == 0 else "$" if edge else "~") + gap.group())
        position = gap.end()
    if position < len(text):
        tokens.append(text[position:])
    return tokens


def edit_distance(a: str, b: str) -> int:
    """Changed words plus changed layout between ``a`` and ``b`` (the budget's measure)."""
    return int(Levenshtein.distance(layout_tokens(a), layout_tokens(b)))


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
    samples: Sequence[Mapping[str, object]] = (),
) -> CandidateCheck:
    """Check a parsed candidate against the current prompt.

    ``allowed`` is the step's budget in changed words and layout gaps (:func:`edit_distance`;
    ``None``: unlimited; exactly ``allowed`` is within budget). ``variables`` are the template
    variables every prompt must use, no more and no fewer; with ``samples`` (case variables)
    the candidate must also *show* every value the current prompt shows
    (:func:`~pytest_gpo.optimize.variables.check_shown`). ``scored`` holds prompt texts
    already scored: a valid candidate among them is a ``duplicate``.
    """
    words = edit_distance(current, candidate)
    if not candidate.strip():
        return CandidateCheck("empty", words)
    if candidate == current:
        return CandidateCheck("unchanged", 0)
    hidden_chars = hidden_characters(candidate, current)
    if hidden_chars is not None:
        return CandidateCheck("hidden_characters", words, hidden_chars)
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
    hidden = check_shown(candidate, current, samples)
    if hidden is not None:
        status, detail = hidden
        if status == "template_error":
            return CandidateCheck("template_error", words, detail)
        return CandidateCheck("dropped_variable", words, detail)
    return CandidateCheck("accepted", words)
