"""The ``number`` scorer: the last number in the output, compared with ``expected``."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pytest_gpo.scorers.base import ScoreContext, ScoreResult
from pytest_gpo.scorers.common import OptionScorer, as_text, quote, result
from pytest_gpo.suites.model import Case

# A sign only counts when it does not follow a word or a digit ("10-20" is 10 and 20).
_SIGN = r"(?P<sign>(?<![\w.])[-+−])?"
_DECIMAL = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_EXPONENT = r"(?:[eE][-+]?\d+)?"
_NUMBER = re.compile(rf"{_SIGN}(?P<num>(?:{_DECIMAL}){_EXPONENT})(?!\d)(?P<pct>\s?%)?")
# Not part of a date or a path: "3/4/2024" has no fraction.
_FRACTION = re.compile(rf"{_SIGN}(?<![\d/.])(?P<num>\d+)\s*/\s*(?P<den>\d+)(?![\d/.])")
# Tiny absolute slack so 0.1 + 0.2 equals 0.3 when no tolerance is set.
_EPSILON = 1e-9


@dataclass(frozen=True)
class Parsed:
    """A number found in text: its value, the text it came from, and whether it had ``%``."""

    value: float
    text: str
    percent: bool = False

    def candidates(self) -> tuple[float, ...]:
        """The values it may stand for: ``45%`` is 45 or 0.45."""
        return (self.value, self.value / 100) if self.percent else (self.value,)

    def shown(self) -> str:
        """The value for a reason."""
        return _fmt(self.value) + ("%" if self.percent else "")


def _fmt(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _to_float(text: str, sign: str | None) -> float:
    value = float(text.replace(",", ""))
    return -value if sign in ("-", "−") else value


def find_numbers(text: str, *, fractions: bool = False) -> list[Parsed]:
    """Every number in ``text`` in order (``1,234.5``, ``-3``, ``45%``, ``2e-3``; ``3/4``
    too when ``fractions``)."""
    spans: list[tuple[int, int, Parsed]] = []
    if fractions:
        for m in _FRACTION.finditer(text):
            den = int(m.group("den"))
            if den == 0:
                continue
            value = _to_float(m.group("num"), m.group("sign")) / den
            spans.append((m.start(), m.end(), Parsed(value, m.group(0).strip())))
    taken = [(s, e) for s, e, _ in spans]
    for m in _NUMBER.finditer(text):
        if any(s <= m.start() < e for s, e in taken):
            continue
        value = _to_float(m.group("num"), m.group("sign"))
        pct = m.group("pct") is not None
        spans.append((m.start(), m.end(), Parsed(value, m.group(0).strip(), pct)))
    spans.sort(key=lambda s: s[0])
    return [p for _, _, p in spans]


class NumberScorer(OptionScorer):
    """Passes when the last number in the output equals ``expected`` within a tolerance.

    Options: ``tolerance`` (absolute, default 0), ``rel_tolerance`` (relative to the larger
    magnitude, default 0), ``fractions`` (read ``3/4`` as 0.75, default false). ``1,234.5``,
    negatives, exponents and percentages are understood; ``45%`` matches an expected 45 or 0.45.
    ``expected`` is a number or a text whose last number is used. Score 1 or 0.
    """

    type_name: ClassVar[str] = "number"
    option_keys: ClassVar[tuple[str, ...]] = ("tolerance", "rel_tolerance", "fractions")

    def __init__(self, options: Mapping[str, Any], *, where: str = "") -> None:
        super().__init__(options, where=where)
        self.tolerance = self.opt_float("tolerance", 0.0, lo=0.0)
        self.rel_tolerance = self.opt_float("rel_tolerance", 0.0, lo=0.0)
        self.fractions = self.opt_bool("fractions", False)

    def _expected(self, expected: Any) -> Parsed | None:
        if isinstance(expected, int | float) and not isinstance(expected, bool):
            return Parsed(float(expected), _fmt(float(expected)))
        found = find_numbers(as_text(expected), fractions=True)
        return found[-1] if found else None

    def _close(self, got: float, want: float) -> bool:
        return math.isclose(
            got, want, rel_tol=self.rel_tolerance, abs_tol=max(self.tolerance, _EPSILON)
        )

    def _tolerance_text(self) -> str:
        parts = []
        if self.tolerance:
            parts.append(f"tolerance {self.tolerance:g}")
        if self.rel_tolerance:
            parts.append(f"rel_tolerance {self.rel_tolerance:g}")
        return ", ".join(parts) or "no tolerance"

    async def score(self, output: str, case: Case, ctx: ScoreContext) -> ScoreResult:
        """1 when the last number of the output is close enough to the expected one, else 0."""
        missing = self.missing_expected(case)
        if missing is not None:
            return missing
        want = self._expected(case.expected)
        if want is None:
            return result(0.0, False, f"expected {quote(as_text(case.expected))} is not a number")
        found = find_numbers(output, fractions=self.fractions)
        if not found:
            reason = f"expected {want.shown()}, found no number in {quote(output)}"
            return result(0.0, False, reason)
        got = found[-1]
        for g in got.candidates():
            for w in want.candidates():
                if self._close(g, w):
                    return result(1.0, True, f"got {got.shown()}, expected {want.shown()}")
        diff = abs(got.value - want.value)
        return result(
            0.0,
            False,
            f"expected {want.shown()}, got {got.shown()} (off by {diff:g}; "
            f"{self._tolerance_text()}) in {quote(output)}",
        )
