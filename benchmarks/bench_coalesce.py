"""Identical requests make one call: coalescing in flight, and the cache across suites.

Counted by the server (in its own process, ``--latency`` per answer):

- ``evaluate()``: two identical suites of ``--cases`` cases run at once (``asyncio.gather``) on
  one client with the cache off: the second suite's requests join the first's in flight;
- ``evaluate()``: one suite whose cases repeat ``--distinct`` distinct inputs;
- ``plugin``: ``pytest`` over two suite files asking the same thing (the items run one after
  the other, so with ``--gpo-cache rw`` the second is answered by the cache), over the same
  with ``--gpo-cache off``, and over one suite file with duplicated cases and the cache off.

    .venv/bin/python benchmarks/bench_coalesce.py [--cases 1000] [--distinct 100] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import harness


def _duplicate_cases(path: Path, distinct: int) -> None:
    # Rewrite a generated case file so that case i asks what case i % distinct asks.
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    for i, line in enumerate(lines):
        case = json.loads(line)
        source = json.loads(lines[i % distinct])
        case["vars"], case["expected"] = source["vars"], source["expected"]
        out.append(json.dumps(case))
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def main() -> None:
    """Count server requests for each scenario."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--distinct", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=32)
    harness.common_args(parser)
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", harness.BENCH_KEY)

    from pytest_gpo.evaluate import EvalOptions, evaluate
    from pytest_gpo.llm.client import LiteLLMClient
    from pytest_gpo.llm.loop import EventLoopRunner
    from pytest_gpo.scorers.registry import builtin_registry
    from pytest_gpo.suites.load import load_suite

    rows: list[dict[str, Any]] = []
    with harness.workdir("coalesce") as tmp, harness.ServerProcess(latency=args.latency) as srv:
        n = args.cases
        one = harness.write_suite(tmp / "one", "a", cases=n, api_base=srv.base_url)
        harness.write_suite(tmp / "two", "a", cases=n, api_base=srv.base_url)
        harness.write_suite(tmp / "two", "b", cases=n, api_base=srv.base_url)
        (tmp / "two" / "b.txt").write_text(harness.PROMPT, encoding="utf-8")
        harness.write_ini(tmp / "two")
        dup = harness.write_suite(tmp / "dup", "d", cases=n, api_base=srv.base_url)
        _duplicate_cases(tmp / "dup" / "d.jsonl", args.distinct)
        harness.write_ini(tmp / "dup")
        registry = builtin_registry()
        options = EvalOptions(model=harness.BENCH_MODEL)

        with EventLoopRunner() as runner:
            suite = load_suite(one, registry, trusted_params=("api_base",))
            dup_suite = load_suite(dup, registry, trusted_params=("api_base",))

            def in_process(label: str, coro_factory: Any, asked: int) -> None:
                client = LiteLLMClient(cache_mode="off", concurrency=args.concurrency)
                srv.reset()
                start = time.perf_counter()
                runner.run(coro_factory(client))
                seconds = time.perf_counter() - start
                runner.run(client.aclose())
                rows.append(
                    {
                        "scenario": label,
                        "requests_asked": asked,
                        "server_calls": srv.stats()["chat_requests"],
                        "seconds": round(seconds, 2),
                    }
                )

            async def warm(client: Any) -> None:
                await evaluate(suite, client, options, cases=suite.cases[:4])

            in_process("warm-up", warm, 4)
            rows.clear()

            async def two_at_once(client: Any) -> None:
                await asyncio.gather(
                    evaluate(suite, client, options), evaluate(suite, client, options)
                )

            in_process("evaluate(): 2 identical suites at once, cache off", two_at_once, 2 * n)

            async def duplicates(client: Any) -> None:
                await evaluate(dup_suite, client, options)

            in_process(f"evaluate(): {n} cases, {args.distinct} distinct, cache off", duplicates, n)

        for label, cwd, cmd, asked in (
            (
                "pytest: 2 suite files, same requests, cache rw",
                tmp / "two",
                harness.pytest_cmd("--gpo-cache", "rw"),
                2 * n,
            ),
            (
                "pytest: 2 suite files, same requests, cache off",
                tmp / "two",
                harness.pytest_cmd("--gpo-cache", "off"),
                2 * n,
            ),
            (
                f"pytest: {n} cases, {args.distinct} distinct, cache off",
                tmp / "dup",
                harness.pytest_cmd("--gpo-cache", "off"),
                n,
            ),
        ):
            srv.reset()
            run = harness.check(
                harness.run_child([*cmd, "--gpo-concurrency", str(args.concurrency)], cwd=cwd),
                label,
            )
            rows.append(
                {
                    "scenario": label,
                    "requests_asked": asked,
                    "server_calls": srv.stats()["chat_requests"],
                    "seconds": round(run.seconds, 2),
                }
            )

    harness.table(
        "Coalescing and cache sharing",
        rows,
        notes=[
            f"server latency {args.latency} s, concurrency {args.concurrency}. pytest runs items "
            "one after the other: two suites asking the same thing share through the cache "
            "(rw), and with the cache off each asks again; duplicates within a suite coalesce."
        ],
    )
    harness.write_json(args.json, "coalesce", {"args": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
