"""Repeatable experiments and selection (issue #13, parts 7-9): the optimizer seed apart from
the split seed, ``runs: N``, predefined ``split:`` fields, eval ties broken by train, and
racing a step's candidates (never dropping full evaluation's pick)."""

from __future__ import annotations

import asyncio
import json
import shutil
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_optimize_fakes import BagOfWordsEmbedder, ScriptedClient, steps_script
from test_optimize_runner import SimClient

from pytest_gpo import sim
from pytest_gpo.errors import SuiteError
from pytest_gpo.evaluate import EvalOptions, evaluate
from pytest_gpo.llm.types import Completion, Usage
from pytest_gpo.optimize.config import OptimizeConfig
from pytest_gpo.optimize.estimate import plan_run
from pytest_gpo.optimize.loop import optimize
from pytest_gpo.optimize.race import race, race_order
from pytest_gpo.optimize.result import OptimizationResult
from pytest_gpo.report.optimization import optimize_markdown
from pytest_gpo.results import CaseResult, RunResult, SuiteRun
from pytest_gpo.scorers.registry import builtin_registry
from pytest_gpo.suites.load import load_suite

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parent / "fixtures" / "support_desk"
ROUTER = EXAMPLE / "suites" / "ticket_router.gpo.yaml"


# --- racing: the step's pick is full evaluation's pick, for fewer calls --------------------


def _full_pick(listed: Sequence[str], means: Mapping[str, float]) -> str:
    """What full evaluation picks: the first listed with the highest mean."""
    best = max(means[p] for p in listed)
    return next(p for p in listed if means[p] == best)


_SCORE = st.one_of(st.sampled_from([0.0, 1.0]), st.sampled_from([0.0, 0.5, 1.0]), st.floats(0, 1))


@settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.integers(min_value=1, max_value=7).flatmap(
        lambda k: st.integers(min_value=1, max_value=14).flatmap(
            lambda n: st.lists(st.lists(_SCORE, min_size=n, max_size=n), min_size=k, max_size=k)
        )
    ),
    st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 8)), max_size=3),
    st.integers(min_value=0, max_value=50),
    st.integers(min_value=1, max_value=20),
    st.lists(st.integers(0, 2**14 - 1), max_size=3),
)
def test_a_race_picks_what_full_evaluation_picks_with_no_more_calls(
    matrix: list[list[float]],
    known: list[tuple[float, int]],
    seed: int,
    width: int,
    seen: list[int],
) -> None:
    """Any scores (pass/fail, halves, fractions; ties everywhere), duplicates of earlier
    prompts with known scores listed anywhere, candidates an earlier race stopped (with the
    cases it scored), any round width: the first-listed best survivor is full evaluation's
    pick, with its exact mean, and no case is scored twice or again."""
    n = len(matrix[0])
    ids = [f"c{i}" for i in range(n)]
    prompts = [f"p{i}" for i in range(len(matrix))]
    table = {p: dict(zip(ids, row, strict=True)) for p, row in zip(prompts, matrix, strict=True)}
    listed = list(prompts)
    known_map: dict[str, float] = {}
    for i, (score, where) in enumerate(known):
        listed.insert(min(where, len(listed)), f"k{i}")
        known_map[f"k{i}"] = score
    # candidate i was stopped by an earlier race after the cases set in bit mask seen[i]
    prior = {
        prompts[i]: {c: table[prompts[i]][c] for j, c in enumerate(ids) if mask >> j & 1}
        for i, mask in enumerate(seen[: len(prompts)])
    }
    calls: list[tuple[str, str]] = []

    async def score_cases(prompt: str, case_ids: Sequence[str]) -> Mapping[str, float]:
        assert prompt in table and len(case_ids) <= max(width, 1)
        calls.extend((prompt, c) for c in case_ids)
        return {c: table[prompt][c] for c in case_ids}

    out = asyncio.run(
        race(
            listed,
            ids,
            score_cases,
            mode="on",
            seed=seed,
            t=1,
            known=known_map,
            width=width,
            prior=prior,
        )
    )
    means = {p: sum(table[p][c] for c in ids) / n for p in prompts} | known_map
    survivors = {**out.scores, **known_map}
    pick = _full_pick(listed, means)
    assert _full_pick([p for p in listed if p in survivors], survivors) == pick
    for p, full in out.scores.items():
        assert full == means[p]
    assert set(out.scores) | set(out.dropped) == set(prompts)
    assert len(calls) == len(set(calls)) == out.case_evals
    assert not any(c in prior.get(p, {}) for p, c in calls)
    assert out.full_case_evals == sum(1 for p in prompts if p not in prior) * n
    assert out.case_evals <= len(prompts) * n - sum(len(v) for v in prior.values())
    for p, (_mean, count) in out.dropped.items():
        assert out.partial[p] == {c: table[p][c] for c in out.partial[p]}
        assert count == len(out.partial[p]) and set(prior.get(p, {})) <= set(out.partial[p])


