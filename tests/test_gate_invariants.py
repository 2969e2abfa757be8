"""The gate's invariants, as properties over arbitrary score distributions.

Suites are run through the real pipeline (:func:`pytest_gpo.evaluate.evaluate`: repeats, k of
N, several weighted scorers) with a deterministic model and scorers whose scores are drawn by
hypothesis: fractions such as 2/3 and 11/12, arbitrary floats, ties at a rounding boundary.

* an unchanged suite, gated against a baseline made from the same run (written to disk and
  read back), is never ``regressed`` and has the verdict it has without a baseline;
* a baseline entry written and read back compares equal, and re-writes byte for byte;
* the verdict does not depend on the order of the cases or of a case's runs;
* noise below one stored digit (a similarity model's last bits) moves no case.
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai_server import OpenAIServer

from pytest_gpo.evaluate import EvalOptions, evaluate
from pytest_gpo.gate.baseline import BaselineCase, BaselineEntry, BaselineStore, stored_score
from pytest_gpo.gate.verdict import GateSettings, GateVerdict, evaluate_settings
from pytest_gpo.gate.verdict import evaluate as gate
from pytest_gpo.llm.types import Completion, Request, Usage
from pytest_gpo.results import CaseResult, RunResult, SuiteRun
from pytest_gpo.scorers.base import ScoreContext, Scorer, ScoreResult
from pytest_gpo.suites.model import Case, ScorerSpec, Suite


@pytest.fixture(autouse=True)
def _trust_api_base(monkeypatch: pytest.MonkeyPatch) -> None:
    """These suites reach the local test server through ``params.api_base``: the user trusts
    that key here, as a project would in its ini (docs/reliability.md#trust-model)."""
    monkeypatch.setenv("GPO_TRUSTED_PARAMS", "api_base")


pytest_plugins = ["pytester"]

PROMPT = "{{ q }}"

#: Scores that expose rounding: thirds, twelfths, sevenths, values next to a 6-digit boundary.
AWKWARD = [0.0, 1.0, 1 / 3, 2 / 3, 0.5, 11 / 12, 1 / 7, 5 / 7, 0.1234565, 0.9999995, 1e-7]
score = st.one_of(st.sampled_from(AWKWARD), st.floats(min_value=0.0, max_value=1.0))
weight = st.one_of(st.sampled_from([1.0, 2.0, 3.0, 0.5]), st.floats(min_value=0.01, max_value=1e3))


class EchoClient:
    """A deterministic model: answers ``<prompt>#<sample>``."""

    def __init__(self) -> None:
        self.usage = Usage()

    async def complete(self, request: Request) -> Completion:
        return Completion(texts=(f"{request.messages[-1]['content']}#{request.sample}",))

    async def aclose(self) -> None:
        """Nothing to close."""


class TableScorer(Scorer):
    """Scores an output from a table drawn by hypothesis: ``(output, scorer) -> (score, pass)``."""

    type_name: ClassVar[str] = "table"
    needs_expected: ClassVar[bool] = False

    def __init__(self, table: Mapping[tuple[str, int], tuple[float, bool]], index: int) -> None:
        super().__init__({"index": index})
        self.table = table
        self.index = index

    async def score(self, output: str, case: Case, ctx: ScoreContext) -> ScoreResult:
        value, passed = self.table[(output, self.index)]
        return ScoreResult(value, passed, f"table {value!r}")


@st.composite
def suites(draw: st.DrawFn) -> tuple[Suite, EvalOptions]:
    """A suite over drawn cases, scorers, weights, repeats and gate settings."""
    n_cases = draw(st.integers(1, 30))
    repeat = draw(st.integers(1, 5))
    min_pass = draw(st.integers(1, repeat))
    n_scorers = draw(st.integers(1, 3))
    table: dict[tuple[str, int], tuple[float, bool]] = {}
    cases = []
    for i in range(n_cases):
        cid = f"case-{i}"
        cases.append(Case(id=cid, vars={"q": cid}))
        for sample in range(repeat):
            for s in range(n_scorers):
                value = draw(score)
                passed = draw(st.booleans()) if draw(st.booleans()) else value >= 0.5
                table[(f"{cid}#{sample}", s)] = (value, passed)
    specs = tuple(
        ScorerSpec(scorer=TableScorer(table, s), weight=draw(weight), label=f"t{s}")
        for s in range(n_scorers)
    )
    suite = Suite(
        name="awkward",
        path=Path("awkward.gpo.yaml"),
        prompt_path=Path("awkward.txt"),
        prompt_text=PROMPT,
        prompt_bytes=PROMPT.encode(),
        system=None,
        model="echo",
        params={},
        cases=tuple(cases),
        scorers=specs,
        threshold=draw(st.sampled_from([0.0, 0.5, 2 / 3, 0.666667, 1.0]) | st.floats(0, 1)),
        threshold_metric=draw(st.sampled_from(["mean", "pass_rate"])),
        tolerance=draw(st.sampled_from([0.0, 0.0, 0.01])),
        alpha=draw(st.sampled_from([0.05, 0.05, 0.2, 0.5])),
        max_drop=draw(st.sampled_from([None, 0.0, 0.05])),
    )
    return suite, EvalOptions(model="echo", repeat=repeat, min_pass=min_pass)


def run(suite: Suite, options: EvalOptions) -> SuiteRun:
    return asyncio.run(evaluate(suite, EchoClient(), options))


def on_disk(suite: Suite, current: SuiteRun) -> BaselineEntry:
    """The baseline entry of ``current``, recorded in a file and read back by a new store."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ".gpo" / "baseline.json"
        BaselineStore(path).update({suite.name: BaselineEntry.from_run(suite, current)})
        entry = BaselineStore(path).entry(suite.name)
    assert entry is not None
    return entry


def decision(v: GateVerdict) -> dict[str, Any]:
    """Everything a verdict decides and reports as numbers (not the excerpts it shows)."""
    return {
        "status": v.status,
        "passed": v.passed,
        "failures": v.failures,
        "values": (v.score, v.pass_rate, v.metric_value, v.baseline_value, v.current_value),
        "delta": v.delta,
        "p": (v.p_value, v.p_worse, v.p_better, v.test),
        "worse": [(c.case_id, c.before, c.after) for c in v.worse],
        "better": [(c.case_id, c.before, c.after) for c in v.better],
        "failing": [(c.case_id, c.after) for c in v.failing],
        "counts": (v.cases, v.common, v.added, v.removed, v.cases_needed, v.unseen_drop),
        "spread": v.spread,
    }


def shuffled(current: SuiteRun, seed: int) -> SuiteRun:
    """The same results arriving in another order: cases shuffled, each case's runs too."""
    rng = random.Random(seed)
    cases = []
    for c in current.cases:
        runs = list(c.runs)
        rng.shuffle(runs)
        cases.append(replace(c, runs=runs))
    rng.shuffle(cases)
    return replace(current, cases=cases)


PROPERTY = settings(
    max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY
@given(suites())
def test_an_unchanged_suite_never_regresses_against_its_own_baseline(
    drawn: tuple[Suite, EvalOptions],
) -> None:
    suite, options = drawn
    first = run(suite, options)
    again = run(suite, options)  # nothing changed: the same model, prompt, scorers
    entry = on_disk(suite, first)
    alone = gate(suite, again, None)
    v = gate(suite, again, entry)
    assert v.status != "regressed" and "max_drop" not in v.failures
    assert not v.worse and not v.better and v.delta == 0.0 and not v.unseen_drop
    assert v.p_worse == 1.0 and v.p_better == 1.0
    assert v.baseline_value == v.current_value
    # the baseline changes no verdict: the threshold alone decides, as without a baseline
    assert v.passed == alone.passed
    assert (alone.status, v.status) in {("no_baseline", "pass"), ("below_threshold",) * 2}


@PROPERTY
@given(suites())
def test_a_baseline_entry_written_and_read_back_compares_equal(
    drawn: tuple[Suite, EvalOptions],
) -> None:
    suite, options = drawn
    current = run(suite, options)
    made = BaselineEntry.from_run(suite, current)
    read = on_disk(suite, current)
    assert read == made
    assert read.to_dict() == made.to_dict()
    # and what was read stores as itself: recording it again changes no byte
    for cid, case in read.cases.items():
        assert stored_score(case.score) == case.score == made.cases[cid].score
    again = on_disk(suite, current)
    assert again.to_dict() == read.to_dict()


@PROPERTY
@given(suites(), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_the_verdict_does_not_depend_on_the_order_results_arrive_in(
    drawn: tuple[Suite, EvalOptions], seed: int, other: int
) -> None:
    suite, options = drawn
    base = run(suite, options)
    # a changed run to compare: every score moved by a seed-drawn step, some verdicts flipped
    rng = random.Random(other)
    moved = replace(
        base,
        cases=[
            replace(
                c,
                runs=[
                    RunResult(
                        r.sample,
                        r.output,
                        min(1.0, max(0.0, r.score + rng.choice([0.0, 0.0, 1 / 3, -1 / 3, 0.01]))),
                        r.passed if rng.random() < 0.7 else not r.passed,
                        r.reason,
                    )
                    for r in c.runs
                ],
            )
            for c in base.cases
        ],
    )
    entry = on_disk(suite, base)
    reference = decision(gate(suite, moved, entry))
    assert decision(gate(suite, shuffled(moved, seed), entry)) == reference
    # the baseline made from a shuffled run is the same baseline
    assert on_disk(suite, shuffled(base, seed)) == entry
    assert decision(gate(suite, moved, on_disk(suite, shuffled(base, seed)))) == reference


@PROPERTY
@given(suites(), st.integers(0, 2**32 - 1))
def test_noise_below_one_stored_digit_moves_no_case(
    drawn: tuple[Suite, EvalOptions], seed: int
) -> None:
    """A similarity model's last bits (batching, hardware) never count as a moved case."""
    suite, options = drawn
    base = run(suite, options)
    rng = random.Random(seed)
    noisy = replace(
        base,
        cases=[
            replace(
                c,
                runs=[
                    replace(r, score=min(1.0, max(0.0, r.score + rng.uniform(-9e-7, 9e-7))))
                    for r in c.runs
                ],
            )
            for c in base.cases
        ],
    )
    v = gate(suite, noisy, on_disk(suite, base))
    assert not v.worse and not v.better and v.delta == 0.0
    assert v.status != "regressed"


def test_the_reported_case_thirds_compare_equal() -> None:
    """The issue's report: 21 cases at 2/3 each, gated against their own recorded baseline."""
    cases = [
        CaseResult(f"c{i}", {}, None, [RunResult(0, "x", 2 / 3, False, "2 of 3 found")])
        for i in range(21)
    ]
    current = SuiteRun(suite="fee_wording", model="m", prompt_text="p", cases=cases)
    made = BaselineEntry(
        prompt_sha256="sha",
        model="m",
        scorer_config_hash="h",
        cases={c.case_id: BaselineCase.from_result(c) for c in cases},
    )
    with tempfile.TemporaryDirectory() as tmp:
        BaselineStore(Path(tmp) / "baseline.json").update({"fee_wording": made})
        text = (Path(tmp) / "baseline.json").read_text()
        entry = BaselineStore(Path(tmp) / "baseline.json").entry("fee_wording")
    assert '"score": 0.666667' in text
    v = evaluate_settings(GateSettings(threshold=0.5), current, entry)
    assert v.status == "pass" and not v.worse and v.p_worse == 1.0
    assert v.current_value == v.baseline_value == 0.666667


def test_end_to_end_partial_contains_scores_replay_without_a_regression(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's report: every answer holds two of three phrases (each case scores 2/3);
    recording the baseline, then replaying from the cache, must pass with no case moved."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    pytester.makeini("[pytest]\ngpo_model = openai/fee-model\n")
    (pytester.path / "fee.txt").write_text("{{ text }}", encoding="utf-8")
    phrases = ["no monthly fee", "free transfers", "cancel anytime"]
    cases = "\n".join(
        f"  - {{id: fee-{i}, vars: {{text: 'Offer {i}: {phrases[i % 3]} and "
        f"{phrases[(i + 1) % 3]}.'}}}}"
        for i in range(21)
    )
    with OpenAIServer() as server:  # answers "echo: <prompt>": two phrases of three
        (pytester.path / "fee_wording.gpo.yaml").write_text(
            "name: fee_wording\nprompt: fee.txt\n"
            f"params: {{api_base: '{server.base_url}'}}\n"
            f"scorers: [{{type: contains, all: {json.dumps(phrases)}}}]\n"
            "threshold: 0.5\ncases:\n" + cases + "\n",
            encoding="utf-8",
        )
        update = pytester.runpytest("-p", "no:cacheprovider", "--gpo-update-baseline")
        update.assert_outcomes(passed=1)
        assert server.chat_requests == 21
        baseline = json.loads((pytester.path / ".gpo" / "baseline.json").read_text())
        scores = {c["score"] for c in baseline["suites"]["fee_wording"]["cases"].values()}
        assert scores == {0.666667}
        replay = pytester.runpytest("-p", "no:cacheprovider", "--gpo-cache", "replay")
        assert server.chat_requests == 21  # every answer from the cache
    replay.assert_outcomes(passed=1)
    out = replay.stdout.str()
    assert "regressed" not in out and "worse" not in out
    replay.stdout.fnmatch_lines(["*fee_wording*0.667*0.667 (+0.000)*PASS*"])
