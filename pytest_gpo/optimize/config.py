"""GPO settings of one suite: the ``optimize:`` mapping of a suite file, validated.

Defaults reproduce the paper (GPO.md, "Defaults that reproduce the paper"). A ``preset``
(:mod:`pytest_gpo.optimize.presets`) changes the defaults; keys written explicitly override the
preset. Every bad key or value is a :class:`~pytest_gpo.errors.SuiteError` naming the key and,
for a misspelt key, the closest valid one.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pytest_gpo.errors import SuiteError
from pytest_gpo.optimize.presets import PRESETS

Retrieval = Literal["relevance", "recency", "importance", "none"]
Schedule = Literal["cosine", "linear", "fixed", "none"]
Update = Literal["generation", "edit"]

RETRIEVALS: tuple[str, ...] = ("relevance", "recency", "importance", "none")
SCHEDULES: tuple[str, ...] = ("cosine", "linear", "fixed", "none")
UPDATES: tuple[str, ...] = ("generation", "edit")

# experiments and selection (F)
Racing = Literal["on", "off"]
#: ``exact``, the name of today's ``on`` when ``on`` also ran a statistical test, is read as
#: ``on`` (and not offered)
RACINGS: tuple[str, ...] = ("on", "off")

#: Settings that existed once, with what to do about them.
REMOVED = {
    "race_delta": "racing makes no error now, so it has no error rate: delete race_delta",
}
#: Optimizer request parameters when a suite sets none (the reference code's: GPO.md).
#: ``temperature`` comes from the ``temperature`` key (default 1.0) unless the mapping sets it.
DEFAULT_OPTIMIZER_PARAMS: Mapping[str, Any] = {"max_tokens": 512}

#: Keys that change what a run computes. The caps only decide when a run stops, so raising
#: them lets an interrupted run resume from its checkpoint.
_NON_TRAJECTORY_KEYS = frozenset({"max_calls", "max_cost"})


@dataclass(frozen=True)
class OptimizeConfig:
    """Validated GPO settings. Build it with :meth:`from_mapping`; :meth:`replace` re-validates.

    ``splits`` are the train/eval/test fractions (positive, normalized to sum to 1).
    ``steps`` overrides ``epochs x steps_per_epoch``. ``max_words``/``min_words`` are the
    budget's n_max/n_min. ``min_gain`` is the held-out gain a rewrite must exceed (strictly);
    with ``use_paired_test`` the gain must also be significant at ``alpha``. ``examples`` is the
    number of task examples shown in the meta-prompt. ``max_calls``/``max_cost`` are the caps
    the client enforces; the loop uses them to stop early enough to keep the calls the
    held-out test needs. ``optimizer_params`` are the litellm parameters of optimizer requests
    (``max_tokens`` required, ``temperature`` kept equal to ``temperature``);
    ``example_tokens`` / ``reflection_tokens`` bound the meta-prompt's case values and a
    reflection request's failing cases; ``embedding_model`` is relevance retrieval's
    sentence-transformers model (``None``: the bundled one); ``momentum`` is how many earlier
    feedbacks an optimizer request shows (SGDM). ``written`` is not a setting: it holds the keys
    given explicitly, before the preset's defaults, so :meth:`with_overrides` can put a new
    preset beneath them.
    """

    preset: str = "gpo"
    splits: tuple[float, float, float] = (0.4, 0.3, 0.3)
    epochs: int = 3
    batch_size: int = 8
    steps: int | None = None
    retrieval: Retrieval = "relevance"
    k: int = 3
    schedule: Schedule = "cosine"
    max_words: int = 50
    min_words: int = 10
    warmup: int = 0
    update: Update = "generation"
    reflection: bool = False
    candidates: int = 8
    temperature: float = 1.0
    min_gain: float = 0.0
    use_paired_test: bool = False
    alpha: float = 0.05
    examples: int = 3
    seed: int = 0
    optimizer_model: str | None = None
    max_calls: int | None = None
    max_cost: float | None = None
    # experiments and selection (F): see docs/optimize.md, "Repeatable experiments" and "Racing"
    optimizer_seed: int | None = None
    runs: int = 1
    racing: Racing = "on"
    # optimizer requests (E): parameters of optimizer/reflection requests, the meta-prompt's
    # size budgets, the embedding model of relevance retrieval, SGDM's feedback momentum
    optimizer_params: Mapping[str, Any] = field(
        default_factory=lambda: dict(DEFAULT_OPTIMIZER_PARAMS), hash=False
    )
    example_tokens: int = 400
    reflection_tokens: int = 3000
    embedding_model: str | None = None
    momentum: int = 0
    written: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check(self, None)

    @classmethod
    def setting_names(cls) -> tuple[str, ...]:
        """The keys an ``optimize:`` mapping may contain."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.name != "written")

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, Any] | None, *, where: str | Path | None = None
    ) -> OptimizeConfig:
        """Validate a suite's ``optimize:`` mapping: the preset first, then the mapping's keys.

        ``where`` (the suite file) is named in errors.
        """
        return cls._resolve(mapping, None, where)

    def with_overrides(
        self, overrides: Mapping[str, Any], *, where: str | Path | None = None
    ) -> OptimizeConfig:
        """These settings with ``overrides`` (e.g. command-line values) on top, validated.

        The settings are resolved again as by :meth:`from_mapping`: the preset (an overriding
        one included), then the keys written explicitly, then ``overrides`` (entries whose
        value is ``None`` are ignored). ``where`` (the suite file) is named in errors.
        """
        return self._resolve(self.written, overrides, where)

    @classmethod
    def _resolve(
        cls,
        mapping: Mapping[str, Any] | None,
        overrides: Mapping[str, Any] | None,
        where: str | Path | None,
    ) -> OptimizeConfig:
        merged: dict[str, Any] = {}
        for source in (mapping or {}, overrides or {}):
            if not isinstance(source, Mapping):
                raise SuiteError(
                    f"'optimize' must be a mapping of settings, got {type(source).__name__}",
                    path=where,
                    key="optimize",
                    fix="write e.g. optimize: {steps: 12, candidates: 8}",
                )
            for key, value in source.items():
                if source is overrides and value is None:
                    continue
                merged[str(key)] = value
        valid = cls.setting_names()
        for key in merged:
            if key in REMOVED:
                raise SuiteError(
                    f"the optimize setting '{key}' was removed",
                    path=where,
                    key=f"optimize.{key}",
                    fix=REMOVED[key],
                )
            if key not in valid:
                close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise SuiteError(
                    f"unknown optimize setting '{key}'",
                    path=where,
                    key=f"optimize.{key}",
                    fix=f"{hint}valid settings: {', '.join(valid)}",
                )
        preset = merged.get("preset", "gpo")
        if not isinstance(preset, str) or preset not in PRESETS:
            close = difflib.get_close_matches(str(preset), list(PRESETS), n=1, cutoff=0.5)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise SuiteError(
                f"unknown preset {preset!r}",
                path=where,
                key="optimize.preset",
                fix=f"{hint}presets: {', '.join(PRESETS)}",
            )
        values: dict[str, Any] = dict(PRESETS[str(preset)])
        values.update(merged)
        values["written"] = merged
        values["optimizer_params"] = _optimizer_params(mapping, overrides, values, where)
        if "splits" in values:
            values["splits"] = _parse_splits(values["splits"], where)
        for name in ("temperature", "min_gain", "alpha", "max_cost"):
            if isinstance(values.get(name), int) and not isinstance(values[name], bool):
                # an integer too large for a float is as unusable as .inf: refused as one
                values[name] = float(values[name]) if abs(values[name]) < 2**1023 else math.inf
        try:
            return cls(**values)
        except SuiteError as exc:
            raise SuiteError(exc.message, path=where, key=exc.key, fix=exc.fix) from None

    def replace(self, **changes: Any) -> OptimizeConfig:
        """A copy with ``changes`` applied and validated (no preset re-applied)."""
        if "temperature" in changes and "optimizer_params" not in changes:
            changes["optimizer_params"] = {
                **self.optimizer_params,
                "temperature": changes["temperature"],
            }
        return dataclasses.replace(self, written={**self.written, **changes}, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able settings."""
        data = {name: getattr(self, name) for name in self.setting_names()}
        data["splits"] = list(self.splits)
        data["optimizer_params"] = dict(self.optimizer_params)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OptimizeConfig:
        """Inverse of :meth:`to_dict` (no preset re-applied: every key is explicit there)."""
        values = {k: v for k, v in data.items() if k in cls.setting_names()}
        if isinstance(values.get("optimizer_params"), Mapping):
            values["optimizer_params"] = dict(values["optimizer_params"])
        if "splits" in values:
            values["splits"] = tuple(float(x) for x in values["splits"])
        return cls(**values, written=dict(values))

    @property
    def sampling_seed(self) -> int:
        """The optimizer's sampling seed: ``optimizer_seed``, or ``seed`` when it is unset."""
        return self.seed if self.optimizer_seed is None else self.optimizer_seed

    def fingerprint_dict(self) -> dict[str, Any]:
        """The settings that change what a run computes (checkpoints must match on them)."""
        return {k: v for k, v in self.to_dict().items() if k not in _NON_TRAJECTORY_KEYS}


def _optimizer_params(
    mapping: Mapping[str, Any] | None,
    overrides: Mapping[str, Any] | None,
    values: Mapping[str, Any],
    where: str | Path | None,
) -> dict[str, Any]:
    """The defaults, then ``temperature:``, then the suite's and the overrides' mappings, merged
    key by key (``--gpo-optimizer-params '{"max_tokens": 1024}'`` keeps the suite's others)."""
    params: dict[str, Any] = dict(DEFAULT_OPTIMIZER_PARAMS)
    if "temperature" in values:
        params["temperature"] = values["temperature"]
    for source in (mapping or {}, overrides or {}):
        given = source.get("optimizer_params") if isinstance(source, Mapping) else None
        if given is None:
            continue
        if not isinstance(given, Mapping) or not all(isinstance(k, str) for k in given):
            raise SuiteError(
                "'optimizer_params' must be a mapping of litellm parameters, got "
                f"{type(given).__name__}",
                path=where,
                key="optimize.optimizer_params",
                fix="write e.g. optimizer_params: {max_tokens: 512, temperature: 1.0}",
            )
        params.update(given)
    return params


def _parse_splits(value: Any, where: str | Path | None) -> tuple[float, float, float]:
    fix = "write splits: {train: 0.4, eval: 0.3, test: 0.3} (or a list [0.4, 0.3, 0.3])"
    raw: list[Any]
    if isinstance(value, Mapping):
        unknown = set(value) - {"train", "eval", "test"}
        missing = {"train", "eval", "test"} - set(value)
        if unknown or missing:
            what = f"unknown {sorted(unknown)}" if unknown else f"missing {sorted(missing)}"
            raise SuiteError(
                f"splits needs train, eval and test fractions ({what})",
                path=where,
                key="optimize.splits",
                fix=fix,
            )
        raw = [value["train"], value["eval"], value["test"]]
    elif isinstance(value, list | tuple) and len(value) == 3:
        raw = list(value)
    else:
        raise SuiteError(
            f"splits must give train, eval and test fractions, got {value!r}",
            path=where,
            key="optimize.splits",
            fix=fix,
        )
    numbers: list[float] = []
    for x in raw:
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x) or x <= 0:
            raise SuiteError(
                f"every split fraction must be a positive finite number, got {x!r}",
                path=where,
                key="optimize.splits",
                fix=fix + "; the test split guards the write-back, so none may be 0",
            )
        numbers.append(float(x))
    total = sum(numbers)
    return (numbers[0] / total, numbers[1] / total, numbers[2] / total)