@pytest.mark.parametrize(
    ("listed", "evals"),
    [
        # "good" first: it is scored on all 40 cases (5 rounds of 8) and then "bad" can at
        # best tie a candidate listed before it: never scored
        (["good", "bad"], 40),
        # "bad" first: its first 8 cases (all 0) leave it at most 32/40; "good" passes 32
        # after its 33rd case, and the round in flight ends at 40
        (["bad", "good"], 8 + 40),
    ],
)
def test_a_race_scores_the_promising_candidate_first_and_off_scores_everything(
    listed: list[str], evals: int
) -> None:
    ids = [f"c{i}" for i in range(40)]
    table = {"good": dict.fromkeys(ids, 1.0), "bad": dict.fromkeys(ids, 0.0)}

    async def score_cases(prompt: str, case_ids: Sequence[str]) -> Mapping[str, float]:
        return {c: table[prompt][c] for c in case_ids}

    raced = asyncio.run(race(listed, ids, score_cases, mode="on", seed=0, t=1))
    assert raced.scores == {"good": 1.0} and "bad" in raced.dropped
    assert raced.case_evals == evals and raced.saved == 80 - evals
    assert raced.rounds == evals // 8
    full = asyncio.run(race(listed, ids, score_cases, mode="off", seed=0, t=1))
    assert full.scores == {"good": 1.0, "bad": 0.0}
    assert full.case_evals == 80 and full.rounds == 1


def test_a_known_score_sets_the_bar_without_calls() -> None:
    """A duplicate of an earlier prompt at 0.75, listed first: a new candidate is stopped as
    soon as it misses a quarter of the cases, and one listed before the duplicate is scored
    until it is below 0.75 (a tie would be its win)."""
    ids = [f"c{i}" for i in range(8)]
    half = dict.fromkeys(ids, 0.0) | dict.fromkeys(ids[:4], 1.0)

    async def score_cases(prompt: str, case_ids: Sequence[str]) -> Mapping[str, float]:
        return {c: half[c] for c in case_ids}

    def run(listed: list[str]) -> int:
        out = asyncio.run(
            race(listed, ids, score_cases, mode="on", seed=0, t=1, known={"dup": 0.75}, width=1)
        )
        assert out.scores == {} and set(out.dropped) == {"new"}
        return out.case_evals

    order = race_order(ids, 0, 1)
    # after the 2nd miss in the step's order "new" can at most tie "dup" (listed first); after
    # the 3rd it is below it
    misses = [i + 1 for i, c in enumerate(order) if half[c] == 0.0]
    assert run(["dup", "new"]) == misses[1]
    assert run(["new", "dup"]) == misses[2]


def test_a_candidate_that_cannot_render_leaves_the_race_and_others_go_on() -> None:
    ids = [f"c{i}" for i in range(6)]

    class Broken(Exception):
        pass

    async def score_cases(prompt: str, case_ids: Sequence[str]) -> Mapping[str, float]:
        if prompt == "broken":
            raise Broken(prompt)
        return dict.fromkeys(case_ids, 0.5)

    out = asyncio.run(
        race(
            ["broken", "fine"], ids, score_cases, mode="on", seed=0, t=1, candidate_errors=(Broken,)
        )
    )
    assert isinstance(out.errors["broken"], Broken) and out.scores == {"fine": 0.5}
    with pytest.raises(Broken):
        asyncio.run(race(["broken", "fine"], ids, score_cases, mode="on", seed=0, t=1))


