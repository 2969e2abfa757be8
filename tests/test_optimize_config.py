"""OptimizeConfig: defaults, presets, explicit keys over presets, errors with "did you mean"."""

from __future__ import annotations

import pytest

from pytest_gpo.errors import SuiteError
from pytest_gpo.optimize.config import OptimizeConfig


def test_defaults_reproduce_the_paper() -> None:
    cfg = OptimizeConfig.from_mapping({})
    assert cfg == OptimizeConfig()
    assert (cfg.preset, cfg.retrieval, cfg.schedule, cfg.update) == (
        "gpo",
        "relevance",
        "cosine",
        "generation",
    )
    assert (cfg.k, cfg.max_words, cfg.min_words, cfg.candidates) == (3, 50, 10, 8)
    assert (cfg.epochs, cfg.batch_size, cfg.temperature, cfg.warmup) == (3, 8, 1.0, 0)
    assert cfg.splits == (0.4, 0.3, 0.3)
    assert cfg.min_gain == 0.0 and cfg.use_paired_test is False and not cfg.reflection


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("ape", {"retrieval": "none", "schedule": "none", "update": "generation"}),
        ("apo", {"retrieval": "none", "schedule": "none", "update": "edit", "reflection": True}),
        ("opro", {"retrieval": "importance", "schedule": "none", "update": "generation"}),
        ("pe2", {"retrieval": "recency", "schedule": "fixed", "max_words": 30, "reflection": True}),
        ("gpo", {"retrieval": "relevance", "schedule": "cosine", "reflection": False}),
    ],
)
def test_presets_set_defaults(preset: str, expected: dict[str, object]) -> None:
    cfg = OptimizeConfig.from_mapping({"preset": preset})
    for key, value in expected.items():
        assert getattr(cfg, key) == value, key


def test_explicit_keys_override_the_preset_and_overrides_win() -> None:
    cfg = OptimizeConfig.from_mapping({"preset": "pe2", "max_words": 20, "steps": 4})
    cfg = cfg.with_overrides({"steps": 9, "candidates": None, "seed": 3})
    assert cfg.retrieval == "recency" and cfg.max_words == 20
    assert cfg.steps == 9 and cfg.candidates == 8 and cfg.seed == 3


def test_unknown_key_suggests_the_closest() -> None:
    with pytest.raises(SuiteError) as info:
        OptimizeConfig.from_mapping({"candiates": 4}, where="suites/router.gpo.yaml")
    err = info.value
    assert err.key == "optimize.candiates"
    assert err.path == "suites/router.gpo.yaml"
    assert err.fix is not None and "did you mean 'candidates'" in err.fix


def test_bad_values_name_their_key() -> None:
    with pytest.raises(SuiteError) as info:
        OptimizeConfig.from_mapping({"retrieval": "relevence"}, where="a.gpo.yaml")
    assert info.value.key == "optimize.retrieval"
    assert info.value.fix is not None and "relevance" in info.value.fix
    assert info.value.path == "a.gpo.yaml"
    with pytest.raises(SuiteError, match="preset"):
        OptimizeConfig.from_mapping({"preset": "gpo2"})
    with pytest.raises(SuiteError) as info:
        OptimizeConfig.from_mapping({"batch_size": 0})
    assert info.value.key == "optimize.batch_size"
    with pytest.raises(SuiteError):
        OptimizeConfig.from_mapping({"candidates": True})
    with pytest.raises(SuiteError, match="min_words"):
        OptimizeConfig.from_mapping({"min_words": 60})
    with pytest.raises(SuiteError, match="true or false"):
        OptimizeConfig.from_mapping({"use_paired_test": "yes"})
    with pytest.raises(SuiteError, match="mapping"):
        OptimizeConfig.from_mapping(["steps"])  # type: ignore[arg-type]


def test_splits_as_mapping_or_list_are_normalized() -> None:
    cfg = OptimizeConfig.from_mapping({"splits": {"train": 2, "eval": 1, "test": 1}})
    assert cfg.splits == (0.5, 0.25, 0.25)
    assert OptimizeConfig.from_mapping({"splits": [0.6, 0.2, 0.2]}).splits == (0.6, 0.2, 0.2)
    with pytest.raises(SuiteError, match="missing"):
        OptimizeConfig.from_mapping({"splits": {"train": 0.5, "eval": 0.5}})
    with pytest.raises(SuiteError, match="positive"):
        OptimizeConfig.from_mapping({"splits": [0.5, 0.5, 0]})


def test_dict_round_trip_and_replace_validates() -> None:
    cfg = OptimizeConfig.from_mapping({"preset": "opro", "max_calls": 100, "max_cost": 2})
    assert OptimizeConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.max_cost == 2.0
    assert "max_calls" not in cfg.fingerprint_dict()
    assert cfg.replace(steps=5).steps == 5
    with pytest.raises(SuiteError):
        cfg.replace(k=0)


def test_an_overriding_preset_goes_beneath_the_keys_written() -> None:
    cfg = OptimizeConfig.from_mapping({"max_words": 20}).with_overrides({"preset": "pe2"})
    assert cfg.preset == "pe2" and cfg.retrieval == "recency" and cfg.max_words == 20
    with pytest.raises(SuiteError) as info:
        cfg.with_overrides({"steps": 0}, where="a.gpo.yaml")
    assert info.value.path == "a.gpo.yaml" and info.value.key == "optimize.steps"
