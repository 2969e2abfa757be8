"""The ``fuzzy`` scorer: normalized edit similarity to ``expected`` (rapidfuzz)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pytest_gpo.scorers.base import ScoreContext, ScoreResult
from pytest_gpo.scorers.common import OptionScorer, as_text, quote, result, versus
from pytest_gpo.suites.model import Case


class FuzzyScorer(OptionScorer):
    """Scores ``fuzz.ratio(output, expected) / 100``; passes at ``min`` (default 0.8).

    Options: ``min`` (0..1), ``ignore_case`` (default false), ``strip`` surrounding
    whitespace (default true), ``max_distance`` (pass by the Levenshtein edit distance instead:
    at most this many single-character edits; ``min`` then does not apply). The score is the
    similarity itself (partial credit).
    """

    type_name: ClassVar[str] = "fuzzy"
    option_keys: ClassVar[tuple[str, ...]] = ("min", "ignore_case", "strip", "max_distance")

    def __init__(self, options: Mapping[str, Any], *, where: str = "") -> None:
        super().__init__(options, where=where)
        self.min = self.opt_float("min", 0.8, lo=0.0, hi=1.0)
        self.max_distance: int | None = None
        if "max_distance" in self.options:
            if "min" in self.options:
                raise self.fail(
                    "options 'min' and 'max_distance' cannot be combined",
                    key="max_distance",
                    fix="pass by similarity (min: 0.8) or by edit distance (max_distance: 5)",
                )
            self.max_distance = self.opt_int("max_distance", 0, lo=0)
        self.read_normalization()

    async def score(self, output: str, case: Case, ctx: ScoreContext) -> ScoreResult:
        """The similarity ratio in 0..1; passed when it reaches ``min``."""
        missing = self.missing_expected(case)
        if missing is not None:
            return missing
        expected = as_text(case.expected)
        from rapidfuzz import fuzz  # here, not at import: collection never needs it

        got, want = self.normalize(output), self.normalize(expected)
        similarity = float(fuzz.ratio(got, want)) / 100.0
        if self.max_distance is not None:
            from rapidfuzz.distance import Levenshtein

            distance = int(Levenshtein.distance(got, want))
            passed = distance <= self.max_distance
            sign = "<=" if passed else ">"
            reason = f"edit distance {distance} {sign} {self.max_distance}"
        else:
            passed = similarity >= self.min
            reason = f"similarity {versus(similarity, self.min)}"
        if not passed:
            reason += f": expected {quote(expected)}, got {quote(output)}"
        return result(similarity, passed, reason)
