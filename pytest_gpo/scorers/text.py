"""Text scorers: ``exact``, ``contains`` and ``regex``."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pytest_gpo.scorers.base import ScoreContext, ScoreResult
from pytest_gpo.scorers.common import OptionScorer, as_text, fmt_score, quote, result
from pytest_gpo.scorers.user_regex import RegexError, UserRegex, compile_user_regex
from pytest_gpo.suites.model import Case


class ExactScorer(OptionScorer):
    """Passes when the output equals ``expected``.

    Options: ``ignore_case`` (default false), ``strip`` surrounding whitespace of both sides
    (default true). Score 1 or 0.
    """

    type_name: ClassVar[str] = "exact"
    option_keys: ClassVar[tuple[str, ...]] = ("ignore_case", "strip")

    def __init__(self, options: Mapping[str, Any], *, where: str = "") -> None:
        super().__init__(options, where=where)
        self.read_normalization()

    async def score(self, output: str, case: Case, ctx: ScoreContext) -> ScoreResult:
        """1 when the (normalized) output equals the (normalized) expected text, else 0."""
        missing = self.missing_expected(case)
        if missing is not None:
            return missing
        expected = as_text(case.expected)
        if self.normalize(output) == self.normalize(expected):
            return result(1.0, True, f"exact match {quote(expected)}")
        hint = ""
        got, want = self.normalize(output), self.normalize(expected)
        if not self.ignore_case and got.casefold() == want.casefold():
            hint = " (differs only in case; set ignore_case: true to accept)"
        elif not self.strip and output.strip() == expected.strip():
            hint = " (differs only in surrounding whitespace)"
        return result(0.0, False, f"expected {quote(expected)}, got {quote(output)}{hint}")


class ContainsScorer(OptionScorer):
    """Passes when the output contains a text, or all / any of several texts.

    The texts come from ``value`` (a string or a list), or from the shorthands ``all: [...]``
    / ``any: [...]``, or else from ``expected`` (a string or a list). With several texts
    ``mode`` says whether ``all`` (default) or ``any`` must appear; in ``all`` mode the score is
    the fraction found (partial credit). ``ignore_case`` defaults to false.
    """

    type_name: ClassVar[str] = "contains"
    option_keys: ClassVar[tuple[str, ...]] = ("value", "all", "any", "mode", "ignore_case")

    def __init__(self, options: Mapping[str, Any], *, where: str = "") -> None:
        super().__init__(options, where=where)
        self.ignore_case = self.opt_bool("ignore_case", False)
        sources = [k for k in ("value", "all", "any") if k in self.options]
        if len(sources) > 1:
            raise self.fail(
                "options " + " and ".join(f"'{k}'" for k in sources) + " cannot be combined",
                key=sources[1],
                fix="give the texts once: value: [...] with mode: all|any, or all: [...], "
                "or any: [...]",
            )
        if sources and "mode" in self.options and sources[0] != "value":
            raise self.fail(
                f"option 'mode' cannot be combined with '{sources[0]}'",
                key="mode",
                fix=f"'{sources[0]}: [...]' already says the mode; drop 'mode'",
            )
        self.source = sources[0] if sources else None
        self.needles = self.opt_str_list(self.source) if self.source else None
        mode = self.opt_str("mode", "all", choices=("all", "any"))
        self.mode = self.source if self.source in ("all", "any") else (mode or "all")

    def requires_expected(self) -> bool:
        """Only when no ``value`` / ``all`` / ``any`` option gives the texts."""
        return self.needles is None

    def _needles(self, case: Case) -> list[str]:
        if self.needles is not None:
            return self.needles
        expected = case.expected
        if isinstance(expected, list | tuple):
            return [as_text(e) for e in expected]
        return [as_text(expected)]

    async def score(self, output: str, case: Case, ctx: ScoreContext) -> ScoreResult:
        """Fraction of the texts found (``all``), or 1/0 (``any``)."""
        missing = self.missing_expected(case)
        if missing is not None:
            return missing
        needles = self._needles(case)
        if not needles:
            return result(0.0, False, "nothing to look for: expected is an empty list")
        haystack = output.casefold() if self.ignore_case else output
        found = [n for n in needles if (n.casefold() if self.ignore_case else n) in haystack]
        absent = [n for n in needles if n not in found]
        if len(needles) == 1:
            if found:
                return result(1.0, True, f"contains {quote(needles[0])}")
            reason = f"expected to contain {quote(needles[0])}, got {quote(output)}"
            return result(0.0, False, reason)
        listed = ", ".join(quote(n, 30) for n in absent)
        if self.mode == "any":
            if found:
                return result(1.0, True, f"contains {quote(found[0])} (any of {len(needles)})")
            return result(0.0, False, f"contains none of {listed}; got {quote(output)}")
        fraction = len(found) / len(needles)
        if not absent:
            return result(1.0, True, f"contains all {len(needles)} texts")
        return result(
            fraction,
            False,
            f"missing {listed} ({len(found)} of {len(needles)} found, "
            f"score {fmt_score(fraction)}); got {quote(output)}",
        )


class RegexScorer(OptionScorer):
    """Passes when a regular expression matches the output.

    The pattern is the ``pattern`` option, or else the case's ``expected``. Options:
    ``ignore_case`` (default false), ``full`` (the whole output must match, after stripping
    surrounding whitespace; default false: a match anywhere), ``multiline``/``dotall``
    (the ``re`` flags, default false). Score 1 or 0. Patterns run on RE2
    (:mod:`pytest_gpo.scorers.user_regex`): linear time, no backreferences or lookaround.
    """

    type_name: ClassVar[str] = "regex"
    option_keys: ClassVar[tuple[str, ...]] = (
        "pattern",
        "ignore_case",
        "full",
        "multiline",
        "dotall",
    )

    def __init__(self, options: Mapping[str, Any], *, where: str = "") -> None:
        super().__init__(options, where=where)
        self.flags = 0
        if self.opt_bool("ignore_case", False):
            self.flags |= re.IGNORECASE
        if self.opt_bool("multiline", False):
            self.flags |= re.MULTILINE
        if self.opt_bool("dotall", False):
            self.flags |= re.DOTALL
        self.full = self.opt_bool("full", False)
        pattern = self.options.get("pattern")
        if pattern is not None and not isinstance(pattern, str):
            raise self.bad_type("pattern", "a string (a regular expression)", pattern)
        self.pattern: UserRegex | None = None
        if pattern is not None:
            try:
                self.pattern = compile_user_regex(pattern, self.flags)
            except RegexError as exc:
                raise self.fail(
                    f"regular expression {pattern!r} refused: {exc}",
                    key="pattern",
                    fix="quote the pattern in YAML with single quotes and escape regex "
                    "metacharacters with a backslash; rewrite backreferences and lookaround "
                    "(or score with a python scorer)",
                ) from exc

    def requires_expected(self) -> bool:
        """Only when no ``pattern`` option is given."""
        return self.pattern is None

    def check_cases(self, cases: Sequence[Case]) -> None:
        """Without ``pattern``, every case's ``expected`` must be a pattern RE2 can run (checked
        when the suite loads, so a bad one is a suite error naming the case)."""
        if self.pattern is not None:
            return
        for case in cases:
            if not case.has_expected:
                continue
            source = as_text(case.expected)
            try:
                compile_user_regex(source, self.flags)
            except RegexError as exc:
                raise self.fail(
                    f"case '{case.id}': expected pattern {source!r} refused: {exc}",
                    key="expected",
                    fix="rewrite the case's expected pattern without backreferences or lookaround",
                ) from None

    async def score(self, output: str, case: Case, ctx: ScoreContext) -> ScoreResult:
        """1 when the pattern matches, else 0."""
        missing = self.missing_expected(case)
        if missing is not None:
            return missing
        pattern = self.pattern
        if pattern is None:
            source = as_text(case.expected)
            try:
                pattern = compile_user_regex(source, self.flags)
            except RegexError as exc:
                return result(0.0, False, f"expected is not a usable regex {source!r}: {exc}")
        text = output.strip() if self.full else output
        match = pattern.fullmatch(text) if self.full else pattern.search(text)
        shown = f"/{pattern.pattern}/"
        if match is not None:
            where = "matches the whole output" if self.full else f"matched {quote(match.group(0))}"
            return result(1.0, True, f"{shown} {where}")
        how = "does not match the whole output" if self.full else "found no match"
        return result(0.0, False, f"{shown} {how} in {quote(output)}")
