"""promptfoo assertions mapped to pytest-gpo scorers, and the per-test scorer that runs them.

Each assertion becomes a :class:`Check`: a built-in scorer, the value it compares with (given
to the scorer as the case's ``expected``), ``not-`` negation and a weight. A promptfoo test
passes when every weighted assertion passes (or, with a test ``threshold``, when the weighted
score reaches it); :class:`PromptfooScorer` applies that rule per case.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from pytest_gpo.errors import GpoError, SuiteError
from pytest_gpo.scorers.base import ScoreContext, Scorer, ScoreResult, ScorerRegistry
from pytest_gpo.scorers.common import fmt_score
from pytest_gpo.suites.describe import did_you_mean, kind_of
from pytest_gpo.suites.model import MAX_WEIGHT, Case

#: The assertion types pytest-gpo maps (each also with a ``not-`` prefix).
SUPPORTED_TYPES = (
    "equals",
    "contains",
    "icontains",
    "contains-any",
    "icontains-any",
    "contains-all",
    "icontains-all",
    "starts-with",
    "regex",
    "is-json",
    "similar",
    "levenshtein",
    "llm-rubric",
)
#: The keys of an assertion mapping.
ASSERT_KEYS = ("type", "value", "threshold", "weight", "provider", "metric")
#: promptfoo's default pass marks.
SIMILAR_THRESHOLD = 0.75
LEVENSHTEIN_DISTANCE = 5

#: Reads a ``file://`` value of an assertion (``is-json`` schema): (path text, key) -> data.
ValueReader = Callable[[str, str], Any]
#: Maps a promptfoo provider id to a litellm model (grader and embedding providers).
ModelMapper = Callable[[str, str], str]


@dataclass(frozen=True)
class Check:
    """One mapped assertion: the scorer, what it compares with, negation and weight."""

    kind: str
    scorer: Scorer
    values: tuple[Any, ...]
    negate: bool
    weight: float
    binary: bool

    def fingerprint(self) -> dict[str, Any]:
        """Type, options, values, negation and weight (hashed into the baseline)."""
        return {
            "assert": self.kind,
            "values": list(self.values),
            "weight": self.weight,
            **self.scorer.fingerprint(),
        }

    async def run(self, output: str, case: Case, ctx: ScoreContext) -> ScoreResult:
        """The assertion's verdict (the best of several values, e.g. ``similar`` lists)."""
        best: ScoreResult | None = None
        for value in self.values or (None,):
            probe = replace(case, expected=value, has_expected=value is not None)
            got = await self.scorer.score(output, probe, ctx)
            if best is None or (got.passed, got.score) > (best.passed, best.score):
                best = got
        assert best is not None
        passed = best.passed != self.negate
        if self.binary:
            score = 1.0 if passed else 0.0
        else:
            score = 1.0 - best.score if self.negate else best.score
        reason = best.reason
        if self.negate:
            reason = f"expected the opposite of: {reason}" if not passed else f"not ({reason})"
        return ScoreResult(score, passed, f"{self.kind}: {reason}")


@dataclass(frozen=True)
class TestChecks:
    """The checks of one promptfoo test (one case) and its optional ``threshold``."""

    checks: tuple[Check, ...]
    threshold: float | None = None


