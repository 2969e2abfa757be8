"""Shared helpers of the built-in scorers: option validation and readable reasons.

:class:`OptionScorer` checks a scorer's YAML options against the keys it declares, so a typo
(``ignore_cse``) or a wrong type (``min: "high"``) is a :class:`~pytest_gpo.errors.ScorerError`
at collection time that names the key, suggests the closest valid one and lists them all.
Plugin scorers may subclass it too.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pytest_gpo.errors import ScorerError
from pytest_gpo.llm.types import canonical_json
from pytest_gpo.scorers.base import Scorer, ScoreResult
from pytest_gpo.suites.model import Case

#: Keys the suite loader owns; tolerated (and dropped) if a loader passes them through.
LOADER_KEYS: frozenset[str] = frozenset({"type", "weight"})

_MISSING: Any = object()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large for a JSON number")
    return value


def strict_json(text: str) -> Any:
    """``json.loads`` as strict JSON: ``NaN``, ``Infinity`` and numbers past a float's range
    (``1e999``) are errors (:class:`json.JSONDecodeError`), never a score made of nothing."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError):
            raise
        raise json.JSONDecodeError(str(exc), text, 0) from None


def clamp(score: float) -> float:
    """``score`` limited to 0..1 (NaN counts as 0)."""
    if math.isnan(score):
        return 0.0
    return min(1.0, max(0.0, float(score)))


def result(score: float, passed: bool, reason: str) -> ScoreResult:
    """A :class:`ScoreResult` with the score clamped to 0..1."""
    return ScoreResult(clamp(score), bool(passed), reason)


def as_text(value: Any) -> str:
    """An expected value as text: strings as is, scalars as YAML would print them, else JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return canonical_json(value)


def quote(text: str, limit: int = 60) -> str:
    """``text`` in single quotes, one line, cut to ``limit`` characters with ``...``."""
    flat = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    if len(flat) > limit:
        flat = flat[: max(0, limit - 3)] + "..."
    return f"'{flat}'"


def fmt_score(value: float) -> str:
    """A score or similarity for a reason: two decimals (``0.83``)."""
    return f"{value:.2f}"


def versus(value: float, mark: float) -> str:
    """``0.83 >= 0.80`` or ``0.797 < 0.800``: enough decimals that the comparison reads true."""
    digits = 2
    while digits < 6 and value != mark and f"{value:.{digits}f}" == f"{mark:.{digits}f}":
        digits += 1
    rel = ">=" if value >= mark else "<"
    return f"{value:.{digits}f} {rel} {mark:.{digits}f}"


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


class OptionScorer(Scorer):
    """A :class:`Scorer` whose options are validated against :attr:`option_keys`.

    Subclasses list their keys in ``option_keys``, call ``super().__init__`` first, then read
    each option with the typed getters (:meth:`opt_bool`, :meth:`opt_float`, ...), which raise
    a :class:`ScorerError` naming the key when the value has the wrong type.
    """

    option_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: Mapping[str, Any], *, where: str = "") -> None:
        super().__init__({k: v for k, v in options.items() if k not in LOADER_KEYS}, where=where)
        for key in self.options:
            if key not in self.option_keys:
                raise self.unknown_option(str(key))

    def unknown_option(self, key: str) -> ScorerError:
        """The error for an option this scorer does not know, with a 'did you mean'."""
        valid = ", ".join(self.option_keys) or "(none)"
        close = difflib.get_close_matches(key, self.option_keys, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return self.fail(
            f"unknown option '{key}' for scorer '{self.type_name}'",
            key=key,
            fix=f"{hint}valid options of '{self.type_name}': {valid}",
        )

    def bad_type(self, key: str, wanted: str, value: Any, fix: str | None = None) -> ScorerError:
        """The error for an option whose value has the wrong type or range."""
        return self.fail(
            f"option '{key}' of scorer '{self.type_name}' must be {wanted}, "
            f"got {value!r} ({_type_name(value)})",
            key=key,
            fix=fix,
        )

    def opt_bool(self, key: str, default: bool) -> bool:
        """A boolean option (``true``/``false``)."""
        value = self.options.get(key, default)
        if not isinstance(value, bool):
            raise self.bad_type(key, "true or false", value)
        return value

    def opt_float(
        self,
        key: str,
        default: float,
        *,
        lo: float | None = None,
        hi: float | None = None,
    ) -> float:
        """A finite number option, optionally bounded to ``lo..hi`` (inclusive).

        ``.inf`` and ``.nan`` are refused even without bounds: a ``tolerance: .inf`` would make
        every answer match.
        """
        value = self.options.get(key, default)
        wanted = "a number"
        if lo is not None and hi is not None:
            wanted = f"a number from {lo:g} to {hi:g}"
        elif lo is not None:
            wanted = f"a number >= {lo:g}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            fix = (
                f"write {key}: {value} without quotes"
                if isinstance(value, str) and _is_number(value)
                else None
            )
            raise self.bad_type(key, wanted, value, fix)
        try:
            number = float(value)
        except OverflowError:  # an integer of hundreds of digits
            raise self.bad_type(key, wanted, value) from None
        if (
            not math.isfinite(number)
            or (lo is not None and number < lo)
            or (hi is not None and number > hi)
        ):
            raise self.bad_type(key, wanted, value)
        return number

    def opt_int(
        self, key: str, default: int, *, lo: int | None = None, hi: int | None = None
    ) -> int:
        """A whole-number option, optionally bounded to ``lo..hi`` (inclusive)."""
        value = self.options.get(key, default)
        wanted = "a whole number"
        if lo is not None and hi is not None:
            wanted = f"a whole number from {lo} to {hi}"
        elif lo is not None:
            wanted = f"a whole number >= {lo}"
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or (lo is not None and value < lo)
            or (hi is not None and value > hi)
        ):
            raise self.bad_type(key, wanted, value)
        return value

    def opt_str(
        self,
        key: str,
        default: str | None,
        *,
        choices: Sequence[str] | None = None,
    ) -> str | None:
        """A text option; with ``choices``, one of them."""
        value = self.options.get(key, default)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.bad_type(key, "a non-empty string", value)
        if choices is not None and value not in choices:
            raise self.bad_type(key, "one of " + ", ".join(repr(c) for c in choices), value)
        return value

    def opt_str_list(self, key: str) -> list[str] | None:
        """A list of strings (a single string counts as a one-item list); ``None`` if absent."""
        value = self.options.get(key, _MISSING)
        if value is _MISSING or value is None:
            return None
        items = [value] if isinstance(value, str) else value
        if (
            not isinstance(items, list)
            or not items
            or not all(isinstance(i, str | int | float) and not isinstance(i, bool) for i in items)
        ):
            raise self.bad_type(key, "a string or a non-empty list of strings", value)
        return [str(i) for i in items]

    def missing_expected(self, case: Case) -> ScoreResult | None:
        """A failing result when this scorer needs ``expected`` and the case has none."""
        if self.requires_expected() and not case.has_expected:
            return result(
                0.0, False, f"case has no 'expected' value to compare with ({self.type_name})"
            )
        return None

    def read_normalization(self) -> None:
        """Read the ``strip`` (default true) and ``ignore_case`` (default false) options."""
        self.ignore_case = self.opt_bool("ignore_case", False)
        self.strip = self.opt_bool("strip", True)

    def normalize(self, text: str) -> str:
        """``text`` as :meth:`read_normalization`'s options say to compare it."""
        if self.strip:
            text = text.strip()
        return text.casefold() if self.ignore_case else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