def _fail(where: str | Path | None, key: str, message: str, fix: str) -> SuiteError:
    return SuiteError(message, path=where, key=f"optimize.{key}", fix=fix)


def _int(
    config: OptimizeConfig,
    name: str,
    where: str | Path | None,
    *,
    minimum: int,
    optional: bool = False,
) -> None:
    value = getattr(config, name)
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(
            where,
            name,
            f"'{name}' must be an integer >= {minimum}, got {value!r}",
            f"set {name} to a whole number of at least {minimum}",
        )


def _float(
    config: OptimizeConfig,
    name: str,
    where: str | Path | None,
    *,
    low: float,
    high: float | None = None,
    optional: bool = False,
) -> None:
    value = getattr(config, name)
    if optional and value is None:
        return
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and value >= low
        and (high is None or value <= high)
    )
    if not ok:
        span = f"between {low} and {high}" if high is not None else f">= {low}"
        raise _fail(
            where,
            name,
            f"'{name}' must be a finite number {span}, got {value!r}",
            f"set {name} {span}",
        )


def _choice(
    config: OptimizeConfig, name: str, choices: tuple[str, ...], where: str | Path | None
) -> None:
    value = getattr(config, name)
    if value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.5)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise _fail(
            where,
            name,
            f"'{name}' must be one of {', '.join(choices)}, got {value!r}",
            f"{hint}use one of {', '.join(choices)}",
        )