# --- selection: ties on eval broken by train, then by the smaller edit ----------------------

CASES = [f"c{i:02d}" for i in range(20)]
P0 = "Answer the question. Question: {{ q }}"
SHORT = "Answer the question now. Question: {{ q }}"
LONGER = "Answer the question now, carefully and well. Question: {{ q }}"


class SplitTables:
    """Scores a prompt by which split a case is in: one table per split."""

    def __init__(self, splits: Any, tables: Mapping[str, Mapping[str, float]]) -> None:
        self.where = {c: name for name in ("train", "eval", "test") for c in getattr(splits, name)}
        self.tables = tables
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, prompt: str, case_ids: Sequence[str]) -> SuiteRun:
        cases = []
        usage = Usage()
        for cid in case_ids:
            split = self.where[cid]
            self.calls.append((prompt, split))
            score = self.tables[split].get(prompt, 0.0)
            usage.add(Completion(texts=("x",), prompt_tokens=1, completion_tokens=1))
            cases.append(
                CaseResult(cid, {"q": cid}, "yes", [RunResult(0, "x", score, score >= 0.5, "")])
            )
        return SuiteRun("s", "task/model", prompt, cases, usage=usage)


def _select_run(
    tables: Mapping[str, Mapping[str, float]], script: list[list[str]]
) -> OptimizationResult:
    """Two steps, one candidate each: both join the trajectory (step winners)."""
    cfg = OptimizeConfig.from_mapping({"steps": 2, "retrieval": "recency"})
    evaluator = SplitTables(plan_run(CASES, cfg).splits, tables)
    return asyncio.run(
        optimize(
            suite_name="qa",
            initial_prompt=P0,
            case_ids=CASES,
            expected_by_id=dict.fromkeys(CASES, "yes"),
            vars_by_id={c: {"q": c} for c in CASES},
            evaluate=evaluator,
            client=ScriptedClient(steps_script(script)),
            optimizer_model="opt/model",
            config=cfg,
        )
    )


def test_saturated_eval_is_decided_by_train_and_the_report_says_so() -> None:
    result = _select_run(
        {
            "eval": {P0: 0.8, SHORT: 1.0, LONGER: 1.0},
            "train": {P0: 0.7, SHORT: 0.8, LONGER: 1.0},
            "test": {P0: 0.5, SHORT: 0.6, LONGER: 0.9},
        },
        [[SHORT], [LONGER]],
    )
    # SHORT joined the trajectory first; the tie at 1.000 on eval went to train, not order
    assert [e.prompt for e in result.trajectory] == [P0, SHORT, LONGER]
    assert result.best_prompt == LONGER and result.accepted
    assert result.selection_note == ("eval saturated: 2 candidates tied at 1.000; chosen by train")
    assert result.scores["train"].after == 1.0
    assert "Selection: eval saturated: 2 candidates tied at 1.000; chosen by train." in (
        optimize_markdown(result)
    )


def test_ties_on_train_too_go_to_the_smaller_edit_and_no_signal_is_named() -> None:
    result = _select_run(
        {
            "eval": {P0: 1.0, SHORT: 1.0, LONGER: 1.0},
            "train": {P0: 0.9, SHORT: 1.0, LONGER: 1.0},
            "test": {P0: 0.5, SHORT: 0.6, LONGER: 0.9},
        },
        [[LONGER], [SHORT]],
    )
    assert [e.prompt for e in result.trajectory] == [P0, LONGER, SHORT]
    assert result.best_prompt == SHORT  # 1 word changed, against 4 for the earlier LONGER
    note = result.selection_note or ""
    assert note.startswith("no signal on eval: every prompt tried scored 1.000")
    assert "chosen by the smallest edit (2 also tied on train at 1.000)" in note


