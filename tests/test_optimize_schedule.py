"""Steps, batches, the edit budget schedule and the train/eval/test splits."""

from __future__ import annotations

import math
import random

import pytest

from pytest_gpo.errors import SuiteError
from pytest_gpo.optimize.config import OptimizeConfig
from pytest_gpo.optimize.estimate import estimate_calls, plan_run
from pytest_gpo.optimize.schedule import batch_for_step, edit_budget, steps_per_epoch, total_steps
from pytest_gpo.optimize.splits import split_cases

GPO_MD_T18 = [49, 48, 47, 45, 42, 40, 36, 33, 30, 26, 23, 20, 17, 14, 12, 11, 10, 10]


def test_cosine_budget_matches_the_design_values_for_18_steps() -> None:
    cfg = OptimizeConfig()
    assert [edit_budget(t, 18, cfg) for t in range(1, 19)] == GPO_MD_T18


@pytest.mark.parametrize("total", [1, 2, 5, 7, 12, 30, 100])
def test_cosine_budget_follows_the_formula(total: int) -> None:
    cfg = OptimizeConfig(max_words=40, min_words=5)
    for t in range(1, total + 1):
        expected = int(5 + 35 * 0.5 * (1 + math.cos(math.pi * t / total)))
        assert edit_budget(t, total, cfg) == expected
    assert edit_budget(total, total, cfg) == 5


def test_linear_fixed_none_and_warmup() -> None:
    linear = OptimizeConfig(schedule="linear")
    assert [edit_budget(t, 4, linear) for t in range(1, 5)] == [40, 30, 20, 10]
    assert all(edit_budget(t, 9, OptimizeConfig(schedule="fixed")) == 50 for t in range(1, 10))
    assert edit_budget(3, 9, OptimizeConfig(schedule="none")) is None
    warm = OptimizeConfig(warmup=4)
    assert [edit_budget(t, 18, warm) for t in (1, 2, 3)] == [12, 25, 37]
    assert edit_budget(4, 18, warm) == GPO_MD_T18[3]
    assert edit_budget(1, 18, OptimizeConfig(warmup=100)) == 1
    with pytest.raises(ValueError):
        edit_budget(0, 18, OptimizeConfig())


def test_steps_for_48_train_cases_is_18() -> None:
    assert steps_per_epoch(48, 8) == 6
    assert total_steps(OptimizeConfig(), 48) == 18
    assert total_steps(OptimizeConfig(steps=5), 48) == 5
    assert steps_per_epoch(44, 8) == 6  # remainder 4 = half a batch adds a step
    assert steps_per_epoch(43, 8) == 5
    assert steps_per_epoch(1, 8) == 1
    plan = plan_run([f"c{i}" for i in range(120)], OptimizeConfig())
    assert plan.splits.sizes() == (48, 36, 36)
    assert plan.total_steps == 18


def test_batches_cover_train_each_epoch_and_are_reproducible() -> None:
    train = [f"c{i}" for i in range(48)]
    cfg = OptimizeConfig()
    for epoch in range(3):
        seen = [cid for t in range(1, 7) for cid in batch_for_step(train, epoch * 6 + t, cfg)]
        assert sorted(seen) == sorted(train)
    assert batch_for_step(train, 1, cfg) == batch_for_step(list(reversed(train)), 1, cfg)
    assert batch_for_step(train, 1, cfg) != batch_for_step(train, 7, cfg)
    assert batch_for_step(train, 1, cfg) != batch_for_step(train, 1, OptimizeConfig(seed=1))
    assert len(batch_for_step(train[:3], 2, cfg)) == 3


def test_splits_are_stable_exact_and_order_independent() -> None:
    ids = [f"case-{i}" for i in range(50)]
    a = split_cases(ids, (0.4, 0.3, 0.3), seed=0)
    shuffled = ids[:]
    random.Random(7).shuffle(shuffled)
    b = split_cases(shuffled, (0.4, 0.3, 0.3), seed=0)
    assert set(a.train) == set(b.train) and set(a.eval) == set(b.eval)
    assert a.sizes() == (20, 15, 15)
    assert set(a.train) | set(a.eval) | set(a.test) == set(ids)
    assert not set(a.train) & set(a.eval) and not set(a.eval) & set(a.test)
    assert list(a.train) == [i for i in ids if i in a.train]  # suite order kept
    assert split_cases(ids, (0.4, 0.3, 0.3), seed=1) != a
    # golden values: sha256 ranking, the same on every machine and Python hash seed
    assert split_cases(["a", "b", "c", "d", "e"], (0.4, 0.3, 0.3), 0).to_dict() == {
        "train": ["a", "d"],
        "eval": ["b", "c"],
        "test": ["e"],
    }


def test_adding_a_case_moves_few_others() -> None:
    ids = [f"case-{i}" for i in range(60)]
    before = split_cases(ids, (0.4, 0.3, 0.3))
    after = split_cases([*ids, "case-new"], (0.4, 0.3, 0.3))
    moved = sum(
        1
        for cid in ids
        if (cid in before.train, cid in before.eval) != (cid in after.train, cid in after.eval)
    )
    assert moved <= 2


def test_every_split_non_empty_from_three_cases() -> None:
    s = split_cases(["x", "y", "z"], (0.8, 0.1, 0.1))
    assert s.sizes() == (1, 1, 1)
    s = split_cases([f"c{i}" for i in range(4)], (0.9, 0.05, 0.05))
    assert all(n >= 1 for n in s.sizes()) and sum(s.sizes()) == 4
    with pytest.raises(SuiteError, match="at least 3 cases"):
        split_cases(["x", "y"], (0.4, 0.3, 0.3))
    with pytest.raises(SuiteError, match="unique"):
        split_cases(["x", "x", "y"], (0.4, 0.3, 0.3))


def test_estimate_counts_calls_per_preset() -> None:
    gpo = estimate_calls(OptimizeConfig(), n_eval=36, n_test=36, n_train=48, total=18)
    assert gpo.optimizer_calls == 18 and gpo.reflection_calls == 0
    assert gpo.completions == 18 * 8
    # the final: both prompts on test, and on train up to 5 (the initial + 4 tied on eval)
    assert gpo.task_calls_max == 36 + 18 * 8 * 36 + 2 * 36 + 5 * 48
    assert "18 steps" in gpo.summary()
    apo = estimate_calls(OptimizeConfig.from_mapping({"preset": "apo"}), 36, 36, 48, 18, repeats=2)
    assert apo.reflection_calls == 18
    assert apo.task_calls_per_step == (8 * 36 + 8) * 2
