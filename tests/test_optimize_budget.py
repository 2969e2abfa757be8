"""The word budget and template variables are enforced on crafted candidates."""

from __future__ import annotations

from pytest_gpo.optimize.budget import check_candidate, word_edit_distance

CURRENT = "Classify the ticket into one of billing, bug or other. Ticket: {{ ticket }}"
VARS = frozenset({"ticket"})


def _change(n: int) -> str:
    """The current prompt with its first ``n`` words substituted."""
    words = CURRENT.split()
    return " ".join([f"W{i}" for i in range(n)] + words[n:])


def test_word_edit_distance_is_word_level_levenshtein() -> None:
    assert word_edit_distance("a b c", "a b c") == 0
    assert word_edit_distance("a b c", "a x c") == 1
    assert word_edit_distance("a b c", "a c") == 1
    assert word_edit_distance("a b c", "a b c d e") == 2
    assert word_edit_distance("a  b\nc", "a b c") == 0  # whitespace-split


def test_exactly_at_budget_is_accepted_one_over_is_rejected() -> None:
    at = check_candidate(_change(5), CURRENT, 5, VARS)
    assert (at.status, at.words) == ("accepted", 5)
    over = check_candidate(_change(6), CURRENT, 5, VARS)
    assert (over.status, over.words) == ("over_budget", 6)
    assert over.rejected and "6 > 5" in over.detail
    assert check_candidate(_change(10), CURRENT, None, VARS).status == "accepted"


def test_template_variables_are_preserved() -> None:
    dropped = check_candidate("Classify the ticket.", CURRENT, None, VARS)
    assert (dropped.status, dropped.detail) == ("dropped_variable", "ticket")
    invented = check_candidate(CURRENT + " Customer: {{ customer }}", CURRENT, None, VARS)
    assert (invented.status, invented.detail) == ("invented_variable", "customer")
    broken = check_candidate("Classify {{ ticket ", CURRENT, None, VARS)
    assert broken.status == "template_error" and broken.rejected
    moved = check_candidate(
        "Ticket: {{ ticket }}. Classify it: billing, bug or other.", CURRENT, None, VARS
    )
    assert moved.status == "accepted"


def test_empty_unchanged_and_duplicate() -> None:
    assert check_candidate("  ", CURRENT, 50, VARS).status == "empty"
    assert check_candidate(CURRENT, CURRENT, 50, VARS).status == "unchanged"
    seen = {_change(2)}
    dup = check_candidate(_change(2), CURRENT, 50, VARS, seen)
    assert dup.status == "duplicate" and not dup.rejected
    # a known prompt over budget is still rejected: the budget is checked first
    assert check_candidate(_change(9), CURRENT, 5, VARS, {_change(9)}).status == "over_budget"