def test_without_a_tie_eval_decides_and_there_is_no_note() -> None:
    result = _select_run(
        {
            "eval": {P0: 0.5, SHORT: 0.9, LONGER: 0.7},
            "train": {P0: 0.5, SHORT: 0.6, LONGER: 1.0},
            "test": {P0: 0.5, SHORT: 0.6, LONGER: 0.9},
        },
        [[SHORT], [LONGER]],
    )
    assert result.best_prompt == SHORT and result.selection_note is None


# --- seeds: the split seed and the optimizer seed are independent -------------------------


def _router_run(**settings_: Any) -> tuple[OptimizationResult, SimClient]:
    suite = load_suite(ROUTER, builtin_registry())
    client = SimClient()
    cases = {c.id: c for c in suite.cases}
    options = EvalOptions(model=sim.TASK_MODEL)

    async def evaluate_prompt(prompt: str, case_ids: Sequence[str]) -> SuiteRun:
        return await evaluate(
            suite, client, options, prompt_text=prompt, cases=[cases[i] for i in case_ids]
        )

    cfg = OptimizeConfig.from_mapping({"steps": 2, "candidates": 4, **settings_})
    result = asyncio.run(
        optimize(
            suite_name=suite.name,
            initial_prompt=suite.prompt_text,
            case_ids=list(cases),
            expected_by_id={c.id: c.expected for c in suite.cases},
            vars_by_id={c.id: c.vars for c in suite.cases},
            evaluate=evaluate_prompt,
            client=client,
            config=cfg,
            optimizer_model=sim.OPTIMIZER_MODEL,
            embedder=BagOfWordsEmbedder(),
        )
    )
    return result, client


def _candidates(result: OptimizationResult) -> list[list[str]]:
    return [[c.text for c in s.candidates] for s in result.steps]


def test_optimizer_seed_changes_the_samples_but_not_the_split() -> None:
    base, base_client = _router_run(seed=3)
    other, other_client = _router_run(seed=3, optimizer_seed=11)
    again, _ = _router_run(seed=3, optimizer_seed=3)  # the default: optimizer_seed = seed

    assert base.split_sizes == other.split_sizes
    cfg = OptimizeConfig.from_mapping({"seed": 3})
    assert (
        plan_run([f"x{i}" for i in range(30)], cfg).splits
        == plan_run([f"x{i}" for i in range(30)], cfg.replace(optimizer_seed=11)).splits
    )
    samples = [r.sample for r in base_client.requests if r.purpose == "optimizer"]
    other_samples = [r.sample for r in other_client.requests if r.purpose == "optimizer"]
    assert samples != other_samples
    assert _candidates(base) != _candidates(other)  # different candidates on the same split
    # the same seeds repeat the run exactly
    assert _candidates(again) == _candidates(base)
    assert again.best_prompt == base.best_prompt and again.trajectory == base.trajectory
    assert again.scores == base.scores


def test_optimizer_seed_is_validated() -> None:
    with pytest.raises(SuiteError, match="optimizer_seed"):
        OptimizeConfig.from_mapping({"optimizer_seed": -1})
    with pytest.raises(SuiteError, match="runs"):
        OptimizeConfig.from_mapping({"runs": 0})
    with pytest.raises(SuiteError, match="racing") as bad:
        OptimizeConfig.from_mapping({"racing": "fast"})
    assert "on, off" in str(bad.value.fix) and "exact" not in str(bad.value.fix)
    # "exact" named today's racing when "on" also ran a statistical test: still read as "on"
    assert OptimizeConfig.from_mapping({"racing": "exact"}).racing == "on"
    with pytest.raises(SuiteError, match="race_delta' was removed") as info:
        OptimizeConfig.from_mapping({"race_delta": 0.05})
    assert "delete race_delta" in str(info.value.fix)


# --- end to end through pytest ------------------------------------------------------------


@pytest.fixture
def router_project(pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory) -> Any:
    (pytester.path / "suites").mkdir()
    (pytester.path / "prompts").mkdir()
    shutil.copy(EXAMPLE / "prompts" / "router.txt", pytester.path / "prompts" / "router.txt")
    for name in ("ticket_router.gpo.yaml", "tickets.jsonl"):
        shutil.copy(EXAMPLE / "suites" / name, pytester.path / "suites" / name)
    pytester.makeini(
        textwrap.dedent(f"""
        [pytest]
        gpo_model = gpo-sim/task
        gpo_optimizer_model = gpo-sim/optimizer
        gpo_cache_dir = {tmp_path_factory.mktemp("cache")}
    """)
    )
    return pytester


