"""The GPO loop with fake clients and evaluators: selection, final choice, held-out guard,
presets' call patterns, caps, provider errors and resuming from a checkpoint."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from test_optimize_fakes import BagOfWordsEmbedder, ScriptedClient, TableEvaluator, steps_script

from pytest_gpo.errors import ConfigError
from pytest_gpo.optimize.config import OptimizeConfig
from pytest_gpo.optimize.estimate import plan_run
from pytest_gpo.optimize.loop import optimize
from pytest_gpo.optimize.markers import BUDGET_SENTENCE, CURRENT_OPEN, REFLECTION_TAG
from pytest_gpo.optimize.progress import ProgressEvent, format_progress
from pytest_gpo.optimize.result import OptimizationResult
from pytest_gpo.serial import from_data, to_data

CASES = [f"c{i:02d}" for i in range(20)]
VARS = {c: {"q": f"question {c}"} for c in CASES}
EXPECTED = dict.fromkeys(CASES, "yes")

P0 = "Answer the question. Question: {{ q }}"
A = "Answer the question briefly. Question: {{ q }}"
B = "Answer the question carefully. Question: {{ q }}"
E = "Answer the question carefully and fully. Question: {{ q }}"
F = "Answer the question carefully, in full. Question: {{ q }}"
G = "Answer the question carefully and fully, please. Question: {{ q }}"
LONG = P0 + " " + " ".join(f"word{i}" for i in range(45))  # over any budget here
DROPS = "Answer the question."  # drops {{ q }}

SCRIPT = [[A, B, LONG, DROPS], [E, F, A], [G]]
EVAL = {P0: 0.6, A: 0.3, B: 0.5, E: 0.8, F: 0.7, G: 0.4}


def _config(**kw: Any) -> OptimizeConfig:
    return OptimizeConfig.from_mapping({"steps": 3, **kw})


def _test_ids(cfg: OptimizeConfig) -> frozenset[str]:
    return frozenset(plan_run(CASES, cfg).splits.test)


def _run(
    cfg: OptimizeConfig,
    evaluator: TableEvaluator,
    client: ScriptedClient,
    **kw: Any,
) -> OptimizationResult:
    kw.setdefault("embedder", BagOfWordsEmbedder())
    return asyncio.run(
        optimize(
            suite_name="qa",
            initial_prompt=P0,
            case_ids=CASES,
            expected_by_id=EXPECTED,
            vars_by_id=VARS,
            evaluate=evaluator,
            client=client,
            optimizer_model="opt/model",
            config=cfg,
            dataset_hash="d" * 64,
            **kw,
        )
    )


def _evaluator(
    cfg: OptimizeConfig,
    eval_scores: Mapping[str, float] = EVAL,
    test_scores: Mapping[str, float] | None = None,
    **kw: Any,
) -> TableEvaluator:
    return TableEvaluator(
        eval_scores=eval_scores, test_ids=_test_ids(cfg), test_scores=test_scores, **kw
    )


def test_selection_moves_to_the_best_new_candidate_and_final_is_best_by_eval() -> None:
    cfg = _config(racing="off")  # every candidate on all of eval in one call (no racing)
    evaluator = _evaluator(cfg, test_scores={P0: 0.5, E: 0.7})
    client = ScriptedClient(steps_script(SCRIPT))
    result = _run(cfg, evaluator, client)

    # step 1: B (0.5) beats A (0.3) and becomes current although P0 scored 0.6
    s1 = result.steps[0]
    assert [c.status for c in s1.candidates] == [
        "accepted",
        "accepted",
        "over_budget",
        "dropped_variable",
    ]
    assert s1.chosen == 1
    assert (s1.current_score, s1.best_score) == pytest.approx((0.5, 0.6))
    assert s1.budget == 40
    # step 2: A again is a duplicate that reuses its score; E wins
    s2 = result.steps[1]
    assert [c.status for c in s2.candidates] == ["accepted", "accepted", "duplicate"]
    assert s2.candidates[2].score == pytest.approx(0.3)
    assert s2.chosen == 0 and s2.current_score == pytest.approx(0.8)
    # step 3: G is worse but the trajectory moves to it (like SGD)
    assert result.steps[2].current_score == pytest.approx(0.4)
    assert [e.prompt for e in result.trajectory] == [P0, B, E, G]

    assert result.best_prompt == E
    assert result.accepted and result.should_write
    assert result.reason == "accepted: held-out test improved (0.500 → 0.700)"
    assert result.scores["eval"].before == pytest.approx(0.6)
    assert result.scores["eval"].after == pytest.approx(0.8)
    assert result.scores["test"].gain == pytest.approx(0.2)
    assert result.scores["train"].before is not None
    assert result.rejected == {"dropped_variable": 1, "over_budget": 1}
    assert result.duplicates == 1
    assert result.stopped_reason is None

    evaluated = evaluator.prompts_evaluated()
    assert LONG not in evaluated and DROPS not in evaluated  # rejected: never scored
    eval_ids = plan_run(CASES, cfg).splits.eval
    on_eval = [p for p, ids in evaluator.calls if ids == eval_ids]
    assert sorted(on_eval) == sorted([P0, A, B, E, F, G])  # each prompt scored once
    assert result.optimizer_requests == 3 and result.optimizer_usage.cost == pytest.approx(0.003)
    assert result.task_usage.calls == sum(len(ids) for _, ids in evaluator.calls)
    assert result.task_model == "task/model"


def test_held_out_guard_rejects_an_eval_overfit_prompt() -> None:
    cfg = _config()
    evaluator = _evaluator(cfg, eval_scores={**EVAL, E: 0.95}, test_scores={P0: 0.5, E: 0.3})
    result = _run(cfg, evaluator, ScriptedClient(steps_script(SCRIPT)))
    assert result.best_prompt == E and result.changed
    assert not result.accepted and not result.should_write
    assert result.reason == "not accepted: held-out test did not improve (0.500 → 0.300)"
    assert [f.fixed for f in result.flipped()] == [False] * len(result.test_before)


def test_min_gain_and_paired_test() -> None:
    cfg = _config(min_gain=0.25)
    result = _run(
        cfg, _evaluator(cfg, test_scores={P0: 0.5, E: 0.7}), ScriptedClient(steps_script(SCRIPT))
    )
    assert not result.accepted and "by more than 0.25" in result.reason

    cfg = _config(use_paired_test=True)  # 6 test cases all better: p = 1/64
    result = _run(
        cfg, _evaluator(cfg, test_scores={P0: 0.5, E: 0.7}), ScriptedClient(steps_script(SCRIPT))
    )
    assert result.accepted and result.paired_p == pytest.approx(1 / 64)

    cfg = _config(use_paired_test=True, alpha=0.01)
    result = _run(
        cfg, _evaluator(cfg, test_scores={P0: 0.5, E: 0.7}), ScriptedClient(steps_script(SCRIPT))
    )
    assert not result.accepted and "not significant" in result.reason


def test_no_improvement_on_eval_keeps_the_initial_prompt() -> None:
    cfg = _config()
    evaluator = _evaluator(cfg, eval_scores={P0: 0.9})
    result = _run(cfg, evaluator, ScriptedClient(steps_script(SCRIPT)))
    assert result.best_prompt == P0 and not result.changed and not result.accepted
    assert result.reason.startswith("not accepted: no candidate beat the initial prompt")
    test_ids = plan_run(CASES, cfg).splits.test
    assert [p for p, ids in evaluator.calls if ids == test_ids] == [P0]


@pytest.mark.parametrize(
    ("preset", "purposes", "budget_words"),
    [
        ("gpo", ["optimizer"] * 3, [40, 20, 10]),
        ("ape", ["optimizer"] * 3, None),
        ("opro", ["optimizer"] * 3, None),
        ("apo", ["reflection", "optimizer"] * 3, None),
        ("pe2", ["reflection", "optimizer"] * 3, [30, 30, 30]),
    ],
)
def test_presets_call_patterns(
    preset: str, purposes: list[str], budget_words: list[int] | None
) -> None:
    cfg = _config(preset=preset, candidates=3)
    client = ScriptedClient(steps_script(SCRIPT, ignore_n=True))
    evaluator = _evaluator(cfg)
    result = _run(cfg, evaluator, client)
    assert client.purposes == purposes
    optimizer = [r for r in client.requests if r.purpose == "optimizer"]
    assert all(r.n == 3 and r.model == "opt/model" for r in optimizer)
    assert [r.sample for r in optimizer] == [1, 2, 3]
    # a provider returning more than n: never more candidates than asked for
    assert all(len(s.candidates) <= 3 for s in result.steps)
    metas = [r.messages[0]["content"] for r in optimizer]
    assert all(CURRENT_OPEN in m for m in metas)
    if budget_words is None:
        assert all("allowed to change" not in m for m in metas)
    else:
        for n, meta in zip(budget_words, metas, strict=True):
            assert BUDGET_SENTENCE.format(n=n) in meta
    reflections = [r for r in client.requests if r.purpose == "reflection"]
    if reflections:
        assert result.reflection_requests == 3
        text = reflections[0].messages[0]["content"]
        assert REFLECTION_TAG in text and "Model output: out-" in text
        assert "The prompt should ask for one word." in metas[0]
        train = plan_run(CASES, cfg).splits.train
        # the current prompt on each step's (shuffled) batch; the report's train runs aside
        batch_runs = [ids for _, ids in evaluator.calls if set(ids) <= set(train) and ids != train]
        assert len(batch_runs) == 3
    if preset == "apo":
        assert "modify the current prompt" in metas[0]


def test_embeddings_once_per_distinct_prompt_over_a_run() -> None:
    cfg = _config()
    emb = BagOfWordsEmbedder()
    result = _run(cfg, _evaluator(cfg), ScriptedClient(steps_script(SCRIPT)), embedder=emb)
    assert len(emb.embedded) == len(set(emb.embedded))
    assert set(emb.embedded) <= {e.prompt for e in result.trajectory}
    assert result.embedding_seconds >= 0.0


def test_budget_error_from_the_client_stops_cleanly_and_keeps_the_best() -> None:
    cfg = _config(steps=6)
    script = [[A, B], [E, F], [G], [G], [G], [G]]
    client = ScriptedClient(steps_script(script), budget_after=2)
    result = _run(cfg, _evaluator(cfg, test_scores={P0: 0.5, E: 0.7}), client)
    assert result.steps_completed == 2
    assert result.stopped_reason is not None and "budget" in result.stopped_reason
    assert result.best_prompt == E
    assert result.accepted  # the evaluator still scored the held-out test
    assert len(client.requests) == 3


def test_call_cap_keeps_enough_calls_for_the_held_out_test() -> None:
    cfg = _config(steps=6, max_calls=90, retrieval="recency")
    client = ScriptedClient(steps_script([[A, B], [E, F], [G], [A], [B], [F]]))
    evaluator = _evaluator(cfg, test_scores={P0: 0.5, E: 0.7}, shared_usage=client.usage)
    result = _run(cfg, evaluator, client)
    assert result.stopped_reason is not None and "call cap (90" in result.stopped_reason
    assert 0 < result.steps_completed < 6
    assert result.scores["test"].after is not None
    assert client.usage.calls <= 90


def test_provider_errors_stop_cleanly() -> None:
    cfg = _config()
    evaluator = _evaluator(cfg, fail_on={B: "provider"})
    result = _run(cfg, evaluator, ScriptedClient(steps_script(SCRIPT)))
    assert result.steps_completed == 0
    assert result.stopped_reason is not None
    assert result.stopped_reason.startswith("scoring a prompt failed: case 'c0'")
    assert result.best_prompt == P0 and not result.accepted

    client = ScriptedClient(steps_script(SCRIPT), error_at=2)
    result = _run(cfg, _evaluator(cfg), client)
    assert result.steps_completed == 1
    assert result.stopped_reason == "optimizer call failed: HTTP 500 from provider"

    result = _run(
        cfg, _evaluator(cfg, fail_on={P0: "cache_miss"}), ScriptedClient(steps_script(SCRIPT))
    )
    assert not result.accepted and "initial prompt could not be scored" in result.reason
    assert result.steps == []


def test_input_errors_raise_before_any_call() -> None:
    cfg = _config()
    client = ScriptedClient(steps_script(SCRIPT))
    with pytest.raises(ConfigError, match="embedder"):
        _run(cfg, _evaluator(cfg), client, embedder=None)
    with pytest.raises(ConfigError, match="optimizer model"):
        asyncio.run(
            optimize(
                suite_name="qa",
                initial_prompt=P0,
                case_ids=CASES,
                expected_by_id=EXPECTED,
                vars_by_id=VARS,
                evaluate=_evaluator(cfg),
                client=client,
                config=cfg.replace(retrieval="none"),
            )
        )
    assert client.requests == []


def test_resume_from_a_checkpoint_does_not_rescore_completed_steps(tmp_path: Path) -> None:
    cfg = _config(steps=5, racing="off")  # scorings counted on all of eval at once
    script = [[A, B], [E, F], [G], [A, F], [E]]
    steps_done: list[int] = []

    def progress(event: ProgressEvent) -> None:
        if event.kind == "step":
            steps_done.append(event.t)

    first_eval = _evaluator(cfg, test_scores={P0: 0.5, E: 0.7})
    first = _run(
        cfg,
        first_eval,
        ScriptedClient(steps_script(script)),
        checkpoint_dir=tmp_path,
        progress=progress,
        should_stop=lambda: "interrupted" if len(steps_done) >= 2 else None,
    )
    assert first.stopped_reason == "interrupted" and first.steps_completed == 2
    saved = json.loads((tmp_path / "checkpoint.json").read_text())
    assert saved["state"]["t"] == 2

    second_eval = _evaluator(cfg, test_scores={P0: 0.5, E: 0.7})
    client = ScriptedClient(steps_script(script))
    resumed = _run(cfg, second_eval, client, checkpoint_dir=tmp_path)
    assert resumed.resumed_from == 2 and resumed.steps_completed == 5
    assert [r.sample for r in client.requests] == [3, 4, 5]
    eval_ids = plan_run(CASES, cfg).splits.eval
    rescored = [p for p, ids in second_eval.calls if ids == eval_ids]
    assert P0 not in rescored and A not in rescored and E not in rescored
    assert rescored == [G]  # steps 3-5 only propose G, A/F (known) and E (known)

    fresh = _run(
        cfg, _evaluator(cfg, test_scores={P0: 0.5, E: 0.7}), ScriptedClient(steps_script(script))
    )
    assert resumed.trajectory == fresh.trajectory
    assert to_data(resumed.steps) == to_data(fresh.steps)
    assert resumed.best_prompt == fresh.best_prompt == E

    # another configuration does not pick up this run's checkpoint
    other = _run(
        cfg.replace(candidates=2),
        _evaluator(cfg),
        ScriptedClient(steps_script(script)),
        checkpoint_dir=tmp_path,
    )
    assert other.resumed_from is None


def test_progress_lines_are_short_and_readable() -> None:
    cfg = _config()
    events: list[ProgressEvent] = []
    _run(cfg, _evaluator(cfg), ScriptedClient(steps_script(SCRIPT)), progress=events.append)
    kinds = [e.kind for e in events]
    assert kinds == ["start", "step", "step", "step", "final"]
    lines = [format_progress(e) for e in events]
    assert lines[1].startswith("gpo qa step 1/3: best 60.0 current 50.0")
    assert "budget 2/40 words" in lines[1]
    assert "2 valid, 2 rejected (dropped_variable 1, over_budget 1)" in lines[1]
    assert "calls 1 opt + 18 task" in lines[1]  # p0 and 2 candidates on 6 eval cases
    assert lines[-1].startswith("gpo qa done: best 80.0")
    assert all(len(line) < 200 and "\n" not in line for line in lines)


def test_result_round_trips_through_json() -> None:
    cfg = _config()
    result = _run(
        cfg, _evaluator(cfg, test_scores={P0: 0.5, E: 0.7}), ScriptedClient(steps_script(SCRIPT))
    )
    data = json.loads(json.dumps(to_data(result)))
    again = from_data(OptimizationResult, data)
    assert to_data(again) == to_data(result)
    assert again.should_write and again.seed == 0


def test_plugin_filter_and_unrenderable_candidates_are_rejected_not_fatal() -> None:
    cfg = _config()
    evaluator = _evaluator(cfg, fail_on={A: "render"}, test_scores={P0: 0.5, E: 0.7})

    def house_style(current: str, candidate: str) -> str | None:
        return "house_style" if "and fully" in candidate else None

    result = _run(
        cfg, evaluator, ScriptedClient(steps_script(SCRIPT)), candidate_filter=house_style
    )
    s1, s2 = result.steps[0], result.steps[1]
    assert s1.candidates[0].status == "template_error"  # A could not be rendered
    assert s1.candidates[0].score is None and s1.chosen == 1
    assert [c.status for c in s2.candidates] == ["house_style", "accepted", "template_error"]
    assert E not in evaluator.prompts_evaluated()
    assert result.rejected["house_style"] >= 1 and result.rejected["template_error"] == 2
    assert result.stopped_reason is None and result.best_prompt == F


def test_an_unreadable_checkpoint_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "checkpoint.json").write_text("{not json")
    cfg = _config()
    result = _run(
        cfg, _evaluator(cfg), ScriptedClient(steps_script(SCRIPT)), checkpoint_dir=tmp_path
    )
    assert result.resumed_from is None and result.steps_completed == 3
    assert json.loads((tmp_path / "checkpoint.json").read_text())["state"]["t"] == 3
    assert not list(tmp_path.glob(".checkpoint-*"))  # no temporary files left behind
