"""Racing a step's candidates vs scoring each on all of eval: task calls, same write-back, test.

For each suite of the frozen example project (``tests/fixtures/support_desk``) and each seed,
one optimization runs with ``racing: off`` and one with ``racing: on`` (the default),
otherwise at the default settings (preset ``gpo``: 8 candidates, steps from the split; the
suites' own ``optimize:`` mappings are ignored). The simulated models are called in-process
(``sim.simulate``) behind a client that answers a repeated identical request from memory, like
the response cache, and counts the task-model requests it really answers: that counter is the
measurement, not an estimate. Relevance retrieval uses a hashing bag-of-words embedder (the
embedding model is not what is measured, and both modes get the same one).

Per suite: task calls made during the steps per step (mean over seeds) both ways and the
reduction, the fraction of seeds that write back the same prompt (the prompt file's content
after the run: the best prompt when accepted, else the initial one), and the mean held-out
(test split) score of what is written back.

    .venv/bin/python benchmarks/bench_racing.py [--seeds 20]
        [--suites ticket_router,contact_extraction,order_total] [--width 8]
        [--json PATH]

``--width`` is the client's concurrency (``--gpo-concurrency``, default 8): a race round scores
that many calls' worth of cases. The table also gives the rounds of calls a step waits for one
after the other (full evaluation: the step's calls / width, as the client queues them).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tabulate import tabulate  # noqa: E402

from pytest_gpo import sim  # noqa: E402
from pytest_gpo.evaluate import EvalOptions, evaluate  # noqa: E402
from pytest_gpo.llm.types import Completion, Request, Usage  # noqa: E402
from pytest_gpo.optimize import race as race_module  # noqa: E402
from pytest_gpo.optimize import step as step_module  # noqa: E402
from pytest_gpo.optimize.config import OptimizeConfig  # noqa: E402
from pytest_gpo.optimize.loop import optimize  # noqa: E402
from pytest_gpo.optimize.progress import ProgressEvent  # noqa: E402
from pytest_gpo.optimize.result import OptimizationResult  # noqa: E402
from pytest_gpo.results import SuiteRun  # noqa: E402
from pytest_gpo.scorers.registry import builtin_registry  # noqa: E402
from pytest_gpo.suites.load import load_suite  # noqa: E402
from pytest_gpo.suites.model import Suite  # noqa: E402

SUITES_DIR = ROOT / "tests" / "fixtures" / "support_desk" / "suites"
SUITES = ("ticket_router", "contact_extraction", "order_total")


class MemoSimClient:
    """The simulated models in-process; identical requests answered from memory (the cache)."""

    def __init__(self) -> None:
        self.usage = Usage()
        self.memo: dict[str, Completion] = {}
        self.task_calls = 0

    async def complete(self, request: Request) -> Completion:
        key = request.cache_key()
        if key in self.memo:
            return self.memo[key]
        texts = sim.simulate(
            request.model,
            [dict(m) for m in request.messages],
            temperature=request.params.get("temperature"),
            sample=request.sample,
            n=request.n,
        )
        completion = Completion(texts=tuple(texts), prompt_tokens=1, completion_tokens=1)
        if request.purpose == "task":
            self.task_calls += 1
        self.usage.add(completion)
        self.memo[key] = completion
        return completion

    async def aclose(self) -> None:
        return None


class BagOfWords:
    """Hashing bag-of-words vectors, L2-normalized."""

    name = "bow"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        rows = []
        for text in texts:
            v = [0.0] * 64
            for word in text.lower().split():
                v[int(hashlib.sha256(word.encode()).hexdigest(), 16) % 64] += 1.0
            norm = math.sqrt(sum(x * x for x in v)) or 1.0
            rows.append([x / norm for x in v])
        return rows


ROUNDS: list[int] = []
_race = step_module.race


async def _counting_race(*args: Any, **kwargs: Any) -> Any:
    out = await _race(*args, **kwargs)
    ROUNDS.append(out.rounds)
    return out


step_module.race = _counting_race  # type: ignore[assignment]


def one_run(suite: Suite, seed: int, racing: str, width: int) -> dict[str, Any]:
    """One optimization of ``suite``; task calls counted at the client."""
    client = MemoSimClient()
    ROUNDS.clear()
    repeat = suite.repeat or 1
    min_pass = suite.min_pass if suite.min_pass is not None else repeat // 2 + 1
    options = EvalOptions(model=sim.TASK_MODEL, repeat=repeat, min_pass=min_pass)
    cases = {c.id: c for c in suite.cases}
    config = OptimizeConfig.from_mapping({"seed": seed, "racing": racing})
    marks: list[int] = []

    async def evaluate_prompt(prompt: str, case_ids: Sequence[str]) -> SuiteRun:
        return await evaluate(
            suite, client, options, prompt_text=prompt, cases=[cases[i] for i in case_ids]
        )

    def on_event(event: ProgressEvent) -> None:
        if event.kind == "step":
            marks.append(client.task_calls)

    result: OptimizationResult = asyncio.run(
        optimize(
            suite_name=suite.name,
            initial_prompt=suite.prompt_text,
            case_ids=list(cases),
            expected_by_id={c.id: (c.expected if c.has_expected else None) for c in suite.cases},
            vars_by_id={c.id: c.vars for c in suite.cases},
            evaluate=evaluate_prompt,
            client=client,
            config=config,
            optimizer_model=sim.OPTIMIZER_MODEL,
            embedder=BagOfWords(),
            progress=on_event,
            repeats=repeat,
            concurrency=width,
        )
    )
    initial_calls = result.split_sizes["eval"] * repeat
    step_calls = (marks[-1] - initial_calls) if marks else 0
    # off: one round of every call a step, which the client runs `width` at a time
    per_step = [b - a for a, b in zip([initial_calls, *marks], marks, strict=False)]
    waves = sum(math.ceil(c / width) for c in per_step)
    rounds = waves if racing == "off" else sum(ROUNDS)
    written = result.best_prompt if result.should_write else result.initial_prompt
    test = result.scores["test"]
    return {
        "steps": len(marks),
        "rounds": rounds,
        "step_calls": step_calls,
        "written": hashlib.sha256(written.encode()).hexdigest()[:12],
        "test_written": test.after if result.should_write else test.before,
        "recorded_saved": result.calls_saved,
        "eval_size": result.split_sizes["eval"],
    }


def bench_suite(name: str, seeds: int, width: int) -> dict[str, Any]:
    """Both modes over ``seeds`` seeds of one suite."""
    suite = load_suite(SUITES_DIR / f"{name}.gpo.yaml", builtin_registry())
    rows: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for seed in range(seeds):
        rows.append(
            (
                one_run(suite, seed, "off", width),
                one_run(suite, seed, "on", width),
            )
        )
    off_per_step = [a["step_calls"] / max(1, a["steps"]) for a, _ in rows]
    on_per_step = [b["step_calls"] / max(1, b["steps"]) for _, b in rows]
    same = sum(1 for a, b in rows if a["written"] == b["written"])
    mean_off, mean_on = statistics.fmean(off_per_step), statistics.fmean(on_per_step)
    return {
        "suite": name,
        "eval cases": rows[0][0]["eval_size"],
        "repeat": suite.repeat or 1,
        "seeds": seeds,
        "steps": rows[0][0]["steps"],
        "task calls/step off": round(mean_off, 1),
        "task calls/step on": round(mean_on, 1),
        "fewer": f"{1 - mean_on / mean_off:.1%}" if mean_off else "",
        "same write-back": f"{same}/{seeds}",
        "rounds/step off": round(
            statistics.fmean(a["rounds"] / max(1, a["steps"]) for a, _ in rows), 1
        ),
        "rounds/step on": round(
            statistics.fmean(b["rounds"] / max(1, b["steps"]) for _, b in rows), 1
        ),
        "test off": round(statistics.fmean(a["test_written"] or 0.0 for a, _ in rows), 4),
        "test on": round(statistics.fmean(b["test_written"] or 0.0 for _, b in rows), 4),
        "_off_calls": sum(a["step_calls"] for a, _ in rows),
        "_on_calls": sum(b["step_calls"] for _, b in rows),
        "_steps": sum(b["steps"] for _, b in rows),
        "_same": same,
        "_reported": sum(b["recorded_saved"] for _, b in rows),
    }


def synthetic(n: int, seeds: int, width: int, k: int = 8) -> dict[str, Any]:
    """Races alone on random fields: ``k`` candidates whose pass rates are drawn from
    0.5-0.9, pass/fail per case, ``n`` eval cases; case scorings against full evaluation."""
    made = full = same = 0
    for seed in range(seeds):
        rng = random.Random(seed)
        rates = [rng.uniform(0.5, 0.9) for _ in range(k)]
        ids = [f"c{i}" for i in range(n)]
        table = {f"p{j}": {c: float(rng.random() < r) for c in ids} for j, r in enumerate(rates)}

        async def score_cases(prompt: str, case_ids: Sequence[str]) -> dict[str, float]:
            return {c: table[prompt][c] for c in case_ids}  # noqa: B023 (awaited in this pass)

        out = asyncio.run(
            race_module.race(list(table), ids, score_cases, mode="on", seed=seed, t=1, width=width)
        )
        means = {p: sum(v.values()) / n for p, v in table.items()}
        pick = max(table, key=lambda p: means[p])  # the first of the best, as the step picks
        raced = max(out.scores, key=lambda p: out.scores[p])
        made, full, same = made + out.case_evals, full + out.full_case_evals, same + (pick == raced)
    return {
        "eval cases": n,
        "candidates": k,
        "seeds": seeds,
        "case scorings, full": full,
        "raced": made,
        "fewer": f"{1 - made / full:.1%}",
        "same pick": f"{same}/{seeds}",
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--suites", default=",".join(SUITES))
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = [bench_suite(s, args.seeds, args.width) for s in args.suites.split(",")]
    off = sum(r["_off_calls"] for r in rows)
    on = sum(r["_on_calls"] for r in rows)
    same = sum(r["_same"] for r in rows)
    reported = sum(r["_reported"] for r in rows)
    runs = args.seeds * len(rows)
    shown = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    print(f"racing: on, width {args.width}, {args.seeds} seeds per suite")
    print(tabulate(shown, headers="keys", tablefmt="github", disable_numparse=True))
    print(
        f"\nall suites: {1 - on / off:.1%} fewer task calls in the steps; same write-back in "
        f"{same}/{runs} runs ({same / runs:.1%}); {time.perf_counter() - started:.0f} s"
    )
    fields = [synthetic(n, 100, args.width) for n in (20, 50, 200)]
    print("\nsynthetic fields (the race alone, 100 seeds each):")
    print(tabulate(fields, headers="keys", tablefmt="github", disable_numparse=True))
    print(
        f"calls saved as the reports say (calls_saved): {reported:,}; as counted at the "
        f"client (off minus on): {off - on:,}"
    )
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {"width": args.width, "rows": rows, "synthetic": fields},
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
