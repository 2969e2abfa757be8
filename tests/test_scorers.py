"""Built-in scorers: verdicts, reasons, partial credit, option validation, requires_expected."""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_gpo.errors import ScorerError
from pytest_gpo.llm.types import Completion, Request, Usage
from pytest_gpo.scorers.base import ScoreContext, Scorer, ScoreResult
from pytest_gpo.scorers.choice import ChoiceScorer
from pytest_gpo.scorers.common import as_text, clamp, quote, versus
from pytest_gpo.scorers.json_scorer import extract_json, first_difference, json_equal
from pytest_gpo.scorers.judge import JudgeScorer, parse_verdict
from pytest_gpo.scorers.number import find_numbers
from pytest_gpo.scorers.registry import BUILTIN_SCORERS, builtin_registry
from pytest_gpo.suites.model import Case

REGISTRY = builtin_registry()
_NO_EXPECTED = object()


def make(type_name: str, **options: Any) -> Scorer:
    return REGISTRY.create(type_name, options, where="suite.gpo.yaml")


def case(expected: Any = _NO_EXPECTED, **vars: Any) -> Case:
    if expected is _NO_EXPECTED:
        return Case(id="c1", vars=vars)
    return Case(id="c1", vars=vars, expected=expected, has_expected=True)


def run(
    scorer: Scorer, output: str, expected: Any = _NO_EXPECTED, ctx: ScoreContext | None = None
) -> ScoreResult:
    return asyncio.run(scorer.score(output, case(expected), ctx or ScoreContext()))


def config_error(type_name: str, **options: Any) -> ScorerError:
    with pytest.raises(ScorerError) as info:
        make(type_name, **options)
    return info.value


# -- registry and shared behaviour ---------------------------------------------------------


def test_registry_has_every_builtin() -> None:
    assert REGISTRY.names() == sorted(
        [
            "exact",
            "contains",
            "regex",
            "choice",
            "number",
            "fuzzy",
            "semantic",
            "json",
            "judge",
            "python",
        ]
    )
    assert set(BUILTIN_SCORERS) == set(REGISTRY.names())
    assert builtin_registry() is not builtin_registry()


@pytest.mark.parametrize(
    ("type_name", "options"),
    [
        ("exact", {}),
        ("contains", {}),
        ("regex", {}),
        ("choice", {}),
        ("number", {}),
        ("fuzzy", {}),
        ("semantic", {}),
        ("json", {}),
        ("judge", {"rubric": "polite"}),
        ("python", {"function": "json:dumps"}),
    ],
)
def test_unknown_option_names_key_suggests_and_lists(
    type_name: str, options: dict[str, Any]
) -> None:
    err = config_error(type_name, **options, ignore_cse=True)
    assert err.key == "ignore_cse"
    assert err.path == "suite.gpo.yaml"
    assert f"unknown option 'ignore_cse' for scorer '{type_name}'" in err.message
    assert err.fix is not None and "valid options" in err.fix
    cls = BUILTIN_SCORERS[type_name]
    for key in cls.option_keys:  # type: ignore[attr-defined]
        assert key in err.fix


def test_unknown_option_did_you_mean() -> None:
    err = config_error("exact", ignore_cse=True)
    assert err.fix is not None and "did you mean 'ignore_case'?" in err.fix
    assert "ignore_case, strip" in err.fix
    rendered = str(err)
    assert "suite.gpo.yaml" in rendered and "key 'ignore_cse'" in rendered


@pytest.mark.parametrize(
    ("type_name", "options", "key"),
    [
        ("fuzzy", {"min": "high"}, "min"),
        ("fuzzy", {"min": 1.5}, "min"),
        ("fuzzy", {"min": True}, "min"),
        ("semantic", {"min": "0.8"}, "min"),
        ("semantic", {"model": 3}, "model"),
        ("exact", {"ignore_case": "yes"}, "ignore_case"),
        ("exact", {"strip": 1}, "strip"),
        ("contains", {"value": {"a": 1}}, "value"),
        ("contains", {"value": []}, "value"),
        ("contains", {"mode": "some", "value": ["a", "b"]}, "mode"),
        ("regex", {"pattern": 3}, "pattern"),
        ("number", {"tolerance": -1}, "tolerance"),
        ("number", {"rel_tolerance": "5%"}, "rel_tolerance"),
        ("number", {"fractions": "yes"}, "fractions"),
        ("choice", {"labels": {"a": 1}}, "labels"),
        ("choice", {"letters": "AAB"}, "letters"),
        ("json", {"equals": "yes"}, "equals"),
        ("json", {"required": 5}, "required"),
        ("judge", {"rubric": "x", "scale": 0}, "scale"),
        ("judge", {"rubric": "x", "scale": 2.5}, "scale"),
        ("judge", {"rubric": "", "min": 0.5}, "rubric"),
        ("python", {"function": "json:dumps", "min": "low"}, "min"),
    ],
)
def test_wrong_option_types_name_the_key(type_name: str, options: dict[str, Any], key: str) -> None:
    err = config_error(type_name, **options)
    assert err.key == key
    assert f"option '{key}'" in err.message or key in err.message


