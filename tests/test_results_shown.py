"""A repeated case is shown by a sample whose outcome is the case's own."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_gpo.results import CaseResult, RunResult


@settings(max_examples=300, derandomize=True, database=None)
@given(
    outcomes=st.lists(st.booleans(), min_size=1, max_size=7),
    k=st.integers(min_value=1, max_value=7),
)
def test_the_shown_sample_agrees_with_the_case_verdict(outcomes: list[bool], k: int) -> None:
    runs = [
        RunResult(i, f"out{i}", 1.0 if ok else 0.0, ok, f"{'ok' if ok else 'bad'} {i}")
        for i, ok in enumerate(outcomes)
    ]
    case = CaseResult("c", {}, None, runs, min_pass=min(k, len(runs)))
    shown = case.shown_run
    assert shown is not None and shown.passed == case.passed
    assert case.reason == shown.reason and case.output == shown.output
    assert case.reason.startswith("ok" if case.passed else "bad")


def test_a_case_passing_two_of_three_shows_a_passing_sample() -> None:
    runs = [
        RunResult(0, "wrong", 0.0, False, "expected 'a', got 'b'"),
        RunResult(1, "a", 1.0, True, "exact match 'a'"),
        RunResult(2, "a", 1.0, True, "exact match 'a'"),
    ]
    case = CaseResult("c", {}, "a", runs, min_pass=2)
    assert case.passed and case.reason == "exact match 'a'" and case.output == "a"