def _set_optimize(project: pytest.Pytester, mapping: str) -> None:
    suite = project.path / "suites" / "ticket_router.gpo.yaml"
    text = suite.read_text(encoding="utf-8")
    suite.write_text(
        text.replace("optimize: {steps: 6, candidates: 8}", f"optimize: {mapping}"),
        encoding="utf-8",
    )


def _record(project: pytest.Pytester) -> dict[str, Any]:
    report = json.loads((project.path / ".gpo" / "report.json").read_text(encoding="utf-8"))
    section = next(s for s in report["sections"] if s.get("title") == "Optimization")
    data: dict[str, Any] = section["data"]["ticket_router"]
    return data


def _mark_splits(project: pytest.Pytester, pick: Any) -> list[dict[str, Any]]:
    path = project.path / "suites" / "tickets.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    for i, row in enumerate(rows):
        split = pick(i, row)
        if split is not None:
            row["split"] = split
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return rows


def test_predefined_splits_are_used_as_written(router_project: pytest.Pytester) -> None:
    rows = _mark_splits(router_project, lambda i, _: ("train", "eval", "test")[i % 3])
    _set_optimize(router_project, "{steps: 1, candidates: 3}")
    result = router_project.runpytest("-p", "no:cacheprovider", "--gpo-optimize", "--gpo-dry-run")
    assert result.ret == 0, result.stdout.str()
    record = _record(router_project)
    expected = {name: sum(1 for r in rows if r["split"] == name) for name in ("train", "eval")}
    assert record["split_sizes"]["train"] == expected["train"]
    assert record["split_sizes"]["eval"] == expected["eval"]
    test_ids = {c["case_id"] for c in record["test_before"]}
    assert test_ids == {r["id"] for r in rows if r["split"] == "test"}
    # the gate ignores the field: every case still runs
    router_project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("pick", "message"),
    [
        (lambda i, _: "train" if i else None, "case has no 'split' but 61 of 62 cases do"),
        (lambda i, _: "validation" if i == 5 else "train", "must be train, eval or test"),
        (lambda i, _: ("train", "test")[i % 2], "no case has split: eval"),
    ],
)
def test_bad_predefined_splits_are_clear_errors(
    router_project: pytest.Pytester, pick: Any, message: str
) -> None:
    rows = _mark_splits(router_project, pick)
    _set_optimize(router_project, "{steps: 1, candidates: 3}")
    result = router_project.runpytest("-p", "no:cacheprovider", "--gpo-optimize", "--gpo-dry-run")
    out = result.stdout.str()
    assert result.ret != 0 and "INTERNALERROR" not in out and "Traceback" not in out
    assert message in out and "ticket_router.gpo.yaml" in out
    if "no 'split'" in message:
        assert rows[0]["id"] in out  # the case without one is named
    if "validation" in str(pick(5, None)):
        assert rows[5]["id"] in out


def test_runs_report_mean_and_spread_and_calls_saved(router_project: pytest.Pytester) -> None:
    _set_optimize(router_project, "{steps: 2, candidates: 4, runs: 3}")
    result = router_project.runpytest("-p", "no:cacheprovider", "--gpo-optimize", "--gpo-dry-run")
    assert result.ret == 0, result.stdout.str()
    out = result.stdout.str()
    assert "gpo ticket_router: run 2/3, optimizer seed 1" in out
    assert "runs: held-out (test) score of each run's best prompt:" in out
    assert "(sample std, 3 runs; min" in out
    assert "racing (on):" in out and "task calls saved scoring candidates on eval" in out
    record = _record(router_project)
    runs = record["runs"]
    assert [r["optimizer_seed"] for r in runs] == [0, 1, 2]
    assert record["chosen_run"] in (1, 2, 3)
    chosen = runs[record["chosen_run"] - 1]
    assert chosen["eval_best"] == max(r["eval_best"] for r in runs)
    assert record["scores"]["eval"]["after"] == chosen["eval_best"]
    held = [r["test_after"] for r in runs]
    assert record["runs_test"]["mean"] == pytest.approx(sum(held) / 3)
    assert record["runs_test"]["min"] == min(held) and record["runs_test"]["max"] == max(held)
    assert len(record["calls_saved_per_step"]) == 2
    assert record["calls_saved"] == sum(record["calls_saved_per_step"])
    md = (router_project.path / ".gpo" / "report.md").read_text(encoding="utf-8")
    assert "#### Runs" in md and "| optimizer seed" in md.replace("|  ", "| ")
    assert "eval calls" in md and "saved)" in md