def test_wrong_type_message_shows_value_and_type() -> None:
    err = config_error("fuzzy", min="high")
    assert "must be a number from 0 to 1, got 'high' (str)" in err.message
    err = config_error("fuzzy", min="0.9")
    assert err.fix == "write min: 0.9 without quotes"


def test_loader_keys_are_tolerated() -> None:
    scorer = make("exact", type="exact", weight=2, ignore_case=True)
    assert scorer.options == {"ignore_case": True}
    assert scorer.fingerprint() == {"type": "exact", "ignore_case": True}


def test_missing_expected_is_a_failing_result_not_a_crash() -> None:
    res = run(make("exact"), "hello")
    assert (res.score, res.passed) == (0.0, False)
    assert "no 'expected'" in res.reason


@pytest.mark.parametrize(
    ("type_name", "options", "needs"),
    [
        ("exact", {}, True),
        ("contains", {}, True),
        ("contains", {"value": "x"}, False),
        ("contains", {"all": ["x", "y"]}, False),
        ("contains", {"any": ["x"]}, False),
        ("regex", {}, True),
        ("regex", {"pattern": "x"}, False),
        ("choice", {}, True),
        ("choice", {"labels": ["a", "b"]}, True),
        ("number", {}, True),
        ("fuzzy", {}, True),
        ("semantic", {}, True),
        ("json", {}, False),
        ("json", {"required": ["a"]}, False),
        ("json", {"equals": True}, True),
        ("json", {"equals": False}, False),
        ("judge", {"rubric": "x"}, False),
        ("python", {"function": "json:dumps"}, False),
    ],
)
def test_requires_expected(type_name: str, options: dict[str, Any], needs: bool) -> None:
    assert make(type_name, **options).requires_expected() is needs


def test_helpers() -> None:
    assert clamp(1.7) == 1.0 and clamp(-0.2) == 0.0 and clamp(float("nan")) == 0.0
    assert as_text(3) == "3" and as_text(True) == "true" and as_text(None) == ""
    assert as_text({"b": 1, "a": [1]}) == '{"a":[1],"b":1}'
    assert quote("a\nb") == "'a\\nb'"
    assert quote("x" * 100, 10) == "'xxxxxxx...'"
    assert versus(0.83, 0.8) == "0.83 >= 0.80"
    assert versus(0.797, 0.8) == "0.797 < 0.800"


# -- exact ---------------------------------------------------------------------------------


def test_exact_pass_and_strip_by_default() -> None:
    res = run(make("exact"), "  billing\n", "billing")
    assert (res.score, res.passed) == (1.0, True)
    assert res.reason == "exact match 'billing'"


def test_exact_fail_reason_and_case_hint() -> None:
    res = run(make("exact"), "Billing: the ticket is about an invoice", "billing")
    assert (res.score, res.passed) == (0.0, False)
    assert res.reason == "expected 'billing', got 'Billing: the ticket is about an invoice'"
    res = run(make("exact"), "Billing", "billing")
    assert "set ignore_case: true" in res.reason


def test_exact_ignore_case_and_no_strip() -> None:
    assert run(make("exact", ignore_case=True), "BILLING", "billing").passed
    res = run(make("exact", strip=False), "billing ", "billing")
    assert not res.passed and "surrounding whitespace" in res.reason


def test_exact_non_string_expected() -> None:
    assert run(make("exact"), "42", 42).passed
    assert run(make("exact"), "true", True).passed


# -- contains ------------------------------------------------------------------------------


def test_contains_expected_and_value() -> None:
    assert run(make("contains"), "we will refund you", "refund").passed
    res = run(make("contains", value="refund"), "we cannot help")
    assert (res.score, res.passed) == (0.0, False)
    assert res.reason == "expected to contain 'refund', got 'we cannot help'"


