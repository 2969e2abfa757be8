"""The harness's pre-flight: most calls, tokens and cost of a run, before any call.

Call counts are the product's own upper bounds (:func:`pytest_gpo.optimize.estimate.
estimate_calls`) for each optimize run, plus the final scoring of the test cases; the cache,
deduplication and rejected candidates make the real counts lower. Tokens are rough upper
bounds: a task call is its rendered prompt (characters / 4) plus ``max_tokens``; an optimizer
request is a meta-prompt of about 400 tokens plus the shown prompts and 3 examples, answered by
``candidates`` completions of at most 512 tokens (the reference code's limit); a reflection
request shows a train batch with the model's outputs. Prices come from litellm's price
list, else ``--price``; a model without either gives an unknown cost.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bbh_methods import METHODS, unavailable
from bbh_run import RunSettings, prompt_text

OPT_COMPLETION = 512
META_OVERHEAD = 400


@dataclass
class Plan:
    """Totals of the pre-flight estimate over every unit it could plan."""

    units: int = 0
    optimizer_requests: int = 0
    completions: int = 0
    reflection_requests: int = 0
    task_calls: int = 0
    task_tokens: int = 0
    optimizer_tokens: int = 0
    task_cost: float | None = 0.0
    optimizer_cost: float | None = 0.0
    per_unit_task_calls: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    prices: str = ""

    def lines(self) -> list[str]:
        """The pre-flight as printed."""

        def usd(value: float | None) -> str:
            return (
                "unknown (no price: pass --price IN OUT)" if value is None else f"<= ${value:,.2f}"
            )

        cost = f"task model {usd(self.task_cost)}, optimizer {usd(self.optimizer_cost)}"
        out = [
            f"pre-flight: {self.units} runs; at most {self.optimizer_requests} optimizer requests "
            f"({self.completions} completions), {self.reflection_requests} reflection requests, "
            f"{self.task_calls} task calls (fewer with the cache, deduplication and rejections)",
            f"pre-flight: tokens <= {self.task_tokens:,} task + {self.optimizer_tokens:,} "
            f"optimizer; cost {cost} ({self.prices})",
        ]
        for key, calls in self.per_unit_task_calls.items():
            out.append(f"pre-flight: {key}: <= {calls:,} task calls per task and seed")
        out += [f"pre-flight: skipped {s}" for s in self.skipped]
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able copy for results.json."""
        return dict(self.__dict__)


def _price(model: str, given: Sequence[float] | None) -> tuple[float, float] | None:
    """USD per token (input, output): litellm's price, else ``given`` (per million), else None."""
    if model.startswith("gpo-sim/"):
        return 0.0, 0.0
    import litellm

    info = litellm.model_cost.get(model) or litellm.model_cost.get(model.split("/", 1)[-1])
    if info and info.get("input_cost_per_token") is not None:
        return float(info["input_cost_per_token"]), float(info.get("output_cost_per_token") or 0)
    if given is not None:
        return given[0] / 1e6, given[1] / 1e6
    return None


def estimate(
    tasks: Sequence[str],
    methods: Sequence[str],
    seeds: Sequence[int],
    cases: Mapping[str, Sequence[Mapping[str, Any]]],
    settings: RunSettings,
    price: Sequence[float] | None,
) -> Plan:
    """The plan of ``tasks x methods x seeds`` with these settings."""
    from pytest_gpo.optimize.config import OptimizeConfig
    from pytest_gpo.optimize.estimate import estimate_calls, plan_run

    plan = Plan()
    task_price = _price(settings.task_model, price)
    opt_price = _price(settings.optimizer_model, price)
    plan.prices = ", ".join(
        f"{m}: " + ("unknown" if p is None else f"${p[0] * 1e6:g}/${p[1] * 1e6:g} per M tokens")
        for m, p in ((settings.task_model, task_price), (settings.optimizer_model, opt_price))
    )
    n_train, n_eval, n_test = settings.sizes
    for name in methods:
        method = METHODS[name]
        why = unavailable(method)
        if why is not None:
            plan.skipped.append(why)
            continue
        for task in tasks:
            rendered = statistics.fmean(
                len(prompt_text(method.instruction)) + len(c["vars"]["input"]) for c in cases[task]
            )
            call_in = int(rendered / 4) + 1
            calls = n_test
            opt_in = opt_out = refl = reqs = comps = 0
            if method.optimize is not None:
                keys: dict[str, Any] = {**method.optimize, "candidates": settings.candidates}
                if settings.steps is not None:
                    keys["steps"] = settings.steps
                if settings.racing is not None:
                    keys["racing"] = settings.racing
                if settings.predefined_splits:
                    tr, ev, te, steps_train = n_train, n_eval, n_test, n_train
                else:
                    keys["splits"] = [0.4, 0.4, 0.2]
                    ids = [c["id"] for c in cases[task] if c["split"] != "test"]
                    run = plan_run(ids, OptimizeConfig.from_mapping(keys))
                    tr, ev, te = len(run.splits.train), len(run.splits.eval), len(run.splits.test)
                    steps_train = tr
                config = OptimizeConfig.from_mapping(keys)
                from pytest_gpo.optimize.schedule import total_steps

                est = estimate_calls(config, ev, te, tr, total_steps(config, steps_train))
                calls += est.task_calls_max
                reqs, comps, refl = est.optimizer_calls, est.completions, est.reflection_calls
                shown = config.k * 60 + config.examples * (call_in + 20)
                opt_in = (reqs * (META_OVERHEAD + shown)) + refl * (
                    META_OVERHEAD + config.batch_size * (call_in + settings.max_tokens)
                )
                opt_out = comps * OPT_COMPLETION + refl * OPT_COMPLETION
            plan.per_unit_task_calls[name] = max(calls, plan.per_unit_task_calls.get(name, 0))
            n = len(seeds)
            plan.units += n
            plan.optimizer_requests += n * reqs
            plan.completions += n * comps
            plan.reflection_requests += n * refl
            plan.task_calls += n * calls
            plan.task_tokens += n * calls * (call_in + settings.max_tokens)
            plan.optimizer_tokens += n * (opt_in + opt_out)
            if task_price is None:
                plan.task_cost = None
            elif plan.task_cost is not None:
                tokens_in, tokens_out = n * calls * call_in, n * calls * settings.max_tokens
                plan.task_cost += tokens_in * task_price[0] + tokens_out * task_price[1]
            if opt_price is None:
                plan.optimizer_cost = None if reqs else plan.optimizer_cost
            elif plan.optimizer_cost is not None:
                plan.optimizer_cost += n * (opt_in * opt_price[0] + opt_out * opt_price[1])
    return plan
