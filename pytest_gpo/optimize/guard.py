"""The held-out guard: a rewrite is accepted only if it also beats the initial prompt on test.

The best prompt is chosen by its eval score, which the search itself has been fitted to; the
test split never influenced the search, so only a gain there is evidence. Optionally the gain
must also be significant by the exact paired test of :mod:`pytest_gpo.stats` (sign test /
exact McNemar on the per-case outcomes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_gpo.stats import paired_test


@dataclass(frozen=True)
class Verdict:
    """Whether to accept the best prompt, and why in one sentence."""

    accepted: bool
    reason: str
    test_name: str | None = None
    p_value: float | None = None


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def held_out_verdict(
    *,
    changed: bool,
    eval_before: float,
    test_before: Sequence[float],
    test_after: Sequence[float],
    min_gain: float = 0.0,
    use_paired_test: bool = False,
    alpha: float = 0.05,
) -> Verdict:
    """Decide on the best prompt from per-case test scores (same cases, same order).

    Accepted when the mean test gain is strictly greater than ``min_gain`` and, with
    ``use_paired_test``, the one-sided exact paired test gives ``p < alpha``.
    """
    if not changed:
        return Verdict(
            False,
            f"not accepted: no candidate beat the initial prompt on eval ({eval_before:.3f})",
        )
    before, after = _mean(test_before), _mean(test_after)
    moved = f"({before:.3f} → {after:.3f})"
    gain = after - before
    if not gain > min_gain:
        if min_gain > 0:
            return Verdict(
                False,
                f"not accepted: held-out test did not improve by more than {min_gain:g} {moved}",
            )
        return Verdict(False, f"not accepted: held-out test did not improve {moved}")
    if use_paired_test:
        test = paired_test(list(test_before), list(test_after))
        p = test.p_better
        if not p < alpha:
            return Verdict(
                False,
                f"not accepted: held-out gain is not significant {moved}, "
                f"{test.name} p = {p:.3g} (needs < {alpha:g})",
                test.name,
                p,
            )
        return Verdict(
            True,
            f"accepted: held-out test improved {moved}, {test.name} p = {p:.3g}",
            test.name,
            p,
        )
    return Verdict(True, f"accepted: held-out test improved {moved}")
