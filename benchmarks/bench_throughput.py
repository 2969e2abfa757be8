"""Evaluation throughput: wall time against the ideal ``ceil(cases / c) x latency``.

Part 1 runs one generated suite of ``--cases`` cases against the local server (in its own
process) at ``--latency`` seconds per answer, for each concurrency, two ways:

- ``plugin``: ``pytest`` in a subprocess over the suite (``--gpo-cache off``). The ratio uses
  the suite item's setup + call time (from ``gpo_probe``); the rest of the process (Python,
  pytest, litellm's ~3 s import, which the probe does up front so that it is measured apart
  rather than inside the first call) is a fixed start-up that no concurrency can shorten, and is
  shown in its own columns.
- ``evaluate``: :func:`pytest_gpo.evaluate.evaluate` in this process after a warm-up call.
- ``xdist``: the same cases split over 4 suite files, ``pytest -n 2`` with
  ``--gpo-concurrency c/2`` per worker (``c`` requests in flight in all); measured from the
  first suite's setup to the last suite's end (each worker imports litellm before that).
  One process cannot reach ``c`` = 32 at 100 ms: litellm needs ~3 ms of CPU per call, the
  ideal asks for 320 calls a second, and the GIL gives one process one core; pytest-xdist
  gives each worker its own.

Part 2, at zero latency, measures calls/s and CPU per call of a raw ``litellm.acompletion``
loop (the ceiling for anything built on litellm on this machine) against ``LiteLLMClient`` and
``evaluate()`` on the same requests, in one process, at the same concurrency.

    .venv/bin/python benchmarks/bench_throughput.py [--cases 1000] [--latency 0.1]
        [--concurrency 1,8,32,64] [--paths plugin,evaluate,xdist] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


XDIST_SUITES = 4


def _pytest_run(
    suite_dir: Path, server: harness.ServerProcess, what: str, *args: str
) -> tuple[harness.ChildRun, dict[str, Any]]:
    """pytest (cache off, litellm imported up front by the probe) and the server's counters."""
    server.reset()
    run = harness.check(
        harness.run_child(
            harness.pytest_cmd("--gpo-cache", "off", *args),
            cwd=suite_dir,
            env=harness.bench_env(GPO_PROBE_PREIMPORT="litellm"),
        ),
        what,
    )
    stats = server.stats()
    return run, {
        "wall": run.seconds,
        "requests": stats["chat_requests"],
        "peak": stats["peak_concurrency"],
    }


