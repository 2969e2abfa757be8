"""Gate verdicts: threshold metrics, paired regression test, noise, changes, repeats, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_gpo.gate.baseline import BaselineEntry
from pytest_gpo.gate.excerpt import excerpt
from pytest_gpo.gate.messages import (
    case_line,
    failure_text,
    format_p,
    headline,
    message_lines,
    metric_label,
    notes,
    summarize,
)
from pytest_gpo.gate.verdict import (
    GateSettings,
    GateVerdict,
    error_verdict,
    evaluate,
    evaluate_settings,
    sample_scores,
)
from pytest_gpo.results import CaseResult, RunResult, SuiteRun
from pytest_gpo.serial import from_data, to_data
from pytest_gpo.suites.model import Suite

PROMPT = b"Route this ticket: {{ ticket }}"


def make_suite(
    *,
    threshold: float = 0.5,
    metric: str = "mean",
    tolerance: float = 0.0,
    alpha: float = 0.05,
    prompt: bytes = PROMPT,
) -> Suite:
    return Suite(
        name="router",
        path=Path("router.gpo.yaml"),
        prompt_path=Path("router.txt"),
        prompt_text=prompt.decode(),
        prompt_bytes=prompt,
        system=None,
        model="sim/router",
        params={},
        cases=(),
        scorers=(),
        threshold=threshold,
        threshold_metric=metric,
        tolerance=tolerance,
        alpha=alpha,
    )


def case(cid: str, *scores: float, expected: object = "billing", min_pass: int = 1) -> CaseResult:
    runs = [
        RunResult(
            sample=i,
            output="billing" if s >= 0.5 else f"refund\nfor {cid}",
            score=s,
            passed=s >= 0.5,
            reason="exact match" if s >= 0.5 else "expected 'billing'",
        )
        for i, s in enumerate(scores or (1.0,))
    ]
    return CaseResult(
        case_id=cid, vars={"ticket": cid}, expected=expected, runs=runs, min_pass=min_pass
    )


def run_of(cases: list[CaseResult], *, model: str = "sim/router") -> SuiteRun:
    return SuiteRun(suite="router", model=model, prompt_text=PROMPT.decode(), cases=cases)


def binary_run(outcomes: list[int], *, prefix: str = "c") -> SuiteRun:
    return run_of([case(f"{prefix}{i:03d}", float(o)) for i, o in enumerate(outcomes)])


def entry(suite: Suite, run: SuiteRun) -> BaselineEntry:
    return BaselineEntry.from_run(suite, run)


def test_no_baseline_passes_and_says_how_to_record_one() -> None:
    suite = make_suite(threshold=0.5)
    v = evaluate(suite, binary_run([1, 1, 0, 1]), None)
    assert v.passed and v.status == "no_baseline"
    assert v.metric_value == 0.75 and v.score == 0.75 and v.pass_rate == 0.75
    assert not v.has_baseline and v.p_value is None and v.delta is None
    assert any("--gpo-update-baseline" in line for line in message_lines(v))
    assert headline(v) == "router passed without a baseline (0.750)"


def test_below_threshold_lists_failing_cases() -> None:
    suite = make_suite(threshold=0.8)
    v = evaluate(suite, binary_run([1, 0, 1, 0, 1]), None)
    assert not v.passed and v.status == "below_threshold"
    assert v.failures == ["below_threshold"]
    assert [c.case_id for c in v.failing] == ["c001", "c003"]
    assert v.failing[0].expected == "billing"
    assert v.failing[0].got == "refund\\nfor c001"  # newline shown, never a raw line break
    text = "\n".join(message_lines(v))
    assert "mean score 0.600 < threshold 0.800 (3 of 5 passed)" in text
    assert "c001: 0.000" in text
    assert headline(v) == "router below threshold (0.600 < 0.800)"


def test_threshold_exactly_met_passes() -> None:
    v = evaluate(make_suite(threshold=0.8), binary_run([1, 1, 1, 1, 0]), None)
    assert v.passed


def test_threshold_metric_mean_vs_pass_rate() -> None:
    # every case passes (score >= 0.5) but the mean score is only 0.6
    run = run_of([case(f"c{i}", 0.6) for i in range(10)])
    mean = evaluate(make_suite(threshold=0.8, metric="mean"), run, None)
    rate = evaluate(make_suite(threshold=0.8, metric="pass_rate"), run, None)
    assert mean.status == "below_threshold" and mean.metric_value == pytest.approx(0.6)
    assert rate.passed and rate.metric == "pass_rate" and rate.metric_value == 1.0
    assert "pass rate 1.000 ≥ threshold 0.800" in message_lines(rate)[0]


def test_one_flip_out_of_200_is_noise() -> None:
    suite = make_suite(threshold=0.9)
    base = binary_run([1] * 200)
    now = binary_run([1] * 199 + [0])
    v = evaluate(suite, now, entry(suite, base))
    assert v.passed and v.status == "pass"
    assert len(v.worse) == 1 and v.worse[0].case_id == "c199"
    assert v.delta == pytest.approx(-0.005)
    assert v.p_worse == 0.5 and v.p_value == 0.5
    assert v.test == "exact McNemar"
    assert any("not significant" in line for line in notes(v))


def test_real_regression_fails_with_cases_p_value_and_fix() -> None:
    suite = make_suite(threshold=0.5)
    base_outcomes = [1] * 190 + [0] * 10
    now_outcomes = list(base_outcomes)
    for i in range(12):
        now_outcomes[i] = 0  # 12 worse
    now_outcomes[195] = 1  # 1 better
    base, now = binary_run(base_outcomes), binary_run(now_outcomes)
    v = evaluate(suite, now, entry(suite, base))
    assert not v.passed and v.status == "regressed" and v.failures == ["regressed"]
    assert (len(v.worse), len(v.better), v.common) == (12, 1, 200)
    # P(X >= 12 | n = 13) = (C(13,12) + C(13,13)) / 2^13 = 14 / 8192
    assert v.p_worse == pytest.approx(14 / 8192)
    assert v.p_value == v.p_worse
    assert v.baseline_value == pytest.approx(0.95)
    assert v.current_value == pytest.approx(0.895)
    text = "\n".join(message_lines(v))
    assert "exact McNemar p=0.00171 < alpha 0.05" in text
    assert "c000: 1.000 → 0.000" in text and "expected: 'billing'" in text
    assert "got: 'refund\\nfor c000'" in text
    assert "… and 2 more" in text  # ten listed
    assert "pytest --gpo-update-baseline" in text
    assert "unchanged since the baseline" in text  # same prompt, model and scorers
    assert headline(v) == "router regressed (0.950 → 0.895, p=0.00171)"


def test_regression_and_below_threshold_both_reported() -> None:
    suite = make_suite(threshold=0.9)
    v = evaluate(suite, binary_run([0] * 10 + [1] * 10), entry(suite, binary_run([1] * 20)))
    assert v.status == "regressed"
    assert v.failures == ["regressed", "below_threshold"]
    assert any(line.startswith("also below threshold") for line in message_lines(v))


def test_improvement_is_reported_with_its_own_p_value() -> None:
    suite = make_suite(threshold=0.5)
    base = binary_run([0] * 10 + [1] * 10)
    now = binary_run([1] * 20)
    v = evaluate(suite, now, entry(suite, base))
    assert v.passed and v.status == "improved"
    assert v.p_better == pytest.approx(1 / 1024) and v.p_value == v.p_better
    assert v.p_worse == 1.0
    assert len(v.better) == 10 and not v.worse
    assert headline(v) == "router improved (0.500 → 1.000, p=9.8e-04)"
    assert any("record the improvement" in line for line in message_lines(v))


def test_changed_prompt_model_and_scorers_are_named() -> None:
    suite = make_suite()
    base = binary_run([1] * 10)
    old = entry(suite, base)
    stale = BaselineEntry(
        prompt_sha256="0" * 64,
        model="sim/old-model",
        scorer_config_hash="f" * 64,
        cases=old.cases,
    )
    v = evaluate(suite, binary_run([1] * 10), stale)
    assert v.passed
    assert v.changed == ["prompt", "model", "scorers"]
    assert any("changed since the baseline: prompt, model, scorers" in m for m in message_lines(v))

    only_prompt = evaluate(make_suite(prompt=b"New prompt {{ ticket }}"), base, old)
    assert only_prompt.changed == ["prompt"]
    only_model = evaluate(suite, run_of(base.cases, model="sim/other"), old)
    assert only_model.changed == ["model"]
    assert evaluate(suite, base, old).changed == []


def test_added_and_removed_cases_compare_only_common_ones() -> None:
    suite = make_suite(threshold=0.5)
    base = run_of([case(f"c{i}") for i in range(10)] + [case("gone", 0.0)])
    now = run_of([case(f"c{i}") for i in range(10)] + [case("new1", 0.0), case("new2", 0.0)])
    v = evaluate(suite, now, entry(suite, base))
    assert (v.added, v.removed, v.common) == (2, 1, 10)
    assert v.baseline_value == 1.0 and v.current_value == 1.0 and v.delta == 0.0
    assert v.passed and v.status == "pass"
    assert v.metric_value == pytest.approx(10 / 12)  # the threshold sees the full run
    assert any(
        "2 added, 1 removed (only the 10 common cases are compared)" in m for m in message_lines(v)
    )


def test_no_common_cases_is_not_a_comparison() -> None:
    suite = make_suite()
    v = evaluate(suite, binary_run([1] * 5, prefix="new"), entry(suite, binary_run([1] * 5)))
    assert v.passed and v.status == "pass" and v.has_baseline
    assert v.common == 0 and v.delta is None and v.p_value is None
    assert any("no cases in common" in m for m in notes(v))


def test_tolerance_absorbs_a_significant_small_drop() -> None:
    base = binary_run([1] * 200)
    now = binary_run([0] * 10 + [1] * 190)  # -0.05, p = 2^-10
    strict = make_suite(tolerance=0.0)
    loose = make_suite(tolerance=0.06)
    assert evaluate(strict, now, entry(strict, base)).status == "regressed"
    v = evaluate(loose, now, entry(loose, base))
    assert v.passed and v.status == "pass"
    assert any("within tolerance" in m for m in notes(v))


def test_alpha_is_respected() -> None:
    # 8 worse, 0 better: p = 1/256 ~ 0.0039
    base, now = binary_run([1] * 20), binary_run([0] * 8 + [1] * 12)
    assert evaluate(make_suite(alpha=0.01), now, entry(make_suite(), base)).status == "regressed"
    assert evaluate(make_suite(alpha=0.001), now, entry(make_suite(), base)).passed


def test_fractional_scores_use_the_exact_sign_test() -> None:
    suite = make_suite(threshold=0.5)
    base = run_of([case(f"c{i}", 0.9) for i in range(20)])
    now = run_of([case(f"c{i}", 0.8) for i in range(20)])
    v = evaluate(suite, now, entry(suite, base))
    assert v.status == "regressed" and v.test == "exact sign test"
    assert v.p_worse == pytest.approx(2.0**-20)
    assert v.worse[0].before == pytest.approx(0.9) and v.worse[0].after == pytest.approx(0.8)


def test_pass_rate_metric_compares_pass_flags_not_scores() -> None:
    # scores drop from 1.0 to 0.6 but every case still passes
    base = run_of([case(f"c{i}", 1.0) for i in range(20)])
    now = run_of([case(f"c{i}", 0.6) for i in range(20)])
    by_rate = make_suite(metric="pass_rate", threshold=0.9)
    by_mean = make_suite(metric="mean", threshold=0.5)
    assert evaluate(by_rate, now, entry(by_rate, base)).status == "pass"
    assert evaluate(by_mean, now, entry(by_mean, base)).status == "regressed"


def test_repeats_k_of_n_and_spread() -> None:
    suite = make_suite(metric="pass_rate", threshold=0.5)
    cases = [
        case("a", 1.0, 1.0, 0.0, min_pass=2),  # 2 of 3: passes
        case("b", 1.0, 0.0, 0.0, min_pass=2),  # 1 of 3: fails
        case("c", 1.0, 1.0, 1.0, min_pass=2),
        case("d", 0.0, 1.0, 1.0, min_pass=2),
    ]
    run = run_of(cases)
    v = evaluate(suite, run, None)
    assert v.repeats == 3
    assert v.metric_value == 0.75 and v.passed
    assert sample_scores(run) == [0.75, 0.75, 0.5]
    assert v.spread is not None
    assert v.spread.samples == 3 and (v.spread.min, v.spread.max) == (0.5, 0.75)
    assert any(m.startswith("repeats: 3 runs per case; suite score per sample") for m in notes(v))
    # the baseline records pass rates per case, and the gate compares k-of-N verdicts
    base = entry(suite, run)
    a = base.cases["a"]
    assert (a.passed, a.runs) == (True, 3)
    assert a.score == pytest.approx(2 / 3) and a.pass_rate == pytest.approx(2 / 3)
    worse = run_of([case(x, 1.0, 0.0, 0.0, min_pass=2) for x in "abcd"])
    w = evaluate(suite, worse, base)
    assert [c.case_id for c in w.worse] == ["a", "c", "d"]
    assert w.worse[0].runs == 3 and "passed 1/3 runs" in case_line(w.worse[0])


def test_single_run_has_no_spread() -> None:
    v = evaluate(make_suite(), binary_run([1, 1]), None)
    assert v.repeats == 1 and v.spread is None


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("cache_miss", "missing from the cache"),
        ("provider", "failed after every retry"),
        (None, "could not"),
    ],
)
def test_errored_run_is_an_error_not_a_regression(kind: str | None, words: str) -> None:
    suite = make_suite()
    run = binary_run([0] * 10)
    run.errors = ["case c000: no cached response for key abc"]
    run.error_kind = kind
    v = evaluate(suite, run, entry(suite, binary_run([1] * 10)))
    assert v.status == "error" and not v.passed and v.failures == ["error"]
    assert v.worse == [] and v.p_value is None
    assert words in message_lines(v)[0] and "not a prompt regression" in message_lines(v)[0]
    assert "errored" in headline(v)


def test_verdict_is_json_serializable() -> None:
    suite = make_suite()
    v = evaluate(
        suite,
        run_of([case("a", 1.0, 0.0), case("b", 0.0, 0.0)]),
        entry(suite, run_of([case("a", 1.0, 1.0), case("b", 1.0, 1.0)])),
    )
    data = json.loads(json.dumps(to_data(v)))
    assert data["status"] == v.status
    assert data["worse"][0]["case_id"] in {"a", "b"}
    assert set(data["spread"]) == {"samples", "mean", "std", "min", "max"}


def test_evaluate_settings_without_a_suite() -> None:
    s = GateSettings(threshold=0.9, metric="pass_rate")
    v = evaluate_settings(s, binary_run([1, 1, 1, 0]), None)
    assert v.status == "below_threshold" and v.metric == "pass_rate"


def test_summarize() -> None:
    suite = make_suite(threshold=0.5)
    ok = evaluate(suite, binary_run([1] * 5), None)
    reg = evaluate(suite, binary_run([0] * 10 + [1] * 10), entry(suite, binary_run([1] * 20)))
    err_run = binary_run([1])
    err_run.error_kind, err_run.errors = "cache_miss", ["no cached response"]
    err = evaluate(suite, err_run, None)
    assert summarize([]) == "⚪ no prompt suites were run"
    assert summarize([ok]) == "✅ 1 suite passed"
    assert summarize([ok, ok, ok]) == "✅ 3 suites passed"
    assert summarize([ok, reg, ok]) == (
        "❌ 1 of 3 suites failed: router regressed (1.000 → 0.500, p=9.8e-04)"
    )
    line = summarize([ok, reg, err])
    assert line.startswith("❌ 1 of 3 suites failed, 1 errored: router regressed")
    assert "router errored (no cached response)" in line


def test_formatting_helpers() -> None:
    assert format_p(None) == "n/a"
    assert format_p(0.5) == "0.5"
    assert format_p(79 / 4096) == "0.0193"
    assert format_p(1 / 8192) == "1.2e-04"
    assert excerpt({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'
    assert excerpt(None) == ""
    assert excerpt("x" * 100, 10) == "x" * 9 + "…"
    assert excerpt("a\r\nb\tc") == "a\\nb c"


def test_verdict_type_default_status_is_typed() -> None:
    v = GateVerdict(
        suite="s",
        passed=True,
        status="pass",
        metric="mean",
        score=1.0,
        pass_rate=1.0,
        metric_value=1.0,
        threshold=0.5,
    )
    assert metric_label(v) == "mean score" and headline(v) == "s passed (1.000)"


def test_verdict_round_trips_through_json() -> None:
    suite = make_suite()
    v = evaluate(
        suite,
        run_of([case("a", 1.0, 0.0), case("b", 0.0, 0.0)]),
        entry(suite, run_of([case("a", 1.0, 1.0), case("b", 1.0, 1.0)])),
    )
    back = from_data(GateVerdict, json.loads(json.dumps(to_data(v))))
    assert back == v


def test_failure_text_is_headline_then_message() -> None:
    suite = make_suite(threshold=0.9)
    v = evaluate(suite, binary_run([1, 0]), None)
    text = failure_text(v, suite)
    assert text.splitlines()[0] == "router below threshold (0.500 < 0.900) (router.gpo.yaml)"
    assert text.splitlines()[1:] == message_lines(v)


def test_error_verdict_without_a_run() -> None:
    v = error_verdict("router", "provider returned 500 on every attempt", kind="provider")
    assert v.status == "error" and not v.passed and v.cases == 0
    assert "failed after every retry" in message_lines(v)[0]
    assert headline(v) == "router errored (provider returned 500 on every attempt)"
