"""Exact paired tests: hand-computed binomial tails, naming, ties and the spread of repeats."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from pytest_gpo.stats import (
    binomial_upper_tail,
    is_binary,
    paired_test,
    sign_test_p,
    spread,
)


@pytest.mark.parametrize(
    ("worse", "better", "expected"),
    [
        (1, 0, Fraction(1, 2)),  # one discordant case, it went worse
        (0, 1, Fraction(1)),  # nothing went worse
        (0, 0, Fraction(1)),  # no discordant cases at all
        (8, 0, Fraction(1, 256)),
        (10, 2, Fraction(79, 4096)),  # (C(12,10) + C(12,11) + C(12,12)) / 2^12 = (66+12+1)/4096
        (2, 10, Fraction(4096 - 1 - 12, 4096)),  # P(X >= 2) = 1 - P(0) - P(1)
        (3, 3, Fraction(42, 64)),  # (20+15+6+1)/64
        (1, 1, Fraction(3, 4)),
    ],
)
def test_sign_test_hand_computed(worse: int, better: int, expected: Fraction) -> None:
    assert binomial_upper_tail(worse, worse + better) == expected
    assert sign_test_p(worse, better) == pytest.approx(float(expected), rel=1e-15)


def test_tail_both_summation_sides_agree_with_the_definition() -> None:
    for n in range(0, 25):
        for k in range(-1, n + 2):
            direct = Fraction(sum(math.comb(n, i) for i in range(max(k, 0), n + 1)), 2**n)
            assert binomial_upper_tail(k, n) == direct


@pytest.mark.parametrize(("k", "n"), [(150, 400), (201, 400), (260, 400), (1, 401), (400, 401)])
def test_tail_recurrence_matches_math_comb(k: int, n: int) -> None:
    direct = Fraction(sum(math.comb(n, i) for i in range(k, n + 1)), 2**n)
    assert binomial_upper_tail(k, n) == direct


def test_tail_is_exact_for_large_n() -> None:
    # symmetric: P(X >= 501 | n=1000) = (1 - P(X = 500)) / 2
    p = binomial_upper_tail(501, 1000)
    assert p == (1 - Fraction(math.comb(1000, 500), 2**1000)) / 2
    # a tail too small for a float underflows to 0.0 instead of raising
    assert sign_test_p(5000, 0) == 0.0
    assert 0.0 < sign_test_p(600, 400) < 1e-9


def test_bad_counts_are_rejected() -> None:
    with pytest.raises(ValueError):
        sign_test_p(-1, 2)
    with pytest.raises(ValueError):
        binomial_upper_tail(1, -1)


def test_binary_outcomes_are_named_mcnemar() -> None:
    before = [1.0] * 8 + [0.0, 1.0]
    after = [0.0] * 8 + [0.0, 1.0]
    t = paired_test(before, after)
    assert t.name == "exact McNemar"
    assert (t.worse, t.better, t.ties, t.discordant) == (8, 0, 2, 8)
    assert t.p_worse == pytest.approx(1 / 256)
    assert t.p_better == 1.0


def test_fractional_scores_use_the_sign_test_and_drop_ties() -> None:
    before = [0.9, 0.8, 0.5, 0.7, 0.6]
    after = [0.7, 0.8 + 1e-12, 0.4, 0.7, 0.9]  # worse, tie (float noise), worse, tie, better
    t = paired_test(before, after)
    assert t.name == "exact sign test"
    assert (t.worse, t.better, t.ties) == (2, 1, 2)
    assert t.p_worse == pytest.approx(4 / 8)  # P(X>=2 | n=3) = (3+1)/8
    assert t.p_better == pytest.approx(7 / 8)


def test_paired_lengths_must_match() -> None:
    with pytest.raises(ValueError, match="length"):
        paired_test([1.0], [1.0, 0.0])


def test_is_binary() -> None:
    assert is_binary([0.0, 1.0, 1])
    assert not is_binary([0.0, 0.5])
    assert is_binary([])


def test_spread() -> None:
    assert spread([]) is None
    one = spread([0.5])
    assert one is not None and one.std == 0.0 and one.samples == 1
    s = spread([0.8, 0.9, 1.0])
    assert s is not None
    assert s.mean == pytest.approx(0.9)
    assert s.std == pytest.approx(0.1)  # sample std: sqrt((0.01+0+0.01)/2)
    assert (s.min, s.max) == (0.8, 1.0)
    assert s.text() == "0.900 ± 0.100 (0.800..1.000, 3 samples)"
