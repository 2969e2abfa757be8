"""pytest-xdist: N suites with ``-n 2`` against ``-n 0``, and the shared state afterwards.

``--suites`` suites of ``--cases`` cases each (server latency ``--latency``), cache off, timed
as whole ``pytest`` subprocesses. Then, with ``-n 2``: a run that fills the cache and writes the
baseline (``--gpo-update-baseline``), and a re-run that must make zero calls and pass the gate
against that baseline. The controller's summary must list every suite.

    .venv/bin/python benchmarks/bench_xdist.py [--suites 8] [--cases 100] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

import harness


def main() -> None:
    """Time -n 0 and -n 2; check cache, baseline and summary under -n 2."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suites", type=int, default=8)
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=8)
    harness.common_args(parser)
    args = parser.parse_args()

    rows: list[dict[str, Any]] = []
    with harness.workdir("xdist") as tmp, harness.ServerProcess(latency=args.latency) as srv:
        for i in range(args.suites):
            harness.write_suite(
                tmp, f"s{i:02d}", cases=args.cases, offset=i * args.cases, api_base=srv.base_url
            )
        harness.write_ini(tmp, gpo_concurrency=args.concurrency)
        per_suite = math.ceil(args.cases / args.concurrency) * args.latency
        for workers in (0, 2):
            srv.reset()
            run = harness.check(
                harness.run_child(
                    harness.pytest_cmd("--gpo-cache", "off", "-n", str(workers)), cwd=tmp
                ),
                f"-n {workers}",
            )
            rows.append(
                {
                    "run": f"-n {workers}, cache off",
                    "wall_s": round(run.seconds, 2),
                    "ideal_calls_s": round(per_suite * args.suites / max(1, workers), 2),
                    "server_calls": srv.stats()["chat_requests"],
                    "suites_in_summary": sum(f"s{i:02d}" in run.stdout for i in range(args.suites)),
                }
            )
        srv.reset()
        fill = harness.check(
            harness.run_child(harness.pytest_cmd("--gpo-update-baseline", "-n", "2"), cwd=tmp),
            "fill + baseline",
        )
        rows.append(
            {
                "run": "-n 2, cache rw, --gpo-update-baseline",
                "wall_s": round(fill.seconds, 2),
                "ideal_calls_s": "",
                "server_calls": srv.stats()["chat_requests"],
                "suites_in_summary": sum(f"s{i:02d}" in fill.stdout for i in range(args.suites)),
            }
        )
        baseline = json.loads((tmp / ".gpo" / "baseline.json").read_text(encoding="utf-8"))
        srv.reset()
        again = harness.check(
            harness.run_child(harness.pytest_cmd("-n", "2"), cwd=tmp), "cached re-run"
        )
        rows.append(
            {
                "run": "-n 2, re-run (cache rw, gated on baseline)",
                "wall_s": round(again.seconds, 2),
                "ideal_calls_s": "",
                "server_calls": srv.stats()["chat_requests"],
                "suites_in_summary": sum(f"s{i:02d}" in again.stdout for i in range(args.suites)),
            }
        )
        suites_in_baseline = len(baseline.get("suites", baseline))
        cache_files = sum(
            1 for p in (tmp / ".gpo" / "cache").rglob("*.json") if "corrupt" not in p.parts
        )

    harness.table(
        f"pytest-xdist ({args.suites} suites x {args.cases} cases)",
        rows,
        notes=[
            f"latency {args.latency} s, gpo_concurrency {args.concurrency} per process; "
            f"after the -n 2 runs: {suites_in_baseline} suites in the baseline, "
            f"{cache_files} cache entries (expected {args.suites * args.cases})."
        ],
    )
    harness.write_json(
        args.json,
        "xdist",
        {
            "args": vars(args),
            "rows": rows,
            "suites_in_baseline": suites_in_baseline,
            "cache_entries": cache_files,
        },
    )


if __name__ == "__main__":
    main()
