"""Loading suite files: the contract's keys, case sources, ids and every bad-input error."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from pytest_gpo.errors import GpoError, ScorerError, SuiteError
from pytest_gpo.scorers.base import ScoreContext, Scorer, ScoreResult, ScorerRegistry
from pytest_gpo.suites.load import load_suite
from pytest_gpo.suites.model import Case, Suite
from pytest_gpo.templates.template import template_variables


class Exact(Scorer):
    type_name = "exact"

    async def score(self, output: str, case: Case, ctx: ScoreContext) -> ScoreResult:
        ok = output == case.expected
        return ScoreResult(1.0 if ok else 0.0, ok, "")


class Regex(Scorer):
    type_name = "regex"
    needs_expected = False

    def __init__(self, options: Mapping[str, Any], *, where: str = "") -> None:
        super().__init__(options, where=where)
        import re

        try:
            re.compile(str(options.get("pattern", "")))
        except re.error as exc:
            raise self.fail(f"invalid regex: {exc}", key="pattern") from None

    async def score(self, output: str, case: Case, ctx: ScoreContext) -> ScoreResult:
        return ScoreResult(1.0, True, "")


@pytest.fixture
def registry() -> ScorerRegistry:
    reg = ScorerRegistry()
    reg.register("exact", Exact)
    reg.register("regex", Regex)
    return reg


@pytest.fixture
def make(tmp_path: Path, registry: ScorerRegistry) -> Callable[..., Suite]:
    """Write a suite (YAML text) plus files, then load it."""

    def _make(yaml_text: str, files: dict[str, str] | None = None) -> Suite:
        files = {"prompt.txt": "Classify: {{ ticket }}\n", **(files or {})}
        for name, content in files.items():
            (tmp_path / name).write_text(content, encoding="utf-8")
        path = tmp_path / "router.gpo.yaml"
        path.write_text(yaml_text, encoding="utf-8")
        return load_suite(path, registry)

    return _make


BASIC = """
prompt: prompt.txt
cases:
  - {id: a, vars: {ticket: refund please}, expected: billing}
  - {vars: {ticket: app crashes}, expected: technical}