def test_contains_ignore_case() -> None:
    assert not run(make("contains", value="Refund"), "a refund").passed
    res = run(make("contains", value="Refund", ignore_case=True), "a refund")
    assert res.passed and res.reason == "contains 'Refund'"


def test_contains_all_partial_credit() -> None:
    scorer = make("contains", all=["refund", "apolog", "order"])
    res = run(scorer, "We apologize and will refund you.")
    assert res.score == pytest.approx(2 / 3)
    assert not res.passed
    assert "missing 'order' (2 of 3 found, score 0.67)" in res.reason
    assert run(scorer, "apologies: your order refund is on its way").passed


def test_contains_any_and_mode() -> None:
    scorer = make("contains", any=["refund", "money back"])
    res = run(scorer, "you get your money back")
    assert res.passed and "money back" in res.reason
    res = run(scorer, "no")
    assert (res.score, res.passed) == (0.0, False)
    assert "contains none of 'refund', 'money back'" in res.reason
    assert run(make("contains", value=["x", "y"], mode="any"), "y").passed
    assert not run(make("contains", value=["x", "y"]), "y").passed


def test_contains_expected_list() -> None:
    res = run(make("contains"), "alpha beta", ["alpha", "gamma"])
    assert res.score == 0.5 and not res.passed


def test_contains_conflicting_sources() -> None:
    err = config_error("contains", value="a", any=["b"])
    assert err.key == "any" and "cannot be combined" in err.message
    err = config_error("contains", all=["a"], mode="any")
    assert err.key == "mode"


# -- regex ---------------------------------------------------------------------------------


def test_regex_pattern_option() -> None:
    scorer = make("regex", pattern=r"TICKET-\d{4}")
    res = run(scorer, "Your id is TICKET-1234.")
    assert res.passed and res.reason == "/TICKET-\\d{4}/ matched 'TICKET-1234'"
    res = run(scorer, "no id")
    assert not res.passed and res.reason == "/TICKET-\\d{4}/ found no match in 'no id'"


def test_regex_expected_as_pattern_and_flags() -> None:
    assert (
        run(
            make("regex"),
            "Order 55 shipped",
            r"order \d+",
        ).passed
        is False
    )
    assert run(make("regex", ignore_case=True), "Order 55 shipped", r"order \d+").passed
    res = run(make("regex"), "abc", "a(")
    assert not res.passed and "not a usable regex 'a('" in res.reason


def test_regex_full() -> None:
    scorer = make("regex", pattern=r"\d+", full=True)
    assert run(scorer, " 123 \n").passed
    res = run(scorer, "123 apples")
    assert not res.passed and "does not match the whole output" in res.reason


def test_regex_invalid_pattern_is_a_config_error() -> None:
    err = config_error("regex", pattern="(unclosed")
    assert err.key == "pattern"
    assert "regular expression '(unclosed' refused: invalid regular expression" in err.message
    assert "missing ), unterminated subpattern" in err.message


# -- choice --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("The answer is (B) because the others are wrong.", "B"),
        ("A good question. The correct answer: C", "C"),
        ("b", "B"),
        ("(d)", "D"),
        ("I think option A is wrong; final answer is E.", "E"),
        ("Answer: b", "B"),
        ("A. Paris\nB. Rome", "A"),
        ("The answer is a tricky one, but it's D", "D"),
        ("**Answer:** (C)", "(C)"),
    ],
)
def test_choice_letters(output: str, expected: str) -> None:
    res = run(make("choice"), output, expected)
    assert res.passed, res.reason
    assert res.reason.startswith("chose '")


def test_choice_letter_mismatch_reason() -> None:
    res = run(make("choice"), "The answer is (B) because it is cheaper.", "C")
    assert (res.score, res.passed) == (0.0, False)
    assert res.reason.startswith("expected 'C', got 'B' (from the statement 'answer is (B)')")


def test_choice_no_letter_found() -> None:
    res = run(make("choice"), "I am not sure.", "A")
    assert not res.passed and "found no option letter (ABCDE)" in res.reason


def test_choice_custom_letters() -> None:
    assert run(make("choice", letters="ABCDEFGH"), "It must be G here", "G").passed
    res = run(make("choice"), "It must be G here", "G")
    assert not res.passed and "'G' is not among letters 'ABCDE': set letters:" in res.reason