class PromptfooScorer(Scorer):
    """Scores each case with the assertions of its promptfoo test.

    Score: the weighted mean of the assertion scores (weight 0: reported, not counted).
    Pass: every counted assertion passes; with a test ``threshold``, the score reaches it.
    A test without assertions passes with score 1, as in promptfoo.
    """

    type_name: ClassVar[str] = "promptfoo"
    needs_expected: ClassVar[bool] = False

    def __init__(self, tests: Mapping[str, TestChecks], *, where: str = "") -> None:
        super().__init__({}, where=where)
        self.tests = dict(tests)

    def fingerprint(self) -> dict[str, Any]:
        """Every test's checks and threshold."""
        return {
            "type": self.type_name,
            "tests": {
                cid: {"threshold": t.threshold, "checks": [c.fingerprint() for c in t.checks]}
                for cid, t in sorted(self.tests.items())
            },
        }

    async def score(self, output: str, case: Case, ctx: ScoreContext) -> ScoreResult:
        """The promptfoo verdict of this case's test."""
        test = self.tests.get(case.id)
        if test is None:
            return ScoreResult(0.0, False, f"no promptfoo test for case '{case.id}'")
        results = [(c.weight, await c.run(output, case, ctx)) for c in test.checks]
        counted = [(w, r) for w, r in results if w > 0]
        total = sum(w for w, _ in counted)
        score = sum(w * r.score for w, r in counted) / total if total > 0 else 1.0
        failed = [r.reason for w, r in counted if not r.passed]
        # weight 0: shown, never counted (promptfoo's rule)
        shown_only = [
            f"{'passed' if r.passed else 'failed'}: {r.reason}" for w, r in results if w == 0
        ]
        tail = f"; not counted (weight 0): {'; '.join(shown_only)}" if shown_only else ""
        if test.threshold is not None:
            passed = score >= test.threshold
            head = f"score {fmt_score(score)} {'>=' if passed else '<'} {test.threshold:g}"
            detail = "; ".join(failed[:3])
            return ScoreResult(score, passed, f"{head}" + (f" ({detail})" if detail else "") + tail)
        if not results:
            return ScoreResult(1.0, True, "no assertions")
        if not failed:
            return ScoreResult(score, True, f"all {len(counted)} assertion(s) passed{tail}")
        more = f" (+{len(failed) - 3} more)" if len(failed) > 3 else ""
        shown = "; ".join(failed[:3])
        return ScoreResult(
            score, False, f"{len(failed)} of {len(counted)} failed: {shown}{more}{tail}"
        )


def _text_list(value: Any, *, err: Callable[[str, str], SuiteError]) -> list[str]:
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, list) and value:
        items = [v if isinstance(v, str) else str(v) for v in value]
    else:
        raise err(
            f"needs a list of texts (or one comma-separated text), not {kind_of(value)}",
            "write value: [refund, 'money back']",
        )
    if not items:
        raise err("needs at least one text", "write value: [refund, 'money back']")
    return items


