"""Whether a candidate still shows the case data the current prompt shows (sentinel rendering).

A syntactic check (the variable's name appears in the template) passes ``{{ ticket[:0] }}``,
``{% if false %}{{ ticket }}{% endif %}`` and ``{{ ticket|truncate(10) }}``. Here both prompts
are rendered with the values of a few real cases in which every string is wrapped in a unique
sentinel (``⟦gpo:3⟧original text⟦/gpo:3⟧``); every sentinel the current prompt's output shows
must appear, intact, in the candidate's output. Numbers, booleans and ``null`` are not
wrapped (a sentinel would change arithmetic and comparisons), so a variable whose values hold
no string is checked by name only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_gpo.errors import GpoError
from pytest_gpo.templates.template import render

_SENTINEL = re.compile(r"⟦gpo:(\d+)⟧")


@dataclass(frozen=True)
class SentinelValues:
    """One case's variables with every string wrapped, and which variable owns each sentinel."""

    variables: Mapping[str, Any]
    owner: Mapping[str, str]


def with_sentinels(variables: Mapping[str, Any]) -> SentinelValues:
    """``variables`` with each string leaf (in lists and mappings too) wrapped in a sentinel."""
    owner: dict[str, str] = {}

    def wrap(value: Any, name: str) -> Any:
        if isinstance(value, str):
            n = len(owner)
            sentinel = f"⟦gpo:{n}⟧{value}⟦/gpo:{n}⟧"
            owner[sentinel] = name
            return sentinel
        if isinstance(value, Mapping):
            return {k: wrap(v, name) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [wrap(v, name) for v in value]
        return value

    wrapped = {name: wrap(value, name) for name, value in variables.items()}
    return SentinelValues(wrapped, owner)


def _shown(text: str, values: SentinelValues) -> set[str]:
    return {s for s in values.owner if s in text}


def check_shown(
    candidate: str, current: str, samples: Sequence[Mapping[str, Any]]
) -> tuple[str, str] | None:
    """``None`` when ``candidate`` shows, for every sample, all the case data ``current`` shows.

    Otherwise ``(status, detail)``: ``dropped_variable`` naming the variables no longer shown
    in full, or ``template_error`` when the candidate cannot be rendered where the current
    prompt can. A sample the current prompt cannot render is skipped.
    """
    for variables in samples:
        values = with_sentinels(variables)
        if not values.owner:
            continue
        try:
            before = render(current, values.variables)
        except GpoError:
            continue
        try:
            after = render(candidate, values.variables)
        except GpoError as exc:
            return "template_error", exc.message
        lost = _shown(before, values) - _shown(after, values)
        if lost:
            names = sorted({values.owner[s] for s in lost})
            return (
                "dropped_variable",
                f"{', '.join(names)} no longer shown in full (rendered with sentinel values)",
            )
        hidden = _hidden_real_values(candidate, current, variables)
        if hidden:
            return (
                "dropped_variable",
                f"{', '.join(hidden)} no longer shown in full for a real case "
                "(a condition on the value hides it)",
            )
    return None


def _strings(value: Any, name: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(name, value)] if value.strip() else []
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v, name)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v, name)]
    return []


def _hidden_real_values(candidate: str, current: str, variables: Mapping[str, Any]) -> list[str]:
    """Variables whose real value the current prompt shows and the candidate does not: the
    sentinels make every value longer, so ``{% if v|length > 30 %}`` passes with them and
    hides the value from the real case."""
    try:
        before = render(current, variables)
        after = render(candidate, variables)
    except GpoError:
        return []
    return sorted(
        {
            name
            for name, text in (s for k, v in variables.items() for s in _strings(v, k))
            if text in before and text not in after
        }
    )