LABELS = ["Billing", "Technical", "Technical Support", "Account"]


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("Category: Billing.", "billing"),
        ("Billing: the ticket is about an invoice", "Billing"),
        ("This is not a technical issue. Category: Billing", "Billing"),
        ("**Account**", "account"),
        ("I would route this to Technical Support since the app crashes", "technical support"),
    ],
)
def test_choice_labels(output: str, expected: str) -> None:
    res = run(make("choice", labels=LABELS), output, expected)
    assert res.passed, res.reason


def test_choice_labels_mismatch_and_unknown_expected() -> None:
    scorer = make("choice", labels=LABELS)
    res = run(scorer, "Category: Technical", "Billing")
    assert res.reason.startswith("expected 'Billing', got 'Technical'")
    res = run(scorer, "Category: Billing", "Sales")
    assert not res.passed and "is not one of the labels" in res.reason
    res = run(scorer, "no idea", "Billing")
    assert "found no label" in res.reason


def test_choice_free_label_without_labels() -> None:
    scorer = make("choice")
    assert run(scorer, "Category: Billing.", "billing").passed
    assert run(scorer, "Billing - it is about an invoice", "billing").passed
    res = run(scorer, "Category: Technical. The app crashes.", "billing")
    assert res.reason.startswith("expected 'billing', got 'Technical'")


def test_choice_extractors_are_public() -> None:
    scorer = make("choice")
    assert isinstance(scorer, ChoiceScorer)
    found = scorer.extract_letter("Final answer: (E)")
    assert found is not None and found.value == "E"


# -- number --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("The total is $1,234.50.", 1234.5),
        ("First 3, then 5, so the answer is 42.", 42),
        ("It fell to -3.5 degrees", "-3.5"),
        ("x = −7", -7),
        ("About 45% of users", 45),
        ("About 45% of users", 0.45),
        ("The rate is 0.45", "45%"),
        ("2e-3 mol", 0.002),
        ("0.1 + 0.2 = 0.30000000000000004", 0.3),
    ],
)
def test_number_pass(output: str, expected: Any) -> None:
    res = run(make("number"), output, expected)
    assert res.passed, res.reason


def test_number_fail_reason() -> None:
    res = run(make("number"), "I count 41 apples", 42)
    assert (res.score, res.passed) == (0.0, False)
    assert res.reason == "expected 42, got 41 (off by 1; no tolerance) in 'I count 41 apples'"
    res = run(make("number"), "none", 42)
    assert res.reason == "expected 42, found no number in 'none'"
    res = run(make("number"), "5", "many")
    assert res.reason == "expected 'many' is not a number"


def test_number_tolerances() -> None:
    assert run(make("number", tolerance=0.5), "41.6", 42).passed
    res = run(make("number", tolerance=0.1), "41.6", 42)
    assert not res.passed and "tolerance 0.1" in res.reason
    assert run(make("number", rel_tolerance=0.01), "1005", 1000).passed
    assert not run(make("number", rel_tolerance=0.001), "1005", 1000).passed


def test_number_fractions_option() -> None:
    assert not run(make("number"), "three quarters: 3/4", 0.75).passed
    assert run(make("number", fractions=True), "three quarters: 3/4", 0.75).passed
    assert run(make("number", fractions=True), "on 3/4/2024", 2024).passed


def test_find_numbers_ranges_and_lists() -> None:
    assert [p.value for p in find_numbers("from 10-20 items")] == [10, 20]
    assert [p.value for p in find_numbers("1,2,3")] == [1, 2, 3]
    assert [p.value for p in find_numbers("5kg and 3rd")] == [5, 3]


# -- fuzzy ---------------------------------------------------------------------------------


def test_fuzzy_score_is_the_ratio() -> None:
    res = run(make("fuzzy"), "Hello wrld", "Hello world")
    assert res.passed
    assert res.score == pytest.approx(0.952, abs=0.001)
    assert res.reason == "similarity 0.95 >= 0.80"


def test_fuzzy_fail_and_min() -> None:
    res = run(make("fuzzy", min=0.99), "Hello wrld", "Hello world")
    assert not res.passed and res.score == pytest.approx(0.952, abs=0.001)
    assert res.reason.startswith("similarity 0.95 < 0.99: expected 'Hello world', got")
    assert run(make("fuzzy", ignore_case=True), "HELLO WORLD", "hello world").score == 1.0
    assert run(make("fuzzy"), "HELLO WORLD", "hello world").score < 0.5


# -- semantic (with a fake embedder; the real model is in test_embeddings.py) ----------------


class FakeEmbedder:
    """Vectors from a fixed table (unit length)."""

    name = "fake"

    def __init__(self, table: Mapping[str, list[float]]) -> None:
        self.table = table
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        return [self.table[t] for t in texts]