def xdist_run(
    suite_dir: Path, server: harness.ServerProcess, concurrency: int, cases: int
) -> dict[str, Any]:
    """``pytest -n 2`` over the cases split into :data:`XDIST_SUITES` suite files."""
    per_worker = max(1, concurrency // 2)
    run, got = _pytest_run(
        suite_dir,
        server,
        "pytest -n 2 over the split suites",
        "-n",
        "2",
        "--gpo-concurrency",
        str(per_worker),
    )
    span = float(run.probe.get("gpo_span_seconds", math.nan))
    return {**got, "seconds": span, "fixed": run.seconds - span}


def plugin_run(
    suite_dir: Path, server: harness.ServerProcess, concurrency: int, cases: int
) -> dict[str, Any]:
    """One pytest subprocess over the suite."""
    run, got = _pytest_run(
        suite_dir, server, "pytest over the generated suite", "--gpo-concurrency", str(concurrency)
    )
    suite_seconds = float(run.probe.get("gpo_seconds", math.nan))
    return {
        **got,
        "seconds": suite_seconds,
        "fixed": run.seconds - suite_seconds,
        "litellm_import": float(run.probe.get("preimport_seconds", math.nan)),
        "litellm_imported": run.probe.get("imported", {}).get("litellm"),
    }


class InProcess:
    """The evaluate() path and the raw-litellm loop, sharing one event loop and one server."""

    def __init__(self, suite_path: Path, server: harness.ServerProcess) -> None:
        os.environ.setdefault("OPENAI_API_KEY", harness.BENCH_KEY)
        from pytest_gpo.llm.loop import EventLoopRunner
        from pytest_gpo.llm.setup import import_litellm
        from pytest_gpo.scorers.registry import builtin_registry
        from pytest_gpo.suites.load import load_suite

        self.server = server
        self.suite = load_suite(suite_path, builtin_registry(), trusted_params=("api_base",))
        self.runner = EventLoopRunner()
        self.litellm = import_litellm()
        self.round = 0

    def close(self) -> None:
        """Close the loop (and litellm's HTTP clients)."""
        self.runner.close()

    def _suite_variant(self) -> Any:
        # A fresh system message per round: identical requests would be coalesced or cached.
        from dataclasses import replace

        self.round += 1
        return replace(self.suite, system=f"round {self.round}")

    def evaluate(self, concurrency: int) -> dict[str, Any]:
        """evaluate() over every case with a fresh client (cache off)."""
        from pytest_gpo.evaluate import EvalOptions, evaluate
        from pytest_gpo.llm.client import LiteLLMClient

        suite = self._suite_variant()
        client = LiteLLMClient(cache_mode="off", concurrency=concurrency)
        options = EvalOptions(model=harness.BENCH_MODEL)
        self.server.reset()
        cpu = _cpu()
        start = time.perf_counter()
        run = self.runner.run(evaluate(suite, client, options))
        seconds = time.perf_counter() - start
        cpu = _cpu() - cpu
        self.runner.run(client.aclose())
        if run.errors:
            raise RuntimeError(f"evaluate() had errors: {run.errors[:3]}")
        stats = self.server.stats()
        return {
            "seconds": seconds,
            "cpu": cpu,
            "requests": stats["chat_requests"],
            "peak": stats["peak_concurrency"],
        }

    def client_only(self, concurrency: int, calls: int) -> dict[str, Any]:
        """LiteLLMClient.complete over ``calls`` distinct requests (no rendering, no scoring)."""
        from pytest_gpo.llm.client import LiteLLMClient
        from pytest_gpo.llm.types import Request

        self.round += 1
        tag = self.round
        client = LiteLLMClient(cache_mode="off", concurrency=concurrency)
        params = {"api_base": self.server.base_url}

        async def go() -> None:
            await asyncio.gather(
                *(
                    client.complete(
                        Request(
                            model=harness.BENCH_MODEL,
                            messages=(
                                {"role": "user", "content": f"r{tag} ticket {i} [label:other]"},
                            ),
                            params=params,
                        )
                    )
                    for i in range(calls)
                )
            )

        return self._timed(go, calls, after=client.aclose)

    def raw(self, concurrency: int, calls: int) -> dict[str, Any]:
        """A bare ``litellm.acompletion`` loop under a semaphore: the ceiling on litellm."""
        self.round += 1
        tag = self.round
        litellm = self.litellm
        base = self.server.base_url

        async def go() -> None:
            semaphore = asyncio.Semaphore(concurrency)

            async def one(i: int) -> None:
                async with semaphore:
                    await litellm.acompletion(
                        model=harness.BENCH_MODEL,
                        messages=[{"role": "user", "content": f"r{tag} ticket {i} [label:other]"}],
                        api_base=base,
                        num_retries=0,
                        max_retries=0,
                        timeout=60,
                    )

            await asyncio.gather(*(one(i) for i in range(calls)))

        return self._timed(go, calls)

    def _timed(self, make: Any, calls: int, after: Any = None) -> dict[str, Any]:
        self.server.reset()
        cpu = _cpu()
        start = time.perf_counter()
        self.runner.run(make())
        seconds = time.perf_counter() - start
        cpu = _cpu() - cpu
        if after is not None:
            self.runner.run(after())
        stats = self.server.stats()
        if stats["chat_requests"] != calls:
            raise RuntimeError(f"expected {calls} requests, the server saw {stats}")
        return {"seconds": seconds, "cpu": cpu, "requests": stats["chat_requests"]}


def main() -> None:
    """Run both parts and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--jitter", type=float, default=0.0)
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=None,
        help="server answers 429 (Retry-After) past N requests/s",
    )
    parser.add_argument("--concurrency", default="1,8,32,64")
    parser.add_argument("--paths", default="plugin,evaluate,xdist")
    parser.add_argument("--zero-latency-calls", type=int, default=2000)
    parser.add_argument("--zero-latency-concurrency", type=int, default=32)
    parser.add_argument("--skip-zero-latency", action="store_true")
    harness.common_args(parser)
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",") if c]
    paths = [p for p in args.paths.split(",") if p]

    rows: list[dict[str, Any]] = []
    zero_rows: list[dict[str, Any]] = []
    with harness.workdir("throughput") as tmp, harness.workdir("throughput-split") as split_dir:
        suite_path = harness.write_suite(tmp, "bench", cases=args.cases)
        with harness.ServerProcess(
            latency=args.latency, jitter=args.jitter, rate_limit=args.rate_limit
        ) as server:
            harness.write_suite(tmp, "bench", cases=args.cases, api_base=server.base_url)
            harness.write_ini(tmp)
            share = math.ceil(args.cases / XDIST_SUITES)
            for k in range(XDIST_SUITES):
                harness.write_suite(
                    split_dir,
                    f"part{k}",
                    offset=k * share,
                    cases=min(share, args.cases - k * share),
                    api_base=server.base_url,
                )
            harness.write_ini(split_dir)
            inproc = InProcess(suite_path, server) if "evaluate" in paths else None
            try:
                if inproc is not None:
                    inproc.client_only(4, 8)  # warm-up: connections, litellm's lazy pieces
                for c in levels:
                    ideal = math.ceil(args.cases / c) * args.latency
                    if args.rate_limit:
                        # the server admits rate_limit requests a second, whatever c is
                        ideal = max(ideal, args.cases / args.rate_limit)
                    for path in paths:
                        if path == "xdist" and c < 2:
                            continue
                        if path == "plugin":
                            got = plugin_run(tmp, server, c, args.cases)
                        elif path == "xdist":
                            got = xdist_run(split_dir, server, c, args.cases)
                        else:
                            assert inproc is not None
                            got = inproc.evaluate(c)
                        row = {
                            "path": path,
                            "concurrency": c,
                            "ideal_s": round(ideal, 3),
                            "measured_s": round(got["seconds"], 3),
                            "ratio": round(got["seconds"] / ideal, 3),
                            "process_wall_s": round(got["wall"], 2) if "wall" in got else "",
                            "fixed_startup_s": round(got["fixed"], 2) if "fixed" in got else "",
                            "of_which_litellm_import_s": (
                                round(got["litellm_import"], 2) if "litellm_import" in got else ""
                            ),
                            "requests": got["requests"],
                            "peak_in_flight": got["peak"],
                        }
                        rows.append(row)
                        print(row, file=sys.stderr, flush=True)
            finally:
                if inproc is not None:
                    inproc.close()

        if not args.skip_zero_latency:
            with harness.ServerProcess(latency=0.0) as server:
                harness.write_suite(
                    tmp, "bench", cases=args.zero_latency_calls, api_base=server.base_url
                )
                inproc = InProcess(suite_path, server)
                try:
                    c = args.zero_latency_concurrency
                    n = args.zero_latency_calls
                    inproc.client_only(4, 16)
                    inproc.raw(4, 16)
                    measured: dict[str, dict[str, Any]] = {}
                    # Interleaved twice; the better of two is kept for each.
                    variants: tuple[tuple[str, Callable[[], dict[str, Any]]], ...] = (
                        ("raw litellm.acompletion", lambda: inproc.raw(c, n)),
                        ("LiteLLMClient.complete", lambda: inproc.client_only(c, n)),
                        ("evaluate()", lambda: inproc.evaluate(c)),
                    )
                    for _ in range(2):
                        for name, fn in variants:
                            got = fn()
                            if name not in measured or got["seconds"] < measured[name]["seconds"]:
                                measured[name] = got
                    raw = measured["raw litellm.acompletion"]
                    for name, got in measured.items():
                        zero_rows.append(
                            {
                                "path": name,
                                "calls": got["requests"],
                                "seconds": round(got["seconds"], 2),
                                "calls_per_s": round(got["requests"] / got["seconds"]),
                                "cpu_ms_per_call": round(1000 * got["cpu"] / got["requests"], 2),
                                "vs_raw": round(raw["seconds"] / got["seconds"], 3),
                            }
                        )
                finally:
                    inproc.close()

    notes = [
        f"{args.cases} cases, latency {args.latency} s, jitter {args.jitter} s, "
        f"rate limit {args.rate_limit}; ratio = measured / ideal, ideal = ceil(cases/c) x "
        "latency (or cases / rate limit when that is longer); requests include retried 429s. "
        "plugin: measured = the suite item's setup+call time; fixed_startup_s = the rest of "
        "the pytest process (interpreter, pytest, litellm import, teardown). xdist: -n 2, "
        f"{XDIST_SUITES} suites, c/2 in flight per worker; measured = first suite setup to "
        "last suite end.",
    ]
    harness.table(
        f"Throughput ({args.cases} cases, {args.latency * 1000:.0f} ms latency)", rows, notes=notes
    )
    if zero_rows:
        harness.table(
            f"Zero latency, concurrency {args.zero_latency_concurrency} "
            f"({args.zero_latency_calls} calls)",
            zero_rows,
            notes=[
                "vs_raw = raw loop seconds / this path's seconds (1.0 = as fast as raw litellm)"
            ],
        )
    harness.write_json(
        args.json,
        "throughput",
        {"args": vars(args), "latency_rows": rows, "zero_latency_rows": zero_rows},
    )


if __name__ == "__main__":
    main()