def _check(config: OptimizeConfig, where: str | Path | None) -> None:
    if config.preset not in PRESETS:
        _choice(config, "preset", tuple(PRESETS), where)
    splits = config.splits
    if (
        not isinstance(splits, tuple)
        or len(splits) != 3
        or any(
            isinstance(x, bool) or not isinstance(x, int | float) or not 0 < x < math.inf
            for x in splits
        )
    ):
        raise _fail(
            where,
            "splits",
            f"splits must be three positive fractions, got {splits!r}",
            "write splits: {train: 0.4, eval: 0.3, test: 0.3}",
        )
    if abs(sum(splits) - 1.0) > 1e-6:
        object.__setattr__(config, "splits", _parse_splits(list(splits), where))
    _int(config, "epochs", where, minimum=1)
    _int(config, "batch_size", where, minimum=1)
    _int(config, "steps", where, minimum=1, optional=True)
    _int(config, "k", where, minimum=1)
    _int(config, "max_words", where, minimum=1)
    _int(config, "min_words", where, minimum=1)
    _int(config, "warmup", where, minimum=0)
    _int(config, "candidates", where, minimum=1)
    _int(config, "examples", where, minimum=0)
    _int(config, "seed", where, minimum=0)
    _int(config, "max_calls", where, minimum=1, optional=True)
    _choice(config, "retrieval", RETRIEVALS, where)
    _choice(config, "schedule", SCHEDULES, where)
    _choice(config, "update", UPDATES, where)
    _float(config, "temperature", where, low=0.0, high=2.0)
    _float(config, "min_gain", where, low=0.0, high=1.0)
    _float(config, "alpha", where, low=0.0, high=1.0)
    _float(config, "max_cost", where, low=0.0, optional=True)
    for name in ("reflection", "use_paired_test"):
        if not isinstance(getattr(config, name), bool):
            raise _fail(
                where,
                name,
                f"'{name}' must be true or false, got {getattr(config, name)!r}",
                f"set {name}: true or {name}: false",
            )
    if config.min_words > config.max_words:
        raise _fail(
            where,
            "min_words",
            f"min_words ({config.min_words}) is larger than max_words ({config.max_words})",
            "the budget decays from max_words down to min_words; swap them",
        )
    # experiments and selection (F)
    _int(config, "optimizer_seed", where, minimum=0, optional=True)
    _int(config, "runs", where, minimum=1)
    if isinstance(config.racing, bool):
        # YAML 1.1 reads a bare on/off as true/false: "racing: off" means what it says
        object.__setattr__(config, "racing", "on" if config.racing else "off")
    if config.racing == "exact":  # type: ignore[comparison-overlap]
        object.__setattr__(config, "racing", "on")
    _choice(config, "racing", RACINGS, where)
    _check_optimizer_requests(config, where)
    model = config.optimizer_model
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise _fail(
            where,
            "optimizer_model",
            f"'optimizer_model' must be a litellm model name, got {model!r}",
            "write e.g. optimizer_model: openai/gpt-4o-mini",
        )