def semantic_ctx(table: Mapping[str, list[float]], seen: list[str | None]) -> ScoreContext:
    embedder = FakeEmbedder(table)

    def get(spec: str | None) -> FakeEmbedder:
        seen.append(spec)
        return embedder

    return ScoreContext(embedder=get)


def test_semantic_pass_fail_and_clamp() -> None:
    table = {"a": [1.0, 0.0], "b": [0.8, 0.6], "c": [0.0, 1.0], "d": [-1.0, 0.0]}
    seen: list[str | None] = []
    ctx = semantic_ctx(table, seen)
    scorer = make("semantic")
    res = run(scorer, "b", "a", ctx)
    assert res.passed and res.score == pytest.approx(0.8)
    assert res.reason == "similarity 0.80 >= 0.80"
    res = run(scorer, "c", "a", ctx)
    assert not res.passed and res.score == 0.0
    assert res.reason == "similarity 0.00 < 0.80 to expected 'a'; got 'c'"
    assert run(scorer, "d", "a", ctx).score == 0.0
    assert seen == [None, None, None]
    assert run(make("semantic", min=0.5), "b", "a", ctx).passed


def test_semantic_model_specs(tmp_path: Path) -> None:
    table = {"x": [1.0], "y": [1.0]}
    seen: list[str | None] = []
    ctx = semantic_ctx(table, seen)
    ctx.suite_dir = tmp_path
    (tmp_path / "models" / "mini").mkdir(parents=True)
    run(make("semantic", model="openai/text-embedding-3-small"), "x", "y", ctx)
    run(make("semantic", model="models/mini"), "x", "y", ctx)
    run(make("semantic", model="./models/other"), "x", "y", ctx)
    assert seen == [
        "openai/text-embedding-3-small",
        str(tmp_path / "models" / "mini"),
        str(tmp_path / "models" / "other"),
    ]


def test_semantic_embedding_failure_is_data() -> None:
    def broken(spec: str | None) -> Any:
        class Broken:
            name = "broken"

            def embed(self, texts: Sequence[str]) -> list[list[float]]:
                raise ConnectionError("refused")

        return Broken()

    res = run(make("semantic", model="openai/x"), "a", "b", ScoreContext(embedder=broken))
    assert (res.score, res.passed) == (0.0, False)
    assert res.reason == "embedding failed (openai/x): ConnectionError: refused"


def test_semantic_missing_local_model_folder_is_a_scorer_error(tmp_path: Path) -> None:
    ctx = ScoreContext(suite_dir=tmp_path)
    with pytest.raises(ScorerError) as info:
        run(make("semantic", model="./no-such-model"), "a", "b", ctx)
    assert info.value.key == "model"
    assert "no sentence-transformers model folder" in info.value.message


# -- json ----------------------------------------------------------------------------------


def test_json_valid_and_invalid() -> None:
    scorer = make("json")
    res = run(scorer, '{"a": 1}')
    assert (res.score, res.passed, res.reason) == (1.0, True, "valid JSON")
    res = run(scorer, "{'a': 1}")
    assert (res.score, res.passed) == (0.0, False)
    assert res.reason.startswith("output is not valid JSON (Expecting property name")


def test_json_fenced_block() -> None:
    output = 'Sure! Here it is:\n```json\n{"category": "billing"}\n```\nAnything else?'
    res = run(make("json", required=["category"]), output)
    assert res.passed
    assert res.reason == "valid JSON (from a ```json block); all 2 checks passed"
    value, error, _ = extract_json("```\n[1, 2]\n```")
    assert (value, error) == ([1, 2], None)


def test_json_required_partial_credit() -> None:
    scorer = make("json", required=["category", "priority", "customer.name"])
    res = run(scorer, '{"category": "billing", "customer": {"name": "Ann"}}')
    assert res.score == pytest.approx(3 / 4)
    assert not res.passed
    assert res.reason == "3/4 checks passed (score 0.75): missing key 'priority'"


