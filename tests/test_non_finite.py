"""Numbers that are not finite: refused wherever a number is configured, never written.

The issue's case: ``weight: .inf`` on a scorer turned three failing cases into ``nan`` and a
PASS, and the baseline then held ``NaN``, which strict JSON parsers reject. Every numeric key
of a suite (and every number in its cases), every scorer option, every number option of the
command line, environment and ini, and the ``optimize:`` settings now refuse ``.inf``,
``-.inf`` and ``.nan`` with an error naming the file (or source) and the key; and every JSON
file pytest-gpo writes is strict.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_gpo.errors import ConfigError, GpoError, ScorerError, SuiteError
from pytest_gpo.gate.baseline import (
    Baseline,
    BaselineCase,
    BaselineEntry,
    BaselineError,
    BaselineStore,
)
from pytest_gpo.gate.verdict import GateSettings, evaluate_settings
from pytest_gpo.optimize.checkpoint import save_checkpoint
from pytest_gpo.optimize.config import OptimizeConfig
from pytest_gpo.plugin.session import SuiteRecord, records_from_json, records_to_json
from pytest_gpo.report.files import write_reports
from pytest_gpo.report.model import build_report
from pytest_gpo.results import CaseResult, RunResult, SuiteRun
from pytest_gpo.scorers.registry import builtin_registry
from pytest_gpo.settings import OPTIONS, resolve
from pytest_gpo.suites.load import load_suite
from pytest_gpo.suites.model import ScorerSpec

pytest_plugins = ["pytester"]


def strict_loads(text: str) -> Any:
    """``json.loads`` as a strict parser: NaN, Infinity and -Infinity are errors."""

    def refuse(name: str) -> Any:
        raise ValueError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


# -- suite files ------------------------------------------------------------------------------

#: A suite with every kind of numeric key; each test replaces one value by a sentinel.
BASE_SUITE: dict[str, Any] = {
    "name": "nf",
    "prompt": "p.txt",
    "cases": [{"id": "c1", "vars": {"x": "a", "n": 1.5}, "expected": 1}],
    "scorers": [
        {"type": "exact", "weight": 1.0},
        {"type": "fuzzy", "min": 0.8, "weight": 2},
        {"type": "number", "tolerance": 0.1, "rel_tolerance": 0.0},
        {"type": "judge", "rubric": "good", "scale": 10, "min": 0.5},
    ],
    "threshold": 0.5,
    "tolerance": 0.0,
    "alpha": 0.05,
    "max_drop": 0.1,
    "repeat": 3,
    "min_pass": 2,
    "params": {"temperature": 0.0, "top_p": 1.0},
    "optimize": {
        "temperature": 1.0,
        "min_gain": 0.0,
        "alpha": 0.05,
        "max_cost": 1.0,
        "splits": [0.4, 0.3, 0.3],
        "steps": 3,
        "candidates": 2,
    },
}

#: Every numeric place of :data:`BASE_SUITE`, as a path, and the key the error must name.
NUMERIC_KEYS: list[tuple[tuple[Any, ...], str]] = [
    (("threshold",), "threshold"),
    (("tolerance",), "tolerance"),
    (("alpha",), "alpha"),
    (("max_drop",), "max_drop"),
    (("repeat",), "repeat"),
    (("min_pass",), "min_pass"),
    (("scorers", 0, "weight"), "scorers[0].weight"),
    (("scorers", 1, "weight"), "scorers[1].weight"),
    (("scorers", 1, "min"), "scorers[1].min"),
    (("scorers", 2, "tolerance"), "scorers[2].tolerance"),
    (("scorers", 2, "rel_tolerance"), "scorers[2].rel_tolerance"),
    (("scorers", 3, "scale"), "scorers[3].scale"),
    (("scorers", 3, "min"), "scorers[3].min"),
    (("params", "temperature"), "params.temperature"),
    (("params", "top_p"), "params.top_p"),
    (("optimize", "temperature"), "optimize.temperature"),
    (("optimize", "min_gain"), "optimize.min_gain"),
    (("optimize", "alpha"), "optimize.alpha"),
    (("optimize", "max_cost"), "optimize.max_cost"),
    (("optimize", "splits", 1), "optimize.splits[1]"),
    (("optimize", "steps"), "optimize.steps"),
    (("optimize", "candidates"), "optimize.candidates"),
    (("cases", 0, "expected"), "cases[0].expected"),
    (("cases", 0, "vars", "n"), "cases[0].vars.n"),
]

SENTINEL = "__NOT_FINITE__"


def suite_text(path: tuple[Any, ...], spelling: str, *, threshold_map: bool = False) -> str:
    data = json.loads(json.dumps(BASE_SUITE))
    if threshold_map:
        data["threshold"] = {"pass_rate": data["threshold"]}
    target = data
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = SENTINEL
    text = yaml.safe_dump(data, sort_keys=False).replace(f"'{SENTINEL}'", SENTINEL)
    assert text.count(SENTINEL) == 1
    return text.replace(SENTINEL, spelling)


def write(tmp: Path, text: str) -> Path:
    (tmp / "p.txt").write_text("Say {{ x }}", encoding="utf-8")
    path = tmp / "nf.gpo.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_base_suite_loads(tmp_path: Path) -> None:
    """The property below is about the one replaced value: everything else is valid."""
    suite = load_suite(write(tmp_path, yaml.safe_dump(BASE_SUITE)), builtin_registry())
    assert suite.max_drop == 0.1 and len(suite.scorers) == 4


#: Generated spellings: every YAML form of infinity and NaN, and floats too large to hold.
non_finite = st.one_of(
    st.tuples(st.sampled_from(["", "-", "+"]), st.sampled_from([".inf", ".Inf", ".INF"])).map(
        "".join
    ),
    st.sampled_from([".nan", ".NaN", ".NAN"]),
    st.tuples(st.sampled_from(["", "-"]), st.integers(1, 9), st.integers(309, 9999)).map(
        lambda t: f"{t[0]}{t[1]}.5e+{t[2]}"
    ),
)


@pytest.mark.parametrize("place", NUMERIC_KEYS, ids=[key for _, key in NUMERIC_KEYS])
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(spelling=non_finite, threshold_map=st.booleans())
def test_a_non_finite_number_in_any_numeric_key_is_a_named_suite_error(
    tmp_path: Path, place: tuple[tuple[Any, ...], str], spelling: str, threshold_map: bool
) -> None:
    path, key = place
    if threshold_map and path == ("threshold",):
        path, key = ("threshold", "pass_rate"), "threshold.pass_rate"
    suite_file = write(tmp_path, suite_text(path, spelling, threshold_map=threshold_map))
    parsed = yaml.safe_load(spelling)
    assert isinstance(parsed, float) and not math.isfinite(parsed)  # YAML reads it as a number
    with pytest.raises(GpoError) as info:
        load_suite(suite_file, builtin_registry())
    err = info.value
    assert isinstance(err, SuiteError)
    assert err.path is not None and err.path.endswith("nf.gpo.yaml")
    assert err.key == key
    assert "not a finite number" in err.message
    assert "Traceback" not in err.render()


def test_the_issue_weight_inf_is_refused(tmp_path: Path) -> None:
    text = suite_text(("scorers", 0, "weight"), ".inf")
    with pytest.raises(SuiteError) as info:
        load_suite(write(tmp_path, text), builtin_registry())
    assert info.value.key == "scorers[0].weight"
    assert ".inf is not a finite number" in info.value.message
    assert "quote the value" in (info.value.fix or "")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("cases.jsonl", '{"vars": {"x": "a"}, "expected": NaN}\n'),
        ("cases.json", '[{"vars": {"x": Infinity}, "expected": "a"}]'),
        ("cases.yaml", "- {vars: {x: a}, expected: -.inf}\n"),
    ],
)
def test_non_finite_numbers_in_case_files_are_refused(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")
    suite_file = write(tmp_path, f"prompt: p.txt\ncases: {name}\n")
    with pytest.raises(SuiteError) as info:
        load_suite(suite_file, builtin_registry())
    assert info.value.path is not None and info.value.path.endswith("nf.gpo.yaml")
    assert name in info.value.message and "not a finite number" in info.value.message
    assert info.value.key is not None and info.value.key.startswith("cases[0]")


@pytest.mark.parametrize("weight", [1e7, 10**400, 0, -1])
def test_a_weight_must_be_in_range(tmp_path: Path, weight: float) -> None:
    text = suite_text(("scorers", 0, "weight"), str(weight))
    with pytest.raises(SuiteError) as info:
        load_suite(write(tmp_path, text), builtin_registry())
    assert info.value.key == "scorers[0].weight"


def test_scorer_spec_refuses_weights_that_make_nan() -> None:
    scorer = builtin_registry().create("exact", {}, where="x")
    for bad in (math.inf, math.nan, -1.0, 0.0, 1e300):
        with pytest.raises(ValueError):
            ScorerSpec(scorer, weight=bad)


@pytest.mark.parametrize(
    ("scorer", "key"),
    [("number", "tolerance"), ("number", "rel_tolerance"), ("fuzzy", "min"), ("judge", "min")],
)
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 10**400])
def test_scorer_number_options_refuse_non_finite_values(scorer: str, key: str, value: Any) -> None:
    """Through the registry (a plugin building scorers in Python skips the file check)."""
    options: dict[str, Any] = {key: value}
    if scorer == "judge":
        options["rubric"] = "good"
    with pytest.raises(ScorerError) as info:
        builtin_registry().create(scorer, options, where="s.gpo.yaml")
    assert info.value.key == key


@pytest.mark.parametrize(
    "overrides",
    [
        {"temperature": math.nan},
        {"min_gain": math.inf},
        {"alpha": -math.inf},
        {"max_cost": math.inf},
        {"max_cost": 10**400},
        {"splits": [math.nan, 1, 1]},
        {"splits": [math.inf, 1, 1]},
    ],
)
def test_optimize_numbers_refuse_non_finite_values(overrides: dict[str, Any]) -> None:
    with pytest.raises(SuiteError) as info:
        OptimizeConfig.from_mapping(overrides, where="s.gpo.yaml")
    assert info.value.key == f"optimize.{next(iter(overrides))}"
    with pytest.raises(SuiteError):
        OptimizeConfig().with_overrides(overrides)


# -- command line, environment, ini -----------------------------------------------------------


def _number_options() -> list[Any]:
    """Every option whose parser reads a number (found by what it accepts, not by a list)."""
    found = []
    for opt in OPTIONS:
        try:
            opt.parse("1")
        except ValueError:
            continue
        try:
            opt.parse("one")
        except ValueError:
            found.append(opt)
    return found


def test_the_number_options_are_found() -> None:
    names = {o.name for o in _number_options()}
    assert {"timeout", "max_cost", "concurrency", "max_attempts", "repeat"} <= names


@pytest.mark.parametrize("spelling", ["inf", "-inf", "nan", "NaN", "Infinity", "1e999", " inf "])
@pytest.mark.parametrize("where", ["cli", "env", "ini"])
def test_number_settings_refuse_non_finite_values(
    tmp_path: Path, spelling: str, where: str
) -> None:
    for opt in _number_options():
        cli = {opt.name: spelling} if where == "cli" and opt.flag else {}
        env = {opt.env: spelling} if where == "env" and opt.env else {}
        ini_values = {opt.ini: spelling} if where == "ini" and opt.ini else {}
        if not cli and not env and not ini_values:
            continue
        with pytest.raises(ConfigError) as info:
            resolve(rootdir=tmp_path, cli=cli, ini=ini_values.get, env=env)
        shown = {"cli": opt.flag, "env": opt.env, "ini": opt.ini}[where]
        assert shown is not None and shown in info.value.message


# -- what pytest-gpo writes -------------------------------------------------------------------


def run_with(*scores: float) -> SuiteRun:
    cases = [
        CaseResult(f"c{i}", {}, None, [RunResult(0, "x", s, s >= 0.5, "r")])
        for i, s in enumerate(scores)
    ]
    return SuiteRun(suite="s", model="m", prompt_text="p", cases=cases)


def test_a_score_that_is_not_a_number_is_an_error_verdict_never_a_pass() -> None:
    v = evaluate_settings(GateSettings(threshold=0.5), run_with(1.0, math.nan, 0.0), None)
    assert v.status == "error" and not v.passed
    assert v.error is not None and "case 'c1'" in v.error and "not a number" in v.error
    assert math.isfinite(v.score) and math.isfinite(v.metric_value)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_score_never_reaches_the_baseline(tmp_path: Path, bad: float) -> None:
    path = tmp_path / "baseline.json"
    store = BaselineStore(path)
    store.update({"ok": BaselineEntry("a", "m", "h", {"c0": BaselineCase(1.0, True)})})
    before = path.read_bytes()
    entry = BaselineEntry(
        "a", "m", "h", {"c0": BaselineCase(1.0, True), "c1": BaselineCase(bad, False)}
    )
    with pytest.raises(BaselineError) as info:
        store.update({"bad": entry})
    assert "suite 'bad'" in info.value.message and "case 'c1'" in info.value.message
    assert path.read_bytes() == before  # nothing written


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_baseline_file_holding_a_non_finite_number_is_refused(tmp_path: Path, token: str) -> None:
    text = (
        '{"suites": {"a": {"prompt_sha256": "x", "model": "m", "scorer_config_hash": "h", '
        f'"cases": {{"c1": {{"score": {token}, "passed": true}}}}}}}}}}'
    )
    with pytest.raises(BaselineError) as info:
        Baseline.from_text(text, path="baseline.json")
    assert "finite" in info.value.message


def test_json_writers_are_strict(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        save_checkpoint(tmp_path, "fp", {"score": math.nan})
    record = SuiteRecord(nodeid="n", name="s", path="s.gpo.yaml", run=run_with(math.inf))
    with pytest.raises(ValueError):
        records_to_json([record])
    fine = SuiteRecord(nodeid="n", name="s", path="s.gpo.yaml", run=run_with(2 / 3))
    assert records_from_json(records_to_json([fine]))[0].run == fine.run


def test_a_report_stays_strict_json_whatever_a_hook_adds(tmp_path: Path) -> None:
    v = evaluate_settings(GateSettings(threshold=0.5), run_with(1.0, 2 / 3), None)

    def hook(payload: dict[str, Any]) -> None:
        payload["from_a_plugin"] = {"nan": math.nan, "values": [math.inf, 1.0]}

    written = write_reports(
        tmp_path / "report.md", build_report([(v, run_with(1.0))]), json_hook=hook
    )
    data = strict_loads(written.json.read_text(encoding="utf-8"))
    assert data["from_a_plugin"] == {"nan": None, "values": [None, 1.0]}


def test_end_to_end_no_file_written_holds_a_non_finite_number(pytester: pytest.Pytester) -> None:
    """A run with fractional scores, repeats and weights, recorded and reported: every JSON
    file pytest-gpo wrote parses with a strict parser."""
    pytester.makeini("[pytest]\ngpo_model = gpo-sim/task\n")
    (pytester.path / "p.txt").write_text("Route: {{ t }}", encoding="utf-8")
    cases = "\n".join(
        f"  - {{id: c{i}, vars: {{t: 'ticket {i} refund'}}, expected: billing}}" for i in range(9)
    )
    (pytester.path / "s.gpo.yaml").write_text(
        "name: s\nprompt: p.txt\nrepeat: 3\nmin_pass: 2\nthreshold: 0.0\n"
        "scorers: [{type: fuzzy, min: 0.9, weight: 3}, {type: contains, any: [bill, x], "
        "weight: 0.7}]\ncases:\n" + cases + "\n",
        encoding="utf-8",
    )
    args = ["-p", "no:cacheprovider", "--gpo-update-baseline", "--gpo-report", "out/report.md"]
    pytester.runpytest(*args).assert_outcomes(passed=1)
    pytester.runpytest("-p", "no:cacheprovider", "--gpo-report", "out/report.md")
    written = [p for p in pytester.path.rglob("*.json") if p.is_file()]
    assert {"baseline.json", "report.json"} <= {p.name for p in written}
    assert any(".gpo/cache" in str(p) or "cache" in p.parts for p in written)
    for p in written:
        strict_loads(p.read_text(encoding="utf-8"))


def test_end_to_end_weight_inf_is_a_suite_error_not_a_pass(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngpo_model = gpo-sim/task\n")
    (pytester.path / "p.txt").write_text("Route: {{ t }}", encoding="utf-8")
    (pytester.path / "s.gpo.yaml").write_text(
        "prompt: p.txt\ncases: [{vars: {t: a}, expected: nope}, {vars: {t: b}, expected: no}]\n"
        "scorers: [{type: exact, weight: .inf}, {type: contains, value: zzz}]\n",
        encoding="utf-8",
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--gpo-update-baseline")
    assert result.ret != 0
    out = result.stdout.str()
    assert "s.gpo.yaml" in out and "scorers[0].weight" in out and "not a finite number" in out
    assert "INTERNALERROR" not in out and "Traceback" not in out
    assert not (pytester.path / ".gpo" / "baseline.json").exists()


# -- numbers a model or a scorer hands back -------------------------------------------------


@pytest.mark.parametrize("text", ['{"value": NaN}', '{"value": Infinity}', '{"value": 1e999}'])
def test_model_json_holding_a_non_finite_number_is_not_json(text: str) -> None:
    from pytest_gpo.scorers.json_scorer import extract_json

    value, error, _ = extract_json(text)
    assert value is None and error is not None, (text, value)
    fenced, error, _ = extract_json(f"Here:\n```json\n{text}\n```")
    assert fenced is None and error is not None


@pytest.mark.parametrize(
    "reply", ['{"score": Infinity}', '{"score": NaN}', '{"score": 1e999}', "score: " + "9" * 400]
)
def test_a_judge_grade_that_is_not_a_finite_number_is_unreadable(reply: str) -> None:
    from pytest_gpo.scorers.judge import parse_verdict

    assert parse_verdict(reply) is None


@pytest.mark.parametrize(
    "returned", ["float('inf')", "float('nan')", "{'score': float('inf'), 'passed': False}"]
)
def test_end_to_end_a_scorer_returning_a_non_finite_score_errors_the_suite(
    pytester: pytest.Pytester, returned: str
) -> None:
    pytester.makeini("[pytest]\ngpo_model = gpo-sim/task\n")
    (pytester.path / "p.txt").write_text("Route: {{ t }}", encoding="utf-8")
    (pytester.path / "checks.py").write_text(
        f"def bad(output, case, **kw):\n    return {returned}\n", encoding="utf-8"
    )
    (pytester.path / "s.gpo.yaml").write_text(
        "prompt: p.txt\ncases: [{vars: {t: a}, expected: x}]\nthreshold: 0.0\n"
        'scorers: [{type: python, function: "checks.py:bad"}]\n',
        encoding="utf-8",
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--gpo-update-baseline", "--gpo-report", "out/r.md"
    )
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "not a finite number" in out and "Traceback" not in out
    data = json.loads((pytester.path / "out" / "r.json").read_text(encoding="utf-8"))
    assert data["suites"][0]["status"] == "error" and data["passed"] is False
    assert data["suites"][0]["verdict"]["error_kind"] == "bad_score"
    assert not (pytester.path / ".gpo" / "baseline.json").exists()