#: Request parameters the optimizer loop manages itself.
_MANAGED_PARAMS = ("n", "stream", "messages", "model")


def _check_optimizer_requests(config: OptimizeConfig, where: str | Path | None) -> None:
    """The ``# optimizer requests (E)`` keys: bounded requests, sane budgets."""
    params = config.optimizer_params
    fix = "write e.g. optimizer_params: {max_tokens: 512, temperature: 1.0}"
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise _fail(where, "optimizer_params", "'optimizer_params' must be a mapping", fix)
    for name in _MANAGED_PARAMS:
        if name in params:
            raise _fail(
                where,
                f"optimizer_params.{name}",
                f"'optimizer_params.{name}' is managed by pytest-gpo",
                "remove it; 'candidates' sets the number of completions a step",
            )
    limit = params.get("max_completion_tokens", params.get("max_tokens"))
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise _fail(
            where,
            "optimizer_params.max_tokens",
            f"optimizer requests need a positive integer max_tokens, got {limit!r}",
            "every optimizer call must be bounded: set optimizer_params: {max_tokens: 512}",
        )
    temperature = params.get("temperature", config.temperature)
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not 0 <= temperature <= 2
    ):
        raise _fail(
            where,
            "optimizer_params.temperature",
            f"optimizer temperature must be a number between 0 and 2, got {temperature!r}",
            fix,
        )
    object.__setattr__(config, "optimizer_params", {**params, "temperature": float(temperature)})
    object.__setattr__(config, "temperature", float(temperature))
    _int(config, "example_tokens", where, minimum=16)
    _int(config, "reflection_tokens", where, minimum=64)
    _int(config, "momentum", where, minimum=0)
    model = config.embedding_model
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise _fail(
            where,
            "embedding_model",
            f"'embedding_model' must be a sentence-transformers model name or folder, got "
            f"{model!r}",
            "write e.g. embedding_model: ./models/all-mpnet-base-v2 (or leave it out for the "
            "bundled all-MiniLM-L6-v2)",
        )