SCHEMA = {
    "type": "object",
    "required": ["category", "priority", "tags"],
    "properties": {
        "category": {"type": "string", "enum": ["billing", "technical"]},
        "priority": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}


def test_json_schema_pass() -> None:
    output = '{"category": "billing", "priority": 2, "tags": ["refund"]}'
    res = run(make("json", schema=SCHEMA), output)
    assert res.passed and res.score == 1.0


def test_json_schema_failures_and_partial_credit() -> None:
    output = '{"category": "sales", "priority": "high", "tags": ["a", 3]}'
    res = run(make("json", schema=SCHEMA), output)
    assert not res.passed
    # 11 checks: valid, object, 3 required, category type + enum, priority type, tags type,
    # 2 items; failing: the enum, the priority type, the second item
    assert res.score == pytest.approx(8 / 11)
    assert '$.category: "sales" is not one of ["billing", "technical"]' in res.reason
    assert "$.priority: expected integer, got string" in res.reason
    assert "$.tags[1]: expected string, got integer" in res.reason


def test_json_schema_wrong_root_type() -> None:
    res = run(make("json", schema=SCHEMA), "[1, 2]")
    assert not res.passed and "$: expected object, got array" in res.reason


def test_json_schema_integer_accepts_whole_floats_and_type_lists() -> None:
    schema = {"type": "object", "properties": {"n": {"type": ["integer", "null"]}}}
    assert run(make("json", schema=schema), '{"n": 2.0}').passed
    assert run(make("json", schema=schema), '{"n": null}').passed
    assert not run(make("json", schema=schema), '{"n": true}').passed


@pytest.mark.parametrize(
    ("schema", "needle"),
    [
        ({"type": "object", "propertys": {}}, "did you mean 'properties'?"),
        ({"type": "dict"}, "unknown type 'dict'"),
        ({"properties": {"a": {"minimum": 1}}}, "at schema.properties.a"),
        ({"enum": []}, "non-empty list"),
        ({"required": "a"}, "list of key names"),
        ("object", "must be a mapping"),
    ],
)
def test_json_schema_is_validated_at_construction(schema: Any, needle: str) -> None:
    err = config_error("json", schema=schema)
    assert err.key == "schema"
    assert needle in str(err)


def test_json_equals() -> None:
    scorer = make("json", equals=True)
    assert scorer.requires_expected()
    assert run(scorer, '{"b": [1, 2], "a": 1}', {"a": 1, "b": [1, 2]}).passed
    assert run(scorer, '{"b": 1, "a": 2}', '{"a": 2, "b": 1}').passed
    res = run(scorer, '{"items": [{"qty": 2}, {"qty": 3}]}', {"items": [{"qty": 2}, {"qty": 4}]})
    assert not res.passed and res.score == 0.5
    assert "not equal to expected: $.items[1].qty: expected 4, got 3" in res.reason


def test_json_equality_helpers() -> None:
    assert json_equal({"a": 1.0}, {"a": 1})
    assert not json_equal(True, 1)
    assert not json_equal([1, 2], [2, 1])
    assert first_difference({"a": 1}, {"a": 1, "b": 2}) == "$: missing key 'b'"
    assert first_difference({"a": 1, "c": 0}, {"a": 1}) == "$: unexpected key 'c'"
    assert first_difference([1], [1, 2]) == "$: expected 2 items, got 1"


# -- judge ---------------------------------------------------------------------------------


class FakeClient:
    """A ModelClient that answers every request with a scripted completion."""

    def __init__(self, *completions: Completion) -> None:
        self.completions = list(completions)
        self.requests: list[Request] = []
        self.usage = Usage()

    async def complete(self, request: Request) -> Completion:
        self.requests.append(request)
        return self.completions.pop(0)

    async def aclose(self) -> None:
        return None


def judge_ctx(*replies: str | Completion, judge_model: str | None = "judge/model") -> ScoreContext:
    completions = [Completion(texts=(r,)) if isinstance(r, str) else r for r in replies]
    return ScoreContext(
        client=FakeClient(*completions),
        judge_model=judge_model,
        prompt="Route this ticket: my invoice is wrong",
        sample=3,
    )


def test_judge_pass_and_request_shape() -> None:
    ctx = judge_ctx('{"score": 8, "reason": "Polite and correct."}')
    scorer = make("judge", rubric="The answer is polite.")
    res = asyncio.run(scorer.score("Sure, happy to help!", case("billing"), ctx))
    assert res == ScoreResult(0.8, True, "judge 8/10 (0.80 >= 0.50): Polite and correct.")
    assert isinstance(ctx.client, FakeClient)
    (request,) = ctx.client.requests
    assert request.model == "judge/model"
    assert request.params == {"temperature": 0}
    assert request.purpose == "judge"
    assert request.sample == 3
    system, user = request.messages
    assert system["role"] == "system" and '"score": <integer from 0 to 10>' in system["content"]
    assert "RUBRIC:\nThe answer is polite." in user["content"]
    assert "TASK GIVEN TO THE MODEL:\nRoute this ticket" in user["content"]
    assert "REFERENCE ANSWER:\nbilling" in user["content"]
    assert user["content"].index("RESPONSE TO GRADE:\nSure, happy to help!") > 0


def test_judge_fail_scale_min_and_model_option() -> None:
    ctx = judge_ctx('```json\n{"score": 3, "reason": "Rude."}\n```', judge_model=None)
    scorer = make(
        "judge",
        rubric="polite",
        scale=5,
        min=0.7,
        model="openai/gpt-4o-mini",
        show_prompt=False,
        show_expected=False,
    )
    res = run(scorer, "Go away.", "x", ctx)
    assert res == ScoreResult(0.6, False, "judge 3/5 (0.60 < 0.70): Rude.")
    assert isinstance(ctx.client, FakeClient)
    request = ctx.client.requests[0]
    assert request.model == "openai/gpt-4o-mini"
    assert "TASK GIVEN" not in request.messages[1]["content"]
    assert "REFERENCE ANSWER" not in request.messages[1]["content"]


def test_judge_out_of_range_score_is_clamped() -> None:
    res = run(make("judge", rubric="x"), "out", ctx=judge_ctx('{"score": 14, "reason": "great"}'))
    assert res.score == 1.0 and res.passed and res.reason.startswith("judge 10/10")


def test_judge_unparseable_reply() -> None:
    res = run(make("judge", rubric="x"), "out", ctx=judge_ctx("I think it's quite good overall."))
    assert (res.score, res.passed) == (0.0, False)
    assert res.reason == (
        "judge reply is not in the expected format: 'I think it's quite good overall.'"
    )


def test_a_failed_judge_call_is_an_error_not_a_zero() -> None:
    """The case errors (like a failed task call), so a threshold of 0 cannot pass it."""
    from pytest_gpo.scorers.base import ScorerCallFailed

    failed = Completion(error="RateLimitError: 429 after 3 attempts", error_kind="provider")
    with pytest.raises(ScorerCallFailed) as err:
        run(make("judge", rubric="x"), "out", ctx=judge_ctx(failed))
    assert str(err.value) == "judge call failed: RateLimitError: 429 after 3 attempts"
    assert err.value.kind == "provider"


def test_judge_missing_rubric_and_model() -> None:
    err = config_error("judge")
    assert err.key == "rubric" and "needs a 'rubric'" in err.message
    scorer = make("judge", rubric="x")
    with pytest.raises(ScorerError) as info:
        run(scorer, "out", ctx=judge_ctx("{}", judge_model=None))
    assert info.value.key == "model"
    assert "no judge model configured" in info.value.message
    assert info.value.fix is not None and "judge_model:" in info.value.fix
    with pytest.raises(ScorerError, match="no model client"):
        run(scorer, "out", ctx=ScoreContext(judge_model="m"))


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ('{"score": 7, "reason": "ok"}', (7.0, "ok")),
        ('Here you go: {"score": "6", "reason": "fine"} thanks', (6.0, "fine")),
        ('{"score": "4/5", "reason": "r"}', (8.0, "r")),
        ("Score: 9\nReason: clear and short", (9.0, "clear and short")),
        ("score = 3/5", (6.0, "")),
        ('{"reason": "no score"}', None),
        ("", None),
    ],
)
def test_parse_verdict(reply: str, verdict: tuple[float, str] | None) -> None:
    assert parse_verdict(reply, 10) == verdict