threshold: 0.5
"""


def test_loads_the_contract_keys(make: Callable[..., Suite]) -> None:
    suite = make(
        BASIC
        + "name: router\nsystem: You route tickets.\nmodel: openai/gpt-4o-mini\n"
        + "params: {temperature: 0}\noptimize: {steps: 3}\n"
    )
    assert suite.name == "router"
    assert suite.system == "You route tickets."
    assert suite.model == "openai/gpt-4o-mini"
    assert suite.params == {"temperature": 0}
    assert suite.threshold == 0.5 and suite.threshold_metric == "mean"
    assert template_variables(suite.prompt_text) == frozenset({"ticket"})
    assert suite.cases[0].id == "a"
    assert suite.prompt_text == "Classify: {{ ticket }}\n"


def test_defaults(make: Callable[..., Suite]) -> None:
    suite = make("prompt: prompt.txt\ncases: [{vars: {ticket: x}, expected: y}]\n")
    assert suite.name == "router"  # file stem without .gpo.yaml
    assert suite.threshold == 1.0
    assert [s.scorer.type_name for s in suite.scorers] == ["exact"]


def test_derived_case_ids_are_stable_and_content_based(make: Callable[..., Suite]) -> None:
    first = make(BASIC).cases[1].id
    again = make(BASIC).cases[1].id
    changed = make(BASIC.replace("app crashes", "app freezes")).cases[1].id
    assert first == again and first.startswith("c-")
    assert changed != first


@pytest.mark.parametrize("fmt", ["jsonl", "json", "yaml", "csv"])
def test_case_files(make: Callable[..., Suite], fmt: str) -> None:
    rows = [
        {"id": "r1", "vars": {"ticket": "refund, please"}, "expected": "billing"},
        {"id": "r2", "vars": {"ticket": "crash"}, "expected": "technical"},
    ]
    if fmt == "jsonl":
        content = "\n".join(json.dumps(r) for r in rows) + "\n"
    elif fmt == "json":
        content = json.dumps(rows)
    elif fmt == "yaml":
        content = (
            "- {id: r1, vars: {ticket: 'refund, please'}, expected: billing}\n"
            "- {id: r2, vars: {ticket: crash}, expected: technical}\n"
        )
    else:
        content = 'id,ticket,expected\nr1,"refund, please",billing\nr2,crash,technical\n'
    suite = make(f"prompt: prompt.txt\ncases: cases.{fmt}\n", {f"cases.{fmt}": content})
    assert [(c.id, dict(c.vars), c.expected) for c in suite.cases] == [
        ("r1", {"ticket": "refund, please"}, "billing"),
        ("r2", {"ticket": "crash"}, "technical"),
    ]


def test_threshold_pass_rate(make: Callable[..., Suite]) -> None:
    suite = make(BASIC.replace("threshold: 0.5", "threshold: {pass_rate: 0.9}"))
    assert suite.threshold == 0.9 and suite.threshold_metric == "pass_rate"


def test_system_from_file(make: Callable[..., Suite]) -> None:
    suite = make(BASIC + "system: system.txt\n", {"system.txt": "Be terse."})
    assert suite.system == "Be terse."


def test_a_system_path_with_a_typo_is_an_error_not_the_message(
    make: Callable[..., Suite],
) -> None:
    with pytest.raises(SuiteError) as err:
        make(BASIC + "system: sytem.txt\n", {"system.txt": "Be terse."})
    assert "system file not found: sytem.txt" in err.value.render()
    # a one-line message that is no path stays the message
    assert make(BASIC + "system: Be terse.\n").system == "Be terse."


def _error(
    make: Callable[..., Suite],
    yaml_text: str,
    files: dict[str, str] | None = None,
    kind: type[GpoError] = SuiteError,
) -> GpoError:
    with pytest.raises(kind) as info:
        make(yaml_text, files)
    return info.value


def test_malformed_yaml_names_the_line(make: Callable[..., Suite]) -> None:
    err = _error(make, "prompt: prompt.txt\ncases: [\n  {vars: x\n")
    assert "router.gpo.yaml" in err.render() and "malformed YAML on line" in err.render()
    assert err.fix


def test_unknown_key_did_you_mean(make: Callable[..., Suite]) -> None:
    err = _error(make, BASIC + "treshold: 0.9\n")
    assert err.key == "treshold"
    assert "did you mean 'threshold'" in (err.fix or "")


def test_missing_prompt_file(make: Callable[..., Suite]) -> None:
    err = _error(make, BASIC.replace("prompt.txt", "nope.txt"))
    assert err.key == "prompt" and "prompt file not found" in err.message
    assert "nope.txt" in err.message


def test_missing_cases_file(make: Callable[..., Suite]) -> None:
    err = _error(make, "prompt: prompt.txt\ncases: gone.jsonl\n")
    assert err.key == "cases" and "cases file not found" in err.message


def test_bad_csv_row_names_the_line(make: Callable[..., Suite]) -> None:
    content = "id,ticket,expected\nr1,hello,billing\nr2,a,b,c,d\n"
    err = _error(make, "prompt: prompt.txt\ncases: cases.csv\n", {"cases.csv": content})
    assert "line 3 of cases.csv" in err.message and err.fix


def test_bad_jsonl_line(make: Callable[..., Suite]) -> None:
    err = _error(
        make,
        "prompt: prompt.txt\ncases: c.jsonl\n",
        {"c.jsonl": '{"vars": {"ticket": "x"}, "expected": "y"}\n{oops\n'},
    )
    assert "line 2" in err.message


def test_case_missing_template_variable(make: Callable[..., Suite]) -> None:
    err = _error(make, "prompt: prompt.txt\ncases:\n  - {id: k1, vars: {tickt: x}, expected: y}\n")
    assert err.case == "k1" and "ticket" in err.message
    assert "add ticket" in (err.fix or "")


def test_scorer_needs_expected(make: Callable[..., Suite]) -> None:
    err = _error(make, "prompt: prompt.txt\ncases:\n  - {id: q1, vars: {ticket: x}}\n")
    assert err.case == "q1" and "expected" in err.message


def test_unknown_scorer_type(make: Callable[..., Suite]) -> None:
    err = _error(make, BASIC + "scorers: [{type: exakt}]\n", kind=ScorerError)
    assert "unknown scorer type 'exakt'" in err.message
    assert "did you mean 'exact'" in (err.fix or "")


def test_invalid_regex(make: Callable[..., Suite]) -> None:
    err = _error(make, BASIC + "scorers: [{type: regex, pattern: '(unclosed'}]\n", kind=ScorerError)
    assert err.key == "pattern" and "invalid regex" in err.message
    assert "router.gpo.yaml" in err.render()


@pytest.mark.parametrize("value", ["80", "-0.1", "1.5", "high", "true"])
def test_threshold_outside_0_1(make: Callable[..., Suite], value: str) -> None:
    err = _error(make, BASIC.replace("threshold: 0.5", f"threshold: {value}"))
    assert err.key == "threshold" and err.fix


def test_duplicate_case_ids(make: Callable[..., Suite]) -> None:
    err = _error(
        make,
        "prompt: prompt.txt\ncases:\n  - {id: a, vars: {ticket: x}, expected: y}\n"
        "  - {id: a, vars: {ticket: z}, expected: y}\n",
    )
    assert "duplicate case id 'a'" in err.message


def test_unknown_case_key(make: Callable[..., Suite]) -> None:
    err = _error(make, "prompt: prompt.txt\ncases:\n  - {vars: {ticket: x}, expect: y}\n")
    assert "unknown case key 'expect'" in err.message
    assert "did you mean 'expected'" in (err.fix or "")


def test_template_syntax_error(make: Callable[..., Suite]) -> None:
    err = _error(make, BASIC, {"prompt.txt": "Hello {{ ticket }"})
    assert "template syntax error" in err.message and "prompt.txt" in err.render()


def test_not_a_mapping_and_empty(make: Callable[..., Suite]) -> None:
    assert "must be a mapping" in _error(make, "- a\n- b\n").message
    assert "empty" in _error(make, "").message


def test_min_pass_above_repeat(make: Callable[..., Suite]) -> None:
    err = _error(make, BASIC + "repeat: 2\nmin_pass: 3\n")
    assert err.key == "min_pass"


def test_params_n_is_refused(make: Callable[..., Suite]) -> None:
    err = _error(make, BASIC + "params: {n: 4}\n")
    assert err.key == "params.n" and "repeat" in (err.fix or "")


def test_a_suite_is_bounded_over_all_its_cases(tmp_path: Path) -> None:
    """Each render is capped, so the suite is too: 60 cases of a 990,000-character prompt
    would hold 60 MB; loading stops with an error naming the case where it ran out."""
    from pytest_gpo.scorers.registry import builtin_registry
    from pytest_gpo.suites.load import load_suite

    (tmp_path / "p.txt").write_text("{{ 'a' * 990000 }}{{ t }}", encoding="utf-8")
    cases = "\n".join(f"  - {{id: c{i}, vars: {{t: x}}, expected: x}}" for i in range(60))
    path = tmp_path / "s.gpo.yaml"
    path.write_text(f"prompt: p.txt\ncases:\n{cases}\n", encoding="utf-8")
    with pytest.raises(SuiteError) as err:
        load_suite(path, builtin_registry())
    text = err.value.render()
    assert "more than 50,000,000 characters in all" in text and "case 'c50'" in text
