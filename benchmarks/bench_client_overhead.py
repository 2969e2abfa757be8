"""The client's own per-call CPU, and what its two speed changes buy.

``LiteLLMClient.complete`` at zero latency, concurrency 32, ``--calls`` distinct requests per
round, ``--rounds`` rounds, each variant in its own fresh process (alternating, ``--processes``
each), CPU time per call and garbage-collector time per call (``gc.callbacks``) of the median
round, and the time spent pricing each response (``pricing.response_cost``). Variants:

- ``as shipped``;
- ``without gc.freeze``: litellm's ~300,000 import-time objects stay in the collector's care;
- ``without either``: also re-prices every response whose price litellm did not know (the
  former ``response_cost``, which asked ``litellm.completion_cost`` again);
- ``priced model``: as shipped, but the model is ``openai/gpt-4o-mini``, which litellm can
  price (the others use ``openai/bench``, whose failed price lookup costs litellm ~0.3 ms more);
- ``litellm logging knobs``: as shipped plus the litellm settings that look as if they would
  save work but do not (``turn_off_message_logging``, ``disable_end_user_cost_tracking``, the
  ``no-log`` kwarg); see :func:`pytest_gpo.llm.setup.import_litellm`.

A last row is pytest-gpo's own cost per case in ``evaluate()`` with no model at all.

    .venv/bin/python benchmarks/bench_client_overhead.py [--calls 1000] [--variants A,B]
        [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import resource
import statistics
import sys
import time
from typing import Any

import harness

VARIANTS = (
    "as shipped",
    "without gc.freeze",
    "without either",
    "priced model",
    "litellm logging knobs",
)
PRICED_MODEL = "openai/gpt-4o-mini"


def _old_response_cost(litellm: Any, response: Any) -> float | None:
    # The behaviour before: a hidden cost of None fell through to completion_cost().
    hidden = getattr(response, "_hidden_params", None)
    if isinstance(hidden, dict):
        known = hidden.get("response_cost")
        if isinstance(known, int | float) and not isinstance(known, bool) and known >= 0:
            return float(known)
    try:
        cost = litellm.completion_cost(completion_response=response)
    except Exception:
        return None
    if isinstance(cost, int | float) and not isinstance(cost, bool) and math.isfinite(cost):
        return float(cost)
    return None


def child(variant: str, calls: int, rounds: int, base_url: str) -> dict[str, Any]:
    """Measure one variant in this (fresh) process."""
    os.environ.setdefault("OPENAI_API_KEY", harness.BENCH_KEY)
    if variant in ("without gc.freeze", "without either"):
        gc.freeze = lambda: None
    from pytest_gpo.llm import client as client_module
    from pytest_gpo.llm import pricing as pricing_module
    from pytest_gpo.llm.loop import EventLoopRunner
    from pytest_gpo.llm.setup import import_litellm
    from pytest_gpo.llm.types import Request

    pricing = _old_response_cost if variant == "without either" else pricing_module.response_cost
    cost_seconds = [0.0]

    def timed_pricing(litellm: Any, response: Any) -> float | None:
        start = time.perf_counter()
        try:
            return pricing(litellm, response)
        finally:
            cost_seconds[0] += time.perf_counter() - start

    pricing_module.response_cost = timed_pricing
    litellm = import_litellm()
    model = PRICED_MODEL if variant == "priced model" else harness.BENCH_MODEL
    if variant == "litellm logging knobs":
        litellm.turn_off_message_logging = True
        litellm.disable_end_user_cost_tracking = True
        shipped_kwargs = client_module.LiteLLMClient._kwargs

        def no_log_kwargs(self: Any, request: Any) -> dict[str, Any]:
            kwargs: dict[str, Any] = shipped_kwargs(self, request)
            kwargs["no-log"] = True
            return kwargs

        client_module.LiteLLMClient._kwargs = no_log_kwargs  # type: ignore[method-assign]
    gc_seconds = [0.0]
    started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            gc_seconds[0] += time.perf_counter() - started[0]

    results = []
    with EventLoopRunner() as runner:
        for r in range(rounds + 1):
            client = client_module.LiteLLMClient(cache_mode="off", concurrency=32)

            async def go(tag: int, client: Any = client) -> None:
                await asyncio.gather(
                    *(
                        client.complete(
                            Request(
                                model=model,
                                messages=({"role": "user", "content": f"{variant} {tag} {i}"},),
                                params={"api_base": base_url},
                            )
                        )
                        for i in range(calls if tag else 16)
                    )
                )

            if r == 0:
                runner.run(go(0))  # warm-up
                gc.callbacks.append(on_gc)
                continue
            usage = resource.getrusage(resource.RUSAGE_SELF)
            cpu = usage.ru_utime + usage.ru_stime
            gc_seconds[0] = cost_seconds[0] = 0.0
            start = time.perf_counter()
            runner.run(go(r))
            seconds = time.perf_counter() - start
            usage = resource.getrusage(resource.RUSAGE_SELF)
            results.append(
                {
                    "cpu_ms": 1000 * (usage.ru_utime + usage.ru_stime - cpu) / calls,
                    "gc_ms": 1000 * gc_seconds[0] / calls,
                    "pricing_ms": 1000 * cost_seconds[0] / calls,
                    "calls_per_s": calls / seconds,
                }
            )
            runner.run(client.aclose())
    return {"variant": variant, "rounds": results}


def evaluate_only(cases: int, rounds: int) -> dict[str, Any]:
    """pytest-gpo's own per-case cost in evaluate(): an in-memory client answers instantly.

    Rendering, the request and its cache key, scoring and result objects: everything a case
    costs apart from the model call.
    """
    from pytest_gpo.evaluate import EvalOptions, evaluate
    from pytest_gpo.llm.types import Completion, Request, Usage
    from pytest_gpo.scorers.registry import builtin_registry
    from pytest_gpo.suites.load import load_suite

    class Instant:
        usage = Usage()

        async def complete(self, request: Request) -> Completion:
            request.cache_key()
            return Completion(texts=("billing",), prompt_tokens=20, completion_tokens=1)

        async def aclose(self) -> None:
            return None

    with harness.workdir("evaluate-only") as tmp:
        suite = load_suite(harness.write_suite(tmp, "bench", cases=cases), builtin_registry())
        timings = []
        for _ in range(rounds + 1):
            start = time.process_time()
            asyncio.run(evaluate(suite, Instant(), EvalOptions(model=harness.BENCH_MODEL)))
            timings.append(1000 * (time.process_time() - start) / cases)
    return {
        "variant": "evaluate() alone (instant client, no litellm)",
        "cpu_ms_per_call": round(statistics.median(timings[1:]), 3),
        "gc_ms_per_call": "",
        "pricing_ms_per_call": "",
        "calls_per_s": "",
        "cpu_vs_shipped": "",
        "rounds": rounds,
    }


def main() -> None:
    """Alternate fresh processes per variant; report medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="comma-separated subset of: " + ", ".join(VARIANTS),
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    harness.common_args(parser)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.calls, args.rounds, args.base_url)))
        return

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown or "as shipped" not in variants:
        parser.error(f"--variants must include 'as shipped' and name only {VARIANTS}")
    measured: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    with harness.ServerProcess() as server:
        for _ in range(args.processes):
            for variant in variants:
                run = harness.check(
                    harness.run_child(
                        [
                            harness.PYTHON,
                            __file__,
                            "--child",
                            variant,
                            "--calls",
                            str(args.calls),
                            "--rounds",
                            str(args.rounds),
                            "--base-url",
                            server.base_url,
                        ],
                        cwd=harness.BENCH_DIR,
                        probe=False,
                    ),
                    variant,
                )
                measured[variant] += json.loads(run.stdout.strip().splitlines()[-1])["rounds"]
                print(variant, measured[variant][-1], file=sys.stderr, flush=True)
    rows = []
    base = statistics.median(r["cpu_ms"] for r in measured["as shipped"])
    for variant, rounds in measured.items():
        cpu = statistics.median(r["cpu_ms"] for r in rounds)
        rows.append(
            {
                "variant": variant,
                "cpu_ms_per_call": round(cpu, 3),
                "gc_ms_per_call": round(statistics.median(r["gc_ms"] for r in rounds), 3),
                "pricing_ms_per_call": round(statistics.median(r["pricing_ms"] for r in rounds), 3),
                "calls_per_s": round(statistics.median(r["calls_per_s"] for r in rounds)),
                "cpu_vs_shipped": round(cpu / base, 3),
                "rounds": len(rounds),
            }
        )
    rows.append(evaluate_only(args.calls, args.rounds))
    harness.table(
        "LiteLLMClient per-call CPU (zero latency, concurrency 32)",
        rows,
        notes=[
            f"medians over {args.processes} processes x {args.rounds} rounds of {args.calls} calls "
            "per variant; processes alternate between variants."
        ],
    )
    harness.write_json(
        args.json, "client_overhead", {"args": vars(args), "rows": rows, "measured": measured}
    )


if __name__ == "__main__":
    main()