def test_judge_scorer_class_is_registered() -> None:
    assert isinstance(make("judge", rubric="x"), JudgeScorer)


# -- python --------------------------------------------------------------------------------


def write(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


CHECKS = """
    import asyncio

    def is_short(output):
        return len(output) < 10

    def overlap(output, expected):
        words = set(expected.split())
        return len(words & set(output.split())) / len(words)

    def with_reason(output, vars):
        return (1.0 if vars["name"] in output else 0.0, f"looked for {vars['name']}")

    def as_mapping(**kwargs):
        return {"score": 0.2, "reason": "mapping", "passed": True}

    async def slow(output, case):
        await asyncio.sleep(0)
        return case.id == "c1"

    def boom(output):
        raise ValueError("bad output")

    def weird(output):
        return "yes"

    def needs_more(output, threshold):
        return True

    NOT_CALLABLE = 3
"""


@pytest.fixture
def checks_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = "gpo_test_checks_mod"
    write(tmp_path / f"{name}.py", CHECKS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_python_bool_return(checks_module: str) -> None:
    scorer = make("python", function=f"{checks_module}:is_short")
    assert run(scorer, "short") == ScoreResult(1.0, True, "is_short returned True")
    assert run(scorer, "this is far too long") == ScoreResult(0.0, False, "is_short returned False")


def test_python_float_return_and_min(checks_module: str) -> None:
    scorer = make("python", function=f"{checks_module}:overlap")
    res = run(scorer, "alpha beta", "alpha beta gamma delta")
    assert res == ScoreResult(0.5, True, "overlap returned 0.50 >= 0.50")
    strict = make("python", function=f"{checks_module}:overlap", min=0.75)
    assert not run(strict, "alpha beta", "alpha beta gamma delta").passed


def test_python_tuple_mapping_and_async(checks_module: str) -> None:
    scorer = make("python", function=f"{checks_module}:with_reason")
    res = asyncio.run(scorer.score("hi Ann", case(name="Ann"), ScoreContext()))
    assert res == ScoreResult(1.0, True, "looked for Ann")
    assert run(make("python", function=f"{checks_module}:as_mapping"), "x") == ScoreResult(
        0.2, True, "mapping"
    )
    assert run(make("python", function=f"{checks_module}:slow"), "x").passed


def test_python_exceptions_and_bad_returns_are_results(checks_module: str) -> None:
    res = run(make("python", function=f"{checks_module}:boom"), "x")
    assert res == ScoreResult(0.0, False, "python scorer raised ValueError: bad output")
    res = run(make("python", function=f"{checks_module}:weird"), "x")
    assert not res.passed and "returned str 'yes'" in res.reason


def test_python_file_relative_to_suite(tmp_path: Path) -> None:
    write(tmp_path / "checks" / "mine.py", CHECKS)
    suite = tmp_path / "router.gpo.yaml"
    suite.write_text("name: x\n", encoding="utf-8")
    scorer = REGISTRY.create("python", {"function": "checks/mine.py:is_short"}, where=str(suite))
    assert run(scorer, "ok").passed
    loader_style = REGISTRY.create(
        "python", {"function": "checks/mine.py:is_short"}, where=f"{suite} (scorers[1])"
    )
    assert run(loader_style, "ok").passed
    spaced = tmp_path / "my suites" / "a.gpo.yaml"
    write(spaced.parent / "checks" / "mine.py", CHECKS)
    spaced.write_text("name: x\n", encoding="utf-8")
    where = f"{spaced} (scorers[0])"
    assert run(
        REGISTRY.create("python", {"function": "checks/mine.py:is_short"}, where=where), "ok"
    ).passed
    deferred = make("python", function="checks/mine.py:is_short")
    assert run(deferred, "ok", ctx=ScoreContext(suite_dir=tmp_path)).passed
    with pytest.raises(ScorerError) as info:
        run(
            make("python", function="checks/missing.py:f"),
            "ok",
            ctx=ScoreContext(suite_dir=tmp_path),
        )
    assert info.value.key == "function" and "no such file" in info.value.message


def test_python_import_errors_name_the_key(checks_module: str) -> None:
    err = config_error("python", function="no_such_module_xyz:f")
    assert err.key == "function"
    assert "cannot import module 'no_such_module_xyz'" in err.message
    assert err.fix is not None and "pythonpath" in err.fix
    err = config_error("python", function=f"{checks_module}:is_shrt")
    assert "has no function 'is_shrt'" in err.message
    assert err.fix is not None and "did you mean 'is_short'?" in err.fix
    err = config_error("python", function=f"{checks_module}:NOT_CALLABLE")
    assert "not a function" in err.message
    err = config_error("python", function=f"{checks_module}:needs_more")
    assert "parameter 'threshold'" in err.message
    err = config_error("python", function="just_a_name")
    assert err.key == "function" and "module:function" in err.message
    err = config_error("python")
    assert err.key == "function" and "needs a 'function'" in err.message


def test_python_module_raising_on_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "gpo_test_broken_mod.py", "raise RuntimeError('nope')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    err = config_error("python", function="gpo_test_broken_mod:f")
    assert err.key == "function"
    assert "raised RuntimeError: nope" in err.message


def test_fingerprints_are_json_and_include_options() -> None:
    scorer = make("contains", any=["a", "b"], ignore_case=True)
    assert json.loads(json.dumps(scorer.fingerprint())) == {
        "type": "contains",
        "any": ["a", "b"],
        "ignore_case": True,
    }