def _number(value: Any, *, err: Callable[[str, str], SuiteError], what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise err(f"'{what}' must be a number, not {kind_of(value)}", f"write {what}: 0.8")
    return float(value)


@dataclass
class AssertContext:
    """What mapping an assertion needs besides the assertion itself."""

    registry: ScorerRegistry
    where: str
    grader: str | None
    map_model: ModelMapper
    read_value: ValueReader


def build_check(item: Any, key: str, ctx: AssertContext) -> Check:
    """Map one promptfoo assertion to a :class:`Check`; unsupported types are errors."""

    def err(message: str, fix: str, at: str | None = None) -> SuiteError:
        return SuiteError(message, path=ctx.where, key=at or key, fix=fix)

    if not isinstance(item, dict) or not isinstance(item.get("type"), str):
        raise err(
            f"an assertion must be a mapping with a 'type', not {kind_of(item)}",
            "write e.g. '- type: contains' and 'value: Paris'",
        )
    kind = item["type"].strip()
    for name in item:
        if name not in ASSERT_KEYS:
            raise err(
                f"assertion '{kind}': unsupported key '{name}'",
                did_you_mean(str(name), ASSERT_KEYS) + " (see docs/promptfoo.md)",
                f"{key}.{name}",
            )
    negate = kind.startswith("not-")
    base = kind[4:] if negate else kind
    if base not in SUPPORTED_TYPES:
        raise err(
            f"unsupported assertion type '{kind}'",
            "pytest-gpo maps " + ", ".join(SUPPORTED_TYPES) + " (and their not- forms); "
            "see docs/promptfoo.md",
            f"{key}.type",
        )
    weight = _number(
        item.get("weight", 1.0), err=lambda m, f: err(m, f, f"{key}.weight"), what="weight"
    )
    if not 0 <= weight <= MAX_WEIGHT:
        raise err(f"'weight' must be from 0 to {MAX_WEIGHT:,}, got {weight:g}", "write weight: 2")
    threshold = item.get("threshold")
    value = item.get("value")
    if isinstance(value, str) and value.startswith("file://"):
        value = ctx.read_value(value[len("file://") :], f"{key}.value")

    def verr(m: str, f: str) -> SuiteError:
        return err(f"assertion '{kind}' {m}", f, f"{key}.value")

    needs_value = base not in ("is-json",)
    if needs_value and value is None:
        raise verr("needs a 'value'", f"add value: ... to the {kind} assertion")
    options: dict[str, Any] = {}
    values: tuple[Any, ...] = ()
    binary = True
    if base == "equals":
        if isinstance(value, dict | list):
            scorer_type, options, values = "json", {"equals": True, "fenced": False}, (value,)
        else:
            scorer_type, options, values = "exact", {"strip": False}, (str(value),)
    elif base in ("contains", "icontains"):
        scorer_type, options = "contains", {"value": str(value)}
        options["ignore_case"] = base == "icontains"
    elif base.endswith(("contains-any", "contains-all")):
        texts = _text_list(value, err=verr)
        scorer_type, options = "contains", {base.rsplit("-", 1)[1]: texts}
        options["ignore_case"] = base.startswith("i")
    elif base == "starts-with":
        scorer_type, options = "regex", {"pattern": r"\A" + re.escape(str(value))}
    elif base == "regex":
        scorer_type, options = "regex", {"pattern": str(value)}
    elif base == "is-json":
        scorer_type, options = "json", {"fenced": False}
        if value is not None:
            options["schema"] = value
    elif base == "similar":
        mark = SIMILAR_THRESHOLD if threshold is None else threshold
        scorer_type, options, binary = "semantic", {"min": mark}, False
        values = tuple(_text_list(value, err=verr) if isinstance(value, list) else [str(value)])
        if item.get("provider") is not None:
            options["model"] = _provider_model(item["provider"], f"{key}.provider", ctx)
    elif base == "levenshtein":
        distance = LEVENSHTEIN_DISTANCE if threshold is None else threshold
        if isinstance(distance, float) and distance.is_integer():
            distance = int(distance)
        scorer_type, options, values = "fuzzy", {"max_distance": distance}, (str(value),)
        options["strip"] = False
    else:  # llm-rubric
        mark = 0.5 if threshold is None else threshold
        scorer_type, binary = "judge", False
        options = {"rubric": str(value), "min": mark, "show_expected": False}
        grader = item.get("provider")
        model = (
            _provider_model(grader, f"{key}.provider", ctx) if grader is not None else ctx.grader
        )
        if model is not None:
            options["model"] = model
    if item.get("provider") is not None and base not in ("similar", "llm-rubric"):
        raise err(
            f"assertion '{kind}' takes no 'provider'",
            "remove it: only llm-rubric (grader) and similar (embeddings) use one",
            f"{key}.provider",
        )
    try:
        scorer = ctx.registry.create(scorer_type, options, where=f"{ctx.where} ({key}: {kind})")
    except GpoError as exc:
        raise err(f"assertion '{kind}': {exc.message}", exc.fix or "fix the assertion") from None
    return Check(kind, scorer, values, negate, weight, binary)


def _provider_model(value: Any, key: str, ctx: AssertContext) -> str:
    pid = value.get("id") if isinstance(value, dict) else value
    if not isinstance(pid, str) or not pid.strip():
        raise SuiteError(
            f"'provider' must be a provider id, not {kind_of(value)}",
            path=ctx.where,
            key=key,
            fix="write provider: openai:gpt-4o-mini",
        )
    return ctx.map_model(pid.strip(), key)


def build_checks(items: Sequence[Any], key: str, ctx: AssertContext) -> tuple[Check, ...]:
    """Every assertion of a test (``key`` locates the list, e.g. ``tests[2].assert``)."""
    return tuple(build_check(item, f"{key}[{i}]", ctx) for i, item in enumerate(items))