def test_runs_and_racing_figures_survive_the_json_round_trip() -> None:
    from pytest_gpo.optimize.repeat import repeat_runs
    from pytest_gpo.serial import from_data, to_data

    async def one(cfg: OptimizeConfig, where: Path | None) -> OptimizationResult:
        result, _ = await asyncio.to_thread(_router_run, optimizer_seed=cfg.sampling_seed)
        return result

    result = asyncio.run(repeat_runs(OptimizeConfig.from_mapping({"runs": 2}), None, one))
    assert [r.optimizer_seed for r in result.runs] == [0, 1]
    assert result.config.runs == 2 and result.chosen_run in (1, 2)
    back = from_data(OptimizationResult, to_data(result))
    assert back.runs == result.runs and back.chosen_run == result.chosen_run
    assert back.calls_saved == result.calls_saved > 0
    assert [s.eval_calls for s in back.steps] == [s.eval_calls for s in result.steps]


def test_a_csv_split_column_is_the_case_field_not_a_variable(tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_text("Q: {{ q }}\n", encoding="utf-8")
    rows = ["id,q,expected,split"] + [
        f"c{i},question {i},yes,{('train', 'eval', 'test')[i % 3]}" for i in range(6)
    ]
    (tmp_path / "cases.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    suite_file = tmp_path / "s.gpo.yaml"
    suite_file.write_text(
        "name: s\nprompt: p.txt\ncases: cases.csv\nscorers: [{type: exact}]\n", encoding="utf-8"
    )
    suite = load_suite(suite_file, builtin_registry())
    assert [c.split for c in suite.cases] == ["train", "eval", "test"] * 2
    assert all(set(c.vars) == {"q"} for c in suite.cases)
    plan = plan_run(
        [c.id for c in suite.cases], OptimizeConfig(), {c.id: c.split or "" for c in suite.cases}
    )
    assert plan.splits.eval == ("c1", "c4") and plan.splits.test == ("c2", "c5")


def test_a_suite_seed_wins_unless_the_seed_is_set_on_the_command_line(
    router_project: pytest.Pytester,
) -> None:
    """An ini key missing from the file is not set there: the suite's own seed holds."""
    _set_optimize(router_project, "{steps: 1, candidates: 2, seed: 3, racing: off}")
    args = ("-p", "no:cacheprovider", "--gpo-optimize", "--gpo-dry-run")
    assert router_project.runpytest(*args).ret == 0
    record = _record(router_project)
    assert record["seed"] == 3 and record["config"]["racing"] == "off"
    assert router_project.runpytest(*args, "--gpo-seed", "5").ret == 0
    assert _record(router_project)["seed"] == 5


def test_an_optimizer_that_fails_every_call_makes_the_suite_an_error(
    router_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No step could run: the suite is not 'passed' and pytest does not exit 0."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    _set_optimize(router_project, "{steps: 2, candidates: 2}")
    result = router_project.runpytest(
        "-p",
        "no:cacheprovider",
        "--gpo-optimize",
        "--gpo-dry-run",
        "--gpo-optimizer-model",
        "openai/nokey-optimizer",
    )
    out = result.stdout.str()
    assert result.ret != 0 and "1 passed" not in out, out
    assert "optimization failed before its first step" in out
    report = json.loads((router_project.path / ".gpo" / "report.json").read_text("utf-8"))
    assert report["passed"] is False
    assert report["suites"][0]["status"] == "error"
