"""Exact paired tests for the regression gate, with no dependency beyond the standard library.

The gate compares one prompt's per-case outcomes with the baseline's on the *same* cases, so
the tests here are paired. Both kinds of outcome use the same exact test:

* binary outcomes (pass/fail, or scores that are all 0 or 1): the exact McNemar test, which
  conditions on the discordant cases and is a sign test on them;
* fractional scores (judge scores, similarity, means over repeats): the exact paired sign test
  on the per-case differences, ties dropped.

Why the sign test and not a permutation test on the differences: it is exact for any number of
cases (integer binomial tails, no sampling, no seed), it does not depend on the scale of the
scores (a scorer change from 0..1 similarity to 0/1 exact does not change its meaning), and it
never lets one case with a large difference outweigh many with small ones. It ignores the size
of each difference, which makes it conservative; the gate therefore also requires the mean to
drop by more than ``tolerance``, which is where the size of the drop enters.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

#: Two per-case values closer than this count as a tie (float noise from averaging repeats).
TIE_EPSILON = 1e-9


def binomial_upper_tail(k: int, n: int) -> Fraction:
    """Exact ``P(X >= k)`` for ``X ~ Binomial(n, 1/2)``, as a fraction.

    ``k <= 0`` gives 1 and ``k > n`` gives 0. All arithmetic is on integers; the shorter side
    of the distribution is summed, each coefficient from the previous one, so thousands of
    cases take milliseconds.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if k <= 0:
        return Fraction(1)
    if k > n:
        return Fraction(0)
    total = 1 << n
    upper = _sum_binomials(n, k, n) if 2 * k >= n else total - _sum_binomials(n, 0, k - 1)
    return Fraction(upper, total)


def _sum_binomials(n: int, lo: int, hi: int) -> int:
    """``sum(C(n, i) for i in lo..hi)``; by symmetry it walks up from whichever end is nearer."""
    if hi - lo < 0:
        return 0
    if n - hi < lo:
        # C(n, i) == C(n, n - i): sum the mirrored range, which starts nearer to 0
        lo, hi = n - hi, n - lo
    c = math.comb(n, lo)
    total = c
    for i in range(lo, hi):
        c = c * (n - i) // (i + 1)
        total += c
    return total


def sign_test_p(worse: int, better: int) -> float:
    """One-sided exact sign test: ``P(X >= worse | n = worse + better, p = 1/2)``.

    The p-value that at least ``worse`` of the ``worse + better`` discordant cases went the bad
    way if each was equally likely to go either way. No discordant cases gives 1.0.
    """
    if worse < 0 or better < 0:
        raise ValueError("counts must be >= 0")
    return float(binomial_upper_tail(worse, worse + better))


def cases_needed(alpha: float, *, better: int = 0) -> int:
    """The fewest cases that must get worse, against ``better`` ones, for ``p_worse < alpha``.

    With ``better = 0`` it is what a suite needs to see any drop at all: at ``alpha = 0.05``,
    5 cases all moving the same way (``p = 1/32``); 4 (``p = 1/16``) cannot be told from noise
    however large the drop they make. The comparison is the gate's own
    (``sign_test_p(worse, better) < alpha``), so the answer agrees with the verdict.
    """
    if not 0 < alpha <= 1 or better < 0:
        raise ValueError(f"need 0 < alpha <= 1 and better >= 0, got {alpha!r}, {better!r}")
    worse = 1
    # p_worse halves (or better) with every added case, so this ends after about log2(1/alpha)
    while sign_test_p(worse, better) >= alpha:
        worse += 1
    return worse


@dataclass(frozen=True)
class PairedTest:
    """The outcome of an exact paired test of ``after`` against ``before``.

    ``p_worse`` is the one-sided p-value for "after is worse", ``p_better`` for "after is
    better"; each is computed by :func:`sign_test_p` from the counts of cases that moved.
    """

    name: str
    worse: int
    better: int
    ties: int
    p_worse: float
    p_better: float

    @property
    def discordant(self) -> int:
        """Cases whose outcome changed."""
        return self.worse + self.better


def is_binary(values: Iterable[float]) -> bool:
    """True when every value is 0 or 1 (pass/fail outcomes)."""
    return all(v == 0.0 or v == 1.0 for v in values)


def paired_test(
    before: Sequence[float], after: Sequence[float], *, epsilon: float = TIE_EPSILON
) -> PairedTest:
    """Exact one-sided paired tests of ``after`` against ``before`` (same cases, same order).

    Named ``exact McNemar`` when all outcomes are 0/1 and ``exact sign test`` otherwise; the
    computation is the same sign test on the cases that moved by more than ``epsilon``.
    """
    if len(before) != len(after):
        raise ValueError(f"paired samples differ in length: {len(before)} != {len(after)}")
    worse = better = ties = 0
    for b, a in zip(before, after, strict=True):
        d = a - b
        if d < -epsilon:
            worse += 1
        elif d > epsilon:
            better += 1
        else:
            ties += 1
    name = "exact McNemar" if is_binary(before) and is_binary(after) else "exact sign test"
    return PairedTest(
        name=name,
        worse=worse,
        better=better,
        ties=ties,
        p_worse=sign_test_p(worse, better),
        p_better=sign_test_p(better, worse),
    )


@dataclass(frozen=True)
class Spread:
    """How much a suite's score varies across repeated samples."""

    samples: int
    mean: float
    std: float
    min: float
    max: float

    def text(self) -> str:
        """``0.850 ± 0.021 (0.820..0.870, 3 samples)``."""
        return (
            f"{self.mean:.3f} ± {self.std:.3f} "
            f"({self.min:.3f}..{self.max:.3f}, {self.samples} samples)"
        )


def spread(values: Sequence[float]) -> Spread | None:
    """Mean, sample standard deviation and range of ``values``; ``None`` when empty."""
    if not values:
        return None
    n = len(values)
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return Spread(samples=n, mean=mean, std=std, min=min(values), max=max(values))
